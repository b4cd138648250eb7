//! How `AdmissionLayer` answers a refused HTTP request: a `503` (or `429`)
//! with `Retry-After` and the `Overloaded` in the extensions, a trailers-only
//! reply for gRPC, or whatever a plugged-in builder makes.

mod support;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use support::{assert_idle, http_request, limiter};
use tower::{Layer, ServiceExt, service_fn};
use tower_pressure_admission::AdmissionLayer;
use tower_pressure_core::http::{GrpcCode, HttpStatus, Rejection};
use tower_pressure_core::{Overloaded, Priority, Reason};

fn ok_service() -> impl tower::Service<
    http::Request<()>,
    Response = Response<http_body_util::Full<Bytes>>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
            Bytes::from_static(b"ok"),
        )))
    })
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_gets_503_with_retry_after_and_the_error_in_extensions() {
    let l = limiter(1, 0);
    let held = l.try_acquire(Priority::Normal).unwrap();
    let res = AdmissionLayer::new(l.clone())
        .layer(ok_service())
        .oneshot(http_request(Priority::Low))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let err = res
        .extensions()
        .get::<Overloaded>()
        .expect("the error rides along");
    assert_eq!(
        (err.reason(), err.priority()),
        (Reason::QueueFull, Priority::Low)
    );
    // The body tells the client nothing of its class or the queue.
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"service overloaded");
    drop(held);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn the_status_and_grpc_code_are_configurable() {
    let l = limiter(1, 0);
    let held = l.try_acquire(Priority::Normal).unwrap();
    let layer = AdmissionLayer::new(l.clone()).rejection(
        Rejection::default()
            .http_status(HttpStatus::TooManyRequests)
            .grpc_code(GrpcCode::Unavailable),
    );
    let res = layer
        .layer(ok_service())
        .oneshot(http_request(Priority::Low))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let mut grpc = http_request(Priority::Low);
    grpc.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    let res = layer.layer(ok_service()).oneshot(grpc).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "14");
    assert!(res.headers().contains_key("grpc-retry-pushback-ms"));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty(), "a trailers-only reply has no body");
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_plugged_in_builder_makes_the_rejection_response() {
    let l = limiter(1, 0);
    let held = l.try_acquire(Priority::Normal).unwrap();
    let layer = AdmissionLayer::new(l.clone()).on_reject(|err, headers| {
        let mut res = Response::new(Bytes::from(format!(
            "{{\"error\":\"{}\",\"trace\":{:?}}}",
            err.reason().as_label(),
            headers
                .get("x-trace")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        )));
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        res.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        res
    });
    let mut req = http_request(Priority::Low);
    req.headers_mut()
        .insert("x-trace", HeaderValue::from_static("abc"));
    let res = layer.layer(ok_service()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"error":"queue_full","trace":"abc"}"#);
    drop(held);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn an_admitted_request_reaches_the_inner_service_untouched() {
    let l = limiter(1, 0);
    let res = AdmissionLayer::new(l.clone())
        .layer(ok_service())
        .oneshot(http_request(Priority::Low))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.extensions().get::<Overloaded>().is_none());
    assert_eq!(
        &res.into_body().collect().await.unwrap().to_bytes()[..],
        b"ok"
    );
    assert_idle(&l);
}
