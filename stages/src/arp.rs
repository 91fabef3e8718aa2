//! ARP (RFC 826): answers requests for our IPv4 addresses, keeps the IPv4
//! [`NeighborCache`] from what it hears, and sends the requests the cache
//! asks for and the gratuitous ARP that announces us.

use core::convert::Infallible;
use std::net::Ipv4Addr;

use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::wire::arp::{Arp, ArpOperation, ArpView};
use tpa::wire::ethernet::{EtherType, Ethernet, EthernetView};
use tpa::wire::MacAddr;

use crate::iface::Interface;
use crate::neighbor::{set_ethernet_destination, Action, Heard, NeighborCache, NeighborConfig};
use crate::packet::ArpFrame;

/// Neighbors an [`ArpResponder`] remembers by default.
pub const DEFAULT_NEIGHBORS: usize = 64;

/// Length of the ARP frames built here: Ethernet's 60-byte minimum (the
/// 14-byte header and 28-byte ARP packet, padded).
const ARP_FRAME_LEN: usize = 60;

/// What the stage sent on its own, besides replies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArpCounters {
    /// Requests sent for the neighbor cache (broadcast and unicast probes).
    pub requests: u64,
    /// Gratuitous ARP announcements sent.
    pub announcements: u64,
    /// Frames not built for want of a buffer.
    pub alloc_failed: u64,
}

/// Answers ARP requests for the interface's IPv4 addresses by turning the
/// request into the reply in place (no allocation, no copy) and transmitting
/// it; keeps a [`NeighborCache`] of IPv4 neighbors by RFC 4861's rules,
/// applied to ARP as Linux does: a request for us creates or updates its
/// sender (STALE), a reply unicast to us confirms it (REACHABLE), any other
/// ARP packet only updates a sender already known (RFC 826's merge).
///
/// Its [`poll`](Stage::poll) sends what the cache asks for (requests,
/// retries, probes) and, when [announcing](Self::announcing), a gratuitous
/// ARP for each address on the first poll, so that neighbors learn (or
/// correct) our MAC address before we speak.
///
/// Verdicts: a request for us is transmitted; a reply to us is consumed;
/// anything else for someone else is dropped `not-for-us`; ARP for other
/// hardware or protocols is `unsupported`, a short packet `too-short` and an
/// unknown operation or a multicast sender `malformed`.
#[derive(Debug)]
pub struct ArpResponder<B> {
    iface: Interface,
    neighbors: NeighborCache<Ipv4Addr, B>,
    announce: bool,
    counters: ArpCounters,
}

impl<B> ArpResponder<B> {
    /// A responder for `iface`, remembering [`DEFAULT_NEIGHBORS`] neighbors.
    pub fn new(iface: Interface) -> Self {
        Self::with_neighbors(iface, DEFAULT_NEIGHBORS)
    }

    /// A responder remembering up to `capacity` neighbors.
    pub fn with_neighbors(iface: Interface, capacity: usize) -> Self {
        Self::with_config(iface, NeighborConfig::with_capacity(capacity))
    }

    /// A responder whose neighbor cache is sized and timed by `config`.
    pub fn with_config(iface: Interface, config: NeighborConfig) -> Self {
        ArpResponder {
            iface,
            neighbors: NeighborCache::new(config),
            announce: false,
            counters: ArpCounters::default(),
        }
    }

    /// Sends a gratuitous ARP for each of our addresses on the first poll
    /// when `on`: the policy of a port that owns its addresses. A port that
    /// shares the host's addresses leaves ARP to the kernel and keeps it off
    /// (the default).
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
    pub fn neighbors(&self) -> &NeighborCache<Ipv4Addr, B> {
        &self.neighbors
    }

    /// The neighbor cache, to resolve addresses through (the egress path).
    pub fn neighbors_mut(&mut self) -> &mut NeighborCache<Ipv4Addr, B> {
        &mut self.neighbors
    }

    /// What the stage sent on its own.
    pub fn counters(&self) -> &ArpCounters {
        &self.counters
    }
}

/// Rewrites a request into its reply, in place: Ethernet addresses, then the
/// operation and the four address fields.
fn request_to_reply(frame: &mut [u8], l3: usize, our_mac: MacAddr) -> Option<()> {
    let (eth, arp) = frame.split_at_mut(l3);
    let mut arp = ArpView::new(arp).ok()?;
    let (asker_mac, asker_ip, wanted_ip) = (arp.sender_mac(), arp.sender_ip(), arp.target_ip());
    arp.set_operation(ArpOperation::Reply);
    arp.set_sender_mac(our_mac);
    arp.set_sender_ip(wanted_ip);
    arp.set_target_mac(asker_mac);
    arp.set_target_ip(asker_ip);
    let mut eth = EthernetView::new(eth).ok()?;
    eth.set_dst(asker_mac);
    eth.set_src(our_mac);
    Some(())
}

/// An ARP frame to `dst` carrying `arp`, in a buffer from `cx`.
fn build_arp<B: PacketBuf, S>(cx: &mut Cx<'_, B, S>, dst: MacAddr, arp: &Arp) -> Option<B> {
    let mut buf = cx.alloc()?;
    let bytes = buf.append(ARP_FRAME_LEN).ok()?;
    bytes.fill(0);
    Ethernet {
        dst,
        src: arp.sender_mac,
        ether_type: EtherType::Arp,
    }
    .emit(bytes)
    .ok()?;
    arp.emit(&mut bytes[Ethernet::LEN..]).ok()?;
    Some(buf)
}

/// Our address to ask from about `target`: the first on its subnet, else
/// the first.
fn source_for(iface: &Interface, target: Ipv4Addr) -> Option<Ipv4Addr> {
    iface
        .ipv4
        .iter()
        .find(|c| c.contains(target))
        .or(iface.ipv4.first())
        .map(|c| c.addr)
}

/// Carries out what the cache asked for.
fn act<B: PacketBuf, S>(
    iface: &Interface,
    counters: &mut ArpCounters,
    action: Action<Ipv4Addr, B>,
    cx: &mut Cx<'_, B, S>,
) {
    match action {
        Action::Solicit { target, unicast } => {
            let Some(source) = source_for(iface, target) else {
                return;
            };
            let request = Arp::request(iface.mac, source, target);
            match build_arp(cx, unicast.unwrap_or(MacAddr::BROADCAST), &request) {
                Some(frame) => {
                    counters.requests += 1;
                    cx.transmit(frame);
                }
                None => counters.alloc_failed += 1,
            }
        }
        Action::Send { mut packet, mac } => {
            if set_ethernet_destination(packet.data_mut(), mac) {
                cx.transmit(packet);
            }
        }
        // Counted by the cache; the sender's error has nowhere to go yet.
        Action::Drop { .. } => {}
    }
}

impl<B: PacketBuf, S> Stage<B, S> for ArpResponder<B> {
    type In = ArpFrame<B>;
    type Out = Infallible;

    fn process(&mut self, mut frame: ArpFrame<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        let (operation, sender_mac, sender_ip, target_ip) = {
            let arp = match ArpView::new(frame.l3()) {
                Ok(a) => a,
                Err(_) => return Verdict::Drop(Reason::TOO_SHORT),
            };
            if !arp.is_ethernet_ipv4() {
                return Verdict::Drop(Reason::UNSUPPORTED);
            }
            (
                arp.operation(),
                arp.sender_mac(),
                arp.sender_ip(),
                arp.target_ip(),
            )
        };
        if sender_mac.is_multicast() {
            return Verdict::Drop(Reason::MALFORMED);
        }
        let for_us = self.iface.owns_ipv4(target_ip);
        let to_our_mac =
            EthernetView::new(frame.buf().data()).is_ok_and(|e| e.dst() == self.iface.mac);
        let heard = match operation {
            ArpOperation::Request if for_us => Heard::Solicitation,
            ArpOperation::Reply if for_us => Heard::Advertisement {
                solicited: to_our_mac,
                override_entry: true,
            },
            ArpOperation::Request | ArpOperation::Reply => Heard::Advertisement {
                solicited: false,
                override_entry: true,
            },
            ArpOperation::Unknown(_) => return Verdict::Drop(Reason::MALFORMED),
        };
        // A probe (RFC 5227) has no sender address to learn.
        if !sender_ip.is_unspecified() && !self.iface.owns_ipv4(sender_ip) {
            let now = cx.now_ns();
            let (iface, counters) = (&self.iface, &mut self.counters);
            self.neighbors
                .learn(sender_ip, Some(sender_mac), heard, now, |a| {
                    act(iface, counters, a, cx)
                });
        }
        match operation {
            ArpOperation::Request if for_us => {
                let l3 = frame.l3_offset();
                match request_to_reply(frame.buf_mut().data_mut(), l3, self.iface.mac) {
                    Some(()) => Verdict::Transmit(frame.into_buf()),
                    None => Verdict::Drop(Reason::TOO_SHORT),
                }
            }
            ArpOperation::Reply if for_us => Verdict::Consumed,
            _ => Verdict::Drop(Reason::NOT_FOR_US),
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        if self.announce {
            self.announce = false;
            for cidr in &self.iface.ipv4 {
                let mut announcement = Arp::request(self.iface.mac, cidr.addr, cidr.addr);
                announcement.target_mac = MacAddr::ZERO;
                match build_arp(cx, MacAddr::BROADCAST, &announcement) {
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
    use tpa::buf::PoolBuf;

    const US_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
    const THEM_MAC: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 2]);
    const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const THEM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const SECOND: u64 = 1_000_000_000;

    fn responder() -> ArpResponder<PoolBuf> {
        let config = NeighborConfig {
            seed: 1,
            ..NeighborConfig::default()
        };
        ArpResponder::with_config(
            Interface::new(US_MAC).with_ipv4("192.0.2.1/24".parse().unwrap()),
            config,
        )
    }

    fn arp_frame(dst: MacAddr, arp: &Arp) -> Vec<u8> {
        let mut bytes = vec![0u8; 60];
        Ethernet {
            dst,
            src: arp.sender_mac,
            ether_type: EtherType::Arp,
        }
        .emit(&mut bytes)
        .unwrap();
        arp.emit(&mut bytes[14..]).unwrap();
        bytes
    }

    fn run(stage: &mut ArpResponder<PoolBuf>, bytes: &[u8]) -> Verdict<Infallible, PoolBuf> {
        run_at(stage, bytes, NOW_NS).0
    }

    fn run_at(
        stage: &mut ArpResponder<PoolBuf>,
        bytes: &[u8],
        now_ns: u64,
    ) -> (Verdict<Infallible, PoolBuf>, Vec<PoolBuf>) {
        let mut buf = frame(bytes);
        buf.meta_mut().layers.l3 = 14;
        with_cx_at(now_ns, |cx| stage.process(ArpFrame::new_unchecked(buf), cx))
    }

    fn poll_at(stage: &mut ArpResponder<PoolBuf>, now_ns: u64) -> Vec<PoolBuf> {
        with_cx_at(now_ns, |cx| stage.poll(cx)).1
    }

    fn state(
        stage: &ArpResponder<PoolBuf>,
        ip: Ipv4Addr,
    ) -> Option<(NeighborState, Option<MacAddr>)> {
        stage.neighbors().get(ip, NOW_NS).map(|n| (n.state, n.mac))
    }

    #[test]
    fn a_request_for_us_becomes_the_reply_byte_for_byte() {
        let mut stage = responder();
        let request = arp_frame(MacAddr::BROADCAST, &Arp::request(THEM_MAC, THEM, US));
        let Verdict::Transmit(reply) = run(&mut stage, &request) else {
            panic!("expected a reply");
        };
        // Written out by hand from RFC 826, independently of the views.
        let mut expected = vec![
            0x02, 0xbb, 0, 0, 0, 2, // dst: the asker
            0x02, 0xaa, 0, 0, 0, 1, // src: us
            0x08, 0x06, // ARP
            0x00, 0x01, 0x08, 0x00, 6, 4, // Ethernet, IPv4, lengths
            0x00, 0x02, // reply
            0x02, 0xaa, 0, 0, 0, 1, 192, 0, 2, 1, // sender: us
            0x02, 0xbb, 0, 0, 0, 2, 192, 0, 2, 2, // target: the asker
        ];
        expected.resize(60, 0);
        assert_eq!(reply.data(), &expected[..]);
        // The asker is known but not confirmed (RFC 4861 7.2.3's rule).
        assert_eq!(
            state(&stage, THEM),
            Some((NeighborState::Stale, Some(THEM_MAC)))
        );
        assert_eq!(stage.neighbors().get(THEM, 0).unwrap().updated_ns, NOW_NS);
        drop(reply);
        pool().assert_whole();
    }

    #[test]
    fn a_reply_nobody_asked_for_creates_no_entry() {
        let mut stage = responder();
        let reply = Arp::reply_to(&Arp::request(US_MAC, US, THEM), THEM_MAC);
        assert!(matches!(
            run(&mut stage, &arp_frame(US_MAC, &reply)),
            Verdict::Consumed
        ));
        assert!(stage.neighbors().is_empty());
        pool().assert_whole();
    }

    #[test]
    fn a_held_packet_leaves_when_the_reply_comes() {
        let mut stage = responder();
        let mut actions = Vec::new();
        let packet = frame(&[0u8; 64]);
        assert!(matches!(
            stage
                .neighbors_mut()
                .resolve(THEM, packet, NOW_NS, |a| actions.push(a)),
            Resolved::Held
        ));
        assert!(matches!(
            actions.as_slice(),
            [Action::Solicit {
                target: THEM,
                unicast: None
            }]
        ));
        // Nothing due yet; a second later the stage asks again, broadcast.
        assert!(poll_at(&mut stage, NOW_NS + SECOND - 1).is_empty());
        let sent = poll_at(&mut stage, NOW_NS + SECOND);
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].data(),
            &arp_frame(MacAddr::BROADCAST, &Arp::request(US_MAC, US, THEM))[..]
        );
        assert_eq!(stage.counters().requests, 1);
        drop(sent);
        // The answer, unicast to us: the held packet goes out to it.
        let reply = Arp::reply_to(&Arp::request(US_MAC, US, THEM), THEM_MAC);
        let (verdict, sent) = run_at(&mut stage, &arp_frame(US_MAC, &reply), NOW_NS + SECOND);
        assert!(matches!(verdict, Verdict::Consumed));
        assert_eq!(sent.len(), 1);
        assert_eq!(&sent[0].data()[..6], &THEM_MAC.octets());
        assert_eq!(
            state(&stage, THEM),
            Some((NeighborState::Reachable, Some(THEM_MAC)))
        );
        assert_eq!(stage.neighbors().counters().released, 1);
        drop((actions, sent));
        pool().assert_whole();
    }

    #[test]
    fn a_neighbor_that_never_answers_gets_three_requests_then_its_packets_drop() {
        let mut stage = responder();
        let packet = frame(&[0u8; 64]);
        let mut solicits = 0;
        stage.neighbors_mut().resolve(THEM, packet, NOW_NS, |a| {
            assert!(matches!(a, Action::Solicit { .. }));
            solicits += 1;
        });
        let mut requests = 0;
        for s in 1..=3 {
            requests += poll_at(&mut stage, NOW_NS + s * SECOND).len();
        }
        assert_eq!((solicits, requests), (1, 2));
        assert!(stage.neighbors().is_empty());
        let c = stage.neighbors().counters();
        assert_eq!(
            (c.solicitations, c.dropped_unreachable, c.failed),
            (3, 1, 1)
        );
        assert_eq!(stage.neighbors().next_deadline(), None);
        pool().assert_whole();
    }

    #[test]
    fn others_are_dropped_and_only_update_known_senders() {
        let mut stage = responder();
        let other = Ipv4Addr::new(192, 0, 2, 77);
        let request = arp_frame(MacAddr::BROADCAST, &Arp::request(THEM_MAC, THEM, other));
        assert!(matches!(
            run(&mut stage, &request),
            Verdict::Drop(Reason::NOT_FOR_US)
        ));
        assert!(stage.neighbors().is_empty());
        // Known, then a gratuitous ARP from a new MAC: updated, STALE.
        let asked = arp_frame(MacAddr::BROADCAST, &Arp::request(THEM_MAC, THEM, US));
        assert!(matches!(run(&mut stage, &asked), Verdict::Transmit(_)));
        let moved = MacAddr([0x02, 0xcc, 0, 0, 0, 3]);
        let gratuitous = arp_frame(MacAddr::BROADCAST, &Arp::request(moved, THEM, THEM));
        assert!(matches!(
            run(&mut stage, &gratuitous),
            Verdict::Drop(Reason::NOT_FOR_US)
        ));
        assert_eq!(
            state(&stage, THEM),
            Some((NeighborState::Stale, Some(moved)))
        );

        let mut odd = Arp::request(THEM_MAC, THEM, US);
        odd.operation = ArpOperation::Unknown(9);
        assert!(matches!(
            run(&mut stage, &arp_frame(US_MAC, &odd)),
            Verdict::Drop(Reason::MALFORMED)
        ));
        let mut not_ipv4 = Arp::request(THEM_MAC, THEM, US);
        not_ipv4.protocol_addr_len = 16;
        assert!(matches!(
            run(&mut stage, &arp_frame(US_MAC, &not_ipv4)),
            Verdict::Drop(Reason::UNSUPPORTED)
        ));
        let short = arp_frame(US_MAC, &Arp::request(THEM_MAC, THEM, US));
        assert!(matches!(
            run(&mut stage, &short[..14 + 20]),
            Verdict::Drop(Reason::TOO_SHORT)
        ));
        pool().assert_whole();
    }

    #[test]
    fn probes_are_answered_without_learning_the_unspecified_address() {
        let mut stage = responder();
        let probe = arp_frame(
            MacAddr::BROADCAST,
            &Arp::request(THEM_MAC, Ipv4Addr::UNSPECIFIED, US),
        );
        assert!(matches!(run(&mut stage, &probe), Verdict::Transmit(_)));
        assert!(stage.neighbors().is_empty());
        pool().assert_whole();
    }

    #[test]
    fn announcing_sends_one_gratuitous_arp_per_address_on_the_first_poll() {
        let iface = Interface::new(US_MAC)
            .with_ipv4("192.0.2.1/24".parse().unwrap())
            .with_ipv4("198.51.100.1/24".parse().unwrap());
        let mut quiet: ArpResponder<PoolBuf> = ArpResponder::new(iface.clone());
        assert!(poll_at(&mut quiet, NOW_NS).is_empty());
        let mut stage: ArpResponder<PoolBuf> = ArpResponder::new(iface).announcing(true);
        let sent = poll_at(&mut stage, NOW_NS);
        // RFC 5227's announcement: a broadcast request for our own address.
        let mut expected = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst: everyone
            0x02, 0xaa, 0, 0, 0, 1, // src: us
            0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // a request
            0x02, 0xaa, 0, 0, 0, 1, 192, 0, 2, 1, // sender: us
            0, 0, 0, 0, 0, 0, 192, 0, 2, 1, // target: us, no MAC
        ];
        expected.resize(60, 0);
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].data(), &expected[..]);
        assert_eq!(&sent[1].data()[38..42], &[198, 51, 100, 1]);
        assert_eq!(stage.counters().announcements, 2);
        assert!(poll_at(&mut stage, NOW_NS + 1).is_empty());
        drop(sent);
        pool().assert_whole();
    }
}
