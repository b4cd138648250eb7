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

/// One request in flight: counted out on drop, whatever happens; recorded
/// once, when it finishes, or as a drop if it is cancelled late.
pub(crate) struct Recording {
    shared: Arc<Shared>,
    started: Instant,
    in_flight: usize,
    /// From when a cancellation counts as a drop; `None`: never.
    late_at: Option<Instant>,
    recorded: bool,
}

impl Recording {
    /// A request starting now; a cancellation counts as a drop from
    /// `deadline` or the driver's cancel objective, whichever comes first.
    #[inline]
    pub(crate) fn start(shared: Arc<Shared>, deadline: Option<Instant>) -> Recording {
        let in_flight = shared.start();
        let started = Instant::now();
        let objective = shared.cancel_objective.and_then(|o| started.checked_add(o));
        let late_at = match (objective, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Recording {
            shared,
            started,
            in_flight,
            late_at,
            recorded: false,
        }
    }

    /// Records the request's outcome, timed to now.
    #[inline]
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.recorded = true;
        self.shared.record(self.started, self.in_flight, outcome);
        // `Drop` counts the request out.
    }
}

impl Drop for Recording {
    #[inline]
    fn drop(&mut self) {
        if !self.recorded && self.late_at.is_some_and(|at| Instant::now() >= at) {
            // Cancelled past its objective: the client gave up on a request
            // that was too slow. Leaving it out would censor the slowest
            // requests of an overload.
            self.shared
                .record(self.started, self.in_flight, Outcome::Dropped);
        }
        self.shared.end();
    }
}

pin_project! {
    /// The response future of [`Adaptive`](crate::Adaptive): the inner
    /// future, timed. Dropped before completion, it records a drop if the
    /// request ran past the driver's cancel objective, else nothing.
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
