//! [`PriorityLimiterBuilder`]: the limiter's validated configuration.

use std::time::Duration;

use tower_pressure_core::{ConfigError, EventBus, Priority};

use super::PriorityLimiter;

/// The default concurrency limit: a starting point.
const DEFAULT_LIMIT: usize = 64;
/// The default bound of the wait queue.
const DEFAULT_MAX_QUEUE: usize = 1000;
/// The default queue timeout of every class: what is served under sustained
/// overload is served near the latency users expect of a web request.
const DEFAULT_QUEUE_TIMEOUTS: [Duration; 5] = [Duration::from_secs(1); 5];
/// The default weights of [`Drain::WeightedFair`], `Bulk` first.
const DEFAULT_WEIGHTS: [f64; 5] = [1.0, 2.0, 4.0, 8.0, 16.0];
/// The default CoDel interval (Facebook's "Fail at Scale" N).
const DEFAULT_CODEL_INTERVAL: Duration = Duration::from_millis(100);
/// The default CoDel target (Facebook's "Fail at Scale" M).
const DEFAULT_CODEL_TARGET: Duration = Duration::from_millis(5);

/// The longest queue timeout or CoDel duration `build` accepts: an hour.
/// Far past any request's patience, and small enough that no deadline
/// computed from it can overflow the clock.
const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The largest weight `build` accepts: the credits of the weighted drain
/// stay finite.
const MAX_WEIGHT: f64 = 1e6;

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
///
/// [`Codel::default`] is Facebook's N = 100 ms and M = 5 ms.
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
            },
            events: None,
        }
    }
}

impl PriorityLimiterBuilder {
    /// How many permits may be held at once. At least 1. Default 64: a
    /// starting point. Set it from the capacity you measured, or let an
    /// adaptive limit drive it.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// How many requests may wait, all classes together. `0` means no
    /// queue: a request that cannot be admitted at once is refused.
    /// Default 1000.
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// Caps how many requests of one class may wait (within `max_queue`).
    /// Default: no cap of its own.
    pub fn class_queue_cap(mut self, priority: Priority, cap: usize) -> Self {
        self.config.class_caps[priority.index()] = Some(cap);
        self
    }

    /// Which waiter gets the next permit. Default [`Drain::Priority`].
    pub fn drain(mut self, drain: Drain) -> Self {
        self.config.drain = drain;
        self
    }

    /// Turns on CoDel-style queue management on top of the drain. Default
    /// off.
    pub fn codel(mut self, codel: Codel) -> Self {
        self.config.codel = Some(codel);
        self
    }

    /// How long a request of `priority` may wait: more than zero, at most
    /// an hour. Set it from the class's latency objective, less the time
    /// the work itself takes. It also sets how the queue of that class is
    /// judged: a queue whose waiters have all waited more than a tenth of
    /// the timeout for a whole timeout is standing (see
    /// [`PriorityLimiter`]'s overload rules). Default one second for every
    /// class: a request that cannot be admitted within a second of queueing
    /// is refused, so that what is served under sustained overload is served
    /// near the latency users expect of a web request.
    pub fn queue_timeout(mut self, priority: Priority, timeout: Duration) -> Self {
        self.config.timeouts[priority.index()] = timeout;
        self
    }

    /// The share of `priority` under [`Drain::WeightedFair`]: above zero, at
    /// most a million. Defaults 1, 2, 4, 8 and 16, from `Bulk` to `Critical`.
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
    /// With the `metrics` feature, the limiter registers its counters with
    /// the `metrics` recorder installed when it is built: install the
    /// recorder first.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when the limit is 0, a queue
    /// timeout is 0 or over an hour, a weight is not a number in
    /// `(0, 1e6]`, or a CoDel duration is 0 or over an hour or the target
    /// is not below the interval.
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
            check_duration(field, t)?;
        }
        for (field, w) in WEIGHT_FIELDS.into_iter().zip(self.config.weights) {
            if !(w > 0.0 && w <= MAX_WEIGHT) {
                return Err(ConfigError::new(field, w, "must be a number in (0, 1e6]"));
            }
        }
        if let Some(c) = self.config.codel {
            check_duration("codel.interval", c.interval)?;
            check_duration("codel.target", c.target)?;
            if c.target >= c.interval {
                return Err(ConfigError::new(
                    "codel.target",
                    format!("{:?}", c.target),
                    format!("must be below codel.interval ({:?})", c.interval),
                ));
            }
        }
        Ok(())
    }
}

/// A duration of the configuration: more than zero, at most [`MAX_DURATION`].
fn check_duration(field: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() || d > MAX_DURATION {
        return Err(ConfigError::new(
            field,
            format!("{d:?}"),
            "must be more than zero and at most an hour",
        ));
    }
    Ok(())
}
