//! [`ResponseFuture`] of the recording service, and [`Pending`], a
//! request's recording still open.

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

/// A request's recording still open, handed to
/// [`Classify::respond`](crate::Classify::respond) when the layer times
/// successes to the end of the body: [`finish`](Self::finish) it there, or
/// drop it (a cancellation: a drop if it ran past its objective).
pub struct Pending(Recording);

impl Pending {
    /// Records the request's outcome, timed to now.
    pub fn finish(self, outcome: Outcome) {
        self.0.finish(outcome);
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

pin_project! {
    /// The response future of [`Adaptive`](crate::Adaptive): the inner
    /// future, timed. Dropped before completion, it records a drop if the
    /// request ran past its objective, else nothing.
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: F,
        recording: Option<Recording>,
        classifier: C,
        body_end: bool,
    }
}

impl<F, C> ResponseFuture<F, C> {
    #[inline]
    pub(crate) fn new(
        inner: F,
        recording: Option<Recording>,
        classifier: C,
        body_end: bool,
    ) -> Self {
        ResponseFuture {
            inner,
            recording,
            classifier,
            body_end,
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<C::Response, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut pending = None;
        if let Some(recording) = this.recording.take() {
            match this.classifier.classify(result.as_ref()) {
                // A success with a body still to come: timed to its end.
                Outcome::Success if *this.body_end => pending = Some(Pending(recording)),
                outcome => recording.finish(outcome),
            }
        }
        Poll::Ready(result.map(|res| this.classifier.respond(res, pending)))
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("recording", &self.recording.is_some())
            .field("body_end", &self.body_end)
            .finish_non_exhaustive()
    }
}
