//! [`Signal`]: the published, sampled state of one resource.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::{ConfigError, Event, EventBus, PressureLevel, Reading, Source, Thresholds};

/// The default sampling interval, 250 ms: a threshold breach is acted on
/// within a second even with smoothing.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);

/// The default EWMA weight of a new sample, 0.5.
const DEFAULT_EWMA_ALPHA: f64 = 0.5;

/// After how many intervals without a good sample a signal falls back to
/// its stale level by default: 4 (a second at the default interval).
const DEFAULT_STALE_AFTER: u32 = 4;

/// What a [`Signal`] publishes to its subscribers on every level change.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct SignalState {
    /// The effective level: the override if one is set, else the computed one.
    pub level: PressureLevel,
    /// The smoothed utilisation (NaN before the first reading).
    pub utilization: f64,
    /// Whether `level` is an operator's override.
    pub overridden: bool,
}

/// How a [`Signal`] turns readings into a level.
#[derive(Debug, Clone)]
pub struct SignalConfig {
    name: Arc<str>,
    interval: Duration,
    ewma_alpha: f64,
    thresholds: Thresholds,
    events: Option<EventBus>,
    stale_after: u32,
    stale_level: PressureLevel,
}

impl SignalConfig {
    /// A builder for a signal called `name` (used in logs and events).
    pub fn builder(name: &str) -> SignalConfigBuilder {
        SignalConfigBuilder {
            name: name.into(),
            interval: DEFAULT_INTERVAL,
            ewma_alpha: DEFAULT_EWMA_ALPHA,
            thresholds: Thresholds::default(),
            events: None,
            stale_after: DEFAULT_STALE_AFTER,
            stale_level: PressureLevel::None,
        }
    }
}

/// Builds a validated [`SignalConfig`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SignalConfigBuilder {
    name: Arc<str>,
    interval: Duration,
    ewma_alpha: f64,
    thresholds: Thresholds,
    events: Option<EventBus>,
    stale_after: u32,
    stale_level: PressureLevel,
}

impl SignalConfigBuilder {
    /// How often the sampler reads the source. Default 250 ms.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The EWMA weight of a new sample in `(0, 1]`: smoothed = α·new +
    /// (1−α)·previous. `1.0` turns smoothing off. Default 0.5.
    pub fn ewma_alpha(mut self, alpha: f64) -> Self {
        self.ewma_alpha = alpha;
        self
    }

    /// The thresholds that map utilisation to a level. Default
    /// [`Thresholds::default`] (0.60, 0.75, 0.85, 0.95).
    pub fn thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// Publishes [`Event::LevelChanged`] and [`Event::ThresholdsTuned`] here.
    pub fn events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    /// After how many intervals without a good sample — the source fails
    /// every time, or the sampler task is gone (its runtime ended, it was
    /// aborted) — the signal stops trusting its last reading and falls back
    /// to [`stale_level`](Self::stale_level), with one warning, until a good
    /// sample comes. A level frozen at `Critical` would shed for ever. `0`
    /// never falls back. Default 4 (a second at the default interval).
    pub fn stale_after(mut self, intervals: u32) -> Self {
        self.stale_after = intervals;
        self
    }

    /// The level a stale signal falls back to. Default `None`: a signal that
    /// cannot see the resource sheds nothing for it (the other signals and
    /// the admission limit still protect the service).
    pub fn stale_level(mut self, level: PressureLevel) -> Self {
        self.stale_level = level;
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// When the interval is zero, or alpha is not in `(0, 1]`.
    pub fn build(self) -> Result<SignalConfig, ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::new(
                "signal.interval",
                "0s",
                "must be greater than zero",
            ));
        }
        let a = self.ewma_alpha;
        if !(a.is_finite() && a > 0.0 && a <= 1.0) {
            return Err(ConfigError::new(
                "signal.ewma_alpha",
                a,
                "must be a number in (0, 1]",
            ));
        }
        Ok(SignalConfig {
            name: self.name,
            interval: self.interval,
            ewma_alpha: a,
            thresholds: self.thresholds,
            events: self.events,
            stale_after: self.stale_after,
            stale_level: self.stale_level,
        })
    }
}

/// The published, sampled state of one resource (memory, CPU, …).
///
/// A cheap `Clone` handle. The hot-path read, [`level`](Signal::level), is
/// one atomic load. Level changes are also published on a
/// [`watch`] channel ([`subscribe`](Signal::subscribe)) for hooks that act on
/// them (shrink caches, purge an allocator).
///
/// A signal is fed either by its own sampler task — started explicitly with
/// [`Signal::spawn`], one per signal, stopped when the last handle drops — or
/// by hand through [`record`](Signal::record). No layer starts a sampler
/// behind the user's back.
///
/// An operator can force a level in an incident with
/// [`set_override`](Signal::set_override), whatever the source says.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_core::{ManualSource, PressureLevel, Signal};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let source = ManualSource::new(0.9);
/// let memory = Signal::spawn(source.clone(), Duration::from_millis(100));
/// tokio::time::sleep(Duration::from_millis(1)).await;
/// assert_eq!(memory.level(), PressureLevel::High);
///
/// memory.set_override(Some(PressureLevel::Critical));
/// assert_eq!(memory.level(), PressureLevel::Critical);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Signal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: Arc<str>,
    alpha: f64,
    /// The effective level, as `PressureLevel as u8`: the one hot-path load.
    level: AtomicU8,
    /// The smoothed utilisation, as `f64` bits.
    utilization: AtomicU64,
    sample_errors: AtomicU64,
    /// When the last good reading came, in microseconds since `epoch`;
    /// `u64::MAX` before the first.
    last_good_us: AtomicU64,
    epoch: tokio::time::Instant,
    stale_after: u32,
    stale_level: PressureLevel,
    /// Writers (sampler, operator, tuner) serialise here; readers never do.
    state: Mutex<WriterState>,
    tx: watch::Sender<SignalState>,
    events: Option<EventBus>,
    /// Dropped with the last handle, which tells the sampler task to stop.
    _stop: Option<oneshot::Sender<()>>,
}

#[derive(Debug)]
struct WriterState {
    thresholds: Thresholds,
    smoothed: Option<f64>,
    computed: PressureLevel,
    overridden: Option<PressureLevel>,
}

impl Signal {
    /// A signal with no sampler, fed through [`record`](Signal::record).
    #[must_use]
    pub fn new(config: SignalConfig) -> Signal {
        Signal {
            inner: Arc::new(Inner::new(config, None)),
        }
    }

    /// Starts a sampler task reading `source` every `interval` with the
    /// default smoothing and thresholds; see [`Signal::spawn_with`].
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime, or with a zero `interval`.
    #[must_use]
    pub fn spawn(source: impl Source, interval: Duration) -> Signal {
        let config = SignalConfig::builder(source.name())
            .interval(interval)
            .build()
            .expect("Signal::spawn needs a non-zero interval");
        Signal::spawn_with(source, config)
    }

    /// Starts one sampler task reading `source` on the configured interval.
    ///
    /// The first sample is taken at once. A sample that fails (an error, a NaN
    /// reading, or a panic in the source) keeps the last good reading, is
    /// logged once until the source recovers, and is tried again on the next
    /// tick. The task ends when the last `Signal` handle is dropped, or with
    /// its runtime; the handles then keep returning the last values.
    ///
    /// `Source::sample` runs on the runtime's thread: it should be quick
    /// (reading a `/proc` or cgroup file is).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use]
    pub fn spawn_with(source: impl Source, config: SignalConfig) -> Signal {
        let (stop_tx, stop_rx) = oneshot::channel();
        let interval = config.interval;
        let inner = Arc::new(Inner::new(config, Some(stop_tx)));
        tokio::spawn(sample_loop(
            Arc::downgrade(&inner),
            source,
            interval,
            stop_rx,
        ));
        Signal { inner }
    }

    /// The effective pressure level. One atomic load.
    #[inline]
    #[must_use]
    pub fn level(&self) -> PressureLevel {
        PressureLevel::from_index(usize::from(self.inner.level.load(Ordering::Acquire)))
    }

    /// The smoothed utilisation in `[0, 1]`; NaN before the first reading.
    #[must_use]
    pub fn utilization(&self) -> f64 {
        f64::from_bits(self.inner.utilization.load(Ordering::Acquire))
    }

    /// The signal's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How many samples have failed since the signal started.
    #[must_use]
    pub fn sample_errors(&self) -> u64 {
        self.inner.sample_errors.load(Ordering::Relaxed)
    }

    /// How long ago the last good reading came; `None` before the first.
    #[must_use]
    pub fn sample_age(&self) -> Option<Duration> {
        let us = self.inner.last_good_us.load(Ordering::Acquire);
        (us != u64::MAX).then(|| {
            tokio::time::Instant::now()
                .saturating_duration_since(self.inner.epoch + Duration::from_micros(us))
        })
    }

    /// The state last published.
    #[must_use]
    pub fn state(&self) -> SignalState {
        *self.inner.tx.borrow()
    }

    /// A subscription to level changes. The receiver sees the channel closed
    /// once the last `Signal` handle is dropped.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<SignalState> {
        self.inner.tx.subscribe()
    }

    /// Feeds one reading, as the sampler does. A NaN reading is ignored.
    pub fn record(&self, reading: Reading) {
        let u = reading.utilization();
        if u.is_nan() {
            self.inner.sample_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut st = self.inner.lock();
        let smoothed = match st.smoothed {
            Some(prev) => self.inner.alpha * u + (1.0 - self.inner.alpha) * prev,
            None => u,
        };
        st.smoothed = Some(smoothed);
        st.computed = st.thresholds.level(smoothed, st.computed);
        self.inner
            .utilization
            .store(smoothed.to_bits(), Ordering::Release);
        let us = tokio::time::Instant::now()
            .saturating_duration_since(self.inner.epoch)
            .as_micros();
        self.inner
            .last_good_us
            .store(u64::try_from(us).unwrap_or(u64::MAX - 1), Ordering::Release);
        self.inner.publish(&st);
    }

    /// Forces the level (`Some`) whatever the readings say, or returns to the
    /// computed level (`None`). The manual override for incidents and drills.
    pub fn set_override(&self, level: Option<PressureLevel>) {
        let mut st = self.inner.lock();
        st.overridden = level;
        self.inner.publish(&st);
    }

    /// The thresholds in force.
    #[must_use]
    pub fn thresholds(&self) -> Thresholds {
        self.inner.lock().thresholds
    }

    /// Replaces the thresholds at run time (a tuner, an operator); the level is
    /// recomputed from the current smoothed reading at once.
    pub fn set_thresholds(&self, thresholds: Thresholds) {
        let mut st = self.inner.lock();
        let from = std::mem::replace(&mut st.thresholds, thresholds);
        if let Some(u) = st.smoothed {
            st.computed = thresholds.level(u, st.computed);
        }
        if from != thresholds
            && let Some(bus) = &self.inner.events
        {
            bus.emit(Event::ThresholdsTuned {
                resource: self.inner.name.clone(),
                from,
                to: thresholds,
            });
        }
        self.inner.publish(&st);
    }
}

impl Inner {
    /// No good reading for too long: the computed level becomes the stale
    /// level (an override still wins) until the next good reading.
    fn fall_back(&self, why: &str) {
        let mut st = self.lock();
        if st.computed == self.stale_level {
            return;
        }
        tracing::warn!(
            signal = %self.name,
            level = %self.stale_level,
            reason = why,
            "resource signal is stale; falling back until a good sample comes"
        );
        st.computed = self.stale_level;
        self.publish(&st);
    }

    fn new(config: SignalConfig, stop: Option<oneshot::Sender<()>>) -> Inner {
        let initial = SignalState {
            level: PressureLevel::None,
            utilization: f64::NAN,
            overridden: false,
        };
        Inner {
            name: config.name,
            alpha: config.ewma_alpha,
            level: AtomicU8::new(PressureLevel::None as u8),
            utilization: AtomicU64::new(f64::NAN.to_bits()),
            sample_errors: AtomicU64::new(0),
            last_good_us: AtomicU64::new(u64::MAX),
            epoch: tokio::time::Instant::now(),
            stale_after: config.stale_after,
            stale_level: config.stale_level,
            state: Mutex::new(WriterState {
                thresholds: config.thresholds,
                smoothed: None,
                computed: PressureLevel::None,
                overridden: None,
            }),
            tx: watch::Sender::new(initial),
            events: config.events,
            _stop: stop,
        }
    }

    fn lock(&self) -> MutexGuard<'_, WriterState> {
        // The state stays consistent even if a writer panicked mid-way: every
        // field is valid on its own, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the effective level and tells subscribers if it changed.
    /// Called with the writer lock held, so publications are ordered.
    fn publish(&self, st: &WriterState) {
        let level = st.overridden.unwrap_or(st.computed);
        let next = SignalState {
            level,
            utilization: st.smoothed.unwrap_or(f64::NAN),
            overridden: st.overridden.is_some(),
        };
        self.level.store(level as u8, Ordering::Release);
        let mut from = None;
        self.tx.send_if_modified(|cur| {
            let changed = cur.level != next.level || cur.overridden != next.overridden;
            if changed {
                from = Some(cur.level);
            }
            // Keep the utilisation fresh for `state()` without waking anyone.
            *cur = next;
            changed
        });
        if let (Some(from), Some(bus)) = (from, &self.events)
            && from != level
        {
            bus.emit(Event::LevelChanged {
                resource: self.name.clone(),
                from,
                to: level,
                utilization: next.utilization,
                overridden: next.overridden,
            });
        }
    }
}

/// Falls the signal back to its stale level if the sampler task ends while
/// handles remain (its runtime shut down, or it was aborted): nobody reads
/// the source any more, and the last level would stand for ever.
struct SamplerGone(Weak<Inner>);

impl Drop for SamplerGone {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade()
            && inner.stale_after > 0
        {
            inner.fall_back("the sampler task ended");
        }
    }
}

async fn sample_loop(
    inner: Weak<Inner>,
    mut source: impl Source,
    interval: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    let _gone = SamplerGone(inner.clone());
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut failed_in_a_row = 0u32;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticker.tick() => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        let signal = Signal { inner };
        // A panicking source is treated like a failing one: the signal keeps
        // its last reading and the layers that read it keep working.
        let result = catch_unwind(AssertUnwindSafe(|| source.sample()));
        let error = match result {
            Ok(Ok(r)) if !r.utilization().is_nan() => {
                if failing {
                    tracing::info!(signal = %signal.name(), source = source.name(), "resource source recovered");
                    failing = false;
                }
                failed_in_a_row = 0;
                signal.record(r);
                continue;
            }
            Ok(Ok(_)) => "reading is not a number".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "source panicked".to_owned(),
        };
        signal.inner.sample_errors.fetch_add(1, Ordering::Relaxed);
        failed_in_a_row = failed_in_a_row.saturating_add(1);
        if !failing {
            tracing::warn!(
                signal = %signal.name(),
                source = source.name(),
                error = %error,
                "resource sample failed; keeping the last reading and retrying"
            );
            failing = true;
        }
        if failed_in_a_row == signal.inner.stale_after {
            signal.inner.fall_back("the source keeps failing");
        }
    }
}
