//! [`PriorityLimiterBuilder`]: the limiter's validated configuration.

use std::time::Duration;

use tower_pressure_core::{ConfigError, EventBus, Priority};

use super::PriorityLimiter;

/// The default concurrency limit, 64: a starting point. Set it from the
/// capacity you measured, or let an adaptive limit drive it.
pub const DEFAULT_LIMIT: usize = 64;
/// The default bound of the wait queue, 1000 (the original design's `maxQueueSize`).
pub const DEFAULT_MAX_QUEUE: usize = 1000;
/// Default queue timeouts, indexed by priority (`Bulk` first): 20 s, 20 s,
/// 10 s, 5 s, 2.5 s — the original design's voice urgencies (low, low,
/// normal, high, realtime).
pub const DEFAULT_QUEUE_TIMEOUTS: [Duration; 5] = [
    Duration::from_secs(20),
    Duration::from_secs(20),
    Duration::from_secs(10),
    Duration::from_secs(5),
    Duration::from_millis(2500),
];
/// Default weights of [`Drain::WeightedFair`], indexed by priority (`Bulk`
/// first): 1, 2, 4, 8, 16.
pub const DEFAULT_WEIGHTS: [f64; 5] = [1.0, 2.0, 4.0, 8.0, 16.0];
/// The default [`queue_margin`](PriorityLimiterBuilder::queue_margin): a
/// newcomer queues when its estimated wait is at most half its timeout.
pub const DEFAULT_QUEUE_MARGIN: f64 = 0.5;
/// The default [`outrank_window`](PriorityLimiterBuilder::outrank_window):
/// 100 ms.
pub const DEFAULT_OUTRANK_WINDOW: Duration = Duration::from_millis(100);
/// The default CoDel interval, 100 ms (Facebook's "Fail at Scale" N).
pub const DEFAULT_CODEL_INTERVAL: Duration = Duration::from_millis(100);
/// The default CoDel target, 5 ms (Facebook's "Fail at Scale" M).
pub const DEFAULT_CODEL_TARGET: Duration = Duration::from_millis(5);

/// Which waiter gets the next free permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Drain {
    /// Highest priority first, first come first served within a class.
    /// A lower class is never admitted while a higher one waits.
    #[default]
    Priority,
    /// Oldest waiter first, whatever its class.
    Fifo,
    /// Newest waiter first, whatever its class.
    Lifo,
    /// Classes take turns in proportion to their weights (smooth weighted
    /// round-robin, as nginx balances upstreams): `Bulk` is slowed but never
    /// starved. First come first served within a class. The anchor is
    /// Kubernetes API Priority and Fairness.
    WeightedFair,
}

/// CoDel-style queue management (Facebook, "Fail at Scale", 2015).
///
/// When the queue has not been empty for `interval`, the queue is standing,
/// not absorbing a burst: the queue timeout drops to `target` and the drain
/// serves the newest waiters first (adaptive LIFO), whose callers are still
/// there, while the oldest time out. `Critical` waiters keep their class's
/// timeout: they are the work that must not be refused while anything else
/// is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codel {
    /// How long the queue must stay non-empty before the mode engages.
    pub interval: Duration,
    /// The queue timeout while it is engaged.
    pub target: Duration,
}

impl Default for Codel {
    fn default() -> Self {
        Codel {
            interval: DEFAULT_CODEL_INTERVAL,
            target: DEFAULT_CODEL_TARGET,
        }
    }
}

/// The settings that do not change at run time.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) drain: Drain,
    pub(crate) codel: Option<Codel>,
    pub(crate) timeouts: [Duration; 5],
    pub(crate) weights: [f64; 5],
    pub(crate) class_caps: [Option<usize>; 5],
    /// By class, `Bulk` first.
    pub(crate) queue_margins: [f64; 5],
    pub(crate) outrank_window: Duration,
}

/// Builds a [`PriorityLimiter`]; every value is checked by [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct PriorityLimiterBuilder {
    pub(crate) limit: usize,
    pub(crate) max_queue: usize,
    pub(crate) config: Config,
    pub(crate) events: Option<EventBus>,
}

impl Default for PriorityLimiterBuilder {
    fn default() -> Self {
        PriorityLimiterBuilder {
            limit: DEFAULT_LIMIT,
            max_queue: DEFAULT_MAX_QUEUE,
            config: Config {
                drain: Drain::default(),
                codel: None,
                timeouts: DEFAULT_QUEUE_TIMEOUTS,
                weights: DEFAULT_WEIGHTS,
                class_caps: [None; 5],
                queue_margins: [DEFAULT_QUEUE_MARGIN; 5],
                outrank_window: DEFAULT_OUTRANK_WINDOW,
            },
            events: None,
        }
    }
}

impl PriorityLimiterBuilder {
    /// How many permits may be held at once. At least 1. Default [`DEFAULT_LIMIT`].
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// How many requests may wait, all classes together. `0` means no
    /// queue: a request that cannot be admitted at once is refused.
    /// Default [`DEFAULT_MAX_QUEUE`].
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// Caps how many requests of one class may wait (within `max_queue`).
    pub fn class_queue_cap(mut self, priority: Priority, cap: usize) -> Self {
        self.config.class_caps[priority.index()] = Some(cap);
        self
    }

    /// Which waiter gets the next permit. Default [`Drain::Priority`].
    pub fn drain(mut self, drain: Drain) -> Self {
        self.config.drain = drain;
        self
    }

    /// How much of its queue timeout a newcomer's estimated wait may use
    /// for it to queue; past that it is refused at once
    /// (`DeadlineUnmeetable`). With room to spare, a waiter rarely becomes
    /// hopeless later — pushed back by more important arrivals, or by a
    /// service that slowed — and is told no after waiting: refusals stay
    /// fast. `1.0` queues whatever is expected to make it; above `1.0`, a
    /// class queues even when it is expected to just miss — as long as it is
    /// not hopeless: whatever the margin, a newcomer that would miss its
    /// timeout even if the classes that overtake it sent two standard
    /// deviations of Poisson noise fewer requests than their rates predict
    /// is refused, as a waiter that became so is shed. The margin applies
    /// while the class may be overloaded; once the limiter has measured a
    /// class arriving at under 0.8 of the rate left to it, a queue of it is
    /// a burst that drains, and its newcomers may use all of their timeout.
    /// In `(0, 2]`; default [`DEFAULT_QUEUE_MARGIN`].
    pub fn queue_margin(mut self, margin: f64) -> Self {
        self.config.queue_margins = [margin; 5];
        self
    }

    /// The [`queue_margin`](Self::queue_margin) of one class. A waiter's
    /// wait varies around its estimate, so with a margin `m` roughly
    /// `e^(-1/m)` of those that queue still time out (13 % at 0.5, 4 % at
    /// 0.3): a class with a short timeout whose refusals must be fast wants a
    /// smaller margin; the lowest class, whose slow refusals matter least and
    /// which near capacity absorbs every swing of the load above it, may
    /// queue on a chance (above `1.0`). In `(0, 2]`.
    pub fn class_queue_margin(mut self, priority: Priority, margin: f64) -> Self {
        self.config.queue_margins[priority.index()] = margin;
        self
    }

    /// Under [`Drain::Priority`]: once a class is refused for load twice
    /// within this window — its queue full, its estimated wait past the
    /// margin, its queue timeout, evicted — for how long no newcomer of a
    /// lower class is admitted or queued (refused at once with `QueueFull`).
    /// One refusal alone can be bad luck, not a class being turned away.
    /// Under overload the classes are then served strictly in order: a permit
    /// that comes free while the queue is momentarily empty is kept for the
    /// class being turned away rather than given to a lower one. The refused
    /// class itself still queues, and lower waiters already queued keep their
    /// place unless the rates say they cannot make it. A refusal because of
    /// the request's own deadline does not count (a client could otherwise
    /// shut out the classes below its own). A class the measured rates show
    /// arriving faster than the rate left to it (the service rate less what
    /// the classes above it arrive at) keeps the classes below it out the
    /// same way, for as long as the rates say so — its refusals come in
    /// bursts, and in the gaps between them a permit went to a lower class.
    /// Zero turns both off; default [`DEFAULT_OUTRANK_WINDOW`].
    pub fn outrank_window(mut self, window: Duration) -> Self {
        self.config.outrank_window = window;
        self
    }

    /// Turns on CoDel-style queue management on top of the drain.
    pub fn codel(mut self, codel: Codel) -> Self {
        self.config.codel = Some(codel);
        self
    }

    /// How long a request of `priority` may wait. Must be more than zero.
    /// Defaults [`DEFAULT_QUEUE_TIMEOUTS`].
    pub fn queue_timeout(mut self, priority: Priority, timeout: Duration) -> Self {
        self.config.timeouts[priority.index()] = timeout;
        self
    }

    /// The share of `priority` under [`Drain::WeightedFair`]. A finite number
    /// above zero. Defaults [`DEFAULT_WEIGHTS`].
    pub fn weight(mut self, priority: Priority, weight: f64) -> Self {
        self.config.weights[priority.index()] = weight;
        self
    }

    /// Publishes evictions, limit changes, emergency changes and sheds here.
    pub fn events(mut self, bus: EventBus) -> Self {
        self.events = Some(bus);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when the limit is 0, a queue
    /// timeout is 0, a weight is not a finite number above 0, the queue
    /// margin is outside `(0, 1]`, or a CoDel
    /// duration is 0 or the target is not below the interval.
    pub fn build(self) -> Result<PriorityLimiter, ConfigError> {
        self.validate()?;
        Ok(PriorityLimiter::from_builder(self))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        const TIMEOUT_FIELDS: [&str; 5] = [
            "queue_timeout.bulk",
            "queue_timeout.low",
            "queue_timeout.normal",
            "queue_timeout.high",
            "queue_timeout.critical",
        ];
        const MARGIN_FIELDS: [&str; 5] = [
            "queue_margin.bulk",
            "queue_margin.low",
            "queue_margin.normal",
            "queue_margin.high",
            "queue_margin.critical",
        ];
        const WEIGHT_FIELDS: [&str; 5] = [
            "weight.bulk",
            "weight.low",
            "weight.normal",
            "weight.high",
            "weight.critical",
        ];
        if self.limit == 0 {
            return Err(ConfigError::new("limit", 0, "must be at least 1"));
        }
        for (field, t) in TIMEOUT_FIELDS.into_iter().zip(self.config.timeouts) {
            if t.is_zero() {
                return Err(ConfigError::new(field, "0s", "must be more than zero"));
            }
        }
        for (field, w) in WEIGHT_FIELDS.into_iter().zip(self.config.weights) {
            if !(w.is_finite() && w > 0.0) {
                return Err(ConfigError::new(
                    field,
                    w,
                    "must be a finite number above 0",
                ));
            }
        }
        for (field, m) in MARGIN_FIELDS.into_iter().zip(self.config.queue_margins) {
            if !(m > 0.0 && m <= 2.0) {
                let all_same = self
                    .config
                    .queue_margins
                    .iter()
                    .all(|&o| o.to_bits() == m.to_bits());
                let field = if all_same { "queue_margin" } else { field };
                return Err(ConfigError::new(field, m, "must be in (0, 2]"));
            }
        }
        if let Some(c) = self.config.codel {
            if c.interval.is_zero() {
                return Err(ConfigError::new(
                    "codel.interval",
                    "0s",
                    "must be more than zero",
                ));
            }
            if c.target.is_zero() || c.target >= c.interval {
                return Err(ConfigError::new(
                    "codel.target",
                    format!("{:?}", c.target),
                    format!(
                        "must be more than zero and below codel.interval ({:?})",
                        c.interval
                    ),
                ));
            }
        }
        Ok(())
    }
}
