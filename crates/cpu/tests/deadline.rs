//! A delay never runs past the request's deadline: such a request is
//! refused at once.

mod support;

use std::time::Duration;

use http::{HeaderValue, StatusCode};
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready, task};
use tower::{Layer, Service, ServiceExt};
use tower_pressure_core::{Overloaded, PressureLevel, Priority, Reason};
use tower_pressure_cpu::CpuThrottleLayer;

use support::{Counting, request, signal_at};

#[tokio::test(start_paused = true)]
async fn a_request_whose_deadline_would_pass_is_refused_at_once() {
    let inner = Counting::default();
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::High), support::uncontended())
            .layer(inner.clone());
    // Normal at High waits 500 ms; the caller gives up after 300 ms.
    let mut fut =
        task::spawn(svc.call(request(Priority::Normal, Some(Duration::from_millis(300)))));
    let res = assert_ready!(fut.poll()).unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    let err = res.extensions().get::<Overloaded>().unwrap();
    assert_eq!(err.reason(), Reason::Cpu(PressureLevel::High));
    assert_eq!(err.priority(), Priority::Normal);
    assert_eq!(inner.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_exactly_at_the_end_of_the_delay_is_refused_too() {
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::Medium), support::uncontended())
            .layer(Counting::default());
    let mut fut =
        task::spawn(svc.call(request(Priority::Normal, Some(Duration::from_millis(100)))));
    let res = assert_ready!(fut.poll()).unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(start_paused = true)]
async fn a_request_with_time_to_spare_is_delayed_and_served_before_its_deadline() {
    let inner = Counting::default();
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::High), support::uncontended())
            .layer(inner.clone());
    let t0 = Instant::now();
    let deadline = Duration::from_millis(600);
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(request(Priority::Normal, Some(deadline)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(t0.elapsed(), Duration::from_millis(500));
    assert!(t0.elapsed() < deadline);
    assert_eq!(inner.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_expired_deadline_is_not_refused_below_start() {
    // Below `start` the throttle does not look at the request at all; other
    // layers judge deadlines.
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::Low), support::uncontended())
            .layer(Counting::default());
    let mut fut = task::spawn(svc.call(request(Priority::Bulk, Some(Duration::ZERO))));
    assert_eq!(assert_ready!(fut.poll()).unwrap().status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_grpc_request_is_refused_with_a_trailers_only_reply() {
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::Critical), support::uncontended())
            .layer(Counting::default());
    let mut req = request(Priority::Low, Some(Duration::from_millis(50)));
    req.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    let mut fut = task::spawn(svc.call(req));
    let res = assert_ready!(fut.poll()).unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "8");
    assert!(res.headers().contains_key("grpc-retry-pushback-ms"));
    assert!(res.extensions().get::<Overloaded>().is_some());
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_at_least_the_delay_the_request_would_have_had() {
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::Critical), support::uncontended())
            .layer(Counting::default());
    // Bulk at Critical: 2 s (capped), deadline 1 s.
    let mut fut = task::spawn(svc.call(request(Priority::Bulk, Some(Duration::from_secs(1)))));
    let res = assert_ready!(fut.poll()).unwrap();
    assert_eq!(res.headers()["retry-after"], "2");
    assert_pending!(task::spawn(svc.call(request(Priority::Bulk, None))).poll());
}
