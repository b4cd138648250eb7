//! The axum issue 2582 trap: a layer that made its state per service would
//! give every connection (and every route) its own limit. Served over
//! loopback, two connections share one `AdmissionLayer` limit of 1 with no
//! queue: one request is served, the other is refused with `503` and
//! `Retry-After` — or, for a gRPC request, a trailers-only reply with
//! `RESOURCE_EXHAUSTED` and a pushback. The layer sits under
//! `Router::layer` with no `HandleErrorLayer`.
//!
//! Real time and real sockets; every wait is bounded by a timeout, so a
//! failure can never hang the test.
#![cfg(not(loom))]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tower_pressure_admission::{AdmissionLayer, PriorityLimiter};
use tower_pressure_core::Priority;

/// The most any one step may take before the test fails.
const BOUND: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test after [`BOUND`].
async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than {BOUND:?}"))
}

/// A handler that holds its request until the test lets it go.
#[derive(Clone)]
struct Gate {
    /// Told each time a request enters the handler.
    entered: mpsc::UnboundedSender<()>,
    /// One permit lets one request leave.
    release: Arc<Semaphore>,
    /// How many requests entered the handler.
    count: Arc<AtomicUsize>,
}

impl Gate {
    async fn handle(self) -> &'static str {
        self.count.fetch_add(1, Ordering::SeqCst);
        let _ = self.entered.send(());
        self.release
            .acquire()
            .await
            .expect("the semaphore is never closed")
            .forget();
        "done"
    }
}

/// A server on 127.0.0.1 behind a limit of 1 with no queue.
struct Server {
    addr: std::net::SocketAddr,
    limiter: PriorityLimiter,
    gate: Gate,
    entered: mpsc::UnboundedReceiver<()>,
}

async fn serve() -> Server {
    let limiter = PriorityLimiter::builder()
        .limit(1)
        .max_queue(0)
        .build()
        .unwrap();
    let (tx, entered) = mpsc::unbounded_channel();
    let gate = Gate {
        entered: tx,
        release: Arc::new(Semaphore::new(0)),
        count: Arc::new(AtomicUsize::new(0)),
    };
    let (slow, other) = (gate.clone(), gate.clone());
    // No HandleErrorLayer: a refusal is a response, not an error.
    let app: Router = Router::new()
        .route(
            "/slow",
            get(move || slow.clone().handle()).post({
                let g = gate.clone();
                move || g.clone().handle()
            }),
        )
        .route("/other", get(move || other.clone().handle()))
        .layer(AdmissionLayer::new(limiter.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        addr,
        limiter,
        gate,
        entered,
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "status line {status_line:?}"
    );
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Opens a new connection, sends `request` on it and reads the reply to the
/// end (the request asks the server to close).
async fn send(addr: std::net::SocketAddr, request: String) -> Reply {
    bounded("the exchange", async {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await.unwrap();
        parse(&raw)
    })
    .await
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

fn grpc_request(path: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/grpc\r\n\
         te: trailers\r\ncontent-length: 0\r\nConnection: close\r\n\r\n"
    )
}

/// Waits until every permit has come back.
async fn until_idle(l: &PriorityLimiter) {
    bounded("the limiter to be idle", async {
        loop {
            let s = l.snapshot();
            if s.in_flight == 0 && s.queue_len() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[track_caller]
fn assert_plain_refusal(r: &Reply) {
    assert_eq!(r.status, 503, "{r:?}");
    let retry: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {r:?}"))
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(retry >= 1, "{r:?}");
    assert!(r.body.contains("service overloaded"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_share_one_limit_and_the_second_is_refused_with_503() {
    let mut server = serve().await;
    let addr = server.addr;
    let mut clients = JoinSet::new();
    for _ in 0..2 {
        clients.spawn(send(addr, get_request("/slow")));
    }
    bounded("a request to reach the handler", server.entered.recv()).await;
    // The other is refused at once, while the first still holds the permit.
    let first = bounded("the first reply", clients.join_next())
        .await
        .unwrap()
        .unwrap();
    assert_plain_refusal(&first);
    assert_eq!(server.limiter.snapshot().in_flight, 1);

    // A gRPC request meanwhile gets a trailers-only RESOURCE_EXHAUSTED.
    let grpc = send(addr, grpc_request("/slow")).await;
    assert_eq!(grpc.status, 200, "{grpc:?}");
    assert_eq!(grpc.header("grpc-status"), Some("8"), "{grpc:?}");
    let pushback: u64 = grpc
        .header("grpc-retry-pushback-ms")
        .unwrap_or_else(|| panic!("no pushback: {grpc:?}"))
        .parse()
        .expect("pushback in milliseconds");
    assert!(pushback >= 1000, "{grpc:?}");
    assert!(
        grpc.header("content-type")
            .is_some_and(|v| v.starts_with("application/grpc")),
        "{grpc:?}"
    );
    assert!(grpc.body.is_empty(), "trailers-only: no body {grpc:?}");

    server.gate.release.add_permits(1);
    let second = bounded("the second reply", clients.join_next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.body, "done");
    assert_eq!(
        server.gate.count.load(Ordering::SeqCst),
        1,
        "only one request reached the handler"
    );

    until_idle(&server.limiter).await;
    let counts = server.limiter.snapshot().counts[Priority::Normal];
    assert_eq!((counts.admitted, counts.queue_full), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_shares_the_one_limit_of_the_router() {
    let mut server = serve().await;
    let addr = server.addr;
    let slow = tokio::spawn(send(addr, get_request("/slow")));
    bounded("/slow to reach the handler", server.entered.recv()).await;
    let other = send(addr, get_request("/other")).await;
    assert_plain_refusal(&other);
    server.gate.release.add_permits(1);
    let slow = bounded("the /slow reply", slow).await.unwrap();
    assert_eq!(slow.status, 200, "{slow:?}");
    until_idle(&server.limiter).await;

    // With the permit back, the other route is served.
    server.gate.release.add_permits(1);
    let other = send(addr, get_request("/other")).await;
    assert_eq!(other.status, 200, "{other:?}");
    until_idle(&server.limiter).await;
}

#[test]
fn the_layer_goes_under_router_layer_without_handle_error_layer() {
    let limiter = PriorityLimiter::builder().limit(4).build().unwrap();
    let _: Router = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(AdmissionLayer::new(limiter.clone()));
    let _: Router = Router::new()
        .route("/stream", get(|| async { "ok" }))
        .route_layer(AdmissionLayer::new(limiter).hold_until_body_end(true));
}
