//! `Overloaded` as an error, an HTTP response, a gRPC reply and a tonic status.
#![cfg(feature = "grpc")]

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use proptest::prelude::*;
use tower_pressure_core::http::{GrpcCode, HttpStatus, Rejection, is_grpc};
use tower_pressure_core::{Overloaded, PressureLevel, Priority, Reason};

fn grpc_headers(content_type: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static(content_type));
    h
}

const ALL_REASONS: [Reason; 8] = [
    Reason::QueueFull,
    Reason::QueueTimeout,
    Reason::Evicted,
    Reason::DeadlineUnmeetable,
    Reason::Memory(PressureLevel::High),
    Reason::Cpu(PressureLevel::Critical),
    Reason::Emergency,
    Reason::ClientThrottled,
];

proptest! {
    #[test]
    fn http_response_is_503_with_retry_after_in_whole_seconds_at_least_one(
        nanos in 0u64..100_000_000_000, reason in 0usize..ALL_REASONS.len(),
    ) {
        let retry = Duration::from_nanos(nanos);
        let err = Overloaded::new(ALL_REASONS[reason], Priority::Low).with_retry_after(retry);
        let res: Response<()> = err.to_http_response();
        prop_assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let secs: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        prop_assert!(secs >= 1);
        prop_assert!(secs as f64 >= retry.as_secs_f64(), "rounded up, never down");
        prop_assert!((secs as f64) < retry.as_secs_f64().max(1.0) + 1.0);
        prop_assert_eq!(res.extensions().get::<Overloaded>(), Some(&err));
    }
}

#[test]
fn display_is_lower_case_without_trailing_period_for_every_reason() {
    for r in ALL_REASONS {
        let text = Overloaded::new(r, Priority::High).to_string();
        assert!(text.starts_with("service overloaded: "), "{text}");
        assert!(!text.ends_with('.'), "{text}");
        assert!(
            text.is_ascii(),
            "gRPC messages must not need escaping: {text}"
        );
        assert!(!text.contains('%'), "{text}");
    }
}

#[test]
fn retry_after_is_never_below_one_second() {
    let err = Overloaded::new(Reason::QueueFull, Priority::Bulk).with_retry_after(Duration::ZERO);
    assert_eq!(err.retry_after(), Duration::from_secs(1));
    assert_eq!(err.retry_after_secs(), 1);
}

#[test]
fn grpc_reply_is_trailers_only_resource_exhausted_with_pushback() {
    let err = Overloaded::new(Reason::Memory(PressureLevel::High), Priority::Normal)
        .with_retry_after(Duration::from_millis(2300))
        .with_queue_len(4);
    let res: Response<()> = err.to_grpc_response(GrpcCode::ResourceExhausted);
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "gRPC errors travel in a 200 reply"
    );
    let h = res.headers();
    assert_eq!(h["content-type"], "application/grpc");
    assert_eq!(h["grpc-status"], "8");
    assert_eq!(h["grpc-retry-pushback-ms"], "2300");
    // Nothing of the client's class or the service's state.
    assert_eq!(h["grpc-message"], "service overloaded");
    assert_eq!(res.extensions().get::<Overloaded>(), Some(&err));
}

#[test]
fn a_refused_client_learns_its_class_and_the_queue_only_when_detail_is_on() {
    let err =
        Overloaded::new(Reason::Memory(PressureLevel::High), Priority::Low).with_queue_len(17);
    let grpc = grpc_headers("application/grpc");
    for r in [Rejection::default(), Rejection::default().detail(false)] {
        let res: Response<()> = r.respond(&err, &grpc);
        let message = res.headers()["grpc-message"].to_str().unwrap();
        assert_eq!(message, "service overloaded");
        assert_eq!(r.message(&err), "service overloaded");
    }
    let detailed = Rejection::default().detail(true);
    let res: Response<()> = detailed.respond(&err, &grpc);
    assert_eq!(
        res.headers()["grpc-message"],
        "service overloaded: memory pressure high (priority low, 17 queued)"
    );
    assert_eq!(detailed.message(&err), err.to_string());
}

#[test]
fn retry_after_seconds_saturate() {
    let err = Overloaded::new(Reason::QueueFull, Priority::Low).with_retry_after(Duration::MAX);
    assert_eq!(err.retry_after_secs(), u64::MAX);
}

#[test]
fn grpc_code_can_be_unavailable() {
    let err = Overloaded::new(Reason::QueueFull, Priority::Low);
    let res: Response<()> = err.to_grpc_response(GrpcCode::Unavailable);
    assert_eq!(res.headers()["grpc-status"], "14");
}

#[test]
fn rejection_picks_the_form_from_the_request_content_type() {
    let err = Overloaded::new(Reason::QueueTimeout, Priority::Low);
    let r = Rejection::default();
    for ct in [
        "application/grpc",
        "application/grpc+proto",
        "application/grpc-web",
    ] {
        let res: Response<()> = r.respond(&err, &grpc_headers(ct));
        assert_eq!(res.headers()["grpc-status"], "8", "{ct}");
    }
    for ct in ["application/json", "text/plain"] {
        let res: Response<()> = r.respond(&err, &grpc_headers(ct));
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{ct}");
        assert!(res.headers().get("grpc-status").is_none());
    }
    assert!(!is_grpc(&HeaderMap::new()));
    let too_many = r.http_status(HttpStatus::TooManyRequests);
    let res: Response<()> = too_many.respond(&err, &HeaderMap::new());
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
}

#[test]
fn tonic_status_carries_code_message_and_pushback() {
    let err =
        Overloaded::new(Reason::Emergency, Priority::High).with_retry_after(Duration::from_secs(7));
    let status = tonic::Status::from(err.clone());
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(status.message(), "service overloaded");
    assert_eq!(
        status.metadata().get("grpc-retry-pushback-ms").unwrap(),
        "7000"
    );
    assert_eq!(
        err.to_status(GrpcCode::Unavailable).code(),
        tonic::Code::Unavailable
    );
}
