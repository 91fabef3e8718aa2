//! Steering on a DPDK device: its RSS key, redirection table and hashed
//! fields, as the driver reports them.

use std::sync::Arc;

use dpdk_sys as sys;

use crate::port::steer::{RssFields, RssTable, Steering};

/// The steering of a started device with `queues` queues, `rss` telling
/// whether RSS was enabled: [`Steering::Rss`] from the driver's key and
/// table, [`Steering::Single`] for one queue, [`Steering::Unknown`] when
/// the driver does not report them (no vdev here does).
pub(crate) fn query(port_id: u16, queues: u16, rss: bool) -> Steering {
    if queues == 1 {
        return Steering::Single;
    }
    if !rss {
        // Everything arrives on queue 0, but a frame elsewhere is possible
        // through flow rules: only the driver could say.
        return Steering::Unknown;
    }
    let mut key = [0u8; 255];
    let mut key_len = 0u8;
    let mut rss_hf = 0u64;
    let mut reta = vec![0u16; 512];
    let mut reta_len = 0u16;
    // SAFETY: every pointer is valid for the capacity passed with it.
    let rc = unsafe {
        sys::tpa_rss_query(
            port_id,
            key.as_mut_ptr(),
            key.len() as u8,
            &mut key_len,
            &mut rss_hf,
            reta.as_mut_ptr(),
            reta.len() as u16,
            &mut reta_len,
        )
    };
    if rc != 0 {
        tracing::debug!(
            port_id,
            rc,
            "RSS key or RETA not reported: steering unknown"
        );
        return Steering::Unknown;
    }
    reta.truncate(usize::from(reta_len));
    let has = |bit: u64| rss_hf & bit != 0;
    Steering::Rss(Arc::new(RssTable {
        key: key[..usize::from(key_len)].to_vec(),
        reta,
        fields: RssFields {
            ipv4: has(sys::RTE_ETH_RSS_IPV4),
            ipv4_tcp: has(sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP),
            ipv4_udp: has(sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP),
            ipv6: has(sys::RTE_ETH_RSS_IPV6),
            ipv6_tcp: has(sys::RTE_ETH_RSS_NONFRAG_IPV6_TCP),
            ipv6_udp: has(sys::RTE_ETH_RSS_NONFRAG_IPV6_UDP),
        },
    }))
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
