//! The simulator's randomness: xoshiro256++ seeded by SplitMix64, from `rand_xoshiro`,
//! whose output streams are stable by contract (a change of sequence is a breaking
//! release), plus the few draws the simulator makes from it.
//!
//! The simulator promises "same seed, same numbers" on every platform and with every
//! version of ratelab, so it does not use a generator whose algorithm a dependency may
//! change (rand's `StdRng` reserves that right), nor distributions whose sampling
//! method may change (rand's `gen_range`, `rand_distr`): the draws below — 53-bit
//! floats, Lemire's multiply-shift, the exponential by inversion, Walker's alias — are
//! written out here and pinned by tests. The generator is the one ratelab carried
//! before (`Rng::new` gives the same state and sequence), so every result is unchanged.

use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::{SplitMix64, Xoshiro256PlusPlus};

/// Multiplier that spreads stream numbers over the seed space (the golden ratio).
const STREAM_SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// A deterministic hash of `(seed, stream, index)`, for per-item draws that must not
/// depend on the order in which items are visited (a user's on/off phase, say): one
/// SplitMix64 step from a state mixing the three.
#[inline]
pub fn mix(seed: u64, stream: u64, index: u64) -> u64 {
    let s = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ index.rotate_left(32);
    SplitMix64::seed_from_u64(s).next_u64()
}

/// xoshiro256++ (`rand_xoshiro`): fast, 256 bits of state, passes BigCrush; not for
/// cryptography.
#[derive(Debug, Clone)]
pub struct Rng {
    inner: Xoshiro256PlusPlus,
}

impl Rng {
    /// A generator for `seed` and a named `stream`, so that independent uses of one seed
    /// (arrival times, user choice, gateway choice) do not share a sequence.
    pub fn new(seed: u64, stream: u64) -> Self {
        Self {
            inner: Xoshiro256PlusPlus::seed_from_u64(seed ^ stream.wrapping_mul(STREAM_SPREAD)),
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)` (Lemire's multiply-shift; `n` must be non-zero,
    /// and `0` is returned for `n == 0`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// An exponential variate with mean 1 (the gap between Poisson arrivals at rate 1).
    #[inline]
    pub fn exp1(&mut self) -> f64 {
        // 1 − u is in (0, 1], so the logarithm is finite.
        -(1.0 - self.unit()).ln()
    }
}

/// Walker's alias method: draws an index with probability proportional to its weight
/// in O(1), for user populations (Zipf over millions of users) and endpoint mixes.
#[derive(Debug, Clone)]
pub struct Alias {
    /// Acceptance threshold per slot, scaled to `u64`.
    accept: Vec<u64>,
    alias: Vec<u32>,
}

impl Alias {
    /// A sampler over `weights` (non-negative, finite, not all zero; at most `u32::MAX`
    /// entries). Returns `None` when the weights cannot form a distribution.
    pub fn new(weights: &[f64]) -> Option<Self> {
        let n = weights.len();
        if n == 0 || n > u32::MAX as usize {
            return None;
        }
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return None;
        }
        let total: f64 = weights.iter().sum();
        if !(total.is_finite() && total > 0.0) {
            return None;
        }
        let mut prob: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut alias = vec![0u32; n];
        let (mut small, mut large): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for (i, p) in prob.iter().enumerate() {
            if *p < 1.0 {
                small.push(i as u32);
            } else {
                large.push(i as u32);
            }
        }
        while let (Some(s), Some(l)) = (small.pop(), large.last().copied()) {
            alias[s as usize] = l;
            prob[l as usize] -= 1.0 - prob[s as usize];
            if prob[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is 1 up to rounding: always accept.
        for i in large.into_iter().chain(small) {
            prob[i as usize] = 1.0;
        }
        let accept = prob
            .iter()
            .map(|p| {
                if *p >= 1.0 {
                    u64::MAX
                } else {
                    (p * 18_446_744_073_709_551_616.0) as u64
                }
            })
            .collect();
        Some(Self { accept, alias })
    }

    /// Draws one index.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> u32 {
        let n = self.accept.len() as u64;
        if n == 1 {
            return 0;
        }
        let i = rng.below(n) as usize;
        let coin = rng.next_u64();
        if coin < self.accept[i] || self.accept[i] == u64::MAX {
            i as u32
        } else {
            self.alias[i]
        }
    }

    /// Number of outcomes.
    pub fn len(&self) -> usize {
        self.accept.len()
    }

    /// True when there are no outcomes (never, for a sampler `new` built).
    pub fn is_empty(&self) -> bool {
        self.accept.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written xoshiro256++ seeded by SplitMix64 that `rand_xoshiro` replaced,
    /// kept as the oracle: the crate must give the very same sequence, or every
    /// simulation result would change.
    struct HandWritten([u64; 4]);

    fn splitmix64(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    impl HandWritten {
        fn new(seed: u64, stream: u64) -> Self {
            let mut sm = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            Self([
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ])
        }

        fn next_u64(&mut self) -> u64 {
            let s = &mut self.0;
            let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
            let t = s[1] << 17;
            s[2] ^= s[0];
            s[3] ^= s[1];
            s[1] ^= s[2];
            s[0] ^= s[3];
            s[2] ^= t;
            s[3] = s[3].rotate_left(45);
            result
        }
    }

    #[test]
    fn the_crate_gives_the_sequence_ratelab_always_had() {
        for (seed, stream) in [(0, 0), (1, 0), (1, 1), (42, 7), (u64::MAX, 3)] {
            let mut ours = Rng::new(seed, stream);
            let mut theirs = HandWritten::new(seed, stream);
            for _ in 0..1000 {
                assert_eq!(
                    ours.next_u64(),
                    theirs.next_u64(),
                    "seed {seed} stream {stream}"
                );
            }
        }
        for (seed, stream, index) in [(0u64, 0u64, 0u64), (3, 9, 12), (u64::MAX, 1, u64::MAX)] {
            let mut s = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ index.rotate_left(32);
            assert_eq!(mix(seed, stream, index), splitmix64(&mut s));
        }
    }

    #[test]
    fn output_is_pinned() {
        // Changing these numbers changes every simulation result: don't.
        let mut r = Rng::new(1, 0);
        let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut again = Rng::new(1, 0);
        assert_eq!(first, (0..3).map(|_| again.next_u64()).collect::<Vec<_>>());
        assert_ne!(Rng::new(1, 1).next_u64(), first[0]);
        assert_ne!(Rng::new(2, 0).next_u64(), first[0]);
        assert_eq!(
            SplitMix64::seed_from_u64(0).next_u64(),
            0xE220_A839_7B1D_CDAF
        );
    }

    #[test]
    fn unit_and_below_stay_in_range() {
        let mut r = Rng::new(7, 0);
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(r.below(10) < 10);
            assert!(r.exp1().is_finite());
        }
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn alias_follows_the_weights() {
        let a = Alias::new(&[1.0, 0.0, 3.0]).unwrap();
        let mut r = Rng::new(3, 0);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[a.sample(&mut r) as usize] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((9_000..11_000).contains(&counts[0]), "{counts:?}");
        assert!((29_000..31_000).contains(&counts[2]), "{counts:?}");
        assert!(Alias::new(&[]).is_none());
        assert!(Alias::new(&[0.0]).is_none());
        assert!(Alias::new(&[f64::NAN]).is_none());
        assert_eq!(Alias::new(&[2.0]).unwrap().sample(&mut r), 0);
    }
}
