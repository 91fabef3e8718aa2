//! The split of an IP branch by transport protocol: TCP one way, the rest
//! (UDP, ICMP, NDP, …) the other, so a branch reads
//! `ip input → (rest | tcp)`.

use core::marker::PhantomData;

use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Demux, Fork, Stage, Verdict};
use tpa::wire::ipv4::{IpProtocol, Ipv4View};
use tpa::wire::ipv6::Ipv6View;

use crate::packet::{
    Ipv4Packet, Ipv6Packet, Layer, PacketError, PacketErrorKind, Rejected, TcpPacket,
};

/// Classifies the [`Ipv4Packet`]s or [`Ipv6Packet`]s (`P`) of an IP branch
/// by their protocol: TCP right as a [`TcpPacket`], everything else left
/// unchanged. The classifier of the [`Demux`] that [`tcp_branch`] builds.
pub struct TcpSplit<P> {
    _packets: PhantomData<fn(P)>,
}

impl<P> TcpSplit<P> {
    /// A splitter.
    pub fn new() -> Self {
        TcpSplit {
            _packets: PhantomData,
        }
    }
}

impl<P> Default for TcpSplit<P> {
    fn default() -> Self {
        TcpSplit::new()
    }
}

impl<P> core::fmt::Debug for TcpSplit<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TcpSplit")
    }
}

/// An IP branch's tail split by protocol: `other` takes what is not TCP,
/// `tcp` (usually [`TcpInput`](super::TcpInput)) takes TCP.
pub type TcpBranch<P, O, T> = Demux<TcpSplit<P>, O, T>;

/// Builds the split for packets of type `P`: `other` gets what is not TCP,
/// `tcp` the TCP segments.
pub fn tcp_branch<P, O, T>(other: O, tcp: T) -> TcpBranch<P, O, T> {
    Demux::new(TcpSplit::new(), other, tcp)
}

/// Whether `l3` (a checked IPv4 header) carries TCP.
#[inline]
fn v4_is_tcp(l3: &[u8]) -> bool {
    Ipv4View::new(l3).is_ok_and(|ip| ip.protocol() == IpProtocol::Tcp)
}

/// Whether `l3` (a checked IPv6 header without extension headers) carries
/// TCP.
#[inline]
fn v6_is_tcp(l3: &[u8]) -> bool {
    Ipv6View::new(l3).is_ok_and(|ip| ip.next_header() == IpProtocol::Tcp)
}

impl<B: PacketBuf, S> Stage<B, S> for TcpSplit<Ipv4Packet<B>> {
    type In = Ipv4Packet<B>;
    type Out = Fork<Ipv4Packet<B>, TcpPacket<B>>;

    #[inline]
    fn process(&mut self, p: Ipv4Packet<B>, _cx: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        if v4_is_tcp(p.l3()) {
            Verdict::Pass(Fork::Right(TcpPacket::new_unchecked(p.into_buf())))
        } else {
            Verdict::Pass(Fork::Left(p))
        }
    }
}

impl<B: PacketBuf, S> Stage<B, S> for TcpSplit<Ipv6Packet<B>> {
    type In = Ipv6Packet<B>;
    type Out = Fork<Ipv6Packet<B>, TcpPacket<B>>;

    #[inline]
    fn process(&mut self, p: Ipv6Packet<B>, _cx: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        if v6_is_tcp(p.l3()) {
            Verdict::Pass(Fork::Right(TcpPacket::new_unchecked(p.into_buf())))
        } else {
            Verdict::Pass(Fork::Left(p))
        }
    }
}

impl<B: PacketBuf> TcpPacket<B> {
    /// The TCP segment in `packet`, if its protocol is TCP, as [`TcpSplit`]
    /// decides.
    ///
    /// # Errors
    ///
    /// An [`Ipv4`](Layer::Ipv4) [`PacketError`] (`unsupported` protocol),
    /// with the buffer back.
    #[inline]
    pub fn from_ipv4(packet: Ipv4Packet<B>) -> Result<Self, Rejected<B>> {
        if v4_is_tcp(packet.l3()) {
            return Ok(TcpPacket::new_unchecked(packet.into_buf()));
        }
        let kind = PacketErrorKind::Unsupported { field: "protocol" };
        let error = PacketError::new(Layer::Ipv4, packet.l3().len(), kind);
        Err(Rejected::new(error, packet.into_buf()))
    }

    /// The TCP segment in `packet`, if its next header is TCP, as
    /// [`TcpSplit`] decides.
    ///
    /// # Errors
    ///
    /// An [`Ipv6`](Layer::Ipv6) [`PacketError`] (`unsupported` next header),
    /// with the buffer back.
    #[inline]
    pub fn from_ipv6(packet: Ipv6Packet<B>) -> Result<Self, Rejected<B>> {
        if v6_is_tcp(packet.l3()) {
            return Ok(TcpPacket::new_unchecked(packet.into_buf()));
        }
        let kind = PacketErrorKind::Unsupported {
            field: "next_header",
        };
        let error = PacketError::new(Layer::Ipv6, packet.l3().len(), kind);
        Err(Rejected::new(error, packet.into_buf()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::testing::{ipv4_packet, ipv6_packet, segment_frame, udp_frame, Seg};
    use crate::testing::{pool, with_cx, BufferPool};
    use tpa::buf::PoolBuf;

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
