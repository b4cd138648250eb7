//! The retry policy: it waits exactly the pushback, retries only what may be
//! retried, and never past its budget.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use tokio::time::Instant;
use tower::retry::budget::TpsBudget;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_pressure_client::{PushbackPolicy, ThrottleConfig, ThrottleLayer};
use tower_pressure_core::{Deadline, Priority};

use support::{backend, get, send_n, status, throttled_here, with_header};

/// Sends `req` through `policy` to a backend answering `first` to its first
/// call and `200` after; the final status, the calls made, the time taken.
async fn run(
    policy: PushbackPolicy,
    first: fn() -> Response<String>,
    req: Request<String>,
) -> (StatusCode, usize, Duration) {
    let (server, calls) = backend(move |n| {
        if n == 0 {
            first()
        } else {
            status(StatusCode::OK)
        }
    });
    let svc = ServiceBuilder::new().retry(policy).service(server);
    let start = Instant::now();
    let res = svc.oneshot(req).await.unwrap();
    (res.status(), calls.load(Ordering::SeqCst), start.elapsed())
}

fn policy() -> PushbackPolicy {
    PushbackPolicy::builder().seed(1).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_retry_waits_exactly_the_retry_after() {
    let refusal = || with_header(StatusCode::SERVICE_UNAVAILABLE, "retry-after", "3");
    let (status, calls, took) = run(policy(), refusal, get(Priority::Normal)).await;
    assert_eq!((status, calls), (StatusCode::OK, 2));
    assert_eq!(took, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn the_retry_waits_exactly_the_grpc_pushback() {
    let refusal = || {
        let mut res = with_header(StatusCode::OK, "grpc-retry-pushback-ms", "1500");
        res.headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("8"));
        res
    };
    let (status, calls, took) = run(policy(), refusal, get(Priority::Normal)).await;
    assert_eq!((status, calls), (StatusCode::OK, 2));
    assert_eq!(took, Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn the_grpc_pushback_wins_over_retry_after() {
    let refusal = || {
        let mut res = with_header(StatusCode::TOO_MANY_REQUESTS, "retry-after", "5");
        res.headers_mut().insert(
            "grpc-retry-pushback-ms",
            http::HeaderValue::from_static("250"),
        );
        res
    };
    let (_, calls, took) = run(policy(), refusal, get(Priority::Normal)).await;
    assert_eq!(calls, 2);
    assert_eq!(took, Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn a_negative_pushback_means_no_retry() {
    let refusal = || {
        let mut res = with_header(StatusCode::OK, "grpc-retry-pushback-ms", "-1");
        res.headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("14"));
        res
    };
    let (status, calls, took) = run(policy(), refusal, get(Priority::Normal)).await;
    assert_eq!((status, calls, took), (StatusCode::OK, 1, Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn an_unparsable_pushback_means_no_retry() {
    for value in ["soon", "1.5", "", "-3", "99999999999999999999999"] {
        let (server, calls) = backend(move |_| {
            let mut res = status(StatusCode::SERVICE_UNAVAILABLE);
            res.headers_mut()
                .insert("retry-after", http::HeaderValue::from_str(value).unwrap());
            res
        });
        let svc = ServiceBuilder::new().retry(policy()).service(server);
        let res = svc.oneshot(get(Priority::Normal)).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{value:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_date_means_no_retry() {
    let refusal = || {
        with_header(
            StatusCode::SERVICE_UNAVAILABLE,
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        )
    };
    let (status, calls, _) = run(policy(), refusal, get(Priority::Normal)).await;
    assert_eq!((status, calls), (StatusCode::SERVICE_UNAVAILABLE, 1));
}

#[tokio::test(start_paused = true)]
async fn a_pushback_longer_than_max_wait_means_no_retry() {
    let refusal = || with_header(StatusCode::SERVICE_UNAVAILABLE, "retry-after", "11");
    let (status, calls, took) = run(policy(), refusal, get(Priority::Normal)).await;
    assert_eq!(
        (status, calls, took),
        (StatusCode::SERVICE_UNAVAILABLE, 1, Duration::ZERO)
    );

    let patient = PushbackPolicy::builder()
        .max_wait(Duration::from_secs(20))
        .build()
        .unwrap();
    let (_, calls, took) = run(patient, refusal, get(Priority::Normal)).await;
    assert_eq!((calls, took), (2, Duration::from_secs(11)));
}

#[tokio::test(start_paused = true)]
async fn no_retry_that_would_end_past_the_deadline() {
    let refusal = || with_header(StatusCode::SERVICE_UNAVAILABLE, "retry-after", "2");
    let mut req = get(Priority::High);
    req.extensions_mut()
        .insert(Deadline::after(Duration::from_secs(2)));
    let (status, calls, _) = run(policy(), refusal, req).await;
    assert_eq!((status, calls), (StatusCode::SERVICE_UNAVAILABLE, 1));

    let mut req = get(Priority::High);
    req.extensions_mut()
        .insert(Deadline::after(Duration::from_secs(3)));
    let (status, calls, _) = run(policy(), refusal, req).await;
    assert_eq!((status, calls), (StatusCode::OK, 2));
}

#[tokio::test(start_paused = true)]
async fn at_most_two_retries_by_default() {
    let (server, calls) =
        backend(|_| with_header(StatusCode::SERVICE_UNAVAILABLE, "retry-after", "1"));
    let svc = ServiceBuilder::new().retry(policy()).service(server);
    let start = Instant::now();
    let res = svc.oneshot(get(Priority::Normal)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn retries_stop_when_the_budget_is_empty() {
    // No reserve and nothing earned by calls: no retry at all.
    let empty = Arc::new(TpsBudget::new(Duration::from_secs(1), 0, 0.0));
    let policy = PushbackPolicy::builder().budget(empty).build().unwrap();
    let refusal = || with_header(StatusCode::SERVICE_UNAVAILABLE, "retry-after", "0");
    let (status, calls, _) = run(policy, refusal, get(Priority::Normal)).await;
    assert_eq!((status, calls), (StatusCode::SERVICE_UNAVAILABLE, 1));

    // A reserve of one retry a second, shared by every call: the first call
    // spends it, the second gets none.
    let one = Arc::new(TpsBudget::new(Duration::from_secs(1), 1, 0.0));
    let policy = PushbackPolicy::builder().budget(one).build().unwrap();
    let (server, calls) =
        backend(|_| with_header(StatusCode::SERVICE_UNAVAILABLE, "retry-after", "0"));
    let svc = ServiceBuilder::new().retry(policy).service(server);
    svc.clone().oneshot(get(Priority::Normal)).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one retry, then the budget is empty"
    );
    svc.oneshot(get(Priority::Normal)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "no retry without budget");
}

#[tokio::test(start_paused = true)]
async fn calls_earn_retries_for_the_budget() {
    // No reserve; each call deposits, a retry costs two deposits (50 %).
    let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 0, 0.5));
    let policy = PushbackPolicy::builder().budget(budget).build().unwrap();
    let (server, calls) = backend(|n| {
        if n < 4 {
            status(StatusCode::OK)
        } else {
            with_header(StatusCode::SERVICE_UNAVAILABLE, "retry-after", "0")
        }
    });
    let svc = ServiceBuilder::new().retry(policy).service(server);
    for _ in 0..4 {
        svc.clone().oneshot(get(Priority::Normal)).await.unwrap();
    }
    // Five deposits (four calls and this one) pay for two retries.
    svc.oneshot(get(Priority::Normal)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4 + 3);
}

fn post() -> Request<String> {
    let mut req = get(Priority::Normal);
    *req.method_mut() = Method::POST;
    req
}

#[tokio::test(start_paused = true)]
async fn a_post_is_retried_only_with_an_idempotency_key_or_when_allowed() {
    let refusal = || with_header(StatusCode::SERVICE_UNAVAILABLE, "retry-after", "0");
    let (_, calls, _) = run(policy(), refusal, post()).await;
    assert_eq!(calls, 1, "a plain POST is not retried");

    let mut keyed = post();
    keyed.headers_mut().insert(
        "idempotency-key",
        http::HeaderValue::from_static("8e03978e-40d5-43e8-bc93-6894a57f9324"),
    );
    let (_, calls, _) = run(policy(), refusal, keyed).await;
    assert_eq!(calls, 2);

    let any = PushbackPolicy::builder()
        .non_idempotent(true)
        .build()
        .unwrap();
    let (_, calls, _) = run(any, refusal, post()).await;
    assert_eq!(calls, 2);

    for method in [Method::PUT, Method::DELETE, Method::HEAD, Method::OPTIONS] {
        let mut req = get(Priority::Normal);
        *req.method_mut() = method.clone();
        let (_, calls, _) = run(policy(), refusal, req).await;
        assert_eq!(calls, 2, "{method}");
    }
}

#[tokio::test(start_paused = true)]
async fn answers_that_are_not_overload_are_not_retried() {
    for code in [
        StatusCode::OK,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
    ] {
        let (server, calls) = backend(move |_| {
            let mut res = status(code);
            res.headers_mut()
                .insert("retry-after", http::HeaderValue::from_static("1"));
            res
        });
        let svc = ServiceBuilder::new().retry(policy()).service(server);
        svc.oneshot(get(Priority::Normal)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{code}");
    }
}

#[tokio::test(start_paused = true)]
async fn errors_are_not_retried() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let server = tower::service_fn(move |_: Request<String>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Err::<Response<String>, _>(std::io::Error::from(std::io::ErrorKind::TimedOut)) }
    });
    let svc = ServiceBuilder::new().retry(policy()).service(server);
    assert!(svc.oneshot(get(Priority::Normal)).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn without_pushback_the_wait_is_a_random_backoff_that_doubles() {
    let refusal = || status(StatusCode::SERVICE_UNAVAILABLE);
    let mut first_waits = Vec::new();
    for seed in 0..50 {
        let policy = PushbackPolicy::builder()
            .seed(seed)
            .max_retries(1)
            .build()
            .unwrap();
        let (_, calls, took) = run(policy, refusal, get(Priority::Normal)).await;
        assert_eq!(calls, 2);
        assert!(took <= Duration::from_millis(100), "{took:?}");
        first_waits.push(took);
    }
    first_waits.sort();
    first_waits.dedup();
    // 50 draws among the 101 whole milliseconds give about 40 distinct ones.
    assert!(
        first_waits.len() > 30,
        "the waits are spread: {first_waits:?}"
    );

    // Two retries: at most 100 ms, then at most 200 ms.
    let (server, calls) = backend(|_| status(StatusCode::SERVICE_UNAVAILABLE));
    let svc = ServiceBuilder::new().retry(policy()).service(server);
    let start = Instant::now();
    svc.oneshot(get(Priority::Normal)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(start.elapsed() <= Duration::from_millis(300));

    // The same seed waits the same.
    let a = run(policy(), refusal, get(Priority::Normal)).await.2;
    let b = run(policy(), refusal, get(Priority::Normal)).await.2;
    assert_eq!(a, b);
}

#[tokio::test(start_paused = true)]
async fn a_call_the_throttle_refused_locally_is_not_retried() {
    let throttle = ThrottleLayer::with_config(ThrottleConfig::builder().seed(5).build().unwrap());
    let (server, calls) =
        backend(|_| with_header(StatusCode::SERVICE_UNAVAILABLE, "retry-after", "0"));
    // Teach the throttle that the service refuses everything.
    let mut direct = throttle.layer(server.clone());
    send_n(&mut direct, Priority::Normal, 1000).await;
    assert!(throttle.refusal_probability(Priority::Normal) > 0.99);

    let svc = ServiceBuilder::new()
        .retry(policy())
        .layer(throttle.clone())
        .service(server);
    let before = calls.load(Ordering::SeqCst);
    let res = svc.oneshot(get(Priority::Normal)).await.unwrap();
    assert!(throttled_here(&res));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "neither sent nor retried"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_through_the_throttle_are_counted_like_calls() {
    let throttle = ThrottleLayer::with_config(ThrottleConfig::builder().seed(6).build().unwrap());
    let (server, _) = backend(|_| with_header(StatusCode::SERVICE_UNAVAILABLE, "retry-after", "0"));
    let svc = ServiceBuilder::new()
        .retry(policy())
        .layer(throttle.clone())
        .service(server);
    svc.oneshot(get(Priority::Normal)).await.unwrap();
    // The first attempt and its two retries, sent or refused here: three.
    assert_eq!(throttle.refusal_probability(Priority::Normal), 3.0 / 4.0);
}
