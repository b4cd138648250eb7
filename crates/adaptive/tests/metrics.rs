//! With the `metrics` feature, every limit the driver writes is the
//! `tower_pressure_limit{layer="adaptive"}` gauge.
#![cfg(feature = "metrics")]

use std::sync::{Arc, Mutex};

use metrics::{
    Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tower_pressure_adaptive::{AdaptiveLimit, Aimd};
use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::metrics as m;

type Sets = Arc<Mutex<Vec<(String, f64)>>>;

/// Keeps every gauge value set, as `name{label=value}`.
#[derive(Default)]
struct Gauges(Sets);

struct Slot(String, Sets);

impl GaugeFn for Slot {
    fn increment(&self, _: f64) {}

    fn decrement(&self, _: f64) {}

    fn set(&self, v: f64) {
        self.1.lock().unwrap().push((self.0.clone(), v));
    }
}

impl Recorder for Gauges {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        Gauge::from_arc(Arc::new(Slot(name, self.0.clone())))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn every_limit_written_is_the_adaptive_limit_gauge() {
    let recorder = Gauges::default();
    let sets = recorder.0.clone();
    metrics::with_local_recorder(&recorder, || {
        let limiter = PriorityLimiter::builder().limit(1).build().unwrap();
        let aimd = Aimd::builder().initial_limit(20).build().unwrap();
        let adaptive = AdaptiveLimit::builder(aimd, limiter.limit_handle())
            .start_at_limiter(false)
            .build()
            .unwrap();
        adaptive.pin(7);
        adaptive.unpin();
    });
    let name = format!("{}{{{}={}}}", m::LIMIT, m::LABEL_LAYER, m::LAYER_ADAPTIVE);
    let sets = sets.lock().unwrap().clone();
    assert_eq!(
        sets,
        vec![(name.clone(), 20.0), (name.clone(), 7.0), (name, 20.0)]
    );
}
