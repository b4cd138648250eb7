//! Many tasks on a multi-thread runtime: 64 tasks on 2 worker threads each
//! make their share of the calls through one shared limit, with a limit that
//! never waits (1024, group `contended_no_wait`) and one that does (8, group
//! `contended_wait`: 56 tasks queue). `AdmissionLayer` with `AsError` against tower's
//! `ConcurrencyLimit` with the same limit, and the bare service, over the
//! same service.
//!
//! The service yields to the scheduler once before it answers, so that every
//! call holds its permit across a trip through the run queue: with an answer
//! at once, at most one permit per worker thread would ever be held and the
//! limit of 8 would never be reached.
//!
//! Each iteration is one call; a sample's time runs from spawning the 64
//! tasks to the last one joined, so spawning is in it (64 spawns per
//! sample, spread over all its calls).

use std::convert::Infallible;
use std::fmt::Debug;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tower::limit::ConcurrencyLimit;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_pressure_admission::{AdmissionLayer, PriorityLimiter};
use tower_pressure_benches::Job;
use tower_pressure_core::AsError;
use tower_pressure_core::Priority;

/// The tasks sharing the limit.
const TASKS: u64 = 64;
/// The runtime's worker threads.
const WORKERS: usize = 2;
/// The groups: a limit never reached, and one that makes tasks queue.
const GROUPS: [(&str, usize); 2] = [("contended_no_wait", 1024), ("contended_wait", 8)];

/// Answers a [`Job`] with its priority after yielding once.
fn yielding_job()
-> impl Service<Job, Response = Priority, Error = Infallible, Future: Send> + Clone + Send + 'static
{
    service_fn(|job: Job| async move {
        tokio::task::yield_now().await;
        Ok(job.0)
    })
}

fn limiter(limit: usize) -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(limit)
        // Room for every task: nobody is refused for a full queue.
        .max_queue(2 * TASKS as usize)
        .build()
        .expect("a valid limiter")
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        // A queued acquire arms its queue timeout.
        .enable_time()
        .build()
        .expect("a multi-thread runtime")
}

/// `iters` calls spread over [`TASKS`] tasks, each with its own clone of
/// `svc`; the time from the first spawn to the last join.
fn spread<S>(rt: &Runtime, svc: &S, iters: u64) -> Duration
where
    S: Service<Job> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Debug,
{
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let mut svc = svc.clone();
                let calls = iters / TASKS + u64::from(i < iters % TASKS);
                tokio::spawn(async move {
                    for _ in 0..calls {
                        let s = svc.ready().await.expect("always ready");
                        black_box(s.call(Job(Priority::Normal)).await.expect("admitted"));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a bench task panicked");
        }
        start.elapsed()
    })
}

fn measure<S>(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, name: &str, svc: S)
where
    S: Service<Job> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Debug,
{
    g.bench_function(name, |b| b.iter_custom(|iters| spread(rt, &svc, iters)));
}

fn contended(c: &mut Criterion) {
    let rt = runtime();
    for (group, limit) in GROUPS {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(1));
        measure(&mut g, &rt, "baseline_no_limit", yielding_job());
        measure(
            &mut g,
            &rt,
            "tower_concurrency_limit",
            ConcurrencyLimit::new(yielding_job(), limit),
        );
        measure(
            &mut g,
            &rt,
            "admission_generic",
            AdmissionLayer::new(limiter(limit))
                .refusal(AsError)
                .layer(yielding_job()),
        );
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = tower_pressure_benches::quick_config();
    targets = contended
}
criterion_main!(benches);
