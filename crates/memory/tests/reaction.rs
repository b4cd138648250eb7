//! From a reading crossing a threshold to the first refusal: at most 100 ms
//! at the default settings (one 50 ms sampling interval, no smoothing).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_pressure_core::{ManualSource, Priority, Signal};
use tower_pressure_memory::{HeapBudget, MemoryShedLayer, MemorySignal};

/// The memory signal's default sampling interval.
const MEMORY_INTERVAL: Duration = Duration::from_millis(50);

/// Sends a Normal request every millisecond until one is refused; returns
/// how long after `crossed` that was.
async fn first_refusal_after(memory: Signal, crossed: Instant) -> Duration {
    let mut svc = MemoryShedLayer::new(memory).layer(service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    loop {
        let mut req = Request::new(());
        req.extensions_mut().insert(Priority::Normal);
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            return crossed.elapsed();
        }
        assert!(crossed.elapsed() < Duration::from_secs(5), "never refused");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_crossing_is_refused_within_one_interval_whatever_the_phase() {
    // Cross at every millisecond offset within the sampling interval.
    for offset_ms in 0..50 {
        let source = ManualSource::new(0.5);
        let memory = MemorySignal::spawn(source.clone());
        tokio::time::sleep(Duration::from_millis(offset_ms)).await;
        // Past Critical (0.95), where Normal is refused.
        source.set(0.97);
        let elapsed = first_refusal_after(memory, Instant::now()).await;
        assert!(
            elapsed <= MEMORY_INTERVAL + Duration::from_millis(1),
            "offset {offset_ms} ms: refused after {elapsed:?}"
        );
        assert!(elapsed <= Duration::from_millis(100));
    }
}

#[tokio::test(start_paused = true)]
async fn a_heap_budget_crossing_is_refused_within_100_ms() {
    let used = Arc::new(AtomicU64::new(100));
    let u = used.clone();
    let budget = HeapBudget::with_measure(1000, move || u.load(Ordering::Relaxed)).unwrap();
    let memory = MemorySignal::spawn(budget);
    tokio::time::sleep(Duration::from_millis(123)).await;
    // "Allocate" past Critical (95% of the budget).
    used.store(990, Ordering::Relaxed);
    let elapsed = first_refusal_after(memory, Instant::now()).await;
    assert!(elapsed <= Duration::from_millis(100), "{elapsed:?}");
}
