//! The whole tower-pressure stack per request, as the README puts it in an
//! axum `Router`: `ClassifyLayer` (the voice-service preset) over
//! `AdmissionLayer` (a limit never reached) over a no-op
//! `http::Request<()> -> http::Response<()>` service, against the bare no-op
//! service, tower's `ConcurrencyLimit`, `LoadShed` + `ConcurrencyLimit` and
//! `Buffer` + `ConcurrencyLimit` on the same service. Each iteration is one
//! `ready().await` + `call(req).await`, all of a sample inside one
//! `block_on` of a current-thread runtime.
//!
//! Two groups: `stack` drives one service instance; `stack_clone_per_request`
//! clones the layered service for every request first, as axum and hyper do
//! per connection and per request.

use std::fmt::Debug;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use http::{Method, Request, StatusCode, Uri};
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tower::buffer::Buffer;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_pressure::adaptive::Aimd;
use tower_pressure::{AdaptiveLimit, ManualSource, Signal, SignalConfig};
use tower_pressure_admission::AdmissionLayer;
use tower_pressure_benches::{current_thread, limiter, noop_http};
use tower_pressure_classify::{ClassifyLayer, Rules};

/// The concurrency limit of every limiter here; never reached.
const LIMIT: usize = 64;
/// The bound of tower's `Buffer` channel; never reached either.
const BUFFER: usize = 1024;

/// How the service is driven.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// One instance for every request.
    Same,
    /// A fresh clone of the layered service for every request.
    ClonePerRequest,
}

impl Mode {
    fn group(self) -> &'static str {
        match self {
            Mode::Same => "stack",
            Mode::ClonePerRequest => "stack_clone_per_request",
        }
    }
}

/// The request of every iteration: a `High` path of the voice-service
/// preset (its third rule). Cloning it copies no bytes: the URI is static.
fn request() -> Request<()> {
    Request::builder()
        .method(Method::POST)
        .uri(Uri::from_static("/voice/transcribe"))
        .body(())
        .expect("a valid request")
}

/// `iters` requests through `svc`, driven as `mode` says, timed inside one
/// `block_on` so that entering the runtime is not measured.
fn calls<S>(rt: &Runtime, svc: &mut S, proto: &Request<()>, mode: Mode, iters: u64) -> Duration
where
    S: Service<Request<()>> + Clone,
    S::Error: Debug,
{
    rt.block_on(async {
        let start = Instant::now();
        match mode {
            Mode::Same => {
                for _ in 0..iters {
                    let s = svc.ready().await.expect("the service is always ready");
                    black_box(s.call(black_box(proto.clone())).await.expect("no-op call"));
                }
            }
            Mode::ClonePerRequest => {
                for _ in 0..iters {
                    let mut per_request = svc.clone();
                    let s = per_request
                        .ready()
                        .await
                        .expect("the service is always ready");
                    black_box(s.call(black_box(proto.clone())).await.expect("no-op call"));
                }
            }
        }
        start.elapsed()
    })
}

fn measure<S>(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, name: &str, mode: Mode, svc: S)
where
    S: Service<Request<()>> + Clone,
    S::Error: Debug,
{
    let mut svc = svc;
    let proto = request();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| calls(rt, &mut svc, &proto, mode, iters));
    });
}

fn stack(c: &mut Criterion, mode: Mode) {
    let rt = current_thread();
    let mut g = c.benchmark_group(mode.group());
    measure(&mut g, &rt, "baseline_noop", mode, noop_http());
    measure(
        &mut g,
        &rt,
        "tower_concurrency_limit",
        mode,
        ConcurrencyLimit::new(noop_http(), LIMIT),
    );
    measure(
        &mut g,
        &rt,
        "tower_load_shed_concurrency_limit",
        mode,
        LoadShed::new(ConcurrencyLimit::new(noop_http(), LIMIT)),
    );
    // `Buffer` spawns its worker on the runtime it is created in.
    let buffered = {
        let _in_runtime = rt.enter();
        Buffer::new(ConcurrencyLimit::new(noop_http(), LIMIT), BUFFER)
    };
    measure(
        &mut g,
        &rt,
        "tower_buffer_concurrency_limit",
        mode,
        buffered,
    );
    let pressure = ServiceBuilder::new()
        .layer(ClassifyLayer::new(Rules::voice_service()))
        .layer(AdmissionLayer::new(limiter(LIMIT)))
        .service(noop_http());
    // Once, untimed: the stack admits (a refusal would be a fast 503).
    let status = rt.block_on(pressure.clone().oneshot(request()));
    assert_eq!(
        status.expect("no-op call").status(),
        StatusCode::OK,
        "the stack admits"
    );
    measure(&mut g, &rt, "classify_admission", mode, pressure);
    // The ORCA load report alone: reading the limiter, formatting the header.
    let reporting = tower_pressure::LoadReportLayer::new()
        .limiter(limiter(LIMIT))
        .layer(noop_http());
    measure(&mut g, &rt, "load_report", mode, reporting);
    // Every layer of the family: memory and CPU on quiet signals, the
    // adaptive recording layer inside admission.
    let full = {
        let _in_runtime = rt.enter();
        let quiet = |name: &str| {
            let config = SignalConfig::builder(name)
                .interval(Duration::from_millis(100))
                .build()
                .expect("valid signal settings");
            Signal::spawn_with(ManualSource::new(0.1), config)
        };
        let limiter = limiter(LIMIT);
        let adaptive = AdaptiveLimit::new(
            Aimd::builder()
                .initial_limit(LIMIT)
                .min_limit(LIMIT)
                .max_limit(LIMIT * 2)
                .build()
                .expect("valid Aimd"),
            limiter.limit_handle(),
        );
        tower_pressure::stack(limiter)
            .rules(Rules::voice_service())
            .memory(quiet("memory"))
            .cpu(quiet("cpu"))
            .adaptive(adaptive)
            .layer(noop_http())
    };
    measure(&mut g, &rt, "full_stack", mode, full);
    g.finish();
}

fn stack_same(c: &mut Criterion) {
    stack(c, Mode::Same);
}

fn stack_clone_per_request(c: &mut Criterion) {
    stack(c, Mode::ClonePerRequest);
}

criterion_group! {
    name = benches;
    config = tower_pressure_benches::quick_config();
    targets = stack_same, stack_clone_per_request
}
criterion_main!(benches);
