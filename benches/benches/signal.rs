//! The hot-path reads of the core crate against their baseline: reading a
//! `Signal`'s level against a bare atomic load, and mapping a reading to a
//! level.

use std::hint::black_box;
use std::sync::atomic::{AtomicU8, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use tower_pressure_core::{PressureLevel, Priority, Reading, Signal, SignalConfig, Thresholds};

fn signal_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("signal_read");
    let baseline = AtomicU8::new(3);
    g.bench_function("baseline_atomic_load", |b| {
        b.iter(|| black_box(&baseline).load(Ordering::Acquire))
    });
    let signal = Signal::new(
        SignalConfig::builder("bench")
            .build()
            .expect("valid config"),
    );
    signal.record(Reading::new(0.9));
    g.bench_function("signal_level", |b| b.iter(|| black_box(&signal).level()));
    g.finish();
}

fn classify_reading(c: &mut Criterion) {
    let t = Thresholds::default();
    c.bench_function("thresholds_level", |b| {
        b.iter(|| t.level(black_box(0.8), black_box(PressureLevel::High)))
    });
    c.bench_function("priority_parse", |b| {
        b.iter(|| black_box("Critical").parse::<Priority>())
    });
}

criterion_group!(benches, signal_read, classify_reading);
criterion_main!(benches);
