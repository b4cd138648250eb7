//! Signals: sampling, smoothing, failures, the override and the sampler's life.
//! All timing runs on paused tokio time.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower_pressure_core::{
    Event, EventBus, ManualSource, PressureLevel, Reading, Signal, SignalConfig, Thresholds,
};

const TICK: Duration = Duration::from_millis(100);

fn unsmoothed(name: &str) -> SignalConfig {
    SignalConfig::builder(name)
        .interval(TICK)
        .ewma_alpha(1.0)
        .build()
        .unwrap()
}

/// Lets the sampler take the samples due by now plus `ticks` more.
async fn ticks(n: u32) {
    tokio::time::sleep(TICK * n + Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn sampler_takes_a_sample_at_once_and_on_every_tick() {
    let source = ManualSource::new(0.2);
    let signal = Signal::spawn_with(source.clone(), unsmoothed("memory"));
    ticks(0).await;
    assert_eq!(signal.utilization(), 0.2);
    assert_eq!(signal.level(), PressureLevel::None);
    source.set(0.9);
    ticks(1).await;
    assert_eq!(signal.utilization(), 0.9);
    assert_eq!(signal.level(), PressureLevel::High);
}

#[tokio::test(start_paused = true)]
async fn sampler_with_a_failing_source_keeps_serving_the_last_good_value() {
    let source = ManualSource::new(0.8);
    let signal = Signal::spawn_with(source.clone(), unsmoothed("memory"));
    ticks(0).await;
    assert_eq!(signal.level(), PressureLevel::Medium);

    source.set_failing(true);
    source.set(0.1);
    ticks(3).await;
    assert_eq!(signal.utilization(), 0.8, "the last good reading is kept");
    assert_eq!(signal.level(), PressureLevel::Medium);
    assert!(
        signal.sample_errors() >= 3,
        "every failed tick counts: {}",
        signal.sample_errors()
    );

    source.set_failing(false);
    ticks(1).await;
    assert_eq!(
        signal.utilization(),
        0.1,
        "the sampler kept trying and recovered"
    );
    assert_eq!(signal.level(), PressureLevel::None);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_or_nan_source_is_a_failed_sample_not_a_dead_sampler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let source = move || -> io::Result<Reading> {
        match c.fetch_add(1, Ordering::SeqCst) {
            0 => Ok(Reading::new(0.9)),
            1 => panic!("a buggy source"),
            2 => Ok(Reading::new(f64::NAN)),
            3 => Ok(Reading::from_used(5.0, 0.0)),
            _ => Ok(Reading::new(0.3)),
        }
    };
    let signal = Signal::spawn_with(source, unsmoothed("odd"));
    ticks(0).await;
    assert_eq!(signal.utilization(), 0.9);
    ticks(3).await;
    assert_eq!(
        signal.utilization(),
        0.9,
        "panic and NaN readings are ignored"
    );
    assert_eq!(signal.sample_errors(), 3);
    ticks(1).await;
    assert_eq!(signal.utilization(), 0.3, "the sampler survived the panic");
    assert!(calls.load(Ordering::SeqCst) >= 5);
}

#[test]
fn a_signal_whose_sampler_is_gone_falls_back_instead_of_freezing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let signal = rt.block_on(async {
        let s = Signal::spawn_with(ManualSource::new(0.97), unsmoothed("memory"));
        ticks(1).await;
        assert_eq!(s.level(), PressureLevel::Critical);
        s
    });
    // Shutting the runtime down ends the sampler task: nobody reads the
    // source any more, and Critical would shed for ever.
    drop(rt);
    assert_eq!(signal.level(), PressureLevel::None);
    assert_eq!(signal.state().level, PressureLevel::None);
    assert_eq!(
        signal.utilization(),
        0.97,
        "the last reading stays readable"
    );
}

#[tokio::test(start_paused = true)]
async fn a_source_that_keeps_failing_falls_back_to_the_stale_level_and_recovers() {
    let source = ManualSource::new(0.97);
    let config = SignalConfig::builder("memory")
        .interval(TICK)
        .ewma_alpha(1.0)
        .stale_after(4)
        .stale_level(PressureLevel::Low)
        .build()
        .unwrap();
    let signal = Signal::spawn_with(source.clone(), config);
    ticks(0).await;
    assert_eq!(signal.level(), PressureLevel::Critical);
    assert_eq!(signal.sample_age(), Some(Duration::from_millis(1)));
    source.set_failing(true);
    ticks(3).await;
    assert_eq!(signal.level(), PressureLevel::Critical, "not stale yet");
    ticks(1).await;
    assert_eq!(
        signal.level(),
        PressureLevel::Low,
        "four intervals without a good sample"
    );
    assert!(signal.sample_age().unwrap() >= TICK * 4);
    // An operator's override still wins.
    signal.set_override(Some(PressureLevel::High));
    assert_eq!(signal.level(), PressureLevel::High);
    signal.set_override(None);
    // The source comes back: the readings decide again.
    source.set_failing(false);
    ticks(1).await;
    assert_eq!(signal.level(), PressureLevel::Critical);
    assert!(signal.sample_age().unwrap() <= TICK);
}

#[tokio::test(start_paused = true)]
async fn a_stale_after_of_zero_keeps_the_last_level() {
    let source = ManualSource::new(0.97);
    let config = SignalConfig::builder("memory")
        .interval(TICK)
        .stale_after(0)
        .build()
        .unwrap();
    let signal = Signal::spawn_with(source.clone(), config);
    ticks(0).await;
    source.set_failing(true);
    ticks(20).await;
    assert_eq!(signal.level(), PressureLevel::Critical);
}

#[tokio::test(start_paused = true)]
async fn sampler_stops_when_the_last_handle_drops() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let source = move || {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(Reading::new(0.5))
    };
    let signal = Signal::spawn_with(source, unsmoothed("memory"));
    let clone = signal.clone();
    let mut changes = signal.subscribe();
    ticks(2).await;
    drop(signal);
    ticks(2).await;
    assert!(
        calls.load(Ordering::SeqCst) >= 5,
        "a clone keeps the sampler alive"
    );
    drop(clone);
    // The watch channel closes with the last handle...
    assert!(changes.changed().await.is_err());
    let after_drop = calls.load(Ordering::SeqCst);
    ticks(10).await;
    // ...and the sampler takes no more samples.
    assert_eq!(calls.load(Ordering::SeqCst), after_drop);
}

#[tokio::test(start_paused = true)]
async fn ewma_smooths_readings_with_the_configured_weight() {
    let config = SignalConfig::builder("cpu")
        .ewma_alpha(0.25)
        .build()
        .unwrap();
    let signal = Signal::new(config);
    signal.record(Reading::new(0.0));
    signal.record(Reading::new(1.0));
    assert!((signal.utilization() - 0.25).abs() < 1e-12);
    signal.record(Reading::new(1.0));
    assert!((signal.utilization() - 0.4375).abs() < 1e-12);
}

#[tokio::test(start_paused = true)]
async fn override_forces_a_level_and_clearing_it_returns_to_the_readings() {
    let signal = Signal::new(unsmoothed("memory"));
    signal.record(Reading::new(0.1));
    signal.set_override(Some(PressureLevel::Critical));
    assert_eq!(signal.level(), PressureLevel::Critical);
    assert!(signal.state().overridden);
    signal.record(Reading::new(0.2));
    assert_eq!(
        signal.level(),
        PressureLevel::Critical,
        "readings do not undo an override"
    );
    signal.set_override(None);
    assert_eq!(signal.level(), PressureLevel::None);
    assert!(!signal.state().overridden);
}

#[tokio::test(start_paused = true)]
async fn subscribers_and_the_event_bus_hear_level_changes_only() {
    let bus = EventBus::default();
    let mut events = bus.subscribe();
    let config = SignalConfig::builder("memory")
        .ewma_alpha(1.0)
        .events(bus)
        .build()
        .unwrap();
    let signal = Signal::new(config);
    let mut rx = signal.subscribe();
    signal.record(Reading::new(0.1));
    signal.record(Reading::new(0.2));
    assert!(!rx.has_changed().unwrap(), "no change, no wake-up");
    assert!(events.try_recv().is_err());

    signal.record(Reading::new(0.9));
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().level, PressureLevel::High);
    match events.try_recv().unwrap() {
        Event::LevelChanged {
            resource,
            from,
            to,
            utilization,
            overridden,
        } => {
            assert_eq!(&*resource, "memory");
            assert_eq!((from, to), (PressureLevel::None, PressureLevel::High));
            assert_eq!(utilization, 0.9);
            assert!(!overridden);
        }
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn new_thresholds_apply_at_once_and_are_announced() {
    let bus = EventBus::default();
    let mut events = bus.subscribe();
    let signal = Signal::new(
        SignalConfig::builder("cpu")
            .ewma_alpha(1.0)
            .events(bus)
            .build()
            .unwrap(),
    );
    signal.record(Reading::new(0.7));
    assert_eq!(signal.level(), PressureLevel::Low);
    assert!(matches!(
        events.try_recv().unwrap(),
        Event::LevelChanged { .. }
    ));
    let lower = Thresholds::default().scaled(0.9, 0.4, 0.95);
    signal.set_thresholds(lower);
    assert_eq!(signal.thresholds(), lower);
    assert_eq!(signal.level(), PressureLevel::Medium, "0.7 >= 0.75 * 0.9");
    assert!(matches!(
        events.try_recv().unwrap(),
        Event::ThresholdsTuned { .. }
    ));
    assert!(matches!(
        events.try_recv().unwrap(),
        Event::LevelChanged { .. }
    ));
}

#[test]
fn bad_signal_config_is_an_error_naming_the_field() {
    let err = SignalConfig::builder("m")
        .interval(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "signal.interval");
    for bad in [0.0, -0.5, 1.5, f64::NAN] {
        let err = SignalConfig::builder("m")
            .ewma_alpha(bad)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "signal.ewma_alpha", "alpha {bad}");
    }
}
