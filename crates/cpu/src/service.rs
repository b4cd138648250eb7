//! [`CpuThrottle`]: the HTTP service made by [`CpuThrottleLayer`].

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_pressure_core::http::Rejection;
use tower_pressure_core::{PressureLevel, PriorityOf, Signal};
use tower_service::Service;

use crate::CpuThrottleLayer;
use crate::future::ResponseFuture;
use crate::throttle::{Decision, Settings, Slow};

/// Delays HTTP requests to `inner` while the CPU is pressed; see
/// [`CpuThrottleLayer`].
#[derive(Debug, Clone)]
pub struct CpuThrottle<S> {
    inner: S,
    signal: Signal,
    /// Requests below this level take the fast path: the first level that
    /// delays, or `PressureLevel::None` (no fast path) when the capacity
    /// gate is on and must count every request.
    start: PressureLevel,
    settings: Arc<Settings>,
    rejection: Rejection,
}

impl<S> CpuThrottle<S> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: S, layer: CpuThrottleLayer) -> Self {
        let parts = crate::layer::Parts::from(layer);
        CpuThrottle {
            inner,
            start: fast_path_below(&parts.settings),
            signal: parts.signal,
            settings: parts.settings,
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

    #[inline]
    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let level = self.signal.level();
        if level < self.start {
            // Fast path: one atomic load, then the inner service, which is
            // ready (we forwarded its readiness).
            return ResponseFuture::called(self.inner.call(req), self.rejection);
        }
        self.call_pressed(level, req)
    }
}

impl<S> CpuThrottle<S> {
    /// The call at or above the start level, kept out of line so that the
    /// fast path stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn call_pressed<ReqB>(
        &mut self,
        level: PressureLevel,
        req: Request<ReqB>,
    ) -> ResponseFuture<S, Request<ReqB>, S::Future>
    where
        S: Service<Request<ReqB>> + Clone,
    {
        let s = &self.settings;
        let priority = req.priority();
        match s.decide(level, priority, req.deadline()) {
            Decision::Pass => {
                let guard = s.enter(priority);
                ResponseFuture::counted(self.inner.call(req), guard, self.rejection)
            }
            // A clone, not the ready service: the ready one stays here for
            // the next call, and the clone holds nothing while it waits.
            Decision::Delay(d, parked) => {
                let svc = self.inner.clone();
                let slow = Slow::sleeping(d, parked, svc, req, s, &self.signal, priority);
                ResponseFuture::slow(slow, self.rejection)
            }
            Decision::Shed(err) => ResponseFuture::slow(Slow::refused(err, req), self.rejection),
        }
    }
}

/// The level below which a request takes the fast path: the start level, or
/// none at all when the capacity gate must count every request.
pub(crate) fn fast_path_below(settings: &Settings) -> PressureLevel {
    if settings.gate.is_some() {
        PressureLevel::None
    } else {
        settings.config.start_level()
    }
}
