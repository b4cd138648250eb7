//! Drops are acted on as a rate: a steady trickle of failures does not pin a
//! limit to its floor, a real share of drops still brings it down.

use std::time::Duration;

use tokio::time::Instant;
use tower_pressure_adaptive::{Aimd, Gradient2, GradientController, LimitAlgorithm, Sample, Vegas};

/// Every algorithm, starting at `initial`, with Vegas and the gradient
/// controller's first no-load probe done.
fn algorithms(initial: usize) -> Vec<(&'static str, Box<dyn LimitAlgorithm>)> {
    let g2 = Gradient2::builder().initial_limit(initial).max_limit(4000);
    let aimd = Aimd::builder().initial_limit(initial).max_limit(4000);
    let vegas = Vegas::builder()
        .initial_limit(initial)
        .max_limit(4000)
        .seed(1);
    let gradient = GradientController::builder()
        .initial_limit(initial)
        .max_limit(4000)
        .seed(1);
    vec![
        ("gradient2", Box::new(g2.build().unwrap())),
        ("aimd", Box::new(aimd.build().unwrap())),
        ("vegas", Box::new(vegas.build().unwrap())),
        ("gradient", Box::new(gradient.build().unwrap())),
    ]
}

/// Feeds `windows` windows of 1,000 requests at a flat 10 ms, each using the
/// whole limit and with `dropped` of them dropped; returns the last limit.
fn run(algorithm: &mut dyn LimitAlgorithm, windows: usize, dropped: usize) -> usize {
    let t0 = Instant::now();
    let mut limit = algorithm.limit();
    // A first clean window at low concurrency: the no-load latency of the
    // algorithms that probe for it (the others see a quiet window).
    limit = algorithm
        .update(&Sample::new(t0, Duration::from_millis(10), 1_000, 1))
        .max(limit.min(algorithm.limit()));
    for i in 1..=windows {
        let at = t0 + Duration::from_millis(100) * i as u32;
        let sample = Sample::new(at, Duration::from_millis(10), 1_000 - dropped, limit)
            .with_dropped(dropped);
        limit = algorithm.update(&sample);
    }
    limit
}

#[tokio::test(start_paused = true)]
async fn one_failure_in_a_thousand_does_not_pull_a_limit_down() {
    for (name, mut algorithm) in algorithms(200) {
        let limit = run(&mut *algorithm, 100, 1);
        assert!(
            limit >= 180,
            "{name}: 0.1 % drops took the limit from 200 to {limit}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_fifth_of_the_requests_dropped_brings_every_limit_down() {
    for (name, mut algorithm) in algorithms(200) {
        let limit = run(&mut *algorithm, 20, 200);
        assert!(
            limit <= 100,
            "{name}: 20 % drops for 20 windows left the limit at {limit} of 200"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_window_of_timeouts_alone_cuts_the_limit() {
    for (name, mut algorithm) in algorithms(200) {
        run(&mut *algorithm, 1, 0);
        let before = algorithm.limit();
        let after = algorithm.update(&Sample::all_dropped(
            Instant::now() + Duration::from_secs(1),
            50,
            before,
        ));
        assert!(after < before, "{name}: {before} -> {after}");
    }
}
