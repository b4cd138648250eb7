//! Strict order under overload: once a class is refused for load twice
//! within the outrank window, no newcomer below it is admitted for the
//! window.

mod support;

use std::time::Duration;

use support::assert_idle;
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready_err, assert_ready_ok};
use tower_pressure_admission::{AdmitRequest, DEFAULT_OUTRANK_WINDOW, Drain, PriorityLimiter};
use tower_pressure_core::{Cohort, Deadline, Priority, Reason};

/// One permit, room for one waiter.
fn tight() -> tower_pressure_admission::PriorityLimiterBuilder {
    PriorityLimiter::builder().limit(1).max_queue(1)
}

/// Refuses `times` `High` requests because the queue is full, then empties
/// the limiter: the permit is free and nobody waits.
async fn refuse_high_for_load(l: &PriorityLimiter, times: usize) {
    let held = l.try_acquire(Priority::Critical).unwrap();
    let mut waiter = spawn(l.acquire(Priority::High));
    assert_pending!(waiter.poll());
    for _ in 0..times {
        let err = l.acquire(Priority::High).await.unwrap_err();
        assert_eq!(err.reason(), Reason::QueueFull);
    }
    drop(held);
    drop(assert_ready_ok!(waiter.poll()));
    assert_idle(l);
}

#[tokio::test(start_paused = true)]
async fn a_free_permit_goes_to_no_lower_class_while_a_higher_one_is_being_refused() {
    let l = tight().build().unwrap();
    refuse_high_for_load(&l, 2).await;

    for p in [Priority::Normal, Priority::Low, Priority::Bulk] {
        let err = l.try_acquire(p).unwrap_err();
        assert_eq!(err.reason(), Reason::QueueFull, "{p:?}");
        assert_eq!(l.acquire(p).await.unwrap_err().reason(), Reason::QueueFull);
    }
    // The refused class itself, and those above it, still get in at once.
    drop(l.acquire(Priority::High).await.unwrap());
    drop(l.try_acquire(Priority::Critical).unwrap());

    tokio::time::sleep(DEFAULT_OUTRANK_WINDOW).await;
    drop(l.acquire(Priority::Bulk).await.unwrap());
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn one_refusal_alone_or_two_further_apart_than_the_window_keep_nobody_out() {
    let l = tight().build().unwrap();
    refuse_high_for_load(&l, 1).await;
    drop(l.try_acquire(Priority::Bulk).unwrap());
    tokio::time::sleep(DEFAULT_OUTRANK_WINDOW).await;
    refuse_high_for_load(&l, 1).await;
    drop(l.try_acquire(Priority::Bulk).unwrap());
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_class_timing_out_in_the_queue_keeps_lower_newcomers_out_and_waiters_in() {
    // Two High requests time out together: the class is being turned away.
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(10)
        .queue_timeout(Priority::High, Duration::from_millis(10))
        .build()
        .unwrap();
    let held = l.try_acquire(Priority::Critical).unwrap();
    let mut low = spawn(l.acquire(Priority::Low));
    let mut high = [
        spawn(l.acquire(Priority::High)),
        spawn(l.acquire(Priority::High)),
    ];
    assert_pending!(low.poll());
    for h in &mut high {
        assert_pending!(h.poll());
    }

    tokio::time::sleep(Duration::from_millis(11)).await;
    for h in &mut high {
        assert_eq!(assert_ready_err!(h.poll()).reason(), Reason::QueueTimeout);
    }
    // A newcomer below High is refused at once, without queueing...
    let err = l.acquire(Priority::Normal).await.unwrap_err();
    assert_eq!(err.reason(), Reason::QueueFull);
    // ...while the Low request that was already waiting keeps its place,
    // and is served next: a refusal after a wait would be a slow one.
    assert_pending!(low.poll());
    drop(held);
    drop(assert_ready_ok!(low.poll()));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_for_the_clients_own_deadline_outranks_nobody() {
    // A client's deadline is the client's to set: it must not be able to
    // shut out the classes below its own.
    let l = tight().build().unwrap();
    let held = l.try_acquire(Priority::Critical).unwrap();
    let hurried = AdmitRequest {
        priority: Priority::High,
        cohort: Cohort::default(),
        deadline: Some(Deadline::after(Duration::ZERO)),
    };
    let err = l.acquire(hurried).await.unwrap_err();
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    drop(held);
    drop(l.try_acquire(Priority::Bulk).unwrap());
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_zero_window_or_another_drain_keeps_the_lower_classes_in() {
    for l in [
        tight().outrank_window(Duration::ZERO).build().unwrap(),
        tight().drain(Drain::WeightedFair).build().unwrap(),
        tight().drain(Drain::Fifo).build().unwrap(),
    ] {
        refuse_high_for_load(&l, 3).await;
        drop(l.try_acquire(Priority::Bulk).unwrap());
        assert_idle(&l);
    }
}
