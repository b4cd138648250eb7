//! [`ResponseFuture`] of the recording service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::limit::Shared;
use crate::{Classify, Outcome};

/// One request in flight: counted out on drop, whatever happens.
pub(crate) struct Recording {
    pub(crate) shared: Arc<Shared>,
    /// When it started and the weight of its latency, if it is timed.
    pub(crate) started: Option<(Instant, u64)>,
    pub(crate) in_flight: usize,
}

impl Recording {
    #[inline]
    fn finish(self, outcome: Outcome) {
        self.shared.record(self.started, self.in_flight, outcome);
        // `Drop` counts the request out.
    }
}

impl Drop for Recording {
    #[inline]
    fn drop(&mut self) {
        self.shared.end();
    }
}

pin_project! {
    /// The response future of [`Adaptive`](crate::Adaptive): the inner
    /// future, timed. Dropped before completion, it records nothing (the
    /// request is [`Outcome::Ignored`]).
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: F,
        recording: Option<Recording>,
        classifier: C,
    }
}

impl<F, C> ResponseFuture<F, C> {
    #[inline]
    pub(crate) fn new(inner: F, recording: Recording, classifier: C) -> Self {
        ResponseFuture {
            inner,
            recording: Some(recording),
            classifier,
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<T, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(recording) = this.recording.take() {
            recording.finish(this.classifier.classify(result.as_ref()));
        }
        Poll::Ready(result)
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("recording", &self.recording.is_some())
            .finish_non_exhaustive()
    }
}
