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
        hold_body: bool,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, Req, F> {
        /// Admitted at once: the inner future under its permit, which goes
        /// back when this future is dropped, or moves into the body.
        Admitted {
            #[pin]
            fut: F,
            permit: Option<Permit>,
        },
        /// Waiting for a permit, then for the inner service. Only a request
        /// that queues can be refused, so only it carries the responder.
        Queued {
            #[pin]
            phase: Phase<S, Req, F>,
            reject: Arc<RejectFn>,
        },
    }
}

impl<S, Req, F> ResponseFuture<S, Req, F> {
    pub(crate) fn admitted(fut: F, permit: Permit, hold_body: bool) -> Self {
        ResponseFuture {
            kind: Kind::Admitted {
                fut,
                permit: Some(permit),
            },
            hold_body,
        }
    }

    pub(crate) fn queued(phase: Phase<S, Req, F>, hold_body: bool, reject: Arc<RejectFn>) -> Self {
        ResponseFuture {
            kind: Kind::Queued { phase, reject },
            hold_body,
        }
    }
}

impl<S, ReqB, ResB, F> Future for ResponseFuture<S, Request<ReqB>, F>
where
    S: Service<Request<ReqB>, Response = Response<ResB>, Future = F>,
    F: Future<Output = Result<Response<ResB>, S::Error>>,
{
    type Output = Result<Response<ResponseBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let hold_body = *this.hold_body;
        let (phase, reject) = match this.kind.project() {
            KindProj::Admitted { fut, permit } => {
                let out = ready!(fut.poll(cx));
                // Without hold_until_body_end the permit goes back with the head.
                let permit = permit.take().filter(|_| hold_body);
                return Poll::Ready(
                    out.map(|res| res.map(|body| ResponseBody::inner(body, permit))),
                );
            }
            KindProj::Queued { phase, reject } => (phase, reject),
        };
        Poll::Ready(match ready!(phase.poll_outcome(cx)) {
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
