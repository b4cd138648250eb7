//! Response futures of the admission services.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::ResponseBody;
use crate::layer::RejectFn;
use crate::phase::{Outcome, Phase};

pin_project! {
    /// The response future of [`Admission`](crate::Admission): waits for a
    /// permit, then for the inner service.
    pub struct ResponseFuture<S, Req, F> {
        #[pin]
        phase: Phase<S, Req, F>,
        hold_body: bool,
        // Only a request that queues can be refused: the fast path does not
        // pay for this clone.
        reject: Option<Arc<RejectFn>>,
    }
}

impl<S, Req, F> ResponseFuture<S, Req, F> {
    pub(crate) fn new(
        phase: Phase<S, Req, F>,
        hold_body: bool,
        reject: Option<Arc<RejectFn>>,
    ) -> Self {
        ResponseFuture {
            phase,
            hold_body,
            reject,
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
        Poll::Ready(match ready!(this.phase.poll_outcome(cx)) {
            Outcome::Answered(res, permit) => {
                // Without hold_until_body_end the permit goes back with the head.
                let permit = permit.filter(|_| *this.hold_body);
                Ok(res.map(|body| ResponseBody::inner(body, permit)))
            }
            Outcome::Refused(err, req) => {
                let reject = this
                    .reject
                    .as_ref()
                    .expect("set on every call that can be refused");
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
