//! [`MemoryShedConfig`]: which priorities each pressure level still admits.

use std::time::Duration;

use tower_pressure_core::{Cohort, ConfigError, MIN_RETRY_AFTER, PressureLevel, Priority};

/// The default lowest priority admitted per level, indexed by
/// [`PressureLevel::index`].
const DEFAULT_MIN_PRIORITY: [Priority; 5] = [
    Priority::Bulk,
    Priority::Bulk,
    Priority::Low,
    Priority::Normal,
    Priority::Critical,
];

/// The default `Retry-After` of a memory refusal.
const DEFAULT_RETRY_AFTER: Duration = MIN_RETRY_AFTER;

/// Which requests a [`MemoryShed`](crate::MemoryShed) still admits at each
/// pressure level.
///
/// Per level: the lowest priority admitted, and what fraction of that
/// boundary class's cohorts is admitted (DAGOR's priority × cohort
/// admission, so that part of a class can be shed rather than all of it).
/// Cohorts are ranked as [`Cohort::admission_level`] ranks them — a higher
/// cohort number is admitted longer — so a fraction `f` admits the cohorts
/// `128 − round(128·f) ..= 127` of the boundary class. Every class above the
/// boundary is admitted, every class below it refused.
///
/// A request is admitted when
/// `cohort.admission_level(priority) ≥ cutoff(level)`: one comparison after
/// the one atomic load of the level.
///
/// ```
/// use tower_pressure_core::{Cohort, PressureLevel, Priority};
/// use tower_pressure_memory::MemoryShedConfig;
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// // At High, admit only half of Normal (and everything above it).
/// let config = MemoryShedConfig::builder()
///     .cohort_fraction(PressureLevel::High, 0.5)
///     .build()?;
/// let low_cohort = Cohort::try_from(10).unwrap();
/// let high_cohort = Cohort::try_from(100).unwrap();
/// assert!(!config.admits(PressureLevel::High, Priority::Normal, low_cohort));
/// assert!(config.admits(PressureLevel::High, Priority::Normal, high_cohort));
/// assert!(config.admits(PressureLevel::High, Priority::High, low_cohort));
/// assert!(!config.admits(PressureLevel::High, Priority::Low, high_cohort));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryShedConfig {
    min_priority: [Priority; 5],
    cohort_fraction: [f64; 5],
    retry_after: Duration,
    cutoffs: [u16; 5],
}

impl MemoryShedConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> MemoryShedConfigBuilder {
        MemoryShedConfigBuilder {
            min_priority: DEFAULT_MIN_PRIORITY,
            cohort_fraction: [1.0; 5],
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }

    /// The lowest priority admitted at `level`.
    #[must_use]
    pub fn min_priority(&self, level: PressureLevel) -> Priority {
        self.min_priority[level.index()]
    }

    /// The fraction of the boundary class's cohorts admitted at `level`.
    #[must_use]
    pub fn cohort_fraction(&self, level: PressureLevel) -> f64 {
        self.cohort_fraction[level.index()]
    }

    /// The `Retry-After` of a refusal.
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// Whether a request of `priority` and `cohort` is admitted at `level`.
    #[inline]
    #[must_use]
    pub fn admits(&self, level: PressureLevel, priority: Priority, cohort: Cohort) -> bool {
        cohort.admission_level(priority) >= self.cutoff(level)
    }

    /// The smallest admission level admitted at `level`.
    #[inline]
    pub(crate) fn cutoff(&self, level: PressureLevel) -> u16 {
        self.cutoffs[level.index()]
    }
}

impl Default for MemoryShedConfig {
    fn default() -> Self {
        MemoryShedConfig::builder()
            .build()
            .expect("the defaults are valid")
    }
}

/// Builds a validated [`MemoryShedConfig`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryShedConfigBuilder {
    min_priority: [Priority; 5],
    cohort_fraction: [f64; 5],
    retry_after: Duration,
}

impl MemoryShedConfigBuilder {
    /// The lowest priority admitted at `level`. Defaults: `None` and `Low`
    /// admit everything, `Medium` refuses `Bulk`, `High` admits `Normal` and
    /// above, `Critical` only `Critical`.
    pub fn min_priority(mut self, level: PressureLevel, priority: Priority) -> Self {
        self.min_priority[level.index()] = priority;
        self
    }

    /// The fraction in `[0, 1]` of the boundary class's cohorts admitted at
    /// `level`. Default 1.0 (the whole class).
    pub fn cohort_fraction(mut self, level: PressureLevel, fraction: f64) -> Self {
        self.cohort_fraction[level.index()] = fraction;
        self
    }

    /// The `Retry-After` of a refusal (at least [`MIN_RETRY_AFTER`] is sent).
    /// Default 1 s.
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// When a cohort fraction is not a number in `[0, 1]`, when a higher
    /// level would admit more than a lower one (the table must tighten as
    /// pressure rises), or when `retry_after` is zero.
    pub fn build(self) -> Result<MemoryShedConfig, ConfigError> {
        let mut cutoffs = [0u16; 5];
        for level in PressureLevel::ALL {
            let i = level.index();
            let f =
                ConfigError::check_range(fraction_field(level), self.cohort_fraction[i], 0.0, 1.0)?;
            cutoffs[i] = cutoff(self.min_priority[i], f);
            if i > 0 && cutoffs[i] < cutoffs[i - 1] {
                let field = if self.min_priority[i] < self.min_priority[i - 1] {
                    priority_field(level)
                } else {
                    fraction_field(level)
                };
                return Err(ConfigError::new(
                    field,
                    format!("{} (cohort fraction {f})", self.min_priority[i]),
                    format!(
                        "must admit no more than at level {}, which admits {} (cohort fraction {})",
                        PressureLevel::from_index(i - 1),
                        self.min_priority[i - 1],
                        self.cohort_fraction[i - 1]
                    ),
                ));
            }
        }
        if self.retry_after.is_zero() {
            return Err(ConfigError::new(
                "memory_shed.retry_after",
                "0s",
                "must be greater than zero",
            ));
        }
        Ok(MemoryShedConfig {
            min_priority: self.min_priority,
            cohort_fraction: self.cohort_fraction,
            retry_after: self.retry_after,
            cutoffs,
        })
    }
}

/// The smallest admission level admitted when `priority` is the boundary
/// class and `fraction` of its cohorts (the highest ones) get in.
fn cutoff(priority: Priority, fraction: f64) -> u16 {
    let count = Cohort::COUNT as f64;
    // `fraction` is in [0, 1], so this is in 0..=128.
    let admitted = (fraction * count).round() as u16;
    priority as u16 * Cohort::COUNT as u16 + (Cohort::COUNT as u16 - admitted)
}

fn priority_field(level: PressureLevel) -> &'static str {
    match level {
        PressureLevel::None => "memory_shed.min_priority.none",
        PressureLevel::Low => "memory_shed.min_priority.low",
        PressureLevel::Medium => "memory_shed.min_priority.medium",
        PressureLevel::High => "memory_shed.min_priority.high",
        PressureLevel::Critical => "memory_shed.min_priority.critical",
    }
}

fn fraction_field(level: PressureLevel) -> &'static str {
    match level {
        PressureLevel::None => "memory_shed.cohort_fraction.none",
        PressureLevel::Low => "memory_shed.cohort_fraction.low",
        PressureLevel::Medium => "memory_shed.cohort_fraction.medium",
        PressureLevel::High => "memory_shed.cohort_fraction.high",
        PressureLevel::Critical => "memory_shed.cohort_fraction.critical",
    }
}
