//! The limit and the queue bounds: the `LimitHandle` that reads and tunes
//! them at runtime, `max_queue` lowered below the queue, and per-class queue
//! caps.

mod support;

use support::{assert_idle, limiter, queue};
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok};
use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::{PerPriority, Priority, Reason};

#[tokio::test(start_paused = true)]
async fn the_limit_handle_reads_and_tunes_the_limiter() {
    let l = limiter(2, 5);
    let h = l.limit_handle();
    assert_eq!(
        (
            h.limit(),
            h.in_flight(),
            h.queue_len(),
            h.max_queue(),
            h.emergency()
        ),
        (2, 0, 0, 5, false)
    );
    let a = l.try_acquire(Priority::Normal).unwrap();
    let b = l.try_acquire(Priority::Normal).unwrap();
    let mut w = spawn(l.acquire(Priority::Normal));
    assert_pending!(w.poll());
    assert_eq!((h.in_flight(), h.queue_len()), (2, 1));

    h.set_limit(0);
    assert_eq!(h.limit(), 1, "a limit of 0 is raised to 1");
    assert_eq!(l.limit(), 1);
    l.set_limit(0);
    assert_eq!(l.limit(), 1);

    h.set_emergency(true);
    assert!(h.emergency() && l.snapshot().emergency);
    assert_eq!(assert_ready_err!(w.poll()).reason(), Reason::Emergency);
    h.set_emergency(false);
    assert!(!h.emergency());

    // Clones of the handle share the one limiter.
    let h2 = h.clone();
    h2.set_limit(4);
    assert_eq!((h.limit(), l.limit()), (4, 4));
    drop((a, b));
    assert_eq!(h.in_flight(), 0);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn lowering_max_queue_below_the_queue_refuses_newcomers_but_not_those_waiting() {
    let l = limiter(1, 5);
    let h = l.limit_handle();
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut waiters = queue(&l, Priority::Normal, 3);
    h.set_max_queue(1);
    assert_eq!(h.max_queue(), 1);
    for w in &mut waiters {
        assert!(!w.is_woken(), "nobody waiting is refused");
        assert_pending!(w.poll());
    }
    assert_eq!(h.queue_len(), 3);

    let refused = |l: &PriorityLimiter| {
        let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
        assert_eq!(err.reason(), Reason::QueueFull);
    };
    refused(&l);
    let mut held = Some(held);
    // Drain: each release admits the oldest; newcomers are refused while
    // the queue is at or above its new bound.
    for (i, w) in waiters.iter_mut().enumerate() {
        drop(held.take());
        held = Some(assert_ready_ok!(w.poll()));
        assert_eq!(h.queue_len(), 2 - i);
        if h.queue_len() >= 1 {
            refused(&l);
        }
    }
    let mut late = spawn(l.acquire(Priority::Normal));
    assert_pending!(
        late.poll(),
        "the queue drained below its bound: newcomers queue again"
    );
    drop(held);
    drop(assert_ready_ok!(late.poll()));
    assert_eq!(l.snapshot().counts[Priority::Normal].queue_full, 3);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_class_queue_cap_refuses_that_class_while_others_still_queue() {
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(10)
        .class_queue_cap(Priority::Bulk, 1)
        .build()
        .unwrap();
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut bulk = spawn(l.acquire(Priority::Bulk));
    assert_pending!(bulk.poll());
    let err = assert_ready_err!(spawn(l.acquire(Priority::Bulk)).poll());
    assert_eq!(err.reason(), Reason::QueueFull, "Bulk is at its cap");
    let mut low = spawn(l.acquire(Priority::Low));
    let mut normal = spawn(l.acquire(Priority::Normal));
    assert_pending!(low.poll(), "other classes still queue");
    assert_pending!(normal.poll());
    assert_eq!(l.snapshot().queued, PerPriority::from([1, 1, 1, 0, 0]));
    assert_eq!(l.snapshot().counts[Priority::Bulk].queue_full, 1);

    // Once the Bulk waiter leaves, another Bulk may take its place.
    drop(bulk);
    let mut bulk2 = spawn(l.acquire(Priority::Bulk));
    assert_pending!(bulk2.poll());
    drop((bulk2, low, normal, held));
    assert_idle(&l);
}
