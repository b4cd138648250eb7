//! The queue core: who holds a permit, who waits, and who goes next.
//!
//! Pure bookkeeping under the limiter's one mutex: no atomics but the gate's,
//! no clocks (the caller passes `now`), no async. Wakers to wake are
//! collected and woken by the caller after the lock is released.
//!
//! Work conservation holds by construction: a newcomer is admitted whenever
//! a permit is free and nobody waits, and every step that frees a permit or
//! changes the limit drains the queue, so nobody waits while a permit is
//! free. A refusal for load happens only to a request that would have to
//! wait.
//!
//! Each policy has a file of its own under `queue/`: the drain order and
//! adaptive LIFO (`drain`), push-out eviction (`evict`), emergency mode
//! (`emergency`), CoDel's mode (`codel`), and the measured waits and
//! standing queues that refuse at once what would only time out
//! (`estimate`).

use std::task::Waker;
use std::time::Duration;

use slab::Slab;
use tokio::time::Instant;

use crate::sync::Arc;
use tower_pressure_core::{Deadline, Priority, Reason};

use super::config::Config;
use super::gate::Gate;
use super::list::{Link, Linked, List, Which};
use super::stats::Stats;

mod codel;
mod drain;
mod emergency;
mod estimate;
mod evict;

use codel::CodelMode;
use drain::Credit;
use estimate::{Rates, Standing, Waiting};

/// The most a `retry_after` estimate advises.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// What a waiter is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Waiting,
    /// Holds a permit its future has not picked up yet.
    Granted,
    /// Refused while waiting; its future has not picked the reason up yet.
    Refused(Reason),
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) priority: Priority,
    pub(super) enqueued: Instant,
    /// How long it waited, once granted.
    waited: Duration,
    class_link: Link,
    all_link: Link,
    waker: Option<Waker>,
    pub(crate) status: Status,
}

impl Linked for Node {
    fn link(&mut self, which: Which) -> &mut Link {
        match which {
            Which::Class => &mut self.class_link,
            Which::All => &mut self.all_link,
        }
    }
}

/// A request for a permit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask {
    pub(crate) priority: Priority,
    pub(crate) deadline: Option<Deadline>,
}

/// How an arrival that missed the fast path got on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Entered {
    /// A permit was free after all: admitted without waiting.
    Admitted,
    /// It waits in the queue.
    Queued(Enqueued),
}

/// A request that has joined the queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Enqueued {
    pub(crate) key: usize,
    /// When the waiter gives up.
    pub(crate) give_up_at: Instant,
}

/// A request that could not be admitted or queued.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusal {
    pub(crate) reason: Reason,
    pub(crate) retry_after: Duration,
    pub(crate) queue_len: usize,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) gate: Arc<Gate>,
    pub(crate) max_queue: usize,
    config: Config,
    nodes: Slab<Node>,
    classes: [List; 5],
    all: List,
    /// The weighted-fair drain's credit per class.
    credit: Credit,
    /// Admissions made under the lock, by class; the rest of the gate's
    /// counts came through the lock-free fast path.
    locked_admissions: [u64; 5],
    /// The optional CoDel mode (adaptive LIFO).
    codel: CodelMode,
    /// Per class: whether its queue stands (see [`Standing`]).
    standing: [Standing; 5],
    /// Per class: how fast the classes above it take permits, and how fast
    /// its own waiters are admitted.
    rates: Rates,
    /// Admissions of waiters (after a wait), by class.
    drained: [u64; 5],
    /// How long each class has had waiters.
    waiting: [Waiting; 5],
    /// Arrivals that missed the fast path, by class, but those refused for
    /// what says nothing of the load (emergency mode, a lapsed deadline).
    arrived: [u64; 5],
    pub(crate) stats: Stats,
    /// The last eviction (victim's priority, newcomer's), for the caller's event.
    pub(crate) last_eviction: Option<(Priority, Priority)>,
}

impl State {
    pub(crate) fn new(gate: Arc<Gate>, max_queue: usize, config: Config) -> State {
        State {
            gate,
            max_queue,
            config,
            nodes: Slab::new(),
            classes: [List::default(); 5],
            all: List::default(),
            credit: Credit::default(),
            locked_admissions: [0; 5],
            codel: CodelMode::default(),
            standing: [Standing::default(); 5],
            rates: Rates::default(),
            drained: [0; 5],
            waiting: [Waiting::default(); 5],
            arrived: [0; 5],
            stats: Stats::new(),
            last_eviction: None,
        }
    }

    /// Requests waiting (not those granted or refused but not yet told).
    pub(crate) fn queue_len(&self) -> usize {
        self.all.len()
    }

    pub(crate) fn class_len(&self, p: Priority) -> usize {
        self.classes[p.index()].len()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.gate.in_flight()
    }

    pub(crate) fn limit(&self) -> usize {
        self.gate.limit()
    }

    /// Whether a newcomer would wait: no permit is free, or somebody waits.
    pub(crate) fn newcomer_waits(&self) -> bool {
        !self.all.is_empty() || self.gate.in_flight() >= self.gate.limit()
    }

    /// The slow path of an arrival, after the fast path failed: admits it
    /// when a permit is free and nobody waits, else queues it, else refuses
    /// it. Queueing may refuse an evicted waiter: its waker goes to `wake`.
    ///
    /// The checks, in order: emergency mode; the request's own deadline
    /// already passed; a free permit (admitted); its estimated wait against
    /// its budget and its deadline (refused at once what would only time
    /// out); its class's cap; the queue bound (push-out of a lower waiter).
    pub(crate) fn enqueue(
        &mut self,
        ask: Ask,
        now: Instant,
        waker: Option<Waker>,
        wake: &mut Vec<Waker>,
    ) -> Result<Entered, Refusal> {
        let p = ask.priority;
        if !self.allowed(p) {
            return Err(self.refuse(p, Reason::Emergency));
        }
        if ask.deadline.is_some_and(|d| d.instant() <= now) {
            return Err(self.refuse(p, Reason::DeadlineUnmeetable));
        }
        self.arrived[p.index()] += 1;
        self.expire_codel(now, wake);
        if self.all.is_empty() && self.gate.admit_locked() {
            self.count_locked_admission(p, Duration::ZERO, now);
            self.codel.caught_up();
            return Ok(Entered::Admitted);
        }
        // Refuse at once what would only time out in the queue: the caller
        // learns in microseconds what it would otherwise learn at its
        // deadline or its class's queue timeout.
        self.rates
            .update(self.counts(now), &self.config.timeouts, now);
        let standing = self.standing(p, now, wake);
        let estimate = self.estimated_wait(p, now);
        if estimate > self.budget(p, standing) {
            return Err(self.refuse_for_load(p, Reason::DeadlineUnmeetable, now));
        }
        if ask
            .deadline
            .is_some_and(|d| d.instant().saturating_duration_since(now) < estimate)
        {
            return Err(self.refuse(p, Reason::DeadlineUnmeetable));
        }
        let class_full =
            self.config.class_caps[p.index()].is_some_and(|cap| self.class_len(p) >= cap);
        if class_full {
            // A class at its cap may only make room within itself: nothing to evict.
            return Err(self.refuse_for_load(p, Reason::QueueFull, now));
        }
        if self.all.len() >= self.max_queue && !self.evict_for(p, now, wake) {
            return Err(self.refuse_for_load(p, Reason::QueueFull, now));
        }
        // Computed before anything is linked: nothing below may fail.
        let mut timeout = self.config.timeouts[p.index()];
        if let Some(c) = self.codel_timeout_for(p) {
            timeout = timeout.min(c.target);
        }
        let mut give_up_at = now.checked_add(timeout).unwrap_or(now);
        if let Some(d) = ask.deadline {
            give_up_at = give_up_at.min(d.instant());
        }
        let key = self.nodes.insert(Node {
            priority: p,
            enqueued: now,
            waited: Duration::ZERO,
            class_link: Link::default(),
            all_link: Link::default(),
            waker,
            status: Status::Waiting,
        });
        self.classes[p.index()].push_back(&mut self.nodes, key, Which::Class);
        self.waiting[p.index()].start(now);
        self.all.push_back(&mut self.nodes, key, Which::All);
        // From now on releases come through the lock; one that came before
        // the flag freed a permit the drain below grants.
        self.gate.flag_waiters();
        self.codel.fell_behind(now, self.fast_admissions());
        self.drain(now, wake);
        Ok(Entered::Queued(Enqueued { key, give_up_at }))
    }

    /// Without queueing: admits when a permit is free and nobody waits.
    pub(crate) fn admit_without_queue(&mut self, ask: Ask, now: Instant) -> Result<(), Refusal> {
        let p = ask.priority;
        if !self.allowed(p) {
            return Err(self.refuse(p, Reason::Emergency));
        }
        if ask.deadline.is_some_and(|d| d.instant() <= now) {
            return Err(self.refuse(p, Reason::DeadlineUnmeetable));
        }
        self.arrived[p.index()] += 1;
        if self.all.is_empty() && self.gate.admit_locked() {
            self.count_locked_admission(p, Duration::ZERO, now);
            self.codel.caught_up();
            return Ok(());
        }
        // The caller chose not to wait: this says nothing of the queue.
        Err(self.refuse(p, Reason::QueueFull))
    }

    /// Counts and describes a refusal of a `p` request that says nothing of
    /// the load: emergency mode, the request's own deadline, a caller that
    /// would not wait.
    fn refuse(&mut self, p: Priority, reason: Reason) -> Refusal {
        self.stats.refused(p, reason);
        self.refusal_of(reason)
    }

    /// A newcomer refused for load, which keeps CoDel's mode on.
    fn refuse_for_load(&mut self, p: Priority, reason: Reason, now: Instant) -> Refusal {
        self.codel.turned_away(now);
        self.stats.refused(p, reason);
        self.refusal_of(reason)
    }

    /// A waiter leaves the queue refused for load (timed out, evicted,
    /// CoDel's short timeout): it waited longer than any target.
    fn refused_waiter(&mut self, key: usize, reason: Reason, now: Instant, wake: &mut Vec<Waker>) {
        let node = &self.nodes[key];
        let (p, waited) = (node.priority, now.saturating_duration_since(node.enqueued));
        self.codel.turned_away(now);
        self.waited_past(p, waited, now);
        self.stats.refused(p, reason);
        self.finish(key, Status::Refused(reason), now, wake);
    }

    /// Looks at waiter `key`: `Some(Ok(waited))` granted, `Some(Err)` refused
    /// (the node is then gone), `None` still waiting (its waker is updated).
    pub(crate) fn poll(&mut self, key: usize, waker: &Waker) -> Option<Result<Duration, Refusal>> {
        let node = &mut self.nodes[key];
        match node.status {
            Status::Waiting => {
                if !node.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    node.waker = Some(waker.clone());
                }
                None
            }
            Status::Granted => Some(Ok(self.nodes.remove(key).waited)),
            Status::Refused(r) => {
                self.nodes.remove(key);
                Some(Err(self.refusal_of(r)))
            }
        }
    }

    /// Waiter `key` gives up at its timeout. Granted in the meantime, it keeps
    /// the permit (`Ok(waited)`); otherwise it leaves the queue with the reason.
    pub(crate) fn time_out(&mut self, key: usize, now: Instant) -> Result<Duration, Refusal> {
        match self.nodes[key].status {
            Status::Granted => Ok(self.nodes.remove(key).waited),
            Status::Refused(reason) => {
                self.nodes.remove(key);
                Err(self.refusal_of(reason))
            }
            Status::Waiting => {
                let mut none = Vec::new();
                self.refused_waiter(key, Reason::QueueTimeout, now, &mut none);
                self.nodes.remove(key);
                Err(self.refusal_of(Reason::QueueTimeout))
            }
        }
    }

    fn refusal_of(&self, reason: Reason) -> Refusal {
        Refusal {
            reason,
            retry_after: self.retry_after(),
            queue_len: self.queue_len(),
        }
    }

    /// Waiter `key`'s future was dropped. A permit granted to it meanwhile is
    /// passed on.
    pub(crate) fn cancel(&mut self, key: usize, now: Instant, wake: &mut Vec<Waker>) {
        match self.nodes[key].status {
            Status::Waiting => {
                self.unlink(key, now);
                self.nodes.remove(key);
                self.stats.cancelled += 1;
            }
            Status::Granted => {
                self.nodes.remove(key);
                self.release(None, now, wake);
            }
            Status::Refused(_) => {
                self.nodes.remove(key);
            }
        }
    }

    /// A permit comes back, held for `held` if measured.
    pub(crate) fn release(&mut self, held: Option<Duration>, now: Instant, wake: &mut Vec<Waker>) {
        self.gate.release();
        if let Some(h) = held {
            self.stats.held(h, now);
        }
        self.drain(now, wake);
    }

    pub(crate) fn set_limit(&mut self, limit: usize, now: Instant, wake: &mut Vec<Waker>) -> usize {
        let old = self.gate.limit();
        self.gate.set_limit(limit.max(1));
        self.drain(now, wake);
        old
    }

    /// Grants free permits to waiters, in drain order.
    fn drain(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        self.expire_codel(now, wake);
        // While anybody waits, `WAITERS` is set and only this lock holder
        // changes the count, so the check and the grant cannot be raced.
        while self.gate.in_flight() < self.gate.limit() {
            let Some(key) = self.pick() else { break };
            let node = &self.nodes[key];
            let (p, waited) = (node.priority, now.saturating_duration_since(node.enqueued));
            self.gate.grant();
            self.count_locked_admission(p, waited, now);
            self.drained[p.index()] += 1;
            self.nodes[key].waited = waited;
            // Last: taking the last waiter out clears `WAITERS`.
            self.finish(key, Status::Granted, now, wake);
        }
        if self.all.is_empty() && self.gate.in_flight() < self.gate.limit() {
            self.codel.caught_up();
        }
    }

    /// An admission under the lock of a `p` request that waited `waited`.
    fn count_locked_admission(&mut self, p: Priority, waited: Duration, now: Instant) {
        self.gate.count_admission(p);
        self.locked_admissions[p.index()] += 1;
        self.waited_past(p, waited, now);
    }

    /// Admissions through the lock-free fast path so far, all classes.
    fn fast_admissions(&self) -> u64 {
        self.gate.admitted_total() - self.locked_admissions.iter().sum::<u64>()
    }

    /// Admissions of class `p` through the lock-free fast path so far.
    fn fast_admissions_of(&self, p: Priority) -> u64 {
        self.gate.admitted(p) - self.locked_admissions[p.index()]
    }

    /// Takes waiter `key` out of the queue with its outcome and collects its waker.
    fn finish(&mut self, key: usize, status: Status, now: Instant, wake: &mut Vec<Waker>) {
        self.unlink(key, now);
        let node = &mut self.nodes[key];
        node.status = status;
        wake.extend(node.waker.take());
    }

    fn unlink(&mut self, key: usize, now: Instant) {
        let p = self.nodes[key].priority;
        self.classes[p.index()].remove(&mut self.nodes, key, Which::Class);
        self.all.remove(&mut self.nodes, key, Which::All);
        if self.classes[p.index()].is_empty() {
            self.waiting[p.index()].stop(now);
        }
        if self.all.is_empty() {
            self.gate.clear_waiters();
            // A class that stops waiting starts afresh next time.
            self.credit.reset();
        } else if self.classes[p.index()].is_empty() {
            self.credit.class_emptied(p);
        }
    }

    /// When a refused client should try again: the time to drain the queue
    /// at the measured rate, between 1 s and [`MAX_RETRY_AFTER`].
    pub(crate) fn retry_after(&self) -> Duration {
        let drain = self
            .stats
            .mean_hold()
            .mul_f64((self.queue_len() + 1) as f64 / self.gate.limit() as f64);
        drain.clamp(tower_pressure_core::MIN_RETRY_AFTER, MAX_RETRY_AFTER)
    }

    /// Checks the bookkeeping (tests only).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let waiting = self
            .nodes
            .iter()
            .filter(|(_, n)| n.status == Status::Waiting)
            .count();
        assert_eq!(
            waiting,
            self.all.len(),
            "every waiting node is in the global list"
        );
        let per_class: usize = self.classes.iter().map(List::len).sum();
        assert_eq!(
            per_class,
            self.all.len(),
            "every waiter is in exactly one class list"
        );
        let mut walked = 0;
        let mut cur = self.all.head();
        while let Some(k) = cur {
            walked += 1;
            assert!(walked <= self.all.len(), "the global list has a cycle");
            assert_eq!(self.nodes[k].status, Status::Waiting);
            cur = self.nodes[k].all_link.next();
        }
        assert_eq!(walked, self.all.len());
        assert!(
            self.all.is_empty() || self.gate.in_flight() >= self.gate.limit(),
            "work conservation: {} waiting while {} of {} permits are out",
            self.all.len(),
            self.gate.in_flight(),
            self.gate.limit()
        );
    }
}
