//! The queue's estimates: how long a waiter of a class would wait, given the
//! measured service rate and the arrival rates of the classes that overtake
//! it, and what follows from them — refusing at once what would only time
//! out, shedding waiters made hopeless, advising `retry_after`.

use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;
use tower_pressure_core::{Priority, Reason};

use super::{MAX_RETRY_AFTER, State, Status};
use crate::limiter::config::Drain;

/// How often arrival rates are refreshed.
const RATE_WINDOW_SECS: f64 = 0.25;
/// How much of the past a class's arrival rate remembers while its load
/// holds steady, in seconds. A quarter second of Poisson arrivals alone is
/// too noisy (±17 % at 140 a second), and the rate left to the lowest class
/// served, a small difference of large rates, swung by more than itself —
/// waiters of that class were then refused as hopeless when they would have
/// made it.
const RATE_MEMORY_SECS: f64 = 2.5;
/// How many standard deviations of noise a window's count may stray from
/// what the rate predicts before it is taken, on its own, as a change of
/// load: the rate then starts afresh from that window. A step to 5× strays
/// by ten or more.
const RATE_JUMP_SIGMAS: f64 = 5.0;
/// How far two windows in a row may stray the same way before they are
/// taken as a change of load: the rate then starts afresh from the two. One
/// such window alone is noise — with five classes and four windows a
/// second, one comes every few minutes, and starting afresh from it set a
/// rate from the very window least like the load.
const RATE_DRIFT_SIGMAS: f64 = 3.0;
/// How lucky a waiter may get before it is shed as hopeless: the standard
/// deviations of Poisson noise by which the overtaking classes may send
/// fewer requests than their rates predict (see
/// [`State::may_be_admitted_within`]).
const HOPELESS_SIGMAS: f64 = 2.0;
/// A class arriving at less than this share of the rate left to it is not
/// overloaded: its queue drains, and its newcomers may use all of their
/// timeout (see [`State::margin`]).
const UNDERLOADED: f64 = 0.8;

impl State {
    /// Under [`Drain::Priority`], a newcomer of class `p` pushes every
    /// waiter of a lower class further back. Refuses now, rather than at
    /// their timeout, the lower waiters the estimate says can no longer be
    /// admitted in time: the newest and the oldest of each lower class are
    /// checked, so this costs a few steps, not a scan of the queue.
    pub(super) fn shed_hopeless(&mut self, p: Priority, now: Instant, wake: &mut Vec<Waker>) {
        if self.config.drain != Drain::Priority || self.stats.mean_hold().is_zero() {
            return;
        }
        for q in Priority::ALL.into_iter().take_while(|&q| q < p) {
            let above: usize = Priority::ALL
                .into_iter()
                .filter(|&r| r > q)
                .map(|r| self.class_len(r))
                .sum();
            let timeout = self.config.timeouts[q.index()];
            loop {
                let list = self.classes[q.index()];
                let (Some(head), Some(tail)) = (list.head(), list.tail()) else {
                    break;
                };
                // The tail waits behind everyone; the head has the least time left.
                let hopeless = |key: usize, ahead: usize| {
                    let left = (self.nodes[key].enqueued + timeout).saturating_duration_since(now);
                    !self.may_be_admitted_within(q, ahead, left)
                };
                let victim = if hopeless(tail, above + list.len() - 1) {
                    tail
                } else if hopeless(head, above) {
                    head
                } else {
                    break;
                };
                self.stats.refused(q, Reason::DeadlineUnmeetable);
                self.finish(victim, Status::Refused(Reason::DeadlineUnmeetable), wake);
                self.outrank_below(q, now);
            }
        }
    }

    /// The measured service rate (`limit` / mean hold time) and, under
    /// [`Drain::Priority`], the arrival rate of the classes that overtake
    /// `p`, in admissions per second. `None` while nothing has been measured.
    fn rates(&self, p: Priority) -> Option<(f64, f64)> {
        let hold = self.stats.mean_hold().as_secs_f64();
        if hold <= 0.0 {
            return None;
        }
        let mu = self.gate.limit() as f64 / hold;
        let overtaking: f64 = match self.config.drain {
            Drain::Priority => Priority::ALL
                .into_iter()
                .filter(|&r| r > p)
                .map(|r| self.arrival_rate[r.index()].per_sec())
                .sum(),
            _ => 0.0,
        };
        Some((mu, overtaking))
    }

    /// How fast waiters of class `p` are served, in admissions per second:
    /// the service rate less what overtaking classes take. `None` while
    /// nothing has been measured.
    fn service_rate(&self, p: Priority) -> Option<f64> {
        self.rates(p).map(|(mu, overtaking)| mu - overtaking)
    }

    /// Whether a waiter of class `p` with `ahead` waiters before it may
    /// still be admitted within `left`: whether it would be if the
    /// overtaking classes sent [`HOPELESS_SIGMAS`] standard deviations of
    /// Poisson noise fewer requests than their rates predict. A waiter is
    /// shed as hopeless only when even that luck would not save it: near
    /// capacity, the rate left to the lowest class served is a small
    /// difference of large rates, and a waiter shed on the mean estimate
    /// would often have made it — work the service had room for, lost.
    /// No luck saves a class the classes above it starve (arriving faster
    /// than the service admits): what of them it does not admit is refused,
    /// not absent, and one of them fewer only makes room for the next. True
    /// while nothing has been measured.
    fn may_be_admitted_within(&self, p: Priority, ahead: usize, left: Duration) -> bool {
        let Some((mu, overtaking)) = self.rates(p) else {
            return true;
        };
        if overtaking >= mu {
            return false;
        }
        let t = left.as_secs_f64();
        let expected = overtaking * t;
        // Fewer than none cannot come.
        let lucky = (expected - HOPELESS_SIGMAS * expected.sqrt()).max(0.0);
        mu * t - lucky >= (ahead + 1) as f64
    }

    /// Whether a newcomer of `p` could not be admitted within `timeout` even
    /// with luck (see [`may_be_admitted_within`](Self::may_be_admitted_within)):
    /// what bounds a class whose margin is above one.
    pub(super) fn hopeless_newcomer(&self, p: Priority, timeout: Duration) -> bool {
        self.newcomer_waits() && !self.may_be_admitted_within(p, self.ahead_of_newcomer(p), timeout)
    }

    /// Whether a newcomer would wait at all: no permit is free, or somebody
    /// waits already.
    fn newcomer_waits(&self) -> bool {
        self.gate.in_flight() >= self.gate.limit() || !self.all.is_empty()
    }

    /// How many waiters a newcomer of `p` would wait behind.
    fn ahead_of_newcomer(&self, p: Priority) -> usize {
        match self.config.drain {
            Drain::Priority => Priority::ALL
                .into_iter()
                .filter(|&q| q >= p)
                .map(|q| self.class_len(q))
                .sum(),
            _ => self.queue_len(),
        }
    }

    /// How much of its timeout a newcomer of `p` may expect to wait and still
    /// queue. The configured margin guards against refusals after a wait,
    /// which happen when a class is overloaded: its waiters are pushed back
    /// and time out. A class known to arrive well below the rate left to it
    /// is not: a queue of it is a burst that drains, so all of its timeout
    /// is usable (or more, with a configured margin above one), and its
    /// newcomers are not refused for a moment's queue.
    pub(super) fn margin(&self, p: Priority) -> f64 {
        let configured = self.config.queue_margins[p.index()];
        match self.service_rate(p) {
            Some(rate)
                if self.rates_measured
                    && self.arrival_rate[p.index()].per_sec() < UNDERLOADED * rate =>
            {
                configured.max(1.0)
            }
            _ => configured,
        }
    }

    /// Whether class `p` arrives faster than the rate left to it, by the
    /// measured rates, under [`Drain::Priority`] with outranking on: it is
    /// being turned away, and (as after two refusals within the outrank
    /// window) no newcomer below it is admitted — a permit that comes free
    /// in a moment it has nobody waiting is kept for its next arrival.
    ///
    /// The rates alone are not trusted to say so: the class must also wait
    /// now or have been refused for load within the rates' memory. A mean
    /// hold time left long by a slow spell (holds are measured less often
    /// while the lock is taken for every admission) would otherwise keep
    /// the classes below out of a service that has recovered.
    pub(super) fn overloaded(&self, p: Priority, now: Instant) -> bool {
        self.rates_measured
            && self.config.drain == Drain::Priority
            && !self.config.outrank_window.is_zero()
            && (self.class_len(p) > 0
                || self.last_refused[p.index()].is_some_and(|t| {
                    now.saturating_duration_since(t).as_secs_f64() < RATE_MEMORY_SECS
                }))
            && self
                .service_rate(p)
                .is_some_and(|rate| self.arrival_rate[p.index()].per_sec() > rate)
    }

    /// The highest class with classes below it that is
    /// [`overloaded`](Self::overloaded), if any.
    pub(super) fn highest_overloaded(&self, now: Instant) -> Option<Priority> {
        Priority::ALL
            .into_iter()
            .skip(1)
            .rev()
            .find(|&p| self.overloaded(p, now))
    }

    /// How long a waiter of class `p` with `ahead` waiters before it would
    /// wait: `(ahead + 1) / rate`, where the rate leaves out what overtaking
    /// classes take. `Duration::MAX` when they take it all (the class is
    /// starved); zero while nothing has been measured.
    fn wait_behind(&self, p: Priority, ahead: usize) -> Duration {
        match self.service_rate(p) {
            None => Duration::ZERO,
            Some(rate) if rate <= 0.0 => Duration::MAX,
            Some(rate) => {
                Duration::try_from_secs_f64((ahead + 1) as f64 / rate).unwrap_or(Duration::MAX)
            }
        }
    }

    /// How long a newcomer of priority `p` would wait: the waiters it cannot
    /// overtake plus itself, at the rate left to its class. Zero while
    /// nothing has been measured or when a permit is free.
    pub(crate) fn estimated_wait(&self, p: Priority) -> Duration {
        if !self.newcomer_waits() {
            return Duration::ZERO;
        }
        self.wait_behind(p, self.ahead_of_newcomer(p))
    }

    /// Refreshes the arrival rate of each class, every 250 ms at most, from
    /// how many requests of it have been admitted, refused for load or are waiting
    /// (see [`ArrivalRate`]).
    pub(super) fn update_arrival_rates(&mut self, now: Instant) {
        let totals: [u64; 5] = std::array::from_fn(|i| {
            let p = Priority::from_index(i).expect("five classes");
            (self.gate.admitted(p) + self.stats.counts[i].refused() + self.class_len(p) as u64)
                .saturating_sub(self.stats.not_load[i])
        });
        match self.rate_window {
            None => self.rate_window = Some((now, totals)),
            Some((start, before)) => {
                let secs = now.saturating_duration_since(start).as_secs_f64();
                if secs < RATE_WINDOW_SECS {
                    return;
                }
                self.rates_measured = true;
                for i in 0..5 {
                    let count = totals[i].saturating_sub(before[i]) as f64;
                    self.arrival_rate[i].add(count, secs);
                }
                self.rate_window = Some((now, totals));
                if self.highest_overloaded(now).is_some() {
                    // Lower newcomers go through the lock to be refused.
                    self.gate.set_outranking(true);
                }
            }
        }
    }

    /// When a refused client should try again: the time to drain the queue
    /// at the measured rate, between 1 s and [`MAX_RETRY_AFTER`].
    pub(crate) fn retry_after(&self) -> Duration {
        let drain = self
            .stats
            .mean_hold()
            .mul_f64((self.queue_len() + 1) as f64 / self.gate.limit() as f64);
        drain.clamp(tower_pressure_core::MIN_RETRY_AFTER, MAX_RETRY_AFTER)
    }
}

/// One class's arrival rate: the arrivals counted over the time since its
/// load last changed, at most [`RATE_MEMORY_SECS`] of it.
///
/// While the load holds steady, each window's count is added in and the
/// oldest time is forgotten, so the rate is the mean over the last few
/// seconds. A change of load is a window whose count strays from what the
/// rate predicts by more than [`RATE_JUMP_SIGMAS`] standard deviations of
/// noise (the window's Poisson noise and the rate's own error), or two in a
/// row that stray the same way by more than [`RATE_DRIFT_SIGMAS`]: the rate
/// then starts afresh from the window(s) that showed it, and is the mean
/// since the change from then on. A step to 5× is seen in one window. So is
/// a window after a long quiet gap: the old rate says nothing of it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(in crate::limiter) struct ArrivalRate {
    count: f64,
    secs: f64,
    /// The last window, when it strayed by more than [`RATE_DRIFT_SIGMAS`]
    /// (count, seconds, which way): not yet in the rate.
    strayed: Option<(f64, f64, bool)>,
}

impl ArrivalRate {
    /// Arrivals per second; zero before any window.
    pub(in crate::limiter) fn per_sec(self) -> f64 {
        if self.secs > 0.0 {
            self.count / self.secs
        } else {
            0.0
        }
    }

    /// Adds a window of `secs` that saw `count` arrivals.
    fn add(&mut self, count: f64, secs: f64) {
        if self.secs <= 0.0 || secs > 4.0 * RATE_WINDOW_SECS {
            *self = ArrivalRate::starting(count, secs);
            return;
        }
        let expected = self.per_sec() * secs;
        let sigma = (expected.max(1.0) * (1.0 + secs / self.secs)).sqrt();
        let off = (count - expected) / sigma;
        let up = off > 0.0;
        if off.abs() > RATE_JUMP_SIGMAS {
            *self = ArrivalRate::starting(count, secs);
        } else if off.abs() > RATE_DRIFT_SIGMAS {
            match self.strayed.take() {
                Some((c, t, was_up)) if was_up == up => {
                    *self = ArrivalRate::starting(c + count, t + secs);
                }
                Some((c, t, _)) => {
                    // One way, then the other: the first was noise.
                    self.fold(c, t);
                    self.strayed = Some((count, secs, up));
                }
                None => self.strayed = Some((count, secs, up)),
            }
        } else {
            // A lone window that strayed was noise after all: count it in.
            if let Some((c, t, _)) = self.strayed.take() {
                self.fold(c, t);
            }
            self.fold(count, secs);
        }
    }

    fn starting(count: f64, secs: f64) -> ArrivalRate {
        ArrivalRate {
            count,
            secs,
            strayed: None,
        }
    }

    /// Counts a window in, forgetting time past [`RATE_MEMORY_SECS`].
    fn fold(&mut self, count: f64, secs: f64) {
        let keep = ((RATE_MEMORY_SECS - secs) / self.secs).clamp(0.0, 1.0);
        self.count = self.count * keep + count;
        self.secs = self.secs * keep + secs;
    }
}

#[cfg(test)]
mod tests {
    use super::ArrivalRate;

    fn after(windows: &[f64]) -> ArrivalRate {
        let mut r = ArrivalRate::default();
        for &count in windows {
            r.add(count, 0.25);
        }
        r
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn steady_load_is_the_mean_of_the_last_seconds() {
        // 140/s over 250 ms windows, with noise: the mean of the windows.
        let r = after(&[35.0, 41.0, 30.0, 38.0]);
        assert!(close(r.per_sec(), 144.0 / 1.0), "{r:?}");
        // A window at the edge of noise moves it by its share, no more.
        let steady = after(&[35.0; 10]);
        let mut r = steady;
        r.add(48.0, 0.25);
        assert!(close(r.per_sec(), (35.0 * 9.0 + 48.0) / 2.5), "{r:?}");
        // Ten seconds of it still weigh only the last two and a half.
        let mut long = after(&[35.0; 40]);
        long.add(48.0, 0.25);
        assert!(close(long.per_sec(), r.per_sec()), "{long:?}");
        // One window past three sigmas (~55 where 35 come) is held back: if
        // the next is ordinary, both are counted in as noise.
        let mut r = steady;
        r.add(55.0, 0.25);
        assert!(close(r.per_sec(), 140.0), "{r:?}");
        r.add(35.0, 0.25);
        // (Each window forgets a tenth of the 2.5 s before it.)
        let both = 0.9 * (0.9 * 350.0 + 55.0) + 35.0;
        assert!(close(r.per_sec(), both / 2.5), "{r:?}");
    }

    #[test]
    fn a_change_of_load_is_taken_at_once_and_then_averaged() {
        // Five times the load: taken as it is …
        let mut r = after(&[35.0; 10]);
        r.add(175.0, 0.25);
        assert!(close(r.per_sec(), 700.0), "{r:?}");
        // … and the windows after it are averaged with it, not with the old load.
        r.add(165.0, 0.25);
        assert!(close(r.per_sec(), 680.0), "{r:?}");
        // Twice a load of 80/s strays by less: taken after a second window
        // that strays the same way, from the two.
        let mut r = after(&[20.0; 10]);
        r.add(40.0, 0.25);
        assert!(close(r.per_sec(), 80.0), "{r:?}");
        r.add(38.0, 0.25);
        assert!(close(r.per_sec(), 156.0), "{r:?}");
        // A class that starts arriving is seen at once, and one that stops.
        assert!(close(after(&[0.0, 0.0, 8.0]).per_sec(), 32.0));
        assert!(close(after(&[35.0, 35.0, 35.0, 0.0]).per_sec(), 0.0));
    }

    #[test]
    fn one_noisy_window_does_not_stand_for_seconds() {
        // 36 a second, a quarter second at a time, then a burst of 20 where
        // 9 come (3.5 sigma): held back, and counted in as noise when the
        // next window is ordinary. Taking it as a change (as this estimate
        // once did) made it the rate, 80/s, for seconds.
        let mut r = after(&[9.0; 10]);
        r.add(20.0, 0.25);
        assert!(close(r.per_sec(), 36.0), "{r:?}");
        r.add(9.0, 0.25);
        r.add(9.0, 0.25);
        assert!((r.per_sec() - 36.0).abs() < 5.0, "{r:?}");
        // One way (55 where 35 come), then the other (15): the first was
        // noise and is counted in; the second is held back in its turn.
        let mut r = after(&[35.0; 10]);
        r.add(55.0, 0.25);
        r.add(15.0, 0.25);
        assert!(close(r.per_sec(), (0.9 * 350.0 + 55.0) / 2.5), "{r:?}");
    }

    #[test]
    fn after_a_long_quiet_gap_the_old_rate_says_nothing() {
        // Two seconds at about the old rate: within noise, yet the window
        // alone is the rate (folded in, it would be 132/s).
        let mut r = after(&[35.0; 10]);
        r.add(260.0, 2.0);
        assert!(close(r.per_sec(), 130.0), "{r:?}");
    }
}
