//! [`Gate`]: the lock-free part of the limiter — permits in flight, the
//! limit, and two flags that send everyone through the lock when the queue
//! or emergency mode needs it.
//!
//! One word holds `in_flight << 2 | EMERGENCY | WAITERS`. The fast paths
//! (admit when a permit is free and nobody waits; release when nobody waits)
//! are one compare-and-swap on it. Everything else happens under the queue's
//! mutex. A waiter joins the queue, raises `WAITERS`, then (still under the
//! lock) grants any permit that is free: a fast release that landed before
//! the flag is seen there, and one that comes after the flag fails its CAS
//! and goes through the lock to hand its permit over. While `WAITERS` is
//! set, only the lock holder changes the count.

use tower_pressure_core::Priority;

use crate::sync::{AtomicU64, AtomicUsize, Ordering};

/// Somebody waits in the queue: admissions and releases go through the lock.
const WAITERS: usize = 0b01;
/// Emergency mode: admissions go through the lock (which admits only `Critical`).
const EMERGENCY: usize = 0b10;
const FLAGS: usize = WAITERS | EMERGENCY;
/// Bits below the count.
const SHIFT: u32 = 2;
/// One permit in flight.
const ONE: usize = 1 << SHIFT;

#[derive(Debug)]
pub(crate) struct Gate {
    word: AtomicUsize,
    limit: AtomicUsize,
    /// Admissions so far, by priority; the fast path counts here too.
    admitted: [AtomicU64; 5],
}

impl Gate {
    pub(crate) fn new(limit: usize) -> Gate {
        Gate {
            word: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            admitted: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.word.load(Ordering::Acquire) >> SHIFT
    }

    #[inline]
    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// Sets the limit; only under the queue's lock.
    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Release);
    }

    pub(crate) fn admitted(&self, p: Priority) -> u64 {
        self.admitted[p.index()].load(Ordering::Relaxed)
    }

    /// Admissions so far, all classes.
    pub(crate) fn admitted_total(&self) -> u64 {
        self.admitted
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// Counts an admission of `p`; returns how many there have been.
    #[inline]
    pub(crate) fn count_admission(&self, p: Priority) -> u64 {
        self.admitted[p.index()].fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The fast path: takes a permit if one is free, nobody waits and no
    /// emergency is on.
    #[inline]
    pub(crate) fn try_fast(&self) -> bool {
        self.take_unless(FLAGS)
    }

    /// Takes a permit if one is free and none of the `blocking` flags is set.
    #[inline]
    fn take_unless(&self, blocking: usize) -> bool {
        let limit = self.limit();
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if cur & blocking != 0 || cur >> SHIFT >= limit {
                return false;
            }
            match self.word.compare_exchange_weak(
                cur,
                cur + ONE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The fast release: gives a permit back if nobody waits. `false` means
    /// somebody waits: release under the lock instead.
    #[inline]
    pub(crate) fn release_fast(&self) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if cur & WAITERS != 0 {
                return false;
            }
            debug_assert!(cur >> SHIFT > 0, "a permit came back that was never given");
            match self.word.compare_exchange_weak(
                cur,
                cur - ONE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Under the lock, with an empty queue: takes a permit if one is free,
    /// whatever the emergency flag (the caller checked the priority).
    pub(crate) fn admit_locked(&self) -> bool {
        self.take_unless(0)
    }

    /// Under the lock, while `WAITERS` is set: one more permit out.
    pub(crate) fn grant(&self) {
        self.word.fetch_add(ONE, Ordering::AcqRel);
    }

    /// Under the lock: one permit back.
    pub(crate) fn release(&self) {
        let prev = self.word.fetch_sub(ONE, Ordering::AcqRel);
        debug_assert!(prev >> SHIFT > 0, "a permit came back that was never given");
    }

    /// Under the lock, when a waiter joins.
    pub(crate) fn flag_waiters(&self) {
        self.word.fetch_or(WAITERS, Ordering::AcqRel);
    }

    /// Under the lock, when the queue empties.
    pub(crate) fn clear_waiters(&self) {
        self.word.fetch_and(!WAITERS, Ordering::AcqRel);
    }

    /// Under the lock.
    pub(crate) fn set_emergency(&self, on: bool) {
        if on {
            self.word.fetch_or(EMERGENCY, Ordering::AcqRel);
        } else {
            self.word.fetch_and(!EMERGENCY, Ordering::AcqRel);
        }
    }

    pub(crate) fn emergency(&self) -> bool {
        self.word.load(Ordering::Acquire) & EMERGENCY != 0
    }
}
