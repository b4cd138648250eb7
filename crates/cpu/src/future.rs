//! [`ResponseFuture`]: the response future of [`CpuThrottle`](crate::CpuThrottle).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_pressure_core::Refusal;
use tower_service::Service;

use crate::throttle::{Entered, Outcome, Slow};

pin_project! {
    /// The response future of [`CpuThrottle`](crate::CpuThrottle): waits out
    /// the delay, then calls the inner service and waits for it.
    ///
    /// # Cancel safety
    ///
    /// Dropping it while it waits drops the request and the clone of the
    /// inner service: nothing is held, and the inner service never saw the
    /// request.
    pub struct ResponseFuture<S, Req, F, R> {
        #[pin]
        kind: Kind<S, Req, F>,
        refusal: R,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, Req, F> {
        /// The inner service was called; `guard`, on the pressed path,
        /// counts the request among its class (and in the capacity gate)
        /// until it completes. Inline: passing under pressure allocates
        /// nothing.
        Called {
            #[pin]
            fut: F,
            guard: Option<Entered>,
        },
        /// Delayed, refused, or counted by the capacity gate. Boxed: it
        /// holds a timer, the request and a clone of the service, and inline
        /// it would make every fast-path future that large to move.
        Slow {
            slow: Pin<Box<Slow<S, Req, F>>>,
        },
    }
}

impl<S, Req, F, R> ResponseFuture<S, Req, F, R> {
    #[inline]
    pub(crate) fn called(fut: F, refusal: R) -> Self {
        ResponseFuture {
            kind: Kind::Called { fut, guard: None },
            refusal,
        }
    }

    /// Called on the pressed path: `guard` counts it until it completes.
    pub(crate) fn counted(fut: F, guard: Entered, refusal: R) -> Self {
        ResponseFuture {
            kind: Kind::Called {
                fut,
                guard: Some(guard),
            },
            refusal,
        }
    }

    pub(crate) fn slow(slow: Slow<S, Req, F>, refusal: R) -> Self {
        ResponseFuture {
            kind: Kind::Slow {
                slow: Box::pin(slow),
            },
            refusal,
        }
    }
}

impl<S, Req, F, R> Future for ResponseFuture<S, Req, F, R>
where
    S: Service<Req, Future = F>,
    F: Future<Output = Result<S::Response, S::Error>>,
    R: Refusal<Req, S::Response, S::Error>,
{
    type Output = Result<S::Response, R::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Called { fut, guard } => {
                let out = ready!(fut.poll(cx));
                if let Some(g) = guard.take() {
                    g.complete();
                }
                Poll::Ready(out.map_err(Into::into))
            }
            KindProj::Slow { slow } => Poll::Ready(match ready!(slow.as_mut().poll_outcome(cx)) {
                Outcome::Inner(out) => out.map_err(Into::into),
                Outcome::Refused(err, req) => this.refusal.refuse(err, &req),
            }),
        }
    }
}

impl<S, Req, F, R> std::fmt::Debug for ResponseFuture<S, Req, F, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
