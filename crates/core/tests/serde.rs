//! Configuration types deserialise from TOML, validated on the way in.
#![cfg(feature = "serde")]

use serde::Deserialize;
use tower_pressure_core::{PerPriority, PressureLevel, Priority, Thresholds};

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

#[derive(Debug, Deserialize, serde::Serialize, PartialEq)]
struct Table {
    weights: PerPriority<f64>,
}

#[test]
fn per_priority_is_a_map_keyed_by_priority_name() {
    let t: Table = toml::from_str(
        "weights = { bulk = 1.0, low = 2.0, Normal = 4.0, high = 8.0, critical = 16.0 }",
    )
    .unwrap();
    assert_eq!(t.weights, PerPriority::from([1.0, 2.0, 4.0, 8.0, 16.0]));
    let text = toml::to_string(&t).unwrap();
    assert!(
        text.contains("bulk = 1.0") && text.contains("critical = 16.0"),
        "{text}"
    );
    assert_eq!(toml::from_str::<Table>(&text).unwrap(), t);
}

#[test]
fn per_priority_needs_every_priority_once_and_no_other_key() {
    let missing =
        toml::from_str::<Table>("weights = { bulk = 1.0, low = 2.0, normal = 4.0, high = 8.0 }")
            .unwrap_err();
    assert!(missing.to_string().contains("critical"), "{missing}");
    let unknown = toml::from_str::<Table>(
        "weights = { bulk = 1, low = 2, normal = 4, high = 8, critical = 16, urgent = 32 }",
    )
    .unwrap_err();
    assert!(
        unknown.to_string().contains("unknown priority"),
        "{unknown}"
    );
    let twice = toml::from_str::<Table>(
        "weights = { bulk = 1, low = 2, normal = 4, high = 8, critical = 16, Bulk = 1 }",
    )
    .unwrap_err();
    assert!(twice.to_string().contains("duplicate"), "{twice}");
}
