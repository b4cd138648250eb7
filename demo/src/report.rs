//! The experiment's results: the terminal table, the JSON file, and the
//! invariants `.ci/run` holds the project to.

use std::path::Path;

use serde::Serialize;
use tower_pressure::Priority;

use crate::load::ClassResult;

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
}

impl Level {
    /// Answers within their objective, per second.
    pub(crate) fn goodput(&self) -> f64 {
        self.classes.iter().map(|c| c.good as f64).sum::<f64>() / self.seconds
    }
}

/// One system across the load levels.
#[derive(Debug, Serialize)]
pub(crate) struct Run {
    pub(crate) system: &'static str,
    pub(crate) levels: Vec<Level>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    capacity_per_s: f64,
    quick: bool,
    mix: [f64; 5],
    runs: Vec<Run>,
}

impl Report {
    pub(crate) fn new(capacity_per_s: f64, quick: bool, runs: Vec<Run>) -> Self {
        Report {
            capacity_per_s,
            quick,
            mix: crate::load::MIX,
            runs,
        }
    }

    /// The summary table and, for each level, the per-class detail of
    /// tower-pressure against the best baseline.
    pub(crate) fn print(&self) {
        println!(
            "capacity {:.0} requests/s; goodput = answers within the class objective, per second\n",
            self.capacity_per_s
        );
        print!("{:<18}", "system \\ load");
        for l in &self.runs[0].levels {
            print!("{:>10}", format!("{}×", l.load));
        }
        println!();
        for run in &self.runs {
            print!("{:<18}", run.system);
            for l in &run.levels {
                print!("{:>10}", format!("{:.0}/s", l.goodput()));
            }
            println!();
        }
        for (i, l) in self.runs[0].levels.iter().enumerate() {
            println!(
                "\nat {}× capacity ({:.0} requests/s offered):",
                l.load, l.offered_per_s
            );
            println!(
                "  {:<17} {:<9} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9}",
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
                        "  {:<17} {:<9} {:>7} {:>7} {:>7} {:>7} {:>9.1} {:>9.1} {:>9.1}",
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

    pub(crate) fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("demo.json"), json)
    }

    /// What must hold of tower-pressure at every load level: no permit left
    /// behind, and no `Critical` request refused while `Bulk` ones got in.
    pub(crate) fn broken_invariants(&self) -> Vec<String> {
        let mut broken = Vec::new();
        for run in self.runs.iter().filter(|r| r.system == "tower-pressure") {
            for l in &run.levels {
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
