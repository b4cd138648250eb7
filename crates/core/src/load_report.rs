//! [`LoadReport`] and [`LoadReportLayer`]: the replica's pressures as an
//! ORCA load report on every response, so that the balancers in front of a
//! fleet (Envoy's client-side weighted round robin, gRPC's ORCA-aware
//! policies) send less to a pressed replica.
//!
//! The format follows the ORCA header proposal Envoy implements
//! (`source/common/orca/orca_parser.cc`) and the message
//! `xds.data.orca.v3.OrcaLoadReport`
//! (<https://github.com/cncf/xds/blob/main/xds/data/orca/v3/orca_load_report.proto>):
//! a response header `endpoint-load-metrics` whose value is
//! `TEXT key=value, …` (the default), `JSON {…}` or `BIN <base64 proto>`,
//! as the request asks with `endpoint-load-metrics-format`.

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use base64::Engine;
use http::{HeaderName, HeaderValue, Request, Response};
use tower::{Layer, Service};

use crate::{LimitControl, Signal};

/// The response header of an ORCA load report.
pub const ENDPOINT_LOAD_METRICS: &str = "endpoint-load-metrics";
/// The request header that picks the report's format: `TEXT`, `JSON` or
/// `BIN`.
pub const ENDPOINT_LOAD_METRICS_FORMAT: &str = "endpoint-load-metrics-format";

static METRICS: HeaderName = HeaderName::from_static(ENDPOINT_LOAD_METRICS);
static FORMAT: HeaderName = HeaderName::from_static(ENDPOINT_LOAD_METRICS_FORMAT);

/// One ORCA load report: utilizations as fractions, and named metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// CPU utilization, from the CPU signal.
    pub cpu_utilization: Option<f64>,
    /// Memory utilization, from the memory signal (at most 1).
    pub mem_utilization: Option<f64>,
    /// The application's own utilization: requests in flight over the
    /// admission limit.
    pub application_utilization: Option<f64>,
    /// Named metrics (`named_metrics.<name>`), e.g. `queue`: the admission
    /// queue's length over its bound.
    pub named_metrics: Vec<(String, f64)>,
}

/// A value as ORCA takes it: finite and not negative.
fn clean(v: f64) -> f64 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

impl LoadReport {
    fn fields(&self) -> impl Iterator<Item = (&'static str, f64)> {
        [
            ("cpu_utilization", self.cpu_utilization),
            ("mem_utilization", self.mem_utilization.map(|m| m.min(1.0))),
            ("application_utilization", self.application_utilization),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, clean(v))))
    }

    /// The text form: `TEXT cpu_utilization=0.42, named_metrics.queue=0.1`.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::from("TEXT ");
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !std::mem::take(&mut first) {
                out.push_str(", ");
            }
        };
        for (k, v) in self.fields() {
            sep(&mut out);
            let _ = write!(out, "{k}={v}");
        }
        for (k, v) in &self.named_metrics {
            sep(&mut out);
            let _ = write!(out, "named_metrics.{k}={}", clean(*v));
        }
        out
    }

    /// The JSON form: `JSON {"cpu_utilization":0.42,"named_metrics":{…}}`.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        for (k, v) in self.fields() {
            map.insert(k.to_owned(), v.into());
        }
        if !self.named_metrics.is_empty() {
            let named: serde_json::Map<String, serde_json::Value> = self
                .named_metrics
                .iter()
                .map(|(k, v)| (k.clone(), clean(*v).into()))
                .collect();
            map.insert("named_metrics".to_owned(), named.into());
        }
        format!("JSON {}", serde_json::Value::Object(map))
    }

    /// The `OrcaLoadReport` protobuf message (fields 1, 2, 8 and 9).
    #[must_use]
    pub fn to_proto(&self) -> Vec<u8> {
        fn double(out: &mut Vec<u8>, field: u8, v: f64) {
            out.push(field << 3 | 1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        fn varint(out: &mut Vec<u8>, mut n: usize) {
            while n >= 0x80 {
                out.push(u8::try_from(n & 0x7f).unwrap_or(0) | 0x80);
                n >>= 7;
            }
            out.push(u8::try_from(n).unwrap_or(0));
        }
        let mut out = Vec::new();
        if let Some(v) = self.cpu_utilization {
            double(&mut out, 1, clean(v));
        }
        if let Some(v) = self.mem_utilization {
            double(&mut out, 2, clean(v).min(1.0));
        }
        for (k, v) in &self.named_metrics {
            // A map entry: key (1, string) and value (2, double).
            let mut entry = vec![0x0a];
            varint(&mut entry, k.len());
            entry.extend_from_slice(k.as_bytes());
            double(&mut entry, 2, clean(*v));
            out.push(8 << 3 | 2);
            varint(&mut out, entry.len());
            out.extend_from_slice(&entry);
        }
        if let Some(v) = self.application_utilization {
            double(&mut out, 9, clean(v));
        }
        out
    }

    /// The binary form: `BIN <base64 of the proto>`.
    #[must_use]
    pub fn to_bin(&self) -> String {
        format!(
            "BIN {}",
            base64::engine::general_purpose::STANDARD.encode(self.to_proto())
        )
    }
}

/// How long a formatted report is reused. The signals sample every 50 ms
/// and balancers weigh replicas over seconds, so a report a few tens of
/// milliseconds old says the same; formatting one per response cost about
/// 600 ns (the `stack/load_report` benchmark), reusing it a clone.
const REFRESH: Duration = Duration::from_millis(50);

/// What a [`LoadReportLayer`] reports from.
#[derive(Clone, Default)]
struct Sources {
    memory: Option<Signal>,
    cpu: Option<Signal>,
    limiter: Option<Arc<dyn LimitControl>>,
}

/// The last header value of each format, and when it was made.
#[derive(Debug, Default)]
struct Cache {
    made: [Option<(Instant, HeaderValue)>; 3],
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("memory", &self.memory.is_some())
            .field("cpu", &self.cpu.is_some())
            .field("limiter", &self.limiter.is_some())
            .finish()
    }
}

impl Sources {
    fn report(&self) -> LoadReport {
        let limiter = self.limiter.as_deref();
        LoadReport {
            cpu_utilization: self.cpu.as_ref().map(Signal::utilization),
            mem_utilization: self.memory.as_ref().map(Signal::utilization),
            application_utilization: limiter
                .map(|l| l.in_flight() as f64 / l.limit().max(1) as f64),
            named_metrics: limiter
                .map(|l| {
                    let queue = l.queue_len() as f64 / l.max_queue().max(1) as f64;
                    vec![("queue".to_owned(), queue)]
                })
                .unwrap_or_default(),
        }
    }
}

/// Adds an ORCA load report to every HTTP response: the memory and CPU
/// signals' utilizations, and the admission limiter's in-flight share
/// (`application_utilization`) and queue share (`named_metrics.queue`).
/// A report is made at most every 50 ms per format and reused in between
/// (the signals sample every 50 ms; balancers weigh replicas over
/// seconds).
///
/// ```
/// use http::{Request, Response};
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_pressure_core::{LoadReportLayer, ManualSource, Signal};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let memory = Signal::spawn(ManualSource::new(0.5), std::time::Duration::from_millis(50));
/// let svc = LoadReportLayer::new()
///     .memory(memory)
///     .layer(service_fn(|_: Request<()>| async { Ok::<_, std::convert::Infallible>(Response::new(())) }));
/// let res = svc.oneshot(Request::new(())).await.unwrap();
/// let report = res.headers()["endpoint-load-metrics"].to_str().unwrap();
/// assert!(report.starts_with("TEXT mem_utilization="));
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct LoadReportLayer {
    sources: Sources,
}

impl LoadReportLayer {
    /// A layer reporting nothing yet; add what it reads.
    #[must_use]
    pub fn new() -> Self {
        LoadReportLayer::default()
    }

    /// Reports `signal`'s utilization as `mem_utilization`.
    #[must_use]
    pub fn memory(mut self, signal: Signal) -> Self {
        self.sources.memory = Some(signal);
        self
    }

    /// Reports `signal`'s utilization as `cpu_utilization`.
    #[must_use]
    pub fn cpu(mut self, signal: Signal) -> Self {
        self.sources.cpu = Some(signal);
        self
    }

    /// Reports the limiter's in-flight share as `application_utilization`
    /// and its queue share as `named_metrics.queue`.
    #[must_use]
    pub fn limiter(mut self, limiter: impl LimitControl) -> Self {
        self.sources.limiter = Some(Arc::new(limiter));
        self
    }

    /// The report as it stands now.
    #[must_use]
    pub fn report(&self) -> LoadReport {
        self.sources.report()
    }
}

impl<S> Layer<S> for LoadReportLayer {
    type Service = LoadReporting<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadReporting {
            inner,
            shared: Arc::new(Shared {
                sources: self.sources.clone(),
                cache: Mutex::default(),
            }),
        }
    }
}

/// What every service of a layer shares.
#[derive(Debug)]
struct Shared {
    sources: Sources,
    cache: Mutex<Cache>,
}

impl Shared {
    /// The header value in `format`: the last one if it is fresh (or if
    /// another request is making one), else a new one.
    fn header(&self, format: Format) -> Option<HeaderValue> {
        let now = Instant::now();
        let i = format as usize;
        if let Ok(cache) = self.cache.try_lock()
            && let Some((made, v)) = &cache.made[i]
            && now.saturating_duration_since(*made) < REFRESH
        {
            return Some(v.clone());
        }
        let report = self.sources.report();
        let value = HeaderValue::from_str(&match format {
            Format::Text => report.to_text(),
            Format::Json => report.to_json(),
            Format::Bin => report.to_bin(),
        })
        .ok()?;
        if let Ok(mut cache) = self.cache.try_lock() {
            cache.made[i] = Some((now, value.clone()));
        }
        Some(value)
    }
}

/// The service made by [`LoadReportLayer`].
#[derive(Debug, Clone)]
pub struct LoadReporting<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// The report's format, as the request asked.
#[derive(Debug, Clone, Copy)]
enum Format {
    Text,
    Json,
    Bin,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for LoadReporting<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = futures_map::MapResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let format = match req.headers().get(&FORMAT).map(HeaderValue::as_bytes) {
            Some(b"JSON") => Format::Json,
            Some(b"BIN") => Format::Bin,
            _ => Format::Text,
        };
        futures_map::MapResponse::new(self.inner.call(req), self.shared.clone(), format)
    }
}

mod futures_map {
    //! The response future: the inner one, then the report on its head.

    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, ready};

    use http::Response;
    use pin_project_lite::pin_project;

    use super::{Format, METRICS, Shared};

    pin_project! {
        /// The response future of [`LoadReporting`](super::LoadReporting).
        pub struct MapResponse<F> {
            #[pin]
            inner: F,
            shared: Arc<Shared>,
            format: Format,
        }
    }

    impl<F> MapResponse<F> {
        pub(super) fn new(inner: F, shared: Arc<Shared>, format: Format) -> Self {
            MapResponse {
                inner,
                shared,
                format,
            }
        }
    }

    impl<F, B, E> Future for MapResponse<F>
    where
        F: Future<Output = Result<Response<B>, E>>,
    {
        type Output = Result<Response<B>, E>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let mut res = ready!(this.inner.poll(cx))?;
            // Read when the answer is ready: the report describes the
            // replica as the client learns of it.
            if let Some(v) = this.shared.header(*this.format) {
                res.headers_mut().insert(METRICS.clone(), v);
            }
            Poll::Ready(Ok(res))
        }
    }

    impl<F> std::fmt::Debug for MapResponse<F> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("MapResponse").finish_non_exhaustive()
        }
    }
}

pub use futures_map::MapResponse as LoadReportFuture;
