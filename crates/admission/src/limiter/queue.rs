//! The queue core: who holds a permit, who waits, and who goes next.
//!
//! Pure bookkeeping under the limiter's one mutex: no atomics, no clocks (the
//! caller passes `now`), no async. Wakers to wake are collected and woken by
//! the caller after the lock is released.

use std::task::Waker;
use std::time::Duration;

use slab::Slab;
use tokio::time::Instant;

use crate::sync::Arc;
use tower_pressure_core::{Deadline, Priority, Reason};

use super::config::{Config, Drain};
use super::gate::Gate;
use super::list::{Link, Linked, List, Which};
use super::stats::{ClassCounts, Stats};

mod estimate;

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
    enqueued: Instant,
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
    /// Smooth weighted round-robin credit per class.
    credit: [f64; 5],
    /// Since when no permit has been free with nobody waiting (CoDel), and
    /// how many fast-path admissions there had been then: one since means a
    /// permit was free with nobody waiting, so the service had caught up.
    busy_since: Option<(Instant, u64)>,
    /// Admissions made under the lock; the rest of the gate's count came
    /// through the lock-free fast path.
    locked_admissions: u64,
    /// CoDel's standing-queue mode.
    codel: CodelMode,
    pub(crate) stats: Stats,
    /// The last eviction (victim's priority, newcomer's), for the caller's event.
    pub(crate) last_eviction: Option<(Priority, Priority)>,
    /// Arrivals per second by class, refreshed by the slow path.
    arrival_rate: [estimate::ArrivalRate; 5],
    /// When the current rate window began, and the arrival totals then.
    rate_window: Option<(Instant, [u64; 5])>,
    /// Whether a rate window has closed yet: until then the arrival rates
    /// say nothing.
    rates_measured: bool,
    /// Until when each class outranks the classes below it, after it was
    /// refused for load twice within the window (see `outrank_window`).
    refused_until: [Option<Instant>; 5],
    /// When each class was last refused for load.
    last_refused: [Option<Instant>; 5],
}

/// CoDel's standing-queue mode: entered once the service has been behind
/// (no permit free with nobody waiting) for the interval; left once it is
/// no longer behind and an interval has passed with no refusal. Leaving at
/// the first free permit instead would make the mode flap: its own short
/// timeouts empty the queue, a permit comes back to nobody, and the next
/// interval would queue with the long class timeouts again.
#[derive(Debug, Default)]
struct CodelMode {
    on: bool,
    /// Refusals counted when last looked at, and when that count last grew.
    refused_seen: u64,
    last_refusal: Option<Instant>,
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
            credit: [0.0; 5],
            busy_since: None,
            locked_admissions: 0,
            codel: CodelMode::default(),
            stats: Stats::new(),
            last_eviction: None,
            arrival_rate: [estimate::ArrivalRate::default(); 5],
            rate_window: None,
            rates_measured: false,
            refused_until: [None; 5],
            last_refused: [None; 5],
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

    pub(crate) fn emergency(&self) -> bool {
        self.gate.emergency()
    }

    fn allowed(&self, p: Priority) -> bool {
        p == Priority::Critical || !self.gate.emergency()
    }

    /// The slow path of an arrival, after the fast path failed: admits it
    /// when a permit is free and nobody waits, else queues it, else refuses
    /// it. Queueing may refuse an evicted waiter: its waker goes to `wake`.
    pub(crate) fn enqueue(
        &mut self,
        ask: Ask,
        now: Instant,
        waker: Option<Waker>,
        wake: &mut Vec<Waker>,
    ) -> Result<Entered, Refusal> {
        let p = ask.priority;
        if !self.allowed(p) {
            return Err(self.refuse_not_load(p, Reason::Emergency));
        }
        // Rates first: whether a class above is overloaded depends on them.
        self.update_arrival_rates(now);
        if self.outranked(p, now) {
            return Err(self.refuse(p, Reason::QueueFull));
        }
        self.expire_standing(now, wake);
        let expired = ask.deadline.is_some_and(|d| d.instant() <= now);
        if !expired && self.all.is_empty() && self.gate.admit_locked() {
            self.count_locked_admission(p);
            self.caught_up();
            return Ok(Entered::Admitted);
        }
        // Refuse at once what would only time out in the queue: the caller
        // learns in microseconds what it would otherwise learn at its
        // deadline or its class's queue timeout.
        let estimate = self.estimated_wait(p);
        let timeout = self.config.timeouts[p.index()];
        if estimate > timeout.mul_f64(self.margin(p)) || self.hopeless_newcomer(p, timeout) {
            self.refused_for_load(p, now, wake);
            return Err(self.refuse(p, Reason::DeadlineUnmeetable));
        }
        if let Some(d) = ask.deadline {
            let remaining = d.instant().saturating_duration_since(now);
            if remaining.is_zero() || remaining < estimate {
                return Err(self.refuse_not_load(p, Reason::DeadlineUnmeetable));
            }
        }
        let class_full =
            self.config.class_caps[p.index()].is_some_and(|cap| self.class_len(p) >= cap);
        if class_full {
            // A class at its cap may only make room within itself: nothing to evict.
            self.refused_for_load(p, now, wake);
            return Err(self.refuse(p, Reason::QueueFull));
        }
        if self.all.len() >= self.max_queue && !self.evict_for(p, now, wake) {
            self.refused_for_load(p, now, wake);
            return Err(self.refuse(p, Reason::QueueFull));
        }
        let key = self.nodes.insert(Node {
            priority: p,
            enqueued: now,
            class_link: Link::default(),
            all_link: Link::default(),
            waker,
            status: Status::Waiting,
        });
        self.classes[p.index()].push_back(&mut self.nodes, key, Which::Class);
        self.all.push_back(&mut self.nodes, key, Which::All);
        // From now on releases come through the lock; one that came before
        // the flag freed a permit the drain below grants.
        self.gate.flag_waiters();
        if self.busy_since.is_none() {
            self.busy_since = Some((now, self.fast_admissions()));
        }
        let mut timeout = self.config.timeouts[p.index()];
        if let Some(c) = self
            .config
            .codel
            .filter(|_| p != Priority::Critical && self.standing())
        {
            timeout = timeout.min(c.target);
        }
        let mut give_up_at = now + timeout;
        if let Some(d) = ask.deadline {
            give_up_at = give_up_at.min(d.instant());
        }
        self.drain(now, wake);
        self.shed_hopeless(p, now, wake);
        Ok(Entered::Queued(Enqueued { key, give_up_at }))
    }

    /// Without queueing: admits when a permit is free and nobody waits.
    pub(crate) fn admit_without_queue(&mut self, ask: Ask, now: Instant) -> Result<(), Refusal> {
        let p = ask.priority;
        if !self.allowed(p) {
            return Err(self.refuse_not_load(p, Reason::Emergency));
        }
        self.update_arrival_rates(now);
        if self.outranked(p, now) {
            return Err(self.refuse(p, Reason::QueueFull));
        }
        if ask.deadline.is_some_and(Deadline::is_expired) {
            return Err(self.refuse_not_load(p, Reason::DeadlineUnmeetable));
        }
        if self.all.is_empty() && self.gate.admit_locked() {
            self.count_locked_admission(p);
            self.caught_up();
            return Ok(());
        }
        Err(self.refuse(p, Reason::QueueFull))
    }

    /// Refuses the newest waiter of the lowest class below `p` to make room.
    fn evict_for(&mut self, p: Priority, now: Instant, wake: &mut Vec<Waker>) -> bool {
        let victim = Priority::ALL
            .into_iter()
            .take_while(|&q| q < p)
            .find_map(|q| self.classes[q.index()].tail());
        match victim {
            Some(key) => {
                self.last_eviction = Some((self.nodes[key].priority, p));
                let victim = self.nodes[key].priority;
                self.stats.refused(victim, Reason::Evicted);
                self.finish(key, Status::Refused(Reason::Evicted), wake);
                self.outrank_below(victim, now);
                true
            }
            None => false,
        }
    }

    /// A refusal at arrival that says nothing of the load — the request's
    /// own deadline, emergency mode — and so is left out of the arrival
    /// rates: a client sending requests with lapsed deadlines must not make
    /// its class look overloaded and shut out the classes below it.
    fn refuse_not_load(&mut self, p: Priority, reason: Reason) -> Refusal {
        self.stats.not_load[p.index()] += 1;
        self.refuse(p, reason)
    }

    /// Counts and describes a refusal of a `p` request.
    fn refuse(&mut self, p: Priority, reason: Reason) -> Refusal {
        self.stats.refused(p, reason);
        Refusal {
            reason,
            retry_after: self.retry_after(),
            queue_len: self.queue_len(),
        }
    }

    /// Looks at waiter `key`: `Some(Ok)` granted, `Some(Err)` refused (the
    /// node is then gone), `None` still waiting (its waker is updated).
    pub(crate) fn poll(&mut self, key: usize, waker: &Waker) -> Option<Result<(), Refusal>> {
        let node = &mut self.nodes[key];
        match node.status {
            Status::Waiting => {
                if !node.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    node.waker = Some(waker.clone());
                }
                None
            }
            Status::Granted => {
                self.nodes.remove(key);
                Some(Ok(()))
            }
            Status::Refused(r) => {
                self.nodes.remove(key);
                Some(Err(self.refusal_of(r)))
            }
        }
    }

    /// Waiter `key` gives up at its timeout. Granted in the meantime, it keeps
    /// the permit (`Ok`); otherwise it leaves the queue with the reason.
    pub(crate) fn time_out(&mut self, key: usize, now: Instant) -> Result<(), Refusal> {
        match self.nodes[key].status {
            Status::Granted => {
                self.nodes.remove(key);
                Ok(())
            }
            Status::Refused(reason) => {
                self.nodes.remove(key);
                Err(self.refusal_of(reason))
            }
            Status::Waiting => {
                let p = self.nodes[key].priority;
                self.unlink(key);
                self.nodes.remove(key);
                self.stats.refused(p, Reason::QueueTimeout);
                self.outrank_below(p, now);
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
                self.unlink(key);
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

    /// Turns emergency mode on (refusing every waiting non-critical request)
    /// or off. Returns the previous setting.
    pub(crate) fn set_emergency(&mut self, on: bool, now: Instant, wake: &mut Vec<Waker>) -> bool {
        let was = self.gate.emergency();
        self.gate.set_emergency(on);
        if on {
            for p in Priority::ALL
                .into_iter()
                .filter(|&p| p != Priority::Critical)
            {
                while let Some(key) = self.classes[p.index()].head() {
                    self.stats.refused(p, Reason::Emergency);
                    self.finish(key, Status::Refused(Reason::Emergency), wake);
                }
            }
        }
        self.drain(now, wake);
        was
    }

    /// Whether a class above `p` outranks it: refused for load twice within
    /// the outrank window, or [`overloaded`](Self::overloaded) by the
    /// measured rates. Clears the gate's flag once no class does either.
    fn outranked(&mut self, p: Priority, now: Instant) -> bool {
        let mut any = false;
        let mut above = false;
        for (i, until) in self.refused_until.iter_mut().enumerate() {
            match *until {
                Some(t) if t > now => {
                    any = true;
                    above |= i > p.index();
                }
                Some(_) => *until = None,
                None => {}
            }
        }
        let overloaded = self.highest_overloaded(now);
        if !any && overloaded.is_none() {
            self.gate.set_outranking(false);
        }
        above || overloaded.is_some_and(|r| r > p)
    }

    /// A `p` newcomer is refused for load: it may start outranking the
    /// classes below (see [`outrank_below`](Self::outrank_below)), and the
    /// lower waiters the rates now say cannot make it are told so. Left
    /// queued, they would take the permits that come free in the moments
    /// `p` has nobody waiting — capacity the refused class is short of.
    fn refused_for_load(&mut self, p: Priority, now: Instant, wake: &mut Vec<Waker>) {
        self.outrank_below(p, now);
        self.shed_hopeless(p, now, wake);
    }

    /// A `p` request was refused for load. The second such refusal within
    /// the outrank window (a class being turned away, not one unlucky
    /// request) keeps every newcomer below `p` out for the window. Those
    /// below it already waiting are not flushed: they are served only when
    /// no higher class waits, and refusing them all after their wait would
    /// make slow refusals of what could be fast ones — only those the rates
    /// say cannot make it are shed (see [`refused_for_load`](Self::refused_for_load)).
    fn outrank_below(&mut self, p: Priority, now: Instant) {
        let window = self.config.outrank_window;
        if window.is_zero() || self.config.drain != Drain::Priority {
            return;
        }
        let i = p.index();
        let again = self.last_refused[i].is_some_and(|t| now.saturating_duration_since(t) < window);
        self.last_refused[i] = Some(now);
        if again {
            self.refused_until[i] = Some(now + window);
            self.gate.set_outranking(true);
        }
    }

    /// Grants free permits to waiters, in drain order.
    fn drain(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        self.expire_standing(now, wake);
        // While anybody waits, `WAITERS` is set and only this lock holder
        // changes the count, so the check and the grant cannot be raced.
        while self.gate.in_flight() < self.gate.limit() {
            let Some(key) = self.pick() else { break };
            let node = &self.nodes[key];
            let (p, waited) = (node.priority, now.saturating_duration_since(node.enqueued));
            self.gate.grant();
            self.count_locked_admission(p);
            self.stats.waited(p, waited);
            // Last: taking the last waiter out clears `WAITERS`.
            self.finish(key, Status::Granted, wake);
        }
        if self.all.is_empty() && self.gate.in_flight() < self.gate.limit() {
            self.caught_up();
        }
    }

    fn count_locked_admission(&mut self, p: Priority) {
        self.gate.count_admission(p);
        self.locked_admissions += 1;
    }

    /// Admissions through the lock-free fast path so far.
    fn fast_admissions(&self) -> u64 {
        self.gate.admitted_total() - self.locked_admissions
    }

    /// The service has caught up: a permit is free and nobody waits. (A
    /// queue emptied by admission, refusals or timeouts while every permit
    /// stays taken has not: under CoDel the queue is still standing, and the
    /// next waiter would only wait again.)
    fn caught_up(&mut self) {
        self.busy_since = None;
    }

    /// Whether the CoDel mode is on (see [`CodelMode`]); as of the last
    /// [`update_codel`](Self::update_codel).
    fn standing(&self) -> bool {
        self.codel.on
    }

    /// Enters or leaves the CoDel mode.
    fn update_codel(&mut self, now: Instant) {
        let Some(c) = self.config.codel else { return };
        // A fast-path admission since the service fell behind found a permit
        // free with nobody waiting: it had caught up, unseen by the lock.
        if self
            .busy_since
            .is_some_and(|(_, seen)| seen != self.fast_admissions())
        {
            self.caught_up();
        }
        let refused: u64 = self.stats.counts.iter().map(ClassCounts::refused).sum();
        if refused != self.codel.refused_seen {
            self.codel.refused_seen = refused;
            self.codel.last_refusal = Some(now);
        }
        let behind = self
            .busy_since
            .is_some_and(|(since, _)| now.saturating_duration_since(since) >= c.interval);
        let refusing = self
            .codel
            .last_refusal
            .is_some_and(|t| now.saturating_duration_since(t) < c.interval);
        self.codel.on = behind || (self.codel.on && refusing);
    }

    /// Under a standing queue, refuses waiters older than the CoDel target.
    fn expire_standing(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        let Some(c) = self.config.codel else { return };
        self.update_codel(now);
        if !self.standing() {
            return;
        }
        // Each class list is in arrival order, so its head is its oldest.
        // `Critical` keeps its own timeout: it is the work that must not be
        // refused while anything else is served.
        for p in Priority::ALL
            .into_iter()
            .filter(|&p| p != Priority::Critical)
        {
            while let Some(key) = self.classes[p.index()].head() {
                if now.saturating_duration_since(self.nodes[key].enqueued) <= c.target {
                    break;
                }
                self.stats.refused(p, Reason::QueueTimeout);
                self.finish(key, Status::Refused(Reason::QueueTimeout), wake);
                self.outrank_below(p, now);
            }
        }
    }

    /// The next waiter to admit.
    fn pick(&mut self) -> Option<usize> {
        if self.all.is_empty() {
            return None;
        }
        let lifo = self.standing();
        let from_class = |list: &List| if lifo { list.tail() } else { list.head() };
        match self.config.drain {
            // `Critical` stays first come, first served: with its timeout
            // kept, LIFO would only let new Critical requests starve old ones.
            Drain::Priority => self.classes[Priority::Critical.index()]
                .head()
                .or_else(|| self.classes.iter().rev().skip(1).find_map(from_class)),
            Drain::Fifo if !lifo => self.all.head(),
            Drain::Fifo | Drain::Lifo => self.all.tail(),
            Drain::WeightedFair => {
                // Smooth weighted round-robin over the classes that wait.
                let mut total = 0.0;
                let mut best: Option<usize> = None;
                for i in 0..self.classes.len() {
                    if self.classes[i].is_empty() {
                        continue;
                    }
                    self.credit[i] += self.config.weights[i];
                    total += self.config.weights[i];
                    if best.is_none_or(|b| self.credit[i] > self.credit[b]) {
                        best = Some(i);
                    }
                }
                let b = best?;
                self.credit[b] -= total;
                from_class(&self.classes[b])
            }
        }
    }

    /// Takes waiter `key` out of the queue with its outcome and collects its waker.
    fn finish(&mut self, key: usize, status: Status, wake: &mut Vec<Waker>) {
        self.unlink(key);
        let node = &mut self.nodes[key];
        node.status = status;
        wake.extend(node.waker.take());
    }

    fn unlink(&mut self, key: usize) {
        let p = self.nodes[key].priority;
        self.classes[p.index()].remove(&mut self.nodes, key, Which::Class);
        self.all.remove(&mut self.nodes, key, Which::All);
        if self.all.is_empty() {
            self.gate.clear_waiters();
            // A class that stops waiting starts afresh next time.
            self.credit = [0.0; 5];
        } else if self.classes[p.index()].is_empty() {
            self.credit[p.index()] = 0.0;
        }
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
    }
}
