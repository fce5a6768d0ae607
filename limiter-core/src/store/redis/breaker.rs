//! A circuit breaker, so that a dead Redis is not asked on every request.
//!
//! Closed: every call goes to Redis; `failure_threshold` failures in a row open it.
//! Open: no call goes to Redis for `open_for`; then the next call is let through as a
//! probe (half-open) while the others keep failing fast. The probe's success closes
//! the circuit, its failure opens it again. A probe that never reports (its caller went
//! away) is replaced after another `open_for`.
//!
//! One server has one breaker. A Redis Cluster has one per group of hash slots
//! ([`Breakers`]): a dead master opens the breakers of its slots only, and keys served by
//! the masters that stay up keep being decided by the store.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// When to stop asking a failing Redis, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerOptions {
    /// Consecutive failures (errors or timeouts) that open the circuit (default 3).
    pub failure_threshold: u32,
    /// How long an open circuit waits before probing Redis again (default 200 ms).
    pub open_for: Duration,
}

impl Default for BreakerOptions {
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            open_for: Duration::from_millis(200),
        }
    }
}

/// Whether calls go to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CircuitState {
    /// Every call goes to Redis.
    #[default]
    Closed,
    /// Calls fail fast without asking Redis.
    Open,
    /// One probe call is asking Redis; the others fail fast.
    HalfOpen,
}

#[derive(Debug)]
struct State {
    circuit: CircuitState,
    /// Open: when to probe. Half-open: when to give up on the probe and send another.
    until: Instant,
}

/// The breaker. A closed circuit costs two atomic reads per call; only failures and
/// transitions take the lock.
#[derive(Debug)]
pub(super) struct Breaker {
    opts: BreakerOptions,
    closed: AtomicBool,
    /// Consecutive failures.
    failures: AtomicU32,
    state: Mutex<State>,
    opened: AtomicU64,
}

/// Permission to call Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Permit {
    Normal,
    Probe,
}

impl Breaker {
    pub(super) fn new(opts: BreakerOptions) -> Self {
        Self {
            opts,
            closed: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            state: Mutex::new(State {
                circuit: CircuitState::Closed,
                until: Instant::now(),
            }),
            opened: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// May this call go to Redis? `Err` holds how long until the next probe.
    pub(super) fn admit(&self) -> Result<Permit, Duration> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(Permit::Normal);
        }
        let mut s = self.lock();
        if s.circuit == CircuitState::Closed {
            return Ok(Permit::Normal);
        }
        let now = Instant::now();
        if now < s.until {
            return Err(s.until - now);
        }
        if s.circuit == CircuitState::Open {
            tracing::info!("redis circuit half-open: probing");
        }
        s.circuit = CircuitState::HalfOpen;
        s.until = now + self.opts.open_for;
        Ok(Permit::Probe)
    }

    pub(super) fn success(&self, permit: Permit) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if permit == Permit::Probe {
            let mut s = self.lock();
            if s.circuit != CircuitState::Closed {
                s.circuit = CircuitState::Closed;
                self.closed.store(true, Ordering::Release);
                tracing::info!("redis circuit closed: the store answers again");
            }
        }
    }

    pub(super) fn failure(&self, permit: Permit, error: &crate::Error) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let mut s = self.lock();
        let open = match s.circuit {
            CircuitState::Closed => failures >= self.opts.failure_threshold.max(1),
            CircuitState::HalfOpen => permit == Permit::Probe,
            CircuitState::Open => false,
        };
        if open {
            s.circuit = CircuitState::Open;
            s.until = Instant::now() + self.opts.open_for;
            self.closed.store(false, Ordering::Release);
            self.opened.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                failures,
                retry_in = ?self.opts.open_for,
                error = %error.report(),
                "redis circuit open: not asking the store"
            );
        }
    }

    pub(super) fn state(&self) -> CircuitState {
        self.lock().circuit
    }

    pub(super) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

/// Hash slots per breaker on a cluster: 64 breakers of 256 slots. A master serves
/// contiguous slot ranges, so a dead master opens about its share of the breakers; a
/// group straddling two masters is the only collateral.
const SLOTS_PER_GROUP: u16 = 256;

/// The breakers of a store: one for a single server, one per group of hash slots for a
/// cluster (chosen by the key of the script call).
#[derive(Debug)]
pub(super) struct Breakers {
    groups: Box<[Breaker]>,
}

impl Breakers {
    /// One breaker for everything (a single server).
    pub(super) fn single(opts: BreakerOptions) -> Self {
        Self {
            groups: Box::new([Breaker::new(opts)]),
        }
    }

    /// One breaker per group of hash slots (a cluster).
    pub(super) fn cluster(opts: BreakerOptions) -> Self {
        let groups = 16_384 / SLOTS_PER_GROUP;
        Self {
            groups: (0..groups).map(|_| Breaker::new(opts)).collect(),
        }
    }

    /// The breaker guarding a script call: its first key's slot group (`EVALSHA sha
    /// numkeys key ...`; every key of one call shares a hash tag, so a slot). A call
    /// without a key, or on one server, has the first breaker.
    pub(super) fn for_call(&self, cmd: &redis::Cmd) -> &Breaker {
        if self.groups.len() == 1 {
            return &self.groups[0];
        }
        let group = match cmd.args_iter().nth(3) {
            Some(redis::Arg::Simple(key)) => super::key::slot(key) / SLOTS_PER_GROUP,
            _ => 0,
        };
        &self.groups[usize::from(group) % self.groups.len()]
    }

    /// Times any breaker opened.
    pub(super) fn opened(&self) -> u64 {
        self.groups.iter().map(Breaker::opened).sum()
    }

    /// The worst circuit: open if any is open, else half-open if any probes, else
    /// closed.
    pub(super) fn state(&self) -> CircuitState {
        let states = self.groups.iter().map(Breaker::state);
        states.fold(CircuitState::Closed, |worst, s| match (worst, s) {
            (CircuitState::Open, _) | (_, CircuitState::Open) => CircuitState::Open,
            (CircuitState::HalfOpen, _) | (_, CircuitState::HalfOpen) => CircuitState::HalfOpen,
            _ => CircuitState::Closed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_after_the_pause_and_closes_on_success() {
        let b = Breaker::new(BreakerOptions {
            failure_threshold: 2,
            open_for: Duration::from_millis(30),
        });
        let err = crate::Error::bad_reply("down".into());
        let p = b.admit().unwrap();
        b.failure(p, &err);
        assert_eq!(b.state(), CircuitState::Closed);
        b.failure(b.admit().unwrap(), &err);
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(35));
        let probe = b.admit().unwrap();
        assert_eq!(probe, Permit::Probe);
        assert!(b.admit().is_err(), "one probe at a time");
        b.failure(probe, &err);
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.opened(), 2);
        std::thread::sleep(Duration::from_millis(35));
        let probe = b.admit().unwrap();
        b.success(probe);
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.admit(), Ok(Permit::Normal));
    }

    fn evalsha(key: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg("0123").arg(1).arg(key).arg(5);
        cmd
    }

    #[test]
    fn a_cluster_opens_the_breakers_of_the_failing_slots_only() {
        let opts = BreakerOptions {
            failure_threshold: 1,
            open_for: Duration::from_secs(60),
        };
        let err = crate::Error::bad_reply("down".into());
        let cluster = Breakers::cluster(opts);
        // Slots 15495 ({a}) and 3300 ({b}): different groups, as on different masters.
        let (a, b) = (evalsha("ratelab:gcra:{a}"), evalsha("ratelab:gcra:{b}"));
        let breaker = cluster.for_call(&a);
        breaker.failure(breaker.admit().unwrap(), &err);
        assert!(cluster.for_call(&a).admit().is_err());
        assert!(std::ptr::eq(cluster.for_call(&evalsha("x:{a}")), breaker));
        assert_eq!(cluster.for_call(&b).admit(), Ok(Permit::Normal));
        assert_eq!((cluster.state(), cluster.opened()), (CircuitState::Open, 1));

        let single = Breakers::single(opts);
        let breaker = single.for_call(&a);
        breaker.failure(breaker.admit().unwrap(), &err);
        assert!(
            single.for_call(&b).admit().is_err(),
            "one server, one breaker"
        );
    }
}
