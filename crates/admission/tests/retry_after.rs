//! The `retry_after` advice of a refusal: a second while no hold time is
//! measured, then the time to drain the queue at the measured hold time,
//! capped at thirty seconds.

mod support;

use std::time::Duration;

use support::{SECOND, assert_idle, assert_near, limiter, one_permit, teach_hold_time};
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready_err};
use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::{Priority, Reason};

#[tokio::test(start_paused = true)]
async fn retry_after_is_one_second_while_no_hold_time_is_measured() {
    let l = limiter(1, 0);
    let held = l.try_acquire(Priority::Normal).unwrap();
    let err = l.try_acquire(Priority::Normal).unwrap_err();
    assert_eq!(err.reason(), Reason::QueueFull);
    assert_eq!(err.retry_after(), SECOND);
    let err = assert_ready_err!(spawn(l.acquire(Priority::High)).poll());
    assert_eq!(err.reason(), Reason::QueueFull);
    assert_eq!(err.retry_after(), SECOND);
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn retry_after_grows_with_the_queue_at_the_measured_hold_time_up_to_thirty_seconds() {
    // Low waiters may wait a minute here, so that none is refused early for
    // an estimated wait past its queue timeout.
    let l = one_permit(1000, Priority::Low, Duration::from_secs(60));
    teach_hold_time(&l, SECOND, 5).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut waiters = Vec::new();
    let mut last = Duration::ZERO;
    for queued in 0..40u64 {
        let err = l.try_acquire(Priority::Low).unwrap_err();
        assert_eq!(err.reason(), Reason::QueueFull);
        assert_eq!(err.queue_len() as u64, queued);
        // The time to drain the queue and this request, one at a time, 1 s each.
        let expected = Duration::from_secs(queued + 1).min(Duration::from_secs(30));
        assert_near(err.retry_after(), expected, Duration::from_millis(1));
        assert!(err.retry_after() >= SECOND);
        assert!(err.retry_after() >= last, "grows with the queue");
        assert!(
            err.retry_after() <= Duration::from_secs(30),
            "capped at 30 s"
        );
        last = err.retry_after();
        let mut w = spawn(l.acquire(Priority::Low));
        assert_pending!(w.poll());
        waiters.push(w);
    }
    // A refusal by `acquire` with the queue full advises the same.
    l.limit_handle().set_max_queue(40);
    let err = assert_ready_err!(spawn(l.acquire(Priority::Low)).poll());
    assert_eq!(err.reason(), Reason::QueueFull);
    assert_eq!(err.retry_after(), Duration::from_secs(30));
    drop(waiters);
    drop(held);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_a_short_queue_reflects_the_measured_hold_time() {
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(2)
        .queue_timeout(Priority::Normal, 60 * SECOND)
        .queue_timeout(Priority::Bulk, 60 * SECOND)
        .build()
        .unwrap();
    teach_hold_time(&l, 3 * SECOND, 5).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut a = spawn(l.acquire(Priority::Normal));
    let mut b = spawn(l.acquire(Priority::Normal));
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    // Two waiters and this one, 3 s each.
    let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
    assert_eq!(err.reason(), Reason::QueueFull);
    assert_near(err.retry_after(), 9 * SECOND, Duration::from_millis(1));
    drop((a, b, held));
    assert_idle(&l);
}
