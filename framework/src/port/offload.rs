//! Transmit offloads: the checksums and TCP segmentation a packet asks for
//! in [`Meta::tx`](crate::buf::Meta::tx), done by the device where the port
//! offloads them and in software otherwise.
//!
//! A stage asks once, whatever the port:
//!
//! ```
//! use tpa::buf::{L4Protocol, LayerOffsets, PacketBuf, Pool};
//! use tpa::port::offload::{self, Prepared};
//! use tpa::port::Offloads;
//!
//! # let pool = Pool::with_capacity(8).unwrap();
//! let mut pkt = pool.alloc().unwrap();
//! // Ethernet + IPv4 (10.0.0.1 -> 10.0.0.2, UDP) + UDP 1234 -> 5678 + "hi",
//! // both checksums left at zero.
//! pkt.extend_from_slice(&[0u8; 12]).unwrap();
//! pkt.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 30, 0, 0, 0x40, 0, 64, 17, 0, 0,
//!     10, 0, 0, 1, 10, 0, 0, 2, 0x04, 0xd2, 0x16, 0x2e, 0, 10, 0, 0, b'h', b'i']).unwrap();
//! pkt.meta_mut().layers = LayerOffsets { l2: 0, l3: 14, l4: 34, payload: 42 };
//! pkt.meta_mut().tx.request_checksums(L4Protocol::Udp);
//! // What a port's transmit path does (here: a device without offloads).
//! assert_eq!(offload::prepare(&mut pkt, &Offloads::default()), Ok(Prepared::Done));
//! assert_eq!(tpa::header::checksum::checksum(&pkt.data()[14..34]), 0);
//! assert!(pkt.meta().tx.is_empty(), "the request is done");
//! # drop(pkt);
//! # tpa::buf::BufferPool::assert_whole(&pool);
//! ```
//!
//! Ports call one function in their transmit path, [`transmit`], through a
//! [`TxDevice`] that says what the device offloads, sends raw bursts and
//! (for devices that offload anything) marks a packet for the device. A
//! burst with no request, no chain the device cannot gather and no frame
//! too long for it costs one look at each packet, which also stands in for
//! the device's own length check ([`TxDevice::send_checked`]). Underneath:
//!
//! - [`prepare`]: one packet, in place: what the device offloads becomes an
//!   [`HwOffload`] plan (IPv4 checksum field zeroed, L4 checksum field seeded
//!   with the pseudo-header sum, the convention of DPDK and of Linux's
//!   `CHECKSUM_PARTIAL`); the rest is computed now.
//! - [`TsoSegments`]: software TSO, one new buffer per segment, no heap.
//!
//! A malformed request (layer offsets unset, headers cut short, lengths that
//! disagree) is an [`OffloadError`], never a panic; [`transmit`] drops such
//! packets and counts them in [`OffloadStats::malformed`].

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::buf::{linearize, L4Protocol, LayerOffsets, PacketBuf, TxRequest};
use crate::header::checksum::{self, Checksum};
use crate::port::{Burst, Offloads};

/// Why a transmit request cannot be carried out. The packet's bytes are
/// unchanged except for checksum fields already written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffloadError {
    /// `meta().layers` lacks the L3 or L4 offset, or L4 does not follow L3.
    LayersUnset,
    /// The headers the request needs run past the first segment.
    Truncated,
    /// The bytes at L3 are not an IPv4 or IPv6 header ending where L4
    /// starts, or the IPv4 checksum was asked of an IPv6 packet's TSO.
    NotIp,
    /// The IP length disagrees with the buffer or the headers, the UDP
    /// length with the IP length, or the TCP data offset is invalid.
    LengthMismatch,
    /// A TSO segment size of zero, or one whose segment does not fit a
    /// buffer from the allocator.
    BadMss,
    /// The allocator had no buffer for a TSO segment.
    NoBuffers,
}

impl core::fmt::Display for OffloadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            OffloadError::LayersUnset => "the packet's Meta lacks the L3/L4 offsets",
            OffloadError::Truncated => "headers run past the first segment",
            OffloadError::NotIp => "no IPv4/IPv6 header ending at the L4 offset",
            OffloadError::LengthMismatch => "IP/UDP/TCP lengths disagree with the packet",
            OffloadError::BadMss => "TSO segment size zero or too large for a buffer",
            OffloadError::NoBuffers => "no buffer for a TSO segment",
        })
    }
}

impl std::error::Error for OffloadError {}

/// The IP version of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Work left to the device for one packet, with the header lengths devices
/// need (DPDK's `l2_len`/`l3_len`/`l4_len`/`tso_segsz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwOffload {
    /// The IP version at L3.
    pub ip: IpVersion,
    /// Bytes before the IP header.
    pub l2_len: u16,
    /// IP header length, extension headers and options included.
    pub l3_len: u16,
    /// L4 header length (TCP options included; 8 for UDP).
    pub l4_len: u16,
    /// The device fills the IPv4 header checksum (the field is zeroed).
    pub ipv4_checksum: bool,
    /// The device finishes this L4 checksum (the field holds the
    /// pseudo-header sum; without its length under TSO).
    pub l4_checksum: Option<L4Protocol>,
    /// The device segments the TCP payload into this many bytes a segment.
    pub tso_mss: Option<u16>,
}

/// What [`prepare`] did with a packet's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// Nothing left to do: no request, or all of it done in software.
    Done,
    /// The device must do this; the rest was done in software.
    Hardware(HwOffload),
    /// TCP segmentation the device cannot do: cut the packet with
    /// [`TsoSegments`]. The packet is unchanged, its request kept.
    Segment {
        /// The segment payload size asked for.
        mss: u16,
    },
}

/// Offsets and lengths of a packet's IP and L4 headers, validated.
#[derive(Debug, Clone, Copy)]
struct Layout {
    ip: IpVersion,
    l3: usize,
    l4: usize,
    /// L4 header plus payload, from the IP length fields.
    l4_total: usize,
    /// The L4 header length (TCP data offset, 8 for UDP, 0 if no L4 asked).
    l4_header: usize,
}

const TCP_CHECKSUM_AT: usize = 16;
const UDP_CHECKSUM_AT: usize = 6;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

#[inline]
fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

#[inline]
fn put16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Locates and checks the headers `l4` (if any) needs.
fn layout<B: PacketBuf>(buf: &B, l4_proto: Option<L4Protocol>) -> Result<Layout, OffloadError> {
    let LayerOffsets { l3, l4, .. } = buf.meta().layers;
    if l3 == LayerOffsets::UNSET || l4 == LayerOffsets::UNSET || l4 <= l3 {
        return Err(OffloadError::LayersUnset);
    }
    let (l3, l4) = (usize::from(l3), usize::from(l4));
    let data = buf.data();
    let version = data.get(l3).ok_or(OffloadError::Truncated)? >> 4;
    let (ip, ip_end) = match version {
        4 => {
            if data.len() < l3 + 20 {
                return Err(OffloadError::Truncated);
            }
            let ihl = usize::from(data[l3] & 0x0f) * 4;
            if ihl < 20 || l3 + ihl != l4 {
                return Err(OffloadError::NotIp);
            }
            let total = usize::from(be16(data, l3 + 2));
            if total < ihl {
                return Err(OffloadError::LengthMismatch);
            }
            (IpVersion::V4, l3 + total)
        }
        6 => {
            if data.len() < l3 + 40 {
                return Err(OffloadError::Truncated);
            }
            if l4 < l3 + 40 {
                return Err(OffloadError::NotIp);
            }
            (IpVersion::V6, l3 + 40 + usize::from(be16(data, l3 + 4)))
        }
        _ => return Err(OffloadError::NotIp),
    };
    if ip_end < l4 || ip_end > buf.total_len() {
        return Err(OffloadError::LengthMismatch);
    }
    let l4_total = ip_end - l4;
    let l4_header = match l4_proto {
        None => 0,
        Some(L4Protocol::Udp) => {
            if data.len() < l4 + 8 {
                return Err(OffloadError::Truncated);
            }
            if usize::from(be16(data, l4 + 4)) != l4_total {
                return Err(OffloadError::LengthMismatch);
            }
            8
        }
        Some(L4Protocol::Tcp) => {
            if data.len() < l4 + 20 {
                return Err(OffloadError::Truncated);
            }
            let doff = usize::from(data[l4 + 12] >> 4) * 4;
            if doff < 20 || doff > l4_total {
                return Err(OffloadError::LengthMismatch);
            }
            if data.len() < l4 + doff {
                return Err(OffloadError::Truncated);
            }
            doff
        }
    };
    Ok(Layout {
        ip,
        l3,
        l4,
        l4_total,
        l4_header,
    })
}

/// The pseudo-header sum of the packet's IP header for `proto`, covering
/// `length` (none under TSO, where the device adds each segment's).
fn pseudo_sum(data: &[u8], lay: &Layout, proto: L4Protocol, length: Option<usize>) -> u16 {
    let number = match proto {
        L4Protocol::Tcp => PROTO_TCP,
        L4Protocol::Udp => PROTO_UDP,
    };
    let len = length.unwrap_or(0);
    let l3 = lay.l3;
    match lay.ip {
        IpVersion::V4 => {
            let a = |at: usize| Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3]);
            // layout() bounded the IPv4 length, hence len, to 16 bits.
            checksum::pseudo_header_v4(a(l3 + 12), a(l3 + 16), number, len as u16)
        }
        IpVersion::V6 => {
            let a = |at: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&data[at..at + 16]);
                Ipv6Addr::from(o)
            };
            checksum::pseudo_header_v6(&a(l3 + 8), &a(l3 + 24), number, len as u32)
        }
    }
}

/// Hands `visit` the pieces of bytes `start..start + len` of the packet, in
/// order over all segments, each with its offset from `start`.
fn for_each_piece<B: PacketBuf>(
    buf: &B,
    start: usize,
    len: usize,
    mut visit: impl FnMut(usize, &[u8]),
) {
    let end = start + len;
    let mut at = 0;
    for seg in buf.segments() {
        let (s, e) = (at, at + seg.len());
        at = e;
        if e <= start {
            continue;
        }
        if s >= end {
            break;
        }
        let (from, to) = (start.max(s), end.min(e));
        visit(from - start, &seg[from - s..to - s]);
    }
}

/// Adds bytes `start..start + len` of the packet, over all segments.
fn add_range<B: PacketBuf>(buf: &B, start: usize, len: usize, c: &mut Checksum) {
    for_each_piece(buf, start, len, |_, piece| c.add_bytes(piece));
}

/// Copies bytes `start..start + out.len()` of the packet, over all segments.
fn copy_range<B: PacketBuf>(buf: &B, start: usize, out: &mut [u8]) {
    for_each_piece(buf, start, out.len(), |at, piece| {
        out[at..at + piece.len()].copy_from_slice(piece)
    });
}

fn checksum_field(lay: &Layout, proto: L4Protocol) -> usize {
    lay.l4
        + match proto {
            L4Protocol::Tcp => TCP_CHECKSUM_AT,
            L4Protocol::Udp => UDP_CHECKSUM_AT,
        }
}

fn software_ipv4_checksum<B: PacketBuf>(buf: &mut B, lay: &Layout) {
    let data = buf.data_mut();
    put16(data, lay.l3 + 10, 0);
    let c = checksum::checksum(&data[lay.l3..lay.l4]);
    put16(data, lay.l3 + 10, c);
}

fn software_l4_checksum<B: PacketBuf>(buf: &mut B, lay: &Layout, proto: L4Protocol) {
    let field = checksum_field(lay, proto);
    put16(buf.data_mut(), field, 0);
    let mut c = Checksum::new();
    c.add_sum(pseudo_sum(buf.data(), lay, proto, Some(lay.l4_total)));
    add_range(buf, lay.l4, lay.l4_total, &mut c);
    let mut value = c.checksum();
    if value == 0 && proto == L4Protocol::Udp {
        // Zero means "no checksum" in UDP (RFC 768); all ones is the same sum.
        value = 0xffff;
    }
    put16(buf.data_mut(), field, value);
}

/// Carries out the packet's [`TxRequest`] in place: hands to the device
/// (as the returned [`HwOffload`] plan) what `hw` says it does, and
/// computes the rest now. The request is cleared unless the packet needs
/// software segmentation ([`Prepared::Segment`]).
///
/// Needs the final headers, `meta().layers` `l3` and `l4`, and the headers
/// in the first segment; software L4 checksums also need the final payload
/// (which may span segments). An IPv4 checksum request on an IPv6 packet is
/// satisfied by doing nothing.
pub fn prepare<B: PacketBuf>(buf: &mut B, hw: &Offloads) -> Result<Prepared, OffloadError> {
    let req = buf.meta().tx;
    if req.is_empty() {
        return Ok(Prepared::Done);
    }
    let lay = layout(buf, req.l4_checksum())?;
    let l4_header = lay.l4_header as u16; // <= 60 (TCP) or 8 (UDP)
    let mut plan = HwOffload {
        ip: lay.ip,
        l2_len: lay.l3 as u16,
        l3_len: (lay.l4 - lay.l3) as u16,
        l4_len: l4_header,
        ipv4_checksum: false,
        l4_checksum: None,
        tso_mss: None,
    };
    if let Some(mss) = req.tso_mss() {
        if mss == 0 {
            return Err(OffloadError::BadMss);
        }
        if lay.l4_total - lay.l4_header > usize::from(mss) {
            if !hw.tso {
                return Ok(Prepared::Segment { mss });
            }
            // The device rewrites every segment's headers: it fills the
            // IPv4 checksum and finishes the TCP one from a pseudo-header
            // sum without length.
            if lay.ip == IpVersion::V4 {
                put16(buf.data_mut(), lay.l3 + 10, 0);
                plan.ipv4_checksum = true;
            }
            let seed = pseudo_sum(buf.data(), &lay, L4Protocol::Tcp, None);
            put16(buf.data_mut(), checksum_field(&lay, L4Protocol::Tcp), seed);
            plan.l4_checksum = Some(L4Protocol::Tcp);
            plan.tso_mss = Some(mss);
            buf.meta_mut().tx.clear();
            return Ok(Prepared::Hardware(plan));
        }
        // It fits one segment: only the checksums are left.
    }
    if req.wants_ipv4_checksum() && lay.ip == IpVersion::V4 {
        if hw.ipv4_checksum {
            put16(buf.data_mut(), lay.l3 + 10, 0);
            plan.ipv4_checksum = true;
        } else {
            software_ipv4_checksum(buf, &lay);
        }
    }
    if let Some(proto) = req.l4_checksum() {
        let by_device = match proto {
            L4Protocol::Tcp => hw.tcp_checksum,
            L4Protocol::Udp => hw.udp_checksum,
        };
        if by_device {
            let seed = pseudo_sum(buf.data(), &lay, proto, Some(lay.l4_total));
            put16(buf.data_mut(), checksum_field(&lay, proto), seed);
            plan.l4_checksum = Some(proto);
        } else {
            software_l4_checksum(buf, &lay, proto);
        }
    }
    buf.meta_mut().tx.clear();
    if plan.ipv4_checksum || plan.l4_checksum.is_some() {
        Ok(Prepared::Hardware(plan))
    } else {
        Ok(Prepared::Done)
    }
}

/// Software TSO: cuts one TCP/IPv4 or TCP/IPv6 packet into segments of at
/// most `mss` payload bytes, each in a new buffer, one per call to
/// [`next_with`](Self::next_with); no heap allocation.
///
/// Every segment gets a copy of the headers (everything in front of the TCP
/// payload, options and IPv6 extension headers included) with the IPv4
/// total length and identification (+1 per segment) or the IPv6 payload
/// length fixed, the TCP sequence number advanced, FIN and PSH only on the
/// last segment and CWR only on the first. Its `meta()` is the original's
/// with `layers.payload` set and a [`TxRequest`] for the IPv4 (where there
/// is one) and TCP checksums, which [`prepare`] carries out, by the device
/// or in software. The urgent pointer is copied unchanged.
///
/// ```
/// # use tpa::buf::{L4Protocol, LayerOffsets, PacketBuf, Pool};
/// # use tpa::port::offload::{self, TsoSegments};
/// # use tpa::port::Offloads;
/// # let pool = Pool::with_capacity(16).unwrap();
/// # let mut big = pool.alloc().unwrap();
/// # let mut hdr = [0u8; 54];
/// # hdr[12] = 0x08; hdr[14] = 0x45; hdr[15 + 8] = 64; hdr[14 + 9] = 6;
/// # hdr[16..18].copy_from_slice(&(40u16 + 1500).to_be_bytes());
/// # hdr[34 + 12] = 5 << 4;
/// # big.extend_from_slice(&hdr).unwrap();
/// # big.extend_from_slice(&[7u8; 1500]).unwrap();
/// # big.meta_mut().layers = LayerOffsets { l2: 0, l3: 14, l4: 34, payload: 54 };
/// // `big`: one TCP/IPv4 packet with 1500 bytes of payload.
/// let mut segs = TsoSegments::new(&big, 600).unwrap();
/// assert_eq!(segs.remaining(), 3);
/// while let Some(seg) = segs.next_with(|| pool.alloc()) {
///     let mut seg = seg.unwrap();
///     offload::prepare(&mut seg, &Offloads::default()).unwrap(); // checksums
///     assert!(seg.len() <= 54 + 600);
/// }
/// # drop(big);
/// # tpa::buf::BufferPool::assert_whole(&pool);
/// ```
#[derive(Debug)]
pub struct TsoSegments<'a, B: PacketBuf> {
    src: &'a B,
    lay: Layout,
    /// Where the payload starts (everything in front is copied).
    payload_at: usize,
    payload_len: usize,
    mss: usize,
    next: usize,
    count: usize,
}

impl<'a, B: PacketBuf> TsoSegments<'a, B> {
    /// Checks `src` (a TCP packet with `meta().layers` `l3` and `l4` set
    /// and its headers in the first segment) and plans its segments.
    pub fn new(src: &'a B, mss: u16) -> Result<Self, OffloadError> {
        if mss == 0 {
            return Err(OffloadError::BadMss);
        }
        let lay = layout(src, Some(L4Protocol::Tcp))?;
        let payload_len = lay.l4_total - lay.l4_header;
        let mss = usize::from(mss);
        Ok(TsoSegments {
            src,
            lay,
            payload_at: lay.l4 + lay.l4_header,
            payload_len,
            mss,
            next: 0,
            count: payload_len.div_ceil(mss).max(1),
        })
    }

    /// Segments not yet produced.
    pub fn remaining(&self) -> usize {
        self.count - self.next
    }

    /// Builds the next segment in a buffer from `alloc`, which must hand out
    /// empty buffers (as [`Port::alloc`](crate::port::Port::alloc) does).
    /// `None` after the last one. On an error the segment is skipped.
    pub fn next_with(
        &mut self,
        alloc: impl FnOnce() -> Option<B>,
    ) -> Option<Result<B, OffloadError>> {
        if self.next >= self.count {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some(self.build(i, alloc))
    }

    fn build(&self, i: usize, alloc: impl FnOnce() -> Option<B>) -> Result<B, OffloadError> {
        let lay = &self.lay;
        let offset = i * self.mss;
        let seg_len = self.mss.min(self.payload_len - offset);
        let hdr = self.payload_at;
        let mut b = alloc().ok_or(OffloadError::NoBuffers)?;
        let out = b.append(hdr + seg_len).map_err(|_| OffloadError::BadMss)?;
        out[..hdr].copy_from_slice(&self.src.data()[..hdr]);
        copy_range(self.src, self.payload_at + offset, &mut out[hdr..]);

        // Fit in 16 bits: the original's lengths did, and a segment is shorter.
        let l4_total = (lay.l4_header + seg_len) as u16;
        let l3 = lay.l3;
        match lay.ip {
            IpVersion::V4 => {
                put16(out, l3 + 2, (lay.l4 - l3) as u16 + l4_total);
                let id = be16(out, l3 + 4).wrapping_add(i as u16);
                put16(out, l3 + 4, id);
            }
            IpVersion::V6 => {
                put16(out, l3 + 4, (lay.l4 - l3 - 40) as u16 + l4_total);
            }
        }
        let l4 = lay.l4;
        let seq = u32::from_be_bytes([out[l4 + 4], out[l4 + 5], out[l4 + 6], out[l4 + 7]])
            .wrapping_add(offset as u32);
        out[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        if i + 1 < self.count {
            out[l4 + 13] &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            out[l4 + 13] &= !TCP_CWR;
        }

        let mut meta = *self.src.meta();
        meta.layers.payload = hdr as u16; // hdr <= l4 + 60, and l4 < u16::MAX
        meta.tx = TxRequest::NONE;
        meta.tx.request_checksums(L4Protocol::Tcp);
        *b.meta_mut() = meta;
        Ok(b)
    }
}

/// Counters of the offload work of one port's transmit path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OffloadStats {
    /// Packets dropped because their request could not be carried out
    /// (an [`OffloadError`]).
    pub malformed: u64,
    /// Packets segmented in software, all of their segments sent.
    pub tso_packets: u64,
    /// Segments the device took.
    pub tso_segments: u64,
    /// Segments lost: the device's queue (or the pool) ran out half-way
    /// through a packet whose payload is not all in its first buffer
    /// segment (a chain), whose rest therefore cannot wait in the burst.
    pub tso_dropped: u64,
    /// Chained packets copied into one frame because the device takes
    /// fewer segments ([`TxDevice::max_segments`]).
    pub linearized: u64,
    /// Chained packets dropped because that copy found no free buffer or
    /// did not fit one.
    pub linearize_dropped: u64,
}

/// The raw transmit side of a device, as [`transmit`] drives it.
pub trait TxDevice<B: PacketBuf> {
    /// What the device offloads (the port's `caps().tx_offloads`).
    fn tx_offloads(&self) -> Offloads;
    /// Hands packets from the front of `tx` to the device, as
    /// [`Port::tx_burst`](crate::port::Port::tx_burst) does, ignoring
    /// their requests.
    fn send<const N: usize>(&mut self, tx: &mut Burst<B, N>) -> usize;
    /// An empty buffer for a software TSO segment (or a chain's copy).
    fn alloc_segment(&mut self) -> Option<B>;
    /// The most segments one frame may have; chains with more are copied
    /// into one frame first ([`linearize`]), counted in
    /// [`OffloadStats::linearized`]. 1 (the default): the device cannot
    /// gather.
    #[inline]
    fn max_segments(&self) -> usize {
        1
    }
    /// The longest packet (over all its segments) the device takes
    /// without a look of its own; it drops longer ones itself, counted.
    /// `usize::MAX` (the default): the device checks no length.
    #[inline]
    fn max_frame_len(&self) -> usize {
        usize::MAX
    }
    /// As [`send`](Self::send), for a burst [`transmit`] has looked at:
    /// no packet has a request, more than
    /// [`max_segments`](Self::max_segments) segments or more than
    /// [`max_frame_len`](Self::max_frame_len) bytes. A device skips its
    /// own checks of those; the default is `send`.
    #[inline]
    fn send_checked<const N: usize>(&mut self, tx: &mut Burst<B, N>) -> usize {
        self.send(tx)
    }
    /// Whether the device's TSO ([`Offloads::tso`]) cuts TCP/IPv6 packets
    /// too; where not, they are cut in software. True by default.
    #[inline]
    fn tso_ipv6(&self) -> bool {
        true
    }
    /// Marks `buf` for the device to do what `plan` says. Only called with
    /// work [`tx_offloads`](Self::tx_offloads) includes, so devices that
    /// offload nothing keep this default, which does nothing.
    #[inline]
    fn mark_for_device(&mut self, buf: &mut B, plan: &HwOffload) {
        let _ = (buf, plan);
    }
}

/// The transmit path of a port with offload requests: prepares every
/// packet of `tx` ([`prepare`]), segments in software what the device
/// cannot, and sends through `dev`. Same contract as
/// [`Port::tx_burst`](crate::port::Port::tx_burst): packets taken are
/// removed from `tx` (a segmented packet counts as one, malformed ones are
/// dropped and counted as taken), the rest stay, prepared, in order. When
/// the device (or the pool) runs out half-way through segmenting a packet,
/// the packet stays at the front of `tx` holding only the segments not yet
/// sent.
///
/// Chains with more segments than the device gathers
/// ([`TxDevice::max_segments`]) are copied into one frame after their
/// checksums are done (counted in [`OffloadStats::linearized`]), or dropped
/// when no buffer is free for that (counted in
/// [`OffloadStats::linearize_dropped`], taken).
///
/// When no packet asks for anything, none needs copying and none is longer
/// than the device takes ([`TxDevice::max_frame_len`]), this is one look
/// at each packet (a byte, a segment-count and a length compare; no length
/// compare for devices that check none) and `dev.send_checked(tx)`: the
/// device's own per-packet checks are folded into this one pass.
#[inline]
pub fn transmit<B, D, const N: usize>(
    dev: &mut D,
    tx: &mut Burst<B, N>,
    stats: &mut OffloadStats,
) -> usize
where
    B: PacketBuf,
    D: TxDevice<B>,
{
    let max_segments = dev.max_segments();
    let max_len = dev.max_frame_len();
    if tx
        .as_slice()
        .iter()
        .all(|b| b.meta().tx.is_empty() && fits(b, max_segments, max_len))
    {
        return dev.send_checked(tx);
    }
    transmit_requests(dev, tx, stats)
}

/// Whether `b` goes to the device as it is: at most `max_segments`
/// segments and `max_len` bytes over all of them (a chain's length is
/// summed only where the device checks one).
#[inline(always)]
fn fits<B: PacketBuf>(b: &B, max_segments: usize, max_len: usize) -> bool {
    let segments = b.segment_count();
    if segments == 1 {
        return b.len() <= max_len;
    }
    segments <= max_segments && (max_len == usize::MAX || b.total_len() <= max_len)
}

/// Copies `buf` into one frame if it has more than `max` segments. False
/// (counted) when that failed and the packet must be dropped.
#[inline]
fn fit_segments<B, D>(dev: &mut D, buf: &mut B, max: usize, stats: &mut OffloadStats) -> bool
where
    B: PacketBuf,
    D: TxDevice<B>,
{
    if buf.segment_count() <= max {
        return true;
    }
    match linearize(buf, || dev.alloc_segment()) {
        Ok(_) => {
            stats.linearized += 1;
            true
        }
        Err(_) => {
            stats.linearize_dropped += 1;
            false
        }
    }
}

#[cold]
#[inline(never)]
fn transmit_requests<B, D, const N: usize>(
    dev: &mut D,
    tx: &mut Burst<B, N>,
    stats: &mut OffloadStats,
) -> usize
where
    B: PacketBuf,
    D: TxDevice<B>,
{
    let hw = dev.tx_offloads();
    // What IPv6 packets get, where the device cuts only IPv4 ones.
    let hw_v6 = Offloads {
        tso: hw.tso && dev.tso_ipv6(),
        ..hw
    };
    let max = dev.max_segments();
    let mut taken = 0;
    loop {
        // Prepare from the front up to the first packet to segment here.
        let mut ready = 0;
        let mut segment = None;
        while ready < tx.len() {
            let b = &mut tx.as_mut_slice()[ready];
            let prepared = if b.meta().tx.is_empty() {
                Ok(Prepared::Done)
            } else if hw.tso != hw_v6.tso && is_ipv6(b) {
                prepare(b, &hw_v6)
            } else {
                prepare(b, &hw)
            };
            // A chain is copied after its checksums are done over all its
            // segments, and before the device is told about it.
            let fits = match prepared {
                Ok(Prepared::Done | Prepared::Hardware(_)) => fit_segments(dev, b, max, stats),
                _ => true,
            };
            if !fits {
                remove(tx, ready);
                taken += 1;
                continue;
            }
            match prepared {
                Ok(Prepared::Done) => ready += 1,
                Ok(Prepared::Hardware(plan)) => {
                    dev.mark_for_device(b, &plan);
                    ready += 1;
                }
                Ok(Prepared::Segment { mss }) => {
                    segment = Some(mss);
                    break;
                }
                Err(_) => {
                    remove(tx, ready);
                    stats.malformed += 1;
                    taken += 1;
                }
            }
        }
        if ready > 0 {
            let sent = send_front(dev, tx, ready);
            taken += sent;
            if sent < ready {
                return taken;
            }
        }
        let Some(mss) = segment else {
            return taken;
        };
        // The packet to segment is at the front now.
        match segment_and_send::<B, D, N>(dev, tx, mss, &hw, stats) {
            Segmented::All | Segmented::Dropped => {
                drop(tx.drain_front(1));
                taken += 1;
            }
            Segmented::Stalled => return taken,
        }
    }
}

/// Whether the packet's L3 header (at `meta().layers.l3`) is IPv6.
fn is_ipv6<B: PacketBuf>(buf: &B) -> bool {
    let l3 = usize::from(buf.meta().layers.l3);
    buf.data().get(l3).is_some_and(|b| b >> 4 == 6)
}

/// Removes packet `i` of `tx`, keeping the others in order.
fn remove<B, const N: usize>(tx: &mut Burst<B, N>, i: usize) {
    tx.as_mut_slice()[i..].rotate_left(1);
    drop(tx.pop());
}

/// Sends only the first `n` packets of `tx`; the others stay behind them.
fn send_front<B, D, const N: usize>(dev: &mut D, tx: &mut Burst<B, N>, n: usize) -> usize
where
    B: PacketBuf,
    D: TxDevice<B>,
{
    if n == tx.len() {
        return dev.send(tx);
    }
    let mut rest: Burst<B, N> = Burst::new();
    while tx.len() > n {
        match tx.pop() {
            Some(b) => rest.push(b),
            None => break,
        }
    }
    let sent = dev.send(tx);
    // Fits: tx held them all before.
    tx.extend(rest.drain().rev());
    sent
}

/// How far [`segment_and_send`] got with the packet at the front of `tx`.
enum Segmented {
    /// Every segment went to the device.
    All,
    /// The device took some segments and no more; the packet now holds
    /// only the rest and stays.
    Stalled,
    /// The packet cannot be segmented or the rest of it could not be kept:
    /// counted, to be dropped.
    Dropped,
}

/// Cuts the packet at the front of `tx` into segments and sends them.
fn segment_and_send<B, D, const N: usize>(
    dev: &mut D,
    tx: &mut Burst<B, N>,
    mss: u16,
    hw: &Offloads,
    stats: &mut OffloadStats,
) -> Segmented
where
    B: PacketBuf,
    D: TxDevice<B>,
{
    let Some(big) = tx.as_slice().first() else {
        return Segmented::Dropped;
    };
    let mut segs = match TsoSegments::new(big, mss) {
        Ok(s) => s,
        Err(_) => {
            stats.malformed += 1;
            return Segmented::Dropped;
        }
    };
    let lay = segs.lay;
    let mut out: Burst<B, N> = Burst::new();
    let mut sent_total = 0;
    while segs.remaining() > 0 {
        let mut no_buffer = false;
        while !out.is_full() {
            match segs.next_with(|| dev.alloc_segment()) {
                None => break,
                Some(Ok(mut seg)) => {
                    if let Ok(Prepared::Hardware(plan)) = prepare(&mut seg, hw) {
                        dev.mark_for_device(&mut seg, &plan);
                    }
                    out.push(seg);
                }
                Some(Err(OffloadError::NoBuffers)) => {
                    no_buffer = true;
                    break;
                }
                Some(Err(_)) => {
                    // Segments do not fit the allocator's buffers: never will.
                    stats.malformed += 1;
                    stats.tso_dropped += sent_total as u64;
                    return Segmented::Dropped;
                }
            }
        }
        let built = out.len();
        let sent = if built > 0 { dev.send(&mut out) } else { 0 };
        out.clear();
        sent_total += sent;
        stats.tso_segments += sent as u64;
        if no_buffer || sent < built {
            // Keep the rest for the next call, as a device whose queue is
            // full keeps a packet; only a packet whose payload is not in its
            // first segment cannot be cut short, and loses the rest.
            if let Some(big) = tx.as_mut_slice().first_mut() {
                if advance(big, &lay, mss, sent_total) {
                    return Segmented::Stalled;
                }
            }
            let total = lay.l4_total - lay.l4_header;
            let count = total.div_ceil(usize::from(mss)).max(1);
            stats.tso_dropped += (count - sent_total) as u64;
            return Segmented::Dropped;
        }
    }
    stats.tso_packets += 1;
    Segmented::All
}

/// Turns a TCP packet into the part of it after its first `sent` segments
/// of `mss` bytes: headers moved up to the remaining payload, lengths,
/// IPv4 identification, sequence number and CWR fixed. False (and the
/// packet unchanged) when that payload is not in the first segment.
fn advance<B: PacketBuf>(buf: &mut B, lay: &Layout, mss: u16, sent: usize) -> bool {
    if sent == 0 {
        return true;
    }
    let hdr = lay.l4 + lay.l4_header;
    let shift = sent * usize::from(mss);
    if hdr + shift > buf.len() {
        return false;
    }
    let data = buf.data_mut();
    data.copy_within(..hdr, shift);
    let (l3, l4) = (lay.l3 + shift, lay.l4 + shift);
    // shift < the original IP length, which fit 16 bits.
    let shift16 = shift as u16;
    match lay.ip {
        IpVersion::V4 => {
            let total = be16(data, l3 + 2) - shift16;
            put16(data, l3 + 2, total);
            let id = be16(data, l3 + 4).wrapping_add(sent as u16);
            put16(data, l3 + 4, id);
        }
        IpVersion::V6 => {
            let len = be16(data, l3 + 4) - shift16;
            put16(data, l3 + 4, len);
        }
    }
    let seq = u32::from_be_bytes([data[l4 + 4], data[l4 + 5], data[l4 + 6], data[l4 + 7]])
        .wrapping_add(shift as u32);
    data[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
    data[l4 + 13] &= !TCP_CWR;
    buf.trim_front(shift).is_ok()
}
