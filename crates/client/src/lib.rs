//! The client side of [tower-pressure]: keeps a service's callers from
//! hammering it while it sheds load, by refusing their calls locally
//! ([`ThrottleLayer`]) and retrying only as the service allows
//! ([`PushbackPolicy`]).
//!
//! A server that refuses work fast and honestly (`503` + `Retry-After`,
//! gRPC `RESOURCE_EXHAUSTED` + pushback) still spends something on every
//! refusal; when its clients keep sending, or retry at once, refusals alone
//! can fill it. The other half of overload control is on the calling side:
//!
//! - [`ThrottleLayer`] counts, per [`Priority`](tower_pressure_core::Priority)
//!   and over the last two minutes, the calls made and the calls the
//!   service accepted, and refuses a new call locally with probability
//!   `max(0, (requests − K × accepts) / (requests + 1))` (the Google SRE
//!   book's adaptive throttling, `K` = 2): nothing while the service accepts
//!   half of what it gets, nearly everything while it refuses everything.
//!   Which answers are acceptances is a [`Classify`] decision,
//!   [`HttpClassifier`] by default.
//! - [`PushbackPolicy`], for tower's `Retry`, retries a refused call only
//!   after the wait the service asked for (`Retry-After`,
//!   `grpc-retry-pushback-ms`), only when the request may be sent twice, a
//!   few times at most, and only while a retry budget lasts.
//!
//! # Example
//!
//! Retries outside the throttle, so that each retry is counted and
//! throttled like any call:
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_pressure_client::{PushbackPolicy, ThrottleLayer};
//! use tower_pressure_core::Priority;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Stands for an HTTP client, such as hyper-util's `Client`.
//! let http_client = service_fn(|req: Request<String>| async move {
//!     let status = if req.uri().path() == "/busy" {
//!         StatusCode::SERVICE_UNAVAILABLE
//!     } else {
//!         StatusCode::OK
//!     };
//!     let mut res = Response::new(String::new());
//!     *res.status_mut() = status;
//!     Ok::<_, Infallible>(res)
//! });
//!
//! // One throttle per service called: its statistics are that service's.
//! let throttle = ThrottleLayer::new();
//! let client = ServiceBuilder::new()
//!     .retry(PushbackPolicy::new())
//!     .layer(throttle.clone())
//!     .service(http_client);
//!
//! let res = client.clone().oneshot(Request::get("/hello").body(String::new())?).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//!
//! // The service refuses everything on /busy: soon the client stops
//! // sending, and answers for it with a local 503.
//! for _ in 0..50 {
//!     let req = Request::get("/busy").body(String::new())?;
//!     let _ = client.clone().oneshot(req).await?;
//! }
//! assert!(throttle.refusal_probability(Priority::Normal) > 0.8);
//! # Ok(()) }
//! ```
//!
//! # Stacking
//!
//! `Retry` (with [`PushbackPolicy`]) outermost, then [`ThrottleLayer`], then
//! the client itself: a retry goes through the throttle, which counts it and
//! refuses it while the service sheds; the policy does not retry a local
//! refusal. Put a timeout inside the throttle if a timeout should not count
//! (the default classifier ignores errors other than `Overloaded`), or
//! outside the retries to bound the whole call.
//!
//! # Features
//!
//! None: the HTTP classifier and responses use the `http` crate, which tower
//! users have anyway, and non-HTTP services use closures and
//! [`AsError`](tower_pressure_core::AsError).
//!
//! # Minimum supported Rust version
//!
//! The MSRV is 1.88 (edition 2024).
//!
//! [tower-pressure]: https://github.com/tower-pressure/tower-pressure

mod classify;
mod config;
mod future;
mod layer;
mod pushback;
mod rng;
mod service;
mod throttler;

pub use classify::{Classify, HttpClassifier, Verdict};
pub use config::{ThrottleConfig, ThrottleConfigBuilder};
pub use future::ResponseFuture;
pub use layer::ThrottleLayer;
pub use pushback::{PushbackPolicy, PushbackPolicyBuilder};
pub use service::Throttle;
