//! [`Classify`]: what a completed request says about the service's load.

use std::any::Any;
use std::error::Error;
use std::io;

use http::Response;

use crate::Outcome;
use crate::body::RecordingBody;
use crate::future::Pending;

/// The boxed error of tower's generic services.
type BoxError = Box<dyn Error + Send + Sync>;

/// Decides the [`Outcome`] of a completed request from its result, and what
/// the recording layer answers with.
///
/// Implemented by [`HttpClassifier`] (the default, for `http` services: it
/// can time a response to the end of its body) and by every
/// `Fn(Result<&T, &E>) -> Outcome` (any service: the response is passed on
/// as it is), so any request/response type can be classified with a
/// closure:
///
/// ```
/// use tower_pressure_adaptive::{Classify, Outcome};
///
/// enum Reply { Done, Busy }
/// let classify = |r: Result<&Reply, &std::io::Error>| match r {
///     Ok(Reply::Done) => Outcome::Success,
///     Ok(Reply::Busy) => Outcome::Dropped,
///     Err(_) => Outcome::Ignored,
/// };
/// assert_eq!(classify.classify(Ok(&Reply::Busy)), Outcome::Dropped);
/// ```
///
/// It runs once per completed request, on the request path: keep it cheap,
/// and cheap to clone (each response future holds a clone; wrap state in an
/// `Arc`).
pub trait Classify<T, E> {
    /// What the recording service answers: `T`, or `T` with its body timed.
    type Response;

    /// The outcome of a request that completed with `result`.
    fn classify(&self, result: Result<&T, &E>) -> Outcome;

    /// The answer for a response. `pending` is the request's recording
    /// when the layer times successes to the end of the body
    /// ([`until_body_end`](crate::AdaptiveLayer::until_body_end)): it is
    /// recorded when finished or dropped.
    fn respond(&self, response: T, pending: Option<Pending>) -> Self::Response;
}

impl<F, T, E> Classify<T, E> for F
where
    F: Fn(Result<&T, &E>) -> Outcome,
{
    type Response = T;

    fn classify(&self, result: Result<&T, &E>) -> Outcome {
        self(result)
    }

    /// No body to wait for: a pending success is recorded now.
    fn respond(&self, response: T, pending: Option<Pending>) -> T {
        if let Some(p) = pending {
            p.finish(Outcome::Success);
        }
        response
    }
}

/// The default classifier, for `http::Response`s.
///
/// - **Dropped** (the service or one below it said it is overloaded): a
///   `503 Service Unavailable`, `429 Too Many Requests` or `504 Gateway
///   Timeout` status; a gRPC status `RESOURCE_EXHAUSTED` (8),
///   `UNAVAILABLE` (14) or `DEADLINE_EXCEEDED` (4) in the `grpc-status`
///   response *header* (a trailers-only reply, which is how servers and
///   tower-pressure itself refuse); an inner error that is a timeout: a
///   `tokio::time::error::Elapsed`, an `io::Error` of kind `TimedOut`, or an
///   error whose message (or a source's) says "timed out" (tower's
///   `timeout::error::Elapsed` says "request timed out"), looked for in a
///   `BoxError`'s source chain.
/// - **Ignored**: any other `5xx` (an application error: a bug or a failed
///   dependency says nothing about concurrency, and an error path is often
///   fast, so its latency would bias the samples low); any other inner error
///   (a reset connection says nothing of latency).
/// - **Success**: everything else.
///
/// The latency is measured to the response head, and a gRPC status sent in
/// the trailers at the end of a streamed body is not seen, unless the layer
/// times to the body's end
/// ([`until_body_end`](crate::AdaptiveLayer::until_body_end)): then the
/// response's body is a [`RecordingBody`] that records at its end and reads
/// the trailers. A service that reports its own overload with another status
/// (a `500` from an exhausted pool, say) needs a closure that says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpClassifier;

/// gRPC status codes that mean overload or timeout below us.
const GRPC_DROPS: [&[u8]; 3] = [b"4", b"8", b"14"];
/// HTTP statuses that mean overload or timeout below us.
const HTTP_DROPS: [http::StatusCode; 3] = [
    http::StatusCode::SERVICE_UNAVAILABLE,
    http::StatusCode::TOO_MANY_REQUESTS,
    http::StatusCode::GATEWAY_TIMEOUT,
];
/// `grpc-status`, parsed once rather than per response.
static GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

impl<B, E: 'static> Classify<Response<B>, E> for HttpClassifier {
    type Response = Response<RecordingBody<B>>;

    fn respond(&self, response: Response<B>, pending: Option<Pending>) -> Self::Response {
        response.map(|body| RecordingBody::new(body, pending))
    }

    fn classify(&self, result: Result<&Response<B>, &E>) -> Outcome {
        match result {
            Ok(response) => {
                let grpc_drop = grpc_drop(response.headers());
                let status = response.status();
                if grpc_drop || HTTP_DROPS.contains(&status) {
                    Outcome::Dropped
                } else if status.is_server_error() {
                    Outcome::Ignored
                } else {
                    Outcome::Success
                }
            }
            Err(err) if is_timeout(err) => Outcome::Dropped,
            Err(_) => Outcome::Ignored,
        }
    }
}

/// Whether `headers` (a head or trailers) carry a gRPC status that means
/// overload or timeout below us.
pub(crate) fn grpc_drop(headers: &http::HeaderMap) -> bool {
    headers
        .get(&GRPC_STATUS)
        .is_some_and(|v| GRPC_DROPS.contains(&v.as_bytes()))
}

/// Whether `err` (of any type) is a timeout we can recognise.
fn is_timeout(err: &dyn Any) -> bool {
    if let Some(boxed) = err.downcast_ref::<BoxError>() {
        return chain_has_timeout(&**boxed);
    }
    if let Some(boxed) = err.downcast_ref::<Box<dyn Error + 'static>>() {
        return chain_has_timeout(&**boxed);
    }
    if let Some(io) = err.downcast_ref::<io::Error>() {
        return chain_has_timeout(io);
    }
    err.is::<tokio::time::error::Elapsed>()
}

fn chain_has_timeout(err: &(dyn Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<tokio::time::error::Elapsed>()
            || e.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
            || e.to_string().contains("timed out")
        {
            return true;
        }
        next = e.source();
    }
    false
}
