//! ICMP echo responders for IPv4 (RFC 792) and IPv6 (RFC 4443): `ping`
//! answered in place.
//!
//! A request addressed to one of our unicast addresses becomes its reply in
//! the same buffer: Ethernet and IP addresses swapped, a fresh TTL (hop
//! limit), the type changed to echo reply; identifier, sequence number and
//! payload stay as they were. Checksums are patched incrementally
//! (RFC 1624), never recomputed over the payload. Packets of another
//! protocol or ICMP type pass on to the next stage; malformed echo requests
//! are dropped with a reason (`too-short`, `malformed`, `bad-checksum`).

use tpa::buf::PacketBuf;
use tpa::header::checksum::update;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::wire::ethernet::EthernetView;
use tpa::wire::icmpv4::{Icmpv4EchoView, Icmpv4Type};
use tpa::wire::icmpv6::{Icmpv6EchoView, Icmpv6Type};
use tpa::wire::ipv4::{IpProtocol, Ipv4View};
use tpa::wire::ipv6::Ipv6View;
use tpa::wire::MacAddr;

use crate::iface::Interface;
use crate::packet::{Ipv4Packet, Ipv6Packet};

/// The TTL (hop limit) of replies unless configured otherwise.
pub const DEFAULT_REPLY_TTL: u8 = 64;

/// Points the Ethernet header back at the sender, from `our_mac`.
fn swap_ethernet(eth: &mut [u8], our_mac: MacAddr) -> Option<()> {
    let mut eth = EthernetView::new(eth).ok()?;
    let asker = eth.src();
    eth.set_dst(asker);
    eth.set_src(our_mac);
    Some(())
}

/// Answers ICMPv4 echo requests to the interface's addresses.
#[derive(Debug, Clone)]
pub struct Icmpv4EchoResponder {
    iface: Interface,
    reply_ttl: u8,
}

impl Icmpv4EchoResponder {
    /// A responder for `iface` whose replies carry TTL [`DEFAULT_REPLY_TTL`].
    pub fn new(iface: Interface) -> Self {
        Icmpv4EchoResponder {
            iface,
            reply_ttl: DEFAULT_REPLY_TTL,
        }
    }

    /// Sets the TTL of replies.
    pub fn reply_ttl(mut self, ttl: u8) -> Self {
        self.reply_ttl = ttl;
        self
    }
}

impl<B: PacketBuf, S> Stage<B, S> for Icmpv4EchoResponder {
    type In = Ipv4Packet<B>;
    type Out = Ipv4Packet<B>;

    fn process(
        &mut self,
        mut p: Ipv4Packet<B>,
        _cx: &mut Cx<'_, B, S>,
    ) -> Verdict<Ipv4Packet<B>, B> {
        match Ipv4View::new(p.l3()) {
            Ok(ip) if ip.protocol() == IpProtocol::Icmp => {}
            Ok(_) => return Verdict::Pass(p),
            Err(_) => return Verdict::Drop(Reason::MALFORMED),
        }
        match Icmpv4EchoView::new(p.l4()) {
            Err(_) => return Verdict::Drop(Reason::TOO_SHORT),
            Ok(echo) if echo.msg_type() != Icmpv4Type::EchoRequest => return Verdict::Pass(p),
            Ok(echo) if echo.code() != 0 => return Verdict::Drop(Reason::MALFORMED),
            Ok(echo) if !echo.checksum_ok() => return Verdict::Drop(Reason::BAD_CHECKSUM),
            Ok(_) => {}
        }
        let l3 = p.l3_offset();
        let reply_ttl = self.reply_ttl;
        let our_mac = self.iface.mac;
        let (headers, icmp) = p.split_l4_mut();
        let Ok(mut echo) = Icmpv4EchoView::new(icmp) else {
            return Verdict::Drop(Reason::TOO_SHORT);
        };
        // The type is the high byte of the first 16-bit word; the code is 0.
        let patched = update(
            echo.checksum(),
            u16::from(Icmpv4Type::EchoRequest.raw()) << 8,
            u16::from(Icmpv4Type::EchoReply.raw()) << 8,
        );
        echo.set_msg_type(Icmpv4Type::EchoReply);
        echo.set_checksum(patched);

        let (eth, ip) = headers.split_at_mut(l3);
        let Ok(mut ip) = Ipv4View::new(ip) else {
            return Verdict::Drop(Reason::MALFORMED);
        };
        let (src, dst) = (ip.src(), ip.dst());
        // TTL and protocol share a word; swapping the addresses leaves the
        // sum as it is.
        let protocol = u16::from(IpProtocol::Icmp.raw());
        let patched = update(
            ip.checksum(),
            u16::from(ip.ttl()) << 8 | protocol,
            u16::from(reply_ttl) << 8 | protocol,
        );
        ip.set_ttl(reply_ttl);
        ip.set_src(dst);
        ip.set_dst(src);
        ip.set_checksum(patched);
        if swap_ethernet(eth, our_mac).is_none() {
            return Verdict::Drop(Reason::MALFORMED);
        }
        Verdict::Transmit(p.into_buf())
    }
}

/// Answers ICMPv6 echo requests to the interface's unicast addresses
/// (requests to a multicast group pass on unanswered).
#[derive(Debug, Clone)]
pub struct Icmpv6EchoResponder {
    iface: Interface,
    hop_limit: u8,
}

impl Icmpv6EchoResponder {
    /// A responder for `iface` whose replies carry hop limit
    /// [`DEFAULT_REPLY_TTL`].
    pub fn new(iface: Interface) -> Self {
        Icmpv6EchoResponder {
            iface,
            hop_limit: DEFAULT_REPLY_TTL,
        }
    }

    /// Sets the hop limit of replies.
    pub fn hop_limit(mut self, hop_limit: u8) -> Self {
        self.hop_limit = hop_limit;
        self
    }
}

impl<B: PacketBuf, S> Stage<B, S> for Icmpv6EchoResponder {
    type In = Ipv6Packet<B>;
    type Out = Ipv6Packet<B>;

    fn process(
        &mut self,
        mut p: Ipv6Packet<B>,
        _cx: &mut Cx<'_, B, S>,
    ) -> Verdict<Ipv6Packet<B>, B> {
        let (src, dst) = match Ipv6View::new(p.l3()) {
            Ok(ip) if ip.next_header() == IpProtocol::Icmpv6 => (ip.src(), ip.dst()),
            Ok(_) => return Verdict::Pass(p),
            Err(_) => return Verdict::Drop(Reason::MALFORMED),
        };
        match Icmpv6EchoView::new(p.l4()) {
            Err(_) => return Verdict::Drop(Reason::TOO_SHORT),
            Ok(echo) if echo.msg_type() != Icmpv6Type::EchoRequest => return Verdict::Pass(p),
            Ok(_) if !self.iface.owns_ipv6(dst) => return Verdict::Pass(p),
            Ok(echo) if echo.code() != 0 => return Verdict::Drop(Reason::MALFORMED),
            Ok(echo) if !echo.checksum_ok_v6(&src, &dst) => {
                return Verdict::Drop(Reason::BAD_CHECKSUM)
            }
            Ok(_) => {}
        }
        let l3 = p.l3_offset();
        let hop_limit = self.hop_limit;
        let our_mac = self.iface.mac;
        let (headers, icmp) = p.split_l4_mut();
        let Ok(mut echo) = Icmpv6EchoView::new(icmp) else {
            return Verdict::Drop(Reason::TOO_SHORT);
        };
        // The pseudo-header sum does not change when the addresses swap.
        let patched = update(
            echo.checksum(),
            u16::from(Icmpv6Type::EchoRequest.raw()) << 8,
            u16::from(Icmpv6Type::EchoReply.raw()) << 8,
        );
        echo.set_msg_type(Icmpv6Type::EchoReply);
        echo.set_checksum(patched);

        let (eth, ip) = headers.split_at_mut(l3);
        let Ok(mut ip) = Ipv6View::new(ip) else {
            return Verdict::Drop(Reason::MALFORMED);
        };
        ip.set_src(dst);
        ip.set_dst(src);
        ip.set_hop_limit(hop_limit);
        if swap_ethernet(eth, our_mac).is_none() {
            return Verdict::Drop(Reason::MALFORMED);
        }
        Verdict::Transmit(p.into_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{frame, pool, with_cx, BufferPool};
    use etherparse::{Icmpv4Header, PacketBuilder, PacketBuilderStep};
    use std::net::Ipv6Addr;
    use tpa::buf::PoolBuf;

    const US_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
    const THEM_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];
    const US4: [u8; 4] = [192, 0, 2, 1];
    const THEM4: [u8; 4] = [192, 0, 2, 2];
    const US6: &str = "2001:db8::1";
    const THEM6: &str = "2001:db8::2";

    fn iface() -> Interface {
        Interface::new(MacAddr(US_MAC))
            .with_ipv4("192.0.2.1/24".parse().unwrap())
            .with_ipv6(format!("{US6}/64").parse().unwrap())
    }

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    /// Builds with etherparse, an implementation independent of tpa's.
    fn build(builder: PacketBuilderStep<Icmpv4Header>, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    fn echo_request_v4(ttl: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(THEM_MAC, US_MAC)
            .ipv4(THEM4, US4, ttl)
            .icmpv4_echo_request(id, seq);
        build(b, payload)
    }

    fn echo_reply_v4(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(US_MAC, THEM_MAC)
            .ipv4(US4, THEM4, 64)
            .icmpv4_echo_reply(id, seq);
        build(b, payload)
    }

    fn run_v4(bytes: &[u8]) -> Verdict<Ipv4Packet<PoolBuf>, PoolBuf> {
        let mut buf = frame(bytes);
        buf.meta_mut().layers.l3 = 14;
        buf.meta_mut().layers.l4 = 34;
        with_cx(|cx| Icmpv4EchoResponder::new(iface()).process(Ipv4Packet::new_unchecked(buf), cx))
    }

    fn run_v6(bytes: &[u8]) -> Verdict<Ipv6Packet<PoolBuf>, PoolBuf> {
        let mut buf = frame(bytes);
        buf.meta_mut().layers.l3 = 14;
        buf.meta_mut().layers.l4 = 54;
        with_cx(|cx| Icmpv6EchoResponder::new(iface()).process(Ipv6Packet::new_unchecked(buf), cx))
    }

    fn echo_v6(request: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if request {
            PacketBuilder::ethernet2(THEM_MAC, US_MAC)
                .ipv6(v6(THEM6), v6(US6), 9)
                .icmpv6_echo_request(id, seq)
                .write(&mut out, payload)
                .unwrap();
        } else {
            PacketBuilder::ethernet2(US_MAC, THEM_MAC)
                .ipv6(v6(US6), v6(THEM6), 64)
                .icmpv6_echo_reply(id, seq)
                .write(&mut out, payload)
                .unwrap();
        }
        out
    }

    #[test]
    fn an_echo_request_becomes_the_reply_etherparse_builds() {
        let payload: Vec<u8> = (0..56).collect();
        let Verdict::Transmit(reply) = run_v4(&echo_request_v4(17, 0x1234, 7, &payload)) else {
            panic!("expected a reply");
        };
        assert_eq!(reply.data(), &echo_reply_v4(0x1234, 7, &payload)[..]);
        drop(reply);
        pool().assert_whole();
    }

    #[test]
    fn an_icmpv6_echo_request_becomes_the_reply_etherparse_builds() {
        let payload = b"abcdefghijklmnopqrstuvwxyz";
        let Verdict::Transmit(reply) = run_v6(&echo_v6(true, 99, 3, payload)) else {
            panic!("expected a reply");
        };
        assert_eq!(reply.data(), &echo_v6(false, 99, 3, payload)[..]);
        drop(reply);
        pool().assert_whole();
    }

    #[test]
    fn checksums_stay_right_for_many_requests() {
        // Deterministic variety (incremental updates have edge cases around
        // 0x0000/0xffff): every reply must equal etherparse's from scratch.
        let seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut x = seed;
        for case in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (id, seq, ttl) = (x as u16, (x >> 16) as u16, (x >> 32) as u8 | 1);
            let len = (x >> 40) as usize % 64;
            let payload: Vec<u8> = (0..len)
                .map(|i| (x >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect();
            let Verdict::Transmit(reply) = run_v4(&echo_request_v4(ttl, id, seq, &payload)) else {
                panic!("seed {seed:#x} case {case}: no reply");
            };
            assert_eq!(
                reply.data(),
                &echo_reply_v4(id, seq, &payload)[..],
                "seed {seed:#x} case {case}"
            );
            let Verdict::Transmit(reply) = run_v6(&echo_v6(true, id, seq, &payload)) else {
                panic!("seed {seed:#x} case {case}: no v6 reply");
            };
            assert_eq!(
                reply.data(),
                &echo_v6(false, id, seq, &payload)[..],
                "seed {seed:#x} case {case}"
            );
        }
        pool().assert_whole();
    }

    #[test]
    fn malformed_requests_are_dropped_and_other_messages_pass() {
        let mut bad_sum = echo_request_v4(64, 1, 1, b"x");
        let last = bad_sum.len() - 1;
        bad_sum[last] ^= 0x55;
        assert!(matches!(
            run_v4(&bad_sum),
            Verdict::Drop(Reason::BAD_CHECKSUM)
        ));

        // An echo request with code 3 and a checksum that covers it: the
        // code alone makes it malformed.
        let bad_code = PacketBuilder::ethernet2(THEM_MAC, US_MAC)
            .ipv4(THEM4, US4, 64)
            .icmpv4_raw(8, 3, [0, 1, 0, 1]);
        let bad_code = build(bad_code, b"x");
        assert!(matches!(
            run_v4(&bad_code),
            Verdict::Drop(Reason::MALFORMED)
        ));

        let short = echo_request_v4(64, 1, 1, b"");
        assert!(matches!(
            run_v4(&short[..34 + 4]),
            Verdict::Drop(Reason::TOO_SHORT)
        ));

        let reply = PacketBuilder::ethernet2(THEM_MAC, US_MAC)
            .ipv4(THEM4, US4, 64)
            .icmpv4_echo_reply(1, 1);
        assert!(matches!(run_v4(&build(reply, b"")), Verdict::Pass(_)));

        let mut udp = Vec::new();
        PacketBuilder::ethernet2(THEM_MAC, US_MAC)
            .ipv4(THEM4, US4, 64)
            .udp(1, 2)
            .write(&mut udp, b"hi")
            .unwrap();
        assert!(matches!(run_v4(&udp), Verdict::Pass(_)));

        let mut bad6 = echo_v6(true, 1, 2, b"payload");
        let last = bad6.len() - 1;
        bad6[last] ^= 1;
        assert!(matches!(run_v6(&bad6), Verdict::Drop(Reason::BAD_CHECKSUM)));
        assert!(matches!(
            run_v6(&echo_v6(false, 1, 2, b"")),
            Verdict::Pass(_)
        ));
        pool().assert_whole();
    }
}
