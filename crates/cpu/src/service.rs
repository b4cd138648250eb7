//! [`CpuThrottle`]: the service made by [`CpuThrottleLayer`](crate::CpuThrottleLayer).

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_pressure_core::http::Rejection;
use tower_pressure_core::{PressureLevel, PriorityOf, Refusal, Signal};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::throttle::{Decision, Settings, Slow};

/// Delays requests to `inner` while the CPU is pressed; see
/// [`CpuThrottleLayer`](crate::CpuThrottleLayer).
#[derive(Debug, Clone)]
pub struct CpuThrottle<S, R = Rejection> {
    inner: S,
    signal: Signal,
    /// Requests below this level take the fast path: the first level that
    /// delays, or `PressureLevel::None` (no fast path) when the capacity
    /// gate is on and must count every request.
    start: PressureLevel,
    settings: Arc<Settings>,
    refusal: R,
}

impl<S, R> CpuThrottle<S, R> {
    pub(crate) fn new(inner: S, signal: Signal, settings: Arc<Settings>, refusal: R) -> Self {
        CpuThrottle {
            inner,
            start: fast_path_below(&settings),
            signal,
            settings,
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

    /// The signal read.
    pub fn signal(&self) -> &Signal {
        &self.signal
    }
}

impl<S, Req, R> Service<Req> for CpuThrottle<S, R>
where
    S: Service<Req> + Clone,
    Req: PriorityOf,
    R: Refusal<Req, S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = ResponseFuture<S, Req, S::Future, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let level = self.signal.level();
        if level < self.start {
            // Fast path: one atomic load, then the inner service, which is
            // ready (we forwarded its readiness).
            return ResponseFuture::called(self.inner.call(req), self.refusal.clone());
        }
        self.call_pressed(level, req)
    }
}

impl<S, R: Clone> CpuThrottle<S, R> {
    /// The call at or above the start level, kept out of line so that the
    /// fast path stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn call_pressed<Req>(
        &mut self,
        level: PressureLevel,
        req: Req,
    ) -> ResponseFuture<S, Req, S::Future, R>
    where
        S: Service<Req> + Clone,
        Req: PriorityOf,
    {
        let s = &self.settings;
        let priority = req.priority();
        match s.decide(level, priority, req.deadline()) {
            Decision::Pass => {
                let guard = s.enter(priority);
                ResponseFuture::counted(self.inner.call(req), guard, self.refusal.clone())
            }
            // A clone, not the ready service: the ready one stays here for
            // the next call, and the clone holds nothing while it waits.
            Decision::Delay(d, parked) => {
                let svc = self.inner.clone();
                let slow = Slow::sleeping(d, parked, svc, req, s, &self.signal, priority);
                ResponseFuture::slow(slow, self.refusal.clone())
            }
            Decision::Shed(err) => {
                ResponseFuture::slow(Slow::refused(err, req), self.refusal.clone())
            }
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
