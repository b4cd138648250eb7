//! [`AdaptiveLimit`]: closes windows and writes the algorithm's limit to the
//! admission limiter through its [`LimitHandle`].

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use tokio::time::Instant;
use tower_pressure_core::{ConfigError, Event, EventBus, LimitHandle};

use crate::window::Window;
use crate::{AdaptiveLayer, LimitAlgorithm, Outcome, Sample};

/// Default shortest window, 100 ms (Envoy's adaptive concurrency filter
/// samples every 100 ms; Netflix's `WindowedLimit` uses 1 s). Short enough
/// that a limit follows a capacity change in a few seconds; a window also
/// waits for 10 requests, so a quiet service's windows
/// are longer.
pub(crate) const DEFAULT_MIN_WINDOW: Duration = Duration::from_millis(100);
/// Default fewest requests in a window (Netflix's `WindowedLimit`: 10).
pub(crate) const DEFAULT_MIN_SAMPLES: usize = 10;
/// Default latency below which a success is not a sample (Netflix: 100 µs).
pub(crate) const DEFAULT_MIN_RTT: Duration = Duration::from_micros(100);
/// The default [`cancel_objective`](AdaptiveLimitBuilder::cancel_objective),
/// 1 s (the admission limiter's default queue timeout per class): a request
/// cancelled after running this long counts as a drop.
pub(crate) const DEFAULT_CANCEL_OBJECTIVE: Duration = Duration::from_secs(1);

/// Drives an admission limiter's concurrency limit from the latencies and
/// outcomes of the requests it admitted.
///
/// The [`AdaptiveLayer`] made by [`layer`](Self::layer) records every
/// request that reaches it; it belongs *inside* the admission layer, so it
/// measures admitted work only. Requests are gathered into windows; a window
/// closes once it is at least `min_window` long **and** holds at least
/// `min_samples` counted requests, and then the [`LimitAlgorithm`] turns it
/// into a new limit, which is written through the [`LimitHandle`].
///
/// This handle is also the operator's: [`pin`](Self::pin) a limit,
/// [`freeze`](Self::freeze) adaptation. Clones share one state.
///
/// # Windows
///
/// Netflix's `WindowedLimit` closes a window after a fixed time (1 s) and
/// *discards* it if it holds fewer than 10 samples. Here a window stays open
/// until it has both the time and the samples: a quiet service still adapts,
/// only more slowly, and a window is never thrown away. A success faster
/// than `min_rtt` (100 µs) is not counted (a cache hit says nothing of
/// capacity); a drop always is.
///
/// Each algorithm moves the limit a bounded step per window (Aimd +1,
/// Gradient2 about `queue_size × smoothing` = +0.8, Vegas up to +6, the
/// gradient controller +√limit; [`Bottleneck`](crate::Bottleneck) jumps to
/// the capacity once a window queues), so the time to converge scales with
/// the window: with the default 100 ms windows (Envoy's sample interval) a
/// limit 40 below the ideal takes 4 s under Aimd; with Netflix's 1 s, 40 s.
/// A window should span a few request latencies: services slower than
/// ~30 ms a request may want a longer `min_window`.
///
/// # Cost on the request path
///
/// Recording is a few relaxed atomic operations (count, latency sum and
/// minimum, drops, peak in flight) and no lock. The request that finds the
/// window complete closes it under a `try_lock`; a request that finds the
/// lock taken just leaves. No background task: the limit moves only when
/// there are requests to learn from, the runtime is not touched behind the
/// user's back, and paused-time tests see every step.
///
/// # Example
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_pressure_adaptive::{AdaptiveLimit, Gradient2};
/// use tower_pressure_core::LimitHandle;
/// # use std::sync::atomic::{AtomicUsize, Ordering};
/// # #[derive(Default)] struct Fixed(AtomicUsize);
/// # impl tower_pressure_core::LimitControl for Fixed {
/// #     fn limit(&self) -> usize { self.0.load(Ordering::Relaxed) }
/// #     fn set_limit(&self, n: usize) { self.0.store(n.max(1), Ordering::Relaxed) }
/// #     fn in_flight(&self) -> usize { 0 }
/// #     fn queue_len(&self) -> usize { 0 }
/// #     fn max_queue(&self) -> usize { 0 }
/// #     fn set_max_queue(&self, _: usize) {}
/// #     fn emergency(&self) -> bool { false }
/// #     fn set_emergency(&self, _: bool) {}
/// # }
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let limiter = LimitHandle::new(Fixed::default()); // e.g. `PriorityLimiter::limit_handle()`
/// let adaptive = AdaptiveLimit::builder(Gradient2::default(), limiter)
///     .min_window(std::time::Duration::from_millis(500))
///     .build()?;
/// let layer = adaptive.layer(); // inside the admission layer
/// # let _ = layer;
/// adaptive.pin(50); // an operator takes over...
/// adaptive.unpin(); // ...and hands back
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AdaptiveLimit {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    window: Window,
    min_window: Duration,
    min_samples: u64,
    min_rtt: Duration,
    pub(crate) cancel_objective: Option<Duration>,
    target: LimitHandle,
    in_flight: AtomicUsize,
    control: Mutex<Control>,
    frozen: AtomicBool,
    events: Option<EventBus>,
}

struct Control {
    algorithm: Box<dyn LimitAlgorithm>,
    pinned: Option<usize>,
    windows: u64,
    last: Option<Sample>,
}

/// Builds an [`AdaptiveLimit`].
#[must_use]
pub struct AdaptiveLimitBuilder {
    algorithm: Box<dyn LimitAlgorithm>,
    target: LimitHandle,
    min_window: Duration,
    min_samples: usize,
    min_rtt: Duration,
    cancel_objective: Option<Duration>,
    start_at_limiter: bool,
    events: Option<EventBus>,
}

impl AdaptiveLimitBuilder {
    /// Whether the algorithm starts from the limit the limiter has when the
    /// driver is built (default `true`: adding an adaptive limit keeps the
    /// limit you configured until the first window says otherwise) or from
    /// its own builder's initial limit (`false`).
    pub fn start_at_limiter(mut self, on: bool) -> Self {
        self.start_at_limiter = on;
        self
    }

    /// The shortest a window may be (default 100 ms). Zero closes windows on
    /// `min_samples` alone.
    pub fn min_window(mut self, min_window: Duration) -> Self {
        self.min_window = min_window;
        self
    }

    /// The fewest counted requests in a window, at least 1 (default 10).
    pub fn min_samples(mut self, min_samples: usize) -> Self {
        self.min_samples = min_samples;
        self
    }

    /// Successes faster than this are not counted (default 100 µs).
    pub fn min_rtt(mut self, min_rtt: Duration) -> Self {
        self.min_rtt = min_rtt;
        self
    }

    /// A request cancelled (its response future dropped: the client gave
    /// up, a timeout above fired) after running at least this long counts
    /// as a drop: it was too slow, and leaving it out would censor exactly
    /// the slowest requests of an overload. Cancelled sooner, it is not
    /// counted. The request's own deadline counts instead when it is
    /// sooner (the class objective, when classification sets per-class
    /// deadlines). Default
    /// 1 s; `None`: a cancellation never counts.
    pub fn cancel_objective(mut self, objective: Option<Duration>) -> Self {
        self.cancel_objective = objective;
        self
    }

    /// Emits [`Event::LimitChanged`] on `bus` whenever this driver changes
    /// the limit. (The admission limiter emits its own on its own bus, if it
    /// has one; give the bus to one of them.)
    pub fn events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    /// The driver. Unless [`start_at_limiter`](Self::start_at_limiter) is
    /// off, the algorithm starts from the limiter's limit; the algorithm's
    /// limit is then written to the limiter at once.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for `min_samples` 0 (`"adaptive.min_samples"`) or a
    /// zero `cancel_objective` (`"adaptive.cancel_objective"`).
    pub fn build(self) -> Result<AdaptiveLimit, ConfigError> {
        if self.min_samples == 0 {
            return Err(ConfigError::new(
                "adaptive.min_samples",
                0,
                "must be at least 1",
            ));
        }
        if self.cancel_objective.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::new(
                "adaptive.cancel_objective",
                "0s",
                "must be more than zero (None: cancellations never count)",
            ));
        }
        let mut algorithm = self.algorithm;
        if self.start_at_limiter {
            let current = self.target.limit();
            if !algorithm.start_at(current) {
                tracing::warn!(
                    limiter = current,
                    algorithm = algorithm.limit(),
                    "this limit algorithm cannot start from the limiter's limit: \
                     the adaptive driver replaces it with the algorithm's initial limit"
                );
            }
        }
        let initial = algorithm.limit();
        let adaptive = AdaptiveLimit {
            shared: Arc::new(Shared {
                window: Window::new(Instant::now()),
                min_window: self.min_window,
                min_samples: self.min_samples as u64,
                min_rtt: self.min_rtt,
                cancel_objective: self.cancel_objective,
                target: self.target,
                in_flight: AtomicUsize::new(0),
                control: Mutex::new(Control {
                    algorithm,
                    pinned: None,
                    windows: 0,
                    last: None,
                }),
                frozen: AtomicBool::new(false),
                events: self.events,
            }),
        };
        adaptive.shared.apply(initial);
        Ok(adaptive)
    }
}

impl fmt::Debug for AdaptiveLimitBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimitBuilder")
            .field("algorithm", &self.algorithm)
            .field("min_window", &self.min_window)
            .field("min_samples", &self.min_samples)
            .field("min_rtt", &self.min_rtt)
            .field("cancel_objective", &self.cancel_objective)
            .finish_non_exhaustive()
    }
}

impl AdaptiveLimit {
    /// A driver of `target`'s limit by `algorithm`, with the default windows
    /// (at least 100 ms and 10 requests), starting from the limit `target` has
    /// now.
    pub fn new(algorithm: impl LimitAlgorithm, target: LimitHandle) -> AdaptiveLimit {
        AdaptiveLimit::builder(algorithm, target)
            .build()
            .expect("the default windows are valid")
    }

    /// A builder, to set the windows and an event bus.
    pub fn builder(algorithm: impl LimitAlgorithm, target: LimitHandle) -> AdaptiveLimitBuilder {
        AdaptiveLimitBuilder {
            algorithm: Box::new(algorithm),
            target,
            min_window: DEFAULT_MIN_WINDOW,
            min_samples: DEFAULT_MIN_SAMPLES,
            min_rtt: DEFAULT_MIN_RTT,
            cancel_objective: Some(DEFAULT_CANCEL_OBJECTIVE),
            start_at_limiter: true,
            events: None,
        }
    }

    /// The recording layer and this handle, for one-line setups.
    pub fn pair(
        algorithm: impl LimitAlgorithm,
        target: LimitHandle,
    ) -> (AdaptiveLayer, AdaptiveLimit) {
        let adaptive = AdaptiveLimit::new(algorithm, target);
        (adaptive.layer(), adaptive)
    }

    /// The recording layer, with the default [`HttpClassifier`](crate::HttpClassifier)
    /// (see [`AdaptiveLayer`]). Every service it makes feeds this one
    /// driver.
    #[must_use]
    pub fn layer(&self) -> AdaptiveLayer {
        AdaptiveLayer::new(self.clone())
    }

    /// The limit in force at the limiter.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.shared.target.limit()
    }

    /// The limit the algorithm wants (which differs from [`limit`](Self::limit)
    /// while pinned).
    #[must_use]
    pub fn algorithm_limit(&self) -> usize {
        self.shared.lock().algorithm.limit()
    }

    /// Requests in flight through the recording layer.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Windows closed so far.
    #[must_use]
    pub fn windows(&self) -> u64 {
        self.shared.lock().windows
    }

    /// The last closed window, if any.
    #[must_use]
    pub fn last_sample(&self) -> Option<Sample> {
        self.shared.lock().last
    }

    /// Pins the limit to `limit` (at least 1) until [`unpin`](Self::unpin).
    /// While pinned, windows close and are discarded: the algorithm neither
    /// learns from traffic it does not control nor moves the limit.
    pub fn pin(&self, limit: usize) {
        let limit = limit.max(1);
        let mut control = self.shared.lock();
        control.pinned = Some(limit);
        self.shared.apply(limit);
    }

    /// Ends a pin: the algorithm's limit (from before the pin) is written
    /// back at once and adaptation goes on. While frozen, the pinned value
    /// stays in force until [`resume`](Self::resume) and the next window.
    pub fn unpin(&self) {
        let mut control = self.shared.lock();
        if control.pinned.take().is_some() && !self.is_frozen() {
            let limit = control.algorithm.limit();
            self.shared.apply(limit);
        }
    }

    /// The pinned limit, if pinned.
    #[must_use]
    pub fn pinned(&self) -> Option<usize> {
        self.shared.lock().pinned
    }

    /// Freezes adaptation: the limit in force stays, windows close and are
    /// discarded, until [`resume`](Self::resume).
    pub fn freeze(&self) {
        let _control = self.shared.lock();
        self.shared.frozen.store(true, Ordering::Relaxed);
    }

    /// Resumes adaptation from the algorithm's current estimate, at the next
    /// closed window.
    pub fn resume(&self) {
        let _control = self.shared.lock();
        self.shared.frozen.store(false, Ordering::Relaxed);
    }

    /// Whether adaptation is frozen.
    #[must_use]
    pub fn is_frozen(&self) -> bool {
        self.shared.frozen.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for AdaptiveLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimit")
            .field("limit", &self.limit())
            .field("in_flight", &self.in_flight())
            .field("frozen", &self.is_frozen())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Control> {
        // A panicking algorithm leaves its state as it was; carry on with it.
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request starts: returns the number in flight, itself included.
    #[inline]
    pub(crate) fn start(&self) -> usize {
        self.in_flight.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A request ends, whatever its outcome.
    #[inline]
    pub(crate) fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Records a completed request, timed from `started`, and closes the
    /// window when it is due.
    #[inline]
    pub(crate) fn record(&self, started: Instant, in_flight: usize, outcome: Outcome) {
        let (total, now) = match outcome {
            Outcome::Success => {
                let now = Instant::now();
                let rtt = now.saturating_duration_since(started);
                if rtt < self.min_rtt {
                    return;
                }
                (self.window.success(rtt, in_flight), now)
            }
            Outcome::Dropped => (self.window.drop(in_flight), Instant::now()),
            Outcome::Ignored => return,
        };
        if total >= self.min_samples && self.window.age(now) >= self.min_window {
            self.close(now);
        }
    }

    #[cold]
    fn close(&self, now: Instant) {
        let mut control = match self.control.try_lock() {
            Ok(control) => control,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            // Another request is closing this window.
            Err(TryLockError::WouldBlock) => return,
        };
        // Checked again under the lock: the window may just have closed.
        if self.window.total() < self.min_samples || self.window.age(now) < self.min_window {
            return;
        }
        let sample = self.window.close(now);
        control.windows += 1;
        control.last = Some(sample);
        if self.frozen.load(Ordering::Relaxed) || control.pinned.is_some() {
            return;
        }
        let limit = control.algorithm.update(&sample);
        self.apply(limit);
    }

    /// Writes `limit` to the limiter; the caller holds the control lock (or
    /// is the builder).
    fn apply(&self, limit: usize) {
        let from = self.target.limit();
        if from == limit {
            return;
        }
        self.target.set_limit(limit);
        let to = self.target.limit();
        if let Some(bus) = &self.events {
            bus.emit(Event::LimitChanged { from, to });
        }
        #[cfg(feature = "metrics")]
        {
            use tower_pressure_core::metrics as m;
            metrics::gauge!(m::LIMIT, m::LABEL_LAYER => m::LAYER_ADAPTIVE).set(to as f64);
        }
    }
}
