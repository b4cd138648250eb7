//! [`Window`]: the sliding count of one priority's calls and acceptances.

/// One bucket's counts.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    requests: u64,
    accepts: u64,
}

/// Counts of calls (`requests`) and calls the service accepted (`accepts`)
/// over the last `n` buckets of time, kept as a ring of buckets with running
/// totals: reading the totals costs nothing, and each bucket boundary
/// crossed costs one subtraction.
///
/// Time is given as bucket numbers ("epochs") counted from the throttle's
/// start. Bucket `e` lives in slot `e % n`; the live epochs are
/// `(epoch - n, epoch]`, so a count made in epoch `e` is gone once epoch
/// `e + n` begins: after between `n - 1` and `n` bucket lengths.
#[derive(Debug)]
pub(crate) struct Window {
    buckets: Box<[Bucket]>,
    /// The latest epoch seen.
    epoch: u64,
    requests: u64,
    accepts: u64,
}

impl Window {
    /// An empty window of `n` buckets (at least 1).
    pub(crate) fn new(n: usize) -> Window {
        Window {
            buckets: vec![Bucket::default(); n.max(1)].into_boxed_slice(),
            epoch: 0,
            requests: 0,
            accepts: 0,
        }
    }

    /// Moves the window to `epoch`, dropping the buckets that fall out of
    /// it. An epoch earlier than the latest seen counts as the latest.
    pub(crate) fn advance(&mut self, epoch: u64) {
        if epoch <= self.epoch {
            return;
        }
        let n = self.buckets.len() as u64;
        let steps = (epoch - self.epoch).min(n);
        for e in (epoch - steps + 1)..=epoch {
            let slot = &mut self.buckets[(e % n) as usize];
            self.requests -= slot.requests;
            self.accepts -= slot.accepts;
            *slot = Bucket::default();
        }
        self.epoch = epoch;
    }

    /// Counts a call at `epoch`, accepted by the service or not.
    pub(crate) fn record(&mut self, epoch: u64, accepted: bool) {
        self.advance(epoch);
        let n = self.buckets.len() as u64;
        let slot = &mut self.buckets[(self.epoch % n) as usize];
        let a = u64::from(accepted);
        // No overflow: a count within one window would need 2^64 calls.
        slot.requests += 1;
        slot.accepts += a;
        self.requests += 1;
        self.accepts += a;
    }

    /// Calls counted in the window.
    pub(crate) fn requests(&self) -> u64 {
        self.requests
    }

    /// Accepted calls counted in the window.
    pub(crate) fn accepts(&self) -> u64 {
        self.accepts
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn counts_leave_the_window_after_n_buckets() {
        let mut w = Window::new(3);
        w.record(0, false);
        w.record(1, true);
        w.record(1, true);
        assert_eq!((w.requests(), w.accepts()), (3, 2));
        w.advance(2);
        assert_eq!((w.requests(), w.accepts()), (3, 2));
        w.advance(3);
        assert_eq!((w.requests(), w.accepts()), (2, 2), "epoch 0 is gone");
        w.advance(4);
        assert_eq!((w.requests(), w.accepts()), (0, 0), "epoch 1 is gone");
    }

    #[test]
    fn a_long_gap_empties_the_window() {
        let mut w = Window::new(4);
        for e in 0..4 {
            w.record(e, e % 2 == 0);
        }
        w.advance(1_000_000);
        assert_eq!((w.requests(), w.accepts()), (0, 0));
        w.record(1_000_000, true);
        assert_eq!((w.requests(), w.accepts()), (1, 1));
    }

    #[test]
    fn an_earlier_epoch_counts_as_the_latest() {
        let mut w = Window::new(2);
        w.record(5, false);
        w.record(3, false);
        w.advance(6);
        assert_eq!(w.requests(), 2);
        w.advance(7);
        assert_eq!(w.requests(), 0);
    }
}
