//! [`Throttler`]: the client throttle's state and decision, without tower.

mod window;

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;
use tower_pressure_core::{Overloaded, Priority, Reason};

use crate::ThrottleConfig;
use crate::rng::SplitMix;
use window::Window;

/// The statistics of every priority and the random draws, shared by every
/// service made from one [`ThrottleLayer`](crate::ThrottleLayer).
#[derive(Debug)]
pub(crate) struct Throttler {
    config: ThrottleConfig,
    /// Epoch 0 begins here.
    origin: Instant,
    /// The bucket length in nanoseconds, at least 1 ms.
    bucket_nanos: u128,
    /// One window per priority, indexed by `Priority::index`: a class's
    /// calls contend only with their own class.
    windows: [Mutex<Window>; Priority::COUNT],
    rng: SplitMix,
}

impl Throttler {
    pub(crate) fn new(config: ThrottleConfig) -> Throttler {
        Throttler {
            origin: Instant::now(),
            bucket_nanos: config.bucket().as_nanos().max(1),
            windows: std::array::from_fn(|_| Mutex::new(Window::new(config.buckets()))),
            rng: SplitMix::seeded(config.seed()),
            config,
        }
    }

    pub(crate) fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Whether a call of `priority` may be sent now. A refused call is
    /// counted at once, as a call the service did not accept: the client
    /// remembers the pressure even while it sends nothing.
    pub(crate) fn admit(&self, priority: Priority) -> Result<(), Overloaded> {
        if !self.config.throttles(priority) {
            return Ok(());
        }
        let epoch = self.epoch(Instant::now());
        let mut w = self.window(priority);
        w.advance(epoch);
        let p = self.config.refusal_probability(w.requests(), w.accepts());
        // No draw at all while nothing is refused: the usual case costs a
        // lock and a clock read.
        if p > 0.0 && self.rng.next_f64() < p {
            w.record(epoch, false);
            return Err(Overloaded::new(Reason::ClientThrottled, priority));
        }
        Ok(())
    }

    /// Counts a call of `priority` the service answered, accepted or not.
    pub(crate) fn record(&self, priority: Priority, accepted: bool) {
        let epoch = self.epoch(Instant::now());
        self.window(priority).record(epoch, accepted);
    }

    /// The probability that a call of `priority` is refused now.
    pub(crate) fn refusal_probability(&self, priority: Priority) -> f64 {
        if !self.config.throttles(priority) {
            return 0.0;
        }
        let epoch = self.epoch(Instant::now());
        let mut w = self.window(priority);
        w.advance(epoch);
        self.config.refusal_probability(w.requests(), w.accepts())
    }

    fn epoch(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since / self.bucket_nanos).unwrap_or(u64::MAX)
    }

    fn window(&self, priority: Priority) -> MutexGuard<'_, Window> {
        // Nothing panics while the lock is held; a poisoned lock still
        // holds consistent counts.
        self.windows[priority.index()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
