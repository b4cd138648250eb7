//! Runs the criterion benchmarks, then writes the page from their results.

use std::collections::BTreeMap;
use std::fs;
use std::process::ExitCode;

use super::render::{Machine, render};
use super::results::{criterion_dir, read_results};
use super::targets::targets_section;

/// The page written, relative to the workspace root.
const PAGE: &str = "docs/BENCHMARKS.md";
/// The benchmark crate.
const PACKAGE: &str = "tower-pressure-benches";

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
