//! Receive-side scaling for the wire: which queue a frame lands on.
//!
//! The hash is Toeplitz over the IPv4/IPv6 addresses and, for TCP and UDP
//! (not fragments), the ports, with the symmetric key `0x6d5a` repeated: both
//! directions of a flow hash alike, so a connection stays on one worker.
//! Frames that are not IP get no hash and go to queue 0.

/// The symmetric key's period: 16 bits of `0x6d5a`, as a 64-bit window.
pub(crate) const KEY: u64 = 0x6d5a_6d5a_6d5a_6d5a;

/// `TABLE[i % 2][byte]`: the Toeplitz contribution of `byte` at input
/// position `i`. The key repeats every 16 bits, so two tables cover any input.
static TABLE: [[u32; 256]; 2] = build_table();

const fn build_table() -> [[u32; 256]; 2] {
    let mut t = [[0u32; 256]; 2];
    let mut parity = 0;
    while parity < 2 {
        let mut byte = 0;
        while byte < 256 {
            let mut acc = 0u32;
            let mut bit = 0;
            while bit < 8 {
                if byte & (0x80 >> bit) != 0 {
                    // The 32-bit key window starting at bit 8*parity + bit.
                    acc ^= ((KEY << (8 * parity + bit)) >> 32) as u32;
                }
                bit += 1;
            }
            t[parity][byte] = acc;
            byte += 1;
        }
        parity += 1;
    }
    t
}

/// Toeplitz hash of `input` under the symmetric key.
#[inline]
pub(crate) fn toeplitz(parts: &[&[u8]]) -> u32 {
    let mut h = 0;
    let mut i = 0;
    for part in parts {
        for &b in *part {
            h ^= TABLE[i & 1][b as usize];
            i += 1;
        }
    }
    h
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// The RSS hash of an Ethernet frame, or `None` if it carries no IP packet
/// (or is too short to tell).
pub(crate) fn frame_hash(frame: &[u8]) -> Option<u32> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes(frame.get(off..off + 2)?.try_into().ok()?);
    // Up to two VLAN tags.
    for _ in 0..2 {
        if ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
            off += 4;
            ethertype = u16::from_be_bytes(frame.get(off..off + 2)?.try_into().ok()?);
        }
    }
    let l3 = frame.get(off + 2..)?;
    match ethertype {
        ETHERTYPE_IPV4 => {
            let ihl = usize::from(*l3.first()? & 0x0f) * 4;
            if ihl < 20 || l3.len() < ihl {
                return None;
            }
            let fragmented = u16::from_be_bytes([l3[6], l3[7]]) & 0x3fff != 0;
            let addrs = &l3[12..20];
            let ports = (!fragmented && matches!(l3[9], PROTO_TCP | PROTO_UDP))
                .then(|| l3.get(ihl..ihl + 4))
                .flatten();
            Some(toeplitz(&[addrs, ports.unwrap_or(&[])]))
        }
        ETHERTYPE_IPV6 => {
            let hdr = l3.get(..40)?;
            let addrs = &hdr[8..40];
            let ports = matches!(hdr[6], PROTO_TCP | PROTO_UDP)
                .then(|| l3.get(40..44))
                .flatten();
            Some(toeplitz(&[addrs, ports.unwrap_or(&[])]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook bit-by-bit Toeplitz with any key, to check the tables.
    fn toeplitz_reference(key: &[u8], input: &[u8]) -> u32 {
        let bit = |i: usize| (key[i / 8] >> (7 - i % 8)) & 1;
        let mut h = 0u32;
        for (i, b) in input.iter().enumerate() {
            for j in 0..8 {
                if b & (0x80 >> j) != 0 {
                    let start = i * 8 + j;
                    let mut w = 0u32;
                    for k in 0..32 {
                        w = (w << 1) | u32::from(bit(start + k));
                    }
                    h ^= w;
                }
            }
        }
        h
    }

    #[test]
    fn reference_matches_the_microsoft_test_vector() {
        let key = [
            0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
        ];
        // 66.9.149.187:2794 -> 161.142.100.80:1766
        let input = [66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6];
        assert_eq!(toeplitz_reference(&key, &input), 0x51cc_c178);
    }

    #[test]
    fn tables_match_the_reference() {
        let key: Vec<u8> = [0x6d, 0x5a].repeat(26);
        let input: Vec<u8> = (0..36u8).map(|i| i.wrapping_mul(37) ^ 0x5c).collect();
        assert_eq!(toeplitz(&[&input]), toeplitz_reference(&key, &input));
        assert_eq!(toeplitz(&[&input[..7], &input[7..]]), toeplitz(&[&input]));
    }

    fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[14 + 9] = PROTO_UDP;
        f[14 + 12..14 + 16].copy_from_slice(&src);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn hash_is_symmetric_and_uses_ports() {
        let a = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80);
        let b = ipv4_udp([10, 0, 0, 2], [10, 0, 0, 1], 80, 1234);
        let c = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1235, 80);
        assert_eq!(frame_hash(&a), frame_hash(&b));
        assert_ne!(frame_hash(&a), frame_hash(&c));
        assert!(frame_hash(&a).is_some());
    }

    #[test]
    fn ipv6_is_symmetric() {
        let mut f = vec![0u8; 14 + 40 + 8];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f[14 + 6] = PROTO_TCP;
        for i in 0..16 {
            f[14 + 8 + i] = i as u8;
            f[14 + 24 + i] = 0xf0 | i as u8;
        }
        f[54..56].copy_from_slice(&5000u16.to_be_bytes());
        f[56..58].copy_from_slice(&443u16.to_be_bytes());
        let mut g = f.clone();
        g[14 + 8..14 + 24].copy_from_slice(&f[14 + 24..14 + 40]);
        g[14 + 24..14 + 40].copy_from_slice(&f[14 + 8..14 + 24]);
        g[54..56].copy_from_slice(&443u16.to_be_bytes());
        g[56..58].copy_from_slice(&5000u16.to_be_bytes());
        assert_eq!(frame_hash(&f), frame_hash(&g));
    }

    #[test]
    fn fragments_hash_on_addresses_only() {
        let mut a = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let mut b = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 3, 4);
        a[14 + 6] = 0x20; // more fragments
        b[14 + 6] = 0x20;
        assert_eq!(frame_hash(&a), frame_hash(&b));
    }

    #[test]
    fn non_ip_and_truncated_frames_have_no_hash() {
        assert_eq!(frame_hash(&[]), None);
        assert_eq!(frame_hash(&[0; 13]), None);
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(frame_hash(&arp), None);
        let v4 = ipv4_udp([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        for cut in 0..34 {
            assert_eq!(frame_hash(&v4[..cut]), None, "cut at {cut}");
        }
        // IPv4 header present but ports cut off: addresses only.
        assert!(frame_hash(&v4[..36]).is_some());
    }
}
