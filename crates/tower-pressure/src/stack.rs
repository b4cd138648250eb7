//! [`stack`]: the whole family as one layer, with defaults.

use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower::util::Either;
use tower_layer::Layer;

use crate::adaptive::AdaptiveLayer;
use crate::{
    AdaptiveLimit, AdmissionLayer, ClassifyLayer, CpuThrottleLayer, MemoryShedLayer,
    PriorityLimiter, Rules, Signal,
};

/// The layers of a [`PressureStack`], outermost last (tower's `Stack` nests
/// inner layers first).
type Layers = Stack<
    AdaptiveLayer,
    Stack<
        AdmissionLayer,
        Stack<
            Either<CpuThrottleLayer, Identity>,
            Stack<Either<MemoryShedLayer, Identity>, Stack<ClassifyLayer, Identity>>,
        >,
    >,
>;

/// The whole family as one layer, outermost first: classify, shed on
/// memory, throttle on CPU, admit through the priority queue, measure what
/// got in. Classification comes first so that every layer after it reads
/// the class; the cheap refusals come before the queue so that a refused or
/// delayed request never holds a permit; the recording comes inside the
/// queue so that it measures admitted work only. Memory, CPU and the
/// adaptive limit are left out unless given.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use tower_pressure::{ManualSource, PriorityLimiter, Rules, Signal};
///
/// # fn main() -> Result<(), tower_pressure::ConfigError> {
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// # let _guard = rt.enter();
/// let limiter = PriorityLimiter::builder().limit(32).max_queue(256).build()?;
/// let memory = Signal::spawn(ManualSource::new(0.2), Duration::from_millis(50));
/// let app: Router = Router::new()
///     .route("/voice/transcribe", get(|| async { "ok" }))
///     .layer(
///         tower_pressure::stack(limiter)
///             .rules(Rules::voice_service())
///             .memory(memory),
///     );
/// # Ok(()) }
/// ```
pub fn stack(limiter: PriorityLimiter) -> PressureStack {
    PressureStack {
        rules: Rules::default(),
        limiter,
        memory: None,
        cpu: None,
        adaptive: None,
        body_end: false,
    }
}

/// The layer made by [`stack`]. Like every layer of the family it shares
/// its state (the limiter, the signals) across every service it makes, so a
/// router's routes and clones obey one limit.
#[derive(Debug, Clone)]
#[must_use]
pub struct PressureStack {
    rules: Rules,
    limiter: PriorityLimiter,
    memory: Option<Signal>,
    cpu: Option<Signal>,
    adaptive: Option<AdaptiveLimit>,
    body_end: bool,
}

impl PressureStack {
    /// Holds the admission permit until the response body has been sent, not
    /// only its head, and times the adaptive limit's samples the same way:
    /// for streaming responses, whose work happens while the body is
    /// produced. Default off.
    pub fn hold_until_body_end(mut self, on: bool) -> Self {
        self.body_end = on;
        self
    }

    /// How requests are classified. Default: every request `Normal`.
    pub fn rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// Sheds by priority on this memory signal ([`MemoryShedLayer`]'s
    /// defaults).
    pub fn memory(mut self, signal: Signal) -> Self {
        self.memory = Some(signal);
        self
    }

    /// Delays low priorities on this CPU signal ([`CpuThrottleLayer`]'s
    /// defaults).
    pub fn cpu(mut self, signal: Signal) -> Self {
        self.cpu = Some(signal);
        self
    }

    /// Tunes the limiter's limit from the latency of the work that got in
    /// (recorded by its [`layer`](AdaptiveLimit::layer)). `limit`
    /// should drive the same limiter (built on its
    /// [`limit_handle`](PriorityLimiter::limit_handle)); it starts from the
    /// limit the limiter was built with.
    pub fn adaptive(mut self, limit: AdaptiveLimit) -> Self {
        self.adaptive = Some(limit);
        self
    }

    fn layers(&self) -> Layers {
        ServiceBuilder::new()
            .layer(ClassifyLayer::new(self.rules.clone()))
            .option_layer(self.memory.clone().map(MemoryShedLayer::new))
            .option_layer(self.cpu.clone().map(CpuThrottleLayer::new))
            .layer(AdmissionLayer::new(self.limiter.clone()).hold_until_body_end(self.body_end))
            .layer(
                self.adaptive
                    .as_ref()
                    .map_or_else(AdaptiveLayer::disabled, AdaptiveLimit::layer)
                    .until_body_end(self.body_end),
            )
            .into_inner()
    }
}

impl<S> Layer<S> for PressureStack
where
    Layers: Layer<S>,
{
    type Service = <Layers as Layer<S>>::Service;

    fn layer(&self, inner: S) -> Self::Service {
        self.layers().layer(inner)
    }
}
