//! `max_connections_per_ip`: how many client connections one address may hold open, so
//! one client cannot take every connection slot (`max_connections`) from the others.
//!
//! IPv6 clients are counted by /64, the block one host is usually given: otherwise a
//! single machine could open each connection from another of its addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Open connections per client address, with a cap.
#[derive(Debug)]
pub struct PerIpConnections {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place in its address's count, given back when dropped.
#[derive(Debug)]
pub struct IpSlot {
    owner: Arc<PerIpConnections>,
    ip: IpAddr,
}

impl PerIpConnections {
    /// A cap of `max` connections per address (per /64 for IPv6).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a new connection from `ip`, or `None` when its address holds `max`.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let ip = group(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            owner: Arc::clone(self),
            ip,
        })
    }

    /// Connections open now from `ip`'s address (or /64).
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&group(ip)).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self
            .owner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The address a connection counts against: itself for IPv4 (and IPv4-mapped IPv6),
/// its /64 for IPv6.
fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_per_address_and_slots_come_back() {
        let cap = PerIpConnections::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = cap.admit(a).unwrap();
        let _s2 = cap.admit(a).unwrap();
        assert!(cap.admit(a).is_none());
        assert!(cap.admit(b).is_some());
        drop(s1);
        assert_eq!(cap.open(a), 1);
        assert!(cap.admit(a).is_some());
        // One IPv6 host's /64 is one address; the mapped form of an IPv4 is the IPv4.
        let v6 = PerIpConnections::new(1);
        let _x = v6.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(v6.admit("2001:db8:1:2:ffff::9".parse().unwrap()).is_none());
        assert!(v6.admit("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _m = v6.admit("::ffff:10.0.0.1".parse().unwrap()).unwrap();
        assert!(v6.admit(a).is_none());
    }
}
