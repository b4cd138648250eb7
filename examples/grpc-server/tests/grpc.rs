//! The voice service behind tower-pressure, called by a tonic client over
//! real HTTP/2 on loopback.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use grpc_server::pb::voice_client::VoiceClient;
use grpc_server::pb::{ExportRequest, TranscribeRequest};
use grpc_server::{STREAM_BUFFER, Settings, serve};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower_pressure::admission::PriorityLimiterBuilder;
use tower_pressure::http::GrpcCode;
use tower_pressure::{LimitControl, PriorityLimiter};

/// A server with `limiter` on a loopback port, and a channel to it.
async fn start(settings: Settings) -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, settings));
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn limiter(b: PriorityLimiterBuilder) -> PriorityLimiter {
    b.build().unwrap()
}

fn transcribe(work_ms: u32) -> TranscribeRequest {
    TranscribeRequest { work_ms, chunks: 0 }
}

/// The pushback of a refusal, in milliseconds.
fn pushback(status: &Status) -> u64 {
    status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .unwrap_or_else(|| panic!("no pushback in {status:?}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Two permits busy with High work for `work_ms`; returns their tasks.
fn occupy(channel: &Channel, work_ms: u32) -> Vec<tokio::task::JoinHandle<Result<(), Status>>> {
    (0..2)
        .map(|_| {
            let mut client = VoiceClient::new(channel.clone());
            tokio::spawn(async move { client.transcribe(transcribe(work_ms)).await.map(drop) })
        })
        .collect()
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_overload_health_checks_succeed_and_bulk_is_refused_with_pushback() {
    let limiter = limiter(PriorityLimiter::builder().limit(2).max_queue(2));
    let channel = start(Settings::new(limiter.clone())).await;
    let busy = occupy(&channel, 600);
    wait_until(|| limiter.snapshot().in_flight == 2).await;
    // Bulk exports: two wait, the rest find the queue full.
    let exports: Vec<_> = (0..4)
        .map(|_| {
            let mut client = VoiceClient::new(channel.clone());
            tokio::spawn(async move { client.export(ExportRequest { work_ms: 1 }).await })
        })
        .collect();
    wait_until(|| limiter.snapshot().counts[tower_pressure::Priority::Bulk].refused() >= 2).await;
    // A health check pushes a Bulk waiter out and is served.
    let mut health = HealthClient::new(channel.clone());
    let checked = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(checked.is_ok(), "{checked:?}");
    let mut refused = 0;
    for e in exports {
        match e.await.unwrap() {
            Ok(_) => {}
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(pushback(&status) > 0, "{status:?}");
                refused += 1;
            }
        }
    }
    assert!(refused >= 2, "only {refused} Bulk calls refused");
    for b in busy {
        b.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_can_be_unavailable_instead() {
    let limiter = limiter(PriorityLimiter::builder().limit(2).max_queue(1));
    let channel = start(Settings::new(limiter.clone()).code(GrpcCode::Unavailable)).await;
    let busy = occupy(&channel, 300);
    wait_until(|| limiter.snapshot().in_flight == 2).await;
    let mut waiting = VoiceClient::new(channel.clone());
    let waiter = tokio::spawn(async move { waiting.export(ExportRequest { work_ms: 1 }).await });
    wait_until(|| limiter.queue_len() == 1).await;
    let err = VoiceClient::new(channel.clone())
        .export(ExportRequest { work_ms: 1 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(pushback(&err) > 0);
    waiter.await.unwrap().unwrap();
    for b in busy {
        b.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_timeout_shorter_than_the_wait_is_refused_at_once_with_pushback() {
    let limiter = limiter(PriorityLimiter::builder().limit(2).max_queue(8));
    let channel = start(Settings::new(limiter.clone())).await;
    // Teach the limiter how long a call holds its permit.
    for b in occupy(&channel, 200) {
        b.await.unwrap().unwrap();
    }
    let busy = occupy(&channel, 400);
    wait_until(|| limiter.snapshot().in_flight == 2).await;
    let mut request = tonic::Request::new(transcribe(1));
    request.set_timeout(Duration::from_millis(100));
    let sent = Instant::now();
    let err = VoiceClient::new(channel.clone())
        .transcribe(request)
        .await
        .unwrap_err();
    let took = sent.elapsed();
    // The server's refusal, with pushback — not the client's own timer.
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(pushback(&err) > 0);
    assert!(took < Duration::from_millis(100), "refused after {took:?}");
    for b in busy {
        b.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_while_queued_frees_its_place() {
    let limiter = limiter(PriorityLimiter::builder().limit(2).max_queue(4));
    let channel = start(Settings::new(limiter.clone())).await;
    let busy = occupy(&channel, 500);
    wait_until(|| limiter.snapshot().in_flight == 2).await;
    let mut client = VoiceClient::new(channel.clone());
    let queued = tokio::spawn(async move { client.export(ExportRequest { work_ms: 1 }).await });
    wait_until(|| limiter.queue_len() == 1).await;
    queued.abort();
    // The stream's reset reaches the server, which drops the waiting call.
    wait_until(|| limiter.queue_len() == 0).await;
    assert_eq!(limiter.snapshot().in_flight, 2);
    for b in busy {
        b.await.unwrap().unwrap();
    }
    wait_until(|| limiter.snapshot().in_flight == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_holds_its_permit_to_its_last_message() {
    let limiter = limiter(PriorityLimiter::builder().limit(4));
    let channel = start(Settings::new(limiter.clone())).await;
    let mut client = VoiceClient::new(channel);
    let response = client
        .stream_transcript(TranscribeRequest {
            work_ms: 50,
            chunks: 4,
        })
        .await
        .unwrap();
    // The head carries the replica's load report: this stream holds one of
    // four permits.
    let report = response.metadata().get("endpoint-load-metrics").unwrap();
    assert_eq!(
        report.to_str().unwrap(),
        "TEXT application_utilization=0.25, named_metrics.queue=0"
    );
    let mut stream = response.into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.index, 0);
    assert_eq!(
        limiter.snapshot().in_flight,
        1,
        "the head went out, the stream goes on"
    );
    let mut n = 1;
    while stream.message().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 4);
    wait_until(|| limiter.snapshot().in_flight == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_stalls_the_producer() {
    let limiter = limiter(PriorityLimiter::builder().limit(4));
    let settings = Settings::new(limiter.clone());
    let produced = settings.produced();
    let channel = start(settings).await;
    let mut client = VoiceClient::new(channel);
    let mut stream = client
        .stream_transcript(TranscribeRequest {
            work_ms: 0,
            chunks: 100_000,
        })
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    // The client reads no more: HTTP/2 flow control (hyper's windows, a
    // few MiB of 1 KiB messages) and the server's channel bound what is
    // produced, far below the 100,000 asked for.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let early = produced.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = produced.load(Ordering::Relaxed);
    assert_eq!(early, late, "the producer kept going: {early} then {late}");
    let bound = (8 << 20) / 1024 + STREAM_BUFFER;
    assert!(
        late < bound,
        "{late} messages produced for a client that read one"
    );
    drop(stream);
    wait_until(|| limiter.snapshot().in_flight == 0).await;
}
