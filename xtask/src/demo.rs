//! `cargo xtask demo`: the overload experiment.
//!
//! Not built yet: it arrives with the proof issue, once the admission layer
//! it measures exists. Until then it says what it will do and exits non-zero,
//! so that nobody mistakes the message for a result.

use std::process::ExitCode;

pub(crate) fn run(_args: &[String]) -> ExitCode {
    eprintln!(
        "cargo xtask demo: not implemented yet.

When it lands, it will start the example voice gateway on loopback, drive it
with an open-loop (fixed-rate, coordinated-omission free) mix of priorities at
0.5x to 10x its capacity, do the same against an unprotected server and
against tower's ConcurrencyLimit + LoadShed, print per-priority goodput and
latency percentiles, and write an HTML/SVG report to report/.

Today only the core crate (priorities, pressure signals, Overloaded) exists;
try `cargo run -p signal-hooks` for what it does."
    );
    ExitCode::from(2)
}
