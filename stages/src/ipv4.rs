//! IPv4 input: checks a datagram's header and that it is addressed to us.

use std::net::Ipv4Addr;

use tpa::buf::{ChecksumStatus, PacketBuf};
use tpa::header::checksum;
use tpa::stage::{Cx, Stage, Verdict};
use tpa::wire::ipv4::{IpProtocol, Ipv4, Ipv4View};

use crate::iface::Interface;
use crate::packet::{Ipv4Frame, Ipv4Packet, Layer, PacketError, PacketErrorKind, Rejected};

/// Turns an [`Ipv4Frame`] into an [`Ipv4Packet`]: the header must be whole
/// (`too-short`), be version 4 with a total length that fits the frame
/// and a unicast source (`malformed`), have a good checksum unless the port verified it
/// (`bad-checksum`), not be a fragment (`unsupported`: there is no
/// reassembly) and be addressed to one of the interface's addresses
/// (`not-for-us`). The Ethernet padding behind short datagrams is trimmed
/// and the transport layer's offset recorded.
///
/// A chained frame (from a port that gathers) is measured over all its
/// segments; its header must lie in the first one, and it must carry TCP,
/// the one protocol that reads its payload over segments (else `chained`).
#[derive(Debug, Clone)]
pub struct Ipv4Input {
    iface: Interface,
}

impl Ipv4Input {
    /// Input for datagrams to `iface`'s IPv4 addresses.
    pub fn new(iface: Interface) -> Self {
        Ipv4Input { iface }
    }
}

/// [`Ipv4Input`]'s checks on `frame`'s IPv4 header: the total length and
/// the transport layer's offset from the frame's start.
#[inline]
fn check_header<B: PacketBuf>(
    frame: &Ipv4Frame<B>,
    iface: &Interface,
    available: usize,
    chained: bool,
) -> Result<(usize, u16), PacketError> {
    if let Some(checked) = quiet_header(frame, iface, available, chained) {
        debug_assert_eq!(
            check_header_in_full(frame, iface, available, chained),
            Ok(checked),
            "a quiet header passes every check"
        );
        return Ok(checked);
    }
    check_header_in_full(frame, iface, available, chained)
}

/// [`check_header`] of the common datagram, read in one pass over its 20
/// bytes: no options, version 4, a good checksum, a total length that
/// fits, not a fragment, to one of our addresses, from a unicast source,
/// TCP when chained. The total length and the transport layer's offset,
/// as the full checks give them; `None` for any other header (with
/// options, or failing a check), which the full checks answer.
#[inline(always)]
fn quiet_header<B: PacketBuf>(
    frame: &Ipv4Frame<B>,
    iface: &Interface,
    available: usize,
    chained: bool,
) -> Option<(usize, u16)> {
    let h = frame.l3().first_chunk::<{ Ipv4::LEN }>()?;
    // Version 4, IHL 5.
    if h[0] != 0x45 {
        return None;
    }
    let checksum_good = match frame.buf().meta().l3_checksum {
        ChecksumStatus::Good => true,
        ChecksumStatus::Bad => false,
        ChecksumStatus::Unknown => checksum::sum_array(h) == 0xffff,
    };
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // More fragments (0x20) and the offset's 13 bits.
    let fragment = (h[6] & 0x3f) | h[7] != 0;
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    let quiet = checksum_good
        && (Ipv4::LEN..=available).contains(&total_len)
        && !fragment
        && iface.owns_ipv4(dst)
        && !(src.is_broadcast() || src.is_multicast() || src.is_unspecified())
        && (!chained || h[9] == IpProtocol::Tcp.raw());
    if !quiet {
        return None;
    }
    let l4 = u16::try_from(frame.l3_offset() + Ipv4::LEN).ok()?;
    Some((total_len, l4))
}

/// [`check_header`]'s every check, in order, each with its error.
#[inline]
fn check_header_in_full<B: PacketBuf>(
    frame: &Ipv4Frame<B>,
    iface: &Interface,
    available: usize,
    chained: bool,
) -> Result<(usize, u16), PacketError> {
    let l3 = frame.l3();
    let error = |kind| PacketError::new(Layer::Ipv4, available, kind);
    let ip = Ipv4View::new(l3).map_err(|e| {
        let e = PacketError::from_header(Layer::Ipv4, available, "ihl", e);
        header_error(e, chained, frame.l3_offset())
    })?;
    if ip.version() != 4 {
        return Err(error(PacketErrorKind::Malformed { field: "version" }));
    }
    let checksum_good = match frame.buf().meta().l3_checksum {
        ChecksumStatus::Good => true,
        ChecksumStatus::Bad => false,
        ChecksumStatus::Unknown => header_checksum_ok(l3, &ip),
    };
    if !checksum_good {
        return Err(error(PacketErrorKind::BadChecksum));
    }
    let total_len = usize::from(ip.total_len());
    if total_len < ip.header_len() {
        return Err(error(PacketErrorKind::Malformed { field: "total_len" }));
    }
    if total_len > available {
        return Err(error(PacketErrorKind::Truncated { needed: total_len }));
    }
    if ip.more_fragments() {
        return Err(error(PacketErrorKind::Unsupported {
            field: "more_fragments",
        }));
    }
    if ip.frag_offset() != 0 {
        return Err(error(PacketErrorKind::Unsupported {
            field: "frag_offset",
        }));
    }
    if !iface.owns_ipv4(ip.dst()) {
        return Err(error(PacketErrorKind::NotForUs { field: "dst" }));
    }
    // No one may speak from a group or "everyone" (RFC 1812 5.3.7): an
    // answer would go to all of them.
    let src = ip.src();
    if src.is_broadcast() || src.is_multicast() || src.is_unspecified() {
        return Err(error(PacketErrorKind::Malformed { field: "src" }));
    }
    let l4 = frame.l3_offset() + ip.header_len();
    if chained && ip.protocol() != IpProtocol::Tcp {
        // Only TCP reads its payload over segments.
        return Err(error(PacketErrorKind::Chained { needed: l4 }));
    }
    let Ok(l4) = u16::try_from(l4) else {
        return Err(error(PacketErrorKind::OffsetTooLarge { offset: l4 }));
    };
    Ok((total_len, l4))
}

/// Whether the header checksum of `ip` (over `l3`, its bytes) verifies:
/// the common 20-byte header summed inline, its words known when
/// compiling; a header with options the general way.
#[inline(always)]
fn header_checksum_ok(l3: &[u8], ip: &Ipv4View<&[u8]>) -> bool {
    match l3.first_chunk::<{ Ipv4::LEN }>() {
        Some(fixed) if ip.header_len() == Ipv4::LEN => checksum::sum_array(fixed) == 0xffff,
        _ => ip.checksum_ok(),
    }
}

/// The network layer's length over all segments of `buf` (a gathering
/// port passes a chain on as it was sent): `first`, its bytes in the first
/// segment, plus every later segment's when `chained`.
#[inline]
pub(crate) fn l3_len<B: PacketBuf>(buf: &B, first: usize, chained: bool) -> usize {
    if chained {
        first + buf.total_len() - buf.len()
    } else {
        first
    }
}

/// `e`, an IP header that did not fit, as `chained` when the frame is a
/// chain (the header continues in a later segment).
#[cold]
pub(crate) fn header_error(e: PacketError, chained: bool, l3_offset: usize) -> PacketError {
    match e.kind {
        PacketErrorKind::Truncated { needed } if chained => PacketError::new(
            e.layer,
            e.len,
            PacketErrorKind::Chained {
                needed: l3_offset + needed,
            },
        ),
        _ => e,
    }
}

/// [`Ipv4Input`]'s work on `frame`, shared with the checked constructor
/// [`Ipv4Packet::from_frame`]: the checks, then the padding trimmed and the
/// transport layer's offset recorded.
#[inline]
pub(crate) fn check<B: PacketBuf>(
    frame: Ipv4Frame<B>,
    iface: &Interface,
) -> Result<Ipv4Packet<B>, Rejected<B>> {
    let chained = frame.buf().is_chained();
    let available = l3_len(frame.buf(), frame.l3().len(), chained);
    let (total_len, l4) = match check_header(&frame, iface, available, chained) {
        Ok(checked) => checked,
        Err(error) => return Err(Rejected::new(error, frame.into_buf())),
    };
    let mut buf = frame.into_buf();
    let padding = available - total_len;
    if padding != 0 && crate::chained::trim_back(&mut buf, padding).is_err() {
        let kind = PacketErrorKind::Malformed { field: "total_len" };
        return Err(Rejected::new(
            PacketError::new(Layer::Ipv4, available, kind),
            buf,
        ));
    }
    buf.meta_mut().layers.l4 = l4;
    Ok(Ipv4Packet::new_unchecked(buf))
}

impl<B: PacketBuf, S> Stage<B, S> for Ipv4Input {
    type In = Ipv4Frame<B>;
    type Out = Ipv4Packet<B>;

    #[inline]
    fn process(
        &mut self,
        frame: Ipv4Frame<B>,
        _cx: &mut Cx<'_, B, S>,
    ) -> Verdict<Ipv4Packet<B>, B> {
        match check(frame, &self.iface) {
            Ok(packet) => Verdict::Pass(packet),
            Err(rejected) => Verdict::Drop(rejected.error().reason()),
        }
    }
}

impl<B: PacketBuf> Ipv4Packet<B> {
    /// Checks the IPv4 layer of `frame` as [`Ipv4Input`]
    /// does, for `iface`'s addresses, trims the link-layer padding and records
    /// the transport layer's offset.
    ///
    /// # Errors
    ///
    /// An [`Ipv4`](Layer::Ipv4) [`PacketError`], with the buffer back.
    #[inline]
    pub fn from_frame(frame: Ipv4Frame<B>, iface: &Interface) -> Result<Self, Rejected<B>> {
        check(frame, iface)
    }

    /// [`Ipv4Frame::parse`], then [`from_frame`](Self::from_frame): the
    /// checks of the Ethernet front and IPv4 input on an Ethernet frame.
    ///
    /// # Errors
    ///
    /// The first layer's [`PacketError`], with the buffer back.
    #[inline]
    pub fn parse(buf: B, iface: &Interface) -> Result<Self, Rejected<B>> {
        Self::from_frame(Ipv4Frame::parse(buf, iface)?, iface)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{frame, pool, with_cx, BufferPool};
    use std::net::Ipv4Addr;
    use tpa::wire::ethernet::{EtherType, Ethernet};
    use tpa::wire::ipv4::{IpProtocol, Ipv4};
    use tpa::wire::MacAddr;

    const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn iface() -> Interface {
        Interface::new(MacAddr([2, 0, 0, 0, 0, 1])).with_ipv4("192.0.2.1/24".parse().unwrap())
    }

    /// A 60-byte frame (padded) with a 20-byte header and 8 bytes of payload.
    fn datagram(edit: impl FnOnce(&mut Ipv4)) -> Vec<u8> {
        let mut bytes = vec![0u8; 60];
        Ethernet {
            dst: MacAddr([2, 0, 0, 0, 0, 1]),
            src: MacAddr([2, 0, 0, 0, 0, 2]),
            ether_type: EtherType::Ipv4,
        }
        .emit(&mut bytes)
        .unwrap();
        let mut ip = Ipv4 {
            total_len: 28,
            protocol: IpProtocol::Udp,
            src: Ipv4Addr::new(192, 0, 2, 2),
            dst: US,
            ..Ipv4::basic()
        };
        edit(&mut ip);
        ip.emit(&mut bytes[14..]).unwrap();
        bytes
    }

    fn input(bytes: &[u8]) -> Result<Ipv4Packet<tpa::buf::PoolBuf>, &'static str> {
        input_buf(frame(bytes))
    }

    #[test]
    fn a_good_datagram_passes_with_padding_trimmed() {
        let p = input(&datagram(|_| {})).unwrap();
        assert_eq!(p.buf().len(), 14 + 28);
        assert_eq!(p.l4_offset(), 34);
        assert_eq!(p.l4().len(), 8);
        drop(p);
        pool().assert_whole();
    }

    #[test]
    fn bad_datagrams_are_dropped_with_their_reason() {
        assert_eq!(
            input(&datagram(|ip| ip.dst = Ipv4Addr::new(192, 0, 2, 9))).unwrap_err(),
            "not-for-us"
        );
        assert_eq!(
            input(&datagram(|ip| ip.total_len = 100)).unwrap_err(),
            "too-short"
        );
        assert_eq!(
            input(&datagram(|ip| ip.total_len = 10)).unwrap_err(),
            "malformed"
        );
        assert_eq!(
            input(&datagram(|ip| ip.more_fragments = true)).unwrap_err(),
            "unsupported"
        );
        assert_eq!(input(&datagram(|_| {})[..30]).unwrap_err(), "too-short");
        let mut bad_sum = datagram(|_| {});
        bad_sum[14 + 10] ^= 0xff;
        assert_eq!(input(&bad_sum).unwrap_err(), "bad-checksum");
        // Version 6 with a checksum that covers it: the version alone is
        // wrong.
        let v6 = datagram(|ip| ip.version = 6);
        assert_eq!(input(&v6).unwrap_err(), "malformed");
        pool().assert_whole();
    }

    /// The input stage's verdict on `buf`, a frame whose IP header is at
    /// byte 14 (chained or not).
    fn input_buf(
        mut buf: tpa::buf::PoolBuf,
    ) -> Result<Ipv4Packet<tpa::buf::PoolBuf>, &'static str> {
        buf.meta_mut().layers.l3 = 14;
        match with_cx(|cx| Ipv4Input::new(iface()).process(Ipv4Frame::new_unchecked(buf), cx)) {
            Verdict::Pass(p) => Ok(p),
            Verdict::Drop(r) => Err(r.name(&[])),
            _ => Err("other verdict"),
        }
    }

    /// A 14 + 20 + `payload`-byte TCP datagram (its TCP bytes arbitrary:
    /// IP input does not read them), padded to `frame_len`.
    fn tcp_datagram(payload: usize, frame_len: usize) -> Vec<u8> {
        let mut bytes = datagram(|ip| {
            ip.protocol = IpProtocol::Tcp;
            ip.total_len = (20 + payload) as u16;
        });
        bytes.resize(frame_len, 0);
        for (i, b) in bytes[34..34 + payload].iter_mut().enumerate() {
            *b = i as u8 ^ 0x5a;
        }
        bytes
    }

    #[test]
    fn a_chained_tcp_datagram_is_measured_over_its_segments() {
        // Cut at odd offsets, the header in the first segment.
        let bytes = tcp_datagram(1001, 14 + 20 + 1001);
        let (buf, held) = crate::testing::chained(&bytes, &[37, 38, 555]);
        let p = input_buf(buf).unwrap();
        assert_eq!((p.l4_offset(), p.buf().total_len()), (34, bytes.len()));
        assert_eq!(crate::testing::joined(p.buf()), bytes);
        assert_eq!(held.ref_count(), 2, "passed on by reference");
        assert_eq!(held.segment_count(), 3);
        drop((p, held));
        // Padding behind a short datagram, in a shared last segment: cut
        // from a copy, the shared bytes left as they were.
        let bytes = tcp_datagram(10, 14 + 20 + 10 + 16);
        let (buf, held) = crate::testing::chained(&bytes, &[40]);
        let p = input_buf(buf).unwrap();
        assert_eq!(crate::testing::joined(p.buf()), &bytes[..44]);
        assert_eq!(held.data(), &bytes[40..]);
        drop((p, held));
        pool().assert_whole();
    }

    #[test]
    fn chained_datagrams_it_cannot_take_are_dropped_as_chained() {
        let bytes = tcp_datagram(100, 134);
        // The IPv4 header crosses into the second segment.
        let (buf, held) = crate::testing::chained(&bytes, &[14 + 19]);
        assert_eq!(input_buf(buf).unwrap_err(), "chained");
        // A total length past the chain's end.
        let (buf, _held2) = crate::testing::chained(&bytes[..120], &[60]);
        assert_eq!(input_buf(buf).unwrap_err(), "too-short");
        // Not TCP: the other protocols read one segment.
        let mut udp = datagram(|ip| ip.total_len = 46);
        udp.resize(60, 7);
        let (buf, _held3) = crate::testing::chained(&udp, &[50]);
        assert_eq!(input_buf(buf).unwrap_err(), "chained");
        drop((held, _held2, _held3));
        pool().assert_whole();
    }
}
