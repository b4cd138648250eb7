//! The tuner's timer task: [`Tuner::spawn`] and its [`TunerHandle`].

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Decision, PerformanceSample, Tuner};

/// Where the tuner's samples come from, pulled once per interval.
///
/// Implemented for every `FnMut() -> Option<PerformanceSample> + Send`
/// closure, so the tuner stays apart from how the numbers are measured (a
/// latency histogram, the limiter's snapshot, the signals' utilisation).
/// `None` means "no sample this interval" and is skipped.
pub trait PerformanceSource: Send + 'static {
    /// The measurements of the interval that just ended.
    fn sample(&mut self) -> Option<PerformanceSample>;
}

impl<F> PerformanceSource for F
where
    F: FnMut() -> Option<PerformanceSample> + Send + 'static,
{
    fn sample(&mut self) -> Option<PerformanceSample> {
        self()
    }
}

impl Tuner {
    /// Starts the tuner's task: every [`interval`](Tuner::interval), the
    /// first one interval from now, it pulls a sample from `source` and
    /// passes it to [`observe`](Tuner::observe).
    ///
    /// The task runs until the returned handle is dropped. A source that
    /// returns `None` or panics skips its interval; the tuner keeps running.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_pressure_adaptive::{PerformanceSample, Tuner};
    /// use tower_pressure_admission::PriorityLimiter;
    /// use tower_pressure_core::{Reading, Signal, SignalConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let limiter = PriorityLimiter::builder().max_queue(1000).build()?;
    /// let memory = Signal::new(SignalConfig::builder("memory").build()?);
    /// memory.record(Reading::new(0.4));
    /// let tuner = Tuner::builder()
    ///     .memory(memory.clone())
    ///     .queue(limiter.limit_handle())
    ///     .build()?;
    ///
    /// // The numbers come from wherever you measure them; here, the memory
    /// // signal and fixed figures.
    /// let handle = tuner.spawn(move || {
    ///     Some(PerformanceSample {
    ///         latency: Duration::from_millis(40),
    ///         throughput: 250.0,
    ///         error_rate: 0.0,
    ///         memory: memory.utilization(),
    ///         cpu: 0.3,
    ///     })
    /// });
    /// // The first sample is taken one interval (10 s) in.
    /// tokio::time::sleep(Duration::from_secs(11)).await;
    /// assert!(handle.last_decision().is_some());
    /// drop(handle); // stops the task
    /// # Ok(()) }
    /// ```
    #[must_use = "dropping the handle stops the tuner"]
    pub fn spawn(mut self, mut source: impl PerformanceSource) -> TunerHandle {
        let (tx, rx) = watch::channel(None);
        let interval = self.interval;
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                // A panicking source is treated like one without a sample.
                let sample = catch_unwind(AssertUnwindSafe(|| source.sample()));
                if let Ok(Some(sample)) = sample {
                    let decision = self.observe(sample);
                    tx.send_replace(Some(decision));
                }
            }
        });
        TunerHandle {
            decisions: rx,
            task,
        }
    }
}

/// Owns a running tuner task; dropping it stops the task.
pub struct TunerHandle {
    decisions: watch::Receiver<Option<Decision>>,
    task: JoinHandle<()>,
}

impl TunerHandle {
    /// The decision of the last sample, if any yet.
    #[must_use]
    pub fn last_decision(&self) -> Option<Decision> {
        self.decisions.borrow().clone()
    }

    /// A subscription to the decisions, one per sample.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Option<Decision>> {
        self.decisions.clone()
    }
}

impl Drop for TunerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for TunerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunerHandle")
            .field("last_decision", &*self.decisions.borrow())
            .field("finished", &self.task.is_finished())
            .finish()
    }
}
