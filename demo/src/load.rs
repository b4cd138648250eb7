//! The open-loop load generator: each request is sent at its scheduled time,
//! whatever happened to the earlier ones, and its latency is measured from
//! that time, so a stalled server cannot hide its stall (no coordinated
//! omission).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower_pressure::Priority;

/// The default share of each class in the offered load, `Bulk` first:
/// Bulk 15 %, Low 25 %, Normal 35 %, High 20 %, Critical 5 %.
pub(crate) const MIX: [f64; 5] = [0.15, 0.25, 0.35, 0.20, 0.05];

/// Requests in flight at most; past this the generator counts the request
/// as failed rather than open more sockets.
const MAX_IN_FLIGHT: usize = 4000;

/// What happened to one class's requests in one phase.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClassResult {
    pub(crate) class: &'static str,
    pub(crate) offered: u64,
    /// Answered `200` within the class's objective.
    pub(crate) good: u64,
    /// Answered `200` too late.
    pub(crate) late: u64,
    /// Refused (`503`/`429`).
    pub(crate) rejected: u64,
    /// Timed out, failed, or not sent (too many in flight).
    pub(crate) failed: u64,
    pub(crate) ok_p50_ms: f64,
    pub(crate) ok_p99_ms: f64,
    pub(crate) ok_p999_ms: f64,
    pub(crate) rejected_p99_ms: f64,
}

struct ClassStats {
    offered: u64,
    good: u64,
    late: u64,
    rejected: u64,
    failed: u64,
    ok: Histogram<u64>,
    refused: Histogram<u64>,
}

impl ClassStats {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds");
        ClassStats {
            offered: 0,
            good: 0,
            late: 0,
            rejected: 0,
            failed: 0,
            ok: h(),
            refused: h(),
        }
    }

    fn result(&self, p: Priority) -> ClassResult {
        let ms = |h: &Histogram<u64>, q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1000.0
            }
        };
        ClassResult {
            class: p.as_str(),
            offered: self.offered,
            good: self.good,
            late: self.late,
            rejected: self.rejected,
            failed: self.failed,
            ok_p50_ms: ms(&self.ok, 0.50),
            ok_p99_ms: ms(&self.ok, 0.99),
            ok_p999_ms: ms(&self.ok, 0.999),
            rejected_p99_ms: ms(&self.refused, 0.99),
        }
    }
}

/// A small deterministic generator (xorshift64*), so runs are repeatable.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub(crate) fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A class drawn from `mix` (shares by class, `Bulk` first, summing to 1).
    pub(crate) fn class_of(&mut self, mix: [f64; 5]) -> Priority {
        let mut u = self.next_f64();
        let mut last = Priority::Normal;
        for p in Priority::ALL {
            if mix[p.index()] <= 0.0 {
                continue;
            }
            last = p;
            u -= mix[p.index()];
            if u < 0.0 {
                return p;
            }
        }
        last
    }
}

/// The generator's HTTP client.
pub(crate) type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `200` within the class's objective.
    Good,
    /// `200`, too late.
    Late,
    /// Refused (`503`/`429`).
    Rejected,
    /// Timed out, failed, or not sent.
    Failed,
}

/// One request: when it was scheduled (from the start of the run), its
/// class, how it ended, and its latency from its scheduled time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) at: Duration,
    pub(crate) class: Priority,
    pub(crate) outcome: Outcome,
    pub(crate) micros: u64,
}

/// A schedule of `rate` requests a second for `duration`, starting at
/// `from`, with classes drawn from `mix`.
pub(crate) fn constant(
    rate: f64,
    from: Duration,
    duration: Duration,
    mix: [f64; 5],
    rng: &mut Rng,
) -> Vec<(Duration, Priority)> {
    let n = (rate * duration.as_secs_f64()).round() as u64;
    (0..n)
        .map(|i| {
            let at = from + Duration::from_secs_f64(i as f64 / rate);
            (at, rng.class_of(mix))
        })
        .collect()
}

/// A schedule of Poisson arrivals at `rate` requests a second on average for
/// `duration`, starting at `from`, with classes drawn from `mix`:
/// exponential gaps, so requests bunch up and leave holes as independent
/// clients do.
pub(crate) fn poisson(
    rate: f64,
    from: Duration,
    duration: Duration,
    mix: [f64; 5],
    rng: &mut Rng,
) -> Vec<(Duration, Priority)> {
    let end = duration.as_secs_f64();
    let mut t = 0.0;
    let mut out = Vec::with_capacity((rate * end) as usize + 16);
    loop {
        // 1 − u is in (0, 1], so the logarithm is finite.
        t += -(1.0 - rng.next_f64()).ln() / rate;
        if t >= end {
            return out;
        }
        out.push((from + Duration::from_secs_f64(t), rng.class_of(mix)));
    }
}

/// How requests are spread over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrivals {
    /// Evenly spaced.
    Constant,
    /// Poisson: exponential gaps.
    Poisson,
}

impl Arrivals {
    /// `rate` requests a second from `from` for `duration`, with classes
    /// drawn from `mix`.
    pub(crate) fn schedule(
        self,
        rate: f64,
        from: Duration,
        duration: Duration,
        mix: [f64; 5],
        rng: &mut Rng,
    ) -> Vec<(Duration, Priority)> {
        match self {
            Arrivals::Constant => constant(rate, from, duration, mix, rng),
            Arrivals::Poisson => poisson(rate, from, duration, mix, rng),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Arrivals::Constant => "constant",
            Arrivals::Poisson => "poisson",
        }
    }
}

/// Sends each request of `schedule` at its time (open loop), and waits (at
/// most `timeout` past the last send) for the answers.
pub(crate) async fn drive(
    client: &HttpClient,
    addr: SocketAddr,
    schedule: &[(Duration, Priority)],
    timeout: Duration,
    slo: [Duration; 5],
) -> Vec<Sample> {
    // One slot per scheduled request; a slot still empty at the end failed.
    let samples: Arc<Mutex<Vec<Option<Sample>>>> = Arc::new(Mutex::new(vec![None; schedule.len()]));
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = JoinSet::new();
    for (i, &(offset, class)) in schedule.iter().enumerate() {
        let at = start + offset;
        tokio::time::sleep_until(at).await;
        // Reap finished requests so the set stays small.
        while tasks.try_join_next().is_some() {}
        let samples = samples.clone();
        if tasks.len() >= MAX_IN_FLIGHT {
            continue;
        }
        let client = client.clone();
        let uri = format!("http://{addr}{}", voice_gateway::PATHS[class.index()]);
        let objective = slo[class.index()];
        tasks.spawn(async move {
            let answer = tokio::time::timeout(timeout, async {
                let res = client.get(uri.parse().expect("a valid uri")).await?;
                let status = res.status();
                res.into_body().collect().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(status)
            })
            .await;
            // Measured from the scheduled time, not the send time.
            let micros = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX);
            let outcome = match answer {
                Ok(Ok(status)) if status.is_success() => {
                    if Duration::from_micros(micros) <= objective {
                        Outcome::Good
                    } else {
                        Outcome::Late
                    }
                }
                Ok(Ok(status)) if status.as_u16() == 503 || status.as_u16() == 429 => {
                    Outcome::Rejected
                }
                _ => Outcome::Failed,
            };
            lock(&samples)[i] = Some(Sample {
                at: offset,
                class,
                outcome,
                micros,
            });
        });
    }
    let deadline = Instant::now() + timeout + Duration::from_millis(200);
    while !tasks.is_empty() {
        if tokio::time::timeout_at(deadline, tasks.join_next())
            .await
            .is_err()
        {
            tasks.abort_all();
            break;
        }
    }
    let done = std::mem::take(&mut *lock(&samples));
    done.into_iter()
        .zip(schedule)
        .map(|(sample, &(at, class))| {
            sample.unwrap_or(Sample {
                at,
                class,
                outcome: Outcome::Failed,
                micros: 0,
            })
        })
        .collect()
}

/// The p99 time to a refusal, all classes together (0 when none).
pub(crate) fn rejected_p99_ms(samples: &[Sample]) -> f64 {
    let mut h = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("valid bounds");
    for s in samples.iter().filter(|s| s.outcome == Outcome::Rejected) {
        h.saturating_record(s.micros);
    }
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// Per-class results of a set of samples.
pub(crate) fn summarize(samples: &[Sample]) -> Vec<ClassResult> {
    let mut stats: Vec<ClassStats> = Priority::ALL.iter().map(|_| ClassStats::new()).collect();
    for s in samples {
        let c = &mut stats[s.class.index()];
        c.offered += 1;
        match s.outcome {
            Outcome::Good => {
                c.good += 1;
                c.ok.saturating_record(s.micros);
            }
            Outcome::Late => {
                c.late += 1;
                c.ok.saturating_record(s.micros);
            }
            Outcome::Rejected => {
                c.rejected += 1;
                c.refused.saturating_record(s.micros);
            }
            Outcome::Failed => c.failed += 1,
        }
    }
    Priority::ALL
        .iter()
        .map(|&p| stats[p.index()].result(p))
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_arrivals_average_the_rate_and_vary_their_gaps() {
        let mut rng = Rng::new(7);
        let s = poisson(
            1000.0,
            Duration::from_secs(1),
            Duration::from_secs(10),
            MIX,
            &mut rng,
        );
        // 10,000 expected; a Poisson count has a standard deviation of 100.
        assert!((9_500..=10_500).contains(&s.len()), "{} arrivals", s.len());
        assert!(s.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
        assert!(s[0].0 >= Duration::from_secs(1) && s[s.len() - 1].0 < Duration::from_secs(11));
        let gaps: Vec<f64> = s
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).as_secs_f64())
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        // Exponential gaps: the standard deviation equals the mean (1 ms).
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.1,
            "cv {}",
            var.sqrt() / mean
        );
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced() {
        let mut rng = Rng::new(7);
        let s = constant(100.0, Duration::ZERO, Duration::from_secs(1), MIX, &mut rng);
        assert_eq!(s.len(), 100);
        assert!(
            s.windows(2)
                .all(|w| w[1].0 - w[0].0 == Duration::from_millis(10)
                    || (w[1].0 - w[0].0).abs_diff(Duration::from_millis(10))
                        < Duration::from_micros(1))
        );
    }

    #[test]
    fn a_mix_without_a_class_never_draws_it() {
        let mut rng = Rng::new(3);
        for _ in 0..10_000 {
            assert_eq!(rng.class_of([0.0, 0.0, 1.0, 0.0, 0.0]), Priority::Normal);
            assert_ne!(rng.class_of([0.0, 0.4, 0.6, 0.0, 0.0]), Priority::Bulk);
        }
    }

    #[test]
    fn the_class_mix_follows_the_shares() {
        let mut rng = Rng::new(11);
        let mut n = [0u32; 5];
        for _ in 0..100_000 {
            n[rng.class_of(MIX).index()] += 1;
        }
        for p in Priority::ALL {
            let share = f64::from(n[p.index()]) / 100_000.0;
            assert!((share - MIX[p.index()]).abs() < 0.01, "{p}: {share}");
        }
    }
}
