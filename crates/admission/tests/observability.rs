//! What the limiter reports without the `metrics` feature: the events it
//! publishes, and the snapshot's per-class counts and queue-wait percentiles.

mod support;

use std::time::Duration;

use support::{SECOND, assert_idle, assert_near, limiter};
use tokio::sync::broadcast::Receiver;
use tokio::time::Instant;
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok};
use tower_pressure_admission::{AdmitRequest, PriorityLimiter};
use tower_pressure_core::metrics::LAYER_ADMISSION;
use tower_pressure_core::{Deadline, Event, EventBus, PerPriority, Priority, Reason};

/// Every event published so far.
fn events(rx: &mut Receiver<Event>) -> Vec<Event> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[tokio::test(start_paused = true)]
async fn the_limiter_publishes_emergency_limit_eviction_and_shed_events() {
    let bus = EventBus::new(64);
    let mut rx = bus.subscribe();
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(1)
        .events(bus)
        .build()
        .unwrap();

    l.set_emergency(true);
    l.set_emergency(true); // no change, no event
    l.set_emergency(false);
    assert_eq!(
        events(&mut rx),
        [Event::EmergencyEntered, Event::EmergencyLeft]
    );

    l.set_limit(3);
    l.set_limit(3); // no change, no event
    l.limit_handle().set_limit(0); // raised to 1
    assert_eq!(
        events(&mut rx),
        [
            Event::LimitChanged { from: 1, to: 3 },
            Event::LimitChanged { from: 3, to: 1 },
        ]
    );

    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut low = spawn(l.acquire(Priority::Low));
    assert_pending!(low.poll());
    let mut high = spawn(l.acquire(Priority::High));
    assert_pending!(high.poll());
    assert_eq!(
        events(&mut rx),
        [Event::Evicted {
            priority: Priority::Low,
            by: Priority::High,
        }]
    );
    assert_eq!(assert_ready_err!(low.poll()).reason(), Reason::Evicted);
    assert_eq!(
        events(&mut rx),
        [Event::Shed {
            layer: LAYER_ADMISSION,
            priority: Priority::Low,
            reason: Reason::Evicted,
        }]
    );

    assert!(l.try_acquire(Priority::Bulk).is_err());
    assert_eq!(
        events(&mut rx),
        [Event::Shed {
            layer: LAYER_ADMISSION,
            priority: Priority::Bulk,
            reason: Reason::QueueFull,
        }]
    );

    drop(held);
    drop(assert_ready_ok!(high.poll()));
    assert_eq!(events(&mut rx), [], "admissions publish nothing");
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn the_snapshot_counts_what_happened_to_each_class() {
    let l = limiter(1, 1);
    let held = l.try_acquire(Priority::Normal).unwrap(); // Normal admitted
    let mut low = spawn(l.acquire(Priority::Low));
    assert_pending!(low.poll());
    let s = l.snapshot();
    assert_eq!((s.in_flight, s.limit, s.max_queue), (1, 1, 1));
    assert_eq!(s.queued, PerPriority::from([0, 1, 0, 0, 0]));

    assert!(l.try_acquire(Priority::Bulk).is_err()); // Bulk queue_full
    let err = assert_ready_err!(spawn(l.acquire(Priority::Low)).poll()); // Low queue_full
    assert_eq!(err.reason(), Reason::QueueFull);
    let mut high = spawn(l.acquire(Priority::High)); // evicts Low
    assert_pending!(high.poll());
    assert_eq!(assert_ready_err!(low.poll()).reason(), Reason::Evicted);
    assert_eq!(l.snapshot().queued, PerPriority::from([0, 0, 0, 1, 0]));

    drop(held);
    let held = assert_ready_ok!(high.poll()); // High admitted
    let err = assert_ready_err!(
        spawn(l.acquire(AdmitRequest {
            deadline: Some(Deadline::at(Instant::now())),
            ..AdmitRequest::from(Priority::Normal)
        }))
        .poll()
    ); // Normal deadline_unmeetable
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    let mut slow = spawn(l.acquire(Priority::Normal));
    assert_pending!(slow.poll());
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        assert_ready_err!(slow.poll()).reason(),
        Reason::QueueTimeout
    ); // Normal timed_out
    l.set_emergency(true);
    assert!(l.try_acquire(Priority::Low).is_err()); // Low emergency
    l.set_emergency(false);
    let mut gone = spawn(l.acquire(Priority::Critical));
    assert_pending!(gone.poll());
    drop(gone); // cancelled
    drop(held);

    let s = l.snapshot();
    let [bulk, low, normal, high, critical] = <[_; 5]>::from(s.counts);
    assert_eq!((bulk.queue_full, bulk.refused(), bulk.admitted), (1, 1, 0));
    assert_eq!(
        (
            low.queue_full,
            low.evicted,
            low.emergency,
            low.refused(),
            low.admitted
        ),
        (1, 1, 1, 3, 0)
    );
    assert_eq!(
        (
            normal.admitted,
            normal.deadline_unmeetable,
            normal.timed_out,
            normal.refused()
        ),
        (1, 1, 1, 2)
    );
    assert_eq!((high.admitted, high.refused()), (1, 0));
    assert_eq!((critical.admitted, critical.refused()), (0, 0));
    assert_eq!(s.cancelled, 1);
    assert!(!s.emergency);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn the_snapshot_reports_queue_wait_percentiles_including_zero_waits() {
    let l = limiter(10, 10);
    let mut held: Vec<_> = (0..10)
        .map(|_| l.try_acquire(Priority::Normal).unwrap())
        .collect();
    let mut late = spawn(l.acquire(Priority::Normal));
    assert_pending!(late.poll());
    tokio::time::advance(2 * SECOND).await;
    held.pop();
    held.push(assert_ready_ok!(late.poll()));

    let s = l.snapshot();
    let n = Priority::Normal;
    assert_eq!(s.counts[n].admitted, 11);
    assert_eq!(s.wait_p50[n], Duration::ZERO, "10 of 11 did not wait");
    // hdrhistogram keeps 2 significant digits: allow 2%.
    assert_near(s.wait_p99[n], 2 * SECOND, Duration::from_millis(40));
    assert!(s.wait_p50[n] <= s.wait_p95[n] && s.wait_p95[n] <= s.wait_p99[n]);
    for p in Priority::ALL.into_iter().filter(|&p| p != Priority::Normal) {
        assert_eq!(
            (s.wait_p50[p], s.wait_p95[p], s.wait_p99[p]),
            (Duration::ZERO, Duration::ZERO, Duration::ZERO),
            "{p} saw nothing"
        );
    }
    drop(held);
    assert_idle(&l);
}
