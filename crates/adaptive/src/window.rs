//! The lock-free accumulator of the current window.
//!
//! Recording a request is a handful of relaxed atomic operations; no lock is
//! taken. Closing a window swaps the accumulators to zero one by one, so a
//! request recorded while a window closes can land half in the old window
//! and half in the new one (say, its count in one and its latency in the
//! other). Windows hold at least `min_samples` requests, so one such request
//! moves a mean by a fraction of itself at most; it is never lost twice or
//! counted twice.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use crate::Sample;

/// Drops are counted in the upper half of `counts`, successes in the lower.
const DROP_ONE: u64 = 1 << 32;
const COUNT_MASK: u64 = DROP_ONE - 1;

#[derive(Debug)]
pub(crate) struct Window {
    epoch: Instant,
    /// Microseconds since `epoch` at which the window opened.
    opened: AtomicU64,
    counts: AtomicU64,
    sum_micros: AtomicU64,
    min_micros: AtomicU64,
    max_in_flight: AtomicUsize,
}

impl Window {
    pub(crate) fn new(now: Instant) -> Window {
        Window {
            epoch: now,
            opened: AtomicU64::new(0),
            counts: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            min_micros: AtomicU64::new(u64::MAX),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// Records a success of latency `rtt`; returns the successes and drops
    /// in the window so far.
    pub(crate) fn success(&self, rtt: Duration, in_flight: usize) -> u64 {
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Relaxed);
        // A plain load first: most requests change neither extreme, and a
        // load is cheaper than a read-modify-write.
        if micros < self.min_micros.load(Relaxed) {
            self.min_micros.fetch_min(micros, Relaxed);
        }
        self.peak(in_flight);
        total(self.counts.fetch_add(1, Relaxed) + 1)
    }

    /// Records a drop; returns the successes and drops in the window so far.
    pub(crate) fn drop(&self, in_flight: usize) -> u64 {
        self.peak(in_flight);
        total(self.counts.fetch_add(DROP_ONE, Relaxed) + DROP_ONE)
    }

    fn peak(&self, in_flight: usize) {
        if in_flight > self.max_in_flight.load(Relaxed) {
            self.max_in_flight.fetch_max(in_flight, Relaxed);
        }
    }

    /// Successes and drops in the window so far.
    pub(crate) fn total(&self) -> u64 {
        total(self.counts.load(Relaxed))
    }

    /// How long the window has been open at `now`.
    pub(crate) fn age(&self, now: Instant) -> Duration {
        let opened = self.opened.load(Relaxed);
        Duration::from_micros(self.micros(now).saturating_sub(opened))
    }

    /// Closes the window at `now` and opens the next. The caller holds the
    /// driver's lock, so only one close runs at a time.
    pub(crate) fn close(&self, now: Instant) -> Sample {
        let duration = self.age(now);
        self.opened.store(self.micros(now), Relaxed);
        let counts = self.counts.swap(0, Relaxed);
        let sum = self.sum_micros.swap(0, Relaxed);
        let min = self.min_micros.swap(u64::MAX, Relaxed);
        let max_in_flight = self.max_in_flight.swap(0, Relaxed);
        let successes = (counts & COUNT_MASK) as usize;
        let dropped = (counts >> 32) as usize;
        let (min_rtt, avg_rtt) = if successes == 0 {
            (None, None)
        } else {
            let avg = sum / successes as u64;
            // A success racing the close may leave its count here and its
            // latency in the next window: then the mean stands in for the
            // minimum.
            let min = if min == u64::MAX { avg } else { min.min(avg) };
            (
                Some(Duration::from_micros(min)),
                Some(Duration::from_micros(avg)),
            )
        };
        Sample {
            at: now,
            duration,
            min_rtt,
            avg_rtt,
            successes,
            dropped,
            max_in_flight,
        }
    }
}

fn total(counts: u64) -> u64 {
    (counts & COUNT_MASK) + (counts >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_closed_window_reports_min_mean_drops_and_peak_in_flight() {
        let w = Window::new(Instant::now());
        w.success(Duration::from_millis(10), 3);
        w.success(Duration::from_millis(30), 7);
        assert_eq!(w.drop(5), 3);
        tokio::time::advance(Duration::from_secs(1)).await;
        let s = w.close(Instant::now());
        assert_eq!(s.min_rtt, Some(Duration::from_millis(10)));
        assert_eq!(s.avg_rtt, Some(Duration::from_millis(20)));
        assert_eq!((s.successes, s.dropped, s.max_in_flight), (2, 1, 7));
        assert_eq!(s.duration, Duration::from_secs(1));
        let empty = w.close(Instant::now());
        assert_eq!((empty.count(), empty.avg_rtt), (0, None));
    }
}
