//! The known failure modes of adaptive limits, one test each, on the
//! closed-form service of `support::plant` (60 workers, 50 ms each: ideal
//! limit 60).

mod support;

use std::time::Duration;

use support::plant::Plant;
use tokio::time::Instant;
use tower_pressure_adaptive::{
    Aimd, Gradient2, GradientController, LimitAlgorithm, Sample, Vegas, VegasBuilder,
};

const BASE: Duration = Duration::from_millis(50);
const SERVERS: usize = 60;

/// Netflix concurrency-limits PR 134: under modest sustained overload the
/// long RTT follows the short one up, the gradient returns to 1, the queue
/// allowance is added again and the limit climbs without end. Here the limit
/// settles at `tolerance × capacity` and stays there for an hour of windows.
#[test]
fn gradient2_does_not_creep_up_under_sustained_modest_overload() {
    let mut g = Gradient2::builder().initial_limit(20).build().unwrap();
    let mut plant = Plant::new(BASE, SERVERS, g.limit());
    // 100 ms windows: 36,000 windows is an hour.
    let limits = plant.drive(&mut g, 36_000);
    let late = &limits[600..];
    let max = late.iter().copied().max().unwrap();
    // tolerance 1.5 × 60 = 90 (plus one step of the queue allowance).
    assert!(max <= 95, "the limit crept up to {max}");
    assert!(*late.iter().min().unwrap() >= 80, "{:?}", &late[..20]);
    let long = g.long_rtt().unwrap();
    assert!(
        long <= BASE.as_secs_f64() * 1.05,
        "the long RTT followed the short one up: {long}"
    );
}

/// Vegas from 20, probing every 10 s, seeded.
fn probing_vegas() -> VegasBuilder {
    Vegas::builder()
        .initial_limit(20)
        .probe_interval(Duration::from_secs(10))
        .seed(3)
}

/// Netflix issue 165: Vegas's probe takes the current (loaded) latency as
/// the new no-load latency, so under sustained load the no-load latency and
/// the limit drift up. Here probes measure at the probe limit (3): after
/// twenty probes under overload the no-load latency is still the base.
#[test]
fn vegas_no_load_latency_does_not_drift_up_under_sustained_load() {
    let mut v = probing_vegas().build().unwrap();
    let mut plant = Plant::new(BASE, SERVERS, v.limit());
    // 300 s of saturated windows: about twenty probes.
    let limits = plant.drive(&mut v, 3_000);
    assert_eq!(v.rtt_noload(), Some(BASE));
    let probes = limits.iter().filter(|&&l| l == 3).count();
    assert!(probes >= 15, "only {probes} probe windows");
    // Outside probes, the limit stays at capacity + alpha..=beta (3..=6).
    let settled: Vec<usize> = limits[100..].iter().copied().filter(|&l| l > 3).collect();
    assert!(settled.iter().all(|&l| l <= SERVERS + 6 + 6), "{settled:?}");
}

/// The other half of no-load drift: a minimum that is never re-measured
/// outlives a baseline that moved up (a slower dependency), and the queue
/// estimate then says "overloaded" forever. A probe replaces it.
#[test]
fn vegas_forgets_a_stale_minimum_when_the_baseline_moves_up() {
    let mut v = probing_vegas().build().unwrap();
    let mut plant = Plant::new(BASE, SERVERS, v.limit());
    plant.drive(&mut v, 200);
    // Every request now takes twice as long; capacity in requests in flight
    // is unchanged (60 workers).
    plant.base = BASE * 2;
    plant.drive(&mut v, 400);
    assert_eq!(v.rtt_noload(), Some(BASE * 2));
    let limit = plant.drive(&mut v, 50).last().copied().unwrap();
    assert!((SERVERS..=SERVERS + 12).contains(&limit), "limit {limit}");
}

/// Netflix issue 137: requests that time out report a flat latency (the
/// timeout) or none at all, so a latency-only algorithm never lowers the
/// limit. Drops lower every algorithm's limit whatever the latency.
#[test]
fn drops_reduce_every_limit_even_when_latency_is_flat() {
    fn check(name: &str, min: usize, mut a: impl LimitAlgorithm) {
        let t = Instant::now();
        // Settle at flat latency first (and let probes finish).
        for i in 0..20 {
            let limit = a.limit();
            a.update(&Sample::new(t + BASE * i, BASE, 100, limit));
        }
        let before = a.limit();
        for i in 20..30 {
            let limit = a.limit();
            let flat = Sample::new(t + BASE * i, BASE, 90, limit).with_dropped(10);
            a.update(&flat);
        }
        let after_flat = a.limit();
        assert!(
            after_flat < before,
            "{name}: {before} -> {after_flat} with drops at flat latency"
        );
        // Windows of nothing but timeouts: no latency at all.
        for i in 30..40 {
            a.update(&Sample::all_dropped(t + BASE * i, 50, a.limit()));
        }
        assert!(
            a.limit() < after_flat || a.limit() == min,
            "{name}: {after_flat} -> {} with only timeouts",
            a.limit()
        );
    }
    check(
        "aimd",
        1,
        Aimd::builder().initial_limit(50).build().unwrap(),
    );
    check(
        "gradient2",
        1,
        Gradient2::builder().initial_limit(50).build().unwrap(),
    );
    check(
        "vegas",
        1,
        Vegas::builder().initial_limit(50).seed(1).build().unwrap(),
    );
    check(
        "gradient",
        3,
        GradientController::builder()
            .initial_limit(50)
            .seed(1)
            .build()
            .unwrap(),
    );
}

/// Envoy's re-probe: a limit driven to the minimum by a baseline that moved
/// up (every request now twice as slow) measures `min_rtt` again after five
/// windows at the minimum, and grows back.
#[test]
fn gradient_controller_stuck_at_min_measures_again_and_grows_back() {
    let mut g = GradientController::builder()
        .initial_limit(20)
        .buffer(0.0)
        .seed(5)
        .build()
        .unwrap();
    let mut plant = Plant::new(BASE, SERVERS, g.limit());
    plant.drive(&mut g, 100);
    assert_eq!(g.min_rtt(), Some(BASE));
    plant.base = BASE * 2;
    let limits = plant.drive(&mut g, 100);
    assert!(limits.contains(&3), "never reached the minimum: {limits:?}");
    assert_eq!(g.min_rtt(), Some(BASE * 2));
    let last = *limits.last().unwrap();
    assert!(last >= SERVERS * 3 / 4, "stuck at {last}: {limits:?}");
}

/// The same for Gradient2: at the minimum, the window's latency is the
/// latency at the least concurrency allowed, so it becomes the baseline.
/// (A limit cut to the minimum by a storm of timeouts, not by latency: the
/// latency guard keeps a rise alone from getting there.)
#[test]
fn gradient2_stuck_at_min_takes_the_new_baseline_and_grows_back() {
    let mut g = Gradient2::builder()
        .initial_limit(20)
        .min_limit(5)
        .tolerance(1.2)
        .smoothing(0.5)
        .build()
        .unwrap();
    let mut plant = Plant::new(BASE, SERVERS, g.limit());
    plant.drive(&mut g, 200);
    let t = Instant::now() + Duration::from_secs(60);
    for i in 0..20 {
        g.update(&Sample::all_dropped(t + BASE * i, 50, g.limit()));
    }
    assert_eq!(g.limit(), 5, "the timeouts did not reach the minimum");
    // Latency at every concurrency is now four times the old.
    plant.base = BASE * 4;
    let mut plant = Plant::new(plant.base, SERVERS, g.limit());
    let limits = plant.drive(&mut g, 400);
    let last = *limits.last().unwrap();
    assert!(last >= SERVERS * 3 / 4, "stuck at {last}");
}

/// Envoy measures its minimum latency at a concurrency of 3; a probe at 1
/// serves a third as much for three times as long. Vegas pins
/// `probe_limit` (3 by default), reports it while probing, and a limit of
/// 0 or above `max_limit` is refused.
#[test]
fn a_vegas_probe_pins_three_requests_not_one() {
    let mut v = probing_vegas().build().unwrap();
    let mut plant = Plant::new(BASE, SERVERS, v.limit());
    let limits = plant.drive(&mut v, 600);
    assert!(limits.contains(&3), "no probe at 3: {:?}", &limits[..40]);
    assert!(!limits.contains(&1), "a probe pinned 1");
    let mut one = probing_vegas().probe_limit(1).build().unwrap();
    let mut plant = Plant::new(BASE, SERVERS, one.limit());
    assert!(plant.drive(&mut one, 600).contains(&1));
    for bad in [0, 1001] {
        let err = Vegas::builder().probe_limit(bad).build().unwrap_err();
        assert_eq!(err.field(), "vegas.probe_limit", "{bad}");
    }
}

/// A long-term latency that only ever falls under load reads a
/// load-independent rise (every request now twice as slow: a slower
/// dependency, same 60 workers) as queueing forever, and cuts the limit
/// towards its minimum of 1. A rise that does not fall when the limit is
/// cut is not queueing at this limit: it is learned as the new baseline
/// while the limit is still within reach of capacity, and the limit grows
/// back.
#[test]
fn gradient2_learns_a_load_independent_latency_rise_without_collapsing() {
    let mut g = Gradient2::builder().initial_limit(20).build().unwrap();
    let mut plant = Plant::new(BASE, SERVERS, g.limit());
    plant.count = 0;
    plant.drive(&mut g, 600);
    plant.base = BASE * 2;
    let after = plant.drive(&mut g, 1_200);
    let low = after.iter().copied().min().unwrap();
    assert!(low >= SERVERS / 2, "the limit collapsed to {low}");
    let late = &after[600..];
    assert!(
        late.iter()
            .all(|&l| (SERVERS..=SERVERS * 3 / 2 + 5).contains(&l)),
        "{:?}",
        &late[..20]
    );
    let long = g.long_rtt().unwrap();
    assert!(long >= BASE.as_secs_f64() * 1.8, "long RTT {long}");
}

/// With noisy latency (each window's mean off by up to ±50 %,
/// no queueing below 60 in flight) a long-term latency that only ever falls
/// becomes the lowest window ever seen, and the limit sits far below
/// capacity. It must stay at or above capacity.
#[test]
fn gradient2_under_latency_noise_stays_at_capacity() {
    let mut g = Gradient2::builder().initial_limit(60).build().unwrap();
    let plant = Plant::new(BASE, SERVERS, g.limit());
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let t = Instant::now();
    let mut limits = Vec::new();
    for i in 0..6_000u32 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let noise = 0.5 + ((seed >> 11) as f64 / (1u64 << 53) as f64);
        let limit = g.limit();
        let rtt = plant.rtt(limit).mul_f64(noise);
        limits.push(g.update(&Sample::new(t + plant.window * i, rtt, 100, limit)));
    }
    let late = &limits[1_000..];
    let mean = late.iter().sum::<usize>() as f64 / late.len() as f64;
    assert!(mean >= SERVERS as f64, "mean limit {mean:.1} under noise");
    let low = late.iter().copied().min().unwrap();
    assert!(low >= SERVERS / 2, "the limit fell to {low} under noise");
}
