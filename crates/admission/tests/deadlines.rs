//! Deadlines and queue timeouts against the estimated wait: a request that
//! cannot be served in time is refused at once instead of queueing, and a
//! waiter gives up at its deadline or its class's queue timeout.

mod support;

use std::time::Duration;

use support::{SECOND, assert_idle, limiter, one_permit, queue, teach_hold_time};
use tokio::time::Instant;
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok};
use tower_pressure_admission::{AdmitRequest, Permit, PriorityLimiter, PriorityLimiterBuilder};
use tower_pressure_core::{Deadline, Priority, Reason};

/// One permit, room for 100 waiters, and a measured hold of 100 ms (ten
/// admissions a second); `builder` sets the rest.
async fn one_permit_held_100ms(builder: PriorityLimiterBuilder) -> PriorityLimiter {
    let l = builder.limit(1).max_queue(100).build().unwrap();
    teach_hold_time(&l, Duration::from_millis(100), 5).await;
    l
}

fn with_deadline(priority: Priority, after: Duration) -> AdmitRequest {
    AdmitRequest {
        priority,
        deadline: Some(Deadline::after(after)),
    }
}

/// One permit, room for 100 waiters; Normal, High and Bulk give up after a
/// minute.
fn patient() -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(1)
        .max_queue(100)
        .queue_timeout(Priority::Bulk, 60 * SECOND)
        .queue_timeout(Priority::Normal, 60 * SECOND)
        .queue_timeout(Priority::High, 60 * SECOND)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_deadline_shorter_than_the_estimated_wait_is_refused_at_once() {
    let l = patient();
    teach_hold_time(&l, SECOND, 5).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut waiters = queue(&l, Priority::Normal, 3);
    // A Normal newcomer waits for 3 Normal waiters and itself, 1 s each: ~4 s.
    let mut hurried = spawn(l.acquire(with_deadline(Priority::Normal, 2 * SECOND)));
    let err = assert_ready_err!(hurried.poll(), "refused on the first poll");
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    assert_eq!(
        l.snapshot().queue_len(),
        3,
        "the refused request did not queue"
    );

    let mut patient = spawn(l.acquire(with_deadline(Priority::Normal, 60 * SECOND)));
    assert_pending!(patient.poll(), "a generous deadline queues");

    let mut expired = spawn(l.acquire(AdmitRequest {
        deadline: Some(Deadline::at(Instant::now())),
        ..AdmitRequest::from(Priority::Normal)
    }));
    assert_eq!(
        assert_ready_err!(expired.poll()).reason(),
        Reason::DeadlineUnmeetable
    );

    // A High newcomer overtakes the Normal waiters: it waits ~1 s, and 2 s is enough.
    let mut high = spawn(l.acquire(with_deadline(Priority::High, 2 * SECOND)));
    assert_pending!(
        high.poll(),
        "the estimate counts only the waiters it cannot overtake"
    );

    let s = l.snapshot();
    assert_eq!(s.counts[Priority::Normal].deadline_unmeetable, 2);
    assert_eq!(s.queue_len(), 5);

    drop(held);
    let p = assert_ready_ok!(high.poll(), "High goes first");
    drop(p);
    for w in &mut waiters {
        drop(assert_ready_ok!(w.poll()));
    }
    drop(assert_ready_ok!(patient.poll()));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn an_expired_deadline_is_refused_even_when_a_permit_is_free() {
    let l = limiter(4, 10);
    let expired = with_deadline(Priority::High, Duration::ZERO);
    tokio::time::advance(Duration::from_millis(1)).await;
    let err = l.try_acquire(expired).unwrap_err();
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    let err = l.acquire(expired).await.unwrap_err();
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    // A live deadline takes the fast path as usual.
    let permit = l
        .try_acquire(with_deadline(Priority::High, SECOND))
        .unwrap();
    drop(permit);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_request_whose_estimated_wait_exceeds_its_queue_timeout_is_refused_at_once() {
    let l = one_permit(100, Priority::Normal, Duration::from_millis(3500));
    teach_hold_time(&l, SECOND, 5).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    // A burst: each waiter adds a second. The first three expect ~1, ~2 and
    // ~3 s, within 3.5 s, and queue; the fourth would wait ~4 s.
    let mut waiters = queue(&l, Priority::Normal, 3);
    let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
    assert_eq!(
        err.reason(),
        Reason::DeadlineUnmeetable,
        "refused at once, not after 3.5 s"
    );
    // A higher class overtakes the waiters, so its estimate is short.
    let mut high = spawn(l.acquire(Priority::High));
    assert_pending!(high.poll());
    drop(held);
    drop(assert_ready_ok!(high.poll()));
    for w in &mut waiters {
        drop(assert_ready_ok!(w.poll()));
    }
    assert_idle(&l);
}

/// Keeps the one permit of `l` busy with `p` requests for `secs` seconds,
/// one admitted every `hold` through the queue.
async fn keep_busy(l: &PriorityLimiter, p: Priority, hold: Duration, secs: u32) -> Permit {
    let mut held = l.try_acquire(p).unwrap();
    for _ in 0..(secs * SECOND.as_millis() as u32 / hold.as_millis() as u32) {
        let mut next = spawn(l.acquire(p));
        assert_pending!(next.poll());
        tokio::time::advance(hold).await;
        drop(held);
        held = assert_ready_ok!(next.poll());
    }
    held
}

#[tokio::test(start_paused = true)]
async fn a_class_the_classes_above_leave_nothing_is_refused_at_once_when_it_would_wait() {
    let l = one_permit_held_100ms(PriorityLimiter::builder()).await;
    // High takes every permit, ten a second, for two seconds.
    let held = keep_busy(&l, Priority::High, Duration::from_millis(100), 2).await;
    let mut next_high = spawn(l.acquire(Priority::High));
    assert_pending!(next_high.poll());
    // A Low newcomer would wait behind all of High's future arrivals:
    // refused now, not after its one-second timeout.
    let err = assert_ready_err!(spawn(l.acquire(Priority::Low)).poll());
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    // The High that waits is served as usual.
    drop(held);
    drop(assert_ready_ok!(next_high.poll()));
    // The permit is free and nobody waits: Low is admitted at once, however
    // busy High was a moment ago.
    drop(l.try_acquire(Priority::Low).unwrap());
    drop(l.acquire(Priority::Low).await.unwrap());
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_class_that_leaves_room_does_not_keep_a_lower_one_out() {
    let l = one_permit_held_100ms(PriorityLimiter::builder()).await;
    // High takes half the permit's time for two seconds: 5 a second.
    let mut at = Instant::now();
    for _ in 0..10 {
        let p = l.try_acquire(Priority::High).unwrap();
        tokio::time::advance(Duration::from_millis(100)).await;
        drop(p);
        at += Duration::from_millis(200);
        tokio::time::sleep_until(at).await;
    }
    let held = l.try_acquire(Priority::High).unwrap();
    // Half the service is left to Low: a waiter ahead and itself, ~0.4 s.
    let mut first = spawn(l.acquire(Priority::Low));
    assert_pending!(first.poll());
    let mut second = spawn(l.acquire(Priority::Low));
    assert_pending!(second.poll(), "Low queues within its one-second timeout");
    drop(held);
    drop(assert_ready_ok!(first.poll()));
    drop(assert_ready_ok!(second.poll()));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_queued_waiter_gives_up_at_its_deadline_rather_than_its_class_timeout() {
    // Nothing measured: the estimated wait is zero, so any deadline queues.
    let l = PriorityLimiter::builder()
        .limit(1)
        .queue_timeout(Priority::Bulk, 20 * SECOND)
        .build()
        .unwrap();
    let held = l.try_acquire(Priority::Normal).unwrap();
    // Bulk's class timeout is 20 s; the deadline is 3 s.
    let mut w = spawn(l.acquire(with_deadline(Priority::Bulk, 3 * SECOND)));
    assert_pending!(w.poll());
    tokio::time::advance(Duration::from_millis(2_999)).await;
    assert_pending!(w.poll());
    tokio::time::advance(Duration::from_millis(2)).await;
    assert!(w.is_woken(), "the deadline timer woke the waiter");
    let err = assert_ready_err!(w.poll());
    assert_eq!(err.reason(), Reason::QueueTimeout);
    assert_eq!(l.snapshot().counts[Priority::Bulk].timed_out, 1);
    drop(held);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn by_default_a_waiter_gives_up_after_a_second() {
    let l = limiter(1, 10);
    let held = l.try_acquire(Priority::Normal).unwrap();
    for p in Priority::ALL {
        let mut w = spawn(l.acquire(p));
        assert_pending!(w.poll());
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_pending!(w.poll());
        tokio::time::advance(Duration::from_millis(2)).await;
        assert_eq!(assert_ready_err!(w.poll()).reason(), Reason::QueueTimeout);
    }
    drop(held);
    assert_idle(&l);
}
