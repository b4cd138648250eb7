//! [`SplitMix`]: the small seeded random number generator the throttle draws
//! its refusals from and the retry policy its jitter.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

/// The increment of SplitMix64 (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", 2014): the state moves by a constant and each output is a
/// strong mix of the state. Because the state only moves by addition, one
/// atomic `fetch_add` makes it safe to share between threads without a
/// lock; every clone of a service draws from the one sequence.
#[derive(Debug)]
pub(crate) struct SplitMix {
    state: AtomicU64,
}

impl SplitMix {
    /// A generator whose sequence is fixed by `seed`.
    pub(crate) fn new(seed: u64) -> SplitMix {
        SplitMix {
            state: AtomicU64::new(seed),
        }
    }

    /// A generator seeded from the standard library's per-process random
    /// hash keys, mixed with the address of a stack value: different in
    /// every process and for every generator.
    pub(crate) fn from_entropy() -> SplitMix {
        let here = 0u8;
        let seed = RandomState::new().hash_one(std::ptr::from_ref(&here).addr());
        SplitMix::new(seed)
    }

    /// The generator seeded with `seed`, or from entropy.
    pub(crate) fn seeded(seed: Option<u64>) -> SplitMix {
        seed.map_or_else(SplitMix::from_entropy, SplitMix::new)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&self) -> u64 {
        let z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        mix(z)
    }

    /// A uniform draw in `[0, 1)` (53 random bits).
    pub(crate) fn next_f64(&self) -> f64 {
        // `as` is exact here: a value below 2^53 converts without rounding.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The SplitMix64 output function (a variant of MurmurHash3's finaliser).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::SplitMix;

    #[test]
    fn the_sequence_matches_the_reference_implementation() {
        // The first outputs of SplitMix64 seeded with 1234567, from the
        // reference C code (xoshiro's `splitmix64.c`).
        let rng = SplitMix::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn draws_are_in_the_unit_interval_and_spread_over_it() {
        let rng = SplitMix::new(7);
        let draws: Vec<f64> = (0..10_000).map(|_| rng.next_f64()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        // The mean of 10,000 uniform draws has a standard deviation of
        // 0.0029; 0.015 is five of them.
        assert!((mean - 0.5).abs() < 0.015, "mean {mean}");
    }

    #[test]
    fn generators_from_entropy_differ() {
        assert_ne!(
            SplitMix::from_entropy().next_u64(),
            SplitMix::from_entropy().next_u64()
        );
    }
}
