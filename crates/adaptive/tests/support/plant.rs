//! A closed-form service for driving an algorithm window by window, without
//! a runtime: `servers` workers of `base` latency, always saturated (as many
//! requests in flight as the limit allows). A window's latency is that of
//! the limit set after the window before: `base × max(1, limit / servers)`.

use std::time::Duration;

use tokio::time::Instant;
use tower_pressure_adaptive::{LimitAlgorithm, Sample};

#[derive(Debug, Clone)]
pub(crate) struct Plant {
    pub(crate) base: Duration,
    pub(crate) servers: usize,
    /// Length of a window.
    pub(crate) window: Duration,
    /// Requests per window.
    pub(crate) count: usize,
    at: Instant,
    limit: usize,
}

impl Plant {
    pub(crate) fn new(base: Duration, servers: usize, limit: usize) -> Plant {
        Plant {
            base,
            servers,
            window: Duration::from_millis(100),
            count: 100,
            at: Instant::now(),
            limit,
        }
    }

    /// The latency at `in_flight`.
    pub(crate) fn rtt(&self, in_flight: usize) -> Duration {
        self.base
            .mul_f64((in_flight as f64 / self.servers as f64).max(1.0))
    }

    /// The next window under the current limit.
    pub(crate) fn window(&mut self) -> Sample {
        self.at += self.window;
        Sample::new(self.at, self.rtt(self.limit), self.count, self.limit)
    }

    /// Runs `windows` windows through `algorithm`; returns the limits.
    pub(crate) fn drive(
        &mut self,
        algorithm: &mut impl LimitAlgorithm,
        windows: usize,
    ) -> Vec<usize> {
        (0..windows)
            .map(|_| {
                let sample = self.window();
                self.limit = algorithm.update(&sample);
                self.limit
            })
            .collect()
    }

    /// The limit in force.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}
