//! [`MemoryHooks`]: what to do when the memory level changes, off the request
//! path.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_pressure_core::{ConfigError, PressureLevel, Signal, SignalState};

/// The default share of a cache kept per level, indexed by
/// [`PressureLevel::index`]: the less, the higher the level.
const DEFAULT_SHRINK_FACTORS: [f64; 5] = [1.0, 1.0, 0.8, 0.5, 0.1];

/// The default level from which the allocator purge runs.
const DEFAULT_PURGE_AT: PressureLevel = PressureLevel::High;

/// The default [`rearm_after`](MemoryHooksBuilder::rearm_after): a level
/// left and re-entered sooner shrinks nothing again.
const DEFAULT_REARM_AFTER: Duration = Duration::from_secs(30);

/// A cache (or anything else holding memory it can give back) that the hooks
/// shrink when memory pressure rises.
///
/// Closures `Fn(f64)` are `Shrink`.
pub trait Shrink: Send + Sync {
    /// Keeps about `keep_fraction` (in `[0, 1]`) of what is held now, e.g.
    /// evicts the least recently used `1 − keep_fraction` of the entries.
    fn shrink(&self, keep_fraction: f64);
}

impl<F> Shrink for F
where
    F: Fn(f64) + Send + Sync,
{
    fn shrink(&self, keep_fraction: f64) {
        self(keep_fraction)
    }
}

/// One change of the memory level, as the hooks see it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LevelChange {
    /// The level before.
    pub from: PressureLevel,
    /// The level now.
    pub to: PressureLevel,
    /// The smoothed utilisation when it changed.
    pub utilization: f64,
    /// Whether the new level is an operator's override.
    pub overridden: bool,
}

impl LevelChange {
    /// A change from `from` to `to`, with an unknown utilisation and no
    /// override (for running hooks by hand, [`MemoryHooks::fire`]).
    #[must_use]
    pub fn new(from: PressureLevel, to: PressureLevel) -> LevelChange {
        LevelChange {
            from,
            to,
            utilization: f64::NAN,
            overridden: false,
        }
    }
}

type ChangeFn = Box<dyn Fn(LevelChange) + Send + Sync>;
type PurgeFn = Box<dyn Fn() + Send + Sync>;

/// What to do when the memory level changes: user callbacks, shrinking
/// registered caches, purging the allocator. Runs in one task started with
/// [`spawn`](MemoryHooks::spawn), which waits on the signal's
/// [`subscribe`](Signal::subscribe) channel: once per level change, never per
/// sample and never on the request path.
///
/// On every change, in order:
///
/// 1. the [`on_change`](MemoryHooksBuilder::on_change) callbacks;
/// 2. when the level rose: each registered [`Shrink`] with the new level's
///    factor (see [`shrink_factor`](MemoryHooksBuilder::shrink_factor)),
///    unless it is 1;
/// 3. when the level rose to [`purge_at`](MemoryHooksBuilder::purge_at) or
///    above: the [`purge`](MemoryHooksBuilder::purge) callback, so the
///    allocator hands the memory the caches just freed back to the kernel.
///
/// Steps 2 and 3 run for a level only once per episode: a level re-entered
/// less than [`rearm_after`](MemoryHooksBuilder::rearm_after) (default
/// 30 s) after it was last left shrinks nothing again. A reading that
/// wobbles across a threshold would otherwise shrink the caches on every
/// crossing — ten crossings of `Medium` keep 0.8¹⁰ ≈ 11 % of them — for a
/// pressure that did not grow. A rise to a level *above* the last one is
/// always acted on.
///
/// Hooks run on the runtime's thread: keep them short, or hand long work to
/// `tokio::task::spawn_blocking`. A panicking hook is logged and the others
/// still run.
///
/// # Allocator purge
///
/// This crate ships no purge of its own: calling glibc's `malloc_trim` or
/// jemalloc's `arena.<i>.purge` needs `unsafe` FFI (the workspace forbids
/// it), and no small crate wraps either soundly. Pass the call your allocator
/// offers, e.g. with `tikv-jemalloc-ctl`, or glibc's `malloc_trim(0)` through
/// `libc` in your own crate:
///
/// ```text
/// hooks.purge(|| unsafe { libc::malloc_trim(0); })
/// ```
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use tower_pressure_core::{PressureLevel, Signal};
/// use tower_pressure_memory::{MemoryHooks, MemorySignal};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let memory = Signal::new(MemorySignal::config().build()?);
/// let cache_size = Arc::new(AtomicUsize::new(1000));
/// let cache = cache_size.clone();
/// let hooks = MemoryHooks::builder()
///     .on_change(|change| println!("memory {} -> {}", change.from, change.to))
///     .shrink(move |keep: f64| {
///         let kept = (cache.load(Ordering::Relaxed) as f64 * keep) as usize;
///         cache.store(kept, Ordering::Relaxed);
///     })
///     .build()?;
/// let _running = hooks.spawn(&memory); // stops when dropped
///
/// memory.set_override(Some(PressureLevel::High));
/// tokio::task::yield_now().await;
/// assert_eq!(cache_size.load(Ordering::Relaxed), 500);
/// # Ok(()) }
/// ```
pub struct MemoryHooks {
    on_change: Vec<ChangeFn>,
    caches: Vec<Arc<dyn Shrink>>,
    factors: [f64; 5],
    purge: Option<PurgeFn>,
    purge_at: PressureLevel,
    rearm_after: Duration,
}

impl MemoryHooks {
    /// A builder with no hooks and the default factors.
    pub fn builder() -> MemoryHooksBuilder {
        MemoryHooksBuilder {
            hooks: MemoryHooks {
                on_change: Vec::new(),
                caches: Vec::new(),
                factors: DEFAULT_SHRINK_FACTORS,
                purge: None,
                purge_at: DEFAULT_PURGE_AT,
                rearm_after: DEFAULT_REARM_AFTER,
            },
        }
    }

    /// Starts the task that runs the hooks on `signal`'s level changes. The
    /// task stops when the returned handle is dropped, or when the signal's
    /// last handle is.
    ///
    /// If the signal is already above `None`, the hooks run once at once, as
    /// for a change from `None`.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use = "the hooks stop when the handle is dropped"]
    pub fn spawn(self, signal: &Signal) -> HooksHandle {
        let rx = signal.subscribe();
        HooksHandle {
            task: tokio::spawn(self.run(rx)),
        }
    }

    async fn run(self, mut rx: watch::Receiver<SignalState>) {
        let start = *rx.borrow_and_update();
        let mut last = PressureLevel::None;
        // When each level was last left (the level fell below it).
        let mut left: [Option<Instant>; 5] = [None; 5];
        let mut state = start;
        loop {
            // The channel also wakes when only the override flag changed.
            if state.level != last {
                let now = Instant::now();
                let to = state.level.index();
                let rearmed = left[to].is_none_or(|at| now - at >= self.rearm_after);
                for slot in &mut left[to + 1..=last.index().max(to)] {
                    *slot = Some(now);
                }
                self.run_hooks(change(last, state), rearmed);
                last = state.level;
            }
            if rx.changed().await.is_err() {
                return;
            }
            state = *rx.borrow_and_update();
        }
    }

    /// Runs the hooks for one change, as the task does (for tests, or to
    /// drive the hooks from a loop of your own). With the `metrics` feature,
    /// also sets the `tower_pressure_level` gauge (and
    /// `tower_pressure_utilization` when known) of layer `memory`.
    pub fn fire(&self, change: LevelChange) {
        self.run_hooks(change, true);
    }

    /// The callbacks, then (when `shrink` and the level rose) the shrinks
    /// and the purge.
    fn run_hooks(&self, change: LevelChange, shrink: bool) {
        #[cfg(feature = "metrics")]
        {
            use tower_pressure_core::metrics as m;
            metrics::gauge!(m::PRESSURE_LEVEL, m::LABEL_LAYER => m::LAYER_MEMORY)
                .set(change.to.index() as f64);
            if !change.utilization.is_nan() {
                metrics::gauge!(m::UTILIZATION, m::LABEL_LAYER => m::LAYER_MEMORY)
                    .set(change.utilization);
            }
        }
        for f in &self.on_change {
            guarded("on_change", || f(change));
        }
        if change.to <= change.from || !shrink {
            return;
        }
        let keep = self.factors[change.to.index()];
        if keep < 1.0 {
            for cache in &self.caches {
                guarded("shrink", || cache.shrink(keep));
            }
        }
        if change.to >= self.purge_at
            && let Some(purge) = &self.purge
        {
            guarded("purge", purge);
        }
    }
}

fn change(from: PressureLevel, state: SignalState) -> LevelChange {
    LevelChange {
        from,
        to: state.level,
        utilization: state.utilization,
        overridden: state.overridden,
    }
}

fn guarded(hook: &'static str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        tracing::error!(hook, "a memory pressure hook panicked");
    }
}

impl fmt::Debug for MemoryHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryHooks")
            .field("on_change", &self.on_change.len())
            .field("caches", &self.caches.len())
            .field("factors", &self.factors)
            .field("purge", &self.purge.is_some())
            .field("purge_at", &self.purge_at)
            .field("rearm_after", &self.rearm_after)
            .finish()
    }
}

/// Builds validated [`MemoryHooks`].
#[must_use]
pub struct MemoryHooksBuilder {
    hooks: MemoryHooks,
}

impl MemoryHooksBuilder {
    /// Calls `f` on every level change.
    pub fn on_change<F>(mut self, f: F) -> Self
    where
        F: Fn(LevelChange) + Send + Sync + 'static,
    {
        self.hooks.on_change.push(Box::new(f));
        self
    }

    /// Shrinks `cache` when the level rises.
    pub fn shrink(self, cache: impl Shrink + 'static) -> Self {
        self.shrink_shared(Arc::new(cache))
    }

    /// Shrinks a cache that is also used elsewhere.
    pub fn shrink_shared(mut self, cache: Arc<dyn Shrink>) -> Self {
        self.hooks.caches.push(cache);
        self
    }

    /// The share of each cache kept when the level rises to `level`, in
    /// `[0, 1]` (1 leaves the caches alone). Defaults: `Medium` 0.8, `High`
    /// 0.5, `Critical` 0.1; nothing is shrunk below `Medium`.
    pub fn shrink_factor(mut self, level: PressureLevel, keep_fraction: f64) -> Self {
        self.hooks.factors[level.index()] = keep_fraction;
        self
    }

    /// Calls `purge` (return freed memory to the kernel) when the level rises
    /// to [`purge_at`](Self::purge_at) or above, after the caches shrank.
    pub fn purge<F>(mut self, purge: F) -> Self
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.hooks.purge = Some(Box::new(purge));
        self
    }

    /// The lowest level at which the purge runs. Default
    /// [`PressureLevel::High`].
    pub fn purge_at(mut self, level: PressureLevel) -> Self {
        self.hooks.purge_at = level;
        self
    }

    /// How long a level must have been left before re-entering it shrinks
    /// the caches (and purges) again. Default 30 s; set
    /// it to about the time your caches take to refill. Zero shrinks on
    /// every rise.
    pub fn rearm_after(mut self, after: Duration) -> Self {
        self.hooks.rearm_after = after;
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// When a shrink factor is not a number in `[0, 1]`, a higher level
    /// would keep more than a lower one, or `rearm_after` is over a day.
    pub fn build(self) -> Result<MemoryHooks, ConfigError> {
        if self.hooks.rearm_after > Duration::from_secs(24 * 60 * 60) {
            return Err(ConfigError::new(
                "memory_hooks.rearm_after",
                format_args!("{:?}", self.hooks.rearm_after),
                "must be at most a day",
            ));
        }
        let f = self.hooks.factors;
        for level in PressureLevel::ALL {
            let i = level.index();
            ConfigError::check_range(factor_field(level), f[i], 0.0, 1.0)?;
            if i > 0 && f[i] > f[i - 1] {
                return Err(ConfigError::new(
                    factor_field(level),
                    f[i],
                    format!(
                        "must keep no more than at level {} ({})",
                        PressureLevel::from_index(i - 1),
                        f[i - 1]
                    ),
                ));
            }
        }
        Ok(self.hooks)
    }
}

impl fmt::Debug for MemoryHooksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryHooksBuilder")
            .field("hooks", &self.hooks)
            .finish()
    }
}

fn factor_field(level: PressureLevel) -> &'static str {
    match level {
        PressureLevel::None => "memory_hooks.shrink_factor.none",
        PressureLevel::Low => "memory_hooks.shrink_factor.low",
        PressureLevel::Medium => "memory_hooks.shrink_factor.medium",
        PressureLevel::High => "memory_hooks.shrink_factor.high",
        PressureLevel::Critical => "memory_hooks.shrink_factor.critical",
    }
}

/// The running hooks task of [`MemoryHooks::spawn`]; dropping it stops the
/// task.
#[derive(Debug)]
pub struct HooksHandle {
    task: JoinHandle<()>,
}

impl HooksHandle {
    /// Whether the task has ended (the signal's last handle was dropped).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for HooksHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
