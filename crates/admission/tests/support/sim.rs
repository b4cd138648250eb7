//! Load simulated on paused time: arrivals at scheduled instants, each
//! holding its permit for a fixed time once admitted. Deterministic, so a
//! test can assert what a load does without a noisy clock.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::{Priority, Reason};

/// The demo's class mix, `Bulk` first.
pub(crate) const MIX: [f64; 5] = [0.15, 0.25, 0.35, 0.20, 0.05];

/// A small deterministic generator (xorshift64).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(crate) fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A class drawn from `mix` (shares by class, `Bulk` first).
    pub(crate) fn class(&mut self, mix: [f64; 5]) -> Priority {
        let total: f64 = mix.iter().sum();
        let mut u = self.uniform() * total;
        for p in Priority::ALL {
            u -= mix[p.index()];
            if u < 0.0 {
                return p;
            }
        }
        Priority::Critical
    }
}

/// Poisson arrivals at `rate` a second from `from` for `secs` seconds, with
/// classes drawn from `mix`: (seconds since the start, class).
pub(crate) fn poisson(
    rng: &mut Rng,
    rate: f64,
    from: f64,
    secs: f64,
    mix: [f64; 5],
) -> Vec<(f64, Priority)> {
    let mut out = Vec::new();
    let mut t = 0.0;
    loop {
        t += -(1.0 - rng.uniform()).ln() / rate;
        if t >= secs {
            return out;
        }
        out.push((from + t, rng.class(mix)));
    }
}

/// What happened to one arrival.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fate {
    /// When it arrived, in seconds since the start.
    pub(crate) at: f64,
    pub(crate) class: Priority,
    /// Why it was refused; `None` when admitted.
    pub(crate) refused: Option<Reason>,
    /// How long until it was admitted or refused.
    pub(crate) waited: Duration,
}

impl Fate {
    pub(crate) fn admitted(&self) -> bool {
        self.refused.is_none()
    }
}

/// Runs `arrivals` (sorted by time) against `limiter`, each admitted request
/// holding its permit for `hold` on average — between half and one and a
/// half times it, drawn for each arrival in whole milliseconds, as real
/// work varies (fixed holds would keep the permits granted together
/// releasing together) — and
/// returns every arrival's fate, in arrival order. Checks that nothing is
/// left in flight or queued.
pub(crate) async fn run(
    limiter: &PriorityLimiter,
    arrivals: &[(f64, Priority)],
    hold: Duration,
) -> Vec<Fate> {
    let start = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut rng = Rng::new(arrivals.len() as u64);
    for (i, &(at, class)) in arrivals.iter().enumerate() {
        // Whole milliseconds: tokio's timers fire on the next one.
        let hold = Duration::from_millis(
            (hold.as_secs_f64() * 1e3 * (0.5 + rng.uniform())).round() as u64,
        );
        tokio::time::sleep_until(start + Duration::from_secs_f64(at)).await;
        let (l, tx) = (limiter.clone(), tx.clone());
        tokio::spawn(async move {
            let arrived = Instant::now();
            let (refused, waited) = match l.acquire(class).await {
                Ok(permit) => {
                    let waited = arrived.elapsed();
                    tokio::time::sleep(hold).await;
                    drop(permit);
                    (None, waited)
                }
                Err(e) => (Some(e.reason()), arrived.elapsed()),
            };
            let _ = tx.send((
                i,
                Fate {
                    at,
                    class,
                    refused,
                    waited,
                },
            ));
        });
    }
    drop(tx);
    let mut fates = vec![None; arrivals.len()];
    while let Some((i, f)) = rx.recv().await {
        fates[i] = Some(f);
    }
    let s = limiter.snapshot();
    assert_eq!((s.in_flight, s.queue_len()), (0, 0), "nothing left behind");
    fates
        .into_iter()
        .map(|f| f.expect("every arrival ends"))
        .collect()
}

/// The `q` quantile of `waits` (zero when empty).
pub(crate) fn quantile(mut waits: Vec<Duration>, q: f64) -> Duration {
    if waits.is_empty() {
        return Duration::ZERO;
    }
    waits.sort_unstable();
    let i = ((q * waits.len() as f64).ceil() as usize).clamp(1, waits.len()) - 1;
    waits[i]
}
