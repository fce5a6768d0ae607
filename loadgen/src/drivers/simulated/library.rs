//! `limiter-core`'s algorithms and exact references as [`Engine`]s: their own pure
//! steps, on plain states the simulator owns, chosen at run time by
//! [`Kind::visit`](limiter_core::Kind::visit) and [`Reference::visit`] — no list of
//! algorithms here.

use limiter_core::algorithm::Visit;
use limiter_core::algorithm::reference::{Exact, VisitExact};
use limiter_core::algorithm::{Algorithm, Reference};
use limiter_core::{Kind, Nanos, Policy, Quota};

use super::engine::Engine;

/// A `limiter-core` algorithm as an [`Engine`].
pub(crate) struct Core<A>(A);

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

/// An exact reference as an [`Engine`]: it never refuses outright.
pub(crate) struct Perfect<R>(R);

impl<R: Exact> Engine for Perfect<R> {
    type State = R::State;
    const HAS_HEAP: bool = std::mem::needs_drop::<R::State>();

    fn state(&self) -> R::State {
        self.0.fresh()
    }

    #[inline]
    fn admit(
        &self,
        s: &mut R::State,
        now: Nanos,
        _: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error> {
        Ok(self.0.admit(s, now, cost))
    }

    fn inline_bytes(&self) -> usize {
        std::mem::size_of::<R::State>()
    }

    fn heap_bytes(&self, s: &R::State) -> usize {
        self.0.heap_bytes(s)
    }
}

/// A computation generic over the engine type.
pub(crate) trait PlayEngines {
    /// What it computes.
    type Output;
    /// Runs with `engines`, one per endpoint (owned: a trace replay keeps them).
    fn play<E: Engine>(self, engines: Vec<E>) -> Self::Output;
}

/// Calls `play` with one engine per quota for the algorithm `kind` (its default
/// parameters).
pub(crate) fn with_engines<P: PlayEngines>(kind: Kind, quotas: &[Quota], play: P) -> P::Output {
    struct Build<'a, P>(Kind, &'a [Quota], P);
    impl<P: PlayEngines> Visit for Build<'_, P> {
        type Output = P::Output;
        fn visit<A: Algorithm>(self) -> P::Output {
            let Build(kind, quotas, play) = self;
            let engines: Vec<Core<A>> = quotas
                .iter()
                .map(|q| Core(A::from_policy(&Policy::new(kind, *q))))
                .collect();
            play.play(engines)
        }
    }
    kind.visit(Build(kind, quotas, play))
}

/// Calls `play` with one exact reference per quota.
pub(crate) fn with_references<P: PlayEngines>(
    reference: Reference,
    quotas: &[Quota],
    play: P,
) -> P::Output {
    struct Build<'a, P>(&'a [Quota], P);
    impl<P: PlayEngines> VisitExact for Build<'_, P> {
        type Output = P::Output;
        fn visit<X: Exact>(self) -> P::Output {
            let Build(quotas, play) = self;
            let engines: Vec<Perfect<X>> = quotas.iter().map(|q| Perfect(X::new(q))).collect();
            play.play(engines)
        }
    }
    reference.visit(Build(quotas, play))
}
