//! [`HeapBudget`]: the process's own memory against a fixed budget.

use std::fmt;
use std::io;
use std::path::Path;

use tower_pressure_core::{ConfigError, Reading, Source};

use super::proc::ProcessRss;

/// The process's memory against a fixed budget of `max_bytes`, like Envoy's
/// `fixed_heap` resource monitor: for a service that wants to shed before the
/// container's limit, or that shares a machine with no limit at all.
///
/// By default the measure is the process's resident set size
/// ([`ProcessRss`]); [`with_measure`](HeapBudget::with_measure) takes any
/// `Fn() -> u64` of bytes in use instead (an allocator's statistics, a
/// counting allocator, the size of a cache).
///
/// ```
/// use tower_pressure_core::Source;
/// use tower_pressure_memory::HeapBudget;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut budget = HeapBudget::with_measure(1000, || 250)?;
/// assert_eq!(budget.sample()?.utilization(), 0.25);
/// assert!(HeapBudget::new(0).is_err());
/// # Ok(()) }
/// ```
pub struct HeapBudget {
    max_bytes: u64,
    measure: Measure,
}

enum Measure {
    /// Opened at the first sample, so that construction cannot fail.
    Rss(Option<ProcessRss>),
    Custom(Box<dyn Fn() -> u64 + Send>),
}

impl HeapBudget {
    /// The process's RSS against `max_bytes`.
    ///
    /// # Errors
    ///
    /// When `max_bytes` is zero.
    pub fn new(max_bytes: u64) -> Result<HeapBudget, ConfigError> {
        Ok(HeapBudget {
            max_bytes: check_max(max_bytes)?,
            measure: Measure::Rss(None),
        })
    }

    /// `measure()` bytes in use against `max_bytes`. `measure` runs on the
    /// sampler's interval, off the request path; it should be quick.
    ///
    /// # Errors
    ///
    /// When `max_bytes` is zero.
    pub fn with_measure<F>(max_bytes: u64, measure: F) -> Result<HeapBudget, ConfigError>
    where
        F: Fn() -> u64 + Send + 'static,
    {
        Ok(HeapBudget {
            max_bytes: check_max(max_bytes)?,
            measure: Measure::Custom(Box::new(measure)),
        })
    }

    /// The budget, in bytes.
    #[must_use]
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The bytes in use now.
    ///
    /// # Errors
    ///
    /// When the process's RSS cannot be read.
    pub fn used_bytes(&mut self) -> io::Result<u64> {
        match &mut self.measure {
            Measure::Custom(f) => Ok(f()),
            Measure::Rss(Some(rss)) => rss.bytes(),
            Measure::Rss(slot @ None) => {
                let mut rss = ProcessRss::open(Path::new("/"))?;
                let bytes = rss.bytes()?;
                *slot = Some(rss);
                Ok(bytes)
            }
        }
    }
}

fn check_max(max_bytes: u64) -> Result<u64, ConfigError> {
    if max_bytes == 0 {
        return Err(ConfigError::new(
            "heap_budget.max_bytes",
            0,
            "must be greater than zero",
        ));
    }
    Ok(max_bytes)
}

impl Source for HeapBudget {
    fn sample(&mut self) -> io::Result<Reading> {
        let used = self.used_bytes()?;
        Ok(Reading::from_used(used as f64, self.max_bytes as f64))
    }

    fn name(&self) -> &str {
        "heap-budget"
    }
}

impl fmt::Debug for HeapBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let measure = match self.measure {
            Measure::Rss(_) => "rss",
            Measure::Custom(_) => "custom",
        };
        f.debug_struct("HeapBudget")
            .field("max_bytes", &self.max_bytes)
            .field("measure", &measure)
            .finish()
    }
}
