//! Reaction time: from a source reading crossing a threshold to the first
//! throttled request, at the default intervals, is at most 250 ms.

mod support;

use std::time::Duration;

use tokio::time::Instant;
use tokio_test::task;
use tower::{Layer, Service, ServiceExt};
use tower_pressure_core::{ManualSource, PressureLevel, Priority};
use tower_pressure_cpu::{CpuSignal, CpuSignalConfig, CpuThrottleLayer};

use support::{Counting, request};

const TARGET: Duration = Duration::from_millis(250);

/// Sets the source from `from` to `to` at `offset` past a sampler tick and
/// returns the time until a request is first delayed, checking every 1 ms.
async fn time_to_first_throttle(from: f64, to: f64, offset: Duration) -> Duration {
    let source = ManualSource::new(from);
    let cpu = CpuSignal::spawn(source.clone());
    // Let the window fill with `from` (the sampler ticks at t = 0, 50, …).
    tokio::time::sleep(Duration::from_secs(1) + offset).await;
    assert!(cpu.level() < PressureLevel::Medium, "{}", cpu.utilization());
    let mut svc =
        CpuThrottleLayer::with_config(cpu, support::uncontended()).layer(Counting::default());
    source.set(to);
    let t0 = Instant::now();
    loop {
        svc.ready().await.unwrap();
        let mut fut = task::spawn(svc.call(request(Priority::Normal, None)));
        if fut.poll().is_pending() {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(2), "never throttled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_across_start_is_throttled_within_250_ms() {
    let bound = CpuSignalConfig::default().reaction_bound();
    for (from, to) in [(0.0, 1.0), (0.2, 0.75), (0.69, 0.71), (0.5, 0.9)] {
        for offset_ms in [1, 17, 25, 49] {
            let took = time_to_first_throttle(from, to, Duration::from_millis(offset_ms)).await;
            assert!(
                took <= bound && took <= TARGET,
                "{from} -> {to} at +{offset_ms} ms: {took:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_burn_is_throttled_within_three_samples() {
    // 0 -> 1 crosses 0.70 once three of the four samples are 1.0.
    let took = time_to_first_throttle(0.0, 1.0, Duration::from_millis(1)).await;
    assert!(took <= Duration::from_millis(150), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_reading_that_stays_below_start_is_never_throttled() {
    let source = ManualSource::new(0.69);
    let cpu = CpuSignal::spawn(source);
    let mut svc = CpuThrottleLayer::with_config(cpu.clone(), support::uncontended())
        .layer(Counting::default());
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        svc.ready().await.unwrap();
        let mut fut = task::spawn(svc.call(request(Priority::Bulk, None)));
        assert!(fut.poll().is_ready());
    }
    assert_eq!(cpu.level(), PressureLevel::Low);
}
