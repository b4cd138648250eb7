//! [`MemoryShed`]: the HTTP service made by [`MemoryShedLayer`].

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use crate::MemoryShedLayer;
use crate::future::ResponseFuture;
use crate::layer::Shared;

/// Refuses the less important HTTP requests to `inner` while memory is
/// pressed; see [`MemoryShedLayer`].
///
/// Clones share the layer's settings; the service holds no per-call state.
#[derive(Debug, Clone)]
pub struct MemoryShed<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> MemoryShed<S> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: S, layer: MemoryShedLayer) -> Self {
        MemoryShed {
            inner,
            shared: layer.shared().clone(),
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

impl<S, ReqB, ResB> Service<Request<ReqB>> for MemoryShed<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Default,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        match self.shared.check(&req) {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            Err(err) => {
                ResponseFuture::rejected(self.shared.rejection.respond(&err, req.headers()))
            }
        }
    }
}
