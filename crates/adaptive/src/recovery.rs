//! [`Recovery`]: emergency mode on a trigger, then capacity ramped back in
//! steps instead of all at once.

mod driver;
mod machine;

use std::fmt;
use std::time::Duration;

use tower_pressure_core::{ConfigError, EventBus, LimitHandle, Signal};
#[cfg(doc)]
use tower_pressure_core::{Event, PressureLevel};

pub use driver::RecoveryHandle;

use machine::{Hook, Listener};

/// The default number of ramp steps, 10.
pub(crate) const DEFAULT_STEPS: usize = 10;
/// The default time between ramp steps, 1 s.
pub(crate) const DEFAULT_STEP_INTERVAL: Duration = Duration::from_secs(1);

/// Where recovery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryState {
    /// No emergency, no ramp: others own the limit.
    Normal,
    /// Emergency mode: only `Critical` work is admitted.
    Emergency {
        /// The limit the ramp will return to.
        target: usize,
    },
    /// Emergency mode is over; the limit climbs back step by step.
    Ramping {
        /// The step reached, `1..steps`.
        step: usize,
        /// The number of steps.
        steps: usize,
        /// The limit set at this step.
        limit: usize,
        /// The limit the ramp ends at.
        target: usize,
    },
}

impl RecoveryState {
    /// Whether recovery is idle (neither emergency nor ramp).
    #[must_use]
    pub fn is_normal(&self) -> bool {
        matches!(self, RecoveryState::Normal)
    }

    /// The highest limit an adaptive driver should set now: the step's
    /// limit while ramping, `None` otherwise (in emergency mode only
    /// `Critical` work is admitted, whatever the limit).
    #[must_use]
    pub fn ceiling(&self) -> Option<usize> {
        match self {
            RecoveryState::Ramping { limit, .. } => Some(*limit),
            _ => None,
        }
    }
}

/// Emergency mode on a trigger, then capacity ramped back in steps instead of all at once.
///
/// # Model
///
/// The trigger is on while the memory [`Signal`] (if one is given) is at
/// [`PressureLevel::Critical`], or while an operator has called
/// [`RecoveryHandle::trigger`] and not yet [`RecoveryHandle::clear`]. A
/// trigger from either source:
///
/// 1. turns emergency mode on through the handle's [`set_emergency`]: only
///    `Critical` work is admitted;
/// 2. runs the `on_emergency` hooks ("shrink caches to minimum", purge an
///    allocator), and announces [`Event::EmergencyEntered`].
///
/// When the trigger clears (memory below `Critical` for
/// [`critical_hold`](RecoveryBuilder::critical_hold), one step interval by
/// default, and no operator trigger), the limit is set to `⌈target / steps⌉`, emergency mode is
/// turned off ([`Event::EmergencyLeft`]), and then, every `step_interval`,
/// the limit rises by one step, `⌈target × k / steps⌉` for `k = 2..=steps`
/// (default 10 steps of 1 s). The target is the limit in force when the
/// emergency began, or the configured [`target_limit`]. Each step is a
/// [`set_limit`] and an [`Event::LimitChanged`].
///
/// # Relapse
///
/// - The trigger again during the ramp (memory `Critical`, or the operator):
///   back to emergency mode, hooks included. The target stays the one from
///   before the first emergency, not the ramp's partial limit.
/// - Memory *rising* to `High` during the ramp: the ramp steps back down by
///   half (step `k` becomes `max(1, k / 2)`, which halves the limit) and
///   waits a full interval before it climbs again. A rise to `High` says
///   the last steps let in more than the service holds; going back to
///   emergency would refuse every non-critical request and re-run the
///   shrink hooks for a level that is not critical, and a flapping level
///   would make the limiter flap with it; a single step back is too little
///   if the load rose fast. Halving on a rise and climbing one step per
///   interval is additive-increase/multiplicative-decrease, the rule that
///   converges (Chiu and Jain, 1989). Memory that merely *stays* at `High`
///   (it usually is `High` right after leaving `Critical`) does not hold the
///   ramp back: the memory layer already sheds the low classes at `High`,
///   and a ramp that waited for a level below `High` could hold the service
///   at a tenth of its capacity for good.
///
/// # Next to an adaptive limit
///
/// An adaptive limit driver writes the same limit. While recovery is not
/// [`RecoveryState::Normal`] the ramp owns it: each step overwrites what
/// anyone else set in between. To keep an adaptive driver from fighting
/// the ramp, freeze it for the duration through
/// [`on_change`](RecoveryBuilder::on_change), which is called with every new
/// state, synchronously, before the next step:
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_adaptive::{AdaptiveLimit, Aimd, Recovery};
/// use tower_pressure_admission::PriorityLimiter;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = PriorityLimiter::builder().limit(50).build()?;
/// let aimd = Aimd::builder().initial_limit(50).build()?;
/// let adaptive = AdaptiveLimit::new(aimd, limiter.limit_handle());
/// let driver = adaptive.clone();
/// let recovery = Recovery::builder(limiter.limit_handle())
///     .on_change(move |state| if state.is_normal() { driver.resume() } else { driver.freeze() })
///     .build()?
///     .spawn();
///
/// recovery.trigger();
/// tokio::time::sleep(Duration::from_millis(1)).await;
/// assert!(adaptive.is_frozen());
/// recovery.clear();
/// tokio::time::sleep(Duration::from_secs(10)).await;
/// assert!(!adaptive.is_frozen());
/// assert_eq!(limiter.limit(), 50);
/// # Ok(()) }
/// ```
///
/// The ramp ends at the target, the limit the adaptive driver had reached,
/// so it resumes from where it was frozen. A driver without a freeze can
/// read [`RecoveryState::ceiling`] instead and clamp its limit to it.
///
/// # Events
///
/// The admission crate's `PriorityLimiter` announces its own limit and
/// emergency changes on the bus in its configuration. Give
/// [`events`](RecoveryBuilder::events) a bus only for a [`LimitControl`]
/// that does not, or a bus of its own: on the same bus each change would be
/// announced twice.
///
/// [`target_limit`]: RecoveryBuilder::target_limit
/// [`LimitControl`]: tower_pressure_core::LimitControl
/// [`set_emergency`]: tower_pressure_core::LimitControl::set_emergency
/// [`set_limit`]: tower_pressure_core::LimitControl::set_limit
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_adaptive::{Recovery, RecoveryState};
/// use tower_pressure_admission::PriorityLimiter;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = PriorityLimiter::builder().limit(100).build()?;
/// let recovery = Recovery::builder(limiter.limit_handle())
///     .steps(4)
///     .step_interval(Duration::from_secs(1))
///     .on_emergency(|| { /* shrink caches to their minimum */ })
///     .build()?
///     .spawn();
///
/// recovery.trigger();
/// tokio::time::sleep(Duration::from_millis(1)).await;
/// assert!(limiter.limit_handle().emergency());
///
/// recovery.clear();
/// tokio::time::sleep(Duration::from_millis(1)).await;
/// assert_eq!(limiter.limit(), 25);
/// tokio::time::sleep(Duration::from_secs(3)).await;
/// assert_eq!(limiter.limit(), 100);
/// assert_eq!(recovery.state(), RecoveryState::Normal);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Recovery {
    builder: RecoveryBuilder,
}

impl Recovery {
    /// A builder for a recovery driving the limiter behind `limit`.
    pub fn builder(limit: LimitHandle) -> RecoveryBuilder {
        RecoveryBuilder {
            limit,
            memory: None,
            steps: DEFAULT_STEPS,
            step_interval: DEFAULT_STEP_INTERVAL,
            target: None,
            critical_hold: None,
            hooks: Vec::new(),
            listeners: Vec::new(),
            events: None,
        }
    }
}

/// Builds a [`Recovery`]; every value is checked by [`build`](Self::build).
#[must_use]
pub struct RecoveryBuilder {
    limit: LimitHandle,
    memory: Option<Signal>,
    steps: usize,
    step_interval: Duration,
    target: Option<usize>,
    critical_hold: Option<Duration>,
    hooks: Vec<Hook>,
    listeners: Vec<Listener>,
    events: Option<EventBus>,
}

impl RecoveryBuilder {
    /// How long memory must stay below `Critical` before its emergency ends
    /// (default: one [`step_interval`](Self::step_interval); zero ends it at
    /// the first reading below). A level flapping across the `Critical`
    /// threshold then holds emergency mode instead of flipping between it
    /// and the ramp's first step, re-running the emergency hooks each time.
    /// The operator's [`clear`](RecoveryHandle::clear) is not held.
    pub fn critical_hold(mut self, hold: Duration) -> Self {
        self.critical_hold = Some(hold);
        self
    }

    /// Triggers on this memory signal's `Critical` level, and steps the ramp
    /// down when it rises to `High`.
    pub fn memory(mut self, signal: Signal) -> Self {
        self.memory = Some(signal);
        self
    }

    /// How many steps the ramp takes, at least 1 (1 restores the target at
    /// once). Default 10.
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// The time between two steps. Default 1 s.
    pub fn step_interval(mut self, interval: Duration) -> Self {
        self.step_interval = interval;
        self
    }

    /// The limit the ramp ends at, at least 1. Default: the limit in force
    /// when the emergency began.
    pub fn target_limit(mut self, limit: usize) -> Self {
        self.target = Some(limit);
        self
    }

    /// Adds a hook run on every entry into emergency mode, after it is on
    /// (shrink caches to their minimum, purge an allocator). Hooks run in
    /// the order added, on the recovery's task: they should be quick. A
    /// panicking hook is caught and the others still run.
    pub fn on_emergency(mut self, hook: impl Fn() + Send + 'static) -> Self {
        self.hooks.push(Box::new(hook));
        self
    }

    /// Adds a listener called with every new [`RecoveryState`], on the
    /// recovery's task, before the next step — the place to freeze an
    /// adaptive limit driver while recovery owns the limit. A panicking
    /// listener is caught.
    pub fn on_change(mut self, listener: impl Fn(RecoveryState) + Send + 'static) -> Self {
        self.listeners.push(Box::new(listener));
        self
    }

    /// Announces `EmergencyEntered`, `EmergencyLeft` and each step's
    /// `LimitChanged` here. See [Events](Recovery#events) for when not to.
    pub fn events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when `steps` is 0, the step
    /// interval is zero, or the target limit is 0.
    pub fn build(self) -> Result<Recovery, ConfigError> {
        if self.steps == 0 {
            return Err(ConfigError::new("recovery.steps", 0, "must be at least 1"));
        }
        crate::check_interval("recovery.step_interval", self.step_interval)?;
        if let Some(hold) = self.critical_hold
            && hold > crate::MAX_INTERVAL
        {
            return Err(ConfigError::new(
                "recovery.critical_hold",
                format_args!("{hold:?}"),
                "must be at most a day",
            ));
        }
        if self.target == Some(0) {
            return Err(ConfigError::new(
                "recovery.target_limit",
                0,
                "must be at least 1",
            ));
        }
        Ok(Recovery { builder: self })
    }
}

impl fmt::Debug for RecoveryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryBuilder")
            .field("limit", &self.limit)
            .field("memory", &self.memory.as_ref().map(Signal::name))
            .field("steps", &self.steps)
            .field("step_interval", &self.step_interval)
            .field("target", &self.target)
            .field("critical_hold", &self.critical_hold)
            .field("hooks", &self.hooks.len())
            .field("listeners", &self.listeners.len())
            .field("events", &self.events.is_some())
            .finish()
    }
}
