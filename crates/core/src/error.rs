//! [`ConfigError`]: the one configuration error of the tower-pressure family.

use std::fmt;

/// A configuration value broke a rule. Returned by every `build()` in the
/// tower-pressure crates; the message names the field, quotes the value and
/// states the rule.
///
/// ```
/// use tower_pressure_core::Thresholds;
///
/// let err = Thresholds::builder().high(0.5).build().unwrap_err();
/// assert_eq!(err.field(), "thresholds.high");
/// assert!(err.to_string().contains("0.5"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    field: &'static str,
    value: String,
    rule: String,
}

impl ConfigError {
    /// A new error for `field` holding `value`, which breaks `rule`.
    #[must_use]
    pub fn new(field: &'static str, value: impl fmt::Display, rule: impl Into<String>) -> Self {
        ConfigError {
            field,
            value: value.to_string(),
            rule: rule.into(),
        }
    }

    /// The field at fault, as dotted path (`"thresholds.high"`).
    #[must_use]
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The offending value, as text.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The rule the value broke.
    #[must_use]
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// Checks that a float is a number within `min..=max`.
    ///
    /// # Errors
    ///
    /// When `value` is NaN, infinite or out of range.
    pub fn check_range(field: &'static str, value: f64, min: f64, max: f64) -> Result<f64, Self> {
        if value.is_finite() && (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                field,
                value,
                format!("must be a number in {min}..={max}"),
            ))
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid `{}` = {}: {}",
            self.field, self.value, self.rule
        )
    }
}

impl std::error::Error for ConfigError {}
