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
//!
//! One file per job: `run.rs` invokes `cargo bench` and writes the page,
//! `results.rs` reads what criterion (and a paired bench) left,
//! `targets.rs` judges the targets, `render.rs` writes the markdown.

mod render;
mod results;
mod run;
mod targets;

use std::collections::BTreeMap;

pub(crate) use run::run;

/// Medians in nanoseconds, by group, then by benchmark name within the group
/// (`function` or `function/parameter`).
type Results = BTreeMap<String, BTreeMap<String, f64>>;

/// The suffix of the pseudo-group that holds a group's paired ratio.
const PAIRED: &str = " (paired)";

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

// The fixtures every job's tests share, and the tests that go from
// criterion's files to the page, through every job.
#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::render::{Machine, render};
    use super::results::read_results;

    pub(super) fn estimates(median: f64) -> String {
        format!(
            r#"{{"mean":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0}},"point_estimate":{mean},"standard_error":0.1}},"median":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0}},"point_estimate":{median},"standard_error":0.1}}}}"#,
            mean = median + 1.0
        )
    }

    pub(super) fn write(dir: &Path, rel: &str, text: &str) {
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
}
