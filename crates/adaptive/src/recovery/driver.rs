//! The recovery task: [`Recovery::spawn`] and its [`RecoveryHandle`].

use std::fmt;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_pressure_core::{LimitHandle, PressureLevel, SignalState};

use super::machine::Machine;
use super::{Recovery, RecoveryState};

impl Recovery {
    /// Starts the recovery task, which watches the memory signal and the
    /// operator's trigger and runs the ramp's timer.
    ///
    /// A memory signal already at `Critical` triggers at once. The task runs
    /// until the returned handle is dropped; the limiter is then handed back
    /// whole: out of emergency mode and at the ramp's target, if that is
    /// where recovery was — a dropped recovery must not leave a service
    /// refusing all but `Critical` work for good.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use = "dropping the handle stops the recovery"]
    pub fn spawn(self) -> RecoveryHandle {
        let b = self.builder;
        let handed_back = b.limit.clone();
        let (operator_tx, mut operator_rx) = watch::channel(false);
        let (state_tx, state_rx) = watch::channel(RecoveryState::Normal);
        let interval = b.step_interval;
        // The task keeps a handle on the signal, so that its sampler lives
        // as long as the recovery that watches it.
        let signal = b.memory;
        let mut memory = signal.as_ref().map(|s| s.subscribe());
        let mut machine = Machine {
            limit: b.limit,
            steps: b.steps,
            fixed_target: b.target,
            hooks: b.hooks,
            listeners: b.listeners,
            events: b.events,
            state: RecoveryState::Normal,
            level: PressureLevel::None,
            published: state_tx,
        };
        let task = tokio::spawn(async move {
            let _signal = signal;
            let mut operator = false;
            let mut level = memory
                .as_mut()
                .map_or(PressureLevel::None, |m| m.borrow_and_update().level);
            let mut deadline = None;
            let mut restart = machine.update(operator, level);
            loop {
                if restart {
                    deadline = Some(Instant::now() + interval);
                }
                if !machine.ramping() {
                    deadline = None;
                }
                let tick = deadline.unwrap_or_else(Instant::now);
                tokio::select! {
                    // Fixed order: the operator, then memory, then the timer.
                    biased;
                    changed = operator_rx.changed() => {
                        if changed.is_err() {
                            return; // The handle is gone.
                        }
                        operator = *operator_rx.borrow_and_update();
                        restart = machine.update(operator, level);
                    }
                    next = next_level(&mut memory) => {
                        level = next;
                        restart = machine.update(operator, level);
                    }
                    () = tokio::time::sleep_until(tick), if deadline.is_some() => {
                        machine.tick();
                        // The next step one interval after this one's due
                        // time, so that steps do not drift.
                        deadline = Some(tick + interval);
                        restart = false;
                    }
                }
            }
        });
        RecoveryHandle {
            operator: operator_tx,
            state: state_rx,
            task,
            limit: handed_back,
        }
    }
}

/// The next level the signal publishes; pending for ever without a signal
/// (or once its channel closed: the last level stands).
async fn next_level(rx: &mut Option<watch::Receiver<SignalState>>) -> PressureLevel {
    if let Some(r) = rx {
        if r.changed().await.is_ok() {
            return r.borrow_and_update().level;
        }
        *rx = None;
    }
    std::future::pending().await
}

/// Owns a running recovery task: the operator's trigger and the state.
/// Dropping it stops the task and hands the limiter back whole (out of
/// emergency mode, at the ramp's target).
///
/// `trigger` and `clear` return at once; the task acts on them when it next
/// runs (at once on a multi-thread runtime, at the caller's next `.await`
/// on a current-thread one), and [`state`](RecoveryHandle::state) shows it.
pub struct RecoveryHandle {
    operator: watch::Sender<bool>,
    state: watch::Receiver<RecoveryState>,
    task: JoinHandle<()>,
    limit: LimitHandle,
}

impl RecoveryHandle {
    /// The operator's emergency trigger: enters emergency mode (if not in it
    /// already) and holds it until [`clear`](RecoveryHandle::clear).
    pub fn trigger(&self) {
        self.operator.send_replace(true);
    }

    /// Releases the operator's trigger. Emergency mode ends, and the ramp
    /// begins, once the memory signal is also below `Critical`: clearing
    /// does not overrule the memory signal (force its level with
    /// `Signal::set_override` for that).
    pub fn clear(&self) {
        self.operator.send_replace(false);
    }

    /// Where recovery is now.
    #[must_use]
    pub fn state(&self) -> RecoveryState {
        *self.state.borrow()
    }

    /// A subscription to the state's changes.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<RecoveryState> {
        self.state.clone()
    }
}

impl Drop for RecoveryHandle {
    fn drop(&mut self) {
        self.task.abort();
        match self.state() {
            RecoveryState::Normal => {}
            RecoveryState::Emergency { target } | RecoveryState::Ramping { target, .. } => {
                // The limit first, then emergency off: the limiter opens
                // to non-Critical work only once its limit is the target.
                self.limit.set_limit(target);
                self.limit.set_emergency(false);
            }
        }
    }
}

impl fmt::Debug for RecoveryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryHandle")
            .field("state", &self.state())
            .field("triggered", &*self.operator.borrow())
            .field("finished", &self.task.is_finished())
            .finish()
    }
}
