//! The overload experiment, run by `cargo xtask demo`: the voice gateway and
//! its baselines, driven over loopback HTTP by an open-loop generator at
//! 0.5× to 10× the gateway's capacity, reported per class.
//!
//! Run with `cargo xtask demo` (or `cargo xtask demo --quick`, under a
//! minute). Writes `report/demo.json`.

mod load;
mod progress;
mod report;
mod svg;
mod targets;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::runtime::Runtime;
use voice_gateway::{Capacity, Protection, SLO};

use crate::load::{Arrivals, HttpClient, Rng};
use crate::progress::Progress;
use crate::report::{Level, Run, Step};

struct Options {
    quick: bool,
    /// Load before each level's measured phase, not counted: the table is of
    /// the steady state; the step phase shows the transient.
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
    let mut systems = Protection::ALL.to_vec();
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
        warmup: Duration::from_millis(if quick { 250 } else { 1000 }),
        phase: Duration::from_millis(if quick { 800 } else { 5000 }),
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
    let mut progress = Progress::new(opts.systems.len() * (opts.levels.len() + 1));
    for &protection in &opts.systems {
        let (addr, limiter) = server_rt.block_on(serve(protection));
        let mut rng = Rng::new(opts.seed);
        let mut levels = Vec::new();
        for &level in &opts.levels {
            progress.start(&format!("{} at {level}× capacity", protection.name()));
            let rate = level * CAPACITY.per_second();
            let schedule =
                opts.arrivals
                    .schedule(rate, Duration::ZERO, opts.warmup + opts.phase, &mut rng);
            // The limiter's counts when the warm-up ends (the generator
            // starts 20 ms after it is called), for the refusals by reason.
            let warm = limiter.clone().map(|l| {
                let warmup = opts.warmup + Duration::from_millis(20);
                server_rt.spawn(async move {
                    tokio::time::sleep(warmup).await;
                    l.snapshot().counts
                })
            });
            let mut samples =
                load_rt.block_on(load::drive(&client, addr, &schedule, opts.timeout, SLO));
            samples.retain(|s| s.at >= opts.warmup);
            let classes = load::summarize(&samples);
            let rejected_p99_ms = load::rejected_p99_ms(&samples);
            // Let the gateway drain before the next phase.
            load_rt.block_on(async { tokio::time::sleep(opts.drain).await });
            let after = limiter.as_ref().map(|l| l.snapshot());
            let idle = after
                .as_ref()
                .map(|s| s.in_flight == 0 && s.queue_len() == 0);
            let refusals = match (warm, after) {
                (Some(warm), Some(after)) => server_rt
                    .block_on(warm)
                    .ok()
                    .map(|before| report::Refusals::between(&before, &after.counts)),
                _ => None,
            };
            levels.push(Level {
                load: level,
                offered_per_s: rate,
                seconds: opts.phase.as_secs_f64(),
                classes,
                idle_after: idle,
                rejected_p99_ms,
                refusals,
            });
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
        runs.push(Run {
            system: protection.name(),
            levels,
            step,
        });
    }
    progress.finish();
    let report = report::Report::new(
        CAPACITY.per_second(),
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

/// Starts the gateway behind `protection` on a loopback port.
async fn serve(protection: Protection) -> (SocketAddr, Option<tower_pressure::PriorityLimiter>) {
    let (app, limiter) = voice_gateway::app(CAPACITY, protection);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, limiter)
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
    let mut schedule = arrivals.schedule(0.5 * rate, Duration::ZERO, d, rng);
    schedule.extend(arrivals.schedule(5.0 * rate, d, d, rng));
    schedule.extend(arrivals.schedule(0.5 * rate, d * 2, d, rng));
    let sampler = limiter.cloned().map(|l| {
        server_rt.spawn(async move {
            let mut queue = Vec::new();
            let mut tick = tokio::time::interval(report::BUCKET);
            // The generator starts 20 ms after it is called.
            tokio::time::sleep(Duration::from_millis(20)).await;
            for _ in 0..(3 * d.as_millis() / report::BUCKET.as_millis()) {
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
