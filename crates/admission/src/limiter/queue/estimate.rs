//! What the queue measures to refuse at once what would only time out: how
//! long a newcomer would wait (the waiters it cannot overtake, at the rate
//! the classes above it leave), and whether its class's queue stands.
//! Everything here is measured, nothing forecast: hold times, the queue as
//! it is, the rate at which permits actually went to the classes above,
//! and the waits the class's own requests actually saw.

use std::time::Duration;

use tokio::time::Instant;
use tower_pressure_core::Priority;

use super::State;
use crate::limiter::config::Drain;
use crate::limiter::gate::Gate;

/// The share of a class's queue timeout that its waiters may wait before
/// its queue counts as standing: a tenth. RFC 8289 (CoDel) sets its target
/// to 5–10 % of its interval, the time scale on which a good queue drains;
/// a class's queue timeout is that time scale for its callers.
const TARGET_SHARE: u32 = 10;

/// Whether one class's queue stands, judged as CoDel (RFC 8289) judges a
/// queue, with the class's queue timeout as the interval and a tenth of it
/// as the target.
///
/// A queue that absorbs a burst drains: some request of the class gets in
/// within the target now and then. A queue whose requests have all waited
/// past the target for a whole interval does not — the class arrives
/// faster than it is served, and a longer queue would only make every
/// request it serves later, not serve more. While it stands, the class's
/// newcomers queue only if their estimated wait is within the target; it
/// stops standing once no request of the class has been refused for load
/// for an interval and its requests get in within the target again.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Standing {
    /// Since when every request of the class has waited past the target
    /// (CoDel's `first_above_time`).
    above_since: Option<Instant>,
    on: bool,
    /// When a request of the class was last refused for load.
    last_turned_away: Option<Instant>,
    /// Fast-path admissions of the class when last looked at: each new one
    /// waited nothing.
    fast_seen: u64,
}

impl Standing {
    /// The target wait of a class whose queue times out after `timeout`.
    pub(super) fn target(timeout: Duration) -> Duration {
        timeout / TARGET_SHARE
    }

    /// A request of the class got in, or gave up, after waiting `waited`.
    pub(super) fn sojourn(&mut self, waited: Duration, target: Duration, now: Instant) {
        if waited > target {
            self.above_since.get_or_insert(now);
        } else {
            self.above_since = None;
        }
    }

    /// A request of the class was refused for load.
    pub(super) fn turned_away(&mut self, now: Instant) {
        self.last_turned_away = Some(now);
    }

    /// Whether the queue stands now; `fast` counts the class's fast-path
    /// admissions so far.
    fn update(&mut self, interval: Duration, now: Instant, fast: u64) -> bool {
        if fast != self.fast_seen {
            self.fast_seen = fast;
            self.above_since = None;
        }
        let stood = self
            .above_since
            .is_some_and(|t| now.saturating_duration_since(t) >= interval);
        let refusing = self
            .last_turned_away
            .is_some_and(|t| now.saturating_duration_since(t) < interval);
        self.on = stood || (self.on && (refusing || self.above_since.is_some()));
        self.on
    }
}

/// Two measured rates per class, in admissions per second: how fast
/// permits went to the classes above it, and how fast its own waiters were
/// admitted from the queue. Each is an exponentially weighted mean whose
/// memory is the class's own queue timeout, the horizon over which its
/// waiters are overtaken and served.
#[derive(Debug, Default)]
pub(super) struct Rates {
    overtaking: [f64; 5],
    drained: [f64; 5],
    /// When the rates were last brought up to date, and the counts then:
    /// admissions of each class (the gate's), and admissions of each
    /// class's waiters.
    last: Option<(Instant, [u64; 5], [u64; 5])>,
    /// When the first count was taken: until a memory has passed, the
    /// rates are corrected for the time they have not seen.
    since: Option<Instant>,
}

impl Rates {
    /// Folds in the admissions since the last update; `drained` counts the
    /// admissions of each class's waiters so far.
    pub(super) fn update(
        &mut self,
        gate: &Gate,
        drained: [u64; 5],
        timeouts: &[Duration; 5],
        now: Instant,
    ) {
        let admitted: [u64; 5] = std::array::from_fn(|i| gate.admitted(class(i)));
        let Some((then, before, drained_before)) = self.last else {
            self.last = Some((now, admitted, drained));
            self.since = Some(now);
            return;
        };
        let dt = now.saturating_duration_since(then).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        // Counts spread evenly over `dt`.
        let mut above = 0;
        for i in (0..5).rev() {
            let decay = (-dt / timeouts[i].as_secs_f64()).exp();
            let fold = |rate: f64, count: u64| rate * decay + count as f64 / dt * (1.0 - decay);
            self.overtaking[i] = fold(self.overtaking[i], above);
            self.drained[i] = fold(
                self.drained[i],
                drained[i].saturating_sub(drained_before[i]),
            );
            above += admitted[i].saturating_sub(before[i]);
        }
        self.last = Some((now, admitted, drained));
    }

    /// Corrects a rate of class `p` for the part of its memory not yet seen.
    fn corrected(&self, rate: f64, timeout: Duration, now: Instant) -> f64 {
        let Some(since) = self.since else { return 0.0 };
        let seen = now.saturating_duration_since(since).as_secs_f64();
        let weight = 1.0 - (-seen / timeout.as_secs_f64()).exp();
        if weight > 0.0 { rate / weight } else { 0.0 }
    }
}

fn class(i: usize) -> Priority {
    Priority::from_index(i).expect("five classes")
}

impl State {
    /// Whether the queue of class `p` stands now (see [`Standing`]).
    pub(super) fn standing(&mut self, p: Priority, now: Instant) -> bool {
        let timeout = self.config.timeouts[p.index()];
        let fast = self.fast_admissions_of(p);
        self.standing[p.index()].update(timeout, now, fast)
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
    /// front at the rate its waiters were admitted (Little's law). The
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
        let hold = self.stats.mean_hold().as_secs_f64();
        if hold <= 0.0 {
            return Duration::ZERO;
        }
        let mu = self.gate.limit() as f64 / hold;
        let lifo = self.lifo_for(p);
        let own = if lifo { 0 } else { self.class_len(p) };
        match self.config.drain {
            Drain::Priority => {
                let above: usize = Priority::ALL
                    .into_iter()
                    .filter(|&q| q > p)
                    .map(|q| self.class_len(q))
                    .sum();
                let timeout = self.config.timeouts[p.index()];
                let rates = &self.rates;
                let left = mu - rates.corrected(rates.overtaking[p.index()], timeout, now);
                if left <= 0.0 {
                    return Duration::MAX;
                }
                let drained = rates.corrected(rates.drained[p.index()], timeout, now);
                let forecast = wait(above + own, left);
                let little = wait(own, drained);
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
