//! Re-measuring the no-load latency by pinning the limit low for a moment,
//! as Envoy's gradient controller measures its minRTT.
//!
//! A probe pins the limit to `probe_limit`, waits for a *clean* window — one
//! in which every request started while at most `probe_limit` were in flight,
//! so none queued behind the load from before — takes that window's mean
//! latency as the no-load latency, and hands the limit from before back.
//! Probes run every `interval`, delayed by a random part of `jitter ×
//! interval` so that replicas do not probe in step, and at once when the
//! limit has sat at its minimum for [`AT_MIN_WINDOWS`] windows in a row
//! (a limit stuck at the minimum because the baseline moved can grow again).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::time::Instant;

use crate::Sample;

/// Windows in a row at the minimum limit that trigger a probe (Envoy: 5).
pub(crate) const AT_MIN_WINDOWS: u32 = 5;

/// Windows a probe waits for a clean window before it gives up and keeps the
/// old measurement.
const MAX_PROBE_WINDOWS: u32 = 20;

#[derive(Debug, Clone)]
pub(crate) struct Probe {
    interval: Duration,
    jitter: f64,
    pub(crate) probe_limit: usize,
    next: Option<Instant>,
    state: State,
    rng: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Idle,
    Probing { restore: f64, windows: u32 },
}

/// What a window means to the probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Step {
    /// No probe runs; the algorithm goes on as usual.
    Off,
    /// A probe runs: the limit is `probe_limit`.
    Probing,
    /// A probe ended: `rtt` is the new no-load latency (or `None` when no
    /// clean window came), `restore` the limit from before.
    Done { rtt: Option<Duration>, restore: f64 },
}

/// A random seed for probe jitter, different in every process.
pub(crate) fn random_seed() -> u64 {
    RandomState::new().build_hasher().finish() | 1
}

impl Probe {
    /// A probe every `interval` (plus jitter); `first_now` probes at the
    /// first window instead of after one interval.
    pub(crate) fn new(
        interval: Duration,
        jitter: f64,
        probe_limit: usize,
        first_now: bool,
        seed: u64,
    ) -> Probe {
        Probe {
            interval,
            jitter,
            probe_limit,
            next: None,
            state: if first_now {
                State::Probing {
                    restore: f64::NAN,
                    windows: 0,
                }
            } else {
                State::Idle
            },
            rng: seed | 1,
        }
    }

    /// The limit a running probe holds, once a window was fed to it (a
    /// probe due at the first window has not begun before it).
    pub(crate) fn holding(&self) -> Option<usize> {
        match self.state {
            State::Probing { restore, .. } if !restore.is_nan() => Some(self.probe_limit),
            _ => None,
        }
    }

    /// Whether a probe is running.
    pub(crate) fn probing(&self) -> bool {
        matches!(self.state, State::Probing { .. })
    }

    /// Starts a probe now (if none runs), to hand `limit` back afterwards.
    pub(crate) fn start(&mut self, limit: f64) {
        if !self.probing() {
            self.state = State::Probing {
                restore: limit,
                windows: 0,
            };
        }
    }

    /// Feeds one window; `limit` is the algorithm's limit, handed back after
    /// a probe that starts now.
    pub(crate) fn step(&mut self, sample: &Sample, limit: f64) -> Step {
        let next = *self.next.get_or_insert_with(|| sample.at + self.interval);
        match self.state {
            State::Idle if sample.at >= next => {
                self.start(limit);
                Step::Probing
            }
            State::Idle => Step::Off,
            State::Probing { restore, windows } => {
                let restore = if restore.is_nan() { limit } else { restore };
                // Drops do not taint the successes' latency; a window mostly dropped
                // is not a measurement (its slow requests are missing).
                let clean =
                    sample.max_in_flight <= self.probe_limit && sample.successes > sample.dropped;
                let rtt = sample.avg_rtt.filter(|_| clean);
                if rtt.is_some() || windows + 1 >= MAX_PROBE_WINDOWS {
                    self.state = State::Idle;
                    self.next = Some(sample.at + self.delay());
                    Step::Done { rtt, restore }
                } else {
                    self.state = State::Probing {
                        restore,
                        windows: windows + 1,
                    };
                    Step::Probing
                }
            }
        }
    }

    /// The interval plus a random part of `jitter × interval`.
    fn delay(&mut self) -> Duration {
        // xorshift64: deterministic for a given seed, good enough for jitter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        self.interval.mul_f64(1.0 + self.jitter * unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(at: Instant, rtt_ms: u64, in_flight: usize) -> Sample {
        Sample::new(at, Duration::from_millis(rtt_ms), 20, in_flight)
    }

    #[test]
    fn a_probe_waits_for_a_clean_window_and_hands_the_limit_back() {
        let t0 = Instant::now();
        let mut p = Probe::new(Duration::from_secs(10), 0.0, 3, false, 7);
        assert_eq!(p.step(&window(t0, 50, 40), 40.0), Step::Off);
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(p.step(&window(t1, 50, 40), 40.0), Step::Probing);
        // Still draining the load from before: not clean.
        assert_eq!(p.step(&window(t1, 50, 40), 3.0), Step::Probing);
        assert_eq!(
            p.step(&window(t1, 20, 3), 3.0),
            Step::Done {
                rtt: Some(Duration::from_millis(20)),
                restore: 40.0
            }
        );
        assert!(!p.probing());
    }

    #[test]
    fn a_probe_completes_while_a_trickle_of_drops_goes_on() {
        let t0 = Instant::now();
        let mut p = Probe::new(Duration::from_secs(10), 0.0, 3, true, 7);
        assert_eq!(p.step(&window(t0, 50, 40), 40.0), Step::Probing);
        // One drop in 21 at the probe's concurrency: the successes' latency
        // is the measurement.
        let trickle = window(t0, 20, 3).with_dropped(1);
        assert_eq!(
            p.step(&trickle, 3.0),
            Step::Done {
                rtt: Some(Duration::from_millis(20)),
                restore: 40.0
            }
        );
        // A window mostly dropped is not a measurement.
        p.start(40.0);
        assert_eq!(
            p.step(&window(t0, 20, 3).with_dropped(30), 3.0),
            Step::Probing
        );
    }

    #[test]
    fn jitter_delays_the_next_probe_by_at_most_its_share() {
        let mut p = Probe::new(Duration::from_secs(10), 0.5, 3, false, 99);
        for _ in 0..1000 {
            let d = p.delay();
            assert!(d >= Duration::from_secs(10) && d <= Duration::from_secs(15));
        }
    }
}
