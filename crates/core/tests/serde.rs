//! Configuration types deserialise from TOML, validated on the way in.
#![cfg(feature = "serde")]

use serde::Deserialize;
use tower_pressure_core::{PressureLevel, Priority, Thresholds};

#[derive(Debug, Deserialize)]
struct Config {
    default_priority: Priority,
    shed_at: PressureLevel,
    thresholds: Thresholds,
}

#[test]
fn config_deserialises_from_toml() {
    let c: Config = toml::from_str(
        r#"
        default_priority = "High"
        shed_at = "medium"
        [thresholds]
        low = 0.5
        critical = 0.9
        "#,
    )
    .unwrap();
    assert_eq!(c.default_priority, Priority::High);
    assert_eq!(c.shed_at, PressureLevel::Medium);
    assert_eq!(
        c.thresholds,
        Thresholds::builder()
            .low(0.5)
            .critical(0.9)
            .build()
            .unwrap()
    );
}

#[test]
fn invalid_thresholds_in_toml_are_an_error_naming_the_field() {
    let err = toml::from_str::<Config>(
        r#"
        default_priority = "normal"
        shed_at = "high"
        [thresholds]
        medium = 0.95
        "#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("thresholds.high"), "{err}");
}

#[test]
fn unknown_priority_in_toml_is_an_error() {
    let err = toml::from_str::<Config>(
        "default_priority = \"urgent\"\nshed_at = \"high\"\n[thresholds]\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown priority"), "{err}");
}

#[test]
fn thresholds_round_trip_through_toml() {
    let t = Thresholds::builder()
        .low(0.4)
        .hysteresis(0.05)
        .build()
        .unwrap();
    let text = toml::to_string(&t).unwrap();
    assert_eq!(toml::from_str::<Thresholds>(&text).unwrap(), t);
}
