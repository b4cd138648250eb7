//! Bad configuration is a `ConfigError` naming the field at fault, never a
//! panic or a limiter that misbehaves later; the edge values that are valid
//! (`max_queue(0)`: no queue) build and behave as documented.

mod support;

use std::time::Duration;

use support::assert_idle;
use tokio_test::{assert_ready_err, task};
use tower_pressure_admission::{Codel, PriorityLimiter, PriorityLimiterBuilder};
use tower_pressure_core::{ConfigError, Priority, Reason};

/// The error `builder` fails with; panics if it builds.
#[track_caller]
fn error_of(builder: PriorityLimiterBuilder) -> ConfigError {
    match builder.build() {
        Ok(l) => panic!("built a limiter from a bad configuration: {l:?}"),
        Err(e) => e,
    }
}

/// Checks that `err` names `field` in its accessor and in its message.
#[track_caller]
fn assert_names(err: &ConfigError, field: &str) {
    assert_eq!(err.field(), field, "{err}");
    assert!(
        err.to_string().contains(field),
        "the message names the field: {err}"
    );
    assert!(!err.rule().is_empty(), "the message states the rule: {err}");
}

#[test]
fn the_defaults_build() {
    let l = PriorityLimiter::builder().build().unwrap();
    assert_eq!(l.limit(), 64);
    assert_eq!(l.snapshot().max_queue, 1000);
}

#[test]
fn a_limit_of_zero_is_an_error_naming_limit() {
    let err = error_of(PriorityLimiter::builder().limit(0));
    assert_names(&err, "limit");
    assert_eq!(err.value(), "0");
}

#[test]
fn a_limit_of_one_builds() {
    assert_eq!(
        PriorityLimiter::builder().limit(1).build().unwrap().limit(),
        1
    );
}

#[test]
fn a_zero_queue_timeout_is_an_error_naming_its_class() {
    for p in Priority::ALL {
        let err = error_of(PriorityLimiter::builder().queue_timeout(p, Duration::ZERO));
        assert_names(&err, &format!("queue_timeout.{}", p.as_str()));
    }
}

#[test]
fn a_queue_timeout_over_an_hour_is_an_error_naming_its_class() {
    for p in Priority::ALL {
        for t in [Duration::MAX, Duration::from_secs(3601)] {
            let err = error_of(PriorityLimiter::builder().queue_timeout(p, t));
            assert_names(&err, &format!("queue_timeout.{}", p.as_str()));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_longest_queue_timeout_and_a_far_deadline_queue_and_give_up_cleanly() {
    let hour = Duration::from_secs(3600);
    let l = PriorityLimiter::builder()
        .limit(1)
        .queue_timeout(Priority::Normal, hour)
        .build()
        .unwrap();
    let held = l.try_acquire(Priority::Normal).unwrap();
    let far = tower_pressure_admission::AdmitRequest {
        priority: Priority::Normal,
        deadline: Some(tower_pressure_core::Deadline::after(Duration::MAX)),
    };
    let mut waiter = task::spawn(l.acquire(far));
    tokio_test::assert_pending!(waiter.poll());
    tokio::time::advance(hour + Duration::from_millis(1)).await;
    assert_eq!(
        assert_ready_err!(waiter.poll()).reason(),
        Reason::QueueTimeout
    );
    drop(held);
    assert_idle(&l);
}

#[test]
fn the_smallest_queue_timeout_builds() {
    for p in Priority::ALL {
        PriorityLimiter::builder()
            .queue_timeout(p, Duration::from_nanos(1))
            .build()
            .unwrap();
    }
}

#[test]
fn a_weight_that_is_not_a_number_in_zero_to_a_million_is_an_error_naming_its_class() {
    let bad = [
        f64::NAN,
        0.0,
        -0.0,
        -1.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        1.000_001e6,
    ];
    for p in Priority::ALL {
        for w in bad {
            let err = error_of(PriorityLimiter::builder().weight(p, w));
            assert_names(&err, &format!("weight.{}", p.as_str()));
        }
    }
}

#[test]
fn a_tiny_positive_weight_builds() {
    PriorityLimiter::builder()
        .weight(Priority::Bulk, f64::MIN_POSITIVE)
        .build()
        .unwrap();
}

#[test]
fn a_zero_codel_interval_is_an_error_naming_codel_interval() {
    let err = error_of(PriorityLimiter::builder().codel(Codel {
        interval: Duration::ZERO,
        target: Duration::from_millis(5),
    }));
    assert_names(&err, "codel.interval");
}

#[test]
fn a_codel_duration_over_an_hour_is_an_error_naming_it() {
    let err = error_of(PriorityLimiter::builder().codel(Codel {
        interval: Duration::MAX,
        target: Duration::from_millis(5),
    }));
    assert_names(&err, "codel.interval");
}

#[test]
fn a_codel_target_not_below_the_interval_is_an_error_naming_codel_target() {
    let interval = Duration::from_millis(100);
    for target in [
        interval,
        interval + Duration::from_nanos(1),
        Duration::from_secs(10),
        Duration::ZERO,
    ] {
        let err = error_of(PriorityLimiter::builder().codel(Codel { interval, target }));
        assert_names(&err, "codel.target");
    }
}

#[test]
fn a_codel_target_just_below_the_interval_builds() {
    PriorityLimiter::builder()
        .codel(Codel {
            interval: Duration::from_millis(100),
            target: Duration::from_millis(100) - Duration::from_nanos(1),
        })
        .build()
        .unwrap();
    PriorityLimiter::builder()
        .codel(Codel::default())
        .build()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn no_queue_is_valid_and_refuses_at_once_with_queue_full() {
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(0)
        .build()
        .expect("max_queue(0) means no queue, and is valid");
    let held = l.try_acquire(Priority::Normal).unwrap();

    let err = l.try_acquire(Priority::Normal).unwrap_err();
    assert_eq!(err.reason(), Reason::QueueFull);

    // `acquire` does not wait either, whatever the priority: there is
    // nobody to push out of an empty queue.
    for p in Priority::ALL {
        let mut acquire = task::spawn(l.acquire(p));
        let err = assert_ready_err!(acquire.poll(), "refused on the first poll");
        assert_eq!(err.reason(), Reason::QueueFull);
        assert_eq!(err.priority(), p);
        assert_eq!(err.queue_len(), 0);
    }
    assert_eq!(l.snapshot().queue_len(), 0);

    drop(held);
    // Refusals keep nobody out of a free permit (see `work_conservation.rs`).
    drop(l.acquire(Priority::Low).await.unwrap());
    assert_idle(&l);
}
