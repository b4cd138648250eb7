//! What the tuner scales: a signal's thresholds, a limiter's queue bound.
//!
//! Both keep a *base* (the value found when tuning began) and a cumulative
//! *scale*, and write `base × scale` clamped into the bounds. Scaling the
//! last written value instead would lose information at the bounds: four
//! thresholds clamped together to the lower bound could never be told apart
//! again, and a queue of 10 × 1.05, rounded down, would never grow. The
//! scale itself is kept within the range where it still changes something,
//! so that after a long tightening the first relaxing step is felt at once.
//!
//! When the value in force is not the one the tuner last wrote, an operator
//! (or another tuner) changed it: it becomes the new base, at scale 1.

use tower_pressure_core::{LimitHandle, Signal, Thresholds};

use super::Change;

/// One step of `scale` towards 1, never past it.
fn toward_one(scale: f64, tighten: f64, relax: f64) -> f64 {
    if scale < 1.0 {
        (scale * relax).min(1.0)
    } else {
        (scale * tighten).max(1.0)
    }
}

/// `scaled` with its `Critical` threshold never below `base`'s: tuning
/// may shed the lower classes earlier, never refuse `Critical` work at a
/// reading its owner chose to serve it at.
fn keep_critical(base: Thresholds, scaled: Thresholds) -> Thresholds {
    use tower_pressure_core::PressureLevel::{Critical, High, Low, Medium};
    let floor = base.threshold(Critical);
    if scaled.threshold(Critical) >= floor {
        return scaled;
    }
    Thresholds::builder()
        .low(scaled.threshold(Low))
        .medium(scaled.threshold(Medium))
        .high(scaled.threshold(High))
        .critical(floor)
        .hysteresis(scaled.hysteresis())
        .build()
        .unwrap_or(scaled)
}

#[derive(Debug)]
pub(super) struct ThresholdTarget {
    signal: Signal,
    bounds: (f64, f64),
    base: Thresholds,
    scale: f64,
    written: Option<Thresholds>,
}

impl ThresholdTarget {
    pub(super) fn new(signal: Signal, bounds: (f64, f64)) -> Self {
        let base = signal.thresholds();
        ThresholdTarget {
            signal,
            bounds,
            base,
            scale: 1.0,
            written: None,
        }
    }

    /// Multiplies the scale by `factor` and writes the result; the change if
    /// the thresholds moved.
    pub(super) fn apply(&mut self, factor: f64) -> Option<Change<Thresholds>> {
        self.rescale(|scale| scale * factor)
    }

    /// Moves the scale one step towards 1 (the thresholds found when tuning
    /// began): `relax` up from below, `tighten` down from above, never past
    /// 1. The change if the thresholds moved.
    pub(super) fn decay(&mut self, tighten: f64, relax: f64) -> Option<Change<Thresholds>> {
        self.rescale(|scale| toward_one(scale, tighten, relax))
    }

    fn rescale(&mut self, next: impl FnOnce(f64) -> f64) -> Option<Change<Thresholds>> {
        let now = self.signal.thresholds();
        if self.written != Some(now) {
            self.base = now;
            self.scale = 1.0;
        }
        let (min, max) = self.bounds;
        let levels = [1, 2, 3, 4].map(|i| {
            self.base
                .threshold(tower_pressure_core::PressureLevel::from_index(i))
        });
        let highest = levels.iter().copied().fold(0.0, f64::max);
        let lowest = levels
            .iter()
            .copied()
            .filter(|&t| t > 0.0)
            .fold(f64::INFINITY, f64::min);
        if highest <= 0.0 {
            // All thresholds are zero: no scale moves them.
            return None;
        }
        // Below `lo` every threshold is clamped to `min` (Critical aside: it
        // never goes below its base), above `hi` to `max`.
        let shed = levels[..3].iter().copied().fold(0.0, f64::max);
        let lo = (min / if shed > 0.0 { shed } else { highest }).min(1.0);
        let hi = (max / lowest).max(1.0);
        self.scale = next(self.scale).clamp(lo, hi);
        let to = keep_critical(self.base, self.base.scaled(self.scale, min, max));
        self.written = Some(to);
        if to == now {
            return None;
        }
        self.signal.set_thresholds(to);
        Some(Change { from: now, to })
    }
}

#[derive(Debug)]
pub(super) struct QueueTarget {
    handle: LimitHandle,
    bounds: (usize, usize),
    base: usize,
    scale: f64,
    written: Option<usize>,
}

impl QueueTarget {
    pub(super) fn new(handle: LimitHandle, bounds: (usize, usize)) -> Self {
        let base = handle.max_queue();
        QueueTarget {
            handle,
            bounds,
            base,
            scale: 1.0,
            written: None,
        }
    }

    /// Multiplies the scale by `factor` and writes the rounded result; the
    /// change if the bound moved. A queue bound of 0 (no queue) is left
    /// alone: the tuner does not create a queue the user turned off.
    pub(super) fn apply(&mut self, factor: f64) -> Option<Change<usize>> {
        self.rescale(|scale| scale * factor)
    }

    /// Moves the scale one step towards 1, as [`ThresholdTarget::decay`].
    pub(super) fn decay(&mut self, tighten: f64, relax: f64) -> Option<Change<usize>> {
        self.rescale(|scale| toward_one(scale, tighten, relax))
    }

    fn rescale(&mut self, next: impl FnOnce(f64) -> f64) -> Option<Change<usize>> {
        let now = self.handle.max_queue();
        if self.written != Some(now) {
            self.base = now;
            self.scale = 1.0;
        }
        if self.base == 0 {
            return None;
        }
        let (min, max) = self.bounds;
        let base = self.base as f64;
        let lo = (min as f64 / base).min(1.0);
        let hi = (max as f64 / base).max(1.0);
        self.scale = next(self.scale).clamp(lo, hi);
        // `as` saturates: a huge product becomes usize::MAX, then `max`.
        let to = ((base * self.scale).round() as usize).clamp(min, max);
        self.written = Some(to);
        if to == now {
            return None;
        }
        self.handle.set_max_queue(to);
        Some(Change { from: now, to })
    }
}
