//! The markdown page: the machine, the targets, one table per group.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::process::Command;

use super::targets::targets_section;
use super::{PAIRED, Results, format_ns};

/// The machine and moment of a run.
#[derive(Debug, Clone)]
pub(super) struct Machine {
    pub(super) date: String,
    pub(super) cores: String,
    pub(super) cpu: String,
    pub(super) rustc: String,
    pub(super) command: String,
}

impl Machine {
    /// This machine, now.
    pub(super) fn here(command: String) -> Machine {
        let cores = output("nproc", &[]).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or_else(|_| "unknown".to_owned(), |n| n.to_string())
        });
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .unwrap_or_else(|| "unknown".to_owned()),
            cores,
            cpu,
            rustc: output("rustc", &["--version"]).unwrap_or_else(|| "unknown".to_owned()),
            command,
        }
    }
}

/// The trimmed standard output of a successful `program args`.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The whole page.
pub(super) fn render(results: &Results, machine: &Machine) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Written by `cargo xtask bench`; do not edit by hand. Figures are \
         criterion medians of the time per iteration (one operation or one \
         request), from `target/criterion/**/new/estimates.json`. The benches \
         are in `benches/benches/`, one file per concern.\n"
    );
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "- date: {}", machine.date);
    let _ = writeln!(s, "- cores (`nproc`): {}", machine.cores);
    let _ = writeln!(s, "- CPU: {}", machine.cpu);
    let _ = writeln!(s, "- rustc: {}", machine.rustc);
    let _ = writeln!(s, "- command: `{}`\n", machine.command);
    s.push_str(&targets_section(results));
    let _ = writeln!(s, "\n## Results\n");
    let _ = writeln!(
        s,
        "One table per criterion group. The ratio is to the group's tower \
         baseline: `tower_concurrency_limit` where present, else the group's \
         `baseline*` entry, else `tokio_semaphore`; a benchmark with a \
         parameter (`name/2`) is compared to the baseline with the same \
         parameter."
    );
    for (group, benches) in results.iter().filter(|(g, _)| !g.ends_with(PAIRED)) {
        let _ = writeln!(s, "\n### `{group}`\n");
        let baselines: BTreeSet<&str> = benches
            .keys()
            .filter_map(|b| baseline_for(benches, b))
            .map(|b| b.split_once('/').map_or(b, |(f, _)| f))
            .collect();
        if baselines.is_empty() {
            let _ = writeln!(s, "No baseline in this group.\n");
        } else {
            let names: Vec<String> = baselines.iter().map(|b| format!("`{b}`")).collect();
            let _ = writeln!(s, "Ratio to {}.\n", names.join(", "));
        }
        let _ = writeln!(s, "| benchmark | median | ratio |");
        let _ = writeln!(s, "| --- | ---: | ---: |");
        for (bench, &median) in benches {
            let ratio = baseline_for(benches, bench)
                .map_or_else(|| "–".to_owned(), |b| format!("{:.2}", median / benches[b]));
            let _ = writeln!(s, "| `{bench}` | {} | {ratio} |", format_ns(median));
        }
    }
    s
}

/// The benchmark of `benches` that `bench` is compared to: the first of
/// `tower_concurrency_limit`, `baseline*`, `tokio_semaphore` with the same
/// parameter as `bench` (or none, if `bench` has none); `None` if the group
/// has none. A baseline is compared to itself (ratio 1).
fn baseline_for<'a>(benches: &'a BTreeMap<String, f64>, bench: &str) -> Option<&'a str> {
    let param = bench.split_once('/').map(|(_, p)| p);
    let kinds: [fn(&str) -> bool; 3] = [
        |f| f == "tower_concurrency_limit",
        |f| f.starts_with("baseline"),
        |f| f == "tokio_semaphore",
    ];
    kinds.iter().find_map(|kind| {
        benches.keys().map(String::as_str).find(|key| {
            let (function, key_param) = key
                .split_once('/')
                .map_or((*key, None), |(f, p)| (f, Some(p)));
            kind(function) && key_param == param
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_has_the_same_parameter() {
        let benches: BTreeMap<String, f64> = [
            ("admission_generic/1", 2.0),
            ("admission_generic/2", 3.0),
            ("tower_concurrency_limit/1", 4.0),
            ("tower_concurrency_limit/2", 6.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(
            baseline_for(&benches, "admission_generic/2"),
            Some("tower_concurrency_limit/2")
        );
        assert_eq!(baseline_for(&benches, "admission_generic"), None);
        let plain: BTreeMap<String, f64> = [("baseline_noop", 1.0), ("signal_level", 2.0)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(baseline_for(&plain, "signal_level"), Some("baseline_noop"));
    }
}
