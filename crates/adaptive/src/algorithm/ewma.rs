//! An exponentially weighted moving average with a warm-up, as Netflix's
//! `ExpAvgMeasurement`: the first `warmup` values are averaged plainly, then
//! each new value weighs `2 / (window + 1)`.

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ewma {
    value: f64,
    seen: u32,
    warmup: u32,
    factor: f64,
}

impl Ewma {
    pub(crate) fn new(window: u32, warmup: u32) -> Ewma {
        Ewma {
            value: 0.0,
            seen: 0,
            warmup,
            factor: 2.0 / (f64::from(window) + 1.0),
        }
    }

    /// Folds `x` in and returns the new average.
    pub(crate) fn add(&mut self, x: f64) -> f64 {
        if self.seen < self.warmup {
            self.seen += 1;
            self.value += (x - self.value) / f64::from(self.seen);
        } else {
            self.value = self.value * (1.0 - self.factor) + x * self.factor;
        }
        self.value
    }

    /// Replaces the average.
    pub(crate) fn set(&mut self, x: f64) {
        self.value = x;
        self.seen = self.seen.max(1);
    }

    pub(crate) fn get(&self) -> Option<f64> {
        (self.seen > 0).then_some(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::Ewma;

    #[test]
    fn warmup_is_a_plain_mean_then_the_window_weighs_in() {
        let mut e = Ewma::new(9, 2);
        assert_eq!(e.get(), None);
        e.add(10.0);
        assert_eq!(e.add(20.0), 15.0);
        // factor 2 / (9 + 1) = 0.2
        assert!((e.add(25.0) - 17.0).abs() < 1e-9);
    }
}
