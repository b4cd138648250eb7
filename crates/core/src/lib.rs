//! The shared vocabulary of [tower-pressure]: priorities, pressure signals,
//! the `Overloaded` rejection, events and metric names.
//!
//! tower-pressure is overload management for Rust services as composable
//! `tower` layers. Every layer crate of the family depends on this one and on
//! nothing else of the family, so that one layer can be used alone. Most
//! users depend on the `tower-pressure` facade instead, which re-exports all
//! of this.
//!
//! # Overview
//!
//! - [`Priority`] (five ordered classes) and [`Cohort`] say how important a
//!   request is; [`Deadline`] says when its caller stops caring.
//!   [`PriorityOf`] is how a layer reads them from a request;
//!   [`PerPriority`] holds one value for each class.
//! - [`Source`] reads a resource; [`Signal`] samples it, smooths it, maps it
//!   to a [`PressureLevel`] through [`Thresholds`] (with hysteresis) and
//!   publishes the result for a one-atomic-load read.
//! - [`Overloaded`] is the one rejection error of the family.
//! - [`Event`]s on an [`EventBus`] say what happened and why;
//!   [`metrics`] holds the metric names.
//! - [`LimitHandle`] lets one layer tune another's concurrency limit (the
//!   adaptive tuner drives the admission limiter through it).
//! - [`ConfigError`] is what every `build()` returns for a bad value.
//! - [`cgroup`] is the Linux plumbing the resource sources share: finding
//!   the process's cgroup, files kept open and re-read, small parsers.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tower_pressure_core::{
//!     ManualSource, Overloaded, PressureLevel, Priority, Reason, Signal, SignalConfig, Thresholds,
//! };
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Thresholds are validated when built.
//! let thresholds = Thresholds::builder().low(0.5).medium(0.7).high(0.8).critical(0.9).build()?;
//! let config = SignalConfig::builder("memory").thresholds(thresholds).ewma_alpha(1.0).build()?;
//!
//! // One sampler task per signal, started explicitly.
//! let source = ManualSource::new(0.75);
//! let memory = Signal::spawn_with(source.clone(), config);
//! tokio::time::sleep(Duration::from_millis(1)).await;
//! assert_eq!(memory.level(), PressureLevel::Medium);
//!
//! // A layer decides from the level and refuses honestly.
//! let priority: Priority = "low".parse()?;
//! if memory.level() >= PressureLevel::Medium && priority < Priority::Normal {
//!     let err = Overloaded::new(Reason::Memory(memory.level()), priority);
//!     assert_eq!(err.retry_after_secs(), 1);
//! }
//!
//! // Hooks wait for level changes.
//! let mut changes = memory.subscribe();
//! source.set(0.95);
//! changes.changed().await?;
//! assert_eq!(changes.borrow().level, PressureLevel::Critical);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! All off by default.
//!
//! - `http`: [`Overloaded`] as a `503` + `Retry-After` response, or a
//!   trailers-only gRPC reply for gRPC requests ([`http::Rejection`]).
//! - `grpc`: [`Overloaded`] as a `tonic::Status` (implies `http`).
//! - `serde`: `Serialize`/`Deserialize` for [`Priority`], [`PerPriority`]
//!   (a map keyed by priority name), [`PressureLevel`], [`Thresholds`]
//!   (validated on the way in) and the rejection settings.
//!
//! # Minimum supported Rust version
//!
//! The MSRV is 1.88 (edition 2024).
//!
//! [tower-pressure]: https://github.com/tower-pressure/tower-pressure

mod deadline;
mod error;
mod event;
mod level;
mod limit;
#[cfg(feature = "http")]
mod load_report;
mod overloaded;
mod per_priority;
mod priority;
mod refusal;
mod signal;
mod source;

// Plumbing the memory and CPU crates share (cgroup discovery, kept files,
// parsers), not vocabulary: public for them, hidden from the docs and
// outside the semver promise.
#[doc(hidden)]
pub mod cgroup;
#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "http")]
pub mod http;
pub mod metrics;

pub use deadline::Deadline;
pub use error::ConfigError;
pub use event::{Event, EventBus};
pub use level::{ParseLevelError, PressureLevel, Thresholds, ThresholdsBuilder};
pub use limit::{LimitControl, LimitHandle};
#[cfg(feature = "http")]
pub use load_report::{
    ENDPOINT_LOAD_METRICS, ENDPOINT_LOAD_METRICS_FORMAT, LoadReport, LoadReportFuture,
    LoadReportLayer, LoadReporting,
};
pub use overloaded::{MIN_RETRY_AFTER, Overloaded, Reason};
pub use per_priority::PerPriority;
pub use priority::{Cohort, CohortOutOfRange, ParsePriorityError, Priority, PriorityOf};
pub use refusal::{AsError, BoxError, Refusal};
pub use signal::{Signal, SignalConfig, SignalConfigBuilder, SignalState};
pub use source::{ManualSource, Reading, Source};
