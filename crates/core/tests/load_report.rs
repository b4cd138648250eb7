//! The ORCA load report: what Envoy's parser accepts, in each format.

#![cfg(feature = "http")]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use http::{Request, Response};
use proptest::prelude::*;
use tower::{Layer, ServiceExt, service_fn};
use tower_pressure_core::{LimitControl, LoadReport, LoadReportLayer};

/// Envoy's text grammar (`orca_parser.cc`): `TEXT ` then comma-separated
/// `key=value` pairs, spaces around them ignored; the keys it knows, or a
/// `named_metrics.`/`request_cost.`/`utilization.` prefix with a name;
/// values finite doubles, not negative, memory at most 1.
fn parse_text(header: &str) -> Result<HashMap<String, f64>, String> {
    let body = header.strip_prefix("TEXT ").ok_or("no TEXT prefix")?;
    let mut out = HashMap::new();
    for pair in body.split(',') {
        let (k, v) = pair
            .trim()
            .split_once('=')
            .ok_or(format!("no '=' in {pair:?}"))?;
        let known = [
            "cpu_utilization",
            "mem_utilization",
            "application_utilization",
            "rps_fractional",
            "eps",
        ]
        .contains(&k);
        let named = ["named_metrics.", "request_cost.", "utilization."]
            .iter()
            .any(|p| k.strip_prefix(p).is_some_and(|n| !n.is_empty()));
        if !known && !named {
            return Err(format!("unknown key {k:?}"));
        }
        let v: f64 = v.parse().map_err(|e| format!("{v:?}: {e}"))?;
        if !v.is_finite() || v < 0.0 || (k == "mem_utilization" && v > 1.0) {
            return Err(format!("{k}={v} out of range"));
        }
        if out.insert(k.to_owned(), v).is_some() {
            return Err(format!("{k} twice"));
        }
    }
    Ok(out)
}

/// `OrcaLoadReport`'s fields that we write, for decoding the binary form.
#[derive(Clone, PartialEq, prost::Message)]
struct Orca {
    #[prost(double, tag = "1")]
    cpu_utilization: f64,
    #[prost(double, tag = "2")]
    mem_utilization: f64,
    #[prost(map = "string, double", tag = "8")]
    named_metrics: HashMap<String, f64>,
    #[prost(double, tag = "9")]
    application_utilization: f64,
}

fn report() -> LoadReport {
    LoadReport {
        cpu_utilization: Some(0.42),
        mem_utilization: Some(0.8),
        application_utilization: Some(0.5),
        named_metrics: vec![("queue".to_owned(), 0.25)],
    }
}

#[test]
fn the_text_form_is_what_envoy_parses() {
    let text = report().to_text();
    assert_eq!(
        text,
        "TEXT cpu_utilization=0.42, mem_utilization=0.8, application_utilization=0.5, named_metrics.queue=0.25"
    );
    let parsed = parse_text(&text).unwrap();
    assert_eq!(parsed["named_metrics.queue"], 0.25);
}

#[test]
fn the_json_and_binary_forms_carry_the_same_report() {
    let json = report().to_json();
    let v: serde_json::Value = serde_json::from_str(json.strip_prefix("JSON ").unwrap()).unwrap();
    assert_eq!(v["cpu_utilization"], 0.42);
    assert_eq!(v["named_metrics"]["queue"], 0.25);
    let bin = report().to_bin();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(bin.strip_prefix("BIN ").unwrap())
        .unwrap();
    let orca = <Orca as prost::Message>::decode(bytes.as_slice()).unwrap();
    assert_eq!(orca.cpu_utilization, 0.42);
    assert_eq!(orca.mem_utilization, 0.8);
    assert_eq!(orca.application_utilization, 0.5);
    assert_eq!(orca.named_metrics["queue"], 0.25);
}

proptest! {
    /// Whatever the readings (NaN, infinite, negative, past 1), the report
    /// is a valid header value in the grammar, and the binary form decodes.
    #[test]
    fn any_readings_give_a_report_envoy_accepts(
        cpu in prop::option::of(any::<f64>()),
        mem in prop::option::of(any::<f64>()),
        app in prop::option::of(any::<f64>()),
        queue in any::<f64>(),
    ) {
        let r = LoadReport {
            cpu_utilization: cpu,
            mem_utilization: mem,
            application_utilization: app,
            named_metrics: vec![("queue".to_owned(), queue)],
        };
        let text = r.to_text();
        prop_assert!(http::HeaderValue::from_str(&text).is_ok());
        prop_assert!(parse_text(&text).is_ok(), "{text}: {:?}", parse_text(&text));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(r.to_bin().strip_prefix("BIN ").unwrap())
            .unwrap();
        prop_assert!(<Orca as prost::Message>::decode(bytes.as_slice()).is_ok());
        prop_assert!(http::HeaderValue::from_str(&r.to_json()).is_ok());
    }
}

/// A limiter with `in_flight` of 8 permits busy and 1 of 4 places queued.
#[derive(Debug, Default)]
struct Fake(Arc<AtomicUsize>);

impl LimitControl for Fake {
    fn limit(&self) -> usize {
        8
    }
    fn set_limit(&self, _: usize) {}
    fn in_flight(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
    fn queue_len(&self) -> usize {
        1
    }
    fn max_queue(&self) -> usize {
        4
    }
    fn set_max_queue(&self, _: usize) {}
    fn emergency(&self) -> bool {
        false
    }
    fn set_emergency(&self, _: bool) {}
}

#[tokio::test]
async fn every_response_carries_the_report_in_the_format_asked() {
    let in_flight = Arc::new(AtomicUsize::new(6));
    let svc = LoadReportLayer::new()
        .limiter(Fake(in_flight.clone()))
        .layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    let res = svc.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(
        res.headers()["endpoint-load-metrics"],
        "TEXT application_utilization=0.75, named_metrics.queue=0.25"
    );
    in_flight.store(2, Ordering::Relaxed);
    let asks = |format: &str| {
        Request::builder()
            .header("endpoint-load-metrics-format", format)
            .body(())
            .unwrap()
    };
    let res = svc.clone().oneshot(asks("JSON")).await.unwrap();
    let json = res.headers()["endpoint-load-metrics"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(json.starts_with("JSON {"), "{json}");
    assert!(json.contains("\"application_utilization\":0.25"), "{json}");
    let res = svc.oneshot(asks("BIN")).await.unwrap();
    let bin = res.headers()["endpoint-load-metrics"].to_str().unwrap();
    assert!(bin.starts_with("BIN "), "{bin}");
}
