//! Priority classification for tower-pressure: [`ClassifyLayer`] puts a
//! [`Priority`](tower_pressure_core::Priority) — and, when configured, a
//! [`Cohort`](tower_pressure_core::Cohort) and a
//! [`Deadline`](tower_pressure_core::Deadline) — into each request's
//! extensions, where the admission, memory and CPU layers read them.
//!
//! # Overview
//!
//! - [`Rules`]: ordered matchers (path prefix, exact path, path [`Glob`],
//!   method, header present / equal, gRPC method or service, a closure), first
//!   match wins, default `Normal`. [`Rules::voice_service`] classifies a
//!   voice service's API with segment-aware prefixes.
//! - [`Trust`]: a client's own priority header is ignored unless trusted, and
//!   then capped (default `High`). An untrusted client can never raise its
//!   own priority.
//! - Cohorts from a hashed user header with an hourly-rotated salt (DAGOR),
//!   or random; deadlines from `grpc-timeout`, a millisecond header, or
//!   per-priority defaults.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_pressure_classify::{ClassifyLayer, Rules, Trust};
//! use tower_pressure_core::Priority;
//!
//! # fn main() -> Result<(), tower_pressure_core::ConfigError> {
//! let rules = Rules::builder()
//!     .path_prefix("/voice/", Priority::High)
//!     .path_glob("/api/*/report", Priority::Low)
//!     .grpc_service("voice.Transcriber", Priority::High)
//!     .path_exact("/health", Priority::Critical)
//!     .build()?;
//! let classify = ClassifyLayer::builder(rules)
//!     // Our own gateway signs forwarded requests; nobody else is believed.
//!     .trust(Trust::shared_secret("x-internal-token", "s3cret")?)
//!     .max_trusted(Priority::High)
//!     .cohort_from_header("x-user-id")
//!     .default_deadlines(true)
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/voice/transcribe", get(|| async { "text" }))
//!     .layer(classify);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `serde`: [`Rules`] deserialise (TOML in the examples); a bad rule is a
//!   `ConfigError` naming it.
//! - `axum`: [`Trust::peers`], trust by peer address from `ConnectInfo`.
//! - `metrics`: a counter of requests classified, by priority.

mod classifier;
#[cfg(feature = "serde")]
mod file;
mod glob;
mod layer;
mod matcher;
mod rules;
mod trust;

pub use classifier::ClassifyLayerBuilder;
pub use glob::{Glob, GlobError};
pub use layer::{Classify, ClassifyLayer};
pub use matcher::{Match, Predicate, RequestHead};
pub use rules::{Rules, RulesBuilder};
pub use trust::Trust;
