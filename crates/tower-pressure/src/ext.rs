//! [`ServiceBuilderExt`]: the family's layers as `ServiceBuilder` methods.

use tower::ServiceBuilder;
#[cfg(any(
    feature = "classify",
    feature = "memory",
    feature = "cpu",
    feature = "admission",
    feature = "adaptive"
))]
use tower_layer::Stack;

/// The family's layers as [`ServiceBuilder`] methods, in the order they
/// belong (outermost first): [`classify`](Self::classify),
/// [`memory_shed`](Self::memory_shed), [`cpu_throttle`](Self::cpu_throttle),
/// [`admission`](Self::admission), [`adaptive`](Self::adaptive). Each is
/// there when its crate's feature is on.
///
/// ```
/// # #[cfg(feature = "full")] fn main() -> Result<(), tower_pressure::ConfigError> {
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use tower::ServiceBuilder;
/// use tower_pressure::{ManualSource, PriorityLimiter, Rules, ServiceBuilderExt, Signal};
///
/// let limiter = PriorityLimiter::builder().limit(32).build()?;
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// # let _guard = rt.enter();
/// let memory = Signal::spawn(ManualSource::new(0.3), Duration::from_millis(50));
/// let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(
///     ServiceBuilder::new()
///         .classify(Rules::voice_service())
///         .memory_shed(memory)
///         .admission(limiter),
/// );
/// # Ok(()) }
/// # #[cfg(not(feature = "full"))] fn main() {}
/// ```
pub trait ServiceBuilderExt<L>: Sized {
    /// Adds a [`ClassifyLayer`](crate::ClassifyLayer) with `rules`.
    #[cfg(feature = "classify")]
    fn classify(self, rules: crate::Rules) -> ServiceBuilder<Stack<crate::ClassifyLayer, L>>;

    /// Adds a [`MemoryShedLayer`](crate::MemoryShedLayer) reading `signal`.
    #[cfg(feature = "memory")]
    fn memory_shed(self, signal: crate::Signal)
    -> ServiceBuilder<Stack<crate::MemoryShedLayer, L>>;

    /// Adds a [`CpuThrottleLayer`](crate::CpuThrottleLayer) reading `signal`.
    #[cfg(feature = "cpu")]
    fn cpu_throttle(
        self,
        signal: crate::Signal,
    ) -> ServiceBuilder<Stack<crate::CpuThrottleLayer, L>>;

    /// Adds an [`AdmissionLayer`](crate::AdmissionLayer) on `limiter`: one
    /// limit shared by every clone of the service.
    #[cfg(feature = "admission")]
    fn admission(
        self,
        limiter: crate::PriorityLimiter,
    ) -> ServiceBuilder<Stack<crate::AdmissionLayer, L>>;

    /// Adds the recording layer of `limit`, which measures the work that
    /// got in and tunes the limiter's limit.
    #[cfg(feature = "adaptive")]
    fn adaptive(
        self,
        limit: &crate::AdaptiveLimit,
    ) -> ServiceBuilder<Stack<crate::AdaptiveLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    #[cfg(feature = "classify")]
    fn classify(self, rules: crate::Rules) -> ServiceBuilder<Stack<crate::ClassifyLayer, L>> {
        self.layer(crate::ClassifyLayer::new(rules))
    }

    #[cfg(feature = "memory")]
    fn memory_shed(
        self,
        signal: crate::Signal,
    ) -> ServiceBuilder<Stack<crate::MemoryShedLayer, L>> {
        self.layer(crate::MemoryShedLayer::new(signal))
    }

    #[cfg(feature = "cpu")]
    fn cpu_throttle(
        self,
        signal: crate::Signal,
    ) -> ServiceBuilder<Stack<crate::CpuThrottleLayer, L>> {
        self.layer(crate::CpuThrottleLayer::new(signal))
    }

    #[cfg(feature = "admission")]
    fn admission(
        self,
        limiter: crate::PriorityLimiter,
    ) -> ServiceBuilder<Stack<crate::AdmissionLayer, L>> {
        self.layer(crate::AdmissionLayer::new(limiter))
    }

    #[cfg(feature = "adaptive")]
    fn adaptive(
        self,
        limit: &crate::AdaptiveLimit,
    ) -> ServiceBuilder<Stack<crate::AdaptiveLayer, L>> {
        self.layer(limit.layer())
    }
}
