//! [`Event`]s — what the system did and why — on an [`EventBus`].

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::{PressureLevel, Priority, Reason, Thresholds};

/// Something a tower-pressure component did, and why.
///
/// Events are for dashboards, logs and tests; nothing in the request path
/// waits for a subscriber. A subscriber that falls behind loses the oldest
/// events ([`broadcast`] semantics), never blocks a request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A resource signal's pressure level changed.
    LevelChanged {
        /// The signal's name (`"memory"`, `"cpu"`).
        resource: Arc<str>,
        /// The level before.
        from: PressureLevel,
        /// The level now.
        to: PressureLevel,
        /// The smoothed utilisation when it changed.
        utilization: f64,
        /// Whether the new level is an operator's override.
        overridden: bool,
    },
    /// A request was refused.
    Shed {
        /// The layer that refused it (`"admission"`, `"memory"`, `"cpu"`).
        layer: &'static str,
        /// The request's priority.
        priority: Priority,
        /// Why.
        reason: Reason,
    },
    /// A queued request was pushed out by a more important newcomer.
    Evicted {
        /// The evicted request's priority.
        priority: Priority,
        /// The newcomer's priority.
        by: Priority,
    },
    /// A concurrency limit changed.
    LimitChanged {
        /// The limit before.
        from: usize,
        /// The limit now.
        to: usize,
    },
    /// The bound of a limiter's wait queue changed (by a tuner or an operator).
    MaxQueueChanged {
        /// The bound before.
        from: usize,
        /// The bound now.
        to: usize,
    },
    /// A signal's thresholds were changed (by a tuner or an operator).
    ThresholdsTuned {
        /// The signal's name.
        resource: Arc<str>,
        /// The thresholds before.
        from: Thresholds,
        /// The thresholds now.
        to: Thresholds,
    },
    /// Emergency mode began: only `Critical` work is admitted.
    EmergencyEntered,
    /// Emergency mode ended.
    EmergencyLeft,
}

/// The default number of events a lagging subscriber may fall behind by.
const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// A broadcast bus of [`Event`]s. Clones share the bus. [`EventBus::default`]
/// keeps up to 1024 events for a lagging subscriber.
///
/// ```
/// use tower_pressure_core::{Event, EventBus};
///
/// let bus = EventBus::new(16);
/// let mut rx = bus.subscribe();
/// bus.emit(Event::EmergencyEntered);
/// assert_eq!(rx.try_recv().unwrap(), Event::EmergencyEntered);
/// ```
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(DEFAULT_EVENT_CAPACITY)
    }
}

impl EventBus {
    /// A bus keeping at most `capacity` events for a lagging subscriber
    /// (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> EventBus {
        let (tx, _) = broadcast::channel(capacity.max(1));
        EventBus { tx }
    }

    /// Publishes an event. Without subscribers it is dropped.
    pub fn emit(&self, event: Event) {
        // An error only means there is no subscriber right now.
        let _ = self.tx.send(event);
    }

    /// Whether anybody listens; lets a hot path skip building an event.
    #[must_use]
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// A new subscription, receiving events emitted from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
