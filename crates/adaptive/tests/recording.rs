//! The recording layer: what counts as a sample, when a window closes, and
//! that nothing stays in flight on any path.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::{advance, sleep};
use tokio_test::{assert_pending, assert_ready_ok, task};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use tower_pressure_adaptive::{
    AdaptiveLimit, Aimd, Classify, HttpClassifier, LimitAlgorithm, Outcome, Sample,
};
use tower_pressure_admission::PriorityLimiter;

fn driver(min_window: Duration, min_samples: usize) -> AdaptiveLimit {
    let limiter = PriorityLimiter::builder().limit(10).build().unwrap();
    let algorithm = Aimd::builder().initial_limit(10).build().unwrap();
    AdaptiveLimit::builder(algorithm, limiter.limit_handle())
        .min_window(min_window)
        .min_samples(min_samples)
        .build()
        .unwrap()
}

/// A service answering `status` after `latency`.
fn answering(
    status: StatusCode,
    latency: Duration,
) -> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future: Send> + Clone {
    service_fn(move |_req: Request<()>| async move {
        sleep(latency).await;
        let mut res = Response::new(());
        *res.status_mut() = status;
        Ok::<_, Infallible>(res)
    })
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_request_is_never_a_sample_and_leaves_nothing_in_flight() {
    let adaptive = driver(Duration::ZERO, 3);
    let mut svc = adaptive
        .layer()
        .layer(answering(StatusCode::OK, Duration::from_millis(10)));

    let mut cancelled = task::spawn(svc.ready().await.unwrap().call(Request::new(())));
    assert_pending!(cancelled.poll());
    assert_eq!(adaptive.in_flight(), 1);
    drop(cancelled);
    assert_eq!(adaptive.in_flight(), 0);

    for _ in 0..3 {
        svc.ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
    }
    assert_eq!(adaptive.windows(), 1);
    let sample = adaptive.last_sample().unwrap();
    assert_eq!((sample.successes, sample.dropped), (3, 0));
    assert_eq!(sample.avg_rtt, Some(Duration::from_millis(10)));
}

#[tokio::test(start_paused = true)]
async fn a_window_closes_only_with_both_its_time_and_its_samples() {
    let adaptive = driver(Duration::from_secs(1), 5);
    let svc = adaptive
        .layer()
        .layer(answering(StatusCode::OK, Duration::from_millis(1)));

    // Time without samples: nothing.
    advance(Duration::from_secs(2)).await;
    for _ in 0..4 {
        svc.clone().oneshot(Request::new(())).await.unwrap();
    }
    assert_eq!(adaptive.windows(), 0, "4 samples are not enough");
    svc.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(adaptive.windows(), 1);

    // Samples without time: nothing. (Fewer than eight times min_samples,
    // so every one is timed; see the next test for busier windows.)
    for _ in 0..30 {
        svc.clone().oneshot(Request::new(())).await.unwrap();
    }
    assert_eq!(adaptive.windows(), 1, "30 ms is not a window");
    advance(Duration::from_secs(1)).await;
    svc.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(adaptive.windows(), 2);
    assert_eq!(adaptive.last_sample().unwrap().successes, 31);
}

#[tokio::test(start_paused = true)]
async fn every_request_is_timed_and_counted_once() {
    let adaptive = driver(Duration::from_secs(1), 10);
    let fast = adaptive
        .layer()
        .layer(answering(StatusCode::OK, Duration::from_millis(2)));
    let failing = adaptive.layer().layer(answering(
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_millis(2),
    ));
    for _ in 0..160 {
        fast.clone().oneshot(Request::new(())).await.unwrap();
    }
    for _ in 0..3 {
        failing.clone().oneshot(Request::new(())).await.unwrap();
    }
    // The window is old enough now: the next request closes it.
    advance(Duration::from_secs(1)).await;
    fast.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(adaptive.windows(), 1);
    let sample = adaptive.last_sample().unwrap();
    assert_eq!((sample.successes, sample.dropped), (161, 3));
    assert_eq!(sample.avg_rtt, Some(Duration::from_millis(2)));
    assert_eq!(adaptive.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn successes_faster_than_min_rtt_do_not_count_but_drops_do() {
    let adaptive = driver(Duration::ZERO, 2);
    let instant_ok = adaptive
        .layer()
        .layer(answering(StatusCode::OK, Duration::ZERO));
    let instant_503 = adaptive
        .layer()
        .layer(answering(StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO));

    for _ in 0..10 {
        instant_ok.clone().oneshot(Request::new(())).await.unwrap();
    }
    assert_eq!(
        adaptive.windows(),
        0,
        "a cache hit says nothing of capacity"
    );
    for _ in 0..2 {
        instant_503.clone().oneshot(Request::new(())).await.unwrap();
    }
    let sample = adaptive.last_sample().unwrap();
    assert_eq!((sample.successes, sample.dropped), (0, 2));
    assert_eq!(sample.avg_rtt, None);
}

#[tokio::test(start_paused = true)]
async fn every_service_made_by_the_layer_feeds_one_driver() {
    let adaptive = driver(Duration::ZERO, 4);
    let layer = adaptive.layer();
    let a = layer.layer(answering(StatusCode::OK, Duration::from_millis(5)));
    let b = layer
        .clone()
        .layer(answering(StatusCode::OK, Duration::from_millis(5)));
    for _ in 0..2 {
        a.clone().oneshot(Request::new(())).await.unwrap();
        b.clone().oneshot(Request::new(())).await.unwrap();
    }
    assert_eq!(adaptive.windows(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_inner_future_leaves_nothing_in_flight() {
    let adaptive = driver(Duration::ZERO, 1);
    let svc = adaptive
        .layer()
        .layer(service_fn(|_req: Request<()>| async move {
            sleep(Duration::from_millis(1)).await;
            panic!("handler bug");
            #[allow(unreachable_code, reason = "the future's output type")]
            Ok::<Response<()>, Infallible>(Response::new(()))
        }));
    let joined = tokio::spawn(svc.oneshot(Request::new(()))).await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(adaptive.in_flight(), 0);
    assert_eq!(adaptive.windows(), 0);
}

#[tokio::test(start_paused = true)]
async fn poll_ready_forwards_the_inner_readiness_and_measures_nothing() {
    let adaptive = driver(Duration::ZERO, 1);
    let (mock, mut handle) = tower_test::mock::pair::<Request<()>, Response<()>>();
    let mut svc = tower_test::mock::Spawn::new(adaptive.layer().layer(mock));

    handle.allow(0);
    assert_pending!(svc.poll_ready());
    assert_eq!(adaptive.in_flight(), 0);
    handle.allow(1);
    assert_ready_ok!(svc.poll_ready());
    assert_eq!(adaptive.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_closure_classifies_any_response_type() {
    #[derive(Debug)]
    enum Reply {
        Done,
        Busy,
    }
    let adaptive = driver(Duration::ZERO, 4);
    let classify = |r: Result<&Reply, &BoxError>| match r {
        Ok(Reply::Done) => Outcome::Success,
        Ok(Reply::Busy) | Err(_) => Outcome::Dropped,
    };
    let svc =
        adaptive
            .layer()
            .classifier(classify)
            .layer(service_fn(|Nth(busy): Nth| async move {
                sleep(Duration::from_millis(2)).await;
                Ok::<_, BoxError>(if busy == 1 { Reply::Busy } else { Reply::Done })
            }));
    for busy in [0, 1, 1, 0] {
        svc.clone().oneshot(Nth(busy)).await.unwrap();
    }
    let sample = adaptive.last_sample().unwrap();
    assert_eq!((sample.successes, sample.dropped), (2, 2));
}

/// A request of no class in particular (the recording layer reads a
/// request's deadline through `PriorityOf`): the `n`th.
struct Nth(usize);

impl tower_pressure_core::PriorityOf for Nth {
    fn priority(&self) -> tower_pressure_core::Priority {
        tower_pressure_core::Priority::Normal
    }
}

fn http(status: u16, grpc_status: Option<&str>) -> Response<()> {
    let mut res = Response::new(());
    *res.status_mut() = StatusCode::from_u16(status).unwrap();
    if let Some(code) = grpc_status {
        res.headers_mut()
            .insert("grpc-status", code.parse().unwrap());
    }
    res
}

#[test]
fn the_http_classifier_drops_overload_statuses_and_ignores_application_errors() {
    let c = HttpClassifier;
    let ok = |r: Response<()>| Classify::<_, Infallible>::classify(&c, Ok(&r));
    assert_eq!(ok(http(200, None)), Outcome::Success);
    assert_eq!(ok(http(404, None)), Outcome::Success);
    assert_eq!(ok(http(429, None)), Outcome::Dropped);
    assert_eq!(ok(http(500, None)), Outcome::Ignored);
    assert_eq!(ok(http(501, None)), Outcome::Ignored);
    assert_eq!(ok(http(502, None)), Outcome::Ignored);
    assert_eq!(ok(http(503, None)), Outcome::Dropped);
    assert_eq!(ok(http(504, None)), Outcome::Dropped);
    assert_eq!(ok(http(200, Some("0"))), Outcome::Success);
    assert_eq!(ok(http(200, Some("5"))), Outcome::Success);
    assert_eq!(ok(http(200, Some("8"))), Outcome::Dropped);
    assert_eq!(ok(http(200, Some("14"))), Outcome::Dropped);
    assert_eq!(ok(http(200, Some("4"))), Outcome::Dropped);
    assert_eq!(ok(http(200, Some("fourteen"))), Outcome::Success);
}

#[tokio::test]
async fn the_http_classifier_drops_timeouts_and_ignores_other_errors() {
    let c = HttpClassifier;
    let elapsed = tokio::time::timeout(Duration::ZERO, std::future::pending::<()>())
        .await
        .unwrap_err();
    let err = |e: BoxError| Classify::<Response<()>, BoxError>::classify(&c, Err(&e));
    assert_eq!(err(Box::new(elapsed)), Outcome::Dropped);
    assert_eq!(
        err(Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut))),
        Outcome::Dropped
    );
    assert_eq!(err("request timed out".into()), Outcome::Dropped);
    assert_eq!(
        err(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))),
        Outcome::Ignored
    );
    let io = std::io::Error::from(std::io::ErrorKind::TimedOut);
    assert_eq!(
        Classify::<Response<()>, std::io::Error>::classify(&c, Err(&io)),
        Outcome::Dropped
    );
}

/// Counts every request it is shown, across windows.
#[derive(Debug)]
struct Tally(Arc<AtomicUsize>);

impl LimitAlgorithm for Tally {
    fn update(&mut self, sample: &Sample) -> usize {
        self.0.fetch_add(sample.count(), Ordering::Relaxed);
        10
    }

    fn limit(&self) -> usize {
        10
    }
}

#[test]
fn windows_closed_from_many_threads_lose_and_double_count_nothing() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5_000;
    let seen = Arc::new(AtomicUsize::new(0));
    let limiter = PriorityLimiter::builder().limit(10).build().unwrap();
    let adaptive = AdaptiveLimit::builder(Tally(seen.clone()), limiter.limit_handle())
        .min_window(Duration::ZERO)
        .min_samples(1)
        .min_rtt(Duration::ZERO)
        .build()
        .unwrap();
    let svc = adaptive.layer().layer(service_fn(|Nth(i): Nth| async move {
        // Every fifth request is an overload reply.
        let status = if i.is_multiple_of(5) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        let mut res = Response::new(());
        *res.status_mut() = status;
        Ok::<_, Infallible>(res)
    }));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let svc = svc.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                for i in 0..PER_THREAD {
                    rt.block_on(svc.clone().oneshot(Nth(i))).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // One more, alone, closes whatever the last window still holds.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(svc.oneshot(Nth(1))).unwrap();
    assert_eq!(seen.load(Ordering::Relaxed), THREADS * PER_THREAD + 1);
    assert_eq!(adaptive.in_flight(), 0);
}
