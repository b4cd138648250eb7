//! With the `metrics` feature, refusals are counted and delays recorded,
//! with bounded labels.
#![cfg(feature = "metrics")]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use tower::{Layer, Service};
use tower_pressure_core::{PressureLevel, Priority};
use tower_pressure_cpu::CpuThrottleLayer;

use support::{Counting, request, signal_at};

type Values = Arc<Mutex<BTreeMap<String, f64>>>;

/// A recorder adding up counters and histogram samples per series, keyed
/// `name{label=value,…}`.
#[derive(Default)]
struct Collect(Values);

struct Slot(String, Values);

impl CounterFn for Slot {
    fn increment(&self, v: u64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v as f64;
    }

    fn absolute(&self, v: u64) {
        self.1.lock().unwrap().insert(self.0.clone(), v as f64);
    }
}

impl HistogramFn for Slot {
    fn record(&self, v: f64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v;
    }
}

impl Collect {
    fn slot(&self, key: &Key) -> Arc<Slot> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Slot(
            format!("{}{{{}}}", key.name(), labels.join(",")),
            self.0.clone(),
        ))
    }
}

impl Recorder for Collect {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.slot(key))
    }
}

#[test]
fn refusals_are_counted_and_delays_recorded() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _in_runtime = rt.enter();
    let recorder = Collect::default();
    let values = recorder.0.clone();
    metrics::with_local_recorder(&recorder, || {
        let mut svc =
            CpuThrottleLayer::with_config(signal_at(PressureLevel::High), support::uncontended())
                .layer(Counting::default());
        // Delayed: Normal at High, 500 ms; twice.
        let _a = svc.call(request(Priority::Normal, None));
        let _b = svc.call(request(Priority::Normal, None));
        // Refused: its deadline is too close.
        let _c = svc.call(request(Priority::Low, Some(Duration::from_millis(10))));
    });
    let v = values.lock().unwrap();
    assert_eq!(
        v.get("tower_pressure_throttle_delay_seconds{layer=cpu,priority=normal}"),
        Some(&1.0)
    );
    assert_eq!(
        v.get("tower_pressure_shed_total{layer=cpu,priority=low,reason=cpu}"),
        Some(&1.0)
    );
    assert_eq!(v.len(), 2, "{v:?}");
}
