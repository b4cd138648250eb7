//! Hooks run once per level change, in their own task, never on the request
//! path.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{Layer, ServiceExt, service_fn};
use tower_pressure_core::{ManualSource, PressureLevel, Priority, Signal};
use tower_pressure_memory::{
    LevelChange, MemoryHooks, MemoryPressure, MemoryShedLayer, MemorySignal,
};

fn manual_signal() -> Signal {
    Signal::new(MemorySignal::config().build().unwrap())
}

/// Lets the hooks task run (paused time: no real waiting).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

type Log = Arc<Mutex<Vec<String>>>;

fn logging_hooks(log: &Log) -> MemoryHooks {
    let (a, b, c) = (log.clone(), log.clone(), log.clone());
    MemoryHooks::builder()
        .on_change(move |ch: LevelChange| a.lock().unwrap().push(format!("{}->{}", ch.from, ch.to)))
        .shrink(move |keep: f64| b.lock().unwrap().push(format!("shrink {keep}")))
        .purge(move || c.lock().unwrap().push("purge".to_owned()))
        .build()
        .unwrap()
}

fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[tokio::test(start_paused = true)]
async fn hooks_fire_once_per_change_not_per_sample() {
    let source = ManualSource::new(0.5);
    let memory = MemorySignal::spawn(source.clone());
    let changes = Arc::new(AtomicUsize::new(0));
    let c = changes.clone();
    let _hooks = MemoryHooks::builder()
        .on_change(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap()
        .spawn(&memory);

    // Twenty samples at the same level: nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(changes.load(Ordering::Relaxed), 0);
    // One rise, sampled twenty times: one call.
    source.set(0.8);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(memory.level(), PressureLevel::Medium);
    assert_eq!(changes.load(Ordering::Relaxed), 1);
    // Readings that move within the level change nothing.
    source.set(0.79);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(changes.load(Ordering::Relaxed), 1);
    source.set(0.9);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(changes.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn caches_shrink_by_the_level_factors_when_the_level_rises_and_purge_follows_from_high() {
    let memory = manual_signal();
    let log = Log::default();
    let _hooks = logging_hooks(&log).spawn(&memory);
    settle().await;
    assert!(take(&log).is_empty());

    memory.set_override(Some(PressureLevel::Low));
    settle().await;
    assert_eq!(take(&log), ["none->low"], "nothing is shrunk at Low");

    memory.set_override(Some(PressureLevel::Medium));
    settle().await;
    assert_eq!(take(&log), ["low->medium", "shrink 0.8"]);

    memory.set_override(Some(PressureLevel::High));
    settle().await;
    assert_eq!(take(&log), ["medium->high", "shrink 0.5", "purge"]);

    memory.set_override(Some(PressureLevel::Critical));
    settle().await;
    assert_eq!(take(&log), ["high->critical", "shrink 0.1", "purge"]);

    // Falling: callbacks only.
    memory.set_override(Some(PressureLevel::Medium));
    settle().await;
    assert_eq!(take(&log), ["critical->medium"]);
    memory.set_override(None);
    settle().await;
    assert_eq!(take(&log), ["medium->none"]);
}

#[tokio::test(start_paused = true)]
async fn a_level_flapping_across_a_threshold_shrinks_the_caches_once_per_episode() {
    let memory = manual_signal();
    let log = Log::default();
    let _hooks = logging_hooks(&log).spawn(&memory);
    // Ten crossings of Medium, a second apart.
    for _ in 0..10 {
        memory.set_override(Some(PressureLevel::Medium));
        settle().await;
        memory.set_override(Some(PressureLevel::Low));
        settle().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let shrinks = take(&log)
        .into_iter()
        .filter(|e| e.starts_with("shrink"))
        .count();
    assert_eq!(shrinks, 1, "one episode, one shrink");
    // A rise above the episode's level is always acted on.
    memory.set_override(Some(PressureLevel::High));
    settle().await;
    assert_eq!(take(&log), ["low->high", "shrink 0.5", "purge"]);
    // Left for longer than rearm_after: a new episode.
    memory.set_override(Some(PressureLevel::Low));
    settle().await;
    tokio::time::sleep(Duration::from_secs(30)).await; // the default rearm_after
    memory.set_override(Some(PressureLevel::Medium));
    settle().await;
    assert_eq!(take(&log), ["high->low", "low->medium", "shrink 0.8"]);
}

#[tokio::test(start_paused = true)]
async fn factors_and_purge_level_are_configurable() {
    let memory = manual_signal();
    let log = Log::default();
    let l = log.clone();
    let _hooks = MemoryHooks::builder()
        .shrink(move |keep: f64| l.lock().unwrap().push(format!("shrink {keep}")))
        .shrink_factor(PressureLevel::Low, 0.9)
        .purge_at(PressureLevel::Critical)
        .build()
        .unwrap()
        .spawn(&memory);
    memory.set_override(Some(PressureLevel::Low));
    settle().await;
    memory.set_override(Some(PressureLevel::High));
    settle().await;
    assert_eq!(take(&log), ["shrink 0.9", "shrink 0.5"]);
}

#[tokio::test(start_paused = true)]
async fn hooks_never_run_on_the_request_path() {
    let memory = manual_signal();
    let in_request = Arc::new(AtomicBool::new(false));
    let ran = Arc::new(AtomicUsize::new(0));
    let (flag, count) = (in_request.clone(), ran.clone());
    let _hooks = MemoryHooks::builder()
        .on_change(move |_| {
            assert!(!flag.load(Ordering::SeqCst), "a hook ran inside a request");
            count.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap()
        .spawn(&memory);
    settle().await;

    let svc = MemoryShedLayer::new(memory.clone()).layer(service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    memory.set_override(Some(PressureLevel::Critical));
    in_request.store(true, Ordering::SeqCst);
    let mut req = Request::new(());
    req.extensions_mut().insert(Priority::Low);
    let res = svc.oneshot(req).await.unwrap();
    in_request.store(false, Ordering::SeqCst);
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "the refusal did not run the hooks"
    );

    settle().await;
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the hooks task did");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_stops_the_hooks() {
    let memory = manual_signal();
    let log = Log::default();
    let hooks = logging_hooks(&log).spawn(&memory);
    settle().await;
    assert!(!hooks.is_finished());
    drop(hooks);
    memory.set_override(Some(PressureLevel::Critical));
    settle().await;
    assert!(take(&log).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_hooks_end_with_the_signal() {
    let memory = manual_signal();
    let hooks = MemoryHooks::builder().build().unwrap().spawn(&memory);
    settle().await;
    drop(memory);
    settle().await;
    assert!(hooks.is_finished());
}

#[tokio::test(start_paused = true)]
async fn hooks_started_under_pressure_run_once_at_start() {
    let memory = manual_signal();
    memory.set_override(Some(PressureLevel::High));
    let log = Log::default();
    let _hooks = logging_hooks(&log).spawn(&memory);
    settle().await;
    assert_eq!(take(&log), ["none->high", "shrink 0.5", "purge"]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_hook_does_not_stop_the_others() {
    let memory = manual_signal();
    let log = Log::default();
    let l = log.clone();
    let _hooks = MemoryHooks::builder()
        .on_change(|_| panic!("boom"))
        .shrink(move |keep: f64| l.lock().unwrap().push(format!("shrink {keep}")))
        .build()
        .unwrap()
        .spawn(&memory);
    memory.set_override(Some(PressureLevel::Medium));
    settle().await;
    memory.set_override(Some(PressureLevel::High));
    settle().await;
    assert_eq!(take(&log), ["shrink 0.8", "shrink 0.5"]);
}

#[test]
fn is_under_pressure_follows_the_level() {
    let memory = manual_signal();
    let pressure = MemoryPressure::new(memory.clone());
    let high = pressure.clone().at(PressureLevel::High);
    assert!(!pressure.is_under_pressure());
    memory.set_override(Some(PressureLevel::Medium));
    assert!(pressure.is_under_pressure());
    assert!(!high.is_under_pressure());
    memory.set_override(Some(PressureLevel::Critical));
    assert!(high.is_under_pressure());
    assert_eq!(high.level(), PressureLevel::Critical);
    let layer = MemoryShedLayer::new(memory.clone());
    assert!(layer.pressure().is_under_pressure());
}
