//! [`CpuThrottleLayer`]: priority-scaled delays for HTTP services.

use std::sync::Arc;

use tower_layer::Layer;
use tower_pressure_core::Signal;
use tower_pressure_core::http::Rejection;

use crate::{CpuThrottle, CpuThrottleConfig};

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
/// is on. A refusal is a response, not an error — a trailers-only gRPC reply
/// for gRPC requests, else `503` with `Retry-After`, with the `Overloaded` in
/// the response extensions — so the layer sits under `axum::Router::layer`
/// with no `HandleErrorLayer`. The response body type must implement
/// `Default` (axum's and tonic's do): a refusal has an empty body.
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
#[derive(Debug, Clone)]
pub struct CpuThrottleLayer {
    signal: Signal,
    config: Arc<CpuThrottleConfig>,
    rejection: Rejection,
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
            config: Arc::new(config),
            rejection: Rejection::default(),
        }
    }

    /// The HTTP status and gRPC code of refusals.
    #[must_use]
    pub fn rejection(mut self, rejection: Rejection) -> Self {
        self.rejection = rejection;
        self
    }

    /// The signal read.
    #[must_use]
    pub fn signal(&self) -> &Signal {
        &self.signal
    }

    /// The delays.
    #[must_use]
    pub fn config(&self) -> &CpuThrottleConfig {
        &self.config
    }
}

impl<S> Layer<S> for CpuThrottleLayer {
    type Service = CpuThrottle<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CpuThrottle::new(inner, self.clone())
    }
}

/// What every service keeps of the layer.
#[derive(Debug, Clone)]
pub(crate) struct Parts {
    pub(crate) signal: Signal,
    pub(crate) config: Arc<CpuThrottleConfig>,
    pub(crate) rejection: Rejection,
}

impl From<CpuThrottleLayer> for Parts {
    fn from(l: CpuThrottleLayer) -> Self {
        Parts {
            signal: l.signal,
            config: l.config,
            rejection: l.rejection,
        }
    }
}
