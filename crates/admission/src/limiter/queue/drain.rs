//! The drain order: which waiter a free permit goes to — by priority,
//! first come first served, newest first, or in weighted fair turns — and,
//! while CoDel's mode is on, newest first within a class (adaptive LIFO).

use tower_pressure_core::Priority;

use super::State;
use crate::limiter::config::Drain;
use crate::limiter::list::List;

/// Smooth weighted round-robin credit per class, for [`Drain::WeightedFair`].
#[derive(Debug, Default)]
pub(super) struct Credit([f64; 5]);

impl Credit {
    /// The class whose waiter goes next, among the `classes` that wait:
    /// each earns its weight, the richest is served and pays the total.
    fn next(&mut self, classes: &[List; 5], weights: &[f64; 5]) -> Option<usize> {
        let credit = &mut self.0;
        let mut total = 0.0;
        let mut best: Option<usize> = None;
        for i in 0..classes.len() {
            if classes[i].is_empty() {
                continue;
            }
            credit[i] += weights[i];
            total += weights[i];
            if best.is_none_or(|b| credit[i] > credit[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        credit[b] -= total;
        Some(b)
    }

    /// Class `p` stopped waiting.
    pub(super) fn class_emptied(&mut self, p: Priority) {
        self.0[p.index()] = 0.0;
    }

    /// Nobody waits.
    pub(super) fn reset(&mut self) {
        self.0 = [0.0; 5];
    }
}

impl State {
    /// Whether a newcomer of `p` is served newest first: always under
    /// [`Drain::Lifo`]; under CoDel's mode, every class but `Critical`
    /// (which stays first come, first served).
    pub(super) fn lifo_for(&self, p: Priority) -> bool {
        self.config.drain == Drain::Lifo || (self.codel.on() && p != Priority::Critical)
    }

    /// The next waiter to admit.
    pub(super) fn pick(&mut self) -> Option<usize> {
        if self.all.is_empty() {
            return None;
        }
        let lifo = self.codel.on();
        let from_class = |list: &List| if lifo { list.tail() } else { list.head() };
        match self.config.drain {
            // `Critical` stays first come, first served: with its timeout
            // kept, LIFO would only let new Critical requests starve old ones.
            Drain::Priority => self.classes[Priority::Critical.index()]
                .head()
                .or_else(|| self.classes.iter().rev().skip(1).find_map(from_class)),
            Drain::Fifo if !lifo => self.all.head(),
            Drain::Fifo | Drain::Lifo => self.all.tail(),
            Drain::WeightedFair => {
                let b = self.credit.next(&self.classes, &self.config.weights)?;
                from_class(&self.classes[b])
            }
        }
    }
}
