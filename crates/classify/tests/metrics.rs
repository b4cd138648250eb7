//! The classifier counts requests by priority through the `metrics` facade,
//! with only the `layer` and `priority` labels.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tower_pressure_classify::{ClassifyLayer, Rules};

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// A recorder that keeps counters in a map, keyed `name{label=value,…}`.
#[derive(Default)]
struct Collect(Counts);

struct Slot(String, Counts);

impl CounterFn for Slot {
    fn increment(&self, value: u64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += value;
    }

    fn absolute(&self, value: u64) {
        self.1.lock().unwrap().insert(self.0.clone(), value);
    }
}

impl Recorder for Collect {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        Counter::from_arc(Arc::new(Slot(name, self.0.clone())))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn requests_are_counted_by_priority_with_bounded_labels() {
    let recorder = Collect::default();
    let counts = recorder.0.clone();
    let layer = ClassifyLayer::new(Rules::voice_service());
    metrics::with_local_recorder(&recorder, || {
        for path in [
            "/health",
            "/voice/a",
            "/voice/b",
            "/users/42/orders/7",
            "/user/x",
        ] {
            let mut req = http::Request::get(path).body(()).unwrap();
            layer.classify(&mut req);
        }
    });
    let counts = counts.lock().unwrap();
    let get = |p: &str| {
        counts
            .get(&format!(
                "tower_pressure_classified_total{{layer=classify,priority={p}}}"
            ))
            .copied()
    };
    assert_eq!(get("critical"), Some(1));
    assert_eq!(get("high"), Some(2));
    assert_eq!(get("normal"), Some(2));
    assert_eq!(
        counts.len(),
        3,
        "one series per priority, never per path: {counts:?}"
    );
}
