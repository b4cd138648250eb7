//! Drain order: `Priority` (highest first, FIFO within a class), `Fifo`,
//! `Lifo`, `WeightedFair` shares, and CoDel's adaptive LIFO.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use support::assert_idle;
use tokio_test::task::{Spawn, spawn};
use tokio_test::{assert_pending, assert_ready, assert_ready_ok};
use tower_pressure_admission::{Acquire, Codel, Drain, PriorityLimiter};
use tower_pressure_core::{Priority, Reason};

fn limiter_with(drain: Drain) -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(1)
        .max_queue(100_000)
        .drain(drain)
        .build()
        .unwrap()
}

/// Queues one request per priority in `arrivals` behind a held permit, then
/// releases one permit at a time; returns the arrival indexes in admission order.
fn admission_order(l: &PriorityLimiter, arrivals: &[Priority]) -> Vec<usize> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut held = Some(l.try_acquire(Priority::Critical).unwrap());
    let mut waiters: Vec<Option<Spawn<Acquire>>> = arrivals
        .iter()
        .map(|&p| {
            let mut w = spawn(l.acquire(p));
            assert_pending!(w.poll());
            Some(w)
        })
        .collect();
    let mut order = Vec::new();
    while order.len() < arrivals.len() {
        drop(held.take());
        let woken: Vec<usize> = (0..waiters.len())
            .filter(|&i| waiters[i].as_ref().is_some_and(|w| w.is_woken()))
            .collect();
        assert_eq!(woken.len(), 1, "one release admits one waiter");
        let mut w = waiters[woken[0]].take().unwrap();
        held = Some(assert_ready_ok!(w.poll()));
        order.push(woken[0]);
    }
    drop(held);
    assert_idle(l);
    order
}

#[test]
fn priority_drain_serves_the_highest_class_first_and_fifo_within_it() {
    use Priority::*;
    let arrivals = [Low, High, Normal, High, Bulk, Critical, Low];
    let order = admission_order(&limiter_with(Drain::Priority), &arrivals);
    assert_eq!(order, [5, 1, 3, 2, 0, 6, 4]);
}

#[test]
fn fifo_drain_serves_the_oldest_whatever_its_class() {
    use Priority::*;
    let order = admission_order(&limiter_with(Drain::Fifo), &[Low, Critical, Bulk, High]);
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn lifo_drain_serves_the_newest_whatever_its_class() {
    use Priority::*;
    let order = admission_order(&limiter_with(Drain::Lifo), &[Low, Critical, Bulk, High]);
    assert_eq!(order, [3, 2, 1, 0]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn under_priority_drain_no_lower_class_is_admitted_while_a_higher_one_waits(
        arrivals in proptest::collection::vec((0usize..5).prop_map(|i| Priority::from_index(i).unwrap()), 1..40),
    ) {
        let order = admission_order(&limiter_with(Drain::Priority), &arrivals);
        let mut expected: Vec<usize> = (0..arrivals.len()).collect();
        // Highest priority first; the sort is stable, so arrival order within a class.
        expected.sort_by_key(|&i| std::cmp::Reverse(arrivals[i]));
        prop_assert_eq!(order, expected);
    }
}

#[test]
fn weighted_fair_shares_follow_the_weights_within_ten_percent() {
    let weights = [1.0, 2.0, 4.0, 8.0, 16.0];
    let mut b = PriorityLimiter::builder()
        .limit(1)
        .max_queue(1000)
        .drain(Drain::WeightedFair);
    for p in Priority::ALL {
        b = b.weight(p, weights[p.index()]);
    }
    let l = b.build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = rt.enter();
    // Every class keeps 10 waiters: when one is admitted another joins.
    let mut waiters: Vec<(Priority, Spawn<Acquire>)> = Vec::new();
    let join = |waiters: &mut Vec<(Priority, Spawn<Acquire>)>, p: Priority| {
        let mut w = spawn(l.acquire(p));
        assert_pending!(w.poll());
        waiters.push((p, w));
    };
    let mut held = Some(l.try_acquire(Priority::Critical).unwrap());
    for p in Priority::ALL {
        for _ in 0..10 {
            join(&mut waiters, p);
        }
    }
    let mut admitted = [0u32; 5];
    let rounds = 10_000;
    for _ in 0..rounds {
        drop(held.take());
        let i = waiters
            .iter()
            .position(|(_, w)| w.is_woken())
            .expect("a waiter was admitted");
        let (p, mut w) = waiters.swap_remove(i);
        held = Some(assert_ready_ok!(w.poll()));
        admitted[p.index()] += 1;
        join(&mut waiters, p);
    }
    let total: f64 = weights.iter().sum();
    for p in Priority::ALL {
        let expected = f64::from(rounds) * weights[p.index()] / total;
        let got = f64::from(admitted[p.index()]);
        assert!(got > 0.0, "{p} starved");
        assert!(
            (got - expected).abs() <= 0.10 * expected,
            "{p}: {got} admissions, expected {expected:.0} ± 10% (all: {admitted:?})"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn weighted_fair_never_starves_bulk_behind_a_flood_of_critical() {
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(1000)
        .drain(Drain::WeightedFair)
        .build()
        .unwrap();
    let held = l.try_acquire(Priority::Critical).unwrap();
    let mut bulk = spawn(l.acquire(Priority::Bulk));
    assert_pending!(bulk.poll());
    let mut critical: Vec<_> = (0..100)
        .map(|_| spawn(l.acquire(Priority::Critical)))
        .collect();
    for c in &mut critical {
        assert_pending!(c.poll());
    }
    let mut held = Some(held);
    let mut served = 0;
    loop {
        drop(held.take());
        if bulk.is_woken() {
            break;
        }
        let i = critical
            .iter()
            .position(|c| c.is_woken())
            .expect("someone was admitted");
        held = Some(assert_ready_ok!(critical.swap_remove(i).poll()));
        served += 1;
        assert!(served < 40, "bulk waited behind {served} critical requests");
    }
    drop(held);
    drop(assert_ready_ok!(bulk.poll()));
}

/// One permit, room for 100, CoDel with its defaults (100 ms, 5 ms).
fn codel_limiter() -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(1)
        .max_queue(100)
        .codel(Codel::default())
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn codel_shortens_the_timeout_and_turns_lifo_once_the_queue_stands() {
    let l = codel_limiter();
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut a = spawn(l.acquire(Priority::Normal));
    assert_pending!(a.poll());
    // The queue has not been empty for 150 ms: it is standing.
    tokio::time::advance(Duration::from_millis(150)).await;
    let mut b = spawn(l.acquire(Priority::Normal));
    assert_pending!(b.poll());
    // `a` waited past the 5 ms target and is refused.
    let err = assert_ready!(a.poll()).unwrap_err();
    assert_eq!(err.reason(), Reason::QueueTimeout);
    tokio::time::advance(Duration::from_millis(1)).await;
    let mut c = spawn(l.acquire(Priority::Normal));
    assert_pending!(c.poll());
    // LIFO: the newest gets the permit.
    drop(held);
    let permit = assert_ready_ok!(c.poll());
    assert_pending!(b.poll());
    // `b` gives up at the 5 ms target, not at the 10 s Normal timeout.
    tokio::time::advance(Duration::from_millis(5)).await;
    assert_eq!(
        assert_ready!(b.poll()).unwrap_err().reason(),
        Reason::QueueTimeout
    );
    drop(permit);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn codel_never_shortens_the_timeout_of_critical_waiters_nor_serves_them_lifo() {
    let l = codel_limiter();
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut critical = spawn(l.acquire(Priority::Critical));
    let mut normal = spawn(l.acquire(Priority::Normal));
    assert_pending!(critical.poll());
    assert_pending!(normal.poll());
    // The queue stands; a newcomer sweeps the old waiters.
    tokio::time::advance(Duration::from_millis(150)).await;
    let mut late_critical = spawn(l.acquire(Priority::Critical));
    assert_pending!(late_critical.poll());
    assert_eq!(
        assert_ready!(normal.poll()).unwrap_err().reason(),
        Reason::QueueTimeout
    );
    assert_pending!(critical.poll(), "the old Critical waiter is kept");
    // Nor does the newcomer get the 5 ms target: it waits past it.
    tokio::time::advance(Duration::from_millis(50)).await;
    assert_pending!(late_critical.poll());
    drop(held);
    // Critical stays FIFO while standing: the older one first, then the
    // newer (LIFO would let a stream of new ones starve it).
    let p = assert_ready_ok!(critical.poll());
    assert_pending!(late_critical.poll());
    drop(p);
    drop(assert_ready_ok!(late_critical.poll()));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn codel_stays_out_of_the_way_of_a_short_burst() {
    let l = codel_limiter();
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut a = spawn(l.acquire(Priority::Normal));
    let mut b = spawn(l.acquire(Priority::Normal));
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    tokio::time::advance(Duration::from_millis(50)).await;
    drop(held);
    // Under the interval: plain FIFO, no refusals.
    let p = assert_ready_ok!(a.poll());
    assert_pending!(b.poll());
    drop(p);
    drop(assert_ready_ok!(b.poll()));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn codel_counts_a_queue_emptied_by_admission_as_still_standing_while_every_permit_stays_taken()
 {
    let l = codel_limiter();
    let mut held = l.try_acquire(Priority::Normal).unwrap();
    // For 150 ms, one waiter at a time takes the permit as it comes back
    // (within the 5 ms target): the queue empties again and again, but the
    // service never catches up.
    for _ in 0..50 {
        let mut w = spawn(l.acquire(Priority::Normal));
        assert_pending!(w.poll());
        tokio::time::advance(Duration::from_millis(3)).await;
        drop(held);
        held = assert_ready_ok!(w.poll());
    }
    let mut a = spawn(l.acquire(Priority::Normal));
    assert_pending!(a.poll());
    // Standing: the newcomer gives up at the 5 ms target, not at 10 s.
    tokio::time::advance(Duration::from_millis(6)).await;
    assert_eq!(
        assert_ready!(a.poll()).unwrap_err().reason(),
        Reason::QueueTimeout
    );
    drop(held);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn codel_ends_the_standing_queue_once_a_permit_was_free_with_nobody_waiting() {
    let l = PriorityLimiter::builder()
        .limit(2)
        .max_queue(100)
        .codel(Codel::default())
        .build()
        .unwrap();
    let first = l.try_acquire(Priority::Normal).unwrap();
    let second = l.try_acquire(Priority::Normal).unwrap();
    let mut a = spawn(l.acquire(Priority::Normal));
    assert_pending!(a.poll());
    tokio::time::advance(Duration::from_millis(3)).await;
    drop(first);
    // The queue emptied by admission with every permit still taken...
    let a = assert_ready_ok!(a.poll());
    tokio::time::advance(Duration::from_millis(150)).await;
    // ...then a permit came back with nobody waiting (lock-free) and the
    // next request took it on the lock-free fast path: the service had
    // caught up, though the queue's lock saw neither.
    drop(second);
    let third = l.try_acquire(Priority::Normal).unwrap();
    let mut b = spawn(l.acquire(Priority::Normal));
    assert_pending!(b.poll());
    // Not standing: `b` keeps its class timeout and outlasts the 5 ms target.
    tokio::time::advance(Duration::from_millis(50)).await;
    assert_pending!(b.poll());
    drop(a);
    drop(assert_ready_ok!(b.poll()));
    drop(third);
    assert_idle(&l);
}
