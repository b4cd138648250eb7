//! The driver: the limit it writes through the `LimitHandle`, the operator's
//! pin and freeze, events, and the end-to-end path through a real admission
//! layer.

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::sleep;
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};
use tower_pressure_adaptive::{AdaptiveLimit, LimitAlgorithm, Sample};
use tower_pressure_admission::{AdmissionLayer, PriorityLimiter};
use tower_pressure_core::{Event, EventBus};

/// An algorithm that adds one per window, so every closed window shows.
#[derive(Debug)]
struct Counting(usize);

impl LimitAlgorithm for Counting {
    fn update(&mut self, _: &Sample) -> usize {
        self.0 += 1;
        self.0
    }

    fn limit(&self) -> usize {
        self.0
    }
}

fn setup(initial: usize) -> (PriorityLimiter, AdaptiveLimit) {
    let limiter = PriorityLimiter::builder().limit(1).build().unwrap();
    let adaptive = AdaptiveLimit::builder(Counting(initial), limiter.limit_handle())
        .min_window(Duration::ZERO)
        .min_samples(1)
        .build()
        .unwrap();
    (limiter, adaptive)
}

/// Sends `n` requests of 1 ms, one after the other, through the recording
/// layer alone: `n` windows.
async fn windows(adaptive: &AdaptiveLimit, n: usize) {
    let svc = adaptive.layer().layer(service_fn(|_: Request<()>| async {
        sleep(Duration::from_millis(1)).await;
        Ok::<_, Infallible>(Response::new(()))
    }));
    for _ in 0..n {
        svc.clone().oneshot(Request::new(())).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn building_writes_the_initial_limit_and_each_window_the_next() {
    let (limiter, adaptive) = setup(10);
    assert_eq!(limiter.limit(), 10);
    windows(&adaptive, 3).await;
    assert_eq!((adaptive.windows(), limiter.limit()), (3, 13));
}

#[tokio::test(start_paused = true)]
async fn a_pin_holds_the_limit_until_unpin_restores_the_algorithm_s() {
    let (limiter, adaptive) = setup(10);
    adaptive.pin(4);
    assert_eq!((limiter.limit(), adaptive.pinned()), (4, Some(4)));
    windows(&adaptive, 5).await;
    assert_eq!(limiter.limit(), 4, "pinned");
    assert_eq!(
        adaptive.algorithm_limit(),
        10,
        "it learned nothing meanwhile"
    );
    adaptive.unpin();
    assert_eq!((limiter.limit(), adaptive.pinned()), (10, None));
    windows(&adaptive, 1).await;
    assert_eq!(limiter.limit(), 11);
}

#[tokio::test(start_paused = true)]
async fn a_freeze_keeps_the_limit_in_force_until_resume() {
    let (limiter, adaptive) = setup(10);
    adaptive.freeze();
    assert!(adaptive.is_frozen());
    windows(&adaptive, 5).await;
    assert_eq!(limiter.limit(), 10);
    assert_eq!(adaptive.windows(), 5, "windows still close");
    adaptive.resume();
    windows(&adaptive, 2).await;
    assert_eq!(limiter.limit(), 12);
}

#[tokio::test(start_paused = true)]
async fn limit_changes_are_events_with_before_and_after() {
    let limiter = PriorityLimiter::builder().limit(1).build().unwrap();
    let bus = EventBus::new(16);
    let mut rx = bus.subscribe();
    let adaptive = AdaptiveLimit::builder(Counting(5), limiter.limit_handle())
        .min_window(Duration::ZERO)
        .min_samples(1)
        .events(bus)
        .build()
        .unwrap();
    windows(&adaptive, 1).await;
    adaptive.pin(2);
    assert_eq!(
        rx.try_recv().unwrap(),
        Event::LimitChanged { from: 1, to: 5 }
    );
    assert_eq!(
        rx.try_recv().unwrap(),
        Event::LimitChanged { from: 5, to: 6 }
    );
    assert_eq!(
        rx.try_recv().unwrap(),
        Event::LimitChanged { from: 6, to: 2 }
    );
    assert!(rx.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn inside_admission_it_measures_admitted_work_only_and_moves_its_limit() {
    let limiter = PriorityLimiter::builder()
        .limit(2)
        .max_queue(0)
        .build()
        .unwrap();
    let adaptive = AdaptiveLimit::builder(Counting(2), limiter.limit_handle())
        .min_window(Duration::ZERO)
        .min_samples(2)
        .build()
        .unwrap();
    let app = ServiceBuilder::new()
        .layer(AdmissionLayer::new(limiter.clone()))
        .layer(adaptive.layer())
        .service(service_fn(|_: Request<()>| async {
            sleep(Duration::from_millis(10)).await;
            Ok::<_, Infallible>(Response::new(()))
        }));

    // Five at once against a limit of 2 and no queue: 2 admitted, 3 refused.
    let calls: Vec<_> = (0..5)
        .map(|_| tokio::spawn(app.clone().oneshot(Request::new(()))))
        .collect();
    let mut refused = 0;
    for call in calls {
        let reply = call.await.unwrap().unwrap();
        refused += usize::from(reply.status() == StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(refused, 3);
    let sample = adaptive.last_sample().expect("one window");
    assert_eq!(
        (sample.successes, sample.dropped),
        (2, 0),
        "refusals never count"
    );
    assert_eq!(sample.max_in_flight, 2);
    assert_eq!(limiter.limit(), 3);
    assert_eq!(adaptive.in_flight(), 0);
}
