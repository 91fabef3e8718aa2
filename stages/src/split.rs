//! The split of an IP branch by transport protocol, shared by TCP and UDP:
//! one protocol's packets one way, the rest (ICMP, NDP, the other
//! transport, …) the other, so a branch reads `ip input → (rest | proto)`.
//! [`TcpSplit`](crate::tcp::TcpSplit) and [`UdpSplit`](crate::udp::UdpSplit)
//! are this split for their [`TransportProtocol`].

use core::marker::PhantomData;

use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Fork, Stage, Verdict};
use tpa::wire::ipv4::{IpProtocol, Ipv4View};
use tpa::wire::ipv6::Ipv6View;

use crate::packet::{Ipv4Packet, Ipv6Packet, Layer, PacketError, PacketErrorKind, Rejected};

/// A transport protocol a [`ProtocolSplit`] sends right: its IP protocol
/// number and its packet type.
pub trait TransportProtocol {
    /// The protocol's name, for `Debug`.
    const NAME: &'static str;
    /// Its IPv4 protocol / IPv6 next header.
    const PROTOCOL: IpProtocol;
    /// Its packet over a buffer of type `B`.
    type Packet<B: PacketBuf>;
    /// `buf` as the protocol's packet; the split checked its protocol.
    fn wrap<B: PacketBuf>(buf: B) -> Self::Packet<B>;
}

/// Classifies the [`Ipv4Packet`]s or [`Ipv6Packet`]s (`P`) of an IP branch
/// by their protocol: `T`'s right as `T`'s packet, everything else left
/// unchanged. The classifier of the [`Demux`](tpa::stage::Demux) of a
/// protocol's branch.
pub struct ProtocolSplit<P, T> {
    _packets: PhantomData<fn(P) -> T>,
}

impl<P, T> ProtocolSplit<P, T> {
    /// A splitter.
    pub fn new() -> Self {
        ProtocolSplit {
            _packets: PhantomData,
        }
    }
}

impl<P, T> Default for ProtocolSplit<P, T> {
    fn default() -> Self {
        ProtocolSplit::new()
    }
}

impl<P, T: TransportProtocol> core::fmt::Debug for ProtocolSplit<P, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}Split", T::NAME)
    }
}

/// Byte offset of the protocol field in an IPv4 header.
const V4_PROTOCOL: usize = 9;

/// Whether `p` (its IPv4 header checked) carries `protocol`: IP input
/// checked the header, so its protocol byte is read without parsing the
/// header again, at its offset in the frame (one bound check, not the
/// network layer's slice and then the byte; a header too short to hold
/// one carries nothing).
#[inline]
fn v4_carries<B: PacketBuf>(p: &Ipv4Packet<B>, protocol: IpProtocol) -> bool {
    let byte = p.buf().data().get(p.l3_offset() + V4_PROTOCOL).copied();
    debug_assert_eq!(
        byte.map(IpProtocol::from),
        Ipv4View::new(p.l3()).ok().map(|ip| ip.protocol()),
        "an Ipv4Packet's header is whole"
    );
    byte.is_some_and(|b| IpProtocol::from(b) == protocol)
}

/// Whether `l3` (a checked IPv6 header without extension headers) carries
/// `protocol`.
#[inline]
fn v6_carries(l3: &[u8], protocol: IpProtocol) -> bool {
    Ipv6View::new(l3).is_ok_and(|ip| ip.next_header() == protocol)
}

impl<B: PacketBuf, S, T: TransportProtocol> Stage<B, S> for ProtocolSplit<Ipv4Packet<B>, T> {
    type In = Ipv4Packet<B>;
    type Out = Fork<Ipv4Packet<B>, T::Packet<B>>;

    #[inline]
    fn process(&mut self, p: Ipv4Packet<B>, _cx: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        if v4_carries(&p, T::PROTOCOL) {
            Verdict::Pass(Fork::Right(T::wrap(p.into_buf())))
        } else {
            Verdict::Pass(Fork::Left(p))
        }
    }
}

impl<B: PacketBuf, S, T: TransportProtocol> Stage<B, S> for ProtocolSplit<Ipv6Packet<B>, T> {
    type In = Ipv6Packet<B>;
    type Out = Fork<Ipv6Packet<B>, T::Packet<B>>;

    #[inline]
    fn process(&mut self, p: Ipv6Packet<B>, _cx: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        if v6_carries(p.l3(), T::PROTOCOL) {
            Verdict::Pass(Fork::Right(T::wrap(p.into_buf())))
        } else {
            Verdict::Pass(Fork::Left(p))
        }
    }
}

/// `T`'s packet in `packet`, if its protocol is `T`'s, as
/// [`ProtocolSplit`] decides.
///
/// # Errors
///
/// An [`Ipv4`](Layer::Ipv4) [`PacketError`] (`unsupported` protocol), with
/// the buffer back.
#[inline]
pub fn from_ipv4<T: TransportProtocol, B: PacketBuf>(
    packet: Ipv4Packet<B>,
) -> Result<T::Packet<B>, Rejected<B>> {
    if v4_carries(&packet, T::PROTOCOL) {
        return Ok(T::wrap(packet.into_buf()));
    }
    let kind = PacketErrorKind::Unsupported { field: "protocol" };
    let error = PacketError::new(Layer::Ipv4, packet.l3().len(), kind);
    Err(Rejected::new(error, packet.into_buf()))
}

/// `T`'s packet in `packet`, if its next header is `T`'s, as
/// [`ProtocolSplit`] decides.
///
/// # Errors
///
/// An [`Ipv6`](Layer::Ipv6) [`PacketError`] (`unsupported` next header),
/// with the buffer back.
#[inline]
pub fn from_ipv6<T: TransportProtocol, B: PacketBuf>(
    packet: Ipv6Packet<B>,
) -> Result<T::Packet<B>, Rejected<B>> {
    if v6_carries(packet.l3(), T::PROTOCOL) {
        return Ok(T::wrap(packet.into_buf()));
    }
    let kind = PacketErrorKind::Unsupported {
        field: "next_header",
    };
    let error = PacketError::new(Layer::Ipv6, packet.l3().len(), kind);
    Err(Rejected::new(error, packet.into_buf()))
}
