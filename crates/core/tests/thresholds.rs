//! Thresholds: validation at build time and hysteresis.

use proptest::prelude::*;
use tower_pressure_core::{PressureLevel, Thresholds};

#[test]
fn nan_threshold_is_a_config_error_naming_the_field() {
    let err = Thresholds::builder().medium(f64::NAN).build().unwrap_err();
    assert_eq!(err.field(), "thresholds.medium");
    assert_eq!(err.value(), "NaN");
}

#[test]
fn out_of_range_threshold_is_a_config_error_naming_the_field() {
    let err = Thresholds::builder().critical(1.5).build().unwrap_err();
    assert_eq!(err.field(), "thresholds.critical");
    assert!(err.to_string().contains("1.5"), "{err}");
    let err = Thresholds::builder().low(-0.1).build().unwrap_err();
    assert_eq!(err.field(), "thresholds.low");
}

#[test]
fn non_monotonic_thresholds_are_a_config_error_naming_the_field() {
    let err = Thresholds::builder().high(0.7).build().unwrap_err();
    assert_eq!(err.field(), "thresholds.high");
    assert!(err.rule().contains("monotonic"), "{err}");
    assert!(err.to_string().contains("thresholds.medium"), "{err}");
}

#[test]
fn hysteresis_outside_its_range_is_a_config_error() {
    for bad in [-0.01, 0.6, f64::INFINITY, f64::NAN] {
        let err = Thresholds::builder().hysteresis(bad).build().unwrap_err();
        assert_eq!(err.field(), "thresholds.hysteresis");
    }
}

#[test]
fn a_hysteresis_that_would_make_a_level_permanent_is_a_config_error() {
    // Low at 0.01 with a 0.02 band: leaving Low would need a reading below
    // zero.
    let err = Thresholds::builder().low(0.01).build().unwrap_err();
    assert_eq!(err.field(), "thresholds.hysteresis");
    assert!(err.to_string().contains("thresholds.low"), "{err}");
    let err = Thresholds::builder()
        .low(0.3)
        .hysteresis(0.3)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "thresholds.hysteresis");
    // Just below is fine, and so is a zero threshold (always at least Low).
    let t = Thresholds::builder().low(0.03).build().unwrap();
    assert_eq!(t.level(0.0, PressureLevel::Low), PressureLevel::None);
    Thresholds::builder().low(0.0).build().unwrap();
}

#[test]
fn scaling_never_brings_a_threshold_within_the_hysteresis_of_zero() {
    let t = Thresholds::default().scaled(0.01, 0.0, 1.0);
    for level in [PressureLevel::Low, PressureLevel::Critical] {
        assert!(t.threshold(level) > t.hysteresis(), "{t:?}");
    }
    // Every level it reaches can still be left.
    let mut level = t.level(1.0, PressureLevel::None);
    assert_eq!(level, PressureLevel::Critical);
    level = t.level(0.0, level);
    assert_eq!(level, PressureLevel::None);
}

#[test]
fn defaults_are_the_original_design_memory_thresholds() {
    let t = Thresholds::default();
    assert_eq!(t.threshold(PressureLevel::Low), 0.60);
    assert_eq!(t.threshold(PressureLevel::Medium), 0.75);
    assert_eq!(t.threshold(PressureLevel::High), 0.85);
    assert_eq!(t.threshold(PressureLevel::Critical), 0.95);
    assert_eq!(Thresholds::builder().build(), Ok(t));
}

#[test]
fn nan_reading_keeps_the_current_level() {
    let t = Thresholds::default();
    assert_eq!(t.level(f64::NAN, PressureLevel::High), PressureLevel::High);
}

#[test]
fn scaled_thresholds_stay_monotonic_and_within_bounds() {
    let t = Thresholds::default().scaled(1.05, 0.5, 0.95);
    assert!((t.threshold(PressureLevel::Low) - 0.63).abs() < 1e-9);
    assert!((t.threshold(PressureLevel::High) - 0.8925).abs() < 1e-9);
    assert_eq!(t.threshold(PressureLevel::Critical), 0.95);
    assert_eq!(
        Thresholds::default().scaled(f64::NAN, 0.5, 0.95),
        Thresholds::default()
    );
}

/// Valid thresholds: four sorted values in [0, 1] and a hysteresis below
/// every non-zero one.
fn any_thresholds() -> impl Strategy<Value = Thresholds> {
    (proptest::collection::vec(0.0f64..=1.0, 4), 0.0f64..0.2).prop_map(|(mut v, h)| {
        v.sort_by(f64::total_cmp);
        let h = v
            .iter()
            .filter(|&&t| t > 0.0)
            .fold(h, |h, &t| h.min(t / 2.0));
        Thresholds::builder()
            .low(v[0])
            .medium(v[1])
            .high(v[2])
            .critical(v[3])
            .hysteresis(h)
            .build()
            .expect("sorted values in range are valid")
    })
}

proptest! {
    #[test]
    fn valid_thresholds_rebuild_from_their_own_values(t in any_thresholds()) {
        let again = Thresholds::builder()
            .low(t.threshold(PressureLevel::Low))
            .medium(t.threshold(PressureLevel::Medium))
            .high(t.threshold(PressureLevel::High))
            .critical(t.threshold(PressureLevel::Critical))
            .hysteresis(t.hysteresis())
            .build();
        prop_assert_eq!(again, Ok(t));
    }

    #[test]
    fn rising_to_a_reading_reaches_exactly_the_levels_it_passes(t in any_thresholds(), r in 0.0f64..=1.0) {
        let level = t.level(r, PressureLevel::None);
        for l in PressureLevel::ALL.into_iter().skip(1) {
            prop_assert_eq!(level >= l, r >= t.threshold(l), "level {} for reading {}", level, r);
        }
    }

    #[test]
    fn the_level_never_falls_below_what_the_reading_reaches(
        t in any_thresholds(), r in 0.0f64..=1.0, cur in 0usize..5,
    ) {
        let cur = PressureLevel::from_index(cur);
        let fresh = t.level(r, PressureLevel::None);
        let held = t.level(r, cur);
        prop_assert!(held >= fresh);
        prop_assert!(held <= fresh.max(cur));
    }

    #[test]
    fn a_reading_wobbling_around_a_threshold_changes_the_level_at_most_once(
        t in any_thresholds(),
        which in 1usize..5,
        eps_frac in 0.0f64..1.0,
        steps in proptest::collection::vec(any::<bool>(), 1..200),
    ) {
        let at = t.threshold(PressureLevel::from_index(which));
        // Within half the hysteresis band, so that no neighbouring threshold
        // closer than the wobble can flap either.
        let eps = t.hysteresis() * eps_frac * 0.499;
        let reading = |up: bool| if up { at + eps } else { at - eps };
        let mut level = t.level(reading(steps[0]), PressureLevel::None);
        let mut changes = 0;
        for &up in &steps[1..] {
            let next = t.level(reading(up), level);
            if next != level {
                changes += 1;
            }
            level = next;
        }
        prop_assert!(changes <= 1, "{} changes", changes);
    }
}
