//! [`Gradient2`]: Netflix's gradient of a short against a long latency.

use tower_pressure_core::ConfigError;

use super::ewma::Ewma;
use super::{Bounds, LimitAlgorithm, check_open_closed, kept_share, whole};
use crate::Sample;

/// Netflix's `Gradient2Limit.java` (concurrency-limits): the limit follows
/// the ratio of a long-term to the current latency.
///
/// # Model
///
/// Latency above its long-term level means requests queue somewhere, so the
/// limit shrinks in proportion; latency at its level means there is room, so
/// the limit grows by a small queue allowance. Per window, with `short` the
/// window's mean latency and `long` an exponential average of it over about
/// `long_window` (600) windows:
///
/// ```text
/// gradient = max(0.5, min(1.0, tolerance × long / short))
/// target   = limit × gradient + (queue_size if tolerance × long / short ≥ 1 else 0)
/// limit    = limit × (1 − smoothing) + target × smoothing
/// ```
///
/// Defaults (Netflix): `tolerance` 1.5 (latency may grow 50 % before the
/// limit shrinks), `smoothing` 0.2, `long_window` 600, `queue_size` 4;
/// limits are requests in flight, latencies seconds (only their ratio
/// matters). A window that used less than half the limit leaves it
/// unchanged (the application, not the limit, bounds concurrency). When
/// `long / short > 2` (latency came back down after a long overload) the long
/// average is cut by 10 % per window so it catches up. Clamped to
/// `[min_limit, max_limit]`. The limit settles where `short ≈ tolerance ×
/// long`: with a service at capacity `C` and no-load latency `B`, at about
/// `tolerance × C` in flight.
///
/// # Guards (departures from the Netflix code)
///
/// - **Creep under modest overload** (Netflix PR 134): `queue_size` is added
///   only while no queueing is seen (raw gradient ≥ 1); otherwise a gradient
///   of about 0.8 plus the allowance finds an equilibrium above the limit.
///   And the long average absorbs a window only when it does not raise it
///   under load: when `short ≤ long`, when the window was app-limited, or at
///   the minimum limit. In Netflix's code it absorbs every window, so under
///   sustained overload it follows the short latency up, the gradient goes
///   back to 1 and the limit climbs without end.
/// - **Drops with flat latency** (Netflix issue 137): a window's drops
///   (overload replies, timeouts) cap its gradient at the share of requests
///   that were not dropped, `1 − drop rate` (0.5 at least), whatever its
///   latency — timed-out requests report no latency, so latency alone never
///   falls. Netflix takes 0.5 on any drop, so one failure in a thousand
///   halves the target; here it costs a thousandth, and the queue allowance
///   still grows the limit, so a steady drop rate `p` holds it near
///   `queue_size / p` while a rising one (drops that grow with the load)
///   brings it down.
/// - **A rise that is not queueing**: holding the baseline under
///   load makes it a running minimum, so a load-independent rise (a slower
///   dependency) or plain latency noise reads as queueing for ever and cuts
///   the limit towards `min_limit`. Little's law tells them apart: latency
///   from queueing at this limit falls in proportion when the limit is cut,
///   a load-independent one does not. So over each run of limited windows
///   in which the limit falls, every window that sees queueing (raw
///   gradient below 1) adds a point `(ln in-flight, ln latency)`, in-flight
///   being the window's mean by Little's law (throughput × latency). Once
///   the limit has fallen by `max(tolerance, 1.25)` (enough spread to read
///   a slope through noise), the least-squares slope of latency on
///   in-flight decides: queueing gives 1, a load-independent rise 0, and a
///   capacity drop during the run (latency rising while the limit falls)
///   dilutes a queueing slope towards ½, so only a slope within ±¼ counts
///   as flat. Flat: the long average takes the fitted latency at the
///   window's in-flight (if higher, and never above the window's own) and
///   the limit grows again. Otherwise a new run starts from here. A baseline
///   that moved is so learned after the limit fell by that factor, instead
///   of at `min_limit`.
/// - **Stuck at the minimum**: at `min_limit` the window's latency *is* the
///   latency at the least concurrency allowed, so the long average is reset
///   to it. `min_limit` defaults to 1 (Netflix: 20): the guard above keeps
///   the limit from collapsing, and a floor of 20 would stop protecting a
///   service whose capacity is below 20.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_adaptive::{Gradient2, LimitAlgorithm, Sample};
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let mut g = Gradient2::builder().initial_limit(20).build()?;
/// let now = tokio::time::Instant::now();
/// // Flat latency, limit in use: grows by queue_size × smoothing.
/// let calm = Sample::new(now, Duration::from_millis(10), 100, 20);
/// g.update(&calm);
/// assert_eq!(g.update(&calm), 21);
/// // Latency tripled: the gradient floors at 0.5 and the limit falls.
/// let jam = Sample::new(now, Duration::from_millis(30), 100, 21);
/// assert!(g.update(&jam) < 21);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Gradient2 {
    bounds: Bounds,
    tolerance: f64,
    smoothing: f64,
    queue_size: f64,
    long: Ewma,
    limit: f64,
    episode: Episode,
}

/// The queueing windows since the limit last started falling: enough to
/// tell a latency rise that follows the limit (queueing) from one that does
/// not.
#[derive(Debug, Clone, Default)]
struct Episode {
    /// The limit when the episode started; growing past it ends it.
    start: f64,
    n: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    sxy: f64,
}

impl Episode {
    fn restart(&mut self, limit: f64) {
        *self = Episode {
            start: limit,
            ..Episode::default()
        };
    }

    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.sxy += x * y;
    }

    /// The least-squares slope of `y` on `x`, if `x` spread at all.
    fn slope(&self) -> Option<f64> {
        let var = self.sxx - self.sx * self.sx / self.n;
        (var > 1e-12).then(|| (self.sxy - self.sx * self.sy / self.n) / var)
    }
}

/// The largest slope of ln latency on ln in-flight read as "latency does
/// not follow the limit": a quarter of queueing's 1 (see the guards).
const FLAT: f64 = 0.25;

/// The least factor the limit must have fallen by within an episode before
/// its slope is read: below it noise swamps the slope.
const MIN_EPISODE_SPAN: f64 = 1.25;

/// Default RTT tolerance of [`Gradient2`] (Netflix: 1.5).
pub(crate) const DEFAULT_GRADIENT2_TOLERANCE: f64 = 1.5;
/// Default smoothing of [`Gradient2`] (Netflix: 0.2).
pub(crate) const DEFAULT_GRADIENT2_SMOOTHING: f64 = 0.2;
/// Default long window of [`Gradient2`], in windows (Netflix: 600).
pub(crate) const DEFAULT_GRADIENT2_LONG_WINDOW: u32 = 600;
/// Default queue allowance of [`Gradient2`], in requests (Netflix: 4).
pub(crate) const DEFAULT_GRADIENT2_QUEUE_SIZE: usize = 4;

/// Windows the long average is a plain mean of before it turns exponential
/// (Netflix: 10).
const LONG_WARMUP: u32 = 10;

/// Builds a [`Gradient2`]; see its defaults on each method.
#[derive(Debug, Clone)]
#[must_use]
pub struct Gradient2Builder {
    bounds: Bounds,
    tolerance: f64,
    smoothing: f64,
    long_window: u32,
    queue_size: usize,
}

impl Default for Gradient2Builder {
    fn default() -> Self {
        Gradient2Builder {
            bounds: Bounds::new(20, 1, 1000),
            tolerance: DEFAULT_GRADIENT2_TOLERANCE,
            smoothing: DEFAULT_GRADIENT2_SMOOTHING,
            long_window: DEFAULT_GRADIENT2_LONG_WINDOW,
            queue_size: DEFAULT_GRADIENT2_QUEUE_SIZE,
        }
    }
}

impl Gradient2Builder {
    /// The limit before the first window (default 20, as Netflix).
    pub fn initial_limit(mut self, limit: usize) -> Self {
        self.bounds.initial = limit;
        self
    }

    /// The smallest limit (default 1; Netflix's is 20).
    pub fn min_limit(mut self, limit: usize) -> Self {
        self.bounds.min = limit;
        self
    }

    /// The largest limit (default 1000; Netflix's is 200).
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.bounds.max = limit;
        self
    }

    /// How much the latency may exceed its long-term level before the limit
    /// shrinks, as a factor ≥ 1 (default 1.5).
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// How much of each new estimate the limit takes, in `(0, 1]`
    /// (default 0.2).
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = smoothing;
        self
    }

    /// Windows the long latency averages over, at least 1 (default 600).
    pub fn long_window(mut self, windows: u32) -> Self {
        self.long_window = windows;
        self
    }

    /// Requests the limit grows by per window while no queueing is seen
    /// (default 4).
    pub fn queue_size(mut self, queue_size: usize) -> Self {
        self.queue_size = queue_size;
        self
    }

    /// The algorithm.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field: a limit of 0, `min_limit` above
    /// `max_limit`, `initial_limit` outside them, `smoothing` outside
    /// `(0, 1]`, `tolerance` below 1, NaN or infinite, `long_window` 0.
    pub fn build(self) -> Result<Gradient2, ConfigError> {
        let bounds = self.bounds.check([
            "gradient2.initial_limit",
            "gradient2.min_limit",
            "gradient2.max_limit",
        ])?;
        check_open_closed("gradient2.smoothing", self.smoothing, 1.0)?;
        if !(self.tolerance.is_finite() && self.tolerance >= 1.0) {
            return Err(ConfigError::new(
                "gradient2.tolerance",
                self.tolerance,
                "must be a finite number of at least 1",
            ));
        }
        if self.long_window == 0 {
            return Err(ConfigError::new(
                "gradient2.long_window",
                0,
                "must be at least 1",
            ));
        }
        Ok(Gradient2 {
            bounds,
            tolerance: self.tolerance,
            smoothing: self.smoothing,
            queue_size: self.queue_size as f64,
            long: Ewma::new(self.long_window, LONG_WARMUP.min(self.long_window)),
            limit: bounds.initial as f64,
            episode: Episode::default(),
        })
    }
}

impl Gradient2 {
    /// A builder with the defaults.
    pub fn builder() -> Gradient2Builder {
        Gradient2Builder::default()
    }

    /// The long-term latency, in seconds, once one window was seen.
    #[must_use]
    pub fn long_rtt(&self) -> Option<f64> {
        self.long.get()
    }

    /// Keeps a limited window in the episode; once the limit has fallen far
    /// enough within it, returns the new long latency if the latency did
    /// not follow the limit down (see the type's guards).
    fn learn_rise(&mut self, sample: &Sample, short: f64, long: f64) -> Option<f64> {
        if self.episode.n == 0.0 || self.limit > self.episode.start {
            self.episode.restart(self.limit);
        }
        if self.tolerance * long >= short {
            // No queueing seen: nothing to explain.
            return None;
        }
        // The window's mean in flight by Little's law (throughput × latency):
        // it moves with the latency the window measured, where the peak in
        // flight leads it by up to a latency when the limit changes.
        let secs = sample.duration.as_secs_f64();
        let in_flight = if secs > 0.0 && sample.successes > 0 {
            sample.successes as f64 / secs * short
        } else {
            sample.max_in_flight as f64
        };
        let x = in_flight.max(1.0).ln();
        self.episode.add(x, short.ln());
        if self.episode.start < self.limit * self.tolerance.max(MIN_EPISODE_SPAN) {
            return None;
        }
        let e = &self.episode;
        let slope = e.slope()?;
        // The fitted latency at this window's in-flight: the episode may
        // begin before the rise did.
        // Never above the latency just measured.
        let fitted = (e.sy / e.n + slope * (x - e.sx / e.n)).exp().min(short);
        self.episode.restart(self.limit);
        if slope.abs() < FLAT && fitted > long {
            self.long.set(fitted);
            Some(fitted)
        } else {
            None
        }
    }

    /// Cuts the limit by the window's drops, if it had any.
    fn cut(&mut self, sample: &Sample, kept: f64) -> usize {
        if sample.did_drop() {
            self.set(self.limit * kept)
        } else {
            whole(self.limit)
        }
    }

    fn set(&mut self, target: f64) -> usize {
        let next = self.limit * (1.0 - self.smoothing) + target * self.smoothing;
        self.limit = self.bounds.clamp(next);
        whole(self.limit)
    }
}

impl Default for Gradient2 {
    fn default() -> Self {
        Gradient2::builder()
            .build()
            .expect("the defaults are valid")
    }
}

impl LimitAlgorithm for Gradient2 {
    fn start_at(&mut self, limit: usize) -> bool {
        self.limit = self.bounds.clamp(limit as f64);
        true
    }

    fn update(&mut self, sample: &Sample) -> usize {
        // Drops take away their share of the limit (down to half of it),
        // even when latency is flat (Netflix issue 137): timed-out requests
        // report no latency, so latency alone never falls.
        let kept = kept_share(sample);
        let Some(short) = sample.avg_rtt.map(|d| d.as_secs_f64()).filter(|s| *s > 0.0) else {
            return self.cut(sample, kept);
        };
        let app_limited = (sample.max_in_flight as f64) < self.limit / 2.0;
        let at_min = whole(self.limit) <= self.bounds.min;
        let long = match self.long.get() {
            None => self.long.add(short),
            Some(_) if at_min => {
                self.long.set(short);
                short
            }
            Some(long) if short <= long || app_limited => self.long.add(short),
            // Under load and slower than usual: hold the baseline (Netflix PR 134).
            Some(long) => long,
        };
        let long = if long / short > 2.0 {
            let cut = long * 0.9;
            self.long.set(cut);
            cut
        } else {
            long
        };
        if app_limited {
            return self.cut(sample, kept);
        }
        let long = self.learn_rise(sample, short, long).unwrap_or(long);
        let raw = self.tolerance * long / short;
        let gradient = raw.clamp(0.5, 1.0).min(kept);
        let queue = if raw >= 1.0 { self.queue_size } else { 0.0 };
        self.set(self.limit * gradient + queue)
    }

    fn limit(&self) -> usize {
        whole(self.limit)
    }
}
