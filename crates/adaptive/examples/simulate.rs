//! The adaptive limit simulation, as tables: each algorithm (with its
//! literature defaults, and as tuned where those miss the ±25 % band) and two
//! fixed limits, driving a real `PriorityLimiter` in front of a simulated
//! service whose capacity halves and comes back. The model is described in
//! `tests/support/sim.rs`; `tests/simulation.rs` asserts the same runs.
//!
//! Run with `cargo run -p tower-pressure-adaptive --example simulate`, or
//! with `-- --jitter` for service times spread ±30 % around the base.
//! Deterministic: time is tokio's paused clock, the service's jitter and the
//! probes' jitter are seeded.

#[path = "../tests/support/sim.rs"]
mod sim;

use std::time::Duration;

use sim::{ALGORITHMS, Control, Scenario};

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let jittered = std::env::args().any(|a| a == "--jitter");
    let scenario = if jittered {
        Scenario::jittered()
    } else {
        Scenario::standard()
    };
    println!(
        "Service: {} ms per request (± {:.0} %); workers 60 -> 30 -> 60 (10 s each), so capacity \
         1200 -> 600 -> 1200 req/s and ideal limit (capacity x base latency) 60 -> 30 -> 60. \
         Open-loop client at {:.0} req/s; limiter without queue; windows >= {} ms and >= 10 \
         requests. Figures per phase: limit 5 s in (target: within +-25 % of ideal), limit \
         range 5 s in to the end, p99 latency of requests sent 4-5 s in (target after halving: \
         < {} ms) and 5 s in to the end, goodput 5 s in to the end (share of capacity).\n",
        scenario.base.as_millis(),
        100.0 * scenario.jitter,
        scenario.rate,
        scenario.window.as_millis(),
        2 * scenario.base.as_millis(),
    );
    for name in ALGORITHMS {
        let tuning = sim::tuning(name);
        let mut variants = vec![(false, "literature defaults".to_owned())];
        if !tuning.is_empty() {
            variants.push((true, format!("tuned: {tuning}")));
        }
        for (tuned, label) in variants {
            let control = Control::Adaptive(sim::algorithm(name, tuned, scenario.base));
            table(&runtime, &scenario, &format!("{name} ({label})"), control);
        }
    }
    table(
        &runtime,
        &scenario,
        "fixed limit 120 (too high)",
        Control::Fixed(120),
    );
    table(
        &runtime,
        &scenario,
        "fixed limit 30 (too low)",
        Control::Fixed(30),
    );
}

fn table(runtime: &tokio::runtime::Runtime, scenario: &Scenario, title: &str, control: Control) {
    let run = runtime.block_on(sim::run(scenario, control));
    println!("### {title}\n");
    println!(
        "| phase | ideal | limit @5 s | ±25 % | limit 5-10 s | ±15 % for good after | median 3-10 s | time in ±15 % 3-10 s | p99 4-5 s | p99 5-10 s | goodput 5-10 s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let names = ["cold start", "capacity halved", "capacity back"];
    for (name, p) in names.iter().zip(sim::report(scenario, &run)) {
        println!(
            "| {name} | {} | {} | {} | {}-{} | {} | {} | {:.0} % | {} ms | {} ms | {:.0}/s ({:.0} %) |",
            p.servers,
            p.limit_at_5s,
            if p.within_25(p.limit_at_5s) {
                "yes"
            } else {
                "**no**"
            },
            p.settled.0,
            p.settled.1,
            p.within_15_after.map_or_else(
                || "never".to_owned(),
                |d| format!("{:.1} s", d.as_secs_f64())
            ),
            p.median_from_3s,
            100.0 * p.in_15_from_3s,
            p.p99_at_5s.as_millis(),
            p.p99_settled.as_millis(),
            p.goodput,
            100.0 * p.goodput / p.capacity,
        );
    }
    let trace: Vec<String> = (0..=30)
        .map(|s| run.limit_at(Duration::from_secs(s)).to_string())
        .collect();
    println!("\nlimit each second: {}\n", trace.join(" "));
}
