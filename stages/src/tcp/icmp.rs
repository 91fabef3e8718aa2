//! ICMP errors to TCP (RFC 5927): the stage in an IP branch's "other"
//! side that takes the ICMPv4 and ICMPv6 errors quoting one of our TCP
//! segments and hands them to the connection of the quoted 4-tuple.
//!
//! What each message says (path MTU, hard or soft error) is
//! [`icmp_error`](crate::icmp_error)'s table, shared with UDP: a path MTU
//! lowers the connection's MSS, a hard error ends a connection in its
//! handshake, a soft one is kept for a timeout to report. Errors quoting
//! something other than TCP pass on untouched.
//!
//! The checks, each a counted drop: the ICMP checksum (`bad-checksum`), a
//! quote holding the IP header and the TCP ports and sequence number
//! (`too-short`, RFC 792's 8 bytes), a connection on the quoted 4-tuple
//! (`no-socket`), and the quoted sequence number in flight
//! ([`OUT_OF_WINDOW`], RFC 5927 §4.1).

use core::marker::PhantomData;
use std::net::SocketAddr;

use tpa::app::Events;
use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::state::Part;
use tpa::wire::ipv4::IpProtocol;

use super::conn::{IcmpError, IcmpOutcome};
use super::output;
use super::pmtu::{believed_mtu, mss_for_mtu};
use super::seq::SeqNumber;
use super::sockets::TcpSockets;
use super::wire::FourTuple;
use crate::icmp_error::{read_v4, read_v6, Quoted, Read, Says};
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

/// An error quoting a TCP segment of ours: its connection's 4-tuple (from
/// our side), the quoted sequence number and the quoted packet's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quote {
    tuple: FourTuple,
    seq: SeqNumber,
    sent_len: u16,
}

/// The TCP segment `q` quotes: its ports and sequence number
/// (`too-short` when the quote stops before them).
fn tcp_quote(q: &Quoted<'_>) -> Result<Quote, Reason> {
    let (sport, dport) = q.ports().ok_or(Reason::TOO_SHORT)?;
    let seq = q.transport.get(4..8).ok_or(Reason::TOO_SHORT)?;
    Ok(Quote {
        tuple: FourTuple {
            local: SocketAddr::new(q.src, sport),
            remote: SocketAddr::new(q.dst, dport),
        },
        seq: SeqNumber::new(u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]])),
        sent_len: q.sent_len,
    })
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
        let (says, quote) = match read_v4(p.l3(), p.l4(), IpProtocol::Tcp) {
            Read::Pass => return Verdict::Pass(p),
            Read::Drop(r) => return Verdict::Drop(r),
            Read::Error(says, q) => match tcp_quote(&q) {
                Ok(quote) => (says, quote),
                Err(r) => return Verdict::Drop(r),
            },
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
        let (says, quote) = match read_v6(p.l3(), p.l4(), IpProtocol::Tcp) {
            Read::Pass => return Verdict::Pass(p),
            Read::Drop(r) => return Verdict::Drop(r),
            Read::Error(says, q) => match tcp_quote(&q) {
                Ok(quote) => (says, quote),
                Err(r) => return Verdict::Drop(r),
            },
        };
        match self.deliver(quote, says, cx) {
            Ok(()) => Verdict::Consumed,
            Err(r) => Verdict::Drop(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::config::TcpConfig;
    use crate::tcp::testing::{
        bytes, ipv4_packet, ipv6_packet, parse_tcp, them, v6, Bench, Parsed, Seg, THEM4, THEM6,
        THEM_MAC, US4, US6, US_MAC,
    };
    use crate::testing::{pool, with_state_at, BufferPool};
    use etherparse::PacketBuilder;
    use tpa::app::{EventKind, SocketError, SocketId};
    use tpa::buf::PoolBuf;
    use tpa::stage::Stage;

    /// The TCP input stage's bench and an ICMP stage per family.
    struct Rig {
        bench: Bench,
        icmp4: TcpIcmp<Ipv4Packet<PoolBuf>>,
        icmp6: TcpIcmp<Ipv6Packet<PoolBuf>>,
    }

    impl Rig {
        fn new(cfg: TcpConfig) -> Rig {
            Rig {
                bench: Bench::new(cfg),
                icmp4: TcpIcmp::new(),
                icmp6: TcpIcmp::new(),
            }
        }

        /// `frame` (an ICMP error from the peer's side) through the stage
        /// of its family, then TCP's poll: the verdict and what was sent.
        fn icmp(&mut self, frame: &[u8]) -> (&'static str, Vec<Parsed>) {
            let ipv6 = frame[12..14] == [0x86, 0xdd];
            let Rig {
                bench,
                icmp4,
                icmp6,
            } = self;
            let (v, out) = with_state_at(bench.now_ns, &mut bench.state, |cx| {
                let name = |v: Verdict<(), PoolBuf>| match v {
                    Verdict::Consumed => "consumed",
                    Verdict::Pass(()) => "pass",
                    Verdict::Drop(r) => r.name(&["icmp-out-of-window"]),
                    _ => "other",
                };
                let v = if ipv6 {
                    name(icmp6.process(ipv6_packet(frame), cx).map(|_| ()))
                } else {
                    name(icmp4.process(ipv4_packet(frame), cx).map(|_| ()))
                };
                tpa::state::PolledState::<PoolBuf>::poll(cx);
                v
            });
            (v, out.iter().map(|f| parse_tcp(&bytes(f))).collect())
        }

        /// Connects to the peer's port 80: the socket and our SYN.
        fn connect(&mut self, ipv6: bool) -> (SocketId, Parsed) {
            let (id, out) = self
                .bench
                .call(|cx| crate::tcp::connect(cx, SocketAddr::new(them(ipv6), 80)));
            (id.unwrap(), out.into_iter().next().expect("a SYN"))
        }

        /// Connects and completes the handshake (the peer announces MSS
        /// 1460, no other option); returns the socket and our SYN.
        fn established(&mut self, ipv6: bool) -> (SocketId, Parsed) {
            let (id, syn) = self.connect(ipv6);
            let syn_ack = Seg {
                src_port: 80,
                dst_port: syn.src.port(),
                seq: 7000,
                ack: Some(syn.seq + 1),
                syn: true,
                window: 65535,
                options: vec![2, 4, 0x05, 0xb4],
                ..Seg::default()
            };
            self.bench.input(ipv6, &syn_ack);
            (id, syn)
        }
    }

    /// `seg` (one we sent) as the IP packet the router quotes.
    fn sent_packet(ipv6: bool, seg: &Parsed) -> Vec<u8> {
        let mut out = Vec::new();
        let b = if ipv6 {
            PacketBuilder::ipv6(v6(US6).octets(), v6(THEM6).octets(), 64)
        } else {
            PacketBuilder::ipv4(US4, THEM4, 64)
        };
        b.tcp(seg.src.port(), seg.dst.port(), seg.seq, seg.window)
            .write(&mut out, &seg.payload)
            .unwrap();
        out
    }

    /// An ICMP error from the router about `quoted` (what fits of it:
    /// RFC 792's 28 bytes for IPv4, up to 1232 for IPv6).
    fn icmp_error(ipv6: bool, msg_type: u8, code: u8, rest: [u8; 4], quoted: &[u8]) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(THEM_MAC, US_MAC);
        let mut out = Vec::new();
        if ipv6 {
            let q = &quoted[..quoted.len().min(1232)];
            eth.ipv6(
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
                v6(US6).octets(),
                64,
            )
            .icmpv6_raw(msg_type, code, rest)
            .write(&mut out, q)
            .unwrap();
        } else {
            eth.ipv4([198, 51, 100, 1], US4, 64)
                .icmpv4_raw(msg_type, code, rest)
                .write(&mut out, &quoted[..quoted.len().min(28)])
                .unwrap();
        }
        out
    }

    /// "Fragmentation needed" / "packet too big" reporting `mtu`.
    fn too_big(ipv6: bool, mtu: u16, quoted: &[u8]) -> Vec<u8> {
        let [hi, lo] = mtu.to_be_bytes();
        if ipv6 {
            icmp_error(true, 2, 0, [0, 0, hi, lo], quoted)
        } else {
            icmp_error(false, 3, 4, [0, 0, hi, lo], quoted)
        }
    }

    /// Port unreachable in the family.
    fn port_unreachable(ipv6: bool, quoted: &[u8]) -> Vec<u8> {
        if ipv6 {
            icmp_error(true, 1, 4, [0; 4], quoted)
        } else {
            icmp_error(false, 3, 3, [0; 4], quoted)
        }
    }

    #[test]
    fn packet_too_big_lowers_the_mss_and_resends_the_queue_cut_to_it() {
        for ipv6 in [false, true] {
            let mut rig = Rig::new(TcpConfig::default());
            let (id, _) = rig.established(ipv6);
            let data: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
            let (n, sent) = rig.bench.call(|cx| crate::tcp::send(cx, id, &data));
            assert_eq!(n, Ok(4000));
            let lens: Vec<usize> = sent.iter().map(|s| s.payload.len()).collect();
            let full = if ipv6 { 1440 } else { 1460 }; // the port's 1500 MTU
            assert_eq!(lens, [full, full, 4000 - 2 * full]);
            // The router's MTU is 1280: each family's MSS follows.
            let (verdict, resent) = rig.icmp(&too_big(ipv6, 1280, &sent_packet(ipv6, &sent[1])));
            assert_eq!(verdict, "consumed");
            let mss: u16 = if ipv6 { 1220 } else { 1240 };
            assert!(resent.iter().all(|s| s.payload.len() <= usize::from(mss)));
            assert_eq!(
                resent.len(),
                4000usize.div_ceil(usize::from(mss)),
                "packed full"
            );
            assert_eq!(resent[0].seq, sent[0].seq, "from SND.UNA, at once");
            let joined: Vec<u8> = resent.iter().flat_map(|s| s.payload.clone()).collect();
            assert_eq!(joined, data);
            let info = rig.bench.state.sockets.info(id).unwrap();
            assert_eq!(
                (info.snd_mss, info.path_mss, info.pmtu_reductions),
                (mss, mss, 1)
            );
            assert_eq!(
                rig.bench
                    .state
                    .sockets
                    .path_mtu(them(ipv6), rig.bench.now_ns),
                Some(1280)
            );
            // The same report again (one per dropped segment) changes
            // nothing and sends nothing.
            let (verdict, again) = rig.icmp(&too_big(ipv6, 1280, &sent_packet(ipv6, &sent[2])));
            assert_eq!((verdict, again.len()), ("consumed", 0));
            let c = if ipv6 {
                *rig.icmp6.counters()
            } else {
                *rig.icmp4.counters()
            };
            assert_eq!((c.mtu_lowered, c.mtu_unchanged), (1, 1));
            // A new connection to the same host starts at the path's MSS
            // (announcing its own).
            let (id2, syn) = rig.established(ipv6);
            assert_eq!(
                &syn.options[..4],
                &[2, 4, 0x05, 0xb4 - if ipv6 { 20 } else { 0 }]
            );
            let info = rig.bench.state.sockets.info(id2).unwrap();
            assert_eq!(info.snd_mss, mss);
        }
        pool().assert_whole();
    }

    #[test]
    fn reports_below_the_floor_are_floored_and_none_is_a_plateau() {
        for (ipv6, reported, mss) in [(false, 200, 536), (false, 0, 1492 - 40), (true, 1000, 1220)]
        {
            let mut rig = Rig::new(TcpConfig::default());
            let (id, _) = rig.established(ipv6);
            let (_, sent) = rig.bench.call(|cx| crate::tcp::send(cx, id, &[1; 1460]));
            let (verdict, resent) =
                rig.icmp(&too_big(ipv6, reported, &sent_packet(ipv6, &sent[0])));
            assert_eq!(verdict, "consumed");
            assert_eq!(resent[0].payload.len(), usize::from(mss));
            assert_eq!(rig.bench.state.sockets.info(id).unwrap().snd_mss, mss);
        }
        pool().assert_whole();
    }

    #[test]
    fn an_error_quoting_a_sequence_number_not_in_flight_is_dropped() {
        for ipv6 in [false, true] {
            let mut rig = Rig::new(TcpConfig::default());
            let (id, _) = rig.established(ipv6);
            let (_, sent) = rig.bench.call(|cx| crate::tcp::send(cx, id, &[1; 100]));
            let mut stale = sent[0].clone();
            for seq in [
                stale.seq - 1,
                stale.seq + 100,
                stale.seq.wrapping_add(1 << 31),
            ] {
                stale.seq = seq;
                let (verdict, out) = rig.icmp(&too_big(ipv6, 1280, &sent_packet(ipv6, &stale)));
                assert_eq!((verdict, out.len()), ("icmp-out-of-window", 0));
            }
            let info = rig.bench.state.sockets.info(id).unwrap();
            let full = if ipv6 { 1440 } else { 1460 };
            assert_eq!((info.snd_mss, info.icmp_out_of_window), (full, 3));
            // The last byte in flight is in.
            stale.seq = sent[0].seq + 99;
            assert_eq!(
                rig.icmp(&too_big(ipv6, 1280, &sent_packet(ipv6, &stale))).0,
                "consumed"
            );
        }
        pool().assert_whole();
    }

    #[test]
    fn errors_without_a_connection_bad_checksums_and_short_quotes_are_dropped() {
        for ipv6 in [false, true] {
            let mut rig = Rig::new(TcpConfig::default());
            let (_, syn) = rig.connect(ipv6);
            let quoted = sent_packet(ipv6, &syn);
            let mut other = syn.clone();
            other.src.set_port(syn.src.port() ^ 1);
            let (verdict, _) = rig.icmp(&port_unreachable(ipv6, &sent_packet(ipv6, &other)));
            assert_eq!(verdict, "no-socket");
            let mut bad = port_unreachable(ipv6, &quoted);
            let last = bad.len() - 1;
            bad[last] ^= 0x40;
            assert_eq!(rig.icmp(&bad).0, "bad-checksum");
            // The IP header and 7 bytes of TCP: no full sequence number.
            let ip = if ipv6 { 40 } else { 20 };
            let short = icmp_error(
                ipv6,
                if ipv6 { 1 } else { 3 },
                if ipv6 { 4 } else { 3 },
                [0; 4],
                &quoted[..ip + 7],
            );
            assert_eq!(rig.icmp(&short).0, "too-short");
            let c = if ipv6 {
                *rig.icmp6.counters()
            } else {
                *rig.icmp4.counters()
            };
            assert_eq!((c.no_connection, c.aborted), (1, 0));
            assert_eq!(rig.bench.events().len(), 0, "the connection heard nothing");
        }
        pool().assert_whole();
    }

    #[test]
    fn other_messages_and_quotes_of_other_protocols_pass() {
        for ipv6 in [false, true] {
            let mut rig = Rig::new(TcpConfig::default());
            // An echo request, a redirect / neighbor solicitation type.
            let (t, c) = if ipv6 { (128, 0) } else { (8, 0) };
            assert_eq!(
                rig.icmp(&icmp_error(ipv6, t, c, [0; 4], &[0; 48])).0,
                "pass"
            );
            // A port unreachable quoting UDP.
            let mut udp = Vec::new();
            if ipv6 {
                PacketBuilder::ipv6(v6(US6).octets(), v6(THEM6).octets(), 64)
                    .udp(1, 2)
                    .write(&mut udp, b"hi")
                    .unwrap();
            } else {
                PacketBuilder::ipv4(US4, THEM4, 64)
                    .udp(1, 2)
                    .write(&mut udp, b"hi")
                    .unwrap();
            }
            assert_eq!(rig.icmp(&port_unreachable(ipv6, &udp)).0, "pass");
        }
        pool().assert_whole();
    }

    #[test]
    fn a_hard_error_refuses_a_connect_and_later_is_only_remembered() {
        for ipv6 in [false, true] {
            let mut rig = Rig::new(TcpConfig::default());
            let (id, syn) = rig.connect(ipv6);
            let (verdict, out) = rig.icmp(&port_unreachable(ipv6, &sent_packet(ipv6, &syn)));
            assert_eq!((verdict, out.len()), ("consumed", 0));
            let kinds: Vec<EventKind> = rig.bench.events().iter().map(|e| e.kind).collect();
            assert_eq!(
                kinds,
                [
                    EventKind::Error(SocketError::ConnectionRefused),
                    EventKind::Closed
                ]
            );
            rig.bench.state.sockets.close(id).unwrap();
            // Established: the same message is a soft error (RFC 5927 §4,
            // RFC 1122 §4.2.3.9); the connection goes on.
            let (id, _) = rig.established(ipv6);
            rig.bench.events();
            let (_, sent) = rig.bench.call(|cx| crate::tcp::send(cx, id, b"data"));
            let (verdict, _) = rig.icmp(&port_unreachable(ipv6, &sent_packet(ipv6, &sent[0])));
            assert_eq!(verdict, "consumed");
            assert_eq!(rig.bench.events().len(), 0);
            assert_eq!(
                rig.bench.state.sockets.state(id),
                Ok(crate::tcp::conn::State::Established)
            );
            let c = if ipv6 {
                *rig.icmp6.counters()
            } else {
                *rig.icmp4.counters()
            };
            assert_eq!((c.aborted, c.soft), (1, 1));
        }
        pool().assert_whole();
    }

    #[test]
    fn a_soft_error_is_what_a_timeout_reports() {
        for ipv6 in [false, true] {
            let cfg = TcpConfig {
                syn_retries: 1,
                ..TcpConfig::default()
            };
            let mut rig = Rig::new(cfg.clone());
            let (_, syn) = rig.connect(ipv6);
            // Host unreachable from a router: soft, the SYN is retried.
            let (t, c) = if ipv6 { (1, 3) } else { (3, 1) };
            let (verdict, _) = rig.icmp(&icmp_error(ipv6, t, c, [0; 4], &sent_packet(ipv6, &syn)));
            assert_eq!(verdict, "consumed");
            assert_eq!(rig.bench.events().len(), 0);
            let (_, resent) = rig.bench.timers_at(2_000_000_000);
            assert_eq!(resent.len(), 1, "the SYN again");
            rig.bench.timers_at(10_000_000_000);
            let kinds: Vec<EventKind> = rig.bench.events().iter().map(|e| e.kind).collect();
            assert_eq!(
                kinds,
                [
                    EventKind::Error(SocketError::HostUnreachable),
                    EventKind::Closed
                ]
            );
            // Without one, a timeout is a timeout.
            let mut rig = Rig::new(cfg);
            rig.connect(ipv6);
            rig.bench.timers_at(2_000_000_000);
            rig.bench.timers_at(10_000_000_000);
            let kinds: Vec<EventKind> = rig.bench.events().iter().map(|e| e.kind).collect();
            assert_eq!(kinds[0], EventKind::Error(SocketError::TimedOut));
        }
        pool().assert_whole();
    }
}
