//! Loads simulated on paused time against a limiter configured the way the
//! docs tell a user to: a limit, and per-class queue timeouts from latency
//! objectives (the objective less twice the work). The objectives are
//! 250 ms for Critical, 500 ms for High and a second for the rest; each
//! load runs against services of three capacities.

mod support;

use std::time::Duration;

use support::sim::{self, Fate, MIX, Rng};
use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::Priority;

/// A service: `limit` requests at once, each taking `hold`.
#[derive(Debug, Clone, Copy)]
struct Service {
    limit: usize,
    hold: Duration,
}

/// Four slots of 25 ms (the demo's gateway, 160/s); sixteen of 100 ms
/// (160/s, slower work, a larger limit); two of 5 ms (400/s).
const SERVICES: [Service; 3] = [
    Service {
        limit: 4,
        hold: Duration::from_millis(25),
    },
    Service {
        limit: 16,
        hold: Duration::from_millis(100),
    },
    Service {
        limit: 2,
        hold: Duration::from_millis(5),
    },
];

const OBJECTIVES_MS: [u64; 5] = [1000, 1000, 1000, 500, 250];

impl Service {
    fn capacity(self) -> f64 {
        self.limit as f64 / self.hold.as_secs_f64()
    }

    /// The queue timeouts, `Bulk` first: each class's objective less twice
    /// the work.
    fn timeouts(self) -> [Duration; 5] {
        OBJECTIVES_MS.map(|ms| Duration::from_millis(ms).saturating_sub(self.hold * 2))
    }

    fn limiter(self) -> PriorityLimiter {
        let mut b = PriorityLimiter::builder().limit(self.limit).max_queue(1000);
        for p in Priority::ALL {
            b = b.queue_timeout(p, self.timeouts()[p.index()]);
        }
        b.build().unwrap()
    }
}

fn refusals(fates: &[Fate]) -> usize {
    fates.iter().filter(|f| !f.admitted()).count()
}

/// Normal and Low steady at half the capacity; High at twice the capacity
/// for 0.2 s once a second, for `secs` seconds. On average 0.9 of the
/// capacity: a queue absorbs each burst and drains before the next.
fn bursts(rng: &mut Rng, capacity: f64, secs: u32) -> Vec<(f64, Priority)> {
    let steady = [0.0, 25.0, 35.0, 0.0, 0.0];
    let mut arrivals = sim::poisson(rng, 0.5 * capacity, 0.0, f64::from(secs), steady);
    for s in 0..secs {
        let high = [0.0, 0.0, 0.0, 1.0, 0.0];
        arrivals.extend(sim::poisson(
            rng,
            2.0 * capacity,
            f64::from(s) + 0.3,
            0.2,
            high,
        ));
    }
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
    arrivals
}

#[tokio::test(start_paused = true)]
async fn bursts_over_a_load_below_capacity_are_queued_through_not_refused() {
    for svc in SERVICES {
        let mut rng = Rng::new(7);
        let arrivals = bursts(&mut rng, svc.capacity(), 10);
        let fates = sim::run(&svc.limiter(), &arrivals, svc.hold).await;
        // Once the limiter has seen a burst come and go: the first one,
        // before anything is measured, looks like an overload that has
        // begun.
        assert_bursts_carried(svc, fates, 1.0);
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_sustained_overload_bursts_are_queued_through_again() {
    for svc in SERVICES {
        let l = svc.limiter();
        let mut rng = Rng::new(17);
        // Ten times the capacity for three seconds: every class's queue stood.
        let flood = sim::poisson(&mut rng, 10.0 * svc.capacity(), 0.0, 3.0, MIX);
        sim::run(&l, &flood, svc.hold).await;
        let fates = sim::run(&l, &bursts(&mut rng, svc.capacity(), 10), svc.hold).await;
        // Once the flood's measurements have faded (their memory is a queue
        // timeout, just under a second) and the classes have arrived no
        // faster than they are served for another timeout: their queues
        // are then no longer judged standing.
        assert_bursts_carried(svc, fates, 3.0);
    }
}

/// Bursts were carried from `from` seconds on: no more than 1 % refused,
/// and every request admitted in time to meet its objective.
#[track_caller]
fn assert_bursts_carried(svc: Service, fates: Vec<Fate>, from: f64) {
    let fates: Vec<Fate> = fates.into_iter().filter(|f| f.at >= from).collect();
    let refused = refusals(&fates);
    assert!(
        refused * 100 <= fates.len(),
        "{svc:?}: {refused} of {} refused: more than 1 %",
        fates.len()
    );
    for f in fates.iter().filter(|f| f.admitted()) {
        assert!(
            f.waited <= svc.timeouts()[f.class.index()],
            "{svc:?}: {f:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn under_sustained_overload_high_stays_fast_and_the_rest_is_refused_at_once() {
    for svc in SERVICES {
        // Five times the capacity, the demo's mix: Critical and High alone
        // arrive at 1.25 times the capacity.
        let mut rng = Rng::new(11);
        let arrivals = sim::poisson(&mut rng, 5.0 * svc.capacity(), 0.0, 6.0, MIX);
        let fates = sim::run(&svc.limiter(), &arrivals, svc.hold).await;
        // The steady state: after High's queue has stood for its timeout.
        let steady: Vec<&Fate> = fates.iter().filter(|f| f.at >= 1.5).collect();
        let served = steady.iter().filter(|f| f.admitted()).count() as f64 / 4.5;
        assert!(
            served >= 0.95 * svc.capacity(),
            "{svc:?}: served {served:.0}/s"
        );
        let critical = steady.iter().filter(|f| f.class == Priority::Critical);
        assert!(
            critical.clone().all(|f| f.admitted()),
            "{svc:?}: every Critical served"
        );
        // High's standing queue is held to a tenth of its timeout: what it
        // serves waits about that — give or take the arrivals of Critical
        // and one unit of work, the grain of service — not the whole
        // timeout.
        let high_waits: Vec<Duration> = steady
            .iter()
            .filter(|f| f.class == Priority::High && f.admitted())
            .map(|f| f.waited)
            .collect();
        let p99 = sim::quantile(high_waits, 0.99);
        let target = svc.timeouts()[Priority::High.index()] / 10;
        assert!(
            p99 <= target * 2 + svc.hold,
            "{svc:?}: High waited {p99:?} (p99), target {target:?}"
        );
        // Refusals are answered at once, not after a wait.
        let refused: Vec<&&Fate> = steady.iter().filter(|f| !f.admitted()).collect();
        let slow = refused.iter().filter(|f| !f.waited.is_zero()).count();
        assert!(
            slow * 100 <= refused.len(),
            "{svc:?}: {slow} of {} refusals came after a wait",
            refused.len()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn with_one_class_the_limiter_serves_its_capacity_and_refuses_the_excess_at_once() {
    for svc in SERVICES {
        for load in [2.0, 5.0] {
            let mut rng = Rng::new(13);
            let normal = [0.0, 0.0, 1.0, 0.0, 0.0];
            let arrivals = sim::poisson(&mut rng, load * svc.capacity(), 0.0, 6.0, normal);
            let fates = sim::run(&svc.limiter(), &arrivals, svc.hold).await;
            // The steady state: once the queue has stood for its timeout
            // and the backlog queued before has been served, two timeouts in.
            let steady: Vec<&Fate> = fates.iter().filter(|f| f.at >= 2.0).collect();
            let served = steady.iter().filter(|f| f.admitted()).count() as f64 / 4.0;
            assert!(
                served >= 0.97 * svc.capacity(),
                "{svc:?} at {load}×: served {served:.0}/s"
            );
            let refused: Vec<&&Fate> = steady.iter().filter(|f| !f.admitted()).collect();
            let slow = refused.iter().filter(|f| !f.waited.is_zero()).count();
            assert!(
                slow * 100 <= refused.len(),
                "{svc:?} at {load}×: {slow} of {} refusals came after a wait",
                refused.len()
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn at_capacity_only_what_a_patient_priority_queue_would_serve_late_is_refused() {
    // Exactly the capacity, the demo's mix. A strict priority queue puts
    // all of the waiting of a load at capacity on its lowest class: even
    // with unbounded patience, some Bulk requests wait past their timeout.
    // The limiter may refuse those, and no more than a few others.
    for svc in SERVICES {
        for seed in [3, 5, 7] {
            let mut rng = Rng::new(seed);
            let arrivals = sim::poisson(&mut rng, svc.capacity(), 0.0, 10.0, MIX);
            let mut patient = PriorityLimiter::builder().limit(svc.limit);
            for p in Priority::ALL {
                patient = patient.queue_timeout(p, Duration::from_secs(3600));
            }
            let ideal = sim::run(&patient.build().unwrap(), &arrivals, svc.hold).await;
            let late = ideal
                .iter()
                .filter(|f| f.at >= 3.0)
                .filter(|f| f.waited > svc.timeouts()[f.class.index()])
                .count();
            let fates = sim::run(&svc.limiter(), &arrivals, svc.hold).await;
            let steady: Vec<&Fate> = fates.iter().filter(|f| f.at >= 3.0).collect();
            let refused = steady.iter().filter(|f| !f.admitted()).count();
            assert!(
                refused <= late + steady.len() / 100,
                "{svc:?} seed {seed}: {refused} of {} refused; a patient queue served {late} late",
                steady.len()
            );
        }
    }
}
