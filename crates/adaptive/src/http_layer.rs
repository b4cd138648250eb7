//! [`HttpAdaptiveLayer`]: the recording layer for HTTP services, which can
//! time a streamed response to the end of its body.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_pressure_core::PriorityOf;
use tower_service::Service;

use crate::classify::grpc_drop;
use crate::future::Recording;
use crate::{AdaptiveLimit, Classify, HttpClassifier, Outcome};

/// The recording layer for `http` services: what
/// [`AdaptiveLayer`](crate::AdaptiveLayer) does, plus
///
/// - a request cancelled past **its own deadline** (the `Deadline` a
///   classifier set: the class objective, or what the client stated) counts
///   as a drop, when that is sooner than the driver's
///   [`cancel_objective`](crate::AdaptiveLimitBuilder::cancel_objective);
/// - with [`until_body_end`](Self::until_body_end), a successful response
///   is timed to the **end of its body**, not its head, and a gRPC status in
///   the body's trailers is classified like one in the head (`UNAVAILABLE`,
///   `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED` are drops). Use it where the
///   admission layer holds its permit to the body's end
///   ([`hold_until_body_end`]): the work of a stream is done while its body
///   is produced, and the limit should learn from that time, not from the
///   instant the head went out.
///
/// Made by [`AdaptiveLimit::http_layer`]; [`HttpAdaptiveLayer::disabled`]
/// records nothing and only wraps the body, for stacks that need one
/// service type with or without an adaptive limit.
///
/// [`hold_until_body_end`]: https://docs.rs/tower-pressure-admission/latest/tower_pressure_admission/struct.AdmissionLayer.html#method.hold_until_body_end
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{Layer, ServiceExt, service_fn};
/// use tower_pressure_adaptive::{AdaptiveLimit, Gradient2};
/// use tower_pressure_admission::PriorityLimiter;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let limiter = PriorityLimiter::builder().limit(20).build()?;
/// let adaptive = AdaptiveLimit::new(Gradient2::default(), limiter.limit_handle());
/// let layer = adaptive.http_layer().until_body_end(true);
/// let svc = layer.layer(service_fn(|_req: Request<String>| async {
///     Ok::<_, Infallible>(Response::new(String::from("a long stream")))
/// }));
/// let res = svc.oneshot(Request::new(String::new())).await?;
/// assert_eq!(adaptive.in_flight(), 1, "the body is not sent yet");
/// drop(res);
/// assert_eq!(adaptive.in_flight(), 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpAdaptiveLayer<C = HttpClassifier> {
    adaptive: Option<AdaptiveLimit>,
    classifier: C,
    body_end: bool,
}

impl HttpAdaptiveLayer {
    /// Records for `adaptive`, timing to the response head, classifying
    /// with [`HttpClassifier`].
    #[must_use]
    pub fn new(adaptive: AdaptiveLimit) -> Self {
        HttpAdaptiveLayer {
            adaptive: Some(adaptive),
            classifier: HttpClassifier,
            body_end: false,
        }
    }

    /// Records nothing; the responses' bodies are wrapped all the same.
    #[must_use]
    pub fn disabled() -> Self {
        HttpAdaptiveLayer {
            adaptive: None,
            classifier: HttpClassifier,
            body_end: false,
        }
    }
}

impl<C> HttpAdaptiveLayer<C> {
    /// Times a successful response to the end of its body (or until the
    /// body is dropped), and reads a gRPC status in its trailers. Default
    /// off: timed to the head.
    #[must_use]
    pub fn until_body_end(mut self, on: bool) -> Self {
        self.body_end = on;
        self
    }

    /// Classifies results with `classifier` instead.
    #[must_use]
    pub fn classifier<D>(self, classifier: D) -> HttpAdaptiveLayer<D> {
        HttpAdaptiveLayer {
            adaptive: self.adaptive,
            classifier,
            body_end: self.body_end,
        }
    }
}

impl<S, C: Clone> Layer<S> for HttpAdaptiveLayer<C> {
    type Service = HttpAdaptive<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpAdaptive {
            inner,
            adaptive: self.adaptive.clone(),
            classifier: self.classifier.clone(),
            body_end: self.body_end,
        }
    }
}

/// The service made by [`HttpAdaptiveLayer`].
#[derive(Debug, Clone)]
pub struct HttpAdaptive<S, C = HttpClassifier> {
    inner: S,
    adaptive: Option<AdaptiveLimit>,
    classifier: C,
    body_end: bool,
}

impl<S, C> HttpAdaptive<S, C> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, ReqB, ResB> Service<Request<ReqB>> for HttpAdaptive<S, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    C: Classify<Response<ResB>, S::Error> + Clone,
{
    type Response = Response<RecordingBody<ResB>>;
    type Error = S::Error;
    type Future = HttpResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let recording = self.adaptive.as_ref().map(|a| {
            let deadline = req.deadline().map(|d| d.instant());
            Recording::start(a.shared.clone(), deadline)
        });
        HttpResponseFuture {
            inner: self.inner.call(req),
            recording,
            classifier: self.classifier.clone(),
            body_end: self.body_end,
        }
    }
}

pin_project! {
    /// The response future of [`HttpAdaptive`].
    pub struct HttpResponseFuture<F, C> {
        #[pin]
        inner: F,
        recording: Option<Recording>,
        classifier: C,
        body_end: bool,
    }
}

impl<F, C, B, E> Future for HttpResponseFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    C: Classify<Response<B>, E>,
{
    type Output = Result<Response<RecordingBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let outcome = this
            .recording
            .as_ref()
            .map(|_| this.classifier.classify(result.as_ref()));
        let mut recording = this.recording.take();
        match outcome {
            // A success with a body still to come: timed to its end.
            Some(Outcome::Success) if *this.body_end => {}
            Some(outcome) => {
                if let Some(r) = recording.take() {
                    r.finish(outcome);
                }
            }
            None => {}
        }
        Poll::Ready(result.map(|res| res.map(|body| RecordingBody { body, recording })))
    }
}

impl<F, C> fmt::Debug for HttpResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponseFuture")
            .field("recording", &self.recording.is_some())
            .field("body_end", &self.body_end)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The body of a response through [`HttpAdaptive`]: the inner body,
    /// holding the request's recording until the body ends when the layer
    /// times to the body's end.
    pub struct RecordingBody<B> {
        #[pin]
        body: B,
        recording: Option<Recording>,
    }
}

impl<B> RecordingBody<B> {
    /// The inner body.
    pub fn into_inner(self) -> B {
        self.body
    }
}

/// An empty body, so that layers outside (memory shedding, CPU throttling)
/// can answer their refusals with this body type.
impl<B: Default> Default for RecordingBody<B> {
    fn default() -> Self {
        RecordingBody {
            body: B::default(),
            recording: None,
        }
    }
}

impl<B: Body> Body for RecordingBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        if this.recording.is_some() {
            match &frame {
                Some(Ok(f)) => {
                    if let Some(trailers) = f.trailers_ref()
                        && grpc_drop(trailers)
                        && let Some(r) = this.recording.take()
                    {
                        r.finish(Outcome::Dropped);
                    }
                }
                // The body ended: the stream's work is done.
                None => {
                    if let Some(r) = this.recording.take() {
                        r.finish(Outcome::Success);
                    }
                }
                // A broken body is a cancellation: a drop if it was late.
                Some(Err(_)) => drop(this.recording.take()),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> fmt::Debug for RecordingBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingBody")
            .field("recording", &self.recording.is_some())
            .finish_non_exhaustive()
    }
}
