//! [`AdmissionLayer`]: admission for any tower service, and how it answers
//! ([`Delivery`]: [`HttpRefusal`] or [`AsError`]).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response};
use tower_layer::Layer;
use tower_pressure_core::http::{Rejection, is_grpc};
use tower_pressure_core::{AsError, BoxError, Overloaded};

use crate::{Admission, Permit, PriorityLimiter, ResponseBody};

/// Builds the response to a refused request from the error and the request's
/// headers. The body is plain bytes.
pub(crate) type RejectFn = dyn Fn(&Overloaded, &HeaderMap) -> Response<Bytes> + Send + Sync;

/// Puts a [`PriorityLimiter`] in front of a service.
///
/// Every service made by this layer — every clone, every route, every
/// connection — shares the one limiter the layer was built with, so
/// `Router::layer` and tonic's `Server::layer` enforce one global limit.
///
/// `poll_ready` reserves nothing: it forwards the inner service's readiness
/// (hyper polls readiness on idle connections). The wait for a permit
/// happens in the response future.
///
/// How it answers is its [`Delivery`] `D`. By default ([`HttpRefusal`]) a
/// refused HTTP request gets a response, not an error, so the layer sits
/// under `axum::Router::layer` with no `HandleErrorLayer`: a gRPC request
/// (content type `application/grpc…`) a trailers-only reply with
/// `RESOURCE_EXHAUSTED` and `grpc-retry-pushback-ms`, any other request
/// `503` with `Retry-After` and a short text body. The [`Overloaded`] is in
/// the response extensions. Both forms are configurable
/// ([`rejection`](Self::rejection)), and the whole response is pluggable
/// ([`on_reject`](Self::on_reject)). With [`refusal(AsError)`](Self::refusal)
/// it serves any request type that implements
/// [`PriorityOf`](tower_pressure_core::PriorityOf), and a refusal is a
/// [`BoxError`] holding the `Overloaded`.
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
///
/// Any service, a refusal as an error:
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_pressure_admission::{AdmissionLayer, PriorityLimiter};
/// use tower_pressure_core::{AsError, Priority, PriorityOf};
///
/// struct Job(Priority);
/// impl PriorityOf for Job {
///     fn priority(&self) -> Priority { self.0 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let limiter = PriorityLimiter::builder().limit(4).build()?;
/// let svc = ServiceBuilder::new()
///     .layer(AdmissionLayer::new(limiter).refusal(AsError))
///     .service(service_fn(|job: Job| async move { Ok::<_, tower::BoxError>(job.0) }));
/// assert_eq!(svc.oneshot(Job(Priority::High)).await?, Priority::High);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AdmissionLayer<D = HttpRefusal> {
    limiter: PriorityLimiter,
    delivery: D,
}

impl AdmissionLayer {
    /// Admission through `limiter`, with the default rejection responses.
    ///
    /// The permit is held while the inner service works and goes back with
    /// the response head (the same contract as tower's `ConcurrencyLimit`),
    /// or with the body's end ([`hold_until_body_end`](Self::hold_until_body_end)).
    #[must_use]
    pub fn new(limiter: PriorityLimiter) -> Self {
        AdmissionLayer {
            limiter,
            delivery: HttpRefusal {
                hold_body: false,
                reject: rejection_fn(Rejection::default()),
            },
        }
    }

    /// Holds the permit until the response body has been sent (or dropped),
    /// not only until its head: for streaming responses, whose work happens
    /// while the body is produced. Default off.
    #[must_use]
    pub fn hold_until_body_end(mut self, hold: bool) -> Self {
        self.delivery.hold_body = hold;
        self
    }

    /// The HTTP status and gRPC code of the default rejection responses.
    #[must_use]
    pub fn rejection(mut self, rejection: Rejection) -> Self {
        self.delivery.reject = rejection_fn(rejection);
        self
    }

    /// Builds rejection responses with `f`, given the error and the refused
    /// request's headers.
    #[must_use]
    pub fn on_reject<F>(mut self, f: F) -> Self
    where
        F: Fn(&Overloaded, &HeaderMap) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.delivery.reject = Arc::new(f);
        self
    }
}

impl<D> AdmissionLayer<D> {
    /// How answers are delivered: [`HttpRefusal`] (the default) or
    /// [`AsError`].
    #[must_use]
    pub fn refusal<D2>(self, delivery: D2) -> AdmissionLayer<D2> {
        AdmissionLayer {
            limiter: self.limiter,
            delivery,
        }
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

impl<S, D: Clone> Layer<S> for AdmissionLayer<D> {
    type Service = Admission<S, D>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission::new(inner, self.limiter.clone(), self.delivery.clone())
    }
}

/// How [`Admission`] answers: a refused request, and an admitted one with
/// its permit. Implemented by [`HttpRefusal`] (HTTP responses) and
/// [`AsError`] (errors, any request type).
pub trait Delivery<Req, Res, E> {
    /// The layered service's response.
    type Response;
    /// The layered service's error.
    type Error: From<E>;

    /// The answer to `req`, refused for `err`.
    ///
    /// # Errors
    ///
    /// Whatever the delivery makes of a refusal: [`AsError`] always fails.
    fn refuse(&self, err: Overloaded, req: &Req) -> Result<Self::Response, Self::Error>;

    /// The inner service's response to an admitted request; `permit` goes
    /// back when dropped, here or with what it is moved into.
    fn answer(&self, res: Res, permit: Option<Permit>) -> Self::Response;
}

/// [`AdmissionLayer`]'s default [`Delivery`], for HTTP services: a refusal
/// is a response (see [`AdmissionLayer::rejection`] and
/// [`AdmissionLayer::on_reject`]), and the body of an admitted response is a
/// [`ResponseBody`] that holds the permit to its end when
/// [`AdmissionLayer::hold_until_body_end`] is on.
#[derive(Clone)]
pub struct HttpRefusal {
    hold_body: bool,
    reject: Arc<RejectFn>,
}

impl fmt::Debug for HttpRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRefusal")
            .field("hold_body", &self.hold_body)
            .finish_non_exhaustive()
    }
}

impl<ReqB, ResB, E> Delivery<http::Request<ReqB>, Response<ResB>, E> for HttpRefusal {
    type Response = Response<ResponseBody<ResB>>;
    type Error = E;

    fn refuse(&self, err: Overloaded, req: &http::Request<ReqB>) -> Result<Self::Response, E> {
        Ok((self.reject)(&err, req.headers()).map(ResponseBody::rejected))
    }

    #[inline]
    fn answer(&self, res: Response<ResB>, permit: Option<Permit>) -> Self::Response {
        // Without `hold_body` the permit goes back with the head, here.
        let permit = permit.filter(|_| self.hold_body);
        res.map(|body| ResponseBody::inner(body, permit))
    }
}

impl<Req, Res, E> Delivery<Req, Res, E> for AsError
where
    BoxError: From<E>,
{
    type Response = Res;
    type Error = BoxError;

    fn refuse(&self, err: Overloaded, _req: &Req) -> Result<Res, BoxError> {
        Err(Box::new(err))
    }

    #[inline]
    fn answer(&self, res: Res, _permit: Option<Permit>) -> Res {
        res
    }
}
