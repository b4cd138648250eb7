//! [`MemoryShedLayer`]: memory shedding for any tower service.

use std::sync::Arc;

use tower_layer::Layer;
use tower_pressure_core::http::Rejection;
use tower_pressure_core::{
    Cohort, EventBus, Overloaded, PressureLevel, Priority, PriorityOf, Reason, Signal,
};

use crate::{MemoryPressure, MemoryShed, MemoryShedConfig};

/// Refuses the less important requests to a service while memory is
/// pressed.
///
/// Per [`PressureLevel`] of the memory [`Signal`], the lowest priority still
/// admitted (defaults: `None`/`Low` → all; `Medium` → `Low` and up; `High` →
/// `Normal` and up; `Critical` → `Critical` only), optionally only part of
/// that boundary class by cohort; see [`MemoryShedConfig`]. The priority and
/// cohort come from the request's extensions ([`PriorityOf`]), where a
/// classifier put them.
///
/// The decision reads one atomic (the signal's level) and, when the level
/// refuses anything, the request's priority: no lock, no allocation, no
/// waiting. `poll_ready` forwards the inner service's readiness.
///
/// How a refusal is delivered is the layer's [`Refusal`] `R`. By default
/// ([`Rejection`]) a refused HTTP request gets a response, not an error, so
/// the layer sits under `axum::Router::layer` with no `HandleErrorLayer`:
/// `503` with `Retry-After`, or a trailers-only gRPC reply for a gRPC
/// request, with the [`Overloaded`] in the response extensions and an empty
/// body (the inner service's response body must implement `Default`, as
/// axum's, tonic's and `String`/`Full` bodies do). With
/// [`refusal(AsError)`](Self::refusal) it serves any request type that
/// implements [`PriorityOf`], and a refusal is a [`BoxError`] holding the
/// [`Overloaded`].
///
/// Every service made by the layer shares its settings; the signal is shared
/// by all layers given clones of it. The layer starts no task: the signal's
/// sampler is started by whoever builds the signal
/// ([`MemorySignal::spawn`](crate::MemorySignal::spawn)).
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_pressure_memory::{MemoryShedLayer, MemorySource, MemorySignal};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let memory = MemorySignal::spawn(MemorySource::auto());
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(MemoryShedLayer::new(memory));
/// # }
/// ```
///
/// Any service, a refusal as an error:
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_pressure_core::{AsError, Overloaded, PressureLevel, Priority, PriorityOf, Signal};
/// use tower_pressure_memory::{MemoryShedLayer, MemorySignal};
///
/// struct Job(Priority);
/// impl PriorityOf for Job {
///     fn priority(&self) -> Priority { self.0 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let memory = Signal::new(MemorySignal::config().build()?);
/// let svc = ServiceBuilder::new()
///     .layer(MemoryShedLayer::new(memory.clone()).refusal(AsError))
///     .service(service_fn(|job: Job| async move { Ok::<_, tower::BoxError>(job.0) }));
///
/// memory.set_override(Some(PressureLevel::High));
/// assert_eq!(svc.clone().oneshot(Job(Priority::High)).await?, Priority::High);
/// let err = svc.oneshot(Job(Priority::Low)).await.unwrap_err();
/// assert!(err.is::<Overloaded>());
/// # Ok(()) }
/// ```
///
/// [`Refusal`]: tower_pressure_core::Refusal
/// [`AsError`]: tower_pressure_core::AsError
/// [`BoxError`]: tower_pressure_core::BoxError
#[derive(Debug, Clone)]
pub struct MemoryShedLayer<R = Rejection> {
    shared: Arc<Shared>,
    refusal: R,
}

impl MemoryShedLayer {
    /// Sheds by `signal`'s level with the default table.
    #[must_use]
    pub fn new(signal: Signal) -> Self {
        MemoryShedLayer::with_config(signal, MemoryShedConfig::default())
    }

    /// Sheds by `signal`'s level with `config`'s table.
    #[must_use]
    pub fn with_config(signal: Signal, config: MemoryShedConfig) -> Self {
        MemoryShedLayer {
            shared: Arc::new(Shared::new(signal, config)),
            refusal: Rejection::default(),
        }
    }
}

impl<R> MemoryShedLayer<R> {
    /// How refusals are delivered: a [`Rejection`] (the default, HTTP and
    /// gRPC responses) or [`AsError`](tower_pressure_core::AsError).
    #[must_use]
    pub fn refusal<R2>(self, refusal: R2) -> MemoryShedLayer<R2> {
        MemoryShedLayer {
            shared: self.shared,
            refusal,
        }
    }

    /// Publishes an [`Event::Shed`](tower_pressure_core::Event::Shed) on
    /// `bus` for every refusal.
    #[must_use]
    pub fn events(mut self, bus: EventBus) -> Self {
        Arc::make_mut(&mut self.shared).events = Some(bus);
        self
    }

    /// The signal the layer reads.
    #[must_use]
    pub fn signal(&self) -> &Signal {
        &self.shared.signal
    }

    /// The table in force.
    #[must_use]
    pub fn config(&self) -> &MemoryShedConfig {
        &self.shared.config
    }

    /// A handle for handlers that degrade instead of refusing
    /// ([`MemoryPressure::is_under_pressure`]).
    #[must_use]
    pub fn pressure(&self) -> MemoryPressure {
        MemoryPressure::new(self.shared.signal.clone())
    }
}

impl<S, R: Clone> Layer<S> for MemoryShedLayer<R> {
    type Service = MemoryShed<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        MemoryShed::new(inner, self.shared.clone(), self.refusal.clone())
    }
}

/// What every service of a layer shares: settings only, never per-request
/// state.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) signal: Signal,
    pub(crate) config: MemoryShedConfig,
    pub(crate) events: Option<EventBus>,
}

impl Shared {
    pub(crate) fn new(signal: Signal, config: MemoryShedConfig) -> Shared {
        Shared {
            signal,
            config,
            events: None,
        }
    }

    /// Admits or refuses `req` at the signal's current level.
    #[inline]
    pub(crate) fn check<R: PriorityOf>(&self, req: &R) -> Result<(), Overloaded> {
        let level = self.signal.level();
        let cutoff = self.config.cutoff(level);
        if cutoff == 0 {
            return Ok(());
        }
        let priority = req.priority();
        // A boundary on a class edge needs no cohort (one extension lookup
        // fewer for HTTP requests).
        let rank = if cutoff.is_multiple_of(Cohort::COUNT as u16) {
            Cohort::default().admission_level(priority)
        } else {
            req.cohort().admission_level(priority)
        };
        if rank >= cutoff {
            Ok(())
        } else {
            Err(self.refuse(level, priority))
        }
    }

    #[cold]
    #[inline(never)]
    fn refuse(&self, level: PressureLevel, priority: Priority) -> Overloaded {
        let reason = Reason::Memory(level);
        if let Some(bus) = &self.events {
            bus.emit(tower_pressure_core::Event::Shed {
                layer: tower_pressure_core::metrics::LAYER_MEMORY,
                priority,
                reason,
            });
        }
        #[cfg(feature = "metrics")]
        {
            use tower_pressure_core::metrics as m;
            metrics::counter!(
                m::SHED_TOTAL,
                m::LABEL_LAYER => m::LAYER_MEMORY,
                m::LABEL_PRIORITY => priority.as_str(),
                m::LABEL_REASON => reason.as_label(),
            )
            .increment(1);
        }
        Overloaded::new(reason, priority).with_retry_after(self.config.retry_after())
    }
}
