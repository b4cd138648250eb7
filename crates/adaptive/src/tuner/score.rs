//! [`PerformanceSample`], [`ScoreWeights`] and the performance score.

use std::time::Duration;

/// One interval's measurements, as the tuner's [`PerformanceSource`] reports
/// them.
///
/// Units: `latency` is a duration (the interval's p99 is the better choice,
/// its mean will do); `throughput` is completed requests per second;
/// `error_rate`, `memory` and `cpu` are fractions in `[0, 1]` (memory and CPU
/// as utilisation, e.g. [`Signal::utilization`]). Values outside `[0, 1]`
/// are clamped, a negative throughput counts as 0; a NaN in a field whose
/// weight is not zero makes the whole sample rejected (see
/// [`Trend::Rejected`]).
///
/// [`PerformanceSource`]: crate::PerformanceSource
/// [`Signal::utilization`]: tower_pressure_core::Signal::utilization
/// [`Trend::Rejected`]: crate::Trend::Rejected
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerformanceSample {
    /// The interval's request latency, p99 or mean.
    pub latency: Duration,
    /// Completed requests per second.
    pub throughput: f64,
    /// The share of requests that failed, in `[0, 1]`.
    pub error_rate: f64,
    /// Memory utilisation, in `[0, 1]`.
    pub memory: f64,
    /// CPU utilisation, in `[0, 1]`.
    pub cpu: f64,
}

/// The default weight of the latency term, 0.35.
pub(crate) const DEFAULT_LATENCY_WEIGHT: f64 = 0.35;
/// The default weight of the throughput term, 0.10.
pub(crate) const DEFAULT_THROUGHPUT_WEIGHT: f64 = 0.10;
/// The default weight of the error term, 0.35.
pub(crate) const DEFAULT_ERROR_WEIGHT: f64 = 0.35;
/// The default weight of the memory term, 0.10.
pub(crate) const DEFAULT_MEMORY_WEIGHT: f64 = 0.10;
/// The default weight of the CPU term, 0.10.
pub(crate) const DEFAULT_CPU_WEIGHT: f64 = 0.10;

/// How much each term counts in the performance score.
///
/// The score of a sample is the weighted mean of five terms, each in
/// `[0, 1]`, 1 being best:
///
/// | term | formula |
/// | --- | --- |
/// | latency | `T / (T + latency)`, `T` the latency target (1 at 0 s, ½ at the target) |
/// | throughput | `throughput / peak`, `peak` the highest throughput in the compared window (1 when `peak` is 0) |
/// | errors | `1 − error_rate` |
/// | memory | `1 − memory` |
/// | cpu | `1 − cpu` |
///
/// `score = Σ wᵢ·termᵢ / Σ wᵢ`, so the score is in `[0, 1]` whatever the
/// weights' sum. A weight of 0 leaves its field unread (it may then be NaN).
///
/// Throughput has a small default weight: it falls when demand falls, which
/// is no deterioration; halving it alone moves the score by exactly the
/// default trend threshold, and that is not enough to act.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWeights {
    /// Weight of the latency term. Default 0.35.
    pub latency: f64,
    /// Weight of the throughput term. Default 0.10.
    pub throughput: f64,
    /// Weight of the error term. Default 0.35.
    pub errors: f64,
    /// Weight of the memory term. Default 0.10.
    pub memory: f64,
    /// Weight of the CPU term. Default 0.10.
    pub cpu: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights {
            latency: DEFAULT_LATENCY_WEIGHT,
            throughput: DEFAULT_THROUGHPUT_WEIGHT,
            errors: DEFAULT_ERROR_WEIGHT,
            memory: DEFAULT_MEMORY_WEIGHT,
            cpu: DEFAULT_CPU_WEIGHT,
        }
    }
}

impl ScoreWeights {
    pub(crate) fn named(&self) -> [(&'static str, f64); 5] {
        [
            ("tuner.weights.latency", self.latency),
            ("tuner.weights.throughput", self.throughput),
            ("tuner.weights.errors", self.errors),
            ("tuner.weights.memory", self.memory),
            ("tuner.weights.cpu", self.cpu),
        ]
    }

    fn sum(&self) -> f64 {
        self.latency + self.throughput + self.errors + self.memory + self.cpu
    }

    /// Whether every field the score reads is a number.
    pub(crate) fn accepts(&self, s: &PerformanceSample) -> bool {
        let used = |w: f64, v: f64| w == 0.0 || !v.is_nan();
        used(self.throughput, s.throughput)
            && used(self.errors, s.error_rate)
            && used(self.memory, s.memory)
            && used(self.cpu, s.cpu)
    }

    /// The score of `s` in `[0, 1]`, given the latency target and the peak
    /// throughput of the window it is compared in. `s` must be accepted.
    pub(crate) fn score(&self, s: &PerformanceSample, target: Duration, peak: f64) -> f64 {
        let t = target.as_secs_f64();
        let latency = t / (t + s.latency.as_secs_f64());
        let throughput = if peak > 0.0 {
            (s.throughput.max(0.0) / peak).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let good = |fraction: f64| 1.0 - fraction.clamp(0.0, 1.0);
        let terms = [
            (self.latency, latency),
            (self.throughput, throughput),
            (self.errors, good(s.error_rate)),
            (self.memory, good(s.memory)),
            (self.cpu, good(s.cpu)),
        ];
        let weighted: f64 = terms
            .iter()
            .filter(|(w, _)| *w > 0.0)
            .map(|(w, v)| w * v)
            .sum();
        (weighted / self.sum()).clamp(0.0, 1.0)
    }
}
