//! [`TunerBuilder`]: the tuner's validated configuration.

use std::time::Duration;

use tower_pressure_core::{ConfigError, EventBus, LimitHandle, Signal};

use super::target::{QueueTarget, ThresholdTarget};
use super::{ScoreWeights, Tuner};

/// The default tuning interval, 10 s.
pub(crate) const DEFAULT_TUNE_INTERVAL: Duration = Duration::from_secs(10);
/// The default window, 5 snapshots: the mean of the last 5 is compared with
/// the mean of the 5 before.
pub(crate) const DEFAULT_WINDOW: usize = 5;
/// The default trend threshold, 0.05: the score (in `[0, 1]`) must move by
/// more than this between the two windows to count as a trend.
pub(crate) const DEFAULT_TREND_THRESHOLD: f64 = 0.05;
/// The default factor on a deteriorating trend, 0.9.
pub(crate) const DEFAULT_TIGHTEN_FACTOR: f64 = 0.9;
/// The default factor on an improving trend, 1.05.
pub(crate) const DEFAULT_RELAX_FACTOR: f64 = 1.05;
/// The default cooldown, 5 snapshots: after a change the tuner waits until
/// the recent window holds only snapshots taken under the new settings.
pub(crate) const DEFAULT_COOLDOWN: usize = 5;
/// The default latency target, 100 ms: the latency at which the latency term
/// of the score is ½.
pub(crate) const DEFAULT_LATENCY_TARGET: Duration = Duration::from_millis(100);
/// The default bounds of the memory thresholds, 0.5..=0.95.
pub(crate) const DEFAULT_MEMORY_BOUNDS: (f64, f64) = (0.5, 0.95);
/// The default bounds of the CPU thresholds, 0.4..=0.9.
pub(crate) const DEFAULT_CPU_BOUNDS: (f64, f64) = (0.4, 0.9);
/// The default bounds of the queue size, 1..=10 000.
pub(crate) const DEFAULT_QUEUE_BOUNDS: (usize, usize) = (1, 10_000);

/// Builds a [`Tuner`]; every value is checked by [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct TunerBuilder {
    pub(super) interval: Duration,
    pub(super) window: usize,
    pub(super) trend_threshold: f64,
    pub(super) tighten: f64,
    pub(super) relax: f64,
    pub(super) cooldown: usize,
    pub(super) latency_target: Duration,
    pub(super) weights: ScoreWeights,
    memory: Option<Signal>,
    memory_bounds: (f64, f64),
    cpu: Option<Signal>,
    cpu_bounds: (f64, f64),
    queue: Option<LimitHandle>,
    queue_bounds: (usize, usize),
    events: Option<EventBus>,
}

impl Default for TunerBuilder {
    fn default() -> Self {
        TunerBuilder {
            interval: DEFAULT_TUNE_INTERVAL,
            window: DEFAULT_WINDOW,
            trend_threshold: DEFAULT_TREND_THRESHOLD,
            tighten: DEFAULT_TIGHTEN_FACTOR,
            relax: DEFAULT_RELAX_FACTOR,
            cooldown: DEFAULT_COOLDOWN,
            latency_target: DEFAULT_LATENCY_TARGET,
            weights: ScoreWeights::default(),
            memory: None,
            memory_bounds: DEFAULT_MEMORY_BOUNDS,
            cpu: None,
            cpu_bounds: DEFAULT_CPU_BOUNDS,
            queue: None,
            queue_bounds: DEFAULT_QUEUE_BOUNDS,
            events: None,
        }
    }
}

impl TunerBuilder {
    /// How often the driver pulls a sample. Default 10 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How many snapshots each compared window holds; the tuner acts once it
    /// has twice as many. Default 5.
    pub fn window(mut self, snapshots: usize) -> Self {
        self.window = snapshots;
        self
    }

    /// By how much the mean score must move to count as a trend (the score
    /// is in `[0, 1]`). Default 0.05.
    pub fn trend_threshold(mut self, threshold: f64) -> Self {
        self.trend_threshold = threshold;
        self
    }

    /// The factor applied on a deteriorating trend, in `(0, 1]`.
    /// Default 0.9.
    pub fn tighten_factor(mut self, factor: f64) -> Self {
        self.tighten = factor;
        self
    }

    /// The factor applied on an improving trend, at least 1.
    /// Default 1.05.
    pub fn relax_factor(mut self, factor: f64) -> Self {
        self.relax = factor;
        self
    }

    /// How many snapshots to wait after a change before the next one. `0`
    /// acts on every snapshot while the trend lasts. Default 5.
    pub fn cooldown(mut self, snapshots: usize) -> Self {
        self.cooldown = snapshots;
        self
    }

    /// The latency at which the latency term of the score is ½; set it to
    /// your latency objective. Default 100 ms.
    pub fn latency_target(mut self, target: Duration) -> Self {
        self.latency_target = target;
        self
    }

    /// The weights of the score's terms. Default [`ScoreWeights::default`].
    pub fn weights(mut self, weights: ScoreWeights) -> Self {
        self.weights = weights;
        self
    }

    /// Tunes the thresholds of this memory signal.
    pub fn memory(mut self, signal: Signal) -> Self {
        self.memory = Some(signal);
        self
    }

    /// The range every memory threshold is kept in. Default (0.5, 0.95).
    ///
    /// The bounds hold for each of the four thresholds, as
    /// [`Thresholds::scaled`] clamps them: after enough tightening all four
    /// meet at `min`, and a reading at `min` is then `Critical` (which a
    /// [`Recovery`](crate::Recovery) watching the signal treats as an
    /// emergency). Raise `min` if that is more than you want.
    ///
    /// [`Thresholds::scaled`]: tower_pressure_core::Thresholds::scaled
    pub fn memory_bounds(mut self, min: f64, max: f64) -> Self {
        self.memory_bounds = (min, max);
        self
    }

    /// Tunes the thresholds of this CPU signal.
    pub fn cpu(mut self, signal: Signal) -> Self {
        self.cpu = Some(signal);
        self
    }

    /// The range every CPU threshold is kept in, as for
    /// [`memory_bounds`](Self::memory_bounds). Default (0.4, 0.9).
    pub fn cpu_bounds(mut self, min: f64, max: f64) -> Self {
        self.cpu_bounds = (min, max);
        self
    }

    /// Tunes the wait-queue bound of the limiter behind this handle.
    pub fn queue(mut self, limit: LimitHandle) -> Self {
        self.queue = Some(limit);
        self
    }

    /// The range the queue bound is kept in. Default (1, 10000).
    pub fn queue_bounds(mut self, min: usize, max: usize) -> Self {
        self.queue_bounds = (min, max);
        self
    }

    /// Publishes [`Event::MaxQueueChanged`] here for every queue change.
    ///
    /// Threshold changes are announced by the [`Signal`] itself
    /// ([`Event::ThresholdsTuned`] with before and after), on the bus given
    /// to its `SignalConfig`, whoever changes them; the tuner does not
    /// announce them a second time.
    ///
    /// [`Event::MaxQueueChanged`]: tower_pressure_core::Event::MaxQueueChanged
    /// [`Event::ThresholdsTuned`]: tower_pressure_core::Event::ThresholdsTuned
    pub fn events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when the interval, the window or
    /// the latency target is zero; a factor is NaN, not positive, or on the
    /// wrong side of 1; the trend threshold is NaN or negative; a weight is
    /// NaN or negative, or all are zero; a pair of bounds is inverted, or a
    /// threshold bound lies outside `[0, 1]`.
    pub fn build(self) -> Result<Tuner, ConfigError> {
        crate::check_interval("tuner.interval", self.interval)?;
        if self.window == 0 {
            return Err(ConfigError::new(
                "tuner.window",
                0,
                "must hold at least one snapshot",
            ));
        }
        if self.latency_target.is_zero() {
            return Err(zero("tuner.latency_target"));
        }
        let t = self.trend_threshold;
        if !(t.is_finite() && t >= 0.0) {
            return Err(ConfigError::new(
                "tuner.trend_threshold",
                t,
                "must be a number >= 0",
            ));
        }
        let f = self.tighten;
        if !(f.is_finite() && f > 0.0 && f <= 1.0) {
            return Err(ConfigError::new(
                "tuner.tighten_factor",
                f,
                "must be a number in (0, 1]",
            ));
        }
        let f = self.relax;
        if !(f.is_finite() && f >= 1.0) {
            return Err(ConfigError::new(
                "tuner.relax_factor",
                f,
                "must be a finite number >= 1",
            ));
        }
        let mut sum = 0.0;
        for (field, w) in self.weights.named() {
            if !(w.is_finite() && w >= 0.0) {
                return Err(ConfigError::new(field, w, "must be a number >= 0"));
            }
            sum += w;
        }
        if sum <= 0.0 {
            return Err(ConfigError::new(
                "tuner.weights",
                0,
                "at least one weight must be above 0",
            ));
        }
        let memory_bounds = fraction_bounds("tuner.memory_bounds", self.memory_bounds)?;
        let cpu_bounds = fraction_bounds("tuner.cpu_bounds", self.cpu_bounds)?;
        let (qmin, qmax) = self.queue_bounds;
        if qmin > qmax || qmax == 0 {
            return Err(ConfigError::new(
                "tuner.queue_bounds",
                format!("{qmin}..={qmax}"),
                "min must be <= max, and max above 0",
            ));
        }
        Ok(Tuner::from_builder(
            &self,
            [
                self.memory
                    .clone()
                    .map(|s| ThresholdTarget::new(s, memory_bounds)),
                self.cpu
                    .clone()
                    .map(|s| ThresholdTarget::new(s, cpu_bounds)),
            ],
            self.queue
                .clone()
                .map(|h| QueueTarget::new(h, (qmin, qmax))),
            self.events.clone(),
        ))
    }
}

fn zero(field: &'static str) -> ConfigError {
    ConfigError::new(field, "0s", "must be greater than zero")
}

fn fraction_bounds(field: &'static str, (min, max): (f64, f64)) -> Result<(f64, f64), ConfigError> {
    let ok = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
    if ok(min) && ok(max) && min <= max {
        Ok((min, max))
    } else {
        Err(ConfigError::new(
            field,
            format!("{min}..={max}"),
            "must be numbers in [0, 1] with min <= max",
        ))
    }
}
