//! [`GenericAdmissionLayer`]: admission for any tower service; a refusal is
//! an error.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_pressure_core::PriorityOf;
use tower_service::Service;

use crate::phase::{Outcome, Phase};
use crate::{AdmitRequest, Permit, PriorityLimiter};

/// The boxed error of the generic service, as tower's `BoxError`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Puts a [`PriorityLimiter`] in front of any tower service whose requests
/// implement [`PriorityOf`]. A refused request fails with a [`BoxError`]
/// holding an [`Overloaded`](tower_pressure_core::Overloaded); check with
/// `err.is::<Overloaded>()`. For HTTP services use
/// [`AdmissionLayer`](crate::AdmissionLayer), which answers instead.
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_pressure_admission::{GenericAdmissionLayer, PriorityLimiter};
/// use tower_pressure_core::{Priority, PriorityOf};
///
/// struct Job(Priority);
/// impl PriorityOf for Job {
///     fn priority(&self) -> Priority { self.0 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let limiter = PriorityLimiter::builder().limit(4).build()?;
/// let svc = ServiceBuilder::new()
///     .layer(GenericAdmissionLayer::new(limiter))
///     .service(service_fn(|job: Job| async move { Ok::<_, tower::BoxError>(job.0) }));
/// assert_eq!(svc.oneshot(Job(Priority::High)).await?, Priority::High);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GenericAdmissionLayer {
    limiter: PriorityLimiter,
}

impl GenericAdmissionLayer {
    /// Admission through `limiter`.
    #[must_use]
    pub fn new(limiter: PriorityLimiter) -> Self {
        GenericAdmissionLayer { limiter }
    }
}

impl<S> Layer<S> for GenericAdmissionLayer {
    type Service = GenericAdmission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GenericAdmission {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// Admits requests to `inner` through a [`PriorityLimiter`]; see
/// [`GenericAdmissionLayer`].
#[derive(Debug, Clone)]
pub struct GenericAdmission<S> {
    inner: S,
    limiter: PriorityLimiter,
}

impl<S> GenericAdmission<S> {
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

impl<S, Req> Service<Req> for GenericAdmission<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    Req: PriorityOf,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = GenericResponseFuture<S, Req, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    // Inlined, so that the future is built where it is awaited: returned
    // from a call, its small fields are stored one by one and copied as
    // wide words, which the CPU cannot forward from its store buffer.
    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let kind = match self.limiter.try_admit_now(&req) {
            Some(permit) => Kind::Admitted {
                fut: self.inner.call(req),
                _permit: permit,
            },
            None => self.queue(req),
        };
        GenericResponseFuture { kind }
    }
}

impl<S> GenericAdmission<S> {
    /// The slow path: the request waits with a fresh clone of the service,
    /// driven to readiness once admitted.
    #[cold]
    fn queue<Req>(&mut self, req: Req) -> Kind<S, Req, S::Future>
    where
        S: Service<Req> + Clone,
        Req: PriorityOf,
    {
        let svc = crate::phase::unready(&mut self.inner);
        let ask = AdmitRequest::of(&req);
        Kind::Queued {
            phase: Phase::waiting(self.limiter.acquire(ask), svc, req),
        }
    }
}

pin_project! {
    /// The response future of [`GenericAdmission`].
    pub struct GenericResponseFuture<S, Req, F> {
        #[pin]
        kind: Kind<S, Req, F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, Req, F> {
        /// Admitted at once: the inner future under its permit, which goes
        /// back when this future is dropped — as the response is handed over,
        /// as in tower's `ConcurrencyLimit`. (Dropping it inside `poll`
        /// instead measurably slows the fast path.)
        Admitted {
            #[pin]
            fut: F,
            _permit: Permit,
        },
        /// Waiting for a permit, then for the inner service.
        Queued {
            #[pin]
            phase: Phase<S, Req, F>,
        },
    }
}

impl<S, Req, F, T> Future for GenericResponseFuture<S, Req, F>
where
    S: Service<Req, Future = F>,
    S::Error: Into<BoxError>,
    F: Future<Output = Result<T, S::Error>>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let phase = match self.project().kind.project() {
            KindProj::Admitted { fut, .. } => return fut.poll(cx).map_err(Into::into),
            KindProj::Queued { phase } => phase,
        };
        Poll::Ready(match ready!(phase.poll_outcome(cx)) {
            // The permit goes back as the response is handed over.
            Outcome::Answered(res, _permit) => Ok(res),
            Outcome::Refused(err, _req) => Err(err.into()),
            Outcome::Failed(e) => Err(e.into()),
        })
    }
}

impl<S, Req, F> std::fmt::Debug for GenericResponseFuture<S, Req, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericResponseFuture")
            .finish_non_exhaustive()
    }
}
