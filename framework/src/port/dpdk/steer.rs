//! Steering on a DPDK device: tpa's RSS key and redirection table
//! programmed into the device where the driver has RSS, and read back so
//! that [`Steering`] answers with what is really in the device.
//!
//! The pure parts ([`RssLimits`], [`RssPlan`], [`reta_groups`],
//! [`reta_from_groups`], [`rss_fields`]) are public so that they can be
//! checked without a device that has RSS (no vdev has).

use std::sync::Arc;

use dpdk_sys as sys;

use crate::port::steer::{symmetric_key, RssFields, RssTable, Steering};

/// Entries of one RETA group (`RTE_ETH_RETA_GROUP_SIZE`).
const GROUP: usize = sys::RTE_ETH_RETA_GROUP_SIZE as usize;

/// The hash types tpa asks for: IP addresses, and TCP and UDP ports.
pub const RSS_HASH_TYPES: u64 = sys::RTE_ETH_RSS_IP | sys::RTE_ETH_RSS_TCP | sys::RTE_ETH_RSS_UDP;

/// What a device's `rte_eth_dev_info` says of its RSS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RssLimits {
    /// Hash types it can compute (`flow_type_rss_offloads`).
    pub hash_types: u64,
    /// Length of its Toeplitz key in bytes (`hash_key_size`; 0: it takes
    /// no key).
    pub key_size: u8,
    /// Entries of its redirection table (`reta_size`; 0: it has none).
    pub reta_size: u16,
    /// Receive queues it can have (`max_rx_queues`).
    pub max_rx_queues: u16,
}

impl RssLimits {
    /// The limits of `info`.
    pub fn from_info(info: &sys::rte_eth_dev_info) -> RssLimits {
        RssLimits {
            hash_types: info.flow_type_rss_offloads,
            key_size: info.hash_key_size,
            reta_size: info.reta_size,
            max_rx_queues: info.max_rx_queues,
        }
    }
}

/// Why tpa does not program RSS into a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRss {
    /// One queue: nothing to spread.
    OneQueue,
    /// More queues asked than the device has.
    TooManyQueues,
    /// The device hashes none of IP, TCP and UDP.
    NoHashTypes,
    /// The device takes no key (`hash_key_size` 0) or one too short for
    /// an IPv4 address pair with ports (16 bytes).
    NoKey,
    /// The device has no redirection table (`reta_size` 0) or one with
    /// fewer entries than queues.
    NoReta,
}

impl std::fmt::Display for NoRss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoRss::OneQueue => "one queue",
            NoRss::TooManyQueues => "more queues than the device has",
            NoRss::NoHashTypes => "the device hashes none of IP, TCP and UDP",
            NoRss::NoKey => "the device reports no usable RSS key size",
            NoRss::NoReta => "the device reports no usable redirection table",
        })
    }
}

/// The RSS setup tpa programs into a device with several receive queues:
/// its symmetric key (`0x6d5a` repeated, so both directions of a flow land
/// on one queue) at the device's key length, the hash types of IP, TCP
/// and UDP the device has, and a redirection table spreading the queues
/// round robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssPlan {
    /// The key, `hash_key_size` bytes.
    pub key: Vec<u8>,
    /// The hash types (`rss_hf`), a subset of the device's.
    pub hash_types: u64,
    /// The redirection table, `reta_size` entries, each below the queue
    /// count.
    pub reta: Vec<u16>,
}

impl RssPlan {
    /// The setup for `queues` receive queues on a device with `limits`, or
    /// why there is none.
    pub fn new(limits: &RssLimits, queues: u16) -> Result<RssPlan, NoRss> {
        if queues <= 1 {
            return Err(NoRss::OneQueue);
        }
        if queues > limits.max_rx_queues {
            return Err(NoRss::TooManyQueues);
        }
        let hash_types = limits.hash_types & RSS_HASH_TYPES;
        if hash_types == 0 {
            return Err(NoRss::NoHashTypes);
        }
        if limits.key_size < 16 {
            return Err(NoRss::NoKey);
        }
        if limits.reta_size < queues {
            return Err(NoRss::NoReta);
        }
        Ok(RssPlan {
            key: symmetric_key(usize::from(limits.key_size)),
            hash_types,
            reta: (0..limits.reta_size).map(|i| i % queues).collect(),
        })
    }

    /// The steering a device set up this way gives.
    pub fn table(&self) -> RssTable {
        RssTable {
            key: self.key.clone(),
            reta: self.reta.clone(),
            fields: rss_fields(self.hash_types),
        }
    }
}

/// The flow types a device hashing `hash_types` (`rss_hf`) spreads, and on
/// what.
pub fn rss_fields(hash_types: u64) -> RssFields {
    let has = |bit: u64| hash_types & bit != 0;
    RssFields {
        ipv4: has(sys::RTE_ETH_RSS_IPV4),
        ipv4_tcp: has(sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP),
        ipv4_udp: has(sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP),
        ipv6: has(sys::RTE_ETH_RSS_IPV6),
        ipv6_tcp: has(sys::RTE_ETH_RSS_NONFRAG_IPV6_TCP),
        ipv6_udp: has(sys::RTE_ETH_RSS_NONFRAG_IPV6_UDP),
    }
}

/// `reta` in the groups of 64 that `rte_eth_dev_rss_reta_update` takes,
/// each entry marked in its group's mask.
pub fn reta_groups(reta: &[u16]) -> Vec<sys::rte_eth_rss_reta_entry64> {
    let mut groups = empty_groups(reta.len());
    for (i, &queue) in reta.iter().enumerate() {
        let g = &mut groups[i / GROUP];
        g.reta[i % GROUP] = queue;
        g.mask |= 1 << (i % GROUP);
    }
    groups
}

/// Groups for querying a table of `size` entries: every entry marked.
fn query_groups(size: usize) -> Vec<sys::rte_eth_rss_reta_entry64> {
    let mut groups = empty_groups(size);
    for i in 0..size {
        groups[i / GROUP].mask |= 1 << (i % GROUP);
    }
    groups
}

fn empty_groups(size: usize) -> Vec<sys::rte_eth_rss_reta_entry64> {
    (0..size.div_ceil(GROUP))
        .map(|_| sys::rte_eth_rss_reta_entry64 {
            mask: 0,
            reta: [0; GROUP],
        })
        .collect()
}

/// The first `size` entries of a table read back from the device by
/// `rte_eth_dev_rss_reta_query`; `None` when the groups do not hold them
/// (too few groups, or an entry not marked in its group's mask).
pub fn reta_from_groups(groups: &[sys::rte_eth_rss_reta_entry64], size: usize) -> Option<Vec<u16>> {
    (0..size)
        .map(|i| {
            let g = groups.get(i / GROUP)?;
            (g.mask & (1 << (i % GROUP)) != 0).then_some(g.reta[i % GROUP])
        })
        .collect()
}

/// Programs `plan`'s redirection table into a started device.
pub(crate) fn program_reta(port_id: u16, plan: &RssPlan) -> Result<(), i32> {
    let mut groups = reta_groups(&plan.reta);
    // SAFETY: `groups` covers `reta.len()` entries, as the call reads.
    let rc = unsafe {
        sys::rte_eth_dev_rss_reta_update(port_id, groups.as_mut_ptr(), plan.reta.len() as u16)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(rc)
    }
}

/// The key, hash types and redirection table the device reports, or the
/// DPDK error of the first call that failed (`-ENOTSUP` where the driver
/// does not report them).
pub(crate) fn read_back(port_id: u16, limits: &RssLimits) -> Result<RssTable, i32> {
    if limits.key_size == 0 || limits.reta_size == 0 {
        return Err(-libc::ENOTSUP);
    }
    let mut key = vec![0u8; usize::from(limits.key_size)];
    let mut conf = sys::rte_eth_rss_conf {
        rss_key: key.as_mut_ptr(),
        rss_key_len: limits.key_size,
        rss_hf: 0,
    };
    // SAFETY: `conf.rss_key` has `rss_key_len` bytes of room.
    let rc = unsafe { sys::rte_eth_dev_rss_hash_conf_get(port_id, &mut conf) };
    if rc != 0 {
        return Err(rc);
    }
    key.truncate(usize::from(conf.rss_key_len));
    let size = usize::from(limits.reta_size);
    let mut groups = query_groups(size);
    // SAFETY: `groups` covers `reta_size` entries, as the call writes.
    let rc =
        unsafe { sys::rte_eth_dev_rss_reta_query(port_id, groups.as_mut_ptr(), limits.reta_size) };
    if rc != 0 {
        return Err(rc);
    }
    let reta = reta_from_groups(&groups, size).ok_or(-libc::EIO)?;
    Ok(RssTable {
        key,
        reta,
        fields: rss_fields(conf.rss_hf),
    })
}

/// The steering of a started device with `queues` queues: [`Steering::Rss`]
/// with the key and table the driver reports, [`Steering::Single`] for one
/// queue, [`Steering::Unknown`] when RSS is off or the driver does not
/// report its setup (no vdev here does). `plan` is what tpa programmed, to
/// warn when the device reports something else.
pub(crate) fn query(
    name: &str,
    port_id: u16,
    queues: u16,
    rss: bool,
    limits: &RssLimits,
    plan: Option<&RssPlan>,
) -> Steering {
    if queues == 1 {
        return Steering::Single;
    }
    if !rss {
        // Everything arrives on queue 0, but a frame elsewhere is possible
        // through flow rules: only the driver could say.
        return Steering::Unknown;
    }
    match read_back(port_id, limits) {
        Ok(table) => {
            if let Some(plan) = plan {
                if plan.table() != table {
                    tracing::warn!(device = %name, "the device reports another RSS key, hash types or RETA than tpa programmed; steering follows the device");
                }
            }
            Steering::Rss(Arc::new(table))
        }
        Err(rc) => {
            tracing::debug!(device = %name, rc, "RSS key or RETA not reported: steering unknown");
            Steering::Unknown
        }
    }
}

/// DPDK's own software Toeplitz (`rte_softrss`) of `input` (a whole number
/// of 32-bit words: addresses, then ports) under `key`; `None` when the
/// input is not whole words or the key is shorter than the input plus 4
/// bytes. For checking [`toeplitz`](crate::port::steer::toeplitz).
pub fn softrss(key: &[u8], input: &[u8]) -> Option<u32> {
    if !input.len().is_multiple_of(4) || key.len() < input.len() + 4 {
        return None;
    }
    let words: Vec<u32> = input
        .chunks_exact(4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    // SAFETY: `words` holds `words.len()` words; `key` has at least
    // 4 * (words + 1) bytes, all rte_softrss reads.
    Some(unsafe { sys::tpa_rte_softrss(words.as_ptr(), words.len() as u32, key.as_ptr()) })
}
