//! A deterministic simulation of an overloaded service under an adaptive
//! limit, in tokio's paused time.
//!
//! # The model
//!
//! The service has `servers` workers, each serving one request at a time in
//! `base` on average: exactly `base` in the standard scenario, or uniformly
//! within `base × (1 ± jitter)` from a seeded generator (every run is still
//! the same run). A request that
//! finds every worker busy waits in the service's own FIFO queue. So the
//! service's throughput capacity is `μ = servers / base`, a request's latency
//! is `base` plus its wait, and by Little's law the concurrency that uses the
//! whole capacity without any queueing is `μ × base = servers`: that is the
//! **ideal limit** ("capacity × base latency"). Above it requests queue
//! inside the service and latency grows as `base × in_flight / servers`;
//! below it workers idle and goodput falls.
//!
//! An open-loop client sends requests at a fixed rate above capacity (no
//! waiting for answers, so no coordinated omission) through a real
//! `PriorityLimiter` (admission crate, no queue: what is not admitted is
//! refused at once) and the recording layer into the service. The limiter's
//! limit is either fixed or driven by an `AdaptiveLimit`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::Service;
use tower::{ServiceBuilder, ServiceExt};
use tower_pressure_adaptive::{
    AdaptiveLimit, Aimd, Bottleneck, Gradient2, GradientController, LimitAlgorithm, Outcome, Vegas,
};
use tower_pressure_admission::{AdmissionLayer, PriorityLimiter};
use tower_pressure_core::AsError;
use tower_pressure_core::{Priority, PriorityOf};

/// One request of the simulated client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job;

impl PriorityOf for Job {
    fn priority(&self) -> Priority {
        Priority::Normal
    }
}

/// `servers` workers of `base` latency each (± `jitter`), FIFO queue in
/// front.
#[derive(Debug, Clone)]
pub(crate) struct SimService {
    base: Duration,
    jitter: f64,
    rng: Arc<Mutex<u64>>,
    /// When each worker is next free.
    workers: Arc<Mutex<Vec<Instant>>>,
}

impl SimService {
    pub(crate) fn new(base: Duration, servers: usize, jitter: f64) -> SimService {
        let now = Instant::now();
        SimService {
            base,
            jitter,
            rng: Arc::new(Mutex::new(0x9e37_79b9_7f4a_7c15)),
            workers: Arc::new(Mutex::new(vec![now; servers])),
        }
    }

    /// Changes the number of workers. Removed workers finish what they
    /// were given; added ones are free at once.
    pub(crate) fn set_servers(&self, servers: usize) {
        let now = Instant::now();
        let mut w = self.workers.lock().unwrap();
        w.sort();
        if servers < w.len() {
            w.truncate(servers);
        } else {
            let add = servers - w.len();
            w.extend(std::iter::repeat_n(now, add));
        }
    }

    /// One request's service time.
    fn service_time(&self) -> Duration {
        if self.jitter == 0.0 {
            return self.base;
        }
        let mut x = self.rng.lock().unwrap();
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        let unit = (*x >> 11) as f64 / (1u64 << 53) as f64;
        self.base.mul_f64(1.0 + self.jitter * (2.0 * unit - 1.0))
    }

    /// When a request arriving now completes.
    fn schedule(&self) -> Instant {
        let now = Instant::now();
        let mut w = self.workers.lock().unwrap();
        let (i, free) = w
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(_, t)| t)
            .expect("at least one worker");
        let done = free.max(now) + self.service_time();
        w[i] = done;
        done
    }
}

impl Service<Job> for SimService {
    type Response = ();
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<(), Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Job) -> Self::Future {
        let done = self.schedule();
        Box::pin(async move {
            tokio::time::sleep_until(done).await;
            Ok(())
        })
    }
}

/// A stretch of the run at one capacity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Phase {
    pub(crate) servers: usize,
    pub(crate) duration: Duration,
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) base: Duration,
    /// Service times vary uniformly within `base × (1 ± jitter)`.
    pub(crate) jitter: f64,
    /// Requests per second sent by the client.
    pub(crate) rate: f64,
    pub(crate) phases: Vec<Phase>,
    /// The adaptive driver's shortest window.
    pub(crate) window: Duration,
    /// How often the limit is written down.
    pub(crate) tick: Duration,
}

impl Scenario {
    /// The standard scenario: 50 ms per request, 60 workers (ideal limit 60,
    /// capacity 1,200 req/s), then 30 (ideal 30), then 60 again, 10 s each,
    /// with the client at 1.5 × the first capacity (1,800 req/s).
    pub(crate) fn standard() -> Scenario {
        let base = Duration::from_millis(50);
        let phase = |servers| Phase {
            servers,
            duration: Duration::from_secs(10),
        };
        Scenario {
            base,
            jitter: 0.0,
            rate: 1.5 * 60.0 / base.as_secs_f64(),
            phases: vec![phase(60), phase(30), phase(60)],
            window: Duration::from_millis(100),
            tick: Duration::from_millis(100),
        }
    }

    /// The standard scenario with service times within `base × (1 ± 0.3)`.
    pub(crate) fn jittered() -> Scenario {
        Scenario {
            jitter: 0.3,
            ..Scenario::standard()
        }
    }

    /// When phase `i` starts, from the start of the run.
    pub(crate) fn phase_start(&self, i: usize) -> Duration {
        self.phases[..i].iter().map(|p| p.duration).sum()
    }

    fn total(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }
}

/// How the limit is set.
pub(crate) enum Control {
    Fixed(usize),
    Adaptive(Box<dyn LimitAlgorithm>),
}

/// One request as the client saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    /// When it was sent, from the start of the run.
    pub(crate) at: Duration,
    pub(crate) latency: Duration,
    pub(crate) ok: bool,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// `(time from start, limit)` every tick.
    pub(crate) limits: Vec<(Duration, usize)>,
    pub(crate) sent: Vec<Sent>,
}

impl Run {
    /// The limit in force at `t` (the last tick at or before it).
    pub(crate) fn limit_at(&self, t: Duration) -> usize {
        self.limits
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(0, |&(_, l)| l)
    }

    /// The `(time, limit)` ticks in `[from, to)`.
    fn ticks(&self, from: Duration, to: Duration) -> impl Iterator<Item = (Duration, usize)> + '_ {
        self.limits
            .iter()
            .copied()
            .filter(move |(at, _)| *at >= from && *at < to)
    }

    /// The least and greatest limit in `[from, to)`.
    pub(crate) fn limit_range(&self, from: Duration, to: Duration) -> (usize, usize) {
        let mut it = self.ticks(from, to).map(|(_, l)| l);
        let first = it.next().unwrap_or(0);
        it.fold((first, first), |(lo, hi), l| (lo.min(l), hi.max(l)))
    }

    /// How long after `from` the limit entered `ideal ± band` for good
    /// (every tick from then to `to` inside it); `None` if it never did.
    pub(crate) fn settled_after(
        &self,
        from: Duration,
        to: Duration,
        ideal: f64,
        band: f64,
    ) -> Option<Duration> {
        let ticks: Vec<_> = self.ticks(from, to).collect();
        let first_bad = ticks.iter().rposition(|&(_, l)| !within(l, ideal, band));
        match first_bad {
            None => Some(Duration::ZERO),
            Some(i) if i + 1 < ticks.len() => Some(ticks[i + 1].0 - from),
            Some(_) => None,
        }
    }

    /// The median limit of the ticks in `[from, to)`.
    pub(crate) fn median_limit(&self, from: Duration, to: Duration) -> usize {
        let mut ticks: Vec<usize> = self.ticks(from, to).map(|(_, l)| l).collect();
        ticks.sort_unstable();
        ticks.get(ticks.len() / 2).copied().unwrap_or(0)
    }

    /// The share of ticks in `[from, to)` whose limit was within
    /// `ideal ± band`.
    pub(crate) fn share_within(&self, from: Duration, to: Duration, ideal: f64, band: f64) -> f64 {
        let (mut inside, mut all) = (0, 0);
        for (_, l) in self.ticks(from, to) {
            all += 1;
            inside += usize::from(within(l, ideal, band));
        }
        inside as f64 / all.max(1) as f64
    }

    /// The 99th percentile latency of the successful requests sent in
    /// `[from, to)`.
    pub(crate) fn p99(&self, from: Duration, to: Duration) -> Duration {
        let mut l: Vec<Duration> = self
            .sent
            .iter()
            .filter(|s| s.ok && s.at >= from && s.at < to)
            .map(|s| s.latency)
            .collect();
        if l.is_empty() {
            return Duration::ZERO;
        }
        l.sort();
        l[((l.len() as f64 * 0.99).ceil() as usize).clamp(1, l.len()) - 1]
    }

    /// Successful requests per second completed in `[from, to)`.
    pub(crate) fn goodput(&self, from: Duration, to: Duration) -> f64 {
        let ok = self
            .sent
            .iter()
            .filter(|s| s.ok && (from..to).contains(&(s.at + s.latency)))
            .count();
        ok as f64 / (to - from).as_secs_f64()
    }
}

/// Whether `limit` is within `ideal ± band` (a share of `ideal`).
fn within(limit: usize, ideal: f64, band: f64) -> bool {
    (limit as f64 - ideal).abs() <= band * ideal
}

type Classifier = fn(Result<&(), &Infallible>) -> Outcome;

/// The service never fails.
fn classify(result: Result<&(), &Infallible>) -> Outcome {
    match result {
        Ok(()) => Outcome::Success,
        Err(e) => match *e {},
    }
}

/// Runs `scenario` under `control`. Needs a paused-time runtime.
pub(crate) async fn run(scenario: &Scenario, control: Control) -> Run {
    let start = Instant::now();
    let initial = match &control {
        Control::Fixed(limit) => *limit,
        Control::Adaptive(a) => a.limit(),
    };
    let limiter = PriorityLimiter::builder()
        .limit(initial)
        .max_queue(0)
        .build()
        .expect("valid limiter");
    let service = SimService::new(scenario.base, scenario.phases[0].servers, scenario.jitter);
    let adaptive = match control {
        Control::Fixed(_) => None,
        Control::Adaptive(algorithm) => Some(
            AdaptiveLimit::builder(algorithm, limiter.limit_handle())
                .min_window(scenario.window)
                .build()
                .expect("valid windows"),
        ),
    };
    let layer = adaptive
        .as_ref()
        .map(|a| a.layer().classifier(classify as Classifier));
    let stack = ServiceBuilder::new()
        .layer(AdmissionLayer::new(limiter.clone()).refusal(AsError))
        .option_layer(layer)
        .service(service.clone());

    let sent = Arc::new(Mutex::new(Vec::new()));
    let limits = Arc::new(Mutex::new(Vec::new()));
    let total = scenario.total();

    // The limit, written down every tick.
    let ticker = {
        let limits = limits.clone();
        let limiter = limiter.clone();
        let tick = scenario.tick;
        tokio::spawn(async move {
            let mut at = Duration::ZERO;
            while at <= total {
                tokio::time::sleep_until(start + at).await;
                limits.lock().unwrap().push((at, limiter.limit()));
                at += tick;
            }
        })
    };
    // The capacity changes.
    let phases = {
        let service = service.clone();
        let scenario = scenario.clone();
        tokio::spawn(async move {
            for i in 1..scenario.phases.len() {
                tokio::time::sleep_until(start + scenario.phase_start(i)).await;
                service.set_servers(scenario.phases[i].servers);
            }
        })
    };
    // The open-loop client.
    let n = (total.as_secs_f64() * scenario.rate) as u64;
    let gap = Duration::from_secs_f64(1.0 / scenario.rate);
    for i in 0..n {
        let at = gap * u32::try_from(i).expect("fits");
        tokio::time::sleep_until(start + at).await;
        let svc = stack.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            let ok = svc.oneshot(Job).await.is_ok();
            let latency = t0.elapsed();
            sent.lock().unwrap().push(Sent { at, latency, ok });
        });
    }
    // Let the last requests finish.
    tokio::time::sleep_until(start + total + Duration::from_secs(5)).await;
    ticker.await.expect("ticker");
    phases.await.expect("phases");
    let mut sent = std::mem::take(&mut *sent.lock().unwrap());
    sent.sort_by_key(|s| s.at);
    let limits = std::mem::take(&mut *limits.lock().unwrap());
    Run { limits, sent }
}

/// The checks of one run against the targets, phase by phase.
#[derive(Debug, Clone)]
pub(crate) struct PhaseReport {
    pub(crate) servers: usize,
    /// The limit 5 s into the phase.
    pub(crate) limit_at_5s: usize,
    /// Least and greatest limit from 5 s into the phase to its end.
    pub(crate) settled: (usize, usize),
    /// p99 latency of requests sent 4–5 s into the phase.
    pub(crate) p99_at_5s: Duration,
    /// p99 latency of requests sent from 5 s into the phase to its end.
    pub(crate) p99_settled: Duration,
    /// Successful requests per second from 5 s into the phase to its end.
    pub(crate) goodput: f64,
    /// Capacity in requests per second.
    pub(crate) capacity: f64,
    /// How long into the phase the limit entered ±15 % of the ideal for
    /// the rest of the phase.
    pub(crate) within_15_after: Option<Duration>,
    /// The share of the time from 3 s into the phase to its end that the
    /// limit was within ±15 % of the ideal.
    pub(crate) in_15_from_3s: f64,
    /// The median limit from 3 s into the phase to its end.
    pub(crate) median_from_3s: usize,
}

impl PhaseReport {
    /// Whether `limit` is within ±25 % of the ideal (the worker count).
    pub(crate) fn within_25(&self, limit: usize) -> bool {
        within(limit, self.servers as f64, 0.25)
    }
}

/// Phase by phase figures of `run`.
pub(crate) fn report(scenario: &Scenario, run: &Run) -> Vec<PhaseReport> {
    let s5 = Duration::from_secs(5);
    let s4 = Duration::from_secs(4);
    (0..scenario.phases.len())
        .map(|i| {
            let p = scenario.phases[i];
            let from = scenario.phase_start(i);
            let to = from + p.duration;
            PhaseReport {
                servers: p.servers,
                limit_at_5s: run.limit_at(from + s5),
                settled: run.limit_range(from + s5, to),
                p99_at_5s: run.p99(from + s4, from + s5),
                p99_settled: run.p99(from + s5, to),
                goodput: run.goodput(from + s5, to),
                capacity: p.servers as f64 / scenario.base.as_secs_f64(),
                within_15_after: run.settled_after(from, to, p.servers as f64, 0.15),
                median_from_3s: run.median_limit(from + Duration::from_secs(3), to),
                in_15_from_3s: run.share_within(
                    from + Duration::from_secs(3),
                    to,
                    p.servers as f64,
                    0.15,
                ),
            }
        })
        .collect()
}

/// The algorithms the simulation compares.
pub(crate) const ALGORITHMS: [&str; 5] = ["bottleneck", "aimd", "gradient2", "vegas", "gradient"];

/// What was changed from the literature defaults for the simulation, per
/// algorithm (empty: nothing).
pub(crate) fn tuning(name: &str) -> &'static str {
    match name {
        "aimd" => "timeout 5 s -> 1.2 x base latency (60 ms)",
        "gradient2" => "tolerance 1.5 -> 1.2",
        "gradient" => "buffer 25 % -> 0 %",
        _ => "",
    }
}

/// `name` with its literature defaults (`tuned = false`) or as tuned for
/// the simulation; every one starts at 20 and seeds its jitter with 7.
pub(crate) fn algorithm(name: &str, tuned: bool, base: Duration) -> Box<dyn LimitAlgorithm> {
    match (name, tuned) {
        ("aimd", false) => Box::new(Aimd::builder().initial_limit(20).build().unwrap()),
        ("aimd", true) => Box::new(
            Aimd::builder()
                .initial_limit(20)
                .timeout(base.mul_f64(1.2))
                .build()
                .unwrap(),
        ),
        ("gradient2", false) => Box::new(Gradient2::builder().initial_limit(20).build().unwrap()),
        ("gradient2", true) => Box::new(
            Gradient2::builder()
                .initial_limit(20)
                .tolerance(1.2)
                .build()
                .unwrap(),
        ),
        ("vegas", _) => Box::new(Vegas::builder().initial_limit(20).seed(7).build().unwrap()),
        ("gradient", false) => Box::new(
            GradientController::builder()
                .initial_limit(20)
                .seed(7)
                .build()
                .unwrap(),
        ),
        ("gradient", true) => Box::new(
            GradientController::builder()
                .initial_limit(20)
                .buffer(0.0)
                .seed(7)
                .build()
                .unwrap(),
        ),
        ("bottleneck", _) => Box::new(Bottleneck::builder().initial_limit(20).build().unwrap()),
        _ => panic!("no algorithm {name}"),
    }
}
