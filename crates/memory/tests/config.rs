//! Bad configuration is a `ConfigError` naming the field, at `build()`.

use std::time::Duration;

use tower_pressure_core::{PressureLevel, Priority};
use tower_pressure_memory::{MemoryHooks, MemoryShedConfig, MemorySignal};

#[test]
fn cohort_fractions_outside_zero_to_one_are_refused() {
    for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        let err = MemoryShedConfig::builder()
            .cohort_fraction(PressureLevel::High, bad)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "memory_shed.cohort_fraction.high", "{bad}");
    }
}

#[test]
fn a_higher_level_admitting_a_lower_class_is_refused() {
    let err = MemoryShedConfig::builder()
        .min_priority(PressureLevel::High, Priority::Bulk)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "memory_shed.min_priority.high");
    assert!(err.to_string().contains("medium"), "{err}");
}

#[test]
fn a_higher_level_admitting_more_cohorts_of_the_same_class_is_refused() {
    let err = MemoryShedConfig::builder()
        .min_priority(PressureLevel::High, Priority::Low)
        .cohort_fraction(PressureLevel::Medium, 0.5)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "memory_shed.cohort_fraction.high");
}

#[test]
fn a_zero_retry_after_is_refused() {
    let err = MemoryShedConfig::builder()
        .retry_after(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "memory_shed.retry_after");
}

#[test]
fn a_stricter_table_builds() {
    let config = MemoryShedConfig::builder()
        .min_priority(PressureLevel::Low, Priority::Low)
        .min_priority(PressureLevel::Medium, Priority::Normal)
        .cohort_fraction(PressureLevel::Medium, 0.5)
        .cohort_fraction(PressureLevel::High, 0.25)
        .build()
        .unwrap();
    assert_eq!(config.min_priority(PressureLevel::Low), Priority::Low);
    assert_eq!(config.cohort_fraction(PressureLevel::Medium), 0.5);
    assert_eq!(
        MemoryShedConfig::default().retry_after(),
        Duration::from_secs(1)
    );
}

#[test]
fn shrink_factors_outside_zero_to_one_are_refused() {
    for bad in [-1.0, 1.01, f64::NAN] {
        let err = MemoryHooks::builder()
            .shrink_factor(PressureLevel::Critical, bad)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "memory_hooks.shrink_factor.critical", "{bad}");
    }
}

#[test]
fn a_higher_level_keeping_more_of_a_cache_is_refused() {
    let err = MemoryHooks::builder()
        .shrink_factor(PressureLevel::High, 0.9)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "memory_hooks.shrink_factor.high");
}

#[test]
fn a_zero_signal_interval_is_refused() {
    let err = MemorySignal::config()
        .interval(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "signal.interval");
}
