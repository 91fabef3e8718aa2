//! Neighbor discovery (RFC 4861): answers neighbor solicitations for our
//! IPv6 addresses, keeps the IPv6 [`NeighborCache`] from solicitations and
//! advertisements, and sends the solicitations the cache asks for and the
//! unsolicited advertisements that announce us.

use std::net::Ipv6Addr;

use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::wire::ethernet::{EtherType, Ethernet, EthernetView};
use tpa::wire::icmpv6::{
    solicited_node, Icmpv6Type, NdpOption, NdpOptionWriter, NdpOptions, NeighborAdvertisement,
    NeighborAdvertisementView, NeighborSolicitation, NeighborSolicitationView,
};
use tpa::wire::ipv4::IpProtocol;
use tpa::wire::ipv6::{Ipv6, Ipv6View};
use tpa::wire::MacAddr;

use crate::arp::DEFAULT_NEIGHBORS;
use crate::iface::{Interface, ALL_NODES};
use crate::neighbor::{set_ethernet_destination, Action, Heard, NeighborCache, NeighborConfig};
use crate::packet::Ipv6Packet;

/// The hop limit every neighbor discovery message carries (and must arrive
/// with, proving it was not routed).
pub const NDP_HOP_LIMIT: u8 = 255;

/// Length of an advertisement with a target link-layer address option.
const ADVERTISEMENT_LEN: usize = NeighborAdvertisement::LEN + 8;

/// Length of a solicitation with a source link-layer address option.
const SOLICITATION_LEN: usize = NeighborSolicitation::LEN + 8;

/// The Ethernet group of all-nodes, 33:33:00:00:00:01.
const ALL_NODES_MAC: MacAddr = MacAddr([0x33, 0x33, 0, 0, 0, 1]);

/// Answers neighbor solicitations for the interface's addresses with a
/// solicited advertisement carrying our MAC address, rewritten in the
/// solicitation's own buffer. A duplicate address detection probe (from
/// `::`) is answered to all-nodes, unsolicited. Other packets pass on.
///
/// Keeps a [`NeighborCache`] of IPv6 neighbors by RFC 4861's rules: a
/// solicitation for us with a source link-layer address creates or updates
/// its sender (STALE); an advertisement updates only an entry that exists
/// (solicited: REACHABLE; the override flag decides whether a different
/// address replaces the cached one) and is consumed.
///
/// Its [`poll`](Stage::poll) sends what the cache asks for (solicitations
/// to the solicited-node group, unicast probes) and, when
/// [announcing](Self::announcing), an unsolicited advertisement to
/// all-nodes for each address on the first poll.
///
/// Drops: `malformed` (hop limit not 255, nonzero code, bad options, a
/// source link-layer option in a probe, a multicast target, a solicited
/// advertisement to a multicast address), `bad-checksum`, `too-short`, and
/// `not-for-us` for solicitations of someone else's address.
#[derive(Debug)]
pub struct NdpResponder<B> {
    iface: Interface,
    neighbors: NeighborCache<Ipv6Addr, B>,
    announce: bool,
    counters: NdpCounters,
}

/// What the stage sent on its own, besides answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NdpCounters {
    /// Solicitations sent for the neighbor cache (multicast and unicast).
    pub solicitations: u64,
    /// Unsolicited advertisements sent.
    pub announcements: u64,
    /// Frames not built for want of a buffer.
    pub alloc_failed: u64,
}

impl<B> NdpResponder<B> {
    /// A responder for `iface`, remembering [`DEFAULT_NEIGHBORS`] neighbors.
    pub fn new(iface: Interface) -> Self {
        Self::with_config(iface, NeighborConfig::with_capacity(DEFAULT_NEIGHBORS))
    }

    /// A responder whose neighbor cache is sized and timed by `config`.
    pub fn with_config(iface: Interface, config: NeighborConfig) -> Self {
        NdpResponder {
            iface,
            neighbors: NeighborCache::new(config),
            announce: false,
            counters: NdpCounters::default(),
        }
    }

    /// Sends an unsolicited neighbor advertisement for each of our addresses
    /// on the first poll when `on` (see
    /// [`ArpResponder::announcing`](crate::arp::ArpResponder::announcing)).
    pub fn announcing(mut self, on: bool) -> Self {
        self.announce = on;
        self
    }

    /// Turns the announcement on the next poll on or off (see
    /// [`announcing`](Self::announcing)).
    pub fn set_announcing(&mut self, on: bool) {
        self.announce = on;
    }

    /// The neighbor cache.
    pub fn neighbors(&self) -> &NeighborCache<Ipv6Addr, B> {
        &self.neighbors
    }

    /// The neighbor cache, to resolve addresses through (the egress path).
    pub fn neighbors_mut(&mut self) -> &mut NeighborCache<Ipv6Addr, B> {
        &mut self.neighbors
    }

    /// What the stage sent on its own.
    pub fn counters(&self) -> &NdpCounters {
        &self.counters
    }
}

/// The Ethernet group an IPv6 multicast address maps to, 33:33 and its
/// last four bytes (RFC 2464 §7).
fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// An NDP message from `src` to `dst` (Ethernet `eth_dst`): `message`
/// writes the ICMPv6 part (`len` bytes), whose checksum is filled here.
fn build_ndp<B: PacketBuf, S>(
    cx: &mut Cx<'_, B, S>,
    (eth_src, eth_dst): (MacAddr, MacAddr),
    (src, dst): (Ipv6Addr, Ipv6Addr),
    len: usize,
    message: impl FnOnce(&mut [u8]) -> Option<()>,
) -> Option<B> {
    let mut buf = cx.alloc()?;
    let bytes = buf.append(Ethernet::LEN + Ipv6::LEN + len).ok()?;
    bytes.fill(0);
    Ethernet {
        dst: eth_dst,
        src: eth_src,
        ether_type: EtherType::Ipv6,
    }
    .emit(bytes)
    .ok()?;
    let (_, rest) = bytes.split_at_mut(Ethernet::LEN);
    let (ip, icmp) = rest.split_at_mut(Ipv6::LEN);
    Ipv6 {
        version: 6,
        dscp: 0,
        ecn: 0,
        flow_label: 0,
        payload_len: len as u16,
        next_header: IpProtocol::Icmpv6,
        hop_limit: NDP_HOP_LIMIT,
        src,
        dst,
    }
    .emit(ip)
    .ok()?;
    message(icmp)?;
    // NS and NA keep their checksum at the same place; either view fills it.
    NeighborAdvertisementView::new(icmp)
        .ok()?
        .fill_checksum_v6(&src, &dst);
    Some(buf)
}

/// A solicitation for `target`, to its solicited-node group or, probing,
/// to `unicast`.
fn solicitation<B: PacketBuf, S>(
    cx: &mut Cx<'_, B, S>,
    iface: &Interface,
    target: Ipv6Addr,
    unicast: Option<MacAddr>,
) -> Option<B> {
    let source = iface
        .ipv6
        .iter()
        .find(|c| c.contains(target))
        .or(iface.ipv6.first())?
        .addr;
    let (dst, eth_dst) = match unicast {
        Some(mac) => (target, mac),
        None => {
            let group = solicited_node(&target);
            (group, multicast_mac(group))
        }
    };
    build_ndp(
        cx,
        (iface.mac, eth_dst),
        (source, dst),
        SOLICITATION_LEN,
        |icmp| {
            NeighborSolicitation {
                msg_type: Icmpv6Type::NeighborSolicitation,
                code: 0,
                checksum: 0,
                reserved: 0,
                target,
            }
            .emit(icmp)
            .ok()?;
            NdpOptionWriter::new(&mut icmp[NeighborSolicitation::LEN..])
                .source_link_addr(iface.mac)
                .ok()
        },
    )
}

/// An unsolicited advertisement of `addr` at our MAC address, to all-nodes.
fn announcement<B: PacketBuf, S>(cx: &mut Cx<'_, B, S>, mac: MacAddr, addr: Ipv6Addr) -> Option<B> {
    build_ndp(
        cx,
        (mac, multicast_mac(ALL_NODES)),
        (addr, ALL_NODES),
        ADVERTISEMENT_LEN,
        |icmp| {
            NeighborAdvertisement {
                msg_type: Icmpv6Type::NeighborAdvertisement,
                code: 0,
                checksum: 0,
                router: false,
                solicited: false,
                override_entry: true,
                reserved: 0,
                target: addr,
            }
            .emit(icmp)
            .ok()?;
            NdpOptionWriter::new(&mut icmp[NeighborAdvertisement::LEN..])
                .target_link_addr(mac)
                .ok()
        },
    )
}

/// Carries out what the cache asked for.
fn act<B: PacketBuf, S>(
    iface: &Interface,
    counters: &mut NdpCounters,
    action: Action<Ipv6Addr, B>,
    cx: &mut Cx<'_, B, S>,
) {
    match action {
        Action::Solicit { target, unicast } => match solicitation(cx, iface, target, unicast) {
            Some(frame) => {
                counters.solicitations += 1;
                cx.transmit(frame);
            }
            None => counters.alloc_failed += 1,
        },
        Action::Send { mut packet, mac } => {
            if set_ethernet_destination(packet.data_mut(), mac) {
                cx.transmit(packet);
            }
        }
        // Counted by the cache; the sender's error has nowhere to go yet.
        Action::Drop { .. } => {}
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

impl<B: PacketBuf> NdpResponder<B> {
    fn advertise<S>(
        &mut self,
        mut p: Ipv6Packet<B>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        cx: &mut Cx<'_, B, S>,
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
            if !self.iface.owns_ipv6(ns.target()) {
                return Verdict::Drop(Reason::NOT_FOR_US);
            }
            (ns.target(), source_link)
        };
        let probe = src.is_unspecified();
        if probe && asker_mac.is_some() {
            return Verdict::Drop(Reason::MALFORMED);
        }
        let (reply_dst, reply_mac) = if probe {
            (ALL_NODES, ALL_NODES_MAC)
        } else {
            let mac = match asker_mac {
                Some(mac) => mac,
                None => match EthernetView::new(p.buf().data()) {
                    Ok(eth) => eth.src(),
                    Err(_) => return Verdict::Drop(Reason::TOO_SHORT),
                },
            };
            if let Some(mac) = asker_mac {
                let now = cx.now_ns();
                let (iface, counters) = (&self.iface, &mut self.counters);
                self.neighbors
                    .learn(src, Some(mac), Heard::Solicitation, now, |a| {
                        act(iface, counters, a, cx)
                    });
            }
            (src, mac)
        };

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
        let our_mac = self.iface.mac;
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

    fn learn_advertisement<S>(
        &mut self,
        p: &Ipv6Packet<B>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        cx: &mut Cx<'_, B, S>,
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
        if self.iface.owns_ipv6(target) {
            // Someone else claims our address: nothing to learn.
            return Ok(());
        }
        let now = cx.now_ns();
        let (iface, counters) = (&self.iface, &mut self.counters);
        self.neighbors
            .learn(target, mac, heard, now, |a| act(iface, counters, a, cx));
        Ok(())
    }
}

impl<B: PacketBuf, S> Stage<B, S> for NdpResponder<B> {
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
        if msg_type == Icmpv6Type::NeighborSolicitation {
            return self.advertise(p, src, dst, cx);
        }
        match self.learn_advertisement(&p, src, dst, cx) {
            Ok(()) => Verdict::Consumed,
            Err(reason) => Verdict::Drop(reason),
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        if self.announce {
            self.announce = false;
            for cidr in &self.iface.ipv6 {
                match announcement(cx, self.iface.mac, cidr.addr) {
                    Some(frame) => {
                        self.counters.announcements += 1;
                        cx.transmit(frame);
                    }
                    None => self.counters.alloc_failed += 1,
                }
            }
        }
        let now = cx.now_ns();
        if self.neighbors.next_deadline().is_some_and(|at| at <= now) {
            let (iface, counters) = (&self.iface, &mut self.counters);
            self.neighbors.poll(now, |a| act(iface, counters, a, cx));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neighbor::{NeighborState, Resolved};
    use crate::testing::{frame, pool, with_cx_at, BufferPool, NOW_NS};
    use etherparse::PacketBuilder;
    use tpa::buf::PoolBuf;
    use tpa::wire::icmpv6::solicited_node;

    const US_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
    const THEM_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];

    fn us() -> Ipv6Addr {
        "2001:db8::1".parse().unwrap()
    }
    fn them() -> Ipv6Addr {
        "fe80::2".parse().unwrap()
    }

    fn responder() -> NdpResponder<PoolBuf> {
        NdpResponder::new(
            Interface::new(MacAddr(US_MAC)).with_ipv6("2001:db8::1/64".parse().unwrap()),
        )
    }

    fn learned(
        stage: &NdpResponder<PoolBuf>,
        ip: Ipv6Addr,
    ) -> Option<(NeighborState, Option<MacAddr>)> {
        stage.neighbors().get(ip, NOW_NS).map(|n| (n.state, n.mac))
    }

    fn poll_at(stage: &mut NdpResponder<PoolBuf>, now_ns: u64) -> Vec<PoolBuf> {
        with_cx_at(now_ns, |cx| stage.poll(cx)).1
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

    fn run(
        stage: &mut NdpResponder<PoolBuf>,
        bytes: &[u8],
    ) -> Verdict<Ipv6Packet<PoolBuf>, PoolBuf> {
        run_sent(stage, bytes).0
    }

    fn run_sent(
        stage: &mut NdpResponder<PoolBuf>,
        bytes: &[u8],
    ) -> (Verdict<Ipv6Packet<PoolBuf>, PoolBuf>, Vec<PoolBuf>) {
        let mut buf = frame(bytes);
        buf.meta_mut().layers.l3 = 14;
        buf.meta_mut().layers.l4 = 54;
        with_cx_at(NOW_NS, |cx| {
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
            learned(&stage, them()),
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
        assert!(stage.neighbors().is_empty());
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
        assert!(stage.neighbors().is_empty());
        // Asked (a packet waits): the solicited answer makes it REACHABLE
        // and the packet leaves, addressed to it.
        let held = frame(&[0u8; 64]);
        let resolved = stage.neighbors_mut().resolve(them(), held, NOW_NS, |a| {
            assert!(matches!(a, Action::Solicit { .. }))
        });
        assert!(matches!(resolved, Resolved::Held));
        let (verdict, sent) = run_sent(&mut stage, &na);
        assert!(matches!(verdict, Verdict::Consumed));
        assert_eq!(sent.len(), 1);
        assert_eq!(&sent[0].data()[..6], &THEM_MAC);
        assert_eq!(
            learned(&stage, them()),
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
        let mut first = None;
        let resolved = stage
            .neighbors_mut()
            .resolve(target, frame(&[0u8; 64]), NOW_NS, |a| first = Some(a));
        assert!(matches!(resolved, Resolved::Held));
        assert!(matches!(first, Some(Action::Solicit { unicast: None, .. })));
        let sent = poll_at(&mut stage, NOW_NS + 1_000_000_000);
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
        assert_eq!(stage.counters().solicitations, 1);
        drop(sent);
        // Dropping the stage drops what it still holds.
        drop(stage);
        pool().assert_whole();
    }

    #[test]
    fn announcing_sends_an_unsolicited_advertisement_on_the_first_poll() {
        let mut stage = responder().announcing(true);
        let sent = poll_at(&mut stage, NOW_NS);
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
        assert_eq!(stage.counters().announcements, 1);
        assert!(poll_at(&mut stage, NOW_NS + 1).is_empty());
        drop(sent);
        pool().assert_whole();
    }
}
