//! [`AdaptiveLayer`]: the recording layer.

use tower_layer::Layer;

use crate::{Adaptive, AdaptiveLimit, HttpClassifier};

/// Records the latency and outcome of the requests through it for an
/// [`AdaptiveLimit`]; made by [`AdaptiveLimit::layer`]. Every request is
/// timed and counted once. A request cancelled past the
/// [cancel objective](crate::AdaptiveLimitBuilder::cancel_objective) counts
/// as a drop. For HTTP services prefer [`AdaptiveLimit::http_layer`], which
/// times a response to the end of its body.
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
/// one driver it was made from. The [`Classify`](crate::Classify)er decides
/// what a result means; the default is [`HttpClassifier`].
#[derive(Debug, Clone)]
pub struct AdaptiveLayer<C = HttpClassifier> {
    adaptive: AdaptiveLimit,
    classifier: C,
}

impl AdaptiveLayer {
    /// Records for `adaptive`, classifying with [`HttpClassifier`].
    #[must_use]
    pub fn new(adaptive: AdaptiveLimit) -> Self {
        AdaptiveLayer {
            adaptive,
            classifier: HttpClassifier,
        }
    }
}

impl<C> AdaptiveLayer<C> {
    /// Classifies results with `classifier` instead, e.g. a closure
    /// `Fn(Result<&Response, &Error>) -> Outcome` for non-HTTP services.
    #[must_use]
    pub fn classifier<D>(self, classifier: D) -> AdaptiveLayer<D> {
        AdaptiveLayer {
            adaptive: self.adaptive,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for AdaptiveLayer<C> {
    type Service = Adaptive<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Adaptive::new(inner, self.adaptive.clone(), self.classifier.clone())
    }
}
