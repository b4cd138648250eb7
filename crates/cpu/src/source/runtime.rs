//! [`RuntimeBusy`]: how busy the tokio runtime's workers are.

use std::io;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeMetrics};
use tower_pressure_core::Reading;

use super::parse::ratio;

/// The tokio runtime's busy ratio: the time its worker threads spent
/// running tasks since the previous sample, ÷ (wall time × workers). For an
/// async server this is the most direct CPU signal: it is the CPU *its
/// executor* spends, it rises before the machine does when the runtime has
/// fewer workers than cores, and it does not see other processes.
///
/// Uses [`RuntimeMetrics::worker_total_busy_duration`], stable since tokio
/// 1.45 (no `tokio_unstable` needed) on targets with 64-bit atomics.
///
/// The reading's figures are in workers: `used` = busy workers, `capacity` =
/// [`RuntimeMetrics::num_workers`].
///
/// **Limits.** tokio adds a worker's busy time when it finishes a batch of
/// tasks or runs its periodic maintenance (every 61 polls by default). A
/// task that runs for long without yielding is counted only once it yields,
/// so a worker blocked in one long poll reads idle until then. Blocking
/// threads (`spawn_blocking`) are not workers and are not counted.
///
/// **First sample.** Creating the source takes the baseline. A sample taken
/// less than a millisecond after the previous point returns the previous
/// reading — 0 before any — and keeps the baseline.
///
/// Wall time is measured on the real clock, like tokio's busy time, so the
/// figure is right even while tokio's clock is paused in tests.
#[derive(Debug)]
pub struct RuntimeBusy {
    metrics: RuntimeMetrics,
    workers: usize,
    prev: (RealInstant, Duration),
    last: Option<Reading>,
}

impl RuntimeBusy {
    /// The busy ratio of the runtime `handle` belongs to.
    #[must_use]
    pub fn new(handle: &Handle) -> RuntimeBusy {
        let metrics = handle.metrics();
        let workers = metrics.num_workers().max(1);
        let busy = total_busy(&metrics, workers);
        RuntimeBusy {
            metrics,
            workers,
            prev: (real_now(), busy),
            last: None,
        }
    }

    /// The busy ratio of the runtime this is called from.
    ///
    /// # Errors
    ///
    /// `NotFound` when called outside a tokio runtime.
    pub fn current() -> io::Result<RuntimeBusy> {
        let handle = Handle::try_current()
            .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))?;
        Ok(RuntimeBusy::new(&handle))
    }

    pub(crate) fn sample_reading(&mut self) -> Reading {
        let now = (real_now(), total_busy(&self.metrics, self.workers));
        #[expect(
            clippy::cast_precision_loss,
            reason = "a runtime has far fewer than 2^52 workers"
        )]
        let workers = self.workers as f64;
        let span = now.0.saturating_duration_since(self.prev.0);
        if span < super::MIN_SPAN {
            return self
                .last
                .unwrap_or_else(|| Reading::from_used(0.0, workers));
        }
        let busy = now.1.saturating_sub(self.prev.1);
        self.prev = now;
        let busy_workers = ratio(nanos(busy), nanos(span).max(1));
        let reading = Reading::from_used(busy_workers.min(workers), workers);
        self.last = Some(reading);
        reading
    }

    pub(crate) fn describe(&self) -> String {
        format!("tokio runtime, {} workers", self.workers)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn total_busy(metrics: &RuntimeMetrics, workers: usize) -> Duration {
    (0..workers)
        .map(|w| metrics.worker_total_busy_duration(w))
        .sum()
}

#[expect(
    clippy::disallowed_methods,
    reason = "tokio measures busy time on the real clock; wall time must match it even when tokio's clock is paused"
)]
fn real_now() -> RealInstant {
    RealInstant::now()
}

/// tokio's busy time is on the real clock, so the wall time it is divided by
/// must be too, even while tokio's clock is paused.
type RealInstant = std::time::Instant; // tidy: real clock, as tokio's busy time
