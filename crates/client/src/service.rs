//! [`Throttle`]: the service made by [`ThrottleLayer`](crate::ThrottleLayer).

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_pressure_core::http::Rejection;
use tower_pressure_core::{PriorityOf, Refusal};
use tower_service::Service;

use crate::throttler::Throttler;
use crate::{Classify, HttpClassifier, ResponseFuture};

/// Refuses calls to `inner` locally while the service turns most of them
/// away; see [`ThrottleLayer`](crate::ThrottleLayer).
///
/// Clones share the statistics (they hold no per-call state).
#[derive(Debug, Clone)]
pub struct Throttle<S, C = HttpClassifier, R = Rejection> {
    inner: S,
    throttler: Arc<Throttler>,
    classifier: C,
    refusal: R,
}

impl<S, C, R> Throttle<S, C, R> {
    pub(crate) fn new(inner: S, throttler: Arc<Throttler>, classifier: C, refusal: R) -> Self {
        Throttle {
            inner,
            throttler,
            classifier,
            refusal,
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

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req, C, R> Service<Req> for Throttle<S, C, R>
where
    S: Service<Req>,
    Req: PriorityOf,
    C: Classify<S::Response, S::Error> + Clone,
    R: Refusal<Req, S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = ResponseFuture<S::Future, C, S::Response, R::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let priority = req.priority();
        match self.throttler.admit(priority) {
            Ok(()) => ResponseFuture::called(
                self.inner.call(req),
                self.throttler.clone(),
                priority,
                self.classifier.clone(),
            ),
            // The inner service stays ready for the next call: what its
            // `poll_ready` reserved is not lost.
            Err(err) => ResponseFuture::refused(self.refusal.refuse(err, &req)),
        }
    }
}
