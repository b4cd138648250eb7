//! The optional CoDel mode (Facebook's "Fail at Scale"): once the service
//! has been behind for an interval, short queue timeouts and adaptive LIFO.

use std::task::Waker;

use tokio::time::Instant;
use tower_pressure_core::{Priority, Reason};

use super::State;
use crate::limiter::config::Codel;

/// CoDel's standing-queue mode: entered once the service has been behind
/// (no permit free with nobody waiting) for the interval; left once it is
/// no longer behind and an interval has passed with no refusal for load.
/// Leaving at the first free permit instead would make the mode flap: its
/// own short timeouts empty the queue, a permit comes back to nobody, and
/// the next interval would queue with the long class timeouts again.
/// Refusals that say nothing of the load (emergency mode, a request's own
/// lapsed deadline) do not keep it on.
#[derive(Debug, Default)]
pub(super) struct CodelMode {
    on: bool,
    /// Since when no permit has been free with nobody waiting, and how many
    /// fast-path admissions there had been then: one since means a permit
    /// was free with nobody waiting, so the service had caught up.
    busy_since: Option<(Instant, u64)>,
    /// When a request was last refused for load.
    last_refusal: Option<Instant>,
}

impl CodelMode {
    /// Whether the mode is on, as of the last [`update`](Self::update).
    pub(super) fn on(&self) -> bool {
        self.on
    }

    /// A permit is free and nobody waits.
    pub(super) fn caught_up(&mut self) {
        self.busy_since = None;
    }

    /// A request had to queue.
    pub(super) fn fell_behind(&mut self, now: Instant, fast_admissions: u64) {
        if self.busy_since.is_none() {
            self.busy_since = Some((now, fast_admissions));
        }
    }

    /// A request was refused for load.
    pub(super) fn turned_away(&mut self, now: Instant) {
        self.last_refusal = Some(now);
    }

    fn update(&mut self, c: Codel, now: Instant, fast_admissions: u64) {
        // A fast-path admission since the service fell behind found a permit
        // free with nobody waiting: it had caught up, unseen by the lock.
        if self
            .busy_since
            .is_some_and(|(_, seen)| seen != fast_admissions)
        {
            self.caught_up();
        }
        let behind = self
            .busy_since
            .is_some_and(|(since, _)| now.saturating_duration_since(since) >= c.interval);
        let refusing = self
            .last_refusal
            .is_some_and(|t| now.saturating_duration_since(t) < c.interval);
        self.on = behind || (self.on && refusing);
    }
}

impl State {
    /// Whether CoDel's short timeout applies to a newcomer of `p` now.
    pub(super) fn codel_timeout_for(&self, p: Priority) -> Option<Codel> {
        self.config
            .codel
            .filter(|_| self.codel.on() && p != Priority::Critical)
    }

    /// Brings CoDel's mode up to date and, while it is on, refuses the
    /// waiters older than its target.
    pub(super) fn expire_codel(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        let Some(c) = self.config.codel else { return };
        let fast = self.fast_admissions();
        self.codel.update(c, now, fast);
        if !self.codel.on() {
            return;
        }
        // Each class list is in arrival order, so its head is its oldest.
        // `Critical` keeps its own timeout: it is the work that must not be
        // refused while anything else is served.
        for p in Priority::ALL
            .into_iter()
            .filter(|&p| p != Priority::Critical)
        {
            while let Some(key) = self.classes[p.index()].head() {
                if now.saturating_duration_since(self.nodes[key].enqueued) <= c.target {
                    break;
                }
                self.refused_waiter(key, Reason::QueueTimeout, now, wake);
            }
        }
    }
}
