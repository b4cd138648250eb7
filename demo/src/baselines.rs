//! The systems the demo compares: the voice gateway unprotected, behind
//! tower's own layers, and behind tower-pressure set up in several ways
//! (the gateway's own set-up among them).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_pressure::adaptive::{Bottleneck, Vegas};
use tower_pressure::admission::Codel;
use tower_pressure::{AdaptiveLayer, AdaptiveLimit};
use tower_pressure::{AdmissionLayer, ClassifyLayer, Priority, PriorityLimiter};
use voice_gateway::{Capacity, SlotsHandle, queue_timeouts, rules};

/// What stands in front of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protection {
    /// Nothing: every request waits for a slot, however long.
    None,
    /// tower's `GlobalConcurrencyLimit` + `LoadShed`: one global limit, the
    /// excess refused at once whatever its class.
    TowerLimit,
    /// tower's `LoadShed` + `Buffer` + `ConcurrencyLimit`: a bounded FIFO queue.
    TowerBuffer,
    /// tower-pressure as its docs tell a user to set it up, and as the
    /// gateway's example does ([`voice_gateway::app`]): classify, then a
    /// priority queue with a limit (the gateway's slots) and each class's
    /// queue timeout from its latency objective ([`queue_timeouts`]).
    TowerPressure,
    /// tower-pressure with only the limit set: classify, then the priority
    /// queue with its default queue timeouts.
    TowerPressureDefaults,
    /// tower-pressure with CoDel and adaptive LIFO on the queue: lower
    /// latency for what is served, less of it served.
    TowerPressureCodel,
    /// tower-pressure started with a limit eight times too high, which an
    /// adaptive limit (`Vegas`) tunes from the latency of the work that got
    /// in: it must find the gateway's capacity on its own.
    TowerPressureAdaptive,
    /// tower-pressure as the README's "every layer at once" builds it: the
    /// limiter of [`Protection::TowerPressure`] under the facade's
    /// `stack()` with the automatic memory and CPU sources and an adaptive
    /// limit (`Bottleneck`, defaults) starting from the gateway's slots.
    TowerPressureStack,
}

impl Protection {
    /// The systems `cargo xtask demo` runs by default: all but the CoDel
    /// variant, which `--systems` still runs.
    pub(crate) const DEMO: [Protection; 7] = [
        Protection::None,
        Protection::TowerLimit,
        Protection::TowerBuffer,
        Protection::TowerPressure,
        Protection::TowerPressureDefaults,
        Protection::TowerPressureAdaptive,
        Protection::TowerPressureStack,
    ];

    /// All of them, baselines first.
    pub(crate) const ALL: [Protection; 8] = [
        Protection::None,
        Protection::TowerLimit,
        Protection::TowerBuffer,
        Protection::TowerPressure,
        Protection::TowerPressureDefaults,
        Protection::TowerPressureCodel,
        Protection::TowerPressureAdaptive,
        Protection::TowerPressureStack,
    ];

    /// A short name for tables and files.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Protection::None => "unprotected",
            Protection::TowerLimit => "tower-limit+shed",
            Protection::TowerBuffer => "tower-buffer",
            Protection::TowerPressure => "tower-pressure",
            Protection::TowerPressureDefaults => "tower-pressure-defaults",
            Protection::TowerPressureCodel => "tower-pressure+codel",
            Protection::TowerPressureAdaptive => "tower-pressure+adaptive",
            Protection::TowerPressureStack => "tower-pressure-stack",
        }
    }
}

/// How long a waiter other than `Critical` may wait once the queue has stood
/// for 100 ms (CoDel's target).
const CODEL_TARGET: Duration = Duration::from_millis(5);

/// A refusal from a tower baseline, as `503` (tower's own layers fail
/// with errors, which axum requires turned into responses).
async fn overloaded(_err: tower::BoxError) -> impl IntoResponse {
    (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
}

/// The gateway behind `protection`; with tower-pressure, also its limiter.
pub(crate) fn app(capacity: Capacity, protection: Protection) -> (Router, Option<PriorityLimiter>) {
    let (router, limiter, _) = app_with_slots(capacity, protection);
    (router, limiter)
}

/// [`app`], and a handle that changes the gateway's slots while it runs
/// (the protection keeps what it was built with: its limit is for the
/// slots it was given, unless an adaptive limit finds the new ones).
pub(crate) fn app_with_slots(
    capacity: Capacity,
    protection: Protection,
) -> (Router, Option<PriorityLimiter>, SlotsHandle) {
    let (routes, handle) = voice_gateway::routes(capacity);
    let (router, limiter) = protect(routes, capacity, protection);
    (router, limiter, handle)
}

/// `router` behind `protection`, sized for `capacity`.
fn protect(
    router: Router,
    capacity: Capacity,
    protection: Protection,
) -> (Router, Option<PriorityLimiter>) {
    let n = capacity.slots;
    match protection {
        Protection::None => (router, None),
        Protection::TowerLimit => {
            let limit = Arc::new(Semaphore::new(n));
            let app = router.layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(overloaded))
                    .load_shed()
                    .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
                        limit,
                    )),
            );
            (app, None)
        }
        Protection::TowerBuffer => {
            // One buffer worker for the whole router: built here, once.
            let svc = ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .buffer(n * 8)
                .concurrency_limit(n)
                .service(router);
            (Router::new().fallback_service(svc), None)
        }
        Protection::TowerPressure => {
            // The gateway as its example sets it up.
            let limiter = voice_gateway::limiter(capacity);
            (voice_gateway::protect(router, &limiter), Some(limiter))
        }
        Protection::TowerPressureDefaults
        | Protection::TowerPressureCodel
        | Protection::TowerPressureAdaptive
        | Protection::TowerPressureStack => {
            let adaptive = protection == Protection::TowerPressureAdaptive;
            // The limit: the requests the gateway serves at once. The
            // adaptive variant starts eight times too high and must find it.
            let mut b = PriorityLimiter::builder().limit(if adaptive { n * 8 } else { n });
            if protection != Protection::TowerPressureDefaults {
                // Each class waits at most as long as its objective allows.
                let timeouts = queue_timeouts(capacity);
                for p in Priority::ALL {
                    b = b.queue_timeout(p, timeouts[p.index()]);
                }
            }
            if protection == Protection::TowerPressureCodel {
                // Once the queue has stood for 100 ms, a waiter other than
                // Critical gives up after `CODEL_TARGET`, and each class but
                // Critical is served newest first: what is served is served
                // while its caller still waits for it.
                b = b.codel(Codel {
                    interval: Duration::from_millis(100),
                    target: CODEL_TARGET,
                });
            }
            let limiter = b.build().expect("the gateway's limiter settings are valid");
            if protection == Protection::TowerPressureStack {
                // The README's "every layer at once", word for word but the
                // rules (the gateway's own).
                use tower_pressure::cpu::{CpuSignal, CpuSource};
                use tower_pressure::memory::{MemorySignal, MemorySource};
                let memory = MemorySignal::spawn(MemorySource::auto());
                let cpu = CpuSignal::spawn(CpuSource::auto());
                let adaptive = AdaptiveLimit::new(Bottleneck::default(), limiter.limit_handle());
                let app = router.layer(
                    tower_pressure::stack(limiter.clone())
                        .rules(rules())
                        .memory(memory)
                        .cpu(cpu)
                        .adaptive(adaptive),
                );
                return (app, Some(limiter));
            }
            // 3. With the adaptive variant, the latency of what got in tunes
            //    the limit: Vegas, windows of 100 ms, between 1 and 8× slots.
            let tuner = adaptive.then(|| {
                let vegas = Vegas::builder()
                    .initial_limit(n * 8)
                    .max_limit(n * 8)
                    .build()
                    .expect("valid Vegas settings");
                AdaptiveLimit::builder(vegas, limiter.limit_handle())
                    .min_window(Duration::from_millis(100))
                    .build()
                    .expect("valid adaptive settings")
                    .layer()
            });
            let app = router.layer(
                ServiceBuilder::new()
                    // 1. Who are you: the class of the request.
                    .layer(ClassifyLayer::new(rules()))
                    // 2. The priority queue: one global limit.
                    .layer(AdmissionLayer::new(limiter.clone()))
                    .layer(tuner.unwrap_or_else(AdaptiveLayer::disabled)),
            );
            (app, Some(limiter))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    use voice_gateway::PATHS;

    fn capacity() -> Capacity {
        Capacity {
            slots: 1,
            work: Duration::from_millis(100),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_variant_serves_a_request_when_idle() {
        for protection in Protection::ALL {
            let (app, _) = app(capacity(), protection);
            for path in PATHS {
                let res = app
                    .clone()
                    .oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK, "{} {path}", protection.name());
            }
        }
    }
}
