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
    Acquire, AdmitRequest, BoxError, DEFAULT_OUTRANK_WINDOW, GenericAdmissionLayer, Permit,
    PriorityLimiter, PriorityLimiterBuilder,
};
use tower_pressure_core::metrics::LAYER_ADMISSION;
use tower_pressure_core::{Deadline, Event, EventBus, Overloaded, Priority, Reason};

const SECOND: Duration = Duration::from_secs(1);

/// Teaches an idle limiter of limit 1 that a permit is held for `hold`:
/// `n` permits granted through the queue (whose hold times are always
/// measured, unlike the fast path's one in 64), each held for `hold`.
async fn teach_hold_time(l: &PriorityLimiter, hold: Duration, n: usize) {
    let mut held = l.try_acquire(Priority::Normal).expect("an idle limiter");
    for _ in 0..n {
        let mut next = spawn(l.acquire(Priority::Normal));
        assert_pending!(next.poll());
        tokio::time::advance(hold).await;
        drop(held);
        held = assert_ready_ok!(next.poll());
    }
    tokio::time::advance(hold).await;
    drop(held);
    assert_idle(l);
    // A quiet spell, so that the arrival rate learned while teaching (one
    // Normal request per `hold`) does not count as traffic that overtakes
    // the lower classes in the test that follows.
    tokio::time::advance(hold * 20).await;
}

/// One permit, room for 100 waiters, and a measured hold of 100 ms (ten
/// admissions a second); `builder` sets the rest.
async fn one_permit_held_100ms(builder: PriorityLimiterBuilder) -> PriorityLimiter {
    let l = builder.limit(1).max_queue(100).build().unwrap();
    teach_hold_time(&l, Duration::from_millis(100), 5).await;
    l
}

/// A request of `priority` whose caller gives up `after` from now.
/// A limiter of one permit and `max_queue` waiters, where `priority` gives
/// up after `timeout` and queues whenever its estimated wait is within it
/// (a queue margin of 1, so the tests can put waiters right at the edge).
fn one_permit(max_queue: usize, priority: Priority, timeout: Duration) -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(1)
        .max_queue(max_queue)
        .queue_timeout(priority, timeout)
        .queue_margin(1.0)
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
        ..AdmitRequest::default()
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

// ---- deadlines ----

#[tokio::test(start_paused = true)]
async fn a_deadline_shorter_than_the_estimated_wait_is_refused_at_once() {
    let l = limiter(1, 100);
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
    assert_eq!(s.counts[Priority::Normal.index()].deadline_unmeetable, 2);
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
    // Each waiter adds a second: the third would wait ~3 s, the fourth ~4 s.
    let mut waiters = queue(&l, Priority::Normal, 3);
    let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
    assert_eq!(
        err.reason(),
        Reason::DeadlineUnmeetable,
        "refused at once, not after 3.5 s"
    );
    // A higher class overtakes the waiters, so its estimate is short; it
    // pushes the newest Normal waiter to ~4 s, which is then told at once.
    let mut high = spawn(l.acquire(Priority::High));
    assert_pending!(high.poll());
    let mut last = waiters.pop().unwrap();
    assert_eq!(
        assert_ready_err!(last.poll()).reason(),
        Reason::DeadlineUnmeetable
    );
    drop(held);
    drop(assert_ready_ok!(high.poll()));
    for w in &mut waiters {
        drop(assert_ready_ok!(w.poll()));
    }
    assert_idle(&l);
}

/// One permit, measured at a second a hold and now held; Normal gives up
/// after 3.5 s.
async fn one_second_holds_normal_timeout_3500ms() -> (PriorityLimiter, Permit) {
    let l = PriorityLimiter::builder()
        .limit(1)
        .max_queue(100)
        .queue_timeout(Priority::Normal, Duration::from_millis(3500))
        .build()
        .unwrap();
    teach_hold_time(&l, SECOND, 5).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    (l, held)
}

#[tokio::test(start_paused = true)]
async fn by_default_a_newcomer_queues_only_while_its_estimated_wait_is_within_half_its_timeout() {
    let (l, held) = one_second_holds_normal_timeout_3500ms().await;
    // ~1 s for the first waiter: within 1.75 s, half its timeout.
    let mut waiters = queue(&l, Priority::Normal, 1);
    overload(&l, Priority::Normal).await;
    // ~2 s for the next: inside 3.5 s, but past half of it.
    let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    // The one that queued has room to be pushed back: a High newcomer
    // puts it at ~2 s, still within its 3.5 s, so it keeps its place.
    let mut high = spawn(l.acquire(Priority::High));
    assert_pending!(high.poll());
    assert!(!waiters[0].is_woken());
    drop(held);
    drop(assert_ready_ok!(high.poll()));
    drop(assert_ready_ok!(waiters[0].poll()));
    assert_idle(&l);
}

/// Makes `p` arrive at 32 a second for a quarter of a second while every
/// permit is taken (`try_acquire` does not queue, but a refusal is an
/// arrival): far faster than one permit held a second serves it.
async fn overload(l: &PriorityLimiter, p: Priority) {
    for _ in 0..8 {
        assert!(l.try_acquire(p).is_err());
    }
    tokio::time::advance(Duration::from_millis(250)).await;
}

#[tokio::test(start_paused = true)]
async fn a_class_arriving_well_below_its_service_rate_may_use_its_whole_timeout() {
    // As above, but Normal is not overloaded: its only arrivals are a burst
    // that the permit drains. The margin is for classes whose waiters are
    // pushed back and time out; a burst of an underloaded class queues as
    // long as it can still make it.
    let (l, held) = one_second_holds_normal_timeout_3500ms().await;
    // ~1 s, ~2 s and ~3 s: all within 3.5 s, though two past its half.
    let mut waiters = queue(&l, Priority::Normal, 3);
    // ~4 s: past the timeout itself, refused however light the load.
    let err = assert_ready_err!(spawn(l.acquire(Priority::Normal)).poll());
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    drop(held);
    for w in &mut waiters {
        let permit = assert_ready_ok!(w.poll());
        drop(permit);
    }
    assert_idle(&l);
}

#[test]
fn a_queue_margin_outside_zero_to_two_is_an_error_naming_it() {
    for m in [0.0, -0.5, 2.5, f64::NAN, f64::INFINITY] {
        let err = PriorityLimiter::builder()
            .queue_margin(m)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "queue_margin", "{m}");
    }
    for m in [0.1, 1.0, 2.0] {
        PriorityLimiter::builder().queue_margin(m).build().unwrap();
    }
    let err = PriorityLimiter::builder()
        .class_queue_margin(Priority::High, 3.0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "queue_margin.high");
    assert!(err.to_string().contains("(0, 2]"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_margin_above_one_queues_on_a_chance_but_never_the_hopeless() {
    // One permit held 100 ms at a time (10 a second); classes above Bulk
    // arriving at 3 a second (two Critical and a High in the first second,
    // the window the limiter measures). Bulk gives up after 2 s. How many
    // Bulk queue:
    async fn bulk_queued(margin: f64) -> usize {
        let l = PriorityLimiter::builder()
            .limit(1)
            .max_queue(1000)
            .queue_timeout(Priority::Bulk, Duration::from_secs(2))
            .class_queue_margin(Priority::Bulk, margin)
            .build()
            .unwrap();
        // Two Critical, the second granted after a wait: its 100 ms hold is
        // measured.
        let held = l.try_acquire(Priority::Critical).unwrap();
        let mut next = spawn(l.acquire(Priority::Critical));
        assert_pending!(next.poll());
        tokio::time::advance(Duration::from_millis(100)).await;
        drop(held);
        let timed = assert_ready_ok!(next.poll());
        tokio::time::advance(Duration::from_millis(100)).await;
        drop(timed);
        // A High, held as long, and at one second the Critical that holds
        // the permit.
        let high = l.try_acquire(Priority::High).unwrap();
        tokio::time::advance(Duration::from_millis(100)).await;
        drop(high);
        tokio::time::advance(Duration::from_millis(700)).await;
        let held = l.try_acquire(Priority::Critical).unwrap();
        let mut waiting = Vec::new();
        loop {
            let mut w = spawn(l.acquire(Priority::Bulk));
            if w.poll().is_ready() {
                break;
            }
            waiting.push(w);
        }
        let n = waiting.len();
        drop((waiting, held));
        assert_idle(&l);
        n
    }
    // Expected to make it: (n + 1) / (10 − 3) ≤ 2 s — fourteen.
    assert_eq!(bulk_queued(1.0).await, 14);
    // A margin of two would allow an expected 4 s, 28 waiters; but the 19th
    // would need 19 admissions in 2 s: 20, less the 6 the classes above are
    // expected to take, and even two standard deviations (√6) fewer of
    // theirs leave it short. Eighteen: those it is not hopeless for.
    assert_eq!(bulk_queued(2.0).await, 18);
}

#[tokio::test(start_paused = true)]
async fn a_class_margin_lets_that_class_alone_queue_longer() {
    // One permit with a measured hold; Bulk's and Low's timeouts 1 s. How
    // many of a class queue before the estimate refuses the next one.
    async fn queued(bulk_margin: Option<f64>) -> (usize, usize) {
        let mut b = PriorityLimiter::builder()
            .limit(1)
            .max_queue(1000)
            .queue_timeout(Priority::Bulk, Duration::from_secs(1))
            .queue_timeout(Priority::Low, Duration::from_secs(1));
        if let Some(m) = bulk_margin {
            b = b.class_queue_margin(Priority::Bulk, m);
        }
        let l = b.build().unwrap();
        // A permit granted after a wait has its hold measured.
        let held = l.try_acquire(Priority::Critical).unwrap();
        let mut first = spawn(l.acquire(Priority::Critical));
        assert_pending!(first.poll());
        drop(held);
        let timed = assert_ready_ok!(first.poll());
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(timed);

        let held = l.try_acquire(Priority::Critical).unwrap();
        let count = |p: Priority| {
            let mut waiting = Vec::new();
            loop {
                let mut w = spawn(l.acquire(p));
                if w.poll().is_ready() {
                    return waiting;
                }
                waiting.push(w);
            }
        };
        // Bulk first (Low's estimate does not count the Bulk waiters it would
        // overtake; and a refused Low would keep Bulk out for a while).
        let bulk = count(Priority::Bulk);
        let low = count(Priority::Low);
        let counts = (low.len(), bulk.len());
        drop((low, bulk, held));
        assert_idle(&l);
        counts
    }
    let (low, bulk) = queued(None).await;
    assert!(
        low > 0 && bulk > 0,
        "both classes queue some: {low}, {bulk}"
    );
    assert_eq!(low, bulk, "the same timeout and margin");
    let (low_again, bulk_all) = queued(Some(1.0)).await;
    assert_eq!(low_again, low, "Low keeps the default margin");
    // Twice the time to wait in: twice as many.
    assert!(
        bulk_all >= 2 * bulk,
        "Bulk with a margin of 1.0 queued {bulk_all}, with 0.5 {bulk}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiter_pushed_back_past_its_timeout_by_higher_classes_is_refused_at_once() {
    let l = one_permit(100, Priority::Low, Duration::from_millis(3500));
    teach_hold_time(&l, SECOND, 5).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut low = spawn(l.acquire(Priority::Low));
    assert_pending!(low.poll());
    let mut high = queue(&l, Priority::High, 2);
    // Two High ahead: ~3 s for the Low waiter, inside its 3.5 s.
    assert!(!low.is_woken());
    let mut third = spawn(l.acquire(Priority::High));
    assert_pending!(third.poll());
    // Three ahead: ~4 s. It is told now, not at 3.5 s.
    assert!(low.is_woken());
    let err = assert_ready_err!(low.poll());
    assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    assert_eq!(
        l.snapshot().counts[Priority::Low.index()].deadline_unmeetable,
        1
    );
    high.push(third);
    drop(held);
    for h in &mut high {
        drop(assert_ready_ok!(h.poll()));
    }
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_class_starved_by_the_arrival_rate_of_higher_classes_is_refused_at_once() {
    let l = one_permit_held_100ms(PriorityLimiter::builder()).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut low = spawn(l.acquire(Priority::Low));
    assert_pending!(low.poll(), "nothing overtakes Low yet");
    // High requests arrive at 20 a second for a second: more than the
    // service rate, for long enough for the limiter to measure it.
    let mut high = Vec::new();
    for _ in 0..20 {
        tokio::time::advance(Duration::from_millis(50)).await;
        let mut h = spawn(l.acquire(Priority::High));
        assert_pending!(h.poll());
        high.push(h);
    }
    // The queued Low waiter was told as soon as the rate was known...
    assert_eq!(
        assert_ready_err!(low.poll()).reason(),
        Reason::DeadlineUnmeetable
    );
    // ...and a Low newcomer is refused on arrival, not after 20 s: High is
    // overloaded, so it outranks every class below it.
    let err = assert_ready_err!(spawn(l.acquire(Priority::Low)).poll());
    assert_eq!(err.reason(), Reason::QueueFull);
    // High itself is still queued and served.
    drop(held);
    for h in &mut high {
        drop(assert_ready_ok!(h.poll()));
    }
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_newcomer_refused_for_load_sheds_the_lower_waiters_the_rates_say_cannot_make_it() {
    // One High waiter at most: the next is refused for load at once.
    let l =
        one_permit_held_100ms(PriorityLimiter::builder().class_queue_cap(Priority::High, 1)).await;
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut low = spawn(l.acquire(Priority::Low));
    assert_pending!(low.poll());
    let mut high = spawn(l.acquire(Priority::High));
    assert_pending!(high.poll());
    // High keeps arriving at 20 a second, twice what is served; each
    // newcomer is refused at once, none queues.
    let mut refused = 0;
    while !low.is_woken() && refused < 20 {
        tokio::time::advance(Duration::from_millis(50)).await;
        let err = l.acquire(Priority::High).await.unwrap_err();
        assert_eq!(err.reason(), Reason::QueueFull);
        refused += 1;
    }
    // The Low waiter was told as soon as the rates showed High taking it
    // all, not at its own timeout.
    assert_eq!(
        assert_ready_err!(low.poll()).reason(),
        Reason::DeadlineUnmeetable
    );
    assert!(refused < 20, "told only after {refused} refusals");
    drop(held);
    drop(assert_ready_ok!(high.poll()));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn requests_refused_for_their_own_lapsed_deadline_do_not_make_their_class_look_overloaded() {
    let l = one_permit_held_100ms(PriorityLimiter::builder()).await;
    let held = l.try_acquire(Priority::Critical).unwrap();
    let mut high = spawn(l.acquire(Priority::High));
    assert_pending!(high.poll());
    // A client sends High requests whose deadline has passed, 40 a second:
    // four times what is served. Each is refused for its own deadline.
    for _ in 0..40 {
        tokio::time::advance(Duration::from_millis(25)).await;
        let late = with_deadline(Priority::High, Duration::ZERO);
        let err = l.acquire(late).await.unwrap_err();
        assert_eq!(err.reason(), Reason::DeadlineUnmeetable);
    }
    // They are not load: a Normal newcomer queues behind the one real High
    // waiter instead of being kept out.
    let mut normal = spawn(l.acquire(Priority::Normal));
    assert_pending!(normal.poll());
    drop(held);
    drop(assert_ready_ok!(high.poll()));
    drop(assert_ready_ok!(normal.poll()));
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_class_arriving_faster_than_it_is_served_keeps_lower_newcomers_out() {
    let l =
        one_permit_held_100ms(PriorityLimiter::builder().class_queue_cap(Priority::High, 1)).await;
    // High arrives at 20 a second for three quarters of a second: one
    // waits, the rest are refused for load.
    let held = l.try_acquire(Priority::Normal).unwrap();
    let mut high = spawn(l.acquire(Priority::High));
    assert_pending!(high.poll());
    for _ in 0..15 {
        tokio::time::advance(Duration::from_millis(50)).await;
        let err = l.acquire(Priority::High).await.unwrap_err();
        assert_eq!(err.reason(), Reason::QueueFull);
    }
    // The waiter is served; then the permit is free and nobody waits.
    drop(held);
    let permit = assert_ready_ok!(high.poll());
    tokio::time::advance(Duration::from_millis(100)).await;
    drop(permit);
    assert_idle(&l);
    // Past the outrank window, High's refusals alone no longer keep
    // anyone out; its rate does: the free permit is kept for High's next
    // arrival, not given to Normal.
    tokio::time::advance(DEFAULT_OUTRANK_WINDOW).await;
    let err = l.try_acquire(Priority::Normal).unwrap_err();
    assert_eq!(err.reason(), Reason::QueueFull);
    assert_eq!(
        l.acquire(Priority::Normal).await.unwrap_err().reason(),
        Reason::QueueFull
    );
    drop(l.acquire(Priority::High).await.unwrap());
    // After a second without High, its rate is measured afresh and Normal
    // gets in.
    tokio::time::advance(Duration::from_millis(1100)).await;
    drop(l.acquire(Priority::Normal).await.unwrap());
    drop(l.try_acquire(Priority::Normal).unwrap());
    assert_idle(&l);
}

#[tokio::test(start_paused = true)]
async fn a_queued_waiter_gives_up_at_its_deadline_rather_than_its_class_timeout() {
    // Nothing measured: the estimated wait is zero, so any deadline queues.
    let l = limiter(1, 10);
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
    assert_eq!(l.snapshot().counts[Priority::Bulk.index()].timed_out, 1);
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
        .queue_margin(1.0)
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
    let c = |p: Priority| s.counts[p.index()].emergency;
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
    assert_eq!(l.snapshot().counts[Priority::Normal.index()].queue_full, 3);
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
    assert_eq!(s.queued, [0, 1, 0, 0, 0]);

    assert!(l.try_acquire(Priority::Bulk).is_err()); // Bulk queue_full
    let err = assert_ready_err!(spawn(l.acquire(Priority::Low)).poll()); // Low queue_full
    assert_eq!(err.reason(), Reason::QueueFull);
    let mut high = spawn(l.acquire(Priority::High)); // evicts Low
    assert_pending!(high.poll());
    assert_eq!(assert_ready_err!(low.poll()).reason(), Reason::Evicted);
    assert_eq!(l.snapshot().queued, [0, 0, 0, 1, 0]);

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
    let [bulk, low, normal, high, critical] = s.counts;
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
    let n = Priority::Normal.index();
    assert_eq!(s.counts[n].admitted, 11);
    assert_eq!(s.wait_p50[n], Duration::ZERO, "10 of 11 did not wait");
    // hdrhistogram keeps 2 significant digits: allow 2%.
    assert_near(s.wait_p99[n], 2 * SECOND, Duration::from_millis(40));
    assert!(s.wait_p50[n] <= s.wait_p95[n] && s.wait_p95[n] <= s.wait_p99[n]);
    for p in Priority::ALL.into_iter().filter(|&p| p != Priority::Normal) {
        let i = p.index();
        assert_eq!(
            (s.wait_p50[i], s.wait_p95[i], s.wait_p99[i]),
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
    assert_eq!(l.snapshot().queued, [1, 1, 1, 0, 0]);
    assert_eq!(l.snapshot().counts[Priority::Bulk.index()].queue_full, 1);

    // Once the Bulk waiter leaves, another Bulk may take its place.
    drop(bulk);
    let mut bulk2 = spawn(l.acquire(Priority::Bulk));
    assert_pending!(bulk2.poll());
    drop((bulk2, low, normal, held));
    assert_idle(&l);
}

// ---- GenericAdmissionLayer ----

#[tokio::test(start_paused = true)]
async fn a_generic_refusal_is_a_box_error_holding_overloaded() {
    let l = limiter(1, 0);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let svc = GenericAdmissionLayer::new(l.clone()).layer(service_fn(move |job: Job| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, BoxError>(job.1) }
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
    assert_eq!(
        pool.snapshot().counts[Priority::Normal.index()].admitted,
        10
    );
    assert_idle(&pool);
}
