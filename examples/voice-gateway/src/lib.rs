//! A voice-processing gateway with a simulated capacity, behind
//! tower-pressure.
//!
//! Every route does the same simulated work: it takes one of `slots` worker
//! slots and holds it for `work`, so the gateway serves at most
//! `slots / work` requests a second. Requests that find no free slot wait
//! for one, first come first served, as a thread pool or a connection pool
//! would make them.
//!
//! Run the gateway alone with `cargo run -p voice-gateway`; `cargo xtask demo`
//! drives it past its capacity.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower_pressure::classify::RulesBuilder;
use tower_pressure::{AdmissionLayer, ClassifyLayer, Priority, PriorityLimiter, Rules};

/// How much work the gateway can do.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    /// Worker slots: requests served at once.
    pub slots: usize,
    /// How long one request holds a slot.
    pub work: Duration,
}

impl Capacity {
    /// Requests per second the gateway serves when every slot is busy.
    pub fn per_second(&self) -> f64 {
        self.slots as f64 / self.work.as_secs_f64()
    }
}

/// The gateway's classification: the API classes of
/// [`Rules::voice_service`], plus `/batch/` as `Bulk` work.
pub fn rules() -> Rules {
    RulesBuilder::voice_service()
        .path_prefix("/batch/", Priority::Bulk)
        .build()
        .expect("the gateway's rules are valid")
}

/// The path the demo requests for each class, `Bulk` first.
pub const PATHS: [&str; 5] = [
    "/batch/export",
    "/analytics/daily",
    "/user/profile",
    "/voice/transcribe",
    "/health",
];

/// The latency objective of each class, `Bulk` first: an answer later than
/// this is as good as none.
pub const SLO: [Duration; 5] = [
    Duration::from_millis(1000),
    Duration::from_millis(1000),
    Duration::from_millis(1000),
    Duration::from_millis(500),
    Duration::from_millis(250),
];

/// How long each class may wait for a permit under tower-pressure, `Bulk`
/// first: its latency objective ([`SLO`]) less what a request still takes
/// once admitted, at its slowest — its work, and as much again for the
/// time around it (routing, the response, a busy runtime; unloaded, the
/// gateway's p99 latency is about 1.4 times its work) — so that a request
/// admitted at the last moment still ends within its objective.
pub fn queue_timeouts(capacity: Capacity) -> [Duration; 5] {
    SLO.map(|objective| objective.saturating_sub(capacity.work * 2))
}

/// Changes how many worker slots a running gateway has (made by
/// [`routes`]): a machine that lost workers, or got them back.
#[derive(Clone)]
pub struct SlotsHandle(Arc<Slots>);

impl std::fmt::Debug for SlotsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotsHandle")
            .field("slots", &self.slots())
            .finish()
    }
}

impl SlotsHandle {
    /// The slots the gateway has now.
    pub fn slots(&self) -> usize {
        self.0.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets the slots to `slots` (at least 1). Fewer: waits, in line with
    /// the requests, for the slots to take away to come free, as a pool
    /// that shrinks lets its busy workers finish.
    pub async fn set(&self, slots: usize) {
        let slots = slots.max(1);
        let now = self.slots();
        if slots < now {
            let take = u32::try_from(now - slots).expect("slots fit in u32");
            let permits = self
                .0
                .permits
                .acquire_many(take)
                .await
                .expect("the semaphore is never closed");
            permits.forget();
            let mut free = self.0.lock();
            for _ in 0..take {
                free.pop();
            }
        } else if slots > now {
            let at = Instant::now();
            self.0.lock().extend(std::iter::repeat_n(at, slots - now));
            self.0.permits.add_permits(slots - now);
        }
        self.0
            .count
            .store(slots, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The gateway's worker slots: a request holds one for `work`.
///
/// A slot that goes straight on to its next request starts it when the last
/// one was due to end, not when the timer fired: tokio's timers fire on the
/// next whole millisecond and a little after, which would otherwise stretch
/// every 25 ms of work to about 25.7 ms and leave the gateway serving ~3 %
/// less than `Capacity::per_second` says.
struct Slots {
    permits: Semaphore,
    /// How many slots there are (free or busy).
    count: std::sync::atomic::AtomicUsize,
    /// When each free slot's last request was due to end.
    free_at: Mutex<Vec<Instant>>,
    work: Duration,
}

/// How late a slot may pick up its next request and still count as having
/// gone straight on to it (timer rounding plus wake-up latency); a longer gap
/// is idle time, and the work starts when the request does.
const BACK_TO_BACK: Duration = Duration::from_millis(2);

/// When a request taken at `now` by a slot whose last request was due to end
/// at `last` starts its work.
fn start_of(now: Instant, last: Instant) -> Instant {
    if now.saturating_duration_since(last) <= BACK_TO_BACK {
        last.min(now)
    } else {
        now
    }
}

impl Slots {
    fn new(capacity: Capacity) -> Slots {
        let long_ago = Instant::now();
        Slots {
            permits: Semaphore::new(capacity.slots),
            count: std::sync::atomic::AtomicUsize::new(capacity.slots),
            free_at: Mutex::new(vec![long_ago; capacity.slots]),
            work: capacity.work,
        }
    }

    /// Waits for a slot (first come, first served) and works on it.
    async fn serve(&self) {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let last = self.lock().pop().expect("a free slot for every permit");
        let end = start_of(Instant::now(), last) + self.work;
        // Gives the slot back as the permit goes, even if the caller gave up
        // (then the slot is free from now, not from `end`).
        let _slot = SlotBack { slots: self, end };
        tokio::time::sleep_until(end).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Instant>> {
        self.free_at.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Returns a slot to the pool on drop.
struct SlotBack<'a> {
    slots: &'a Slots,
    end: Instant,
}

impl Drop for SlotBack<'_> {
    fn drop(&mut self) {
        let at = self.end.min(Instant::now());
        self.slots.lock().push(at);
    }
}

/// The gateway's routes with the simulated work, unprotected, and a handle
/// that changes their slots while they run.
pub fn routes(capacity: Capacity) -> (Router, SlotsHandle) {
    let slots = Arc::new(Slots::new(capacity));
    let handle = SlotsHandle(slots.clone());
    let work = move || {
        let slots = slots.clone();
        async move {
            slots.serve().await;
            "ok"
        }
    };
    let router = Router::new()
        .route("/health", get(work.clone()))
        .route("/{class}/{name}", any(work));
    (router, handle)
}

/// The gateway's limiter: its slots as the limit, and each class's queue
/// timeout from its latency objective ([`queue_timeouts`]).
pub fn limiter(capacity: Capacity) -> PriorityLimiter {
    // The limit: the requests the gateway serves at once.
    let mut b = PriorityLimiter::builder().limit(capacity.slots);
    // Each class waits at most as long as its objective allows.
    let timeouts = queue_timeouts(capacity);
    for p in Priority::ALL {
        b = b.queue_timeout(p, timeouts[p.index()]);
    }
    b.build().expect("the gateway's limiter settings are valid")
}

/// `routes` behind tower-pressure: classified, then admitted by `limiter`.
pub fn protect(routes: Router, limiter: &PriorityLimiter) -> Router {
    routes.layer(
        ServiceBuilder::new()
            // 1. Who are you: the class of the request.
            .layer(ClassifyLayer::new(rules()))
            // 2. The priority queue: one global limit.
            .layer(AdmissionLayer::new(limiter.clone())),
    )
}

/// The gateway behind tower-pressure, and its limiter.
pub fn app(capacity: Capacity) -> (Router, PriorityLimiter) {
    let (routes, _slots) = routes(capacity);
    let limiter = limiter(capacity);
    (protect(routes, &limiter), limiter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    fn capacity() -> Capacity {
        Capacity {
            slots: 1,
            work: Duration::from_millis(100),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tower_pressure_serves_health_first_then_bulk() {
        let quick = Capacity {
            slots: 1,
            work: Duration::from_millis(20),
        };
        let (app, limiter) = app(quick);
        let call = |path: &'static str| {
            let app = app.clone();
            tokio::spawn(async move {
                app.oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap()
                    .status()
            })
        };
        // One slot, one permit: a request takes it.
        let first = call("/user/profile");
        tokio::task::yield_now().await;
        let bulk = call("/batch/export");
        let health = call("/health");
        tokio::task::yield_now().await;
        assert_eq!(limiter.snapshot().queue_len(), 2);
        assert_eq!(first.await.unwrap(), StatusCode::OK);
        // The health check jumped the queue; Bulk waited behind it.
        assert_eq!(health.await.unwrap(), StatusCode::OK);
        assert_eq!(bulk.await.unwrap(), StatusCode::OK);
        assert_eq!(limiter.snapshot().counts[Priority::Critical].admitted, 1);
    }

    #[test]
    fn a_slot_that_goes_straight_on_keeps_its_cadence() {
        let last = Instant::now();
        // Picked up 0.7 ms late (timer rounding): starts when the last ended.
        assert_eq!(start_of(last + Duration::from_micros(700), last), last);
        // Idle for longer: starts when the request does.
        let later = last + Duration::from_millis(5);
        assert_eq!(start_of(later, last), later);
    }

    #[tokio::test(start_paused = true)]
    async fn saturated_slots_serve_exactly_their_capacity() {
        // 2 slots × 100 ms, 40 requests queued at once: 2 s of work.
        let slots = Arc::new(Slots::new(Capacity {
            slots: 2,
            work: Duration::from_millis(100),
        }));
        let start = Instant::now();
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let slots = slots.clone();
                tokio::spawn(async move { slots.serve().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn slots_taken_away_and_given_back_change_the_capacity() {
        // 4 slots × 100 ms; halved to 2, 40 requests take 2 s; back to 4,
        // 40 more take 1 s.
        let slots = Arc::new(Slots::new(Capacity {
            slots: 4,
            work: Duration::from_millis(100),
        }));
        let handle = SlotsHandle(slots.clone());
        let run = |n: usize| {
            let slots = slots.clone();
            async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        let slots = slots.clone();
                        tokio::spawn(async move { slots.serve().await })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                start.elapsed()
            }
        };
        handle.set(2).await;
        assert_eq!(handle.slots(), 2);
        assert_eq!(run(40).await, Duration::from_secs(2));
        handle.set(4).await;
        assert_eq!(run(40).await, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_given_up_frees_its_slot_at_once() {
        let slots = Slots::new(Capacity {
            slots: 1,
            work: Duration::from_millis(100),
        });
        let gave_up = tokio::time::timeout(Duration::from_millis(10), slots.serve()).await;
        assert!(gave_up.is_err());
        let start = Instant::now();
        slots.serve().await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[test]
    fn capacity_is_slots_over_work() {
        assert_eq!(capacity().per_second(), 10.0);
    }
}
