//! `Bottleneck` against a model service: `servers` workers of `work` each,
//! a FIFO queue in front. Below `servers` in flight latency is `work`; above,
//! the excess waits and the rate stays `servers / work`. The ideal limit is
//! `servers` (Little's law: capacity × no-load latency).

use std::time::Duration;

use proptest::prelude::*;
use tower_pressure_adaptive::{Bottleneck, LimitAlgorithm, Sample};

/// One window of a saturating client at `limit` in flight, with the
/// window's mean latency scaled by `1 + noise`. A window lasts 100 ms and
/// holds 10 requests at least, as `AdaptiveLimit`'s defaults close them.
fn window(servers: usize, work: Duration, limit: usize, noise: f64) -> Sample {
    let limit = limit.max(1);
    let in_service = limit.min(servers);
    let rate = in_service as f64 / work.as_secs_f64();
    let span = Duration::from_millis(100).max(Duration::from_secs_f64(10.0 / rate));
    let rtt = work.mul_f64(limit as f64 / in_service as f64 * (1.0 + noise));
    let successes = (rate * span.as_secs_f64()).round().max(1.0) as usize;
    Sample::new(tokio::time::Instant::now(), rtt, successes, limit).with_duration(span)
}

/// Runs `windows` windows and returns the limits it set.
fn drive(
    b: &mut Bottleneck,
    windows: usize,
    mut service: impl FnMut(usize, usize) -> Sample,
) -> Vec<usize> {
    (0..windows)
        .map(|i| {
            let limit = b.limit();
            b.update(&service(i, limit))
        })
        .collect()
}

fn within(value: f64, ideal: f64, share: f64) -> bool {
    (value - ideal).abs() <= share * ideal
}

/// A deterministic ±`amplitude` noise sequence.
fn noise(seed: &mut u64, amplitude: f64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let unit = (*seed >> 11) as f64 / (1u64 << 53) as f64;
    amplitude * (2.0 * unit - 1.0)
}

#[test]
fn it_finds_the_capacity_from_below_and_from_far_above() {
    let work = Duration::from_millis(20);
    for start in [5, 400] {
        let mut b = Bottleneck::builder().initial_limit(start).build().unwrap();
        drive(&mut b, 60, |_, l| window(40, work, l, 0.0));
        assert!(
            within(b.estimate(), 40.0, 0.15),
            "from {start}: estimate {}",
            b.estimate()
        );
        // And the limit never wanders past the probe's reach afterwards.
        let limits = drive(&mut b, 100, |_, l| window(40, work, l, 0.0));
        assert!(
            limits.iter().all(|&l| within(l as f64, 40.0, 0.15)),
            "from {start}: {limits:?}"
        );
    }
}

#[test]
fn a_service_that_loses_half_its_workers_is_cut_to_the_new_capacity_in_a_window() {
    let work = Duration::from_millis(20);
    let mut b = Bottleneck::builder().initial_limit(60).build().unwrap();
    drive(&mut b, 60, |_, l| window(60, work, l, 0.0));
    assert!(within(b.estimate(), 60.0, 0.15), "{}", b.estimate());
    // Half the workers gone: the next window that queues gives rate × E.
    let limits = drive(&mut b, 3, |_, l| window(30, work, l, 0.0));
    assert!(
        limits.iter().any(|&l| within(l as f64, 30.0, 0.15)),
        "{limits:?}"
    );
    drive(&mut b, 30, |_, l| window(30, work, l, 0.0));
    assert!(within(b.estimate(), 30.0, 0.15), "{}", b.estimate());
    // And back: the probes find the workers again within a few cycles.
    drive(&mut b, 30, |_, l| window(60, work, l, 0.0));
    assert!(within(b.estimate(), 60.0, 0.15), "{}", b.estimate());
}

#[test]
fn slower_work_on_the_same_workers_keeps_the_limit_once_a_drain_measured_it() {
    // A gradient on latency reads a 2× slower dependency as a queue and
    // halves the limit for good; the capacity in requests did not change.
    let mut b = Bottleneck::builder().initial_limit(50).build().unwrap();
    drive(&mut b, 60, |_, l| {
        window(50, Duration::from_millis(20), l, 0.0)
    });
    assert!(within(b.estimate(), 50.0, 0.15), "{}", b.estimate());
    drive(&mut b, 60, |_, l| {
        window(50, Duration::from_millis(40), l, 0.0)
    });
    assert!(within(b.estimate(), 50.0, 0.15), "{}", b.estimate());
    let e = b.noload_rtt().expect("measured");
    assert!(within(e, 0.040, 0.15), "{e}");
}

#[test]
fn latency_noise_neither_creeps_nor_collapses_the_limit() {
    let work = Duration::from_millis(20);
    let mut b = Bottleneck::builder().initial_limit(20).build().unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    drive(&mut b, 60, |_, l| {
        window(80, work, l, noise(&mut seed, 0.04))
    });
    let mut estimates = Vec::new();
    for _ in 0..100 {
        drive(&mut b, 10, |_, l| {
            window(80, work, l, noise(&mut seed, 0.04))
        });
        estimates.push(b.estimate());
    }
    assert!(
        estimates.iter().all(|&e| within(e, 80.0, 0.15)),
        "{estimates:?}"
    );
}

#[test]
fn a_small_capacity_is_still_probed_a_request_at_a_time() {
    // 3 × 1.125 rounds down to 3: the probe must go to 4 or the limit
    // would stay below a capacity of 4 for ever.
    let mut b = Bottleneck::builder().initial_limit(2).build().unwrap();
    let limits = drive(&mut b, 80, |_, l| {
        window(4, Duration::from_millis(25), l, 0.0)
    });
    assert_eq!(b.estimate().floor(), 4.0, "{limits:?}");
}

#[test]
fn windows_the_application_did_not_fill_leave_the_estimate_alone() {
    let work = Duration::from_millis(20);
    let mut b = Bottleneck::builder().initial_limit(40).build().unwrap();
    drive(&mut b, 60, |_, l| window(40, work, l, 0.0));
    let before = b.estimate();
    // Ten requests in flight whatever the limit: nothing about the service.
    drive(&mut b, 100, |_, _| {
        Sample::new(tokio::time::Instant::now(), work, 50, 10)
            .with_duration(Duration::from_millis(100))
    });
    assert!((b.estimate() - before).abs() < 1e-9, "{}", b.estimate());
}

#[test]
fn every_gain_the_builder_accepts_finds_the_capacity() {
    let work = Duration::from_millis(20);
    for probe in [1.05, 1.125, 1.2, 1.25, 1.5] {
        for drain in [0.5, 0.75, 0.875, 0.9, 0.95] {
            let built = Bottleneck::builder()
                .probe_gain(probe)
                .drain_gain(drain)
                .build();
            // A drain that stays within the latency tolerance of the
            // estimate could never tell "no longer queued": refused.
            if drain * (1.0 + (probe - 1.0) / 2.0) >= 1.0 {
                assert_eq!(
                    built.unwrap_err().field(),
                    "bottleneck.drain_gain",
                    "probe {probe} drain {drain}"
                );
                continue;
            }
            for start in [5, 400] {
                let mut b = Bottleneck::builder()
                    .initial_limit(start)
                    .probe_gain(probe)
                    .drain_gain(drain)
                    .build()
                    .unwrap();
                drive(&mut b, 150, |_, l| window(40, work, l, 0.0));
                assert!(
                    within(b.estimate(), 40.0, 0.15),
                    "probe {probe} drain {drain} from {start}: {}",
                    b.estimate()
                );
            }
        }
    }
    let field = |r: Result<Bottleneck, tower_pressure_core::ConfigError>| r.unwrap_err().field();
    assert_eq!(
        field(Bottleneck::builder().probe_gain(1.6).build()),
        "bottleneck.probe_gain"
    );
    assert_eq!(
        field(Bottleneck::builder().drain_gain(0.4).build()),
        "bottleneck.drain_gain"
    );
}

#[test]
fn drops_take_their_share_of_the_estimate() {
    let work = Duration::from_millis(20);
    let mut b = Bottleneck::builder().initial_limit(40).build().unwrap();
    drive(&mut b, 60, |_, l| window(40, work, l, 0.0));
    let before = b.estimate();
    let limit = b.limit();
    b.update(&window(40, work, limit, 0.0).with_dropped(50));
    assert!(
        b.estimate() < before * 0.9,
        "{} from {before}",
        b.estimate()
    );
}

#[test]
fn bad_settings_name_their_field() {
    let field =
        |r: Result<Bottleneck, tower_pressure_core::ConfigError>| r.unwrap_err().field().to_owned();
    assert_eq!(
        field(Bottleneck::builder().probe_gain(1.0).build()),
        "bottleneck.probe_gain"
    );
    assert_eq!(
        field(Bottleneck::builder().drain_gain(f64::NAN).build()),
        "bottleneck.drain_gain"
    );
    assert_eq!(
        field(Bottleneck::builder().cruise_windows(0).build()),
        "bottleneck.cruise_windows"
    );
    assert_eq!(
        field(Bottleneck::builder().min_limit(10).max_limit(5).build()),
        "bottleneck.min_limit"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any capacity, work time and start: within ±15 % after 120 windows
    /// (twelve cycles), and the limit always within its bounds.
    #[test]
    fn any_service_is_found(
        servers in 4usize..600,
        work_ms in 1u64..2000,
        start in 1usize..1000,
    ) {
        let work = Duration::from_millis(work_ms);
        let mut b = Bottleneck::builder().initial_limit(start).build().unwrap();
        let limits = drive(&mut b, 120, |_, l| window(servers, work, l, 0.0));
        prop_assert!(limits.iter().all(|&l| (1..=1000).contains(&l)));
        prop_assert!(
            within(b.estimate(), servers as f64, 0.15),
            "servers {} estimate {}", servers, b.estimate()
        );
    }
}
