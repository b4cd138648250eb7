//! The limiter's `metrics` handles, registered once when it is built: the
//! request path increments a handle, never looks a series up.

use std::time::Duration;

use metrics::{Counter, Histogram};
use tower_pressure_core::metrics as m;
use tower_pressure_core::{Priority, Reason};

/// The refusal reasons the limiter gives, in the order of its counters.
const REASONS: [Reason; 5] = [
    Reason::QueueFull,
    Reason::QueueTimeout,
    Reason::Evicted,
    Reason::DeadlineUnmeetable,
    Reason::Emergency,
];

pub(super) struct Instruments {
    admitted: [Counter; 5],
    /// By priority, then by [`REASONS`].
    shed: [[Counter; 5]; 5],
    wait: [Histogram; 5],
}

impl std::fmt::Debug for Instruments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instruments").finish_non_exhaustive()
    }
}

impl Instruments {
    /// Registers every series with the recorder installed now.
    pub(super) fn register() -> Instruments {
        let p = |i: usize| Priority::from_index(i).expect("five classes").as_str();
        Instruments {
            admitted: std::array::from_fn(|i| {
                metrics::counter!(m::ADMITTED_TOTAL,
                    m::LABEL_LAYER => m::LAYER_ADMISSION, m::LABEL_PRIORITY => p(i))
            }),
            shed: std::array::from_fn(|i| {
                REASONS.map(|r| {
                    metrics::counter!(m::SHED_TOTAL,
                        m::LABEL_LAYER => m::LAYER_ADMISSION,
                        m::LABEL_PRIORITY => p(i),
                        m::LABEL_REASON => r.as_label())
                })
            }),
            wait: std::array::from_fn(|i| {
                metrics::histogram!(m::QUEUE_WAIT_SECONDS,
                    m::LABEL_LAYER => m::LAYER_ADMISSION, m::LABEL_PRIORITY => p(i))
            }),
        }
    }

    #[inline]
    pub(super) fn admitted(&self, p: Priority) {
        self.admitted[p.index()].increment(1);
    }

    pub(super) fn shed(&self, p: Priority, reason: Reason) {
        match REASONS.iter().position(|&r| r == reason) {
            Some(i) => self.shed[p.index()][i].increment(1),
            // Not a reason the limiter gives; counted all the same.
            None => metrics::counter!(m::SHED_TOTAL,
                m::LABEL_LAYER => m::LAYER_ADMISSION,
                m::LABEL_PRIORITY => p.as_str(),
                m::LABEL_REASON => reason.as_label())
            .increment(1),
        }
    }

    pub(super) fn waited(&self, p: Priority, waited: Duration) {
        self.wait[p.index()].record(waited.as_secs_f64());
    }
}

/// Sets the state gauges.
pub(super) fn gauges(in_flight: usize, limit: usize, queued: [usize; 5]) {
    metrics::gauge!(m::IN_FLIGHT, m::LABEL_LAYER => m::LAYER_ADMISSION).set(in_flight as f64);
    metrics::gauge!(m::LIMIT, m::LABEL_LAYER => m::LAYER_ADMISSION).set(limit as f64);
    for p in Priority::ALL {
        metrics::gauge!(
            m::QUEUE_LENGTH,
            m::LABEL_LAYER => m::LAYER_ADMISSION,
            m::LABEL_PRIORITY => p.as_str(),
        )
        .set(queued[p.index()] as f64);
    }
}
