//! Classification cost: the voice-service preset (8 anchored prefixes) on
//! paths that match early, late and not at all, a glob rule, adversarial
//! paths against a glob with several `**`, and the whole layer call
//! (classify + insert extensions) against a bare no-op service.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tower::{Layer, Service};
use tower_pressure_classify::{ClassifyLayer, RequestHead, Rules};
use tower_pressure_core::Priority;

fn rules(c: &mut Criterion) {
    let preset = Rules::voice_service();
    let mut g = c.benchmark_group("classify_rules");
    for (name, path) in [
        ("first_rule", "/health"),
        ("fifth_rule", "/user/profile"),
        ("no_match", "/api/v1/something/else"),
    ] {
        let req = Request::get(path).body(()).expect("a valid request");
        g.bench_function(name, |b| {
            b.iter(|| preset.classify(&RequestHead::of(black_box(&req))))
        });
    }
    let glob = Rules::builder()
        .path_glob("/api/*/report/**", Priority::Low)
        .build()
        .expect("a valid glob");
    let req = Request::get("/api/v2/report/a/b")
        .body(())
        .expect("a valid request");
    g.bench_function("glob", |b| {
        b.iter(|| glob.classify(&RequestHead::of(black_box(&req))))
    });
    g.finish();
}

/// A client's worst case: a long path of `/a` segments against a rule with
/// two `**` that it never matches (the path lacks the final `b`), which a
/// backtracking matcher retries at every position of every `**`. Paths over
/// the 1 KiB the rules look at are refused a match at once; 1 KiB and 256 B
/// are matched in full.
fn adversarial(c: &mut Criterion) {
    let rules = Rules::builder()
        .path_glob("/**/a/**/b", Priority::Critical)
        .build()
        .expect("a valid glob");
    let mut g = c.benchmark_group("classify_adversarial");
    for (name, bytes) in [("8KiB", 8192), ("1KiB", 1024), ("256B", 256)] {
        let path = "/a".repeat(bytes / 2);
        let req = Request::get(path.as_str())
            .body(())
            .expect("a valid request");
        g.bench_function(name, |b| {
            b.iter(|| rules.classify(&RequestHead::of(black_box(&req))))
        });
    }
    g.finish();
}

fn noop(req: Request<()>) -> Ready<Result<Request<()>, Infallible>> {
    ready(Ok(req))
}

fn layer(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify_layer");
    let mut bare = tower::service_fn(noop);
    g.bench_function("baseline_noop", |b| {
        b.iter(|| bare.call(Request::get("/user/profile").body(()).expect("valid")))
    });
    let mut svc = ClassifyLayer::new(Rules::voice_service()).layer(tower::service_fn(noop));
    g.bench_function("voice_service_preset", |b| {
        b.iter(|| svc.call(Request::get("/user/profile").body(()).expect("valid")))
    });
    // The same with a request whose extension map already exists (any
    // layer above that inserted something, e.g. a request id): what the
    // layer itself costs, without the map's first allocation.
    let with_extension = || {
        let mut req = Request::get("/user/profile").body(()).expect("valid");
        req.extensions_mut().insert(RequestId(7));
        req
    };
    g.bench_function("baseline_noop_extensions_allocated", |b| {
        b.iter(|| bare.call(with_extension()))
    });
    g.bench_function("voice_service_preset_extensions_allocated", |b| {
        b.iter(|| svc.call(with_extension()))
    });
    g.finish();
}

/// An extension some layer above might have inserted.
#[derive(Debug, Clone, Copy)]
struct RequestId(#[expect(dead_code, reason = "only carried")] u64);

criterion_group!(benches, rules, adversarial, layer);
criterion_main!(benches);
