//! The UDP input stage: checks a datagram and queues it on its socket, or
//! answers a closed port.

use core::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use tpa::app::{Event, EventKind, Events};
use tpa::buf::{ChecksumStatus, PacketBuf};
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::state::Part;
use tpa::wire::ipv4::Ipv4View;
use tpa::wire::ipv6::Ipv6View;
use tpa::wire::udp::{Udp, UdpView};

use super::rate::TokenBucket;
use super::sockets::Queued;
use super::unreachable::{icmp_protocol, may_answer, write_port_unreachable};
use super::{Datagram, UdpSockets};
use crate::egress::{send_ip, Egress, IpSend};
use crate::packet::UdpPacket;

/// The socket's receive queue was at its byte limit.
pub const QUEUE_FULL: Reason = Reason::custom(0);

/// How a closed port is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreachableConfig {
    /// Whether closed ports answer at all.
    pub enabled: bool,
    /// Messages a second, on average.
    pub rate: u64,
    /// Messages in a burst.
    pub burst: u64,
}

impl Default for UnreachableConfig {
    /// On, 1000 a second in bursts of 50 (Linux's `icmp_msgs_per_sec` and
    /// `icmp_msgs_burst`).
    fn default() -> Self {
        UnreachableConfig {
            enabled: true,
            rate: 1000,
            burst: 50,
        }
    }
}

/// What [`UdpInput`] did besides its verdicts (which the pipeline counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpInputCounters {
    /// Datagrams queued on a socket.
    pub delivered: u64,
    /// Port unreachable messages handed to the egress path.
    pub unreachable_sent: u64,
    /// Port unreachable messages not sent: over the rate limit.
    pub unreachable_limited: u64,
    /// Port unreachable messages not sent: no buffer, or egress refused.
    pub unreachable_failed: u64,
}

impl core::fmt::Display for UdpInputCounters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "delivered {} unreachable-sent {} unreachable-limited {} unreachable-failed {}",
            self.delivered,
            self.unreachable_sent,
            self.unreachable_limited,
            self.unreachable_failed
        )
    }
}

/// UDP input for IPv4 and IPv6: takes the [`UdpPacket`]s of an IP branch
/// (after [`UdpSplit`](super::UdpSplit)), checks them and hands each to its
/// socket in the state's [`UdpSockets`], zero-copy.
///
/// - The UDP length must cover the header (`malformed`) and fit the IP
///   payload (`too-short`); bytes behind it are ignored.
/// - The checksum must verify (`bad-checksum`), unless the port's receive
///   check said good; a zero checksum means "none" over IPv4 and is refused
///   over IPv6 (RFC 8200 8.1).
/// - A datagram for an open socket is queued (verdict `Consumed`) within
///   the socket's byte limit (dropped as `queue-full` over it, counted on
///   the socket too); the first datagram queued after the application
///   emptied the queue raises [`EventKind::Readable`] in the state's
///   [`Events`] (edge-triggered: the application receives until
///   `WouldBlock`). If the event queue is full, the next datagram raises
///   it again, so a socket is never left readable but unannounced.
/// - A datagram for a closed port is dropped as `no-socket` and answered
///   with ICMP port unreachable (IPv4 type 3 code 3, IPv6 type 1 code 4)
///   through the egress path, quoting the datagram as RFC 1812 and
///   RFC 4443 allow, at most [`UnreachableConfig::rate`] a second; never
///   for a datagram to or from a group or the unspecified address, nor one
///   sent to a link-layer group.
#[derive(Debug, Clone)]
pub struct UdpInput {
    config: UnreachableConfig,
    limiter: TokenBucket,
    counters: UdpInputCounters,
}

impl Default for UdpInput {
    fn default() -> Self {
        UdpInput::new(UnreachableConfig::default())
    }
}

impl UdpInput {
    /// An input stage answering closed ports as `config` says.
    pub fn new(config: UnreachableConfig) -> Self {
        UdpInput {
            config,
            limiter: TokenBucket::new(config.rate, config.burst),
            counters: UdpInputCounters::default(),
        }
    }

    /// What the stage did.
    pub fn counters(&self) -> &UdpInputCounters {
        &self.counters
    }
}

/// The endpoints of `p` (sender, our address) and the UDP datagram's
/// length, or the drop reason.
#[inline]
fn check<B: PacketBuf>(p: &UdpPacket<B>) -> Result<(SocketAddr, SocketAddr, usize), Reason> {
    let l3 = p.l3();
    let (src, dst, v6) = if p.is_ipv6() {
        let ip = Ipv6View::new(l3).map_err(|_| Reason::MALFORMED)?;
        (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()), true)
    } else {
        let ip = Ipv4View::new(l3).map_err(|_| Reason::MALFORMED)?;
        (IpAddr::V4(ip.src()), IpAddr::V4(ip.dst()), false)
    };
    let l4 = p.l4();
    let udp = UdpView::new(l4).map_err(|_| Reason::TOO_SHORT)?;
    let len = usize::from(udp.total_len());
    if len < Udp::LEN {
        // Includes IPv6 jumbograms (length 0), which are not supported.
        return Err(Reason::MALFORMED);
    }
    let Some(datagram) = l4.get(..len) else {
        return Err(Reason::TOO_SHORT);
    };
    let ok = match p.buf().meta().l4_checksum {
        ChecksumStatus::Good => !(v6 && udp.checksum() == 0),
        ChecksumStatus::Bad => false,
        ChecksumStatus::Unknown => {
            let udp = UdpView::new(datagram).map_err(|_| Reason::TOO_SHORT)?;
            match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => udp.checksum_ok_v4(s, d),
                (IpAddr::V6(s), IpAddr::V6(d)) => udp.checksum() != 0 && udp.checksum_ok_v6(&s, &d),
                _ => false,
            }
        }
    };
    if !ok {
        return Err(Reason::BAD_CHECKSUM);
    }
    Ok((
        SocketAddr::new(src, udp.src_port()),
        SocketAddr::new(dst, udp.dst_port()),
        len,
    ))
}

impl UdpInput {
    /// Answers `p`, which reached a closed port, if the rules and the rate
    /// limit allow.
    fn answer_closed<B, S>(
        &mut self,
        p: &UdpPacket<B>,
        from: IpAddr,
        to: IpAddr,
        cx: &mut Cx<'_, B, S>,
    ) where
        B: PacketBuf,
        S: Part<Egress<B>>,
    {
        let link_group = p.buf().data().first().is_some_and(|b| b & 1 != 0);
        if !self.config.enabled || link_group || !may_answer(from, to) {
            return;
        }
        if !self.limiter.try_take(cx.now_ns()) {
            self.counters.unreachable_limited += 1;
            return;
        }
        let Some(mut out) = cx.alloc() else {
            self.counters.unreachable_failed += 1;
            return;
        };
        if write_port_unreachable(&mut out, p.l3(), to, from).is_none() {
            self.counters.unreachable_failed += 1;
            return;
        }
        let ip = IpSend {
            src: to,
            dst: from,
            protocol: icmp_protocol(to),
            hop_limit: None,
            owner: None,
        };
        match send_ip(cx, out, ip) {
            Ok(_) => self.counters.unreachable_sent += 1,
            Err(_) => self.counters.unreachable_failed += 1,
        }
    }
}

impl<B, S> Stage<B, S> for UdpInput
where
    B: PacketBuf,
    S: Part<UdpSockets<B>> + Part<Events> + Part<Egress<B>>,
{
    type In = UdpPacket<B>;
    type Out = Infallible;

    const CUSTOM_REASONS: &'static [&'static str] = &["queue-full"];

    #[inline]
    fn process(&mut self, p: UdpPacket<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        match self.input(p, cx) {
            Ok(()) => Verdict::Consumed,
            Err(reason) => Verdict::Drop(reason),
        }
    }
}

impl UdpInput {
    /// What [`process`](Stage::process) does, without the verdict: checks
    /// `p`, queues it on its socket (raising its readable event) or answers
    /// a closed port, and says why it was dropped if it was. For a loop
    /// written by hand around the same logic.
    ///
    /// # Errors
    ///
    /// The drop reason (`malformed`, `too-short`, `bad-checksum`,
    /// `no-socket`, [`QUEUE_FULL`]); the buffer is released.
    #[inline]
    pub fn input<B, S>(&mut self, p: UdpPacket<B>, cx: &mut Cx<'_, B, S>) -> Result<(), Reason>
    where
        B: PacketBuf,
        S: Part<UdpSockets<B>> + Part<Events> + Part<Egress<B>>,
    {
        let (from, to, len) = check(&p)?;
        let Some(socket) = cx.part::<UdpSockets<B>>().lookup(to.ip(), to.port()) else {
            self.answer_closed(&p, from.ip(), to.ip(), cx);
            return Err(Reason::NO_SOCKET);
        };
        let offset = p.l4_offset() + Udp::LEN;
        let datagram = Datagram::new(p.into_buf(), offset, len - Udp::LEN, from, to);
        match cx.part::<UdpSockets<B>>().enqueue(socket, datagram) {
            Queued::Full => Err(QUEUE_FULL),
            Queued::Behind => {
                self.counters.delivered += 1;
                Ok(())
            }
            Queued::First => {
                self.counters.delivered += 1;
                let event = Event {
                    socket,
                    kind: EventKind::Readable,
                };
                // A full event queue drops the event (counted there); the
                // socket's next datagram raises it again.
                if cx.part::<Events>().push(event) {
                    cx.part::<UdpSockets<B>>().notified(socket);
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, BufferPool};
    use crate::udp::testing::{frame_to_us, them, udp_packet, with_state_at, UdpState};
    use tpa::buf::PoolBuf;

    fn input(
        stage: &mut UdpInput,
        state: &mut UdpState,
        bytes: &[u8],
    ) -> Verdict<Infallible, PoolBuf> {
        input_at(stage, state, 1_000, bytes).0
    }

    fn input_at(
        stage: &mut UdpInput,
        state: &mut UdpState,
        now_ns: u64,
        bytes: &[u8],
    ) -> (Verdict<Infallible, PoolBuf>, Vec<PoolBuf>) {
        let packet = udp_packet(bytes);
        with_state_at(now_ns, state, |cx| stage.process(packet, cx))
    }

    fn name(v: &Verdict<Infallible, PoolBuf>) -> &'static str {
        match v {
            Verdict::Consumed => "consumed",
            Verdict::Drop(r) => r.name(<UdpInput as Stage<PoolBuf, UdpState>>::CUSTOM_REASONS),
            _ => "other",
        }
    }

    #[test]
    fn datagrams_queue_on_their_socket_with_one_readable_event() {
        for v6 in [false, true] {
            let mut state = UdpState::new();
            let wildcard = if v6 { "[::]:7" } else { "0.0.0.0:7" };
            let s = state
                .sockets
                .bind(wildcard.parse().unwrap(), state.egress.interface())
                .unwrap();
            let mut stage = UdpInput::default();
            for payload in [&b"one"[..], b"two", b""] {
                let v = input(&mut stage, &mut state, &frame_to_us(v6, 5000, 7, payload));
                assert_eq!(name(&v), "consumed");
            }
            assert_eq!(
                state.events.len(),
                1,
                "readable once, on the first datagram"
            );
            assert_eq!(
                state.events.pop().map(|e| (e.socket, e.kind)),
                Some((s, EventKind::Readable))
            );
            let d = state.sockets.recv(s).unwrap();
            assert_eq!(d.payload(), b"one");
            assert_eq!(d.from(), SocketAddr::new(them(v6), 5000));
            assert_eq!(d.to().port(), 7);
            assert_eq!(state.sockets.recv(s).unwrap().payload(), b"two");
            assert!(state.sockets.recv(s).unwrap().is_empty());
            assert_eq!(
                state.sockets.recv(s).unwrap_err(),
                tpa::app::SocketError::WouldBlock
            );
            assert_eq!(stage.counters().delivered, 3);
            drop(d);
        }
        pool().assert_whole();
    }

    #[test]
    fn an_event_lost_to_a_full_event_queue_is_raised_by_the_next_datagram() {
        let mut state = UdpState::new();
        state.events = Events::with_capacity(0);
        let s = state
            .sockets
            .bind("0.0.0.0:7".parse().unwrap(), state.egress.interface())
            .unwrap();
        let mut stage = UdpInput::default();
        let f = frame_to_us(false, 1, 7, b"x");
        assert_eq!(name(&input(&mut stage, &mut state, &f)), "consumed");
        assert_eq!(state.events.overflowed(), 1);
        state.events = Events::with_capacity(4);
        assert_eq!(name(&input(&mut stage, &mut state, &f)), "consumed");
        assert_eq!(name(&input(&mut stage, &mut state, &f)), "consumed");
        assert_eq!(state.events.len(), 1, "raised once the queue had room");
        // Drained, then refilled: readable again.
        while state.sockets.recv(s).is_ok() {}
        assert_eq!(name(&input(&mut stage, &mut state, &f)), "consumed");
        assert_eq!(state.events.len(), 2);
        drop(state);
        pool().assert_whole();
    }

    #[test]
    fn checksums_are_checked_unless_the_port_did() {
        let mut state = UdpState::new();
        state
            .sockets
            .bind("0.0.0.0:7".parse().unwrap(), state.egress.interface())
            .unwrap();
        state
            .sockets
            .bind("[::]:7".parse().unwrap(), state.egress.interface())
            .unwrap();
        let mut stage = UdpInput::default();
        for v6 in [false, true] {
            let mut bad = frame_to_us(v6, 1, 7, b"payload");
            let last = bad.len() - 1;
            bad[last] ^= 0x40;
            assert_eq!(name(&input(&mut stage, &mut state, &bad)), "bad-checksum");

            // The port verified it: trusted, good or bad.
            let mut trusted = udp_packet(&bad);
            trusted.buf_mut().meta_mut().l4_checksum = ChecksumStatus::Good;
            let v = with_state_at(1, &mut state, |cx| stage.process(trusted, cx)).0;
            assert_eq!(name(&v), "consumed");
            let mut refused = udp_packet(&frame_to_us(v6, 1, 7, b"payload"));
            refused.buf_mut().meta_mut().l4_checksum = ChecksumStatus::Bad;
            let v = with_state_at(1, &mut state, |cx| stage.process(refused, cx)).0;
            assert_eq!(name(&v), "bad-checksum");

            // Zero: "none" over IPv4, forbidden over IPv6.
            let mut zero = frame_to_us(v6, 1, 7, b"payload");
            let l4 = if v6 { 54 } else { 34 };
            zero[l4 + 6..l4 + 8].fill(0);
            let want = if v6 { "bad-checksum" } else { "consumed" };
            assert_eq!(name(&input(&mut stage, &mut state, &zero)), want);
        }
        drop(state);
        pool().assert_whole();
    }

    #[test]
    fn the_udp_length_must_fit_and_bounds_the_payload() {
        let mut state = UdpState::new();
        let s = state
            .sockets
            .bind("0.0.0.0:7".parse().unwrap(), state.egress.interface())
            .unwrap();
        let mut stage = UdpInput::default();
        let good = frame_to_us(false, 1, 7, b"abcdef");
        let with_len = |len: u16| {
            let mut f = good.clone();
            f[34 + 4..34 + 6].copy_from_slice(&len.to_be_bytes());
            f[34 + 6..34 + 8].fill(0); // no checksum: the length alone is judged
            f
        };
        assert_eq!(
            name(&input(&mut stage, &mut state, &with_len(7))),
            "malformed"
        );
        assert_eq!(
            name(&input(&mut stage, &mut state, &with_len(15))),
            "too-short"
        );
        assert_eq!(
            name(&input(&mut stage, &mut state, &with_len(11))),
            "consumed"
        );
        assert_eq!(state.sockets.recv(s).unwrap().payload(), b"abc");
        let mut cut = good.clone();
        cut.truncate(34 + 5);
        cut[16..18].copy_from_slice(&25u16.to_be_bytes()); // IP length: 20 + 5
        let sum = tpa::header::checksum::checksum(&{
            let mut h = cut[14..34].to_vec();
            h[10..12].fill(0);
            h
        });
        cut[24..26].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(name(&input(&mut stage, &mut state, &cut)), "too-short");
        drop(state);
        pool().assert_whole();
    }

    #[test]
    fn a_full_queue_drops_and_counts_on_the_socket() {
        let mut state = UdpState::new();
        state.sockets = UdpSockets::new(crate::udp::UdpConfig {
            receive_limit: 2 * crate::udp::MIN_CHARGE,
            ..Default::default()
        });
        let s = state
            .sockets
            .bind("0.0.0.0:7".parse().unwrap(), state.egress.interface())
            .unwrap();
        let mut stage = UdpInput::default();
        let f = frame_to_us(false, 1, 7, b"x");
        let names: Vec<_> = (0..3)
            .map(|_| name(&input(&mut stage, &mut state, &f)))
            .collect();
        assert_eq!(names, ["consumed", "consumed", "queue-full"]);
        assert_eq!(state.sockets.counters(s).unwrap().dropped_full, 1);
        drop(state);
        pool().assert_whole();
    }

    #[test]
    fn closed_ports_are_answered_within_the_rate_limit() {
        let mut state = UdpState::new();
        let mut stage = UdpInput::new(UnreachableConfig {
            enabled: true,
            rate: 1,
            burst: 2,
        });
        for v6 in [false, true, false] {
            let (v, _) = input_at(&mut stage, &mut state, 1_000, &frame_to_us(v6, 1, 9, b"?"));
            assert_eq!(name(&v), "no-socket");
        }
        let c = *stage.counters();
        assert_eq!((c.unreachable_sent, c.unreachable_limited), (2, 1));
        assert_eq!(
            c.to_string(),
            "delivered 0 unreachable-sent 2 unreachable-limited 1 unreachable-failed 0"
        );
        // A second later, one more token.
        let (v, _) = input_at(
            &mut stage,
            &mut state,
            1_000_001_000,
            &frame_to_us(false, 1, 9, b"?"),
        );
        assert_eq!(name(&v), "no-socket");
        assert_eq!(stage.counters().unreachable_sent, 3);
        drop(state);
        pool().assert_whole();
    }

    #[test]
    fn closed_ports_answer_what_they_quote_to_the_sender() {
        for v6 in [false, true] {
            let mut state = UdpState::new();
            state.know_peer();
            let mut stage = UdpInput::default();
            let offending = frame_to_us(v6, 4242, 9, b"knock knock");
            let (v, sent) = input_at(&mut stage, &mut state, 1_000, &offending);
            assert_eq!(name(&v), "no-socket");
            assert_eq!(sent.len(), 1, "v6 {v6}");
            let reply = etherparse::SlicedPacket::from_ethernet(sent[0].data()).unwrap();
            let Some(etherparse::NetSlice::Ipv4(_) | etherparse::NetSlice::Ipv6(_)) = reply.net
            else {
                panic!("not IP");
            };
            let quoted = &offending[14..];
            match reply.transport {
                Some(etherparse::TransportSlice::Icmpv4(icmp)) => {
                    assert!(!v6);
                    assert!(matches!(
                        icmp.icmp_type(),
                        etherparse::Icmpv4Type::DestinationUnreachable(
                            etherparse::icmpv4::DestUnreachableHeader::Port
                        )
                    ));
                    assert_eq!(icmp.payload(), quoted);
                }
                Some(etherparse::TransportSlice::Icmpv6(icmp)) => {
                    assert!(v6);
                    assert!(matches!(
                        icmp.icmp_type(),
                        etherparse::Icmpv6Type::DestinationUnreachable(
                            etherparse::icmpv6::DestUnreachableCode::Port
                        )
                    ));
                    assert_eq!(icmp.payload(), quoted);
                }
                _ => panic!("not ICMP"),
            }
            assert_eq!(&sent[0].data()[..6], &crate::udp::testing::THEM_MAC);
        }
        pool().assert_whole();
    }

    #[test]
    fn a_datagram_to_all_nodes_reaches_the_wildcard_socket_of_its_port() {
        let mut state = UdpState::new();
        let any6 = state
            .sockets
            .bind("[::]:521".parse().unwrap(), state.egress.interface())
            .unwrap();
        let mut stage = UdpInput::default();
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(
            crate::udp::testing::THEM_MAC,
            [0x33, 0x33, 0, 0, 0, 1],
        )
        .ipv6(
            crate::udp::testing::v6(crate::udp::testing::THEM6).octets(),
            crate::iface::ALL_NODES.octets(),
            1,
        )
        .udp(521, 521)
        .write(&mut out, b"ripng")
        .unwrap();
        assert_eq!(name(&input(&mut stage, &mut state, &out)), "consumed");
        let d = state.sockets.recv(any6).unwrap();
        assert_eq!(
            (d.payload(), d.to().ip()),
            (&b"ripng"[..], IpAddr::V6(crate::iface::ALL_NODES))
        );
        drop((d, state));
        pool().assert_whole();
    }

    #[test]
    fn groups_are_never_answered() {
        let mut state = UdpState::new();
        let mut stage = UdpInput::default();
        // To the all-nodes group.
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(
            crate::udp::testing::THEM_MAC,
            [0x33, 0x33, 0, 0, 0, 1],
        )
        .ipv6(
            crate::udp::testing::v6(crate::udp::testing::THEM6).octets(),
            crate::iface::ALL_NODES.octets(),
            1,
        )
        .udp(1, 9)
        .write(&mut out, b"?")
        .unwrap();
        assert_eq!(name(&input(&mut stage, &mut state, &out)), "no-socket");
        // To our address but a link-layer broadcast.
        let mut bcast = frame_to_us(false, 1, 9, b"?");
        bcast[..6].fill(0xff);
        assert_eq!(name(&input(&mut stage, &mut state, &bcast)), "no-socket");
        let c = stage.counters();
        assert_eq!((c.unreachable_sent, c.unreachable_limited), (0, 0));
        drop(state);
        pool().assert_whole();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the transport bytes say, the stage queues or drops
        /// with a reason, and the pool stays whole.
        #[test]
        fn random_udp_bytes_are_queued_or_dropped_never_a_panic(
            v6 in proptest::prelude::any::<bool>(),
            udp in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            status in 0u8..3,
        ) {
            let mut state = UdpState::new();
            state.know_peer();
            for wildcard in ["0.0.0.0:7", "[::]:7"] {
                state.sockets.bind(wildcard.parse().unwrap(), state.egress.interface()).unwrap();
            }
            // An IP packet whose transport layer is `udp`, as it is.
            let mut frame = frame_to_us(v6, 1, 7, &[]);
            let l4 = if v6 { 54 } else { 34 };
            frame.truncate(l4);
            frame.extend_from_slice(&udp);
            if v6 {
                frame[18..20].copy_from_slice(&(udp.len() as u16).to_be_bytes());
            } else {
                frame[16..18].copy_from_slice(&((20 + udp.len()) as u16).to_be_bytes());
                frame[24..26].fill(0);
                let sum = tpa::header::checksum::checksum(&frame[14..34]);
                frame[24..26].copy_from_slice(&sum.to_be_bytes());
            }
            let mut packet = udp_packet(&frame);
            packet.buf_mut().meta_mut().l4_checksum =
                [ChecksumStatus::Unknown, ChecksumStatus::Good, ChecksumStatus::Bad][usize::from(status)];
            let mut stage = UdpInput::default();
            let v = with_state_at(1, &mut state, |cx| stage.process(packet, cx)).0;
            let n = name(&v);
            proptest::prop_assert!(
                ["consumed", "no-socket", "malformed", "too-short", "bad-checksum"].contains(&n),
                "{}", n
            );
            drop(state);
            pool().assert_whole();
        }
    }
}
