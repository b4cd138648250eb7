//! Bad configuration is a `ConfigError` naming the field; bad input (any
//! sequence of windows) never panics and never leaves `[min, max]`.

use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;
use tower_pressure_adaptive::{
    AdaptiveLimit, Aimd, Gradient2, GradientController, LimitAlgorithm, Sample, Vegas,
};
use tower_pressure_admission::PriorityLimiter;

#[test]
fn bad_bounds_name_the_field() {
    let err = Aimd::builder().min_limit(0).build().unwrap_err();
    assert_eq!(err.field(), "aimd.min_limit");
    let err = Gradient2::builder()
        .min_limit(50)
        .max_limit(10)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "gradient2.min_limit");
    let err = Vegas::builder().max_limit(0).build().unwrap_err();
    assert_eq!(err.field(), "vegas.max_limit");
    let err = GradientController::builder()
        .initial_limit(2)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "gradient.initial_limit");
    assert!(err.to_string().contains('2'), "{err}");
}

#[test]
fn bad_factors_name_the_field() {
    for backoff in [0.0, 1.0, -0.5, f64::NAN, f64::INFINITY] {
        let err = Aimd::builder().backoff(backoff).build().unwrap_err();
        assert_eq!(err.field(), "aimd.backoff", "{backoff}");
    }
    let err = Aimd::builder().timeout(Duration::ZERO).build().unwrap_err();
    assert_eq!(err.field(), "aimd.timeout");
    for smoothing in [0.0, 1.5, f64::NAN] {
        let err = Gradient2::builder()
            .smoothing(smoothing)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "gradient2.smoothing", "{smoothing}");
        let err = Vegas::builder().smoothing(smoothing).build().unwrap_err();
        assert_eq!(err.field(), "vegas.smoothing", "{smoothing}");
    }
    for tolerance in [0.9, f64::NAN, f64::INFINITY] {
        let err = Gradient2::builder()
            .tolerance(tolerance)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "gradient2.tolerance", "{tolerance}");
    }
    let err = Gradient2::builder().long_window(0).build().unwrap_err();
    assert_eq!(err.field(), "gradient2.long_window");
    for jitter in [-0.1, 1.1, f64::NAN] {
        let err = Vegas::builder().probe_jitter(jitter).build().unwrap_err();
        assert_eq!(err.field(), "vegas.probe_jitter", "{jitter}");
        let err = GradientController::builder()
            .probe_jitter(jitter)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "gradient.probe_jitter", "{jitter}");
    }
    for buffer in [-0.1, 1.5, f64::NAN] {
        let err = GradientController::builder()
            .buffer(buffer)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "gradient.buffer", "{buffer}");
    }
    let err = Vegas::builder()
        .probe_interval(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "vegas.probe_interval");
    let err = GradientController::builder()
        .probe_interval(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "gradient.probe_interval");
}

#[test]
fn an_interval_longer_than_a_day_is_refused_rather_than_overflowing_the_clock_later() {
    let huge = Duration::MAX;
    let err = Vegas::builder().probe_interval(huge).build().unwrap_err();
    assert_eq!(err.field(), "vegas.probe_interval");
    let err = GradientController::builder()
        .probe_interval(huge)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "gradient.probe_interval");
    let err = tower_pressure_adaptive::Tuner::builder()
        .interval(huge)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "tuner.interval");
    let limiter = PriorityLimiter::builder().limit(4).build().unwrap();
    let err = tower_pressure_adaptive::Recovery::builder(limiter.limit_handle())
        .step_interval(huge)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "recovery.step_interval");
    // A day itself is fine.
    Vegas::builder()
        .probe_interval(tower_pressure_adaptive::MAX_INTERVAL)
        .build()
        .unwrap();
}

#[test]
fn zero_min_samples_is_refused() {
    let limiter = PriorityLimiter::builder().build().unwrap();
    let err = AdaptiveLimit::builder(Aimd::default(), limiter.limit_handle())
        .min_samples(0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "adaptive.min_samples");
}

#[test]
fn a_zero_cancel_objective_is_refused() {
    let limiter = PriorityLimiter::builder().build().unwrap();
    let err = AdaptiveLimit::builder(Aimd::default(), limiter.limit_handle())
        .cancel_objective(Some(Duration::ZERO))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "adaptive.cancel_objective");
}

#[test]
fn the_defaults_build() {
    assert_eq!(Aimd::default().limit(), 20);
    assert_eq!(Gradient2::default().limit(), 20);
    assert_eq!(Vegas::default().limit(), 20);
    assert_eq!(GradientController::default().limit(), 20);
}

/// One arbitrary window: latency from nothing to an hour (or none), any
/// drop count, any in-flight peak, any gap.
fn window() -> impl Strategy<Value = (u64, Option<u64>, u64, usize, usize, usize)> {
    (
        0..10_000_000u64,
        proptest::option::of(0..3_600_000_000u64),
        0..3_600_000_000u64,
        0..100_000usize,
        0..1_000usize,
        0..100_000usize,
    )
}

fn algorithms(min: usize, max: usize) -> Vec<Box<dyn LimitAlgorithm>> {
    vec![
        Box::new(
            Aimd::builder()
                .min_limit(min)
                .max_limit(max)
                .initial_limit(min)
                .build()
                .unwrap(),
        ),
        Box::new(
            Gradient2::builder()
                .min_limit(min)
                .max_limit(max)
                .initial_limit(min)
                .build()
                .unwrap(),
        ),
        Box::new(
            Vegas::builder()
                .min_limit(min)
                .max_limit(max)
                .initial_limit(min)
                .probe_interval(Duration::from_secs(5))
                .seed(1)
                .build()
                .unwrap(),
        ),
        Box::new(
            GradientController::builder()
                .min_limit(min)
                .max_limit(max)
                .initial_limit(min)
                .probe_interval(Duration::from_secs(5))
                .seed(1)
                .build()
                .unwrap(),
        ),
    ]
}

proptest! {
    #[test]
    fn any_windows_keep_every_limit_within_its_bounds(
        min in 1usize..50,
        span in 0usize..500,
        windows in proptest::collection::vec(window(), 1..200),
    ) {
        let max = min + span;
        let mut at = Instant::now();
        for mut a in algorithms(min, max) {
            for &(gap, avg, min_rtt, successes, dropped, in_flight) in &windows {
                at += Duration::from_micros(gap);
                let sample = match avg {
                    Some(avg) => Sample::new(at, Duration::from_micros(avg), successes, in_flight)
                        .with_min_rtt(Duration::from_micros(min_rtt))
                        .with_dropped(dropped),
                    None => Sample::all_dropped(at, dropped, in_flight),
                };
                let limit = a.update(&sample);
                prop_assert!((min..=max).contains(&limit), "{a:?} gave {limit}");
                prop_assert_eq!(limit, a.limit());
            }
        }
    }
}

#[test]
fn an_adaptive_limit_starts_from_the_limit_the_limiter_was_built_with() {
    for algorithm in algorithms(1, 1000) {
        let limiter = PriorityLimiter::builder().limit(64).build().unwrap();
        let adaptive = AdaptiveLimit::new(algorithm, limiter.limit_handle());
        assert_eq!(limiter.limit(), 64, "{adaptive:?}");
        assert_eq!(adaptive.algorithm_limit(), 64);
    }
    // Clamped to the algorithm's bounds; or the algorithm's own start on request.
    let limiter = PriorityLimiter::builder().limit(5_000).build().unwrap();
    let _capped = AdaptiveLimit::new(Gradient2::default(), limiter.limit_handle());
    assert_eq!(limiter.limit(), 1000);
    let limiter = PriorityLimiter::builder().limit(64).build().unwrap();
    let _own = AdaptiveLimit::builder(Gradient2::default(), limiter.limit_handle())
        .start_at_limiter(false)
        .build()
        .unwrap();
    assert_eq!(limiter.limit(), 20);
}
