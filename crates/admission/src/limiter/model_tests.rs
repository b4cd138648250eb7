//! The queue core under random histories of arrivals (with and without
//! deadlines), cancellations, releases with measured hold times, timeouts,
//! limit changes, emergency mode and the passing of time.
//!
//! Two properties. Under [`Drain::Priority`] the core matches a simple
//! reference model, except that it may refuse at once
//! (`DeadlineUnmeetable`) a newcomer the model says would have to wait,
//! and drop the old waiters of a class it finds standing as a newcomer of
//! that class arrives: the estimates are measured, the model does not
//! measure. Under every
//! drain, with and without CoDel, the invariants hold: work conservation
//! (nobody waits while a permit is free; a refusal for load only ever
//! meets a newcomer that would wait), the queue bound, the limit, and no
//! permit lost.

use std::collections::BTreeMap;
use std::task::Waker;
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;
use tower_pressure_core::{Deadline, Priority, Reason};

use super::config::{Codel, Drain, PriorityLimiterBuilder};
use super::gate::Gate;
use super::queue::{Ask, Entered, State};
use crate::sync::Arc;

#[derive(Debug, Clone, Copy)]
enum Due {
    /// No deadline.
    None,
    /// A deadline already passed.
    Passed,
    /// A deadline this many milliseconds ahead.
    In(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Acquire(Priority, Due),
    /// The future of the i-th live request (waiting or holding) is dropped.
    Cancel(usize),
    /// The i-th holder finishes.
    Release(usize),
    /// The i-th waiter times out.
    Timeout(usize),
    SetLimit(usize),
    Emergency(bool),
    /// Time passes, in milliseconds.
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let due = prop_oneof![
        6 => Just(Due::None),
        1 => Just(Due::Passed),
        2 => (1u64..400).prop_map(Due::In),
    ];
    prop_oneof![
        6 => ((0usize..5), due).prop_map(|(i, d)| Op::Acquire(Priority::from_index(i).unwrap(), d)),
        1 => any::<usize>().prop_map(Op::Cancel),
        4 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Timeout),
        1 => (1usize..6).prop_map(Op::SetLimit),
        1 => prop_oneof![4 => Just(false), 1 => Just(true)].prop_map(Op::Emergency),
        3 => (0u64..150).prop_map(Op::Advance),
    ]
}

/// Where one request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Waiting,
    Holding,
    Done,
    Refused(Reason),
}

/// Refusals that need no load: emergency mode and a lapsed deadline. Every
/// other refusal of a newcomer must find it one that would wait.
fn needs_no_load(r: Reason, due: Due) -> bool {
    r == Reason::Emergency || (r == Reason::DeadlineUnmeetable && matches!(due, Due::Passed))
}

/// The reference: a plain list, scanned in full at every step.
#[derive(Debug)]
struct Model {
    limit: usize,
    max_queue: usize,
    in_flight: usize,
    emergency: bool,
    /// (id, priority) in arrival order.
    queue: Vec<(usize, Priority)>,
    fate: BTreeMap<usize, Fate>,
}

impl Model {
    fn would_wait(&self) -> bool {
        self.in_flight >= self.limit || !self.queue.is_empty()
    }

    /// An arrival; `estimate_refused` when the core refused it for its
    /// estimated wait, which the model takes as given once it has checked
    /// that the request would have waited.
    fn acquire(&mut self, id: usize, p: Priority, due: Due, estimate_refused: bool) {
        if self.emergency && p != Priority::Critical {
            self.fate.insert(id, Fate::Refused(Reason::Emergency));
            return;
        }
        if matches!(due, Due::Passed) {
            self.fate
                .insert(id, Fate::Refused(Reason::DeadlineUnmeetable));
            return;
        }
        if !self.would_wait() {
            self.in_flight += 1;
            self.fate.insert(id, Fate::Holding);
            return;
        }
        if estimate_refused {
            self.fate
                .insert(id, Fate::Refused(Reason::DeadlineUnmeetable));
            return;
        }
        if self.queue.len() >= self.max_queue {
            // The newest waiter of the lowest class below p.
            let victim = Priority::ALL
                .into_iter()
                .take_while(|&q| q < p)
                .find_map(|q| self.queue.iter().rposition(|&(_, qp)| qp == q));
            match victim {
                Some(i) => {
                    let (vid, _) = self.queue.remove(i);
                    self.fate.insert(vid, Fate::Refused(Reason::Evicted));
                }
                None => {
                    self.fate.insert(id, Fate::Refused(Reason::QueueFull));
                    return;
                }
            }
        }
        self.queue.push((id, p));
        self.fate.insert(id, Fate::Waiting);
        self.drain();
    }

    fn drain(&mut self) {
        while self.in_flight < self.limit && !self.queue.is_empty() {
            // Highest class first, oldest within it.
            let best = self.queue.iter().map(|&(_, p)| p).max().unwrap();
            let i = self.queue.iter().position(|&(_, p)| p == best).unwrap();
            let (id, _) = self.queue.remove(i);
            self.in_flight += 1;
            self.fate.insert(id, Fate::Holding);
        }
    }

    fn release(&mut self, id: usize) {
        self.in_flight -= 1;
        self.fate.insert(id, Fate::Done);
        self.drain();
    }

    fn set_emergency(&mut self, on: bool) {
        self.emergency = on;
        if on {
            for (id, p) in std::mem::take(&mut self.queue) {
                if p == Priority::Critical {
                    self.queue.push((id, p));
                } else {
                    self.fate.insert(id, Fate::Refused(Reason::Emergency));
                }
            }
        }
        self.drain();
    }

    fn leave_queue(&mut self, id: usize, fate: Fate) {
        self.queue.retain(|&(q, _)| q != id);
        self.fate.insert(id, fate);
    }
}

/// The core under test, driven the way the futures and permits drive it.
struct Harness {
    st: State,
    gate: Arc<Gate>,
    now: Instant,
    wake: Vec<Waker>,
    /// id -> slab key of requests that went through the queue and have not
    /// picked up their outcome.
    keys: BTreeMap<usize, usize>,
    /// What each request has seen so far.
    fate: BTreeMap<usize, Fate>,
    /// When each holder got its permit.
    granted: BTreeMap<usize, Instant>,
    limit_seen: usize,
}

impl Harness {
    fn new(b: PriorityLimiterBuilder) -> Harness {
        let gate = Arc::new(Gate::new(b.limit));
        Harness {
            st: State::new(gate.clone(), b.max_queue, b.config),
            limit_seen: b.limit,
            gate,
            now: Instant::now(),
            wake: Vec::new(),
            keys: BTreeMap::new(),
            fate: BTreeMap::new(),
            granted: BTreeMap::new(),
        }
    }

    fn ids(&self, want: Fate) -> Vec<usize> {
        let ids = self.fate.iter().filter(|&(_, &f)| f == want);
        ids.map(|(&id, _)| id).collect()
    }

    fn holding(&mut self, id: usize) {
        self.fate.insert(id, Fate::Holding);
        self.granted.insert(id, self.now);
    }

    /// An arrival. Returns whether it would have waited (no permit free, or
    /// somebody waiting) when it missed the fast path, and its outcome.
    fn acquire(&mut self, id: usize, p: Priority, due: Due) -> Result<bool, TestCaseError> {
        let deadline = match due {
            Due::None => None,
            Due::Passed => Some(Deadline::at(self.now)),
            Due::In(ms) => Some(Deadline::at(self.now + Duration::from_millis(ms))),
        };
        let expired = deadline.is_some_and(|d| d.instant() <= self.now);
        if !expired && self.gate.try_fast() {
            self.holding(id);
            return Ok(false);
        }
        let would_wait = self.st.newcomer_waits();
        let ask = Ask {
            priority: p,
            deadline,
        };
        match self.st.enqueue(ask, self.now, None, &mut self.wake) {
            Ok(Entered::Admitted) => self.holding(id),
            Ok(Entered::Queued(e)) => {
                prop_assert!(would_wait, "queued though a permit was free");
                prop_assert!(e.give_up_at >= self.now);
                self.keys.insert(id, e.key);
                self.fate.insert(id, Fate::Waiting);
            }
            Err(r) => {
                prop_assert!(
                    would_wait || needs_no_load(r.reason, due),
                    "work conservation: {p} refused ({:?}) while a permit was free and nobody waited",
                    r.reason
                );
                self.fate.insert(id, Fate::Refused(r.reason));
            }
        }
        Ok(would_wait)
    }

    /// Gives the permit of holder `id` back, with its hold measured for
    /// every other request (as `Permit` measures some and not others).
    fn release(&mut self, id: usize) {
        let held = self.now - self.granted.remove(&id).unwrap_or(self.now);
        if id % 2 == 1 && self.gate.release_fast() {
            return;
        }
        self.st.release(Some(held), self.now, &mut self.wake);
    }

    /// Observes every queued request the way its future would.
    fn observe(&mut self) {
        for (id, key) in self.keys.clone() {
            match self.st.poll(key, Waker::noop()) {
                None => {}
                Some(Ok(_)) => self.holding(id),
                Some(Err(r)) => {
                    self.fate.insert(id, Fate::Refused(r.reason));
                }
            }
        }
        let fate = &self.fate;
        self.keys.retain(|id, _| fate[id] == Fate::Waiting);
    }

    /// Applies one operation other than an arrival; returns the id it
    /// touched and how, for the model.
    fn apply(&mut self, op: &Op) -> Result<Option<(usize, Fate)>, TestCaseError> {
        let pick = |ids: Vec<usize>, i: usize| (!ids.is_empty()).then(|| ids[i % ids.len()]);
        Ok(match *op {
            Op::Acquire(..) => unreachable!("arrivals go through `acquire`"),
            Op::Cancel(i) => {
                let mut live = self.ids(Fate::Waiting);
                live.extend(self.ids(Fate::Holding));
                live.sort_unstable();
                let Some(id) = pick(live, i) else {
                    return Ok(None);
                };
                let was = self.fate[&id];
                match self.keys.remove(&id) {
                    // A waiter, or a holder whose future never picked its
                    // permit up: its entry is cancelled.
                    Some(key) => self.st.cancel(key, self.now, &mut self.wake),
                    None => self.release(id),
                }
                self.fate.insert(id, Fate::Done);
                Some((id, was))
            }
            Op::Release(i) => {
                let Some(id) = pick(self.ids(Fate::Holding), i) else {
                    return Ok(None);
                };
                prop_assert!(!self.keys.contains_key(&id), "observed after every op");
                self.release(id);
                self.fate.insert(id, Fate::Done);
                Some((id, Fate::Holding))
            }
            Op::Timeout(i) => {
                let Some(id) = pick(self.ids(Fate::Waiting), i) else {
                    return Ok(None);
                };
                let key = self.keys.remove(&id).expect("a waiter has a key");
                let r = self.st.time_out(key, self.now);
                prop_assert_eq!(r.map_err(|r| r.reason), Err(Reason::QueueTimeout));
                self.fate.insert(id, Fate::Refused(Reason::QueueTimeout));
                Some((id, Fate::Waiting))
            }
            Op::SetLimit(n) => {
                self.limit_seen = n.max(self.st.in_flight());
                self.st.set_limit(n, self.now, &mut self.wake);
                None
            }
            Op::Emergency(on) => {
                self.st.set_emergency(on, self.now, &mut self.wake);
                None
            }
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                None
            }
        })
    }

    /// What must hold after every step, whatever the drain.
    fn check(&mut self, max_queue: usize) -> Result<(), TestCaseError> {
        self.observe();
        // Includes work conservation: nobody waits while a permit is free.
        self.st.check_invariants();
        prop_assert!(
            self.st.queue_len() <= max_queue,
            "the queue exceeded its bound"
        );
        prop_assert!(
            self.st.in_flight() <= self.limit_seen,
            "more permits out than the limit allows"
        );
        let holding = self.ids(Fate::Holding).len();
        prop_assert_eq!(self.st.in_flight(), holding, "permits out = holders");
        prop_assert_eq!(self.st.queue_len(), self.ids(Fate::Waiting).len());
        self.limit_seen = self.st.limit().max(self.st.in_flight());
        Ok(())
    }

    /// Everyone leaves: nothing may be lost.
    fn wind_down(&mut self) -> Result<(), TestCaseError> {
        self.st.set_emergency(false, self.now, &mut self.wake);
        for id in self.ids(Fate::Waiting) {
            let key = self.keys.remove(&id).expect("a waiter has a key");
            self.st.cancel(key, self.now, &mut self.wake);
            self.fate.insert(id, Fate::Done);
        }
        for id in self.ids(Fate::Holding) {
            self.release(id);
            self.fate.insert(id, Fate::Done);
        }
        prop_assert_eq!(self.st.in_flight(), 0, "a permit was lost");
        prop_assert_eq!(self.st.queue_len(), 0);
        Ok(())
    }
}

/// Queue timeouts of 20 ms to a second by class: short enough, against
/// holds of up to 150 ms, that the estimates refuse.
fn timeouts() -> impl Strategy<Value = [u64; 5]> {
    [
        20u64..1000,
        20u64..1000,
        20u64..1000,
        20u64..1000,
        20u64..1000,
    ]
}

/// A limiter's settings: `limit`, `max_queue`, `drain`, and the queue
/// timeouts in milliseconds by class.
fn builder(limit: usize, max_queue: usize, drain: Drain, ms: [u64; 5]) -> PriorityLimiterBuilder {
    let mut b = PriorityLimiterBuilder::default()
        .limit(limit)
        .max_queue(max_queue)
        .drain(drain);
    for p in Priority::ALL {
        b = b.queue_timeout(p, Duration::from_millis(ms[p.index()]));
    }
    b
}

fn run_against_model(
    limit: usize,
    max_queue: usize,
    timeouts: [u64; 5],
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let mut h = Harness::new(builder(limit, max_queue, Drain::Priority, timeouts));
    let mut model = Model {
        limit,
        max_queue,
        in_flight: 0,
        emergency: false,
        queue: Vec::new(),
        fate: BTreeMap::new(),
    };
    for (id, op) in ops.iter().enumerate() {
        match *op {
            Op::Acquire(p, due) => {
                let would_wait = h.acquire(id, p, due)?;
                if !model.emergency || p == Priority::Critical {
                    prop_assert_eq!(
                        would_wait,
                        model.would_wait(),
                        "the core and the model agree on the queue"
                    );
                }
                // A class found standing drops its waiters older than its
                // target, as its newcomer arrives: only of that class, and
                // only while every permit is out.
                h.observe();
                let trimmed: Vec<usize> = model
                    .queue
                    .iter()
                    .filter(|&&(w, _)| h.fate[&w] == Fate::Refused(Reason::QueueTimeout))
                    .map(|&(w, q)| {
                        prop_assert_eq!(q, p, "only the newcomer's class is trimmed");
                        Ok(w)
                    })
                    .collect::<Result<_, TestCaseError>>()?;
                for w in trimmed {
                    prop_assert!(
                        model.in_flight >= model.limit,
                        "trimmed while a permit was free"
                    );
                    model.leave_queue(w, Fate::Refused(Reason::QueueTimeout));
                }
                let estimate_refused = h.fate[&id] == Fate::Refused(Reason::DeadlineUnmeetable)
                    && !matches!(due, Due::Passed);
                model.acquire(id, p, due, estimate_refused);
            }
            Op::SetLimit(n) => {
                model.limit = n;
                model.drain();
                h.apply(op)?;
            }
            Op::Emergency(on) => {
                model.set_emergency(on);
                h.apply(op)?;
            }
            _ => match h.apply(op)? {
                Some((id, Fate::Waiting)) if matches!(op, Op::Timeout(_)) => {
                    model.leave_queue(id, Fate::Refused(Reason::QueueTimeout));
                }
                Some((id, Fate::Waiting)) => model.leave_queue(id, Fate::Done),
                Some((id, _)) => model.release(id),
                None => {}
            },
        }
        h.check(max_queue)?;
        prop_assert_eq!(&h.fate, &model.fate, "after {} ops", id + 1);
    }
    h.wind_down()
}

fn run_invariants(
    limit: usize,
    max_queue: usize,
    drain: Drain,
    codel: bool,
    timeouts: [u64; 5],
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let mut b = builder(limit, max_queue, drain, timeouts);
    if codel {
        b = b.codel(Codel {
            interval: Duration::from_millis(100),
            target: Duration::from_millis(20),
        });
    }
    let mut h = Harness::new(b);
    for (id, op) in ops.iter().enumerate() {
        match *op {
            Op::Acquire(p, due) => {
                h.acquire(id, p, due)?;
            }
            _ => {
                h.apply(op)?;
            }
        }
        h.check(max_queue)?;
    }
    h.wind_down()
}

fn drain() -> impl Strategy<Value = Drain> {
    prop_oneof![
        Just(Drain::Priority),
        Just(Drain::Fifo),
        Just(Drain::Lifo),
        Just(Drain::WeightedFair),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn queue_core_matches_the_reference_model(
        limit in 1usize..4,
        max_queue in 0usize..6,
        timeouts in timeouts(),
        ops in proptest::collection::vec(op(), 1..150),
    ) {
        run_against_model(limit, max_queue, timeouts, ops)?;
    }

    #[test]
    fn every_drain_conserves_work_and_permits(
        limit in 1usize..4,
        max_queue in 0usize..8,
        drain in drain(),
        codel in any::<bool>(),
        timeouts in timeouts(),
        ops in proptest::collection::vec(op(), 1..150),
    ) {
        run_invariants(limit, max_queue, drain, codel, timeouts, ops)?;
    }
}

#[test]
fn a_status_is_only_seen_once() {
    let b = PriorityLimiterBuilder::default().limit(1).max_queue(2);
    let gate = Arc::new(Gate::new(b.limit));
    let mut st = State::new(gate.clone(), b.max_queue, b.config);
    let now = Instant::now();
    let mut wake = Vec::new();
    let ask = Ask {
        priority: Priority::Low,
        deadline: None,
    };
    assert!(gate.try_fast());
    let Ok(Entered::Queued(e)) = st.enqueue(ask, now, None, &mut wake) else {
        panic!("the second request queues");
    };
    assert!(st.poll(e.key, Waker::noop()).is_none());
    assert!(
        !gate.release_fast(),
        "somebody waits: the release takes the lock"
    );
    st.release(None, now, &mut wake);
    assert!(matches!(st.poll(e.key, Waker::noop()), Some(Ok(_))));
    assert_eq!(st.in_flight(), 1);
}

#[test]
fn arrivals_count_waiters_that_gave_up_but_not_refusals_that_say_nothing_of_load() {
    let b = PriorityLimiterBuilder::default().limit(1).max_queue(4);
    let gate = Arc::new(Gate::new(b.limit));
    let mut st = State::new(gate.clone(), b.max_queue, b.config);
    let now = Instant::now();
    let mut wake = Vec::new();
    let ask = |deadline| Ask {
        priority: Priority::High,
        deadline,
    };
    // One admitted at once through the fast path, one queued then cancelled
    // by its caller: both are demand.
    assert!(gate.try_fast());
    gate.count_admission(Priority::High);
    let Ok(Entered::Queued(e)) = st.enqueue(ask(None), now, None, &mut wake) else {
        panic!("no permit is free: it queues");
    };
    st.cancel(e.key, now, &mut wake);
    assert_eq!(st.counts(now).arrived[Priority::High.index()], 2);
    // A request whose deadline has passed, and one refused by emergency
    // mode, are not.
    let err = st.enqueue(ask(Some(Deadline::at(now))), now, None, &mut wake);
    assert_eq!(err.unwrap_err().reason, Reason::DeadlineUnmeetable);
    st.set_emergency(true, now, &mut wake);
    let low = Ask {
        priority: Priority::Low,
        deadline: None,
    };
    assert_eq!(
        st.enqueue(low, now, None, &mut wake).unwrap_err().reason,
        Reason::Emergency
    );
    assert_eq!(st.counts(now).arrived, [0, 0, 0, 2, 0]);
}
