//! How one set of limits decides: one limit on the single-limit fast path, or several
//! (a route's and the global ones) all-or-nothing, built taking over what a reload
//! keeps.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use limiter_core::RateLimiter;
use limiter_core::limits::{self, Limit, LimitSet, MultiLimiter};
use limiter_core::tower::{HeaderList, PolicyHeaders};

use super::table::Reuse;
use crate::Error;
use crate::config::LimitConfig;
use crate::metrics::Counter;
use crate::store::Stores;

/// How one set of limits decides: one limit on the single-limit fast path, or several
/// (the route's and the global ones) all-or-nothing.
#[derive(Debug)]
// A route holds a few of these for its lifetime: their size costs nothing, and boxing
// would add an indirection to every decision.
#[allow(clippy::large_enum_variant)]
pub(super) enum Limiting {
    /// One limit, no global ones: today's fast path.
    One {
        limiter: Arc<RateLimiter>,
        headers: Arc<PolicyHeaders>,
        /// The limit's own name, if it has one (else the route's).
        name: Option<String>,
    },
    /// Several limits, one decision.
    All {
        limiter: MultiLimiter,
        headers: Arc<HeaderList>,
        /// How many of the set's limits are the route's own (the global ones follow).
        own: usize,
        /// Requests each limit refused, in the set's order.
        refusals: Vec<Counter>,
        /// Requests of this set holding in-flight slots now (0 without in-flight limits).
        holding: Arc<AtomicI64>,
    },
}

/// What building a route needs besides its limits: the stores, what a reload keeps,
/// `--dry-run`, and whether its requests need an API key.
pub(super) struct Build<'a> {
    pub(super) stores: &'a Stores,
    pub(super) reuse: &'a Reuse,
    pub(super) dry_run: bool,
    pub(super) requires_key: bool,
}

impl Limiting {
    /// The limiter of `limits` (with `globals`); `route` names the short form's limit,
    /// `id` keeps this set's state apart from every other's.
    pub(super) fn new(
        limits: &[LimitConfig],
        route: &str,
        id: &str,
        globals: &[Limit],
        cx: &Build<'_>,
    ) -> Result<Self, Error> {
        let name = |l: &LimitConfig| l.name.clone().unwrap_or_else(|| route.to_owned());
        // One rate limit alone keeps the single-limit fast path; an in-flight limit
        // (which holds a permit) always decides as a set.
        if let ([one], []) = (limits, globals)
            && let Some(policy) = one.policy()
        {
            return Ok(Limiting::One {
                headers: Arc::new(PolicyHeaders::new(&name(one), &policy)),
                limiter: cx.reuse.single(id, &one.name, policy, cx.stores)?,
                name: one.name.clone(),
            });
        }
        let max_keys = cx.stores.max_keys();
        let set: Vec<Limit> = limits
            .iter()
            .map(|l| {
                let name = name(l);
                cx.reuse
                    .limit(&name, &format!("{id} {name}"), l.rule, max_keys)
            })
            .chain(globals.iter().cloned())
            .collect();
        let set = LimitSet::new(set)
            .map_err(|e| Error::Invalid(format!("route {route}: {}", e.report())))?;
        Ok(Limiting::All {
            refusals: (0..set.limits().len())
                .map(|_| Counter::default())
                .collect(),
            own: limits.len(),
            holding: Arc::new(AtomicI64::new(0)),
            headers: Arc::new(HeaderList::new(&set)),
            limiter: cx.stores.multi(set),
        })
    }

    /// Forgets idle in-memory keys; how many.
    pub(super) fn sweep(&self) -> usize {
        match self {
            Limiting::One { limiter, .. } => limiter.sweep(),
            Limiting::All { limiter, .. } => limiter.sweep(),
        }
    }

    /// Evictions and refusals of a one-limit in-memory store (or `local` fallback);
    /// `None` for several limits (their stores keep the key cap alone) and plain Redis.
    pub(super) fn memory_counters(&self) -> Option<limiter_core::store::StoreStats> {
        match self {
            Limiting::One { limiter, .. } => limiter.memory_counters(),
            Limiting::All { .. } => None,
        }
    }

    /// Keys held in memory (`None` on Redis).
    pub(super) fn memory_keys(&self) -> Option<usize> {
        match self {
            Limiting::One { limiter, .. } => limiter.memory_keys(),
            Limiting::All { limiter, own, .. } => limiter
                .is_memory()
                .then(|| limits::memory_keys(&limiter.set().limits()[..*own])),
        }
    }

    /// The algorithms, for the metrics' label (`gcra+sliding-window` for several).
    pub(super) fn algorithms(&self) -> String {
        match self {
            Limiting::One { limiter, .. } => limiter.policy().kind.name().to_owned(),
            Limiting::All { limiter, .. } => limiter
                .set()
                .limits()
                .iter()
                .map(|l| l.rule().name())
                .collect::<Vec<_>>()
                .join("+"),
        }
    }
}
