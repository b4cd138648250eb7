//! Compile-time checks that the public types can cross threads and tasks.

use tower_pressure_core::*;

fn send_sync<T: Send + Sync>() {}
fn send_sync_static<T: Send + Sync + 'static>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync_static::<Signal>();
    send_sync::<SignalState>();
    send_sync::<SignalConfig>();
    send_sync_static::<EventBus>();
    send_sync_static::<Event>();
    send_sync_static::<Overloaded>();
    send_sync::<Reason>();
    send_sync::<Priority>();
    send_sync::<Cohort>();
    send_sync::<Deadline>();
    send_sync::<PressureLevel>();
    send_sync::<Thresholds>();
    send_sync::<ConfigError>();
    send_sync_static::<ManualSource>();
    send_sync::<Reading>();
    // Errors box into tower's `BoxError`.
    let _: Box<dyn std::error::Error + Send + Sync> =
        Box::new(Overloaded::new(Reason::QueueFull, Priority::Low));
}
