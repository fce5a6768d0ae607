//! Which requests a limiter admitted: one bit per arrival.

/// Which requests a limiter admitted: one bit per arrival, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decisions {
    bits: Vec<u64>,
    len: usize,
}

impl Decisions {
    /// All rejected, for `len` arrivals.
    pub fn new(len: usize) -> Self {
        Self {
            bits: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Marks arrival `i` admitted.
    #[inline]
    pub fn admit(&mut self, i: usize) {
        self.bits[i / 64] |= 1 << (i % 64);
    }

    /// Whether arrival `i` was admitted.
    #[inline]
    pub fn admitted(&self, i: usize) -> bool {
        self.bits[i / 64] >> (i % 64) & 1 == 1
    }

    /// Admitted among all arrivals.
    pub fn count(&self) -> u64 {
        self.bits.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// Number of arrivals.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no arrivals.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_bits() {
        let mut d = Decisions::new(130);
        d.admit(0);
        d.admit(129);
        assert!(d.admitted(0) && d.admitted(129) && !d.admitted(64));
        assert_eq!(d.count(), 2);
        assert_eq!(d.len(), 130);
    }
}
