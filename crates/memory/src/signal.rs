//! [`MemorySignal`]: the memory signal and its defaults: fast sampling, no
//! smoothing.

use std::time::Duration;

use tower_pressure_core::{Signal, SignalConfig, SignalConfigBuilder, Source};

/// The memory sampler's default interval: a reading that crosses a
/// threshold is acted on within one interval. Reading a cgroup or `/proc`
/// file costs microseconds, so 20 samples a second cost nothing measurable.
const DEFAULT_MEMORY_INTERVAL: Duration = Duration::from_millis(50);

/// The memory signal's default EWMA weight: no smoothing (see
/// [`MemorySignal::config`]).
const DEFAULT_MEMORY_EWMA_ALPHA: f64 = 1.0;

/// Starts memory [`Signal`]s, in the same shape as the CPU crate's
/// `CpuSignal`: [`spawn`](Self::spawn) with the defaults,
/// [`spawn_with`](Self::spawn_with) with a [`config`](Self::config) of
/// your own.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_core::{ManualSource, PressureLevel};
/// use tower_pressure_memory::MemorySignal;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let memory = MemorySignal::spawn(ManualSource::new(0.9));
/// tokio::time::sleep(Duration::from_millis(100)).await;
/// assert_eq!(memory.level(), PressureLevel::High);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MemorySignal;

impl MemorySignal {
    /// A [`SignalConfig`] builder named `"memory"` with the memory defaults;
    /// change what you need and `build()`.
    ///
    /// - interval 50 ms: a reading that crosses a threshold is acted on
    ///   within one interval, and reading a cgroup or `/proc` file costs
    ///   microseconds;
    /// - EWMA weight 1.0, no smoothing: memory usage is not noisy the way
    ///   CPU is, and an allocation burst is exactly what must be acted on
    ///   before the OOM killer does. The thresholds' hysteresis keeps the
    ///   level from flapping; PSI is already averaged by the kernel. With
    ///   any weight below 1 a reading just past a threshold would take
    ///   several samples to register;
    /// - the default [`Thresholds`](tower_pressure_core::Thresholds) (0.60,
    ///   0.75, 0.85, 0.95).
    ///
    /// ```
    /// use tower_pressure_core::Thresholds;
    /// use tower_pressure_memory::MemorySignal;
    ///
    /// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
    /// let config = MemorySignal::config()
    ///     .thresholds(Thresholds::builder().critical(0.9).build()?)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn config() -> SignalConfigBuilder {
        SignalConfig::builder("memory")
            .interval(DEFAULT_MEMORY_INTERVAL)
            .ewma_alpha(DEFAULT_MEMORY_EWMA_ALPHA)
    }

    /// Starts a sampler of `source` with the memory defaults
    /// ([`config`](Self::config)). Pass a
    /// [`MemorySource::auto()`](crate::MemorySource::auto) for the machine's
    /// best source, or a [`HeapBudget`](crate::HeapBudget).
    ///
    /// The sampler is one task on the current runtime; it stops when the
    /// last handle to the signal is dropped.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use]
    pub fn spawn(source: impl Source) -> Signal {
        let config = MemorySignal::config()
            .build()
            .expect("the memory defaults are valid");
        Signal::spawn_with(source, config)
    }

    /// Starts a sampler of `source` with `config` (built from
    /// [`config`](Self::config)).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use]
    pub fn spawn_with(source: impl Source, config: SignalConfig) -> Signal {
        Signal::spawn_with(source, config)
    }
}
