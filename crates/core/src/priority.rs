//! Request priorities, cohorts and the [`PriorityOf`] trait through which a
//! layer learns them.

use std::fmt;
use std::str::FromStr;

use crate::Deadline;

/// How important a request is. Five ordered classes; higher is more important.
///
/// The numeric values are stable (`Bulk = 0` … `Critical = 4`) and are what
/// the digits `"0"`–`"4"` parse to.
///
/// ```
/// use tower_pressure_core::Priority;
///
/// assert!(Priority::Critical > Priority::High);
/// assert_eq!(Priority::default(), Priority::Normal);
/// assert_eq!("high".parse::<Priority>(), Ok(Priority::High));
/// assert_eq!("0".parse::<Priority>(), Ok(Priority::Bulk));
/// assert_eq!(Priority::Low.to_string(), "low");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
#[repr(u8)]
pub enum Priority {
    /// Batch work that may wait or be refused first.
    Bulk = 0,
    /// Background tasks (analytics, reports).
    Low = 1,
    /// Standard API requests. The default.
    #[default]
    Normal = 2,
    /// Real-time work (voice streams).
    High = 3,
    /// Work that must never be refused while anything else is served
    /// (health checks, emergency operations).
    Critical = 4,
}

impl Priority {
    /// All priorities, lowest first.
    pub const ALL: [Priority; 5] = [
        Priority::Bulk,
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];

    /// The number of priority classes.
    pub const COUNT: usize = 5;

    /// The priority as an index in `0..5` (`Bulk` is 0), for per-class arrays.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The priority with the given index, `None` when `index >= 5`.
    #[must_use]
    pub const fn from_index(index: usize) -> Option<Priority> {
        match index {
            0 => Some(Priority::Bulk),
            1 => Some(Priority::Low),
            2 => Some(Priority::Normal),
            3 => Some(Priority::High),
            4 => Some(Priority::Critical),
            _ => None,
        }
    }

    /// The lower-case name, also used as the `priority` metric label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Bulk => "bulk",
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when text is not a priority name or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsePriorityError {
    input: String,
}

impl fmt::Display for ParsePriorityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Untrusted input is quoted with `{:?}` so control characters are escaped.
        write!(
            f,
            "unknown priority {:?}: expected bulk, low, normal, high, critical or 0-4",
            self.input
        )
    }
}

impl std::error::Error for ParsePriorityError {}

impl FromStr for Priority {
    type Err = ParsePriorityError;

    /// Parses a name (`"bulk"` … `"critical"`, any case) or a digit `"0"`–`"4"`.
    /// Surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let found = Priority::ALL
            .into_iter()
            .find(|p| t.eq_ignore_ascii_case(p.as_str()))
            .or_else(|| match t.as_bytes() {
                [d @ b'0'..=b'4'] => Priority::from_index(usize::from(d - b'0')),
                _ => None,
            });
        found.ok_or_else(|| ParsePriorityError {
            // Keep the error small even if the input is a huge header value.
            input: s.chars().take(64).collect(),
        })
    }
}

impl TryFrom<String> for Priority {
    type Error = ParsePriorityError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Priority> for String {
    fn from(p: Priority) -> String {
        p.as_str().to_owned()
    }
}

/// A slice of users within a priority class, `0..=127`.
///
/// A cohort is typically a hash of the user or tenant, rotated periodically
/// (WeChat's DAGOR rotates hourly), so that a shedder can refuse *part* of a
/// class rather than all of it. Priority × cohort gives 640 admission levels,
/// see [`Cohort::admission_level`].
///
/// ```
/// use tower_pressure_core::{Cohort, Priority};
///
/// let c = Cohort::try_from(5).unwrap();
/// assert_eq!(c.get(), 5);
/// assert!(Cohort::try_from(128).is_err());
/// assert_eq!(Cohort::from_hash(130).get(), 2);
/// assert!(c.admission_level(Priority::High) > Cohort::MAX.admission_level(Priority::Normal));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cohort(u8);

impl Cohort {
    /// The highest cohort, 127.
    pub const MAX: Cohort = Cohort(127);

    /// The number of cohorts, 128.
    pub const COUNT: usize = 128;

    /// Maps any hash onto a cohort (the hash modulo 128).
    #[must_use]
    pub const fn from_hash(hash: u64) -> Cohort {
        Cohort((hash % 128) as u8)
    }

    /// The cohort number in `0..=127`.
    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The total admission order of `priority` × `self`, in `0..640`:
    /// every cohort of a higher priority ranks above every cohort of a lower one.
    #[must_use]
    pub const fn admission_level(self, priority: Priority) -> u16 {
        priority as u16 * Cohort::COUNT as u16 + self.0 as u16
    }
}

/// The error returned when a number is outside `0..=127`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CohortOutOfRange(pub u8);

impl fmt::Display for CohortOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cohort {} is out of range: must be 0..=127", self.0)
    }
}

impl std::error::Error for CohortOutOfRange {}

impl TryFrom<u8> for Cohort {
    type Error = CohortOutOfRange;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        if usize::from(value) < Cohort::COUNT {
            Ok(Cohort(value))
        } else {
            Err(CohortOutOfRange(value))
        }
    }
}

/// How a layer learns a request's priority, cohort and deadline.
///
/// Implemented for [`http::Request`], where all three are read from the
/// request's extensions (put there by a classifier); a request without a
/// [`Priority`] extension is [`Priority::Normal`]. Implement it for your own
/// request type to use the layers in a non-http tower stack.
///
/// Nothing here reads headers: a client cannot raise its own priority by
/// sending one. Only a classifier configured to trust a header does that.
///
/// ```
/// use tower_pressure_core::{Priority, PriorityOf};
///
/// struct Job { urgent: bool }
///
/// impl PriorityOf for Job {
///     fn priority(&self) -> Priority {
///         if self.urgent { Priority::High } else { Priority::Bulk }
///     }
/// }
///
/// assert_eq!(Job { urgent: true }.priority(), Priority::High);
///
/// let mut req = http::Request::new(());
/// assert_eq!(req.priority(), Priority::Normal);
/// req.extensions_mut().insert(Priority::Critical);
/// assert_eq!(req.priority(), Priority::Critical);
/// ```
pub trait PriorityOf {
    /// The request's priority class.
    fn priority(&self) -> Priority;

    /// The request's cohort within its class; cohort 0 when unknown.
    fn cohort(&self) -> Cohort {
        Cohort::default()
    }

    /// The instant after which the caller no longer wants an answer, if known.
    fn deadline(&self) -> Option<Deadline> {
        None
    }
}

// Each read first checks for an empty extension map (inlined, no lookup):
// on the admission fast path most requests carry nothing.
impl<B> PriorityOf for http::Request<B> {
    #[inline]
    fn priority(&self) -> Priority {
        extension(self).unwrap_or_default()
    }

    #[inline]
    fn cohort(&self) -> Cohort {
        extension(self).unwrap_or_default()
    }

    #[inline]
    fn deadline(&self) -> Option<Deadline> {
        extension(self)
    }
}

/// The request's extension of type `T`, if any.
#[inline]
fn extension<B, T: Copy + Send + Sync + 'static>(req: &http::Request<B>) -> Option<T> {
    let ext = req.extensions();
    if ext.is_empty() {
        return None;
    }
    ext.get::<T>().copied()
}
