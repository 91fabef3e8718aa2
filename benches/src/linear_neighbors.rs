//! The neighbor table tpa had before its neighbor cache (stages/src/
//! neighbor.rs until the cache replaced it): a vector of bindings scanned
//! linearly. Kept here only as the baseline of `benches/neighbors.rs`.

use tpa::wire::MacAddr;

/// One binding.
#[derive(Debug, Clone, Copy)]
pub struct Neighbor<A> {
    /// Its IP address.
    pub ip: A,
    /// Its link-layer address.
    pub mac: MacAddr,
    /// When it was last learned.
    pub updated_ns: u64,
}

/// Up to a fixed number of bindings, scanned linearly.
#[derive(Debug, Clone)]
pub struct LinearTable<A> {
    entries: Vec<Neighbor<A>>,
    capacity: usize,
}

impl<A: Copy + Eq> LinearTable<A> {
    /// An empty table of `capacity` bindings.
    pub fn new(capacity: usize) -> Self {
        LinearTable {
            entries: Vec::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
        }
    }

    /// A table of exactly these bindings (bench setup: `learn` one by one
    /// is quadratic).
    pub fn from_bindings(bindings: impl IntoIterator<Item = (A, MacAddr)>) -> Self {
        let entries: Vec<Neighbor<A>> = bindings
            .into_iter()
            .map(|(ip, mac)| Neighbor {
                ip,
                mac,
                updated_ns: 0,
            })
            .collect();
        LinearTable {
            capacity: entries.len().max(1),
            entries,
        }
    }

    /// The MAC address `ip` was last seen at.
    #[inline]
    pub fn lookup(&self, ip: A) -> Option<MacAddr> {
        self.entries.iter().find(|n| n.ip == ip).map(|n| n.mac)
    }

    /// Records that `ip` is at `mac`, evicting the stalest when full.
    pub fn learn(&mut self, ip: A, mac: MacAddr, now_ns: u64) {
        if let Some(n) = self.entries.iter_mut().find(|n| n.ip == ip) {
            n.mac = mac;
            n.updated_ns = now_ns;
            return;
        }
        let neighbor = Neighbor {
            ip,
            mac,
            updated_ns: now_ns,
        };
        if self.entries.len() < self.capacity {
            self.entries.push(neighbor);
        } else if let Some(stalest) = self.entries.iter_mut().min_by_key(|n| n.updated_ns) {
            *stalest = neighbor;
        }
    }
}
