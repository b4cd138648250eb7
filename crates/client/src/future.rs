//! [`ResponseFuture`]: the response future of [`Throttle`](crate::Throttle).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_pressure_core::Priority;

use crate::throttler::Throttler;
use crate::{Classify, Verdict};

pin_project! {
    /// The response future of [`Throttle`](crate::Throttle): the inner
    /// service's answer, counted when it comes, or the local refusal.
    ///
    /// # Cancel safety
    ///
    /// Dropped before the answer comes, the call is not counted: nothing is
    /// known of what the service made of it.
    pub struct ResponseFuture<F, C, T, E> {
        #[pin]
        kind: Kind<F, C, T, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C, T, E> {
        /// Sent: the answer is classified and counted when it comes.
        Called {
            #[pin]
            fut: F,
            count: Option<Count<C>>,
        },
        /// Refused locally, answered at the first poll.
        Refused {
            out: Option<Result<T, E>>,
        },
    }
}

/// What counting an answer needs.
struct Count<C> {
    throttler: Arc<Throttler>,
    priority: Priority,
    classifier: C,
}

impl<F, C, T, E> ResponseFuture<F, C, T, E> {
    pub(crate) fn called(
        fut: F,
        throttler: Arc<Throttler>,
        priority: Priority,
        classifier: C,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Called {
                fut,
                count: Some(Count {
                    throttler,
                    priority,
                    classifier,
                }),
            },
        }
    }

    pub(crate) fn refused(out: Result<T, E>) -> Self {
        ResponseFuture {
            kind: Kind::Refused { out: Some(out) },
        }
    }
}

impl<F, C, T, E, SE> Future for ResponseFuture<F, C, T, E>
where
    F: Future<Output = Result<T, SE>>,
    C: Classify<T, SE>,
    E: From<SE>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { fut, count } => {
                let out = ready!(fut.poll(cx));
                if let Some(c) = count.take() {
                    match c.classifier.classify(out.as_ref()) {
                        Verdict::Accepted => c.throttler.record(c.priority, true),
                        Verdict::Rejected => c.throttler.record(c.priority, false),
                        Verdict::Ignored => {}
                    }
                }
                Poll::Ready(out.map_err(Into::into))
            }
            KindProj::Refused { out } => {
                Poll::Ready(out.take().expect("ResponseFuture polled after completion"))
            }
        }
    }
}

impl<F, C, T, E> std::fmt::Debug for ResponseFuture<F, C, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
