//! [`Classify`]: whether the service accepted a call, from its answer.

use std::any::Any;
use std::error::Error;

use http::{HeaderMap, HeaderName, Response, StatusCode};
use tower_pressure_core::Overloaded;

/// What an answer says of the service's load, for the client throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The service took the call: it counts among `requests` and `accepts`.
    Accepted,
    /// The service turned the call away for overload: it counts among
    /// `requests` only.
    Rejected,
    /// The answer says nothing of the service's load (a connection that
    /// failed, say): the call is not counted.
    Ignored,
}

/// Decides from a call's result whether the service accepted it.
///
/// Implemented by [`HttpClassifier`] (the default, for `http` services) and
/// by every `Fn(Result<&T, &E>) -> Verdict`, so any response type can be
/// classified with a closure:
///
/// ```
/// use tower_pressure_client::{Classify, Verdict};
///
/// enum Reply { Done, Busy }
/// let classify = |r: Result<&Reply, &std::io::Error>| match r {
///     Ok(Reply::Done) => Verdict::Accepted,
///     Ok(Reply::Busy) => Verdict::Rejected,
///     Err(_) => Verdict::Ignored,
/// };
/// assert_eq!(classify.classify(Ok(&Reply::Busy)), Verdict::Rejected);
/// ```
///
/// It runs once per answered call: keep it cheap, and cheap to clone (each
/// response future holds a clone).
pub trait Classify<T, E> {
    /// The verdict on a call that ended with `result`.
    fn classify(&self, result: Result<&T, &E>) -> Verdict;
}

impl<F, T, E> Classify<T, E> for F
where
    F: Fn(Result<&T, &E>) -> Verdict,
{
    fn classify(&self, result: Result<&T, &E>) -> Verdict {
        self(result)
    }
}

/// The default classifier, for `http::Response`s.
///
/// - **Rejected**: a `503 Service Unavailable` or `429 Too Many Requests`
///   status; a gRPC status `RESOURCE_EXHAUSTED` (8) or `UNAVAILABLE` (14) in
///   the `grpc-status` response *header* (a trailers-only reply, which is how
///   servers, tower-pressure's layers among them, refuse a call); an inner
///   error that is an [`Overloaded`], directly or in a boxed error's source
///   chain.
/// - **Accepted**: any other response, a `500` included: the service spent
///   its work on the call, which is what the throttle weighs.
/// - **Ignored**: any other error (a refused connection or a timeout says
///   nothing certain of the service's load, and the throttle counts only
///   what it knows).
///
/// A gRPC status sent in the trailers at the end of a streamed body is not
/// seen: a service refuses for overload before it streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpClassifier;

/// gRPC status codes that mean the service refused for overload.
const GRPC_REJECTIONS: [&[u8]; 2] = [b"8", b"14"];
/// HTTP statuses that mean the service refused for overload.
const HTTP_REJECTIONS: [StatusCode; 2] = [
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::TOO_MANY_REQUESTS,
];
/// `grpc-status`, parsed once rather than per response.
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

impl<B, E: 'static> Classify<Response<B>, E> for HttpClassifier {
    fn classify(&self, result: Result<&Response<B>, &E>) -> Verdict {
        match result {
            Ok(res) if is_rejection(res.status(), res.headers()) => Verdict::Rejected,
            Ok(_) => Verdict::Accepted,
            Err(err) if is_overloaded(err) => Verdict::Rejected,
            Err(_) => Verdict::Ignored,
        }
    }
}

/// Whether a response with `status` and `headers` refuses for overload.
pub(crate) fn is_rejection(status: StatusCode, headers: &HeaderMap) -> bool {
    HTTP_REJECTIONS.contains(&status)
        || headers
            .get(&GRPC_STATUS)
            .is_some_and(|v| GRPC_REJECTIONS.contains(&v.as_bytes().trim_ascii()))
}

/// Whether `err` (of any type) is an [`Overloaded`] or holds one.
fn is_overloaded(err: &dyn Any) -> bool {
    if err.is::<Overloaded>() {
        return true;
    }
    if let Some(boxed) = err.downcast_ref::<Box<dyn Error + Send + Sync>>() {
        return chain_has_overloaded(&**boxed);
    }
    if let Some(boxed) = err.downcast_ref::<Box<dyn Error>>() {
        return chain_has_overloaded(&**boxed);
    }
    false
}

fn chain_has_overloaded(err: &(dyn Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<Overloaded>() {
            return true;
        }
        next = e.source();
    }
    false
}
