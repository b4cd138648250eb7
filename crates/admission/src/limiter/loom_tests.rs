//! Loom models of the limiter core: cancellation racing a release, a release
//! racing a higher-priority arrival, a limit shrink racing a release, and two
//! fast-path acquisitions racing for the last permit. In each, capacity is
//! conserved (in flight = permits held) and never exceeds the limit, and once
//! everyone leaves nothing is held or queued.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p tower-pressure-admission --lib --release loom`.

use std::task::Waker;

use loom::thread;
use tower_pressure_core::Priority;

use super::PriorityLimiter;
use super::queue::{Ask, Entered};
use crate::sync::{Arc, lock};

fn limiter(limit: usize) -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(limit)
        .max_queue(4)
        .build()
        .expect("valid config")
}

/// An arrival's slow path, the way `Acquire` takes it after the fast path
/// failed: `None` when it was admitted after all, else its queue key.
fn arrive(l: &PriorityLimiter, p: Priority) -> Option<usize> {
    let ask = Ask {
        priority: p,
        deadline: None,
    };
    let entered = l
        .shared
        .with_wake(|st, now, wake| st.enqueue(ask, now, None, wake))
        .expect("room in the queue");
    match entered {
        Entered::Admitted => None,
        Entered::Queued(e) => Some(e.key),
    }
}

/// Queues a request that cannot be admitted now.
fn enqueue(l: &PriorityLimiter, p: Priority) -> usize {
    arrive(l, p).expect("no free permit: the request queues")
}

/// Gives a permit back the way `Permit::drop` does.
fn release(l: &PriorityLimiter) {
    if !l.shared.gate.release_fast() {
        l.shared
            .with_wake(|st, now, wake| st.release(None, now, wake));
    }
}

/// Drops a queued request the way `Acquire`'s drop does.
fn cancel(l: &PriorityLimiter, key: usize) {
    l.shared
        .with_wake(|st, now, wake| st.cancel(key, now, wake));
}

/// Whether a queued request holds a permit now (and then it picks it up).
fn granted(l: &PriorityLimiter, key: usize) -> Option<bool> {
    lock(&l.shared.state)
        .poll(key, Waker::noop())
        .map(|r| r.is_ok())
}

fn in_flight(l: &PriorityLimiter) -> usize {
    l.shared.gate.in_flight()
}

fn queued(l: &PriorityLimiter) -> usize {
    lock(&l.shared.state).queue_len()
}

#[test]
fn loom_cancel_racing_release_loses_no_permit() {
    loom::model(|| {
        let l = limiter(1);
        let held = l.try_acquire(Priority::Normal).expect("free permit");
        let key = enqueue(&l, Priority::Normal);
        let l2 = l.clone();
        let t = thread::spawn(move || cancel(&l2, key));
        drop(held);
        t.join().unwrap();
        assert_eq!(
            in_flight(&l),
            0,
            "the permit granted to a cancelled waiter came back"
        );
        assert_eq!(queued(&l), 0);
    });
}

#[test]
fn loom_release_racing_a_higher_priority_arrival_admits_exactly_one() {
    loom::model(|| {
        let l = limiter(1);
        let held = l.try_acquire(Priority::Normal).expect("free permit");
        let low = enqueue(&l, Priority::Low);
        let l2 = l.clone();
        let t = thread::spawn(move || enqueue(&l2, Priority::High));
        drop(held);
        let high = t.join().unwrap();
        assert_eq!(in_flight(&l), 1);
        assert_eq!(queued(&l), 1);
        let (g_low, g_high) = (granted(&l, low), granted(&l, high));
        assert!(
            matches!((g_low, g_high), (Some(true), None) | (None, Some(true))),
            "exactly one waiter admitted: low {g_low:?}, high {g_high:?}"
        );
        // Whoever still waits leaves; the holder finishes.
        let waiting = if g_low.is_some() { high } else { low };
        cancel(&l, waiting);
        release(&l);
        assert_eq!((in_flight(&l), queued(&l)), (0, 0));
    });
}

#[test]
fn loom_limit_shrink_racing_release_never_revokes_or_overshoots() {
    loom::model(|| {
        let l = limiter(2);
        let a = l.try_acquire(Priority::Normal).expect("free permit");
        let b = l.try_acquire(Priority::Normal).expect("free permit");
        let waiter = enqueue(&l, Priority::Normal);
        let l2 = l.clone();
        let t = thread::spawn(move || l2.set_limit(1));
        drop(a);
        t.join().unwrap();
        let got = granted(&l, waiter);
        // b is still held, so the waiter may only have been admitted if the
        // release came before the shrink: in flight is then 2, over the new
        // limit, and nobody more gets in until it drains.
        let holders = 1 + usize::from(got == Some(true));
        assert_eq!(in_flight(&l), holders, "in flight equals the permits held");
        drop(b);
        if got == Some(true) {
            assert_eq!(in_flight(&l), 1);
            release(&l);
        } else {
            // The release of b admits the waiter under the new limit of 1.
            assert_eq!(granted(&l, waiter), Some(true));
            assert_eq!(in_flight(&l), 1);
            release(&l);
        }
        assert_eq!((in_flight(&l), queued(&l)), (0, 0));
    });
}

#[test]
fn loom_two_fast_paths_never_share_the_last_permit() {
    loom::model(|| {
        let l = limiter(1);
        let l2 = l.clone();
        let t = thread::spawn(move || l2.try_acquire(Priority::High).ok().map(drop).is_some());
        let mine = l.try_acquire(Priority::High);
        let mine_ok = mine.is_ok();
        assert!(in_flight(&l) <= 1);
        drop(mine);
        let theirs_ok = t.join().unwrap();
        assert!(mine_ok || theirs_ok, "one of them got the permit");
        assert_eq!((in_flight(&l), queued(&l)), (0, 0));
        let _ = Arc::strong_count(&l.shared);
    });
}

#[test]
fn loom_fast_release_racing_a_waiter_joining_never_strands_the_waiter() {
    loom::model(|| {
        let l = limiter(1);
        let held = l.try_acquire(Priority::Normal).expect("free permit");
        let l2 = l.clone();
        // The arrival missed the fast path while the permit was held.
        let t = thread::spawn(move || arrive(&l2, Priority::Normal));
        drop(held);
        match t.join().unwrap() {
            // It saw the permit come back and took it.
            None => assert_eq!(in_flight(&l), 1),
            // It queued first: the release must have handed it the permit.
            Some(key) => assert_eq!(granted(&l, key), Some(true), "a waiter was stranded"),
        }
        assert_eq!(in_flight(&l), 1);
        release(&l);
        assert_eq!((in_flight(&l), queued(&l)), (0, 0));
    });
}

#[test]
fn loom_fast_admission_never_overtakes_a_waiter() {
    loom::model(|| {
        let l = limiter(1);
        let held = l.try_acquire(Priority::Normal).expect("free permit");
        let waiter = enqueue(&l, Priority::Low);
        let l2 = l.clone();
        // A newcomer tries the fast path while the holder releases.
        let t = thread::spawn(move || l2.try_acquire(Priority::Critical).is_ok());
        drop(held);
        let newcomer_got_it = t.join().unwrap();
        // The permit went to the waiter: nobody jumps a non-empty queue
        // without going through it.
        assert!(!newcomer_got_it, "the fast path overtook a waiter");
        assert_eq!(granted(&l, waiter), Some(true));
        release(&l);
        assert_eq!((in_flight(&l), queued(&l)), (0, 0));
    });
}
