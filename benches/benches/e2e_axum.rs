//! End to end: an axum hello-world served on loopback, bare, behind the
//! whole tower-pressure stack on quiet signals (classify, memory shedding
//! and CPU throttling on manual sources, admission with a limit never
//! reached, the adaptive recording layer: what the layers cost), and
//! behind the stack exactly as the README builds it (automatic memory and
//! CPU sources, a limit of 32 tuned by `Bottleneck`: what a user gets), hit
//! by 32 keep-alive connections at once from the same process. The time
//! per request is the inverse of the throughput; the targets ask each stack
//! for at least 0.95× the bare throughput (a time ratio of at most
//! 1/0.95 ≈ 1.053) and the README stack for a p99.9 latency within 2× the
//! bare server's.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tower_pressure::adaptive::{Aimd, Bottleneck};
use tower_pressure::cpu::{CpuSignal, CpuSource};
use tower_pressure::memory::{MemorySignal, MemorySource};
use tower_pressure::{
    AdaptiveLimit, ManualSource, Priority, PriorityLimiter, Rules, Signal, SignalConfig,
};

/// Connections, each sending its requests one after the other: more than
/// the README's limit of 32 would be a queue by design; as many reach it.
const CONNECTIONS: u64 = 32;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn hello() -> Router {
    Router::new().route("/user/profile", get(|| async { "hello" }))
}

fn quiet(name: &str) -> Signal {
    let config = SignalConfig::builder(name)
        .interval(Duration::from_millis(100))
        .build()
        .expect("valid signal settings");
    Signal::spawn_with(ManualSource::new(0.1), config)
}

fn full_stack() -> Router {
    let limiter = PriorityLimiter::builder()
        .limit(1024)
        .build()
        .expect("valid limiter");
    let adaptive = AdaptiveLimit::new(
        Aimd::builder()
            .min_limit(1024)
            .max_limit(4096)
            .initial_limit(1024)
            .build()
            .expect("valid Aimd"),
        limiter.limit_handle(),
    );
    hello().layer(
        tower_pressure::stack(limiter)
            .rules(Rules::voice_service())
            .memory(quiet("memory"))
            .cpu(quiet("cpu"))
            .adaptive(adaptive),
    )
}

/// The README's "every layer at once", word for word (its limiter from the
/// README's first example), and its limiter. Needs a runtime (the signals'
/// samplers).
fn readme_stack() -> (Router, PriorityLimiter) {
    let limiter = PriorityLimiter::builder()
        .limit(32)
        .queue_timeout(Priority::High, Duration::from_millis(450))
        .build()
        .expect("valid limiter");
    let memory = MemorySignal::spawn(MemorySource::auto());
    let cpu = CpuSignal::spawn(CpuSource::auto());
    let adaptive = AdaptiveLimit::new(Bottleneck::default(), limiter.limit_handle());
    let app = hello().layer(
        tower_pressure::stack(limiter.clone())
            .rules(Rules::voice_service())
            .memory(memory)
            .cpu(cpu)
            .adaptive(adaptive),
    );
    (app, limiter)
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// `iters` requests over [`CONNECTIONS`] connections at once.
async fn requests(client: &HttpClient, addr: SocketAddr, iters: u64) -> Duration {
    timed_requests(client, addr, iters).await.0
}

/// [`requests`], and each request's latency in microseconds.
async fn timed_requests(client: &HttpClient, addr: SocketAddr, iters: u64) -> (Duration, Vec<u32>) {
    let uri: http::Uri = format!("http://{addr}/user/profile")
        .parse()
        .expect("a uri");
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CONNECTIONS {
        let n = iters / CONNECTIONS + u64::from(c < iters % CONNECTIONS);
        let (client, uri) = (client.clone(), uri.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            for _ in 0..n {
                let sent = Instant::now();
                let res = client.get(uri.clone()).await.expect("an answer");
                assert!(res.status().is_success(), "{}", res.status());
                res.into_body().collect().await.expect("a body");
                let us = sent.elapsed().as_micros();
                latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        latencies.extend(r.expect("no panic"));
    }
    (start.elapsed(), latencies)
}

fn e2e(c: &mut Criterion) {
    let rt: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let client: HttpClient = rt.block_on(async {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(CONNECTIONS as usize)
            .build(connector)
    });
    let mut g = c.benchmark_group("e2e_axum_hello");
    // Both servers run at once, on the same runtime, and criterion measures
    // them one after the other: the same machine state for both.
    let bare = rt.block_on(serve(hello()));
    let stacked = rt.block_on(async { serve(full_stack()).await });
    let (readme, readme_limiter) = rt.block_on(async {
        let (app, limiter) = readme_stack();
        (serve(app).await, limiter)
    });
    for (name, addr) in [
        ("baseline_bare_axum", bare),
        ("full_stack", stacked),
        ("readme_stack", readme),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| rt.block_on(requests(&client, addr, iters)));
        });
    }
    g.finish();
    // Criterion measures the two one after the other, seconds apart; on a
    // shared machine their ratio swung from 0.74 to 1.66 between runs. The
    // paired rounds below put the two side by side instead.
    if std::env::args().any(|a| a == "--bench") {
        paired(&rt, &client, [bare, stacked, readme]);
        let s = readme_limiter.snapshot();
        println!(
            "e2e_axum_hello: the README stack's adaptive limit ended at {} (from 32)",
            s.limit
        );
    }
}

/// Rounds of the paired measurement.
const ROUNDS: usize = 40;
/// Requests per server per round.
const PER_ROUND: u64 = 4000;

/// [`ROUNDS`] rounds, each timing [`PER_ROUND`] requests to the bare server,
/// as many to the quiet full stack and as many to the README stack, back to
/// back (in rotating order, so that none always goes first); the median of
/// each stack's per-round ratio to the bare server, and the ratio of their
/// p99.9 latencies over every round, go to `paired.json` in the group's
/// criterion folder, which `cargo xtask bench` reads.
fn paired(rt: &Runtime, client: &HttpClient, servers: [SocketAddr; 3]) {
    let mut ratios = [Vec::new(), Vec::new()];
    let mut latencies: [Vec<u32>; 3] = Default::default();
    for round in 0..ROUNDS {
        let mut times = [0.0; 3];
        for k in 0..3 {
            let i = (round + k) % 3;
            let (t, l) = rt.block_on(timed_requests(client, servers[i], PER_ROUND));
            times[i] = t.as_secs_f64();
            latencies[i].extend(l);
        }
        ratios[0].push(times[1] / times[0]);
        ratios[1].push(times[2] / times[0]);
    }
    let median = |r: &[f64]| {
        let mut r = r.to_vec();
        r.sort_by(f64::total_cmp);
        (r[ROUNDS / 2 - 1] + r[ROUNDS / 2]) / 2.0
    };
    let p999 = |l: &mut Vec<u32>| {
        l.sort_unstable();
        f64::from(l[(l.len() * 999 / 1000).min(l.len() - 1)])
    };
    let [bare_p, full_p, readme_p] = latencies.each_mut().map(p999);
    let (full, readme) = (median(&ratios[0]), median(&ratios[1]));
    println!(
        "e2e_axum_hello paired ({ROUNDS} rounds of {PER_ROUND} requests each, {CONNECTIONS} connections): \
         time per request over bare, median: full stack {full:.3}, README stack {readme:.3}; \
         p99.9 bare {bare_p} µs, full stack {full_p} µs, README stack {readme_p} µs"
    );
    let list = |r: &[f64]| r.iter().map(f64::to_string).collect::<Vec<_>>().join(",");
    let json = format!(
        "{{\"rounds\":{ROUNDS},\"requests_per_round\":{PER_ROUND},\"connections\":{CONNECTIONS},\
         \"median_ratio\":{full},\"readme_median_ratio\":{readme},\
         \"readme_p99.9_ratio\":{},\"p999_us\":{{\"bare\":{bare_p},\"full\":{full_p},\"readme\":{readme_p}}},\
         \"ratios\":[{}],\"readme_ratios\":[{}]}}\n",
        readme_p / bare_p.max(1.0),
        list(&ratios[0]),
        list(&ratios[1]),
    );
    let dir = criterion_dir().join("e2e_axum_hello");
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join("paired.json"), json))
    {
        eprintln!(
            "e2e_axum_hello paired: could not write {}: {e}",
            dir.display()
        );
    }
}

/// Where criterion keeps its results, as `cargo xtask bench` looks for them:
/// `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the
/// workspace's `target/criterion` (benches run in their package's folder).
fn criterion_dir() -> std::path::PathBuf {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return workspace.join(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), |t| workspace.join(t))
        .join("criterion")
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    targets = e2e
}
criterion_main!(benches);
