//! The uncontended fast path, run `iters` times in one process, for an
//! instruction count under `valgrind --tool=callgrind` (repeatable whatever
//! else the machine is doing, unlike a time). `cargo xtask bench` runs it
//! twice per variant with different `iters` and reports the difference per
//! call, so set-up costs cancel out.
//!
//! ```text
//! cargo build --release -p tower-pressure-benches --example fast_path_instructions
//! valgrind --tool=callgrind target/release/examples/fast_path_instructions admission_http 100000
//! ```

use std::fmt::Debug;
use std::hint::black_box;

use http::Request;
use tower::limit::ConcurrencyLimit;
use tower::{Layer, Service, ServiceExt};
use tower_pressure_admission::AdmissionLayer;
use tower_pressure_benches::{Job, current_thread, limiter, noop_http, noop_job};
use tower_pressure_core::AsError;
use tower_pressure_core::Priority;

/// The concurrency limit of every limiter here; never reached.
const LIMIT: usize = 64;

/// The variants, in the order `cargo xtask bench` reports them.
const VARIANTS: [&str; 6] = [
    "noop_generic",
    "tower_concurrency_limit_generic",
    "admission_generic",
    "noop_http",
    "tower_concurrency_limit_http",
    "admission_http",
];

fn calls<S, Req>(mut svc: S, request: impl Fn() -> Req, iters: u64)
where
    S: Service<Req>,
    S::Error: Debug,
{
    current_thread().block_on(async {
        for _ in 0..iters {
            let s = svc.ready().await.expect("the service is always ready");
            black_box(s.call(black_box(request())).await.expect("no-op call"));
        }
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(variant), Some(iters)) = (args.next(), args.next()) else {
        eprintln!("usage: fast_path_instructions <variant> <iters>; variants: {VARIANTS:?}");
        std::process::exit(2);
    };
    let iters: u64 = iters.parse().expect("iters is a number");
    let job = || Job(Priority::Normal);
    let request = || Request::new(());
    match variant.as_str() {
        "noop_generic" => calls(noop_job(), job, iters),
        "tower_concurrency_limit_generic" => {
            calls(ConcurrencyLimit::new(noop_job(), LIMIT), job, iters);
        }
        "admission_generic" => calls(
            AdmissionLayer::new(limiter(LIMIT))
                .refusal(AsError)
                .layer(noop_job()),
            job,
            iters,
        ),
        "noop_http" => calls(noop_http(), request, iters),
        "tower_concurrency_limit_http" => {
            calls(ConcurrencyLimit::new(noop_http(), LIMIT), request, iters);
        }
        "admission_http" => calls(
            AdmissionLayer::new(limiter(LIMIT)).layer(noop_http()),
            request,
            iters,
        ),
        other => {
            eprintln!("unknown variant {other:?}; variants: {VARIANTS:?}");
            std::process::exit(2);
        }
    }
}
