//! The queued path, one hand-off per iteration: with a limit of 1 and the one
//! permit held, start an acquire (it queues), drop the held permit (which
//! grants and wakes the waiter), await the acquire. `PriorityLimiter` against
//! `tokio::sync::Semaphore`, then the same through `AdmissionLayer` with `AsError`
//! against tower's `ConcurrencyLimit`, on a current-thread runtime with time
//! enabled (a queued acquire arms its queue timeout).

use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::limit::ConcurrencyLimit;
use tower::{Layer, Service, ServiceExt};
use tower_pressure_admission::{AdmissionLayer, PriorityLimiter};
use tower_pressure_benches::{Job, current_thread, noop_job};
use tower_pressure_core::AsError;
use tower_pressure_core::Priority;

/// A limiter of one permit.
fn limiter() -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(1)
        .max_queue(16)
        .build()
        .expect("a valid limiter")
}

/// Polls `fut` once, which must queue.
async fn queue<F: Future>(mut fut: Pin<&mut F>) {
    poll_fn(|cx| {
        assert!(fut.as_mut().poll(cx).is_pending(), "the permit is held");
        Poll::Ready(())
    })
    .await;
}

fn handoff(c: &mut Criterion) {
    let rt = current_thread();
    let mut g = c.benchmark_group("queued_handoff");
    g.bench_function("priority_limiter", |b| {
        let limiter = limiter();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut held = limiter.try_acquire(Priority::Normal).expect("free");
                let start = Instant::now();
                for _ in 0..iters {
                    let mut acquire = pin!(limiter.acquire(Priority::Normal));
                    queue(acquire.as_mut()).await;
                    drop(held);
                    held = acquire.await.expect("granted on release");
                }
                let elapsed = start.elapsed();
                drop(held);
                elapsed
            })
        });
    });
    g.bench_function("tokio_semaphore", |b| {
        let sem = Semaphore::new(1);
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut held = sem.try_acquire().expect("free");
                let start = Instant::now();
                for _ in 0..iters {
                    let mut acquire = pin!(sem.acquire());
                    queue(acquire.as_mut()).await;
                    drop(held);
                    held = acquire.await.expect("granted on release");
                }
                let elapsed = start.elapsed();
                drop(held);
                elapsed
            })
        });
    });
    g.finish();
}

/// The same hand-off through the layers: the permit is taken (outside the
/// service) each iteration, the call queues, the permit is dropped, the
/// call completes and gives its own permit back.
fn handoff_layer(c: &mut Criterion) {
    let rt = current_thread();
    let mut g = c.benchmark_group("queued_handoff_layer");
    g.bench_function("admission_generic", |b| {
        let limiter = limiter();
        let mut svc = AdmissionLayer::new(limiter.clone())
            .refusal(AsError)
            .layer(noop_job());
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let held = limiter.try_acquire(Priority::Normal).expect("free");
                    let s = svc.ready().await.expect("always ready");
                    let mut call = pin!(s.call(Job(Priority::Normal)));
                    queue(call.as_mut()).await;
                    drop(held);
                    black_box(call.await.expect("admitted on release"));
                }
                start.elapsed()
            })
        });
    });
    g.bench_function("tower_concurrency_limit", |b| {
        let sem = Arc::new(Semaphore::new(1));
        let mut svc = ConcurrencyLimit::with_semaphore(noop_job(), Arc::clone(&sem));
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let held = Arc::clone(&sem).try_acquire_owned().expect("free");
                    let mut ready = pin!(svc.ready());
                    queue(ready.as_mut()).await;
                    drop(held);
                    let s = ready.await.expect("ready on release");
                    black_box(s.call(Job(Priority::Normal)).await.expect("no-op call"));
                }
                start.elapsed()
            })
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = tower_pressure_benches::quick_config();
    targets = handoff, handoff_layer
}
criterion_main!(benches);
