//! [`PressureLevel`] and [`Thresholds`]: from a utilisation reading to a level,
//! with hysteresis.

use std::fmt;
use std::str::FromStr;

use crate::ConfigError;

/// How pressed a resource is. Ordered: `None < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[repr(u8)]
pub enum PressureLevel {
    /// Below every threshold.
    #[default]
    None = 0,
    /// At or above the `low` threshold.
    Low = 1,
    /// At or above the `medium` threshold.
    Medium = 2,
    /// At or above the `high` threshold.
    High = 3,
    /// At or above the `critical` threshold.
    Critical = 4,
}

impl PressureLevel {
    /// All levels, lowest first.
    pub const ALL: [PressureLevel; 5] = [
        PressureLevel::None,
        PressureLevel::Low,
        PressureLevel::Medium,
        PressureLevel::High,
        PressureLevel::Critical,
    ];

    /// The level as an index in `0..5`.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The level with the given index; indexes above 4 are `Critical`.
    #[must_use]
    pub const fn from_index(index: usize) -> PressureLevel {
        match index {
            0 => PressureLevel::None,
            1 => PressureLevel::Low,
            2 => PressureLevel::Medium,
            3 => PressureLevel::High,
            _ => PressureLevel::Critical,
        }
    }

    /// The lower-case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            PressureLevel::None => "none",
            PressureLevel::Low => "low",
            PressureLevel::Medium => "medium",
            PressureLevel::High => "high",
            PressureLevel::Critical => "critical",
        }
    }
}

impl fmt::Display for PressureLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when text is not a pressure level name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLevelError {
    input: String,
}

impl fmt::Display for ParseLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown pressure level {:?}: expected none, low, medium, high or critical",
            self.input
        )
    }
}

impl std::error::Error for ParseLevelError {}

impl FromStr for PressureLevel {
    type Err = ParseLevelError;

    /// Parses a level name in any case, or a digit `"0"`–`"4"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        PressureLevel::ALL
            .into_iter()
            .find(|l| t.eq_ignore_ascii_case(l.as_str()))
            .or_else(|| match t.as_bytes() {
                [d @ b'0'..=b'4'] => Some(PressureLevel::from_index(usize::from(d - b'0'))),
                _ => None,
            })
            .ok_or_else(|| ParseLevelError {
                input: s.chars().take(64).collect(),
            })
    }
}

/// Four monotonic utilisation thresholds that map a reading in `[0, 1]` to a
/// [`PressureLevel`], with hysteresis.
///
/// A level is entered as soon as the reading reaches its threshold, and left
/// only once the reading falls `hysteresis` below it, so that a reading which
/// wobbles around a threshold does not make the level flap: a reading moving
/// by less than half the band changes the level at most once.
///
/// Defaults: 0.60, 0.75, 0.85 and 0.95, with a hysteresis of 0.02.
///
/// ```
/// use tower_pressure_core::{PressureLevel, Thresholds};
///
/// let t = Thresholds::default();
/// assert_eq!(t.level(0.80, PressureLevel::None), PressureLevel::Medium);
/// // Just below 0.75, but within the hysteresis band: stays Medium.
/// assert_eq!(t.level(0.74, PressureLevel::Medium), PressureLevel::Medium);
/// assert_eq!(t.level(0.70, PressureLevel::Medium), PressureLevel::Low);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "ThresholdsBuilder", into = "ThresholdsBuilder")
)]
pub struct Thresholds {
    // Indexed by level: [low, medium, high, critical].
    at: [f64; 4],
    hysteresis: f64,
}

/// The default `low` threshold, 0.60.
const DEFAULT_LOW: f64 = 0.60;
/// The default `medium` threshold, 0.75.
const DEFAULT_MEDIUM: f64 = 0.75;
/// The default `high` threshold, 0.85.
const DEFAULT_HIGH: f64 = 0.85;
/// The default `critical` threshold, 0.95.
const DEFAULT_CRITICAL: f64 = 0.95;
/// The default hysteresis band, 0.02 (two percentage points).
const DEFAULT_HYSTERESIS: f64 = 0.02;

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            at: [DEFAULT_LOW, DEFAULT_MEDIUM, DEFAULT_HIGH, DEFAULT_CRITICAL],
            hysteresis: DEFAULT_HYSTERESIS,
        }
    }
}

impl Thresholds {
    /// A builder starting from the defaults.
    pub fn builder() -> ThresholdsBuilder {
        ThresholdsBuilder::default()
    }

    /// The threshold at which `level` is entered; `0.0` for `None`.
    #[must_use]
    pub fn threshold(&self, level: PressureLevel) -> f64 {
        match level.index() {
            0 => 0.0,
            i => self.at[i - 1],
        }
    }

    /// The hysteresis band.
    #[must_use]
    pub fn hysteresis(&self) -> f64 {
        self.hysteresis
    }

    /// The level for `reading` when the level so far is `current`.
    ///
    /// Rising is immediate: the result is at least the highest level whose
    /// threshold the reading reaches. Falling waits: a level above that is kept
    /// while the reading stays within `hysteresis` below its threshold. A NaN
    /// reading keeps `current`.
    #[must_use]
    pub fn level(&self, reading: f64, current: PressureLevel) -> PressureLevel {
        if reading.is_nan() {
            return current;
        }
        let reached = |offset: f64| {
            let n = self
                .at
                .iter()
                .take_while(|&&t| reading >= t - offset)
                .count();
            PressureLevel::from_index(n)
        };
        let up = reached(0.0);
        if up >= current {
            up
        } else {
            reached(self.hysteresis).min(current)
        }
    }

    /// A copy with every threshold multiplied by `factor` and clamped into
    /// `[min, max]`, keeping them monotonic and every non-zero one above the
    /// hysteresis (so no level becomes one that can never be left) — what a
    /// threshold tuner uses. A non-finite `factor` returns `self` unchanged.
    #[must_use]
    pub fn scaled(&self, factor: f64, min: f64, max: f64) -> Thresholds {
        if !(factor.is_finite() && min.is_finite() && max.is_finite() && min <= max) {
            return *self;
        }
        let (min, max) = (min.clamp(0.0, 1.0), max.clamp(0.0, 1.0));
        let floor = self.hysteresis.next_up();
        let mut at = self.at.map(|t| {
            let scaled = (t * factor).clamp(min, max);
            if t > 0.0 { scaled.max(floor) } else { scaled }
        });
        for i in 1..at.len() {
            at[i] = at[i].max(at[i - 1]);
        }
        Thresholds { at, ..*self }
    }
}

/// Builds validated [`Thresholds`]. Every value must be a number in `[0, 1]`,
/// `low <= medium <= high <= critical`, and the hysteresis in `[0, 0.5]` and
/// below every non-zero threshold.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[must_use]
pub struct ThresholdsBuilder {
    low: f64,
    medium: f64,
    high: f64,
    critical: f64,
    hysteresis: f64,
}

impl Default for ThresholdsBuilder {
    fn default() -> Self {
        let t = Thresholds::default();
        ThresholdsBuilder {
            low: t.at[0],
            medium: t.at[1],
            high: t.at[2],
            critical: t.at[3],
            hysteresis: t.hysteresis,
        }
    }
}

impl ThresholdsBuilder {
    /// The utilisation at which `Low` is entered. Default 0.60.
    pub fn low(mut self, v: f64) -> Self {
        self.low = v;
        self
    }

    /// The utilisation at which `Medium` is entered. Default 0.75.
    pub fn medium(mut self, v: f64) -> Self {
        self.medium = v;
        self
    }

    /// The utilisation at which `High` is entered. Default 0.85.
    pub fn high(mut self, v: f64) -> Self {
        self.high = v;
        self
    }

    /// The utilisation at which `Critical` is entered. Default 0.95.
    pub fn critical(mut self, v: f64) -> Self {
        self.critical = v;
        self
    }

    /// How far below a threshold a reading must fall to leave its level.
    /// Default 0.02 (two percentage points).
    pub fn hysteresis(mut self, v: f64) -> Self {
        self.hysteresis = v;
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when a value is NaN, outside
    /// `[0, 1]`, below the threshold before it, or the hysteresis is outside
    /// `[0, 0.5]` or not below every non-zero threshold.
    pub fn build(self) -> Result<Thresholds, ConfigError> {
        let fields = [
            ("thresholds.low", self.low),
            ("thresholds.medium", self.medium),
            ("thresholds.high", self.high),
            ("thresholds.critical", self.critical),
        ];
        let mut at = [0.0; 4];
        for (i, (field, v)) in fields.into_iter().enumerate() {
            at[i] = ConfigError::check_range(field, v, 0.0, 1.0)?;
            if i > 0 && v < at[i - 1] {
                let (prev, pv) = fields[i - 1];
                return Err(ConfigError::new(
                    field,
                    v,
                    format!("thresholds must be monotonic: must be >= `{prev}` ({pv})"),
                ));
            }
        }
        let hysteresis =
            ConfigError::check_range("thresholds.hysteresis", self.hysteresis, 0.0, 0.5)?;
        // A reading never falls below zero: a level whose threshold is
        // within the hysteresis of zero could never be left.
        if let Some((field, t)) = fields
            .into_iter()
            .find(|&(_, t)| t > 0.0 && hysteresis >= t)
        {
            return Err(ConfigError::new(
                "thresholds.hysteresis",
                hysteresis,
                format!("must be below `{field}` ({t}), or that level could never be left"),
            ));
        }
        Ok(Thresholds { at, hysteresis })
    }
}

impl TryFrom<ThresholdsBuilder> for Thresholds {
    type Error = ConfigError;

    fn try_from(b: ThresholdsBuilder) -> Result<Self, Self::Error> {
        b.build()
    }
}

impl From<Thresholds> for ThresholdsBuilder {
    fn from(t: Thresholds) -> Self {
        ThresholdsBuilder {
            low: t.at[0],
            medium: t.at[1],
            high: t.at[2],
            critical: t.at[3],
            hysteresis: t.hysteresis,
        }
    }
}
