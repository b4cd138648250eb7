//! [`Aimd`]: additive increase, multiplicative decrease.

use std::time::Duration;

use tower_pressure_core::ConfigError;

use super::{Bounds, LimitAlgorithm, whole};
use crate::Sample;

/// Additive increase, multiplicative decrease — the loss-based half of TCP
/// congestion control (Reno), as Netflix concurrency-limits' `AIMDLimit.java`
/// applies it to a concurrency limit.
///
/// # Model
///
/// The service tells us it is overloaded by dropping work (an overload reply
/// or a timeout) or by answering slower than `timeout`; otherwise more
/// concurrency is assumed to be fine. Per window:
///
/// - a mean latency above `timeout`: `limit × backoff` (default 0.9);
/// - drops: `limit × max(backoff, 1 − drop rate)` — the drops' share, at
///   most `backoff`'s. Netflix backs off by `backoff` on any drop, so a
///   service failing one request in a thousand for its own reasons sits at
///   the floor; here a steady drop rate `p` holds the limit near `1 / p`,
///   and drops that grow with the load bring it down;
/// - else, when the window used at least half the limit
///   (`max_in_flight × 2 ≥ limit`): `limit = limit + 1`;
/// - else (the application, not the limit, bounds concurrency): unchanged,
///   so that a quiet service does not grow a limit it never tested.
///
/// Limits are requests in flight; `timeout` is wall-clock latency. Clamped to
/// `[min_limit, max_limit]`. Converges in a saw-tooth just below the point
/// where drops (or latency above `timeout`) begin; it never reacts to latency
/// below `timeout`, so `timeout` is what sets the queueing it tolerates: at a
/// service of capacity `C` in flight and no-load latency `B` that does not
/// drop, it settles just below `C × timeout / B`. With Netflix's 5 s default
/// and a fast service that means it grows until the service drops work.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_adaptive::{Aimd, LimitAlgorithm, Sample};
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let mut aimd = Aimd::builder().initial_limit(10).build()?;
/// let now = tokio::time::Instant::now();
/// let busy = Sample::new(now, Duration::from_millis(5), 100, 10);
/// assert_eq!(aimd.update(&busy), 11);
/// // One drop in 101: the limit (11) loses 1 %.
/// assert_eq!(aimd.update(&busy.with_dropped(1)), 10);
/// // Half of the window dropped: backoff (0.9) at most.
/// assert_eq!(aimd.update(&busy.with_dropped(100)), 9);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Aimd {
    bounds: Bounds,
    backoff: f64,
    timeout: Duration,
    /// Kept fractional, so that a small cut is not lost to rounding; the
    /// whole part is handed out.
    limit: f64,
}

/// Default initial limit of [`Aimd`] (Netflix: 20).
pub(crate) const DEFAULT_AIMD_INITIAL_LIMIT: usize = 20;
/// Default multiplicative backoff of [`Aimd`] (Netflix: 0.9).
pub(crate) const DEFAULT_AIMD_BACKOFF: f64 = 0.9;
/// Default latency above which [`Aimd`] backs off as for a drop (Netflix: 5 s).
pub(crate) const DEFAULT_AIMD_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds an [`Aimd`]; see its defaults on each method.
#[derive(Debug, Clone)]
#[must_use]
pub struct AimdBuilder {
    bounds: Bounds,
    backoff: f64,
    timeout: Duration,
}

impl Default for AimdBuilder {
    fn default() -> Self {
        AimdBuilder {
            bounds: Bounds::new(DEFAULT_AIMD_INITIAL_LIMIT, 1, 1000),
            backoff: DEFAULT_AIMD_BACKOFF,
            timeout: DEFAULT_AIMD_TIMEOUT,
        }
    }
}

impl AimdBuilder {
    /// The limit before the first window (default 20).
    pub fn initial_limit(mut self, limit: usize) -> Self {
        self.bounds.initial = limit;
        self
    }

    /// The smallest limit (default 1).
    pub fn min_limit(mut self, limit: usize) -> Self {
        self.bounds.min = limit;
        self
    }

    /// The largest limit (default 1000).
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.bounds.max = limit;
        self
    }

    /// The factor the limit is multiplied by on a drop, in `(0, 1)`
    /// (default 0.9).
    pub fn backoff(mut self, backoff: f64) -> Self {
        self.backoff = backoff;
        self
    }

    /// A window whose mean latency exceeds this counts as a drop (default
    /// 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The algorithm.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field: a limit of 0, `min_limit` above
    /// `max_limit`, `initial_limit` outside them, `backoff` outside `(0, 1)`
    /// or NaN, a zero `timeout`.
    pub fn build(self) -> Result<Aimd, ConfigError> {
        let bounds =
            self.bounds
                .check(["aimd.initial_limit", "aimd.min_limit", "aimd.max_limit"])?;
        if !(self.backoff.is_finite() && self.backoff > 0.0 && self.backoff < 1.0) {
            return Err(ConfigError::new(
                "aimd.backoff",
                self.backoff,
                "must be a number in (0, 1)",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new(
                "aimd.timeout",
                format_args!("{:?}", self.timeout),
                "must be more than zero",
            ));
        }
        Ok(Aimd {
            bounds,
            backoff: self.backoff,
            timeout: self.timeout,
            limit: bounds.initial as f64,
        })
    }
}

impl Aimd {
    /// A builder with the defaults: initial limit 20 and backoff 0.9 as
    /// Netflix's, bounds `1..=1000`.
    pub fn builder() -> AimdBuilder {
        AimdBuilder::default()
    }
}

impl Default for Aimd {
    fn default() -> Self {
        Aimd::builder().build().expect("the defaults are valid")
    }
}

impl LimitAlgorithm for Aimd {
    fn start_at(&mut self, limit: usize) -> bool {
        self.limit = self.bounds.clamp(limit as f64);
        true
    }

    fn update(&mut self, sample: &Sample) -> usize {
        let slow = sample.avg_rtt.is_some_and(|rtt| rtt > self.timeout);
        let next = if slow {
            self.limit * self.backoff
        } else if sample.did_drop() {
            // The drops' share, down to `backoff` at most.
            self.limit * (1.0 - sample.drop_rate()).max(self.backoff)
        } else if sample.max_in_flight.saturating_mul(2) as f64 >= self.limit {
            self.limit + 1.0
        } else {
            return whole(self.limit);
        };
        self.limit = self.bounds.clamp(next);
        whole(self.limit)
    }

    fn limit(&self) -> usize {
        whole(self.limit)
    }
}
