//! Neighbor discovery (RFC 4861): answers neighbor solicitations for our
//! IPv6 addresses and keeps the IPv6 neighbor cache of the [`Egress`] part
//! from solicitations and advertisements. The cache's deadlines and the
//! unsolicited advertisements of the announce policy are the part's own
//! work, which the state runs once per loop iteration (its `#[polled]`
//! field, see [`Egress`]'s [`Polled`](tpa::state::Polled)).

use std::net::Ipv6Addr;

use tpa::buf::PacketBuf;
use tpa::stage::{Cx, PortCx, Reason, Stage, Verdict};
use tpa::state::{Part, PollsPart};
use tpa::wire::ethernet::EthernetView;
use tpa::wire::icmpv6::{
    Icmpv6Type, NdpOption, NdpOptionWriter, NdpOptions, NeighborAdvertisement,
    NeighborAdvertisementView, NeighborSolicitationView,
};
use tpa::wire::ipv4::IpProtocol;
use tpa::wire::ipv6::Ipv6View;
use tpa::wire::MacAddr;

pub use crate::egress::NDP_HOP_LIMIT;
use crate::egress::{ipv6_multicast_mac, Egress};
use crate::iface::ALL_NODES;
use crate::neighbor::Heard;
use crate::packet::Ipv6Packet;

/// Length of an advertisement with a target link-layer address option.
const ADVERTISEMENT_LEN: usize = NeighborAdvertisement::LEN + 8;

/// Answers neighbor solicitations for the addresses of the state's
/// [`Egress`] interface with a solicited advertisement carrying our MAC
/// address, rewritten in the solicitation's own buffer. A duplicate address
/// detection probe (from `::`) is answered to all-nodes, unsolicited. Other
/// packets pass on.
///
/// Keeps the IPv6 neighbor cache of the [`Egress`] part by RFC 4861's
/// rules: a solicitation for us with a source link-layer address creates or
/// updates its sender (STALE); an advertisement updates only an entry that
/// exists (solicited: REACHABLE, releasing the packets held for it; the
/// override flag decides whether a different address replaces the cached
/// one) and is consumed.
///
/// The unsolicited advertisements of the egress announce policy
/// ([`Egress::announcing`]) and the cache's deadlines are the [`Egress`]
/// part's own work, run by the state, as for the
/// [`ArpResponder`](crate::arp::ArpResponder): the stage requires the part
/// marked `#[polled]` ([`PollsPart`]).
///
/// Drops: `malformed` (hop limit not 255, nonzero code, bad options, a
/// source link-layer option in a probe, a multicast target, a solicited
/// advertisement to a multicast address), `bad-checksum`, `too-short`, and
/// `not-for-us` for solicitations of someone else's address.
#[derive(Debug, Default, Clone, Copy)]
pub struct NdpResponder;

impl NdpResponder {
    /// The NDP stage.
    pub fn new() -> Self {
        NdpResponder
    }
}

/// The link-layer address option of kind `source` (or target), if any;
/// `Err` if the options are malformed.
fn link_addr_option(options: &[u8], source: bool) -> Result<Option<MacAddr>, ()> {
    let mut found = None;
    for option in NdpOptions::new(options) {
        match option.map_err(|_| ())? {
            NdpOption::SourceLinkAddr(mac) if source => found = found.or(Some(mac)),
            NdpOption::TargetLinkAddr(mac) if !source => found = found.or(Some(mac)),
            _ => {}
        }
    }
    Ok(found)
}

impl NdpResponder {
    fn advertise<B: PacketBuf>(
        mut p: Ipv6Packet<B>,
        (src, dst): (Ipv6Addr, Ipv6Addr),
        egress: &mut Egress<B>,
        port: &mut PortCx<'_, B>,
    ) -> Verdict<Ipv6Packet<B>, B> {
        let (target, asker_mac) = {
            let ns = match NeighborSolicitationView::new(p.l4()) {
                Ok(ns) => ns,
                Err(_) => return Verdict::Drop(Reason::TOO_SHORT),
            };
            if ns.code() != 0 {
                return Verdict::Drop(Reason::MALFORMED);
            }
            if !ns.checksum_ok_v6(&src, &dst) {
                return Verdict::Drop(Reason::BAD_CHECKSUM);
            }
            let Ok(source_link) = link_addr_option(ns.payload(), true) else {
                return Verdict::Drop(Reason::MALFORMED);
            };
            if !egress.interface().owns_ipv6(ns.target()) {
                return Verdict::Drop(Reason::NOT_FOR_US);
            }
            (ns.target(), source_link)
        };
        let probe = src.is_unspecified();
        if probe && asker_mac.is_some() {
            return Verdict::Drop(Reason::MALFORMED);
        }
        let (reply_dst, reply_mac) = if probe {
            (ALL_NODES, ipv6_multicast_mac(ALL_NODES))
        } else {
            let mac = match asker_mac {
                Some(mac) => mac,
                None => match EthernetView::new(p.buf().data()) {
                    Ok(eth) => eth.src(),
                    Err(_) => return Verdict::Drop(Reason::TOO_SHORT),
                },
            };
            (src, mac)
        };
        if let Some(mac) = asker_mac.filter(|_| !probe) {
            egress.learn_v6(src, Some(mac), Heard::Solicitation, port);
        }

        // Make the transport layer exactly the advertisement's length.
        let l4_len = p.l4().len();
        let resized = if l4_len > ADVERTISEMENT_LEN {
            p.buf_mut()
                .trim_back(l4_len - ADVERTISEMENT_LEN)
                .map(|_| ())
        } else {
            p.buf_mut().append(ADVERTISEMENT_LEN - l4_len).map(|_| ())
        };
        if resized.is_err() {
            return Verdict::Drop(Reason::NO_BUFFER);
        }
        let l3 = p.l3_offset();
        let our_mac = egress.interface().mac;
        let (headers, icmp) = p.split_l4_mut();
        let advertisement = NeighborAdvertisement {
            msg_type: Icmpv6Type::NeighborAdvertisement,
            code: 0,
            checksum: 0,
            router: false,
            solicited: !probe,
            override_entry: true,
            reserved: 0,
            target,
        };
        if advertisement.emit(icmp).is_err()
            || NdpOptionWriter::new(&mut icmp[NeighborAdvertisement::LEN..])
                .target_link_addr(our_mac)
                .is_err()
        {
            return Verdict::Drop(Reason::TOO_SHORT);
        }
        match NeighborAdvertisementView::new(&mut *icmp) {
            Ok(mut na) => na.fill_checksum_v6(&target, &reply_dst),
            Err(_) => return Verdict::Drop(Reason::TOO_SHORT),
        }
        let (eth, ip) = headers.split_at_mut(l3);
        let (Ok(mut ip), Ok(mut eth)) = (Ipv6View::new(ip), EthernetView::new(eth)) else {
            return Verdict::Drop(Reason::MALFORMED);
        };
        ip.set_dscp(0);
        ip.set_ecn(0);
        ip.set_flow_label(0);
        ip.set_payload_len(ADVERTISEMENT_LEN as u16);
        ip.set_hop_limit(NDP_HOP_LIMIT);
        ip.set_src(target);
        ip.set_dst(reply_dst);
        eth.set_dst(reply_mac);
        eth.set_src(our_mac);
        Verdict::Transmit(p.into_buf())
    }

    fn learn_advertisement<B: PacketBuf>(
        p: &Ipv6Packet<B>,
        (src, dst): (Ipv6Addr, Ipv6Addr),
        egress: &mut Egress<B>,
        port: &mut PortCx<'_, B>,
    ) -> Result<(), Reason> {
        let na = NeighborAdvertisementView::new(p.l4()).map_err(|_| Reason::TOO_SHORT)?;
        if na.code() != 0 {
            return Err(Reason::MALFORMED);
        }
        if !na.checksum_ok_v6(&src, &dst) {
            return Err(Reason::BAD_CHECKSUM);
        }
        // RFC 4861 7.1.2.
        if na.target().is_multicast() || (dst.is_multicast() && na.solicited()) {
            return Err(Reason::MALFORMED);
        }
        let mac = link_addr_option(na.payload(), false).map_err(|_| Reason::MALFORMED)?;
        let heard = Heard::Advertisement {
            solicited: na.solicited(),
            override_entry: na.override_entry(),
        };
        let target = na.target();
        if egress.interface().owns_ipv6(target) {
            // Someone else claims our address: nothing to learn.
            return Ok(());
        }
        egress.learn_v6(target, mac, heard, port);
        Ok(())
    }
}

impl<B, S> Stage<B, S> for NdpResponder
where
    B: PacketBuf,
    S: Part<Egress<B>> + PollsPart<Egress<B>>,
{
    type In = Ipv6Packet<B>;
    type Out = Ipv6Packet<B>;

    fn process(&mut self, p: Ipv6Packet<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Ipv6Packet<B>, B> {
        let (src, dst, hop_limit) = match Ipv6View::new(p.l3()) {
            Ok(ip) if ip.next_header() == IpProtocol::Icmpv6 => {
                (ip.src(), ip.dst(), ip.hop_limit())
            }
            Ok(_) => return Verdict::Pass(p),
            Err(_) => return Verdict::Drop(Reason::MALFORMED),
        };
        let Some(&msg_type) = p.l4().first() else {
            return Verdict::Drop(Reason::TOO_SHORT);
        };
        let msg_type = Icmpv6Type::from(msg_type);
        let is_ndp = matches!(
            msg_type,
            Icmpv6Type::NeighborSolicitation | Icmpv6Type::NeighborAdvertisement
        );
        if !is_ndp {
            return Verdict::Pass(p);
        }
        if hop_limit != NDP_HOP_LIMIT {
            return Verdict::Drop(Reason::MALFORMED);
        }
        let (state, port) = cx.split();
        let egress = Part::<Egress<B>>::part_mut(state);
        if msg_type == Icmpv6Type::NeighborSolicitation {
            return Self::advertise(p, (src, dst), egress, port);
        }
        match Self::learn_advertisement(&p, (src, dst), egress, port) {
            Ok(()) => Verdict::Consumed,
            Err(reason) => Verdict::Drop(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::{send_ip, IpSend, Sent};
    use crate::iface::Interface;
    use crate::neighbor::NeighborState;
    use crate::testing::{frame, pool, with_state_at, BufferPool, EgressState, NOW_NS};
    use etherparse::PacketBuilder;
    use tpa::buf::PoolBuf;
    use tpa::state::PolledState;
    use tpa::wire::icmpv6::solicited_node;

    const US_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
    const THEM_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];

    fn us() -> Ipv6Addr {
        "2001:db8::1".parse().unwrap()
    }
    fn them() -> Ipv6Addr {
        "fe80::2".parse().unwrap()
    }

    /// The stage and the state it works on.
    struct Fixture {
        stage: NdpResponder,
        state: EgressState,
    }

    fn responder() -> Fixture {
        Fixture {
            stage: NdpResponder::new(),
            state: EgressState::new(
                Interface::new(MacAddr(US_MAC)).with_ipv6("2001:db8::1/64".parse().unwrap()),
            ),
        }
    }

    impl Fixture {
        fn learned(&self, ip: Ipv6Addr) -> Option<(NeighborState, Option<MacAddr>)> {
            self.state
                .egress
                .neighbors_v6()
                .get(ip, NOW_NS)
                .map(|n| (n.state, n.mac))
        }

        /// The state's poll at `now_ns` (the egress part's announcements).
        fn poll_at(&mut self, now_ns: u64) -> Vec<PoolBuf> {
            with_state_at(now_ns, &mut self.state, PolledState::poll).1
        }

        /// The state's timers at `now_ns` (the egress part's caches).
        fn timers_at(&mut self, now_ns: u64) -> Vec<PoolBuf> {
            with_state_at(now_ns, &mut self.state, PolledState::fire_timers).1
        }

        /// Sends an 8-byte UDP datagram to `dst` from our address.
        fn send(&mut self, dst: Ipv6Addr) -> (Sent, Vec<PoolBuf>) {
            let payload = frame(&[0, 1, 0, 2, 0, 8, 0, 0]);
            let ip = IpSend {
                src: us().into(),
                dst: dst.into(),
                protocol: IpProtocol::Udp,
                hop_limit: None,
                owner: None,
            };
            let (sent, frames) =
                with_state_at(NOW_NS, &mut self.state, |cx| send_ip(cx, payload, ip));
            (sent.expect("sent or held"), frames)
        }

        fn neighbors_empty(&self) -> bool {
            self.state.egress.neighbors_v6().is_empty()
        }
    }

    /// An NDP message built by etherparse (its own checksum code): type,
    /// flags byte, target, then one link-layer address option.
    fn ndp(
        macs: ([u8; 6], [u8; 6]),
        addrs: (Ipv6Addr, Ipv6Addr),
        hop_limit: u8,
        (msg_type, flags): (u8, u8),
        target: Ipv6Addr,
        option: Option<(u8, [u8; 6])>,
    ) -> Vec<u8> {
        let mut payload = target.octets().to_vec();
        if let Some((kind, mac)) = option {
            payload.extend_from_slice(&[kind, 1]);
            payload.extend_from_slice(&mac);
        }
        let mut out = Vec::new();
        PacketBuilder::ethernet2(macs.0, macs.1)
            .ipv6(addrs.0.octets(), addrs.1.octets(), hop_limit)
            .icmpv6_raw(msg_type, 0, [flags, 0, 0, 0])
            .write(&mut out, &payload)
            .unwrap();
        out
    }

    fn run(stage: &mut Fixture, bytes: &[u8]) -> Verdict<Ipv6Packet<PoolBuf>, PoolBuf> {
        run_sent(stage, bytes).0
    }

    fn run_sent(
        f: &mut Fixture,
        bytes: &[u8],
    ) -> (Verdict<Ipv6Packet<PoolBuf>, PoolBuf>, Vec<PoolBuf>) {
        let mut buf = frame(bytes);
        buf.meta_mut().layers.l3 = 14;
        buf.meta_mut().layers.l4 = 54;
        let stage = &mut f.stage;
        with_state_at(NOW_NS, &mut f.state, |cx| {
            stage.process(Ipv6Packet::new_unchecked(buf), cx)
        })
    }

    #[test]
    fn a_solicitation_becomes_the_advertisement_etherparse_builds() {
        let mut stage = responder();
        let group = solicited_node(&us());
        let ns = ndp(
            (THEM_MAC, [0x33, 0x33, 0xff, 0, 0, 1]),
            (them(), group),
            255,
            (135, 0),
            us(),
            Some((1, THEM_MAC)),
        );
        let Verdict::Transmit(na) = run(&mut stage, &ns) else {
            panic!("expected an advertisement");
        };
        // Solicited (0x40) and override (0x20), our MAC as target option.
        let expected = ndp(
            (US_MAC, THEM_MAC),
            (us(), them()),
            255,
            (136, 0x60),
            us(),
            Some((2, US_MAC)),
        );
        assert_eq!(na.data(), &expected[..]);
        assert_eq!(
            stage.learned(them()),
            Some((NeighborState::Stale, Some(MacAddr(THEM_MAC))))
        );
        drop(na);
        pool().assert_whole();
    }

    #[test]
    fn a_duplicate_address_probe_is_answered_to_all_nodes() {
        let mut stage = responder();
        let probe = ndp(
            (THEM_MAC, [0x33, 0x33, 0xff, 0, 0, 1]),
            (Ipv6Addr::UNSPECIFIED, solicited_node(&us())),
            255,
            (135, 0),
            us(),
            None,
        );
        let Verdict::Transmit(na) = run(&mut stage, &probe) else {
            panic!("expected an advertisement");
        };
        let expected = ndp(
            (US_MAC, [0x33, 0x33, 0, 0, 0, 1]),
            (us(), ALL_NODES),
            255,
            (136, 0x20),
            us(),
            Some((2, US_MAC)),
        );
        assert_eq!(na.data(), &expected[..]);
        assert!(stage.neighbors_empty());
        drop(na);
        pool().assert_whole();
    }

    #[test]
    fn advertisements_update_only_entries_that_exist_and_bad_messages_drop() {
        let mut stage = responder();
        let na = ndp(
            (THEM_MAC, US_MAC),
            (them(), us()),
            255,
            (136, 0x60),
            them(),
            Some((2, THEM_MAC)),
        );
        // Nobody asked: consumed, nothing learned (RFC 4861 7.2.5).
        assert!(matches!(run(&mut stage, &na), Verdict::Consumed));
        assert!(stage.neighbors_empty());
        // Asked (a packet waits): the solicited answer makes it REACHABLE
        // and the packet leaves, addressed to it.
        let (held, solicitation) = stage.send(them());
        assert_eq!((held, solicitation.len()), (Sent::Held, 1));
        drop(solicitation);
        let (verdict, sent) = run_sent(&mut stage, &na);
        assert!(matches!(verdict, Verdict::Consumed));
        assert_eq!(sent.len(), 1);
        assert_eq!(&sent[0].data()[..6], &THEM_MAC);
        assert_eq!(&sent[0].data()[12..14], &[0x86, 0xdd]);
        assert_eq!(
            stage.learned(them()),
            Some((NeighborState::Reachable, Some(MacAddr(THEM_MAC))))
        );
        drop(sent);
        // A solicited advertisement to a multicast group is invalid.
        let to_group = ndp(
            (THEM_MAC, [0x33, 0x33, 0, 0, 0, 1]),
            (them(), ALL_NODES),
            255,
            (136, 0x60),
            them(),
            Some((2, THEM_MAC)),
        );
        assert!(matches!(
            run(&mut stage, &to_group),
            Verdict::Drop(Reason::MALFORMED)
        ));

        let group = solicited_node(&us());
        let ns = |hop, target, option| {
            ndp(
                (THEM_MAC, US_MAC),
                (them(), group),
                hop,
                (135, 0),
                target,
                option,
            )
        };
        let routed = ns(64, us(), Some((1, THEM_MAC)));
        assert!(matches!(
            run(&mut stage, &routed),
            Verdict::Drop(Reason::MALFORMED)
        ));
        let other = ns(255, "2001:db8::9".parse().unwrap(), Some((1, THEM_MAC)));
        assert!(matches!(
            run(&mut stage, &other),
            Verdict::Drop(Reason::NOT_FOR_US)
        ));
        let mut corrupt = ns(255, us(), Some((1, THEM_MAC)));
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(matches!(
            run(&mut stage, &corrupt),
            Verdict::Drop(Reason::BAD_CHECKSUM)
        ));
        // An option of length 0 (invalid, RFC 4861 4.6) under a checksum
        // that covers it: the option alone is wrong.
        let mut payload = us().octets().to_vec();
        payload.extend_from_slice(&[1, 0]);
        payload.extend_from_slice(&THEM_MAC);
        let mut zero_len_option = Vec::new();
        PacketBuilder::ethernet2(THEM_MAC, US_MAC)
            .ipv6(them().octets(), group.octets(), 255)
            .icmpv6_raw(135, 0, [0; 4])
            .write(&mut zero_len_option, &payload)
            .unwrap();
        assert!(matches!(
            run(&mut stage, &zero_len_option),
            Verdict::Drop(Reason::MALFORMED)
        ));
        let short = ns(255, us(), None);
        assert!(matches!(
            run(&mut stage, &short[..54 + 10]),
            Verdict::Drop(Reason::TOO_SHORT)
        ));
        pool().assert_whole();
    }

    #[test]
    fn the_cache_solicits_through_poll_as_etherparse_would_build_it() {
        let mut stage = responder();
        let target: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let (held, first) = stage.send(target);
        assert_eq!((held, first.len()), (Sent::Held, 1));
        assert!(stage.timers_at(NOW_NS + 999_999_999).is_empty());
        let sent = stage.timers_at(NOW_NS + 1_000_000_000);
        let group = solicited_node(&target);
        let expected = ndp(
            (US_MAC, [0x33, 0x33, 0xff, 0, 0, 2]),
            (us(), group),
            255,
            (135, 0),
            target,
            Some((1, US_MAC)),
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].data(), &expected[..]);
        assert_eq!(first[0].data(), &expected[..], "the first one too");
        assert_eq!(stage.state.egress.counters().solicitations, 2);
        drop((first, sent));
        // Dropping the stage drops what it still holds.
        drop(stage);
        pool().assert_whole();
    }

    #[test]
    fn announcing_sends_an_unsolicited_advertisement_on_the_first_poll() {
        let mut stage = responder();
        stage.state.egress.set_announcing(true);
        let sent = stage.poll_at(NOW_NS);
        // Override set, solicited clear, our MAC as target option.
        let expected = ndp(
            (US_MAC, [0x33, 0x33, 0, 0, 0, 1]),
            (us(), ALL_NODES),
            255,
            (136, 0x20),
            us(),
            Some((2, US_MAC)),
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].data(), &expected[..]);
        assert_eq!(stage.state.egress.counters().announcements, 1);
        assert!(stage.poll_at(NOW_NS + 1).is_empty());
        drop(sent);
        pool().assert_whole();
    }
}
