//! The recovery task: [`Recovery::spawn`] and its [`RecoveryHandle`].

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_pressure_core::{PressureLevel, SignalState};

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
    /// refusing all but `Critical` work for good — and the
    /// [`on_change`](super::RecoveryBuilder::on_change) listeners are told
    /// [`RecoveryState::Normal`], so that an adaptive limit they froze
    /// resumes.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[must_use = "dropping the handle stops the recovery"]
    pub fn spawn(self) -> RecoveryHandle {
        let b = self.builder;
        let (operator_tx, mut operator_rx) = watch::channel(false);
        let (state_tx, state_rx) = watch::channel(RecoveryState::Normal);
        let interval = b.step_interval;
        let hold = b.critical_hold.unwrap_or(interval);
        // The task keeps a handle on the signal, so that its sampler lives
        // as long as the recovery that watches it.
        let signal = b.memory;
        let mut memory = signal.as_ref().map(|s| s.subscribe());
        let machine = Arc::new(Mutex::new(Machine {
            limit: b.limit,
            steps: b.steps,
            fixed_target: b.target,
            hooks: b.hooks,
            listeners: b.listeners,
            events: b.events,
            state: RecoveryState::Normal,
            level: PressureLevel::None,
            published: state_tx,
            stopped: false,
        }));
        let shared = machine.clone();
        let task = tokio::spawn(async move {
            let _signal = signal;
            let mut operator = false;
            let mut level = memory
                .as_mut()
                .map_or(PressureLevel::None, |m| m.borrow_and_update().level);
            let mut deadline = None;
            // While set, memory still counts as Critical: it left Critical
            // less than `hold` ago (a level flapping across the threshold
            // holds emergency mode rather than flipping it).
            let mut calm_at: Option<Instant> = None;
            let mut restart = lock(&machine).update(operator, level);
            loop {
                if restart {
                    deadline = Some(Instant::now() + interval);
                }
                if !lock(&machine).ramping() {
                    deadline = None;
                }
                let tick = deadline.unwrap_or_else(Instant::now);
                let calm = calm_at.unwrap_or_else(Instant::now);
                tokio::select! {
                    // Fixed order: the operator, then memory, then the timers.
                    biased;
                    changed = operator_rx.changed() => {
                        if changed.is_err() {
                            return; // The handle is gone.
                        }
                        operator = *operator_rx.borrow_and_update();
                        restart = lock(&machine).update_with(operator, level, level == PressureLevel::Critical || calm_at.is_some());
                    }
                    next = next_level(&mut memory) => {
                        if level == PressureLevel::Critical && next < PressureLevel::Critical && !hold.is_zero() {
                            calm_at = Some(Instant::now() + hold);
                        } else if next == PressureLevel::Critical {
                            calm_at = None;
                        }
                        level = next;
                        restart = lock(&machine).update_with(operator, level, level == PressureLevel::Critical || calm_at.is_some());
                    }
                    () = tokio::time::sleep_until(calm), if calm_at.is_some() => {
                        calm_at = None;
                        restart = lock(&machine).update_with(operator, level, level == PressureLevel::Critical);
                    }
                    () = tokio::time::sleep_until(tick), if deadline.is_some() => {
                        lock(&machine).tick();
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
            machine: shared,
        }
    }
}

/// The machine, whatever a panicking listener left behind (each call is
/// one synchronous step; its state stays consistent).
fn lock(machine: &Mutex<Machine>) -> MutexGuard<'_, Machine> {
    machine.lock().unwrap_or_else(|e| e.into_inner())
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
    machine: Arc<Mutex<Machine>>,
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
        // Synchronously, so that the limiter is whole when drop returns and
        // the listeners (an adaptive limit frozen for the ramp) hear that
        // recovery is over; the machine writes nothing after.
        lock(&self.machine).stop();
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
