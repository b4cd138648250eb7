//! The default classifier: which HTTP and gRPC answers are refusals.

use http::{HeaderValue, Response, StatusCode};
use tower::BoxError;
use tower_pressure_client::{Classify, HttpClassifier, Verdict};
use tower_pressure_core::{Overloaded, Priority, Reason};

fn response(status: u16, grpc_status: Option<&'static str>) -> Response<()> {
    let mut res = Response::new(());
    *res.status_mut() = StatusCode::from_u16(status).unwrap();
    if let Some(g) = grpc_status {
        res.headers_mut()
            .insert("grpc-status", HeaderValue::from_static(g));
    }
    res
}

fn verdict(res: &Response<()>) -> Verdict {
    Classify::<_, BoxError>::classify(&HttpClassifier, Ok(res))
}

#[test]
fn overload_statuses_are_rejections() {
    assert_eq!(verdict(&response(503, None)), Verdict::Rejected);
    assert_eq!(verdict(&response(429, None)), Verdict::Rejected);
    assert_eq!(verdict(&response(200, Some("8"))), Verdict::Rejected);
    assert_eq!(verdict(&response(200, Some("14"))), Verdict::Rejected);
    assert_eq!(verdict(&response(200, Some(" 14 "))), Verdict::Rejected);
}

#[test]
fn any_other_response_is_accepted() {
    for status in [200, 201, 204, 301, 400, 404, 500, 502, 504] {
        assert_eq!(
            verdict(&response(status, None)),
            Verdict::Accepted,
            "{status}"
        );
    }
    for grpc in ["0", "2", "4", "13", "80", "garbage"] {
        assert_eq!(
            verdict(&response(200, Some(grpc))),
            Verdict::Accepted,
            "{grpc}"
        );
    }
}

#[test]
fn an_overloaded_error_is_a_rejection_wherever_it_sits() {
    let err = Overloaded::new(Reason::Emergency, Priority::Low);
    let direct: Result<&Response<()>, &Overloaded> = Err(&err);
    assert_eq!(HttpClassifier.classify(direct), Verdict::Rejected);

    let boxed: BoxError = Box::new(err.clone());
    let as_box: Result<&Response<()>, &BoxError> = Err(&boxed);
    assert_eq!(HttpClassifier.classify(as_box), Verdict::Rejected);

    // Wrapped as the source of another error, as a buffer or a client does.
    #[derive(Debug)]
    struct Wrapper(Overloaded);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }
    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let wrapped: BoxError = Box::new(Wrapper(err));
    let chain: Result<&Response<()>, &BoxError> = Err(&wrapped);
    assert_eq!(HttpClassifier.classify(chain), Verdict::Rejected);
}

#[test]
fn other_errors_are_ignored() {
    let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    let direct: Result<&Response<()>, &std::io::Error> = Err(&io);
    assert_eq!(HttpClassifier.classify(direct), Verdict::Ignored);
    let boxed: BoxError = "connection closed".into();
    let as_box: Result<&Response<()>, &BoxError> = Err(&boxed);
    assert_eq!(HttpClassifier.classify(as_box), Verdict::Ignored);
}
