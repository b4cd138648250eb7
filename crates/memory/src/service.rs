//! [`MemoryShed`]: the service made by [`MemoryShedLayer`](crate::MemoryShedLayer).

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_pressure_core::http::Rejection;
use tower_pressure_core::{PriorityOf, Refusal};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::layer::Shared;

/// Refuses the less important requests to `inner` while memory is pressed;
/// see [`MemoryShedLayer`](crate::MemoryShedLayer).
///
/// Clones share the layer's settings; the service holds no per-call state.
#[derive(Debug, Clone)]
pub struct MemoryShed<S, R = Rejection> {
    inner: S,
    shared: Arc<Shared>,
    refusal: R,
}

impl<S, R> MemoryShed<S, R> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>, refusal: R) -> Self {
        MemoryShed {
            inner,
            shared,
            refusal,
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
}

impl<S, Req, R> Service<Req> for MemoryShed<S, R>
where
    S: Service<Req>,
    Req: PriorityOf,
    R: Refusal<Req, S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = ResponseFuture<S::Future, S::Response, R::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.shared.check(&req) {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            Err(err) => ResponseFuture::refused(self.refusal.refuse(err, &req)),
        }
    }
}
