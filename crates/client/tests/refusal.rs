//! How a local refusal is delivered, and which answers are counted.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderValue, Request, Response, StatusCode};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use tower_pressure_client::{ThrottleConfig, ThrottleLayer, Verdict};
use tower_pressure_core::{AsError, Overloaded, Priority, PriorityOf, Reason};

use support::{backend, get, send_n, status, throttled_here};

fn seeded(seed: u64) -> ThrottleLayer {
    ThrottleLayer::with_config(ThrottleConfig::builder().seed(seed).build().unwrap())
}

/// Sends `make()` until the throttle refuses one locally; that refusal and
/// the calls the server got by then.
async fn first_local_refusal<S>(
    svc: &mut S,
    make: impl Fn() -> Request<String>,
    calls: &AtomicUsize,
) -> (Response<String>, usize)
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    for _ in 0..1000 {
        let before = calls.load(Ordering::SeqCst);
        let res = svc.ready().await.unwrap().call(make()).await.unwrap();
        if throttled_here(&res) {
            assert_eq!(
                calls.load(Ordering::SeqCst),
                before,
                "the server never saw it"
            );
            return (res, before);
        }
    }
    panic!("no local refusal in 1000 calls to a service refusing everything");
}

#[tokio::test(start_paused = true)]
async fn a_local_refusal_is_a_503_with_retry_after_and_the_reason_in_extensions() {
    let layer = seeded(1);
    let (server, calls) = backend(|_| status(StatusCode::SERVICE_UNAVAILABLE));
    let mut svc = layer.layer(server);
    let (res, _) = first_local_refusal(&mut svc, || get(Priority::Low), &calls).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    let err = res.extensions().get::<Overloaded>().unwrap();
    assert_eq!(err.reason(), Reason::ClientThrottled);
    assert_eq!(err.priority(), Priority::Low);
    assert_eq!(err.reason().as_label(), "client_throttled");
}

#[tokio::test(start_paused = true)]
async fn a_local_refusal_of_a_grpc_call_is_a_trailers_only_reply() {
    let layer = seeded(2);
    let (server, calls) = backend(|_| {
        let mut res = status(StatusCode::OK);
        res.headers_mut()
            .insert("grpc-status", HeaderValue::from_static("14"));
        res
    });
    let mut svc = layer.layer(server);
    let grpc = || {
        let mut req = get(Priority::Normal);
        req.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/grpc"));
        req
    };
    let (res, _) = first_local_refusal(&mut svc, grpc, &calls).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "8");
    assert_eq!(res.headers()["grpc-retry-pushback-ms"], "1000");
}

struct Job(Priority);

impl PriorityOf for Job {
    fn priority(&self) -> Priority {
        self.0
    }
}

#[tokio::test(start_paused = true)]
async fn with_as_error_a_local_refusal_is_a_boxed_overloaded_for_any_request_type() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let layer = seeded(3)
        .classifier(|r: Result<&bool, &BoxError>| match r {
            Ok(true) => Verdict::Accepted,
            Ok(false) => Verdict::Rejected,
            Err(_) => Verdict::Ignored,
        })
        .refusal(AsError);
    let mut svc = layer.layer(service_fn(move |_: Job| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, BoxError>(false) }
    }));
    for _ in 0..1000 {
        let before = calls.load(Ordering::SeqCst);
        match svc.ready().await.unwrap().call(Job(Priority::Bulk)).await {
            Ok(accepted) => assert!(!accepted),
            Err(err) => {
                let err = err.downcast::<Overloaded>().unwrap();
                assert_eq!(err.reason(), Reason::ClientThrottled);
                assert_eq!(err.priority(), Priority::Bulk);
                assert_eq!(calls.load(Ordering::SeqCst), before);
                return;
            }
        }
    }
    panic!("no local refusal");
}

/// A backend failing every call with `err()`.
fn failing(
    err: fn() -> BoxError,
) -> impl Service<Request<String>, Response = Response<String>, Error = BoxError> {
    service_fn(move |_: Request<String>| async move { Err::<Response<String>, _>(err()) })
}

#[tokio::test(start_paused = true)]
async fn an_overloaded_error_counts_as_a_refusal() {
    let layer = seeded(4);
    let mut svc = layer.layer(failing(|| {
        Box::new(Overloaded::new(Reason::QueueFull, Priority::Normal))
    }));
    for _ in 0..10 {
        let _ = svc.ready().await.unwrap().call(get(Priority::Normal)).await;
    }
    assert_eq!(layer.refusal_probability(Priority::Normal), 10.0 / 11.0);
}

#[tokio::test(start_paused = true)]
async fn other_errors_are_not_counted() {
    let layer = seeded(5);
    let mut svc = layer.layer(failing(|| {
        Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }));
    for _ in 0..100 {
        let err = svc
            .ready()
            .await
            .unwrap()
            .call(get(Priority::Normal))
            .await
            .unwrap_err();
        assert!(!err.is::<Overloaded>(), "never refused locally");
    }
    assert_eq!(layer.refusal_probability(Priority::Normal), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_server_error_that_is_not_overload_counts_as_accepted() {
    let layer = seeded(6);
    let (server, _) = backend(|_| status(StatusCode::INTERNAL_SERVER_ERROR));
    let mut svc = layer.layer(server);
    assert_eq!(send_n(&mut svc, Priority::Normal, 100).await, 0);
    // Then refusals: 100 accepted calls allow 100 more refusals (K = 2).
    let (busy, _) = backend(|_| status(StatusCode::SERVICE_UNAVAILABLE));
    let mut busy = layer.layer(busy);
    assert_eq!(send_n(&mut busy, Priority::Normal, 100).await, 0);
    assert_eq!(layer.refusal_probability(Priority::Normal), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_before_its_answer_is_not_counted() {
    let layer = seeded(7);
    let mut svc = layer.layer(service_fn(|_: Request<String>| {
        std::future::pending::<Result<Response<String>, Infallible>>()
    }));
    for _ in 0..10 {
        let fut = svc.ready().await.unwrap().call(get(Priority::High));
        drop(fut);
    }
    assert_eq!(layer.refusal_probability(Priority::High), 0.0);
}

#[tokio::test(start_paused = true)]
async fn clones_and_services_of_one_layer_share_the_statistics() {
    let layer = seeded(8);
    let (server, _) = backend(|_| status(StatusCode::SERVICE_UNAVAILABLE));
    let a = layer.layer(server.clone());
    let mut b = layer.clone().layer(server);
    let mut a2 = a.clone();
    send_n(&mut a2, Priority::Normal, 5).await;
    send_n(&mut b, Priority::Normal, 5).await;
    assert_eq!(layer.refusal_probability(Priority::Normal), 10.0 / 11.0);
    // A layer built apart keeps its own.
    assert_eq!(seeded(8).refusal_probability(Priority::Normal), 0.0);
}
