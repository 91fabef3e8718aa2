//! The split of an IP branch by transport protocol: UDP one way, the rest
//! (ICMP, NDP, …) the other, so a branch reads `ip input → (icmp | udp)`.

use tpa::buf::PacketBuf;
use tpa::stage::Demux;
use tpa::wire::ipv4::IpProtocol;

use crate::packet::{Ipv4Packet, Ipv6Packet, Rejected, UdpPacket};
use crate::split::{self, ProtocolSplit, TransportProtocol};

/// UDP as a [`TransportProtocol`]: the protocol a [`UdpSplit`] sends right.
#[derive(Debug, Clone, Copy)]
pub struct Udp;

impl TransportProtocol for Udp {
    const NAME: &'static str = "Udp";
    const PROTOCOL: IpProtocol = IpProtocol::Udp;
    type Packet<B: PacketBuf> = UdpPacket<B>;

    #[inline]
    fn wrap<B: PacketBuf>(buf: B) -> UdpPacket<B> {
        UdpPacket::new_unchecked(buf)
    }
}

/// Classifies the [`Ipv4Packet`]s or [`Ipv6Packet`]s (`P`) of an IP branch
/// by their protocol: UDP right as a [`UdpPacket`], everything else left
/// unchanged. The classifier of the [`Demux`] that [`udp_branch`] builds.
pub type UdpSplit<P> = ProtocolSplit<P, Udp>;

/// An IP branch's tail split by protocol: `other` takes what is not UDP,
/// `udp` (usually [`UdpInput`](super::UdpInput)) takes UDP.
pub type UdpBranch<P, O, U> = Demux<UdpSplit<P>, O, U>;

/// Builds the split for packets of type `P`: `other` gets what is not UDP,
/// `udp` the UDP datagrams. Both arms pass on the same type (usually
/// [`Infallible`](core::convert::Infallible): both end the branch).
pub fn udp_branch<P, O, U>(other: O, udp: U) -> UdpBranch<P, O, U> {
    Demux::new(UdpSplit::new(), other, udp)
}

impl<B: PacketBuf> UdpPacket<B> {
    /// The UDP datagram in `packet`, if its protocol is UDP, as
    /// [`UdpSplit`] decides.
    ///
    /// # Errors
    ///
    /// An [`Ipv4`](crate::packet::Layer::Ipv4)
    /// [`PacketError`](crate::packet::PacketError) (`unsupported`
    /// protocol), with the buffer back.
    #[inline]
    pub fn from_ipv4(packet: Ipv4Packet<B>) -> Result<Self, Rejected<B>> {
        split::from_ipv4::<Udp, B>(packet)
    }

    /// The UDP datagram in `packet`, if its next header is UDP, as
    /// [`UdpSplit`] decides.
    ///
    /// # Errors
    ///
    /// An [`Ipv6`](crate::packet::Layer::Ipv6)
    /// [`PacketError`](crate::packet::PacketError) (`unsupported` next
    /// header), with the buffer back.
    #[inline]
    pub fn from_ipv6(packet: Ipv6Packet<B>) -> Result<Self, Rejected<B>> {
        split::from_ipv6::<Udp, B>(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iface::Interface;
    use crate::testing::{frame, pool, with_cx, BufferPool};
    use etherparse::PacketBuilder;
    use tpa::buf::PoolBuf;
    use tpa::stage::{Fork, Stage, Verdict};
    use tpa::wire::MacAddr;

    const US: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const THEM: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn iface() -> Interface {
        Interface::new(MacAddr(US))
            .with_ipv4("192.0.2.1/24".parse().unwrap())
            .with_ipv6("2001:db8::1/64".parse().unwrap())
    }

    fn v4(udp: bool) -> Ipv4Packet<PoolBuf> {
        let mut out = Vec::new();
        let b = PacketBuilder::ethernet2(THEM, US).ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64);
        if udp {
            b.udp(1000, 7).write(&mut out, b"hi").unwrap();
        } else {
            b.icmpv4_echo_request(1, 1).write(&mut out, b"hi").unwrap();
        }
        Ipv4Packet::parse(frame(&out), &iface()).unwrap()
    }

    fn v6(udp: bool) -> Ipv6Packet<PoolBuf> {
        let (src, dst) = (
            "2001:db8::2"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        let mut out = Vec::new();
        let b = PacketBuilder::ethernet2(THEM, US).ipv6(src, dst, 64);
        if udp {
            b.udp(1000, 7).write(&mut out, b"hi").unwrap();
        } else {
            b.icmpv6_echo_request(1, 1).write(&mut out, b"hi").unwrap();
        }
        Ipv6Packet::parse(frame(&out), &iface()).unwrap()
    }

    #[test]
    fn udp_goes_right_the_rest_left_in_both_families() {
        let mut s4 = UdpSplit::<Ipv4Packet<PoolBuf>>::new();
        let mut s6 = UdpSplit::<Ipv6Packet<PoolBuf>>::new();
        with_cx(|cx| {
            match s4.process(v4(true), cx) {
                Verdict::Pass(Fork::Right(u)) => {
                    assert!(!u.is_ipv6());
                    assert_eq!(u.l4_offset(), 34);
                }
                _ => panic!("UDP over IPv4 goes right"),
            }
            assert!(matches!(
                s4.process(v4(false), cx),
                Verdict::Pass(Fork::Left(_))
            ));
            match s6.process(v6(true), cx) {
                Verdict::Pass(Fork::Right(u)) => {
                    assert!(u.is_ipv6());
                    assert_eq!(u.l4().len(), 10);
                }
                _ => panic!("UDP over IPv6 goes right"),
            }
            assert!(matches!(
                s6.process(v6(false), cx),
                Verdict::Pass(Fork::Left(_))
            ));
        });
        pool().assert_whole();
    }

    #[test]
    fn the_checked_constructors_refuse_other_protocols() {
        assert!(UdpPacket::from_ipv4(v4(true)).is_ok());
        let refused = UdpPacket::from_ipv4(v4(false)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "IPv4 (30 bytes): unsupported `protocol`"
        );
        drop(refused);
        assert!(UdpPacket::from_ipv6(v6(true)).is_ok());
        let refused = UdpPacket::from_ipv6(v6(false)).unwrap_err();
        assert_eq!(refused.error().reason(), tpa::stage::Reason::UNSUPPORTED);
        drop(refused);
        pool().assert_whole();
    }
}
