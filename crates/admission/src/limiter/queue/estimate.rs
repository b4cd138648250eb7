//! What the queue measures to refuse at once what would only time out: how
//! long a newcomer would wait (the waiters it cannot overtake, at the rate
//! the classes above it leave), and whether its class's queue stands.
//! Everything here is measured, nothing forecast: hold times, the queue as
//! it is, the rate at which permits actually went to the classes above,
//! and the waits the class's own requests actually saw.

use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;
use tower_pressure_core::{Priority, Reason};

use super::State;
use crate::limiter::config::Drain;

/// How many standard deviations of noise a class's excess of arrivals over
/// the rate left to it must reach for its queue to be found standing: two,
/// the usual bar of significance (one-sided, 97.7 %).
const SIGNIFICANT: f64 = 2.0;
/// The share of a class's queue timeout that its waiters may wait before
/// its queue counts as standing: a tenth. RFC 8289 (CoDel) sets its target
/// to 5–10 % of its interval, the time scale on which a good queue drains;
/// a class's queue timeout is that time scale for its callers.
const TARGET_SHARE: u32 = 10;

/// Whether one class's queue stands: it persists, as CoDel (RFC 8289)
/// judges a queue — with the class's queue timeout as the interval and a
/// tenth of it as the target — and it persists because the class arrives
/// faster than the rate the classes above leave it (by more than the noise
/// of the counts), not because of one burst or the swings of a load at
/// capacity.
///
/// A queue that absorbs a burst drains: some request of the class gets in
/// within the target now and then. A queue whose requests have all waited
/// past the target for a whole interval, of a class measured arriving
/// faster than it can be served, does not — and a longer queue would only
/// make every request it serves later, not serve more. While it stands,
/// the class's newcomers queue only if their estimated wait is within the
/// target. Like a thermostat, it switches on and off at two levels, each
/// a significant difference (more than [`SIGNIFICANT`] standard deviations
/// of Poisson noise) between the class's arrivals and the service the
/// classes above leave it: on at a significant excess over the time its
/// queue has stood — a class at exactly its share is a random walk, whose
/// queue rides out the swings of the classes above and must not be cut
/// short — and off at a significant shortfall in the rates over its
/// timeout.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Standing {
    /// Since when every request of the class has waited past the target
    /// (CoDel's `first_above_time`), and the counts then: the class's
    /// arrivals and the admissions of the classes above.
    above_since: Option<(Instant, u64, u64)>,
    on: bool,
    /// Fast-path admissions of the class when last looked at: each new one
    /// waited nothing.
    fast_seen: u64,
}

impl Standing {
    /// The target wait of a class whose queue times out after `timeout`.
    pub(super) fn target(timeout: Duration) -> Duration {
        timeout / TARGET_SHARE
    }

    /// A request of the class got in, or gave up, after waiting `waited`;
    /// `counts` are the class's arrivals and the admissions of the classes
    /// above so far.
    pub(super) fn sojourn(
        &mut self,
        waited: Duration,
        target: Duration,
        now: Instant,
        counts: (u64, u64),
    ) {
        if waited > target {
            self.above_since.get_or_insert((now, counts.0, counts.1));
        } else {
            self.above_since = None;
        }
    }

    /// Whether the queue stands now. `fast` counts the class's fast-path
    /// admissions so far; `excess(since, arrived, above)` is how far the
    /// class arrived faster than it could be served since `since`, given
    /// the counts then, and `shortfall` how far it arrives slower by the
    /// rates — both in standard deviations of their noise.
    fn update(
        &mut self,
        interval: Duration,
        now: Instant,
        fast: u64,
        excess: impl FnOnce(Instant, u64, u64) -> f64,
        shortfall: f64,
    ) -> bool {
        if fast != self.fast_seen {
            self.fast_seen = fast;
            self.above_since = None;
        }
        if self.on {
            self.on = shortfall < SIGNIFICANT;
        } else if let Some((since, arrived, above)) = self.above_since {
            let stood = now.saturating_duration_since(since) >= interval;
            self.on = stood && excess(since, arrived, above) > SIGNIFICANT;
        }
        self.on
    }
}

/// Three measured rates per class, per second: how fast permits went to
/// the classes above it, how fast it arrived, and how fast its own waiters
/// were admitted from the queue while it had any. Each is an exponentially
/// weighted mean whose memory is the class's own queue timeout, the
/// horizon over which its waiters are overtaken and served.
#[derive(Debug, Default)]
pub(super) struct Rates {
    overtaking: [f64; 5],
    arriving: [f64; 5],
    /// Admissions of the class's waiters, and the seconds it had waiters,
    /// each a sum decayed over its memory: their ratio is the rate at which
    /// its waiters were admitted while it waited.
    drained: [f64; 5],
    waited: [f64; 5],
    /// When the rates were last brought up to date, and the counts then.
    last: Option<(Instant, Counts)>,
    /// When the first count was taken: until a memory has passed, the
    /// rates are corrected for the time they have not seen.
    since: Option<Instant>,
}

/// Counts by class that the rates are taken from.
#[derive(Debug, Clone, Copy)]
pub(in crate::limiter) struct Counts {
    /// Admissions (the gate's count).
    pub(super) admitted: [u64; 5],
    /// Admissions of waiters.
    pub(super) drained: [u64; 5],
    /// Arrivals: admissions at once, and every request that missed the
    /// fast path, but those refused for what says nothing of the load.
    pub(in crate::limiter) arrived: [u64; 5],
    /// Seconds each class has had waiters.
    pub(super) waiting: [f64; 5],
}

/// How long one class has had waiters, in all.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Waiting {
    secs: f64,
    since: Option<Instant>,
}

impl Waiting {
    /// The class has a waiter (again).
    pub(super) fn start(&mut self, now: Instant) {
        self.since.get_or_insert(now);
    }

    /// The class has no waiter left.
    pub(super) fn stop(&mut self, now: Instant) {
        if let Some(since) = self.since.take() {
            self.secs += now.saturating_duration_since(since).as_secs_f64();
        }
    }

    fn total(self, now: Instant) -> f64 {
        self.secs
            + self
                .since
                .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64())
    }
}

impl Rates {
    /// Folds in the counts since the last update.
    pub(super) fn update(&mut self, counts: Counts, timeouts: &[Duration; 5], now: Instant) {
        let Some((then, before)) = self.last else {
            self.last = Some((now, counts));
            self.since = Some(now);
            return;
        };
        let dt = now.saturating_duration_since(then).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        let delta = |now: [u64; 5], then: [u64; 5], i: usize| now[i].saturating_sub(then[i]);
        // Counts spread evenly over `dt`.
        let mut above = 0;
        for i in (0..5).rev() {
            let decay = (-dt / timeouts[i].as_secs_f64()).exp();
            let fold = |rate: f64, count: u64| rate * decay + count as f64 / dt * (1.0 - decay);
            self.overtaking[i] = fold(self.overtaking[i], above);
            self.arriving[i] = fold(self.arriving[i], delta(counts.arrived, before.arrived, i));
            let drained = delta(counts.drained, before.drained, i) as f64;
            self.drained[i] = self.drained[i] * decay + drained;
            let waited = (counts.waiting[i] - before.waiting[i]).max(0.0);
            self.waited[i] = self.waited[i] * decay + waited;
            above += delta(counts.admitted, before.admitted, i);
        }
        self.last = Some((now, counts));
    }

    /// How fast the waiters of class `i` were admitted while it had any;
    /// `None` when it has not waited within its memory.
    fn drained_per_sec(&self, i: usize) -> Option<f64> {
        (self.waited[i] > 0.0).then(|| self.drained[i] / self.waited[i])
    }

    /// Corrects a rate of class `p` for the part of its memory not yet seen.
    fn corrected(&self, rate: f64, timeout: Duration, now: Instant) -> f64 {
        let Some(since) = self.since else { return 0.0 };
        let seen = now.saturating_duration_since(since).as_secs_f64();
        let weight = 1.0 - (-seen / timeout.as_secs_f64()).exp();
        if weight > 0.0 { rate / weight } else { 0.0 }
    }
}

impl State {
    /// Class `p`'s arrivals so far, and the admissions of the classes above
    /// it.
    pub(super) fn episode_counts(&self, p: Priority) -> (u64, u64) {
        let above = Priority::ALL
            .into_iter()
            .filter(|&q| q > p)
            .map(|q| self.gate.admitted(q))
            .sum();
        (self.arrived[p.index()] + self.fast_admissions_of(p), above)
    }

    /// The counts the rates are taken from.
    pub(in crate::limiter) fn counts(&self, now: Instant) -> Counts {
        Counts {
            admitted: Priority::ALL.map(|p| self.gate.admitted(p)),
            drained: self.drained,
            arrived: Priority::ALL.map(|p| self.arrived[p.index()] + self.fast_admissions_of(p)),
            waiting: self.waiting.map(|w| w.total(now)),
        }
    }

    /// The measured service rate, `limit` / mean hold, in admissions per
    /// second; `None` while no hold time has been measured.
    fn service_rate(&self) -> Option<f64> {
        let hold = self.stats.mean_hold().as_secs_f64();
        (hold > 0.0).then(|| self.gate.limit() as f64 / hold)
    }

    /// The rate the classes above `p` leave it: the service rate less the
    /// rate at which they took permits.
    fn left_to(&self, p: Priority, mu: f64, now: Instant) -> f64 {
        let timeout = self.config.timeouts[p.index()];
        mu - self
            .rates
            .corrected(self.rates.overtaking[p.index()], timeout, now)
    }

    /// How far class `p` arrives faster than the rate the classes above
    /// leave it, in standard deviations of the Poisson noise of the counts
    /// behind the two rates. Each rate is a mean over the class's queue
    /// timeout `τ`, whose variance for Poisson counts at rate `λ` is
    /// `λ / 2τ`.
    fn excess(&self, p: Priority, mu: f64, now: Instant) -> f64 {
        let timeout = self.config.timeouts[p.index()];
        let rates = &self.rates;
        let arriving = rates.corrected(rates.arriving[p.index()], timeout, now);
        let overtaking = rates.corrected(rates.overtaking[p.index()], timeout, now);
        let noise = ((arriving + overtaking) / (2.0 * timeout.as_secs_f64())).sqrt();
        (arriving - (mu - overtaking)) / noise.max(f64::MIN_POSITIVE)
    }

    /// Whether the queue of class `p` stands now (see [`Standing`]). When
    /// it is found standing, its waiters that have already waited past the
    /// target are refused (their wakers go to `wake`), as CoDel drops from
    /// the head of a standing queue: what was queued under the whole
    /// timeout would otherwise keep the class's newcomers out while it
    /// drains, and is served later than any newcomer would be.
    pub(super) fn standing(&mut self, p: Priority, now: Instant, wake: &mut Vec<Waker>) -> bool {
        let timeout = self.config.timeouts[p.index()];
        let fast = self.fast_admissions_of(p);
        let mu = self.service_rate();
        let shortfall = mu.map_or(f64::INFINITY, |mu| -self.excess(p, mu, now));
        let (arrived_now, above_now) = self.episode_counts(p);
        // The class's arrivals since its queue began to stand, against the
        // service the classes above left it meanwhile (the service rate over
        // that time, less what they took); Poisson counts, so the variance
        // of each is its count.
        let excess = |since: Instant, arrived: u64, above: u64| {
            let Some(mu) = mu else {
                return f64::NEG_INFINITY;
            };
            let t = now.saturating_duration_since(since).as_secs_f64();
            let a = arrived_now.saturating_sub(arrived) as f64;
            let o = above_now.saturating_sub(above) as f64;
            (a - (mu * t - o)) / (a + o).sqrt().max(1.0)
        };
        let was = self.standing[p.index()].on;
        let on = self.standing[p.index()].update(timeout, now, fast, excess, shortfall);
        if on && !was {
            let target = Standing::target(timeout);
            while let Some(key) = self.classes[p.index()].head() {
                if now.saturating_duration_since(self.nodes[key].enqueued) <= target {
                    break;
                }
                self.refused_waiter(key, Reason::QueueTimeout, now, wake);
            }
        }
        on
    }

    /// A `p` request left the queue (or skipped it) after `waited`: what
    /// tells whether the class's queue stands.
    pub(super) fn waited_past(&mut self, p: Priority, waited: Duration, now: Instant) {
        let target = Standing::target(self.config.timeouts[p.index()]);
        let counts = self.episode_counts(p);
        self.standing[p.index()].sojourn(waited, target, now, counts);
    }

    /// How long a newcomer of `p` may expect to wait and still queue: its
    /// class's queue timeout, or the standing target while its queue stands.
    pub(super) fn budget(&self, p: Priority, standing: bool) -> Duration {
        let timeout = self.config.timeouts[p.index()];
        if standing {
            Standing::target(timeout)
        } else {
            timeout
        }
    }

    /// How long a newcomer of `p` would wait.
    ///
    /// At least the waiters it cannot overtake under the current drain
    /// order, plus itself, served at the measured service rate (`limit` /
    /// mean hold). Under [`Drain::Priority`] the classes above overtake it
    /// as they arrive, and two measurements say how far: the waiters in
    /// front at the rate the classes above leave (the service rate less the
    /// rate at which they took permits), and the class's own waiters in
    /// front at the rate its waiters were admitted while it had any
    /// (Little's law). The
    /// shorter is taken: the first remembers a burst of a higher class
    /// after it has ended, the second is silent while the class has not
    /// queued. When the classes above took every permit, nothing is left to
    /// the class and the wait is unbounded. Under [`Drain::WeightedFair`]
    /// the rate is the class's weight's share among the classes waiting.
    ///
    /// Zero when a permit is free and nobody waits, or while no hold time
    /// has been measured.
    pub(crate) fn estimated_wait(&self, p: Priority, now: Instant) -> Duration {
        if !self.newcomer_waits() {
            return Duration::ZERO;
        }
        let Some(mu) = self.service_rate() else {
            return Duration::ZERO;
        };
        let lifo = self.lifo_for(p);
        let own = if lifo { 0 } else { self.class_len(p) };
        match self.config.drain {
            Drain::Priority => {
                let above: usize = Priority::ALL
                    .into_iter()
                    .filter(|&q| q > p)
                    .map(|q| self.class_len(q))
                    .sum();
                let left = self.left_to(p, mu, now);
                if left <= 0.0 {
                    return Duration::MAX;
                }
                let forecast = wait(above + own, left);
                let little = self
                    .rates
                    .drained_per_sec(p.index())
                    .map_or(Duration::MAX, |drained| wait(own, drained));
                wait(above + own, mu).max(forecast.min(little))
            }
            Drain::Fifo | Drain::Lifo => wait(if lifo { 0 } else { self.queue_len() }, mu),
            Drain::WeightedFair => {
                let w = &self.config.weights;
                let competing: f64 = Priority::ALL
                    .into_iter()
                    .filter(|&q| q != p && self.class_len(q) > 0)
                    .map(|q| w[q.index()])
                    .sum();
                wait(own, mu * w[p.index()] / (w[p.index()] + competing))
            }
        }
    }
}

/// How long `ahead` waiters and one more take at `rate` a second; unbounded
/// when nothing is served.
fn wait(ahead: usize, rate: f64) -> Duration {
    if rate <= 0.0 {
        return Duration::MAX;
    }
    Duration::try_from_secs_f64((ahead + 1) as f64 / rate).unwrap_or(Duration::MAX)
}
