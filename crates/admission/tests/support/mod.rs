//! Helpers shared by the admission tests.
#![allow(dead_code, reason = "each test file uses a different subset")]

pub(crate) mod sim;

use std::time::Duration;

use tokio_test::task::{Spawn, spawn};
use tokio_test::{assert_pending, assert_ready_ok};
use tower_pressure_admission::{Acquire, PriorityLimiter};
use tower_pressure_core::{Priority, PriorityOf};

/// One second, the unit most tests count in.
pub(crate) const SECOND: Duration = Duration::from_secs(1);

/// A non-http request carrying its priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Job(pub(crate) Priority, pub(crate) u32);

impl PriorityOf for Job {
    fn priority(&self) -> Priority {
        self.0
    }
}

/// A limiter with `limit` permits and room for `max_queue` waiters.
pub(crate) fn limiter(limit: usize, max_queue: usize) -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(limit)
        .max_queue(max_queue)
        .build()
        .expect("valid test config")
}

/// Nothing in flight, nothing queued: every permit came back.
#[track_caller]
pub(crate) fn assert_idle(l: &PriorityLimiter) {
    let s = l.snapshot();
    assert_eq!(s.in_flight, 0, "a permit was not returned: {s:?}");
    assert_eq!(s.queue_len(), 0, "a waiter was left in the queue: {s:?}");
}

/// An http request of `priority`.
pub(crate) fn http_request(priority: Priority) -> http::Request<()> {
    let mut req = http::Request::new(());
    req.extensions_mut().insert(priority);
    req
}

/// Teaches an idle limiter of limit 1 that a permit is held for `hold`:
/// `n` permits granted through the queue (whose hold times are always
/// measured, unlike the fast path's one in 64), each held for `hold`. The
/// requests are `Bulk`, which overtakes no other class (Bulk must be allowed
/// to wait `hold`).
pub(crate) async fn teach_hold_time(l: &PriorityLimiter, hold: Duration, n: usize) {
    let mut held = l.try_acquire(Priority::Bulk).expect("an idle limiter");
    for _ in 0..n {
        let mut next = spawn(l.acquire(Priority::Bulk));
        assert_pending!(next.poll());
        tokio::time::advance(hold).await;
        drop(held);
        held = assert_ready_ok!(next.poll());
    }
    tokio::time::advance(hold).await;
    drop(held);
    assert_idle(l);
}

/// A limiter of one permit and `max_queue` waiters, where `priority` gives
/// up after `timeout` and queues whenever its estimated wait is within it.
/// Bulk, which [`teach_hold_time`] uses, gives up after a minute unless it
/// is `priority`.
pub(crate) fn one_permit(
    max_queue: usize,
    priority: Priority,
    timeout: Duration,
) -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(1)
        .max_queue(max_queue)
        .queue_timeout(Priority::Bulk, 60 * SECOND)
        .queue_timeout(priority, timeout)
        .build()
        .unwrap()
}

/// `n` requests of `priority` that queue (the limiter has no free permit).
pub(crate) fn queue(l: &PriorityLimiter, priority: Priority, n: usize) -> Vec<Spawn<Acquire>> {
    (0..n)
        .map(|_| {
            let mut w = spawn(l.acquire(priority));
            assert_pending!(w.poll());
            w
        })
        .collect()
}

/// `got` is within `tolerance` of `expected`.
#[track_caller]
pub(crate) fn assert_near(got: Duration, expected: Duration, tolerance: Duration) {
    assert!(
        got.abs_diff(expected) <= tolerance,
        "{got:?} is not within {tolerance:?} of {expected:?}"
    );
}
