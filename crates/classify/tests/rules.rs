//! Rules: the preset, each matcher, first match wins, bad rules, TOML.

use tower_pressure_classify::{Glob, Match, RequestHead, Rules};
use tower_pressure_core::Priority::{self, *};

fn req(method: &str, path: &str) -> http::Request<()> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .body(())
        .unwrap()
}

fn classify(rules: &Rules, r: &http::Request<()>) -> Priority {
    rules.classify(&RequestHead::of(r))
}

#[test]
fn the_voice_service_preset_classes_the_original_designs_paths() {
    let rules = Rules::voice_service();
    for (path, want) in [
        ("/voice/transcribe", High),
        ("/stream/terminal/42", High),
        ("/user/profile", Normal),
        ("/auth/login", Normal),
        ("/analytics/daily", Low),
        ("/report/weekly", Low),
        ("/health", Critical),
        ("/metrics", Critical),
        // Critical is admitted even in emergency mode: exact paths only.
        ("/health/live", Normal),
        ("/metrics/anything", Normal),
        ("/", Normal),
        ("/other/thing", Normal),
    ] {
        assert_eq!(classify(&rules, &req("GET", path)), want, "{path}");
    }
}

#[test]
fn the_preset_does_not_let_a_path_that_merely_contains_health_become_critical() {
    let rules = Rules::voice_service();
    for path in [
        "/api/healthcare",
        "/healthcare",
        "/users/health",
        "/api/health",
        "/metricsx",
        "/report/../health",
        "/api/voice/transcribe",
        "/voice",
    ] {
        let p = classify(&rules, &req("GET", path));
        assert_ne!(p, Critical, "{path} became critical");
        assert!(p <= Normal, "{path} was raised to {p}");
    }
}

#[test]
fn a_path_dressed_up_as_another_gets_at_most_the_default() {
    let rules = Rules::builder()
        .path_prefix("/health", Critical)
        .path_prefix("/batch/", Bulk)
        .path_glob("/ops/**", Critical)
        .build()
        .unwrap();
    for path in [
        "/health/../api/x",
        "/health/./x",
        "/health/%2e%2e/x",
        "/health/%2E%2e/x",
        "/health//x",
        "/health%2fx",
        "/health/%2F..",
        "/ops/../../x",
        "/ops/./x",
    ] {
        assert_eq!(classify(&rules, &req("GET", path)), Normal, "{path}");
    }
    // Its rules may still lower it: dressing a Bulk path up does not raise it.
    assert_eq!(classify(&rules, &req("GET", "/batch/./export")), Bulk);
    // A trailing slash is plain.
    assert_eq!(classify(&rules, &req("GET", "/health/")), Critical);
    assert_eq!(classify(&rules, &req("GET", "/ops/a/b/")), Critical);
}

#[test]
fn a_path_too_long_to_look_at_gets_the_lowest_priority_the_rules_give() {
    let rules = Rules::builder()
        .path_glob("/**/a/**/b", Critical)
        .path_prefix("/batch/", Bulk)
        .build()
        .unwrap();
    let long = format!("{}/b", "/a".repeat(4096));
    assert_eq!(classify(&rules, &req("GET", &long)), Bulk);
    // Within the bound, the rules decide.
    let short = format!("{}/b", "/a".repeat(500));
    assert!(short.len() <= 1024);
    assert_eq!(classify(&rules, &req("GET", &short)), Critical);
}

#[test]
fn more_than_256_rules_is_an_error_naming_rules() {
    let mut b = Rules::builder();
    for i in 0..256 {
        b = b.path_exact(&format!("/r{i}"), Low);
    }
    assert!(b.clone().build().is_ok());
    let err = b.path_exact("/one-more", Low).build().unwrap_err();
    assert_eq!(err.field(), "rules");
}

#[test]
fn the_first_matching_rule_wins() {
    let rules = Rules::builder()
        .path_prefix("/api/", Low)
        .path_prefix("/api/voice/", High)
        .build()
        .unwrap();
    assert_eq!(classify(&rules, &req("GET", "/api/voice/x")), Low);
    let rules = Rules::builder()
        .path_prefix("/api/voice/", High)
        .path_prefix("/api/", Low)
        .build()
        .unwrap();
    assert_eq!(classify(&rules, &req("GET", "/api/voice/x")), High);
}

#[test]
fn every_matcher_kind_matches_what_it_says() {
    let rules = Rules::builder()
        .path_exact("/exact", Critical)
        .path_glob("/api/*/report", Low)
        .method("DELETE", Bulk)
        .header_equals("x-batch", "yes", Bulk)
        .header_present("x-interactive", High)
        .grpc_method("/voice.Transcriber/Stream", High)
        .grpc_service("analytics.Reports", Low)
        .matching(
            |h| h.uri.query().is_some_and(|q| q.contains("urgent")),
            High,
        )
        .default_priority(Normal)
        .build()
        .unwrap();
    let with_header = |k: &str, v: &str| {
        http::Request::builder()
            .uri("/x")
            .header(k, v)
            .body(())
            .unwrap()
    };
    assert_eq!(classify(&rules, &req("GET", "/exact")), Critical);
    assert_eq!(classify(&rules, &req("GET", "/exact/more")), Normal);
    assert_eq!(classify(&rules, &req("GET", "/api/v1/report")), Low);
    assert_eq!(classify(&rules, &req("DELETE", "/x")), Bulk);
    assert_eq!(classify(&rules, &with_header("x-batch", "yes")), Bulk);
    assert_eq!(classify(&rules, &with_header("x-batch", "no")), Normal);
    assert_eq!(classify(&rules, &with_header("x-interactive", "")), High);
    assert_eq!(
        classify(&rules, &req("POST", "/voice.Transcriber/Stream")),
        High
    );
    assert_eq!(
        classify(&rules, &req("POST", "/voice.Transcriber/Other")),
        Normal
    );
    assert_eq!(
        classify(&rules, &req("POST", "/analytics.Reports/Weekly")),
        Low
    );
    assert_eq!(
        classify(&rules, &req("POST", "/analytics.ReportsX/Weekly")),
        Normal
    );
    assert_eq!(classify(&rules, &req("GET", "/x?urgent=1")), High);
    assert_eq!(classify(&rules, &req("GET", "/nothing")), Normal);
}

#[test]
fn an_empty_rule_set_classes_everything_as_the_default() {
    let rules = Rules::builder().default_priority(Low).build().unwrap();
    assert_eq!(classify(&rules, &req("GET", "/voice/x")), Low);
    assert_eq!(classify(&Rules::default(), &req("GET", "/voice/x")), Normal);
}

#[test]
fn bad_rules_are_config_errors_naming_the_rule() {
    let cases: Vec<(tower_pressure_classify::RulesBuilder, &str)> = vec![
        (Rules::builder().path_glob("/a/b*c", Low), "rules.glob"),
        (Rules::builder().path_glob("no-slash", Low), "rules.glob"),
        (
            Rules::builder().path_prefix("voice/", Low),
            "rules.path_prefix",
        ),
        (Rules::builder().path_exact("x", Low), "rules.path"),
        (Rules::builder().method("GE T", Low), "rules.method"),
        (
            Rules::builder().header_present("bad header", Low),
            "rules.header",
        ),
        (
            Rules::builder().header_equals("x-ok", "line\nbreak", Low),
            "rules.equals",
        ),
        (
            Rules::builder().grpc_method("voice.Transcriber/Stream", Low),
            "rules.grpc_method",
        ),
        (
            Rules::builder().grpc_method("/voice.Transcriber/", Low),
            "rules.grpc_method",
        ),
        (
            Rules::builder().grpc_service("voice/Transcriber", Low),
            "rules.grpc_service",
        ),
    ];
    for (b, field) in cases {
        let b = b.path_prefix("/fine/", High);
        let err = b.build().unwrap_err();
        assert_eq!(err.field(), field, "{err}");
        assert!(err.to_string().contains("rule 0"), "names the rule: {err}");
    }
    let err = Rules::builder()
        .path_prefix("/ok/", Low)
        .path_glob("/bad/**x", Low)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("rule 1"), "{err}");
}

#[test]
fn a_built_match_can_be_used_as_a_rule() {
    let glob: Glob = "/v*/x".parse().unwrap();
    let rules = Rules::builder()
        .rule(
            Match::All(vec![
                Match::PathGlob(glob),
                Match::Method(http::Method::POST),
            ]),
            High,
        )
        .build()
        .unwrap();
    assert_eq!(classify(&rules, &req("POST", "/v2/x")), High);
    assert_eq!(classify(&rules, &req("GET", "/v2/x")), Normal);
}

#[cfg(feature = "serde")]
mod toml_rules {
    use super::*;

    #[test]
    fn rules_load_from_toml() {
        let rules: Rules = toml::from_str(
            r#"
            default = "low"

            [[rule]]
            path_prefix = "/voice/"
            priority = "High"

            [[rule]]
            method = "POST"
            glob = "/api/*/report"
            priority = "bulk"

            [[rule]]
            header = "x-tier"
            equals = "gold"
            priority = "3"

            [[rule]]
            grpc_service = "voice.Transcriber"
            priority = "critical"
            "#,
        )
        .unwrap();
        assert_eq!(rules.len(), 4);
        assert_eq!(classify(&rules, &req("GET", "/voice/x")), High);
        assert_eq!(classify(&rules, &req("POST", "/api/v1/report")), Bulk);
        assert_eq!(classify(&rules, &req("GET", "/api/v1/report")), Low);
        let gold = http::Request::builder()
            .uri("/x")
            .header("x-tier", "gold")
            .body(())
            .unwrap();
        assert_eq!(classify(&rules, &gold), High);
        assert_eq!(
            classify(&rules, &req("POST", "/voice.Transcriber/Go")),
            Critical
        );
        assert_eq!(classify(&rules, &req("GET", "/elsewhere")), Low);
    }

    #[test]
    fn a_bad_rule_in_toml_is_an_error_naming_it() {
        let cases = [
            (
                "[[rule]]\npath_prefix = \"/a/\"\npriority = \"urgent\"\n",
                "rule 0",
            ),
            (
                "[[rule]]\npath_prefix = \"/a/\"\npriority = \"low\"\n[[rule]]\nglob = \"/x/y*z\"\npriority = \"low\"\n",
                "rule 1",
            ),
            ("[[rule]]\npriority = \"low\"\n", "rule 0"),
            ("[[rule]]\nequals = \"x\"\npriority = \"low\"\n", "rule 0"),
            ("default = \"soon\"\n", "soon"),
        ];
        for (text, want) in cases {
            let err = toml::from_str::<Rules>(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?} gave {err}");
        }
        assert!(
            toml::from_str::<Rules>(
                "[[rule]]\npath_prefix = \"/a/\"\npriority = \"low\"\ncolour = 1\n"
            )
            .is_err()
        );
    }
}
