//! With the `metrics` feature, refusals are counted and level changes set
//! the level gauge, with bounded labels.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};
use tower::{Layer, Service, service_fn};
use tower_pressure_core::AsError;
use tower_pressure_core::{PressureLevel, Priority, PriorityOf, Signal};
use tower_pressure_memory::{LevelChange, MemoryHooks, MemoryShedLayer, MemorySignal};

type Values = Arc<Mutex<BTreeMap<String, f64>>>;

/// A recorder keeping the last value of every series, keyed
/// `name{label=value,…}`; counters add up.
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

impl GaugeFn for Slot {
    fn increment(&self, v: f64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v;
    }

    fn decrement(&self, v: f64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() -= v;
    }

    fn set(&self, v: f64) {
        self.1.lock().unwrap().insert(self.0.clone(), v);
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

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.slot(key))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

struct Job(Priority);

impl PriorityOf for Job {
    fn priority(&self) -> Priority {
        self.0
    }
}

#[test]
fn refusals_and_level_changes_are_exported_with_bounded_labels() {
    let recorder = Collect::default();
    let values = recorder.0.clone();
    let memory = Signal::new(MemorySignal::config().build().unwrap());
    memory.set_override(Some(PressureLevel::High));
    let mut svc = MemoryShedLayer::new(memory)
        .refusal(AsError)
        .layer(service_fn(
            |job: Job| async move { Ok::<_, Infallible>(job.0) },
        ));
    let hooks = MemoryHooks::builder().build().unwrap();
    metrics::with_local_recorder(&recorder, || {
        // The decision is taken in `call`; the futures need not be polled.
        drop(svc.call(Job(Priority::Bulk)));
        drop(svc.call(Job(Priority::Low)));
        drop(svc.call(Job(Priority::Low)));
        drop(svc.call(Job(Priority::Normal)));
        hooks.fire(LevelChange::new(PressureLevel::None, PressureLevel::High));
    });
    let v = values.lock().unwrap();
    let get = |k: &str| v.get(k).copied();
    assert_eq!(
        get("tower_pressure_shed_total{layer=memory,priority=bulk,reason=memory}"),
        Some(1.0)
    );
    assert_eq!(
        get("tower_pressure_shed_total{layer=memory,priority=low,reason=memory}"),
        Some(2.0)
    );
    assert_eq!(
        get("tower_pressure_shed_total{layer=memory,priority=normal,reason=memory}"),
        None
    );
    assert_eq!(get("tower_pressure_level{layer=memory}"), Some(3.0));
    for key in v.keys() {
        let labels = key.split_once('{').map_or("", |(_, l)| l);
        for label in labels.trim_end_matches('}').split(',') {
            let name = label.split('=').next().unwrap();
            assert!(
                ["layer", "priority", "reason"].contains(&name),
                "unexpected label in {key}"
            );
        }
    }
}
