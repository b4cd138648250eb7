//! Helpers shared by the admission tests.
#![allow(dead_code, reason = "each test file uses a different subset")]

pub(crate) mod sim;

use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::{Priority, PriorityOf};

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
