//! Criterion benchmarks of tower-pressure; the benches live in `benches/`,
//! this library holds what they share.
//!
//! Run with `cargo bench -p tower-pressure-benches` (or `cargo xtask bench`).

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use http::{Request, Response};
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tower::{Service, ServiceExt, service_fn};
use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::{Priority, PriorityOf};

/// A tiny non-http request carrying its priority.
#[derive(Debug, Clone, Copy)]
pub struct Job(pub Priority);

impl PriorityOf for Job {
    fn priority(&self) -> Priority {
        self.0
    }
}

/// A service that answers a [`Job`] with its priority, at once.
pub fn noop_job() -> impl Service<
    Job,
    Response = Priority,
    Error = Infallible,
    Future = Ready<Result<Priority, Infallible>>,
> + Clone
+ Send
+ 'static {
    service_fn(|job: Job| ready(Ok(job.0)))
}

/// A service that answers any `Request<()>` with an empty `200 OK`, at once.
pub fn noop_http() -> impl Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = Ready<Result<Response<()>, Infallible>>,
> + Clone
+ Send
+ 'static {
    service_fn(|_req: Request<()>| ready(Ok(Response::new(()))))
}

/// Short warm-up and measurement, so the whole suite runs in minutes.
pub fn quick_config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

/// A limiter of `limit` permits and the default queue.
pub fn limiter(limit: usize) -> PriorityLimiter {
    PriorityLimiter::builder()
        .limit(limit)
        .build()
        .expect("a valid limiter")
}

/// A current-thread runtime with time enabled (a queued acquire arms its
/// queue timeout).
pub fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

/// `iters` calls of `svc` (`ready().await` + `call(req).await`), timed
/// inside one `block_on` so that entering the runtime is not measured.
pub fn calls<S, Req>(rt: &Runtime, svc: &mut S, request: impl Fn() -> Req, iters: u64) -> Duration
where
    S: Service<Req>,
    S::Error: Debug,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let s = svc.ready().await.expect("the service is always ready");
            black_box(s.call(black_box(request())).await.expect("no-op call"));
        }
        start.elapsed()
    })
}
