//! The score-trend tuner: tightening and relaxing on a trend, bounds, the
//! cooldown, operator changes, events, configuration errors, and the timer
//! task.

use std::panic;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use tower_pressure_adaptive::{
    Change, PerformanceSample, ScoreWeights, Trend, Tuner, TunerBuilder,
};
use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::{
    Event, EventBus, LimitHandle, PressureLevel, Signal, SignalConfig, Thresholds,
};

const LEVELS: [PressureLevel; 4] = [
    PressureLevel::Low,
    PressureLevel::Medium,
    PressureLevel::High,
    PressureLevel::Critical,
];

fn signal(name: &str, thresholds: Thresholds, bus: Option<&EventBus>) -> Signal {
    let mut config = SignalConfig::builder(name).thresholds(thresholds);
    if let Some(bus) = bus {
        config = config.events(bus.clone());
    }
    Signal::new(config.build().unwrap())
}

fn cpu_thresholds() -> Thresholds {
    Thresholds::builder()
        .low(0.5)
        .medium(0.6)
        .high(0.7)
        .critical(0.8)
        .build()
        .unwrap()
}

fn queue(max_queue: usize) -> LimitHandle {
    PriorityLimiter::builder()
        .limit(10)
        .max_queue(max_queue)
        .build()
        .unwrap()
        .limit_handle()
}

/// A sample whose score depends on its latency alone.
fn at(latency_ms: u64) -> PerformanceSample {
    PerformanceSample {
        latency: Duration::from_millis(latency_ms),
        throughput: 100.0,
        error_rate: 0.0,
        memory: 0.5,
        cpu: 0.5,
    }
}

struct Setup {
    memory: Signal,
    cpu: Signal,
    queue: LimitHandle,
}

fn setup() -> (Setup, TunerBuilder) {
    let s = Setup {
        memory: signal("memory", Thresholds::default(), None),
        cpu: signal("cpu", cpu_thresholds(), None),
        queue: queue(1000),
    };
    let builder = Tuner::builder()
        .memory(s.memory.clone())
        .cpu(s.cpu.clone())
        .queue(s.queue.clone());
    (s, builder)
}

fn feed(tuner: &mut Tuner, latency_ms: u64, n: usize) {
    for _ in 0..n {
        tuner.observe(at(latency_ms));
    }
}

/// `base` scaled by `factor` within the bounds, its Critical threshold kept
/// (the tuner never lowers Critical below where tuning began).
fn tightened(base: Thresholds, factor: f64, min: f64, max: f64) -> Thresholds {
    let scaled = base.scaled(factor, min, max);
    Thresholds::builder()
        .low(scaled.threshold(PressureLevel::Low))
        .medium(scaled.threshold(PressureLevel::Medium))
        .high(scaled.threshold(PressureLevel::High))
        .critical(base.threshold(PressureLevel::Critical))
        .hysteresis(base.hysteresis())
        .build()
        .unwrap()
}

#[test]
fn a_deteriorating_trend_tightens_thresholds_and_queue_by_ten_percent() {
    let (s, builder) = setup();
    let mut tuner = builder.build().unwrap();
    feed(&mut tuner, 20, 5);
    feed(&mut tuner, 200, 4);
    let d = tuner.observe(at(200));

    assert_eq!(d.trend, Trend::Deteriorating);
    assert_eq!(d.factor, Some(0.9));
    assert!(d.difference.unwrap() < -0.05);
    let memory = tightened(Thresholds::default(), 0.9, 0.5, 0.95);
    let cpu = tightened(cpu_thresholds(), 0.9, 0.4, 0.9);
    assert_eq!(s.memory.thresholds(), memory);
    assert_eq!(s.cpu.thresholds(), cpu);
    assert_eq!(s.queue.max_queue(), 900);
    assert_eq!(
        d.memory,
        Some(Change {
            from: Thresholds::default(),
            to: memory
        })
    );
    assert_eq!(
        d.cpu,
        Some(Change {
            from: cpu_thresholds(),
            to: cpu
        })
    );
    assert_eq!(
        d.queue,
        Some(Change {
            from: 1000,
            to: 900
        })
    );
    assert!((s.memory.thresholds().threshold(PressureLevel::High) - 0.765).abs() < 1e-9);
}

#[test]
fn an_improving_trend_relaxes_thresholds_and_queue_by_five_percent() {
    let (s, builder) = setup();
    let mut tuner = builder.build().unwrap();
    feed(&mut tuner, 200, 5);
    feed(&mut tuner, 20, 4);
    let d = tuner.observe(at(20));

    assert_eq!(d.trend, Trend::Improving);
    assert_eq!(d.factor, Some(1.05));
    assert_eq!(
        s.memory.thresholds(),
        Thresholds::default().scaled(1.05, 0.5, 0.95)
    );
    // The critical threshold was at the upper bound already and stays there.
    assert_eq!(
        s.memory.thresholds().threshold(PressureLevel::Critical),
        0.95
    );
    assert_eq!(s.cpu.thresholds(), cpu_thresholds().scaled(1.05, 0.4, 0.9));
    assert_eq!(s.queue.max_queue(), 1050);
}

#[test]
fn fewer_than_two_windows_of_snapshots_change_nothing() {
    let (s, builder) = setup();
    let mut tuner = builder.build().unwrap();
    for i in 0..9 {
        // As bad a trend as there can be: fast, then ever slower.
        let d = tuner.observe(at(if i < 5 { 1 } else { 10_000 }));
        assert_eq!(d.trend, Trend::Collecting, "snapshot {i}");
        assert!(!d.changed());
        assert_eq!(d.difference, None);
    }
    assert_eq!(tuner.history().len(), 9);
    assert_eq!(s.memory.thresholds(), Thresholds::default());
    assert_eq!(s.cpu.thresholds(), cpu_thresholds());
    assert_eq!(s.queue.max_queue(), 1000);
    // The tenth snapshot completes the two windows.
    assert_eq!(tuner.observe(at(10_000)).trend, Trend::Deteriorating);
}

#[test]
fn a_stable_score_changes_nothing() {
    let (s, builder) = setup();
    let mut tuner = builder.build().unwrap();
    for i in 0..50 {
        // Latency wobbles by a few percent: far below the trend threshold.
        let d = tuner.observe(at(100 + (i % 3) * 5));
        assert!(!d.changed());
    }
    assert_eq!(tuner.observe(at(100)).trend, Trend::Stable);
    assert_eq!(s.memory.thresholds(), Thresholds::default());
    assert_eq!(s.queue.max_queue(), 1000);
}

#[test]
fn after_a_change_the_tuner_waits_for_a_window_measured_under_it() {
    let (s, builder) = setup();
    let mut tuner = builder.build().unwrap();
    feed(&mut tuner, 20, 5);
    feed(&mut tuner, 200, 5);
    assert_eq!(s.queue.max_queue(), 900);
    // The trend is still there, but the next four snapshots are held.
    for _ in 0..4 {
        let d = tuner.observe(at(2_000));
        assert_eq!(d.trend, Trend::Deteriorating);
        assert!(d.cooling_down);
        assert!(!d.changed());
    }
    // The fifth: the recent window is all post-change, and still worse.
    let d = tuner.observe(at(2_000));
    assert!(!d.cooling_down);
    assert_eq!(d.queue, Some(Change { from: 900, to: 810 }));
}

#[test]
fn without_a_cooldown_the_tuner_acts_on_every_snapshot_of_a_trend() {
    let (s, builder) = setup();
    let mut tuner = builder.cooldown(0).build().unwrap();
    feed(&mut tuner, 20, 5);
    feed(&mut tuner, 200, 7);
    // Tightened at snapshots 10, 11 and 12: 1000 × 0.9³.
    assert_eq!(s.queue.max_queue(), 729);
}

#[test]
fn a_change_by_an_operator_becomes_the_new_base() {
    let (s, builder) = setup();
    let mut tuner = builder.cooldown(0).build().unwrap();
    feed(&mut tuner, 20, 5);
    feed(&mut tuner, 200, 5);
    let operator = Thresholds::builder()
        .low(0.7)
        .medium(0.8)
        .high(0.9)
        .critical(0.9)
        .build()
        .unwrap();
    s.memory.set_thresholds(operator);
    s.queue.set_max_queue(500);
    let d = tuner.observe(at(200));
    assert_eq!(d.trend, Trend::Deteriorating);
    assert_eq!(d.memory.unwrap().from, operator);
    assert_eq!(s.memory.thresholds(), tightened(operator, 0.9, 0.5, 0.95));
    assert_eq!(s.queue.max_queue(), 450);
}

#[test]
fn the_first_relaxing_step_after_a_long_tightening_is_felt_at_once() {
    let memory = signal("memory", Thresholds::default(), None);
    let q = queue(1000);
    let mut tuner = Tuner::builder()
        .memory(memory.clone())
        .queue(q.clone())
        .queue_bounds(200, 10_000)
        .tighten_factor(0.5)
        .cooldown(0)
        .build()
        .unwrap();
    // A step in latency: halvings in a row while the windows differ (the
    // tenth snapshot would compare two windows of 10 s: stable).
    feed(&mut tuner, 1, 5);
    feed(&mut tuner, 10_000, 9);
    let floor = memory.thresholds();
    assert!(
        LEVELS[..3].iter().all(|&l| floor.threshold(l) == 0.5),
        "{floor:?}"
    );
    assert_eq!(
        floor.threshold(PressureLevel::Critical),
        0.95,
        "Critical is kept"
    );
    assert_eq!(q.max_queue(), 200);

    // The first good snapshot is an improving trend, and it shows at once.
    let d = tuner.observe(at(1));
    assert_eq!(d.trend, Trend::Improving);
    let t = memory.thresholds();
    assert!(t.threshold(PressureLevel::High) > 0.5, "{t:?}");
    assert_eq!(d.queue, Some(Change { from: 200, to: 210 }));
}

#[test]
fn a_tightening_decays_back_once_the_score_is_stable_and_critical_never_falls() {
    let (s, builder) = setup();
    let mut tuner = builder.build().unwrap();
    // Latency steps up: a tightening.
    feed(&mut tuner, 20, 10);
    feed(&mut tuner, 1_600, 6);
    let tight = s.memory.thresholds();
    assert!(
        tight.threshold(PressureLevel::High) < 0.85,
        "tightened: {tight:?}"
    );
    assert_eq!(tight.threshold(PressureLevel::Critical), 0.95);
    // Then the latency stays where it is: the score is stable, and each
    // stable decision outside the cooldown steps back towards the defaults.
    feed(&mut tuner, 1_600, 200);
    assert_eq!(s.memory.thresholds(), Thresholds::default());
    assert_eq!(s.cpu.thresholds(), cpu_thresholds());
    assert_eq!(s.queue.max_queue(), 1000);
}

#[test]
fn an_oscillating_score_does_not_ratchet_the_thresholds_to_their_floor() {
    let (s, builder) = setup();
    let mut tuner = builder.build().unwrap();
    // Good and bad stretches in turn, for a long time, then calm.
    for _ in 0..20 {
        feed(&mut tuner, 20, 10);
        feed(&mut tuner, 400, 10);
    }
    feed(&mut tuner, 20, 200);
    let t = s.memory.thresholds();
    assert_eq!(t, Thresholds::default(), "ratcheted: {t:?}");
}

#[test]
fn a_small_queue_grows_when_relaxed_step_after_step() {
    let q = queue(10);
    let mut tuner = Tuner::builder()
        .queue(q.clone())
        .cooldown(0)
        .build()
        .unwrap();
    feed(&mut tuner, 2_000, 10);
    let mut seen = vec![];
    for _ in 0..9 {
        tuner.observe(at(1));
        seen.push(q.max_queue());
    }
    // 10 × 1.05ⁿ, rounded: rounding down at each step would never leave 10.
    assert_eq!(seen.first(), Some(&11));
    assert_eq!(seen.last(), Some(&16), "{seen:?}");
}

#[test]
fn a_sample_with_nan_in_a_scored_field_is_rejected_and_not_kept() {
    let (_s, builder) = setup();
    let mut tuner = builder.build().unwrap();
    let mut bad = at(20);
    bad.memory = f64::NAN;
    let d = tuner.observe(bad);
    assert_eq!(d.trend, Trend::Rejected);
    assert_eq!(d.score, None);
    assert_eq!(tuner.history().len(), 0);

    // A field with weight 0 is not read, NaN or not.
    let weights = ScoreWeights {
        memory: 0.0,
        ..ScoreWeights::default()
    };
    let mut tuner = Tuner::builder().weights(weights).build().unwrap();
    let d = tuner.observe(bad);
    assert_eq!(d.trend, Trend::Collecting);
    assert!(d.score.is_some_and(|s| (0.0..=1.0).contains(&s)));
}

#[test]
fn out_of_range_sample_values_are_clamped_not_trusted() {
    let mut tuner = Tuner::builder().build().unwrap();
    let wild = PerformanceSample {
        latency: Duration::MAX,
        throughput: -5.0,
        error_rate: 7.0,
        memory: -1.0,
        cpu: f64::INFINITY,
    };
    let score = tuner.observe(wild).score.unwrap();
    assert!((0.0..=1.0).contains(&score), "{score}");
}

#[test]
fn queue_changes_are_announced_and_the_signals_announce_their_thresholds() {
    let bus = EventBus::new(64);
    let mut rx = bus.subscribe();
    let memory = signal("memory", Thresholds::default(), Some(&bus));
    let q = queue(1000);
    let mut tuner = Tuner::builder()
        .memory(memory.clone())
        .queue(q.clone())
        .events(bus.clone())
        .build()
        .unwrap();
    feed(&mut tuner, 20, 5);
    feed(&mut tuner, 200, 5);

    let mut events = vec![];
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert_eq!(
        events,
        [
            Event::ThresholdsTuned {
                resource: "memory".into(),
                from: Thresholds::default(),
                to: tightened(Thresholds::default(), 0.9, 0.5, 0.95),
            },
            Event::MaxQueueChanged {
                from: 1000,
                to: 900
            },
        ]
    );
}

#[test]
fn bad_configuration_is_an_error_naming_the_field() {
    let cases: Vec<(&str, TunerBuilder)> = vec![
        ("tuner.interval", Tuner::builder().interval(Duration::ZERO)),
        ("tuner.window", Tuner::builder().window(0)),
        (
            "tuner.latency_target",
            Tuner::builder().latency_target(Duration::ZERO),
        ),
        (
            "tuner.trend_threshold",
            Tuner::builder().trend_threshold(f64::NAN),
        ),
        (
            "tuner.trend_threshold",
            Tuner::builder().trend_threshold(-0.1),
        ),
        ("tuner.tighten_factor", Tuner::builder().tighten_factor(0.0)),
        (
            "tuner.tighten_factor",
            Tuner::builder().tighten_factor(-0.9),
        ),
        (
            "tuner.tighten_factor",
            Tuner::builder().tighten_factor(f64::NAN),
        ),
        ("tuner.tighten_factor", Tuner::builder().tighten_factor(1.1)),
        ("tuner.relax_factor", Tuner::builder().relax_factor(0.0)),
        ("tuner.relax_factor", Tuner::builder().relax_factor(0.95)),
        (
            "tuner.relax_factor",
            Tuner::builder().relax_factor(f64::NAN),
        ),
        (
            "tuner.relax_factor",
            Tuner::builder().relax_factor(f64::INFINITY),
        ),
        (
            "tuner.weights.latency",
            Tuner::builder().weights(ScoreWeights {
                latency: -1.0,
                ..ScoreWeights::default()
            }),
        ),
        (
            "tuner.weights.cpu",
            Tuner::builder().weights(ScoreWeights {
                cpu: f64::NAN,
                ..ScoreWeights::default()
            }),
        ),
        (
            "tuner.weights",
            Tuner::builder().weights(ScoreWeights {
                latency: 0.0,
                throughput: 0.0,
                errors: 0.0,
                memory: 0.0,
                cpu: 0.0,
            }),
        ),
        (
            "tuner.memory_bounds",
            Tuner::builder().memory_bounds(0.9, 0.5),
        ),
        (
            "tuner.memory_bounds",
            Tuner::builder().memory_bounds(0.5, 1.5),
        ),
        (
            "tuner.cpu_bounds",
            Tuner::builder().cpu_bounds(f64::NAN, 0.9),
        ),
        ("tuner.queue_bounds", Tuner::builder().queue_bounds(100, 10)),
        ("tuner.queue_bounds", Tuner::builder().queue_bounds(0, 0)),
    ];
    for (field, builder) in cases {
        let err = builder.build().expect_err(field);
        assert_eq!(err.field(), field, "{err}");
    }
    assert!(
        Tuner::builder()
            .tighten_factor(1.0)
            .relax_factor(1.0)
            .build()
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn the_spawned_tuner_pulls_a_sample_every_interval_until_its_handle_drops() {
    let (s, builder) = setup();
    let tuner = builder.interval(Duration::from_secs(10)).build().unwrap();
    let pulls = Arc::new(AtomicUsize::new(0));
    let counter = pulls.clone();
    let handle = tuner.spawn(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Some(at(if n < 5 { 20 } else { 200 }))
    });
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(
        pulls.load(Ordering::SeqCst),
        0,
        "the first pull is one interval in"
    );
    assert!(handle.last_decision().is_none());

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pulls.load(Ordering::SeqCst), 1);
    assert_eq!(handle.last_decision().unwrap().trend, Trend::Collecting);

    tokio::time::sleep(Duration::from_secs(90)).await;
    assert_eq!(pulls.load(Ordering::SeqCst), 10);
    assert_eq!(handle.last_decision().unwrap().trend, Trend::Deteriorating);
    assert_eq!(s.queue.max_queue(), 900);

    drop(handle);
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(pulls.load(Ordering::SeqCst), 10);
}

#[tokio::test(start_paused = true)]
async fn a_source_that_fails_or_panics_skips_its_interval() {
    let tuner = Tuner::builder()
        .interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let pulls = Arc::new(AtomicUsize::new(0));
    let counter = pulls.clone();
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let handle = tuner.spawn(move || match counter.fetch_add(1, Ordering::SeqCst) {
        0 => None,
        1 => panic!("the source broke"),
        _ => Some(at(20)),
    });
    tokio::time::sleep(Duration::from_millis(3500)).await;
    panic::set_hook(hook);
    assert_eq!(pulls.load(Ordering::SeqCst), 3);
    // Only the third pull produced a snapshot.
    let decision = handle.last_decision().unwrap();
    assert_eq!(decision.trend, Trend::Collecting);
    let mut rx = handle.subscribe();
    rx.mark_unchanged();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(rx.has_changed().unwrap(), "still running");
}

proptest! {
    #[test]
    fn thresholds_and_queue_stay_within_bounds_and_move_with_the_trend(
        samples in prop::collection::vec(
            (0u64..2_000, 0.0..=1.0f64, 0.0..=1.0f64, 0.0..=1.0f64, 0.0..1_000.0f64),
            1..120,
        ),
        window in 1usize..6,
        cooldown in 0usize..6,
        initial_queue in prop_oneof![Just(0usize), 5usize..=2_000],
    ) {
        let memory = signal("memory", Thresholds::default(), None);
        let cpu = signal("cpu", cpu_thresholds(), None);
        let q = queue(initial_queue);
        // The thresholds tuning began at, told apart by their lower bound.
        let base_of = |min: f64| if min == 0.5 { Thresholds::default() } else { cpu_thresholds() };
        let mut tuner = Tuner::builder()
            .memory(memory.clone())
            .cpu(cpu.clone())
            .queue(q.clone())
            .queue_bounds(5, 2_000)
            .window(window)
            .cooldown(cooldown)
            .build()
            .unwrap();
        for (latency, error_rate, mem, cpu_use, throughput) in samples {
            let d = tuner.observe(PerformanceSample {
                latency: Duration::from_millis(latency),
                throughput,
                error_rate,
                memory: mem,
                cpu: cpu_use,
            });
            for (change, (min, max)) in [(d.memory, (0.5, 0.95)), (d.cpu, (0.4, 0.9))] {
                let Some(Change { from, to }) = change else { continue };
                let mut last = 0.0;
                for level in LEVELS {
                    let t = to.threshold(level);
                    prop_assert!((min..=max).contains(&t), "{t} outside {min}..={max}");
                    prop_assert!(t >= last, "not monotonic: {to:?}");
                    last = t;
                    let before = from.threshold(level);
                    match d.trend {
                        Trend::Deteriorating => prop_assert!(t <= before),
                        Trend::Improving => prop_assert!(t >= before),
                        // Back towards where tuning began, never past it.
                        Trend::Stable if d.decayed => {
                            let base = base_of(min).threshold(level);
                            prop_assert!((t - base).abs() <= (before - base).abs() + 1e-12);
                        }
                        other => prop_assert!(false, "changed on {other:?}"),
                    }
                }
                let critical = base_of(min).threshold(PressureLevel::Critical);
                prop_assert!(to.threshold(PressureLevel::Critical) >= critical, "{to:?}");
            }
            if let Some(Change { from, to }) = d.queue {
                prop_assert!((5..=2_000).contains(&to), "queue {to}");
                match d.trend {
                    Trend::Deteriorating => prop_assert!(to < from),
                    Trend::Improving => prop_assert!(to > from),
                    Trend::Stable if d.decayed => {
                        let base = initial_queue.clamp(5, 2_000);
                        prop_assert!(to.abs_diff(base) < from.abs_diff(base), "{from} -> {to}");
                    }
                    other => prop_assert!(false, "changed on {other:?}"),
                }
            }
            if initial_queue == 0 {
                prop_assert_eq!(q.max_queue(), 0, "no queue is created");
            }
        }
    }
}
