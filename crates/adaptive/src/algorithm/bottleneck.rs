//! [`Bottleneck`]: the concurrency a service holds without queueing, measured
//! as its delivery rate times its no-load latency.

use tower_pressure_core::ConfigError;

use super::{Bounds, LimitAlgorithm, kept_share, whole};
use crate::Sample;

/// The concurrency a service holds without queueing, measured — Little's law
/// applied the way BBR (Cardwell et al., 2016) sizes a congestion window:
/// `limit = delivery rate × no-load latency`.
///
/// # Model
///
/// A service of capacity `C` (workers, cores, connections) and mean work
/// time `E` completes at most `C / E` requests per second. Below `C` in
/// flight its latency is `E`; above, the excess queues inside it and latency
/// grows while the rate stays `C / E`. The knee `C` keeps the service busy
/// without a queue, and whenever the service queues, `rate × E` *is* `C`
/// (the rate is the capacity's). So a window whose mean latency is above `E`
/// by more than half the probe's step gives the capacity outright, in one
/// window, whatever the limit was: a service that lost half its workers is
/// found at once, not by steps.
///
/// Windows (see [`AdaptiveLimit`](crate::AdaptiveLimit)) run in cycles, as
/// BBR's gain cycle:
///
/// 1. **Cruise**: `cruise_windows` (6) windows at the estimate, after one
///    that is not measured (it serves what the probe before queued) —
///    more when whole requests make a probe's step larger than the gain
///    (4 to 5 is a quarter: twice the windows), so that probing costs the
///    same share of capacity at any size. A
///    window that queues sets the estimate to `rate × E` and starts a
///    drain: at once when its queue is deeper than a probe's step, else
///    when the window before it queued too (one window's mean latency can
///    stray by a few per cent on its own).
/// 2. **Probe**: the estimate × `probe_gain` (1.125) for two windows, the
///    first to fill the service, the second to measure. Queueing sets the
///    estimate to `rate × E`; no queueing *and* a rate that rose by half
///    the step say the capacity is above: the estimate takes the probe's
///    limit and probes again at once, the step squaring (up to doubling)
///    while it keeps finding room, so a capacity that doubled is found in a
///    few windows.
/// 3. **Drain**, after the first probe, every fourth and after every cut:
///    the estimate × `drain_gain` (0.875) for two windows or more, the
///    first to empty what was queued; the next, once its latency stops
///    falling, measures `E` — unless its latency fell in proportion to the
///    limit, which says the service still queues at the drained limit: the
///    estimate becomes that limit and it drains again (so a limit that
///    starts far too high comes down geometrically).
///
/// The first measured window is taken as `E` until a drain measures it.
/// A window whose mean concurrency (Little's law: its rate × its mean
/// latency) fell short of the limit by more than a probe's step was bounded
/// by the application, not the limit (or spanned a lull): it says nothing
/// of the service, and the limit goes back to the estimate and stays there
/// until windows fill it again. A window's rate is taken as at most what
/// the limit allows at its latency (a window of tens of requests counts its
/// rate to a request or two, its mean latency much closer). Limits are
/// whole requests: the estimate rounded, a probe or a drain one request
/// away from it at least. Drops take away their share of the estimate, `1 − drop rate`
/// (at most half), every window.
///
/// Why not a latency gradient: Gradient2, Vegas and Envoy's controller
/// compare latency with a baseline and settle where latency is a tolerance
/// above it, so the limit they find is a multiple of the capacity set by
/// their tolerance, and the baseline drifts (a running minimum under noise,
/// a running mean under load). The rate saturates at the knee whatever the
/// tolerance, and `E` is measured afresh every cycle below the knee: a
/// service whose work got slower keeps its limit once a drain has measured
/// the new `E`, one that lost workers loses it.
///
/// # Cost and limits
///
/// Each cycle queues an eighth of the capacity for about two windows of
/// nine (the probe), and every fourth leaves up to an eighth idle for about
/// two (the drain): about 3 % more latency and 1 % less goodput than a
/// fixed limit at the capacity (the simulation: 97–99 % of capacity). The limit
/// leaves the estimate by the gains on purpose (a missed probe can take it
/// to `probe_gain²` for two windows). The estimate is as good as a
/// window's rate, so windows should hold tens of requests; a limit of a few
/// requests cannot probe by an eighth and moves by whole requests.
///
/// ```
/// use std::time::Duration;
/// use tower_pressure_adaptive::{Bottleneck, LimitAlgorithm, Sample};
///
/// # fn main() -> Result<(), tower_pressure_core::ConfigError> {
/// let mut b = Bottleneck::builder().initial_limit(20).build()?;
/// let now = tokio::time::Instant::now();
/// let ms = Duration::from_millis;
/// // A service of 16 workers, 10 ms per request: 1,600 requests/s at most.
/// let window = |limit: usize| {
///     let in_service = limit.min(16);
///     let rtt = ms(10) * limit as u32 / in_service as u32; // queued above 16
///     Sample::new(now, rtt, in_service * 10, limit).with_duration(ms(100))
/// };
/// let mut limit = b.limit();
/// for _ in 0..40 {
///     limit = b.update(&window(limit));
/// }
/// assert!((14..=20).contains(&limit), "{limit}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Bottleneck {
    bounds: Bounds,
    probe_gain: f64,
    drain_gain: f64,
    cruise_windows: u32,
    /// The capacity estimate, in requests in flight.
    estimate: f64,
    /// The limit set for the window now open.
    limit: f64,
    phase: Phase,
    /// The no-load latency, seconds: the last clean drain window's.
    noload: Option<f64>,
    /// The last measured window's limit and mean latency, seconds, before
    /// the drain now running.
    last: Option<(f64, f64)>,
    /// The previous window's mean latency, seconds.
    previous: Option<f64>,
    /// The previous window's limit.
    before: f64,
    /// The last cruise window showed a shallow queue.
    suspect: bool,
    /// Probes since the last drain.
    cycles: u32,
    /// The rate a probe must beat to show growth: the sum and count of the
    /// measured cruise windows' rates since the last drain, or the last
    /// growing probe's.
    reference: (f64, u32),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// The `n`th window at the estimate.
    Cruise(u32),
    /// A window above the estimate at `gain`; the first (`settle`) fills
    /// the service, the second measures it.
    Probe { gain: f64, settle: bool, grew: bool },
    /// A window below it; the first empties what the probe queued, the
    /// second measures the no-load latency.
    Drain { settle: bool },
}

/// Default probe gain of [`Bottleneck`] (BBR's is 1.25 per round trip; a
/// window here is many round trips and its mean latency varies less, so an
/// eighth is seen).
pub(crate) const DEFAULT_BOTTLENECK_PROBE_GAIN: f64 = 1.125;
/// Default drain gain of [`Bottleneck`]: empties what a probe queued.
pub(crate) const DEFAULT_BOTTLENECK_DRAIN_GAIN: f64 = 0.875;
/// A drain (and a fresh no-load latency) every this many probes at least,
/// and after every cut: BBR re-measures its minimum round trip every 10 s,
/// here about every 4 s at the default windows.
const DRAIN_EVERY: u32 = 4;

/// Default cruise windows of [`Bottleneck`] between a drain and the next
/// probe (BBR's cycle: eight phases, six of them at gain 1).
pub(crate) const DEFAULT_BOTTLENECK_CRUISE_WINDOWS: u32 = 6;

/// Builds a [`Bottleneck`]; see its defaults on each method.
#[derive(Debug, Clone)]
#[must_use]
pub struct BottleneckBuilder {
    bounds: Bounds,
    probe_gain: f64,
    drain_gain: f64,
    cruise_windows: u32,
}

impl Default for BottleneckBuilder {
    fn default() -> Self {
        BottleneckBuilder {
            bounds: Bounds::new(20, 1, 1000),
            probe_gain: DEFAULT_BOTTLENECK_PROBE_GAIN,
            drain_gain: DEFAULT_BOTTLENECK_DRAIN_GAIN,
            cruise_windows: DEFAULT_BOTTLENECK_CRUISE_WINDOWS,
        }
    }
}

impl BottleneckBuilder {
    /// The limit before the first window (default 20; an
    /// [`AdaptiveLimit`](crate::AdaptiveLimit) starts from its limiter's
    /// limit instead).
    pub fn initial_limit(mut self, limit: usize) -> Self {
        self.bounds.initial = limit;
        self
    }

    /// The smallest limit (default 1).
    pub fn min_limit(mut self, limit: usize) -> Self {
        self.bounds.min = limit;
        self
    }

    /// The largest limit (default 1000).
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.bounds.max = limit;
        self
    }

    /// The factor of the probe windows, in `(1, 1.5]` (default 1.125): the
    /// share of the capacity a probe queues when there is no more. (Half a
    /// step of latency is what tells a queue, and a window within a step of
    /// its limit is a full one: larger steps blur both.)
    pub fn probe_gain(mut self, gain: f64) -> Self {
        self.probe_gain = gain;
        self
    }

    /// The factor of the drain windows, in `[0.5, 1)` and below
    /// `1 / (1 + (probe_gain − 1) / 2)` (default 0.875).
    pub fn drain_gain(mut self, gain: f64) -> Self {
        self.drain_gain = gain;
        self
    }

    /// Windows at the estimate between a drain and the next probe, at least
    /// 1 (default 6).
    pub fn cruise_windows(mut self, windows: u32) -> Self {
        self.cruise_windows = windows;
        self
    }

    /// The algorithm.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field: a limit of 0, `min_limit` above
    /// `max_limit`, `initial_limit` outside them, `probe_gain` outside
    /// `(1, 1.5]`, `drain_gain` outside `[0.5, 1)` or not below
    /// `1 / (1 + (probe_gain − 1) / 2)`, `cruise_windows` 0.
    pub fn build(self) -> Result<Bottleneck, ConfigError> {
        let bounds = self.bounds.check([
            "bottleneck.initial_limit",
            "bottleneck.min_limit",
            "bottleneck.max_limit",
        ])?;
        if !(self.probe_gain > 1.0 && self.probe_gain <= 1.5) {
            return Err(ConfigError::new(
                "bottleneck.probe_gain",
                self.probe_gain,
                "must be a number in (1, 1.5]",
            ));
        }
        if !(self.drain_gain >= 0.5 && self.drain_gain < 1.0) {
            return Err(ConfigError::new(
                "bottleneck.drain_gain",
                self.drain_gain,
                "must be a number in [0.5, 1)",
            ));
        }
        // A drain must go further below the estimate than the latency
        // tolerance reaches, or a drain that no longer queues cannot be told
        // from one that does (and every drain would look queued).
        if self.drain_gain * tolerance(self.probe_gain) >= 1.0 {
            return Err(ConfigError::new(
                "bottleneck.drain_gain",
                self.drain_gain,
                format!(
                    "must be below 1 / (1 + (probe_gain - 1) / 2) = {:.3} with probe_gain {}",
                    1.0 / tolerance(self.probe_gain),
                    self.probe_gain
                ),
            ));
        }
        if self.cruise_windows == 0 {
            return Err(ConfigError::new(
                "bottleneck.cruise_windows",
                0,
                "must be at least 1",
            ));
        }
        let initial = bounds.initial as f64;
        Ok(Bottleneck {
            bounds,
            probe_gain: self.probe_gain,
            drain_gain: self.drain_gain,
            cruise_windows: self.cruise_windows,
            estimate: initial,
            limit: initial,
            phase: Phase::Cruise(1),
            noload: None,
            last: None,
            previous: None,
            before: initial,
            suspect: false,
            // The first probe drains: the first no-load latency is a guess.
            cycles: DRAIN_EVERY - 1,
            reference: (0.0, 0),
        })
    }
}

impl Bottleneck {
    /// A builder with the defaults.
    pub fn builder() -> BottleneckBuilder {
        BottleneckBuilder::default()
    }

    /// The capacity estimate, in requests in flight (the limit at gain 1).
    #[must_use]
    pub fn estimate(&self) -> f64 {
        self.estimate
    }

    /// The no-load latency, in seconds, once a window measured it.
    #[must_use]
    pub fn noload_rtt(&self) -> Option<f64> {
        self.noload
    }

    /// Cruise windows before the next probe: `cruise_windows`, longer when
    /// whole requests make the probe's step larger than `probe_gain` (a
    /// probe from 4 to 5 queues a quarter, not an eighth), so that probes
    /// queue the same share of the capacity over time.
    fn cruise_length(&self) -> u32 {
        let at = self.estimate.round().max(1.0);
        let probe = (self.estimate * self.probe_gain).round().max(at + 1.0);
        let step = probe / at - 1.0;
        let scale = (step / (self.probe_gain - 1.0)).max(1.0);
        // At most 4× (a probe of a whole request from 1 or 2 doubles it).
        (f64::from(self.cruise_windows) * scale.min(4.0)).ceil() as u32
    }

    /// Whether the window now open only carries the service from one limit
    /// to the next (the first of a probe or a drain, the one after a
    /// probe): not measured.
    fn settling(&self) -> bool {
        matches!(
            self.phase,
            Phase::Probe { settle: true, .. } | Phase::Drain { settle: true } | Phase::Cruise(0)
        )
    }

    /// Enters `phase`, whose limit is the estimate times `gain`.
    fn enter(&mut self, phase: Phase, gain: f64) -> usize {
        if !matches!(phase, Phase::Cruise(_)) {
            self.suspect = false;
        }
        self.phase = phase;
        self.estimate = self.bounds.clamp(self.estimate);
        // Limits are whole requests: the estimate rounded, and a probe or a
        // drain a whole request away from it at least, or a small limit
        // could never probe (4 × 1.125 is still 4 requests).
        let at = self.estimate.round();
        let scaled = (self.estimate * gain).round();
        let stepped = if gain > 1.0 {
            scaled.max(at + 1.0)
        } else if gain < 1.0 {
            scaled.min(at - 1.0)
        } else {
            at
        };
        self.limit = self.bounds.clamp(stepped);
        whole(self.limit)
    }

    /// Queueing shows: the window's latency is above the no-load latency by
    /// more than half the probe's gain.
    fn queued(&self, rtt: f64) -> bool {
        self.noload
            .is_some_and(|e| rtt > e * tolerance(self.probe_gain))
    }
}

/// What a latency may exceed a reference by and still count as the same:
/// half a probe's step (`gain` the probe's factor).
fn tolerance(gain: f64) -> f64 {
    1.0 + (gain - 1.0) / 2.0
}

impl Default for Bottleneck {
    fn default() -> Self {
        Bottleneck::builder()
            .build()
            .expect("the defaults are valid")
    }
}

impl LimitAlgorithm for Bottleneck {
    fn start_at(&mut self, limit: usize) -> bool {
        self.estimate = self.bounds.clamp(limit as f64);
        self.limit = self.estimate;
        self.before = self.limit;
        true
    }

    fn update(&mut self, sample: &Sample) -> usize {
        if sample.did_drop() {
            self.estimate *= kept_share(sample);
        }
        let rtt = sample.avg_rtt.map(|d| d.as_secs_f64()).filter(|r| *r > 0.0);
        let secs = sample.duration.as_secs_f64();
        let (Some(rtt), true) = (rtt, secs > 0.0) else {
            self.before = self.limit;
            return self.advance(None);
        };
        // Little's law: the window's mean concurrency. The window was
        // limit-bound — it says something of the service, not only of the
        // application — when that was the limit but for less than a probe's
        // step (a window that also spanned a lull reached its limit at
        // times, but its rate is the lull's).
        let rate = sample.successes as f64 / secs;
        let limit = self.limit.max(1.0);
        // The most that can have been in flight: a window that opened just
        // after the limit fell still finishes what the higher one let in.
        let most = limit.max(std::mem::replace(&mut self.before, limit));
        let bound = rate * rtt >= limit * (2.0 - self.probe_gain);
        if !bound && !self.settling() {
            return self.advance(None);
        }
        // The rate at most what the limit allows at this latency: a window
        // of a few tens of requests counts its rate to a request or two,
        // its mean latency much closer.
        self.advance(Some((rate.min(most / rtt), rtt)))
    }

    fn limit(&self) -> usize {
        whole(self.limit)
    }
}

impl Bottleneck {
    /// The next phase, from a window's rate (successes per second) and mean
    /// latency, when it was limit-bound.
    fn advance(&mut self, window: Option<(f64, f64)>) -> usize {
        let limit = self.limit;
        if window.is_none() {
            // The application kept below the limit: probing or draining
            // would learn nothing and only move the limit. Cruise.
            self.previous = None;
            let n = match self.phase {
                Phase::Cruise(n) => n,
                _ => 1,
            };
            return self.enter(Phase::Cruise(n), 1.0);
        }
        let measured = if self.settling() { None } else { window };
        let previous = std::mem::replace(&mut self.previous, window.map(|(_, rtt)| rtt));
        let draining = matches!(self.phase, Phase::Drain { .. });
        if let Some((_, rtt)) = measured {
            if !draining {
                self.last = Some((limit, rtt));
            }
            // The first measure: taken as unqueued until a drain says
            // otherwise.
            self.noload.get_or_insert(rtt);
        }
        let same = tolerance(self.probe_gain);
        // Saturated: the service queues, so its rate is its capacity and
        // `rate × no-load latency` its concurrency (Little's law).
        let saturated = measured
            .filter(|&(_, rtt)| self.queued(rtt))
            .zip(self.noload)
            .map(|((rate, _), e)| rate * e);
        match self.phase {
            Phase::Cruise(n) => {
                if let Some((rate, _)) = measured {
                    self.reference.0 += rate;
                    self.reference.1 += 1;
                }
                // A queue of more than a probe's step acts at once; a smaller
                // one only when the window before showed it too (one
                // window's mean latency can stray that far on its own).
                let deep = measured
                    .is_some_and(|(_, rtt)| self.noload.is_some_and(|e| rtt > e * self.probe_gain));
                let confirmed = std::mem::replace(&mut self.suspect, saturated.is_some());
                if let Some(c) = saturated
                    && (deep || confirmed)
                {
                    self.suspect = false;
                    self.estimate = c;
                    return self.enter(Phase::Drain { settle: true }, self.drain_gain);
                }
                if n >= self.cruise_length() {
                    return self.enter(
                        Phase::Probe {
                            gain: self.probe_gain,
                            settle: true,
                            grew: false,
                        },
                        self.probe_gain,
                    );
                }
                self.enter(Phase::Cruise(n + 1), 1.0)
            }
            Phase::Probe {
                gain,
                settle: true,
                grew,
            } => self.enter(
                Phase::Probe {
                    gain,
                    settle: false,
                    grew,
                },
                gain,
            ),
            Phase::Probe {
                gain,
                settle: false,
                grew,
            } => {
                let (sum, n) = std::mem::take(&mut self.reference);
                let rose = |rate: f64| n == 0 || rate >= sum / f64::from(n) * tolerance(gain);
                match (saturated, measured) {
                    // The probe found the capacity.
                    (Some(c), _) => self.estimate = c,
                    // No queue at the probe's limit and the rate rose with
                    // it: the capacity is above it. Probe again from there.
                    (None, Some((rate, _))) if rose(rate) => {
                        self.estimate = limit;
                        self.reference = (rate, 1);
                        // Twice in a row: widen the step (the capacity may
                        // be far above), up to doubling per probe.
                        let gain = if grew {
                            (gain * gain).min(2.0)
                        } else {
                            self.probe_gain
                        };
                        return self.enter(
                            Phase::Probe {
                                gain,
                                settle: true,
                                grew: true,
                            },
                            gain,
                        );
                    }
                    // Neither: nothing learnt.
                    _ => {}
                }
                self.cycles += 1;
                if self.cycles >= DRAIN_EVERY {
                    return self.enter(Phase::Drain { settle: true }, self.drain_gain);
                }
                // Back to the estimate: what the probe queued is served
                // while no new request is let in, in the first window (not
                // measured).
                self.enter(Phase::Cruise(0), 1.0)
            }
            Phase::Drain { settle: true } => {
                self.cycles = 0;
                self.enter(Phase::Drain { settle: false }, self.drain_gain)
            }
            Phase::Drain { settle: false } => {
                let Some((_, rtt)) = measured else {
                    return self.enter(Phase::Cruise(1), 1.0);
                };
                if previous.is_some_and(|p| rtt * same < p) {
                    // Still falling: what was queued before the drain is
                    // still being served. Measure again.
                    return self.enter(Phase::Drain { settle: false }, self.drain_gain);
                }
                // Latency that fell in proportion to the limit says the
                // service still queues at the drained limit: its capacity
                // is below it. Drain further.
                if let Some((l0, r0)) = self.last
                    && l0 > limit
                    && rtt <= r0 * (limit / l0) * same
                {
                    self.estimate = limit;
                    self.last = Some((limit, rtt));
                    return self.enter(Phase::Drain { settle: true }, self.drain_gain);
                }
                self.noload = Some(rtt);
                self.enter(Phase::Cruise(1), 1.0)
            }
        }
    }
}
