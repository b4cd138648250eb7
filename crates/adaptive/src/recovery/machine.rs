//! The recovery state machine: what to write through the handle on each
//! input. Synchronous; the driver supplies the inputs and the timer.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::watch;
use tower_pressure_core::{Event, EventBus, LimitHandle, PressureLevel};

use super::RecoveryState;

pub(super) type Hook = Box<dyn Fn() + Send + 'static>;
pub(super) type Listener = Box<dyn Fn(RecoveryState) + Send + 'static>;

pub(super) struct Machine {
    pub(super) limit: LimitHandle,
    pub(super) steps: usize,
    pub(super) fixed_target: Option<usize>,
    pub(super) hooks: Vec<Hook>,
    pub(super) listeners: Vec<Listener>,
    pub(super) events: Option<EventBus>,
    pub(super) state: RecoveryState,
    pub(super) level: PressureLevel,
    pub(super) published: watch::Sender<RecoveryState>,
    /// Set once the handle was dropped: the limiter was handed back and
    /// nothing more is written.
    pub(super) stopped: bool,
}

impl Machine {
    pub(super) fn ramping(&self) -> bool {
        matches!(self.state, RecoveryState::Ramping { .. })
    }

    /// Takes the operator's trigger and the memory level; returns whether
    /// the ramp's timer must start over (the ramp began or stepped down).
    pub(super) fn update(&mut self, operator: bool, level: PressureLevel) -> bool {
        self.update_with(operator, level, level == PressureLevel::Critical)
    }

    /// [`update`](Self::update), with whether memory triggers decided by the
    /// caller (which holds it on for a while after `Critical` ends).
    pub(super) fn update_with(
        &mut self,
        operator: bool,
        level: PressureLevel,
        memory_critical: bool,
    ) -> bool {
        if self.stopped {
            return false;
        }
        let rose_to_high = level == PressureLevel::High && self.level < PressureLevel::High;
        self.level = level;
        let triggered = operator || memory_critical;
        match self.state {
            RecoveryState::Normal | RecoveryState::Ramping { .. } if triggered => {
                self.enter();
                false
            }
            RecoveryState::Emergency { target } if !triggered => {
                self.leave(target);
                true
            }
            RecoveryState::Ramping { step, target, .. } if rose_to_high => {
                // A relapse: halve the step (multiplicative decrease).
                self.set_step((step / 2).max(1), target);
                true
            }
            _ => false,
        }
    }

    /// The ramp's timer fired: one step up.
    pub(super) fn tick(&mut self) {
        if self.stopped {
            return;
        }
        if let RecoveryState::Ramping { step, target, .. } = self.state {
            self.set_step(step + 1, target);
        }
    }

    /// The handle was dropped: hands the limiter back whole — at the
    /// target, out of emergency mode — and tells the listeners recovery is
    /// over (an adaptive limit they froze resumes). Nothing is written after.
    pub(super) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        match self.state {
            RecoveryState::Normal => {}
            RecoveryState::Emergency { target } | RecoveryState::Ramping { target, .. } => {
                // The limit first, then emergency off: the limiter opens to
                // non-Critical work only once its limit is the target.
                self.set_limit(target);
                if self.limit.emergency() {
                    self.limit.set_emergency(false);
                    self.emit(Event::EmergencyLeft);
                }
                self.publish(RecoveryState::Normal);
            }
        }
        self.stopped = true;
    }

    fn enter(&mut self) {
        let target = match self.state {
            RecoveryState::Emergency { target } | RecoveryState::Ramping { target, .. } => target,
            RecoveryState::Normal => self.fixed_target.unwrap_or_else(|| self.limit.limit()),
        };
        self.limit.set_emergency(true);
        self.emit(Event::EmergencyEntered);
        for hook in &self.hooks {
            // A failing hook must not stop the others, nor the recovery.
            let _ = catch_unwind(AssertUnwindSafe(hook));
        }
        self.publish(RecoveryState::Emergency { target });
    }

    fn leave(&mut self, target: usize) {
        // The limit comes down before non-critical work is let in again, so
        // that the first wave is the first step's size, not the old limit's.
        self.set_limit(self.step_limit(1, target));
        self.limit.set_emergency(false);
        self.emit(Event::EmergencyLeft);
        self.set_step(1, target);
    }

    fn set_step(&mut self, step: usize, target: usize) {
        let limit = self.step_limit(step, target);
        self.set_limit(limit);
        if step >= self.steps {
            self.publish(RecoveryState::Normal);
        } else {
            self.publish(RecoveryState::Ramping {
                step,
                steps: self.steps,
                limit,
                target,
            });
        }
    }

    /// `⌈target × step / steps⌉`, at least 1.
    fn step_limit(&self, step: usize, target: usize) -> usize {
        let step = step.min(self.steps) as u128;
        let limit = (target as u128 * step).div_ceil(self.steps as u128);
        usize::try_from(limit).unwrap_or(usize::MAX).max(1)
    }

    fn set_limit(&self, to: usize) {
        let from = self.limit.limit();
        self.limit.set_limit(to);
        let to = self.limit.limit();
        if from != to {
            self.emit(Event::LimitChanged { from, to });
        }
    }

    fn emit(&self, event: Event) {
        if let Some(bus) = &self.events {
            bus.emit(event);
        }
    }

    fn publish(&mut self, state: RecoveryState) {
        if state == self.state {
            return;
        }
        self.state = state;
        for listener in &self.listeners {
            let _ = catch_unwind(AssertUnwindSafe(|| listener(state)));
        }
        self.published.send_replace(state);
    }
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine")
            .field("state", &self.state)
            .field("level", &self.level)
            .field("steps", &self.steps)
            .field("hooks", &self.hooks.len())
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}
