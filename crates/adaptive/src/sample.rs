//! [`Sample`]: what one closed window of measurements tells an algorithm.

use std::time::Duration;

use tokio::time::Instant;

/// The outcome of one admitted request, as a [`Classify`](crate::Classify)
/// decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The request completed; its latency is a sample.
    Success,
    /// The request was dropped below us — overloaded or timed out. Counted
    /// as a drop; its latency is *not* a sample (a timeout's latency is the
    /// timeout, not the service's).
    Dropped,
    /// Says nothing about the service's load: not counted at all. A response
    /// future dropped before completion (the client went away) is always
    /// ignored.
    Ignored,
}

/// The measurements of one closed window, handed to a
/// [`LimitAlgorithm`](crate::LimitAlgorithm).
///
/// A window closes once it is at least `min_window` long *and* holds at
/// least `min_samples` counted requests (successes and drops); see
/// [`AdaptiveLimitBuilder`](crate::AdaptiveLimitBuilder).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Sample {
    /// When the window closed.
    pub at: Instant,
    /// How long the window was open.
    pub duration: Duration,
    /// The smallest latency of a successful request in the window, or `None`
    /// when no request succeeded (every one was dropped).
    pub min_rtt: Option<Duration>,
    /// The mean latency of the successful requests in the window, or `None`
    /// when no request succeeded.
    pub avg_rtt: Option<Duration>,
    /// Successful requests measured.
    pub successes: usize,
    /// Requests dropped below us (overload, timeout).
    pub dropped: usize,
    /// The most requests in flight (through the recording layer) seen when a
    /// request of the window started: how much of the limit was used.
    pub max_in_flight: usize,
}

impl Sample {
    /// A window with `successes` requests of latency `rtt` each and no drop,
    /// `max_in_flight` at most in flight. Handy for driving an algorithm by
    /// hand.
    #[must_use]
    pub fn new(at: Instant, rtt: Duration, successes: usize, max_in_flight: usize) -> Sample {
        Sample {
            at,
            duration: Duration::ZERO,
            min_rtt: Some(rtt),
            avg_rtt: Some(rtt),
            successes,
            dropped: 0,
            max_in_flight,
        }
    }

    /// The same window with `dropped` requests dropped.
    #[must_use]
    pub fn with_dropped(mut self, dropped: usize) -> Sample {
        self.dropped = dropped;
        self
    }

    /// The same window, `duration` long (a rate is `successes / duration`).
    #[must_use]
    pub fn with_duration(mut self, duration: Duration) -> Sample {
        self.duration = duration;
        self
    }

    /// The same window with `min_rtt` as its smallest latency.
    #[must_use]
    pub fn with_min_rtt(mut self, min_rtt: Duration) -> Sample {
        self.min_rtt = Some(min_rtt);
        self
    }

    /// A window in which every one of `dropped` requests was dropped: no
    /// latency at all.
    #[must_use]
    pub fn all_dropped(at: Instant, dropped: usize, max_in_flight: usize) -> Sample {
        Sample {
            at,
            duration: Duration::ZERO,
            min_rtt: None,
            avg_rtt: None,
            successes: 0,
            dropped,
            max_in_flight,
        }
    }

    /// Whether any request of the window was dropped.
    #[must_use]
    pub fn did_drop(&self) -> bool {
        self.dropped > 0
    }

    /// The share of the window's requests that were dropped, in `[0, 1]`
    /// (0 for an empty window). The algorithms cut their limit by this
    /// share rather than by a fixed step per window with any drop: a
    /// service that fails one request in a thousand for reasons of its own
    /// loses a thousandth of its limit, not half of it.
    #[must_use]
    pub fn drop_rate(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.dropped as f64 / n as f64,
        }
    }

    /// Successes and drops.
    #[must_use]
    pub fn count(&self) -> usize {
        self.successes + self.dropped
    }
}
