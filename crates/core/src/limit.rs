//! [`LimitHandle`]: how one layer tunes another's concurrency limit without
//! either crate knowing the other.

use std::fmt;
use std::sync::Arc;

/// What a limiter lets others read and tune at run time.
///
/// Implemented by the admission crate's limiter; used by the adaptive crate
/// (which writes the limit) and by operators. Implementations must make every
/// method cheap and safe to call from any thread.
pub trait LimitControl: Send + Sync + 'static {
    /// The concurrency limit in force.
    fn limit(&self) -> usize;

    /// Sets the concurrency limit; values below 1 are raised to 1. Raising it
    /// admits waiters at once; lowering it lets in-flight work drain and never
    /// revokes a permit.
    fn set_limit(&self, limit: usize);

    /// Requests holding a permit now.
    fn in_flight(&self) -> usize;

    /// Requests waiting now.
    fn queue_len(&self) -> usize;

    /// The bound of the wait queue.
    fn max_queue(&self) -> usize;

    /// Sets the bound of the wait queue. Lowering it below the current length
    /// refuses no one already waiting; until the queue drains below it, a
    /// newcomer is refused unless it outranks a waiter, whom it then pushes
    /// out as it would from a full queue.
    fn set_max_queue(&self, max_queue: usize);

    /// Whether emergency mode is on (only `Critical` work admitted).
    fn emergency(&self) -> bool;

    /// Turns emergency mode on or off.
    fn set_emergency(&self, on: bool);
}

/// A cheap, cloneable handle on a limiter's [`LimitControl`].
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use tower_pressure_core::{LimitControl, LimitHandle};
///
/// #[derive(Default)]
/// struct Fixed(AtomicUsize);
///
/// impl LimitControl for Fixed {
///     fn limit(&self) -> usize { self.0.load(Ordering::Relaxed) }
///     fn set_limit(&self, n: usize) { self.0.store(n.max(1), Ordering::Relaxed) }
///     fn in_flight(&self) -> usize { 0 }
///     fn queue_len(&self) -> usize { 0 }
///     fn max_queue(&self) -> usize { 0 }
///     fn set_max_queue(&self, _: usize) {}
///     fn emergency(&self) -> bool { false }
///     fn set_emergency(&self, _: bool) {}
/// }
///
/// let handle = LimitHandle::new(Fixed::default());
/// handle.set_limit(0);
/// assert_eq!(handle.limit(), 1);
/// ```
#[derive(Clone)]
pub struct LimitHandle {
    control: Arc<dyn LimitControl>,
}

impl LimitHandle {
    /// A handle on `control`.
    #[must_use]
    pub fn new(control: impl LimitControl) -> LimitHandle {
        LimitHandle {
            control: Arc::new(control),
        }
    }

    /// A handle on an already shared `control`.
    #[must_use]
    pub fn from_arc(control: Arc<dyn LimitControl>) -> LimitHandle {
        LimitHandle { control }
    }
}

impl std::ops::Deref for LimitHandle {
    type Target = dyn LimitControl;

    fn deref(&self) -> &Self::Target {
        &*self.control
    }
}

impl fmt::Debug for LimitHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitHandle")
            .field("limit", &self.limit())
            .field("in_flight", &self.in_flight())
            .field("queue_len", &self.queue_len())
            .field("max_queue", &self.max_queue())
            .field("emergency", &self.emergency())
            .finish()
    }
}
