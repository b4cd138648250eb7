//! Bad configuration fails at `build()`, naming the field; the defaults are
//! those the docs state.

use std::time::Duration;

use tower_pressure_client::{PushbackPolicy, ThrottleConfig, ThrottleLayer};

#[test]
fn the_defaults_are_k_two_over_two_minutes_in_one_second_buckets() {
    let c = ThrottleConfig::default();
    assert_eq!(c.k(), 2.0);
    assert_eq!(c.window(), Duration::from_secs(120));
    assert_eq!(c.buckets(), 120);
    assert!(!c.throttles_critical());
    assert_eq!(ThrottleConfig::builder().build().unwrap(), c);
    assert_eq!(ThrottleLayer::new().config(), &c);
}

#[test]
fn k_below_one_or_not_a_number_is_refused() {
    for k in [0.999, 0.0, -2.0, f64::NAN, f64::INFINITY] {
        let err = ThrottleConfig::builder().k(k).build().unwrap_err();
        assert_eq!(err.field(), "throttle.k", "{k}");
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
    assert_eq!(ThrottleConfig::builder().k(1.0).build().unwrap().k(), 1.0);
}

#[test]
fn buckets_out_of_range_are_refused() {
    for n in [0, 1001] {
        let err = ThrottleConfig::builder().buckets(n).build().unwrap_err();
        assert_eq!(err.field(), "throttle.buckets");
        assert_eq!(err.value(), n.to_string());
    }
    assert!(ThrottleConfig::builder().buckets(1).build().is_ok());
    assert!(ThrottleConfig::builder().buckets(1000).build().is_ok());
}

#[test]
fn a_window_giving_buckets_under_a_millisecond_is_refused() {
    for window in [Duration::ZERO, Duration::from_micros(119_999)] {
        let err = ThrottleConfig::builder()
            .window(window)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "throttle.window");
    }
    assert!(
        ThrottleConfig::builder()
            .window(Duration::from_millis(120))
            .build()
            .is_ok()
    );
}

#[test]
fn a_max_wait_over_an_hour_is_refused() {
    let err = PushbackPolicy::builder()
        .max_wait(Duration::from_secs(3601))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "pushback.max_wait");
    assert!(
        PushbackPolicy::builder()
            .max_wait(Duration::from_secs(3600))
            .build()
            .is_ok()
    );
}

#[test]
fn a_backoff_over_max_wait_is_refused() {
    let err = PushbackPolicy::builder()
        .max_wait(Duration::from_millis(50))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "pushback.backoff");
    assert!(err.to_string().contains("100ms"), "{err}");
    assert!(
        PushbackPolicy::builder()
            .max_wait(Duration::ZERO)
            .backoff(Duration::ZERO)
            .max_retries(0)
            .build()
            .is_ok()
    );
}
