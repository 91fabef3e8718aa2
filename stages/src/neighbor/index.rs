//! The neighbor cache's hash index: IP address to entry slot, open
//! addressing with linear probing over a power-of-two table sized once at
//! construction (at most half full), backward-shift deletion (no
//! tombstones, so probe lengths stay short however long the cache runs).

use super::NeighborAddr;

/// A bucket: the key and the slot of its entry.
type Bucket<A> = Option<(A, u32)>;

/// Maps addresses to slots `0..capacity`.
#[derive(Debug, Clone)]
pub(crate) struct Index<A> {
    buckets: Box<[Bucket<A>]>,
    /// `64 - log2(buckets.len())`: the hash's top bits pick the bucket.
    shift: u32,
    seed: u64,
}

impl<A: NeighborAddr> Index<A> {
    /// An empty index for up to `capacity` keys.
    pub(crate) fn new(capacity: usize, seed: u64) -> Self {
        let len = (capacity.max(1) * 2).next_power_of_two().max(2);
        Index {
            buckets: vec![None; len].into_boxed_slice(),
            shift: 64 - len.trailing_zeros(),
            seed,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    #[inline]
    fn home(&self, key: A) -> usize {
        (key.hash_with(self.seed) >> self.shift) as usize
    }

    /// The slot of `key`.
    #[inline(always)]
    pub(crate) fn get(&self, key: A) -> Option<u32> {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            match self.buckets[i] {
                Some((k, slot)) if k == key => return Some(slot),
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
    }

    /// Records `key` at `slot`. The caller never inserts a key twice nor more
    /// keys than the capacity, so a free bucket is always found.
    pub(crate) fn insert(&mut self, key: A, slot: u32) {
        let mask = self.mask();
        let mut i = self.home(key);
        while self.buckets[i].is_some() {
            i = (i + 1) & mask;
        }
        self.buckets[i] = Some((key, slot));
    }

    /// Forgets `key`, shifting back the keys that probed past it.
    pub(crate) fn remove(&mut self, key: A) -> Option<u32> {
        let mask = self.mask();
        let mut i = self.home(key);
        let slot = loop {
            match self.buckets[i] {
                Some((k, slot)) if k == key => break slot,
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        };
        self.buckets[i] = None;
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while let Some((k, s)) = self.buckets[j] {
            let home = self.home(k);
            // `k` may move into the hole unless its home lies cyclically in
            // (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.buckets[hole] = Some((k, s));
                self.buckets[j] = None;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    #[test]
    fn inserts_and_removes_agree_with_a_hash_map() {
        // A tiny table, so that probes wrap and removals shift keys back.
        let mut index = Index::new(8, 7);
        let mut model = HashMap::new();
        let mut x: u32 = 1;
        for step in 0..10_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let key = Ipv4Addr::from(x % 24);
            if let Some(slot) = model.remove(&key) {
                assert_eq!(index.remove(key), Some(slot), "step {step}");
            } else if model.len() < 8 {
                index.insert(key, step);
                model.insert(key, step);
            }
            for k in 0..24 {
                let k = Ipv4Addr::from(k);
                assert_eq!(index.get(k), model.get(&k).copied(), "step {step}");
            }
        }
    }
}
