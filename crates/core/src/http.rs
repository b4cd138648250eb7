//! `Overloaded` as an HTTP response: `503` + `Retry-After`, or a trailers-only
//! gRPC reply when the request was gRPC (feature `http`).

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::{Overloaded, Refusal};

/// The metadata key through which gRPC clients learn how long to back off
/// (gRPC A6 retry design).
pub const GRPC_RETRY_PUSHBACK_MS: &str = "grpc-retry-pushback-ms";

/// What a refused client is told by default: that the service is
/// overloaded, and nothing of its own class or the service's state.
pub const GENERIC_MESSAGE: &str = "service overloaded";

/// Which gRPC status code a rejection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum GrpcCode {
    /// `RESOURCE_EXHAUSTED` (8): the server is out of capacity. The default;
    /// clients do not retry it unless their retry policy names it, and honour
    /// the pushback when they do.
    #[default]
    ResourceExhausted,
    /// `UNAVAILABLE` (14): transient; retried by default retry policies.
    Unavailable,
}

impl GrpcCode {
    /// The numeric code (`8` or `14`).
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            GrpcCode::ResourceExhausted => 8,
            GrpcCode::Unavailable => 14,
        }
    }
}

/// Which HTTP status a rejection of a plain HTTP request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum HttpStatus {
    /// `503 Service Unavailable`: the server is overloaded. The default.
    #[default]
    ServiceUnavailable,
    /// `429 Too Many Requests`: for services that refuse per client.
    TooManyRequests,
}

impl HttpStatus {
    /// The status code.
    #[must_use]
    pub const fn status_code(self) -> StatusCode {
        match self {
            HttpStatus::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            HttpStatus::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

/// Whether a request is gRPC: its `content-type` starts with `application/grpc`.
#[must_use]
pub fn is_grpc(request_headers: &HeaderMap) -> bool {
    request_headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// How an `Overloaded` becomes a response: the HTTP status for plain requests
/// and the gRPC code for gRPC ones.
///
/// ```
/// use http::{HeaderMap, HeaderValue, StatusCode};
/// use tower_pressure_core::{Overloaded, Priority, Reason};
/// use tower_pressure_core::http::{HttpStatus, Rejection};
///
/// let err = Overloaded::new(Reason::QueueFull, Priority::Low);
/// let plain: http::Response<()> = Rejection::default().respond(&err, &HeaderMap::new());
/// assert_eq!(plain.status(), StatusCode::SERVICE_UNAVAILABLE);
///
/// let mut grpc = HeaderMap::new();
/// grpc.insert("content-type", HeaderValue::from_static("application/grpc"));
/// let reply: http::Response<()> = Rejection::default().respond(&err, &grpc);
/// assert_eq!(reply.status(), StatusCode::OK);
/// assert_eq!(reply.headers()["grpc-status"], "8");
///
/// let r = Rejection::default().http_status(HttpStatus::TooManyRequests);
/// assert_eq!(r.respond::<()>(&err, &HeaderMap::new()).status(), 429);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Rejection {
    http_status: HttpStatus,
    grpc_code: GrpcCode,
    detail: bool,
}

impl Rejection {
    /// The HTTP status for plain requests. Default `503`.
    #[must_use]
    pub fn http_status(mut self, status: HttpStatus) -> Self {
        self.http_status = status;
        self
    }

    /// The gRPC code for gRPC requests. Default `RESOURCE_EXHAUSTED`.
    #[must_use]
    pub fn grpc_code(mut self, code: GrpcCode) -> Self {
        self.grpc_code = code;
        self
    }

    /// Whether the message a refused client gets (`grpc-message`, and the
    /// body where a layer writes one) tells why, its class and how many
    /// waited — [`Overloaded`]'s `Display` — rather than
    /// [`GENERIC_MESSAGE`]. Default `false`: those details tell a client how
    /// it is classified and how loaded the service is. For logs, use the
    /// `Overloaded` in the response extensions.
    #[must_use]
    pub fn detail(mut self, detail: bool) -> Self {
        self.detail = detail;
        self
    }

    /// The message a refused client gets for `err` (see [`detail`](Self::detail)).
    #[must_use]
    pub fn message(&self, err: &Overloaded) -> std::borrow::Cow<'static, str> {
        if self.detail {
            err.to_string().into()
        } else {
            GENERIC_MESSAGE.into()
        }
    }

    /// The response to a request with `request_headers`: a trailers-only gRPC
    /// reply when the request is gRPC, else an HTTP error with `Retry-After`.
    #[must_use]
    pub fn respond<B: Default>(
        &self,
        err: &Overloaded,
        request_headers: &HeaderMap,
    ) -> Response<B> {
        if is_grpc(request_headers) {
            err.grpc_response(self.grpc_code, &self.message(err))
        } else {
            err.to_http_response_with(self.http_status)
        }
    }
}

/// Answers a refused HTTP request with [`respond`](Rejection::respond)'s
/// response; the wrapped service's errors pass unchanged.
impl<ReqB, ResB: Default, E> Refusal<http::Request<ReqB>, Response<ResB>, E> for Rejection {
    type Error = E;

    fn refuse(&self, err: Overloaded, req: &http::Request<ReqB>) -> Result<Response<ResB>, E> {
        Ok(self.respond(&err, req.headers()))
    }
}

/// `message` percent-encoded as a `grpc-message` value must be (gRPC over
/// HTTP/2): every byte outside printable ASCII, and `%` itself, as `%XX`.
#[must_use]
fn encode_grpc_message(message: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn grpc_message(message: &str) -> HeaderValue {
    HeaderValue::from_str(&encode_grpc_message(message))
        .unwrap_or_else(|_| HeaderValue::from_static(GENERIC_MESSAGE))
}

impl Overloaded {
    /// `503 Service Unavailable` with `Retry-After` in whole seconds (at least
    /// 1) and an empty body. The `Overloaded` is in the response extensions.
    #[must_use]
    pub fn to_http_response<B: Default>(&self) -> Response<B> {
        self.to_http_response_with(HttpStatus::ServiceUnavailable)
    }

    /// Like [`to_http_response`](Overloaded::to_http_response) with the given status.
    #[must_use]
    pub fn to_http_response_with<B: Default>(&self, status: HttpStatus) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = status.status_code();
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(self.retry_after_secs()));
        res.extensions_mut().insert(self.clone());
        res
    }

    /// A trailers-only gRPC reply: HTTP 200, `content-type: application/grpc`,
    /// `grpc-status`, `grpc-message` ([`GENERIC_MESSAGE`]) and
    /// `grpc-retry-pushback-ms` in the one header block, empty body. The
    /// `Overloaded` is in the extensions.
    ///
    /// A bare 503 would reach a gRPC client as `UNAVAILABLE` with no
    /// pushback; this reply carries both the code and the advised back-off.
    #[must_use]
    pub fn to_grpc_response<B: Default>(&self, code: GrpcCode) -> Response<B> {
        self.grpc_response(code, GENERIC_MESSAGE)
    }

    fn grpc_response<B: Default>(&self, code: GrpcCode, message: &str) -> Response<B> {
        let mut res = Response::new(B::default());
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert("grpc-status", HeaderValue::from(u16::from(code.code())));
        h.insert("grpc-message", grpc_message(message));
        h.insert(
            GRPC_RETRY_PUSHBACK_MS,
            HeaderValue::from(self.pushback_ms()),
        );
        res.extensions_mut().insert(self.clone());
        res
    }

    /// The gRPC pushback in milliseconds (`retry_after`, saturating).
    #[must_use]
    pub fn pushback_ms(&self) -> u64 {
        u64::try_from(self.retry_after().as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn grpc_message_is_percent_encoded() {
        // A reason text with `%` and a non-ASCII byte, as a future reason or
        // a custom Display might carry: encoded as the gRPC spec requires.
        assert_eq!(super::encode_grpc_message("50% voilà"), "50%25 voil%C3%A0");
    }
}
