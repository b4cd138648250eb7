//! [`ResponseFuture`]: the response future of [`MemoryShed`](crate::MemoryShed).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

pin_project! {
    /// The response future of [`MemoryShed`](crate::MemoryShed): the inner
    /// service's future, or the refusal, ready at once.
    pub struct ResponseFuture<F, Res, Err> {
        #[pin]
        kind: Kind<F, Res, Err>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, Res, Err> {
        Inner {
            #[pin]
            fut: F,
        },
        /// Boxed: a response inline would make every admitted request's
        /// future that much larger to move.
        Refused {
            out: Option<Box<Result<Res, Err>>>,
        },
    }
}

impl<F, Res, Err> ResponseFuture<F, Res, Err> {
    pub(crate) fn inner(fut: F) -> Self {
        ResponseFuture {
            kind: Kind::Inner { fut },
        }
    }

    pub(crate) fn refused(out: Result<Res, Err>) -> Self {
        ResponseFuture {
            kind: Kind::Refused {
                out: Some(Box::new(out)),
            },
        }
    }
}

impl<F, Res, E, Err> Future for ResponseFuture<F, Res, Err>
where
    F: Future<Output = Result<Res, E>>,
    Err: From<E>,
{
    type Output = Result<Res, Err>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut } => fut.poll(cx).map_err(Into::into),
            KindProj::Refused { out } => {
                Poll::Ready(*out.take().expect("ResponseFuture polled after completion"))
            }
        }
    }
}

impl<F, Res, Err> fmt::Debug for ResponseFuture<F, Res, Err> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
