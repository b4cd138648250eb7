//! [`Deadline`]: the instant after which a caller no longer wants an answer.

use std::time::Duration;

use tokio::time::Instant;

/// The instant by which the caller stops caring about the answer.
///
/// Put into a request's extensions by a classifier (from `grpc-timeout`, a
/// configured header, or a per-priority default). Layers use it to refuse at
/// once work that cannot finish in time instead of queueing it uselessly.
///
/// It is a [`tokio::time::Instant`], so tests can pause and advance time.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_core::Deadline;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let d = Deadline::after(Duration::from_secs(2));
/// assert!(d.remaining() <= Duration::from_secs(2));
/// assert!(!d.is_expired());
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Instant);

impl Deadline {
    /// A deadline at the given instant.
    #[must_use]
    pub const fn at(instant: Instant) -> Deadline {
        Deadline(instant)
    }

    /// A deadline `timeout` from now. A timeout too large to represent is
    /// capped at about thirty years.
    #[must_use]
    pub fn after(timeout: Duration) -> Deadline {
        let now = Instant::now();
        let far = Duration::from_secs(86_400 * 365 * 30);
        Deadline(
            now.checked_add(timeout)
                .unwrap_or_else(|| now + far.min(timeout)),
        )
    }

    /// The instant itself.
    #[must_use]
    pub const fn instant(self) -> Instant {
        self.0
    }

    /// Time left until the deadline; zero once it has passed.
    #[must_use]
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    #[must_use]
    pub fn is_expired(self) -> bool {
        Instant::now() >= self.0
    }

    /// Parses a gRPC `grpc-timeout` header value: at most 8 ASCII digits and a
    /// unit (`H`, `M`, `S`, `m`, `u`, `n`), as the gRPC over HTTP/2 spec
    /// defines it. Anything else is `None` (the caller then falls back to its
    /// default); it never panics.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_pressure_core::Deadline;
    ///
    /// assert_eq!(Deadline::parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
    /// assert_eq!(Deadline::parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
    /// assert_eq!(Deadline::parse_grpc_timeout("123456789S"), None);
    /// assert_eq!(Deadline::parse_grpc_timeout("soon"), None);
    /// ```
    #[must_use]
    pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
        let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
        if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        Some(match unit {
            "H" => Duration::from_secs(n * 3600),
            "M" => Duration::from_secs(n * 60),
            "S" => Duration::from_secs(n),
            "m" => Duration::from_millis(n),
            "u" => Duration::from_micros(n),
            "n" => Duration::from_nanos(n),
            _ => return None,
        })
    }
}
