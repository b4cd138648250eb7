//! CoDel under a sustained overload, simulated on paused time: the mode
//! must hold while the overload lasts (not flap whenever its own short
//! timeouts empty the queue), so that every waiter but Critical is admitted
//! or refused within the target.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tower_pressure_admission::{Codel, PriorityLimiter};
use tower_pressure_core::{Priority, Reason};

/// One request's fate: arrival (s), class, admitted?, time to the answer,
/// and why it was refused.
type Fate = (f64, Priority, bool, Duration, Option<Reason>);

/// Poisson arrivals at `rate` a second for `secs`, with the demo's class
/// mix, against 4 permits each held 25 ms (160 a second of capacity).
async fn overload(rate: f64, secs: f64) -> Vec<Fate> {
    let timeouts = [900, 900, 900, 400, 200];
    let mut b = PriorityLimiter::builder()
        .limit(4)
        .max_queue(32)
        .codel(Codel::default());
    for p in Priority::ALL {
        b = b.queue_timeout(p, Duration::from_millis(timeouts[p.index()]));
    }
    let limiter = b.build().unwrap();
    let mix = [0.15, 0.25, 0.35, 0.20, 0.05];
    let mut seed: u64 = 0x5eed;
    let mut uniform = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let start = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut t = 0.0;
    loop {
        t += -(1.0 - uniform()).ln() / rate;
        if t >= secs {
            break;
        }
        let mut u = uniform();
        let p = Priority::ALL
            .into_iter()
            .find(|q| {
                u -= mix[q.index()];
                u < 0.0
            })
            .unwrap_or(Priority::Normal);
        tokio::time::sleep_until(start + Duration::from_secs_f64(t)).await;
        let (l, tx) = (limiter.clone(), tx.clone());
        tokio::spawn(async move {
            let at = Instant::now();
            let fate = match l.acquire(p).await {
                Ok(permit) => {
                    let waited = at.elapsed();
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    drop(permit);
                    (t, p, true, waited, None)
                }
                Err(e) => (t, p, false, at.elapsed(), Some(e.reason())),
            };
            tx.send(fate).unwrap();
        });
    }
    drop(tx);
    let mut fates = Vec::new();
    while let Some(f) = rx.recv().await {
        fates.push(f);
    }
    let s = limiter.snapshot();
    assert_eq!((s.in_flight, s.queue_len()), (0, 0), "nothing left behind");
    fates
}

#[tokio::test(start_paused = true)]
async fn under_ten_times_capacity_codel_answers_every_waiter_but_critical_within_the_target() {
    let fates = overload(1600.0, 3.0).await;
    let target = Codel::default().target + Duration::from_millis(1);
    // After the first interval (and a margin), the mode holds.
    let steady = fates.iter().filter(|f| f.0 > 0.3);
    let mut high_served = 0;
    for &(at, p, admitted, waited, reason) in steady {
        if p == Priority::Critical {
            assert!(admitted, "Critical refused at {at:.3} s: {reason:?}");
            continue;
        }
        assert!(
            waited <= target,
            "{p} at {at:.3} s waited {waited:?} (admitted: {admitted}, {reason:?})"
        );
        high_served += usize::from(admitted && p == Priority::High);
    }
    // High still gets a real share of what Critical leaves (~80 a second).
    assert!(
        high_served > 100,
        "High served {high_served} times in 2.7 s"
    );
}
