//! The limiter outside HTTP: `AdmissionLayer` with `AsError` in front of a
//! generic service, and the limiter alone guarding a connection pool.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{Job, SECOND, assert_idle, assert_near, limiter};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};
use tower_pressure_admission::AdmissionLayer;
use tower_pressure_core::{AsError, Overloaded, Priority, Reason};

#[tokio::test(start_paused = true)]
async fn a_generic_refusal_is_a_box_error_holding_overloaded() {
    let l = limiter(1, 0);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let svc = AdmissionLayer::new(l.clone())
        .refusal(AsError)
        .layer(service_fn(move |job: Job| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, tower::BoxError>(job.1) }
        }));
    let held = l.try_acquire(Priority::Critical).unwrap();
    let err = svc
        .clone()
        .oneshot(Job(Priority::Low, 1))
        .await
        .unwrap_err();
    assert!(err.is::<Overloaded>(), "{err}");
    let overloaded = err.downcast::<Overloaded>().unwrap();
    assert_eq!(overloaded.reason(), Reason::QueueFull);
    assert_eq!(overloaded.priority(), Priority::Low);
    assert!(overloaded.retry_after() >= SECOND);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the inner service never saw it"
    );

    drop(held);
    assert_eq!(svc.oneshot(Job(Priority::Low, 2)).await.unwrap(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_idle(&l);
}

// ---- the limiter alone, in front of a pool ----

#[tokio::test(start_paused = true)]
async fn the_limiter_guards_a_pool_of_three_connections_for_ten_tasks() {
    let pool = limiter(3, 100);
    let busy = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (pool, busy, most) = (pool.clone(), busy.clone(), most.clone());
            tokio::spawn(async move {
                let _conn = pool.acquire(Priority::Normal).await?;
                let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await; // the query
                busy.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Overloaded>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("every task gets a connection");
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        3,
        "never more than 3 connections"
    );
    // Four rounds of at most three 100 ms queries.
    assert_near(
        start.elapsed(),
        Duration::from_millis(400),
        Duration::from_millis(5),
    );
    assert_eq!(pool.snapshot().counts[Priority::Normal].admitted, 10);
    assert_idle(&pool);
}
