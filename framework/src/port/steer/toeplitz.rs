//! Toeplitz hashing with any key, and the RSS setup of a device.

use super::{Flow, L4};

/// The Toeplitz hash of `input` under `key`, as NICs compute it for RSS;
/// `None` when the key is shorter than the input plus 4 bytes.
pub fn toeplitz(key: &[u8], input: &[u8]) -> Option<u32> {
    if key.len() < input.len() + 4 {
        return None;
    }
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    let mut hash = 0;
    for (i, &byte) in input.iter().enumerate() {
        let next = key[i + 4];
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    Some(hash)
}

/// tpa's symmetric Toeplitz key, `0x6d5a` repeated, `len` bytes long:
/// swapping source and destination (addresses and ports) leaves the hash
/// unchanged, so both directions of a flow land on one queue. The key
/// [`MemoryWire`](crate::port::memory::MemoryWire) and tpa's steering
/// program hash with, and the one tpa programs into DPDK devices.
pub fn symmetric_key(len: usize) -> Vec<u8> {
    [0x6d, 0x5a].into_iter().cycle().take(len).collect()
}

/// Which flows a device's RSS hashes on what: addresses only, or addresses
/// and ports. A flow type hashed on neither is not spread by RSS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RssFields {
    /// IPv4 packets on their addresses.
    pub ipv4: bool,
    /// IPv4 TCP on addresses and ports.
    pub ipv4_tcp: bool,
    /// IPv4 UDP on addresses and ports.
    pub ipv4_udp: bool,
    /// IPv6 packets on their addresses.
    pub ipv6: bool,
    /// IPv6 TCP on addresses and ports.
    pub ipv6_tcp: bool,
    /// IPv6 UDP on addresses and ports.
    pub ipv6_udp: bool,
}

/// A device's receive-side scaling: the Toeplitz key, the redirection
/// table (RETA: hash modulo its length picks the entry, the entry is the
/// queue) and the hashed fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssTable {
    /// The Toeplitz key (40 or 52 bytes on most devices).
    pub key: Vec<u8>,
    /// Queue per hash bucket.
    pub reta: Vec<u16>,
    /// What is hashed.
    pub fields: RssFields,
}

impl RssTable {
    /// The RSS hash of `flow`; `None` when the device does not hash its
    /// flow type or the key is too short.
    pub fn hash(&self, flow: &Flow) -> Option<u32> {
        let v4 = flow.src.is_ipv4();
        let f = &self.fields;
        let (l4, l3) = match (v4, flow.proto) {
            (true, L4::Tcp) => (f.ipv4_tcp, f.ipv4),
            (true, L4::Udp) => (f.ipv4_udp, f.ipv4),
            (false, L4::Tcp) => (f.ipv6_tcp, f.ipv6),
            (false, L4::Udp) => (f.ipv6_udp, f.ipv6),
        };
        if !l4 && !l3 {
            return None;
        }
        toeplitz(&self.key, &flow.tuple(l4)?)
    }

    /// The queue `flow` lands on; `None` when the device does not spread
    /// it by hash or the table is empty.
    pub fn queue_of(&self, flow: &Flow) -> Option<u16> {
        let hash = self.hash(flow)?;
        let len = u32::try_from(self.reta.len()).ok().filter(|&n| n > 0)?;
        Some(self.reta[(hash % len) as usize])
    }
}
