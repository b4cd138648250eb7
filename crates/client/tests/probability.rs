//! The refusal probability: its formula, the rate at which calls are really
//! refused, and when nothing is.

mod support;

use http::StatusCode;
use proptest::prelude::*;
use tower::Layer;
use tower_pressure_client::{ThrottleConfig, ThrottleLayer};
use tower_pressure_core::Priority;

use support::{backend, send_n, status};

fn seeded(seed: u64) -> ThrottleLayer {
    ThrottleLayer::with_config(ThrottleConfig::builder().seed(seed).build().unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_hundred_refusals_and_no_accept_give_a_hundred_over_a_hundred_and_one() {
    let layer = seeded(1);
    let (server, calls) = backend(|_| status(StatusCode::SERVICE_UNAVAILABLE));
    let mut svc = layer.layer(server);

    let local = send_n(&mut svc, Priority::Normal, 100).await;
    // Refused here or by the server, each call counts once among requests.
    assert_eq!(local + calls.load(std::sync::atomic::Ordering::SeqCst), 100);
    assert!(
        local > 50,
        "most calls after the first few are refused here: {local}"
    );
    assert_eq!(
        layer.refusal_probability(Priority::Normal),
        (100.0 - 2.0 * 0.0) / (100.0 + 1.0)
    );
}

/// A backend script: the first `accepts` calls answered `200`, every
/// later one `503`.
fn accepts_first(accepts: usize) -> impl Fn(usize) -> http::Response<String> + Clone + Send + Sync {
    move |n| {
        if n < accepts {
            status(StatusCode::OK)
        } else {
            status(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

/// Builds `trials` throttles (seeds 0..trials), feeds each `accepts`
/// accepted calls then `rejects` refused ones, and makes one more call:
/// the fraction of these last calls refused locally.
async fn observed_rate(accepts: usize, rejects: usize, trials: u64) -> (f64, f64) {
    let mut refused = 0u64;
    let mut probability = f64::NAN;
    for seed in 0..trials {
        let layer = seeded(seed);
        let (server, _) = backend(accepts_first(accepts));
        let mut svc = layer.layer(server);
        // Accepted calls first: while requests ≤ accepts nothing is refused,
        // so every one of them reaches the server.
        assert_eq!(send_n(&mut svc, Priority::Low, accepts).await, 0);
        send_n(&mut svc, Priority::Low, rejects).await;
        probability = layer.refusal_probability(Priority::Low);
        refused += send_n(&mut svc, Priority::Low, 1).await as u64;
    }
    (refused as f64 / trials as f64, probability)
}

/// Four standard deviations of the refused fraction of `trials` draws at `p`.
fn tolerance(p: f64, trials: u64) -> f64 {
    4.0 * (p * (1.0 - p) / trials as f64).sqrt()
}

/// Over 2000 trials after `accepted` accepts and `refused` refusals, the
/// refused fraction is `expected` within four standard deviations.
async fn assert_observed_rate(accepted: usize, refused: usize, expected: f64) {
    const TRIALS: u64 = 2000;
    let (rate, p) = observed_rate(accepted, refused, TRIALS).await;
    assert_eq!(p, expected);
    let tol = tolerance(p, TRIALS);
    assert!(
        (rate - p).abs() <= tol,
        "observed {rate}, expected {p} ± {tol}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_observed_refusal_rate_matches_the_probability_when_all_are_refused() {
    // p = 0.990: the standard deviation of the rate over 2000 trials is
    // 0.0022; four of them is 0.009.
    assert_observed_rate(0, 100, 100.0 / 101.0).await;
}

#[tokio::test(start_paused = true)]
async fn the_observed_refusal_rate_matches_the_probability_half_way() {
    // 25 accepted, 75 refused: (100 − 2 × 25) / 101 = 0.495; the standard
    // deviation of the rate is 0.011, four of them 0.045.
    assert_observed_rate(25, 75, 50.0 / 101.0).await;
}

#[tokio::test(start_paused = true)]
async fn nothing_is_refused_while_the_service_accepts_one_call_in_k() {
    let layer = seeded(3);
    // Accepts every other call, starting with the first: after each call
    // accepts × 2 ≥ requests.
    let (server, calls) = backend(|n| {
        if n % 2 == 0 {
            status(StatusCode::OK)
        } else {
            status(StatusCode::TOO_MANY_REQUESTS)
        }
    });
    let mut svc = layer.layer(server);
    assert_eq!(send_n(&mut svc, Priority::Normal, 1000).await, 0);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1000);
    assert_eq!(layer.refusal_probability(Priority::Normal), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_smaller_k_throttles_sooner() {
    let config = ThrottleConfig::builder().k(1.5).seed(4).build().unwrap();
    let layer = ThrottleLayer::with_config(config);
    // One call in two accepted: nothing is refused at K = 2 (above), but
    // K = 1.5 lets through only 1.5 calls per accepted one.
    let (server, _) = backend(|n| {
        if n % 2 == 0 {
            status(StatusCode::OK)
        } else {
            status(StatusCode::SERVICE_UNAVAILABLE)
        }
    });
    let mut svc = layer.layer(server);
    send_n(&mut svc, Priority::Normal, 200).await;
    let p = layer.refusal_probability(Priority::Normal);
    assert!(p > 0.2, "{p}");
}

proptest! {
    #[test]
    fn the_probability_is_in_the_unit_interval_and_zero_when_k_accepts_cover_requests(
        requests in any::<u64>(),
        accepts_share in 0.0f64..=1.0,
        k in 1.0f64..100.0,
    ) {
        let accepts = (requests as f64 * accepts_share) as u64;
        let config = ThrottleConfig::builder().k(k).build().unwrap();
        let p = config.refusal_probability(requests, accepts);
        prop_assert!((0.0..=1.0).contains(&p), "{p}");
        if accepts as f64 * k >= requests as f64 {
            prop_assert_eq!(p, 0.0);
        }
        if requests < 1 << 53 {
            prop_assert!(p < 1.0);
        }
    }

    #[test]
    fn the_layer_refuses_with_the_formula_of_its_window(
        accepts in 0usize..40, rejects in 0usize..80, seed in any::<u64>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let layer = seeded(seed);
            let (server, _) = backend(accepts_first(accepts));
            let mut svc = layer.layer(server);
            send_n(&mut svc, Priority::Bulk, accepts + rejects).await;
            let p = layer.refusal_probability(Priority::Bulk);
            let expected = layer
                .config()
                .refusal_probability((accepts + rejects) as u64, accepts as u64);
            assert_eq!(p, expected);
            assert!((0.0..=1.0).contains(&p));
            if 2 * accepts >= accepts + rejects {
                assert_eq!(p, 0.0);
            }
        });
    }
}
