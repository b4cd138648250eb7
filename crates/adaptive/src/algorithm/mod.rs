//! [`LimitAlgorithm`] and its implementations: [`Bottleneck`], [`Aimd`],
//! [`Gradient2`], [`Vegas`] and the Envoy-style [`GradientController`].

mod aimd;
mod bottleneck;
mod ewma;
mod gradient;
mod gradient2;
mod probe;
mod vegas;

use std::fmt;

use tower_pressure_core::ConfigError;

use crate::Sample;

pub use aimd::{Aimd, AimdBuilder};
pub use bottleneck::{Bottleneck, BottleneckBuilder};
pub use gradient::{GradientController, GradientControllerBuilder};
pub use gradient2::{Gradient2, Gradient2Builder};
pub use vegas::{Vegas, VegasBuilder};

/// A concurrency-limit algorithm: from the measurements of one closed window
/// to the next limit.
///
/// [`AdaptiveLimit`](crate::AdaptiveLimit) calls [`update`](Self::update)
/// once per closed window, from whichever request closes it, and writes the
/// result to the admission limiter. An implementation keeps its estimate
/// between calls; it never sees a request, so it costs nothing on the
/// request path. Every implementation here clamps its limit to the
/// `[min_limit, max_limit]` of its builder.
pub trait LimitAlgorithm: fmt::Debug + Send + 'static {
    /// Folds one window into the estimate and returns the new limit.
    fn update(&mut self, sample: &Sample) -> usize;

    /// Starts from `limit` — the limit the admission limiter was built with
    /// — instead of the builder's initial limit, clamped to the algorithm's
    /// bounds; returns whether it did. [`AdaptiveLimit`](crate::AdaptiveLimit)
    /// calls it once, before the first window, so that adding an adaptive
    /// limit to a limiter does not replace the limit it was given with the
    /// algorithm's default. The provided implementation does nothing and
    /// returns `false` (the driver then warns, once, that it writes the
    /// algorithm's own initial limit instead).
    fn start_at(&mut self, limit: usize) -> bool {
        let _ = limit;
        false
    }

    /// The limit the algorithm wants now: what the last
    /// [`update`](Self::update) returned (during a no-load probe, the probe's
    /// limit).
    fn limit(&self) -> usize;
}

impl<A: LimitAlgorithm + ?Sized> LimitAlgorithm for Box<A> {
    fn update(&mut self, sample: &Sample) -> usize {
        (**self).update(sample)
    }

    fn start_at(&mut self, limit: usize) -> bool {
        (**self).start_at(limit)
    }

    fn limit(&self) -> usize {
        (**self).limit()
    }
}

/// The initial, smallest and largest limit of an algorithm, checked as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) initial: usize,
    pub(crate) min: usize,
    pub(crate) max: usize,
}

impl Bounds {
    pub(crate) const fn new(initial: usize, min: usize, max: usize) -> Bounds {
        Bounds { initial, min, max }
    }

    /// Checks `1 <= min <= initial <= max`; `fields` names initial, min and
    /// max in the error.
    pub(crate) fn check(self, fields: [&'static str; 3]) -> Result<Bounds, ConfigError> {
        let [initial, min, max] = fields;
        if self.max == 0 {
            return Err(ConfigError::new(max, self.max, "must be at least 1"));
        }
        if self.min == 0 {
            return Err(ConfigError::new(min, self.min, "must be at least 1"));
        }
        if self.min > self.max {
            return Err(ConfigError::new(
                min,
                self.min,
                format!("must not exceed the maximum ({})", self.max),
            ));
        }
        if !(self.min..=self.max).contains(&self.initial) {
            return Err(ConfigError::new(
                initial,
                self.initial,
                format!("must be within {}..={}", self.min, self.max),
            ));
        }
        Ok(self)
    }

    /// `limit` clamped to `[min, max]`, and a NaN to `min`.
    pub(crate) fn clamp(self, limit: f64) -> f64 {
        if limit.is_nan() {
            return self.min as f64;
        }
        limit.clamp(self.min as f64, self.max as f64)
    }
}

/// Checks that a float is a finite number in `(0, max]`.
pub(crate) fn check_open_closed(
    field: &'static str,
    value: f64,
    max: f64,
) -> Result<f64, ConfigError> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(value)
    } else {
        Err(ConfigError::new(
            field,
            value,
            format!("must be a number in (0, {max}]"),
        ))
    }
}

/// The share of a window's requests that were not dropped, at least a half:
/// what a limit keeps of itself for the window's drops. A rate, not a count,
/// so that a service failing a steady thousandth of its requests loses a
/// thousandth of its limit per window and a window of timeouts loses half.
pub(crate) fn kept_share(sample: &Sample) -> f64 {
    (1.0 - sample.drop_rate()).max(0.5)
}

/// The whole part of a non-negative limit, as the limit handed out.
pub(crate) fn whole(limit: f64) -> usize {
    // Limits are clamped to [min, max] (both usize) before this.
    limit as usize
}
