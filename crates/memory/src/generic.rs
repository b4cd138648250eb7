//! [`GenericMemoryShedLayer`]: memory shedding for any tower service; a
//! refusal is an error.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_pressure_core::{EventBus, Overloaded, PriorityOf, Signal};
use tower_service::Service;

use crate::MemoryShedConfig;
use crate::layer::Shared;

/// The boxed error of the generic service, as tower's `BoxError`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Refuses the less important requests to any tower service whose requests
/// implement [`PriorityOf`] while memory is pressed, with the same table as
/// [`MemoryShedLayer`](crate::MemoryShedLayer). A refused request fails with
/// a [`BoxError`] holding an [`Overloaded`]; check with
/// `err.is::<Overloaded>()`. For HTTP services use
/// [`MemoryShedLayer`](crate::MemoryShedLayer), which answers instead.
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_pressure_core::{Overloaded, PressureLevel, Priority, PriorityOf, Signal};
/// use tower_pressure_memory::{GenericMemoryShedLayer, memory_signal_config};
///
/// struct Job(Priority);
/// impl PriorityOf for Job {
///     fn priority(&self) -> Priority { self.0 }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let memory = Signal::new(memory_signal_config().build()?);
/// let svc = ServiceBuilder::new()
///     .layer(GenericMemoryShedLayer::new(memory.clone()))
///     .service(service_fn(|job: Job| async move { Ok::<_, tower::BoxError>(job.0) }));
///
/// memory.set_override(Some(PressureLevel::High));
/// assert_eq!(svc.clone().oneshot(Job(Priority::High)).await?, Priority::High);
/// let err = svc.oneshot(Job(Priority::Low)).await.unwrap_err();
/// assert!(err.is::<Overloaded>());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GenericMemoryShedLayer {
    shared: Arc<Shared>,
}

impl GenericMemoryShedLayer {
    /// Sheds by `signal`'s level with the default table.
    #[must_use]
    pub fn new(signal: Signal) -> Self {
        GenericMemoryShedLayer::with_config(signal, MemoryShedConfig::default())
    }

    /// Sheds by `signal`'s level with `config`'s table.
    #[must_use]
    pub fn with_config(signal: Signal, config: MemoryShedConfig) -> Self {
        GenericMemoryShedLayer {
            shared: Arc::new(Shared::new(signal, config)),
        }
    }

    /// Publishes an [`Event::Shed`](tower_pressure_core::Event::Shed) on
    /// `bus` for every refusal.
    #[must_use]
    pub fn events(mut self, bus: EventBus) -> Self {
        Arc::make_mut(&mut self.shared).events = Some(bus);
        self
    }
}

impl<S> Layer<S> for GenericMemoryShedLayer {
    type Service = GenericMemoryShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GenericMemoryShed {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Refuses the less important requests to `inner` while memory is pressed;
/// see [`GenericMemoryShedLayer`].
#[derive(Debug, Clone)]
pub struct GenericMemoryShed<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> GenericMemoryShed<S> {
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

impl<S, Req> Service<Req> for GenericMemoryShed<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    Req: PriorityOf,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = GenericResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let kind = match self.shared.check(&req) {
            Ok(()) => Kind::Inner {
                fut: self.inner.call(req),
            },
            Err(err) => Kind::Rejected { err: Some(err) },
        };
        GenericResponseFuture { kind }
    }
}

pin_project! {
    /// The response future of [`GenericMemoryShed`].
    pub struct GenericResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner {
            #[pin]
            fut: F,
        },
        Rejected {
            err: Option<Overloaded>,
        },
    }
}

impl<F, T, E> Future for GenericResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut } => fut.poll(cx).map_err(Into::into),
            KindProj::Rejected { err } => Poll::Ready(Err(Box::new(
                err.take()
                    .expect("GenericResponseFuture polled after completion"),
            ))),
        }
    }
}

impl<F> fmt::Debug for GenericResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Rejected { .. } => "rejected",
        };
        f.debug_struct("GenericResponseFuture")
            .field("state", &state)
            .finish()
    }
}
