//! ICMP errors to TCP (RFC 5927): the stage in an IP branch's "other"
//! side that takes the ICMPv4 and ICMPv6 errors quoting one of our TCP
//! segments and hands them to the connection of the quoted 4-tuple.
//!
//! | message | code | to the connection |
//! |---|---|---|
//! | v4 destination unreachable | 4 fragmentation needed (RFC 1191) | path MTU |
//! | v6 packet too big (RFC 8201) | | path MTU |
//! | v4 destination unreachable | 2 protocol, 3 port | hard: ECONNREFUSED |
//! | v4 destination unreachable | 6–10, 13–15 (unknown, isolated, prohibited, precedence) | hard: EHOSTUNREACH, ENETUNREACH |
//! | v4 destination unreachable | 0 net, 1 host, 5 source route, 11, 12 | soft: ENETUNREACH, EHOSTUNREACH |
//! | v6 destination unreachable | 4 port | hard: ECONNREFUSED |
//! | v6 destination unreachable | 1 prohibited, 5 policy, 6 reject route | hard: EHOSTUNREACH |
//! | v6 destination unreachable | 0 no route, 2 beyond scope, 3 address | soft: ENETUNREACH, EHOSTUNREACH |
//! | v4 / v6 time exceeded | any | soft: EHOSTUNREACH |
//!
//! Hard and soft follow Linux's `icmp_err_convert` "fatal" column
//! (where Linux reports ENOPROTOOPT, EHOSTDOWN, ENONET or EACCES, the
//! closest [`SocketError`] is used). Other ICMP messages, errors quoting
//! something other than TCP and redirects, source quenches (RFC 6633) and
//! parameter problems pass on untouched.
//!
//! The checks, each a counted drop: the ICMP checksum (`bad-checksum`), a
//! quote holding the IP header and the TCP ports and sequence number
//! (`too-short`, RFC 792's 8 bytes), a connection on the quoted 4-tuple
//! (`no-socket`), and the quoted sequence number in flight
//! ([`OUT_OF_WINDOW`], RFC 5927 §4.1).

use core::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tpa::app::{Events, SocketError};
use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::state::Part;
use tpa::wire::icmpv4::Icmpv4View;
use tpa::wire::icmpv6::Icmpv6View;
use tpa::wire::ipv4::{IpProtocol, Ipv4View};
use tpa::wire::ipv6::Ipv6View;

use super::conn::{IcmpError, IcmpOutcome};
use super::pmtu::{believed_mtu, mss_for_mtu};
use super::seq::SeqNumber;
use super::wire::FourTuple;
use super::{output, TcpSockets};
use crate::packet::{Ipv4Packet, Ipv6Packet};

/// An ICMP error whose quoted sequence number is not in flight on its
/// connection: stale or forged (RFC 5927 §4.1).
pub const OUT_OF_WINDOW: Reason = Reason::custom(0);

/// What [`TcpIcmp`] did with the errors it took (drops are also the
/// pipeline's, by reason).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpIcmpCounters {
    /// "Fragmentation needed" / "packet too big" that lowered a
    /// connection's MSS.
    pub mtu_lowered: u64,
    /// "Fragmentation needed" / "packet too big" reporting no less than
    /// the connection's path already carries.
    pub mtu_unchanged: u64,
    /// Connections in their handshake ended by a hard error.
    pub aborted: u64,
    /// Errors kept as a connection's soft error.
    pub soft: u64,
    /// Times buffers ran out while cutting a send queue to a new MSS.
    pub starved: u64,
    /// Errors about a segment not in flight ([`OUT_OF_WINDOW`]).
    pub out_of_window: u64,
    /// Errors quoting TCP for which no connection exists.
    pub no_connection: u64,
}

/// The ICMP errors of the [`Ipv4Packet`]s or [`Ipv6Packet`]s (`P`) of an
/// IP branch that quote one of our TCP segments, to the connection (its
/// output follows in [`TcpInput`](super::TcpInput)'s poll); everything
/// else passes. Goes on the non-TCP side of [`tcp_branch`](super::tcp_branch).
pub struct TcpIcmp<P> {
    counters: TcpIcmpCounters,
    _packets: PhantomData<fn(P)>,
}

impl<P> TcpIcmp<P> {
    /// A stage with zeroed counters.
    pub fn new() -> Self {
        TcpIcmp {
            counters: TcpIcmpCounters::default(),
            _packets: PhantomData,
        }
    }

    /// What the stage did.
    pub fn counters(&self) -> &TcpIcmpCounters {
        &self.counters
    }
}

impl<P> Default for TcpIcmp<P> {
    fn default() -> Self {
        TcpIcmp::new()
    }
}

impl<P> core::fmt::Debug for TcpIcmp<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TcpIcmp")
            .field("counters", &self.counters)
            .finish()
    }
}

/// What an ICMP error says, before its quote is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Says {
    /// The next hop's MTU as reported (0: none given).
    Mtu(u32),
    Hard(SocketError),
    Soft(SocketError),
}

/// An error quoting a TCP segment of ours: its connection's 4-tuple (from
/// our side), the quoted sequence number and the quoted packet's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quote {
    tuple: FourTuple,
    seq: SeqNumber,
    sent_len: u16,
}

/// What ICMPv4 type `t`, code `c` says to TCP, `None` when nothing.
fn says_v4(t: u8, c: u8, mtu: u16) -> Option<Says> {
    use SocketError::{ConnectionRefused, HostUnreachable, NetworkUnreachable};
    Some(match (t, c) {
        (3, 4) => Says::Mtu(u32::from(mtu)),
        (3, 2 | 3) => Says::Hard(ConnectionRefused),
        (3, 6 | 9) => Says::Hard(NetworkUnreachable),
        (3, 7 | 8 | 10 | 13..=15) => Says::Hard(HostUnreachable),
        (3, 0 | 11) => Says::Soft(NetworkUnreachable),
        (3, 1 | 5 | 12) => Says::Soft(HostUnreachable),
        (11, _) => Says::Soft(HostUnreachable),
        _ => return None,
    })
}

/// What ICMPv6 type `t`, code `c` says to TCP, `None` when nothing.
fn says_v6(t: u8, c: u8, mtu: u32) -> Option<Says> {
    use SocketError::{ConnectionRefused, HostUnreachable, NetworkUnreachable};
    Some(match (t, c) {
        (2, _) => Says::Mtu(mtu),
        (1, 4) => Says::Hard(ConnectionRefused),
        (1, 1 | 5 | 6) => Says::Hard(HostUnreachable),
        (1, 0) => Says::Soft(NetworkUnreachable),
        (1, 2 | 3) => Says::Soft(HostUnreachable),
        (3, _) => Says::Soft(HostUnreachable),
        _ => return None,
    })
}

/// The TCP ports and sequence number at the start of a quoted segment.
fn quoted_tcp(tcp: &[u8]) -> Option<(u16, u16, SeqNumber)> {
    let b = tcp.get(..8)?;
    Some((
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
        SeqNumber::new(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
    ))
}

/// The quote of an ICMPv4 error (the message from its ninth byte):
/// `Ok(None)` when it quotes something other than TCP (or a later
/// fragment, which holds no TCP header).
fn quote_v4(q: &[u8]) -> Result<Option<Quote>, Reason> {
    if q.len() < 20 {
        return Err(Reason::TOO_SHORT);
    }
    let ihl = usize::from(q[0] & 0x0f) * 4;
    if q[0] >> 4 != 4 || ihl < 20 {
        return Err(Reason::MALFORMED);
    }
    let offset = u16::from_be_bytes([q[6], q[7]]) & 0x1fff;
    if q[9] != IpProtocol::Tcp.raw() || offset != 0 {
        return Ok(None);
    }
    let (sport, dport, seq) = q.get(ihl..).and_then(quoted_tcp).ok_or(Reason::TOO_SHORT)?;
    let src = Ipv4Addr::new(q[12], q[13], q[14], q[15]);
    let dst = Ipv4Addr::new(q[16], q[17], q[18], q[19]);
    Ok(Some(Quote {
        tuple: FourTuple {
            local: SocketAddr::new(IpAddr::V4(src), sport),
            remote: SocketAddr::new(IpAddr::V4(dst), dport),
        },
        seq,
        sent_len: u16::from_be_bytes([q[2], q[3]]),
    }))
}

/// The quote of an ICMPv6 error: `Ok(None)` when it quotes something
/// other than TCP right after the IPv6 header (extension headers are not
/// walked).
fn quote_v6(q: &[u8]) -> Result<Option<Quote>, Reason> {
    if q.len() < 40 {
        return Err(Reason::TOO_SHORT);
    }
    if q[0] >> 4 != 6 {
        return Err(Reason::MALFORMED);
    }
    if q[6] != IpProtocol::Tcp.raw() {
        return Ok(None);
    }
    let (sport, dport, seq) = quoted_tcp(&q[40..]).ok_or(Reason::TOO_SHORT)?;
    let addr = |b: &[u8]| -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        a.into()
    };
    let payload = u16::from_be_bytes([q[4], q[5]]);
    Ok(Some(Quote {
        tuple: FourTuple {
            local: SocketAddr::new(IpAddr::V6(addr(&q[8..24])), sport),
            remote: SocketAddr::new(IpAddr::V6(addr(&q[24..40])), dport),
        },
        seq,
        sent_len: payload.saturating_add(40),
    }))
}

impl<P> TcpIcmp<P> {
    /// Hands what `says` about `quote` to its connection.
    fn deliver<B, S>(
        &mut self,
        quote: Quote,
        says: Says,
        cx: &mut Cx<'_, B, S>,
    ) -> Result<(), Reason>
    where
        B: PacketBuf,
        S: Part<TcpSockets<B>> + Part<Events>,
    {
        let now_ns = cx.now_ns();
        let ipv6 = quote.tuple.local.is_ipv6();
        let Some(index) = cx.part::<TcpSockets<B>>().find(&quote.tuple) else {
            self.counters.no_connection += 1;
            return Err(Reason::NO_SOCKET);
        };
        let (error, mtu) = match says {
            Says::Mtu(reported) => {
                let mtu = believed_mtu(reported, quote.sent_len, ipv6);
                let mss = mss_for_mtu(mtu, ipv6);
                (IcmpError::PacketTooBig { mss }, Some(mtu))
            }
            Says::Hard(e) => (IcmpError::Hard(e), None),
            Says::Soft(e) => (IcmpError::Soft(e), None),
        };
        let (state, port) = cx.split();
        let outcome = Part::<TcpSockets<B>>::part_mut(state).icmp_error(
            index,
            quote.seq,
            error,
            mtu,
            &mut || port.alloc(),
            now_ns,
        );
        let c = &mut self.counters;
        match outcome {
            None => {
                c.no_connection += 1;
                return Err(Reason::NO_SOCKET);
            }
            Some(IcmpOutcome::OutOfWindow) => {
                c.out_of_window += 1;
                return Err(OUT_OF_WINDOW);
            }
            Some(IcmpOutcome::MssLowered { starved, .. }) => {
                c.mtu_lowered += 1;
                c.starved += u64::from(starved);
            }
            Some(IcmpOutcome::MssUnchanged) => c.mtu_unchanged += 1,
            Some(IcmpOutcome::Aborted) => c.aborted += 1,
            Some(IcmpOutcome::Soft) => c.soft += 1,
        }
        // The error (if any) now; the retransmission in TcpInput's poll.
        output::raise(cx, index);
        Ok(())
    }
}

impl<B, S> Stage<B, S> for TcpIcmp<Ipv4Packet<B>>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events>,
{
    type In = Ipv4Packet<B>;
    type Out = Ipv4Packet<B>;

    const CUSTOM_REASONS: &'static [&'static str] = &["icmp-out-of-window"];

    fn process(&mut self, p: Ipv4Packet<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Ipv4Packet<B>, B> {
        match Ipv4View::new(p.l3()) {
            Ok(ip) if ip.protocol() == IpProtocol::Icmp => {}
            Ok(_) => return Verdict::Pass(p),
            Err(_) => return Verdict::Drop(Reason::MALFORMED),
        }
        let icmp = p.l4();
        if icmp.len() < 8 {
            return Verdict::Pass(p);
        }
        let mtu = u16::from_be_bytes([icmp[6], icmp[7]]);
        let Some(says) = says_v4(icmp[0], icmp[1], mtu) else {
            return Verdict::Pass(p);
        };
        if !Icmpv4View::new(icmp).is_ok_and(|v| v.checksum_ok()) {
            return Verdict::Drop(Reason::BAD_CHECKSUM);
        }
        let quote = match quote_v4(&icmp[8..]) {
            Ok(Some(q)) => q,
            Ok(None) => return Verdict::Pass(p),
            Err(r) => return Verdict::Drop(r),
        };
        match self.deliver(quote, says, cx) {
            Ok(()) => Verdict::Consumed,
            Err(r) => Verdict::Drop(r),
        }
    }
}

impl<B, S> Stage<B, S> for TcpIcmp<Ipv6Packet<B>>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events>,
{
    type In = Ipv6Packet<B>;
    type Out = Ipv6Packet<B>;

    const CUSTOM_REASONS: &'static [&'static str] = &["icmp-out-of-window"];

    fn process(&mut self, p: Ipv6Packet<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Ipv6Packet<B>, B> {
        let (src, dst) = match Ipv6View::new(p.l3()) {
            Ok(ip) if ip.next_header() == IpProtocol::Icmpv6 => (ip.src(), ip.dst()),
            Ok(_) => return Verdict::Pass(p),
            Err(_) => return Verdict::Drop(Reason::MALFORMED),
        };
        let icmp = p.l4();
        if icmp.len() < 8 {
            return Verdict::Pass(p);
        }
        let mtu = u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]);
        let Some(says) = says_v6(icmp[0], icmp[1], mtu) else {
            return Verdict::Pass(p);
        };
        if !Icmpv6View::new(icmp).is_ok_and(|v| v.checksum_ok_v6(&src, &dst)) {
            return Verdict::Drop(Reason::BAD_CHECKSUM);
        }
        let quote = match quote_v6(&icmp[8..]) {
            Ok(Some(q)) => q,
            Ok(None) => return Verdict::Pass(p),
            Err(r) => return Verdict::Drop(r),
        };
        match self.deliver(quote, says, cx) {
            Ok(()) => Verdict::Consumed,
            Err(r) => Verdict::Drop(r),
        }
    }
}
