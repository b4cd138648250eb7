//! [`RecordingBody`]: an `http` response body that records its request at
//! its end.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::Outcome;
use crate::classify::grpc_drop;
use crate::future::Pending;

pin_project! {
    /// The body of an `http` response through the recording layer with
    /// [`HttpClassifier`](crate::HttpClassifier): the inner body, holding the
    /// request's recording until the body ends when the layer times to the
    /// body's end.
    pub struct RecordingBody<B> {
        #[pin]
        body: B,
        recording: Option<Pending>,
    }
}

impl<B> RecordingBody<B> {
    pub(crate) fn new(body: B, recording: Option<Pending>) -> Self {
        RecordingBody { body, recording }
    }

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
