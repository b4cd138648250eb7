//! [`Highest`]: the higher of two sources.

use std::io;

use tower_pressure_core::{Reading, Source};

/// A [`Source`] that reads two others and reports the more pressed one: for
/// an async server, the tokio runtime's busy ratio *and* the container's
/// quota, so that it is throttled when either saturates.
///
/// When one of the two fails, the other's reading is used; only when both
/// fail does the sample fail (with the first one's error).
///
/// ```
/// use tower_pressure_core::{ManualSource, Source};
/// use tower_pressure_cpu::Highest;
///
/// let (runtime, machine) = (ManualSource::new(0.9), ManualSource::new(0.4));
/// let mut both = Highest::new(runtime.clone(), machine.clone());
/// assert_eq!(both.sample().unwrap().utilization(), 0.9);
/// runtime.set_failing(true);
/// assert_eq!(both.sample().unwrap().utilization(), 0.4);
/// ```
#[derive(Debug)]
pub struct Highest<A, B> {
    a: A,
    b: B,
    name: String,
}

impl<A: Source, B: Source> Highest<A, B> {
    /// The higher of `a` and `b`.
    pub fn new(a: A, b: B) -> Self {
        let name = format!("highest({}, {})", a.name(), b.name());
        Highest { a, b, name }
    }
}

impl<A: Source, B: Source> Source for Highest<A, B> {
    fn sample(&mut self) -> io::Result<Reading> {
        fn number(r: Reading) -> io::Result<Reading> {
            if r.utilization().is_nan() {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reading is not a number",
                ))
            } else {
                Ok(r)
            }
        }
        let a = self.a.sample().and_then(number);
        let b = self.b.sample().and_then(number);
        match (a, b) {
            (Ok(a), Ok(b)) => Ok(if b.utilization() > a.utilization() {
                b
            } else {
                a
            }),
            (Ok(r), Err(_)) | (Err(_), Ok(r)) => Ok(r),
            (Err(e), Err(_)) => Err(e),
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}
