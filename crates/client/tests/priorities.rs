//! Each priority has its own statistics; `Critical` is never throttled by
//! default.

mod support;

use std::sync::atomic::Ordering;

use http::{Request, StatusCode};
use tower::Layer;
use tower_pressure_client::{ThrottleConfig, ThrottleLayer};
use tower_pressure_core::Priority;

use support::{backend, send, send_n, status};

fn seeded(config: tower_pressure_client::ThrottleConfigBuilder, seed: u64) -> ThrottleLayer {
    ThrottleLayer::with_config(config.seed(seed).build().unwrap())
}

#[tokio::test(start_paused = true)]
async fn throttling_bulk_does_not_touch_high() {
    let layer = seeded(ThrottleConfig::builder(), 1);
    // The service sheds Bulk and serves High.
    let (bulk_server, _) = backend(|_| status(StatusCode::SERVICE_UNAVAILABLE));
    let (high_server, high_calls) = backend(|_| status(StatusCode::OK));
    let mut bulk = layer.layer(bulk_server);
    let mut high = layer.layer(high_server);

    let refused = send_n(&mut bulk, Priority::Bulk, 200).await;
    assert!(refused > 150, "{refused}");
    assert!(layer.refusal_probability(Priority::Bulk) > 0.99);

    assert_eq!(layer.refusal_probability(Priority::High), 0.0);
    assert_eq!(send_n(&mut high, Priority::High, 200).await, 0);
    assert_eq!(high_calls.load(Ordering::SeqCst), 200);
    for p in [Priority::Low, Priority::Normal, Priority::Critical] {
        assert_eq!(layer.refusal_probability(p), 0.0, "{p}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_without_a_priority_counts_as_normal() {
    let layer = seeded(ThrottleConfig::builder(), 2);
    let (server, _) = backend(|_| status(StatusCode::SERVICE_UNAVAILABLE));
    let mut svc = layer.layer(server);
    for _ in 0..10 {
        send(&mut svc, Request::new(String::new())).await;
    }
    assert_eq!(layer.refusal_probability(Priority::Normal), 10.0 / 11.0);
    assert_eq!(layer.refusal_probability(Priority::Low), 0.0);
}

#[tokio::test(start_paused = true)]
async fn critical_is_never_throttled_by_default() {
    let layer = seeded(ThrottleConfig::builder(), 3);
    let (server, calls) = backend(|_| status(StatusCode::SERVICE_UNAVAILABLE));
    let mut svc = layer.layer(server);
    assert_eq!(send_n(&mut svc, Priority::Critical, 1000).await, 0);
    assert_eq!(calls.load(Ordering::SeqCst), 1000, "every call was sent");
    assert_eq!(layer.refusal_probability(Priority::Critical), 0.0);
}

#[tokio::test(start_paused = true)]
async fn critical_is_throttled_when_configured() {
    let layer = seeded(ThrottleConfig::builder().throttle_critical(true), 4);
    assert!(layer.config().throttles_critical());
    let (server, calls) = backend(|_| status(StatusCode::SERVICE_UNAVAILABLE));
    let mut svc = layer.layer(server);
    let refused = send_n(&mut svc, Priority::Critical, 1000).await;
    assert!(refused > 900, "{refused}");
    assert_eq!(refused + calls.load(Ordering::SeqCst), 1000);
    assert_eq!(
        layer.refusal_probability(Priority::Critical),
        1000.0 / 1001.0
    );
}
