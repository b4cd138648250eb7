//! Bad configuration is a `ConfigError` naming the field, at `build()`.

use std::time::Duration;

use proptest::prelude::*;
use tower_pressure_core::{PerPriority, PressureLevel, Priority};
use tower_pressure_cpu::{CpuSignalConfig, CpuThrottleConfig};

#[test]
fn negative_or_nan_multipliers_are_refused() {
    for (m, p, field) in [
        (-0.5, Priority::Normal, "cpu_throttle.multiplier.normal"),
        (f64::NAN, Priority::Bulk, "cpu_throttle.multiplier.bulk"),
        (
            f64::INFINITY,
            Priority::Bulk,
            "cpu_throttle.multiplier.bulk",
        ),
        (1000.0, Priority::Bulk, "cpu_throttle.multiplier.bulk"),
    ] {
        let err = CpuThrottleConfig::builder()
            .multiplier(p, m)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), field, "{m}");
    }
}

#[test]
fn a_higher_class_may_not_wait_longer_than_a_lower_one() {
    let err = CpuThrottleConfig::builder()
        .multiplier(Priority::High, 1.2)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "cpu_throttle.multiplier.high");
    assert!(err.to_string().contains("1.2"));
}

#[test]
fn delays_must_not_shrink_as_the_level_rises() {
    let err = CpuThrottleConfig::builder()
        .aggressive_delay(Duration::from_millis(50))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "cpu_throttle.delay.high");
    let err = CpuThrottleConfig::builder()
        .delay(PressureLevel::None, Duration::from_millis(1))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "cpu_throttle.delay.none");
}

#[test]
fn zero_delays_where_they_would_disable_the_throttle_are_refused() {
    let err = CpuThrottleConfig::builder()
        .start_delay(Duration::ZERO)
        .aggressive_delay(Duration::ZERO)
        .emergency_delay(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "cpu_throttle.delay.critical");
    let err = CpuThrottleConfig::builder()
        .max_delay(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "cpu_throttle.max_delay");
}

#[test]
fn a_zero_start_delay_moves_the_start_up_a_level() {
    let c = CpuThrottleConfig::builder()
        .start_delay(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(c.start_level(), PressureLevel::High);
    assert_eq!(
        CpuThrottleConfig::default().start_level(),
        PressureLevel::Medium
    );
}

#[test]
fn non_monotonic_thresholds_are_refused() {
    let err = CpuSignalConfig::builder().start(0.9).build().unwrap_err();
    assert_eq!(err.field(), "cpu.aggressive");
    let err = CpuSignalConfig::builder()
        .emergency(0.8)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "cpu.emergency");
    let err = CpuSignalConfig::builder()
        .start(f64::NAN)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "cpu.start");
    let err = CpuSignalConfig::builder().warm(-0.1).build().unwrap_err();
    assert_eq!(err.field(), "cpu.warm");
}

#[test]
fn a_zero_interval_or_window_is_refused() {
    let err = CpuSignalConfig::builder()
        .interval(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "cpu.interval");
    for w in [0, 3601] {
        let err = CpuSignalConfig::builder().window(w).build().unwrap_err();
        assert_eq!(err.field(), "cpu.window");
    }
    let err = CpuSignalConfig::builder()
        .hysteresis(0.6)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "cpu.hysteresis");
}

#[test]
fn the_default_signal_meets_the_250_ms_reaction_target() {
    let c = CpuSignalConfig::default();
    assert!(c.reaction_bound() <= Duration::from_millis(250));
    let t = c.thresholds();
    assert_eq!(t.threshold(PressureLevel::Medium), 0.70);
    assert_eq!(t.threshold(PressureLevel::High), 0.85);
    assert_eq!(t.threshold(PressureLevel::Critical), 0.95);
}

proptest! {
    #[test]
    fn any_valid_config_delays_within_the_cap_and_by_priority_order(
        mut ms in proptest::array::uniform5(0.0f64..=10.0),
        base in 1u64..5_000,
        cap in 1u64..10_000,
    ) {
        ms.sort_by(|a, b| b.total_cmp(a));
        let c = CpuThrottleConfig::builder()
            .multipliers(PerPriority::from(ms))
            .start_delay(Duration::from_millis(base))
            .aggressive_delay(Duration::from_millis(base))
            .emergency_delay(Duration::from_millis(base))
            .max_delay(Duration::from_millis(cap))
            .build()
            .unwrap();
        let ps = [Priority::Bulk, Priority::Low, Priority::Normal, Priority::High, Priority::Critical];
        for level in PressureLevel::ALL {
            for w in ps.windows(2) {
                prop_assert!(c.delay(level, w[0]) >= c.delay(level, w[1]));
            }
            for p in ps {
                prop_assert!(c.delay(level, p) <= Duration::from_millis(cap));
            }
        }
    }

    #[test]
    fn huge_delays_are_capped_never_a_panic(secs in any::<u64>(), m in 0.0f64..=100.0) {
        let huge = Duration::from_secs(secs);
        let c = CpuThrottleConfig::builder()
            .multipliers(PerPriority::from([m; 5]))
            .emergency_delay(huge)
            .max_delay(Duration::MAX)
            .build();
        if let Ok(c) = c {
            let _ = c.delay(PressureLevel::Critical, Priority::Bulk);
        }
    }

    #[test]
    fn any_float_as_a_multiplier_is_a_value_or_an_error_never_a_panic(m in any::<f64>()) {
        let r = CpuThrottleConfig::builder().multiplier(Priority::Bulk, m).build();
        prop_assert_eq!(r.is_ok(), (1.5..=100.0).contains(&m));
    }
}

#[cfg(feature = "serde")]
mod from_toml {
    use std::time::Duration;

    use tower_pressure_core::{PressureLevel, Priority};
    use tower_pressure_cpu::{CpuSignalConfig, CpuThrottleConfig};

    #[test]
    fn a_throttle_config_reads_from_toml_with_defaults_for_what_is_left_out() {
        let c: CpuThrottleConfig = toml::from_str(
            "max_delay_ms = 800\nshed_bulk_at_emergency = true\n[multipliers]\ncritical = 0.0\n",
        )
        .unwrap();
        assert_eq!(c.max_delay(), Duration::from_millis(800));
        assert!(c.sheds_bulk_at_emergency());
        assert_eq!(c.multiplier(Priority::Critical), 0.0);
        assert_eq!(
            c.base_delay(PressureLevel::High),
            Duration::from_millis(500)
        );
        let empty: CpuThrottleConfig = toml::from_str("").unwrap();
        assert_eq!(empty, CpuThrottleConfig::default());
    }

    #[test]
    fn a_bad_throttle_config_in_toml_names_the_field() {
        let err = toml::from_str::<CpuThrottleConfig>("[multipliers]\nlow = -1.0\n").unwrap_err();
        assert!(
            err.to_string().contains("cpu_throttle.multiplier.low"),
            "{err}"
        );
        assert!(toml::from_str::<CpuThrottleConfig>("delay = 5\n").is_err());
    }

    #[test]
    fn a_signal_config_reads_from_toml_and_is_validated() {
        let c: CpuSignalConfig =
            toml::from_str("start = 0.6\nwindow = 8\ninterval_ms = 25\n").unwrap();
        assert_eq!(c.window(), 8);
        assert_eq!(c.reaction_bound(), Duration::from_millis(200));
        assert_eq!(c.thresholds().threshold(PressureLevel::Medium), 0.6);
        let err = toml::from_str::<CpuSignalConfig>("start = 0.9\n").unwrap_err();
        assert!(err.to_string().contains("cpu.aggressive"), "{err}");
    }
}
