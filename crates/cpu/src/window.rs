//! [`Windowed`]: the moving mean that smooths the CPU signal.

use std::collections::VecDeque;
use std::io;

use tower_pressure_core::{Reading, Source};

/// A [`Source`] that reports the mean of the last `window` good readings of
/// another: the smoothing of the CPU signal.
///
/// A failed sample is passed on and does not enter the window. When the
/// readings carry raw figures, the result carries the mean utilisation times
/// the latest capacity as `used`, and the latest capacity.
///
/// ```
/// use tower_pressure_core::{ManualSource, Source};
/// use tower_pressure_cpu::Windowed;
///
/// let source = ManualSource::new(0.0);
/// let mut w = Windowed::new(source.clone(), 4);
/// assert_eq!(w.sample().unwrap().utilization(), 0.0);
/// source.set(1.0);
/// assert_eq!(w.sample().unwrap().utilization(), 0.5);
/// ```
#[derive(Debug)]
pub struct Windowed<S> {
    inner: S,
    window: usize,
    recent: VecDeque<f64>,
}

impl<S: Source> Windowed<S> {
    /// The mean of the last `window` readings of `inner` (a `window` of 0
    /// counts as 1).
    pub fn new(inner: S, window: usize) -> Self {
        let window = window.max(1);
        Windowed {
            inner,
            window,
            recent: VecDeque::with_capacity(window),
        }
    }

    /// The wrapped source.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped source, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: Source> Source for Windowed<S> {
    fn sample(&mut self) -> io::Result<Reading> {
        let r = self.inner.sample()?;
        let u = r.utilization();
        if u.is_nan() {
            return Ok(r);
        }
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(u);
        // Summed afresh each time (at most `window` additions), so no
        // float error builds up over a long run.
        let sum: f64 = self.recent.iter().sum();
        let mean = (sum / self.recent.len() as f64).clamp(0.0, 1.0);
        Ok(match r.capacity() {
            Some(cap) => Reading::from_used(mean * cap, cap),
            None => Reading::new(mean),
        })
    }

    fn name(&self) -> &str {
        self.inner.name()
    }
}
