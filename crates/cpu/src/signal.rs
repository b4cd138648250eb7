//! The CPU [`Signal`]: its thresholds, its sampling interval and its
//! smoothing window, chosen so that a breach is acted on within 250 ms.

use std::time::Duration;

use tower_pressure_core::{ConfigError, EventBus, Signal, SignalConfig, Source, Thresholds};

use crate::Windowed;

/// The default sampling interval of the CPU signal.
const DEFAULT_CPU_INTERVAL: Duration = Duration::from_millis(50);
/// The default smoothing window of the CPU signal: 200 ms of history at the
/// default interval.
const DEFAULT_CPU_WINDOW: usize = 4;
/// The default `warm` threshold: reported, never throttled.
const DEFAULT_WARM: f64 = 0.50;
/// The default `start` threshold.
const DEFAULT_START: f64 = 0.70;
/// The default `aggressive` threshold.
const DEFAULT_AGGRESSIVE: f64 = 0.85;
/// The default `emergency` threshold.
const DEFAULT_EMERGENCY: f64 = 0.95;
/// The default hysteresis of the CPU levels.
const DEFAULT_CPU_HYSTERESIS: f64 = 0.02;
/// The largest smoothing window accepted, in samples.
const MAX_CPU_WINDOW: usize = 3600;

/// How the CPU [`Signal`] samples and smooths: thresholds, interval, window.
///
/// The signal is a plain mean of the last `window` samples (the signal's
/// own EWMA is off), so the worst case from a step in the source to the
/// level that step implies is bounded: `window × interval` (any step that
/// crosses a threshold has filled the whole window by then). The defaults,
/// 4 samples every 50 ms, give at most 200 ms; a larger window is steadier
/// and proportionally slower (a mean of 60 samples taken a second apart
/// acts on a burst only after half a minute). A sample costs microseconds
/// (one `pread` of a `/proc` or cgroup file), so 20 samples a second are
/// cheap.
///
/// The levels map to the throttle's names: `warm` is
/// [`PressureLevel::Low`] (reported, never delayed), `start` `Medium`,
/// `aggressive` `High`, `emergency` `Critical`.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_cpu::CpuSignalConfig;
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let config = CpuSignalConfig::builder()
///     .start(0.6)
///     .window(10)
///     .interval(Duration::from_millis(100))
///     .build()?;
/// assert_eq!(config.reaction_bound(), Duration::from_secs(1));
///
/// let err = CpuSignalConfig::builder().aggressive(0.5).build().unwrap_err();
/// assert_eq!(err.field(), "cpu.aggressive");
/// # Ok(()) }
/// ```
///
/// With the `serde` feature it deserialises (validated, as by the builder):
///
/// ```toml
/// warm = 0.5
/// start = 0.7
/// aggressive = 0.85
/// emergency = 0.95
/// hysteresis = 0.02
/// interval_ms = 50
/// window = 4
/// ```
///
/// [`PressureLevel::Low`]: tower_pressure_core::PressureLevel::Low
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "crate::file::CpuSignalFile"))]
pub struct CpuSignalConfig {
    signal: SignalConfig,
    thresholds: Thresholds,
    interval: Duration,
    window: usize,
}

impl Default for CpuSignalConfig {
    fn default() -> Self {
        CpuSignalConfig::builder()
            .build()
            .expect("the defaults are valid")
    }
}

impl CpuSignalConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> CpuSignalConfigBuilder {
        CpuSignalConfigBuilder::default()
    }

    /// The core signal configuration (name `"cpu"`, no EWMA).
    #[must_use]
    pub fn signal_config(&self) -> &SignalConfig {
        &self.signal
    }

    /// The thresholds of the levels.
    #[must_use]
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// The sampling interval.
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The number of samples averaged.
    #[must_use]
    pub fn window(&self) -> usize {
        self.window
    }

    /// The longest time from a step in the source's reading to the level
    /// that reading implies: `window × interval`.
    #[must_use]
    pub fn reaction_bound(&self) -> Duration {
        self.interval
            .saturating_mul(u32::try_from(self.window).unwrap_or(u32::MAX))
    }
}

/// Builds a validated [`CpuSignalConfig`].
#[derive(Debug, Clone)]
#[must_use]
pub struct CpuSignalConfigBuilder {
    warm: f64,
    start: f64,
    aggressive: f64,
    emergency: f64,
    hysteresis: f64,
    interval: Duration,
    window: usize,
    events: Option<EventBus>,
}

impl Default for CpuSignalConfigBuilder {
    fn default() -> Self {
        CpuSignalConfigBuilder {
            warm: DEFAULT_WARM,
            start: DEFAULT_START,
            aggressive: DEFAULT_AGGRESSIVE,
            emergency: DEFAULT_EMERGENCY,
            hysteresis: DEFAULT_CPU_HYSTERESIS,
            interval: DEFAULT_CPU_INTERVAL,
            window: DEFAULT_CPU_WINDOW,
            events: None,
        }
    }
}

impl CpuSignalConfigBuilder {
    /// The `warm` threshold ([`PressureLevel::Low`]): reported in the level,
    /// never delayed by default. Default 0.50.
    ///
    /// [`PressureLevel::Low`]: tower_pressure_core::PressureLevel::Low
    pub fn warm(mut self, t: f64) -> Self {
        self.warm = t;
        self
    }

    /// The `start` threshold ([`PressureLevel::Medium`]): throttling begins.
    /// Default 0.70.
    ///
    /// [`PressureLevel::Medium`]: tower_pressure_core::PressureLevel::Medium
    pub fn start(mut self, t: f64) -> Self {
        self.start = t;
        self
    }

    /// The `aggressive` threshold ([`PressureLevel::High`]). Default 0.85.
    ///
    /// [`PressureLevel::High`]: tower_pressure_core::PressureLevel::High
    pub fn aggressive(mut self, t: f64) -> Self {
        self.aggressive = t;
        self
    }

    /// The `emergency` threshold ([`PressureLevel::Critical`]). Default 0.95.
    ///
    /// [`PressureLevel::Critical`]: tower_pressure_core::PressureLevel::Critical
    pub fn emergency(mut self, t: f64) -> Self {
        self.emergency = t;
        self
    }

    /// The hysteresis band in `[0, 0.5]`. Default 0.02.
    pub fn hysteresis(mut self, h: f64) -> Self {
        self.hysteresis = h;
        self
    }

    /// The sampling interval, above zero. Default 50 ms.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How many samples are averaged, in `1..=3600` (1 turns smoothing off).
    /// Default 4 (200 ms of history at the default interval).
    pub fn window(mut self, window: usize) -> Self {
        self.window = window;
        self
    }

    /// Publishes level changes on `bus`. Default: no events.
    pub fn events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when a threshold is not a number in
    /// `[0, 1]`, the thresholds are not `warm <= start <= aggressive <=
    /// emergency`, the hysteresis is outside `[0, 0.5]`, the interval is zero
    /// or the window is outside `1..=3600`.
    pub fn build(self) -> Result<CpuSignalConfig, ConfigError> {
        let named = [
            ("cpu.warm", self.warm),
            ("cpu.start", self.start),
            ("cpu.aggressive", self.aggressive),
            ("cpu.emergency", self.emergency),
        ];
        for (i, &(field, t)) in named.iter().enumerate() {
            ConfigError::check_range(field, t, 0.0, 1.0)?;
            if i > 0 && t < named[i - 1].1 {
                return Err(ConfigError::new(
                    field,
                    t,
                    format!(
                        "must not be below `{}` ({}): warm <= start <= aggressive <= emergency",
                        named[i - 1].0,
                        named[i - 1].1
                    ),
                ));
            }
        }
        ConfigError::check_range("cpu.hysteresis", self.hysteresis, 0.0, 0.5)?;
        if self.window == 0 || self.window > MAX_CPU_WINDOW {
            return Err(ConfigError::new(
                "cpu.window",
                self.window,
                format!("must be in 1..={MAX_CPU_WINDOW}"),
            ));
        }
        if self.interval.is_zero() {
            return Err(ConfigError::new(
                "cpu.interval",
                "0s",
                "must be greater than zero",
            ));
        }
        let thresholds = Thresholds::builder()
            .low(self.warm)
            .medium(self.start)
            .high(self.aggressive)
            .critical(self.emergency)
            .hysteresis(self.hysteresis)
            .build()?;
        let mut signal = SignalConfig::builder("cpu")
            .interval(self.interval)
            .ewma_alpha(1.0)
            .thresholds(thresholds);
        if let Some(bus) = self.events {
            signal = signal.events(bus);
        }
        Ok(CpuSignalConfig {
            signal: signal.build()?,
            thresholds,
            interval: self.interval,
            window: self.window,
        })
    }
}

/// Starts CPU signals with the CPU defaults.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_core::{ManualSource, PressureLevel};
/// use tower_pressure_cpu::CpuSignal;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let source = ManualSource::new(0.9);
/// let cpu = CpuSignal::spawn(source.clone());
/// tokio::time::sleep(Duration::from_millis(200)).await;
/// assert_eq!(cpu.level(), PressureLevel::High);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CpuSignal;

impl CpuSignal {
    /// A [`CpuSignalConfig`] builder with the CPU defaults; change what you
    /// need, `build()`, and pass it to [`spawn_with`](Self::spawn_with).
    pub fn config() -> CpuSignalConfigBuilder {
        CpuSignalConfig::builder()
    }

    /// Starts a sampler of `source` with [`CpuSignalConfig::default`]: every
    /// 50 ms, the mean of the last 4 samples.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use]
    pub fn spawn(source: impl Source) -> Signal {
        CpuSignal::spawn_with(source, &CpuSignalConfig::default())
    }

    /// Starts a sampler of `source` with `config`.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use]
    pub fn spawn_with(source: impl Source, config: &CpuSignalConfig) -> Signal {
        let source = Windowed::new(source, config.window);
        Signal::spawn_with(source, config.signal.clone())
    }
}
