//! [`ResponseFuture`]: the response future of [`CpuThrottle`](crate::CpuThrottle).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_pressure_core::http::Rejection;
use tower_service::Service;

use crate::gate::GateGuard;
use crate::throttle::{Slow, Step};

pin_project! {
    /// The response future of [`CpuThrottle`](crate::CpuThrottle): waits out
    /// the delay, then calls the inner service and waits for it.
    ///
    /// # Cancel safety
    ///
    /// Dropping it while it waits drops the request and the clone of the
    /// inner service: nothing is held, and the inner service never saw the
    /// request.
    pub struct ResponseFuture<S, Req, F> {
        #[pin]
        kind: Kind<S, Req, F>,
        rejection: Rejection,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, Req, F> {
        /// The inner service was called.
        Called {
            #[pin]
            fut: F,
        },
        /// The inner service was called; `guard` counts it in flight for
        /// the capacity gate. (A variant of its own keeps the fast path's
        /// `Called` free of a drop.)
        Counted {
            #[pin]
            fut: F,
            guard: Option<GateGuard>,
        },
        /// Delayed or refused. Boxed: it holds a timer, the request and a
        /// clone of the service, and inline it would make every fast-path
        /// future that large to move.
        Slow {
            slow: Pin<Box<Slow<S, Req>>>,
        },
    }
}

impl<S, Req, F> ResponseFuture<S, Req, F> {
    pub(crate) fn called(fut: F, guard: Option<GateGuard>, rejection: Rejection) -> Self {
        let kind = match guard {
            None => Kind::Called { fut },
            guard => Kind::Counted { fut, guard },
        };
        ResponseFuture { kind, rejection }
    }

    pub(crate) fn slow(slow: Slow<S, Req>, rejection: Rejection) -> Self {
        ResponseFuture {
            kind: Kind::Slow {
                slow: Box::pin(slow),
            },
            rejection,
        }
    }
}

impl<S, ReqB, ResB, F> Future for ResponseFuture<S, Request<ReqB>, F>
where
    S: Service<Request<ReqB>, Response = Response<ResB>, Future = F>,
    F: Future<Output = Result<Response<ResB>, S::Error>>,
    ResB: Default,
{
    type Output = Result<Response<ResB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let slow = match this.kind.as_mut().project() {
                KindProj::Called { fut } => return fut.poll(cx),
                KindProj::Counted { fut, guard } => {
                    let out = ready!(fut.poll(cx));
                    if let Some(g) = guard.take() {
                        g.complete();
                    }
                    return Poll::Ready(out);
                }
                KindProj::Slow { slow } => slow,
            };
            match ready!(slow.as_mut().poll_step(cx)) {
                Step::Called(fut, None) => this.kind.set(Kind::Called { fut }),
                Step::Called(fut, guard) => this.kind.set(Kind::Counted { fut, guard }),
                Step::Refused(err, req) => {
                    return Poll::Ready(Ok(this.rejection.respond(&err, req.headers())));
                }
                Step::Failed(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<S, Req, F> std::fmt::Debug for ResponseFuture<S, Req, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
