//! The targets the project holds itself to, checked against the results of
//! one run, for every system (so the baselines show what the targets ask).

use serde::Serialize;
use tower_pressure::Priority;

use crate::model::{Level, Run};

/// One target for one system.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub(crate) system: &'static str,
    pub(crate) target: String,
    pub(crate) measured: String,
    pub(crate) met: bool,
}

/// Loads at which goodput must hold and rejections must be fast.
const OVERLOADED: [f64; 3] = [2.0, 5.0, 10.0];
/// Loads at which High latency must stay near its unloaded value.
const HIGH_LATENCY_AT: [f64; 2] = [2.0, 5.0];

/// Every target for every system of `runs`, against a gateway of
/// `capacity_per_s` requests per second.
pub(crate) fn checks(runs: &[Run], capacity_per_s: f64) -> Vec<Check> {
    let named = |name: &str| runs.iter().find(|r| r.system == name);
    let baselines = Baselines {
        unprotected: named("unprotected"),
        buffer: named("tower-buffer"),
        fixed: named("tower-pressure"),
    };
    runs.iter()
        .flat_map(|run| checks_of(run, capacity_per_s, &baselines))
        .collect()
}

/// The runs the bursty and one-class targets compare against, when run.
struct Baselines<'a> {
    unprotected: Option<&'a Run>,
    buffer: Option<&'a Run>,
    /// tower-pressure with a fixed limit: what an adaptive limit's latency
    /// is held to.
    fixed: Option<&'a Run>,
}

/// Within noise of a baseline: at least this share of its goodput.
const WITHIN_NOISE: f64 = 0.95;

/// The bursty and one-class targets, through `check`.
fn scenario_checks(run: &Run, base: &Baselines<'_>, check: &mut impl FnMut(String, String, bool)) {
    if let Some(b) = &run.bursty {
        let offered = b.offered() as f64 / b.seconds;
        let g = b.goodput();
        check(
            "bursts: goodput ≥ 0.97× offered".to_owned(),
            format!("{g:.0}/s of {offered:.0}/s = {:.3}", g / offered),
            g >= 0.97 * offered,
        );
        if let Some(u) = base.unprotected.and_then(|u| u.bursty.as_ref()) {
            check(
                "bursts: goodput ≥ unprotected".to_owned(),
                format!("{g:.0}/s vs {:.0}/s", u.goodput()),
                g >= u.goodput(),
            );
        }
        let p99 = b.classes[Priority::High.index()].ok_p99_ms;
        let objective = voice_gateway::SLO[Priority::High.index()].as_secs_f64() * 1000.0;
        check(
            format!("bursts: High p99 within its objective ({objective:.0} ms)"),
            format!("{p99:.1} ms"),
            p99 <= objective,
        );
        let refused = b.refused() as f64 / b.offered().max(1) as f64;
        check(
            "bursts: refusals ≤ 1 % of requests".to_owned(),
            format!("{:.2} %", 100.0 * refused),
            refused <= 0.01,
        );
    }
    for l in &run.single {
        let Some(buffer) = base.buffer.and_then(|r| r.single_at(l.load)) else {
            continue;
        };
        check(
            format!(
                "Normal alone at {}×: goodput ≥ {WITHIN_NOISE}× tower-buffer's",
                l.load
            ),
            format!("{:.0}/s vs {:.0}/s", l.goodput(), buffer.goodput()),
            l.goodput() >= WITHIN_NOISE * buffer.goodput(),
        );
    }
}

fn level(run: &Run, load: f64) -> Option<&Level> {
    run.levels.iter().find(|l| l.load == load)
}

fn checks_of(run: &Run, capacity: f64, base: &Baselines<'_>) -> Vec<Check> {
    let mut out = Vec::new();
    let mut check = |target: String, measured: String, met: bool| {
        out.push(Check {
            system: run.system,
            target,
            measured,
            met,
        });
    };
    for load in OVERLOADED {
        let Some(l) = level(run, load) else { continue };
        let g = l.goodput();
        check(
            format!("goodput ≥ 0.9× capacity at {load}×"),
            format!("{:.0}/s = {:.2}×", g, g / capacity),
            g >= 0.9 * capacity,
        );
    }
    for l in &run.levels {
        let short = in_order(l, capacity);
        check(
            format!("classes served in order at {}×", l.load),
            if short.is_empty() {
                "every class ≥ 0.95 of its share".to_owned()
            } else {
                short.join("; ")
            },
            short.is_empty(),
        );
    }
    let hi = Priority::High.index();
    if let Some(unloaded) = level(run, 0.5).map(|l| l.classes[hi].ok_p99_ms) {
        for load in HIGH_LATENCY_AT {
            let Some(l) = level(run, load) else { continue };
            let p99 = l.classes[hi].ok_p99_ms;
            check(
                format!("High p99 ≤ 2× unloaded ({unloaded:.1} ms) at {load}×"),
                format!("{p99:.1} ms"),
                p99 <= 2.0 * unloaded,
            );
        }
    }
    for load in OVERLOADED {
        let Some(l) = level(run, load) else { continue };
        check(
            format!("rejections answered with p99 ≤ 5 ms at {load}×"),
            format!("{:.1} ms", l.rejected_p99_ms),
            l.rejected_p99_ms <= 5.0,
        );
    }
    check(
        "after the step to 5×, High p99 within its objective in ≤ 0.5 s".to_owned(),
        run.step
            .high_recovery_ms
            .map_or("never".to_owned(), |ms| format!("{ms} ms")),
        run.step.high_recovery_ms.is_some_and(|ms| ms <= 500),
    );
    scenario_checks(run, base, &mut check);
    adaptive_checks(run, base, &mut check);
    out
}

/// The adaptive limit's targets, for the systems whose limit adapts: after
/// each change of the capacity step, the limit within ±15 % of the slots
/// for good in ≤ 3 s (judged on parts long enough to tell); and High's
/// latency within 10 % of the fixed limit's at every overloaded level.
fn adaptive_checks(run: &Run, base: &Baselines<'_>, check: &mut impl FnMut(String, String, bool)) {
    if !run.system.contains("adaptive") && !run.system.contains("stack") {
        return;
    }
    if let Some(c) = &run.capacity_step {
        for (i, p) in c.parts.iter().enumerate().skip(1) {
            if p.seconds < 4.0 {
                continue;
            }
            check(
                format!(
                    "capacity step part {} ({} slots): limit within ±15 % in ≤ 3 s",
                    i + 1,
                    p.slots
                ),
                format!(
                    "{} (median {})",
                    p.settled_ms.map_or("never".to_owned(), |ms| format!(
                        "after {:.1} s",
                        ms as f64 / 1000.0
                    )),
                    p.median_limit
                ),
                p.settled_ms.is_some_and(|ms| ms <= 3000),
            );
        }
    }
    let hi = Priority::High.index();
    if let Some(fixed) = base.fixed {
        for load in OVERLOADED {
            let (Some(l), Some(f)) = (level(run, load), level(fixed, load)) else {
                continue;
            };
            let (p50, fixed_p50) = (l.classes[hi].ok_p50_ms, f.classes[hi].ok_p50_ms);
            check(
                format!("High p50 within 10 % of the fixed limit's at {load}×"),
                format!("{p50:.1} ms vs {fixed_p50:.1} ms"),
                p50 <= 1.1 * fixed_p50,
            );
        }
    }
}

/// The classes whose goodput fell short of 0.95 × min(their offered load,
/// the capacity the classes above them left), most important first.
fn in_order(l: &Level, capacity: f64) -> Vec<String> {
    let mut left = capacity;
    let mut short = Vec::new();
    for p in Priority::ALL.into_iter().rev() {
        let c = &l.classes[p.index()];
        let offered = c.offered as f64 / l.seconds;
        let good = c.good as f64 / l.seconds;
        let share = offered.min(left);
        if good < 0.95 * share {
            short.push(format!("{p} {good:.0}/s of {share:.0}/s"));
        }
        left = (left - offered).max(0.0);
    }
    short
}

/// The checks as a terminal table.
pub(crate) fn print(checks: &[Check]) {
    println!("\ntargets:");
    for c in checks {
        println!(
            "  {:<23} {:<4} {:<58} {}",
            c.system,
            if c.met { "met" } else { "NOT" },
            c.target,
            c.measured
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::ClassResult;

    fn class(p: Priority, offered: u64, good: u64) -> ClassResult {
        ClassResult {
            class: p.as_str(),
            offered,
            good,
            late: 0,
            rejected: offered - good,
            failed: 0,
            ok_p50_ms: 0.0,
            ok_p99_ms: 0.0,
            ok_p999_ms: 0.0,
            rejected_p99_ms: 0.0,
        }
    }

    fn level(goods: [u64; 5], offered: [u64; 5]) -> Level {
        Level {
            load: 5.0,
            offered_per_s: 0.0,
            seconds: 1.0,
            classes: Priority::ALL
                .iter()
                .map(|&p| class(p, offered[p.index()], goods[p.index()]))
                .collect(),
            idle_after: None,
            rejected_p99_ms: 0.0,
            refusals: None,
        }
    }

    #[test]
    fn classes_in_order_get_what_the_classes_above_leave() {
        // Capacity 100: Critical 20 and High 50 fit, Normal gets the last 30.
        let offered = [40, 40, 60, 50, 20];
        assert!(in_order(&level([0, 0, 30, 50, 20], offered), 100.0).is_empty());
        // Normal served less than 0.95 of the 30 left to it.
        assert_eq!(
            in_order(&level([0, 0, 25, 50, 20], offered), 100.0),
            ["normal 25/s of 30/s"]
        );
        // Serving Bulk instead of High is out of order.
        assert_eq!(
            in_order(&level([40, 0, 30, 10, 20], offered), 100.0),
            ["high 10/s of 50/s"]
        );
    }
}
