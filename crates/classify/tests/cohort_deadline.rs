//! Cohorts (hashed user header with a rotating salt, or random) and
//! deadlines (`grpc-timeout`, a millisecond header, per-priority defaults).

use std::time::Duration;

use proptest::prelude::*;
use tower_pressure_classify::{ClassifyLayer, Rules};
use tower_pressure_core::{Cohort, Deadline, Priority};

fn run(layer: &ClassifyLayer, path: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut b = http::Request::builder().uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut req = b.body(()).unwrap();
    layer.classify(&mut req);
    req
}

fn cohort(req: &http::Request<()>) -> Option<Cohort> {
    req.extensions().get::<Cohort>().copied()
}

fn remaining(req: &http::Request<()>) -> Option<Duration> {
    req.extensions().get::<Deadline>().map(|d| d.remaining())
}

#[tokio::test(start_paused = true)]
async fn a_user_keeps_one_cohort_within_a_rotation_and_users_spread_over_cohorts() {
    let layer = ClassifyLayer::builder(Rules::default())
        .cohort_from_header("x-user-id")
        .build()
        .unwrap();
    let users: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let first: Vec<Cohort> = users
        .iter()
        .map(|u| cohort(&run(&layer, "/", &[("x-user-id", u)])).unwrap())
        .collect();
    tokio::time::advance(Duration::from_secs(1800)).await;
    let again: Vec<Cohort> = users
        .iter()
        .map(|u| cohort(&run(&layer, "/", &[("x-user-id", u)])).unwrap())
        .collect();
    assert_eq!(first, again, "stable within the hour");
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert!(
        distinct.len() > 60,
        "200 users land in {} cohorts",
        distinct.len()
    );
    // After the rotation the salt changes: most users move.
    tokio::time::advance(Duration::from_secs(1800)).await;
    let rotated: Vec<Cohort> = users
        .iter()
        .map(|u| cohort(&run(&layer, "/", &[("x-user-id", u)])).unwrap())
        .collect();
    let moved = first.iter().zip(&rotated).filter(|(a, b)| a != b).count();
    assert!(
        moved > 150,
        "only {moved} of 200 users changed cohort after the rotation"
    );
    assert_eq!(cohort(&run(&layer, "/", &[])), None, "no header, no cohort");
}

#[test]
fn a_cohort_already_in_the_extensions_is_kept() {
    let layer = ClassifyLayer::builder(Rules::default())
        .cohort_from_header("x-user-id")
        .build()
        .unwrap();
    let mut req = http::Request::builder()
        .header("x-user-id", "alice")
        .body(())
        .unwrap();
    let set = Cohort::try_from(5).unwrap();
    req.extensions_mut().insert(set);
    layer.classify(&mut req);
    assert_eq!(cohort(&req), Some(set));
}

/// A user id an authentication layer verified.
#[derive(Debug, Clone, Hash)]
struct UserId(String);

#[test]
fn a_cohort_from_an_authenticated_identity_ignores_what_the_client_sends() {
    let layer = ClassifyLayer::builder(Rules::default())
        .cohort_from_extension::<UserId>()
        .build()
        .unwrap();
    let as_user = |id: &str, header: &str| {
        let mut req = http::Request::builder()
            .header("x-user-id", header)
            .body(())
            .unwrap();
        req.extensions_mut().insert(UserId(id.to_owned()));
        layer.classify(&mut req);
        cohort(&req)
    };
    // A shed client re-rolling its header stays in its cohort.
    let alice = as_user("alice", "a");
    for h in ["b", "c", "d", "e"] {
        assert_eq!(as_user("alice", h), alice);
    }
    let spread: std::collections::BTreeSet<_> = (0..100)
        .map(|i| as_user(&format!("user-{i}"), "a"))
        .collect();
    assert!(spread.len() > 30, "{} cohorts", spread.len());
    assert_eq!(
        cohort(&run(&layer, "/", &[])),
        None,
        "no identity, no cohort"
    );
}

#[test]
fn replicas_sharing_a_key_put_a_user_in_the_same_cohort() {
    let replica = |key: Option<[u8; 16]>| {
        let mut b = ClassifyLayer::builder(Rules::default()).cohort_from_header("x-user-id");
        if let Some(k) = key {
            b = b.cohort_key(k);
        }
        b.build().unwrap()
    };
    let key = [7u8; 16];
    let (a, b) = (replica(Some(key)), replica(Some(key)));
    let users: Vec<String> = (0..50).map(|i| format!("user-{i}")).collect();
    let cohorts = |layer: &ClassifyLayer| -> Vec<Option<Cohort>> {
        users
            .iter()
            .map(|u| cohort(&run(layer, "/", &[("x-user-id", u)])))
            .collect()
    };
    assert_eq!(cohorts(&a), cohorts(&b));
    // Keys of their own: they disagree about most users.
    let (c, d) = (replica(None), replica(None));
    let (cc, dd) = (cohorts(&c), cohorts(&d));
    let same = cc.iter().zip(&dd).filter(|(x, y)| x == y).count();
    assert!(same < 10, "{same} of 50 users agree without a shared key");
    // The key is never printed.
    assert!(
        !format!(
            "{:?}",
            ClassifyLayer::builder(Rules::default()).cohort_key(key)
        )
        .contains('7')
    );
}

#[test]
fn random_cohorts_vary() {
    let layer = ClassifyLayer::builder(Rules::default())
        .random_cohort()
        .build()
        .unwrap();
    let seen: std::collections::BTreeSet<_> = (0..100)
        .map(|_| cohort(&run(&layer, "/", &[])).unwrap())
        .collect();
    assert!(
        seen.len() > 30,
        "{} distinct cohorts in 100 requests",
        seen.len()
    );
}

#[tokio::test(start_paused = true)]
async fn grpc_timeout_sets_the_deadline_in_every_unit() {
    let layer = ClassifyLayer::new(Rules::default());
    for (v, d) in [
        ("1H", Duration::from_secs(3600)),
        ("2M", Duration::from_secs(120)),
        ("3S", Duration::from_secs(3)),
        ("250m", Duration::from_millis(250)),
        ("1500u", Duration::from_micros(1500)),
        ("99999999n", Duration::from_nanos(99_999_999)),
    ] {
        assert_eq!(
            remaining(&run(&layer, "/", &[("grpc-timeout", v)])),
            Some(d),
            "{v}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_millisecond_header_and_per_priority_defaults_fill_in_when_grpc_timeout_is_absent() {
    let layer = ClassifyLayer::builder(Rules::voice_service())
        .deadline_header("x-deadline-ms")
        .default_deadlines(true)
        .default_deadline(Priority::Bulk, Duration::from_secs(60))
        .build()
        .unwrap();
    let ms = run(&layer, "/voice/x", &[("x-deadline-ms", "1200")]);
    assert_eq!(remaining(&ms), Some(Duration::from_millis(1200)));
    let grpc_first = run(
        &layer,
        "/voice/x",
        &[("x-deadline-ms", "1200"), ("grpc-timeout", "1S")],
    );
    assert_eq!(remaining(&grpc_first), Some(Duration::from_secs(1)));
    for (path, d) in [
        ("/health", 2500),
        ("/voice/x", 5000),
        ("/user/x", 10_000),
        ("/report/x", 20_000),
    ] {
        assert_eq!(
            remaining(&run(&layer, path, &[])),
            Some(Duration::from_millis(d)),
            "{path}"
        );
    }
    let bulk = ClassifyLayer::builder(
        Rules::builder()
            .default_priority(Priority::Bulk)
            .build()
            .unwrap(),
    )
    .default_deadline(Priority::Bulk, Duration::from_secs(60))
    .build()
    .unwrap();
    assert_eq!(
        remaining(&run(&bulk, "/", &[])),
        Some(Duration::from_secs(60))
    );
}

#[tokio::test(start_paused = true)]
async fn a_stated_deadline_can_only_shorten_the_default_and_is_capped_at_a_day() {
    let layer = ClassifyLayer::builder(Rules::voice_service())
        .deadline_header("x-deadline-ms")
        .default_deadlines(true)
        .build()
        .unwrap();
    // /user/ is Normal, whose default deadline is 10 s: a caller stating a
    // minute through either header still gets 10 s; stating 2 s gets 2 s.
    for headers in [
        [("grpc-timeout", "60S")],
        [("x-deadline-ms", "60000")],
        [("grpc-timeout", "99999999H")],
    ] {
        assert_eq!(
            remaining(&run(&layer, "/user/x", &headers)),
            Some(Duration::from_secs(10)),
            "{headers:?}"
        );
    }
    assert_eq!(
        remaining(&run(&layer, "/user/x", &[("grpc-timeout", "2S")])),
        Some(Duration::from_secs(2))
    );
    // Without defaults, a stated deadline millennia away is capped at a day.
    let plain = ClassifyLayer::new(Rules::default());
    assert_eq!(
        remaining(&run(&plain, "/", &[("grpc-timeout", "99999999H")])),
        Some(Duration::from_secs(86_400))
    );
}

#[tokio::test(start_paused = true)]
async fn without_configuration_there_is_no_deadline_and_an_existing_one_is_kept() {
    let layer = ClassifyLayer::new(Rules::default());
    assert_eq!(remaining(&run(&layer, "/", &[])), None);
    let mut req = http::Request::builder()
        .uri("/")
        .header("grpc-timeout", "1S")
        .body(())
        .unwrap();
    let mine = Deadline::after(Duration::from_secs(7));
    req.extensions_mut().insert(mine);
    layer.classify(&mut req);
    assert_eq!(req.extensions().get::<Deadline>(), Some(&mine));
    let off = ClassifyLayer::builder(Rules::default())
        .grpc_timeout(false)
        .build()
        .unwrap();
    assert_eq!(remaining(&run(&off, "/", &[("grpc-timeout", "1S")])), None);
}

#[test]
fn bad_classifier_settings_are_config_errors_naming_the_field() {
    let b = || ClassifyLayer::builder(Rules::default());
    assert_eq!(
        b().priority_header("bad header")
            .build()
            .unwrap_err()
            .field(),
        "priority_header"
    );
    assert_eq!(
        b().cohort_from_header("").build().unwrap_err().field(),
        "cohort_header"
    );
    assert_eq!(
        b().deadline_header("a b").build().unwrap_err().field(),
        "deadline_header"
    );
    assert_eq!(
        b().cohort_rotation(Duration::ZERO)
            .build()
            .unwrap_err()
            .field(),
        "cohort_rotation"
    );
    assert_eq!(
        b().default_deadline(Priority::High, Duration::ZERO)
            .build()
            .unwrap_err()
            .field(),
        "default_deadline"
    );
    assert_eq!(
        b().cohort_from_header("x-user")
            .random_cohort()
            .build()
            .unwrap_err()
            .field(),
        "cohort"
    );
    assert_eq!(
        tower_pressure_classify::Trust::shared_secret("x-t", "")
            .unwrap_err()
            .field(),
        "trust.secret"
    );
}

proptest! {
    #[test]
    fn malformed_or_huge_deadline_headers_fall_back_and_never_panic(
        grpc in "\\PC{0,40}",
        ms in "\\PC{0,40}",
        digits in "[0-9]{1,30}",
        unit in "[HMSmunx ]",
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        let _g = rt.enter();
        let layer = ClassifyLayer::builder(Rules::default())
            .deadline_header("x-deadline-ms")
            .build()
            .unwrap();
        for (g, m) in [(grpc.clone(), ms.clone()), (format!("{digits}{unit}"), digits.clone())] {
            let mut b = http::Request::builder().uri("/");
            if let Ok(v) = http::HeaderValue::from_str(&g) { b = b.header("grpc-timeout", v); }
            if let Ok(v) = http::HeaderValue::from_str(&m) { b = b.header("x-deadline-ms", v); }
            let mut req = b.body(()).unwrap();
            layer.classify(&mut req);
            if let Some(d) = req.extensions().get::<Deadline>() {
                prop_assert!(d.remaining() <= Duration::from_secs(8 * 99_999_999 * 3600));
            }
        }
    }
}
