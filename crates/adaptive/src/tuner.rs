//! [`Tuner`]: a score-trend tuner of thresholds and
//! queue size.

mod config;
mod driver;
mod score;
mod target;

use std::collections::VecDeque;
use std::time::Duration;

use tower_pressure_core::{Event, EventBus, Thresholds};

pub use config::TunerBuilder;
pub use driver::{PerformanceSource, TunerHandle};
pub use score::{PerformanceSample, ScoreWeights};

use target::{QueueTarget, ThresholdTarget};

/// What the two compared windows say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trend {
    /// Fewer than two windows of snapshots so far: nothing to compare.
    Collecting,
    /// The sample had a NaN in a field the score reads; it was not kept.
    Rejected,
    /// The mean score moved by no more than the trend threshold.
    Stable,
    /// The mean score fell by more than the threshold.
    Deteriorating,
    /// The mean score rose by more than the threshold.
    Improving,
}

/// A value before and after a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change<T> {
    /// The value before.
    pub from: T,
    /// The value now.
    pub to: T,
}

/// What one [`Tuner::observe`] step saw and did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Decision {
    /// The trend of the score.
    pub trend: Trend,
    /// The sample's score in `[0, 1]`; `None` when it was rejected.
    pub score: Option<f64>,
    /// The recent window's mean score minus the previous window's; `None`
    /// while collecting.
    pub difference: Option<f64>,
    /// The factor applied (0.9 or 1.05 by default); `None` when the trend was
    /// stable or the tuner was cooling down.
    pub factor: Option<f64>,
    /// Whether a trend was ignored because the last change is too recent.
    pub cooling_down: bool,
    /// Whether a stable trend moved the values one step back towards those
    /// found when tuning began.
    pub decayed: bool,
    /// The memory thresholds, if they changed.
    pub memory: Option<Change<Thresholds>>,
    /// The CPU thresholds, if they changed.
    pub cpu: Option<Change<Thresholds>>,
    /// The queue bound, if it changed.
    pub queue: Option<Change<usize>>,
}

impl Decision {
    fn new(trend: Trend) -> Decision {
        Decision {
            trend,
            score: None,
            difference: None,
            factor: None,
            cooling_down: false,
            decayed: false,
            memory: None,
            cpu: None,
            queue: None,
        }
    }

    /// Whether anything was changed.
    #[must_use]
    pub fn changed(&self) -> bool {
        self.memory.is_some() || self.cpu.is_some() || self.queue.is_some()
    }
}

/// A score-trend tuner of thresholds and queue size.
///
/// Every interval (default 10 s) the tuner takes a [`PerformanceSample`]
/// from a [`PerformanceSource`], scores it (see [`ScoreWeights`] for the
/// formula), and compares the mean score of the last `window` snapshots
/// (default 5) with the mean of the `window` before. A fall by more than the
/// trend threshold (default 0.05) is a deteriorating trend: the memory and
/// CPU thresholds and the admission queue bound are multiplied by 0.9, so
/// that shedding starts earlier. A rise by more than the threshold is an
/// improving trend: they are multiplied by 1.05. Thresholds stay within
/// their bounds (memory 0.5–0.95, CPU 0.4–0.9) and monotonic; the queue
/// bound within its bounds.
///
/// Each target keeps the value found when tuning began and a cumulative
/// scale, and is written as `base × scale`, clamped: thresholds clamped
/// together at a bound get their shape back when the trend turns, and a
/// queue bound of 10 grows under ×1.05 (rounding each step would keep it at
/// 10). The scale stops where further steps would change nothing, so the
/// first step back after a long push against a bound is felt at once. When
/// the value in force is not the one the tuner wrote, an operator changed
/// it: it becomes the new base.
///
/// The tuner follows trends; it has no model of cause. A tightening that
/// helps produces an improving trend, which relaxes again a little: the
/// asymmetric factors (0.9 against 1.05) make that net move a tightening.
/// So a **stable** trend (outside the cooldown) moves every value one step
/// back towards the one found when tuning began (×1.05 up, ×0.9 down, never
/// past it): a tightening lasts while the score keeps asking for it, not
/// for good — without this an oscillating score ratchets every threshold to
/// its floor, and a service at 55 % memory admits only `Critical` work. And
/// the memory (or CPU) `Critical` threshold is never tuned below the one
/// found when tuning began.
/// After each change it waits `cooldown` snapshots (default 5) so that the
/// next decision is taken on snapshots measured under the new settings
/// (acting on every snapshot while a trend lasts, cooldown 0, tightens up
/// to nine times in a row for one step in the score).
///
/// [`Tuner::observe`] is the whole decision, synchronous and free of time, so
/// it can be tested sample by sample; [`Tuner::spawn`] runs it on a timer.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_adaptive::{PerformanceSample, Trend, Tuner};
/// use tower_pressure_core::{PressureLevel, Signal, SignalConfig};
///
/// let memory = Signal::new(SignalConfig::builder("memory").build()?);
/// let mut tuner = Tuner::builder().memory(memory.clone()).build()?;
/// let sample = |ms| PerformanceSample {
///     latency: Duration::from_millis(ms),
///     throughput: 100.0,
///     error_rate: 0.0,
///     memory: 0.5,
///     cpu: 0.5,
/// };
/// for _ in 0..5 {
///     assert_eq!(tuner.observe(sample(20)).trend, Trend::Collecting);
/// }
/// // Latency rises five-fold: the score falls, the thresholds tighten.
/// for _ in 0..4 {
///     tuner.observe(sample(100));
/// }
/// let decision = tuner.observe(sample(100));
/// assert_eq!(decision.trend, Trend::Deteriorating);
/// let change = decision.memory.unwrap();
/// let high = |t: tower_pressure_core::Thresholds| t.threshold(PressureLevel::High);
/// assert!((high(change.to) - 0.9 * high(change.from)).abs() < 1e-9);
/// assert_eq!(memory.thresholds(), change.to);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Tuner {
    interval: Duration,
    window: usize,
    trend_threshold: f64,
    tighten: f64,
    relax: f64,
    cooldown: usize,
    latency_target: Duration,
    weights: ScoreWeights,
    thresholds: [Option<ThresholdTarget>; 2],
    queue: Option<QueueTarget>,
    events: Option<EventBus>,
    history: VecDeque<PerformanceSample>,
    /// Snapshots still to wait before the next change.
    hold: usize,
}

impl Tuner {
    /// A builder with the defaults and nothing to tune yet.
    pub fn builder() -> TunerBuilder {
        TunerBuilder::default()
    }

    fn from_builder(
        b: &TunerBuilder,
        thresholds: [Option<ThresholdTarget>; 2],
        queue: Option<QueueTarget>,
        events: Option<EventBus>,
    ) -> Tuner {
        Tuner {
            interval: b.interval,
            window: b.window,
            trend_threshold: b.trend_threshold,
            tighten: b.tighten,
            relax: b.relax,
            cooldown: b.cooldown,
            latency_target: b.latency_target,
            weights: b.weights,
            thresholds,
            queue,
            events,
            history: VecDeque::with_capacity(2 * b.window),
            hold: 0,
        }
    }

    /// The interval at which [`spawn`](Tuner::spawn) pulls samples.
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The snapshots kept, oldest first: at most two windows.
    pub fn history(&self) -> impl ExactSizeIterator<Item = &PerformanceSample> {
        self.history.iter()
    }

    /// Records one snapshot, and tightens or relaxes when the trend says so.
    ///
    /// Changes are written through the handles at once: the signals'
    /// thresholds with `Signal::set_thresholds`, the queue bound with
    /// `LimitHandle::set_max_queue`.
    pub fn observe(&mut self, sample: PerformanceSample) -> Decision {
        if !self.weights.accepts(&sample) {
            return Decision::new(Trend::Rejected);
        }
        if self.history.len() == 2 * self.window {
            self.history.pop_front();
        }
        self.history.push_back(sample);
        self.hold = self.hold.saturating_sub(1);

        // Throughput is scored against the peak of the compared windows, so
        // both windows are measured with the same yardstick.
        let peak = self
            .history
            .iter()
            .map(|s| s.throughput)
            .filter(|t| t.is_finite())
            .fold(0.0, f64::max);
        let score = |s: &PerformanceSample| self.weights.score(s, self.latency_target, peak);
        let mut decision = Decision::new(Trend::Collecting);
        decision.score = Some(score(&sample));
        if self.history.len() < 2 * self.window {
            return decision;
        }
        let mean = |skip: usize| {
            self.history
                .iter()
                .skip(skip)
                .take(self.window)
                .map(score)
                .sum::<f64>()
                / self.window as f64
        };
        let difference = mean(self.window) - mean(0);
        decision.difference = Some(difference);
        let factor = if difference < -self.trend_threshold {
            decision.trend = Trend::Deteriorating;
            self.tighten
        } else if difference > self.trend_threshold {
            decision.trend = Trend::Improving;
            self.relax
        } else {
            decision.trend = Trend::Stable;
            // A stable score decays every scale one step back towards where
            // tuning began: otherwise an oscillating score (each tighten
            // ×0.9 undone only by ×1.05) and a trend that stays flat once
            // tightened ratchet every threshold down to its floor.
            if self.hold == 0 {
                self.decay(&mut decision);
                if decision.changed() {
                    decision.decayed = true;
                    self.hold = self.cooldown;
                }
            }
            return decision;
        };
        if self.hold > 0 {
            decision.cooling_down = true;
            return decision;
        }
        decision.factor = Some(factor);
        self.apply(factor, &mut decision);
        if decision.changed() {
            self.hold = self.cooldown;
        }
        decision
    }

    fn decay(&mut self, decision: &mut Decision) {
        let (tighten, relax) = (self.tighten, self.relax);
        let [memory, cpu] = &mut self.thresholds;
        decision.memory = memory.as_mut().and_then(|t| t.decay(tighten, relax));
        decision.cpu = cpu.as_mut().and_then(|t| t.decay(tighten, relax));
        decision.queue = self.queue.as_mut().and_then(|q| q.decay(tighten, relax));
        if let (Some(Change { from, to }), Some(bus)) = (decision.queue, &self.events) {
            bus.emit(Event::MaxQueueChanged { from, to });
        }
    }

    fn apply(&mut self, factor: f64, decision: &mut Decision) {
        let [memory, cpu] = &mut self.thresholds;
        decision.memory = memory.as_mut().and_then(|t| t.apply(factor));
        decision.cpu = cpu.as_mut().and_then(|t| t.apply(factor));
        decision.queue = self.queue.as_mut().and_then(|q| q.apply(factor));
        if let (Some(Change { from, to }), Some(bus)) = (decision.queue, &self.events) {
            bus.emit(Event::MaxQueueChanged { from, to });
        }
    }
}
