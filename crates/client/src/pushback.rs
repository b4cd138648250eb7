//! [`PushbackPolicy`]: a retry policy that waits as long as the service
//! asks, and spends from a budget.

use std::sync::Arc;
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use tokio::time::Sleep;
use tower::retry::Policy;
use tower::retry::budget::{Budget, TpsBudget};
use tower_pressure_core::http::GRPC_RETRY_PUSHBACK_MS;
use tower_pressure_core::{ConfigError, Overloaded, PriorityOf, Reason};

use crate::classify::is_rejection;
use crate::rng::SplitMix;

/// The default number of retries after the first attempt.
pub(crate) const DEFAULT_MAX_RETRIES: u32 = 2;
/// The default longest wait before a retry.
pub(crate) const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);
/// The default first backoff when the service gives no pushback.
pub(crate) const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);
/// The longest `max_wait` accepted.
pub(crate) const MAX_MAX_WAIT: Duration = Duration::from_secs(3600);
/// The default budget: retries up to 10 % of the calls of the last 10 s
/// (the Google SRE book's per-client retry budget), plus one a second for a
/// client that calls rarely.
fn default_budget() -> TpsBudget {
    TpsBudget::new(Duration::from_secs(10), 1, 0.1)
}

/// `Idempotency-Key`: marks a request safe to send twice (the IETF HTTPAPI
/// working group's draft, used by payment APIs).
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `grpc-retry-pushback-ms`, parsed once rather than per response.
static PUSHBACK_MS: HeaderName = HeaderName::from_static(GRPC_RETRY_PUSHBACK_MS);

/// A [`tower::retry::Policy`] for HTTP and gRPC clients that retries a call
/// the service refused for overload only as the service allows: after the
/// wait it asks for, within a retry budget, a few times at most.
///
/// A call is retried when all of these hold:
///
/// - its answer is a refusal for overload: `503`, `429`, or a gRPC status
///   `RESOURCE_EXHAUSTED` (8) or `UNAVAILABLE` (14) in the response header.
///   Errors are passed on (they carry no pushback), and so is a call the
///   client throttle refused locally
///   ([`Reason::ClientThrottled`](tower_pressure_core::Reason::ClientThrottled)):
///   that refusal is already the client's answer to the overload;
/// - the service's pushback allows it: `grpc-retry-pushback-ms` (gRPC's
///   retry design, A6) if present, else `Retry-After` in seconds. A pushback
///   that is negative or does not parse (the `Retry-After` date form
///   included: the policy reads no wall clock) means "do not retry", as in
///   gRPC; one longer than [`max_wait`](PushbackPolicyBuilder::max_wait)
///   too. Without a pushback the policy waits a random time up to the
///   [`backoff`](PushbackPolicyBuilder::backoff), doubled at each retry
///   (full jitter, so that refused clients do not come back together);
/// - the wait ends before the request's
///   [`Deadline`](tower_pressure_core::Deadline), if it has one;
/// - fewer than [`max_retries`](PushbackPolicyBuilder::max_retries) retries
///   were made for the call (default 2);
/// - the request can be sent twice: its method is idempotent (`GET`,
///   `HEAD`, `OPTIONS`, `TRACE`, `PUT`, `DELETE`, RFC 9110 §9.2.2) or it
///   carries an `Idempotency-Key` header, or the policy retries every
///   method ([`non_idempotent`](PushbackPolicyBuilder::non_idempotent)).
///   The request is cloned before it is sent (`http::Request` clones its
///   body and extensions: `B: Clone`); one that may not be retried is not
///   cloned;
/// - the budget has a retry left: every first attempt deposits into a
///   [`TpsBudget`], every retry withdraws, and a retry without budget is
///   not made. So retries stay a bounded share of the calls, and cannot
///   multiply the load on a service that is already refusing.
///
/// Stack the retries *outside* the [`ThrottleLayer`](crate::ThrottleLayer):
/// each retry then passes through the throttle, is counted like any call,
/// and is refused locally (and not retried again) while the service sheds.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use http::{HeaderValue, Request, Response, StatusCode};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_pressure_client::{PushbackPolicy, ThrottleLayer};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let policy = PushbackPolicy::builder().max_retries(1).build()?;
/// let client = ServiceBuilder::new()
///     .retry(policy)
///     .layer(ThrottleLayer::new())
///     .service(service_fn(|_: Request<String>| async {
///         let mut res = Response::new(String::new());
///         *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
///         res.headers_mut().insert("retry-after", HeaderValue::from_static("2"));
///         Ok::<_, Infallible>(res)
///     }));
///
/// let start = tokio::time::Instant::now();
/// let res = client.oneshot(Request::new(String::new())).await?;
/// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(start.elapsed(), Duration::from_secs(2), "one retry, after the pushback");
/// # Ok(()) }
/// ```
///
/// The policy's state is per call (tower's `Retry` clones the policy for
/// each call); the budget and the random jitter are shared by every clone.
#[derive(Debug, Clone)]
pub struct PushbackPolicy {
    shared: Arc<Shared>,
    /// Retries made for this call.
    attempts: u32,
}

#[derive(Debug)]
struct Shared {
    budget: Arc<TpsBudget>,
    rng: SplitMix,
    max_retries: u32,
    max_wait: Duration,
    backoff: Duration,
    non_idempotent: bool,
}

impl PushbackPolicy {
    /// A policy with the defaults: at most 2 retries, waits of at most 10 s,
    /// a 100 ms backoff without pushback, idempotent requests only, and a
    /// budget of its own.
    #[must_use]
    pub fn new() -> PushbackPolicy {
        PushbackPolicy::builder()
            .build()
            .expect("the defaults are valid")
    }

    /// A builder starting from the defaults.
    pub fn builder() -> PushbackPolicyBuilder {
        PushbackPolicyBuilder::default()
    }

    /// The wait before the next retry of a call refused with `headers`, or
    /// `None` if the service's pushback forbids one.
    fn wait(&self, headers: &HeaderMap) -> Option<Duration> {
        let s = &self.shared;
        if let Some(ms) = headers.get(&PUSHBACK_MS) {
            return parse_count(ms).map(Duration::from_millis);
        }
        if let Some(secs) = headers.get(RETRY_AFTER) {
            return parse_count(secs).map(Duration::from_secs);
        }
        let cap = s
            .backoff
            .saturating_mul(1 << self.attempts.min(31))
            .min(s.max_wait);
        // Whole milliseconds, the resolution of tokio's timer. `max_wait` is
        // at most an hour, so the product is exact.
        let ms = (cap.as_millis() as f64 * s.rng.next_f64()) as u64;
        Some(Duration::from_millis(ms))
    }

    /// Whether `req` may be sent twice.
    fn may_resend<B>(&self, req: &Request<B>) -> bool {
        self.shared.non_idempotent
            || matches!(
                *req.method(),
                Method::GET
                    | Method::HEAD
                    | Method::OPTIONS
                    | Method::TRACE
                    | Method::PUT
                    | Method::DELETE
            )
            || req.headers().contains_key(&IDEMPOTENCY_KEY)
    }
}

impl Default for PushbackPolicy {
    fn default() -> Self {
        PushbackPolicy::new()
    }
}

impl<B: Clone, ResB, E> Policy<Request<B>, Response<ResB>, E> for PushbackPolicy {
    type Future = Sleep;

    fn retry(
        &mut self,
        req: &mut Request<B>,
        result: &mut Result<Response<ResB>, E>,
    ) -> Option<Sleep> {
        let Ok(res) = result else {
            return None;
        };
        let throttled_here = res
            .extensions()
            .get::<Overloaded>()
            .is_some_and(|o| o.reason() == Reason::ClientThrottled);
        if !is_rejection(res.status(), res.headers())
            || throttled_here
            || self.attempts >= self.shared.max_retries
        {
            return None;
        }
        let wait = self.wait(res.headers())?;
        if wait > self.shared.max_wait || req.deadline().is_some_and(|d| wait >= d.remaining()) {
            return None;
        }
        // Last: the budget is spent only on a retry that is made.
        if !self.shared.budget.withdraw() {
            return None;
        }
        self.attempts += 1;
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, req: &Request<B>) -> Option<Request<B>> {
        // `Retry` asks the service's own policy (no retries yet) before the
        // first attempt, and the call's clone before each retry: a first
        // attempt deposits, whether or not it may be retried.
        if self.attempts == 0 {
            self.shared.budget.deposit();
        }
        self.may_resend(req).then(|| req.clone())
    }
}

/// A pushback value: a whole number of units, or `None` (do not retry) for a
/// negative, fractional, empty, oversized or otherwise unreadable one.
fn parse_count(value: &HeaderValue) -> Option<u64> {
    let b = value.as_bytes().trim_ascii();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Builds a [`PushbackPolicy`]; see [`PushbackPolicy::builder`].
#[derive(Debug, Default)]
#[must_use]
pub struct PushbackPolicyBuilder {
    max_retries: Option<u32>,
    max_wait: Option<Duration>,
    backoff: Option<Duration>,
    non_idempotent: bool,
    budget: Option<Arc<TpsBudget>>,
    seed: Option<u64>,
}

impl PushbackPolicyBuilder {
    /// The most retries after the first attempt of a call. Default 2.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// The longest wait before a retry, at most 1 hour: a service that
    /// asks for a longer one gets no retry, and its answer is passed on.
    /// Default 10 s.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = Some(wait);
        self
    }

    /// The wait before the first retry when the service gives no pushback:
    /// a random time up to `backoff`, up to twice that before the second,
    /// and so on, never more than `max_wait` (which it may not exceed).
    /// Default 100 ms.
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Whether requests of any method are retried, not only idempotent ones
    /// and those with an `Idempotency-Key`. Default `false`. Safe when the
    /// services called refuse an overloaded call before doing any of its
    /// work, as tower-pressure's layers do; gRPC calls (all `POST`) need it.
    pub fn non_idempotent(mut self, retry: bool) -> Self {
        self.non_idempotent = retry;
        self
    }

    /// The retry budget, shared with whatever else holds it (say, the
    /// policies of every client of one service). Default: one for this
    /// policy and its clones, allowing retries of 10 % of the calls of the
    /// last 10 s plus one a second (`TpsBudget::new(10 s, 1, 0.1)`).
    pub fn budget(mut self, budget: Arc<TpsBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Seeds the random backoff, for reproducible runs and tests. Default:
    /// a seed from the standard library's per-process random keys.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: `pushback.max_wait` above 1 hour;
    /// `pushback.backoff` above `max_wait`.
    pub fn build(self) -> Result<PushbackPolicy, ConfigError> {
        let max_wait = self.max_wait.unwrap_or(DEFAULT_MAX_WAIT);
        let backoff = self.backoff.unwrap_or(DEFAULT_BACKOFF);
        if max_wait > MAX_MAX_WAIT {
            return Err(ConfigError::new(
                "pushback.max_wait",
                format_args!("{max_wait:?}"),
                "must be at most 1 hour",
            ));
        }
        if backoff > max_wait {
            return Err(ConfigError::new(
                "pushback.backoff",
                format_args!("{backoff:?}"),
                format!("must be at most max_wait ({max_wait:?})"),
            ));
        }
        Ok(PushbackPolicy {
            shared: Arc::new(Shared {
                budget: self.budget.unwrap_or_else(|| Arc::new(default_budget())),
                rng: SplitMix::seeded(self.seed),
                max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
                max_wait,
                backoff,
                non_idempotent: self.non_idempotent,
            }),
            attempts: 0,
        })
    }
}
