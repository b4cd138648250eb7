//! Priority-queue admission for tower-pressure: a concurrency limit with a
//! bounded priority wait queue, as a mechanism ([`PriorityLimiter`]) and as
//! tower layers ([`AdmissionLayer`] for HTTP, [`GenericAdmissionLayer`] for
//! any service).
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
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use tower_pressure_admission::{AdmissionLayer, Drain, PriorityLimiter};
//!
//! # fn main() -> Result<(), tower_pressure_core::ConfigError> {
//! let limiter = PriorityLimiter::builder()
//!     .limit(32)          // 32 requests in flight at most
//!     .max_queue(500)     // and 500 waiting
//!     .drain(Drain::Priority)
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
mod generic;
mod layer;
mod limiter;
mod phase;
mod service;
mod sync;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use generic::{BoxError, GenericAdmission, GenericAdmissionLayer, GenericResponseFuture};
pub use layer::AdmissionLayer;
pub use limiter::config::{
    DEFAULT_CODEL_INTERVAL, DEFAULT_CODEL_TARGET, DEFAULT_LIMIT, DEFAULT_MAX_QUEUE,
    DEFAULT_QUEUE_TIMEOUTS, DEFAULT_WEIGHTS,
};
pub use limiter::{
    Acquire, AdmitRequest, ClassCounts, Codel, Drain, Permit, PriorityLimiter,
    PriorityLimiterBuilder, Snapshot,
};
pub use service::Admission;
