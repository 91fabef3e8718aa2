//! ARP (RFC 826): answers requests for our IPv4 addresses and keeps the
//! IPv4 neighbor cache of the [`Egress`] part from what it hears. The
//! cache's deadlines (retried requests, probes, held packets released or
//! dropped) and the gratuitous ARP of the announce policy are the
//! part's own work, which the state runs once per loop iteration (its
//! `#[polled]` field, see [`Egress`]'s [`Polled`](tpa::state::Polled)).

use core::convert::Infallible;

use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::state::{Part, PollsPart};
use tpa::wire::arp::{ArpOperation, ArpView};
use tpa::wire::ethernet::EthernetView;
use tpa::wire::MacAddr;

use crate::egress::Egress;
use crate::neighbor::Heard;
use crate::packet::ArpFrame;

/// Answers ARP requests for the addresses of the state's [`Egress`]
/// interface by turning the request into the reply in place (no
/// allocation, no copy) and transmitting it; keeps the IPv4 neighbor cache
/// of the [`Egress`] part by RFC 4861's rules, applied to ARP as Linux
/// does: a request for us creates or updates its sender (STALE), a reply
/// unicast to us confirms it (REACHABLE) and releases the packets held for
/// it, any other ARP packet only updates a sender already known (RFC 826's
/// merge).
///
/// The gratuitous ARP of the egress announce policy
/// ([`Egress::announcing`]) and the cache's deadlines (requests repeated,
/// probes, held packets of a neighbor that never answered dropped with an
/// EHOSTUNREACH event for their socket) are the [`Egress`] part's own
/// work, run by the state: the stage requires the part marked `#[polled]`
/// ([`PollsPart`]), so a state that would leave them undone does not
/// compile.
///
/// Verdicts: a request for us is transmitted; a reply to us is consumed;
/// anything else for someone else is dropped `not-for-us`; ARP for other
/// hardware or protocols is `unsupported`, a short packet `too-short` and an
/// unknown operation or a multicast sender `malformed`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ArpResponder;

impl ArpResponder {
    /// The ARP stage.
    pub fn new() -> Self {
        ArpResponder
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

impl<B, S> Stage<B, S> for ArpResponder
where
    B: PacketBuf,
    S: Part<Egress<B>> + PollsPart<Egress<B>>,
{
    type In = ArpFrame<B>;
    type Out = Infallible;

    fn process(&mut self, mut frame: ArpFrame<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        if frame.buf().is_chained() {
            // A reply is written over the request: a chain's later
            // segments (shared, perhaps) would go out behind it.
            return Verdict::Drop(Reason::CHAINED);
        }
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
        let (state, port) = cx.split();
        let egress = Part::<Egress<B>>::part_mut(state);
        let iface = egress.interface();
        let our_mac = iface.mac;
        let for_us = iface.owns_ipv4(target_ip);
        let from_us = iface.owns_ipv4(sender_ip);
        let to_our_mac = EthernetView::new(frame.buf().data()).is_ok_and(|e| e.dst() == our_mac);
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
        if !sender_ip.is_unspecified() && !from_us {
            egress.learn_v4(sender_ip, Some(sender_mac), heard, port);
        }
        match operation {
            ArpOperation::Request if for_us => {
                let l3 = frame.l3_offset();
                match request_to_reply(frame.buf_mut().data_mut(), l3, our_mac) {
                    Some(()) => Verdict::Transmit(frame.into_buf()),
                    None => Verdict::Drop(Reason::TOO_SHORT),
                }
            }
            ArpOperation::Reply if for_us => Verdict::Consumed,
            _ => Verdict::Drop(Reason::NOT_FOR_US),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    use crate::egress::{send_ip, IpSend, Sent};
    use crate::iface::Interface;
    use crate::neighbor::NeighborState;
    use crate::testing::{frame, pool, with_state_at, BufferPool, EgressState, NOW_NS};
    use tpa::app::{Event, EventKind, SocketError, SocketId, Transport};
    use tpa::buf::PoolBuf;
    use tpa::state::PolledState;
    use tpa::wire::arp::Arp;
    use tpa::wire::ethernet::{EtherType, Ethernet};
    use tpa::wire::ipv4::IpProtocol;

    const US_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
    const THEM_MAC: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 2]);
    const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const THEM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const SECOND: u64 = 1_000_000_000;

    /// The stage and the state it works on.
    struct Fixture {
        stage: ArpResponder,
        state: EgressState,
    }

    fn fixture() -> Fixture {
        fixture_for(Interface::new(US_MAC).with_ipv4("192.0.2.1/24".parse().unwrap()))
    }

    fn fixture_for(iface: Interface) -> Fixture {
        Fixture {
            stage: ArpResponder::new(),
            state: EgressState::new(iface),
        }
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

    impl Fixture {
        fn run(&mut self, bytes: &[u8]) -> Verdict<Infallible, PoolBuf> {
            self.run_at(bytes, NOW_NS).0
        }

        fn run_at(
            &mut self,
            bytes: &[u8],
            now_ns: u64,
        ) -> (Verdict<Infallible, PoolBuf>, Vec<PoolBuf>) {
            let mut buf = frame(bytes);
            buf.meta_mut().layers.l3 = 14;
            let stage = &mut self.stage;
            with_state_at(now_ns, &mut self.state, |cx| {
                stage.process(ArpFrame::new_unchecked(buf), cx)
            })
        }

        /// The state's poll at `now_ns` (the egress part's announcements).
        fn poll_at(&mut self, now_ns: u64) -> Vec<PoolBuf> {
            with_state_at(now_ns, &mut self.state, PolledState::poll).1
        }

        /// Runs the timers due at `now_ns` when the state says they are.
        fn timers_at(&mut self, now_ns: u64) -> Vec<PoolBuf> {
            let due = self.deadline();
            let (fired, sent) = with_state_at(now_ns, &mut self.state, PolledState::fire_timers);
            assert_eq!(fired > 0, due.is_some_and(|at| at <= now_ns));
            sent
        }

        /// When the state next needs its timers run.
        fn deadline(&self) -> Option<u64> {
            PolledState::<PoolBuf>::next_deadline(&self.state)
        }

        /// Sends an 8-byte UDP datagram from `owner` to `dst`.
        fn send(&mut self, dst: Ipv4Addr, owner: Option<SocketId>) -> (Sent, Vec<PoolBuf>) {
            let payload = frame(&[0, 1, 0, 2, 0, 8, 0, 0]);
            let ip = IpSend {
                src: US.into(),
                dst: dst.into(),
                protocol: IpProtocol::Udp,
                hop_limit: None,
                owner,
            };
            let (sent, frames) =
                with_state_at(NOW_NS, &mut self.state, |cx| send_ip(cx, payload, ip));
            (sent.expect("sent or held"), frames)
        }

        fn neighbor(&self, ip: Ipv4Addr) -> Option<(NeighborState, Option<MacAddr>)> {
            self.state
                .egress
                .neighbors_v4()
                .get(ip, NOW_NS)
                .map(|n| (n.state, n.mac))
        }
    }

    #[test]
    fn a_request_for_us_becomes_the_reply_byte_for_byte() {
        let mut f = fixture();
        let request = arp_frame(MacAddr::BROADCAST, &Arp::request(THEM_MAC, THEM, US));
        let Verdict::Transmit(reply) = f.run(&request) else {
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
            f.neighbor(THEM),
            Some((NeighborState::Stale, Some(THEM_MAC)))
        );
        let updated = f
            .state
            .egress
            .neighbors_v4()
            .get(THEM, 0)
            .unwrap()
            .updated_ns;
        assert_eq!(updated, NOW_NS);
        drop(reply);
        pool().assert_whole();
    }

    /// A reply is written over its request: a chained request (its tail
    /// perhaps shared) is dropped as `chained`, not answered with the tail
    /// behind the reply, and nothing is learnt from it.
    #[test]
    fn a_chained_request_is_dropped() {
        let mut f = fixture();
        let request = arp_frame(MacAddr::BROADCAST, &Arp::request(THEM_MAC, THEM, US));
        let (mut buf, held) = crate::testing::chained(&request, &[42]);
        buf.meta_mut().layers.l3 = 14;
        let stage = &mut f.stage;
        let (verdict, sent) = with_state_at(NOW_NS, &mut f.state, |cx| {
            stage.process(ArpFrame::new_unchecked(buf), cx)
        });
        assert!(matches!(verdict, Verdict::Drop(r) if r == Reason::CHAINED));
        assert!(sent.is_empty());
        assert_eq!(f.neighbor(THEM), None);
        drop(held);
        pool().assert_whole();
    }

    #[test]
    fn a_reply_nobody_asked_for_creates_no_entry() {
        let mut f = fixture();
        let reply = Arp::reply_to(&Arp::request(US_MAC, US, THEM), THEM_MAC);
        assert!(matches!(
            f.run(&arp_frame(US_MAC, &reply)),
            Verdict::Consumed
        ));
        assert!(f.state.egress.neighbors_v4().is_empty());
        pool().assert_whole();
    }

    #[test]
    fn a_held_packet_leaves_when_the_reply_comes() {
        let mut f = fixture();
        let (sent, requests) = f.send(THEM, None);
        assert_eq!(sent, Sent::Held);
        // The first request goes out with the send, broadcast.
        let request = arp_frame(MacAddr::BROADCAST, &Arp::request(US_MAC, US, THEM));
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].data(), &request[..]);
        drop(requests);
        // Nothing due yet; a second later the stage asks again.
        assert!(f.timers_at(NOW_NS + SECOND - 1).is_empty());
        let again = f.timers_at(NOW_NS + SECOND);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].data(), &request[..]);
        assert_eq!(f.state.egress.counters().arp_requests, 2);
        drop(again);
        // The answer, unicast to us: the held packet goes out to it.
        let reply = Arp::reply_to(&Arp::request(US_MAC, US, THEM), THEM_MAC);
        let (verdict, sent) = f.run_at(&arp_frame(US_MAC, &reply), NOW_NS + SECOND);
        assert!(matches!(verdict, Verdict::Consumed));
        assert_eq!(sent.len(), 1);
        assert_eq!(&sent[0].data()[..6], &THEM_MAC.octets());
        assert_eq!(
            &sent[0].data()[6..14],
            &[0x02, 0xaa, 0, 0, 0, 1, 0x08, 0x00]
        );
        assert_eq!(
            f.neighbor(THEM),
            Some((NeighborState::Reachable, Some(THEM_MAC)))
        );
        assert_eq!(f.state.egress.counters().released, 1);
        assert_eq!(f.deadline(), None);
        drop(sent);
        pool().assert_whole();
    }

    #[test]
    fn a_neighbor_that_never_answers_gets_three_requests_then_its_owner_an_error() {
        let mut f = fixture();
        let owner = SocketId::new(Transport::Udp, 3, 1);
        let (sent, first) = f.send(THEM, Some(owner));
        assert_eq!((sent, first.len()), (Sent::Held, 1));
        drop(first);
        let mut requests = 0;
        for s in 1..=3 {
            requests += f.timers_at(NOW_NS + s * SECOND).len();
        }
        assert_eq!(requests, 2, "two retries after the first request");
        assert!(f.state.egress.neighbors_v4().is_empty());
        let c = f.state.egress.neighbors_v4().counters();
        assert_eq!(
            (c.solicitations, c.dropped_unreachable, c.failed),
            (3, 1, 1)
        );
        let e = f.state.egress.counters();
        assert_eq!((e.unreachable, e.owner_errors), (1, 1));
        assert_eq!(
            f.state.events.pop(),
            Some(Event {
                socket: owner,
                kind: EventKind::Error(SocketError::HostUnreachable)
            })
        );
        assert_eq!(f.deadline(), None);
        pool().assert_whole();
    }

    #[test]
    fn others_are_dropped_and_only_update_known_senders() {
        let mut f = fixture();
        let other = Ipv4Addr::new(192, 0, 2, 77);
        let request = arp_frame(MacAddr::BROADCAST, &Arp::request(THEM_MAC, THEM, other));
        assert!(matches!(f.run(&request), Verdict::Drop(Reason::NOT_FOR_US)));
        assert!(f.state.egress.neighbors_v4().is_empty());
        // Known, then a gratuitous ARP from a new MAC: updated, STALE.
        let asked = arp_frame(MacAddr::BROADCAST, &Arp::request(THEM_MAC, THEM, US));
        assert!(matches!(f.run(&asked), Verdict::Transmit(_)));
        let moved = MacAddr([0x02, 0xcc, 0, 0, 0, 3]);
        let gratuitous = arp_frame(MacAddr::BROADCAST, &Arp::request(moved, THEM, THEM));
        assert!(matches!(
            f.run(&gratuitous),
            Verdict::Drop(Reason::NOT_FOR_US)
        ));
        assert_eq!(f.neighbor(THEM), Some((NeighborState::Stale, Some(moved))));

        let mut odd = Arp::request(THEM_MAC, THEM, US);
        odd.operation = ArpOperation::Unknown(9);
        assert!(matches!(
            f.run(&arp_frame(US_MAC, &odd)),
            Verdict::Drop(Reason::MALFORMED)
        ));
        let mut not_ipv4 = Arp::request(THEM_MAC, THEM, US);
        not_ipv4.protocol_addr_len = 16;
        assert!(matches!(
            f.run(&arp_frame(US_MAC, &not_ipv4)),
            Verdict::Drop(Reason::UNSUPPORTED)
        ));
        let short = arp_frame(US_MAC, &Arp::request(THEM_MAC, THEM, US));
        assert!(matches!(
            f.run(&short[..14 + 20]),
            Verdict::Drop(Reason::TOO_SHORT)
        ));
        pool().assert_whole();
    }

    #[test]
    fn probes_are_answered_without_learning_the_unspecified_address() {
        let mut f = fixture();
        let probe = arp_frame(
            MacAddr::BROADCAST,
            &Arp::request(THEM_MAC, Ipv4Addr::UNSPECIFIED, US),
        );
        assert!(matches!(f.run(&probe), Verdict::Transmit(_)));
        assert!(f.state.egress.neighbors_v4().is_empty());
        pool().assert_whole();
    }

    #[test]
    fn announcing_sends_one_gratuitous_arp_per_address_on_the_first_poll() {
        let iface = Interface::new(US_MAC)
            .with_ipv4("192.0.2.1/24".parse().unwrap())
            .with_ipv4("198.51.100.1/24".parse().unwrap());
        let mut quiet = fixture_for(iface.clone());
        assert!(quiet.poll_at(NOW_NS).is_empty());
        let mut f = fixture_for(iface);
        f.state.egress.set_announcing(true);
        let sent = f.poll_at(NOW_NS);
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
        assert_eq!(f.state.egress.counters().announcements, 2);
        assert!(f.poll_at(NOW_NS + 1).is_empty());
        drop(sent);
        pool().assert_whole();
    }
}
