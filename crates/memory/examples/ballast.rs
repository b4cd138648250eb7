//! Measures the memory shedder's reaction time for real: allocates ballast
//! (touching every page) against a [`HeapBudget`] until the process's RSS
//! crosses the Critical threshold, then sends a `Normal` request every
//! millisecond through a `MemoryShedLayer` and reports the wall time from
//! the crossing to the first 503. Twenty rounds; the ballast is freed between
//! them.
//!
//! Run with `cargo run --release -p tower-pressure-memory --example ballast`.

use std::convert::Infallible;
use std::path::Path;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::{Instant, sleep};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_pressure_core::{PressureLevel, Priority, Thresholds};
use tower_pressure_memory::{HeapBudget, MemoryShedLayer, MemorySignal, ProcessRss};

const MIB: u64 = 1 << 20;
const CHUNK: usize = 8 << 20;
const ROUNDS: usize = 20;

/// A chunk of memory that is really resident: one write per 4 KiB.
fn ballast_chunk() -> Vec<u8> {
    let mut v = vec![0u8; CHUNK];
    for i in (0..CHUNK).step_by(4096) {
        v[i] = 1;
    }
    v
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rss = ProcessRss::open(Path::new("/"))?;
    let start_rss = rss.bytes()?;
    let budget_bytes = start_rss + 256 * MIB;
    let critical = Thresholds::default().threshold(PressureLevel::Critical);
    println!(
        "RSS at start {} MiB, budget {} MiB, Critical at {:.0}% ({} MiB)",
        start_rss / MIB,
        budget_bytes / MIB,
        critical * 100.0,
        (budget_bytes as f64 * critical) as u64 / MIB
    );

    let memory = MemorySignal::spawn(HeapBudget::new(budget_bytes)?);
    let mut svc =
        MemoryShedLayer::new(memory.clone()).layer(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));

    let mut figures = Vec::new();
    for round in 1..=ROUNDS {
        // Wait until the signal is back to calm.
        while memory.level() != PressureLevel::None {
            sleep(Duration::from_millis(10)).await;
        }
        let mut ballast = Vec::new();
        let crossed = loop {
            ballast.push(ballast_chunk());
            let used = rss.bytes()?;
            if used as f64 >= budget_bytes as f64 * critical {
                break Instant::now();
            }
            sleep(Duration::from_millis(1)).await;
        };
        let elapsed = loop {
            let mut req = Request::new(());
            req.extensions_mut().insert(Priority::Normal);
            let res = svc.ready().await?.call(req).await?;
            if res.status() == StatusCode::SERVICE_UNAVAILABLE {
                break crossed.elapsed();
            }
            if crossed.elapsed() > Duration::from_secs(5) {
                return Err("no 503 within 5 s of the crossing".into());
            }
            sleep(Duration::from_millis(1)).await;
        };
        println!(
            "round {round}: {} MiB of ballast; crossing -> first 503: {:.1} ms",
            ballast.len() as u64 * CHUNK as u64 / MIB,
            elapsed.as_secs_f64() * 1e3
        );
        figures.push(elapsed);
        drop(ballast);
    }
    figures.sort();
    println!(
        "median {:.1} ms, max {:.1} ms (target <= 100 ms; sampling interval 50 ms)",
        figures[figures.len() / 2].as_secs_f64() * 1e3,
        figures[figures.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}
