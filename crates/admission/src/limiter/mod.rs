//! [`PriorityLimiter`]: a concurrency limit with a bounded priority wait
//! queue. Knows nothing of tower.

mod acquire;
pub(crate) mod config;
mod gate;
#[cfg(feature = "metrics")]
mod instruments;
mod list;
mod permit;
pub(crate) mod queue;
mod stats;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(test)]
mod model_tests;

use std::fmt;
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;
#[cfg(doc)]
use tower_pressure_core::Reason;
use tower_pressure_core::{
    Deadline, Event, EventBus, LimitControl, LimitHandle, Overloaded, PerPriority, Priority,
    PriorityOf,
};

use crate::sync::{Arc, Mutex, lock};

pub use acquire::Acquire;
pub use config::{Codel, Drain, PriorityLimiterBuilder};
pub use permit::Permit;
pub use stats::ClassCounts;

use gate::Gate;
use queue::{Ask, State};
use stats::Waits;

/// What the limiter needs to know of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmitRequest {
    /// Its class.
    pub priority: Priority,
    /// When its caller stops caring, if known.
    pub deadline: Option<Deadline>,
}

impl AdmitRequest {
    /// Reads priority and deadline from a request.
    #[must_use]
    pub fn of<R: PriorityOf + ?Sized>(request: &R) -> AdmitRequest {
        AdmitRequest {
            priority: request.priority(),
            deadline: request.deadline(),
        }
    }
}

impl From<Priority> for AdmitRequest {
    fn from(priority: Priority) -> Self {
        AdmitRequest {
            priority,
            ..AdmitRequest::default()
        }
    }
}

/// A concurrency limit with a bounded priority wait queue.
///
/// At most `limit` [`Permit`]s are out at once. A request that finds none
/// free waits in a queue of at most `max_queue` entries and is admitted in
/// [`Drain`] order; it gives up after its class's queue timeout. When the
/// queue is full, a newcomer pushes out the newest waiter of the lowest class
/// below its own, or is refused at once. Every refusal is an [`Overloaded`]
/// with an estimated `retry_after`.
///
/// Clones share one limiter. It guards any scarce resource: the
/// `AdmissionLayer` puts it in front of a tower service, and it can sit in
/// front of a database pool directly.
///
/// # Ordering and fairness
///
/// Under [`Drain::Priority`] no request is admitted while a request of a
/// higher class waits, and requests of one class are admitted in arrival
/// order. See [`Drain`] for the other orders and [`Codel`] for adaptive
/// LIFO.
///
/// # Work conservation
///
/// A request that finds a permit free and nobody waiting is admitted at
/// once, whatever came before it (emergency mode and a request whose own
/// deadline has passed aside), and nobody waits while a permit is free.
/// Refusals for load happen only to requests that would have to wait.
///
/// # Refusing fast
///
/// A request that would wait is refused at once
/// ([`Reason::DeadlineUnmeetable`]) when its estimated wait exceeds its
/// class's queue timeout or its deadline, rather than after waiting that
/// long. The estimate is measured, not forecast: the waiters it cannot
/// overtake under the drain order, plus itself, at the service rate
/// (`limit` / mean hold time); under [`Drain::Priority`], pushed back by the
/// rate at which the classes above took permits over the class's queue
/// timeout, as far as the class's own waiters were admitted that slowly
/// while it had any (Little's law on its queue) — so a burst of a higher
/// class that has ended holds nobody back. A class the classes above leave nothing is
/// refused at once.
///
/// A class whose queue stands — every request of it has waited more than a
/// tenth of its queue timeout for a whole timeout (CoDel's test, RFC 8289,
/// with the timeout as interval and 10 % of it as target), while it has
/// arrived faster than the service left to it by more than two standard
/// deviations of Poisson noise — only gets later, not more, from a longer
/// queue. Its waiters past the target are then dropped, and its newcomers
/// queue only while their estimated wait is within the target, until the
/// rates show it arriving slower than it is served by as much. A burst
/// that drains, and a class at exactly its share (its queue a random walk
/// that keeps the service busy), keep their whole timeout.
///
/// # Example
///
/// ```
/// use tower_pressure_admission::PriorityLimiter;
/// use tower_pressure_core::{Priority, Reason};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = PriorityLimiter::builder().limit(1).max_queue(0).build()?;
///
/// let permit = db.acquire(Priority::High).await?;
/// // The one connection is taken and there is no queue: refused at once.
/// let err = db.try_acquire(Priority::Low).unwrap_err();
/// assert_eq!(err.reason(), Reason::QueueFull);
/// drop(permit);
/// assert!(db.try_acquire(Priority::Low).is_ok());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PriorityLimiter {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    /// The lock-free fast path; the same `Gate` the state holds.
    pub(crate) gate: Arc<Gate>,
    /// The zero of permits' grant times.
    epoch: Instant,
    pub(crate) state: Mutex<State>,
    /// Queue waits, under a lock of their own.
    waits: Mutex<Waits>,
    events: Option<EventBus>,
    #[cfg(feature = "metrics")]
    metrics: instruments::Instruments,
}

impl PriorityLimiter {
    /// A builder with the defaults.
    pub fn builder() -> PriorityLimiterBuilder {
        PriorityLimiterBuilder::default()
    }

    pub(crate) fn from_builder(b: PriorityLimiterBuilder) -> PriorityLimiter {
        let gate = Arc::new(Gate::new(b.limit));
        PriorityLimiter {
            shared: Arc::new(Shared {
                gate: gate.clone(),
                epoch: Instant::now(),
                state: Mutex::new(State::new(gate, b.max_queue, b.config)),
                waits: Mutex::new(Waits::new()),
                events: b.events,
                #[cfg(feature = "metrics")]
                metrics: instruments::Instruments::register(),
            }),
        }
    }

    /// Waits for a permit.
    ///
    /// Resolves at once when a permit is free and nobody waits; otherwise
    /// queues (which needs a tokio runtime with time enabled, for the queue
    /// timeout).
    ///
    /// # Errors
    ///
    /// [`Overloaded`] when the request is refused: the queue is full
    /// ([`Reason::QueueFull`]), it timed out ([`Reason::QueueTimeout`]), it
    /// was pushed out ([`Reason::Evicted`]), its deadline cannot be met
    /// ([`Reason::DeadlineUnmeetable`]) or emergency mode is on
    /// ([`Reason::Emergency`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the queue at once; a permit granted to it
    /// in the meantime is passed to the next waiter. Nothing is lost.
    pub fn acquire(&self, request: impl Into<AdmitRequest>) -> Acquire {
        Acquire::new(self.shared.clone(), request.into())
    }

    /// Takes a permit if one is free and nobody waits, without queueing.
    ///
    /// # Errors
    ///
    /// [`Overloaded`] with [`Reason::QueueFull`] (or [`Reason::Emergency`]).
    pub fn try_acquire(&self, request: impl Into<AdmitRequest>) -> Result<Permit, Overloaded> {
        let ask = Shared::ask(request.into());
        let p = ask.priority;
        if let Some(permit) = Shared::try_fast_for(&self.shared, &ask) {
            return Ok(permit);
        }
        let admitted = lock(&self.shared.state).admit_without_queue(ask, Instant::now());
        match admitted {
            Ok(()) => Ok(Permit::new(
                self.shared.clone(),
                p,
                self.shared.sample_hold(p),
            )),
            Err(refusal) => Err(self.shared.overloaded(p, refusal)),
        }
    }

    /// The fast path alone, for a request the layers have not yet taken
    /// apart: a permit when one is free, nobody waits and the request's
    /// deadline (if any) has not passed. Counts nothing as refused.
    #[inline]
    pub(crate) fn try_admit_now<R: PriorityOf + ?Sized>(&self, request: &R) -> Option<Permit> {
        // Read the deadline alone first: for request types without one the
        // check compiles away.
        if request.deadline().is_some_and(Deadline::is_expired) {
            return None;
        }
        Shared::try_fast(&self.shared, request.priority())
    }

    /// A handle through which others read and tune the limit, the queue bound
    /// and emergency mode.
    #[must_use]
    pub fn limit_handle(&self) -> LimitHandle {
        LimitHandle::new(self.clone())
    }

    /// What the limiter is doing now, and has done so far.
    ///
    /// Holds the queue's lock only to copy a few counters; the wait
    /// percentiles are read under a lock of their own.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let (queued, mut counts, in_flight, limit, max_queue, emergency, cancelled) = {
            let st = lock(&self.shared.state);
            (
                PerPriority::from_fn(|p| st.class_len(p)),
                PerPriority::from(st.stats.counts),
                st.in_flight(),
                st.limit(),
                st.max_queue,
                st.emergency(),
                st.stats.cancelled,
            )
        };
        let mut wait_p50 = PerPriority::default();
        let mut wait_p95 = PerPriority::default();
        let mut wait_p99 = PerPriority::default();
        let waits = lock(&self.shared.waits);
        for p in Priority::ALL {
            counts[p].admitted = self.shared.gate.admitted(p);
            [wait_p50[p], wait_p95[p], wait_p99[p]] =
                waits.quantiles(p, counts[p].admitted, [0.50, 0.95, 0.99]);
        }
        Snapshot {
            in_flight,
            limit,
            max_queue,
            emergency,
            queued,
            counts,
            cancelled,
            wait_p50,
            wait_p95,
            wait_p99,
        }
    }

    /// Sets the `metrics` gauges of the limiter's state: in flight, the
    /// limit, and the queue length per priority (names in
    /// `tower_pressure_core::metrics`). Counters of admissions and refusals
    /// and the queue-wait histogram are kept as they happen; gauges are set
    /// here, so call this from your metrics endpoint or on a timer rather
    /// than paying for it per request.
    #[cfg(feature = "metrics")]
    pub fn record_metrics(&self) {
        let (in_flight, limit, queued) = {
            let st = lock(&self.shared.state);
            (
                st.in_flight(),
                st.limit(),
                Priority::ALL.map(|p| st.class_len(p)),
            )
        };
        instruments::gauges(in_flight, limit, queued);
    }

    /// The concurrency limit.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.shared.gate.limit()
    }

    /// Sets the concurrency limit (at least 1). Raising it admits waiters at
    /// once; lowering it never revokes a permit: in-flight work drains.
    pub fn set_limit(&self, limit: usize) {
        let (old, new) = self.shared.with_wake(|st, now, wake| {
            let old = st.set_limit(limit, now, wake);
            (old, st.limit())
        });
        if old != new {
            self.shared
                .emit(|| Event::LimitChanged { from: old, to: new });
        }
    }

    /// Turns emergency mode on or off. While on, only `Critical` requests
    /// are admitted; turning it on refuses every non-critical waiter.
    pub fn set_emergency(&self, on: bool) {
        let was = self
            .shared
            .with_wake(|st, now, wake| st.set_emergency(on, now, wake));
        if was != on {
            self.shared.emit(|| {
                if on {
                    Event::EmergencyEntered
                } else {
                    Event::EmergencyLeft
                }
            });
        }
    }
}

impl LimitControl for PriorityLimiter {
    fn limit(&self) -> usize {
        PriorityLimiter::limit(self)
    }

    fn set_limit(&self, limit: usize) {
        PriorityLimiter::set_limit(self, limit);
    }

    fn in_flight(&self) -> usize {
        self.shared.gate.in_flight()
    }

    fn queue_len(&self) -> usize {
        lock(&self.shared.state).queue_len()
    }

    fn max_queue(&self) -> usize {
        lock(&self.shared.state).max_queue
    }

    fn set_max_queue(&self, max_queue: usize) {
        lock(&self.shared.state).max_queue = max_queue;
    }

    fn emergency(&self) -> bool {
        self.shared.gate.emergency()
    }

    fn set_emergency(&self, on: bool) {
        PriorityLimiter::set_emergency(self, on);
    }
}

impl fmt::Debug for PriorityLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.shared.state);
        f.debug_struct("PriorityLimiter")
            .field("limit", &st.limit())
            .field("in_flight", &st.in_flight())
            .field("queued", &st.queue_len())
            .field("max_queue", &st.max_queue)
            .finish()
    }
}

impl Shared {
    /// The lock-free fast path: a permit when one is free, nobody waits and
    /// no emergency is on. Times one such permit in 64 for the estimates.
    #[inline]
    pub(crate) fn try_fast(this: &Arc<Self>, p: Priority) -> Option<Permit> {
        if !this.gate.try_fast() {
            return None;
        }
        let n = this.gate.count_admission(p);
        Some(Permit::new(this.clone(), p, hold_sampled(n)))
    }

    /// The fast path for `ask`, skipped when its deadline has passed (the
    /// slow path then refuses it): the clock is read only for requests that
    /// carry a deadline.
    pub(crate) fn try_fast_for(this: &Arc<Self>, ask: &Ask) -> Option<Permit> {
        if ask.deadline.is_some_and(Deadline::is_expired) {
            return None;
        }
        Shared::try_fast(this, ask.priority)
    }

    /// Microseconds since the limiter was built, wrapping at 32 bits. Cold:
    /// on the fast path only one permit in 64 is timed.
    #[cold]
    fn micros_now(&self) -> u32 {
        // Truncation is the point: differences are taken wrapping.
        Instant::now()
            .saturating_duration_since(self.epoch)
            .as_micros() as u32
    }

    pub(crate) fn ask(r: AdmitRequest) -> Ask {
        Ask {
            priority: r.priority,
            deadline: r.deadline,
        }
    }

    /// Runs `f` under the lock, then wakes whoever it granted or refused.
    pub(crate) fn with_wake<T>(
        &self,
        f: impl FnOnce(&mut State, Instant, &mut Vec<Waker>) -> T,
    ) -> T {
        let mut wake = Vec::new();
        let out = {
            let mut st = lock(&self.state);
            f(&mut st, Instant::now(), &mut wake)
        };
        for w in wake {
            w.wake();
        }
        out
    }

    pub(crate) fn overloaded(&self, priority: Priority, r: queue::Refusal) -> Overloaded {
        self.emit(|| Event::Shed {
            layer: tower_pressure_core::metrics::LAYER_ADMISSION,
            priority,
            reason: r.reason,
        });
        #[cfg(feature = "metrics")]
        self.metrics.shed(priority, r.reason);
        Overloaded::new(r.reason, priority)
            .with_retry_after(r.retry_after)
            .with_queue_len(r.queue_len)
    }

    /// A waiter leaves the queue with its permit after `waited`.
    pub(crate) fn waited(&self, priority: Priority, waited: Duration) {
        lock(&self.waits).record(priority, waited);
        #[cfg(feature = "metrics")]
        self.metrics.waited(priority, waited);
    }

    pub(crate) fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(bus) = self.events.as_ref().filter(|b| b.has_subscribers()) {
            bus.emit(event());
        }
    }

    /// Whether to measure the hold of a permit just admitted to `p` under
    /// the lock without waiting: as on the fast path, by the class's
    /// admission count.
    pub(crate) fn sample_hold(&self, p: Priority) -> bool {
        hold_sampled(self.gate.admitted(p))
    }

    #[inline]
    pub(crate) fn admitted_metric(&self, _priority: Priority) {
        #[cfg(feature = "metrics")]
        self.metrics.admitted(_priority);
    }
}

/// Whether the `n`th admission of a class without a wait has its hold
/// measured: one in 64, so that the fast path rarely reads the clock.
#[inline]
fn hold_sampled(n: u64) -> bool {
    n % 64 == 1
}

/// What a [`PriorityLimiter`] is doing now, and has done so far.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Permits held now.
    pub in_flight: usize,
    /// The concurrency limit.
    pub limit: usize,
    /// The queue bound.
    pub max_queue: usize,
    /// Whether emergency mode is on.
    pub emergency: bool,
    /// Requests waiting now, by priority.
    pub queued: PerPriority<usize>,
    /// What happened to the requests of each priority so far.
    pub counts: PerPriority<ClassCounts>,
    /// Requests that left the queue because their caller went away.
    pub cancelled: u64,
    /// Median queue wait by priority, over every admission (zero waits included).
    pub wait_p50: PerPriority<Duration>,
    /// 95th percentile queue wait by priority.
    pub wait_p95: PerPriority<Duration>,
    /// 99th percentile queue wait by priority.
    pub wait_p99: PerPriority<Duration>,
}

impl Snapshot {
    /// Requests waiting now, all classes.
    #[must_use]
    pub fn queue_len(&self) -> usize {
        self.queued.values().sum()
    }
}
