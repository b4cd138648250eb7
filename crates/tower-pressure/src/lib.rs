//! Overload management for Rust services as composable `tower` layers.
//!
//! A service pushed past its capacity should keep serving its most important
//! work at full speed, refuse the rest fast and honestly (503 +
//! `Retry-After`, gRPC `RESOURCE_EXHAUSTED` + pushback), never lose a
//! permit, never grow an unbounded queue, and recover on its own.
//!
//! This facade re-exports the family's crates, each behind a feature: the
//! shared vocabulary ([`tower-pressure-core`](tower_pressure_core):
//! priorities, pressure signals, [`Overloaded`]), classification
//! (`ClassifyLayer`), admission (the `PriorityLimiter` and its layers),
//! memory shedding (`MemoryShedLayer`), CPU throttling (`CpuThrottleLayer`)
//! and adaptive limits (`AdaptiveLimit`, the threshold `Tuner`,
//! `Recovery`); on the calling side, the client crate (`ThrottleLayer`,
//! `PushbackPolicy`). `ServiceBuilderExt` adds the server layers to a
//! `ServiceBuilder` by name; `stack()` (feature `full`) is all of them as
//! one layer.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::{Router, routing::post};
//! use tower::ServiceBuilder;
//! use tower_pressure::{AdmissionLayer, ClassifyLayer, Priority, PriorityLimiter, Rules};
//!
//! # fn main() -> Result<(), tower_pressure::ConfigError> {
//! // One limiter: 32 requests in flight, highest priority first. Each class
//! // waits at most its latency objective less the work (voice: 500 ms less
//! // up to 50 ms); the others keep the default, a second.
//! let limiter = PriorityLimiter::builder()
//!     .limit(32)
//!     .queue_timeout(Priority::High, Duration::from_millis(450))
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route("/voice/transcribe", post(|| async { "transcript" }))
//!     .layer(
//!         ServiceBuilder::new()
//!             // 1. Who are you: /voice/ is High, /health Critical, …
//!             .layer(ClassifyLayer::new(Rules::voice_service()))
//!             // 2. The queue. Refusals are 503 + Retry-After responses:
//!             //    no HandleErrorLayer needed.
//!             .layer(AdmissionLayer::new(limiter.clone())),
//!     );
//!
//! // The same limiter can guard any other scarce resource directly.
//! # async fn query(limiter: tower_pressure::PriorityLimiter) -> Result<(), tower_pressure::Overloaded> {
//! let _connection = limiter.acquire(Priority::High).await?;
//! # Ok(()) }
//! # Ok(()) }
//! ```
//!
//! Every layer at once (feature `full`): classify, shed on memory, throttle
//! on CPU, admit through the priority queue, tune the limit from the
//! latency of what got in.
//!
//! ```
//! # #[cfg(feature = "full")]
//! # fn main() -> Result<(), tower_pressure::ConfigError> {
//! use axum::{Router, routing::post};
//! use tower_pressure::adaptive::Bottleneck;
//! use tower_pressure::cpu::{CpuSignal, CpuSource};
//! use tower_pressure::memory::{MemorySource, MemorySignal};
//! use tower_pressure::{AdaptiveLimit, PriorityLimiter, Rules};
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! # let _guard = rt.enter();
//! let limiter = PriorityLimiter::builder().limit(32).max_queue(256).build()?;
//! let memory = MemorySignal::spawn(MemorySource::auto()); // cgroup, else /proc/meminfo, …
//! let cpu = CpuSignal::spawn(CpuSource::auto()); // cgroup quota, else /proc/stat, …
//! let adaptive = AdaptiveLimit::new(Bottleneck::default(), limiter.limit_handle());
//! let app: Router = Router::new()
//!     .route("/voice/transcribe", post(|| async { "transcript" }))
//!     .layer(
//!         tower_pressure::stack(limiter)
//!             .rules(Rules::voice_service())
//!             .memory(memory)
//!             .cpu(cpu)
//!             .adaptive(adaptive),
//!     );
//! # Ok(()) }
//! # #[cfg(not(feature = "full"))] fn main() {}
//! ```
//!
//! # Features
//!
//! - `admission` (default): [`PriorityLimiter`], [`AdmissionLayer`]. Every
//!   layer answers a refusal with an HTTP or gRPC response by default, or,
//!   with `.refusal(AsError)`, with a [`BoxError`] for any service.
//! - `classify` (default): [`ClassifyLayer`], [`Rules`], [`Trust`].
//! - `memory`: `MemoryShedLayer`, memory sources, pressure hooks.
//! - `cpu`: `CpuThrottleLayer`, CPU sources.
//! - `adaptive`: `AdaptiveLimit`, `Tuner`, `Recovery`.
//! - `full`: all of the above, and `stack()`.
//! - `client`: the calling side, apart from `full`: `ThrottleLayer`
//!   (adaptive throttling of outgoing calls) and `PushbackPolicy` (retries
//!   after the server's pushback, within a budget).
//! - `sysinfo`: the portable fallback sources of memory and CPU.
//! - `http`: rejections as HTTP responses (on with `admission`).
//! - `grpc`: rejections as `tonic::Status`.
//! - `serde`: deserialisable configuration.
//! - `metrics`: counters through the `metrics` facade.

pub use tower_pressure_core::*;

#[cfg(feature = "classify")]
pub use tower_pressure_classify::{self as classify, ClassifyLayer, Rules, Trust};

#[cfg(feature = "admission")]
pub use tower_pressure_admission::{
    self as admission, AdmissionLayer, AdmitRequest, Drain, Permit, PriorityLimiter,
};

#[cfg(feature = "memory")]
pub use tower_pressure_memory::{self as memory, MemoryShedLayer};

#[cfg(feature = "cpu")]
pub use tower_pressure_cpu::{self as cpu, CpuThrottleLayer};

#[cfg(feature = "adaptive")]
pub use tower_pressure_adaptive::{
    self as adaptive, AdaptiveLayer, AdaptiveLimit, Recovery, Tuner,
};

#[cfg(feature = "client")]
pub use tower_pressure_client::{self as client, PushbackPolicy, ThrottleLayer};

mod ext;
pub use ext::ServiceBuilderExt;

#[cfg(feature = "full")]
mod stack;
#[cfg(feature = "full")]
pub use stack::{PressureStack, stack};
