//! Work conservation: a request that finds a permit free and nobody waiting
//! is admitted, whatever came before it (emergency mode and a request whose
//! own deadline has passed aside), and nobody waits while a permit is free.
//! The random histories of the queue core check the same in
//! `limiter/model_tests.rs`; these check it through the public API, and
//! over real time on a multi-thread runtime.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::assert_idle;
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok};
use tower_pressure_admission::{Codel, Drain, PriorityLimiter};
use tower_pressure_core::{Priority, Reason};

/// One permit, one waiter at most, and a measured hold of 10 ms.
async fn tight() -> PriorityLimiter {
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(1)
        .build()
        .unwrap();
    let held = l.try_acquire(Priority::Bulk).unwrap();
    let mut next = spawn(l.acquire(Priority::Bulk));
    assert_pending!(next.poll());
    tokio::time::advance(Duration::from_millis(10)).await;
    drop(held);
    drop(assert_ready_ok!(next.poll()));
    assert_idle(&l);
    l
}

#[tokio::test(start_paused = true)]
async fn after_a_burst_of_refusals_an_idle_limiter_admits_every_class_at_once() {
    let l = tight().await;
    // High is turned away again and again: the queue is full.
    let held = l.try_acquire(Priority::Critical).unwrap();
    let mut waiter = spawn(l.acquire(Priority::High));
    assert_pending!(waiter.poll());
    for _ in 0..20 {
        let err = l.acquire(Priority::High).await.unwrap_err();
        assert!(
            matches!(err.reason(), Reason::QueueFull | Reason::DeadlineUnmeetable),
            "{err}"
        );
    }
    drop(held);
    drop(assert_ready_ok!(waiter.poll()));
    assert_idle(&l);
    // Nothing in flight, nobody waiting: every class gets in, by either call.
    for p in Priority::ALL {
        drop(l.try_acquire(p).unwrap());
        drop(l.acquire(p).await.unwrap());
    }
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn after_a_flood_of_high_a_free_permit_goes_to_whoever_comes_next() {
    let l = tight().await;
    // High keeps the one permit busy for a second, a request every 10 ms.
    let mut held = l.try_acquire(Priority::High).unwrap();
    for _ in 0..100 {
        let mut next = spawn(l.acquire(Priority::High));
        assert_pending!(next.poll());
        tokio::time::advance(Duration::from_millis(10)).await;
        drop(held);
        held = assert_ready_ok!(next.poll());
    }
    // While High holds it and waits, a Normal newcomer is refused at once:
    // High has taken every permit for a second.
    let mut high = spawn(l.acquire(Priority::High));
    assert_pending!(high.poll());
    let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    drop(held);
    drop(assert_ready_ok!(high.poll()));
    // The flood is over the moment the permit is free and nobody waits.
    drop(l.try_acquire(Priority::Normal).unwrap());
    drop(l.acquire(Priority::Bulk).await.unwrap());
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_is_admitted_the_moment_a_permit_comes_free() {
    let l = PriorityLimiter::builder()
        .limit(2)
        .max_queue(8)
        .build()
        .unwrap();
    let a = l.try_acquire(Priority::Critical).unwrap();
    let b = l.try_acquire(Priority::Critical).unwrap();
    let mut waiters: Vec<_> = Priority::ALL
        .into_iter()
        .map(|p| {
            let mut w = spawn(l.acquire(p));
            assert_pending!(w.poll());
            w
        })
        .collect();
    drop(a);
    // Exactly one was admitted — and the limit raised admits at once.
    assert_eq!(waiters.iter().filter(|w| w.is_woken()).count(), 1);
    l.set_limit(4);
    assert_eq!(waiters.iter().filter(|w| w.is_woken()).count(), 3);
    assert_eq!(l.snapshot().in_flight, 4);
    drop(b);
    assert_eq!(waiters.iter().filter(|w| w.is_woken()).count(), 4);
    for w in &mut waiters {
        if w.is_woken() {
            drop(assert_ready_ok!(w.poll()));
        }
    }
    drop(waiters);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn refusals_for_a_lapsed_deadline_or_emergency_keep_no_queue_mode_on() {
    // CoDel's mode, once on, stays on while requests are refused for load.
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(8)
        .queue_timeout(Priority::Normal, Duration::from_secs(2))
        .codel(Codel::default())
        .build()
        .unwrap();
    // Behind for longer than the interval, every waiter admitted within
    // CoDel's target: the mode comes on, and nobody was refused.
    let mut held = l.try_acquire(Priority::Normal).unwrap();
    for _ in 0..40 {
        let mut w = spawn(l.acquire(Priority::Normal));
        assert_pending!(w.poll());
        tokio::time::advance(Duration::from_millis(4)).await;
        drop(held);
        held = assert_ready_ok!(w.poll());
    }
    drop(held);
    assert_eq!(l.snapshot().counts[Priority::Normal].refused(), 0);
    // Nobody is refused for load from now on; a client sends requests whose
    // deadline has passed, and an operator flips emergency mode, every 10 ms.
    for i in 0..30 {
        let late = tower_pressure_admission::AdmitRequest {
            priority: Priority::Critical,
            deadline: Some(tower_pressure_core::Deadline::after(Duration::ZERO)),
        };
        tokio::time::advance(Duration::from_millis(10)).await;
        let err = l.acquire(late).await.unwrap_err();
        assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
        l.set_emergency(i % 2 == 0);
        if i % 2 == 0 {
            assert_eq!(
                l.try_acquire(Priority::Low).unwrap_err().reason(),
                Reason::Emergency
            );
        }
    }
    l.set_emergency(false);
    // The mode is off: a waiter keeps its class's two seconds, not CoDel's
    // 5 ms.
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut w = spawn(l.acquire(Priority::Normal));
    assert_pending!(w.poll());
    tokio::time::advance(Duration::from_millis(50)).await;
    assert_pending!(w.poll(), "refused after 5 ms: CoDel's mode stayed on");
    drop(held);
    drop(assert_ready_ok!(w.poll()));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn under_lifo_a_newcomer_is_served_next_so_a_long_queue_does_not_refuse_it() {
    // One permit held 100 ms; Normal gives up after 250 ms.
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(16)
        .drain(Drain::Lifo)
        .queue_timeout(Priority::Normal, Duration::from_millis(250))
        .build()
        .unwrap();
    let mut held = l.try_acquire(Priority::Normal).unwrap();
    for _ in 0..3 {
        let mut next = spawn(l.acquire(Priority::Normal));
        assert_pending!(next.poll());
        tokio::time::advance(Duration::from_millis(100)).await;
        drop(held);
        held = assert_ready_ok!(next.poll());
    }
    // Five waiters: first come, first served, the sixth would wait 600 ms;
    // newest first, it is next, ~100 ms.
    let mut waiters: Vec<_> = (0..6)
        .map(|_| {
            let mut w = spawn(l.acquire(Priority::Normal));
            assert_pending!(w.poll(), "queued: it would be served next");
            w
        })
        .collect();
    drop(held);
    let newest = waiters.last_mut().unwrap();
    assert!(newest.is_woken(), "the newest goes first");
    drop(assert_ready_ok!(newest.poll()));
    drop(waiters);
    assert_idle(&l);
}

/// Real time on a multi-thread runtime: an overload of every class, then
/// no more clients than permits. With at most `limit` requests at once a
/// permit is always free for the next one, so nobody may be refused —
/// whatever the overload before left in the limiter's measurements.
#[test]
fn with_no_more_clients_than_permits_nobody_is_refused_whatever_came_before() {
    const LIMIT: usize = 4;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let l = PriorityLimiter::builder()
            .limit(LIMIT)
            .max_queue(8)
            .queue_timeout(Priority::Bulk, Duration::from_millis(20))
            .build()
            .unwrap();
        let refused = Arc::new(AtomicUsize::new(0));
        let client = |l: PriorityLimiter, seed: usize, rounds: usize, refused: Arc<AtomicUsize>| {
            tokio::spawn(async move {
                for i in 0..rounds {
                    let p = Priority::from_index((seed * 7 + i * 3) % 5).unwrap();
                    match l.acquire(p).await {
                        Ok(permit) => {
                            let hold = Duration::from_micros(((seed + i) % 5) as u64 * 300);
                            tokio::time::sleep(hold).await;
                            drop(permit);
                        }
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            tokio::task::yield_now().await;
                        }
                    }
                }
            })
        };
        // Overload: 64 clients.
        let overload = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|s| client(l.clone(), s, 40, overload.clone()))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(
            overload.load(Ordering::Relaxed) > 0,
            "the overload refused some"
        );
        assert_idle(&l);
        // Now as many clients as permits.
        let tasks: Vec<_> = (0..LIMIT)
            .map(|s| client(l.clone(), s, 300, refused.clone()))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            refused.load(Ordering::Relaxed),
            0,
            "refused while a permit was free"
        );
        assert_idle(&l);
    });
}
