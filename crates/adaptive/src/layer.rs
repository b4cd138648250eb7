//! [`AdaptiveLayer`]: the recording layer.

use tower_layer::Layer;

use crate::{Adaptive, AdaptiveLimit, HttpClassifier};

/// Records the latency and outcome of the requests through it for an
/// [`AdaptiveLimit`]; made by [`AdaptiveLimit::layer`]. Every request is
/// timed and counted once.
///
/// Put it **inside** the admission layer, so that it measures admitted
/// work: refusals are answered before they reach it and never count.
///
/// ```text
/// ServiceBuilder::new()
///     .layer(AdmissionLayer::new(limiter.clone()))  // the limit
///     .layer(adaptive.layer())                      // measures what got in
///     .service(app)
/// ```
///
/// Every service it makes — every clone, route and connection — feeds the
/// one driver it was made from. Its requests implement
/// [`PriorityOf`](tower_pressure_core::PriorityOf), as every request
/// through the admission layer does (the recording reads their deadline). The [`Classify`](crate::Classify)er decides
/// what a result means: [`HttpClassifier`] by default, for `http`
/// services; a closure `Fn(Result<&Response, &Error>) -> Outcome` for any
/// other.
///
/// - A request cancelled past **its own deadline** (the `Deadline` a
///   classifier set: the class objective, or what the client stated) or the
///   driver's [`cancel_objective`](crate::AdaptiveLimitBuilder::cancel_objective),
///   whichever is sooner, counts as a drop.
/// - With [`until_body_end`](Self::until_body_end), a successful `http`
///   response is timed to the **end of its body**, not its head, and a gRPC
///   status in the body's trailers is classified like one in the head
///   (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED` are drops).
///   Use it where the admission layer holds its permit to the body's end
///   ([`hold_until_body_end`]): the work of a stream is done while its body
///   is produced, and the limit should learn from that time, not from the
///   instant the head went out.
///
/// [`AdaptiveLayer::disabled`] records nothing and only wraps the body, for
/// stacks that need one service type with or without an adaptive limit.
///
/// [`hold_until_body_end`]: https://docs.rs/tower-pressure-admission/latest/tower_pressure_admission/struct.AdmissionLayer.html#method.hold_until_body_end
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_pressure_adaptive::{AdaptiveLimit, Gradient2};
/// use tower_pressure_admission::PriorityLimiter;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let limiter = PriorityLimiter::builder().limit(20).build()?;
/// let adaptive = AdaptiveLimit::new(Gradient2::default(), limiter.limit_handle());
/// let layer = adaptive.layer().until_body_end(true);
/// let svc = layer.layer(service_fn(|_req: Request<String>| async {
///     Ok::<_, Infallible>(Response::new(String::from("a long stream")))
/// }));
/// let res = svc.oneshot(Request::new(String::new())).await?;
/// assert_eq!(adaptive.in_flight(), 1, "the body is not sent yet");
/// drop(res);
/// assert_eq!(adaptive.in_flight(), 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AdaptiveLayer<C = HttpClassifier> {
    adaptive: Option<AdaptiveLimit>,
    classifier: C,
    body_end: bool,
}

impl AdaptiveLayer {
    /// Records for `adaptive`, timing to the response head, classifying
    /// with [`HttpClassifier`].
    #[must_use]
    pub fn new(adaptive: AdaptiveLimit) -> Self {
        AdaptiveLayer {
            adaptive: Some(adaptive),
            classifier: HttpClassifier,
            body_end: false,
        }
    }

    /// Records nothing; `http` responses' bodies are wrapped all the same.
    #[must_use]
    pub fn disabled() -> Self {
        AdaptiveLayer {
            adaptive: None,
            classifier: HttpClassifier,
            body_end: false,
        }
    }
}

impl<C> AdaptiveLayer<C> {
    /// Times a successful response to the end of its body (or until the
    /// body is dropped), and reads a gRPC status in its trailers. Default
    /// off: timed to the head. Only [`HttpClassifier`] sees bodies; with a
    /// closure a success is recorded at the head.
    #[must_use]
    pub fn until_body_end(mut self, on: bool) -> Self {
        self.body_end = on;
        self
    }

    /// Classifies results with `classifier` instead, e.g. a closure
    /// `Fn(Result<&Response, &Error>) -> Outcome` for non-HTTP services.
    #[must_use]
    pub fn classifier<D>(self, classifier: D) -> AdaptiveLayer<D> {
        AdaptiveLayer {
            adaptive: self.adaptive,
            classifier,
            body_end: self.body_end,
        }
    }
}

impl<S, C: Clone> Layer<S> for AdaptiveLayer<C> {
    type Service = Adaptive<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Adaptive::new(
            inner,
            self.adaptive.clone(),
            self.classifier.clone(),
            self.body_end,
        )
    }
}
