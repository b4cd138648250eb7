//! [`Adaptive`]: the recording service.

use std::task::{Context, Poll};

use tower_pressure_core::PriorityOf;
use tower_service::Service;

use crate::future::{Recording, ResponseFuture};
use crate::{AdaptiveLimit, Classify, HttpClassifier};

/// Records the latency and outcome of the requests through it for an
/// [`AdaptiveLimit`]; see [`AdaptiveLayer`](crate::AdaptiveLayer).
///
/// `poll_ready` forwards the inner service's readiness; nothing is measured
/// before `call`. The latency runs from `call` to the response future's
/// completion, or to the end of the response body
/// ([`until_body_end`](crate::AdaptiveLayer::until_body_end)). A request
/// cancelled before it completes (the client went away) is a drop if it ran
/// past the driver's
/// [`cancel_objective`](crate::AdaptiveLimitBuilder::cancel_objective) or
/// its own [`Deadline`](tower_pressure_core::Deadline), whichever is sooner,
/// else not counted.
#[derive(Debug, Clone)]
pub struct Adaptive<S, C = HttpClassifier> {
    inner: S,
    adaptive: Option<AdaptiveLimit>,
    classifier: C,
    body_end: bool,
}

impl<S, C> Adaptive<S, C> {
    pub(crate) fn new(
        inner: S,
        adaptive: Option<AdaptiveLimit>,
        classifier: C,
        body_end: bool,
    ) -> Self {
        Adaptive {
            inner,
            adaptive,
            classifier,
            body_end,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for Adaptive<S, C>
where
    S: Service<Req>,
    Req: PriorityOf,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = C::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    // Inlined, so that the future is built where it is awaited rather than
    // returned through memory (see the admission layer's `call`).
    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        // The guard exists before the inner call: a panicking `call` still
        // takes the request back out of the in-flight count.
        let recording = self.adaptive.as_ref().map(|a| {
            let deadline = req.deadline().map(|d| d.instant());
            Recording::start(a.shared.clone(), deadline)
        });
        let fut = self.inner.call(req);
        ResponseFuture::new(fut, recording, self.classifier.clone(), self.body_end)
    }
}
