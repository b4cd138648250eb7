//! [`Source`]: where a resource reading comes from, and [`ManualSource`].

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One reading of a resource: utilisation in `[0, 1]` plus, where the source
/// knows them, the raw figures it came from (bytes for memory, cores for CPU).
///
/// ```
/// use tower_pressure_core::Reading;
///
/// let r = Reading::from_used(3.0 * 1024.0, 4.0 * 1024.0);
/// assert_eq!(r.utilization(), 0.75);
/// assert_eq!(r.used(), Some(3072.0));
/// assert_eq!(Reading::new(1.7).utilization(), 1.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    utilization: f64,
    used: Option<f64>,
    capacity: Option<f64>,
}

impl Reading {
    /// A reading of `utilization`, clamped into `[0, 1]`. NaN stays NaN; a
    /// sampler treats a NaN reading as a failed sample.
    #[must_use]
    pub fn new(utilization: f64) -> Reading {
        Reading {
            utilization: if utilization.is_nan() {
                utilization
            } else {
                utilization.clamp(0.0, 1.0)
            },
            used: None,
            capacity: None,
        }
    }

    /// A reading of `used` out of `capacity` (any unit: bytes, cores).
    /// A capacity that is zero or not positive gives a NaN utilisation.
    #[must_use]
    pub fn from_used(used: f64, capacity: f64) -> Reading {
        let u = if capacity > 0.0 {
            used / capacity
        } else {
            f64::NAN
        };
        Reading {
            used: Some(used),
            capacity: Some(capacity),
            ..Reading::new(u)
        }
    }

    /// Utilisation in `[0, 1]` (or NaN for an invalid reading).
    #[must_use]
    pub fn utilization(&self) -> f64 {
        self.utilization
    }

    /// The amount in use, in the source's unit, if known.
    #[must_use]
    pub fn used(&self) -> Option<f64> {
        self.used
    }

    /// The capacity, in the source's unit, if known.
    #[must_use]
    pub fn capacity(&self) -> Option<f64> {
        self.capacity
    }
}

/// Where readings of one resource come from.
///
/// A [`Signal`](crate::Signal) sampler calls `sample` on its interval. An
/// error is not fatal: the signal keeps its last good reading and tries again
/// on the next tick.
///
/// Closures `FnMut() -> io::Result<Reading>` are sources.
pub trait Source: Send + 'static {
    /// Takes one reading.
    ///
    /// # Errors
    ///
    /// Whatever the underlying read fails with (a missing file, a parse error).
    fn sample(&mut self) -> io::Result<Reading>;

    /// A short name for logs (`"cgroup-v2-memory"`).
    fn name(&self) -> &str {
        "source"
    }
}

impl<F> Source for F
where
    F: FnMut() -> io::Result<Reading> + Send + 'static,
{
    fn sample(&mut self) -> io::Result<Reading> {
        self()
    }

    fn name(&self) -> &str {
        "closure"
    }
}

impl Source for Box<dyn Source> {
    fn sample(&mut self) -> io::Result<Reading> {
        (**self).sample()
    }

    fn name(&self) -> &str {
        (**self).name()
    }
}

/// A source whose reading is set by hand: for tests, demos and drills.
///
/// Clones share the value, so a test keeps one clone and hands the other to
/// [`Signal::spawn`](crate::Signal::spawn). To force a level on a signal fed
/// by a *real* source during an incident, use
/// [`Signal::set_override`](crate::Signal::set_override) instead.
///
/// ```
/// use tower_pressure_core::{ManualSource, Source};
///
/// let source = ManualSource::new(0.2);
/// let mut s = source.clone();
/// source.set(0.9);
/// assert_eq!(s.sample().unwrap().utilization(), 0.9);
/// source.set_failing(true);
/// assert!(s.sample().is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualSource {
    inner: Arc<ManualInner>,
}

#[derive(Debug, Default)]
struct ManualInner {
    bits: AtomicU64,
    failing: AtomicBool,
}

impl ManualSource {
    /// A source reading `utilization`.
    #[must_use]
    pub fn new(utilization: f64) -> ManualSource {
        let s = ManualSource::default();
        s.set(utilization);
        s
    }

    /// Sets the utilisation the next samples return.
    pub fn set(&self, utilization: f64) {
        self.inner
            .bits
            .store(utilization.to_bits(), Ordering::Relaxed);
    }

    /// The utilisation the next samples return.
    #[must_use]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.inner.bits.load(Ordering::Relaxed))
    }

    /// While `true`, samples fail with an I/O error (to test failure paths).
    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::Relaxed);
    }
}

impl Source for ManualSource {
    fn sample(&mut self) -> io::Result<Reading> {
        if self.inner.failing.load(Ordering::Relaxed) {
            return Err(io::Error::other("manual source set to fail"));
        }
        Ok(Reading::new(self.get()))
    }

    fn name(&self) -> &str {
        "manual"
    }
}
