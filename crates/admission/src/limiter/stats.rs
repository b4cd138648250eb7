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
/// last hundred holds), and the last five or so when they come slower.
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

/// What the queue core counts, under the queue's lock.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) counts: [ClassCounts; 5],
    pub(crate) cancelled: u64,
    /// The running mean hold time, and when its last sample came.
    mean_hold_secs: Option<(f64, Instant)>,
}

impl Stats {
    pub(crate) fn new() -> Stats {
        Stats {
            counts: [ClassCounts::default(); 5],
            cancelled: 0,
            mean_hold_secs: None,
        }
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

/// Queue waits of the requests that queued, by class, in microseconds:
/// under a lock of their own, written by each waiter as it leaves with its
/// permit, so that reading them never holds up the queue. Those admitted
/// without waiting are counted by the gate and taken as zeros when read,
/// keeping histogram writes off the fast path.
#[derive(Debug)]
pub(crate) struct Waits([Histogram<u64>; 5]);

impl Waits {
    pub(crate) fn new() -> Waits {
        Waits(std::array::from_fn(|_| {
            Histogram::new_with_bounds(1, MAX_WAIT_MICROS, 2)
                .expect("constant histogram bounds are valid")
        }))
    }

    /// Records the wait of a queued admission.
    pub(crate) fn record(&mut self, p: Priority, waited: Duration) {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.0[p.index()].saturating_record(micros);
    }

    /// The `quantiles` of class `p`'s waits, counting as zeros the
    /// admissions (of `admitted` in all) that the histogram has not seen.
    pub(crate) fn quantiles<const N: usize>(
        &self,
        p: Priority,
        admitted: u64,
        quantiles: [f64; N],
    ) -> [Duration; N] {
        let h = &self.0[p.index()];
        let waited = h.len();
        let zeros = admitted.saturating_sub(waited);
        let total = (zeros + waited) as f64;
        quantiles.map(|q| {
            let rank = (q * total).ceil();
            if waited == 0 || rank <= zeros as f64 {
                return Duration::ZERO;
            }
            let within = ((rank - zeros as f64) / waited as f64).clamp(0.0, 1.0);
            Duration::from_micros(h.value_at_quantile(within))
        })
    }
}
