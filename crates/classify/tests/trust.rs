//! A client can never raise its own priority: the priority header is
//! ignored unless trusted, and then capped; malformed headers fall back.

use proptest::prelude::*;
use tower_pressure_classify::{ClassifyLayer, Rules, Trust};
use tower_pressure_core::Priority::{self, *};
use tower_pressure_core::PriorityOf;

fn classify(layer: &ClassifyLayer, mut req: http::Request<()>) -> Priority {
    layer.classify(&mut req);
    req.priority()
}

fn with_headers(path: &str, headers: &[(&str, &[u8])]) -> http::Request<()> {
    let mut b = http::Request::builder().uri(path);
    for (k, v) in headers {
        b = b.header(*k, http::HeaderValue::from_bytes(v).unwrap());
    }
    b.body(()).unwrap()
}

#[test]
fn an_untrusted_priority_header_is_ignored() {
    let layer = ClassifyLayer::new(Rules::voice_service());
    for v in ["critical", "Critical", "4", "high"] {
        let req = with_headers("/analytics/x", &[("x-priority", v.as_bytes())]);
        assert_eq!(classify(&layer, req), Low, "header {v}");
    }
}

#[test]
fn a_trusted_priority_header_is_believed_and_capped() {
    let layer = ClassifyLayer::builder(Rules::voice_service())
        .trust(Trust::shared_secret("x-internal", "s3cret").unwrap())
        .build()
        .unwrap();
    let signed = |p: &str| {
        with_headers(
            "/analytics/x",
            &[("x-priority", p.as_bytes()), ("x-internal", b"s3cret")],
        )
    };
    assert_eq!(classify(&layer, signed("high")), High);
    assert_eq!(
        classify(&layer, signed("critical")),
        High,
        "capped at max_trusted"
    );
    assert_eq!(
        classify(&layer, signed("bulk")),
        Bulk,
        "a caller may lower itself"
    );
    let wrong = with_headers(
        "/analytics/x",
        &[("x-priority", b"high"), ("x-internal", b"guess")],
    );
    assert_eq!(classify(&layer, wrong), Low);
    let short = with_headers(
        "/analytics/x",
        &[("x-priority", b"high"), ("x-internal", b"s3cre")],
    );
    assert_eq!(classify(&layer, short), Low);
}

#[test]
fn the_cap_is_configurable_and_the_header_name_too() {
    let layer = ClassifyLayer::builder(Rules::default())
        .trust(Trust::always())
        .priority_header("grpc-priority")
        .max_trusted(Normal)
        .build()
        .unwrap();
    let req = with_headers("/x", &[("grpc-priority", b"critical")]);
    assert_eq!(classify(&layer, req), Normal);
    let req = with_headers("/x", &[("x-priority", b"low")]);
    assert_eq!(classify(&layer, req), Normal, "another header is not read");
}

#[test]
fn duplicate_malformed_or_non_utf8_priority_headers_fall_back_to_the_rules() {
    let layer = ClassifyLayer::builder(Rules::voice_service())
        .trust(Trust::always())
        .build()
        .unwrap();
    let cases: [&[(&str, &[u8])]; 5] = [
        &[("x-priority", b"high"), ("x-priority", b"high")],
        &[("x-priority", b"urgent")],
        &[("x-priority", b"\xff\xfe")],
        &[("x-priority", b"")],
        &[("x-priority", b" high ")],
    ];
    for headers in cases {
        let p = classify(&layer, with_headers("/analytics/x", headers));
        let expect = if headers[0].1 == b" high " { High } else { Low };
        assert_eq!(p, expect, "{headers:?}");
    }
    let huge = "h".repeat(16 * 1024);
    let p = classify(
        &layer,
        with_headers("/analytics/x", &[("x-priority", huge.as_bytes())]),
    );
    assert_eq!(p, Low);
}

#[test]
fn a_predicate_decides_trust() {
    let layer = ClassifyLayer::builder(Rules::default())
        .trust(Trust::when(|h| h.uri.path().starts_with("/internal/")))
        .build()
        .unwrap();
    assert_eq!(
        classify(
            &layer,
            with_headers("/internal/x", &[("x-priority", b"high")])
        ),
        High
    );
    assert_eq!(
        classify(
            &layer,
            with_headers("/public/x", &[("x-priority", b"high")])
        ),
        Normal
    );
}

#[test]
fn a_priority_set_by_server_code_before_the_classifier_is_kept() {
    let layer = ClassifyLayer::new(Rules::voice_service());
    let mut req = with_headers("/analytics/x", &[]);
    req.extensions_mut().insert(Critical);
    assert_eq!(classify(&layer, req), Critical);
}

#[cfg(feature = "axum")]
#[test]
fn trust_by_peer_address_reads_connect_info() {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let layer = ClassifyLayer::builder(Rules::default())
        .trust(Trust::peers([IpAddr::V4(Ipv4Addr::LOCALHOST)]))
        .build()
        .unwrap();
    let from = |ip: [u8; 4]| {
        let mut r = with_headers("/x", &[("x-priority", b"high")]);
        r.extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from((ip, 4000))));
        r
    };
    assert_eq!(classify(&layer, from([127, 0, 0, 1])), High);
    assert_eq!(classify(&layer, from([10, 0, 0, 7])), Normal);
    assert_eq!(
        classify(&layer, with_headers("/x", &[("x-priority", b"high")])),
        Normal
    );
}

#[cfg(feature = "axum")]
#[test]
fn an_ipv4_peer_is_trusted_when_a_dual_stack_listener_reports_it_mapped() {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let layer = ClassifyLayer::builder(Rules::default())
        .trust(Trust::peers([IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))]))
        .build()
        .unwrap();
    let mut req = with_headers("/x", &[("x-priority", b"high")]);
    // `[::]` listeners report IPv4 clients as `::ffff:a.b.c.d`.
    let mapped = Ipv4Addr::new(10, 0, 0, 7).to_ipv6_mapped();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::from((mapped, 4000))));
    assert_eq!(classify(&layer, req), High);
}

#[test]
fn any_of_several_secrets_is_trusted_so_a_secret_can_be_rotated() {
    let layer = ClassifyLayer::builder(Rules::default())
        .trust(Trust::shared_secrets("x-internal", ["old-secret", "new-secret-2"]).unwrap())
        .build()
        .unwrap();
    for (secret, want) in [
        (&b"old-secret"[..], High),
        (b"new-secret-2", High),
        (b"new-secret", Normal),
        (b"old-secret-2", Normal),
        (b"", Normal),
    ] {
        let req = with_headers("/x", &[("x-priority", b"high"), ("x-internal", secret)]);
        assert_eq!(
            classify(&layer, req),
            want,
            "{:?}",
            String::from_utf8_lossy(secret)
        );
    }
}

#[test]
fn a_secret_that_could_never_be_sent_is_an_error_that_does_not_quote_it() {
    for secret in [&b"line\nbreak"[..], b"nul\0", b"del\x7f"] {
        let err = Trust::shared_secret("x-internal", secret).unwrap_err();
        assert_eq!(err.field(), "trust.secret");
        assert!(!err.to_string().contains("break"), "{err}");
    }
    let none: [&str; 0] = [];
    assert_eq!(
        Trust::shared_secrets("x-internal", none)
            .unwrap_err()
            .field(),
        "trust.secret"
    );
}

#[test]
fn the_secret_header_is_removed_before_the_service_sees_it() {
    let layer = ClassifyLayer::builder(Rules::default())
        .trust(Trust::shared_secret("x-internal", "s3cret").unwrap())
        .build()
        .unwrap();
    let mut req = with_headers("/x", &[("x-priority", b"high"), ("x-internal", b"s3cret")]);
    layer.classify(&mut req);
    assert_eq!(req.priority(), High);
    assert!(
        req.headers().get("x-internal").is_none(),
        "the secret went on"
    );
    assert!(
        req.headers().get("x-priority").is_some(),
        "kept unless asked"
    );
    // Both on request: the secret kept, the priority claim removed.
    let layer = ClassifyLayer::builder(Rules::default())
        .trust(Trust::shared_secret("x-internal", "s3cret").unwrap())
        .strip_secret_header(false)
        .strip_priority_header(true)
        .build()
        .unwrap();
    let mut req = with_headers("/x", &[("x-priority", b"high"), ("x-internal", b"s3cret")]);
    layer.classify(&mut req);
    assert_eq!(req.priority(), High);
    assert!(req.headers().get("x-internal").is_some());
    assert!(req.headers().get("x-priority").is_none());
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    // Any bytes a header value can hold (no CR, LF or NUL), including names
    // of priorities and non-UTF-8.
    prop_oneof![
        proptest::collection::vec(
            any::<u8>().prop_filter("valid header byte", |b| *b == b'\t'
                || (*b >= 0x20 && *b != 0x7f)),
            0..64
        ),
        prop_oneof![
            Just("critical"),
            Just("4"),
            Just("HIGH"),
            Just("high"),
            Just("Critical ")
        ]
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

proptest! {
    #[test]
    fn no_header_an_untrusted_client_sends_raises_its_priority(
        path in prop_oneof![Just("/analytics/x"), Just("/other"), Just("/voice/x"), Just("/api/healthcare")],
        values in proptest::collection::vec(header_bytes(), 0..4),
        names in proptest::collection::vec(
            prop_oneof![Just("x-priority"), Just("priority"), Just("grpc-timeout"), Just("x-user-id")], 0..4),
    ) {
        let rules = Rules::voice_service();
        let layer = ClassifyLayer::builder(rules.clone())
            .cohort_from_header("x-user-id")
            .deadline_header("x-deadline-ms")
            .build()
            .unwrap();
        let bare = http::Request::builder().uri(path).body(()).unwrap();
        let expected = rules.classify(&tower_pressure_classify::RequestHead::of(&bare));
        let pairs: Vec<(&str, &[u8])> = names.iter().copied().zip(values.iter().map(Vec::as_slice)).collect();
        let got = classify(&layer, with_headers(path, &pairs));
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn trusted_headers_never_exceed_the_cap(
        value in header_bytes(),
        cap in (0usize..5).prop_map(|i| Priority::from_index(i).unwrap()),
    ) {
        let layer = ClassifyLayer::builder(Rules::default())
            .trust(Trust::always())
            .max_trusted(cap)
            .build()
            .unwrap();
        let p = classify(&layer, with_headers("/x", &[("x-priority", &value)]));
        prop_assert!(p <= cap.max(Normal), "{} above cap {}", p, cap);
    }
}
