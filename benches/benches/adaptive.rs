//! The adaptive limit's recording layer over a ready no-op service: two
//! clock reads and an in-flight count per request, and with no latency floor
//! a window sample too (the window closes under a `try_lock` by whichever
//! request completes it),
//! against the bare no-op service, on a current-thread runtime.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tower::Layer;
use tower_pressure_adaptive::{AdaptiveLimit, Aimd, Outcome};
use tower_pressure_benches::{Job, calls, current_thread, limiter, noop_http, noop_job};
use tower_pressure_core::Priority;

fn adaptive(c: &mut Criterion) {
    let rt = current_thread();
    let recording = || AdaptiveLimit::new(Aimd::default(), limiter(64).limit_handle());
    let mut g = c.benchmark_group("adaptive_layer_http");
    g.bench_function("baseline_noop", |b| {
        let mut svc = noop_http();
        b.iter_custom(|iters| calls(&rt, &mut svc, || Request::new(()), iters));
    });
    g.bench_function("adaptive_recording", |b| {
        let mut svc = recording().layer().layer(noop_http());
        b.iter_custom(|iters| calls(&rt, &mut svc, || Request::new(()), iters));
    });
    // The no-op answers in well under the default 100 µs floor, below which
    // a latency is no sample; with no floor every request goes into the
    // window too (the cost for a real service).
    g.bench_function("adaptive_recording_every_sample", |b| {
        let limit = AdaptiveLimit::builder(Aimd::default(), limiter(64).limit_handle())
            .min_rtt(Duration::ZERO)
            .build()
            .expect("valid adaptive settings");
        let mut svc = limit.layer().layer(noop_http());
        b.iter_custom(|iters| calls(&rt, &mut svc, || Request::new(()), iters));
    });
    g.finish();
    let mut g = c.benchmark_group("adaptive_layer_generic");
    g.bench_function("baseline_noop", |b| {
        let mut svc = noop_job();
        b.iter_custom(|iters| calls(&rt, &mut svc, || Job(Priority::Normal), iters));
    });
    g.bench_function("adaptive_recording", |b| {
        // Every answer is a success for a job.
        let layer = recording()
            .layer()
            .classifier(|_: Result<&Priority, &_>| Outcome::Success);
        let mut svc = layer.layer(noop_job());
        b.iter_custom(|iters| calls(&rt, &mut svc, || Job(Priority::Normal), iters));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = tower_pressure_benches::quick_config();
    targets = adaptive
}
criterion_main!(benches);
