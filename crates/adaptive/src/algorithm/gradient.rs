//! [`GradientController`]: Envoy's adaptive-concurrency gradient controller.

use std::time::Duration;

use tower_pressure_core::ConfigError;

use super::probe::{AT_MIN_WINDOWS, Probe, Step, random_seed};
use super::{Bounds, LimitAlgorithm, kept_share, whole};
use crate::Sample;

/// The gradient controller of Envoy's adaptive concurrency filter
/// (`envoy/source/extensions/filters/http/adaptive_concurrency`, documented
/// under "Adaptive Concurrency" in Envoy's HTTP filter docs).
///
/// # Model
///
/// The ideal latency, `min_rtt`, is *measured*, periodically: the limit is
/// pinned to `min_limit` (Envoy's `min_concurrency`, default 3) until a
/// window whose every request started with at most that many in flight; its
/// mean latency is the new `min_rtt`, and the limit from before is restored.
/// This runs first thing, then every `probe_interval` plus a random delay of
/// up to `probe_jitter` of it (so that a fleet does not probe in step), and
/// also when the limit has sat at `min_limit` for 5 windows in a row — so a
/// limit driven to the minimum by a baseline that moved can grow again.
///
/// Between measurements, per window with `sample_rtt` its mean latency:
///
/// ```text
/// gradient = clamp((min_rtt × (1 + buffer)) / sample_rtt, 0.5, 2.0)
/// limit    = limit × gradient + √(limit × gradient)      (headroom)
/// ```
///
/// clamped to `[min_limit, max_limit]`. A window's drops cap the gradient
/// at the share of requests not dropped, `1 − drop rate` (0.5 at least),
/// whatever its latency: timed-out requests report none (Netflix issue
/// 137), and a rate rather than "any drop" keeps a steady trickle of
/// failures from pinning the limit (the headroom outgrows a small cut). A window that used less than half the limit does not grow it.
/// Defaults (Envoy): `buffer` 0.25 (Envoy's `min_rtt_buffer`, 25 %),
/// `min_limit` 3, `max_limit` 1000, `probe_jitter` 0.15; `probe_interval`
/// 60 s (Envoy requires one; its docs use 60 s). Envoy takes the 50th
/// percentile of a window's latencies; here it is the mean, which the
/// recording layer keeps without a lock. Envoy measures `min_rtt` over a
/// `request_count` (default 50) of requests; here over one clean window,
/// which holds at least the driver's `min_samples`. Limits are requests in flight.
/// At a service of capacity `C` it settles near `(1 + buffer) × C +
/// √((1 + buffer) × C)`.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_adaptive::{GradientController, LimitAlgorithm, Sample};
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let mut g = GradientController::builder().initial_limit(16).seed(1).build()?;
/// let now = tokio::time::Instant::now();
/// let ms = Duration::from_millis;
/// // First the min RTT is measured at 3 in flight.
/// assert_eq!(g.update(&Sample::new(now, ms(10), 50, 16)), 3);
/// assert_eq!(g.update(&Sample::new(now, ms(10), 50, 3)), 16);
/// assert_eq!(g.min_rtt(), Some(ms(10)));
/// // Latency at min_rtt: gradient 1.25, 16 × 1.25 + √20 ≈ 24.
/// assert_eq!(g.update(&Sample::new(now, ms(10), 50, 16)), 24);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GradientController {
    bounds: Bounds,
    buffer: f64,
    limit: f64,
    min_rtt: Option<Duration>,
    probe: Probe,
    at_min: u32,
}

/// Default `min_rtt` buffer of [`GradientController`] (Envoy: 25 %).
pub(crate) const DEFAULT_GRADIENT_BUFFER: f64 = 0.25;
/// Default smallest limit of [`GradientController`], also the limit it
/// measures `min_rtt` at (Envoy: `min_concurrency` 3).
pub(crate) const DEFAULT_GRADIENT_MIN_LIMIT: usize = 3;
/// Default interval between `min_rtt` measurements of [`GradientController`].
pub(crate) const DEFAULT_GRADIENT_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// Default jitter of [`GradientController`]'s measurements (Envoy: 15 %).
pub(crate) const DEFAULT_GRADIENT_PROBE_JITTER: f64 = 0.15;

/// Builds a [`GradientController`]; see its defaults on each method.
#[derive(Debug, Clone)]
#[must_use]
pub struct GradientControllerBuilder {
    bounds: Bounds,
    buffer: f64,
    probe_interval: Duration,
    probe_jitter: f64,
    seed: Option<u64>,
}

impl Default for GradientControllerBuilder {
    fn default() -> Self {
        GradientControllerBuilder {
            bounds: Bounds::new(20, DEFAULT_GRADIENT_MIN_LIMIT, 1000),
            buffer: DEFAULT_GRADIENT_BUFFER,
            probe_interval: DEFAULT_GRADIENT_PROBE_INTERVAL,
            probe_jitter: DEFAULT_GRADIENT_PROBE_JITTER,
            seed: None,
        }
    }
}

impl GradientControllerBuilder {
    /// The limit after the first `min_rtt` measurement (default 20).
    pub fn initial_limit(mut self, limit: usize) -> Self {
        self.bounds.initial = limit;
        self
    }

    /// The smallest limit, also the one `min_rtt` is measured at (default 3).
    pub fn min_limit(mut self, limit: usize) -> Self {
        self.bounds.min = limit;
        self
    }

    /// The largest limit (default 1000).
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.bounds.max = limit;
        self
    }

    /// The share by which latency may exceed `min_rtt` at no cost to the
    /// limit, in `[0, 1]` (default 0.25).
    pub fn buffer(mut self, buffer: f64) -> Self {
        self.buffer = buffer;
        self
    }

    /// Time between `min_rtt` measurements (default 60 s).
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// A random delay of up to this share of the interval before each
    /// measurement, in `[0, 1]` (default 0.15).
    pub fn probe_jitter(mut self, jitter: f64) -> Self {
        self.probe_jitter = jitter;
        self
    }

    /// Seeds the jitter, for reproducible runs (default: random per process).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The algorithm.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field: a limit of 0, `min_limit` above
    /// `max_limit`, `initial_limit` outside them, `buffer` or `probe_jitter`
    /// outside `[0, 1]` or NaN, a zero `probe_interval`.
    pub fn build(self) -> Result<GradientController, ConfigError> {
        let bounds = self.bounds.check([
            "gradient.initial_limit",
            "gradient.min_limit",
            "gradient.max_limit",
        ])?;
        ConfigError::check_range("gradient.buffer", self.buffer, 0.0, 1.0)?;
        ConfigError::check_range("gradient.probe_jitter", self.probe_jitter, 0.0, 1.0)?;
        crate::check_interval("gradient.probe_interval", self.probe_interval)?;
        let seed = self.seed.unwrap_or_else(random_seed);
        Ok(GradientController {
            bounds,
            buffer: self.buffer,
            limit: bounds.initial as f64,
            min_rtt: None,
            probe: Probe::new(
                self.probe_interval,
                self.probe_jitter,
                bounds.min,
                true,
                seed,
            ),
            at_min: 0,
        })
    }
}

impl GradientController {
    /// A builder with Envoy's defaults.
    pub fn builder() -> GradientControllerBuilder {
        GradientControllerBuilder::default()
    }

    /// The measured ideal latency, once measured.
    #[must_use]
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }
}

impl Default for GradientController {
    fn default() -> Self {
        GradientController::builder()
            .build()
            .expect("the defaults are valid")
    }
}

impl LimitAlgorithm for GradientController {
    fn start_at(&mut self, limit: usize) -> bool {
        self.limit = self.bounds.clamp(limit as f64);
        true
    }

    fn update(&mut self, sample: &Sample) -> usize {
        if self.at_min >= AT_MIN_WINDOWS {
            self.at_min = 0;
            self.probe.start(self.limit);
        }
        match self.probe.step(sample, self.limit) {
            Step::Off => {}
            Step::Probing => return self.probe.probe_limit,
            Step::Done { rtt, restore } => {
                if rtt.is_some() {
                    self.min_rtt = rtt;
                }
                self.limit = restore;
                return whole(self.limit);
            }
        }
        let kept = kept_share(sample);
        let latency = match (self.min_rtt, sample.avg_rtt) {
            (Some(min_rtt), Some(rtt)) if !rtt.is_zero() => {
                let g = min_rtt.as_secs_f64() * (1.0 + self.buffer) / rtt.as_secs_f64();
                Some(g.clamp(0.5, 2.0))
            }
            _ => None,
        };
        let gradient = match latency {
            Some(g)
                if g >= 1.0
                    && !sample.did_drop()
                    && (sample.max_in_flight as f64) * 2.0 < self.limit =>
            {
                return whole(self.limit);
            }
            // Drops take away their share: the gradient is at most the
            // share kept (the headroom still grows a limit a trickle of
            // drops barely cuts).
            Some(g) if sample.did_drop() => g.min(kept),
            Some(g) => g,
            None if sample.did_drop() => kept,
            None => return whole(self.limit),
        };
        let scaled = self.limit * gradient;
        self.limit = self.bounds.clamp(scaled + scaled.sqrt());
        self.at_min = if whole(self.limit) <= self.bounds.min {
            self.at_min + 1
        } else {
            0
        };
        whole(self.limit)
    }

    fn limit(&self) -> usize {
        self.probe.holding().unwrap_or_else(|| whole(self.limit))
    }
}
