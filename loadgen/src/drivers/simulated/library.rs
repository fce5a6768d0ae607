//! `limiter-core`'s algorithms as [`Engine`]s: their own pure steps, on plain states
//! the simulator owns.

use std::marker::PhantomData;

use limiter_core::algorithm::Visit;
use limiter_core::{Algorithm, Kind, Nanos, Quota};

use super::engine::Engine;

/// A `limiter-core` algorithm as an [`Engine`].
pub(crate) struct Core<A>(A);

/// Calls `play` with one engine per quota for the algorithm `kind`.
pub(crate) fn with_engines<R>(kind: Kind, quotas: &[Quota], play: impl PlayEngines<R>) -> R {
    struct Build<'a, P, R>(&'a [Quota], P, PhantomData<fn() -> R>);
    impl<P: PlayEngines<R>, R> Visit for Build<'_, P, R> {
        type Output = R;
        fn visit<A: Algorithm>(self) -> R {
            let engines: Vec<Core<A>> = self.0.iter().map(|q| Core(A::new(*q))).collect();
            self.1.play(&engines)
        }
    }
    kind.visit(Build(quotas, play, PhantomData))
}

/// A computation generic over the engine type.
pub(crate) trait PlayEngines<R> {
    /// Runs with `engines`, one per endpoint.
    fn play<E: Engine>(self, engines: &[E]) -> R;
}

impl<A: Algorithm> Engine for Core<A> {
    type State = A::State;
    // States that own heap memory (the sliding log's entries) are the ones with a drop.
    const HAS_HEAP: bool = std::mem::needs_drop::<A::State>();

    fn state(&self) -> A::State {
        self.0.fresh()
    }

    #[inline]
    fn admit(
        &self,
        s: &mut A::State,
        now: Nanos,
        _: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error> {
        Ok(self.0.step(s, now, cost)?.allowed)
    }

    fn inline_bytes(&self) -> usize {
        // As `limiter-core`'s memory store holds it.
        std::mem::size_of::<A::Shared>()
    }

    fn heap_bytes(&self, s: &A::State) -> usize {
        self.0.heap_bytes(s)
    }
}
