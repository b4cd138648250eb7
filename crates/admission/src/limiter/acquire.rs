//! [`Acquire`]: the future of [`PriorityLimiter::acquire`](super::PriorityLimiter::acquire).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};
use tower_pressure_core::{Event, Overloaded};

use super::queue::{Ask, Entered, Refusal};
use super::{AdmitRequest, Permit, Shared};
use crate::sync::{Arc, lock};

/// Waits for a [`Permit`]; see [`PriorityLimiter::acquire`](super::PriorityLimiter::acquire).
///
/// Dropping it leaves the queue at once and passes on a permit granted to it
/// in the meantime.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire {
    waiter: Waiter,
    ask: Ask,
    /// The queue timeout, allocated only once the request queues, so the
    /// fast path stays small and allocation-free.
    give_up: Option<Pin<Box<Sleep>>>,
}

/// The queue entry owned by one `Acquire`; dropping it cancels the entry.
struct Waiter {
    shared: Arc<Shared>,
    key: Option<usize>,
    started: bool,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared
                .with_wake(|st, now, wake| st.cancel(key, now, wake));
        }
    }
}

enum First {
    Admitted,
    Queued(usize, Instant),
    Refused(Refusal),
}

impl Acquire {
    pub(crate) fn new(shared: Arc<Shared>, request: AdmitRequest) -> Acquire {
        Acquire {
            waiter: Waiter {
                shared,
                key: None,
                started: false,
            },
            ask: Shared::ask(request),
            give_up: None,
        }
    }
}

impl Future for Acquire {
    type Output = Result<Permit, Overloaded>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Acquire` is `Unpin`: the timer is boxed.
        let this = self.get_mut();
        let w = &mut this.waiter;
        let ask = this.ask;
        let p = ask.priority;
        if !w.started {
            w.started = true;
            if let Some(permit) = Shared::try_fast_for(&w.shared, &ask) {
                return Poll::Ready(Ok(permit));
            }
            let mut eviction = None;
            let first = w.shared.with_wake(|st, now, wake| {
                let r = st.enqueue(ask, now, Some(cx.waker().clone()), wake);
                eviction = st.last_eviction.take();
                match r {
                    Ok(Entered::Admitted) => First::Admitted,
                    Ok(Entered::Queued(e)) => First::Queued(e.key, e.give_up_at),
                    Err(refusal) => First::Refused(refusal),
                }
            });
            if let Some((priority, by)) = eviction {
                w.shared.emit(|| Event::Evicted { priority, by });
            }
            match first {
                First::Admitted => {
                    let measure = w.shared.sample_hold(p);
                    return Poll::Ready(Ok(Permit::new(w.shared.clone(), p, measure)));
                }
                First::Refused(r) => return Poll::Ready(Err(w.shared.overloaded(p, r))),
                First::Queued(key, give_up_at) => {
                    w.key = Some(key);
                    this.give_up = Some(Box::pin(tokio::time::sleep_until(give_up_at)));
                }
            }
        }
        let key = w.key.expect("`Acquire` polled after it completed");
        let seen = lock(&w.shared.state).poll(key, cx.waker());
        let outcome = match seen {
            Some(outcome) => outcome,
            None => match this.give_up.as_mut().map(|s| s.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => lock(&w.shared.state).time_out(key, Instant::now()),
                _ => return Poll::Pending,
            },
        };
        // The entry is gone from the queue either way: nothing to cancel.
        w.key = None;
        Poll::Ready(match outcome {
            Ok(waited) => {
                w.shared.waited(p, waited);
                Ok(Permit::new(w.shared.clone(), p, true))
            }
            Err(r) => Err(w.shared.overloaded(p, r)),
        })
    }
}

impl std::fmt::Debug for Acquire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acquire")
            .field("priority", &self.ask.priority)
            .field("queued", &self.waiter.key.is_some())
            .finish()
    }
}
