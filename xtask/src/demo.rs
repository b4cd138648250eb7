//! `cargo xtask demo`: the overload experiment, the project's main job.
//!
//! Builds and runs the `overload-demo` crate in release mode: the voice
//! gateway behind no protection, tower's `GlobalConcurrencyLimit` +
//! `LoadShed`, tower's `Buffer` + `ConcurrencyLimit`, and tower-pressure,
//! each driven over loopback by an open-loop generator at 0.5× to 10× its
//! capacity. Arguments are passed on (`--quick`, `--out FOLDER`).

use std::process::{Command, ExitCode};

pub(crate) fn run(args: &[String]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    crate::run(
        Command::new(cargo)
            .args([
                "run",
                "--quiet",
                "--release",
                "--locked",
                "-p",
                "overload-demo",
                "--",
            ])
            .args(args)
            .current_dir(crate::workspace_root()),
    )
}
