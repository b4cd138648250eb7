//! [`Overloaded`]: the one rejection error of the tower-pressure family.

use std::fmt;
use std::time::Duration;

use crate::{PressureLevel, Priority};

/// The smallest `retry_after` an [`Overloaded`] carries: 1 s, the smallest
/// value `Retry-After` can express (RFC 9110 §10.2.3 counts whole seconds).
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The wait queue was full and the request did not outrank anyone in it,
    /// or a more important class is being refused and the request's class is
    /// kept out meanwhile.
    QueueFull,
    /// The request waited in the queue longer than its class's timeout.
    QueueTimeout,
    /// The request was pushed out of the queue by a more important one.
    Evicted,
    /// The request's deadline would pass before it could be served.
    DeadlineUnmeetable,
    /// Memory pressure at this level refuses the request's class.
    Memory(PressureLevel),
    /// CPU pressure at this level refuses the request's class.
    Cpu(PressureLevel),
    /// Emergency mode: only `Critical` work is admitted.
    Emergency,
    /// Refused by the caller itself, before it was sent: the service it
    /// calls has been turning most recent calls away (client-side adaptive
    /// throttling).
    ClientThrottled,
}

impl Reason {
    /// A short stable name, used as the `reason` metric label.
    #[must_use]
    pub const fn as_label(self) -> &'static str {
        match self {
            Reason::QueueFull => "queue_full",
            Reason::QueueTimeout => "queue_timeout",
            Reason::Evicted => "evicted",
            Reason::DeadlineUnmeetable => "deadline_unmeetable",
            Reason::Memory(_) => "memory",
            Reason::Cpu(_) => "cpu",
            Reason::Emergency => "emergency",
            Reason::ClientThrottled => "client_throttled",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::QueueFull => f.write_str("queue full"),
            Reason::QueueTimeout => f.write_str("timed out in queue"),
            Reason::Evicted => f.write_str("evicted from queue by a more important request"),
            Reason::DeadlineUnmeetable => f.write_str("deadline cannot be met"),
            Reason::Memory(l) => write!(f, "memory pressure {l}"),
            Reason::Cpu(l) => write!(f, "cpu pressure {l}"),
            Reason::Emergency => f.write_str("emergency mode, only critical requests admitted"),
            Reason::ClientThrottled => {
                f.write_str("throttled by the client, the service refused most recent calls")
            }
        }
    }
}

/// A request was refused because the service is overloaded.
///
/// The one rejection error of all tower-pressure layers. Opaque; read it
/// through its accessors. With the `http` feature it becomes a
/// `503 Service Unavailable` with `Retry-After` (or a trailers-only gRPC
/// reply for gRPC requests); with `grpc`, a `tonic::Status`.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_core::{Overloaded, Priority, Reason};
///
/// let err = Overloaded::new(Reason::QueueFull, Priority::Low)
///     .with_retry_after(Duration::from_millis(2500))
///     .with_queue_len(17);
/// assert_eq!(err.reason(), Reason::QueueFull);
/// assert_eq!(err.retry_after_secs(), 3);
/// assert_eq!(err.to_string(), "service overloaded: queue full (priority low, 17 queued)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overloaded {
    reason: Reason,
    priority: Priority,
    retry_after: Duration,
    queue_len: usize,
}

impl Overloaded {
    /// A rejection of a `priority` request for `reason`, with a
    /// `retry_after` of [`MIN_RETRY_AFTER`] and an empty queue.
    #[must_use]
    pub fn new(reason: Reason, priority: Priority) -> Overloaded {
        Overloaded {
            reason,
            priority,
            retry_after: MIN_RETRY_AFTER,
            queue_len: 0,
        }
    }

    /// Sets the advised wait before retrying; raised to at least
    /// [`MIN_RETRY_AFTER`].
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Overloaded {
        self.retry_after = retry_after.max(MIN_RETRY_AFTER);
        self
    }

    /// Sets the queue length at the time of the rejection.
    #[must_use]
    pub fn with_queue_len(mut self, queue_len: usize) -> Overloaded {
        self.queue_len = queue_len;
        self
    }

    /// Why the request was refused.
    #[must_use]
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The refused request's priority.
    #[must_use]
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// How long the client should wait before retrying (at least 1 s).
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// `retry_after` in whole seconds, rounded up, at least 1: the value of
    /// an HTTP `Retry-After` header.
    #[must_use]
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        d.as_secs()
            .saturating_add(u64::from(d.subsec_nanos() > 0))
            .max(1)
    }

    /// How many requests were waiting when this one was refused.
    #[must_use]
    pub fn queue_len(&self) -> usize {
        self.queue_len
    }
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service overloaded: {} (priority {}, {} queued)",
            self.reason, self.priority, self.queue_len
        )
    }
}

impl std::error::Error for Overloaded {}
