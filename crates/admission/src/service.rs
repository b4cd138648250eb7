//! [`Admission`]: the HTTP service made by [`AdmissionLayer`].

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::layer::{AdmissionLayer, RejectFn};
use crate::phase::Phase;
use crate::{AdmitRequest, PriorityLimiter, ResponseBody};

/// Admits HTTP requests to `inner` through a [`PriorityLimiter`]; see
/// [`AdmissionLayer`].
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    limiter: PriorityLimiter,
    hold_body: bool,
    reject: Arc<RejectFn>,
}

impl<S> Admission<S> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: S, layer: AdmissionLayer) -> Self {
        let parts = crate::layer::Parts::from(layer);
        Admission {
            inner,
            limiter: parts.limiter,
            hold_body: parts.hold_body,
            reject: parts.reject,
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

impl<S, ReqB, ResB> Service<Request<ReqB>> for Admission<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, Request<ReqB>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Reserve nothing here: hyper polls readiness on idle connections.
        self.inner.poll_ready(cx)
    }

    // Inlined, so that the future is built where it is awaited (see
    // `GenericAdmission::call`).
    #[inline]
    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        match self.limiter.try_admit_now(&req) {
            // Fast path: the inner service is ready (we forwarded its
            // readiness), so call it now.
            Some(permit) => ResponseFuture::admitted(self.inner.call(req), permit, self.hold_body),
            None => self.queue(req),
        }
    }
}

impl<S> Admission<S> {
    /// The slow path: the request waits with a fresh clone of the service,
    /// driven to readiness once admitted.
    #[cold]
    fn queue<ReqB, ResB>(
        &mut self,
        req: Request<ReqB>,
    ) -> ResponseFuture<S, Request<ReqB>, S::Future>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    {
        let svc = crate::phase::unready(&mut self.inner);
        let ask = AdmitRequest::of(&req);
        let phase = Phase::waiting(self.limiter.acquire(ask), svc, req);
        ResponseFuture::queued(phase, self.hold_body, self.reject.clone())
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Admission<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .field("hold_body", &self.hold_body)
            .finish_non_exhaustive()
    }
}
