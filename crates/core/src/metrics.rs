//! Metric names and labels used with the `metrics` facade, in one place.
//!
//! Labels are only [`LABEL_LAYER`], [`LABEL_PRIORITY`] and [`LABEL_REASON`],
//! whose values come from small fixed sets ([`Priority::as_str`],
//! [`Reason::as_label`], the layer names below). Never a label per request
//! id, path or user: that would make the metric cardinality unbounded.
//!
//! [`Priority::as_str`]: crate::Priority::as_str
//! [`Reason::as_label`]: crate::Reason::as_label

/// Label: which layer (`"admission"`, `"memory"`, `"cpu"`, `"classify"`, `"adaptive"`).
pub const LABEL_LAYER: &str = "layer";
/// Label: the request's priority (`"bulk"` … `"critical"`).
pub const LABEL_PRIORITY: &str = "priority";
/// Label: why a request was refused (`"queue_full"`, `"memory"`, …).
pub const LABEL_REASON: &str = "reason";

/// Layer name of the admission layer.
pub const LAYER_ADMISSION: &str = "admission";
/// Layer name of the memory shedder.
pub const LAYER_MEMORY: &str = "memory";
/// Layer name of the CPU throttle.
pub const LAYER_CPU: &str = "cpu";
/// Layer name of the classifier.
pub const LAYER_CLASSIFY: &str = "classify";
/// Layer name of the adaptive limiter.
pub const LAYER_ADAPTIVE: &str = "adaptive";

/// Counter: requests classified (labels: layer, priority).
pub const CLASSIFIED_TOTAL: &str = "tower_pressure_classified_total";
/// Counter: requests admitted (labels: layer, priority).
pub const ADMITTED_TOTAL: &str = "tower_pressure_admitted_total";
/// Counter: requests refused (labels: layer, priority, reason).
pub const SHED_TOTAL: &str = "tower_pressure_shed_total";
/// Gauge: requests in flight (labels: layer).
pub const IN_FLIGHT: &str = "tower_pressure_in_flight";
/// Gauge: the concurrency limit (labels: layer).
pub const LIMIT: &str = "tower_pressure_limit";
/// Gauge: requests waiting (labels: layer, priority).
pub const QUEUE_LENGTH: &str = "tower_pressure_queue_length";
/// Histogram: seconds waited in the queue (labels: layer, priority).
pub const QUEUE_WAIT_SECONDS: &str = "tower_pressure_queue_wait_seconds";
/// Histogram: seconds a request was delayed by the CPU throttle (labels: layer, priority).
pub const THROTTLE_DELAY_SECONDS: &str = "tower_pressure_throttle_delay_seconds";
/// Gauge: a signal's pressure level, 0 (`none`) to 4 (`critical`) (labels: layer).
pub const PRESSURE_LEVEL: &str = "tower_pressure_level";
/// Gauge: a signal's smoothed utilisation in `[0, 1]` (labels: layer).
pub const UTILIZATION: &str = "tower_pressure_utilization";
