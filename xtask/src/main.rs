//! Project tasks as code, run as `cargo xtask <task>`.
//!
//! - `demo`: the overload experiment and its report (the project's main job).
//! - `bench`: the criterion benchmarks and `docs/BENCHMARKS.md`.
//! - `public-api`: the public surface against its snapshot (`--bless` to
//!   accept a change).
//! - `tidy`: source hygiene checks (also run by `cargo test` as a test).
//! - `ci`: what `.ci/run` does.

mod bench;
mod demo;
mod public_api;
mod tidy;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("public-api") => public_api::run(&args[1..]),
        Some("tidy") => match tidy::check(&workspace_root()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(problems) => {
                for p in problems {
                    eprintln!("tidy: {p}");
                }
                ExitCode::FAILURE
            }
        },
        Some("ci") => run(Command::new("bash").arg(workspace_root().join(".ci/run"))),
        _ => {
            eprintln!("usage: cargo xtask <demo|bench|public-api|tidy|ci>");
            ExitCode::from(2)
        }
    }
}

/// The workspace root: the parent of this crate's folder.
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo(args: &[&str]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    run(Command::new(cargo).args(args).current_dir(workspace_root()))
}

fn run(cmd: &mut Command) -> ExitCode {
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: could not run {cmd:?}: {e}");
            ExitCode::FAILURE
        }
    }
}
