//! [`Permit`]: one unit of the limited resource, given back on drop.

use std::fmt;

use tower_pressure_core::Priority;

use super::Shared;
use crate::sync::Arc;

/// The right to use one unit of the limited resource. Dropping it gives the
/// unit back — on every path: success, error, panic, cancellation.
#[must_use = "dropping a permit gives its capacity back at once"]
pub struct Permit {
    shared: Arc<Shared>,
    /// When it was granted, in wrapping microseconds since the limiter was
    /// built. Kept to 32 bits so that a permit is two words (holds longer
    /// than 71 minutes are mismeasured, which only nudges the estimates).
    granted_us: u32,
    /// Whether this permit's hold time is measured.
    measured: bool,
    priority: Priority,
}

impl Permit {
    /// A permit already counted in flight; `granted_at` is set when its hold
    /// time is to be measured.
    ///
    /// Inlined: returned from a call, the permit's small fields are written
    /// one by one and read back as one word, which the CPU cannot forward
    /// from its store buffer — a stall that cost more than the rest of the
    /// fast path's admission.
    #[inline]
    pub(crate) fn new(shared: Arc<Shared>, priority: Priority, measure: bool) -> Permit {
        shared.admitted_metric(priority);
        let granted_us = if measure { shared.micros_now() } else { 0 };
        Permit {
            shared,
            granted_us,
            measured: measure,
            priority,
        }
    }

    /// The priority it was granted to.
    #[must_use]
    pub fn priority(&self) -> Priority {
        self.priority
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        // Nobody waits and nothing to record: one CAS, no lock, no clock.
        if !self.measured && self.shared.gate.release_fast() {
            return;
        }
        self.release_slow();
    }
}

impl Permit {
    /// Gives the permit back under the lock: somebody waits, or its hold
    /// time is measured.
    #[cold]
    fn release_slow(&mut self) {
        let held = self.measured.then(|| {
            let us = self.shared.micros_now().wrapping_sub(self.granted_us);
            std::time::Duration::from_micros(u64::from(us))
        });
        self.shared
            .with_wake(|st, now, wake| st.release(held, now, wake));
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("priority", &self.priority)
            .finish()
    }
}
