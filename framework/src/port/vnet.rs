//! The `virtio_net_hdr` that Linux's TAP devices (opened with
//! `IFF_VNET_HDR`) and packet sockets (with `PACKET_VNET_HDR`) put in
//! front of every frame, both ways: it carries the checksum and
//! segmentation work left to the other side.
//!
//! On transmit, tpa fills one from the device's plan for a packet
//! ([`HwOffload`]): `NEEDS_CSUM` with where the checksum starts and where
//! its field is, when the kernel is to finish the L4 checksum; `gso_type`
//! and `gso_size` when it is to cut a TCP super-segment. On receive, the
//! kernel's header says whether the checksum was left unfinished
//! (`NEEDS_CSUM`: the packet never left the machine, so its bytes are
//! intact) or already checked (`DATA_VALID`).
//!
//! The layout (linux/virtio_net.h, legacy header without `num_buffers`),
//! ten bytes in the host's byte order:
//!
//! ```text
//! flags: u8, gso_type: u8, hdr_len: u16, gso_size: u16,
//! csum_start: u16, csum_offset: u16
//! ```
//!
//! ```
//! use tpa::port::vnet::{VnetHeader, GsoType};
//! let h = VnetHeader { gso_type: GsoType::TcpV4, gso_size: 1448, ..VnetHeader::NONE };
//! assert_eq!(VnetHeader::decode(&h.encode()), Some(h));
//! ```

use super::offload::HwOffload;
use crate::buf::{L4Protocol, LayerOffsets, PacketBuf};
use crate::header::checksum;

/// Bytes of the header (`sizeof(struct virtio_net_hdr)`).
pub const LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum is to be finished from
/// `csum_start` with the result at `csum_start + csum_offset`.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was checked.
pub const F_DATA_VALID: u8 = 2;

/// What segmentation the frame asks for (`gso_type`, without the ECN bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoType {
    /// None: one frame, one packet.
    None,
    /// TCP over IPv4 (`VIRTIO_NET_HDR_GSO_TCPV4`).
    TcpV4,
    /// UDP fragmentation offload (`VIRTIO_NET_HDR_GSO_UDP`).
    Udp,
    /// TCP over IPv6 (`VIRTIO_NET_HDR_GSO_TCPV6`).
    TcpV6,
    /// UDP segmentation (`VIRTIO_NET_HDR_GSO_UDP_L4`).
    UdpL4,
}

impl GsoType {
    fn raw(self) -> u8 {
        match self {
            GsoType::None => 0,
            GsoType::TcpV4 => 1,
            GsoType::Udp => 3,
            GsoType::TcpV6 => 4,
            GsoType::UdpL4 => 5,
        }
    }

    fn from_raw(raw: u8) -> Option<GsoType> {
        // 0x80 is VIRTIO_NET_HDR_GSO_ECN, a modifier: CWR may be set on
        // the first segment. tpa's segments carry their ECN bits as built.
        Some(match raw & !0x80 {
            0 => GsoType::None,
            1 => GsoType::TcpV4,
            3 => GsoType::Udp,
            4 => GsoType::TcpV6,
            5 => GsoType::UdpL4,
            _ => return None,
        })
    }
}

/// One `virtio_net_hdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VnetHeader {
    /// [`F_NEEDS_CSUM`] and [`F_DATA_VALID`].
    pub flags: u8,
    /// The segmentation asked for.
    pub gso_type: GsoType,
    /// Bytes of the headers in front of the payload (Ethernet included).
    pub hdr_len: u16,
    /// The payload bytes of each segment.
    pub gso_size: u16,
    /// Where the checksummed bytes start, from the frame's first byte.
    pub csum_start: u16,
    /// Where the checksum field is, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHeader {
    /// Nothing to do: the frame is finished.
    pub const NONE: VnetHeader = VnetHeader {
        flags: 0,
        gso_type: GsoType::None,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// The header that asks the kernel for what a packet's transmit
    /// request (`meta().tx`, with `meta().layers` and the headers in the
    /// first segment) leaves to the device: the L4 checksum
    /// (`NEEDS_CSUM`) and TCP segmentation. The IPv4 header checksum is
    /// not the kernel's to fill: a TAP device must be given it done. A
    /// request whose headers cannot be read asks for nothing.
    pub fn for_request<B: PacketBuf>(buf: &B) -> VnetHeader {
        let mut h = VnetHeader::NONE;
        let meta = buf.meta();
        let (l3, l4) = (meta.layers.l3, meta.layers.l4);
        let Some(proto) = meta.tx.l4_checksum() else {
            return h;
        };
        if l3 == LayerOffsets::UNSET || l4 == LayerOffsets::UNSET {
            return h;
        }
        h.flags = F_NEEDS_CSUM;
        h.csum_start = l4;
        h.csum_offset = match proto {
            L4Protocol::Tcp => 16,
            L4Protocol::Udp => 6,
        };
        if let Some(mss) = meta.tx.tso_mss() {
            let data = buf.data();
            let version = data.get(usize::from(l3)).map(|b| b >> 4);
            let doff = data
                .get(usize::from(l4) + 12)
                .map(|b| u16::from(b >> 4) * 4);
            let (Some(version), Some(doff)) = (version, doff) else {
                return VnetHeader::NONE;
            };
            h.gso_type = if version == 6 {
                GsoType::TcpV6
            } else {
                GsoType::TcpV4
            };
            h.gso_size = mss;
            h.hdr_len = l4 + doff;
        }
        h
    }

    /// The ten bytes, in the host's byte order (what a TAP device expects
    /// unless told otherwise with `TUNSETVNETLE`/`TUNSETVNETBE`).
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0] = self.flags;
        out[1] = self.gso_type.raw();
        out[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        out
    }

    /// Reads a header; `None` for a `gso_type` Linux does not define.
    pub fn decode(bytes: &[u8; LEN]) -> Option<VnetHeader> {
        let u16_at = |at: usize| u16::from_ne_bytes([bytes[at], bytes[at + 1]]);
        Some(VnetHeader {
            flags: bytes[0],
            gso_type: GsoType::from_raw(bytes[1])?,
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// Whether the frame's L4 checksum needs no check: left unfinished by
    /// a sender on this machine (`NEEDS_CSUM`) or already checked
    /// (`DATA_VALID`).
    pub fn checksum_trusted(&self) -> bool {
        self.flags & (F_NEEDS_CSUM | F_DATA_VALID) != 0
    }
}

/// Leaves a packet's L4 checksum and segmentation to the kernel, for a
/// device that sends through a `virtio_net_hdr` (a port's
/// `TxDevice::mark_for_device`): the request is put back in `meta().tx`
/// for [`VnetHeader::for_request`] (a frame the device pushes back is
/// prepared again on the next burst, to the same bytes). The IPv4 header
/// checksum, which the kernel does not fill, is computed here, and a TSO
/// packet's TCP checksum field gets the L4 length into its pseudo-header
/// sum, the way Linux's `CHECKSUM_PARTIAL` has it.
pub(crate) fn mark_for_kernel<B: PacketBuf>(buf: &mut B, plan: &HwOffload) {
    let l3 = usize::from(plan.l2_len);
    let l4 = l3 + usize::from(plan.l3_len);
    if plan.ipv4_checksum {
        let data = buf.data_mut();
        data[l3 + 10..l3 + 12].fill(0);
        let sum = checksum::checksum(&data[l3..l4]);
        data[l3 + 10..l3 + 12].copy_from_slice(&sum.to_be_bytes());
    }
    if plan.tso_mss.is_some() {
        let l4_total = (buf.total_len() - l4) as u32; // < 64 KiB: an IP length
        let field = l4 + 16;
        let data = buf.data_mut();
        let seed = u32::from(u16::from_be_bytes([data[field], data[field + 1]]));
        let sum = seed + l4_total;
        let sum = ((sum & 0xffff) + (sum >> 16)) as u16;
        data[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    }
    let tx = &mut buf.meta_mut().tx;
    tx.clear();
    if let Some(proto) = plan.l4_checksum {
        tx.request_l4_checksum(proto);
    }
    if let Some(mss) = plan.tso_mss {
        tx.request_tso(mss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::buf::{BufferPool, Pool, PoolBuf};

    /// Ethernet + IPv4 or IPv6 + TCP with 12 bytes of options, no payload.
    fn packet(pool: &Pool, v6: bool) -> PoolBuf {
        let mut b = pool.alloc().unwrap();
        let l3_len = if v6 { 40 } else { 20 };
        b.extend_from_slice(&[0u8; 14]).unwrap();
        let mut ip = vec![0u8; l3_len];
        ip[0] = if v6 { 0x60 } else { 0x45 };
        b.extend_from_slice(&ip).unwrap();
        let mut tcp = [0u8; 32];
        tcp[12] = 8 << 4;
        b.extend_from_slice(&tcp).unwrap();
        b.meta_mut().layers = LayerOffsets {
            l2: 0,
            l3: 14,
            l4: 14 + l3_len as u16,
            payload: 14 + l3_len as u16 + 32,
        };
        b
    }

    #[test]
    fn a_tso_request_asks_for_tcp_segmentation_and_the_checksum() {
        let pool = Pool::with_capacity(4).unwrap();
        let mut b = packet(&pool, false);
        b.meta_mut()
            .tx
            .request_checksums(L4Protocol::Tcp)
            .request_tso(1448);
        assert_eq!(
            VnetHeader::for_request(&b),
            VnetHeader {
                flags: F_NEEDS_CSUM,
                gso_type: GsoType::TcpV4,
                hdr_len: 14 + 20 + 32,
                gso_size: 1448,
                csum_start: 34,
                csum_offset: 16,
            }
        );
        let mut b6 = packet(&pool, true);
        b6.meta_mut().tx.request_tso(1428);
        let h6 = VnetHeader::for_request(&b6);
        assert_eq!(
            (h6.gso_type, h6.hdr_len, h6.csum_start),
            (GsoType::TcpV6, 86, 54)
        );
        drop((b, b6));
        pool.assert_whole();
    }

    #[test]
    fn a_checksum_request_asks_for_no_segmentation() {
        let pool = Pool::with_capacity(4).unwrap();
        let mut b = packet(&pool, true);
        b.meta_mut().tx.request_l4_checksum(L4Protocol::Udp);
        assert_eq!(
            VnetHeader::for_request(&b),
            VnetHeader {
                flags: F_NEEDS_CSUM,
                csum_start: 54,
                csum_offset: 6,
                ..VnetHeader::NONE
            }
        );
        b.meta_mut().tx.clear();
        b.meta_mut().tx.request_ipv4_checksum();
        assert_eq!(VnetHeader::for_request(&b), VnetHeader::NONE);
        b.meta_mut().tx.request_l4_checksum(L4Protocol::Tcp);
        b.meta_mut().layers = LayerOffsets::default();
        assert_eq!(
            VnetHeader::for_request(&b),
            VnetHeader::NONE,
            "layers unset"
        );
        drop(b);
        pool.assert_whole();
    }

    #[test]
    fn encode_lays_out_linux_virtio_net_hdr() {
        let h = VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type: GsoType::TcpV6,
            hdr_len: 0x0102,
            gso_size: 0x0304,
            csum_start: 0x0506,
            csum_offset: 0x0708,
        };
        let b = h.encode();
        assert_eq!(&b[..2], &[1, 4]);
        assert_eq!(u16::from_ne_bytes([b[2], b[3]]), 0x0102);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 0x0304);
        assert_eq!(u16::from_ne_bytes([b[6], b[7]]), 0x0506);
        assert_eq!(u16::from_ne_bytes([b[8], b[9]]), 0x0708);
        assert_eq!(VnetHeader::decode(&b), Some(h));
    }

    #[test]
    fn decode_reads_every_gso_type_and_refuses_unknown_ones() {
        for (raw, t) in [
            (0, GsoType::None),
            (1, GsoType::TcpV4),
            (3, GsoType::Udp),
            (4, GsoType::TcpV6),
            (5, GsoType::UdpL4),
            (0x81, GsoType::TcpV4),
        ] {
            let mut b = [0u8; LEN];
            b[1] = raw;
            assert_eq!(
                VnetHeader::decode(&b).map(|h| h.gso_type),
                Some(t),
                "{raw:#x}"
            );
        }
        for raw in [2u8, 6, 0x7f, 0xff] {
            let mut b = [0u8; LEN];
            b[1] = raw;
            assert_eq!(VnetHeader::decode(&b), None, "{raw:#x}");
        }
    }

    #[test]
    fn only_needs_csum_and_data_valid_make_a_checksum_trusted() {
        let with = |flags| VnetHeader {
            flags,
            ..VnetHeader::NONE
        };
        assert!(!with(0).checksum_trusted());
        assert!(with(F_NEEDS_CSUM).checksum_trusted());
        assert!(with(F_DATA_VALID).checksum_trusted());
        assert!(!with(4).checksum_trusted());
    }
}
