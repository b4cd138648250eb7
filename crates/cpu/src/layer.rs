//! [`CpuThrottleLayer`]: priority-scaled delays for any tower service.

use std::sync::Arc;

use tower_layer::Layer;
use tower_pressure_core::http::Rejection;
use tower_pressure_core::{EventBus, Signal};

use crate::gate::CapacityGate;
use crate::throttle::Settings;
use crate::{CapacityGateConfig, CpuThrottle, CpuThrottleConfig, GateSnapshot};

/// Delays requests while the CPU is pressed: the longer, the higher the
/// level and the lower the request's priority.
///
/// Above `start` a request waits `base_delay(level) × multiplier(priority)`
/// (capped) before the inner service sees it; see [`CpuThrottleConfig`]. The
/// level is read from a CPU [`Signal`] (one atomic load per request); start
/// one with [`CpuSignal::spawn`](crate::CpuSignal::spawn). Below `start` a
/// request goes straight through: no timer, no allocation.
///
/// A request whose [`Deadline`](tower_pressure_core::Deadline) would pass
/// during the delay is refused at once with
/// [`Overloaded`](tower_pressure_core::Overloaded) (`Reason::Cpu(level)`), as
/// is `Bulk` at `emergency` when
/// [`shed_bulk_at_emergency`](crate::CpuThrottleConfigBuilder::shed_bulk_at_emergency)
/// is on. How a refusal is delivered is the layer's
/// [`Refusal`](tower_pressure_core::Refusal) `R`: by default
/// ([`Rejection`]) a response, not an error — a trailers-only gRPC reply for
/// gRPC requests, else `503` with `Retry-After`, with the `Overloaded` in the
/// response extensions — so the layer sits under `axum::Router::layer` with
/// no `HandleErrorLayer` (the response body type must implement `Default`,
/// as axum's and tonic's do: a refusal has an empty body). With
/// [`refusal(AsError)`](Self::refusal) it serves any request type that
/// implements [`PriorityOf`](tower_pressure_core::PriorityOf), and a refusal
/// is a `BoxError` holding the `Overloaded`.
///
/// The inner service is called only after the delay, on a clone driven to
/// readiness then: a request that waits holds none of the inner service's
/// capacity, and a request dropped while it waits never reaches it.
///
/// Every service made by this layer shares the one signal.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_pressure_cpu::{CpuSignal, CpuSource, CpuThrottleLayer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cpu = CpuSignal::spawn(CpuSource::auto());
/// let app: Router = Router::new()
///     .route("/report", get(|| async { "report" }))
///     .layer(CpuThrottleLayer::new(cpu));
/// # }
/// ```
///
/// Any service, a refusal as an error:
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_pressure_core::{AsError, ManualSource, Priority, PriorityOf};
/// use tower_pressure_cpu::{CpuSignal, CpuThrottleLayer};
///
/// struct Job(Priority);
/// impl PriorityOf for Job {
///     fn priority(&self) -> Priority { self.0 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let cpu = CpuSignal::spawn(ManualSource::new(0.1));
/// let svc = ServiceBuilder::new()
///     .layer(CpuThrottleLayer::new(cpu).refusal(AsError))
///     .service(service_fn(|job: Job| async move { Ok::<_, tower::BoxError>(job.0) }));
/// assert_eq!(svc.oneshot(Job(Priority::Low)).await?, Priority::Low);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CpuThrottleLayer<R = Rejection> {
    signal: Signal,
    settings: Arc<Settings>,
    refusal: R,
}

impl CpuThrottleLayer {
    /// Throttles on `signal` with the default delays.
    #[must_use]
    pub fn new(signal: Signal) -> Self {
        CpuThrottleLayer::with_config(signal, CpuThrottleConfig::default())
    }

    /// Throttles on `signal` with `config`.
    #[must_use]
    pub fn with_config(signal: Signal, config: CpuThrottleConfig) -> Self {
        CpuThrottleLayer {
            signal,
            settings: Arc::new(Settings::new(config)),
            refusal: Rejection::default(),
        }
    }
}

impl<R> CpuThrottleLayer<R> {
    /// How refusals are delivered: a [`Rejection`] (the default, HTTP and
    /// gRPC responses) or [`AsError`](tower_pressure_core::AsError).
    #[must_use]
    pub fn refusal<R2>(self, refusal: R2) -> CpuThrottleLayer<R2> {
        CpuThrottleLayer {
            signal: self.signal,
            settings: self.settings,
            refusal,
        }
    }

    /// Adds the capacity gate (Sentinel/Kratos "BBR"): while the CPU is at
    /// or above `start`, and for a cool-off after the gate's last refusal, a
    /// request (below `Critical`) is refused at once when more requests are
    /// in the inner service than `max_throughput × min_latency` measured
    /// over the window; see [`CapacityGateConfig`]. Off by default.
    ///
    /// With the gate on there is no fast path: every request is counted in
    /// and out of the inner service (atomic adds, two clock reads, and its
    /// future boxed), about 100 ns more per request than without it. The gate's state is created here, once: every service
    /// made by this layer shares it.
    #[must_use]
    pub fn capacity_gate(mut self, config: CapacityGateConfig) -> Self {
        Arc::make_mut(&mut self.settings).gate = Some(Arc::new(CapacityGate::new(config)));
        self
    }

    /// Publishes an [`Event::Shed`](tower_pressure_core::Event::Shed) on
    /// `bus` for every refusal.
    #[must_use]
    pub fn events(mut self, bus: EventBus) -> Self {
        Arc::make_mut(&mut self.settings).events = Some(bus);
        self
    }

    /// The signal read.
    #[must_use]
    pub fn signal(&self) -> &Signal {
        &self.signal
    }

    /// What the capacity gate sees now, if it is on.
    #[must_use]
    pub fn capacity(&self) -> Option<GateSnapshot> {
        self.settings.gate.as_ref().map(|g| g.snapshot())
    }

    /// The delays.
    #[must_use]
    pub fn config(&self) -> &CpuThrottleConfig {
        &self.settings.config
    }
}

impl<S, R: Clone> Layer<S> for CpuThrottleLayer<R> {
    type Service = CpuThrottle<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        CpuThrottle::new(
            inner,
            self.signal.clone(),
            self.settings.clone(),
            self.refusal.clone(),
        )
    }
}
