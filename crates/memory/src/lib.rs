//! Memory-pressure shedding for tower-pressure: memory sources (cgroup v1/v2,
//! PSI, `/proc/meminfo`, process RSS, a heap budget), a fast memory
//! [`Signal`](tower_pressure_core::Signal), [`MemoryShedLayer`], and hooks
//! that shrink caches and purge the allocator when memory runs short.
//!
//! # Overview
//!
//! - **Sources** ([`Source`](tower_pressure_core::Source)s): [`MemorySource::auto`]
//!   picks the first that applies — the container's cgroup limit
//!   ([`CgroupMemory`], v2 or v1, smallest across parents), else the host
//!   ([`Meminfo`]), else `sysinfo` (feature) — and degrades to the next when
//!   one fails. [`HeapBudget`] measures the process against a budget of its
//!   own; [`PsiMemory`] reads pressure-stall information.
//! - **Signal**: [`MemorySignal::spawn`] samples every 50 ms without
//!   smoothing, so a reading that crosses a threshold is acted on within
//!   100 ms ([`MemorySignal::config`] to change it).
//! - **Shedding**: [`MemoryShedLayer`] admits, per pressure level, only the
//!   priorities the [`MemoryShedConfig`] table allows; refusals are
//!   `503`/gRPC responses, or errors for any service with
//!   `.refusal(AsError)`. One atomic load per request.
//! - **Hooks**: [`MemoryHooks`] run on level changes, off the request path:
//!   callbacks, [`Shrink`] for caches, an allocator purge.
//!   [`MemoryPressure`] tells a handler to degrade instead of refusing.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_pressure_memory::{MemoryHooks, MemoryShedLayer, MemorySource, MemorySignal};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_pressure_core::ConfigError> {
//! // One sampler for the process, started explicitly.
//! let memory = MemorySignal::spawn(MemorySource::auto());
//!
//! // Shrink a cache when memory gets tight; stops when `_hooks` drops.
//! let _hooks = MemoryHooks::builder()
//!     .shrink(|keep: f64| println!("keep {:.0}% of the cache", keep * 100.0))
//!     .build()?
//!     .spawn(&memory);
//!
//! // Refuse Bulk at Medium, below Normal at High, all but Critical at Critical.
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(MemoryShedLayer::new(memory));
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! All off by default.
//!
//! - `metrics`: a `tower_pressure_shed_total` counter per refusal and the
//!   `tower_pressure_level` gauge on level changes (names in
//!   `tower_pressure_core::metrics`), through the `metrics` facade.
//! - `sysinfo`: [`SysinfoMemory`], the portable fallback source for machines
//!   without `/proc`, last in [`MemorySource::auto`]'s chain.
//!
//! # Minimum supported Rust version
//!
//! The MSRV is 1.88 (edition 2024).

mod config;
mod future;
mod hooks;
mod layer;
mod pressure;
mod service;
mod signal;
mod source;

pub use config::{MemoryShedConfig, MemoryShedConfigBuilder};
pub use future::ResponseFuture;
pub use hooks::{HooksHandle, LevelChange, MemoryHooks, MemoryHooksBuilder, Shrink};
pub use layer::MemoryShedLayer;
pub use pressure::MemoryPressure;
pub use service::MemoryShed;
pub use signal::MemorySignal;
#[cfg(feature = "sysinfo")]
pub use source::SysinfoMemory;
pub use source::{CgroupMemory, HeapBudget, Meminfo, MemorySource, ProcessRss, PsiMemory};
