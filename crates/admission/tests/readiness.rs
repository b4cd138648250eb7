//! `poll_ready` reserves nothing: hyper polls readiness on idle keep-alive
//! connections, so a layer that took a permit there would let idle
//! connections starve busy ones. Readiness is the inner service's; the wait
//! for a permit is in the response future.

mod support;

use support::{Job, assert_idle, limiter};
use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};
use tower::{Layer, Service};
use tower_pressure_admission::{AdmissionLayer, GenericAdmissionLayer};
use tower_pressure_core::Priority;
use tower_test::mock;

#[tokio::test(start_paused = true)]
async fn ready_clones_hold_no_permit_and_a_call_still_gets_the_only_one() {
    let l = limiter(1, 4);
    let (svc, mut handle) = mock::pair::<Job, &'static str>();
    handle.allow(10);
    let layered = GenericAdmissionLayer::new(l.clone()).layer(svc);
    // Ten idle "connections", each polled ready.
    let mut idle: Vec<_> = (0..10).map(|_| layered.clone()).collect();
    for s in &mut idle {
        let mut ready = task::spawn(std::future::poll_fn(|cx| s.poll_ready(cx)));
        assert_ready_ok!(ready.poll());
    }
    assert_eq!(l.snapshot().in_flight, 0, "readiness took no permit");
    // The one permit goes to the request that is actually made.
    let mut fut = task::spawn(idle[3].call(Job(Priority::Normal, 1)));
    assert_pending!(fut.poll());
    let (_, respond) = handle.next_request().await.unwrap();
    assert_eq!(l.snapshot().in_flight, 1);
    respond.send_response("ok");
    assert_ready_ok!(fut.poll());
    drop(fut);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn readiness_is_the_inner_services_own() {
    let l = limiter(1, 4);
    let (svc, mut handle) = mock::pair::<http::Request<()>, http::Response<()>>();
    let mut layered = AdmissionLayer::new(l.clone()).layer(svc);
    // The inner service is not ready: neither is the layer, permit or not.
    handle.allow(0);
    let mut ready = task::spawn(std::future::poll_fn(|cx| layered.poll_ready(cx)));
    assert_pending!(ready.poll());
    handle.allow(1);
    assert!(ready.is_woken());
    assert!(matches!(assert_ready!(ready.poll()), Ok(())));
    drop(ready);
    assert_eq!(l.snapshot().in_flight, 0);
}
