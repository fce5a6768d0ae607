//! Free loopback ports, picked below the kernel's ephemeral range so that no client
//! socket (a reconnecting Redis client, say) can take a server's port while it is
//! restarting.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Ports handed out by this process, never handed out twice.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A cluster node's bus port is its port plus this.
pub(crate) const BUS_OFFSET: u16 = 10_000;

/// A loopback port nothing listens on, not handed out before by this process.
pub fn free_port() -> u16 {
    let low = ephemeral_low();
    pick(low.saturating_sub(BUS_OFFSET).max(10_240)..low, false)
}

/// A port free together with its cluster bus port (`port + 10000`), both below 55535.
pub(crate) fn free_cluster_port() -> u16 {
    let low = ephemeral_low().min(55_535);
    let high = low.saturating_sub(BUS_OFFSET);
    let range = if high > 11_240 {
        10_240..high
    } else {
        10_240..45_535
    };
    pick(range, true)
}

fn pick(range: std::ops::Range<u16>, with_bus: bool) -> u16 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let state = RandomState::new();
    let span = u64::from(range.end - range.start);
    for _ in 0..10_000 {
        let r = state.hash_one((std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        let port = range.start + (r % span) as u16;
        let mut taken = TAKEN.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = taken.get_or_insert_with(HashSet::new);
        let ports = if with_bus {
            vec![port, port + BUS_OFFSET]
        } else {
            vec![port]
        };
        if ports.iter().any(|p| taken.contains(p)) || !ports.iter().all(|&p| is_free(p)) {
            continue;
        }
        taken.extend(ports);
        return port;
    }
    panic!("testkit: no free loopback port in {range:?}");
}

fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The first port of the kernel's ephemeral range (32768 on Linux by default).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .filter(|&low: &u16| low > 20_480)
        .unwrap_or(32_768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_free() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        assert!(is_free(a) && is_free(b));
        let c = free_cluster_port();
        assert!(c < 55_535 && is_free(c + BUS_OFFSET));
    }
}
