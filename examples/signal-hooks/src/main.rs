//! A memory pressure signal driving hooks, the way a voice-processing service
//! shrinks its caches as memory fills and an operator forces a level in a drill.
//!
//! Run with `cargo run -p signal-hooks`.
//!
//! A `ManualSource` stands in for the real memory source here, so the run is
//! the same on every machine: utilisation climbs to 97 %, wobbles around the
//! `high` threshold (hysteresis keeps the level from flapping), falls back,
//! and finally an operator forces `Critical` with the manual override.

use std::time::Duration;

use tower_pressure_core::{
    Event, EventBus, ManualSource, PressureLevel, Signal, SignalConfig, Thresholds,
};

/// Drives the drill and returns every level the hook saw, in order.
async fn drill(step: Duration) -> Vec<PressureLevel> {
    let source = ManualSource::new(0.30);
    let events = EventBus::default();
    let mut log = events.subscribe();
    let config = SignalConfig::builder("memory")
        .interval(step / 2)
        .ewma_alpha(1.0) // No smoothing: the drill shows thresholds and hysteresis alone.
        .thresholds(Thresholds::default())
        .events(events)
        .build()
        .expect("a valid signal configuration");
    let memory = Signal::spawn_with(source.clone(), config);

    // The hook: what a service does on each level (here it only reports).
    let mut changes = memory.subscribe();
    let hook = tokio::spawn(async move {
        let mut seen = Vec::new();
        while changes.changed().await.is_ok() {
            let state = *changes.borrow_and_update();
            let action = match state.level {
                PressureLevel::None => "caches back to full size",
                PressureLevel::Low => "stop prefetching voice models",
                PressureLevel::Medium => "shrink caches to 80 %",
                PressureLevel::High => "shrink caches to 50 %, refuse bulk work",
                PressureLevel::Critical => "drop caches, admit critical work only",
            };
            println!("hook: memory {:<8} -> {action}", state.level.to_string());
            seen.push(state.level);
        }
        seen
    });

    // Climb, wobble around `high` (0.85 ± 0.01, inside the 0.02 band), fall.
    for u in [0.50, 0.65, 0.80, 0.86, 0.84, 0.86, 0.84, 0.97, 0.70, 0.40] {
        source.set(u);
        tokio::time::sleep(step).await;
    }
    println!("operator: forcing critical for the drill");
    memory.set_override(Some(PressureLevel::Critical));
    tokio::time::sleep(step).await;
    memory.set_override(None);
    tokio::time::sleep(step).await;

    while let Ok(Event::LevelChanged {
        from,
        to,
        utilization,
        ..
    }) = log.try_recv()
    {
        println!("event: {from} -> {to} at {:.0} %", utilization * 100.0);
    }
    drop(memory); // The last handle: the sampler stops and the hook's loop ends.
    hook.await.expect("the hook task does not panic")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let seen = drill(Duration::from_millis(300)).await;
    println!("levels seen by the hook: {seen:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn hook_sees_each_level_once_despite_the_wobble() {
        use PressureLevel::*;
        let seen = drill(Duration::from_millis(300)).await;
        assert_eq!(
            seen,
            [Low, Medium, High, Critical, Low, None, Critical, None]
        );
    }
}
