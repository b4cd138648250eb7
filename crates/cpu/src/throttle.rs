//! The tower-free part of the throttle: the decision for one request, and
//! the slow path of a call (sleep, drive a clone of the inner service to
//! readiness, call it), shared by the HTTP and the generic services.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_pressure_core::{
    Deadline, Event, EventBus, Overloaded, PressureLevel, Priority, Reason, Signal,
};
use tower_service::Service;

use crate::CpuThrottleConfig;
use crate::gate::{CapacityGate, GateGuard};

/// What to do with one request above the start level.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Call the inner service now.
    Pass,
    /// Call it after this delay; the guard counts it among the parked.
    Delay(Duration, Parked),
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
    pub(crate) classes: Arc<Classes>,
}

/// Requests of each class in the inner service (those that went through
/// the pressed path), and the requests waiting out a delay.
#[derive(Debug, Default)]
pub(crate) struct Classes {
    in_flight: [AtomicUsize; 5],
    parked: AtomicUsize,
}

impl Classes {
    /// Whether work of a class above `priority` is in the inner service:
    /// only then does delaying `priority` give the CPU to work that matters
    /// more. With nothing above it in flight a delay sheds nothing and only
    /// adds latency (a service saturated by one class is slowed, not
    /// relieved).
    fn contended_above(&self, priority: Priority) -> bool {
        self.in_flight[priority as usize + 1..]
            .iter()
            .any(|n| n.load(Ordering::Relaxed) > 0)
    }
}

/// Counts one request of a class in the inner service until dropped.
#[derive(Debug)]
pub(crate) struct ClassGuard {
    classes: Arc<Classes>,
    priority: Priority,
}

impl Drop for ClassGuard {
    fn drop(&mut self) {
        self.classes.in_flight[self.priority as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one request among the parked (waiting out a delay) until dropped.
#[derive(Debug)]
pub(crate) struct Parked {
    classes: Arc<Classes>,
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.classes.parked.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a request that entered the inner service on the pressed path
/// holds: its class count, and its place in the capacity gate.
#[derive(Debug)]
pub(crate) struct Entered {
    _class: ClassGuard,
    gate: Option<GateGuard>,
}

impl Entered {
    /// The request completed: the gate records its latency.
    pub(crate) fn complete(self) {
        if let Some(g) = self.gate {
            g.complete();
        }
    }
}

impl Settings {
    pub(crate) fn new(config: CpuThrottleConfig) -> Self {
        Settings {
            config,
            gate: None,
            events: None,
            classes: Arc::default(),
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
            Decision::Delay(_delay, _) => {
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
        if let Some(err) = self.gate_refuses(level, priority) {
            return Decision::Shed(err);
        }
        if level < self.config.start_level() {
            return Decision::Pass;
        }
        match plan(&self.config, level, priority, deadline) {
            Plan::Pass => Decision::Pass,
            // Nothing that matters more is being served: a delay (or a
            // refusal for a deadline the delay would pass) only slows what
            // the CPU is busy with. Bulk's shed at emergency stays.
            Plan::Delay(_) | Plan::Shed(_)
                if !self.config.delays_uncontended() && !self.classes.contended_above(priority) =>
            {
                match decide_shed_only(&self.config, level, priority) {
                    Some(err) => Decision::Shed(err),
                    None => Decision::Pass,
                }
            }
            Plan::Delay(delay) => self.park(level, priority, delay),
            Plan::Shed(err) => Decision::Shed(err),
        }
    }

    /// The capacity gate's refusal, if it is on and says so. Critical work
    /// is never refused by it, nor counted in its estimates.
    fn gate_refuses(&self, level: PressureLevel, priority: Priority) -> Option<Overloaded> {
        let gate = self.gate.as_ref()?;
        let hot = level >= self.config.start_level();
        (priority < Priority::Critical && (hot || gate.cooling()) && gate.should_refuse(hot))
            .then(|| Overloaded::new(Reason::Cpu(level), priority))
    }

    /// A delay, if fewer than `max_delayed` requests are parked; a refusal
    /// past the bound.
    fn park(&self, level: PressureLevel, priority: Priority, delay: Duration) -> Decision {
        let parked = self.classes.parked.fetch_add(1, Ordering::Relaxed);
        let guard = Parked {
            classes: self.classes.clone(),
        };
        if parked >= self.config.max_delayed() {
            drop(guard);
            return Decision::Shed(
                Overloaded::new(Reason::Cpu(level), priority).with_retry_after(delay),
            );
        }
        Decision::Delay(delay, guard)
    }

    /// What a delayed request meets when its delay is over, at the level
    /// then: the capacity gate again (what it measured may have changed
    /// while the request slept), and Bulk's refusal at emergency. `None`:
    /// call the inner service.
    pub(crate) fn after_delay(
        &self,
        level: PressureLevel,
        priority: Priority,
    ) -> Option<Overloaded> {
        self.gate_refuses(level, priority)
            .or_else(|| decide_shed_only(&self.config, level, priority))
    }

    /// The guards of a request of `priority` entering the inner service on
    /// the pressed path.
    pub(crate) fn enter(&self, priority: Priority) -> Entered {
        self.classes.in_flight[priority as usize].fetch_add(1, Ordering::Relaxed);
        Entered {
            _class: ClassGuard {
                classes: self.classes.clone(),
                priority,
            },
            gate: self
                .gate
                .as_ref()
                .filter(|_| priority < Priority::Critical)
                .map(GateGuard::enter),
        }
    }
}

/// The refusal of `Bulk` at emergency, if configured.
fn decide_shed_only(
    config: &CpuThrottleConfig,
    level: PressureLevel,
    priority: Priority,
) -> Option<Overloaded> {
    (level == PressureLevel::Critical
        && priority == Priority::Bulk
        && config.sheds_bulk_at_emergency())
    .then(|| {
        Overloaded::new(Reason::Cpu(level), priority)
            .with_retry_after(config.delay(level, priority))
    })
}

/// The decision of the delays alone, for a request of `priority` with
/// `deadline` at `level`.
fn plan(
    config: &CpuThrottleConfig,
    level: PressureLevel,
    priority: Priority,
    deadline: Option<Deadline>,
) -> Plan {
    if let Some(err) = decide_shed_only(config, level, priority) {
        return Plan::Shed(err);
    }
    let delay = config.delay(level, priority);
    if delay.is_zero() {
        return Plan::Pass;
    }
    // Waiting past the deadline only to be answered too late helps no one:
    // refuse now, while the caller can still go elsewhere.
    if deadline.is_some_and(|d| delay >= d.remaining()) {
        return Plan::Shed(Overloaded::new(Reason::Cpu(level), priority).with_retry_after(delay));
    }
    Plan::Delay(delay)
}

/// What the delays alone say.
enum Plan {
    Pass,
    Delay(Duration),
    Shed(Overloaded),
}

pin_project! {
    /// The slow path of one call, boxed by the response futures so that the
    /// fast-path future stays small: a delayed or refused request, or one
    /// counted by the pressed path (its class, the capacity gate).
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
            wake: Option<Wake>,
        },
        /// The delay is over; the clone must be ready before the call.
        Readying {
            svc: Option<S>,
            req: Option<Req>,
            wake: Option<Wake>,
        },
        /// The inner service is working on it; `guard` counts it in flight
        /// (its class, and the capacity gate).
        Calling {
            #[pin]
            fut: F,
            guard: Option<Entered>,
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

/// What a delayed request needs when it wakes: the settings and the signal
/// to check again, its class, and its place among the parked.
#[derive(Debug)]
pub(crate) struct Wake {
    settings: Arc<Settings>,
    signal: Signal,
    priority: Priority,
    _parked: Option<Parked>,
}

/// How a slow call ended.
pub(crate) enum Outcome<T, E, Req> {
    /// The inner service answered, or failed (readiness or call).
    Inner(Result<T, E>),
    /// The request was refused; it is handed back.
    Refused(Overloaded, Req),
}

impl<S, Req, F> Slow<S, Req, F> {
    /// Sleeps `delay`, then checks again and calls a clone of the service.
    pub(crate) fn sleeping(
        delay: Duration,
        parked: Parked,
        svc: S,
        req: Req,
        settings: &Arc<Settings>,
        signal: &Signal,
        priority: Priority,
    ) -> Self {
        Slow::Sleeping {
            sleep: tokio::time::sleep(delay),
            svc: Some(svc),
            req: Some(req),
            wake: Some(Wake {
                settings: settings.clone(),
                signal: signal.clone(),
                priority,
                _parked: Some(parked),
            }),
        }
    }

    pub(crate) fn calling(fut: F, guard: Entered) -> Self {
        Slow::Calling {
            fut,
            guard: Some(guard),
        }
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
                    wake,
                } => {
                    ready!(sleep.poll(cx));
                    let mut wake = wake.take().expect("present until woken");
                    // No longer parked.
                    wake._parked = None;
                    let level = wake.signal.level();
                    if let Some(err) = wake.settings.after_delay(level, wake.priority) {
                        let req = req.take().expect("present until called");
                        self.set(Slow::refused(err, req));
                        continue;
                    }
                    let (svc, req) = (svc.take(), req.take());
                    self.set(Slow::Readying {
                        svc,
                        req,
                        wake: Some(wake),
                    });
                }
                SlowProj::Readying { svc, req, wake } => {
                    let s = svc.as_mut().expect("the service waits until it is called");
                    if let Err(e) = ready!(s.poll_ready(cx)) {
                        self.set(Slow::Done);
                        return Poll::Ready(Outcome::Inner(Err(e)));
                    }
                    let mut s = svc.take().expect("present until called");
                    let req = req.take().expect("present until called");
                    let wake = wake.take().expect("present until called");
                    let guard = wake.settings.enter(wake.priority);
                    let fut = s.call(req);
                    self.set(Slow::calling(fut, guard));
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
