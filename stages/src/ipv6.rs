//! IPv6 input: checks a packet's header and that it is addressed to us.

use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Stage, Verdict};
use tpa::wire::ipv4::IpProtocol;
use tpa::wire::ipv6::Ipv6View;

use crate::iface::Interface;
use crate::packet::{Ipv6Frame, Ipv6Packet, Layer, PacketError, PacketErrorKind, Rejected};

/// Turns an [`Ipv6Frame`] into an [`Ipv6Packet`]: the fixed header must be
/// whole and its payload length fit the frame (`too-short`), the version be
/// 6 with a source that is not multicast (`malformed`), the destination one of the interface's addresses, their
/// solicited-node groups or all-nodes (`not-for-us`), and the next header an
/// upper-layer protocol: extension headers are `unsupported`. The Ethernet
/// padding is trimmed and the transport layer's offset recorded.
///
/// A chained frame (from a port that gathers) is measured over all its
/// segments; its header must lie in the first one, and it must carry TCP,
/// the one protocol that reads its payload over segments (else `chained`).
#[derive(Debug, Clone)]
pub struct Ipv6Input {
    iface: Interface,
}

impl Ipv6Input {
    /// Input for packets to `iface`'s IPv6 addresses.
    pub fn new(iface: Interface) -> Self {
        Ipv6Input { iface }
    }
}

/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;

fn is_extension_header(p: IpProtocol) -> bool {
    matches!(
        p,
        IpProtocol::HopByHop
            | IpProtocol::Ipv6Route
            | IpProtocol::Ipv6Frag
            | IpProtocol::Ipv6Opts
            | IpProtocol::Ah
            | IpProtocol::Esp
    )
}

/// [`Ipv6Input`]'s checks on `frame`'s IPv6 header: the payload length and
/// the transport layer's offset from the frame's start.
#[inline]
fn check_header<B: PacketBuf>(
    frame: &Ipv6Frame<B>,
    iface: &Interface,
    available: usize,
    chained: bool,
) -> Result<(usize, u16), PacketError> {
    let l3 = frame.l3();
    let error = |kind| PacketError::new(Layer::Ipv6, available, kind);
    let ip = Ipv6View::new(l3).map_err(|e| {
        let e = PacketError::from_header(Layer::Ipv6, available, "payload_len", e);
        crate::ipv4::header_error(e, chained, frame.l3_offset())
    })?;
    if ip.version() != 6 {
        return Err(error(PacketErrorKind::Malformed { field: "version" }));
    }
    let payload_len = usize::from(ip.payload_len());
    if payload_len > available - IPV6_HEADER_LEN {
        return Err(error(PacketErrorKind::Truncated {
            needed: IPV6_HEADER_LEN + payload_len,
        }));
    }
    if !iface.accepts_ipv6(ip.dst()) {
        return Err(error(PacketErrorKind::NotForUs { field: "dst" }));
    }
    // A group cannot be a source (RFC 4291 2.7).
    if ip.src().is_multicast() {
        return Err(error(PacketErrorKind::Malformed { field: "src" }));
    }
    if is_extension_header(ip.next_header()) {
        return Err(error(PacketErrorKind::Unsupported {
            field: "next_header",
        }));
    }
    let l4 = frame.l3_offset() + IPV6_HEADER_LEN;
    if chained && ip.next_header() != IpProtocol::Tcp {
        // Only TCP reads its payload over segments.
        return Err(error(PacketErrorKind::Chained { needed: l4 }));
    }
    let Ok(l4) = u16::try_from(l4) else {
        return Err(error(PacketErrorKind::OffsetTooLarge { offset: l4 }));
    };
    Ok((payload_len, l4))
}

/// [`Ipv6Input`]'s work on `frame`, shared with the checked constructor
/// [`Ipv6Packet::from_frame`]: the checks, then the padding trimmed and the
/// transport layer's offset recorded.
#[inline]
pub(crate) fn check<B: PacketBuf>(
    frame: Ipv6Frame<B>,
    iface: &Interface,
) -> Result<Ipv6Packet<B>, Rejected<B>> {
    let chained = frame.buf().is_chained();
    let available = crate::ipv4::l3_len(frame.buf(), frame.l3().len(), chained);
    let (payload_len, l4) = match check_header(&frame, iface, available, chained) {
        Ok(checked) => checked,
        Err(error) => return Err(Rejected::new(error, frame.into_buf())),
    };
    let mut buf = frame.into_buf();
    let padding = available - IPV6_HEADER_LEN - payload_len;
    if padding != 0 && crate::chained::trim_back(&mut buf, padding).is_err() {
        let kind = PacketErrorKind::Malformed {
            field: "payload_len",
        };
        return Err(Rejected::new(
            PacketError::new(Layer::Ipv6, available, kind),
            buf,
        ));
    }
    buf.meta_mut().layers.l4 = l4;
    Ok(Ipv6Packet::new_unchecked(buf))
}

impl<B: PacketBuf, S> Stage<B, S> for Ipv6Input {
    type In = Ipv6Frame<B>;
    type Out = Ipv6Packet<B>;

    #[inline]
    fn process(
        &mut self,
        frame: Ipv6Frame<B>,
        _cx: &mut Cx<'_, B, S>,
    ) -> Verdict<Ipv6Packet<B>, B> {
        match check(frame, &self.iface) {
            Ok(packet) => Verdict::Pass(packet),
            Err(rejected) => Verdict::Drop(rejected.error().reason()),
        }
    }
}

impl<B: PacketBuf> Ipv6Packet<B> {
    /// Checks the IPv6 layer of `frame` as [`Ipv6Input`]
    /// does, for `iface`'s addresses and groups, trims the link-layer padding
    /// and records the transport layer's offset.
    ///
    /// # Errors
    ///
    /// An [`Ipv6`](Layer::Ipv6) [`PacketError`], with the buffer back.
    #[inline]
    pub fn from_frame(frame: Ipv6Frame<B>, iface: &Interface) -> Result<Self, Rejected<B>> {
        check(frame, iface)
    }

    /// [`Ipv6Frame::parse`], then [`from_frame`](Self::from_frame): the
    /// checks of the Ethernet front and IPv6 input on an Ethernet frame.
    ///
    /// # Errors
    ///
    /// The first layer's [`PacketError`], with the buffer back.
    #[inline]
    pub fn parse(buf: B, iface: &Interface) -> Result<Self, Rejected<B>> {
        Self::from_frame(Ipv6Frame::parse(buf, iface)?, iface)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{frame, pool, with_cx, BufferPool};
    use std::net::Ipv6Addr;
    use tpa::wire::ipv6::Ipv6;

    fn iface() -> Interface {
        Interface::new(tpa::wire::MacAddr([2, 0, 0, 0, 0, 1]))
            .with_ipv6("2001:db8::1/64".parse().unwrap())
    }

    fn packet(dst: &str, payload_len: u16, next: IpProtocol, frame_len: usize) -> Vec<u8> {
        packet_from("2001:db8::2", dst, payload_len, next, frame_len)
    }

    fn packet_from(
        src: &str,
        dst: &str,
        payload_len: u16,
        next: IpProtocol,
        frame_len: usize,
    ) -> Vec<u8> {
        let mut bytes = vec![0u8; frame_len];
        bytes[12..14].copy_from_slice(&[0x86, 0xdd]);
        Ipv6 {
            version: 6,
            dscp: 0,
            ecn: 0,
            flow_label: 0,
            payload_len,
            next_header: next,
            hop_limit: 64,
            src: src.parse().unwrap(),
            dst: dst.parse::<Ipv6Addr>().unwrap(),
        }
        .emit(&mut bytes[14..])
        .unwrap();
        bytes
    }

    fn input(bytes: &[u8]) -> Result<Ipv6Packet<tpa::buf::PoolBuf>, &'static str> {
        input_buf(frame(bytes))
    }

    #[test]
    fn packets_to_us_and_our_groups_pass() {
        let p = input(&packet("2001:db8::1", 8, IpProtocol::Icmpv6, 14 + 40 + 20)).unwrap();
        assert_eq!(p.l4().len(), 8);
        assert_eq!(p.l4_offset(), 54);
        assert!(input(&packet("ff02::1:ff00:1", 8, IpProtocol::Icmpv6, 62)).is_ok());
        assert!(input(&packet("ff02::1", 0, IpProtocol::Udp, 54)).is_ok());
        drop(p);
        pool().assert_whole();
    }

    #[test]
    fn others_are_dropped_with_their_reason() {
        assert_eq!(
            input(&packet("2001:db8::9", 8, IpProtocol::Icmpv6, 62)).unwrap_err(),
            "not-for-us"
        );
        assert_eq!(
            input(&packet("2001:db8::1", 9, IpProtocol::Icmpv6, 62)).unwrap_err(),
            "too-short"
        );
        assert_eq!(
            input(&packet("2001:db8::1", 8, IpProtocol::HopByHop, 62)).unwrap_err(),
            "unsupported"
        );
        assert_eq!(
            input(&packet("2001:db8::1", 8, IpProtocol::Icmpv6, 62)[..50]).unwrap_err(),
            "too-short"
        );
        let from_group = packet_from("ff02::1", "2001:db8::1", 8, IpProtocol::Icmpv6, 62);
        assert_eq!(input(&from_group).unwrap_err(), "malformed");
        let mut v4 = packet("2001:db8::1", 8, IpProtocol::Icmpv6, 62);
        v4[14] = 0x45;
        assert_eq!(input(&v4).unwrap_err(), "malformed");
        pool().assert_whole();
    }

    /// The input stage's verdict on `buf`, a frame whose IP header is at
    /// byte 14 (chained or not).
    fn input_buf(
        mut buf: tpa::buf::PoolBuf,
    ) -> Result<Ipv6Packet<tpa::buf::PoolBuf>, &'static str> {
        buf.meta_mut().layers.l3 = 14;
        match with_cx(|cx| Ipv6Input::new(iface()).process(Ipv6Frame::new_unchecked(buf), cx)) {
            Verdict::Pass(p) => Ok(p),
            Verdict::Drop(r) => Err(r.name(&[])),
            _ => Err("other verdict"),
        }
    }

    #[test]
    fn a_chained_tcp_packet_is_measured_over_its_segments() {
        let mut bytes = packet("2001:db8::1", 999, IpProtocol::Tcp, 14 + 40 + 999);
        for (i, b) in bytes[54..].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        let (buf, held) = crate::testing::chained(&bytes, &[55, 333, 334]);
        let p = input_buf(buf).unwrap();
        assert_eq!((p.l4_offset(), p.buf().total_len()), (54, bytes.len()));
        assert_eq!(crate::testing::joined(p.buf()), bytes);
        drop(p);
        // Ethernet padding in a shared segment: cut from a copy.
        let bytes = packet("2001:db8::1", 20, IpProtocol::Tcp, 14 + 40 + 20 + 9);
        let (buf, held2) = crate::testing::chained(&bytes, &[57]);
        let p = input_buf(buf).unwrap();
        assert_eq!(p.buf().total_len(), 74);
        assert_eq!(held2.data(), &bytes[57..], "the shared bytes as they were");
        drop((p, held, held2));
        pool().assert_whole();
    }

    #[test]
    fn chained_packets_it_cannot_take_are_dropped_as_chained() {
        let bytes = packet("2001:db8::1", 100, IpProtocol::Tcp, 14 + 40 + 100);
        // The fixed header crosses into the second segment.
        let (buf, _held) = crate::testing::chained(&bytes, &[14 + 39]);
        assert_eq!(input_buf(buf).unwrap_err(), "chained");
        // A payload length past the chain's end.
        let (buf, _held2) = crate::testing::chained(&bytes[..100], &[60]);
        assert_eq!(input_buf(buf).unwrap_err(), "too-short");
        // Not TCP.
        let icmp = packet("2001:db8::1", 40, IpProtocol::Icmpv6, 14 + 40 + 40);
        let (buf, _held3) = crate::testing::chained(&icmp, &[70]);
        assert_eq!(input_buf(buf).unwrap_err(), "chained");
        drop((_held, _held2, _held3));
        pool().assert_whole();
    }
}
