//! [`GenericCpuThrottleLayer`]: CPU throttling for any tower service; a
//! refusal is an error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_pressure_core::{PressureLevel, PriorityOf, Signal};
use tower_service::Service;

use crate::gate::CapacityGate;
use crate::service::fast_path_below;
use crate::throttle::{Decision, Entered, Outcome, Settings, Slow};
use crate::{CapacityGateConfig, CpuThrottleConfig};

/// The boxed error of the generic service, as tower's `BoxError`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Delays requests to any tower service whose requests implement
/// [`PriorityOf`], as [`CpuThrottleLayer`](crate::CpuThrottleLayer) does for
/// HTTP. A refused request fails with a [`BoxError`] holding an
/// [`Overloaded`](tower_pressure_core::Overloaded); check with
/// `err.is::<Overloaded>()`.
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_pressure_core::{ManualSource, Priority, PriorityOf};
/// use tower_pressure_cpu::{CpuSignal, GenericCpuThrottleLayer};
///
/// struct Job(Priority);
/// impl PriorityOf for Job {
///     fn priority(&self) -> Priority { self.0 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let cpu = CpuSignal::spawn(ManualSource::new(0.1));
/// let svc = ServiceBuilder::new()
///     .layer(GenericCpuThrottleLayer::new(cpu))
///     .service(service_fn(|job: Job| async move { Ok::<_, tower::BoxError>(job.0) }));
/// assert_eq!(svc.oneshot(Job(Priority::Low)).await?, Priority::Low);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GenericCpuThrottleLayer {
    signal: Signal,
    settings: Arc<Settings>,
}

impl GenericCpuThrottleLayer {
    /// Throttles on `signal` with the default delays.
    #[must_use]
    pub fn new(signal: Signal) -> Self {
        GenericCpuThrottleLayer::with_config(signal, CpuThrottleConfig::default())
    }

    /// Throttles on `signal` with `config`.
    #[must_use]
    pub fn with_config(signal: Signal, config: CpuThrottleConfig) -> Self {
        GenericCpuThrottleLayer {
            signal,
            settings: Arc::new(Settings::new(config)),
        }
    }

    /// Adds the capacity gate; see
    /// [`CpuThrottleLayer::capacity_gate`](crate::CpuThrottleLayer::capacity_gate).
    #[must_use]
    pub fn capacity_gate(mut self, config: CapacityGateConfig) -> Self {
        Arc::make_mut(&mut self.settings).gate = Some(Arc::new(CapacityGate::new(config)));
        self
    }

    /// What the capacity gate sees now, if it is on.
    #[must_use]
    pub fn capacity(&self) -> Option<crate::GateSnapshot> {
        self.settings.gate.as_ref().map(|g| g.snapshot())
    }

    /// Publishes an [`Event::Shed`](tower_pressure_core::Event::Shed) on
    /// `bus` for every refusal.
    #[must_use]
    pub fn events(mut self, bus: tower_pressure_core::EventBus) -> Self {
        Arc::make_mut(&mut self.settings).events = Some(bus);
        self
    }
}

impl<S> Layer<S> for GenericCpuThrottleLayer {
    type Service = GenericCpuThrottle<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GenericCpuThrottle {
            inner,
            start: fast_path_below(&self.settings),
            signal: self.signal.clone(),
            settings: self.settings.clone(),
        }
    }
}

/// Delays requests to `inner` while the CPU is pressed; see
/// [`GenericCpuThrottleLayer`].
#[derive(Debug, Clone)]
pub struct GenericCpuThrottle<S> {
    inner: S,
    signal: Signal,
    start: PressureLevel,
    settings: Arc<Settings>,
}

impl<S> GenericCpuThrottle<S> {
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

impl<S, Req> Service<Req> for GenericCpuThrottle<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    Req: PriorityOf,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = GenericResponseFuture<S, Req, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let level = self.signal.level();
        if level < self.start {
            return GenericResponseFuture::called(self.inner.call(req));
        }
        self.call_pressed(level, req)
    }
}

impl<S> GenericCpuThrottle<S> {
    /// The call at or above the start level, kept out of line so that the
    /// fast path stays small enough to inline.
    #[cold]
    #[inline(never)]
    fn call_pressed<Req>(
        &mut self,
        level: PressureLevel,
        req: Req,
    ) -> GenericResponseFuture<S, Req, S::Future>
    where
        S: Service<Req> + Clone,
        Req: PriorityOf,
    {
        let s = &self.settings;
        let priority = req.priority();
        match s.decide(level, priority, req.deadline()) {
            Decision::Pass => {
                let guard = s.enter(priority);
                GenericResponseFuture::counted(self.inner.call(req), guard)
            }
            Decision::Delay(d, parked) => {
                let svc = self.inner.clone();
                let slow = Slow::sleeping(d, parked, svc, req, s, &self.signal, priority);
                GenericResponseFuture::slow(slow)
            }
            Decision::Shed(err) => GenericResponseFuture::slow(Slow::refused(err, req)),
        }
    }
}

pin_project! {
    /// The response future of [`GenericCpuThrottle`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it while it waits drops the request and the clone of the
    /// inner service: nothing is held, and the inner service never saw the
    /// request.
    pub struct GenericResponseFuture<S, Req, F> {
        #[pin]
        kind: Kind<S, Req, F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, Req, F> {
        Called {
            #[pin]
            fut: F,
            guard: Option<Entered>,
        },
        Slow {
            slow: Pin<Box<Slow<S, Req, F>>>,
        },
    }
}

impl<S, Req, F> GenericResponseFuture<S, Req, F> {
    #[inline]
    fn called(fut: F) -> Self {
        GenericResponseFuture {
            kind: Kind::Called { fut, guard: None },
        }
    }

    fn counted(fut: F, guard: Entered) -> Self {
        GenericResponseFuture {
            kind: Kind::Called {
                fut,
                guard: Some(guard),
            },
        }
    }

    fn slow(slow: Slow<S, Req, F>) -> Self {
        GenericResponseFuture {
            kind: Kind::Slow {
                slow: Box::pin(slow),
            },
        }
    }
}

impl<S, Req, F, T> Future for GenericResponseFuture<S, Req, F>
where
    S: Service<Req, Future = F>,
    S::Error: Into<BoxError>,
    F: Future<Output = Result<T, S::Error>>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { fut, guard } => {
                let out = ready!(fut.poll(cx));
                if let Some(g) = guard.take() {
                    g.complete();
                }
                Poll::Ready(out.map_err(Into::into))
            }
            KindProj::Slow { slow } => Poll::Ready(match ready!(slow.as_mut().poll_outcome(cx)) {
                Outcome::Inner(out) => out.map_err(Into::into),
                Outcome::Refused(err, _req) => Err(err.into()),
            }),
        }
    }
}

impl<S, Req, F> std::fmt::Debug for GenericResponseFuture<S, Req, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericResponseFuture")
            .finish_non_exhaustive()
    }
}
