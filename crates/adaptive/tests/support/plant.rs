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

    /// The next window under the current limit: `count` requests (or, if
    /// `count` is 0, as many as the limit completes in a window by Little's
    /// law).
    pub(crate) fn window(&mut self) -> Sample {
        self.at += self.window;
        let rtt = self.rtt(self.limit);
        let count = match self.count {
            0 => {
                (self.limit as f64 * self.window.as_secs_f64() / rtt.as_secs_f64()).round() as usize
            }
            n => n,
        };
        Sample::new(self.at, rtt, count, self.limit).with_duration(self.window)
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
