//! `cargo xtask bench`: runs the criterion benchmarks, then writes
//! `docs/BENCHMARKS.md` from their results.
//!
//! Arguments are passed on to `cargo bench -p tower-pressure-benches`
//! (`--bench stack`, `-- FILTER`); `--report-only` skips the run and only
//! rewrites the page from the results already there. The page holds the
//! date, the machine, the targets (met or not) and one table per criterion
//! group: every benchmark's median (`median.point_estimate` of its
//! `new/estimates.json`) and its ratio to the group's tower baseline.
//!
//! Every result under `target/criterion` is read, so after a filtered run the
//! other groups show their earlier figures.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The page written, relative to the workspace root.
const PAGE: &str = "docs/BENCHMARKS.md";
/// The benchmark crate.
const PACKAGE: &str = "tower-pressure-benches";

/// Medians in nanoseconds, by group, then by benchmark name within the group
/// (`function` or `function/parameter`).
type Results = BTreeMap<String, BTreeMap<String, f64>>;

pub(crate) fn run(args: &[String]) -> ExitCode {
    let root = crate::workspace_root();
    let report_only = args.iter().any(|a| a == "--report-only");
    let command = if report_only {
        "none: --report-only, the results of earlier runs".to_owned()
    } else {
        let mut bench_args = vec!["bench".to_owned(), "-p".to_owned(), PACKAGE.to_owned()];
        bench_args.extend(args.iter().cloned());
        let refs: Vec<&str> = bench_args.iter().map(String::as_str).collect();
        if crate::cargo(&refs) != ExitCode::SUCCESS {
            eprintln!("xtask bench: cargo bench failed; {PAGE} not written");
            return ExitCode::FAILURE;
        }
        format!("cargo {}", bench_args.join(" "))
    };
    let dir = criterion_dir(&root);
    let results = match read_results(&dir) {
        Ok(r) if r.is_empty() => {
            eprintln!("xtask bench: no results under {}", dir.display());
            return ExitCode::FAILURE;
        }
        Ok(r) => r,
        Err(e) => {
            eprintln!("xtask bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let page = render(&results, &Machine::here(command));
    let path = root.join(PAGE);
    let written = path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| fs::write(&path, &page));
    if let Err(e) = written {
        eprintln!("xtask bench: could not write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    print!("{}", targets_section(&results));
    println!(
        "\nwrote {PAGE}: {} benchmarks in {} groups",
        results.values().map(BTreeMap::len).sum::<usize>(),
        results.len()
    );
    ExitCode::SUCCESS
}

/// Where criterion keeps its results: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.
fn criterion_dir(root: &Path) -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return root.join(home);
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |t| root.join(t));
    target.join("criterion")
}

/// Every `**/new/estimates.json` under `dir`. The folders above `new` name
/// the benchmark: the first is the group, the rest (joined by `/`) the
/// benchmark; a benchmark outside any group is its own group.
fn read_results(dir: &Path) -> Result<Results, String> {
    let mut found = Vec::new();
    estimate_files(dir, &mut found);
    let mut results = Results::new();
    for file in found {
        let Some(id) = file
            .parent()
            .and_then(Path::parent)
            .and_then(|p| p.strip_prefix(dir).ok())
        else {
            continue;
        };
        let parts: Vec<String> = id
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let Some((group, rest)) = parts.split_first() else {
            continue;
        };
        let bench = if rest.is_empty() {
            group.clone()
        } else {
            rest.join("/")
        };
        let text = fs::read_to_string(&file)
            .map_err(|e| format!("could not read {}: {e}", file.display()))?;
        let median = median_ns(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        results
            .entry(group.clone())
            .or_default()
            .insert(bench, median);
    }
    // Paired measurements a bench wrote beside criterion's (`paired.json`
    // in a group's folder): a ratio, not a time, kept apart from the times.
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.path().join("paired.json");
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
        if value["median_ratio"].as_f64().is_none() {
            return Err(format!("{}: no median_ratio", file.display()));
        }
        let group = entry.file_name().to_string_lossy().into_owned();
        let paired = results.entry(format!("{group}{PAIRED}")).or_default();
        // Every top-level ratio: `median_ratio` and any `*_ratio` beside it.
        for (key, v) in value.as_object().into_iter().flatten() {
            if let (true, Some(ratio)) = (key.ends_with("_ratio"), v.as_f64()) {
                paired.insert(key.clone(), ratio);
            }
        }
    }
    Ok(results)
}

/// The suffix of the pseudo-group that holds a group's paired ratio.
const PAIRED: &str = " (paired)";

fn estimate_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let estimates = path.join("estimates.json");
        if path.file_name().is_some_and(|n| n == "new") && estimates.is_file() {
            out.push(estimates);
        } else {
            estimate_files(&path, out);
        }
    }
}

/// The median point estimate of a criterion `estimates.json`, in ns.
fn median_ns(json: &str) -> Result<f64, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    value["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| "no median.point_estimate".to_owned())
}

/// The machine and moment of a run.
#[derive(Debug, Clone)]
struct Machine {
    date: String,
    cores: String,
    cpu: String,
    rustc: String,
    command: String,
}

impl Machine {
    /// This machine, now.
    fn here(command: String) -> Machine {
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

/// What a target asks of a benchmark.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// The median over the median of `to` in the same group, at most `max`.
    RatioAtMost { to: &'static str, max: f64 },
    /// The median at most this many nanoseconds over the group's bare
    /// service (`baseline*`, the same request built and answered without
    /// the layer): what the layer itself costs. Without a bare baseline,
    /// the median itself.
    MedianAtMostNs(f64),
    /// The median of a paired measurement's per-round ratios (the group's
    /// `paired.json`), at most this.
    PairedRatioAtMost(f64),
}

/// One of the project's performance targets.
#[derive(Debug, Clone, Copy)]
struct Target {
    what: &'static str,
    group: &'static str,
    bench: &'static str,
    goal: Goal,
}

const TARGETS: [Target; 19] = [
    Target {
        what: "admission fast path (generic) vs tower",
        group: "fast_path_generic",
        bench: "admission_generic",
        goal: Goal::RatioAtMost {
            to: "tower_concurrency_limit",
            max: 1.0,
        },
    },
    Target {
        what: "admission fast path (http) vs tower",
        group: "fast_path_http",
        bench: "admission_http",
        goal: Goal::RatioAtMost {
            to: "tower_concurrency_limit",
            max: 1.0,
        },
    },
    Target {
        what: "admission layer (generic)",
        group: "fast_path_generic",
        bench: "admission_generic",
        goal: Goal::MedianAtMostNs(100.0),
    },
    Target {
        what: "admission layer (http)",
        group: "fast_path_http",
        bench: "admission_http",
        goal: Goal::MedianAtMostNs(100.0),
    },
    Target {
        what: "admission layer (http, permit held to body end)",
        group: "fast_path_http",
        bench: "admission_http_hold_body",
        goal: Goal::MedianAtMostNs(100.0),
    },
    Target {
        what: "classify layer (voice-service preset, request with no extensions yet: includes http's first-extension allocation)",
        group: "classify_layer",
        bench: "voice_service_preset",
        goal: Goal::MedianAtMostNs(100.0),
    },
    Target {
        what: "full stack (classify + admission), one instance",
        group: "stack",
        bench: "classify_admission",
        goal: Goal::MedianAtMostNs(500.0),
    },
    Target {
        what: "full stack (classify + admission), clone per request",
        group: "stack_clone_per_request",
        bench: "classify_admission",
        goal: Goal::MedianAtMostNs(500.0),
    },
    Target {
        what: "memory shed layer (http, level None)",
        group: "memory_shed_http",
        bench: "none_admitted",
        goal: Goal::MedianAtMostNs(100.0),
    },
    Target {
        what: "CPU throttle layer (http, below start)",
        group: "cpu_throttle_http",
        bench: "cpu_throttle_below_start",
        goal: Goal::MedianAtMostNs(100.0),
    },
    Target {
        what: "adaptive recording layer (http)",
        group: "adaptive_layer_http",
        bench: "adaptive_recording",
        goal: Goal::MedianAtMostNs(100.0),
    },
    Target {
        what: "full stack (every layer), one instance",
        group: "stack",
        bench: "full_stack",
        goal: Goal::MedianAtMostNs(500.0),
    },
    Target {
        what: "full stack (every layer), clone per request",
        group: "stack_clone_per_request",
        bench: "full_stack",
        goal: Goal::MedianAtMostNs(500.0),
    },
    Target {
        // Judged on paired rounds, not on criterion's two medians: those are
        // measured seconds apart, and their ratio swung from 0.74 to 1.66
        // between runs on a shared machine (they stay in the results table).
        what: "axum hello-world over loopback, full stack vs bare, paired rounds (throughput ≥ 0.95×)",
        group: "e2e_axum_hello (paired)",
        bench: "median_ratio",
        goal: Goal::PairedRatioAtMost(1.0 / 0.95),
    },
    Target {
        what: "axum hello-world over loopback, the README's stack (auto sources, Bottleneck) vs bare, paired rounds (throughput ≥ 0.95×)",
        group: "e2e_axum_hello (paired)",
        bench: "readme_median_ratio",
        goal: Goal::PairedRatioAtMost(1.0 / 0.95),
    },
    Target {
        what: "axum hello-world over loopback, the README's stack vs bare: p99.9 latency at most 2×",
        group: "e2e_axum_hello (paired)",
        bench: "readme_p99.9_ratio",
        goal: Goal::PairedRatioAtMost(2.0),
    },
    Target {
        what: "2-thread contention, ~200 ns of work a call: 2 threads do at least as much as 1",
        group: "contended_layer_with_work",
        bench: "admission_generic/2",
        goal: Goal::RatioAtMost {
            to: "admission_generic/1",
            max: 1.0,
        },
    },
    Target {
        what: "classify layer (voice-service preset, request already carrying extensions, as under axum's Router, which inserts OriginalUri)",
        group: "classify_layer",
        bench: "voice_service_preset_extensions_allocated",
        goal: Goal::MedianAtMostNs(100.0),
    },
    Target {
        what: "classify an adversarial 8 KiB path against `/**/a/**/b`",
        group: "classify_adversarial",
        bench: "8KiB",
        goal: Goal::MedianAtMostNs(1000.0),
    },
];

/// The whole page.
fn render(results: &Results, machine: &Machine) -> String {
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

/// The targets, each with its measured figure and whether it is met.
fn targets_section(results: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(s, "| target | benchmark | measured | goal | status |");
    let _ = writeln!(s, "| --- | --- | --- | --- | --- |");
    for t in TARGETS {
        let group = results.get(t.group);
        let median = group.and_then(|g| g.get(t.bench)).copied();
        let (measured, goal, met) = match t.goal {
            Goal::RatioAtMost { to, max } => {
                let base = group.and_then(|g| g.get(to)).copied();
                let goal = format!("≤ {max:.2} × `{to}`");
                match (median, base) {
                    (Some(m), Some(b)) => (
                        format!("{:.2} ({} vs {})", m / b, format_ns(m), format_ns(b)),
                        goal,
                        Some(m / b <= max),
                    ),
                    _ => ("–".to_owned(), goal, None),
                }
            }
            Goal::PairedRatioAtMost(max) => {
                let goal = if t.bench.contains("p99.9") {
                    format!("≤ {max:.2}, p99.9 latency over every round")
                } else {
                    format!("≤ {max:.2}, median of rounds each timing both side by side")
                };
                match median {
                    Some(r) => (format!("{r:.2}"), goal, Some(r <= max)),
                    None => ("–".to_owned(), goal, None),
                }
            }
            Goal::MedianAtMostNs(max) => {
                // Judged on the layer's own cost: the median over the bare
                // service's, which builds and answers the same request.
                let goal = format!("≤ {} over the bare service", format_ns(max));
                match median {
                    Some(m) => match group.and_then(|g| bare_baseline(g, t.bench)) {
                        Some((b, &ns)) => (
                            format!(
                                "+{} ({} vs `{b}` {})",
                                format_ns(m - ns),
                                format_ns(m),
                                format_ns(ns)
                            ),
                            goal,
                            Some(m - ns <= max),
                        ),
                        None => (format_ns(m), goal, Some(m <= max)),
                    },
                    None => ("–".to_owned(), goal, None),
                }
            }
        };
        let status = match met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "not measured",
        };
        let _ = writeln!(
            s,
            "| {} | `{}/{}` | {measured} | {goal} | {status} |",
            t.what, t.group, t.bench
        );
    }
    s
}

/// The benchmark of `benches` that `bench` is compared to: the first of
/// The bare-service baseline of `bench` in its group: the longest
/// `baseline*` name whose variant suffix `bench` shares
/// (`baseline_noop_extensions_allocated` for `…_extensions_allocated`), else
/// the plain one.
fn bare_baseline<'a>(
    benches: &'a BTreeMap<String, f64>,
    bench: &str,
) -> Option<(&'a String, &'a f64)> {
    let mut candidates: Vec<_> = benches
        .iter()
        .filter(|(b, _)| b.starts_with("baseline"))
        .collect();
    candidates.sort_by_key(|(b, _)| std::cmp::Reverse(b.len()));
    candidates.into_iter().find(|(b, _)| {
        let suffix = b.trim_start_matches("baseline").trim_start_matches("_noop");
        suffix.is_empty() || bench.ends_with(suffix)
    })
}

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

/// `ns` nanoseconds, in ns, µs or ms.
fn format_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimates(median: f64) -> String {
        format!(
            r#"{{"mean":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0}},"point_estimate":{mean},"standard_error":0.1}},"median":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0}},"point_estimate":{median},"standard_error":0.1}}}}"#,
            mean = median + 1.0
        )
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().expect("a parent")).expect("create fixture folders");
        fs::write(path, text).expect("write a fixture file");
    }

    fn machine() -> Machine {
        Machine {
            date: "2025-01-01 00:00 UTC".to_owned(),
            cores: "2".to_owned(),
            cpu: "Test CPU".to_owned(),
            rustc: "rustc 1.88.0".to_owned(),
            command: "cargo bench -p tower-pressure-benches".to_owned(),
        }
    }

    #[test]
    fn the_page_is_rendered_from_estimates_files() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        write(
            &dir,
            "fast_path_http/tower_concurrency_limit/new/estimates.json",
            &estimates(40.0),
        );
        write(
            &dir,
            "fast_path_http/admission_http/new/estimates.json",
            &estimates(30.0),
        );
        // Only `new` counts: criterion's `base` copy and reports are skipped.
        write(
            &dir,
            "fast_path_http/admission_http/base/estimates.json",
            &estimates(999.0),
        );
        write(&dir, "fast_path_http/report/index.html", "<html></html>");

        let results = read_results(&dir);
        fs::remove_dir_all(&dir).expect("remove the fixture");
        let results = results.expect("the fixture parses");
        let page = render(&results, &machine());

        assert!(page.contains("- cores (`nproc`): 2"), "{page}");
        assert!(page.contains("### `fast_path_http`"), "{page}");
        assert!(
            page.contains("Ratio to `tower_concurrency_limit`."),
            "{page}"
        );
        assert!(
            page.contains("| `admission_http` | 30.0 ns | 0.75 |"),
            "{page}"
        );
        assert!(
            page.contains("| `tower_concurrency_limit` | 40.0 ns | 1.00 |"),
            "{page}"
        );
        assert!(
            page.contains(
                "| admission fast path (http) vs tower | `fast_path_http/admission_http` \
                 | 0.75 (30.0 ns vs 40.0 ns) | ≤ 1.00 × `tower_concurrency_limit` | met |"
            ),
            "{page}"
        );
        assert!(
            page.contains("| admission layer (http) | `fast_path_http/admission_http` | 30.0 ns | ≤ 100.0 ns over the bare service | met |"),
            "{page}"
        );
        assert!(
            page.contains(
                "`stack/classify_admission` | – | ≤ 500.0 ns over the bare service | not measured |"
            ),
            "{page}"
        );
        assert!(!page.contains("999"), "{page}");
    }

    #[test]
    fn a_bench_outside_a_group_is_its_own_group() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-single-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        write(&dir, "priority_parse/new/estimates.json", &estimates(5.0));
        let results = read_results(&dir);
        fs::remove_dir_all(&dir).expect("remove the fixture");
        let results = results.expect("the fixture parses");
        assert_eq!(results["priority_parse"]["priority_parse"], 5.0);
    }

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

    #[test]
    fn a_layer_target_is_judged_on_its_overhead_over_the_bare_service() {
        let mut results = Results::new();
        let group = results.entry("classify_layer".to_owned()).or_default();
        group.insert("baseline_noop".to_owned(), 60.0);
        group.insert("voice_service_preset".to_owned(), 150.0);
        let section = targets_section(&results);
        assert!(
            section.contains(
                "| +90.0 ns (150.0 ns vs `baseline_noop` 60.0 ns) | ≤ 100.0 ns over the bare service | met |"
            ),
            "{section}"
        );
        results
            .get_mut("classify_layer")
            .unwrap()
            .insert("voice_service_preset".to_owned(), 170.0);
        assert!(
            targets_section(&results).contains("| +110.0 ns (170.0 ns vs `baseline_noop` 60.0 ns) | ≤ 100.0 ns over the bare service | **not met** |"),
        );
    }

    #[test]
    fn a_paired_ratio_is_a_target_of_its_own_and_no_time_in_the_tables() {
        let dir = std::env::temp_dir().join(format!("xtask-paired-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        write(
            &dir,
            "e2e_axum_hello/baseline_bare_axum/new/estimates.json",
            &estimates(10_000.0),
        );
        write(
            &dir,
            "e2e_axum_hello/full_stack/new/estimates.json",
            &estimates(13_000.0),
        );
        write(
            &dir,
            "e2e_axum_hello/paired.json",
            r#"{"rounds":2,"requests_per_round":8,"median_ratio":1.02,"readme_median_ratio":1.1,"readme_p99.9_ratio":1.5,"p999_us":{"bare":10},"ratios":[1.0,1.04]}"#,
        );
        let results = read_results(&dir);
        fs::remove_dir_all(&dir).expect("remove the fixture");
        let page = render(&results.expect("the fixture parses"), &machine());
        // The criterion pair, measured apart, is in the tables but judges
        // nothing; the paired rounds do.
        assert!(
            page.contains("| `full_stack` | 13.00 µs | 1.30 |"),
            "{page}"
        );
        // Every `*_ratio` beside the median is a target of its own.
        assert!(
            page.contains("`e2e_axum_hello (paired)/readme_median_ratio` | 1.10 | ≤ 1.05, median of rounds each timing both side by side | **not met** |"),
            "{page}"
        );
        assert!(
            page.contains("`e2e_axum_hello (paired)/readme_p99.9_ratio` | 1.50 | ≤ 2.00, p99.9 latency over every round | met |"),
            "{page}"
        );
        assert!(
            page.contains("`e2e_axum_hello (paired)/median_ratio` | 1.02 |"),
            "{page}"
        );
        assert!(
            page.contains(
                "| 1.02 | ≤ 1.05, median of rounds each timing both side by side | met |"
            ),
            "{page}"
        );
        assert!(!page.contains("### `e2e_axum_hello (paired)`"), "{page}");
        assert!(!page.contains("p999_us"), "{page}");
    }

    #[test]
    fn a_missing_median_is_an_error() {
        assert!(median_ns(r#"{"mean":{"point_estimate":1.0}}"#).is_err());
        assert_eq!(median_ns(&estimates(12.5)), Ok(12.5));
    }
}

#[cfg(test)]
mod bare_baseline_tests {
    use super::*;

    #[test]
    fn a_variant_is_measured_against_the_bare_service_of_the_same_variant() {
        let g: BTreeMap<String, f64> = [
            ("baseline_noop", 10.0),
            ("baseline_noop_extensions_allocated", 20.0),
            ("preset", 50.0),
            ("preset_extensions_allocated", 60.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let name = |bench| bare_baseline(&g, bench).map(|(b, _)| b.as_str());
        assert_eq!(name("preset"), Some("baseline_noop"));
        assert_eq!(
            name("preset_extensions_allocated"),
            Some("baseline_noop_extensions_allocated")
        );
    }
}
