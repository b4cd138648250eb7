//! `poll_ready` reserves nothing: hyper polls readiness on idle keep-alive
//! connections, so a layer that took a permit there would let idle
//! connections starve busy ones. Readiness is the inner service's; the wait
//! for a permit is in the response future.

mod support;

use support::{Job, assert_idle, limiter};
use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};
use tower::{Layer, Service};
use tower_pressure_admission::AdmissionLayer;
use tower_pressure_core::AsError;
use tower_pressure_core::Priority;
use tower_test::mock;

#[tokio::test(start_paused = true)]
async fn ready_clones_hold_no_permit_and_a_call_still_gets_the_only_one() {
    let l = limiter(1, 4);
    let (svc, mut handle) = mock::pair::<Job, &'static str>();
    handle.allow(10);
    let layered = AdmissionLayer::new(l.clone()).refusal(AsError).layer(svc);
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

/// A request that queues gives up the readiness it was called with: a
/// tower `ConcurrencyLimit` below keeps no slot for it while it waits, so a
/// more important request, admitted first, reaches the service below.
#[tokio::test(start_paused = true)]
async fn a_queued_request_holds_no_reservation_of_the_service_below() {
    let l = limiter(1, 4);
    let (svc, mut handle) = mock::pair::<Job, &'static str>();
    handle.allow(10);
    // Two slots below; one permit above.
    let below = tower::limit::ConcurrencyLimitLayer::new(2).layer(svc);
    let layered = AdmissionLayer::new(l.clone()).refusal(AsError).layer(below);
    let (mut first, mut bulk_conn, mut critical_conn) = (layered.clone(), layered.clone(), layered);
    let ready = |s: &mut tower_pressure_admission::Admission<_, AsError>| {
        let mut r = task::spawn(std::future::poll_fn(|cx| s.poll_ready(cx)));
        r.poll()
    };
    // The first request takes the permit and one slot below.
    assert!(ready(&mut first).is_ready());
    let mut working = task::spawn(first.call(Job(Priority::Normal, 0)));
    assert_pending!(working.poll());
    let (_, respond) = handle.next_request().await.unwrap();
    // A Bulk request on another connection reserves the second slot in
    // `poll_ready`, then queues for the permit.
    assert!(ready(&mut bulk_conn).is_ready());
    let mut bulk = task::spawn(bulk_conn.call(Job(Priority::Bulk, 1)));
    assert_pending!(bulk.poll());
    // The Critical connection still finds a slot below: readiness, then
    // the queue, ahead of Bulk.
    assert!(
        ready(&mut critical_conn).is_ready(),
        "the queued Bulk request kept the slot below"
    );
    let mut critical = task::spawn(critical_conn.call(Job(Priority::Critical, 2)));
    assert_pending!(critical.poll());
    respond.send_response("ok");
    assert_ready_ok!(working.poll());
    drop(working);
    // Critical is admitted first and reaches the service below.
    assert_pending!(critical.poll());
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req.1, 2);
    respond.send_response("ok");
    assert_ready_ok!(critical.poll());
    drop(critical);
    assert_pending!(bulk.poll());
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req.1, 1);
    respond.send_response("ok");
    assert_ready_ok!(bulk.poll());
    drop(bulk);
    assert_idle(&l);
}
