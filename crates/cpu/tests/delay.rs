//! How long requests are delayed: per level and priority, capped, and not at
//! all below `start`.

mod support;

use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready, task};
use tower::{Layer, Service, ServiceExt};
use tower_pressure_core::{Overloaded, PressureLevel, Priority, Reason};
use tower_pressure_cpu::{CpuThrottleConfig, CpuThrottleLayer};

use support::{Counting, request, signal_at};

const P: [Priority; 5] = [
    Priority::Bulk,
    Priority::Low,
    Priority::Normal,
    Priority::High,
    Priority::Critical,
];

/// The time a request of `priority` takes through the layer at `level`.
async fn delay_of(layer: &CpuThrottleLayer, priority: Priority) -> Duration {
    let mut svc = layer.layer(Counting::default());
    let t0 = Instant::now();
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(request(priority, None))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    t0.elapsed()
}

#[tokio::test(start_paused = true)]
async fn delay_scales_with_level_and_priority_as_the_defaults_say() {
    // Rows: levels; columns: Bulk, Low, Normal, High, Critical (ms). The
    // Critical row of Bulk is capped at the default 2 s; High and Critical
    // are never delayed by default.
    let table: [(PressureLevel, [u64; 5]); 3] = [
        (PressureLevel::Medium, [200, 150, 100, 0, 0]),
        (PressureLevel::High, [1000, 750, 500, 0, 0]),
        (PressureLevel::Critical, [2000, 1500, 1000, 0, 0]),
    ];
    for (level, row) in table {
        let layer = CpuThrottleLayer::with_config(signal_at(level), support::uncontended());
        for (priority, ms) in P.into_iter().zip(row) {
            assert_eq!(
                delay_of(&layer, priority).await,
                Duration::from_millis(ms),
                "{level} {priority}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn below_start_nothing_is_delayed_and_the_future_is_ready_at_once() {
    for level in [PressureLevel::None, PressureLevel::Low] {
        let inner = Counting::default();
        let mut svc = CpuThrottleLayer::with_config(signal_at(level), support::uncontended())
            .layer(inner.clone());
        for priority in P {
            let mut fut = task::spawn(svc.call(request(priority, None)));
            assert_ready!(fut.poll()).unwrap();
        }
        assert_eq!(inner.calls(), 5);
    }
}

#[tokio::test(start_paused = true)]
async fn delay_is_capped_at_max_delay() {
    let config = CpuThrottleConfig::builder()
        .delay_uncontended(true)
        .max_delay(Duration::from_millis(300))
        .build()
        .unwrap();
    let layer = CpuThrottleLayer::with_config(signal_at(PressureLevel::Critical), config);
    assert_eq!(
        delay_of(&layer, Priority::Bulk).await,
        Duration::from_millis(300)
    );
    // Normal's 1 s emergency delay is capped too; under the cap, untouched.
    assert_eq!(
        delay_of(&layer, Priority::Normal).await,
        Duration::from_millis(300)
    );
    let config = CpuThrottleConfig::builder()
        .delay_uncontended(true)
        .multiplier(Priority::Critical, 0.1)
        .multiplier(Priority::High, 0.1)
        .max_delay(Duration::from_millis(300))
        .build()
        .unwrap();
    let layer = CpuThrottleLayer::with_config(signal_at(PressureLevel::Critical), config);
    assert_eq!(
        delay_of(&layer, Priority::Critical).await,
        Duration::from_millis(100)
    );
}

#[tokio::test(start_paused = true)]
async fn the_inner_service_is_called_only_after_the_delay() {
    let inner = Counting::default();
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::Medium), support::uncontended())
            .layer(inner.clone());
    let mut fut = task::spawn(svc.call(request(Priority::Normal, None)));
    assert_pending!(fut.poll());
    tokio::time::advance(Duration::from_millis(99)).await;
    assert_pending!(fut.poll());
    assert_eq!(inner.calls(), 0);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(fut.is_woken());
    assert_ready!(fut.poll()).unwrap();
    assert_eq!(inner.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_zero_multiplier_lets_a_class_through_at_once() {
    let config = CpuThrottleConfig::builder()
        .delay_uncontended(true)
        .multiplier(Priority::Critical, 0.0)
        .build()
        .unwrap();
    let mut svc = CpuThrottleLayer::with_config(signal_at(PressureLevel::Critical), config)
        .layer(Counting::default());
    let mut fut = task::spawn(svc.call(request(Priority::Critical, None)));
    assert_ready!(fut.poll()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn bulk_is_refused_at_emergency_when_configured() {
    let config = CpuThrottleConfig::builder()
        .delay_uncontended(true)
        .shed_bulk_at_emergency(true)
        .build()
        .unwrap();
    let inner = Counting::default();
    let mut svc = CpuThrottleLayer::with_config(signal_at(PressureLevel::Critical), config)
        .layer(inner.clone());
    let mut fut = task::spawn(svc.call(request(Priority::Bulk, None)));
    let res = assert_ready!(fut.poll()).unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let err = res.extensions().get::<Overloaded>().unwrap();
    assert_eq!(err.reason(), Reason::Cpu(PressureLevel::Critical));
    assert_eq!(err.priority(), Priority::Bulk);
    assert_eq!(inner.calls(), 0);
    // Low is still delayed, not refused.
    let mut low = task::spawn(svc.call(request(Priority::Low, None)));
    assert_pending!(low.poll());
}

#[tokio::test(start_paused = true)]
async fn a_level_change_applies_to_the_next_request() {
    let signal = signal_at(PressureLevel::None);
    let layer = CpuThrottleLayer::with_config(signal.clone(), support::uncontended());
    assert_eq!(delay_of(&layer, Priority::Normal).await, Duration::ZERO);
    signal.set_override(Some(PressureLevel::High));
    assert_eq!(
        delay_of(&layer, Priority::Normal).await,
        Duration::from_millis(500)
    );
    signal.set_override(None);
    assert_eq!(delay_of(&layer, Priority::Normal).await, Duration::ZERO);
}
