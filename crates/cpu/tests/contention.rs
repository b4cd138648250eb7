//! The throttle delays a class only while work that matters more is in the
//! service, parks a bounded number of requests, and checks a delayed request
//! again when it wakes.

mod support;

use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready, task};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use tower_pressure_core::{PressureLevel, Priority};
use tower_pressure_cpu::{CpuThrottleConfig, CpuThrottleLayer};

use support::{request, signal_at};

/// A service that works `ms` milliseconds (from the `x-work-ms` header) per
/// request.
fn worker()
-> impl Service<Request<()>, Response = Response<String>, Error = BoxError, Future: Send> + Clone {
    service_fn(|req: Request<()>| async move {
        let ms = req
            .headers()
            .get("x-work-ms")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, BoxError>(Response::new(String::from("ok")))
    })
}

fn working(priority: Priority, ms: u64) -> Request<()> {
    let mut req = request(priority, None);
    req.headers_mut()
        .insert("x-work-ms", ms.to_string().parse().unwrap());
    req
}

/// How long one request takes through `svc`, which must answer `200`.
async fn time_of<S>(svc: &mut S, req: Request<()>) -> Duration
where
    S: Service<Request<()>, Response = Response<String>, Error = BoxError>,
{
    let t0 = Instant::now();
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    t0.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_service_saturated_by_one_class_is_not_slowed() {
    // CPU at emergency, every request Normal: nothing that matters more is
    // being served, so a delay would only add latency.
    let layer = CpuThrottleLayer::new(signal_at(PressureLevel::Critical));
    let mut svc = layer.layer(worker());
    let busy: Vec<_> = (0..8)
        .map(|_| {
            let mut f = task::spawn(svc.call(working(Priority::Normal, 50)));
            assert_pending!(f.poll());
            f
        })
        .collect();
    assert_eq!(
        time_of(&mut svc, working(Priority::Normal, 0)).await,
        Duration::ZERO,
        "not delayed"
    );
    drop(busy);
}

#[tokio::test(start_paused = true)]
async fn a_lower_class_waits_while_a_higher_one_is_served() {
    let layer = CpuThrottleLayer::new(signal_at(PressureLevel::Medium));
    let mut svc = layer.layer(worker());
    // High work in the service.
    let mut high = task::spawn(svc.call(working(Priority::High, 1_000)));
    // High itself had nothing above it: not delayed, in the service at once.
    assert_pending!(high.poll());
    assert_eq!(
        time_of(&mut svc, working(Priority::Normal, 0)).await,
        Duration::from_millis(100),
        "Normal's delay at Medium"
    );
    // Once the High work is done, Normal passes again.
    drop(high);
    assert_eq!(
        time_of(&mut svc, working(Priority::Normal, 0)).await,
        Duration::ZERO
    );
}

#[tokio::test(start_paused = true)]
async fn past_max_delayed_the_throttle_refuses_instead_of_parking() {
    let config = CpuThrottleConfig::builder()
        .delay_uncontended(true)
        .max_delayed(2)
        .build()
        .unwrap();
    let mut svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::High), config).layer(worker());
    let mut parked: Vec<_> = (0..2)
        .map(|_| task::spawn(svc.call(working(Priority::Low, 0))))
        .collect();
    for f in &mut parked {
        assert_pending!(f.poll());
    }
    let mut third = task::spawn(svc.call(working(Priority::Low, 0)));
    let res = assert_ready!(third.poll()).unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key(http::header::RETRY_AFTER));
    // A parked request that leaves (cancelled) frees its place.
    parked.pop();
    let mut fourth = task::spawn(svc.call(working(Priority::Low, 0)));
    assert_pending!(fourth.poll());
}

#[tokio::test(start_paused = true)]
async fn a_delayed_request_is_checked_again_when_it_wakes() {
    let signal = signal_at(PressureLevel::Medium);
    let config = CpuThrottleConfig::builder()
        .delay_uncontended(true)
        .shed_bulk_at_emergency(true)
        .build()
        .unwrap();
    let mut svc = CpuThrottleLayer::with_config(signal.clone(), config).layer(worker());
    // Bulk at Medium: delayed 200 ms.
    let mut bulk = task::spawn(svc.call(working(Priority::Bulk, 0)));
    assert_pending!(bulk.poll());
    // The CPU reaches emergency while it sleeps: Bulk is refused there.
    signal.set_override(Some(PressureLevel::Critical));
    tokio::time::advance(Duration::from_millis(200)).await;
    let res = assert_ready!(bulk.poll()).unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// A saturated but healthy server sits at the top CPU level (a busy CPU
/// reads 100 %), and its fast Critical health checks are in the service now
/// and then. High work must not be delayed there by default: High and
/// Critical are the work that cannot wait, and a delay of theirs sheds
/// nothing. (A service whose High work can wait sets their multipliers.)
#[tokio::test(start_paused = true)]
async fn high_is_not_delayed_while_a_health_check_is_served() {
    let layer = CpuThrottleLayer::new(signal_at(PressureLevel::Critical));
    let mut svc = layer.layer(worker());
    let mut check = task::spawn(svc.call(working(Priority::Critical, 20)));
    assert_pending!(check.poll());
    for priority in [Priority::High, Priority::Critical] {
        assert_eq!(
            time_of(&mut svc, working(priority, 0)).await,
            Duration::ZERO,
            "{priority} was delayed"
        );
    }
    // Normal, work that can wait, still gives way to the health check.
    assert_eq!(
        time_of(&mut svc, working(Priority::Normal, 0)).await,
        Duration::from_secs(1)
    );
    drop(check);
}
