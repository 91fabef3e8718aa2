//! Key hashing and distribution: nutcracker's twelve hash functions, hash
//! tags, its ketama / modula / random distributions, and Redis Cluster's
//! CRC16 slots.

mod distribution;
mod functions;
mod md5;
mod tag;

pub use distribution::{Distribution, DistributionKind, ServerPoint};
pub use functions::{md5_hash, HashFunction};
pub(crate) use md5::md5;
pub use tag::{cluster_slot, crc16_xmodem, hash_tag_key, CLUSTER_SLOTS};

/// A pool's key → server mapping: hash function, optional hash tag and
/// distribution, as nutcracker's `server_pool_idx` applies them.
#[derive(Debug, Clone)]
pub struct KeyMapper {
    hash: HashFunction,
    hash_tag: Option<[u8; 2]>,
    distribution: Distribution,
    servers: usize,
}

impl KeyMapper {
    /// A mapper over `servers` (all live).
    pub fn new(
        hash: HashFunction,
        hash_tag: Option<[u8; 2]>,
        kind: DistributionKind,
        servers: &[ServerPoint],
    ) -> KeyMapper {
        KeyMapper {
            hash,
            hash_tag,
            distribution: Distribution::new(kind, servers),
            servers: servers.len(),
        }
    }

    /// The index of the server for `key`; `random_draw` is used only by the
    /// random distribution. `None` when the pool has no server.
    pub fn server_for(&self, key: &[u8], random_draw: u32) -> Option<u32> {
        if self.servers <= 1 {
            return if self.servers == 1 { Some(0) } else { None };
        }
        let key = match self.hash_tag {
            Some(tag) => hash_tag_key(key, tag),
            None => key,
        };
        // nutcracker hashes an empty key to 0 without calling the function.
        let hash = if key.is_empty() {
            0
        } else {
            self.hash.hash(key)
        };
        self.distribution.server_for(hash, random_draw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: usize) -> Vec<ServerPoint> {
        (0..n)
            .map(|i| ServerPoint {
                name: format!("10.0.0.{i}:6379"),
                weight: 1,
            })
            .collect()
    }

    #[test]
    fn random_spreads_evenly() {
        let mapper = KeyMapper::new(
            HashFunction::Md5,
            None,
            DistributionKind::Random,
            &points(4),
        );
        let mut counts = [0u32; 4];
        // A fixed xorshift sequence stands for the random draws.
        let mut draw: u32 = 0x9e37_79b9;
        for _ in 0..40_000 {
            draw ^= draw << 13;
            draw ^= draw >> 17;
            draw ^= draw << 5;
            counts[mapper.server_for(b"same key", draw).unwrap() as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn one_server_and_empty_keys() {
        let one = KeyMapper::new(
            HashFunction::Md5,
            None,
            DistributionKind::Ketama,
            &points(1),
        );
        assert_eq!(one.server_for(b"anything", 0), Some(0));
        let none = KeyMapper::new(HashFunction::Md5, None, DistributionKind::Ketama, &[]);
        assert_eq!(none.server_for(b"k", 0), None);
        let four = KeyMapper::new(
            HashFunction::Md5,
            None,
            DistributionKind::Modula,
            &points(4),
        );
        // nutcracker hashes an empty key to 0: the first slot.
        assert_eq!(four.server_for(b"", 7), Some(0));
    }

    #[test]
    fn hash_tag_routes_tagged_keys_together() {
        let mapper = KeyMapper::new(
            HashFunction::Fnv1a_64,
            Some(*b"{}"),
            DistributionKind::Ketama,
            &points(8),
        );
        let home = mapper.server_for(b"{user42}", 0);
        for key in [&b"a{user42}"[..], b"{user42}:name", b"zz{user42}{x}"] {
            assert_eq!(mapper.server_for(key, 0), home);
        }
    }
}
