//! Cancel safety: a delayed future that is dropped holds nothing and never
//! reaches the inner service.

mod support;

use std::time::Duration;

use tokio_test::{assert_pending, task};
use tower::{Layer, Service};
use tower_pressure_core::AsError;
use tower_pressure_core::{PressureLevel, Priority};
use tower_pressure_cpu::CpuThrottleLayer;

use support::{Counting, request, signal_at};

#[tokio::test(start_paused = true)]
async fn dropped_delayed_future_holds_nothing() {
    let inner = Counting::default();
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::High), support::uncontended())
            .layer(inner.clone());
    let before = inner.clones();
    let mut fut = task::spawn(svc.call(request(Priority::Low, None)));
    assert_pending!(fut.poll());
    // The waiting request holds one clone of the inner service.
    assert_eq!(inner.clones(), before + 1);
    drop(fut);
    assert_eq!(inner.clones(), before);
    // Long after the delay would have ended, the inner service has still
    // not seen the request.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(inner.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn many_dropped_futures_leave_nothing_behind() {
    let inner = Counting::default();
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::Critical), support::uncontended())
            .layer(inner.clone());
    let before = inner.clones();
    let futs: Vec<_> = (0..100)
        .map(|i| {
            let mut f = task::spawn(svc.call(request(Priority::Normal, None)));
            if i % 2 == 0 {
                assert_pending!(f.poll());
            }
            f
        })
        .collect();
    assert_eq!(inner.clones(), before + 100);
    drop(futs);
    assert_eq!(inner.clones(), before);
    assert_eq!(inner.calls(), 0);
}

#[derive(Debug)]
struct Job(Priority);

impl tower_pressure_core::PriorityOf for Job {
    fn priority(&self) -> Priority {
        self.0
    }
}

#[tokio::test(start_paused = true)]
async fn dropped_generic_delayed_future_holds_nothing() {
    let token = std::sync::Arc::new(());
    let t = token.clone();
    let inner = tower::service_fn(move |job: Job| {
        let _held = t.clone();
        async move { Ok::<_, std::convert::Infallible>(job.0) }
    });
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::Medium), support::uncontended())
            .refusal(AsError)
            .layer(inner);
    let before = std::sync::Arc::strong_count(&token);
    let mut fut = task::spawn(svc.call(Job(Priority::Bulk)));
    assert_pending!(fut.poll());
    assert_eq!(std::sync::Arc::strong_count(&token), before + 1);
    drop(fut);
    assert_eq!(std::sync::Arc::strong_count(&token), before);
}
