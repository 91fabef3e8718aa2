//! The split of an IP branch by transport protocol: TCP one way, the rest
//! (UDP, ICMP, NDP, …) the other, so a branch reads
//! `ip input → (rest | tcp)`.

use tpa::buf::PacketBuf;
use tpa::stage::Demux;
use tpa::wire::ipv4::IpProtocol;

use crate::packet::{Ipv4Packet, Ipv6Packet, Rejected, TcpPacket};
use crate::split::{self, ProtocolSplit, TransportProtocol};

/// TCP as a [`TransportProtocol`]: the protocol a [`TcpSplit`] sends right.
#[derive(Debug, Clone, Copy)]
pub struct Tcp;

impl TransportProtocol for Tcp {
    const NAME: &'static str = "Tcp";
    const PROTOCOL: IpProtocol = IpProtocol::Tcp;
    type Packet<B: PacketBuf> = TcpPacket<B>;

    #[inline]
    fn wrap<B: PacketBuf>(buf: B) -> TcpPacket<B> {
        TcpPacket::new_unchecked(buf)
    }
}

/// Classifies the [`Ipv4Packet`]s or [`Ipv6Packet`]s (`P`) of an IP branch
/// by their protocol: TCP right as a [`TcpPacket`], everything else left
/// unchanged. The classifier of the [`Demux`] that [`tcp_branch`] builds.
pub type TcpSplit<P> = ProtocolSplit<P, Tcp>;

/// An IP branch's tail split by protocol: `other` takes what is not TCP,
/// `tcp` (usually [`TcpInput`](super::TcpInput)) takes TCP.
pub type TcpBranch<P, O, T> = Demux<TcpSplit<P>, O, T>;

/// Builds the split for packets of type `P`: `other` gets what is not TCP,
/// `tcp` the TCP segments.
pub fn tcp_branch<P, O, T>(other: O, tcp: T) -> TcpBranch<P, O, T> {
    Demux::new(TcpSplit::new(), other, tcp)
}

impl<B: PacketBuf> TcpPacket<B> {
    /// The TCP segment in `packet`, if its protocol is TCP, as
    /// [`TcpSplit`] decides.
    ///
    /// # Errors
    ///
    /// An [`Ipv4`](crate::packet::Layer::Ipv4)
    /// [`PacketError`](crate::packet::PacketError) (`unsupported`
    /// protocol), with the buffer back.
    #[inline]
    pub fn from_ipv4(packet: Ipv4Packet<B>) -> Result<Self, Rejected<B>> {
        split::from_ipv4::<Tcp, B>(packet)
    }

    /// The TCP segment in `packet`, if its next header is TCP, as
    /// [`TcpSplit`] decides.
    ///
    /// # Errors
    ///
    /// An [`Ipv6`](crate::packet::Layer::Ipv6)
    /// [`PacketError`](crate::packet::PacketError) (`unsupported` next
    /// header), with the buffer back.
    #[inline]
    pub fn from_ipv6(packet: Ipv6Packet<B>) -> Result<Self, Rejected<B>> {
        split::from_ipv6::<Tcp, B>(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::testing::{ipv4_packet, ipv6_packet, segment_frame, udp_frame, Seg};
    use crate::testing::{pool, with_cx, BufferPool};
    use tpa::buf::PoolBuf;
    use tpa::stage::{Fork, Stage, Verdict};

    #[test]
    fn tcp_goes_right_the_rest_left_in_both_families() {
        let mut s4 = TcpSplit::<Ipv4Packet<PoolBuf>>::new();
        let mut s6 = TcpSplit::<Ipv6Packet<PoolBuf>>::new();
        with_cx(|cx| {
            let tcp4 = ipv4_packet(&segment_frame(false, &Seg::syn(1000, 80)));
            match s4.process(tcp4, cx) {
                Verdict::Pass(Fork::Right(t)) => {
                    assert!(!t.is_ipv6());
                    assert_eq!(t.l4_offset(), 34);
                }
                _ => panic!("TCP over IPv4 goes right"),
            }
            let udp4 = ipv4_packet(&udp_frame(false));
            assert!(matches!(s4.process(udp4, cx), Verdict::Pass(Fork::Left(_))));
            let tcp6 = ipv6_packet(&segment_frame(true, &Seg::syn(1000, 80)));
            match s6.process(tcp6, cx) {
                Verdict::Pass(Fork::Right(t)) => {
                    assert!(t.is_ipv6());
                    assert_eq!(t.l4_offset(), 54);
                }
                _ => panic!("TCP over IPv6 goes right"),
            }
            let udp6 = ipv6_packet(&udp_frame(true));
            assert!(matches!(s6.process(udp6, cx), Verdict::Pass(Fork::Left(_))));
        });
        pool().assert_whole();
    }

    #[test]
    fn the_checked_constructors_refuse_other_protocols() {
        assert!(TcpPacket::from_ipv4(ipv4_packet(&segment_frame(false, &Seg::syn(1, 80)))).is_ok());
        let refused = TcpPacket::from_ipv4(ipv4_packet(&udp_frame(false))).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "IPv4 (30 bytes): unsupported `protocol`"
        );
        drop(refused);
        assert!(TcpPacket::from_ipv6(ipv6_packet(&segment_frame(true, &Seg::syn(1, 80)))).is_ok());
        let refused = TcpPacket::from_ipv6(ipv6_packet(&udp_frame(true))).unwrap_err();
        assert_eq!(refused.error().reason(), tpa::stage::Reason::UNSUPPORTED);
        drop(refused);
        pool().assert_whole();
    }
}
