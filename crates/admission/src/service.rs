//! [`Admission`]: the service made by [`AdmissionLayer`](crate::AdmissionLayer).

use std::task::{Context, Poll};

use tower_pressure_core::PriorityOf;
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::layer::{Delivery, HttpRefusal};
use crate::phase::Phase;
use crate::{AdmitRequest, PriorityLimiter};

/// Admits requests to `inner` through a [`PriorityLimiter`]; see
/// [`AdmissionLayer`](crate::AdmissionLayer).
#[derive(Debug, Clone)]
pub struct Admission<S, D = HttpRefusal> {
    inner: S,
    limiter: PriorityLimiter,
    delivery: D,
}

impl<S, D> Admission<S, D> {
    pub(crate) fn new(inner: S, limiter: PriorityLimiter, delivery: D) -> Self {
        Admission {
            inner,
            limiter,
            delivery,
        }
    }

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

    /// The limiter.
    pub fn limiter(&self) -> &PriorityLimiter {
        &self.limiter
    }
}

impl<S, Req, D> Service<Req> for Admission<S, D>
where
    S: Service<Req> + Clone,
    Req: PriorityOf,
    D: Delivery<Req, S::Response, S::Error> + Clone,
{
    type Response = D::Response;
    type Error = D::Error;
    type Future = ResponseFuture<S, Req, S::Future, D>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Reserve nothing here: hyper polls readiness on idle connections.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    // Inlined, so that the future is built where it is awaited: returned
    // from a call, its small fields are stored one by one and copied as
    // wide words, which the CPU cannot forward from its store buffer.
    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        match self.limiter.try_admit_now(&req) {
            // Fast path: the inner service is ready (we forwarded its
            // readiness), so call it now.
            Some(permit) => {
                ResponseFuture::admitted(self.inner.call(req), permit, self.delivery.clone())
            }
            None => self.queue(req),
        }
    }
}

impl<S, D: Clone> Admission<S, D> {
    /// The slow path: the request waits with a fresh clone of the service,
    /// driven to readiness once admitted.
    #[cold]
    fn queue<Req>(&mut self, req: Req) -> ResponseFuture<S, Req, S::Future, D>
    where
        S: Service<Req> + Clone,
        Req: PriorityOf,
    {
        let svc = crate::phase::unready(&mut self.inner);
        let ask = AdmitRequest::of(&req);
        let phase = Phase::waiting(self.limiter.acquire(ask), svc, req);
        ResponseFuture::queued(phase, self.delivery.clone())
    }
}
