//! [`MemoryPressure`]: for handlers that degrade instead of refusing.

use tower_pressure_core::{PressureLevel, Signal};

/// The default level from which [`MemoryPressure::is_under_pressure`] is
/// true.
const DEFAULT_UNDER_PRESSURE_AT: PressureLevel = PressureLevel::Medium;

/// For handlers that degrade instead of refusing: whether memory is pressed.
/// A cheap `Clone`; one atomic load per question.
///
/// ```
/// use tower_pressure_core::{PressureLevel, Signal};
/// use tower_pressure_memory::{MemoryPressure, MemorySignal};
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let memory = Signal::new(MemorySignal::config().build()?);
/// let pressure = MemoryPressure::new(memory.clone());
/// assert!(!pressure.is_under_pressure());
/// memory.set_override(Some(PressureLevel::Medium));
/// assert!(pressure.is_under_pressure()); // e.g. skip the thumbnail, answer from cache
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryPressure {
    signal: Signal,
    at: PressureLevel,
}

impl MemoryPressure {
    /// Pressed from [`PressureLevel::Medium`] up; change it with
    /// [`at`](Self::at).
    #[must_use]
    pub fn new(signal: Signal) -> Self {
        MemoryPressure {
            signal,
            at: DEFAULT_UNDER_PRESSURE_AT,
        }
    }

    /// Pressed from `level` up.
    #[must_use]
    pub fn at(mut self, level: PressureLevel) -> Self {
        self.at = level;
        self
    }

    /// Whether the memory level is at or above the configured one.
    #[inline]
    #[must_use]
    pub fn is_under_pressure(&self) -> bool {
        self.signal.level() >= self.at
    }

    /// The memory level now.
    #[must_use]
    pub fn level(&self) -> PressureLevel {
        self.signal.level()
    }
}
