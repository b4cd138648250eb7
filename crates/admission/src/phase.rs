//! The steps of one admitted call, shared by the HTTP and the generic
//! services: wait for a permit, drive the inner service to readiness, call it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_pressure_core::Overloaded;
use tower_service::Service;

use crate::{Acquire, Permit};

pin_project! {
    /// Where one call stands.
    #[project = PhaseProj]
    pub(crate) enum Phase<S, Req, F> {
        /// In the queue. `svc` is the inner service taken ready from the
        /// layer; `req` waits with it.
        Waiting {
            #[pin]
            acquire: Acquire,
            svc: Option<S>,
            req: Option<Req>,
        },
        /// Admitted; the inner service must be ready again before the call.
        Readying {
            svc: Option<S>,
            req: Option<Req>,
            permit: Option<Permit>,
        },
        /// The inner service is working on it, under the permit.
        Calling {
            #[pin]
            fut: F,
            permit: Option<Permit>,
        },
        /// Finished; polling again is a bug.
        Done,
    }
}

/// How a call ended.
pub(crate) enum Outcome<Req, T, E> {
    /// Refused before the inner service saw it; the request is handed back.
    Refused(Overloaded, Req),
    /// The inner service answered; `permit` is still held.
    Answered(T, Option<Permit>),
    /// The inner service failed (readiness or call); the permit is released.
    Failed(E),
}

/// For a request that queues: gives up the readiness `ready` holds (a
/// permit of a tower `ConcurrencyLimit` below, a slot of a `Buffer`) by
/// dropping it, and returns a fresh clone for the waiting request to drive
/// to readiness once admitted. Held while the request waits, a reservation
/// of the service below could keep a more important request, admitted
/// first, from ever reaching it. `ready` is left a fresh clone as well: the
/// caller polls it ready again before its next call, as tower requires.
pub(crate) fn unready<S: Clone>(ready: &mut S) -> S {
    let fresh = ready.clone();
    drop(std::mem::replace(ready, fresh.clone()));
    fresh
}

impl<S, Req, F> Phase<S, Req, F> {
    pub(crate) fn called(fut: F, permit: Permit) -> Self {
        Phase::Calling {
            fut,
            permit: Some(permit),
        }
    }

    pub(crate) fn waiting(acquire: Acquire, svc: S, req: Req) -> Self {
        Phase::Waiting {
            acquire,
            svc: Some(svc),
            req: Some(req),
        }
    }
}

impl<S, Req, F, T> Phase<S, Req, F>
where
    S: Service<Req, Future = F>,
    F: Future<Output = Result<T, S::Error>>,
{
    pub(crate) fn poll_outcome(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Outcome<Req, T, S::Error>> {
        loop {
            match self.as_mut().project() {
                PhaseProj::Waiting { acquire, svc, req } => {
                    let admitted = ready!(acquire.poll(cx));
                    let (svc, req) = (svc.take(), req.take());
                    match admitted {
                        Ok(permit) => self.set(Phase::Readying {
                            svc,
                            req,
                            permit: Some(permit),
                        }),
                        Err(err) => {
                            self.set(Phase::Done);
                            let req = req.expect("the request waits until admission ends");
                            return Poll::Ready(Outcome::Refused(err, req));
                        }
                    }
                }
                PhaseProj::Readying { svc, req, permit } => {
                    let s = svc.as_mut().expect("the service waits until it is called");
                    if let Err(e) = ready!(s.poll_ready(cx)) {
                        self.set(Phase::Done);
                        return Poll::Ready(Outcome::Failed(e));
                    }
                    let (mut s, req, permit) = (
                        svc.take().expect("present until called"),
                        req.take().expect("present until called"),
                        permit.take().expect("present until called"),
                    );
                    let fut = s.call(req);
                    self.set(Phase::called(fut, permit));
                }
                PhaseProj::Calling { fut, permit } => {
                    let out = ready!(fut.poll(cx));
                    let permit = permit.take();
                    self.set(Phase::Done);
                    return Poll::Ready(match out {
                        Ok(res) => Outcome::Answered(res, permit),
                        Err(e) => Outcome::Failed(e),
                    });
                }
                PhaseProj::Done => panic!("admission future polled after it completed"),
            }
        }
    }
}
