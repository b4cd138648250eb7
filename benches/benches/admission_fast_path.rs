//! The uncontended fast path of admission (a permit is free, nobody waits):
//! `ready().await` + `call(req).await` through `AdmissionLayer` with `AsError` and
//! `AdmissionLayer` over a no-op service, against tower's
//! `ConcurrencyLimit` and `LoadShed` + `ConcurrencyLimit` on the same no-op
//! service, and against the bare no-op service, on a current-thread runtime.

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tower::Layer;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;
use tower_pressure_admission::AdmissionLayer;
use tower_pressure_benches::{Job, calls, current_thread, limiter, noop_http, noop_job};
use tower_pressure_core::AsError;
use tower_pressure_core::Priority;

/// The concurrency limit of every limiter here; never reached.
const LIMIT: usize = 64;

fn fast_path_generic(c: &mut Criterion) {
    let rt = current_thread();
    let job = || Job(Priority::Normal);
    let mut g = c.benchmark_group("fast_path_generic");
    g.bench_function("baseline_noop", |b| {
        let mut svc = noop_job();
        b.iter_custom(|iters| calls(&rt, &mut svc, job, iters));
    });
    g.bench_function("tower_concurrency_limit", |b| {
        let mut svc = ConcurrencyLimit::new(noop_job(), LIMIT);
        b.iter_custom(|iters| calls(&rt, &mut svc, job, iters));
    });
    g.bench_function("tower_load_shed_concurrency_limit", |b| {
        let mut svc = LoadShed::new(ConcurrencyLimit::new(noop_job(), LIMIT));
        b.iter_custom(|iters| calls(&rt, &mut svc, job, iters));
    });
    g.bench_function("admission_generic", |b| {
        let mut svc = AdmissionLayer::new(limiter(LIMIT))
            .refusal(AsError)
            .layer(noop_job());
        b.iter_custom(|iters| calls(&rt, &mut svc, job, iters));
    });
    g.finish();
}

fn fast_path_http(c: &mut Criterion) {
    let rt = current_thread();
    let request = || Request::new(());
    let mut g = c.benchmark_group("fast_path_http");
    g.bench_function("baseline_noop", |b| {
        let mut svc = noop_http();
        b.iter_custom(|iters| calls(&rt, &mut svc, request, iters));
    });
    g.bench_function("tower_concurrency_limit", |b| {
        let mut svc = ConcurrencyLimit::new(noop_http(), LIMIT);
        b.iter_custom(|iters| calls(&rt, &mut svc, request, iters));
    });
    g.bench_function("tower_load_shed_concurrency_limit", |b| {
        let mut svc = LoadShed::new(ConcurrencyLimit::new(noop_http(), LIMIT));
        b.iter_custom(|iters| calls(&rt, &mut svc, request, iters));
    });
    g.bench_function("admission_http", |b| {
        let mut svc = AdmissionLayer::new(limiter(LIMIT)).layer(noop_http());
        b.iter_custom(|iters| calls(&rt, &mut svc, request, iters));
    });
    g.bench_function("admission_http_hold_body", |b| {
        let mut svc = AdmissionLayer::new(limiter(LIMIT))
            .hold_until_body_end(true)
            .layer(noop_http());
        b.iter_custom(|iters| calls(&rt, &mut svc, request, iters));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = tower_pressure_benches::quick_config();
    targets = fast_path_generic, fast_path_http
}
criterion_main!(benches);
