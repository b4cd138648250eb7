//! Measures the CPU throttle's reaction time for real: burns the tokio
//! runtime's workers and prints the wall time from the start of the burn to
//! the first throttled request.
//!
//! The source is the runtime's busy ratio ([`RuntimeBusy`]) by default, or
//! [`CpuSource::auto`] with the argument `auto`; the signal has the CPU
//! defaults (a sample every 50 ms, the mean of the last 4). Each of five
//! trials lets the signal settle while idle, starts one spinning task per
//! worker (spinning 200 µs at a time and yielding between, as busy async
//! code does) at a different phase of the sampling period (1, 13, 25, 37,
//! 49 ms after a sample), and sends a `Normal` request every millisecond
//! until one is delayed.
//!
//! Run with `cargo run --release -p tower-pressure-cpu --example spin [auto]`.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Waker};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_pressure_core::{PressureLevel, Priority, Signal, Source};
use tower_pressure_cpu::{CpuSignal, CpuSource, CpuThrottleLayer, RuntimeBusy};

const WORKERS: usize = 2;
const TRIALS: usize = 5;

fn noop(_req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    ready(Ok(Response::new(())))
}

fn spawn_signal(auto: bool) -> Signal {
    let source: Box<dyn Source> = if auto {
        let s = CpuSource::auto();
        println!("source: {s:?}");
        Box::new(s)
    } else {
        Box::new(RuntimeBusy::current().expect("inside the runtime"))
    };
    CpuSignal::spawn(source)
}

/// Spins one worker until `stop`, yielding every 200 µs.
async fn burn(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_micros(200) {
            std::hint::spin_loop();
        }
        tokio::task::yield_now().await;
    }
}

/// One trial: the time from the start of the burn to the first delayed
/// request, and the utilisation the signal showed then.
async fn trial(auto: bool, phase: Duration) -> (Duration, f64) {
    let cpu = spawn_signal(auto);
    // The sampler ticks every 50 ms from its start; `phase` moves the start
    // of the burn within that period, from just after a sample to just
    // before the next.
    tokio::time::sleep(Duration::from_millis(600) + phase).await;
    // A busy host (other processes) can hold the host source above `start`:
    // wait for it to calm down, so the trial starts below the threshold.
    let calm = Instant::now();
    while cpu.level() >= PressureLevel::Medium && calm.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle = cpu.utilization();
    let mut svc = CpuThrottleLayer::new(cpu.clone()).layer(service_fn(noop));
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let burners: Vec<_> = (0..WORKERS)
        .map(|_| tokio::spawn(burn(stop.clone())))
        .collect();
    let took = loop {
        let svc = svc.ready().await.expect("infallible");
        let mut req = Request::new(());
        req.extensions_mut().insert(Priority::Normal);
        let fut = pin!(svc.call(req));
        // A throttled request is one whose future is not ready at once (the
        // inner service answers immediately).
        if fut
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
        {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "never throttled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let at = cpu.utilization();
    stop.store(true, Ordering::Relaxed);
    for b in burners {
        b.await.expect("the burner ends");
    }
    println!(
        "phase {:>2} ms: burn start -> first throttled request: {:>4} ms   (utilisation idle {idle:.2}, at throttle {at:.2}, level {})",
        phase.as_millis(),
        took.as_millis(),
        cpu.level()
    );
    (took, at)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let auto = std::env::args().nth(1).as_deref() == Some("auto");
    println!(
        "{} workers, source {}, {TRIALS} trials",
        WORKERS,
        if auto {
            "auto"
        } else {
            "tokio runtime busy ratio"
        }
    );
    let mut times = Vec::new();
    for i in 0..TRIALS {
        let phase = Duration::from_millis(1 + 12 * i as u64);
        times.push(trial(auto, phase).await.0);
    }
    times.sort();
    println!(
        "median {} ms, min {} ms, max {} ms (target <= 250 ms)",
        times[TRIALS / 2].as_millis(),
        times[0].as_millis(),
        times[TRIALS - 1].as_millis()
    );
}
