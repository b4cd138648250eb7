//! Throughput under contention: 1 and 2 threads, each on its own
//! current-thread runtime, hammer one shared limiter with `try_acquire` +
//! drop (or a call through the layer); the limit is never reached, so
//! nothing queues. `PriorityLimiter` against `tokio::sync::Semaphore`,
//! `AdmissionLayer` with `AsError` against tower's `ConcurrencyLimit`, over the same
//! no-op service. Each iteration is one operation; time per iteration is
//! total elapsed time over all operations, so a lower time with 2 threads is
//! higher throughput.

use std::future::Future;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::limit::ConcurrencyLimit;
use tower::{Layer, Service, ServiceExt};
use tower_pressure_admission::AdmissionLayer;
use tower_pressure_benches::{Job, limiter, noop_job};
use tower_pressure_core::AsError;
use tower_pressure_core::Priority;

/// The concurrency limit of every limiter here; never reached.
const LIMIT: usize = 1024;
/// The thread counts compared.
const THREADS: [usize; 2] = [1, 2];

/// Splits `iters` operations over `threads` OS threads, each driving its
/// share on its own current-thread runtime, and times them all from a common
/// start line to the last join.
///
/// Plain threads rather than a multi-thread runtime: tokio's scheduler often
/// ran both tasks on one worker, which is no contention at all.
fn spread<F, Fut>(threads: usize, iters: u64, task: &F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()> + Send,
{
    let n = threads as u64;
    let start_line = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let work = task(iters / n + u64::from(i < iters % n));
                let start_line = &start_line;
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("a current-thread runtime");
                    start_line.wait();
                    rt.block_on(work);
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        for h in handles {
            h.join().expect("a bench thread panicked");
        }
        start.elapsed()
    })
}

fn contended_try_acquire(c: &mut Criterion) {
    let mut g = c.benchmark_group("contended_try_acquire");
    g.throughput(Throughput::Elements(1));
    for threads in THREADS {
        let limiter = limiter(LIMIT);
        let task = |ops: u64| {
            let limiter = limiter.clone();
            async move {
                for _ in 0..ops {
                    let permit = limiter
                        .try_acquire(black_box(Priority::Normal))
                        .expect("a permit is free");
                    drop(black_box(permit));
                }
            }
        };
        g.bench_function(BenchmarkId::new("priority_limiter", threads), |b| {
            b.iter_custom(|iters| spread(threads, iters, &task));
        });
        let sem = Arc::new(Semaphore::new(LIMIT));
        let task = |ops: u64| {
            let sem = Arc::clone(&sem);
            async move {
                for _ in 0..ops {
                    let permit = sem.try_acquire().expect("a permit is free");
                    drop(black_box(permit));
                }
            }
        };
        g.bench_function(BenchmarkId::new("tokio_semaphore", threads), |b| {
            b.iter_custom(|iters| spread(threads, iters, &task));
        });
    }
    g.finish();
}

/// Calls through `AdmissionLayer` with `AsError` and through tower's
/// `ConcurrencyLimit` over the same inner service, on 1 and 2 threads.
fn layer_group<S>(c: &mut Criterion, name: &str, inner: S)
where
    S: Service<Job, Response = Priority, Error = std::convert::Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    for threads in THREADS {
        let svc = AdmissionLayer::new(limiter(LIMIT))
            .refusal(AsError)
            .layer(inner.clone());
        let task = |ops: u64| {
            let mut svc = svc.clone();
            async move {
                for _ in 0..ops {
                    let s = svc.ready().await.expect("always ready");
                    black_box(s.call(Job(Priority::Normal)).await.expect("admitted"));
                }
            }
        };
        g.bench_function(BenchmarkId::new("admission_generic", threads), |b| {
            b.iter_custom(|iters| spread(threads, iters, &task));
        });
        let svc = ConcurrencyLimit::new(inner.clone(), LIMIT);
        let task = |ops: u64| {
            let mut svc = svc.clone();
            async move {
                for _ in 0..ops {
                    let s = svc.ready().await.expect("always ready");
                    black_box(s.call(Job(Priority::Normal)).await.expect("no-op call"));
                }
            }
        };
        g.bench_function(BenchmarkId::new("tower_concurrency_limit", threads), |b| {
            b.iter_custom(|iters| spread(threads, iters, &task));
        });
    }
    g.finish();
}

fn contended_layer(c: &mut Criterion) {
    layer_group(c, "contended_layer", noop_job());
}

/// About 200 ns of CPU work, as a tiny handler would do.
fn work(job: Job) -> std::future::Ready<Result<Priority, std::convert::Infallible>> {
    let mut x = black_box(0x9e37_79b9_7f4a_7c15_u64);
    for _ in 0..200 {
        x = black_box(x.wrapping_mul(0x5851_f42d_4c95_7f2d).rotate_left(7));
    }
    black_box(x);
    std::future::ready(Ok(job.0))
}

/// The same through the layer, but each call does some work under its
/// permit: with anything to do, two threads must get more done than one
/// (no collapse under contention); with nothing to do, both tower and we lose
/// throughput to the one shared cache line.
fn contended_layer_with_work(c: &mut Criterion) {
    layer_group(c, "contended_layer_with_work", tower::service_fn(work));
}

criterion_group! {
    name = benches;
    config = tower_pressure_benches::quick_config();
    targets = contended_try_acquire, contended_layer, contended_layer_with_work
}
criterion_main!(benches);
