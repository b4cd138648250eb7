//! [`ThrottleLayer`]: client-side adaptive throttling for outgoing calls.

use std::sync::Arc;

use tower_layer::Layer;
use tower_pressure_core::Priority;
use tower_pressure_core::http::Rejection;

use crate::throttler::Throttler;
use crate::{HttpClassifier, Throttle, ThrottleConfig};

/// Refuses outgoing calls locally, at random, in proportion to how many
/// calls the service has been turning away: adaptive throttling, from the
/// Google SRE book ("Handling Overload", chapter 21).
///
/// For each [`Priority`] the layer counts, over the last two minutes, the
/// calls made (`requests`) and those the service accepted (`accepts`), and
/// refuses a new call of that priority with probability
/// `max(0, (requests − K × accepts) / (requests + 1))`, `K` = 2 by default
/// (see [`ThrottleConfig`]). While the service accepts at least half of what
/// it gets, nothing is refused; when it refuses everything, nearly every
/// call is refused here, at no cost to it, and a few still go through to
/// find out when it recovers. Priorities have separate statistics: a service
/// that sheds `Bulk` does not make the client throttle `High`. A request
/// without a priority counts as `Normal` (see
/// [`PriorityOf`](tower_pressure_core::PriorityOf)); `Critical` calls are
/// never refused here unless
/// [`throttle_critical`](crate::ThrottleConfigBuilder::throttle_critical)
/// says so.
///
/// A call refused here counts among `requests` too: that is the model's
/// memory of the pressure. Without it, a client that refused everything
/// would stop learning, and its statistics would stay frozen until they
/// left the window; with it, the refusal probability keeps rising while the
/// service refuses, and a few calls still probe it. A sent call is counted
/// when its answer comes, as the [`Classify`](crate::Classify) `C` reads it
/// ([`HttpClassifier`] by default): `503`, `429` and gRPC
/// `RESOURCE_EXHAUSTED` / `UNAVAILABLE` are refusals, any other response an
/// acceptance, an [`Overloaded`](tower_pressure_core::Overloaded) error a
/// refusal, and any other error is not counted.
///
/// How a local refusal is delivered is the layer's
/// [`Refusal`](tower_pressure_core::Refusal) `R`, as with the server layers
/// of the family: by default ([`Rejection`]) a synthesized response — a
/// trailers-only gRPC reply for gRPC requests, else `503` with
/// `Retry-After` — holding an `Overloaded` with
/// [`Reason::ClientThrottled`](tower_pressure_core::Reason::ClientThrottled)
/// in its extensions; with [`refusal(AsError)`](Self::refusal), a `BoxError`
/// holding that `Overloaded`, for any request type. Either way the refusal is
/// immediate and the inner service never sees the call.
///
/// The statistics are created with the layer value and shared by every
/// service it makes: use one layer per service called (per backend), so
/// that one service's refusals do not throttle calls to another.
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_pressure_client::{ThrottleLayer, Verdict};
/// use tower_pressure_core::{AsError, Priority, PriorityOf};
///
/// struct Job(Priority);
/// impl PriorityOf for Job {
///     fn priority(&self) -> Priority { self.0 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let throttle = ThrottleLayer::new()
///     .classifier(|r: Result<&bool, &tower::BoxError>| match r {
///         Ok(true) => Verdict::Accepted,
///         Ok(false) => Verdict::Rejected,
///         Err(_) => Verdict::Ignored,
///     })
///     .refusal(AsError);
/// let backend = ServiceBuilder::new()
///     .layer(throttle.clone())
///     .service(service_fn(|_: Job| async { Ok::<_, tower::BoxError>(false) }));
///
/// // The backend refuses every call: soon the client refuses most of them.
/// for _ in 0..100 {
///     let _ = backend.clone().oneshot(Job(Priority::Low)).await;
/// }
/// assert!(throttle.refusal_probability(Priority::Low) > 0.9);
/// assert_eq!(throttle.refusal_probability(Priority::High), 0.0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ThrottleLayer<C = HttpClassifier, R = Rejection> {
    throttler: Arc<Throttler>,
    classifier: C,
    refusal: R,
}

impl ThrottleLayer {
    /// A throttle with the default configuration: `K` = 2, a window of two
    /// minutes in 1 s buckets, `Critical` never refused.
    #[must_use]
    pub fn new() -> Self {
        ThrottleLayer::with_config(ThrottleConfig::default())
    }

    /// A throttle with `config`.
    #[must_use]
    pub fn with_config(config: ThrottleConfig) -> Self {
        ThrottleLayer {
            throttler: Arc::new(Throttler::new(config)),
            classifier: HttpClassifier,
            refusal: Rejection::default(),
        }
    }
}

impl Default for ThrottleLayer {
    fn default() -> Self {
        ThrottleLayer::new()
    }
}

impl<C, R> ThrottleLayer<C, R> {
    /// How an answer is judged accepted or not: an [`HttpClassifier`] (the
    /// default) or any [`Classify`](crate::Classify), such as a closure.
    #[must_use]
    pub fn classifier<C2>(self, classifier: C2) -> ThrottleLayer<C2, R> {
        ThrottleLayer {
            throttler: self.throttler,
            classifier,
            refusal: self.refusal,
        }
    }

    /// How local refusals are delivered: a [`Rejection`] (the default, HTTP
    /// and gRPC responses) or [`AsError`](tower_pressure_core::AsError).
    #[must_use]
    pub fn refusal<R2>(self, refusal: R2) -> ThrottleLayer<C, R2> {
        ThrottleLayer {
            throttler: self.throttler,
            classifier: self.classifier,
            refusal,
        }
    }

    /// The probability that a call of `priority` made now is refused
    /// locally, from the statistics of the window: 0 for a priority that is
    /// never refused.
    #[must_use]
    pub fn refusal_probability(&self, priority: Priority) -> f64 {
        self.throttler.refusal_probability(priority)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ThrottleConfig {
        self.throttler.config()
    }
}

impl<S, C: Clone, R: Clone> Layer<S> for ThrottleLayer<C, R> {
    type Service = Throttle<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttle::new(
            inner,
            self.throttler.clone(),
            self.classifier.clone(),
            self.refusal.clone(),
        )
    }
}
