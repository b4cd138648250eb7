//! CPU throttling for tower-pressure: CPU sources (cgroup quota, `/proc/stat`,
//! the tokio runtime's busy ratio) and [`CpuThrottleLayer`], which delays
//! requests by priority while the CPU is pressed.
//!
//! # Overview
//!
//! - Sources: [`CgroupCpu`] (cgroup v2 `cpu.stat` against `cpu.max`, v1
//!   `cpuacct.usage` against the CFS quota; throttled periods count as
//!   pressure), [`ProcStat`] (host), [`RuntimeBusy`] (tokio workers' busy
//!   time), `SysinfoCpu` (feature `sysinfo`). [`CpuSource::auto`] picks the
//!   best for the machine and falls back when one fails; [`Highest`] reads
//!   two (say the runtime and the container) and reports the more pressed.
//! - [`CpuSignal::spawn`] samples a source every 50 ms and averages the last
//!   4 samples, so a threshold breach becomes a level within 200 ms
//!   ([`CpuSignalConfig`] has the trade-off). Levels: `start` (0.70) is
//!   `Medium`, `aggressive` (0.85) `High`, `emergency` (0.95) `Critical`.
//! - [`CpuThrottleLayer`] (HTTP responses by default, or errors for any
//!   service) delays a request by `base_delay(level) × multiplier(priority)`:
//!   100/500/1000 ms × 2.0 (`Bulk`), 1.5, 1.0 (`Normal`), capped; High and
//!   Critical are not delayed by default — while a
//!   request of a higher class is in the service (the delay gives the CPU to
//!   work that matters more; a service busy with one class is not slowed);
//!   a request whose deadline would pass is refused at once instead, and at
//!   most 1024 wait at once ([`CpuThrottleConfig`]).
//! - Optionally, a capacity gate (Sentinel/Kratos "BBR",
//!   [`CpuThrottleLayer::capacity_gate`]): while the CPU is pressed, refuse
//!   the requests in excess of max throughput × min latency, so that CPU
//!   alone does not make the service oscillate. It lives here, not in the
//!   admission or adaptive crates, because it acts only on the CPU signal:
//!   without CPU pressure it admits everything, and its estimate is of the
//!   work the CPU can hold, measured where the CPU is spent. A limit that
//!   should hold whatever the CPU reads belongs to the admission limiter,
//!   tuned by the adaptive crate.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use tower::ServiceBuilder;
//! use tower_pressure_cpu::{CpuSignal, CpuSource, CpuThrottleConfig, CpuThrottleLayer};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_pressure_core::ConfigError> {
//! // One sampler for the process, started explicitly.
//! let source = CpuSource::auto();
//! println!("cpu source: {source:?}");
//! let cpu = CpuSignal::spawn(source);
//!
//! let config = CpuThrottleConfig::builder()
//!     .max_delay(Duration::from_millis(1500))
//!     .shed_bulk_at_emergency(true)
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/analytics", get(|| async { "numbers" }))
//!     .layer(ServiceBuilder::new().layer(CpuThrottleLayer::with_config(cpu, config)));
//! # Ok(()) }
//! ```
//!
//! # Stacking
//!
//! Put the throttle after the cheap refusals (classification, memory
//! shedding) and before the admission queue: a request the throttle delays
//! holds no admission permit while it waits, and one it refuses never
//! queues.
//!
//! # Reaction time
//!
//! From a reading crossing a threshold to the first throttled request takes
//! at most `window × interval` (200 ms at the defaults); the `reaction`
//! tests prove it with paused time. To measure it on a real machine, run
//! `cargo run --release -p tower-pressure-cpu --example spin`: it burns the
//! runtime's workers and prints the time from the start of the burn to the
//! first throttled request.
//!
//! # Features
//!
//! All off by default.
//!
//! - `sysinfo`: the `sysinfo` crate as the portable fallback source, for
//!   machines without `/proc`.
//! - `metrics`: refusals (`tower_pressure_shed_total`) and delays
//!   (`tower_pressure_throttle_delay_seconds`) through the `metrics` facade.
//! - `serde`: [`CpuThrottleConfig`] and [`CpuSignalConfig`] deserialise
//!   (TOML in the examples), validated as by their builders.
//!
//! # Minimum supported Rust version
//!
//! The MSRV is 1.88 (edition 2024). The runtime source needs tokio 1.45 or
//! later (stable `worker_total_busy_duration`).

mod config;
#[cfg(feature = "serde")]
mod file;
mod future;
mod gate;
mod highest;
mod layer;
mod service;
mod signal;
mod source;
mod throttle;
mod window;

pub use config::{CpuThrottleConfig, CpuThrottleConfigBuilder};
pub use future::ResponseFuture;
pub use gate::{CapacityGateConfig, CapacityGateConfigBuilder, GateSnapshot};
pub use highest::Highest;
pub use layer::CpuThrottleLayer;
pub use service::CpuThrottle;
pub use signal::{CpuSignal, CpuSignalConfig, CpuSignalConfigBuilder};
#[cfg(feature = "sysinfo")]
pub use source::SysinfoCpu;
pub use source::{CgroupCpu, CpuSource, CpuStats, ProcStat, RuntimeBusy, host_cores};
pub use window::Windowed;
