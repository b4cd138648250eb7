//! Compile-time checks: the public types can cross threads and live in
//! `'static` tasks.

use std::convert::Infallible;

use http::{Request, Response};
use tower::util::ServiceFn;
use tower_pressure_client::{
    HttpClassifier, PushbackPolicy, PushbackPolicyBuilder, ResponseFuture, Throttle,
    ThrottleConfig, ThrottleConfigBuilder, ThrottleLayer, Verdict,
};

fn is_send_sync_static<T: Send + Sync + 'static>() {}

type Inner =
    ServiceFn<fn(Request<String>) -> std::future::Ready<Result<Response<String>, Infallible>>>;

#[test]
fn public_types_are_send_sync_and_static() {
    is_send_sync_static::<ThrottleLayer>();
    is_send_sync_static::<Throttle<Inner>>();
    is_send_sync_static::<
        ResponseFuture<
            std::future::Ready<Result<Response<String>, Infallible>>,
            HttpClassifier,
            Response<String>,
            Infallible,
        >,
    >();
    is_send_sync_static::<ThrottleConfig>();
    is_send_sync_static::<ThrottleConfigBuilder>();
    is_send_sync_static::<HttpClassifier>();
    is_send_sync_static::<Verdict>();
    is_send_sync_static::<PushbackPolicy>();
    is_send_sync_static::<PushbackPolicyBuilder>();
}
