//! `PriorityLimiter` on its own: deadlines against the estimated wait,
//! `retry_after` advice, emergency mode, events, the `LimitHandle`, the
//! snapshot's counts and wait percentiles, per-class queue caps, the generic
//! layer's error, and the limiter as a database-pool guard.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{Job, assert_idle, limiter};
use tokio::sync::broadcast::Receiver;
use tokio::time::Instant;
use tokio_test::task::{Spawn, spawn};
use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok};
use tower::{Layer, ServiceExt, service_fn};
use tower_pressure_admission::{
    Acquire, AdmissionLayer, AdmitRequest, Permit, PriorityLimiter, PriorityLimiterBuilder,
};
use tower_pressure_core::AsError;
use tower_pressure_core::metrics::LAYER_ADMISSION;
use tower_pressure_core::{Deadline, Event, EventBus, Overloaded, PerPriority, Priority, Reason};

const SECOND: Duration = Duration::from_secs(1);

/// Teaches an idle limiter of limit 1 that a permit is held for `hold`:
/// `n` permits granted through the queue (whose hold times are always
/// measured, unlike the fast path's one in 64), each held for `hold`. The
/// requests are `Bulk`, which overtakes no other class (Bulk must be allowed
/// to wait `hold`).
async fn teach_hold_time(l: &PriorityLimiter, hold: Duration, n: usize) {
    let mut held = l.try_acquire(Priority::Bulk).expect("an idle limiter");
    for _ in 0..n {
        let mut next = spawn(l.acquire(Priority::Bulk));
        assert_pending!(next.poll());
        tokio::time::advance(hold).await;
        drop(held);
        held = assert_ready_ok!(next.poll());
    }
    tokio::time::advance(hold).await;
    drop(held);
    assert_idle(l);
}

/// One permit, room for 100 waiters, and a measured hold of 100 ms (ten
/// admissions a second); `builder` sets the rest.
async fn one_permit_held_100ms(builder: PriorityLimiterBuilder) -> PriorityLimiter {
    let l = builder.limit(1).max_queue(100).build().unwrap();
    teach_hold_time(&l, Duration::from_millis(100), 5).await;
    l
}

/// A limiter of one permit and `max_queue` waiters, where `priority` gives
/// up after `timeout` and queues whenever its estimated wait is within it.
/// Bulk, which [`teach_hold_time`] uses, gives up after a minute unless it
/// is `priority`.
fn one_permit(max_queue: usize, priority: Priority, timeout: Duration) -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(1)
        .max_queue(max_queue)
        .queue_timeout(Priority::Bulk, 60 * SECOND)
        .queue_timeout(priority, timeout)
        .build()
        .unwrap()
}

/// `n` requests of `priority` that queue (the limiter has no free permit).
fn queue(l: &PriorityLimiter, priority: Priority, n: usize) -> Vec<Spawn<Acquire>> {
    (0..n)
        .map(|_| {
            let mut w = spawn(l.acquire(priority));
            assert_pending!(w.poll());
            w
        })
        .collect()
}

fn with_deadline(priority: Priority, after: Duration) -> AdmitRequest {
    AdmitRequest {
        priority,
        deadline: Some(Deadline::after(after)),
    }
}

#[track_caller]
fn assert_near(got: Duration, expected: Duration, tolerance: Duration) {
    assert!(
        got.abs_diff(expected) <= tolerance,
        "{got:?} is not within {tolerance:?} of {expected:?}"
    );
}

/// Every event published so far.
fn events(rx: &mut Receiver<Event>) -> Vec<Event> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

// ---- deadlines and the estimated wait ----

/// One permit, room for 100 waiters; Normal, High and Bulk give up after a
/// minute.
fn patient() -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(1)
        .max_queue(100)
        .queue_timeout(Priority::Bulk, 60 * SECOND)
        .queue_timeout(Priority::Normal, 60 * SECOND)
        .queue_timeout(Priority::High, 60 * SECOND)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_deadline_shorter_than_the_estimated_wait_is_refused_at_once() {
    let l = patient();
    teach_hold_time(&l, SECOND, 5).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut waiters = queue(&l, Priority::Normal, 3);
    // A Normal newcomer waits for 3 Normal waiters and itself, 1 s each: ~4 s.
    let mut hurried = spawn(l.acquire(with_deadline(Priority::Normal, 2 * SECOND)));
    let err = assert_ready_err!(hurried.poll(), "refused on the first poll");
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    assert_eq!(
        l.snapshot().queue_len(),
        3,
        "the refused request did not queue"
    );

    let mut patient = spawn(l.acquire(with_deadline(Priority::Normal, 60 * SECOND)));
    assert_pending!(patient.poll(), "a generous deadline queues");

    let mut expired = spawn(l.acquire(AdmitRequest {
        deadline: Some(Deadline::at(Instant::now())),
        ..AdmitRequest::from(Priority::Normal)
    }));
    assert_eq!(
        assert_ready_err!(expired.poll()).reason(),
        Reason::DeadlineUnmeetable
    );

    // A High newcomer overtakes the Normal waiters: it waits ~1 s, and 2 s is enough.
    let mut high = spawn(l.acquire(with_deadline(Priority::High, 2 * SECOND)));
    assert_pending!(
        high.poll(),
        "the estimate counts only the waiters it cannot overtake"
    );

    let s = l.snapshot();
    assert_eq!(s.counts[Priority::Normal].deadline_unmeetable, 2);
    assert_eq!(s.queue_len(), 5);

    drop(held);
    let p = assert_ready_ok!(high.poll(), "High goes first");
    drop(p);
    for w in &mut waiters {
        drop(assert_ready_ok!(w.poll()));
    }
    drop(assert_ready_ok!(patient.poll()));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn an_expired_deadline_is_refused_even_when_a_permit_is_free() {
    let l = limiter(4, 10);
    let expired = with_deadline(Priority::High, Duration::ZERO);
    tokio::time::advance(Duration::from_millis(1)).await;
    let err = l.try_acquire(expired).unwrap_err();
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    let err = l.acquire(expired).await.unwrap_err();
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    // A live deadline takes the fast path as usual.
    let permit = l
        .try_acquire(with_deadline(Priority::High, SECOND))
        .unwrap();
    drop(permit);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_request_whose_estimated_wait_exceeds_its_queue_timeout_is_refused_at_once() {
    let l = one_permit(100, Priority::Normal, Duration::from_millis(3500));
    teach_hold_time(&l, SECOND, 5).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    // A burst: each waiter adds a second. The first three expect ~1, ~2 and
    // ~3 s, within 3.5 s, and queue; the fourth would wait ~4 s.
    let mut waiters = queue(&l, Priority::Normal, 3);
    let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
    assert_eq!(
        err.reason(),
        Reason::DeadlineUnmeetable,
        "refused at once, not after 3.5 s"
    );
    // A higher class overtakes the waiters, so its estimate is short.
    let mut high = spawn(l.acquire(Priority::High));
    assert_pending!(high.poll());
    drop(held);
    drop(assert_ready_ok!(high.poll()));
    for w in &mut waiters {
        drop(assert_ready_ok!(w.poll()));
    }
    assert_idle(&l);
}

/// Keeps the one permit of `l` busy with `p` requests for `secs` seconds,
/// one admitted every `hold` through the queue.
async fn keep_busy(l: &PriorityLimiter, p: Priority, hold: Duration, secs: u32) -> Permit {
    let mut held = l.try_acquire(p).unwrap();
    for _ in 0..(secs * SECOND.as_millis() as u32 / hold.as_millis() as u32) {
        let mut next = spawn(l.acquire(p));
        assert_pending!(next.poll());
        tokio::time::advance(hold).await;
        drop(held);
        held = assert_ready_ok!(next.poll());
    }
    held
}

#[tokio::test(start_paused = true)]
async fn a_class_the_classes_above_leave_nothing_is_refused_at_once_when_it_would_wait() {
    let l = one_permit_held_100ms(PriorityLimiter::builder()).await;
    // High takes every permit, ten a second, for two seconds.
    let held = keep_busy(&l, Priority::High, Duration::from_millis(100), 2).await;
    let mut next_high = spawn(l.acquire(Priority::High));
    assert_pending!(next_high.poll());
    // A Low newcomer would wait behind all of High's future arrivals:
    // refused now, not after its one-second timeout.
    let err = assert_ready_err!(spawn(l.acquire(Priority::Low)).poll());
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    // The High that waits is served as usual.
    drop(held);
    drop(assert_ready_ok!(next_high.poll()));
    // The permit is free and nobody waits: Low is admitted at once, however
    // busy High was a moment ago.
    drop(l.try_acquire(Priority::Low).unwrap());
    drop(l.acquire(Priority::Low).await.unwrap());
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_class_that_leaves_room_does_not_keep_a_lower_one_out() {
    let l = one_permit_held_100ms(PriorityLimiter::builder()).await;
    // High takes half the permit's time for two seconds: 5 a second.
    let mut at = Instant::now();
    for _ in 0..10 {
        let p = l.try_acquire(Priority::High).unwrap();
        tokio::time::advance(Duration::from_millis(100)).await;
        drop(p);
        at += Duration::from_millis(200);
        tokio::time::sleep_until(at).await;
    }
    let held = l.try_acquire(Priority::High).unwrap();
    // Half the service is left to Low: a waiter ahead and itself, ~0.4 s.
    let mut first = spawn(l.acquire(Priority::Low));
    assert_pending!(first.poll());
    let mut second = spawn(l.acquire(Priority::Low));
    assert_pending!(second.poll(), "Low queues within its one-second timeout");
    drop(held);
    drop(assert_ready_ok!(first.poll()));
    drop(assert_ready_ok!(second.poll()));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_queued_waiter_gives_up_at_its_deadline_rather_than_its_class_timeout() {
    // Nothing measured: the estimated wait is zero, so any deadline queues.
    let l = PriorityLimiter::builder()
        .limit(1)
        .queue_timeout(Priority::Bulk, 20 * SECOND)
        .build()
        .unwrap();
    let held = l.try_acquire(Priority::Normal).unwrap();
    // Bulk's class timeout is 20 s; the deadline is 3 s.
    let mut w = spawn(l.acquire(with_deadline(Priority::Bulk, 3 * SECOND)));
    assert_pending!(w.poll());
    tokio::time::advance(Duration::from_millis(2_999)).await;
    assert_pending!(w.poll());
    tokio::time::advance(Duration::from_millis(2)).await;
    assert!(w.is_woken(), "the deadline timer woke the waiter");
    let err = assert_ready_err!(w.poll());
    assert_eq!(err.reason(), Reason::QueueTimeout);
    assert_eq!(l.snapshot().counts[Priority::Bulk].timed_out, 1);
    drop(held);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn by_default_a_waiter_gives_up_after_a_second() {
    let l = limiter(1, 10);
    let held = l.try_acquire(Priority::Normal).unwrap();
    for p in Priority::ALL {
        let mut w = spawn(l.acquire(p));
        assert_pending!(w.poll());
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_pending!(w.poll());
        tokio::time::advance(Duration::from_millis(2)).await;
        assert_eq!(assert_ready_err!(w.poll()).reason(), Reason::QueueTimeout);
    }
    drop(held);
    assert_idle(&l);
}

// ---- retry_after ----

#[tokio::test(start_paused = true)]
async fn retry_after_is_one_second_while_no_hold_time_is_measured() {
    let l = limiter(1, 0);
    let held = l.try_acquire(Priority::Normal).unwrap();
    let err = l.try_acquire(Priority::Normal).unwrap_err();
    assert_eq!(err.reason(), Reason::QueueFull);
    assert_eq!(err.retry_after(), SECOND);
    let err = assert_ready_err!(spawn(l.acquire(Priority::High)).poll());
    assert_eq!(err.reason(), Reason::QueueFull);
    assert_eq!(err.retry_after(), SECOND);
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn retry_after_grows_with_the_queue_at_the_measured_hold_time_up_to_thirty_seconds() {
    // Low waiters may wait a minute here, so that none is refused early for
    // an estimated wait past its queue timeout.
    let l = one_permit(1000, Priority::Low, Duration::from_secs(60));
    teach_hold_time(&l, SECOND, 5).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut waiters = Vec::new();
    let mut last = Duration::ZERO;
    for queued in 0..40u64 {
        let err = l.try_acquire(Priority::Low).unwrap_err();
        assert_eq!(err.reason(), Reason::QueueFull);
        assert_eq!(err.queue_len() as u64, queued);
        // The time to drain the queue and this request, one at a time, 1 s each.
        let expected = Duration::from_secs(queued + 1).min(Duration::from_secs(30));
        assert_near(err.retry_after(), expected, Duration::from_millis(1));
        assert!(err.retry_after() >= SECOND);
        assert!(err.retry_after() >= last, "grows with the queue");
        assert!(
            err.retry_after() <= Duration::from_secs(30),
            "capped at 30 s"
        );
        last = err.retry_after();
        let mut w = spawn(l.acquire(Priority::Low));
        assert_pending!(w.poll());
        waiters.push(w);
    }
    // A refusal by `acquire` with the queue full advises the same.
    l.limit_handle().set_max_queue(40);
    let err = assert_ready_err!(spawn(l.acquire(Priority::Low)).poll());
    assert_eq!(err.reason(), Reason::QueueFull);
    assert_eq!(err.retry_after(), Duration::from_secs(30));
    drop(waiters);
    drop(held);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_a_short_queue_reflects_the_measured_hold_time() {
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(2)
        .queue_timeout(Priority::Normal, 60 * SECOND)
        .queue_timeout(Priority::Bulk, 60 * SECOND)
        .build()
        .unwrap();
    teach_hold_time(&l, 3 * SECOND, 5).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut a = spawn(l.acquire(Priority::Normal));
    let mut b = spawn(l.acquire(Priority::Normal));
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    // Two waiters and this one, 3 s each.
    let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
    assert_eq!(err.reason(), Reason::QueueFull);
    assert_near(err.retry_after(), 9 * SECOND, Duration::from_millis(1));
    drop((a, b, held));
    assert_idle(&l);
}

// ---- emergency mode ----

#[tokio::test(start_paused = true)]
async fn emergency_refuses_non_critical_work_and_still_admits_critical() {
    let l = limiter(1, 10);
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut low = spawn(l.acquire(Priority::Low));
    let mut normal = spawn(l.acquire(Priority::Normal));
    let mut critical = spawn(l.acquire(Priority::Critical));
    assert_pending!(low.poll());
    assert_pending!(normal.poll());
    assert_pending!(critical.poll());

    l.set_emergency(true);
    assert!(l.snapshot().emergency);
    assert!(
        low.is_woken() && normal.is_woken(),
        "told at once, not at their timeout"
    );
    assert_eq!(assert_ready_err!(low.poll()).reason(), Reason::Emergency);
    assert_eq!(assert_ready_err!(normal.poll()).reason(), Reason::Emergency);
    assert_pending!(critical.poll(), "a Critical waiter stays");
    assert_eq!(l.snapshot().queue_len(), 1);

    // Newcomers below Critical are refused, by either call.
    assert_eq!(
        l.try_acquire(Priority::High).unwrap_err().reason(),
        Reason::Emergency
    );
    let err = assert_ready_err!(spawn(l.acquire(Priority::High)).poll());
    assert_eq!(err.reason(), Reason::Emergency);

    drop(held);
    let c = assert_ready_ok!(critical.poll(), "Critical is admitted");
    drop(c);
    // A permit is free, and still only Critical gets it.
    assert_eq!(
        l.try_acquire(Priority::Bulk).unwrap_err().reason(),
        Reason::Emergency
    );
    let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
    assert_eq!(err.reason(), Reason::Emergency);
    drop(l.try_acquire(Priority::Critical).unwrap());
    drop(l.acquire(Priority::Critical).await.unwrap());

    l.set_emergency(false);
    assert!(!l.snapshot().emergency);
    drop(
        l.try_acquire(Priority::Bulk)
            .expect("normal admission is back"),
    );
    drop(l.acquire(Priority::Normal).await.unwrap());

    let s = l.snapshot();
    let c = |p: Priority| s.counts[p].emergency;
    assert_eq!(
        [
            c(Priority::Bulk),
            c(Priority::Low),
            c(Priority::Normal),
            c(Priority::High),
            c(Priority::Critical)
        ],
        [1, 1, 2, 2, 0]
    );
    assert_idle(&l);
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

// ---- LimitHandle ----

#[tokio::test(start_paused = true)]
async fn the_limit_handle_reads_and_tunes_the_limiter() {
    let l = limiter(2, 5);
    let h = l.limit_handle();
    assert_eq!(
        (
            h.limit(),
            h.in_flight(),
            h.queue_len(),
            h.max_queue(),
            h.emergency()
        ),
        (2, 0, 0, 5, false)
    );
    let a = l.try_acquire(Priority::Normal).unwrap();
    let b = l.try_acquire(Priority::Normal).unwrap();
    let mut w = spawn(l.acquire(Priority::Normal));
    assert_pending!(w.poll());
    assert_eq!((h.in_flight(), h.queue_len()), (2, 1));

    h.set_limit(0);
    assert_eq!(h.limit(), 1, "a limit of 0 is raised to 1");
    assert_eq!(l.limit(), 1);
    l.set_limit(0);
    assert_eq!(l.limit(), 1);

    h.set_emergency(true);
    assert!(h.emergency() && l.snapshot().emergency);
    assert_eq!(assert_ready_err!(w.poll()).reason(), Reason::Emergency);
    h.set_emergency(false);
    assert!(!h.emergency());

    // Clones of the handle share the one limiter.
    let h2 = h.clone();
    h2.set_limit(4);
    assert_eq!((h.limit(), l.limit()), (4, 4));
    drop((a, b));
    assert_eq!(h.in_flight(), 0);
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn lowering_max_queue_below_the_queue_refuses_newcomers_but_not_those_waiting() {
    let l = limiter(1, 5);
    let h = l.limit_handle();
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut waiters = queue(&l, Priority::Normal, 3);
    h.set_max_queue(1);
    assert_eq!(h.max_queue(), 1);
    for w in &mut waiters {
        assert!(!w.is_woken(), "nobody waiting is refused");
        assert_pending!(w.poll());
    }
    assert_eq!(h.queue_len(), 3);

    let refused = |l: &PriorityLimiter| {
        let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
        assert_eq!(err.reason(), Reason::QueueFull);
    };
    refused(&l);
    let mut held = Some(held);
    // Drain: each release admits the oldest; newcomers are refused while
    // the queue is at or above its new bound.
    for (i, w) in waiters.iter_mut().enumerate() {
        drop(held.take());
        held = Some(assert_ready_ok!(w.poll()));
        assert_eq!(h.queue_len(), 2 - i);
        if h.queue_len() >= 1 {
            refused(&l);
        }
    }
    let mut late = spawn(l.acquire(Priority::Normal));
    assert_pending!(
        late.poll(),
        "the queue drained below its bound: newcomers queue again"
    );
    drop(held);
    drop(assert_ready_ok!(late.poll()));
    assert_eq!(l.snapshot().counts[Priority::Normal].queue_full, 3);
    assert_idle(&l);
}

// ---- snapshot ----

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

// ---- per-class queue cap ----

#[tokio::test(start_paused = true)]
async fn a_class_queue_cap_refuses_that_class_while_others_still_queue() {
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(10)
        .class_queue_cap(Priority::Bulk, 1)
        .build()
        .unwrap();
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut bulk = spawn(l.acquire(Priority::Bulk));
    assert_pending!(bulk.poll());
    let err = assert_ready_err!(spawn(l.acquire(Priority::Bulk)).poll());
    assert_eq!(err.reason(), Reason::QueueFull, "Bulk is at its cap");
    let mut low = spawn(l.acquire(Priority::Low));
    let mut normal = spawn(l.acquire(Priority::Normal));
    assert_pending!(low.poll(), "other classes still queue");
    assert_pending!(normal.poll());
    assert_eq!(l.snapshot().queued, PerPriority::from([1, 1, 1, 0, 0]));
    assert_eq!(l.snapshot().counts[Priority::Bulk].queue_full, 1);

    // Once the Bulk waiter leaves, another Bulk may take its place.
    drop(bulk);
    let mut bulk2 = spawn(l.acquire(Priority::Bulk));
    assert_pending!(bulk2.poll());
    drop((bulk2, low, normal, held));
    assert_idle(&l);
}

// ---- AdmissionLayer<AsError> ----

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
