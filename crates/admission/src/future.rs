//! Response futures of the admission services.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::layer::RejectFn;
use crate::phase::{Outcome, Phase};
use crate::{Permit, ResponseBody};

pin_project! {
    /// The response future of [`Admission`](crate::Admission): waits for a
    /// permit, then for the inner service.
    pub struct ResponseFuture<S, Req, F> {
        #[pin]
        kind: Kind<S, Req, F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, Req, F> {
        /// Admitted at once: the inner future under its permit, which goes
        /// back when this future is dropped (as in tower's `ConcurrencyLimit`)
        /// or moves into the response body (`Permit::with_body`).
        Admitted {
            #[pin]
            fut: F,
            permit: Option<Permit>,
        },
        /// Waiting for a permit, then for the inner service. Only a request
        /// that queues can be refused, so only it carries the responder.
        /// Boxed: the waiting state holds the request and a timer, and
        /// inline it would make every fast-path future that large to move.
        Queued {
            phase: Pin<Box<Phase<S, Req, F>>>,
            reject: Arc<RejectFn>,
            hold_body: bool,
        },
    }
}

impl<S, Req, F> ResponseFuture<S, Req, F> {
    #[inline]
    pub(crate) fn admitted(fut: F, mut permit: Permit, hold_body: bool) -> Self {
        permit.with_body = hold_body;
        ResponseFuture {
            kind: Kind::Admitted {
                fut,
                permit: Some(permit),
            },
        }
    }

    pub(crate) fn queued(phase: Phase<S, Req, F>, hold_body: bool, reject: Arc<RejectFn>) -> Self {
        ResponseFuture {
            kind: Kind::Queued {
                phase: Box::pin(phase),
                reject,
                hold_body,
            },
        }
    }
}

impl<S, ReqB, ResB, F> Future for ResponseFuture<S, Request<ReqB>, F>
where
    S: Service<Request<ReqB>, Response = Response<ResB>, Future = F>,
    F: Future<Output = Result<Response<ResB>, S::Error>>,
{
    type Output = Result<Response<ResponseBody<ResB>>, S::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (phase, reject, hold_body) = match self.project().kind.project() {
            KindProj::Admitted { fut, permit } => {
                let out = ready!(fut.poll(cx));
                // Without `with_body` the permit goes back with the head, as
                // this future is dropped.
                let permit = if permit.as_ref().is_some_and(|p| p.with_body) {
                    permit.take()
                } else {
                    None
                };
                return Poll::Ready(
                    out.map(|res| res.map(|body| ResponseBody::inner(body, permit))),
                );
            }
            KindProj::Queued {
                phase,
                reject,
                hold_body,
            } => (phase, reject, *hold_body),
        };
        Poll::Ready(match ready!(phase.as_mut().poll_outcome(cx)) {
            Outcome::Answered(res, permit) => {
                let permit = permit.filter(|_| hold_body);
                Ok(res.map(|body| ResponseBody::inner(body, permit)))
            }
            Outcome::Refused(err, req) => {
                Ok(reject(&err, req.headers()).map(ResponseBody::rejected))
            }
            Outcome::Failed(e) => Err(e),
        })
    }
}

impl<S, Req, F> std::fmt::Debug for ResponseFuture<S, Req, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
