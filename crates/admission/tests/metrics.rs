//! With the `metrics` feature, admissions, refusals and queue waits are
//! recorded as they happen (through handles registered when the limiter is
//! built) and the state gauges are set on demand, with bounded labels.
#![cfg(feature = "metrics")]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use support::limiter;
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready_ok};
use tower_pressure_core::Priority;

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

/// A histogram counts its samples.
impl HistogramFn for Slot {
    fn record(&self, _: f64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += 1.0;
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

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.slot(key))
    }
}

#[tokio::test(start_paused = true)]
async fn admissions_refusals_waits_and_state_are_exported_with_bounded_labels() {
    let recorder = Collect::default();
    let values = recorder.0.clone();
    metrics::with_local_recorder(&recorder, || {
        // Built with the recorder installed: it registers its series now.
        let l = limiter(2, 1);
        let a = l.try_acquire(Priority::High).unwrap();
        let _b = l.try_acquire(Priority::Low).unwrap();
        assert!(l.try_acquire(Priority::Bulk).is_err());
        let mut waiter = spawn(l.acquire(Priority::Normal));
        assert_pending!(waiter.poll());
        l.record_metrics();
        drop(a);
        drop(assert_ready_ok!(waiter.poll()));
    });
    let v = values.lock().unwrap();
    let get = |k: &str| v.get(k).copied();
    assert_eq!(
        get("tower_pressure_admitted_total{layer=admission,priority=high}"),
        Some(1.0)
    );
    assert_eq!(
        get("tower_pressure_admitted_total{layer=admission,priority=low}"),
        Some(1.0)
    );
    assert_eq!(
        get("tower_pressure_shed_total{layer=admission,priority=bulk,reason=queue_full}"),
        Some(1.0)
    );
    assert_eq!(get("tower_pressure_in_flight{layer=admission}"), Some(2.0));
    assert_eq!(get("tower_pressure_limit{layer=admission}"), Some(2.0));
    assert_eq!(
        get("tower_pressure_queue_length{layer=admission,priority=normal}"),
        Some(1.0)
    );
    assert_eq!(
        get("tower_pressure_queue_wait_seconds{layer=admission,priority=normal}"),
        Some(1.0),
        "the queued admission's wait"
    );
    assert_eq!(
        get("tower_pressure_admitted_total{layer=admission,priority=normal}"),
        Some(1.0)
    );
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
