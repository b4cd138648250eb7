//! The CPU signal: the moving mean of the window, the CPU levels, and
//! `CpuSource::runtime`.

use std::io;
use std::time::Duration;

use tower_pressure_core::{ManualSource, PressureLevel, Reading, Source};
use tower_pressure_cpu::{CpuSignal, CpuSignalConfig, CpuSource, Windowed};

#[test]
fn the_window_reports_the_mean_of_the_last_samples() {
    let source = ManualSource::new(0.0);
    let mut w = Windowed::new(source.clone(), 3);
    let mut means = Vec::new();
    for u in [0.3, 0.6, 0.9, 0.9, 0.9] {
        source.set(u);
        means.push(w.sample().unwrap().utilization());
    }
    let want = [0.3, 0.45, 0.6, 0.8, 0.9];
    for (got, want) in means.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "{means:?}");
    }
}

#[test]
fn failed_samples_pass_through_and_stay_out_of_the_window() {
    let source = ManualSource::new(0.8);
    let mut w = Windowed::new(source.clone(), 2);
    assert_eq!(w.sample().unwrap().utilization(), 0.8);
    source.set_failing(true);
    assert!(w.sample().is_err());
    source.set_failing(false);
    source.set(0.4);
    assert!((w.sample().unwrap().utilization() - 0.6).abs() < 1e-12);
}

#[test]
fn the_window_keeps_the_figures_in_cores() {
    let mut n = 0.0;
    let cores = move || -> io::Result<Reading> {
        n += 1.0;
        Ok(Reading::from_used(n, 4.0))
    };
    let mut w = Windowed::new(cores, 2);
    w.sample().unwrap();
    let r = w.sample().unwrap();
    // Mean utilisation (0.25 + 0.5) / 2, in cores of the latest capacity.
    assert_eq!(r.capacity(), Some(4.0));
    assert!((r.used().unwrap() - 1.5).abs() < 1e-12);
    assert!((r.utilization() - 0.375).abs() < 1e-12);
}

#[tokio::test(start_paused = true)]
async fn the_cpu_levels_follow_start_aggressive_and_emergency_with_hysteresis() {
    let source = ManualSource::new(0.0);
    let config = CpuSignalConfig::builder().window(1).build().unwrap();
    let cpu = CpuSignal::spawn_with(source.clone(), &config);
    // 60 ms: at least one sample (every 50 ms) between setting and checking.
    let tick = || tokio::time::sleep(Duration::from_millis(60));
    for (u, level) in [
        (0.49, PressureLevel::None),
        (0.50, PressureLevel::Low),
        (0.70, PressureLevel::Medium),
        (0.85, PressureLevel::High),
        (0.95, PressureLevel::Critical),
        // Falling: within the 0.02 band below emergency, still Critical.
        (0.94, PressureLevel::Critical),
        (0.92, PressureLevel::High),
        (0.69, PressureLevel::Medium),
        (0.67, PressureLevel::Low),
    ] {
        source.set(u);
        tick().await;
        assert_eq!(cpu.level(), level, "at {u}");
    }
}

#[tokio::test]
async fn the_runtime_source_leads_with_auto_as_fallbacks() {
    let s = CpuSource::runtime().unwrap();
    assert_eq!(s.active(), "tokio-runtime-busy");
    assert_eq!(format!("{s:?}").matches("tokio-runtime-busy").count(), 1);
}

#[test]
fn the_runtime_source_needs_a_runtime() {
    assert_eq!(
        CpuSource::runtime().unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn highest_reports_the_more_pressed_source_and_survives_one_failing() {
    use tower_pressure_cpu::Highest;
    let (a, b) = (ManualSource::new(0.2), ManualSource::new(0.6));
    let mut h = Highest::new(a.clone(), b.clone());
    assert_eq!(h.sample().unwrap().utilization(), 0.6);
    a.set(0.95);
    assert_eq!(h.sample().unwrap().utilization(), 0.95);
    a.set(f64::NAN);
    assert_eq!(h.sample().unwrap().utilization(), 0.6);
    b.set_failing(true);
    assert!(h.sample().is_err());
    a.set(0.3);
    assert_eq!(h.sample().unwrap().utilization(), 0.3);
    a.set_failing(true);
    assert!(h.sample().is_err());
    assert_eq!(h.name(), "highest(manual, manual)");
}
