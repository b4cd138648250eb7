//! Counters, queue-wait histograms and the hold-time estimate behind
//! [`Snapshot`](super::Snapshot).

use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;
use tower_pressure_core::{Priority, Reason};

/// The largest queue wait a histogram resolves, in microseconds (one hour).
const MAX_WAIT_MICROS: u64 = 3_600_000_000;
/// The memory of the mean hold time, in seconds: a new hold time weighs
/// `1 − e^(−Δt/τ)` against the mean, `Δt` the time since the last one,
/// within [`HOLD_MIN_WEIGHT`] and [`HOLD_MAX_WEIGHT`] — so about a second
/// while holds are measured more than ~5 times a second (at the floor, the
/// last hundred holds), and the last five or so when they come slower. Hold
/// times of a busy limit vary by the waits behind them (at 4 slots and 5
/// permits, between one and two units of work); a mean over the last few
/// holds moved the service rate estimate by ±8 %, and with it the rate left
/// to the lowest class served — a small difference of large rates — by more
/// than half, which shed its waiters as hopeless while the service idled.
const HOLD_MEMORY_SECS: f64 = 1.0;
/// The least weight of a new hold time, so that holds measured at the same
/// instant (a burst of releases) still move the mean.
const HOLD_MIN_WEIGHT: f64 = 0.01;
/// The most weight of a new hold time: after a quiet spell, one hold alone
/// does not replace what was measured before it (the service did not change
/// for being idle).
const HOLD_MAX_WEIGHT: f64 = 0.2;

/// Counts of what happened to the requests of one priority class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClassCounts {
    /// Admitted, at once or after waiting.
    pub admitted: u64,
    /// Refused because the queue was full.
    pub queue_full: u64,
    /// Timed out in the queue.
    pub timed_out: u64,
    /// Pushed out of the queue by a more important request.
    pub evicted: u64,
    /// Refused because their deadline could not be met.
    pub deadline_unmeetable: u64,
    /// Refused by emergency mode.
    pub emergency: u64,
}

impl ClassCounts {
    /// All refusals together.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.queue_full + self.timed_out + self.evicted + self.deadline_unmeetable + self.emergency
    }
}

#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) counts: [ClassCounts; 5],
    /// Of the refusals in `counts`, those at arrival that say nothing of
    /// the load (the request's own deadline, emergency mode): not arrivals
    /// for the arrival rates.
    pub(crate) not_load: [u64; 5],
    pub(crate) cancelled: u64,
    /// Queue waits of the requests that queued, in microseconds. Those
    /// admitted at once are counted by the gate and folded in as zeros when
    /// a snapshot reads this, keeping histogram writes off the fast path.
    waits: [Histogram<u64>; 5],
    /// The running mean hold time, and when its last sample came.
    mean_hold_secs: Option<(f64, Instant)>,
}

impl Stats {
    pub(crate) fn new() -> Stats {
        let hist = || {
            Histogram::new_with_bounds(1, MAX_WAIT_MICROS, 2)
                .expect("constant histogram bounds are valid")
        };
        Stats {
            counts: [ClassCounts::default(); 5],
            not_load: [0; 5],
            cancelled: 0,
            waits: [hist(), hist(), hist(), hist(), hist()],
            mean_hold_secs: None,
        }
    }

    /// Records the wait of a queued admission.
    pub(crate) fn waited(&mut self, p: Priority, waited: Duration) {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.waits[p.index()].saturating_record(micros);
    }

    /// The queue-wait histogram of class `p`, with the admissions that did
    /// not wait (all of `admitted` the histogram has not seen) as zeros.
    pub(crate) fn waits(&self, p: Priority, admitted: u64) -> Histogram<u64> {
        let mut h = self.waits[p.index()].clone();
        // Zero is within the histogram's range, so this cannot fail.
        let _ = h.record_n(0, admitted.saturating_sub(h.len()));
        h
    }

    pub(crate) fn refused(&mut self, p: Priority, reason: Reason) {
        let c = &mut self.counts[p.index()];
        match reason {
            Reason::QueueTimeout => c.timed_out += 1,
            Reason::Evicted => c.evicted += 1,
            Reason::DeadlineUnmeetable => c.deadline_unmeetable += 1,
            Reason::Emergency => c.emergency += 1,
            _ => c.queue_full += 1,
        }
    }

    /// Folds a measured hold time, released at `now`, into the running mean.
    pub(crate) fn held(&mut self, held: Duration, now: Instant) {
        let h = held.as_secs_f64();
        let mean = match self.mean_hold_secs {
            Some((m, last)) => {
                let dt = now.saturating_duration_since(last).as_secs_f64();
                let w =
                    (1.0 - (-dt / HOLD_MEMORY_SECS).exp()).clamp(HOLD_MIN_WEIGHT, HOLD_MAX_WEIGHT);
                w * h + (1.0 - w) * m
            }
            None => h,
        };
        self.mean_hold_secs = Some((mean, now));
    }

    /// The running mean of how long a permit is held; zero before any measurement.
    pub(crate) fn mean_hold(&self) -> Duration {
        let secs = self.mean_hold_secs.map_or(0.0, |(m, _)| m);
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO)
    }
}
