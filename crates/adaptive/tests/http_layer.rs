//! The HTTP recording layer: cancellations past the objective or the
//! request's deadline are drops, streams are timed to their body's end, and
//! a gRPC status in the trailers is read.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use tokio::time::{Sleep, advance, sleep};
use tokio_test::{assert_pending, task};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_pressure_adaptive::{AdaptiveLimit, Aimd};
use tower_pressure_admission::PriorityLimiter;
use tower_pressure_core::Deadline;

/// Closes a window on every counted request.
fn driver() -> AdaptiveLimit {
    let limiter = PriorityLimiter::builder().limit(10).build().unwrap();
    let algorithm = Aimd::builder().initial_limit(10).build().unwrap();
    AdaptiveLimit::builder(algorithm, limiter.limit_handle())
        .min_window(Duration::ZERO)
        .min_samples(1)
        .build()
        .unwrap()
}

/// A body that sends one chunk after `delay`, then `trailers` if any.
struct SlowBody {
    sleep: Pin<Box<Sleep>>,
    sent: bool,
    trailers: Option<HeaderMap>,
}

impl SlowBody {
    fn new(delay: Duration, trailers: Option<HeaderMap>) -> SlowBody {
        SlowBody {
            sleep: Box::pin(sleep(delay)),
            sent: false,
            trailers,
        }
    }
}

impl Body for SlowBody {
    type Data = &'static [u8];
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if !this.sent {
            ready!(this.sleep.as_mut().poll(cx));
            this.sent = true;
            return Poll::Ready(Some(Ok(Frame::data(&b"chunk"[..]))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

/// Reads a body to its end.
async fn drain<B: Body + Unpin>(mut body: B) {
    while poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
        .await
        .is_some()
    {}
}

/// A service whose head comes after 10 ms and whose body takes `stream`.
fn streaming(
    stream: Duration,
    trailers: Option<HeaderMap>,
) -> impl Service<Request<()>, Response = Response<SlowBody>, Error = Infallible> + Clone {
    service_fn(move |_req: Request<()>| {
        let trailers = trailers.clone();
        async move {
            sleep(Duration::from_millis(10)).await;
            Ok::<_, Infallible>(Response::new(SlowBody::new(stream, trailers)))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_timed_to_the_end_of_its_body() {
    let adaptive = driver();
    let svc = adaptive
        .layer()
        .until_body_end(true)
        .layer(streaming(Duration::from_millis(500), None));
    let res = svc.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(adaptive.windows(), 0, "nothing recorded at the head");
    assert_eq!(adaptive.in_flight(), 1);
    drain(res.into_body()).await;
    let sample = adaptive.last_sample().unwrap();
    assert_eq!(sample.successes, 1);
    assert_eq!(sample.avg_rtt, Some(Duration::from_millis(510)));
    assert_eq!(adaptive.in_flight(), 0);

    // Timed to the head without it.
    let head = driver();
    let svc = head
        .layer()
        .layer(streaming(Duration::from_millis(500), None));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    assert_eq!(
        head.last_sample().unwrap().avg_rtt,
        Some(Duration::from_millis(10))
    );
    drain(res.into_body()).await;
}

#[tokio::test(start_paused = true)]
async fn an_overload_status_in_the_trailers_is_a_drop() {
    let adaptive = driver();
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "14".parse().unwrap());
    let svc = adaptive
        .layer()
        .until_body_end(true)
        .layer(streaming(Duration::from_millis(50), Some(trailers)));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    drain(res.into_body()).await;
    let sample = adaptive.last_sample().unwrap();
    assert_eq!((sample.successes, sample.dropped), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_request_cancelled_past_the_objective_is_a_drop_and_sooner_is_nothing() {
    let adaptive = driver();
    // The generic layer and the HTTP layer alike.
    let slow = service_fn(|_req: Request<()>| async {
        sleep(Duration::from_secs(10)).await;
        Ok::<_, Infallible>(Response::new(()))
    });
    let mut generic = adaptive.layer().layer(slow);
    let mut early = task::spawn(generic.call(Request::new(())));
    assert_pending!(early.poll());
    advance(Duration::from_millis(500)).await;
    drop(early);
    assert_eq!(
        adaptive.windows(),
        0,
        "cancelled within the objective (1 s)"
    );
    let mut late = task::spawn(generic.call(Request::new(())));
    assert_pending!(late.poll());
    advance(Duration::from_millis(1_500)).await;
    drop(late);
    let sample = adaptive.last_sample().unwrap();
    assert_eq!((sample.successes, sample.dropped), (0, 1));
    assert_eq!(adaptive.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_layer_judges_a_cancellation_by_the_requests_own_deadline() {
    let adaptive = driver();
    let slow = service_fn(|_req: Request<()>| async {
        sleep(Duration::from_secs(10)).await;
        Ok::<_, Infallible>(Response::new(()))
    });
    let mut svc = adaptive.layer().layer(slow);
    let mut req = Request::new(());
    req.extensions_mut()
        .insert(Deadline::after(Duration::from_millis(200)));
    let mut call = task::spawn(svc.call(req));
    assert_pending!(call.poll());
    advance(Duration::from_millis(300)).await;
    drop(call);
    let sample = adaptive.last_sample().unwrap();
    assert_eq!(sample.dropped, 1, "past its 200 ms deadline");
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_by_its_client_after_the_objective_is_a_drop() {
    let adaptive = driver();
    let svc = adaptive
        .layer()
        .until_body_end(true)
        .layer(streaming(Duration::from_secs(30), None));
    let res = svc.oneshot(Request::new(())).await.unwrap();
    advance(Duration::from_secs(2)).await;
    drop(res);
    let sample = adaptive.last_sample().unwrap();
    assert_eq!((sample.successes, sample.dropped), (0, 1));
    assert_eq!(adaptive.in_flight(), 0);
}
