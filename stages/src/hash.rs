//! The one hasher of the socket tables' maps (TCP's connections and
//! listeners, UDP's bindings): multiply-rotate over the key's words, keyed
//! by a seed, with a final mix so that the low bits a map indexes by depend
//! on every input. Lookups are on the receive path, where SipHash's cost
//! shows; a table whose keys peers choose (TCP's four-tuples) takes a
//! random seed, so they cannot aim at one bucket.

use std::hash::{BuildHasher, Hasher};

/// Builds [`SeededHasher`]s from one key. `Default` is key 0, for maps
/// whose keys are our own (UDP's bindings).
#[derive(Clone, Copy, Debug, Default)]
pub struct SeededHash {
    key: u64,
}

impl SeededHash {
    /// Hashes keyed by `key`.
    pub fn new(key: u64) -> Self {
        SeededHash { key }
    }
}

/// [`SeededHash`]'s hasher.
#[derive(Debug)]
pub struct SeededHasher(u64);

impl BuildHasher for SeededHash {
    type Hasher = SeededHasher;
    #[inline]
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher(self.key)
    }
}

impl Hasher for SeededHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A last mix, so the low bits the map uses depend on every input.
        let x = self.0 ^ (self.0 >> 29);
        x.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (x >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn the_seed_changes_every_hash_and_low_bits_spread() {
        let (a, b) = (SeededHash::new(1), SeededHash::new(2));
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let keys: Vec<(IpAddr, u16)> = (0..1024).map(|p| (ip, 5000 + p)).collect();
        assert!(keys.iter().all(|k| a.hash_one(k) != b.hash_one(k)));
        // Consecutive ports fill most of 1024 buckets by the low bits.
        let buckets: HashSet<u64> = keys.iter().map(|k| a.hash_one(k) & 1023).collect();
        assert!(buckets.len() > 600, "{}", buckets.len());
        assert_eq!(a.hash_one(keys[0]), a.hash_one(keys[0]));
    }
}
