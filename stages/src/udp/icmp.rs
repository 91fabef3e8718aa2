//! ICMP errors to UDP sockets: the stage in an IP branch's "other" side
//! that takes the ICMPv4 and ICMPv6 errors quoting one of our UDP
//! datagrams and keeps the hard ones (port unreachable: ECONNREFUSED, and
//! the rest of [`icmp_error`](crate::icmp_error)'s "hard" rows) as the
//! sending socket's pending error, with an
//! [`EventKind::Error`] for the application; it reads them with
//! [`take_error`](super::take_error).
//!
//! tpa's UDP sockets are not connected, so this is what Linux does for a
//! socket with `IP_RECVERR` (one error deep, with the peer it concerns),
//! and, for a connected one, its ECONNREFUSED on the next call. Soft
//! errors and path MTUs are counted and dropped (Linux keeps them only
//! for `IP_RECVERR`; datagrams are not cut to a path MTU).
//!
//! The checks, each a counted drop: the ICMP checksum (`bad-checksum`), a
//! quote holding the IP header and the UDP ports (`too-short`), and a
//! socket bound to the quoted source (`no-socket`). Errors quoting
//! something other than UDP pass on untouched.

use core::marker::PhantomData;
use std::net::SocketAddr;

use tpa::app::{Event, EventKind, Events};
use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::state::Part;
use tpa::wire::ipv4::IpProtocol;

use super::UdpSockets;
use crate::icmp_error::{read_v4, read_v6, Quoted, Read, Says};
use crate::packet::{Ipv4Packet, Ipv6Packet};

/// What [`UdpIcmp`] did with the errors it took (drops are also the
/// pipeline's, by reason).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpIcmpCounters {
    /// Hard errors kept as a socket's pending error.
    pub delivered: u64,
    /// Soft errors and path MTUs about our datagrams, dropped.
    pub ignored: u64,
    /// Errors whose event found the event queue full (the error is still
    /// pending on the socket).
    pub events_lost: u64,
}

/// The ICMP errors of the [`Ipv4Packet`]s or [`Ipv6Packet`]s (`P`) of an
/// IP branch that quote one of our UDP datagrams, to the socket that
/// sent it; everything else passes. Goes on the non-UDP side of
/// [`udp_branch`](super::udp_branch).
pub struct UdpIcmp<P> {
    counters: UdpIcmpCounters,
    _packets: PhantomData<fn(P)>,
}

impl<P> UdpIcmp<P> {
    /// A stage with zeroed counters.
    pub fn new() -> Self {
        UdpIcmp {
            counters: UdpIcmpCounters::default(),
            _packets: PhantomData,
        }
    }

    /// What the stage did.
    pub fn counters(&self) -> &UdpIcmpCounters {
        &self.counters
    }

    /// Keeps what `says` about `quote` on the socket that sent it.
    fn deliver<B, S>(
        &mut self,
        says: Says,
        quote: &Quoted<'_>,
        cx: &mut Cx<'_, B, S>,
    ) -> Verdict<P, B>
    where
        B: PacketBuf,
        S: Part<UdpSockets<B>> + Part<Events>,
    {
        let Some((sport, dport)) = quote.ports() else {
            return Verdict::Drop(Reason::TOO_SHORT);
        };
        let Some(socket) = cx.part::<UdpSockets<B>>().lookup(quote.src, sport) else {
            return Verdict::Drop(Reason::NO_SOCKET);
        };
        let Says::Hard(error) = says else {
            self.counters.ignored += 1;
            return Verdict::Consumed;
        };
        let peer = SocketAddr::new(quote.dst, dport);
        if !cx.part::<UdpSockets<B>>().note_error(socket, error, peer) {
            return Verdict::Drop(Reason::NO_SOCKET);
        }
        self.counters.delivered += 1;
        let event = Event {
            socket,
            kind: EventKind::Error(error),
        };
        if !cx.part::<Events>().push(event) {
            self.counters.events_lost += 1;
        }
        Verdict::Consumed
    }
}

impl<P> Default for UdpIcmp<P> {
    fn default() -> Self {
        UdpIcmp::new()
    }
}

impl<P> core::fmt::Debug for UdpIcmp<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UdpIcmp")
            .field("counters", &self.counters)
            .finish()
    }
}

impl<B, S> Stage<B, S> for UdpIcmp<Ipv4Packet<B>>
where
    B: PacketBuf,
    S: Part<UdpSockets<B>> + Part<Events>,
{
    type In = Ipv4Packet<B>;
    type Out = Ipv4Packet<B>;

    fn process(&mut self, p: Ipv4Packet<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Ipv4Packet<B>, B> {
        match read_v4(p.l3(), p.l4(), IpProtocol::Udp) {
            Read::Pass => Verdict::Pass(p),
            Read::Drop(r) => Verdict::Drop(r),
            Read::Error(says, q) => self.deliver(says, &q, cx),
        }
    }
}

impl<B, S> Stage<B, S> for UdpIcmp<Ipv6Packet<B>>
where
    B: PacketBuf,
    S: Part<UdpSockets<B>> + Part<Events>,
{
    type In = Ipv6Packet<B>;
    type Out = Ipv6Packet<B>;

    fn process(&mut self, p: Ipv6Packet<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Ipv6Packet<B>, B> {
        match read_v6(p.l3(), p.l4(), IpProtocol::Udp) {
            Read::Pass => Verdict::Pass(p),
            Read::Drop(r) => Verdict::Drop(r),
            Read::Error(says, q) => self.deliver(says, &q, cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, with_state_at, BufferPool};
    use crate::udp::testing::{them, v6, UdpState, THEM4, THEM_MAC, US4, US6, US_MAC};
    use etherparse::PacketBuilder;
    use tpa::app::SocketError;
    use tpa::buf::PoolBuf;

    /// An ICMP error from the peer quoting our datagram from `sport` to
    /// its port 9 (cut to `keep` bytes of the quote).
    fn error(ipv6: bool, t: u8, c: u8, sport: u16, keep: usize) -> Vec<u8> {
        let mut quoted = Vec::new();
        let eth = PacketBuilder::ethernet2(US_MAC, THEM_MAC);
        if ipv6 {
            eth.ipv6(
                v6(US6).octets(),
                v6(crate::udp::testing::THEM6).octets(),
                64,
            )
            .udp(sport, 9)
            .write(&mut quoted, b"hello")
            .unwrap();
        } else {
            eth.ipv4(US4, THEM4, 64)
                .udp(sport, 9)
                .write(&mut quoted, b"hello")
                .unwrap();
        }
        let quoted = &quoted[14..(14 + keep).min(quoted.len())];
        let mut out = Vec::new();
        let eth = PacketBuilder::ethernet2(THEM_MAC, US_MAC);
        if ipv6 {
            eth.ipv6(
                v6(crate::udp::testing::THEM6).octets(),
                v6(US6).octets(),
                64,
            )
            .icmpv6_raw(t, c, [0; 4])
            .write(&mut out, quoted)
            .unwrap();
        } else {
            eth.ipv4(THEM4, US4, 64)
                .icmpv4_raw(t, c, [0; 4])
                .write(&mut out, quoted)
                .unwrap();
        }
        out
    }

    /// `frame` through the stage of its family: the verdict's name.
    fn run(state: &mut UdpState, frame: &[u8]) -> &'static str {
        let buf = crate::testing::frame(frame);
        let iface = crate::udp::testing::iface();
        with_state_at(1, state, |cx| {
            let name = |v: Verdict<(), PoolBuf>| match v {
                Verdict::Consumed => "consumed",
                Verdict::Pass(()) => "pass",
                Verdict::Drop(r) => r.name(&[]),
                _ => "other",
            };
            if frame[12..14] == [0x86, 0xdd] {
                let p = Ipv6Packet::parse(buf, &iface).unwrap();
                let mut stage = UdpIcmp::<Ipv6Packet<PoolBuf>>::new();
                name(Stage::<PoolBuf, UdpState>::process(&mut stage, p, cx).map(|_| ()))
            } else {
                let p = Ipv4Packet::parse(buf, &iface).unwrap();
                let mut stage = UdpIcmp::<Ipv4Packet<PoolBuf>>::new();
                name(Stage::<PoolBuf, UdpState>::process(&mut stage, p, cx).map(|_| ()))
            }
        })
        .0
    }

    #[test]
    fn a_hard_error_is_the_sockets_pending_error_once_and_the_rest_is_counted() {
        for ipv6 in [false, true] {
            let mut state = UdpState::new();
            let any = if ipv6 { "[::]:4000" } else { "0.0.0.0:4000" };
            let iface = crate::udp::testing::iface();
            let socket = state.sockets.bind(any.parse().unwrap(), &iface).unwrap();
            let (unreach, port_code, time_exceeded) = if ipv6 { (1, 4, 3) } else { (3, 3, 11) };
            // Port unreachable: ECONNREFUSED on the socket, with the peer.
            assert_eq!(
                run(&mut state, &error(ipv6, unreach, port_code, 4000, 64)),
                "consumed"
            );
            let event = state.events.pop().expect("an event");
            assert_eq!(
                (event.socket, event.kind),
                (socket, EventKind::Error(SocketError::ConnectionRefused))
            );
            let peer = SocketAddr::new(them(ipv6), 9);
            assert_eq!(
                state.sockets.take_error(socket),
                Ok(Some((SocketError::ConnectionRefused, peer)))
            );
            assert_eq!(state.sockets.take_error(socket), Ok(None));
            // Soft: dropped quietly.
            assert_eq!(
                run(&mut state, &error(ipv6, time_exceeded, 0, 4000, 64)),
                "consumed"
            );
            assert!(state.events.pop().is_none());
            assert_eq!(state.sockets.take_error(socket), Ok(None));
            // No socket on the quoted port; a quote without the ports; a
            // bad checksum.
            assert_eq!(
                run(&mut state, &error(ipv6, unreach, port_code, 4001, 64)),
                "no-socket"
            );
            let ip_len = if ipv6 { 40 } else { 20 };
            assert_eq!(
                run(
                    &mut state,
                    &error(ipv6, unreach, port_code, 4000, ip_len + 2)
                ),
                "too-short"
            );
            let mut bad = error(ipv6, unreach, port_code, 4000, 64);
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert_eq!(run(&mut state, &bad), "bad-checksum");
            // Not an error: passes.
            assert_eq!(
                run(
                    &mut state,
                    &error(ipv6, if ipv6 { 128 } else { 8 }, 0, 4000, 64)
                ),
                "pass"
            );
            assert_eq!(state.sockets.counters(socket).unwrap().icmp_errors, 1);
            assert!(state.events.pop().is_none());
        }
        pool().assert_whole();
    }
}
