//! The overload experiment, run by `cargo xtask demo`: the voice gateway and
//! its baselines, driven over loopback HTTP by an open-loop generator at
//! 0.5× to 10× the gateway's capacity with a mix of classes, with bursts of
//! High over a load below capacity, with one class alone, and through a
//! step up and down; reported per class.
//!
//! Run with `cargo xtask demo` (or `cargo xtask demo --quick`, under a
//! minute). Writes `report/demo.json`.

mod baselines;
mod load;
mod model;
mod progress;
mod report;
mod svg;
mod targets;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::runtime::Runtime;
use voice_gateway::{Capacity, SLO};

use crate::baselines::Protection;
use crate::load::{Arrivals, HttpClient, MIX, Rng};
use crate::model::{CapacityPart, CapacityStep, Level, Refusals, Run, Step};
use crate::progress::Progress;
use tower_pressure::Priority;

struct Options {
    quick: bool,
    /// Load before each level's measured phase, not counted: the table is of
    /// the steady state; the step phase shows the transient. Three seconds:
    /// tower-pressure judges a class's queue standing once it has stood for
    /// the class's queue timeout (up to a second here), by rates whose
    /// memory is that timeout, so a change from the phase before settles
    /// within two or three timeouts.
    warmup: Duration,
    phase: Duration,
    step: Duration,
    /// Quiet time after each phase, for the gateway to drain.
    drain: Duration,
    timeout: Duration,
    levels: Vec<f64>,
    arrivals: Arrivals,
    out: std::path::PathBuf,
    /// The systems to run (all by default).
    systems: Vec<Protection>,
    /// The seed of the generator's arrivals and class draws.
    seed: u64,
}

const USAGE: &str = "usage: cargo xtask demo [--quick] [--arrivals poisson|constant] [--out FOLDER]\n\
     \x20                       [--systems NAME,NAME…] [--levels 0.5,1,…] [--seed N]";

fn options() -> Result<Options, String> {
    let mut quick = false;
    let mut out = std::path::PathBuf::from("report");
    let mut arrivals = Arrivals::Poisson;
    let mut systems = Protection::DEMO.to_vec();
    let mut levels = vec![0.5, 1.0, 2.0, 5.0, 10.0];
    let mut seed = 0x5eed;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--out" => out = args.next().ok_or("--out needs a folder")?.into(),
            "--arrivals" => {
                arrivals = match args.next().as_deref() {
                    Some("poisson") => Arrivals::Poisson,
                    Some("constant") => Arrivals::Constant,
                    _ => return Err("--arrivals takes poisson or constant".to_owned()),
                }
            }
            "--systems" => {
                let list = args.next().ok_or("--systems needs a list of names")?;
                systems = list
                    .split(',')
                    .map(|name| {
                        Protection::ALL
                            .into_iter()
                            .find(|p| p.name() == name)
                            .ok_or_else(|| {
                                let names: Vec<_> = Protection::ALL.map(Protection::name).into();
                                format!(
                                    "--systems: no system {name:?}; the systems are {}",
                                    names.join(", ")
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--levels" => {
                let list = args.next().ok_or("--levels needs a list of loads")?;
                levels = list
                    .split(',')
                    .map(|l| match l.parse::<f64>() {
                        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
                        _ => Err(format!(
                            "--levels: {l:?} is not a positive multiple of capacity"
                        )),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--seed" => {
                let n = args.next().ok_or("--seed needs a number")?;
                seed = n
                    .parse()
                    .map_err(|_| format!("--seed: {n:?} is not a whole number"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(Options {
        quick,
        warmup: Duration::from_millis(if quick { 250 } else { 3000 }),
        phase: Duration::from_millis(if quick { 800 } else { 4000 }),
        step: Duration::from_millis(if quick { 800 } else { 4000 }),
        drain: Duration::from_millis(if quick { 200 } else { 300 }),
        timeout: Duration::from_millis(if quick { 1200 } else { 5000 }),
        levels,
        arrivals,
        out,
        systems,
        seed,
    })
}

/// The gateway's capacity: 4 slots × 25 ms = 160 requests a second, which
/// leaves room on a 2-core machine for the generator at 10×.
const CAPACITY: Capacity = Capacity {
    slots: 4,
    work: Duration::from_millis(25),
};

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn main() -> ExitCode {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // The gateway and the generator each get a runtime of their own thread.
    let server_rt = runtime("gateway");
    let load_rt = runtime("load");
    let client = load_rt.block_on(async { load::client() });
    let mut runs = Vec::new();
    let scenarios: Vec<Scenario> = opts
        .levels
        .iter()
        .map(|&l| Scenario::Mix(l))
        .chain([
            Scenario::Bursty,
            Scenario::Single(2.0),
            Scenario::Single(5.0),
        ])
        .collect();
    let with_limiter = opts
        .systems
        .iter()
        .filter(|p| p.name().starts_with("tower-pressure"))
        .count();
    let mut progress = Progress::new(opts.systems.len() * (scenarios.len() + 1) + with_limiter);
    for &protection in &opts.systems {
        let (addr, limiter) = server_rt.block_on(serve(protection));
        let mut rng = Rng::new(opts.seed);
        let mut levels = Vec::new();
        let mut bursty = None;
        let mut single = Vec::new();
        for scenario in &scenarios {
            progress.start(&format!("{} {}", protection.name(), scenario.describe()));
            let schedule = scenario.schedule(&opts, &mut rng);
            let phase = Phase {
                server_rt: &server_rt,
                load_rt: &load_rt,
                client: &client,
                addr,
                limiter: limiter.as_ref(),
                opts: &opts,
            };
            let level = phase.measure(scenario, &schedule);
            match scenario {
                Scenario::Mix(_) => levels.push(level),
                Scenario::Bursty => bursty = Some(level),
                Scenario::Single(_) => single.push(level),
            }
        }
        progress.start(&format!("{} step 0.5× → 5× → 0.5×", protection.name()));
        let step = step_phase(
            &server_rt,
            &load_rt,
            &client,
            addr,
            limiter.as_ref(),
            &opts,
            &mut rng,
        );
        let capacity_step = limiter.is_some().then(|| {
            progress.start(&format!(
                "{} capacity step {} → {} → {} slots",
                protection.name(),
                STEP_SLOTS[0],
                STEP_SLOTS[1],
                STEP_SLOTS[2]
            ));
            capacity_step(&server_rt, &load_rt, &client, protection, &opts, &mut rng)
        });
        runs.push(Run {
            system: protection.name(),
            levels,
            bursty,
            single,
            step,
            capacity_step,
        });
    }
    progress.finish();
    let report = report::Report::new(
        CAPACITY.per_second(),
        CAPACITY.slots,
        opts.quick,
        opts.arrivals.name(),
        runs,
    );
    report.print();
    report.print_targets();
    if let Err(e) = report
        .write(&opts.out)
        .and_then(|()| report::html(&report, &opts.out))
    {
        eprintln!(
            "demo: could not write the report to {}: {e}",
            opts.out.display()
        );
        return ExitCode::FAILURE;
    }
    let broken = report.broken_invariants();
    if broken.is_empty() {
        println!(
            "\ninvariants hold; report written to {}",
            opts.out.join("demo.json").display()
        );
        ExitCode::SUCCESS
    } else {
        for b in &broken {
            eprintln!("broken invariant: {b}");
        }
        ExitCode::FAILURE
    }
}

/// One measured load of the experiment.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// The class mix at this multiple of capacity.
    Mix(f64),
    /// Normal and Low steady at half the capacity, High at twice the
    /// capacity for 0.2 s once a second: 0.9 of the capacity on average,
    /// which a queue can carry through every burst.
    Bursty,
    /// Normal alone, at this multiple of capacity.
    Single(f64),
}

/// The bursty scenario's steady classes (Normal and Low, in the mix's
/// proportion), and its bursts.
const STEADY_MIX: [f64; 5] = [0.0, 25.0 / 60.0, 35.0 / 60.0, 0.0, 0.0];
const HIGH_ONLY: [f64; 5] = [0.0, 0.0, 0.0, 1.0, 0.0];
const NORMAL_ONLY: [f64; 5] = [0.0, 0.0, 1.0, 0.0, 0.0];
/// When each burst starts within its second, and how long it lasts.
const BURST_AT: Duration = Duration::from_millis(300);
const BURST: Duration = Duration::from_millis(200);

impl Scenario {
    fn describe(self) -> String {
        match self {
            Scenario::Mix(l) => format!("at {l}× capacity"),
            Scenario::Bursty => "with High bursts".to_owned(),
            Scenario::Single(l) => format!("with Normal alone at {l}×"),
        }
    }

    /// The offered load, as a multiple of capacity.
    fn load(self) -> f64 {
        match self {
            Scenario::Mix(l) | Scenario::Single(l) => l,
            Scenario::Bursty => 0.5 + 2.0 * BURST.as_secs_f64(),
        }
    }

    /// The requests of the warm-up and the measured phase, in time order.
    fn schedule(self, opts: &Options, rng: &mut Rng) -> Vec<(Duration, Priority)> {
        let cap = CAPACITY.per_second();
        let total = opts.warmup + opts.phase;
        let a = opts.arrivals;
        match self {
            Scenario::Mix(l) => a.schedule(l * cap, Duration::ZERO, total, MIX, rng),
            Scenario::Single(l) => a.schedule(l * cap, Duration::ZERO, total, NORMAL_ONLY, rng),
            Scenario::Bursty => {
                let mut s = a.schedule(0.5 * cap, Duration::ZERO, total, STEADY_MIX, rng);
                let mut start = BURST_AT;
                while start < total {
                    let len = BURST.min(total - start);
                    s.extend(a.schedule(2.0 * cap, start, len, HIGH_ONLY, rng));
                    start += Duration::from_secs(1);
                }
                s.sort_by_key(|&(at, _)| at);
                s
            }
        }
    }
}

/// What one measured phase needs.
struct Phase<'a> {
    server_rt: &'a Runtime,
    load_rt: &'a Runtime,
    client: &'a HttpClient,
    addr: SocketAddr,
    limiter: Option<&'a tower_pressure::PriorityLimiter>,
    opts: &'a Options,
}

impl Phase<'_> {
    /// Drives `schedule` (warm-up included) and summarises what came after
    /// the warm-up.
    fn measure(&self, scenario: &Scenario, schedule: &[(Duration, Priority)]) -> Level {
        let opts = self.opts;
        // The limiter's counts when the warm-up ends (the generator starts
        // 20 ms after it is called), for the refusals by reason.
        let warm = self.limiter.cloned().map(|l| {
            let warmup = opts.warmup + Duration::from_millis(20);
            self.server_rt.spawn(async move {
                tokio::time::sleep(warmup).await;
                l.snapshot().counts
            })
        });
        let mut samples = self.load_rt.block_on(load::drive(
            self.client,
            self.addr,
            schedule,
            opts.timeout,
            SLO,
        ));
        samples.retain(|s| s.at >= opts.warmup);
        let classes = load::summarize(&samples);
        let rejected_p99_ms = load::rejected_p99_ms(&samples);
        // Let the gateway drain before the next phase.
        self.load_rt
            .block_on(async { tokio::time::sleep(opts.drain).await });
        let after = self.limiter.map(|l| l.snapshot());
        let idle = after
            .as_ref()
            .map(|s| s.in_flight == 0 && s.queue_len() == 0);
        let refusals = match (warm, after) {
            (Some(warm), Some(after)) => self
                .server_rt
                .block_on(warm)
                .ok()
                .map(|before| Refusals::between(&before, &after.counts)),
            _ => None,
        };
        Level {
            load: scenario.load(),
            offered_per_s: samples.len() as f64 / opts.phase.as_secs_f64(),
            seconds: opts.phase.as_secs_f64(),
            classes,
            idle_after: idle,
            rejected_p99_ms,
            refusals,
        }
    }
}

/// The capacity step's slots, part by part (25 ms of work each): a
/// machine that loses half its workers and gets them back.
const STEP_SLOTS: [usize; 3] = [16, 8, 16];

/// The capacity step: a gateway of `STEP_SLOTS[0]` slots behind
/// `protection`, its own instance, under 1.5× that capacity (the demo's
/// class mix) while its slots go through [`STEP_SLOTS`], each part
/// `opts.step` × 1.5 long; the limit is sampled every 100 ms.
fn capacity_step(
    server_rt: &Runtime,
    load_rt: &Runtime,
    client: &HttpClient,
    protection: Protection,
    opts: &Options,
    rng: &mut Rng,
) -> CapacityStep {
    let capacity = Capacity {
        slots: STEP_SLOTS[0],
        work: CAPACITY.work,
    };
    let part = opts.step.mul_f64(1.5);
    let (addr, limiter, slots) = server_rt.block_on(async {
        let (app, limiter, slots) = baselines::app_with_slots(capacity, protection);
        (listen(app).await, limiter, slots)
    });
    let limiter = limiter.expect("a tower-pressure system has a limiter");
    let rate = 1.5 * capacity.per_second();
    let schedule = opts
        .arrivals
        .schedule(rate, Duration::ZERO, part * 3, MIX, rng);
    let per_part = (part.as_millis() / model::BUCKET.as_millis()) as usize;
    let sampler = server_rt.spawn(async move {
        let mut parts = Vec::new();
        // The generator starts 20 ms after it is called.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut tick = tokio::time::interval(model::BUCKET);
        for &n in &STEP_SLOTS {
            // Not awaited in line: taking slots away waits for them to
            // come free, and the clock must go on.
            let slots = slots.clone();
            tokio::spawn(async move { slots.set(n).await });
            let mut limits = Vec::with_capacity(per_part);
            for _ in 0..per_part {
                tick.tick().await;
                limits.push(limiter.limit());
            }
            parts.push(limits);
        }
        parts
    });
    let samples = load_rt.block_on(load::drive(client, addr, &schedule, opts.timeout, SLO));
    let limits = server_rt.block_on(sampler).expect("the sampler ran");
    load_rt.block_on(async { tokio::time::sleep(opts.drain).await });
    let parts = STEP_SLOTS
        .iter()
        .zip(limits)
        .enumerate()
        .map(|(i, (&n, limits))| CapacityPart::new(n, part * i as u32, part, limits, &samples))
        .collect();
    CapacityStep {
        offered_per_s: rate,
        parts,
    }
}

/// Starts the gateway behind `protection` on a loopback port.
async fn serve(protection: Protection) -> (SocketAddr, Option<tower_pressure::PriorityLimiter>) {
    let (app, limiter) = baselines::app(CAPACITY, protection);
    (listen(app).await, limiter)
}

/// Serves `app` on a loopback port, in the background.
async fn listen(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// The step phase: 0.5× capacity, then 5×, then 0.5× again, each for
/// `opts.step`, bucketed by 100 ms of scheduled time; with tower-pressure,
/// its queue length is sampled on the same clock.
fn step_phase(
    server_rt: &Runtime,
    load_rt: &Runtime,
    client: &HttpClient,
    addr: SocketAddr,
    limiter: Option<&tower_pressure::PriorityLimiter>,
    opts: &Options,
    rng: &mut Rng,
) -> Step {
    let rate = CAPACITY.per_second();
    let d = opts.step;
    let arrivals = opts.arrivals;
    let mut schedule = arrivals.schedule(0.5 * rate, Duration::ZERO, d, MIX, rng);
    schedule.extend(arrivals.schedule(5.0 * rate, d, d, MIX, rng));
    schedule.extend(arrivals.schedule(0.5 * rate, d * 2, d, MIX, rng));
    let sampler = limiter.cloned().map(|l| {
        server_rt.spawn(async move {
            let mut queue = Vec::new();
            let mut tick = tokio::time::interval(model::BUCKET);
            // The generator starts 20 ms after it is called.
            tokio::time::sleep(Duration::from_millis(20)).await;
            for _ in 0..(3 * d.as_millis() / model::BUCKET.as_millis()) {
                tick.tick().await;
                let s = l.snapshot();
                queue.push((s.queue_len(), s.limit));
            }
            queue
        })
    });
    let samples = load_rt.block_on(load::drive(client, addr, &schedule, opts.timeout, SLO));
    let queue = sampler.and_then(|h| server_rt.block_on(h).ok());
    load_rt.block_on(async { tokio::time::sleep(opts.drain).await });
    Step::new(&samples, d, queue)
}
