//! A tonic voice service behind tower-pressure, over real HTTP/2.
//!
//! The stack is built with `ServiceBuilder` and put in front of every
//! service of a tonic `Server` with `Server::builder().layer(…)`:
//!
//! - [`rules`] classify by gRPC method: the standard `grpc.health.v1`
//!   service is `Critical`, `Transcribe` `High`, `StreamTranscript`
//!   `Normal`, `Export` `Bulk`;
//! - a `grpc-timeout` becomes the request's deadline, so a call whose
//!   deadline is shorter than its expected wait is refused at once, with
//!   pushback, rather than left to the client's own timer;
//! - a refusal is a trailers-only gRPC reply, `RESOURCE_EXHAUSTED` (or
//!   `UNAVAILABLE`) with `grpc-retry-pushback-ms`, never a bare HTTP 503;
//! - every answer carries an ORCA load report (`endpoint-load-metrics`):
//!   the admission limiter's in-flight and queue shares, for the balancers
//!   in front of a fleet;
//! - a stream holds its admission permit until its last message is sent,
//!   and its producer writes into a bounded channel: a client that stops
//!   reading stalls the producer (HTTP/2 flow control, then the channel)
//!   instead of growing a buffer.
//!
//! ```no_run
//! use grpc_server::{Settings, serve};
//! use tower_pressure::PriorityLimiter;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limiter = PriorityLimiter::builder().limit(16).max_queue(64).build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! serve(listener, Settings::new(limiter)).await?;
//! # Ok(()) }
//! ```

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};
use tower_pressure::http::{GrpcCode, Rejection};
use tower_pressure::{
    AdmissionLayer, ClassifyLayer, LoadReportLayer, Priority, PriorityLimiter, Rules,
};

/// The generated messages, client and server of `proto/voice.proto`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::allow_attributes_without_reason,
    reason = "generated code"
)]
pub mod pb {
    tonic::include_proto!("voice");
}

use pb::voice_server::{Voice, VoiceServer};
use pb::{ExportReply, ExportRequest, TranscribeReply, TranscribeRequest, TranscriptChunk};

/// Messages a stream's producer may run ahead of what the connection has
/// taken: past them it waits for the client.
pub const STREAM_BUFFER: usize = 4;

/// The classification of the service's calls.
///
/// # Panics
///
/// Never: the rules are fixed and valid.
#[must_use]
pub fn rules() -> Rules {
    Rules::builder()
        .grpc_service("grpc.health.v1.Health", Priority::Critical)
        .grpc_method("/voice.Voice/Transcribe", Priority::High)
        .grpc_method("/voice.Voice/StreamTranscript", Priority::Normal)
        .grpc_method("/voice.Voice/Export", Priority::Bulk)
        .default_priority(Priority::Normal)
        .build()
        .expect("the voice rules are valid")
}

/// How the server is protected.
#[derive(Debug, Clone)]
pub struct Settings {
    limiter: PriorityLimiter,
    code: GrpcCode,
    produced: Arc<AtomicUsize>,
}

impl Settings {
    /// Admission through `limiter`, refusing with `RESOURCE_EXHAUSTED`.
    #[must_use]
    pub fn new(limiter: PriorityLimiter) -> Self {
        Settings {
            limiter,
            code: GrpcCode::ResourceExhausted,
            produced: Arc::default(),
        }
    }

    /// The gRPC code of refusals. Default `RESOURCE_EXHAUSTED`.
    #[must_use]
    pub fn code(mut self, code: GrpcCode) -> Self {
        self.code = code;
        self
    }

    /// How many stream messages the server has produced so far (for
    /// watching a stream's backpressure).
    #[must_use]
    pub fn produced(&self) -> Arc<AtomicUsize> {
        self.produced.clone()
    }
}

/// The voice service: each call sleeps the work it asks for.
#[derive(Debug, Clone, Default)]
pub struct VoiceService {
    produced: Arc<AtomicUsize>,
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<TranscriptChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Voice for VoiceService {
    async fn transcribe(
        &self,
        request: Request<TranscribeRequest>,
    ) -> Result<Response<TranscribeReply>, Status> {
        let work = request.into_inner().work_ms;
        tokio::time::sleep(Duration::from_millis(work.into())).await;
        Ok(Response::new(TranscribeReply {
            text: format!("transcribed after {work} ms"),
        }))
    }

    type StreamTranscriptStream = ChunkStream;

    async fn stream_transcript(
        &self,
        request: Request<TranscribeRequest>,
    ) -> Result<Response<Self::StreamTranscriptStream>, Status> {
        let TranscribeRequest { work_ms, chunks } = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let produced = self.produced.clone();
        tokio::spawn(async move {
            for index in 0..chunks {
                if work_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(work_ms.into())).await;
                }
                let chunk = TranscriptChunk {
                    index,
                    text: "x".repeat(1024),
                };
                // Waits while the client is not reading; stops when it left.
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
                produced.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<Response<ExportReply>, Status> {
        let work = request.into_inner().work_ms;
        tokio::time::sleep(Duration::from_millis(work.into())).await;
        Ok(Response::new(ExportReply {
            bytes: u64::from(work) * 1024,
        }))
    }
}

/// Serves the voice service and the health service on `listener`, behind
/// the classification and the admission queue of `settings`.
///
/// # Errors
///
/// The transport's, if the server fails.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<VoiceServer<VoiceService>>().await;
    let voice = VoiceService {
        produced: settings.produced.clone(),
    };
    let stack = tower::ServiceBuilder::new()
        // Every answer tells the balancer how pressed this replica is.
        .layer(LoadReportLayer::new().limiter(settings.limiter.clone()))
        .layer(ClassifyLayer::new(rules()))
        .layer(
            AdmissionLayer::new(settings.limiter.clone())
                .hold_until_body_end(true)
                .rejection(Rejection::default().grpc_code(settings.code)),
        );
    tonic::transport::Server::builder()
        .layer(stack)
        .add_service(health)
        .add_service(VoiceServer::new(voice))
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await
}
