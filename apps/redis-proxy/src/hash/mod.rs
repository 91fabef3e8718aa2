//! Key hashing and distribution: nutcracker's twelve hash functions, hash
//! tags, its ketama / modula / random distributions, and Redis Cluster's
//! CRC16 slots.

mod distribution;
mod functions;
mod md5;
mod tag;

pub use distribution::{Distribution, DistributionKind, ServerPoint};
pub use functions::{md5_hash, HashFunction};
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
