//! `limiter-core`'s algorithms as [`Engine`]s: their own pure steps, on plain states
//! the simulator owns.

use std::sync::PoisonError;

use limiter_core::{
    Algorithm, FixedWindow, Gcra, Kind, Nanos, Quota, SlidingLog, SlidingWindow, TokenBucket,
};

use super::engine::Engine;

/// A `limiter-core` algorithm as an [`Engine`].
pub(crate) struct Core<A>(A);

/// Calls `play` with one engine per quota for the algorithm `kind`.
pub(crate) fn with_engines<R>(kind: Kind, quotas: &[Quota], play: impl PlayEngines<R>) -> R {
    fn build<A: Algorithm>(quotas: &[Quota]) -> Vec<Core<A>> {
        quotas.iter().map(|q| Core(A::new(*q))).collect()
    }
    match kind {
        Kind::FixedWindow => play.play(&build::<FixedWindow>(quotas)),
        Kind::SlidingLog => play.play(&build::<SlidingLog>(quotas)),
        Kind::SlidingWindow => play.play(&build::<SlidingWindow>(quotas)),
        Kind::TokenBucket => play.play(&build::<TokenBucket>(quotas)),
        Kind::Gcra => play.play(&build::<Gcra>(quotas)),
    }
}

/// A computation generic over the engine type.
pub(crate) trait PlayEngines<R> {
    /// Runs with `engines`, one per endpoint.
    fn play<E: Engine>(self, engines: &[E]) -> R;
}

macro_rules! word_engine {
    ($($t:ty),*) => {$(
        impl Engine for Core<$t> {
            type State = u64;

            fn state(&self) -> u64 {
                self.0.new_state().into_inner()
            }

            #[inline]
            fn admit(&self, s: &mut u64, now: Nanos, _: Nanos, cost: u64) -> Result<bool, limiter_core::Error> {
                let (decision, next) = self.0.decide(*s, now, cost)?;
                if let Some(next) = next {
                    *s = next;
                }
                Ok(decision.allowed)
            }

            fn inline_bytes(&self) -> usize {
                std::mem::size_of::<<$t as Algorithm>::State>()
            }
        }
    )*};
}

word_engine!(FixedWindow, TokenBucket, Gcra);

impl Engine for Core<SlidingWindow> {
    type State = <SlidingWindow as Algorithm>::State;

    fn state(&self) -> Self::State {
        self.0.new_state()
    }

    #[inline]
    fn admit(
        &self,
        s: &mut Self::State,
        now: Nanos,
        _: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error> {
        // Exclusive access: no locking, just the counters inside.
        let counters = s.get_mut().unwrap_or_else(PoisonError::into_inner);
        let (decision, next) = self.0.decide(*counters, now, cost)?;
        if let Some(next) = next {
            *counters = next;
        }
        Ok(decision.allowed)
    }

    fn inline_bytes(&self) -> usize {
        std::mem::size_of::<Self::State>()
    }
}

impl Engine for Core<SlidingLog> {
    type State = <SlidingLog as Algorithm>::State;
    const HAS_HEAP: bool = true;

    fn state(&self) -> Self::State {
        self.0.new_state()
    }

    #[inline]
    fn admit(
        &self,
        s: &mut Self::State,
        now: Nanos,
        _: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error> {
        let log = s.get_mut().unwrap_or_else(PoisonError::into_inner);
        Ok(self.0.decide(log, now, cost)?.allowed)
    }

    fn inline_bytes(&self) -> usize {
        std::mem::size_of::<Self::State>()
    }

    fn heap_bytes(&self, s: &Self::State) -> usize {
        self.0.heap_bytes(s)
    }
}
