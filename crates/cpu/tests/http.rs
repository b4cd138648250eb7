//! HTTP integration: the layer drops into `axum::Router::layer` with no
//! `HandleErrorLayer`, refusals are responses; the generic layer's refusals
//! are `BoxError`s holding `Overloaded`.

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use tower::{Layer, ServiceExt};
use tower_pressure_core::AsError;
use tower_pressure_core::{Deadline, Overloaded, PressureLevel, Priority, PriorityOf, Reason};
use tower_pressure_cpu::CpuThrottleLayer;

use support::signal_at;

fn app(level: PressureLevel) -> Router {
    Router::new()
        .route("/report", get(|| async { "report" }))
        .layer(CpuThrottleLayer::with_config(
            signal_at(level),
            support::uncontended(),
        ))
}

#[tokio::test(start_paused = true)]
async fn axum_router_serves_below_start() {
    let res = app(PressureLevel::None)
        .oneshot(Request::get("/report").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn axum_router_answers_503_when_the_deadline_cannot_be_met() {
    let mut req = Request::get("/report").body(Body::empty()).unwrap();
    req.extensions_mut().insert(Priority::Low);
    req.extensions_mut()
        .insert(Deadline::after(Duration::from_millis(100)));
    let res = app(PressureLevel::High).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let err = res.extensions().get::<Overloaded>().unwrap();
    assert_eq!(err.reason(), Reason::Cpu(PressureLevel::High));
}

#[derive(Debug)]
struct Job(Priority, Option<Deadline>);

impl PriorityOf for Job {
    fn priority(&self) -> Priority {
        self.0
    }

    fn deadline(&self) -> Option<Deadline> {
        self.1
    }
}

#[tokio::test(start_paused = true)]
async fn generic_refusal_is_a_box_error_holding_overloaded() {
    let svc =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::Critical), support::uncontended())
            .refusal(AsError)
            .layer(tower::service_fn(|job: Job| async move {
                Ok::<_, std::convert::Infallible>(job.0)
            }));
    let job = Job(
        Priority::Normal,
        Some(Deadline::after(Duration::from_millis(10))),
    );
    let err = svc.clone().oneshot(job).await.unwrap_err();
    let overloaded = err.downcast_ref::<Overloaded>().unwrap();
    assert_eq!(overloaded.reason(), Reason::Cpu(PressureLevel::Critical));
    // Without a deadline it is delayed, then served.
    let t0 = tokio::time::Instant::now();
    assert_eq!(
        svc.oneshot(Job(Priority::Normal, None)).await.unwrap(),
        Priority::Normal
    );
    assert_eq!(t0.elapsed(), Duration::from_millis(1000));
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CpuThrottleLayer>();
    send_sync::<CpuThrottleLayer<AsError>>();
    send_sync::<tower_pressure_cpu::CpuThrottle<support::Counting>>();
    send_sync::<tower_pressure_cpu::CpuThrottleConfig>();
    send_sync::<tower_pressure_cpu::CpuSignalConfig>();
    fn send<T: Send>() {}
    send::<tower_pressure_cpu::CpuSource>();
    send::<
        tower_pressure_cpu::ResponseFuture<
            support::Counting,
            Request<()>,
            <support::Counting as tower::Service<Request<()>>>::Future,
            tower_pressure_core::http::Rejection,
        >,
    >();
}
