//! The tower-free part of the throttle: the decision for one request, and
//! the slow path of a call (sleep, drive a clone of the inner service to
//! readiness, call it), shared by the HTTP and the generic services.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_pressure_core::{Deadline, Overloaded, PressureLevel, Priority, Reason};
use tower_service::Service;

use crate::CpuThrottleConfig;

/// What to do with one request above the start level.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Call the inner service now.
    Pass,
    /// Call it after this delay.
    Delay(Duration),
    /// Refuse at once.
    Shed(Overloaded),
}

/// The decision for a request of `priority` with `deadline` at `level`.
pub(crate) fn decide(
    config: &CpuThrottleConfig,
    level: PressureLevel,
    priority: Priority,
    deadline: Option<Deadline>,
) -> Decision {
    let delay = config.delay(level, priority);
    let refuse = || Overloaded::new(Reason::Cpu(level), priority).with_retry_after(delay);
    if level == PressureLevel::Critical
        && priority == Priority::Bulk
        && config.sheds_bulk_at_emergency()
    {
        return Decision::Shed(refuse());
    }
    if delay.is_zero() {
        return Decision::Pass;
    }
    // Waiting past the deadline only to be answered too late helps no one:
    // refuse now, while the caller can still go elsewhere.
    if deadline.is_some_and(|d| delay >= d.remaining()) {
        return Decision::Shed(refuse());
    }
    Decision::Delay(delay)
}

pin_project! {
    /// The slow path of one call, boxed by the response futures so that the
    /// fast-path future stays small.
    #[project = SlowProj]
    pub(crate) enum Slow<S, Req> {
        /// Waiting out the delay. `svc` is a clone of the inner service,
        /// not yet driven to readiness: nothing of the inner service's
        /// capacity is held while the request sleeps.
        Sleeping {
            #[pin]
            sleep: Sleep,
            svc: Option<S>,
            req: Option<Req>,
        },
        /// The delay is over; the clone must be ready before the call.
        Readying {
            svc: Option<S>,
            req: Option<Req>,
        },
        /// Refused before the inner service saw it; the request is kept for
        /// the rejection response (a gRPC request gets a gRPC reply).
        Refused {
            err: Option<Overloaded>,
            req: Option<Req>,
        },
        /// Handed over; polling again is a bug.
        Done,
    }
}

/// Where the slow path ended.
pub(crate) enum Step<F, Req, E> {
    /// The inner service was called; its future takes over.
    Called(F),
    /// The request was refused; it is handed back.
    Refused(Overloaded, Req),
    /// The inner service failed to become ready.
    Failed(E),
}

impl<S, Req> Slow<S, Req> {
    pub(crate) fn sleeping(delay: Duration, svc: S, req: Req) -> Self {
        Slow::Sleeping {
            sleep: tokio::time::sleep(delay),
            svc: Some(svc),
            req: Some(req),
        }
    }

    pub(crate) fn refused(err: Overloaded, req: Req) -> Self {
        Slow::Refused {
            err: Some(err),
            req: Some(req),
        }
    }

    pub(crate) fn poll_step(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Step<S::Future, Req, S::Error>>
    where
        S: Service<Req>,
    {
        loop {
            match self.as_mut().project() {
                SlowProj::Sleeping { sleep, svc, req } => {
                    ready!(sleep.poll(cx));
                    let (svc, req) = (svc.take(), req.take());
                    self.set(Slow::Readying { svc, req });
                }
                SlowProj::Readying { svc, req } => {
                    let s = svc.as_mut().expect("the service waits until it is called");
                    if let Err(e) = ready!(s.poll_ready(cx)) {
                        self.set(Slow::Done);
                        return Poll::Ready(Step::Failed(e));
                    }
                    let mut s = svc.take().expect("present until called");
                    let req = req.take().expect("present until called");
                    self.set(Slow::Done);
                    return Poll::Ready(Step::Called(s.call(req)));
                }
                SlowProj::Refused { err, req } => {
                    let err = err.take().expect("a refusal is handed over once");
                    let req = req.take().expect("a refusal is handed over once");
                    self.set(Slow::Done);
                    return Poll::Ready(Step::Refused(err, req));
                }
                SlowProj::Done => panic!("cpu throttle future polled after it completed"),
            }
        }
    }
}
