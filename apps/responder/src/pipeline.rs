//! The responder's pipeline: one `#[pipeline]` struct.
//!
//! ```text
//! port ─► [ACL] ─► Ethernet front ─┬─► ARP responder
//!                                   ├─► IPv4 input ─► ICMPv4 echo ─► discard
//!                                   └─► IPv6 input ─► NDP ─► ICMPv6 echo ─► discard
//! ```
//!
//! The ARP and NDP responders share the pipeline state's [`Egress`] part:
//! the interface they answer for and the neighbor caches they learn into.
//! The caches' timers and the announce policy are the part's own work,
//! once per loop iteration (its field is marked `#[polled]`).
//!
//! The ACL runs only when rules are given ([`Responder::with_acl`]); frames
//! it denies are dropped and counted under the `acl` stage's reason `acl`.
//!
//! An optional pcap capture is the pipeline's observer: it records every frame
//! received and every frame sent, as tcpdump on the interface would.

use tpa::app::Events;
use tpa::port::Port;
use tpa::stage::{Counted, Reason};
use tpa::state::State;
use tpa_stages::acl::Acl;
use tpa_stages::arp::ArpResponder;
use tpa_stages::discard::Discard;
use tpa_stages::egress::Egress;
use tpa_stages::ethernet::{ethernet_front, EthernetFront, OtherFrames};
use tpa_stages::icmp::{Icmpv4EchoResponder, Icmpv6EchoResponder};
use tpa_stages::iface::Interface;
use tpa_stages::ipv4::Ipv4Input;
use tpa_stages::ipv6::Ipv6Input;
use tpa_stages::ndp::NdpResponder;
use tpa_stages::optional::Optional;
use tpa_stages::packet::{Ipv4Packet, Ipv6Packet};
use tpa_stages::pcap::PcapCapture;

/// The IPv4 branch: input checks, echo, then everything else dropped.
pub type Ipv4Branch<B> = (
    Ipv4Input,
    Counted<Icmpv4EchoResponder>,
    Discard<Ipv4Packet<B>>,
);

/// The IPv6 branch: input checks, neighbor discovery, echo, then
/// everything else dropped.
pub type Ipv6Branch<B> = (
    Ipv6Input,
    Counted<NdpResponder>,
    Counted<Icmpv6EchoResponder>,
    Discard<Ipv6Packet<B>>,
);

/// The front with the responder's three branches.
pub type ResponderFront<B> = EthernetFront<B, Counted<ArpResponder>, Ipv4Branch<B>, Ipv6Branch<B>>;

/// The responder's pipeline state: the output path (interface, neighbor
/// caches, announce policy) and the events the neighbor timers raise (none
/// reach an application here: the responder has no sockets).
#[derive(State)]
pub struct ResponderState<B> {
    /// The output path the ARP and NDP stages share; its neighbor timers
    /// and announcements run once per loop iteration.
    #[polled]
    pub egress: Egress<B>,
    /// Socket events (unused without sockets, but the neighbor timers'
    /// home for them).
    pub events: Events,
}

/// ARP, ICMP echo, NDP and ICMPv6 echo answered on port `P`.
#[tpa::pipeline]
pub struct Responder<P: Port> {
    #[port]
    port: P,
    /// Both directions to a pcap file, when capturing.
    #[observer]
    capture: Option<PcapCapture>,
    /// The output path and events the stages share.
    #[state]
    state: ResponderState<P::Buf>,
    /// Access control in front of everything, when rules are given.
    acl: Optional<Acl>,
    front: ResponderFront<P::Buf>,
}

/// Builds the stages for `iface`, capturing to `capture` if given, without
/// an ACL.
pub fn build<P: Port>(port: P, iface: &Interface, capture: Option<PcapCapture>) -> Responder<P> {
    let front = ethernet_front(
        iface.mac,
        OtherFrames::Drop,
        Counted::new(ArpResponder::new()),
        (
            Ipv4Input::new(iface.clone()),
            Counted::new(Icmpv4EchoResponder::new(iface.clone())),
            Discard::new(Reason::UNSUPPORTED),
        ),
        (
            Ipv6Input::new(iface.clone()),
            Counted::new(NdpResponder::new()),
            Counted::new(Icmpv6EchoResponder::new(iface.clone())),
            Discard::new(Reason::UNSUPPORTED),
        ),
    );
    let state = ResponderState {
        egress: Egress::new(iface.clone()),
        events: Events::default(),
    };
    Responder::new(port, capture, state, Optional::off(), front)
}

impl<P: Port> Responder<P> {
    /// Puts `acl` in front of the responder's stages: what it denies is
    /// dropped before any is answered.
    pub fn with_acl(mut self, acl: Acl) -> Self {
        self.acl = Optional::on(acl);
        self
    }

    /// Announces our addresses when the loop starts, when `on`: a
    /// gratuitous ARP and an unsolicited neighbor advertisement per address,
    /// so that neighbors learn (or correct) our MAC address before any
    /// exchange. For a port whose addresses are its own, not the host's.
    pub fn announcing(mut self, on: bool) -> Self {
        self.state.egress.set_announcing(on);
        self
    }

    /// The ACL (its per-rule hit counters), if there is one.
    pub fn acl(&self) -> Option<&Acl> {
        self.acl.inner()
    }

    /// The output path: the interface, the neighbor caches ARP and NDP
    /// keep, what was solicited and announced.
    pub fn egress(&self) -> &Egress<P::Buf> {
        &self.state.egress
    }

    /// The ARP responder's counters.
    pub fn arp(&self) -> &Counted<ArpResponder> {
        &self.front.left
    }

    /// The ICMPv4 echo responder.
    pub fn icmpv4(&self) -> &Counted<Icmpv4EchoResponder> {
        &self.front.right.left.1
    }

    /// The NDP responder's counters.
    pub fn ndp(&self) -> &Counted<NdpResponder> {
        &self.front.right.right.1
    }

    /// The ICMPv6 echo responder.
    pub fn icmpv6(&self) -> &Counted<Icmpv6EchoResponder> {
        &self.front.right.right.2
    }

    /// The capture, if capturing.
    pub fn capture(&self) -> Option<&PcapCapture> {
        self.capture.as_ref()
    }

    /// The capture, writable (to flush it), if capturing.
    pub fn capture_mut(&mut self) -> Option<&mut PcapCapture> {
        self.capture.as_mut()
    }

    /// The port.
    pub fn port(&self) -> &P {
        &self.port
    }

    /// The port, writable: on a loopback port (DPDK's `net_ring`) a test
    /// sends requests through it, runs the pipeline, and receives the
    /// replies back through it.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use tpa::buf::{BufferPool, PacketBuf, PoolBuf};
    use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
    use tpa::port::Burst;
    use tpa::wire::MacAddr;

    const US: [u8; 6] = [0x02, 0x74, 0x70, 0x61, 0, 1];
    const THEM: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

    fn setup() -> (Responder<MemoryPort>, MemoryPort) {
        setup_with_pool(None)
    }

    /// Drops the responder and its peer, then checks that every buffer of
    /// their wire's pool came back.
    #[track_caller]
    fn assert_whole_after(r: Responder<MemoryPort>, peer: MemoryPort) {
        let pool = peer.pool().clone();
        drop((r, peer));
        pool.assert_whole();
    }

    /// A responder for 192.0.2.1/24 and 2001:db8::1/64 on one end of a
    /// wire (buffers from `pool`, or the wire's own), and the other end.
    fn setup_with_pool(pool: Option<tpa::buf::Pool>) -> (Responder<MemoryPort>, MemoryPort) {
        let (port, peer) = MemoryWire::pair(WireConfig {
            mac_a: MacAddr(US),
            pool,
            ..WireConfig::default()
        })
        .unwrap();
        let iface = Interface::new(MacAddr(US))
            .with_ipv4("192.0.2.1/24".parse().unwrap())
            .with_ipv6("2001:db8::1/64".parse().unwrap());
        (build(port, &iface, None), peer)
    }

    /// Sends `frames` from the peer, runs one iteration, returns the replies.
    fn exchange(
        r: &mut Responder<MemoryPort>,
        peer: &mut MemoryPort,
        frames: &[Vec<u8>],
    ) -> Vec<Vec<u8>> {
        let mut tx: Burst<PoolBuf> = Burst::new();
        for f in frames {
            let mut buf = peer.alloc().unwrap();
            buf.extend_from_slice(f).unwrap();
            tx.push(buf);
        }
        assert_eq!(peer.tx_burst(&mut tx), frames.len());
        r.run_once();
        let mut rx: Burst<PoolBuf> = Burst::new();
        peer.rx_burst(&mut rx);
        rx.drain().map(|b| b.data().to_vec()).collect()
    }

    /// An ARP request from 192.0.2.2 (`THEM`) for 192.0.2.1, broadcast.
    fn arp_request() -> Vec<u8> {
        let mut arp = vec![0u8; 42];
        arp[..6].copy_from_slice(&[0xff; 6]);
        arp[6..12].copy_from_slice(&THEM);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        arp[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        arp[22..28].copy_from_slice(&THEM);
        arp[28..32].copy_from_slice(&[192, 0, 2, 2]);
        arp[38..42].copy_from_slice(&[192, 0, 2, 1]);
        arp
    }

    #[test]
    fn the_pipeline_answers_arp_ping_and_ping6_in_one_burst() {
        let (mut r, mut peer) = setup();
        let arp = arp_request();
        let mut ping = Vec::new();
        PacketBuilder::ethernet2(THEM, US)
            .ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut ping, b"0123456789")
            .unwrap();
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        let mut ping6 = Vec::new();
        PacketBuilder::ethernet2(THEM, US)
            .ipv6(v6("2001:db8::2"), v6("2001:db8::1"), 64)
            .icmpv6_echo_request(2, 2)
            .write(&mut ping6, b"abc")
            .unwrap();
        let mut udp = Vec::new();
        PacketBuilder::ethernet2(THEM, US)
            .ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64)
            .udp(1, 2)
            .write(&mut udp, b"?")
            .unwrap();

        let replies = exchange(&mut r, &mut peer, &[arp, ping, udp, ping6]);
        assert_eq!(replies.len(), 3);
        assert_eq!(&replies[0][12..14], &[0x08, 0x06]);
        assert_eq!(&replies[0][20..22], &[0, 2]);
        assert_eq!(replies[1][34], 0, "echo reply");
        assert_eq!(replies[2][54], 129, "ICMPv6 echo reply");
        for reply in &replies {
            assert_eq!(&reply[..6], &THEM);
            assert_eq!(&reply[6..12], &US);
        }
        assert_eq!(r.arp().stats.transmitted, 1);
        assert_eq!(r.icmpv4().stats.transmitted, 1);
        assert_eq!(r.icmpv6().stats.transmitted, 1);
        let front = r.stats().stage("front").unwrap();
        assert_eq!(front.transmitted, 3);
        assert_eq!(front.dropped(Reason::UNSUPPORTED), 1, "the UDP datagram");
        assert_eq!(r.stats().counters().rx, 4);
        assert_whole_after(r, peer);
    }

    fn ping_from(src: [u8; 4], id: u16) -> Vec<u8> {
        let mut ping = Vec::new();
        PacketBuilder::ethernet2(THEM, US)
            .ipv4(src, [192, 0, 2, 1], 64)
            .icmpv4_echo_request(id, 1)
            .write(&mut ping, b"acl")
            .unwrap();
        ping
    }

    #[test]
    fn the_acl_drops_denied_frames_before_any_is_answered() {
        use crate::parse_rule;
        use tpa_stages::acl::{Action, ACL_DENIED};

        let (r, mut peer) = setup();
        let acl = ["allow icmp src 192.0.2.3", "deny ip src 192.0.2.0/24"]
            .iter()
            .map(|rule| parse_rule(rule).unwrap())
            .fold(Acl::new(Action::Allow), Acl::rule);
        let mut r = r.with_acl(acl);
        let arp = arp_request();
        let denied = ping_from([192, 0, 2, 2], 7);
        let allowed = ping_from([192, 0, 2, 3], 8);

        let replies = exchange(&mut r, &mut peer, &[denied, allowed, arp]);
        assert_eq!(replies.len(), 2, "the ping from .2 gets no reply");
        assert_eq!(replies[0][34], 0, "echo reply");
        assert_eq!(
            &replies[0][30..34],
            &[192, 0, 2, 3],
            "to the allowed source"
        );
        assert_eq!(&replies[1][12..14], &[0x08, 0x06], "ARP is not IP: allowed");

        let acl = r.stats().stage("acl").unwrap();
        assert_eq!(acl.dropped(ACL_DENIED), 1);
        assert_eq!(acl.dropped_total(), 1);
        assert_eq!(acl.passed, 2);
        assert_eq!(r.acl().unwrap().hits(), &[1, 1]);
        assert_eq!(r.acl().unwrap().default_hits(), 1, "the ARP request");
        assert_eq!(r.icmpv4().stats.transmitted, 1);
        assert!(r.stats().to_string().contains("acl"), "{}", r.stats());
        assert_whole_after(r, peer);
    }

    #[test]
    fn without_rules_the_acl_stage_passes_everything() {
        let (mut r, mut peer) = setup();
        assert!(r.acl().is_none());
        let replies = exchange(&mut r, &mut peer, &[ping_from([10, 0, 0, 1], 1)]);
        assert_eq!(replies.len(), 1);
        assert_eq!(r.stats().stage("acl").unwrap().passed, 1);
        assert_whole_after(r, peer);
    }

    /// One responder per worker thread, each with its own wire and peer:
    /// the generated pipeline runs under `tpa::worker::run_workers`.
    #[test]
    fn workers_each_run_their_own_pipeline() {
        use tpa::worker::{run_workers, Progress, WorkLoop, WorkerConfig};

        struct Worker {
            responder: Responder<MemoryPort>,
            peer: MemoryPort,
            replies: u64,
            stop: tpa::worker::StopFlag,
            all_done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
            workers: usize,
            iterations: u64,
        }
        impl WorkLoop for Worker {
            /// Replies received, ICMP replies sent, buffers not returned.
            type Report = (u64, u64, usize);
            fn run_once(&mut self) -> Progress {
                let s = self.responder.run_once();
                let mut rx: Burst<PoolBuf> = Burst::new();
                let got = self.peer.rx_burst(&mut rx) as u64;
                if got > 0 && self.replies == 0 {
                    let done = self
                        .all_done
                        .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
                        + 1;
                    if done == self.workers {
                        self.stop.raise();
                    }
                }
                self.replies += got;
                // Never hang the test: give up after a few seconds of polling.
                self.iterations += 1;
                if self.iterations > 100_000 {
                    self.stop.raise();
                }
                s.into()
            }
            fn finish(self) -> (u64, u64, usize) {
                let sent = self.responder.icmpv4().stats.transmitted;
                let pool = self.peer.pool().clone();
                drop((self.responder, self.peer));
                (self.replies, sent, pool.in_use())
            }
        }

        let config = WorkerConfig::unpinned(2);
        let all_done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let reports = run_workers(&config, |ctx| {
            let (responder, mut peer) = setup();
            let mut ping = Vec::new();
            PacketBuilder::ethernet2(THEM, US)
                .ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64)
                .icmpv4_echo_request(ctx.index as u16, 1)
                .write(&mut ping, b"worker")
                .unwrap();
            let mut buf = peer.alloc().ok_or("no buffer")?;
            buf.extend_from_slice(&ping).map_err(|_| "no room")?;
            let mut tx: Burst<PoolBuf> = Burst::new();
            tx.push(buf);
            peer.tx_burst(&mut tx);
            Ok::<_, &str>(Worker {
                responder,
                peer,
                replies: 0,
                stop: ctx.stop.clone(),
                all_done: all_done.clone(),
                workers: ctx.workers,
                iterations: 0,
            })
        })
        .unwrap();
        assert_eq!(reports.len(), 2);
        for r in reports {
            assert_eq!(r.report, (1, 1, 0), "worker {}", r.index);
            assert!(r.stats.busy_iterations >= 1);
        }
    }

    /// RFC 1071 sum, written here independently of `tpa::header::checksum`.
    fn ones_sum(chunks: &[&[u8]]) -> u16 {
        let mut sum = 0u32;
        for chunk in chunks {
            for pair in chunk.chunks(2) {
                let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
                sum += u32::from(word);
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// Every reply's checksums verify (an all-ones sum over what they cover).
    fn assert_checksums(reply: &[u8], context: &str) {
        match u16::from_be_bytes([reply[12], reply[13]]) {
            0x0800 => {
                let ihl = usize::from(reply[14] & 0x0f) * 4;
                assert_eq!(
                    ones_sum(&[&reply[14..14 + ihl]]),
                    0xffff,
                    "IPv4 header: {context}"
                );
                let total = usize::from(u16::from_be_bytes([reply[16], reply[17]]));
                assert_eq!(
                    ones_sum(&[&reply[14 + ihl..14 + total]]),
                    0xffff,
                    "ICMP: {context}"
                );
            }
            0x86dd => {
                let len = u16::from_be_bytes([reply[18], reply[19]]);
                let pseudo = [&len.to_be_bytes()[..], &[0, 58]];
                let sum = ones_sum(&[
                    &reply[22..54],
                    pseudo[0],
                    pseudo[1],
                    &reply[54..54 + usize::from(len)],
                ]);
                assert_eq!(sum, 0xffff, "ICMPv6: {context}");
            }
            0x0806 => {} // ARP: no checksum
            other => panic!("a reply of EtherType {other:#06x}: {context}"),
        }
    }

    /// Hostile input: valid requests with random bytes changed or cut short,
    /// and random garbage. The pipeline must never panic, every reply's
    /// checksums must verify, and every buffer must come home.
    #[test]
    fn mutated_and_random_frames_never_panic_or_leak() {
        use tpa::buf::{BufferPool, Pool, PoolConfig};
        let seed: u64 = std::env::var("TPA_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x7ea5_1de5_0001);
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pool = Pool::new(PoolConfig {
            capacity: 512,
            ..PoolConfig::default()
        })
        .unwrap();
        let (mut r, mut peer) = setup_with_pool(Some(pool.clone()));

        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        let mut templates = Vec::new();
        let mut ping = Vec::new();
        PacketBuilder::ethernet2(THEM, US)
            .ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut ping, &[7; 40])
            .unwrap();
        templates.push(ping);
        let mut ping6 = Vec::new();
        PacketBuilder::ethernet2(THEM, US)
            .ipv6(v6("2001:db8::2"), v6("2001:db8::1"), 64)
            .icmpv6_echo_request(1, 1)
            .write(&mut ping6, &[9; 40])
            .unwrap();
        templates.push(ping6);
        let mut ns = Vec::new();
        let mut ns_payload = v6("2001:db8::1").to_vec();
        ns_payload.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 2]);
        PacketBuilder::ethernet2(THEM, [0x33, 0x33, 0xff, 0, 0, 1])
            .ipv6(v6("2001:db8::2"), v6("ff02::1:ff00:1"), 255)
            .icmpv6_raw(135, 0, [0; 4])
            .write(&mut ns, &ns_payload)
            .unwrap();
        templates.push(ns);
        let arp = arp_request();
        templates.push(arp);

        let mut replies = 0;
        for round in 0..500 {
            let mut tx: Burst<PoolBuf> = Burst::new();
            for _ in 0..32 {
                let kind = next() % 8;
                let mut f = if kind == 0 {
                    let len = (next() % 200) as usize;
                    (0..len).map(|_| next() as u8).collect()
                } else {
                    templates[(kind % 4) as usize].clone()
                };
                if kind >= 4 && !f.is_empty() {
                    // Change one to three bytes past the Ethernet addresses.
                    for _ in 0..=next() % 3 {
                        let at = 12 + (next() as usize) % f.len().saturating_sub(12).max(1);
                        if let Some(b) = f.get_mut(at) {
                            *b = next() as u8;
                        }
                    }
                }
                if next() % 4 == 0 {
                    f.truncate((next() as usize) % (f.len() + 1));
                }
                let mut buf = peer.alloc().expect("pool has room");
                buf.extend_from_slice(&f).unwrap();
                tx.push(buf);
            }
            peer.tx_burst(&mut tx);
            r.run_once();
            let mut rx: Burst<PoolBuf> = Burst::new();
            peer.rx_burst(&mut rx);
            for reply in rx.drain() {
                replies += 1;
                assert_checksums(reply.data(), &format!("seed {seed} round {round}"));
            }
        }
        assert!(replies > 1000, "seed {seed}: only {replies} replies");
        drop(r);
        drop(peer);
        assert!(pool.is_whole(), "seed {seed}: {:?}", pool.stats());
    }
}
