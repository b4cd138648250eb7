//! The queue core against a simple reference model, under random
//! interleavings of acquire, cancel, release, timeout and limit changes.
//! The clock stands still, so a class refused for load twice outranks the
//! classes below it for the rest of a run (the outrank window never ends).

use std::collections::BTreeMap;
use std::task::Waker;

use proptest::prelude::*;
use tokio::time::Instant;
use tower_pressure_core::{Priority, Reason};

use super::config::{Drain, PriorityLimiterBuilder};
use super::gate::Gate;
use super::queue::{Ask, Entered, State};
use crate::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    Acquire(Priority),
    /// The future of the i-th live request (waiting or holding) is dropped.
    Cancel(usize),
    /// The i-th holder finishes.
    Release(usize),
    /// The i-th waiter times out.
    Timeout(usize),
    SetLimit(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..5).prop_map(|i| Op::Acquire(Priority::from_index(i).unwrap())),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Timeout),
        1 => (1usize..6).prop_map(Op::SetLimit),
    ]
}

/// Where one request stands, in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Waiting,
    Holding,
    Done,
    Refused(Reason),
}

/// The reference: a plain list, scanned in full at every step.
#[derive(Debug)]
struct Model {
    limit: usize,
    max_queue: usize,
    in_flight: usize,
    /// (id, priority) in arrival order.
    queue: Vec<(usize, Priority)>,
    fate: BTreeMap<usize, Fate>,
    /// Refusals for load so far, by class.
    refused_for_load: [usize; 5],
}

impl Model {
    fn acquire(&mut self, id: usize, p: Priority) {
        let outranked = Priority::ALL
            .into_iter()
            .any(|h| h > p && self.refused_for_load[h.index()] >= 2);
        if outranked {
            self.fate.insert(id, Fate::Refused(Reason::QueueFull));
            return;
        }
        if self.in_flight < self.limit && self.queue.is_empty() {
            self.in_flight += 1;
            self.fate.insert(id, Fate::Holding);
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
                    let (vid, vp) = self.queue.remove(i);
                    self.fate.insert(vid, Fate::Refused(Reason::Evicted));
                    self.refused_for_load(vp);
                }
                None => {
                    self.fate.insert(id, Fate::Refused(Reason::QueueFull));
                    self.refused_for_load(p);
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

    /// A `p` request was refused for load: from the second on, whatever
    /// comes below it is refused; what waits stays.
    fn refused_for_load(&mut self, p: Priority) {
        self.refused_for_load[p.index()] += 1;
    }

    fn leave_queue(&mut self, id: usize, fate: Fate) {
        self.queue.retain(|&(q, _)| q != id);
        self.fate.insert(id, fate);
    }

    fn ids(&self, want: Fate) -> Vec<usize> {
        self.fate
            .iter()
            .filter(|&(_, &f)| f == want)
            .map(|(&id, _)| id)
            .collect()
    }
}

fn run(limit: usize, max_queue: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let now = Instant::now();
    let b = PriorityLimiterBuilder::default()
        .limit(limit)
        .max_queue(max_queue)
        .drain(Drain::Priority);
    let gate = Arc::new(Gate::new(b.limit));
    let mut st = State::new(gate.clone(), b.max_queue, b.config);
    // A permit goes back the way `Permit::drop` gives it.
    let release = |st: &mut State, wake: &mut Vec<Waker>| {
        if !gate.release_fast() {
            st.release(None, now, wake);
        }
    };
    let mut model = Model {
        limit,
        max_queue,
        in_flight: 0,
        queue: Vec::new(),
        fate: BTreeMap::new(),
        refused_for_load: [0; 5],
    };
    let waker = Waker::noop();
    // id -> slab key of requests that went through the queue and are not done.
    let mut keys: BTreeMap<usize, usize> = BTreeMap::new();
    // Real fates, observed the way the futures observe them.
    let mut real: BTreeMap<usize, Fate> = BTreeMap::new();
    let mut wake = Vec::new();
    let mut max_in_flight_allowed = limit;

    for (id, op) in ops.into_iter().enumerate() {
        match op {
            Op::Acquire(p) => {
                model.acquire(id, p);
                let ask = Ask {
                    priority: p,
                    deadline: None,
                };
                if gate.try_fast() {
                    real.insert(id, Fate::Holding);
                } else {
                    match st.enqueue(ask, now, None, &mut wake) {
                        Ok(Entered::Admitted) => {
                            real.insert(id, Fate::Holding);
                        }
                        Ok(Entered::Queued(e)) => {
                            keys.insert(id, e.key);
                            real.insert(id, Fate::Waiting);
                        }
                        Err(r) => {
                            real.insert(id, Fate::Refused(r.reason));
                        }
                    }
                }
            }
            Op::Cancel(i) => {
                let live = model
                    .ids(Fate::Waiting)
                    .into_iter()
                    .chain(model.ids(Fate::Holding))
                    .collect::<Vec<_>>();
                if live.is_empty() {
                    continue;
                }
                let id = live[i % live.len()];
                match model.fate[&id] {
                    Fate::Waiting => {
                        model.leave_queue(id, Fate::Done);
                        st.cancel(keys.remove(&id).unwrap(), now, &mut wake);
                    }
                    _ => {
                        model.release(id);
                        // A holder whose permit the future never picked up
                        // cancels its entry; one that did drops the permit.
                        match keys.remove(&id) {
                            Some(key) => st.cancel(key, now, &mut wake),
                            None => release(&mut st, &mut wake),
                        }
                    }
                }
                real.insert(id, Fate::Done);
            }
            Op::Release(i) => {
                let holders = model.ids(Fate::Holding);
                if holders.is_empty() {
                    continue;
                }
                let id = holders[i % holders.len()];
                model.release(id);
                if let Some(key) = keys.remove(&id) {
                    // Pick the permit up first, as the future would.
                    prop_assert_eq!(st.poll(key, waker).map(|r| r.is_ok()), Some(true));
                }
                release(&mut st, &mut wake);
                real.insert(id, Fate::Done);
            }
            Op::Timeout(i) => {
                let waiting = model.ids(Fate::Waiting);
                if waiting.is_empty() {
                    continue;
                }
                let id = waiting[i % waiting.len()];
                let p = model.queue.iter().find(|&&(q, _)| q == id).unwrap().1;
                model.leave_queue(id, Fate::Refused(Reason::QueueTimeout));
                model.refused_for_load(p);
                let r = st.time_out(keys.remove(&id).unwrap(), now);
                prop_assert_eq!(r.map_err(|r| r.reason), Err(Reason::QueueTimeout));
                real.insert(id, Fate::Refused(Reason::QueueTimeout));
            }
            Op::SetLimit(n) => {
                max_in_flight_allowed = n.max(st.in_flight());
                model.limit = n;
                model.drain();
                st.set_limit(n, now, &mut wake);
            }
        }
        // Observe every queued request the way its future would.
        for (&id, &key) in &keys {
            match st.poll(key, waker) {
                None => {}
                Some(Ok(())) => {
                    real.insert(id, Fate::Holding);
                }
                Some(Err(r)) => {
                    real.insert(id, Fate::Refused(r.reason));
                }
            }
        }
        keys.retain(|id, _| real[id] == Fate::Waiting);
        st.check_invariants();
        prop_assert_eq!(&real, &model.fate, "after {} ops", id + 1);
        prop_assert_eq!(st.in_flight(), model.in_flight);
        prop_assert_eq!(st.queue_len(), model.queue.len());
        prop_assert!(st.queue_len() <= max_queue, "the queue exceeded its bound");
        prop_assert!(
            st.in_flight() <= max_in_flight_allowed,
            "more permits out than the limit allows"
        );
        max_in_flight_allowed = st.limit().max(st.in_flight());
    }
    // Everyone leaves: nothing is lost.
    for (id, fate) in model.fate.clone() {
        match fate {
            Fate::Holding => {
                if let Some(key) = keys.remove(&id) {
                    prop_assert!(st.poll(key, waker).is_some());
                }
                release(&mut st, &mut wake);
                model.release(id);
                for (&qid, &key) in &keys {
                    if let Some(Ok(())) = st.poll(key, waker) {
                        real.insert(qid, Fate::Holding);
                    }
                }
                keys.retain(|id, _| real[id] == Fate::Waiting);
            }
            Fate::Waiting => {
                if let Some(key) = keys.remove(&id) {
                    st.cancel(key, now, &mut wake);
                    model.leave_queue(id, Fate::Done);
                }
            }
            _ => {}
        }
    }
    // Permits granted during the wind-down are released too.
    for (id, fate) in model.fate.clone() {
        if fate == Fate::Holding {
            release(&mut st, &mut wake);
            model.release(id);
        }
    }
    prop_assert_eq!(st.in_flight(), 0, "a permit was lost");
    prop_assert_eq!(st.queue_len(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn queue_core_matches_the_reference_model(
        limit in 1usize..4,
        max_queue in 0usize..6,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run(limit, max_queue, ops)?;
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
    assert!(matches!(st.poll(e.key, Waker::noop()), Some(Ok(()))));
    assert_eq!(st.in_flight(), 1);
}
