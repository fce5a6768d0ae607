//! GCRA on Redis is the token bucket on Redis: the same script
//! (`token_bucket/bucket.lua`, whose state is GCRA's theoretical arrival time) with the
//! same two numbers per request, the policy's refill kept as an exact ratio of µs. (Its
//! emission interval rounded up to a whole µs and multiplied by the burst, as before,
//! made the tolerance of a quota refilling in fractions of a µs drift by up to one µs
//! per unit of burst: 38 minutes at the largest burst.)

pub(super) use crate::algorithm::token_bucket::redis::Mirror;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::mirror::Mirror as _;
    use crate::algorithm::{Kind, mirror::MAX_REPLY};
    use crate::limiter::Policy;
    use crate::quota::Quota;

    #[test]
    fn a_whole_microsecond_interval_decides_as_before() {
        // 5 per minute, burst 5: T = 12 s, tau = 60 s; a full bucket then a denial.
        let m = Mirror::new(&Policy::new(Kind::Gcra, Quota::per_minute(5).unwrap()));
        let d = m.decode(&[48_000_000], 1).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
        let d = m.decode(&[-60_000_001], 1).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after.as_secs(), 12);
        assert!(m.decode(&[0; MAX_REPLY], 1).is_none());
    }
}
