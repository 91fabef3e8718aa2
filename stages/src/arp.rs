//! ARP responder (RFC 826): answers requests for our IPv4 addresses and
//! learns who asked.

use core::convert::Infallible;
use std::net::Ipv4Addr;

use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::wire::arp::{ArpOperation, ArpView};
use tpa::wire::ethernet::EthernetView;
use tpa::wire::MacAddr;

use crate::iface::Interface;
use crate::neighbor::NeighborTable;
use crate::packet::ArpFrame;

/// Neighbors an [`ArpResponder`] remembers by default.
pub const DEFAULT_NEIGHBORS: usize = 64;

/// Answers ARP requests for the interface's IPv4 addresses by turning the
/// request into the reply in place (no allocation, no copy) and transmitting
/// it; learns the sender of requests and replies addressed to us in a
/// [`NeighborTable`] (and refreshes known senders of any other ARP packet,
/// as RFC 826 says).
///
/// Verdicts: a request for us is transmitted; a reply to us is consumed;
/// anything else for someone else is dropped `not-for-us`; ARP for other
/// hardware or protocols is `unsupported`, a short packet `too-short` and an
/// unknown operation or a multicast sender `malformed`.
#[derive(Debug, Clone)]
pub struct ArpResponder {
    iface: Interface,
    neighbors: NeighborTable<Ipv4Addr>,
}

impl ArpResponder {
    /// A responder for `iface`, remembering [`DEFAULT_NEIGHBORS`] neighbors.
    pub fn new(iface: Interface) -> Self {
        Self::with_neighbors(iface, DEFAULT_NEIGHBORS)
    }

    /// A responder remembering up to `capacity` neighbors.
    pub fn with_neighbors(iface: Interface, capacity: usize) -> Self {
        ArpResponder {
            iface,
            neighbors: NeighborTable::new(capacity),
        }
    }

    /// The neighbors learned so far.
    pub fn neighbors(&self) -> &NeighborTable<Ipv4Addr> {
        &self.neighbors
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

impl<B: PacketBuf> Stage<B> for ArpResponder {
    type In = ArpFrame<B>;
    type Out = Infallible;

    fn process(&mut self, mut frame: ArpFrame<B>, cx: &mut Cx<'_, B>) -> Verdict<Infallible, B> {
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
        // A probe (RFC 5227) has no sender address to learn.
        let learnable = !sender_ip.is_unspecified();
        match operation {
            ArpOperation::Request if for_us => {
                if learnable {
                    self.neighbors.learn(sender_ip, sender_mac, cx.now_ns());
                }
                let l3 = frame.l3_offset();
                match request_to_reply(frame.buf_mut().data_mut(), l3, self.iface.mac) {
                    Some(()) => Verdict::Transmit(frame.into_buf()),
                    None => Verdict::Drop(Reason::TOO_SHORT),
                }
            }
            ArpOperation::Reply if for_us => {
                if learnable {
                    self.neighbors.learn(sender_ip, sender_mac, cx.now_ns());
                }
                Verdict::Consumed
            }
            ArpOperation::Request | ArpOperation::Reply => {
                if learnable {
                    self.neighbors.refresh(sender_ip, sender_mac, cx.now_ns());
                }
                Verdict::Drop(Reason::NOT_FOR_US)
            }
            ArpOperation::Unknown(_) => Verdict::Drop(Reason::MALFORMED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{frame, pool, with_cx, BufferPool, NOW_NS};
    use tpa::wire::arp::Arp;
    use tpa::wire::ethernet::{EtherType, Ethernet};

    const US_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
    const THEM_MAC: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 2]);
    const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const THEM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn responder() -> ArpResponder {
        ArpResponder::new(Interface::new(US_MAC).with_ipv4("192.0.2.1/24".parse().unwrap()))
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

    fn run(stage: &mut ArpResponder, bytes: &[u8]) -> Verdict<Infallible, tpa::buf::PoolBuf> {
        let mut buf = frame(bytes);
        buf.meta_mut().layers.l3 = 14;
        with_cx(|cx| stage.process(ArpFrame::new_unchecked(buf), cx))
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
        assert_eq!(stage.neighbors().lookup(THEM), Some(THEM_MAC));
        assert_eq!(stage.neighbors().iter().next().unwrap().updated_ns, NOW_NS);
        drop(reply);
        pool().assert_whole();
    }

    #[test]
    fn replies_to_us_are_learned_and_consumed() {
        let mut stage = responder();
        let request = Arp::request(US_MAC, US, THEM);
        let reply = Arp::reply_to(&request, THEM_MAC);
        assert!(matches!(
            run(&mut stage, &arp_frame(US_MAC, &reply)),
            Verdict::Consumed
        ));
        assert_eq!(stage.neighbors().lookup(THEM), Some(THEM_MAC));
        pool().assert_whole();
    }

    #[test]
    fn others_are_dropped_and_only_refresh_known_senders() {
        let mut stage = responder();
        let other = Ipv4Addr::new(192, 0, 2, 77);
        let request = arp_frame(MacAddr::BROADCAST, &Arp::request(THEM_MAC, THEM, other));
        assert!(matches!(
            run(&mut stage, &request),
            Verdict::Drop(Reason::NOT_FOR_US)
        ));
        assert!(stage.neighbors().is_empty());

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
}
