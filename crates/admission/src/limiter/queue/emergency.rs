//! Emergency mode: only `Critical` requests get in, and turning it on
//! refuses every other waiter at once.

use std::task::Waker;

use tokio::time::Instant;
use tower_pressure_core::{Priority, Reason};

use super::{State, Status};

impl State {
    /// Whether emergency mode is on.
    pub(crate) fn emergency(&self) -> bool {
        self.gate.emergency()
    }

    /// Whether a `p` request may get in: in emergency mode, only `Critical`.
    pub(super) fn allowed(&self, p: Priority) -> bool {
        p == Priority::Critical || !self.gate.emergency()
    }

    /// Turns emergency mode on (refusing every waiting non-critical request)
    /// or off. Returns the previous setting.
    pub(crate) fn set_emergency(&mut self, on: bool, now: Instant, wake: &mut Vec<Waker>) -> bool {
        let was = self.gate.emergency();
        self.gate.set_emergency(on);
        if on {
            for p in Priority::ALL
                .into_iter()
                .filter(|&p| p != Priority::Critical)
            {
                while let Some(key) = self.classes[p.index()].head() {
                    self.stats.refused(p, Reason::Emergency);
                    self.finish(key, Status::Refused(Reason::Emergency), now, wake);
                }
            }
        }
        self.drain(now, wake);
        was
    }
}
