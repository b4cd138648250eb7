//! What MemoryShed admits and refuses, and how a refusal looks.

mod support;

use std::convert::Infallible;

use axum::{Router, body::Body, routing::get};
use http::{HeaderValue, Request, Response, StatusCode, header};
use proptest::prelude::*;
use tokio_test::{assert_pending, assert_ready_ok, task};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_pressure_core::AsError;
use tower_pressure_core::{
    Cohort, Event, EventBus, Overloaded, PressureLevel, Priority, PriorityOf, Reason, Signal,
};
use tower_pressure_memory::{MemoryShedConfig, MemoryShedLayer, MemorySignal};

fn signal_at(level: PressureLevel) -> Signal {
    let s = Signal::new(MemorySignal::config().build().unwrap());
    s.set_override(Some(level));
    s
}

fn request(priority: Priority, cohort: u8) -> Request<()> {
    let mut req = Request::new(());
    req.extensions_mut().insert(priority);
    req.extensions_mut()
        .insert(Cohort::try_from(cohort).unwrap());
    req
}

fn ok_service() -> impl tower::Service<
    Request<()>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<String>, Infallible>>,
> + Clone {
    service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new("ok".to_owned())) })
}

async fn status(layer: &MemoryShedLayer, priority: Priority, cohort: u8) -> StatusCode {
    layer
        .layer(ok_service())
        .oneshot(request(priority, cohort))
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn default_table_admits_per_level_the_documented_classes() {
    use PressureLevel as L;
    use Priority as P;
    let expected: [(L, P); 5] = [
        (L::None, P::Bulk),
        (L::Low, P::Bulk),
        (L::Medium, P::Low),
        (L::High, P::Normal),
        (L::Critical, P::Critical),
    ];
    for (level, lowest) in expected {
        let layer = MemoryShedLayer::new(signal_at(level));
        for p in Priority::ALL {
            let want = if p >= lowest {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            assert_eq!(status(&layer, p, 0).await, want, "{p} at {level}");
        }
    }
}

#[tokio::test]
async fn a_request_without_a_priority_is_normal() {
    let layer = MemoryShedLayer::new(signal_at(PressureLevel::High));
    let res = layer
        .layer(ok_service())
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let layer = MemoryShedLayer::new(signal_at(PressureLevel::Critical));
    let res = layer
        .layer(ok_service())
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_cohort_fraction_sheds_part_of_the_boundary_class() {
    let config = MemoryShedConfig::builder()
        .cohort_fraction(PressureLevel::High, 0.25)
        .build()
        .unwrap();
    let layer = MemoryShedLayer::with_config(signal_at(PressureLevel::High), config);
    // The top quarter of Normal's cohorts (96..=127) gets in, the rest not.
    assert_eq!(status(&layer, Priority::Normal, 127).await, StatusCode::OK);
    assert_eq!(status(&layer, Priority::Normal, 96).await, StatusCode::OK);
    assert_eq!(
        status(&layer, Priority::Normal, 95).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(&layer, Priority::Normal, 0).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Classes above the boundary are untouched, classes below still refused.
    assert_eq!(status(&layer, Priority::High, 0).await, StatusCode::OK);
    assert_eq!(
        status(&layer, Priority::Low, 127).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_refusal_is_a_503_with_retry_after_and_the_overloaded_in_extensions() {
    let layer = MemoryShedLayer::new(signal_at(PressureLevel::Critical));
    let res = layer
        .layer(ok_service())
        .oneshot(request(Priority::High, 0))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    assert_eq!(res.body(), "");
    let err = res.extensions().get::<Overloaded>().unwrap();
    assert_eq!(err.reason(), Reason::Memory(PressureLevel::Critical));
    assert_eq!(err.priority(), Priority::High);
}

#[tokio::test]
async fn a_grpc_refusal_is_a_trailers_only_reply() {
    let layer = MemoryShedLayer::new(signal_at(PressureLevel::Critical));
    let mut req = request(Priority::Normal, 0);
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc+proto"),
    );
    let res = layer.layer(ok_service()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/grpc");
    assert_eq!(res.headers()["grpc-status"], "8");
    assert!(res.headers().contains_key("grpc-retry-pushback-ms"));
    assert!(res.extensions().get::<Overloaded>().is_some());
}

#[tokio::test]
async fn the_configured_retry_after_is_sent() {
    let config = MemoryShedConfig::builder()
        .retry_after(std::time::Duration::from_secs(7))
        .build()
        .unwrap();
    let layer = MemoryShedLayer::with_config(signal_at(PressureLevel::Critical), config);
    let res = layer
        .layer(ok_service())
        .oneshot(request(Priority::Low, 0))
        .await
        .unwrap();
    assert_eq!(res.headers()[header::RETRY_AFTER], "7");
}

#[tokio::test]
async fn a_level_change_applies_to_the_next_request_of_an_existing_service() {
    let signal = signal_at(PressureLevel::None);
    let mut svc = MemoryShedLayer::new(signal.clone()).layer(ok_service());
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(request(Priority::Bulk, 0))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    signal.set_override(Some(PressureLevel::Medium));
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(request(Priority::Bulk, 0))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    signal.set_override(None);
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(request(Priority::Bulk, 0))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_refusal_publishes_a_shed_event() {
    let bus = EventBus::new(8);
    let mut rx = bus.subscribe();
    let layer = MemoryShedLayer::new(signal_at(PressureLevel::High)).events(bus);
    assert_eq!(
        status(&layer, Priority::Low, 0).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(status(&layer, Priority::High, 0).await, StatusCode::OK);
    assert_eq!(
        rx.try_recv().unwrap(),
        Event::Shed {
            layer: "memory",
            priority: Priority::Low,
            reason: Reason::Memory(PressureLevel::High),
        }
    );
    assert!(
        rx.try_recv().is_err(),
        "an admitted request publishes nothing"
    );
}

#[tokio::test]
async fn poll_ready_forwards_the_inner_readiness() {
    let (mock, mut handle) = tower_test::mock::pair::<Request<()>, Response<String>>();
    let mut svc = MemoryShedLayer::new(signal_at(PressureLevel::Critical)).layer(mock);
    handle.allow(0);
    let mut ready = task::spawn(std::future::poll_fn(|cx| svc.poll_ready(cx)));
    assert_pending!(ready.poll());
    handle.allow(1);
    assert!(ready.is_woken());
    assert_ready_ok!(ready.poll());
    drop(ready);
    // A refused request never reaches the inner service.
    let res = svc.call(request(Priority::Bulk, 0)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_pending!(task::spawn(handle.next_request()).poll());
}

#[tokio::test]
async fn it_sits_under_an_axum_router_with_no_error_handler() {
    let signal = signal_at(PressureLevel::None);
    let app: Router = Router::new()
        .route("/", get(|| async { "hello" }))
        .layer(MemoryShedLayer::new(signal.clone()));
    let res = app
        .clone()
        .oneshot(Request::new(Body::empty()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    signal.set_override(Some(PressureLevel::Critical));
    let res = app.oneshot(Request::new(Body::empty())).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
}

#[derive(Debug, Clone, Copy)]
struct Job(Priority);

impl PriorityOf for Job {
    fn priority(&self) -> Priority {
        self.0
    }
}

#[tokio::test]
async fn the_generic_service_fails_with_an_overloaded_error() {
    let signal = signal_at(PressureLevel::High);
    let svc = MemoryShedLayer::new(signal)
        .refusal(AsError)
        .layer(service_fn(
            |job: Job| async move { Ok::<_, Infallible>(job.0) },
        ));
    assert_eq!(
        svc.clone().oneshot(Job(Priority::Normal)).await.unwrap(),
        Priority::Normal
    );
    let err = svc.oneshot(Job(Priority::Low)).await.unwrap_err();
    let overloaded = err.downcast_ref::<Overloaded>().unwrap();
    assert_eq!(overloaded.reason(), Reason::Memory(PressureLevel::High));
    assert_eq!(overloaded.priority(), Priority::Low);
}

#[tokio::test]
async fn the_generic_service_passes_inner_errors_through() {
    let svc = MemoryShedLayer::new(signal_at(PressureLevel::None))
        .refusal(AsError)
        .layer(service_fn(|_job: Job| async {
            Err::<(), _>(std::io::Error::other("inner failed"))
        }));
    let err = svc.oneshot(Job(Priority::Critical)).await.unwrap_err();
    assert!(err.is::<std::io::Error>());
}

proptest! {
    #[test]
    fn config_admits_exactly_by_admission_level(
        level in 0usize..5,
        p in 0usize..5,
        c in 0u8..128,
        fraction in 0.0f64..=1.0,
    ) {
        let level = PressureLevel::from_index(level);
        let priority = Priority::ALL[p];
        let cohort = Cohort::try_from(c).unwrap();
        // The same fraction at the level and every level above keeps the table
        // monotonic whatever the level.
        let mut b = MemoryShedConfig::builder();
        for l in PressureLevel::ALL.into_iter().filter(|l| *l >= level) {
            b = b.cohort_fraction(l, fraction);
        }
        let config = b.build().unwrap();
        let boundary = config.min_priority(level);
        let admitted_cohorts = (fraction * 128.0).round() as u16;
        let expect = priority > boundary
            || (priority == boundary && u16::from(c) >= 128 - admitted_cohorts);
        prop_assert_eq!(config.admits(level, priority, cohort), expect);
    }
}
