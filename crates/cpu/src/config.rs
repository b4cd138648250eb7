//! [`CpuThrottleConfig`]: how long to delay which request at which level.

use std::time::Duration;

use tower_pressure_core::{ConfigError, PerPriority, PressureLevel, Priority};

/// The default base delay at `start` ([`PressureLevel::Medium`]).
const DEFAULT_START_DELAY: Duration = Duration::from_millis(100);
/// The default base delay at `aggressive` ([`PressureLevel::High`]).
const DEFAULT_AGGRESSIVE_DELAY: Duration = Duration::from_millis(500);
/// The default base delay at `emergency` ([`PressureLevel::Critical`]).
const DEFAULT_EMERGENCY_DELAY: Duration = Duration::from_millis(1000);
/// The default delay multipliers, `Bulk` first (see
/// [`multiplier`](CpuThrottleConfigBuilder::multiplier) for why High and
/// Critical are not delayed).
const DEFAULT_MULTIPLIERS: [f64; 5] = [2.0, 1.5, 1.0, 0.0, 0.0];
/// The default cap on any one delay (the emergency delay of `Bulk`).
const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(2);
/// The default bound on requests waiting out a delay at once.
const DEFAULT_MAX_DELAYED: usize = 1024;
/// The largest multiplier accepted.
const MAX_MULTIPLIER: f64 = 100.0;

/// How [`CpuThrottleLayer`](crate::CpuThrottleLayer) delays requests.
///
/// A request arriving while the CPU signal is at `level` waits
/// `min(base_delay(level) × multiplier(priority), max_delay)` before the
/// inner service sees it — when a request of a higher class is in the
/// service at that moment (the delay gives the CPU to work that matters
/// more; with none, a delay would only add latency, so the request passes:
/// see [`delay_uncontended`](CpuThrottleConfigBuilder::delay_uncontended)).
/// At most [`max_delayed`](CpuThrottleConfigBuilder::max_delayed) requests
/// wait at once; past that the throttle refuses. A delayed request is
/// checked again when it wakes (the capacity gate, Bulk's refusal at
/// emergency). The levels come from the CPU [`Signal`]'s
/// thresholds (see [`CpuSignalConfig`](crate::CpuSignalConfig)): `start`
/// (0.70) is [`PressureLevel::Medium`], `aggressive` (0.85) `High`,
/// `emergency` (0.95) `Critical`; below `start` nothing is delayed.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_core::{PressureLevel, Priority};
/// use tower_pressure_cpu::CpuThrottleConfig;
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let config = CpuThrottleConfig::builder()
///     .multiplier(Priority::High, 0.2) // High may wait a little
///     .max_delay(Duration::from_millis(800))
///     .build()?;
/// assert_eq!(config.delay(PressureLevel::Medium, Priority::Bulk), Duration::from_millis(200));
/// assert_eq!(config.delay(PressureLevel::Critical, Priority::Bulk), Duration::from_millis(800));
/// assert_eq!(config.delay(PressureLevel::Critical, Priority::High), Duration::from_millis(200));
/// assert_eq!(config.delay(PressureLevel::Critical, Priority::Critical), Duration::ZERO);
/// assert_eq!(config.delay(PressureLevel::Low, Priority::Bulk), Duration::ZERO);
///
/// let err = CpuThrottleConfig::builder().multiplier(Priority::Low, -1.0).build().unwrap_err();
/// assert_eq!(err.field(), "cpu_throttle.multiplier.low");
/// # Ok(()) }
/// ```
///
/// With the `serde` feature it deserialises from this form, every field
/// optional, validated as by the builder:
///
/// ```toml
/// start_delay_ms = 100
/// aggressive_delay_ms = 500
/// emergency_delay_ms = 1000
/// max_delay_ms = 2000
/// shed_bulk_at_emergency = false
/// max_delayed = 1024
/// delay_uncontended = false
/// multipliers = { bulk = 2.0, low = 1.5, normal = 1.0, high = 0.0, critical = 0.0 }
/// ```
///
/// [`Signal`]: tower_pressure_core::Signal
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "crate::file::CpuThrottleFile"))]
pub struct CpuThrottleConfig {
    /// Base delay per level, indexed by `PressureLevel as usize`.
    base: [Duration; 5],
    multipliers: [f64; 5],
    max_delay: Duration,
    shed_bulk_at_emergency: bool,
    max_delayed: usize,
    delay_uncontended: bool,
    /// The lowest level with a non-zero base delay: the fast-path compare.
    start: PressureLevel,
}

impl Default for CpuThrottleConfig {
    fn default() -> Self {
        CpuThrottleConfig::builder()
            .build()
            .expect("the defaults are valid")
    }
}

impl CpuThrottleConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> CpuThrottleConfigBuilder {
        CpuThrottleConfigBuilder::default()
    }

    /// The delay of a request of `priority` at `level`, capped at
    /// [`max_delay`](Self::max_delay); zero below the start level.
    #[must_use]
    pub fn delay(&self, level: PressureLevel, priority: Priority) -> Duration {
        let base = self.base[level.index()];
        if base.is_zero() {
            return Duration::ZERO;
        }
        let m = self.multipliers[priority as usize];
        // The multiplier is validated finite and in 0..=100; a product too
        // large for a `Duration` is capped like any other.
        Duration::try_from_secs_f64(base.as_secs_f64() * m)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The base delay at `level`.
    #[must_use]
    pub fn base_delay(&self, level: PressureLevel) -> Duration {
        self.base[level.index()]
    }

    /// The delay multiplier of `priority`.
    #[must_use]
    pub fn multiplier(&self, priority: Priority) -> f64 {
        self.multipliers[priority as usize]
    }

    /// The cap on any one delay.
    #[must_use]
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// Whether `Bulk` requests are refused at once at
    /// [`PressureLevel::Critical`] instead of delayed.
    #[must_use]
    pub fn sheds_bulk_at_emergency(&self) -> bool {
        self.shed_bulk_at_emergency
    }

    /// The most requests waiting out a delay at once; past it the throttle
    /// refuses.
    #[must_use]
    pub fn max_delayed(&self) -> usize {
        self.max_delayed
    }

    /// Whether a class is delayed even when no request of a higher class is
    /// in the service (see [`delay_uncontended`](CpuThrottleConfigBuilder::delay_uncontended)).
    #[must_use]
    pub fn delays_uncontended(&self) -> bool {
        self.delay_uncontended
    }

    /// The lowest level at which anything is delayed.
    #[must_use]
    pub fn start_level(&self) -> PressureLevel {
        self.start
    }
}

/// Builds a validated [`CpuThrottleConfig`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct CpuThrottleConfigBuilder {
    base: [Duration; 5],
    multipliers: [f64; 5],
    max_delay: Duration,
    shed_bulk_at_emergency: bool,
    max_delayed: usize,
    delay_uncontended: bool,
}

impl Default for CpuThrottleConfigBuilder {
    fn default() -> Self {
        CpuThrottleConfigBuilder {
            base: [
                Duration::ZERO,
                Duration::ZERO,
                DEFAULT_START_DELAY,
                DEFAULT_AGGRESSIVE_DELAY,
                DEFAULT_EMERGENCY_DELAY,
            ],
            multipliers: DEFAULT_MULTIPLIERS,
            max_delay: DEFAULT_MAX_DELAY,
            shed_bulk_at_emergency: false,
            max_delayed: DEFAULT_MAX_DELAYED,
            delay_uncontended: false,
        }
    }
}

const LEVEL_FIELDS: [&str; 5] = [
    "cpu_throttle.delay.none",
    "cpu_throttle.delay.low",
    "cpu_throttle.delay.medium",
    "cpu_throttle.delay.high",
    "cpu_throttle.delay.critical",
];

const PRIORITY_FIELDS: [&str; 5] = [
    "cpu_throttle.multiplier.bulk",
    "cpu_throttle.multiplier.low",
    "cpu_throttle.multiplier.normal",
    "cpu_throttle.multiplier.high",
    "cpu_throttle.multiplier.critical",
];

impl CpuThrottleConfigBuilder {
    /// The base delay at `start` ([`PressureLevel::Medium`]). Default 100 ms.
    pub fn start_delay(self, delay: Duration) -> Self {
        self.delay(PressureLevel::Medium, delay)
    }

    /// The base delay at `aggressive` ([`PressureLevel::High`]). Default
    /// 500 ms.
    pub fn aggressive_delay(self, delay: Duration) -> Self {
        self.delay(PressureLevel::High, delay)
    }

    /// The base delay at `emergency` ([`PressureLevel::Critical`]). Default
    /// 1 s.
    pub fn emergency_delay(self, delay: Duration) -> Self {
        self.delay(PressureLevel::Critical, delay)
    }

    /// The base delay at any `level`. `None` must stay zero; `Low` is zero by
    /// default (a "warm" level that only reports). Delays must not decrease
    /// as the level rises, and the `Critical` delay must be above zero.
    /// Defaults: see the setters of the named levels above.
    pub fn delay(mut self, level: PressureLevel, delay: Duration) -> Self {
        self.base[level.index()] = delay;
        self
    }

    /// The multiplier of `priority`'s delay: a number in `0..=100`, not
    /// larger than the multiplier of any lower priority. `0` never delays
    /// the class. Defaults: `Bulk` 2.0, `Low` 1.5, `Normal` 1.0, `High` and
    /// `Critical` 0. Lower priority, longer delay; High and Critical are
    /// never delayed by default, because a saturated, healthy server reads
    /// the top CPU level, and delaying its High work whenever a Critical
    /// health check is in the service sheds nothing and only adds latency
    /// to work that cannot wait. Set them if High work can wait in your
    /// service.
    pub fn multiplier(mut self, priority: Priority, multiplier: f64) -> Self {
        self.multipliers[priority as usize] = multiplier;
        self
    }

    /// All five multipliers at once (see [`multiplier`](Self::multiplier)).
    pub fn multipliers(mut self, multipliers: PerPriority<f64>) -> Self {
        self.multipliers = multipliers.into();
        self
    }

    /// The cap on any one delay; above zero. Default 2 s (the emergency
    /// delay of `Bulk`).
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// Refuse `Bulk` requests at once at `emergency` instead of delaying
    /// them. Default off.
    pub fn shed_bulk_at_emergency(mut self, shed: bool) -> Self {
        self.shed_bulk_at_emergency = shed;
        self
    }

    /// The most requests waiting out a delay at once, at least 1; a request
    /// that would be delayed past it is refused (503, `Retry-After` its
    /// delay). Default 1024: each parked request holds its body and a clone
    /// of the service.
    pub fn max_delayed(mut self, max: usize) -> Self {
        self.max_delayed = max;
        self
    }

    /// Delay a class even when no request of a higher class is in the
    /// service. Default off: a delay frees the CPU for work that matters
    /// more only if such work is being served; with none (a service
    /// saturated by one class, or by the lower classes alone) it sheds
    /// nothing and only adds latency, and a healthy service busy at full
    /// CPU would serve slower than without the throttle.
    pub fn delay_uncontended(mut self, delay: bool) -> Self {
        self.delay_uncontended = delay;
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when `max_delayed` is 0, a
    /// multiplier is NaN, infinite,
    /// negative, above 100 or larger than a lower priority's;
    /// when a delay is lower than the delay of a lower level, the `None`
    /// delay is not zero or the `Critical` delay is zero; when `max_delay`
    /// is zero.
    pub fn build(self) -> Result<CpuThrottleConfig, ConfigError> {
        if self.max_delayed == 0 {
            return Err(ConfigError::new(
                "cpu_throttle.max_delayed",
                0,
                "must be at least 1",
            ));
        }
        for (i, &m) in self.multipliers.iter().enumerate() {
            ConfigError::check_range(PRIORITY_FIELDS[i], m, 0.0, MAX_MULTIPLIER)?;
            if i > 0 && m > self.multipliers[i - 1] {
                return Err(ConfigError::new(
                    PRIORITY_FIELDS[i],
                    m,
                    format!(
                        "must not be larger than the multiplier of the priority below ({})",
                        self.multipliers[i - 1]
                    ),
                ));
            }
        }
        if !self.base[0].is_zero() {
            return Err(ConfigError::new(
                LEVEL_FIELDS[0],
                format_args!("{:?}", self.base[0]),
                "must be zero: nothing is throttled without pressure",
            ));
        }
        for (pair, field) in self.base.windows(2).zip(&LEVEL_FIELDS[1..]) {
            if pair[1] < pair[0] {
                return Err(ConfigError::new(
                    field,
                    format_args!("{:?}", pair[1]),
                    format!(
                        "must not be shorter than the delay of the level below ({:?})",
                        pair[0]
                    ),
                ));
            }
        }
        if self.base[4].is_zero() {
            return Err(ConfigError::new(
                LEVEL_FIELDS[4],
                "0s",
                "must be greater than zero, or the throttle never delays",
            ));
        }
        if self.max_delay.is_zero() {
            return Err(ConfigError::new(
                "cpu_throttle.max_delay",
                "0s",
                "must be greater than zero",
            ));
        }
        let start = PressureLevel::ALL
            .into_iter()
            .find(|l| !self.base[l.index()].is_zero())
            .unwrap_or(PressureLevel::Critical);
        Ok(CpuThrottleConfig {
            base: self.base,
            multipliers: self.multipliers,
            max_delay: self.max_delay,
            shed_bulk_at_emergency: self.shed_bulk_at_emergency,
            max_delayed: self.max_delayed,
            delay_uncontended: self.delay_uncontended,
            start,
        })
    }
}
