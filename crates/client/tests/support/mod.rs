//! Helpers shared by the client tests: a scripted HTTP backend that counts
//! its calls, requests of a given priority, and a look at local refusals.

#![allow(dead_code, reason = "each test file uses a part of the helpers")]
#![allow(unreachable_pub, reason = "helpers of the test crates")]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Request, Response, StatusCode};
use tower::{Service, ServiceExt};
use tower_pressure_core::{Overloaded, Priority, Reason};

/// A backend whose answer to its `n`th call (from 0) is `script(n)`, and the
/// count of calls it got.
pub fn backend<F>(
    script: F,
) -> (
    impl Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone + Send,
    Arc<AtomicUsize>,
)
where
    F: Fn(usize) -> Response<String> + Clone + Send + Sync + 'static,
{
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let svc = tower::service_fn(move |_req: Request<String>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let res = script(n);
        async move { Ok::<_, Infallible>(res) }
    });
    (svc, calls)
}

/// A response with `status` and no headers.
pub fn status(status: StatusCode) -> Response<String> {
    let mut res = Response::new(String::new());
    *res.status_mut() = status;
    res
}

/// A response with `status` and one header.
pub fn with_header(code: StatusCode, name: &'static str, value: &'static str) -> Response<String> {
    let mut res = status(code);
    res.headers_mut()
        .insert(name, http::HeaderValue::from_static(value));
    res
}

/// A `GET /` of `priority`.
pub fn get(priority: Priority) -> Request<String> {
    let mut req = Request::new(String::new());
    req.extensions_mut().insert(priority);
    req
}

/// Whether `res` is a refusal made by the client throttle, not the backend.
pub fn throttled_here(res: &Response<String>) -> bool {
    res.extensions()
        .get::<Overloaded>()
        .is_some_and(|o| o.reason() == Reason::ClientThrottled)
}

/// Sends `req` through `svc`; whether the throttle refused it locally.
pub async fn send<S>(svc: &mut S, req: Request<String>) -> bool
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    throttled_here(&res)
}

/// Sends `n` requests of `priority`; how many the throttle refused locally.
pub async fn send_n<S>(svc: &mut S, priority: Priority, n: usize) -> usize
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    let mut refused = 0;
    for _ in 0..n {
        refused += usize::from(send(svc, get(priority)).await);
    }
    refused
}
