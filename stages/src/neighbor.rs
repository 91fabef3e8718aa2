//! A small neighbor table: which MAC address an IP address was last seen at.
//!
//! Filled by the ARP and NDP stages from the packets they receive. Sized once
//! at construction and never grown: when it is full, learning a new address
//! evicts the entry not refreshed for the longest time. Lookups scan the
//! entries linearly, which for the few dozen neighbors of a responder or a
//! host beats hashing.

use tpa::wire::MacAddr;

/// One learned neighbor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor<A> {
    /// Its IP address.
    pub ip: A,
    /// Its link-layer address.
    pub mac: MacAddr,
    /// When it was last learned or confirmed, in pipeline nanoseconds.
    pub updated_ns: u64,
}

/// What [`NeighborTable::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// The address was new; it took a free entry.
    Added,
    /// The address was new; it replaced the stalest entry.
    Evicted,
    /// The address was known with a different MAC, now replaced.
    Changed,
    /// The address was known with the same MAC; its time was refreshed.
    Refreshed,
}

/// Up to a fixed number of IP-to-MAC bindings for addresses of type `A`
/// (`Ipv4Addr` for ARP, `Ipv6Addr` for NDP).
///
/// ```
/// use std::net::Ipv4Addr;
/// use tpa::wire::MacAddr;
/// use tpa_stages::neighbor::{Learned, NeighborTable};
///
/// let mut table = NeighborTable::new(2);
/// let a = Ipv4Addr::new(192, 0, 2, 2);
/// assert_eq!(table.learn(a, MacAddr([2, 0, 0, 0, 0, 2]), 10), Learned::Added);
/// assert_eq!(table.lookup(a), Some(MacAddr([2, 0, 0, 0, 0, 2])));
/// ```
#[derive(Debug, Clone)]
pub struct NeighborTable<A> {
    entries: Vec<Neighbor<A>>,
    capacity: usize,
}

impl<A: Copy + Eq> NeighborTable<A> {
    /// An empty table holding at most `capacity` neighbors (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        NeighborTable {
            entries: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// The MAC address `ip` was last seen at.
    #[inline]
    pub fn lookup(&self, ip: A) -> Option<MacAddr> {
        self.entries.iter().find(|n| n.ip == ip).map(|n| n.mac)
    }

    /// Records that `ip` is at `mac`, as of `now_ns`.
    pub fn learn(&mut self, ip: A, mac: MacAddr, now_ns: u64) -> Learned {
        if let Some(n) = self.entries.iter_mut().find(|n| n.ip == ip) {
            let changed = n.mac != mac;
            n.mac = mac;
            n.updated_ns = now_ns;
            return if changed {
                Learned::Changed
            } else {
                Learned::Refreshed
            };
        }
        let neighbor = Neighbor {
            ip,
            mac,
            updated_ns: now_ns,
        };
        if self.entries.len() < self.capacity {
            self.entries.push(neighbor);
            return Learned::Added;
        }
        if let Some(stalest) = self.entries.iter_mut().min_by_key(|n| n.updated_ns) {
            *stalest = neighbor;
        }
        Learned::Evicted
    }

    /// Updates `ip` only if it is already known (RFC 826's rule for packets
    /// not addressed to us). Returns whether it was.
    pub fn refresh(&mut self, ip: A, mac: MacAddr, now_ns: u64) -> bool {
        match self.entries.iter_mut().find(|n| n.ip == ip) {
            Some(n) => {
                n.mac = mac;
                n.updated_ns = now_ns;
                true
            }
            None => false,
        }
    }

    /// Forgets `ip`; returns whether it was known.
    pub fn forget(&mut self, ip: A) -> bool {
        match self.entries.iter().position(|n| n.ip == ip) {
            Some(i) => {
                self.entries.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// The known neighbors, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Neighbor<A>> {
        self.entries.iter()
    }

    /// Number of known neighbors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no neighbor is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most neighbors the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, n)
    }
    fn mac(n: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, n])
    }

    #[test]
    fn learn_reports_what_changed() {
        let mut t = NeighborTable::new(4);
        assert_eq!(t.learn(ip(1), mac(1), 1), Learned::Added);
        assert_eq!(t.learn(ip(1), mac(1), 2), Learned::Refreshed);
        assert_eq!(t.learn(ip(1), mac(9), 3), Learned::Changed);
        assert_eq!(t.lookup(ip(1)), Some(mac(9)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_full_table_evicts_the_stalest_entry() {
        let mut t = NeighborTable::new(2);
        t.learn(ip(1), mac(1), 10);
        t.learn(ip(2), mac(2), 5);
        t.learn(ip(1), mac(1), 20);
        assert_eq!(t.learn(ip(3), mac(3), 30), Learned::Evicted);
        assert_eq!(t.lookup(ip(2)), None);
        assert_eq!(t.lookup(ip(1)), Some(mac(1)));
        assert_eq!(t.lookup(ip(3)), Some(mac(3)));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn refresh_only_touches_known_addresses() {
        let mut t = NeighborTable::new(2);
        assert!(!t.refresh(ip(1), mac(1), 1));
        assert!(t.is_empty());
        t.learn(ip(1), mac(1), 1);
        assert!(t.refresh(ip(1), mac(2), 2));
        assert_eq!(t.lookup(ip(1)), Some(mac(2)));
        assert!(t.forget(ip(1)));
        assert!(!t.forget(ip(1)));
    }
}
