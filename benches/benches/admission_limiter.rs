//! `PriorityLimiter` alone, uncontended: `try_acquire` + dropping the permit,
//! against `tokio::sync::Semaphore` (borrowed and owned permits; tower's
//! `ConcurrencyLimit` takes owned ones).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::sync::Semaphore;
use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::Priority;

/// The concurrency limit of every limiter here; never reached.
const LIMIT: usize = 64;

fn try_acquire_release(c: &mut Criterion) {
    let mut g = c.benchmark_group("try_acquire_release");
    let limiter = PriorityLimiter::builder()
        .limit(LIMIT)
        .build()
        .expect("a valid limiter");
    g.bench_function("priority_limiter", |b| {
        b.iter(|| {
            let permit = black_box(&limiter)
                .try_acquire(black_box(Priority::Normal))
                .expect("a permit is free");
            drop(black_box(permit));
        });
    });
    let sem = Semaphore::new(LIMIT);
    g.bench_function("tokio_semaphore", |b| {
        b.iter(|| {
            let permit = black_box(&sem).try_acquire().expect("a permit is free");
            drop(black_box(permit));
        });
    });
    let sem = Arc::new(Semaphore::new(LIMIT));
    g.bench_function("tokio_semaphore_owned", |b| {
        b.iter(|| {
            let permit = Arc::clone(black_box(&sem))
                .try_acquire_owned()
                .expect("a permit is free");
            drop(black_box(permit));
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = tower_pressure_benches::quick_config();
    targets = try_acquire_release
}
criterion_main!(benches);
