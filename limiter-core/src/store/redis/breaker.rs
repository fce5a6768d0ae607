//! A circuit breaker, so that a dead Redis is not asked on every request.
//!
//! Closed: every call goes to Redis; `failure_threshold` failures in a row open it.
//! Open: no call goes to Redis for `open_for`; then the next call is let through as a
//! probe (half-open) while the others keep failing fast. The probe's success closes
//! the circuit, its failure opens it again. A probe that never reports (its caller went
//! away) is replaced after another `open_for`.

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
}
