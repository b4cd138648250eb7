//! [`ClassifyLayer`] and its service [`Classify`].

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::Rules;
use crate::classifier::{Classifier, ClassifyLayerBuilder};

/// Puts a [`Priority`](tower_pressure_core::Priority) — and, when
/// configured, a [`Cohort`](tower_pressure_core::Cohort) and a
/// [`Deadline`](tower_pressure_core::Deadline) — into each request's
/// extensions, for the layers below it to read.
///
/// Rules are tried in order and the first match wins. A priority header from
/// the client is ignored unless the layer is built to [`Trust`](crate::Trust)
/// it, and then capped. Nothing a request carries can make it panic: a
/// malformed header falls back to the rules.
///
/// The service adds no future of its own: it classifies in `call` and returns
/// the inner service's future.
///
/// A priority, cohort or deadline already in the extensions is kept: server
/// code above may set them, and so does an outer `ClassifyLayer` — which
/// then decides alone, the inner one classifying nothing. Stack one. What
/// each input is trusted with is set out in the project's `SECURITY.md`.
///
/// ```
/// use tower::{ServiceExt, service_fn};
/// use tower_pressure_classify::{ClassifyLayer, Rules};
/// use tower_pressure_core::{Priority, PriorityOf};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let svc = tower::ServiceBuilder::new()
///     .layer(ClassifyLayer::new(Rules::voice_service()))
///     .service(service_fn(|req: http::Request<()>| async move {
///         Ok::<_, std::convert::Infallible>(req.priority())
///     }));
/// let req = http::Request::get("/health").body(()).unwrap();
/// assert_eq!(svc.oneshot(req).await.unwrap(), Priority::Critical);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ClassifyLayer {
    classifier: Arc<Classifier>,
}

impl ClassifyLayer {
    /// Classification by `rules`, trusting no client, reading `grpc-timeout`
    /// deadlines, with no cohorts.
    pub fn new(rules: Rules) -> Self {
        ClassifyLayerBuilder::new(rules)
            .build()
            .expect("the default classifier settings are valid")
    }

    /// A builder for trust, cohorts and deadlines.
    pub fn builder(rules: Rules) -> ClassifyLayerBuilder {
        ClassifyLayerBuilder::new(rules)
    }

    pub(crate) fn from_classifier(classifier: Classifier) -> Self {
        ClassifyLayer {
            classifier: Arc::new(classifier),
        }
    }

    /// Classifies `req` in place, as the service does.
    pub fn classify<B>(&self, req: &mut http::Request<B>) {
        self.classifier.apply(req);
    }
}

impl<S> Layer<S> for ClassifyLayer {
    type Service = Classify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Classify {
            inner,
            classifier: self.classifier.clone(),
        }
    }
}

/// Classifies requests, then calls `inner`; see [`ClassifyLayer`].
#[derive(Debug, Clone)]
pub struct Classify<S> {
    inner: S,
    classifier: Arc<Classifier>,
}

impl<S> Classify<S> {
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

impl<S, B> Service<http::Request<B>> for Classify<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    // Inlined: out of line, the request (a few hundred bytes) is copied
    // into this call and again into the inner one.
    #[inline]
    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        self.classifier.apply(&mut req);
        self.inner.call(req)
    }
}
