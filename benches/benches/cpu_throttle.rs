//! The CPU throttle's fast path (the signal is below `start`, so nothing is
//! delayed): `ready().await` + `call(req).await` through `CpuThrottleLayer`
//! (HTTP) and `CpuThrottleLayer<AsError>` over a no-op service, against the
//! bare no-op service and tower's `LoadShed` on the same service, on a
//! current-thread runtime. The fast path is one atomic load; target ≤ 100 ns.
//! With the capacity gate on, every request is counted in and out and timed.
//! Last, the cost of one sample of the CPU sources on this machine.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tower::Layer;
use tower::load_shed::LoadShed;
use tower_pressure_benches::{Job, calls, current_thread, noop_http, noop_job};
use tower_pressure_core::AsError;
use tower_pressure_core::{Priority, Signal, Source};
use tower_pressure_cpu::{
    CapacityGateConfig, CpuSignalConfig, CpuSource, CpuThrottleLayer, ProcStat, RuntimeBusy,
};

/// A CPU signal with no sampler and no reading: level `None`, below `start`.
fn idle_cpu() -> Signal {
    Signal::new(CpuSignalConfig::default().signal_config().clone())
}

fn below_start_http(c: &mut Criterion) {
    let rt = current_thread();
    let request = || Request::new(());
    let mut g = c.benchmark_group("cpu_throttle_http");
    g.bench_function("baseline_noop", |b| {
        let mut svc = noop_http();
        b.iter_custom(|iters| calls(&rt, &mut svc, request, iters));
    });
    g.bench_function("tower_load_shed", |b| {
        let mut svc = LoadShed::new(noop_http());
        b.iter_custom(|iters| calls(&rt, &mut svc, request, iters));
    });
    g.bench_function("cpu_throttle_below_start", |b| {
        let mut svc = CpuThrottleLayer::new(idle_cpu()).layer(noop_http());
        b.iter_custom(|iters| calls(&rt, &mut svc, request, iters));
    });
    g.bench_function("cpu_throttle_below_start_with_gate", |b| {
        let mut svc = CpuThrottleLayer::new(idle_cpu())
            .capacity_gate(CapacityGateConfig::default())
            .layer(noop_http());
        b.iter_custom(|iters| calls(&rt, &mut svc, request, iters));
    });
    g.finish();
}

fn below_start_generic(c: &mut Criterion) {
    let rt = current_thread();
    let job = || Job(Priority::Normal);
    let mut g = c.benchmark_group("cpu_throttle_generic");
    g.bench_function("baseline_noop", |b| {
        let mut svc = noop_job();
        b.iter_custom(|iters| calls(&rt, &mut svc, job, iters));
    });
    g.bench_function("tower_load_shed", |b| {
        let mut svc = LoadShed::new(noop_job());
        b.iter_custom(|iters| calls(&rt, &mut svc, job, iters));
    });
    g.bench_function("cpu_throttle_below_start", |b| {
        let mut svc = CpuThrottleLayer::new(idle_cpu())
            .refusal(AsError)
            .layer(noop_job());
        b.iter_custom(|iters| calls(&rt, &mut svc, job, iters));
    });
    g.bench_function("cpu_throttle_below_start_with_gate", |b| {
        let mut svc = CpuThrottleLayer::new(idle_cpu())
            .refusal(AsError)
            .capacity_gate(CapacityGateConfig::default())
            .layer(noop_job());
        b.iter_custom(|iters| calls(&rt, &mut svc, job, iters));
    });
    g.finish();
}

/// What one sample of a CPU source costs on this machine (it runs on the
/// sampler task every 50 ms, never on the request path).
fn source_sample(c: &mut Criterion) {
    let rt = current_thread();
    let _in_runtime = rt.enter();
    let mut g = c.benchmark_group("cpu_source_sample");
    if let Ok(mut s) = ProcStat::open(Path::new("/")) {
        g.bench_function("proc_stat", |b| b.iter(|| black_box(s.sample())));
    }
    let mut busy = RuntimeBusy::current().expect("inside the runtime");
    g.bench_function("tokio_runtime_busy", |b| {
        b.iter(|| black_box(busy.sample()))
    });
    let mut auto = CpuSource::auto();
    let name = format!("auto_{}", auto.active());
    g.bench_function(name, |b| b.iter(|| black_box(auto.sample())));
    g.finish();
}

criterion_group! {
    name = benches;
    config = tower_pressure_benches::quick_config();
    targets = below_start_http, below_start_generic, source_sample
}
criterion_main!(benches);
