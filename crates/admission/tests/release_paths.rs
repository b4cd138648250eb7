//! Every path a permit can take back: response, inner error, inner panic,
//! future dropped while queued or in flight, queue timeout, eviction, a
//! limit lowered while full, and a body held to its end. After each, nothing
//! is in flight and nothing is queued.

mod support;

use std::time::Duration;

use futures_util::FutureExt;
use http_body_util::BodyExt;
use support::{Job, assert_idle, http_request, limiter};
use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_pressure_admission::AdmissionLayer;
use tower_pressure_core::AsError;
use tower_pressure_core::{Overloaded, Priority, Reason};
use tower_test::mock;

type Mock = mock::Mock<Job, &'static str>;
type Handle = mock::Handle<Job, &'static str>;

fn generic(
    l: &tower_pressure_admission::PriorityLimiter,
) -> (tower_pressure_admission::Admission<Mock, AsError>, Handle) {
    let (svc, handle) = mock::pair::<Job, &'static str>();
    (
        AdmissionLayer::new(l.clone()).refusal(AsError).layer(svc),
        handle,
    )
}

fn reason(err: &tower::BoxError) -> Reason {
    err.downcast_ref::<Overloaded>()
        .unwrap_or_else(|| panic!("not an Overloaded: {err}"))
        .reason()
}

#[tokio::test(start_paused = true)]
async fn response_releases_the_permit() {
    let l = limiter(1, 4);
    let (mut svc, mut handle) = generic(&l);
    handle.allow(1);
    let mut fut = task::spawn(svc.ready().await.unwrap().call(Job(Priority::Normal, 1)));
    assert_pending!(fut.poll());
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req, Job(Priority::Normal, 1));
    assert_eq!(l.snapshot().in_flight, 1);
    respond.send_response("ok");
    assert_eq!(assert_ready_ok!(fut.poll()), "ok");
    // The caller drops a completed future; the permit goes back with it.
    drop(fut);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn inner_error_releases_the_permit() {
    let l = limiter(1, 4);
    let (mut svc, mut handle) = generic(&l);
    handle.allow(1);
    let mut fut = task::spawn(svc.ready().await.unwrap().call(Job(Priority::Normal, 1)));
    assert_pending!(fut.poll());
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_error("database down");
    let err = assert_ready!(fut.poll()).unwrap_err();
    assert_eq!(err.to_string(), "database down");
    drop(fut);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn inner_panic_releases_the_permit() {
    let l = limiter(1, 4);
    let panicking = service_fn(|_req: http::Request<()>| async move {
        if true {
            panic!("handler bug");
        }
        Ok::<_, std::convert::Infallible>(http::Response::new(
            http_body_util::Empty::<bytes::Bytes>::new(),
        ))
    });
    // CatchPanic sits outside, as in a real stack: the panic unwinds through
    // the admission future, which must give its permit back.
    let svc = tower::ServiceBuilder::new()
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(AdmissionLayer::new(l.clone()))
        .service(panicking);
    let res = svc.oneshot(http_request(Priority::High)).await.unwrap();
    assert_eq!(res.status(), 500);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn response_future_dropped_while_queued_leaves_the_queue() {
    let l = limiter(1, 4);
    let (mut svc, mut handle) = generic(&l);
    handle.allow(2);
    let mut first = task::spawn(svc.ready().await.unwrap().call(Job(Priority::Normal, 1)));
    assert_pending!(first.poll());
    let mut second = task::spawn(svc.ready().await.unwrap().call(Job(Priority::Normal, 2)));
    assert_pending!(second.poll());
    assert_eq!(l.snapshot().queue_len(), 1);
    drop(second);
    assert_eq!(l.snapshot().queue_len(), 0);
    assert_eq!(l.snapshot().cancelled, 1);
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_response("ok");
    assert_ready_ok!(first.poll());
    drop(first);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn response_future_dropped_while_in_flight_releases_the_permit() {
    let l = limiter(1, 4);
    let (mut svc, mut handle) = generic(&l);
    handle.allow(1);
    let mut fut = task::spawn(svc.ready().await.unwrap().call(Job(Priority::Normal, 1)));
    assert_pending!(fut.poll());
    let _request = handle.next_request().await.unwrap();
    assert_eq!(l.snapshot().in_flight, 1);
    drop(fut); // The client went away.
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_permit_granted_to_a_dropped_waiter_goes_to_the_next() {
    let l = limiter(1, 4);
    let held = l.acquire(Priority::Normal).await.unwrap();
    let mut a = task::spawn(l.acquire(Priority::Normal));
    let mut b = task::spawn(l.acquire(Priority::Normal));
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    drop(held); // Granted to `a`, which never looks.
    assert!(a.is_woken());
    drop(a);
    assert!(b.is_woken(), "the permit moved on to the next waiter");
    let permit = assert_ready_ok!(b.poll());
    drop(permit);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn queue_timeout_refuses_and_releases() {
    let l = limiter(1, 4);
    let held = l.acquire(Priority::Normal).await.unwrap();
    let mut waiter = task::spawn(l.acquire(Priority::Normal));
    assert_pending!(waiter.poll());
    // Normal's default queue timeout is a second.
    tokio::time::advance(Duration::from_millis(999)).await;
    assert_pending!(waiter.poll());
    tokio::time::advance(Duration::from_millis(2)).await;
    let err = assert_ready!(waiter.poll()).unwrap_err();
    assert_eq!(err.reason(), Reason::QueueTimeout);
    assert_eq!(l.snapshot().counts[Priority::Normal].timed_out, 1);
    drop(held);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn eviction_refuses_the_lowest_newest_waiter_and_releases() {
    let l = limiter(1, 2);
    let (mut svc, mut handle) = generic(&l);
    handle.allow(10);
    let mut holder = task::spawn(svc.ready().await.unwrap().call(Job(Priority::Normal, 0)));
    assert_pending!(holder.poll());
    let mut low_old = task::spawn(svc.ready().await.unwrap().call(Job(Priority::Low, 1)));
    let mut low_new = task::spawn(svc.ready().await.unwrap().call(Job(Priority::Low, 2)));
    assert_pending!(low_old.poll());
    assert_pending!(low_new.poll());
    // The queue is full; a High newcomer pushes out the newest Low.
    let mut high = task::spawn(svc.ready().await.unwrap().call(Job(Priority::High, 3)));
    assert_pending!(high.poll());
    assert!(low_new.is_woken());
    assert_eq!(
        reason(&assert_ready!(low_new.poll()).unwrap_err()),
        Reason::Evicted
    );
    assert_pending!(low_old.poll());
    // A Low newcomer outranks nobody: refused at once.
    let mut low_late = task::spawn(svc.ready().await.unwrap().call(Job(Priority::Low, 4)));
    assert_eq!(
        reason(&assert_ready!(low_late.poll()).unwrap_err()),
        Reason::QueueFull
    );

    let mut order = Vec::new();
    let mut pending = vec![holder, high, low_old];
    for _ in 0..10 {
        if pending.is_empty() {
            break;
        }
        // Drive every waiter: the one admitted calls the inner service.
        pending.retain_mut(|f| f.poll().is_pending());
        if let Some((req, respond)) = handle.next_request().now_or_never().flatten() {
            order.push(req.1);
            respond.send_response("ok");
        }
    }
    assert!(pending.is_empty(), "every request was served");
    assert_eq!(order, [0, 3, 1], "served in priority order");
    assert_idle(&l);
    assert_eq!(l.snapshot().counts[Priority::Low].evicted, 1);
}

#[tokio::test(start_paused = true)]
async fn limit_lowered_while_full_drains_without_revoking() {
    let l = limiter(2, 4);
    let a = l.acquire(Priority::Normal).await.unwrap();
    let b = l.acquire(Priority::Normal).await.unwrap();
    let mut waiter = task::spawn(l.acquire(Priority::Normal));
    assert_pending!(waiter.poll());
    l.set_limit(1);
    assert_eq!(l.snapshot().in_flight, 2, "held permits are never revoked");
    drop(a);
    assert_pending!(
        waiter.poll(),
        "1 in flight is the new limit: the waiter waits"
    );
    drop(b);
    let c = assert_ready_ok!(waiter.poll());
    assert_eq!(l.snapshot().in_flight, 1);
    drop(c);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn raising_the_limit_admits_waiters_at_once() {
    let l = limiter(1, 4);
    let a = l.acquire(Priority::Normal).await.unwrap();
    let mut w1 = task::spawn(l.acquire(Priority::Normal));
    let mut w2 = task::spawn(l.acquire(Priority::Low));
    assert_pending!(w1.poll());
    assert_pending!(w2.poll());
    l.limit_handle().set_limit(3);
    assert!(w1.is_woken() && w2.is_woken());
    let (p1, p2) = (assert_ready_ok!(w1.poll()), assert_ready_ok!(w2.poll()));
    drop((a, p1, p2));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn body_held_to_its_end_keeps_the_permit_until_then() {
    let l = limiter(1, 4);
    let inner = service_fn(|_req: http::Request<()>| async move {
        Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
            bytes::Bytes::from_static(b"streamed"),
        )))
    });
    let svc = AdmissionLayer::new(l.clone())
        .hold_until_body_end(true)
        .layer(inner);
    let res = svc.oneshot(http_request(Priority::High)).await.unwrap();
    assert_eq!(
        l.snapshot().in_flight,
        1,
        "the head is out, the body is not"
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"streamed");
    assert_idle(&l);

    // A body dropped half-way releases too.
    let svc = AdmissionLayer::new(l.clone())
        .hold_until_body_end(true)
        .layer(inner);
    let res = svc.oneshot(http_request(Priority::High)).await.unwrap();
    assert_eq!(l.snapshot().in_flight, 1);
    drop(res);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn without_body_holding_the_permit_returns_with_the_head() {
    let l = limiter(1, 4);
    let inner = service_fn(|_req: http::Request<()>| async move {
        Ok::<_, std::convert::Infallible>(http::Response::new(
            http_body_util::Empty::<bytes::Bytes>::new(),
        ))
    });
    let res = AdmissionLayer::new(l.clone())
        .layer(inner)
        .oneshot(http_request(Priority::Low))
        .await
        .unwrap();
    assert_idle(&l);
    drop(res);
}
