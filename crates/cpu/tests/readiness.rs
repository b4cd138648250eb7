//! Readiness: `poll_ready` forwards the inner service's readiness and
//! reserves nothing; a delayed call drives its own clone to readiness after
//! the delay.

mod support;

use std::time::Duration;

use http::{Request, Response};
use tokio_test::{assert_pending, assert_ready, assert_ready_err, assert_ready_ok, task};
use tower_pressure_core::{PressureLevel, Priority};
use tower_pressure_cpu::{CpuThrottle, CpuThrottleLayer};
use tower_test::mock;

use support::{request, signal_at};

type Mock = mock::Mock<Request<()>, Response<String>>;

type Handle = mock::Handle<Request<()>, Response<String>>;

fn throttled(level: PressureLevel) -> (mock::Spawn<CpuThrottle<Mock>>, Handle) {
    mock::spawn_layer(CpuThrottleLayer::with_config(
        signal_at(level),
        support::uncontended(),
    ))
}

#[tokio::test(start_paused = true)]
async fn poll_ready_forwards_the_inner_readiness() {
    let (mut svc, mut handle) = throttled(PressureLevel::None);
    handle.allow(0);
    assert_pending!(svc.poll_ready());
    handle.allow(1);
    assert_ready_ok!(svc.poll_ready());
}

#[tokio::test(start_paused = true)]
async fn poll_ready_forwards_the_inner_error() {
    let (mut svc, mut handle) = throttled(PressureLevel::Critical);
    handle.send_error("inner broke");
    assert_ready_err!(svc.poll_ready());
}

#[tokio::test(start_paused = true)]
async fn a_delayed_call_waits_for_its_clone_to_be_ready_after_the_delay() {
    let (mut svc, mut handle) = throttled(PressureLevel::Medium);
    handle.allow(1);
    assert_ready_ok!(svc.poll_ready());
    let mut fut = task::spawn(svc.call(request(Priority::Normal, None)));
    // The inner service is busy when the delay ends.
    handle.allow(0);
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_pending!(fut.poll());
    assert_pending!(task::spawn(handle.next_request()).poll());
    // Once it has room, the request goes through.
    handle.allow(1);
    assert!(fut.is_woken());
    assert_pending!(fut.poll());
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req.extensions().get::<Priority>(), Some(&Priority::Normal));
    send.send_response(Response::new("done".to_owned()));
    let res = assert_ready_ok!(fut.poll());
    assert_eq!(res.body(), "done");
}

#[tokio::test(start_paused = true)]
async fn a_delayed_call_leaves_the_ready_service_for_the_next_call() {
    let (mut svc, mut handle) = throttled(PressureLevel::Medium);
    handle.allow(2);
    assert_ready_ok!(svc.poll_ready());
    let _delayed = task::spawn(svc.call(request(Priority::Normal, None)));
    // No second poll_ready is needed: the readiness taken above is unused.
    assert_ready_ok!(svc.poll_ready());
}

#[tokio::test(start_paused = true)]
async fn an_inner_readiness_error_after_the_delay_is_the_call_error() {
    let (mut svc, mut handle) = throttled(PressureLevel::Medium);
    handle.allow(1);
    assert_ready_ok!(svc.poll_ready());
    let mut fut = task::spawn(svc.call(request(Priority::Normal, None)));
    assert_pending!(fut.poll());
    handle.send_error("inner broke");
    tokio::time::advance(Duration::from_millis(100)).await;
    let err = assert_ready!(fut.poll()).unwrap_err();
    assert_eq!(err.to_string(), "inner broke");
}
