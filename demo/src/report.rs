//! The experiment's results: the terminal table, the JSON file, and the
//! invariants `.ci/run` holds the project to.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use tower_pressure::admission::ClassCounts;
use tower_pressure::{PerPriority, Priority};
use voice_gateway::SLO;

use crate::load::{ClassResult, Outcome, Sample};
use crate::svg::{COLORS, Series, escape, line_chart};

/// The width of a step-phase time bucket.
pub(crate) const BUCKET: Duration = Duration::from_millis(100);

/// One time bucket of the step phase.
#[derive(Debug, Serialize)]
pub(crate) struct Bucket {
    pub(crate) t_ms: u64,
    /// Requests scheduled in the bucket, by class (`Bulk` first).
    pub(crate) offered: [u64; 5],
    /// Answered `200` (in time or late), by class.
    pub(crate) served: [u64; 5],
    /// Refused or failed, by class.
    pub(crate) refused: [u64; 5],
    /// p99 latency of High successes scheduled in the bucket, if any.
    pub(crate) high_p99_ms: Option<f64>,
    /// tower-pressure's queue length at the bucket's end.
    pub(crate) queue_len: Option<usize>,
    /// tower-pressure's concurrency limit at the bucket's end.
    pub(crate) limit: Option<usize>,
}

/// The step phase of one system: 0.5× → 5× → 0.5× capacity.
#[derive(Debug, Serialize)]
pub(crate) struct Step {
    pub(crate) phase_ms: u64,
    pub(crate) buckets: Vec<Bucket>,
    /// After the step up, how long until every later bucket of the 5×
    /// phase had High p99 within its objective; `None` if it never did.
    pub(crate) high_recovery_ms: Option<u64>,
}

impl Step {
    /// `limiter` holds the limiter's (queue length, limit) at the end of
    /// each bucket, for the systems that have one.
    pub(crate) fn new(
        samples: &[Sample],
        phase: Duration,
        limiter: Option<Vec<(usize, usize)>>,
    ) -> Step {
        let n = (3 * phase.as_millis() / BUCKET.as_millis()) as usize;
        let mut buckets: Vec<Bucket> = (0..n)
            .map(|i| Bucket {
                t_ms: (i as u128 * BUCKET.as_millis()) as u64,
                offered: [0; 5],
                served: [0; 5],
                refused: [0; 5],
                high_p99_ms: None,
                queue_len: limiter.as_ref().and_then(|q| q.get(i)).map(|q| q.0),
                limit: limiter.as_ref().and_then(|q| q.get(i)).map(|q| q.1),
            })
            .collect();
        let mut high: Vec<Vec<u64>> = vec![Vec::new(); n];
        for s in samples {
            let i = (s.at.as_millis() / BUCKET.as_millis()) as usize;
            let Some(b) = buckets.get_mut(i) else {
                continue;
            };
            let c = s.class.index();
            b.offered[c] += 1;
            match s.outcome {
                Outcome::Good | Outcome::Late => {
                    b.served[c] += 1;
                    if s.class == Priority::High {
                        high[i].push(s.micros);
                    }
                }
                Outcome::Rejected | Outcome::Failed => b.refused[c] += 1,
            }
        }
        for (b, h) in buckets.iter_mut().zip(high) {
            b.high_p99_ms = p99_ms(h);
        }
        let objective = SLO[Priority::High.index()].as_secs_f64() * 1000.0;
        let (up, down) = (n / 3, 2 * n / 3);
        // A bucket is within when every High request scheduled in it that
        // got an answer got it in time, and at least one did (or none came).
        let within = |b: &Bucket| {
            let hi = Priority::High.index();
            b.offered[hi] == 0 || b.high_p99_ms.is_some_and(|p| p <= objective)
        };
        let high_recovery_ms = (up..down)
            .find(|&i| buckets[i..down].iter().all(within))
            .map(|i| buckets[i].t_ms - buckets[up].t_ms);
        Step {
            phase_ms: phase.as_millis() as u64,
            buckets,
            high_recovery_ms,
        }
    }

    /// During the 5× part of the step: the median concurrency limit, and
    /// the share of its 100 ms buckets whose limit was within ±15 % of
    /// `ideal`; `None` without a limiter.
    pub(crate) fn limit_at_5x(&self, ideal: usize) -> Option<(usize, f64)> {
        let n = self.buckets.len();
        let limits: Vec<usize> = self.buckets[n / 3..2 * n / 3]
            .iter()
            .filter_map(|b| b.limit)
            .collect();
        (!limits.is_empty()).then(|| median_and_share_within(limits, ideal))
    }
}

/// Whether `limit` is within ±15 % of `ideal`.
fn within_15(limit: usize, ideal: usize) -> bool {
    (limit as f64 - ideal as f64).abs() <= 0.15 * ideal as f64
}

/// The median of `limits` (0 if none) and the share of them within ±15 %
/// of `ideal`.
fn median_and_share_within(mut limits: Vec<usize>, ideal: usize) -> (usize, f64) {
    let inside = limits.iter().filter(|&&l| within_15(l, ideal)).count();
    let share = inside as f64 / limits.len().max(1) as f64;
    limits.sort_unstable();
    (limits.get(limits.len() / 2).copied().unwrap_or(0), share)
}

/// The 99th percentile of `micros`, in milliseconds; `None` if empty.
fn p99_ms(mut micros: Vec<u64>) -> Option<f64> {
    if micros.is_empty() {
        return None;
    }
    micros.sort_unstable();
    let k = ((micros.len() as f64 * 0.99).ceil() as usize).clamp(1, micros.len()) - 1;
    Some(micros[k] as f64 / 1000.0)
}

/// One load level of one system.
#[derive(Debug, Serialize)]
pub(crate) struct Level {
    /// Offered load as a multiple of capacity.
    pub(crate) load: f64,
    pub(crate) offered_per_s: f64,
    pub(crate) seconds: f64,
    /// By class, `Bulk` first.
    pub(crate) classes: Vec<ClassResult>,
    /// tower-pressure only: nothing in flight or queued after the phase.
    pub(crate) idle_after: Option<bool>,
    /// p99 time to a refusal, all classes together.
    pub(crate) rejected_p99_ms: f64,
    /// tower-pressure only: the limiter's refusals by reason and class,
    /// from the end of the warm-up to the end of the drain.
    pub(crate) refusals: Option<Refusals>,
}

/// Why the limiter refused, by class (`Bulk` first).
#[derive(Debug, Serialize)]
pub(crate) struct Refusals {
    /// The queue (or the class's cap) was full, and nobody below it to push
    /// out.
    pub(crate) queue_full: [u64; 5],
    /// Waited until the class's queue timeout.
    pub(crate) timed_out: [u64; 5],
    /// Pushed out of a full queue by a more important request.
    pub(crate) evicted: [u64; 5],
    /// Refused at arrival because the estimated wait was past the class's
    /// queue timeout (or, while its queue stood, past a tenth of it), or
    /// its own deadline had passed.
    pub(crate) deadline_unmeetable: [u64; 5],
    /// Refused by emergency mode.
    pub(crate) emergency: [u64; 5],
}

impl Refusals {
    /// The refusals counted between two snapshots of the limiter's counts.
    pub(crate) fn between(
        before: &PerPriority<ClassCounts>,
        after: &PerPriority<ClassCounts>,
    ) -> Refusals {
        let d = |f: fn(&ClassCounts) -> u64| -> [u64; 5] {
            Priority::ALL.map(|p| f(&after[p]).saturating_sub(f(&before[p])))
        };
        Refusals {
            queue_full: d(|c| c.queue_full),
            timed_out: d(|c| c.timed_out),
            evicted: d(|c| c.evicted),
            deadline_unmeetable: d(|c| c.deadline_unmeetable),
            emergency: d(|c| c.emergency),
        }
    }
}

impl Level {
    /// Answers within their objective, per second.
    pub(crate) fn goodput(&self) -> f64 {
        self.classes.iter().map(|c| c.good as f64).sum::<f64>() / self.seconds
    }
}

impl Level {
    /// Requests scheduled in the measured phase, all classes.
    pub(crate) fn offered(&self) -> u64 {
        self.classes.iter().map(|c| c.offered).sum()
    }

    /// Refused or failed, all classes.
    pub(crate) fn refused(&self) -> u64 {
        self.classes.iter().map(|c| c.rejected + c.failed).sum()
    }
}

/// One system across the load levels and scenarios.
#[derive(Debug, Serialize)]
pub(crate) struct Run {
    pub(crate) system: &'static str,
    /// The class mix at each load level.
    pub(crate) levels: Vec<Level>,
    /// Bursts of High over Normal and Low below capacity.
    pub(crate) bursty: Option<Level>,
    /// Normal alone, at 2× and 5×.
    pub(crate) single: Vec<Level>,
    pub(crate) step: Step,
    /// The capacity step, for the systems with a limiter.
    pub(crate) capacity_step: Option<CapacityStep>,
}

/// A gateway whose slots change under a steady overload: each part's
/// adaptive (or fixed) limit against the slots it had.
#[derive(Debug, Serialize)]
pub(crate) struct CapacityStep {
    /// Requests per second offered throughout (1.5× the first part's
    /// capacity).
    pub(crate) offered_per_s: f64,
    pub(crate) parts: Vec<CapacityPart>,
}

/// One part of the capacity step.
#[derive(Debug, Serialize)]
pub(crate) struct CapacityPart {
    /// The gateway's slots: the ideal limit.
    pub(crate) slots: usize,
    pub(crate) seconds: f64,
    /// The limit every 100 ms.
    pub(crate) limits: Vec<usize>,
    /// How long into the part the limit entered ±15 % of the slots for the
    /// rest of it; `None` if it never did.
    pub(crate) settled_ms: Option<u64>,
    /// The median limit of the part's second half.
    pub(crate) median_limit: usize,
    /// The share of the part's second half the limit was within ±15 %.
    pub(crate) in_band: f64,
    /// Answers within their objective, per second.
    pub(crate) goodput_per_s: f64,
    /// p99 latency of High's answers.
    pub(crate) high_p99_ms: f64,
}

impl CapacityPart {
    /// The part from `from` for `length`, with `slots` slots: `limits`
    /// sampled every [`BUCKET`] and the samples scheduled in it.
    pub(crate) fn new(
        slots: usize,
        from: Duration,
        length: Duration,
        limits: Vec<usize>,
        samples: &[Sample],
    ) -> CapacityPart {
        let settled_ms = match limits.iter().rposition(|&l| !within_15(l, slots)) {
            None => Some(0),
            Some(i) if i + 1 < limits.len() => Some((i as u64 + 1) * BUCKET.as_millis() as u64),
            Some(_) => None,
        };
        let (median_limit, in_band) =
            median_and_share_within(limits[limits.len() / 2..].to_vec(), slots);
        let mine: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= from && s.at < from + length)
            .collect();
        let good = mine.iter().filter(|s| s.outcome == Outcome::Good).count();
        let high: Vec<u64> = mine
            .iter()
            .filter(|s| {
                s.class == Priority::High && matches!(s.outcome, Outcome::Good | Outcome::Late)
            })
            .map(|s| s.micros)
            .collect();
        let high_p99_ms = p99_ms(high).unwrap_or(0.0);
        CapacityPart {
            slots,
            seconds: length.as_secs_f64(),
            limits,
            settled_ms,
            median_limit,
            in_band,
            goodput_per_s: good as f64 / length.as_secs_f64(),
            high_p99_ms,
        }
    }
}

impl Run {
    /// Normal alone at `load`× capacity.
    pub(crate) fn single_at(&self, load: f64) -> Option<&Level> {
        self.single.iter().find(|l| l.load == load)
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) capacity_per_s: f64,
    /// The gateway's worker slots: the ideal concurrency limit.
    slots: usize,
    quick: bool,
    arrivals: &'static str,
    mix: [f64; 5],
    pub(crate) runs: Vec<Run>,
    /// The proof issue's targets, per system.
    targets: Vec<crate::targets::Check>,
}

impl Report {
    pub(crate) fn new(
        capacity_per_s: f64,
        slots: usize,
        quick: bool,
        arrivals: &'static str,
        runs: Vec<Run>,
    ) -> Self {
        let mut report = Report {
            capacity_per_s,
            slots,
            quick,
            arrivals,
            mix: crate::load::MIX,
            runs,
            targets: Vec::new(),
        };
        report.targets = crate::targets::checks(&report);
        report
    }

    /// The summary table and, for each level, the per-class detail of
    /// tower-pressure against the best baseline.
    pub(crate) fn print(&self) {
        println!(
            "capacity {:.0} requests/s, {} arrivals; goodput = answers within the class objective, per second\n",
            self.capacity_per_s, self.arrivals
        );
        print!("{:<24}", "system \\ load");
        for l in &self.runs[0].levels {
            print!("{:>10}", format!("{}×", l.load));
        }
        println!();
        for run in &self.runs {
            print!("{:<24}", run.system);
            for l in &run.levels {
                print!("{:>10}", format!("{:.0}/s", l.goodput()));
            }
            println!();
        }
        println!();
        for run in &self.runs {
            match run.step.high_recovery_ms {
                Some(ms) => println!(
                    "{:<24} step to 5×: High p99 back within its objective after {ms} ms",
                    run.system
                ),
                None => println!(
                    "{:<24} step to 5×: High p99 never came back within its objective",
                    run.system
                ),
            }
        }
        if let Some(first) = self.runs.iter().find_map(|r| r.capacity_step.as_ref()) {
            let slots: Vec<String> = first.parts.iter().map(|p| p.slots.to_string()).collect();
            println!(
                "\ncapacity step: a gateway of {} slots × 25 ms at {:.0} requests/s offered; per part: \
                 the limit's median over the part's second half, when it entered ±15 % of the slots \
                 for good, the share of the second half within, goodput and High p99:",
                slots.join(" → "),
                first.offered_per_s
            );
            for run in &self.runs {
                let Some(c) = &run.capacity_step else {
                    continue;
                };
                let parts: Vec<String> = c
                    .parts
                    .iter()
                    .map(|p| {
                        format!(
                            "{} slots: median {}, settled {}, {:.0} % within, {:.0}/s, High p99 {:.0} ms",
                            p.slots,
                            p.median_limit,
                            p.settled_ms
                                .map_or("never".to_owned(), |ms| format!("after {:.1} s", ms as f64 / 1000.0)),
                            100.0 * p.in_band,
                            p.goodput_per_s,
                            p.high_p99_ms
                        )
                    })
                    .collect();
                println!("  {:<23} {}", run.system, parts.join(" | "));
            }
        }
        println!(
            "\nthe concurrency limit during the step's 5× part (ideal: the gateway's {} slots):",
            self.slots
        );
        for run in &self.runs {
            if let Some((median, share)) = run.step.limit_at_5x(self.slots) {
                println!(
                    "  {:<23} median {median}, within ±15 % of {} for {:.0} % of the time",
                    run.system,
                    self.slots,
                    100.0 * share
                );
            }
        }
        println!(
            "\nHigh bursts (2× capacity for 0.2 s a second) over Normal and Low at 0.5×, and Normal alone:"
        );
        println!(
            "  {:<23} {:>9} {:>9} {:>9} {:>11} {:>11} {:>11}",
            "system", "good/s", "offered/s", "refused", "High p99", "Normal 2×", "Normal 5×"
        );
        for run in &self.runs {
            let single = |load| {
                run.single_at(load)
                    .map_or("-".to_owned(), |l| format!("{:.0}/s", l.goodput()))
            };
            match &run.bursty {
                Some(b) => println!(
                    "  {:<23} {:>9.0} {:>9.0} {:>8.1}% {:>8.1} ms {:>11} {:>11}",
                    run.system,
                    b.goodput(),
                    b.offered() as f64 / b.seconds,
                    100.0 * b.refused() as f64 / b.offered().max(1) as f64,
                    b.classes[Priority::High.index()].ok_p99_ms,
                    single(2.0),
                    single(5.0),
                ),
                None => println!(
                    "  {:<23} {:>9} {:>9} {:>9} {:>11} {:>11} {:>11}",
                    run.system,
                    "-",
                    "-",
                    "-",
                    "-",
                    single(2.0),
                    single(5.0)
                ),
            }
        }
        for (i, l) in self.runs[0].levels.iter().enumerate() {
            println!(
                "\nat {}× capacity ({:.0} requests/s offered):",
                l.load, l.offered_per_s
            );
            println!(
                "  {:<23} {:<9} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9}",
                "system",
                "class",
                "offered",
                "good",
                "late",
                "refused",
                "p50 ms",
                "p99 ms",
                "rej p99"
            );
            for run in &self.runs {
                for c in run.levels[i].classes.iter().rev() {
                    println!(
                        "  {:<23} {:<9} {:>7} {:>7} {:>7} {:>7} {:>9.1} {:>9.1} {:>9.1}",
                        run.system,
                        c.class,
                        c.offered,
                        c.good,
                        c.late,
                        c.rejected + c.failed,
                        c.ok_p50_ms,
                        c.ok_p99_ms,
                        c.rejected_p99_ms
                    );
                }
            }
        }
    }

    /// The targets table.
    pub(crate) fn print_targets(&self) {
        crate::targets::print(&self.targets);
    }

    pub(crate) fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("demo.json"), json)
    }

    /// What must hold of tower-pressure (both variants) at every load level: no permit left
    /// behind, and no `Critical` request refused while `Bulk` ones got in.
    pub(crate) fn broken_invariants(&self) -> Vec<String> {
        let mut broken = Vec::new();
        for run in self
            .runs
            .iter()
            .filter(|r| r.system.starts_with("tower-pressure"))
        {
            for l in run.levels.iter().chain(&run.bursty).chain(&run.single) {
                if l.idle_after == Some(false) {
                    broken.push(format!(
                        "{}× load: permits or waiters left after the phase",
                        l.load
                    ));
                }
                let critical = &l.classes[Priority::Critical.index()];
                let bulk = &l.classes[Priority::Bulk.index()];
                if critical.rejected > 0 && bulk.good + bulk.late > 0 {
                    broken.push(format!(
                        "{}× load: {} critical requests refused while {} bulk requests were served",
                        l.load,
                        critical.rejected,
                        bulk.good + bulk.late
                    ));
                }
            }
        }
        broken
    }
}

/// Writes `index.html` and its SVG charts into `dir`.
pub(crate) fn html(report: &Report, dir: &Path) -> std::io::Result<()> {
    let levels: Vec<String> = report.runs[0]
        .levels
        .iter()
        .map(|l| format!("{}×", l.load))
        .collect();
    let goodput = line_chart(
        "Goodput (answers within their objective) vs offered load",
        "requests/s",
        &levels,
        &per_system(report, |r| r.levels.iter().map(Level::goodput).collect()),
    );
    let mut charts = vec![("goodput.svg".to_owned(), goodput)];
    for run in &report.runs {
        let per_class = line_chart(
            &format!("{}: goodput by class", run.system),
            "requests/s",
            &levels,
            &per_class(|p| {
                run.levels
                    .iter()
                    .map(|l| l.classes[p.index()].good as f64 / l.seconds)
                    .collect()
            }),
        );
        charts.push((format!("classes-{}.svg", run.system), per_class));
    }
    let times: Vec<String> = report.runs[0]
        .step
        .buckets
        .iter()
        .map(|b| format!("{:.1}s", b.t_ms as f64 / 1000.0))
        .collect();
    let high = line_chart(
        "Step 0.5× → 5× → 0.5×: High p99 latency of successes",
        "ms",
        &times,
        &per_system(report, |r| {
            r.step
                .buckets
                .iter()
                .map(|b| b.high_p99_ms.unwrap_or(f64::NAN))
                .collect()
        }),
    );
    charts.push(("step-high-p99.svg".to_owned(), high));
    let limited: Vec<&Run> = report
        .runs
        .iter()
        .filter(|r| r.step.buckets.iter().any(|b| b.limit.is_some()))
        .collect();
    if !limited.is_empty() {
        let series: Vec<Series<'_>> = limited
            .iter()
            .zip(COLORS.iter().cycle())
            .map(|(r, &color)| Series {
                name: r.system,
                color,
                values: r
                    .step
                    .buckets
                    .iter()
                    .map(|b| b.limit.map_or(f64::NAN, |l| l as f64))
                    .collect(),
            })
            .collect();
        charts.push((
            "step-limit.svg".to_owned(),
            line_chart(
                "Step 0.5× → 5× → 0.5×: the concurrency limit (the adaptive variant tunes its own)",
                "permits",
                &times,
                &series,
            ),
        ));
    }
    if let Some(tp) = report.runs.iter().find(|r| r.system == "tower-pressure") {
        let mut series = per_class(|p| {
            tp.step
                .buckets
                .iter()
                .map(|b| b.served[p.index()] as f64 * 10.0)
                .collect()
        });
        series.push(Series {
            name: "queue length",
            color: "#000000",
            values: tp
                .step
                .buckets
                .iter()
                .map(|b| b.queue_len.unwrap_or(0) as f64)
                .collect(),
        });
        charts.push((
            "step-tower-pressure.svg".to_owned(),
            line_chart(
                "tower-pressure in the step: served per second by class, and queue length",
                "req/s · waiting",
                &times,
                &series,
            ),
        ));
    }
    let mut page = String::from(
        "<!doctype html><meta charset=\"utf-8\"><title>tower-pressure overload demo</title>\
         <style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style>\
         <h1>tower-pressure overload demo</h1>",
    );
    let _ = write!(
        page,
        "<p>The voice gateway ({:.0} requests/s capacity) driven open-loop at 0.5× to 10× capacity{}. \
         Goodput counts answers within their class's objective (Critical 250 ms, High 500 ms, others 1 s).</p>",
        report.capacity_per_s,
        if report.quick { ", quick run" } else { "" }
    );
    page.push_str("<table><tr><th>system</th>");
    for l in &levels {
        let _ = write!(page, "<th>{}</th>", escape(l));
    }
    page.push_str("<th>High recovery after the step</th></tr>");
    for run in &report.runs {
        let _ = write!(page, "<tr><td>{}</td>", run.system);
        for l in &run.levels {
            let _ = write!(page, "<td>{:.0}/s</td>", l.goodput());
        }
        let rec = run
            .step
            .high_recovery_ms
            .map_or("never".to_owned(), |ms| format!("{ms} ms"));
        let _ = write!(page, "<td>{rec}</td></tr>");
    }
    page.push_str("</table>");
    page.push_str(
        "<h2>Bursts, and one class alone</h2><p>High at 2× capacity for 0.2 s once a second over \
         Normal and Low at 0.5× (0.9× on average: a queue can carry every burst), and Normal alone \
         at 2× and 5×.</p><table><tr><th>system</th><th>bursts: goodput</th><th>offered</th>\
         <th>refused</th><th>High p99</th><th>Normal alone 2×</th><th>5×</th></tr>",
    );
    for run in &report.runs {
        let _ = write!(page, "<tr><td>{}</td>", run.system);
        match &run.bursty {
            Some(b) => {
                let _ = write!(
                    page,
                    "<td>{:.0}/s</td><td>{:.0}/s</td><td>{:.1} %</td><td>{:.1} ms</td>",
                    b.goodput(),
                    b.offered() as f64 / b.seconds,
                    100.0 * b.refused() as f64 / b.offered().max(1) as f64,
                    b.classes[Priority::High.index()].ok_p99_ms
                );
            }
            None => page.push_str("<td></td><td></td><td></td><td></td>"),
        }
        for load in [2.0, 5.0] {
            match run.single_at(load) {
                Some(l) => {
                    let _ = write!(page, "<td>{:.0}/s</td>", l.goodput());
                }
                None => page.push_str("<td></td>"),
            }
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
    std::fs::create_dir_all(dir)?;
    for (name, svg) in &charts {
        std::fs::write(dir.join(name), svg)?;
        let _ = write!(page, "<p><img src=\"{name}\" alt=\"{name}\"></p>");
    }
    page.push_str(
        "<p>The numbers behind these charts are in <a href=\"demo.json\">demo.json</a>.</p>",
    );
    std::fs::write(dir.join("index.html"), page)
}

/// One series per system, in the report's order.
fn per_system(report: &Report, values: impl Fn(&Run) -> Vec<f64>) -> Vec<Series<'_>> {
    report
        .runs
        .iter()
        .zip(COLORS.iter().cycle().skip(1))
        .map(|(r, &color)| Series {
            name: r.system,
            color,
            values: values(r),
        })
        .collect()
}

/// One series per class, Critical first.
fn per_class(values: impl Fn(Priority) -> Vec<f64>) -> Vec<Series<'static>> {
    Priority::ALL
        .iter()
        .rev()
        .zip(COLORS)
        .map(|(&p, color)| Series {
            name: p.as_str(),
            color,
            values: values(p),
        })
        .collect()
}
