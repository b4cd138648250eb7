//! Adaptive limits for tower-pressure: an admission limiter's concurrency
//! limit, tuned from the latencies and outcomes of the work it admitted.
//!
//! # Overview
//!
//! A fixed concurrency limit is wrong twice: too high and requests queue
//! inside the service (latency grows, timeouts follow); too low and capacity
//! sits idle. This crate measures and moves it.
//!
//! - [`AdaptiveLayer`] (made by [`AdaptiveLimit::layer`]) records each
//!   admitted request's latency and [`Outcome`] — success, dropped (overload
//!   or timeout below us, decided by a [`Classify`]er, [`HttpClassifier`] by
//!   default) or ignored (the client went away; never a sample) — into
//!   windows, with a few atomic operations and no lock per request.
//! - A [`LimitAlgorithm`] turns each closed window (a [`Sample`]) into a new
//!   limit: [`Bottleneck`] (the default to reach for: Little's law, the
//!   delivery rate times the no-load latency, found within ±15 % in a few
//!   seconds), [`Aimd`], [`Gradient2`] and [`Vegas`] (after Netflix's
//!   concurrency-limits) or the Envoy-style [`GradientController`]. The
//!   latency-gradient ones settle at a multiple of the capacity set by their
//!   tolerance (Gradient2 at about 1.5×).
//! - [`AdaptiveLimit`] writes it through the admission limiter's
//!   [`LimitHandle`](tower_pressure_core::LimitHandle) — this crate does not
//!   depend on the admission crate — and lets an operator pin the limit or
//!   freeze adaptation.
//! - [`Tuner`] is a score-trend tuner: every interval it
//!   scores latency, throughput, errors and pressures, and moves the memory
//!   and CPU thresholds and the queue bound ×0.9 on a deteriorating trend,
//!   ×1.05 on an improving one, back towards where it began on a stable one,
//!   within bounds (`Critical` never below where it began).
//! - [`Recovery`] puts the limiter in emergency mode on memory `Critical` or
//!   an operator's trigger, runs shrink hooks, and afterwards ramps the limit
//!   back in steps instead of all at once.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_pressure_adaptive::{AdaptiveLimit, Bottleneck};
//! use tower_pressure_admission::{AdmissionLayer, PriorityLimiter};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let limiter = PriorityLimiter::builder().limit(20).max_queue(100).build()?;
//!
//! // Moves the limiter's limit, one window (≥ 100 ms, ≥ 10 requests) at a
//! // time, starting from the limiter's 20.
//! let adaptive = AdaptiveLimit::new(Bottleneck::default(), limiter.limit_handle());
//!
//! let app = ServiceBuilder::new()
//!     .layer(AdmissionLayer::new(limiter.clone())) // the queue and the limit
//!     .layer(adaptive.layer())                     // measures what got in
//!     .service(service_fn(|_req: Request<String>| async {
//!         tokio::time::sleep(Duration::from_millis(5)).await;
//!         Ok::<_, Infallible>(Response::new(String::from("done")))
//!     }));
//!
//! for _ in 0..20 {
//!     app.clone().oneshot(Request::new(String::new())).await?;
//!     tokio::time::advance(Duration::from_millis(60)).await;
//! }
//! assert!(adaptive.windows() >= 1);
//! // The service was never busy (one request at a time): the windows said
//! // nothing of its capacity and the limit was left alone.
//! assert_eq!(limiter.limit(), 20);
//!
//! // Operators can take over in an incident.
//! adaptive.pin(5);
//! assert_eq!(limiter.limit(), 5);
//! adaptive.unpin();
//! # Ok(()) }
//! ```
//!
//! # Stacking
//!
//! The recording layer goes *inside* the admission layer, so that what it
//! measures is admitted work and a refusal is never a sample.
//!
//! # Features
//!
//! - `metrics`: the limit as the `tower_pressure_limit{layer="adaptive"}`
//!   gauge through the `metrics` facade (names in
//!   `tower_pressure_core::metrics`). Off by default.
//!
//! # Minimum supported Rust version
//!
//! The MSRV is 1.88 (edition 2024).

mod algorithm;
mod body;
mod classify;
mod future;
mod layer;
mod limit;
mod recovery;
mod sample;
mod service;
mod tuner;
mod window;

pub use algorithm::{
    Aimd, AimdBuilder, Bottleneck, BottleneckBuilder, Gradient2, Gradient2Builder,
    GradientController, GradientControllerBuilder, LimitAlgorithm, Vegas, VegasBuilder,
};
pub use body::RecordingBody;
pub use classify::{Classify, HttpClassifier};
pub use future::{Pending, ResponseFuture};
pub use layer::AdaptiveLayer;
pub use limit::{AdaptiveLimit, AdaptiveLimitBuilder};
pub use recovery::{Recovery, RecoveryBuilder, RecoveryHandle, RecoveryState};
pub use sample::{Outcome, Sample};
pub use service::Adaptive;
pub use tuner::{
    Change, Decision, PerformanceSample, PerformanceSource, ScoreWeights, Trend, Tuner,
    TunerBuilder, TunerHandle,
};

/// The longest interval a builder accepts (a day): instants a longer one
/// away could overflow the clock's arithmetic on the request path.
pub const MAX_INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Refuses a zero interval, or one longer than [`MAX_INTERVAL`], naming
/// `field`: every interval a builder takes goes through here.
fn check_interval(
    field: &'static str,
    interval: std::time::Duration,
) -> Result<(), tower_pressure_core::ConfigError> {
    if interval.is_zero() {
        return Err(tower_pressure_core::ConfigError::new(
            field,
            "0s",
            "must be more than zero",
        ));
    }
    if interval > MAX_INTERVAL {
        return Err(tower_pressure_core::ConfigError::new(
            field,
            format_args!("{interval:?}"),
            "must be at most a day",
        ));
    }
    Ok(())
}
