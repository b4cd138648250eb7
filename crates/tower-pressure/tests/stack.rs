//! The facade's one-call stack and `ServiceBuilderExt` in an axum router.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_pressure::adaptive::Aimd;
use tower_pressure::{
    AdaptiveLimit, ManualSource, Overloaded, PressureLevel, PriorityLimiter, Reason, Rules,
    ServiceBuilderExt, Signal, SignalConfig,
};

fn memory(at: f64) -> (ManualSource, Signal) {
    let source = ManualSource::new(at);
    let config = SignalConfig::builder("memory")
        .interval(Duration::from_millis(10))
        .ewma_alpha(1.0)
        .build()
        .unwrap();
    (source.clone(), Signal::spawn_with(source, config))
}

fn routes() -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/analytics/daily", get(|| async { "ok" }))
}

async fn get_status(app: &Router, path: &str) -> (StatusCode, Option<Reason>) {
    let res = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let reason = res.extensions().get::<Overloaded>().map(Overloaded::reason);
    (res.status(), reason)
}

#[tokio::test(start_paused = true)]
async fn the_one_call_stack_sheds_low_classes_on_memory_pressure_and_keeps_critical() {
    let limiter = PriorityLimiter::builder().limit(4).build().unwrap();
    let (source, signal) = memory(0.2);
    let adaptive = AdaptiveLimit::new(Aimd::default(), limiter.limit_handle());
    let app = routes().layer(
        tower_pressure::stack(limiter.clone())
            .rules(Rules::voice_service())
            .memory(signal.clone())
            .adaptive(adaptive.clone()),
    );
    assert_eq!(get_status(&app, "/analytics/daily").await.0, StatusCode::OK);

    source.set(0.99);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(signal.level(), PressureLevel::Critical);
    // /analytics/ is Low: refused by the memory layer, as a response.
    assert_eq!(
        get_status(&app, "/analytics/daily").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Reason::Memory(PressureLevel::Critical))
        )
    );
    // /health is Critical: still served.
    assert_eq!(get_status(&app, "/health").await.0, StatusCode::OK);
    // Everything that got in went through the one limiter and was measured.
    let s = limiter.snapshot();
    assert_eq!(s.in_flight, 0);
    assert_eq!(s.counts.values().map(|c| c.admitted).sum::<u64>(), 2);
    assert_eq!(adaptive.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn service_builder_ext_adds_the_layers_by_name_under_one_global_limit() {
    let limiter = PriorityLimiter::builder()
        .limit(1)
        .max_queue(0)
        .build()
        .unwrap();
    let (_source, signal) = memory(0.2);
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                "ok"
            }),
        )
        .layer(
            ServiceBuilder::new()
                .classify(Rules::voice_service())
                .memory_shed(signal.clone())
                .cpu_throttle(signal)
                .admission(limiter.clone()),
        );
    let busy = tokio::spawn({
        let app = app.clone();
        async move { get_status(&app, "/slow").await }
    });
    tokio::task::yield_now().await;
    assert_eq!(limiter.snapshot().in_flight, 1);
    // A second request, through another clone of the router: one limit.
    assert_eq!(
        get_status(&app, "/slow").await,
        (StatusCode::SERVICE_UNAVAILABLE, Some(Reason::QueueFull))
    );
    assert_eq!(busy.await.unwrap().0, StatusCode::OK);
}
