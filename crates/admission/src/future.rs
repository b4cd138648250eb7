//! [`ResponseFuture`]: the response future of [`Admission`](crate::Admission).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_service::Service;

use crate::Permit;
use crate::layer::Delivery;
use crate::phase::{Outcome, Phase};

pin_project! {
    /// The response future of [`Admission`](crate::Admission): waits for a
    /// permit, then for the inner service.
    pub struct ResponseFuture<S, Req, F, D> {
        #[pin]
        kind: Kind<S, Req, F>,
        delivery: D,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, Req, F> {
        /// Admitted at once: the inner future under its permit, which goes
        /// back when this future is dropped (as in tower's `ConcurrencyLimit`)
        /// or with what the delivery moves it into.
        Admitted {
            #[pin]
            fut: F,
            permit: Option<Permit>,
        },
        /// Waiting for a permit, then for the inner service. Boxed: the
        /// waiting state holds the request and a timer, and inline it would
        /// make every fast-path future that large to move.
        Queued {
            phase: Pin<Box<Phase<S, Req, F>>>,
        },
    }
}

impl<S, Req, F, D> ResponseFuture<S, Req, F, D> {
    #[inline]
    pub(crate) fn admitted(fut: F, permit: Permit, delivery: D) -> Self {
        ResponseFuture {
            kind: Kind::Admitted {
                fut,
                permit: Some(permit),
            },
            delivery,
        }
    }

    pub(crate) fn queued(phase: Phase<S, Req, F>, delivery: D) -> Self {
        ResponseFuture {
            kind: Kind::Queued {
                phase: Box::pin(phase),
            },
            delivery,
        }
    }
}

impl<S, Req, F, D> Future for ResponseFuture<S, Req, F, D>
where
    S: Service<Req, Future = F>,
    F: Future<Output = Result<S::Response, S::Error>>,
    D: Delivery<Req, S::Response, S::Error>,
{
    type Output = Result<D::Response, D::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let phase = match this.kind.project() {
            KindProj::Admitted { fut, permit } => {
                let out = ready!(fut.poll(cx));
                return Poll::Ready(match out {
                    Ok(res) => Ok(this.delivery.answer(res, permit.take())),
                    Err(e) => Err(e.into()),
                });
            }
            KindProj::Queued { phase } => phase,
        };
        Poll::Ready(match ready!(phase.as_mut().poll_outcome(cx)) {
            Outcome::Answered(res, permit) => Ok(this.delivery.answer(res, permit)),
            Outcome::Refused(err, req) => this.delivery.refuse(err, &req),
            Outcome::Failed(e) => Err(e.into()),
        })
    }
}

impl<S, Req, F, D> std::fmt::Debug for ResponseFuture<S, Req, F, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
