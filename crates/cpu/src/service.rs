//! [`CpuThrottle`]: the HTTP service made by [`CpuThrottleLayer`].

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_pressure_core::http::Rejection;
use tower_pressure_core::{PressureLevel, PriorityOf, Signal};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::throttle::{Decision, Slow, decide};
use crate::{CpuThrottleConfig, CpuThrottleLayer};

/// Delays HTTP requests to `inner` while the CPU is pressed; see
/// [`CpuThrottleLayer`].
#[derive(Debug, Clone)]
pub struct CpuThrottle<S> {
    inner: S,
    signal: Signal,
    start: PressureLevel,
    config: Arc<CpuThrottleConfig>,
    rejection: Rejection,
}

impl<S> CpuThrottle<S> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: S, layer: CpuThrottleLayer) -> Self {
        let parts = crate::layer::Parts::from(layer);
        CpuThrottle {
            inner,
            start: parts.config.start_level(),
            signal: parts.signal,
            config: parts.config,
            rejection: parts.rejection,
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

    /// The signal read.
    pub fn signal(&self) -> &Signal {
        &self.signal
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for CpuThrottle<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    ResB: Default,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S, Request<ReqB>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let level = self.signal.level();
        if level < self.start {
            // Fast path: one atomic load, then the inner service, which is
            // ready (we forwarded its readiness).
            return ResponseFuture::called(self.inner.call(req), self.rejection);
        }
        match decide(&self.config, level, req.priority(), req.deadline()) {
            Decision::Pass => ResponseFuture::called(self.inner.call(req), self.rejection),
            // A clone, not the ready service: the ready one stays here for
            // the next call, and the clone holds nothing while it waits.
            Decision::Delay(d) => {
                ResponseFuture::slow(Slow::sleeping(d, self.inner.clone(), req), self.rejection)
            }
            Decision::Shed(err) => ResponseFuture::slow(Slow::refused(err, req), self.rejection),
        }
    }
}
