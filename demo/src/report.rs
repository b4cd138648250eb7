//! The experiment's results: the terminal table, the JSON file, and the
//! invariants `.ci/run` holds the project to.

use std::fmt::Write;
use std::path::Path;

use serde::Serialize;
use tower_pressure::Priority;

use crate::model::{Level, Run};
use crate::svg::{COLORS, Series, escape, line_chart};
use crate::targets::{self, Check};

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) capacity_per_s: f64,
    /// The gateway's worker slots: the ideal concurrency limit.
    slots: usize,
    quick: bool,
    arrivals: &'static str,
    mix: [f64; 5],
    pub(crate) runs: Vec<Run>,
    /// The targets, checked per system.
    targets: Vec<Check>,
}

impl Report {
    pub(crate) fn new(
        capacity_per_s: f64,
        slots: usize,
        quick: bool,
        arrivals: &'static str,
        runs: Vec<Run>,
    ) -> Self {
        let targets = targets::checks(&runs, capacity_per_s);
        Report {
            capacity_per_s,
            slots,
            quick,
            arrivals,
            mix: crate::load::MIX,
            runs,
            targets,
        }
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
        targets::print(&self.targets);
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
