//! The tower-free part of the throttle: the decision for one request, and
//! the slow path of a call (sleep, drive a clone of the inner service to
//! readiness, call it), shared by the HTTP and the generic services.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_pressure_core::{Deadline, Event, EventBus, Overloaded, PressureLevel, Priority, Reason};
use tower_service::Service;

use crate::CpuThrottleConfig;
use crate::gate::{CapacityGate, GateGuard};

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

/// What every service of one layer shares: created with the layer value,
/// never inside `Layer::layer`, so every clone and route sees one gate.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) config: CpuThrottleConfig,
    pub(crate) gate: Option<Arc<CapacityGate>>,
    pub(crate) events: Option<EventBus>,
}

impl Settings {
    pub(crate) fn new(config: CpuThrottleConfig) -> Self {
        Settings {
            config,
            gate: None,
            events: None,
        }
    }

    /// The decision for a request of `priority` with `deadline` at `level`,
    /// counted in events and metrics.
    pub(crate) fn decide(
        &self,
        level: PressureLevel,
        priority: Priority,
        deadline: Option<Deadline>,
    ) -> Decision {
        let d = self.decide_quietly(level, priority, deadline);
        match &d {
            Decision::Pass => {}
            Decision::Delay(_delay) => {
                #[cfg(feature = "metrics")]
                metrics::histogram!(
                    tower_pressure_core::metrics::THROTTLE_DELAY_SECONDS,
                    tower_pressure_core::metrics::LABEL_LAYER => tower_pressure_core::metrics::LAYER_CPU,
                    tower_pressure_core::metrics::LABEL_PRIORITY => priority.as_str(),
                )
                .record(_delay.as_secs_f64());
            }
            Decision::Shed(err) => {
                #[cfg(feature = "metrics")]
                metrics::counter!(
                    tower_pressure_core::metrics::SHED_TOTAL,
                    tower_pressure_core::metrics::LABEL_LAYER => tower_pressure_core::metrics::LAYER_CPU,
                    tower_pressure_core::metrics::LABEL_PRIORITY => priority.as_str(),
                    tower_pressure_core::metrics::LABEL_REASON => err.reason().as_label(),
                )
                .increment(1);
                if let Some(bus) = &self.events {
                    bus.emit(Event::Shed {
                        layer: tower_pressure_core::metrics::LAYER_CPU,
                        priority,
                        reason: err.reason(),
                    });
                }
            }
        }
        d
    }

    fn decide_quietly(
        &self,
        level: PressureLevel,
        priority: Priority,
        deadline: Option<Deadline>,
    ) -> Decision {
        let config = &self.config;
        // The gate never refuses Critical work (health checks, operators).
        if let Some(gate) = &self.gate
            && priority < Priority::Critical
            && (level >= config.start_level() || gate.cooling())
            && gate.should_refuse()
        {
            return Decision::Shed(Overloaded::new(Reason::Cpu(level), priority));
        }
        if level < config.start_level() {
            return Decision::Pass;
        }
        decide(config, level, priority, deadline)
    }

    /// A guard for a request entering the inner service, if the gate is on.
    pub(crate) fn enter(&self) -> Option<GateGuard> {
        self.gate.as_ref().map(GateGuard::enter)
    }
}

/// The decision of the delays alone, for a request of `priority` with
/// `deadline` at `level`.
fn decide(
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
    /// fast-path future stays small: a delayed or refused request, or one
    /// counted by the capacity gate.
    #[project = SlowProj]
    pub(crate) enum Slow<S, Req, F> {
        /// Waiting out the delay. `svc` is a clone of the inner service,
        /// not yet driven to readiness: nothing of the inner service's
        /// capacity is held while the request sleeps.
        Sleeping {
            #[pin]
            sleep: Sleep,
            svc: Option<S>,
            req: Option<Req>,
            gate: Option<Arc<CapacityGate>>,
        },
        /// The delay is over; the clone must be ready before the call.
        Readying {
            svc: Option<S>,
            req: Option<Req>,
            gate: Option<Arc<CapacityGate>>,
        },
        /// The inner service is working on it; `guard` counts it in flight
        /// for the capacity gate.
        Calling {
            #[pin]
            fut: F,
            guard: Option<GateGuard>,
        },
        /// Refused before the inner service saw it; the request is kept for
        /// the rejection response (a gRPC request gets a gRPC reply).
        Refused {
            err: Option<Overloaded>,
            req: Option<Req>,
        },
        /// Finished; polling again is a bug.
        Done,
    }
}

/// How a slow call ended.
pub(crate) enum Outcome<T, E, Req> {
    /// The inner service answered, or failed (readiness or call).
    Inner(Result<T, E>),
    /// The request was refused; it is handed back.
    Refused(Overloaded, Req),
}

impl<S, Req, F> Slow<S, Req, F> {
    pub(crate) fn sleeping(
        delay: Duration,
        svc: S,
        req: Req,
        gate: Option<Arc<CapacityGate>>,
    ) -> Self {
        Slow::Sleeping {
            sleep: tokio::time::sleep(delay),
            svc: Some(svc),
            req: Some(req),
            gate,
        }
    }

    pub(crate) fn calling(fut: F, guard: Option<GateGuard>) -> Self {
        Slow::Calling { fut, guard }
    }

    pub(crate) fn refused(err: Overloaded, req: Req) -> Self {
        Slow::Refused {
            err: Some(err),
            req: Some(req),
        }
    }

    pub(crate) fn poll_outcome<T>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Outcome<T, S::Error, Req>>
    where
        S: Service<Req, Future = F>,
        F: Future<Output = Result<T, S::Error>>,
    {
        loop {
            match self.as_mut().project() {
                SlowProj::Sleeping {
                    sleep,
                    svc,
                    req,
                    gate,
                } => {
                    ready!(sleep.poll(cx));
                    let (svc, req, gate) = (svc.take(), req.take(), gate.take());
                    self.set(Slow::Readying { svc, req, gate });
                }
                SlowProj::Readying { svc, req, gate } => {
                    let s = svc.as_mut().expect("the service waits until it is called");
                    if let Err(e) = ready!(s.poll_ready(cx)) {
                        self.set(Slow::Done);
                        return Poll::Ready(Outcome::Inner(Err(e)));
                    }
                    let mut s = svc.take().expect("present until called");
                    let req = req.take().expect("present until called");
                    let guard = gate.as_ref().map(GateGuard::enter);
                    let fut = s.call(req);
                    self.set(Slow::Calling { fut, guard });
                }
                SlowProj::Calling { fut, guard } => {
                    let out = ready!(fut.poll(cx));
                    if let Some(g) = guard.take() {
                        g.complete();
                    }
                    self.set(Slow::Done);
                    return Poll::Ready(Outcome::Inner(out));
                }
                SlowProj::Refused { err, req } => {
                    let err = err.take().expect("a refusal is handed over once");
                    let req = req.take().expect("a refusal is handed over once");
                    self.set(Slow::Done);
                    return Poll::Ready(Outcome::Refused(err, req));
                }
                SlowProj::Done => panic!("cpu throttle future polled after it completed"),
            }
        }
    }
}
