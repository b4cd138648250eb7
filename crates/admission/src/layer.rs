//! [`AdmissionLayer`]: admission for HTTP services.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response};
use tower_layer::Layer;
use tower_pressure_core::Overloaded;
use tower_pressure_core::http::{Rejection, is_grpc};

use crate::{Admission, PriorityLimiter};

/// Builds the response to a refused request from the error and the request's
/// headers. The body is plain bytes.
pub(crate) type RejectFn = dyn Fn(&Overloaded, &HeaderMap) -> Response<Bytes> + Send + Sync;

/// Puts a [`PriorityLimiter`] in front of an HTTP service.
///
/// Every service made by this layer — every clone, every route, every
/// connection — shares the one limiter the layer was built with, so
/// `Router::layer` and tonic's `Server::layer` enforce one global limit.
///
/// `poll_ready` reserves nothing: it forwards the inner service's readiness
/// (hyper polls readiness on idle connections). The wait for a permit
/// happens in the response future.
///
/// A refused request gets a response, not an error, so the layer sits under
/// `axum::Router::layer` with no `HandleErrorLayer`: a gRPC request (content
/// type `application/grpc…`) a trailers-only reply with `RESOURCE_EXHAUSTED`
/// and `grpc-retry-pushback-ms`, any other request `503` with `Retry-After`
/// and a short text body. The [`Overloaded`] is in the response extensions.
/// Both forms are configurable ([`rejection`](Self::rejection)), and the
/// whole response is pluggable ([`on_reject`](Self::on_reject)).
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_pressure_admission::{AdmissionLayer, PriorityLimiter};
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let limiter = PriorityLimiter::builder().limit(64).max_queue(256).build()?;
/// let app: Router = Router::new()
///     .route("/voice/transcribe", get(|| async { "text" }))
///     .layer(AdmissionLayer::new(limiter));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AdmissionLayer {
    limiter: PriorityLimiter,
    hold_body: bool,
    reject: Arc<RejectFn>,
}

impl AdmissionLayer {
    /// Admission through `limiter`, with the default rejection responses.
    ///
    /// The permit is held while the inner service works and goes back with
    /// the response head: at the latest when the response future is dropped,
    /// which servers do as soon as it completes (the same contract as tower's
    /// `ConcurrencyLimit`).
    #[must_use]
    pub fn new(limiter: PriorityLimiter) -> Self {
        AdmissionLayer {
            limiter,
            hold_body: false,
            reject: rejection_fn(Rejection::default()),
        }
    }

    /// Holds the permit until the response body has been sent (or dropped),
    /// not only until its head: for streaming responses, whose work happens
    /// while the body is produced.
    #[must_use]
    pub fn hold_until_body_end(mut self, hold: bool) -> Self {
        self.hold_body = hold;
        self
    }

    /// The HTTP status and gRPC code of the default rejection responses.
    #[must_use]
    pub fn rejection(mut self, rejection: Rejection) -> Self {
        self.reject = rejection_fn(rejection);
        self
    }

    /// Builds rejection responses with `f`, given the error and the refused
    /// request's headers.
    #[must_use]
    pub fn on_reject<F>(mut self, f: F) -> Self
    where
        F: Fn(&Overloaded, &HeaderMap) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.reject = Arc::new(f);
        self
    }

    /// The limiter.
    #[must_use]
    pub fn limiter(&self) -> &PriorityLimiter {
        &self.limiter
    }
}

fn rejection_fn(rejection: Rejection) -> Arc<RejectFn> {
    Arc::new(move |err: &Overloaded, headers: &HeaderMap| {
        let res: Response<Bytes> = rejection.respond(err, headers);
        if is_grpc(headers) {
            res
        } else {
            res.map(|_| Bytes::from(rejection.message(err).into_owned()))
        }
    })
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission::new(inner, self.clone())
    }
}

impl fmt::Debug for AdmissionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmissionLayer")
            .field("limiter", &self.limiter)
            .field("hold_body", &self.hold_body)
            .finish_non_exhaustive()
    }
}

/// The parts of the layer every service keeps.
pub(crate) struct Parts {
    pub(crate) limiter: PriorityLimiter,
    pub(crate) hold_body: bool,
    pub(crate) reject: Arc<RejectFn>,
}

impl From<AdmissionLayer> for Parts {
    fn from(l: AdmissionLayer) -> Self {
        Parts {
            limiter: l.limiter,
            hold_body: l.hold_body,
            reject: l.reject,
        }
    }
}
