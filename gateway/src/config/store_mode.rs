//! `[store] mode` and `lease`: how gateway instances share a key on Redis, checked
//! against the store kind and every route's algorithm (a lease mode with an algorithm
//! that cannot lease is refused here, at the route's `algorithm`).

use gateway_contract::config::{LimitTable, Spanned, StoreTable};
use limiter_core::store::mode::{LeaseOptions, ModeError, StoreMode};

use super::validate::Cx;
use super::{ConfigError, RouteLimits, StoreConfig, StoreKind};

impl Cx<'_> {
    /// The mode `raw` names (default `exact`), with its lease parameters.
    pub(super) fn store_mode(
        &self,
        raw: &StoreTable,
        kind: &StoreKind,
    ) -> Result<StoreMode, ConfigError> {
        let mode = match &raw.mode {
            None => StoreMode::Exact,
            Some(m) => {
                let mode: StoreMode = m
                    .get_ref()
                    .parse()
                    .map_err(|e| self.err(m, "store.mode", e))?;
                if *kind == StoreKind::Memory && mode != StoreMode::Exact {
                    let message = "mode applies to the redis and redis-cluster stores \
                                   (a memory store is one instance's own)";
                    return Err(self.err(m, "store.mode", message));
                }
                mode
            }
        };
        let Some(table) = &raw.lease else {
            return Ok(mode);
        };
        let StoreMode::Lease(defaults) = mode else {
            let message = "`lease` applies to mode = \"lease\"";
            return Err(self.err(table, "store.lease", message));
        };
        let spanned = table;
        let table = table.get_ref();
        let max = match &table.max {
            Some(m) => self.positive(m, "store.lease.max")?,
            None => defaults.max,
        };
        let ttl = match &table.ttl {
            Some(t) => self.duration(t, "store.lease.ttl")?,
            None => defaults.ttl,
        };
        // Each refusal at the value it is about (or at the table, for a default).
        let lease = LeaseOptions::new(max, ttl).map_err(|e| {
            let (at, key) = match &e {
                ModeError::LeaseMax(_) => (table.max.as_ref().map(Spanned::span), "max"),
                _ => (table.ttl.as_ref().map(Spanned::span), "ttl"),
            };
            let span = at.unwrap_or_else(|| spanned.span());
            self.err_at(span, &format!("store.lease.{key}"), &e.to_string())
        })?;
        Ok(StoreMode::Lease(lease))
    }

    /// Refuses a route's limit the store's mode cannot enforce, at its `algorithm`. Only
    /// a route's one limit (with no `[[global]]` ones) runs in the store's mode; several
    /// limits are decided together in one exact script call.
    pub(super) fn mode_fits(
        &self,
        store: &StoreConfig,
        limits: &RouteLimits,
        raw: &LimitTable,
        table: &str,
        globals: usize,
    ) -> Result<(), ConfigError> {
        let ([one], 0) = (&limits.limits[..], globals) else {
            return Ok(());
        };
        // An in-flight limit always takes the several-limits path (exact).
        let Some(policy) = one.policy() else {
            return Ok(());
        };
        let Err(e) = store.mode.check(&policy) else {
            return Ok(());
        };
        let span = raw.algorithm.as_ref().map_or(0..0, Spanned::span);
        Err(self.err_at(span, &format!("{table}.algorithm"), &e.to_string()))
    }
}
