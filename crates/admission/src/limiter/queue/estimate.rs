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
/// The weight of the newest window in a class's arrival rate while the rate
/// holds steady: about two and a half seconds of memory. A quarter second of
/// Poisson arrivals alone is too noisy (±17 % at 140 a second), and the rate
/// left to the lowest class served, a small difference of large rates,
/// swung by more than itself — waiters of that class were then refused as
/// hopeless when they would have made it.
const RATE_EWMA_ALPHA: f64 = 0.1;
/// How many standard deviations of Poisson noise (√ of the expected count)
/// a window's count may stray from the smoothed rate before it is taken as
/// a change of load rather than noise: the rate then jumps to the window's.
const RATE_CHANGE_SIGMAS: f64 = 3.0;
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
                    self.wait_behind(q, ahead) > left
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

    /// How fast waiters of class `p` are served, in admissions per second:
    /// the measured service rate (`limit` / mean hold time) less, under
    /// [`Drain::Priority`], the arrival rate of the classes that overtake
    /// `p`. `None` while nothing has been measured.
    fn service_rate(&self, p: Priority) -> Option<f64> {
        let hold = self.stats.mean_hold().as_secs_f64();
        if hold <= 0.0 {
            return None;
        }
        let mu = self.gate.limit() as f64 / hold;
        let overtaking: f64 = match self.config.drain {
            Drain::Priority => Priority::ALL
                .into_iter()
                .filter(|&r| r > p)
                .map(|r| self.arrival_rate[r.index()])
                .sum(),
            _ => 0.0,
        };
        Some(mu - overtaking)
    }

    /// How much of its timeout a newcomer of `p` may expect to wait and still
    /// queue. The configured margin guards against refusals after a wait,
    /// which happen when a class is overloaded: its waiters are pushed back
    /// and time out. A class known to arrive well below the rate left to it
    /// is not: a queue of it is a burst that drains, so all of its timeout
    /// is usable, and its newcomers are not refused for a moment's queue.
    pub(super) fn margin(&self, p: Priority) -> f64 {
        let configured = self.config.queue_margins[p.index()];
        match self.service_rate(p) {
            Some(rate)
                if self.rates_measured && self.arrival_rate[p.index()] < UNDERLOADED * rate =>
            {
                1.0
            }
            _ => configured,
        }
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
        if self.gate.in_flight() < self.gate.limit() && self.all.is_empty() {
            return Duration::ZERO;
        }
        let ahead = match self.config.drain {
            Drain::Priority => Priority::ALL
                .into_iter()
                .filter(|&q| q >= p)
                .map(|q| self.class_len(q))
                .sum(),
            _ => self.queue_len(),
        };
        self.wait_behind(p, ahead)
    }

    /// Refreshes the arrival rate of each class, every 250 ms at most, from
    /// how many requests of it have been admitted, refused or are waiting
    /// (see [`smoothed_rate`]).
    pub(super) fn update_arrival_rates(&mut self, now: Instant) {
        let totals: [u64; 5] = std::array::from_fn(|i| {
            let p = Priority::from_index(i).expect("five classes");
            self.gate.admitted(p) + self.stats.counts[i].refused() + self.class_len(p) as u64
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
                    let old = self.arrival_rate[i];
                    self.arrival_rate[i] = smoothed_rate(old, count, secs);
                }
                self.rate_window = Some((now, totals));
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

/// The arrival rate after a window of `secs` that saw `count` arrivals,
/// from the rate `old` before it: smoothed while the count is within Poisson
/// noise of what `old` predicts, the window's own rate once it is not (the
/// load changed: a step to 5× is seen in one window, not in seconds), and
/// after a long quiet gap.
fn smoothed_rate(old: f64, count: f64, secs: f64) -> f64 {
    let rate = count / secs;
    let expected = old * secs;
    let changed = (count - expected).abs() > RATE_CHANGE_SIGMAS * expected.max(1.0).sqrt();
    if changed || secs > 4.0 * RATE_WINDOW_SECS {
        rate
    } else {
        RATE_EWMA_ALPHA * rate + (1.0 - RATE_EWMA_ALPHA) * old
    }
}

#[cfg(test)]
mod tests {
    use super::smoothed_rate;

    #[test]
    fn noise_is_smoothed_and_a_change_of_load_is_taken_at_once() {
        // 140/s over 250 ms predicts 35 arrivals; 41 is within noise.
        let r = smoothed_rate(140.0, 41.0, 0.25);
        assert!((r - (0.1 * 164.0 + 0.9 * 140.0)).abs() < 1e-9, "{r}");
        // 70 is twice the load: taken as it is.
        assert_eq!(smoothed_rate(140.0, 70.0, 0.25), 280.0);
        // A class that starts arriving is seen at once.
        assert_eq!(smoothed_rate(0.0, 5.0, 0.25), 20.0);
        // And one that stops.
        assert_eq!(smoothed_rate(140.0, 0.0, 0.25), 0.0);
        // After a long quiet gap the old rate says nothing.
        assert_eq!(smoothed_rate(140.0, 10.0, 2.0), 5.0);
    }
}
