//! [`Vegas`]: TCP Vegas's queue estimate applied to a concurrency limit.

use std::time::Duration;

use tower_pressure_core::ConfigError;

use super::probe::{AT_MIN_WINDOWS, Probe, Step, random_seed};
use super::{Bounds, LimitAlgorithm, check_open_closed, kept_share, whole};
use crate::Sample;

/// TCP Vegas (Brakmo & Peterson, 1994) as Netflix concurrency-limits'
/// `VegasLimit.java` applies it to a concurrency limit.
///
/// # Model
///
/// With `rtt_noload` the latency of a request that did not queue and `rtt`
/// the window's mean latency, the requests queued in the service are
/// estimated as
///
/// ```text
/// queue = ⌈limit × (1 − rtt_noload / rtt)⌉
/// ```
///
/// and kept between `alpha = 3 × lg` and `beta = 6 × lg` requests, where
/// `lg = max(1, ⌊log10 limit⌋)`. Per window:
///
/// - drops: the limit loses their share, `limit × drop rate` (at most half
///   of it), on top of the rules below (even when latency is flat: Netflix
///   issue 137; Netflix takes `lg` off on any drop, so a steady trickle of
///   failures pins the limit);
/// - `queue ≤ lg` (no queueing): `limit + beta` (a quick climb);
/// - `queue < alpha`: `limit + lg`;
/// - `queue > beta`: `limit − lg`;
/// - otherwise unchanged; also unchanged when the window used less than half
///   the limit (the application, not the limit, bounds concurrency).
///
/// then `limit = (1 − smoothing) × limit + smoothing × new` (default
/// smoothing 1.0), clamped to `[min_limit, max_limit]`. Limits are requests
/// in flight; latencies only matter as a ratio. At a service of capacity `C`
/// it settles at `C + alpha ..= C + beta` in flight.
///
/// # The no-load latency
///
/// `rtt_noload` is the smallest window latency seen, and it is
/// **re-probed** every `probe_interval` (plus up to `probe_jitter` of it, at
/// random): the limit is pinned to `probe_limit` (3, Envoy's minimum
/// concurrency; 1 in Netflix's code is a third of the service for three
/// times as long) until a window whose every request started with at most
/// that many in flight, whose latency becomes the new `rtt_noload`; then
/// the limit from before is restored. Also when the limit has sat at
/// `min_limit` for 5 windows in a row.
///
/// Netflix re-probes by taking the *current* window's latency as the new
/// no-load latency; under load that is a loaded latency, so `rtt_noload`
/// drifts up and the limit with it (Netflix issue 165). Measuring at low
/// concurrency cannot drift up, and because it replaces the old value it
/// also forgets a stale minimum (a baseline that really moved up). The cost
/// is a short dip in concurrency once per interval.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_adaptive::{LimitAlgorithm, Sample, Vegas};
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let mut vegas = Vegas::builder().initial_limit(20).build()?;
/// let now = tokio::time::Instant::now();
/// // The first window sets the no-load latency.
/// vegas.update(&Sample::new(now, Duration::from_millis(10), 100, 20));
/// // No queueing: + beta (6).
/// assert_eq!(vegas.update(&Sample::new(now, Duration::from_millis(10), 100, 20)), 26);
/// // 26 in flight at twice the latency: 13 queued > beta, − 1.
/// assert_eq!(vegas.update(&Sample::new(now, Duration::from_millis(20), 100, 26)), 25);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Vegas {
    bounds: Bounds,
    smoothing: f64,
    limit: f64,
    rtt_noload: Option<Duration>,
    probe: Probe,
    at_min: u32,
}

/// Default interval between no-load latency probes of [`Vegas`].
pub(crate) const DEFAULT_VEGAS_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// Default jitter of [`Vegas`]'s probes, as a share of the interval.
pub(crate) const DEFAULT_VEGAS_PROBE_JITTER: f64 = 0.5;
/// Default concurrency a [`Vegas`] probe pins, 3 (Envoy's
/// `min_concurrency`): a window of it measures the no-load latency of any
/// service of 3 workers or more in a third of the time a limit of 1 takes,
/// and serves three times as much meanwhile.
pub(crate) const DEFAULT_VEGAS_PROBE_LIMIT: usize = 3;

/// Builds a [`Vegas`]; see its defaults on each method.
#[derive(Debug, Clone)]
#[must_use]
pub struct VegasBuilder {
    bounds: Bounds,
    smoothing: f64,
    probe_interval: Duration,
    probe_jitter: f64,
    probe_limit: usize,
    seed: Option<u64>,
}

impl Default for VegasBuilder {
    fn default() -> Self {
        VegasBuilder {
            bounds: Bounds::new(20, 1, 1000),
            smoothing: 1.0,
            probe_interval: DEFAULT_VEGAS_PROBE_INTERVAL,
            probe_jitter: DEFAULT_VEGAS_PROBE_JITTER,
            probe_limit: DEFAULT_VEGAS_PROBE_LIMIT,
            seed: None,
        }
    }
}

impl VegasBuilder {
    /// The limit before the first window (default 20, as Netflix).
    pub fn initial_limit(mut self, limit: usize) -> Self {
        self.bounds.initial = limit;
        self
    }

    /// The smallest limit (default 1).
    pub fn min_limit(mut self, limit: usize) -> Self {
        self.bounds.min = limit;
        self
    }

    /// The largest limit (default 1000, as Netflix).
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.bounds.max = limit;
        self
    }

    /// How much of each new estimate the limit takes, in `(0, 1]`
    /// (default 1.0, as Netflix).
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = smoothing;
        self
    }

    /// Time between no-load latency probes (default 60 s). Netflix counts
    /// `30 × limit` windows instead; time does not depend on the window
    /// length.
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// A random delay of up to this share of the interval before each probe,
    /// in `[0, 1]` (default 0.5, as Netflix's 0.5–1 jitter).
    pub fn probe_jitter(mut self, jitter: f64) -> Self {
        self.probe_jitter = jitter;
        self
    }

    /// The limit a no-load probe pins, at least 1 and at most `max_limit`
    /// (default 3; never below `min_limit`).
    /// It must not be above the service's real concurrency, or the probe
    /// measures a queue: set 1 for a service of one or two workers.
    pub fn probe_limit(mut self, limit: usize) -> Self {
        self.probe_limit = limit;
        self
    }

    /// Seeds the probe jitter, for reproducible runs (default: random per
    /// process).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The algorithm.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field: a limit of 0, `min_limit` above
    /// `max_limit`, `initial_limit` outside them, `smoothing` outside
    /// `(0, 1]`, `probe_jitter` outside `[0, 1]` or NaN, a zero
    /// `probe_interval`, a `probe_limit` of 0 or above `max_limit`.
    pub fn build(self) -> Result<Vegas, ConfigError> {
        let bounds =
            self.bounds
                .check(["vegas.initial_limit", "vegas.min_limit", "vegas.max_limit"])?;
        check_open_closed("vegas.smoothing", self.smoothing, 1.0)?;
        ConfigError::check_range("vegas.probe_jitter", self.probe_jitter, 0.0, 1.0)?;
        crate::check_interval("vegas.probe_interval", self.probe_interval)?;
        if self.probe_limit == 0 || self.probe_limit > bounds.max {
            return Err(ConfigError::new(
                "vegas.probe_limit",
                self.probe_limit,
                format!("must be in 1..={} (max_limit)", bounds.max),
            ));
        }
        let seed = self.seed.unwrap_or_else(random_seed);
        Ok(Vegas {
            bounds,
            smoothing: self.smoothing,
            limit: bounds.initial as f64,
            rtt_noload: None,
            probe: Probe::new(
                self.probe_interval,
                self.probe_jitter,
                self.probe_limit.max(bounds.min),
                false,
                seed,
            ),
            at_min: 0,
        })
    }
}

impl Vegas {
    /// A builder with the defaults.
    pub fn builder() -> VegasBuilder {
        VegasBuilder::default()
    }

    /// The no-load latency in use, once measured.
    #[must_use]
    pub fn rtt_noload(&self) -> Option<Duration> {
        self.rtt_noload
    }

    /// Takes `cut` (the drops' share) off the limit, if there is any.
    fn drop_cut(&mut self, cut: f64) -> usize {
        if cut > 0.0 {
            self.set(self.limit - cut)
        } else {
            whole(self.limit)
        }
    }

    fn set(&mut self, new: f64) -> usize {
        let new = self.bounds.clamp(new);
        self.limit = self
            .bounds
            .clamp((1.0 - self.smoothing) * self.limit + self.smoothing * new);
        self.at_min = if whole(self.limit) <= self.bounds.min {
            self.at_min + 1
        } else {
            0
        };
        whole(self.limit)
    }
}

impl Default for Vegas {
    fn default() -> Self {
        Vegas::builder().build().expect("the defaults are valid")
    }
}

/// `max(1, ⌊log10 limit⌋)`, as Netflix's `Log10RootFunction`.
fn lg(limit: f64) -> f64 {
    limit.log10().floor().max(1.0)
}

impl LimitAlgorithm for Vegas {
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
                if let Some(rtt) = rtt {
                    self.rtt_noload = Some(rtt);
                }
                self.limit = restore;
                return whole(self.limit);
            }
        }
        let step = lg(self.limit);
        // Drops take away their share of the limit (at most half of it).
        let cut = self.limit * (1.0 - kept_share(sample));
        let Some(rtt) = sample.avg_rtt.filter(|rtt| !rtt.is_zero()) else {
            return self.drop_cut(cut);
        };
        let noload = match self.rtt_noload {
            Some(noload) if rtt >= noload => noload,
            _ => {
                self.rtt_noload = Some(rtt);
                return self.drop_cut(cut);
            }
        };
        if (sample.max_in_flight as f64) * 2.0 < self.limit {
            return self.drop_cut(cut);
        }
        let queue = (self.limit * (1.0 - noload.as_secs_f64() / rtt.as_secs_f64())).ceil();
        let (alpha, beta) = (3.0 * step, 6.0 * step);
        let new = if queue <= step {
            self.limit + beta
        } else if queue < alpha {
            self.limit + step
        } else if queue > beta {
            self.limit - step
        } else {
            self.limit
        };
        if new == self.limit && cut == 0.0 {
            return whole(self.limit);
        }
        self.set(new - cut)
    }

    fn limit(&self) -> usize {
        self.probe.holding().unwrap_or_else(|| whole(self.limit))
    }
}
