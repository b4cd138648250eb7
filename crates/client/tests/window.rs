//! The statistics slide: a call is forgotten once it leaves the window.

mod support;

use std::time::Duration;

use http::StatusCode;
use tokio::time::advance;
use tower::Layer;
use tower_pressure_client::{ThrottleConfig, ThrottleLayer};
use tower_pressure_core::Priority;

use support::{backend, send_n, status};

fn refusing_everything(
    layer: &ThrottleLayer,
) -> impl tower::Service<
    http::Request<String>,
    Response = http::Response<String>,
    Error = std::convert::Infallible,
> {
    let (server, _) = backend(|_| status(StatusCode::SERVICE_UNAVAILABLE));
    layer.layer(server)
}

fn seeded(seed: u64) -> ThrottleLayer {
    ThrottleLayer::with_config(ThrottleConfig::builder().seed(seed).build().unwrap())
}

#[tokio::test(start_paused = true)]
async fn after_two_minutes_of_quiet_the_statistics_are_gone() {
    let layer = seeded(1);
    let mut svc = refusing_everything(&layer);
    send_n(&mut svc, Priority::Normal, 100).await;
    assert_eq!(layer.refusal_probability(Priority::Normal), 100.0 / 101.0);

    // With 1 s buckets a call is kept between 119 and 120 s.
    advance(Duration::from_millis(119_999)).await;
    assert_eq!(layer.refusal_probability(Priority::Normal), 100.0 / 101.0);
    advance(Duration::from_millis(1)).await;
    assert_eq!(layer.refusal_probability(Priority::Normal), 0.0);

    // And the next call goes through.
    let (ok_server, calls) = backend(|_| status(StatusCode::OK));
    let mut ok = layer.layer(ok_server);
    assert_eq!(send_n(&mut ok, Priority::Normal, 1).await, 0);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_window_slides_bucket_by_bucket_rather_than_resetting() {
    let layer = seeded(2);
    let mut svc = refusing_everything(&layer);
    send_n(&mut svc, Priority::Normal, 50).await;
    advance(Duration::from_secs(60)).await;
    send_n(&mut svc, Priority::Normal, 50).await;
    assert_eq!(layer.refusal_probability(Priority::Normal), 100.0 / 101.0);

    // Two minutes after the first fifty, only the second fifty remain.
    advance(Duration::from_secs(60)).await;
    assert_eq!(layer.refusal_probability(Priority::Normal), 50.0 / 51.0);
    advance(Duration::from_secs(60)).await;
    assert_eq!(layer.refusal_probability(Priority::Normal), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_shorter_window_forgets_sooner() {
    let config = ThrottleConfig::builder()
        .window(Duration::from_secs(10))
        .buckets(10)
        .seed(3)
        .build()
        .unwrap();
    let layer = ThrottleLayer::with_config(config);
    let mut svc = refusing_everything(&layer);
    send_n(&mut svc, Priority::Low, 20).await;
    assert_eq!(layer.refusal_probability(Priority::Low), 20.0 / 21.0);
    advance(Duration::from_millis(9_999)).await;
    assert_eq!(layer.refusal_probability(Priority::Low), 20.0 / 21.0);
    advance(Duration::from_millis(1)).await;
    assert_eq!(layer.refusal_probability(Priority::Low), 0.0);
}

#[tokio::test(start_paused = true)]
async fn local_refusals_keep_the_pressure_in_memory() {
    let layer = seeded(4);
    let mut svc = refusing_everything(&layer);
    send_n(&mut svc, Priority::Normal, 100).await;
    let before = layer.refusal_probability(Priority::Normal);
    // More calls while the service still refuses: those refused here count
    // too, so the probability rises rather than stays put.
    send_n(&mut svc, Priority::Normal, 100).await;
    let after = layer.refusal_probability(Priority::Normal);
    assert!(after > before, "{before} -> {after}");
    assert_eq!(after, 200.0 / 201.0);
}
