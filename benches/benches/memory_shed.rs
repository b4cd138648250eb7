//! The memory shedder's per-request cost: `ready().await` + `call(req).await`
//! through `MemoryShedLayer` refusing with an error and with a response over a no-op
//! service, at level `None` (nothing refused: one atomic load), at `High`
//! with an admitted request (the priority is read too) and with a refused one
//! (an `Overloaded` error, or a 503 response), against tower's `LoadShed` on
//! the same no-op service and the bare service, on a current-thread runtime.
//! The refused HTTP request carries a priority extension, whose allocation
//! `baseline_noop_bulk_request` measures alone.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tower::load_shed::LoadShed;
use tower::{Layer, Service, ServiceExt};
use tower_pressure_benches::{Job, current_thread, noop_http, noop_job};
use tower_pressure_core::AsError;
use tower_pressure_core::{PressureLevel, Priority, Signal};
use tower_pressure_memory::{MemoryShedLayer, MemorySignal};

/// `iters` calls of `svc`, timed inside one `block_on` so that entering the
/// runtime is not measured. Refusals are results like any other.
fn calls<S, Req>(rt: &Runtime, svc: &mut S, request: impl Fn() -> Req, iters: u64) -> Duration
where
    S: Service<Req>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let Ok(s) = svc.ready().await else {
                panic!("the service is always ready")
            };
            let _ = black_box(s.call(black_box(request())).await);
        }
        start.elapsed()
    })
}

/// A memory signal with no sampler, held at `level`.
fn signal_at(level: PressureLevel) -> Signal {
    let signal = Signal::new(MemorySignal::config().build().expect("valid defaults"));
    signal.set_override(Some(level));
    signal
}

fn generic(c: &mut Criterion) {
    let rt = current_thread();
    let mut g = c.benchmark_group("memory_shed_generic");
    let normal = || Job(Priority::Normal);
    g.bench_function("baseline_noop", |b| {
        let mut svc = noop_job();
        b.iter_custom(|iters| calls(&rt, &mut svc, normal, iters));
    });
    g.bench_function("tower_load_shed", |b| {
        let mut svc = LoadShed::new(noop_job());
        b.iter_custom(|iters| calls(&rt, &mut svc, normal, iters));
    });
    for (name, level, priority) in [
        ("none_admitted", PressureLevel::None, Priority::Normal),
        ("high_admitted", PressureLevel::High, Priority::Normal),
        ("high_refused", PressureLevel::High, Priority::Bulk),
    ] {
        g.bench_function(name, |b| {
            let mut svc = MemoryShedLayer::new(signal_at(level))
                .refusal(AsError)
                .layer(noop_job());
            b.iter_custom(|iters| calls(&rt, &mut svc, || Job(priority), iters));
        });
    }
    g.finish();
}

fn http(c: &mut Criterion) {
    let rt = current_thread();
    let mut g = c.benchmark_group("memory_shed_http");
    // A request with no priority extension is Normal; building one allocates
    // nothing, so the figures are the layers' own.
    let plain = || Request::new(());
    g.bench_function("baseline_noop", |b| {
        let mut svc = noop_http();
        b.iter_custom(|iters| calls(&rt, &mut svc, plain, iters));
    });
    g.bench_function("tower_load_shed", |b| {
        let mut svc = LoadShed::new(noop_http());
        b.iter_custom(|iters| calls(&rt, &mut svc, plain, iters));
    });
    for (name, level) in [
        ("none_admitted", PressureLevel::None),
        ("high_admitted", PressureLevel::High),
    ] {
        g.bench_function(name, |b| {
            let mut svc = MemoryShedLayer::new(signal_at(level)).layer(noop_http());
            b.iter_custom(|iters| calls(&rt, &mut svc, plain, iters));
        });
    }
    // A Bulk request (its priority extension allocates) refused with a 503.
    let bulk = || {
        let mut req = Request::new(());
        req.extensions_mut().insert(Priority::Bulk);
        req
    };
    g.bench_function("baseline_noop_bulk_request", |b| {
        let mut svc = noop_http();
        b.iter_custom(|iters| calls(&rt, &mut svc, bulk, iters));
    });
    g.bench_function("high_refused_503", |b| {
        let mut svc = MemoryShedLayer::new(signal_at(PressureLevel::High)).layer(noop_http());
        b.iter_custom(|iters| calls(&rt, &mut svc, bulk, iters));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = tower_pressure_benches::quick_config();
    targets = generic, http
}
criterion_main!(benches);
