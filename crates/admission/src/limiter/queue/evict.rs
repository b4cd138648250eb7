//! Push-out eviction: a newcomer that finds the queue full takes the place
//! of a less important waiter.

use std::task::Waker;

use tokio::time::Instant;
use tower_pressure_core::{Priority, Reason};

use super::State;

impl State {
    /// Refuses the newest waiter of the lowest class below `p` to make room.
    pub(super) fn evict_for(&mut self, p: Priority, now: Instant, wake: &mut Vec<Waker>) -> bool {
        let victim = Priority::ALL
            .into_iter()
            .take_while(|&q| q < p)
            .find_map(|q| self.classes[q.index()].tail());
        match victim {
            Some(key) => {
                let victim = self.nodes[key].priority;
                self.last_eviction = Some((victim, p));
                self.refused_waiter(key, Reason::Evicted, now, wake);
                true
            }
            None => false,
        }
    }
}
