//! `Recovery`: emergency on memory `Critical` or an operator's trigger, the
//! stepped ramp back, relapses, events, the handle, and end to end with a
//! real `PriorityLimiter`.

use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tokio::sync::broadcast;
use tower_pressure_adaptive::{Recovery, RecoveryBuilder, RecoveryHandle, RecoveryState};
use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::{
    Event, EventBus, PressureLevel, Priority, Reading, Reason, Signal, SignalConfig,
};

const STEP: Duration = Duration::from_secs(1);
const JUST_BEFORE: Duration = Duration::from_millis(999);
const TICK: Duration = Duration::from_millis(1);

fn limiter(limit: usize) -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(limit)
        .max_queue(16)
        .build()
        .unwrap()
}

/// A memory signal fed by hand, without smoothing, with the default
/// thresholds: High from 0.85, Critical from 0.95.
fn memory() -> Signal {
    let config = SignalConfig::builder("memory").ewma_alpha(1.0).build();
    Signal::new(config.unwrap())
}

fn set(memory: &Signal, utilization: f64) {
    memory.record(Reading::new(utilization));
}

/// Lets the recovery task act on what just happened, without moving time.
async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// A ten-step ramp whose emergency ends at the first reading below
/// `Critical` (no hold: the tests of the hold set their own).
fn ramp(l: &PriorityLimiter) -> RecoveryBuilder {
    Recovery::builder(l.limit_handle())
        .steps(10)
        .step_interval(STEP)
        .critical_hold(Duration::ZERO)
}

/// Triggers and clears through the operator; returns once the ramp began.
async fn emergency_then_clear(r: &RecoveryHandle) {
    r.trigger();
    settle().await;
    r.clear();
    settle().await;
}

fn drain(rx: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

fn limit_steps(from: usize, to: &[usize]) -> Vec<Event> {
    let mut prev = from;
    to.iter()
        .map(|&to| {
            let e = Event::LimitChanged { from: prev, to };
            prev = to;
            e
        })
        .collect()
}

/// A recovery of `l` watching `m`, whose emergency hook counts its runs.
fn watching_with_shrink_count(
    l: &PriorityLimiter,
    m: &Signal,
) -> (RecoveryHandle, Arc<AtomicUsize>) {
    let shrunk = Arc::new(AtomicUsize::new(0));
    let hook = shrunk.clone();
    let r = ramp(l)
        .memory(m.clone())
        .on_emergency(move || {
            hook.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap()
        .spawn();
    (r, shrunk)
}

#[tokio::test(start_paused = true)]
async fn memory_critical_enters_emergency_and_runs_the_shrink_hooks() {
    let l = limiter(100);
    let m = memory();
    let (r, shrunk) = watching_with_shrink_count(&l, &m);
    set(&m, 0.90);
    settle().await;
    assert_eq!(r.state(), RecoveryState::Normal, "High is no emergency");
    assert_eq!(shrunk.load(Ordering::SeqCst), 0);

    set(&m, 0.97);
    settle().await;
    assert_eq!(r.state(), RecoveryState::Emergency { target: 100 });
    assert!(l.limit_handle().emergency());
    assert_eq!(shrunk.load(Ordering::SeqCst), 1);
    let refused = l.try_acquire(Priority::High).unwrap_err();
    assert_eq!(refused.reason(), Reason::Emergency);
    assert!(l.try_acquire(Priority::Critical).is_ok());

    // Staying Critical neither re-enters nor re-runs the hooks.
    set(&m, 0.99);
    settle().await;
    assert_eq!(shrunk.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn an_operator_trigger_enters_emergency_and_clear_starts_the_ramp() {
    let l = limiter(100);
    let r = ramp(&l).build().unwrap().spawn();
    r.trigger();
    settle().await;
    assert_eq!(r.state(), RecoveryState::Emergency { target: 100 });
    assert!(l.limit_handle().emergency());

    r.clear();
    settle().await;
    assert!(!l.limit_handle().emergency());
    assert_eq!(l.limit(), 10);
    assert_eq!(
        r.state(),
        RecoveryState::Ramping {
            step: 1,
            steps: 10,
            limit: 10,
            target: 100
        }
    );
}

#[tokio::test(start_paused = true)]
async fn the_ramp_climbs_in_ten_steps_one_interval_apart() {
    let l = limiter(100);
    let r = ramp(&l).build().unwrap().spawn();
    emergency_then_clear(&r).await;
    let mut seen = vec![l.limit()];
    for step in 2..=10 {
        tokio::time::sleep(JUST_BEFORE).await;
        assert_eq!(l.limit(), seen[seen.len() - 1], "step {step} came early");
        tokio::time::sleep(TICK).await;
        settle().await;
        seen.push(l.limit());
    }
    assert_eq!(seen, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    assert_eq!(r.state(), RecoveryState::Normal);
    tokio::time::sleep(STEP * 10).await;
    assert_eq!(l.limit(), 100);
}

#[tokio::test(start_paused = true)]
async fn a_configured_target_is_where_the_ramp_ends_and_steps_round_up() {
    let l = limiter(100);
    let r = ramp(&l).steps(3).target_limit(10).build().unwrap().spawn();
    emergency_then_clear(&r).await;
    let mut seen = vec![l.limit()];
    for _ in 0..2 {
        tokio::time::sleep(STEP).await;
        settle().await;
        seen.push(l.limit());
    }
    // ⌈10/3⌉, ⌈20/3⌉, 10.
    assert_eq!(seen, [4, 7, 10]);
    assert_eq!(r.state(), RecoveryState::Normal);
}

#[tokio::test(start_paused = true)]
async fn one_step_restores_the_target_as_emergency_ends() {
    let l = limiter(100);
    let r = ramp(&l).steps(1).build().unwrap().spawn();
    emergency_then_clear(&r).await;
    assert_eq!(l.limit(), 100);
    assert_eq!(r.state(), RecoveryState::Normal);
}

#[tokio::test(start_paused = true)]
async fn critical_again_during_the_ramp_returns_to_emergency_with_the_old_target() {
    let l = limiter(100);
    let m = memory();
    let (r, shrunk) = watching_with_shrink_count(&l, &m);
    set(&m, 0.97);
    settle().await;
    set(&m, 0.70);
    settle().await;
    tokio::time::sleep(STEP * 3).await;
    settle().await;
    assert_eq!(l.limit(), 40);

    set(&m, 0.96);
    settle().await;
    assert_eq!(r.state(), RecoveryState::Emergency { target: 100 });
    assert!(l.limit_handle().emergency());
    assert_eq!(shrunk.load(Ordering::SeqCst), 2, "the hooks run again");

    set(&m, 0.70);
    settle().await;
    assert_eq!(l.limit(), 10);
    tokio::time::sleep(STEP * 9).await;
    settle().await;
    assert_eq!(
        l.limit(),
        100,
        "back to the limit before the first emergency"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rise_to_high_during_the_ramp_halves_the_step_and_waits_an_interval() {
    let l = limiter(100);
    let m = memory();
    let r = ramp(&l).memory(m.clone()).build().unwrap().spawn();
    set(&m, 0.97);
    settle().await;
    set(&m, 0.80);
    settle().await;
    tokio::time::sleep(STEP * 5).await;
    settle().await;
    assert_eq!(l.limit(), 60);

    set(&m, 0.87);
    settle().await;
    assert_eq!(l.limit(), 30, "step 6 halved to step 3");
    assert!(!l.limit_handle().emergency(), "High is not an emergency");
    assert!(matches!(r.state(), RecoveryState::Ramping { step: 3, .. }));

    // The climb starts again one full interval after the step down.
    tokio::time::sleep(JUST_BEFORE).await;
    assert_eq!(l.limit(), 30);
    tokio::time::sleep(TICK).await;
    settle().await;
    assert_eq!(l.limit(), 40);

    // Staying High does not step down again; a new rise does.
    tokio::time::sleep(STEP).await;
    settle().await;
    assert_eq!(l.limit(), 50);
    set(&m, 0.70);
    settle().await;
    set(&m, 0.88);
    settle().await;
    assert_eq!(l.limit(), 20);
}

#[tokio::test(start_paused = true)]
async fn memory_staying_high_after_critical_does_not_hold_the_ramp_back() {
    let l = limiter(100);
    let m = memory();
    let r = ramp(&l).memory(m.clone()).build().unwrap().spawn();
    set(&m, 0.97);
    settle().await;
    // Just below Critical's hysteresis band: High.
    set(&m, 0.90);
    settle().await;
    assert_eq!(m.level(), PressureLevel::High);
    assert_eq!(l.limit(), 10);
    tokio::time::sleep(STEP * 9).await;
    settle().await;
    assert_eq!(l.limit(), 100);
    assert_eq!(r.state(), RecoveryState::Normal);
}

#[tokio::test(start_paused = true)]
async fn clearing_the_operator_trigger_does_not_overrule_critical_memory() {
    let l = limiter(100);
    let m = memory();
    let r = ramp(&l).memory(m.clone()).build().unwrap().spawn();
    r.trigger();
    set(&m, 0.97);
    settle().await;
    r.clear();
    settle().await;
    assert_eq!(r.state(), RecoveryState::Emergency { target: 100 });

    // The operator's override of the signal is the way to force it.
    m.set_override(Some(PressureLevel::Medium));
    settle().await;
    assert!(matches!(r.state(), RecoveryState::Ramping { step: 1, .. }));
}

#[tokio::test(start_paused = true)]
async fn a_signal_already_critical_triggers_as_the_task_starts() {
    let l = limiter(100);
    let m = memory();
    set(&m, 0.99);
    let r = ramp(&l).memory(m.clone()).build().unwrap().spawn();
    settle().await;
    assert_eq!(r.state(), RecoveryState::Emergency { target: 100 });
}

#[tokio::test(start_paused = true)]
async fn recovery_announces_entering_leaving_and_every_step() {
    let l = limiter(100);
    let bus = EventBus::new(64);
    let mut rx = bus.subscribe();
    let r = ramp(&l).steps(4).events(bus).build().unwrap().spawn();
    r.trigger();
    settle().await;
    assert_eq!(drain(&mut rx), [Event::EmergencyEntered]);

    r.clear();
    settle().await;
    let mut expected = limit_steps(100, &[25]);
    expected.push(Event::EmergencyLeft);
    assert_eq!(drain(&mut rx), expected);

    tokio::time::sleep(STEP * 3).await;
    settle().await;
    assert_eq!(drain(&mut rx), limit_steps(25, &[50, 75, 100]));
}

#[tokio::test(start_paused = true)]
async fn listeners_see_every_state_in_order() {
    let l = limiter(100);
    let states = Arc::new(Mutex::new(vec![]));
    let log = states.clone();
    let r = ramp(&l)
        .steps(3)
        .on_change(move |s| log.lock().unwrap().push(s))
        .build()
        .unwrap()
        .spawn();
    emergency_then_clear(&r).await;
    tokio::time::sleep(STEP * 2).await;
    settle().await;
    let ramping = |step, limit| RecoveryState::Ramping {
        step,
        steps: 3,
        limit,
        target: 100,
    };
    assert_eq!(
        *states.lock().unwrap(),
        [
            RecoveryState::Emergency { target: 100 },
            ramping(1, 34),
            ramping(2, 67),
            RecoveryState::Normal,
        ]
    );
    assert_eq!(ramping(2, 67).ceiling(), Some(67));
    assert_eq!(RecoveryState::Normal.ceiling(), None);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_hook_neither_stops_the_others_nor_the_recovery() {
    let l = limiter(100);
    let ran = Arc::new(AtomicUsize::new(0));
    let after = ran.clone();
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let r = ramp(&l)
        .steps(2)
        .on_emergency(|| panic!("the cache is gone"))
        .on_emergency(move || {
            after.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap()
        .spawn();
    emergency_then_clear(&r).await;
    panic::set_hook(hook);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(l.limit(), 50);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_mid_ramp_hands_the_limiter_back_at_its_target() {
    let l = limiter(100);
    let m = memory();
    let r = ramp(&l).memory(m.clone()).build().unwrap().spawn();
    let states = r.subscribe();
    emergency_then_clear(&r).await;
    tokio::time::sleep(STEP * 2).await;
    settle().await;
    assert_eq!(l.limit(), 30);

    drop(r);
    assert_eq!(l.limit(), 100, "back at the target at once");
    assert!(!l.limit_handle().emergency());
    settle().await;
    set(&m, 0.99);
    settle().await;
    assert!(!l.limit_handle().emergency(), "nobody watches the signal");
    assert!(states.has_changed().is_err(), "the task is gone");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_in_emergency_does_not_leave_the_service_refusing_all_but_critical() {
    let l = limiter(100);
    let r = ramp(&l).build().unwrap().spawn();
    r.trigger();
    settle().await;
    assert!(l.limit_handle().emergency());
    drop(r);
    assert!(!l.limit_handle().emergency());
    assert_eq!(l.limit(), 100);
}

#[tokio::test(start_paused = true)]
async fn memory_flapping_across_critical_holds_emergency_instead_of_flipping() {
    let l = limiter(100);
    let m = memory();
    let (r, shrunk) = {
        let shrunk = Arc::new(AtomicUsize::new(0));
        let hook = shrunk.clone();
        let r = Recovery::builder(l.limit_handle())
            .memory(m.clone())
            .on_emergency(move || {
                hook.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap()
            .spawn();
        (r, shrunk)
    };
    // Critical and High in turn, a reading every 250 ms, for 5 s, ending on
    // Critical.
    for i in 0..21 {
        set(&m, if i % 2 == 0 { 0.97 } else { 0.90 });
        settle().await;
        assert!(l.limit_handle().emergency(), "reading {i}: {:?}", r.state());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(shrunk.load(Ordering::SeqCst), 1, "the hooks ran once");
    // High for good: emergency ends one step interval (the default hold)
    // after the last Critical reading, and the ramp begins.
    set(&m, 0.90);
    settle().await;
    tokio::time::sleep(JUST_BEFORE).await;
    settle().await;
    assert!(l.limit_handle().emergency());
    tokio::time::sleep(TICK * 2).await;
    settle().await;
    assert!(!l.limit_handle().emergency());
    assert_eq!(l.limit(), 10);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_tells_the_listeners_so_a_frozen_adaptive_limit_resumes() {
    use tower_pressure_adaptive::{AdaptiveLimit, Aimd};
    let l = limiter(50);
    let adaptive = AdaptiveLimit::new(
        Aimd::builder().initial_limit(50).build().unwrap(),
        l.limit_handle(),
    );
    let driver = adaptive.clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let r = ramp(&l)
        .on_change(move |state| {
            log.lock().unwrap().push(state);
            if state.is_normal() {
                driver.resume();
            } else {
                driver.freeze();
            }
        })
        .build()
        .unwrap()
        .spawn();
    emergency_then_clear(&r).await;
    assert!(adaptive.is_frozen());
    drop(r);
    assert!(
        !adaptive.is_frozen(),
        "still frozen after the recovery went away"
    );
    assert_eq!(seen.lock().unwrap().last(), Some(&RecoveryState::Normal));
    assert_eq!(l.limit(), 50);
}

#[test]
fn bad_configuration_is_an_error_naming_the_field() {
    let l = limiter(10);
    let cases = [
        ("recovery.steps", ramp(&l).steps(0)),
        (
            "recovery.step_interval",
            ramp(&l).step_interval(Duration::ZERO),
        ),
        ("recovery.target_limit", ramp(&l).target_limit(0)),
        (
            "recovery.critical_hold",
            ramp(&l).critical_hold(Duration::from_secs(90_000)),
        ),
    ];
    for (field, builder) in cases {
        let err = builder.build().expect_err(field);
        assert_eq!(err.field(), field, "{err}");
    }
}

#[tokio::test(start_paused = true)]
async fn end_to_end_only_critical_is_admitted_in_emergency_and_the_limit_ramps_back() {
    let bus = EventBus::new(64);
    let mut rx = bus.subscribe();
    let l = PriorityLimiter::builder()
        .limit(4)
        .max_queue(8)
        .events(bus)
        .build()
        .unwrap();
    let m = memory();
    let r = Recovery::builder(l.limit_handle())
        .memory(m.clone())
        .steps(4)
        .step_interval(STEP)
        .build()
        .unwrap()
        .spawn();

    // A request in flight and one waiting when memory turns Critical.
    let held = l.acquire(Priority::Normal).await.unwrap();
    let full: Vec<_> = (0..3)
        .map(|_| l.try_acquire(Priority::Normal).unwrap())
        .collect();
    let waiter = tokio::spawn({
        let l = l.clone();
        async move { l.acquire(Priority::High).await.map(drop) }
    });
    settle().await;
    set(&m, 0.97);
    settle().await;

    let waited = waiter.await.unwrap().unwrap_err();
    assert_eq!(waited.reason(), Reason::Emergency, "the waiter is refused");
    for p in [
        Priority::Bulk,
        Priority::Low,
        Priority::Normal,
        Priority::High,
    ] {
        assert_eq!(l.try_acquire(p).unwrap_err().reason(), Reason::Emergency);
    }
    drop(held);
    drop(full);
    let critical: Vec<_> = (0..4)
        .map(|_| l.try_acquire(Priority::Critical).unwrap())
        .collect();
    drop(critical);

    // Memory falls: emergency ends once it has stayed below Critical for the
    // hold (one step interval by default), then the limit comes back one
    // permit per second.
    set(&m, 0.70);
    settle().await;
    assert!(l.limit_handle().emergency(), "held");
    tokio::time::sleep(STEP).await;
    settle().await;
    let mut admitted = vec![];
    for step in 1..=4 {
        let permits: Vec<_> = std::iter::from_fn(|| l.try_acquire(Priority::Normal).ok())
            .take(10)
            .collect();
        admitted.push(permits.len());
        drop(permits);
        if step < 4 {
            tokio::time::sleep(STEP).await;
            settle().await;
        }
    }
    assert_eq!(admitted, [1, 2, 3, 4]);
    assert_eq!(r.state(), RecoveryState::Normal);

    // The limiter announced each change once.
    let changes: Vec<_> = drain(&mut rx)
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::EmergencyEntered | Event::EmergencyLeft | Event::LimitChanged { .. }
            )
        })
        .collect();
    let mut expected = vec![Event::EmergencyEntered];
    expected.extend(limit_steps(4, &[1]));
    expected.push(Event::EmergencyLeft);
    expected.extend(limit_steps(1, &[2, 3, 4]));
    assert_eq!(changes, expected);
}

#[derive(Debug, Clone)]
enum Action {
    Trigger,
    Clear,
    Memory(f64),
    Wait(u64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        1 => Just(Action::Trigger),
        2 => Just(Action::Clear),
        3 => prop::sample::select(vec![0.3, 0.7, 0.8, 0.88, 0.9, 0.97]).prop_map(Action::Memory),
        4 => (0u64..3_000).prop_map(Action::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn emergency_follows_the_trigger_and_the_ramp_never_passes_its_target(
        actions in prop::collection::vec(action(), 1..40),
        steps in 1usize..8,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let l = limiter(100);
            let m = memory();
            let r = ramp(&l).memory(m.clone()).steps(steps).build().unwrap().spawn();
            let mut operator = false;
            for a in actions {
                match a {
                    Action::Trigger => { operator = true; r.trigger(); }
                    Action::Clear => { operator = false; r.clear(); }
                    Action::Memory(u) => set(&m, u),
                    Action::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                }
                settle().await;
                let triggered = operator || m.level() == PressureLevel::Critical;
                let state = r.state();
                prop_assert_eq!(l.limit_handle().emergency(), triggered, "{:?}", state);
                prop_assert!(l.limit() <= 100);
                match state {
                    RecoveryState::Emergency { target } => {
                        prop_assert!(triggered);
                        prop_assert_eq!(target, 100);
                    }
                    RecoveryState::Ramping { step, steps: n, limit, target } => {
                        prop_assert!(!triggered);
                        prop_assert!(step >= 1 && step < n);
                        prop_assert_eq!(target, 100);
                        prop_assert_eq!(limit, (100 * step).div_ceil(n));
                        prop_assert_eq!(l.limit(), limit);
                    }
                    RecoveryState::Normal => {
                        prop_assert!(!triggered);
                        prop_assert_eq!(l.limit(), 100);
                    }
                    _ => prop_assert!(false, "unknown state"),
                }
            }
            // Once the trigger is gone, the ramp always ends at the target.
            r.clear();
            set(&m, 0.3);
            settle().await;
            tokio::time::sleep(STEP * steps as u32).await;
            settle().await;
            prop_assert_eq!(r.state(), RecoveryState::Normal);
            prop_assert_eq!(l.limit(), 100);
            Ok(())
        })?;
    }
}

#[test]
fn public_types_are_send_and_sync_where_they_are_shared() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<RecoveryHandle>();
    send_sync::<RecoveryState>();
    send::<Recovery>();
    send::<RecoveryBuilder>();
    send_sync::<tower_pressure_adaptive::Tuner>();
    send_sync::<tower_pressure_adaptive::TunerHandle>();
    send_sync::<tower_pressure_adaptive::Decision>();
}
