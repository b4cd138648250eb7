//! [`ThrottleConfig`]: how hard the client throttle refuses, and over how
//! much history.

use std::time::Duration;

use tower_pressure_core::{ConfigError, Priority};

/// The default `K`: the service is taken to accept at most twice as many
/// calls as it did in the window (the Google SRE book's value).
pub(crate) const DEFAULT_K: f64 = 2.0;
/// The default history: two minutes.
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(120);
/// The default number of buckets: one a second over the default window.
pub(crate) const DEFAULT_BUCKETS: usize = 120;
/// The most buckets a window may have (each priority keeps its own ring).
pub(crate) const MAX_BUCKETS: usize = 1000;
/// The shortest bucket.
pub(crate) const MIN_BUCKET: Duration = Duration::from_millis(1);

/// How [`ThrottleLayer`](crate::ThrottleLayer) decides to refuse a call
/// locally.
///
/// For each priority the throttle counts, over a sliding window, the calls
/// made (`requests`) and the calls the service accepted (`accepts`), and
/// refuses a new call with probability
///
/// ```text
/// max(0, (requests − K × accepts) / (requests + 1))
/// ```
///
/// ([`refusal_probability`](Self::refusal_probability)). While the service
/// accepts at least one call in `K`, nothing is refused; past that, the
/// calls the client lets through approach `K` times what the service
/// accepts, so the service spends little on calls it would refuse anyway.
/// A smaller `K` throttles sooner (1.1 is aggressive), a larger one wastes
/// more of the service's work on refusals but reacts less to a short burst
/// of them.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_client::ThrottleConfig;
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let config = ThrottleConfig::builder()
///     .k(1.5)
///     .window(Duration::from_secs(60))
///     .buckets(60)
///     .build()?;
/// assert_eq!(config.refusal_probability(100, 0), 100.0 / 101.0);
/// assert_eq!(config.refusal_probability(150, 100), 0.0);
///
/// let err = ThrottleConfig::builder().k(0.5).build().unwrap_err();
/// assert_eq!(err.field(), "throttle.k");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleConfig {
    k: f64,
    window: Duration,
    buckets: usize,
    throttle_critical: bool,
    seed: Option<u64>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            k: DEFAULT_K,
            window: DEFAULT_WINDOW,
            buckets: DEFAULT_BUCKETS,
            throttle_critical: false,
            seed: None,
        }
    }
}

impl ThrottleConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ThrottleConfigBuilder {
        ThrottleConfigBuilder::default()
    }

    /// The probability of refusing a call when the window holds `requests`
    /// calls of which the service accepted `accepts`:
    /// `max(0, (requests − K × accepts) / (requests + 1))`: always in
    /// `[0, 1]` (below 1 for any count a window can hold), and 0 whenever
    /// `K × accepts ≥ requests`.
    #[must_use]
    pub fn refusal_probability(&self, requests: u64, accepts: u64) -> f64 {
        // Counts beyond 2^53 lose their last bits as floats; the ratio does
        // not notice.
        let r = requests as f64;
        let a = accepts as f64;
        ((r - self.k * a) / (r + 1.0)).max(0.0)
    }

    /// `K`, the multiple of the accepted calls the client lets through.
    #[must_use]
    pub fn k(&self) -> f64 {
        self.k
    }

    /// How long a call stays in the statistics.
    #[must_use]
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How many buckets the window slides by.
    #[must_use]
    pub fn buckets(&self) -> usize {
        self.buckets
    }

    /// The length of one bucket: the window's step.
    pub(crate) fn bucket(&self) -> Duration {
        // `buckets` is validated in 1..=MAX_BUCKETS, so it fits a u32.
        self.window / u32::try_from(self.buckets).unwrap_or(u32::MAX)
    }

    /// Whether `Critical` calls may be refused locally.
    #[must_use]
    pub fn throttles_critical(&self) -> bool {
        self.throttle_critical
    }

    /// Whether a call of `priority` may be refused locally.
    pub(crate) fn throttles(&self, priority: Priority) -> bool {
        priority != Priority::Critical || self.throttle_critical
    }

    /// The seed of the random draws, if one was set.
    pub(crate) fn seed(&self) -> Option<u64> {
        self.seed
    }
}

/// Builds a [`ThrottleConfig`]; see [`ThrottleConfig::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ThrottleConfigBuilder {
    config: ThrottleConfig,
}

impl ThrottleConfigBuilder {
    /// `K`: the client lets through about `K` times the calls the service
    /// accepts. A finite number, at least 1. Default 2.0.
    pub fn k(mut self, k: f64) -> Self {
        self.config.k = k;
        self
    }

    /// How long a call is remembered: the statistics are those of the last
    /// `window`. Default 2 minutes.
    pub fn window(mut self, window: Duration) -> Self {
        self.config.window = window;
        self
    }

    /// How many buckets the window is made of, in `1..=1000`: it slides by
    /// `window / buckets`, which must be at least 1 ms. A call is forgotten
    /// between `window − window / buckets` and `window` after it was
    /// counted. Default 120 (1 s each with the default window).
    pub fn buckets(mut self, buckets: usize) -> Self {
        self.config.buckets = buckets;
        self
    }

    /// Whether `Critical` calls may be refused locally. Default `false`:
    /// they are always sent (and still counted).
    pub fn throttle_critical(mut self, throttle: bool) -> Self {
        self.config.throttle_critical = throttle;
        self
    }

    /// Seeds the random draws that decide refusals, for reproducible runs
    /// and tests. Default: a seed from the standard library's per-process
    /// random keys, different for every layer.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: `throttle.k` when `K` is not a
    /// finite number of at least 1; `throttle.buckets` outside `1..=1000`;
    /// `throttle.window` when a bucket would be shorter than 1 ms.
    pub fn build(self) -> Result<ThrottleConfig, ConfigError> {
        let c = self.config;
        if !(c.k.is_finite() && c.k >= 1.0) {
            return Err(ConfigError::new(
                "throttle.k",
                c.k,
                "must be a finite number of at least 1",
            ));
        }
        if !(1..=MAX_BUCKETS).contains(&c.buckets) {
            return Err(ConfigError::new(
                "throttle.buckets",
                c.buckets,
                format!("must be in 1..={MAX_BUCKETS}"),
            ));
        }
        if c.bucket() < MIN_BUCKET {
            return Err(ConfigError::new(
                "throttle.window",
                format_args!("{:?}", c.window),
                "must give buckets of at least 1 ms (window / buckets)",
            ));
        }
        Ok(c)
    }
}
