//! The capacity gate (Sentinel/Kratos "BBR"): while the CPU is pressed, and
//! for a cool-off after, refuse the excess over max throughput × min latency.

mod support;

use std::time::Duration;

use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready, task};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use tower_pressure_core::AsError;
use tower_pressure_core::{
    Event, EventBus, Overloaded, PressureLevel, Priority, PriorityOf, Reason,
};
use tower_pressure_cpu::{CapacityGateConfig, CpuThrottleLayer};

use support::signal_at;

/// A job of a priority that takes `work` in the inner service.
#[derive(Debug)]
struct Job(Priority, Duration);

impl PriorityOf for Job {
    fn priority(&self) -> Priority {
        self.0
    }
}

fn worker() -> impl Service<Job, Response = Priority, Error = BoxError, Future: Send> + Clone {
    service_fn(|job: Job| async move {
        tokio::time::sleep(job.1).await;
        Ok::<_, BoxError>(job.0)
    })
}

/// Runs `streams` concurrent loops of 10 ms jobs for one second, so that
/// each 100 ms bucket sees `streams × 10` completions of 10 ms: the
/// estimate becomes `streams × 10 × 10 ms / 100 ms = streams`.
async fn warm_up(layer: &CpuThrottleLayer<AsError>, streams: usize) {
    warm_up_with(layer, streams, Priority::Normal, Duration::from_millis(10)).await;
}

/// `streams` loops of `priority` jobs of `work` for one second.
async fn warm_up_with(
    layer: &CpuThrottleLayer<AsError>,
    streams: usize,
    priority: Priority,
    work: Duration,
) {
    let end = Instant::now() + Duration::from_secs(1);
    let loops: Vec<_> = (0..streams)
        .map(|_| {
            let mut svc = layer.layer(worker());
            tokio::spawn(async move {
                while Instant::now() < end {
                    let job = Job(priority, work);
                    svc.ready().await.unwrap().call(job).await.unwrap();
                }
            })
        })
        .collect();
    for l in loops {
        l.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_gate_estimates_throughput_times_latency() {
    let layer =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::None), support::uncontended())
            .refusal(AsError)
            .capacity_gate(CapacityGateConfig::default());
    assert_eq!(layer.capacity().unwrap().max_in_flight, None);
    warm_up(&layer, 4).await;
    let seen = layer.capacity().unwrap();
    assert_eq!(seen.max_in_flight, Some(4));
    assert_eq!(seen.in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn under_cpu_pressure_the_excess_over_capacity_is_refused_at_once() {
    let signal = signal_at(PressureLevel::None);
    let bus = EventBus::new(16);
    let mut events = bus.subscribe();
    let layer = CpuThrottleLayer::with_config(signal.clone(), support::uncontended())
        .refusal(AsError)
        .capacity_gate(CapacityGateConfig::default())
        .events(bus);
    warm_up(&layer, 4).await;
    // Four long jobs fill the measured capacity while the CPU is calm.
    let mut svc = layer.layer(worker());
    let long: Vec<_> = (0..4)
        .map(|_| {
            let mut f = task::spawn(svc.call(Job(Priority::Normal, Duration::from_secs(5))));
            assert_pending!(f.poll());
            f
        })
        .collect();
    assert_eq!(layer.capacity().unwrap().in_flight, 4);
    // The CPU is pressed: the next request is refused, not delayed.
    signal.set_override(Some(PressureLevel::High));
    let mut next = task::spawn(svc.call(Job(Priority::High, Duration::ZERO)));
    let err = assert_ready!(next.poll()).unwrap_err();
    let err = err.downcast_ref::<Overloaded>().unwrap();
    assert_eq!(err.reason(), Reason::Cpu(PressureLevel::High));
    assert!(matches!(
        events.try_recv(),
        Ok(Event::Shed { layer: "cpu", .. })
    ));
    // Critical is never refused by the gate (nor delayed, by default).
    let mut critical = task::spawn(svc.call(Job(Priority::Critical, Duration::ZERO)));
    assert_eq!(assert_ready!(critical.poll()).unwrap(), Priority::Critical);
    // During the cool-off the gate keeps refusing, even with the CPU calm.
    signal.set_override(Some(PressureLevel::None));
    assert!(layer.capacity().unwrap().cooling);
    let mut calm = task::spawn(svc.call(Job(Priority::Normal, Duration::ZERO)));
    assert!(assert_ready!(calm.poll()).is_err());
    // After it, a calm CPU admits again whatever is in flight.
    tokio::time::advance(Duration::from_millis(1100)).await;
    assert!(!layer.capacity().unwrap().cooling);
    let mut after = task::spawn(svc.call(Job(Priority::Normal, Duration::ZERO)));
    assert_eq!(assert_ready!(after.poll()).unwrap(), Priority::Normal);
    drop(long);
    assert_eq!(layer.capacity().unwrap().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn below_capacity_a_pressed_cpu_only_delays() {
    let signal = signal_at(PressureLevel::None);
    let layer = CpuThrottleLayer::with_config(signal.clone(), support::uncontended())
        .refusal(AsError)
        .capacity_gate(CapacityGateConfig::default());
    warm_up(&layer, 4).await;
    signal.set_override(Some(PressureLevel::Medium));
    let mut svc = layer.layer(worker());
    let t0 = Instant::now();
    let out = svc
        .ready()
        .await
        .unwrap()
        .call(Job(Priority::Normal, Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(out, Priority::Normal);
    assert_eq!(t0.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn without_an_estimate_the_gate_refuses_nothing() {
    let layer =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::Critical), support::uncontended())
            .refusal(AsError)
            .capacity_gate(CapacityGateConfig::default());
    let mut svc = layer.layer(worker());
    let mut f = task::spawn(svc.call(Job(Priority::Low, Duration::ZERO)));
    assert_pending!(f.poll());
}

#[tokio::test(start_paused = true)]
async fn delayed_and_dropped_requests_leave_the_in_flight_count_at_zero() {
    let signal = signal_at(PressureLevel::Medium);
    let layer = CpuThrottleLayer::with_config(signal, support::uncontended())
        .refusal(AsError)
        .capacity_gate(CapacityGateConfig::default());
    let mut svc = layer.layer(worker());
    // Delayed: not in flight while it waits.
    let mut delayed = task::spawn(svc.call(Job(Priority::Normal, Duration::from_secs(1))));
    assert_pending!(delayed.poll());
    assert_eq!(layer.capacity().unwrap().in_flight, 0);
    // In the inner service after the delay.
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_pending!(delayed.poll());
    assert_eq!(layer.capacity().unwrap().in_flight, 1);
    // Dropped there: out again.
    drop(delayed);
    assert_eq!(layer.capacity().unwrap().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn refusals_during_the_cool_off_do_not_extend_it() {
    let signal = signal_at(PressureLevel::None);
    let layer = CpuThrottleLayer::with_config(signal.clone(), support::uncontended())
        .refusal(AsError)
        .capacity_gate(CapacityGateConfig::default());
    warm_up(&layer, 4).await;
    let mut svc = layer.layer(worker());
    let long: Vec<_> = (0..4)
        .map(|_| {
            let mut f = task::spawn(svc.call(Job(Priority::Normal, Duration::from_secs(60))));
            assert_pending!(f.poll());
            f
        })
        .collect();
    // One refusal while the CPU is hot starts the cool-off.
    signal.set_override(Some(PressureLevel::High));
    let mut hot = task::spawn(svc.call(Job(Priority::Normal, Duration::ZERO)));
    assert!(assert_ready!(hot.poll()).is_err());
    // The CPU recovers; the gate keeps refusing through the cool-off, and
    // those refusals do not restart it.
    signal.set_override(Some(PressureLevel::None));
    for _ in 0..9 {
        tokio::time::advance(Duration::from_millis(100)).await;
        let mut calm = task::spawn(svc.call(Job(Priority::Normal, Duration::ZERO)));
        assert!(assert_ready!(calm.poll()).is_err());
    }
    tokio::time::advance(Duration::from_millis(150)).await;
    assert!(!layer.capacity().unwrap().cooling, "the cool-off ended");
    let mut after = task::spawn(svc.call(Job(Priority::Normal, Duration::ZERO)));
    assert_eq!(assert_ready!(after.poll()).unwrap(), Priority::Normal);
    drop(long);
}

#[tokio::test(start_paused = true)]
async fn a_lone_request_is_never_refused() {
    let signal = signal_at(PressureLevel::None);
    // The default settings: one class alone is not delayed, so both
    // requests meet the gate while its estimate is fresh.
    let layer = CpuThrottleLayer::new(signal.clone())
        .refusal(AsError)
        .capacity_gate(CapacityGateConfig::default());
    warm_up(&layer, 1).await;
    assert_eq!(layer.capacity().unwrap().max_in_flight, Some(1));
    signal.set_override(Some(PressureLevel::Critical));
    let mut svc = layer.layer(worker());
    // One in flight reaches the estimate, but the next request would queue
    // behind one request at most: admitted. With two in flight, the third
    // is refused.
    let mut first = task::spawn(svc.call(Job(Priority::Normal, Duration::from_secs(60))));
    assert_pending!(first.poll());
    let mut second = task::spawn(svc.call(Job(Priority::Normal, Duration::from_secs(60))));
    assert_pending!(second.poll());
    assert_eq!(layer.capacity().unwrap().in_flight, 2);
    let mut third = task::spawn(svc.call(Job(Priority::Normal, Duration::from_secs(60))));
    assert!(assert_ready!(third.poll()).is_err());
}

#[tokio::test(start_paused = true)]
async fn fast_critical_work_does_not_set_the_estimate() {
    let layer =
        CpuThrottleLayer::with_config(signal_at(PressureLevel::None), support::uncontended())
            .refusal(AsError)
            .capacity_gate(CapacityGateConfig::default());
    let normal = warm_up(&layer, 4);
    // Health checks of a microsecond, all the while.
    let checks = warm_up_with(&layer, 1, Priority::Critical, Duration::from_micros(1));
    tokio::join!(normal, checks);
    assert_eq!(layer.capacity().unwrap().max_in_flight, Some(4));
}

#[test]
fn bad_gate_settings_are_config_errors() {
    let err = CapacityGateConfig::builder()
        .buckets(0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "capacity_gate.buckets");
    let err = CapacityGateConfig::builder()
        .window(Duration::from_micros(50))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "capacity_gate.window");
}
