//! Priority-queue admission for tower-pressure: a concurrency limit with a
//! bounded priority wait queue, as a mechanism ([`PriorityLimiter`]) and as
//! a tower layer ([`AdmissionLayer`]: HTTP responses by default, or errors
//! for any service).
//!
//! # Overview
//!
//! A [`PriorityLimiter`] hands out at most `limit` [`Permit`]s. A request
//! that finds none free waits in a bounded queue and is admitted in
//! [`Drain`] order (highest priority first by default), gives up after its
//! class's queue timeout, may be pushed out by a more important newcomer when
//! the queue is full, and is refused at once when its deadline cannot be met.
//! Every refusal is an [`Overloaded`](tower_pressure_core::Overloaded) with an
//! estimated `retry_after`. A permit is returned on every path: response,
//! error, panic, cancellation, timeout.
//!
//! The limit, the queue bound and emergency mode change at run time through
//! the limiter or its [`LimitHandle`](tower_pressure_core::LimitHandle).
//!
//! # Setting it up
//!
//! Two settings matter: the limit — how many requests your service works
//! on at once at its best — and each class's queue timeout — its latency
//! objective less what a request still takes once admitted. A queue that
//! stands is held to a tenth of the timeout on its own; refusals are
//! answered at once.
//!
//! # Invariants
//!
//! These hold whatever the load, and are tested (random histories against a
//! reference model, loom models of the queue core, loads on paused and real
//! time):
//!
//! 1. No permit is lost: after any mix of success, error, panic,
//!    cancellation and timeout, in-flight and queued counts return to zero.
//! 2. The queue never holds more than `max_queue` waiters.
//! 3. Under [`Drain::Priority`], a waiter is never admitted while a waiter
//!    of a higher class waits.
//! 4. Work conservation: a request that finds a permit free and nobody
//!    waiting is admitted (emergency mode and a request whose own deadline
//!    has passed aside), and nobody waits while a permit is free. A refusal
//!    for load only ever meets a request that would have to wait.
//! 5. A refusal at arrival is answered without waiting.
//! 6. Nothing `build()` accepts can panic on the request path: durations
//!    are bounded at an hour, weights at a million.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::{Router, routing::post};
//! use tower_pressure_admission::{AdmissionLayer, PriorityLimiter};
//! use tower_pressure_core::Priority;
//!
//! # fn main() -> Result<(), tower_pressure_core::ConfigError> {
//! // 32 requests in flight at most. Transcriptions take up to 50 ms;
//! // voice calls want an answer within 500 ms, the rest within a second.
//! let limiter = PriorityLimiter::builder()
//!     .limit(32)
//!     .queue_timeout(Priority::High, Duration::from_millis(450))
//!     .queue_timeout(Priority::Normal, Duration::from_millis(950))
//!     .build()?;
//!
//! // One limiter for the whole router: every route and connection shares it.
//! let app: Router = Router::new()
//!     .route("/voice/transcribe", post(|| async { "transcript" }))
//!     .layer(AdmissionLayer::new(limiter.clone()).hold_until_body_end(true));
//!
//! // The same limiter guards a database pool directly.
//! # async fn query(limiter: tower_pressure_admission::PriorityLimiter) -> Result<(), tower_pressure_core::Overloaded> {
//! let _conn = limiter.acquire(tower_pressure_core::Priority::High).await?;
//! # Ok(()) }
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `metrics`: counters of admissions and refusals through the `metrics`
//!   facade (names in `tower_pressure_core::metrics`). Off by default.

mod body;
mod future;
mod layer;
mod limiter;
mod phase;
mod service;
mod sync;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::{AdmissionLayer, Delivery, HttpRefusal};
pub use limiter::{
    Acquire, AdmitRequest, ClassCounts, Codel, Drain, Permit, PriorityLimiter,
    PriorityLimiterBuilder, Snapshot,
};
pub use service::Admission;
