//! [`FlowClassify`], the first stage of a tpa pipeline on a NIC shared with
//! the kernel: which application flow a frame belongs to, and the exception
//! path to the host for everything else.

use std::net::Ipv4Addr;

use bitvec::boxed::BitBox;
use bitvec::prelude::{bitvec, Lsb0};
use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Fork, Stage, Verdict};

use super::rules::{port_range_masks, Bifurcation, BifurcationError, FlowMark, MaskedPort};

/// Where ARP and NDP frames go. They are never the application's flows:
/// the rules on an isolated mlx5 port leave them to the kernel, which owns
/// the address tpa shares with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NeighborFrames {
    /// To the host only (the default, and what an isolated mlx5 port does):
    /// the kernel answers for the shared address and resolves its
    /// neighbours; tpa learns the MAC addresses of its peers from the
    /// frames they send it.
    #[default]
    Host,
    /// To tpa only (`Fork::Right`), when the address is tpa's alone and its
    /// own ARP/NDP stages answer for it.
    Tpa,
    /// A copy to the host and the frame to tpa: the kernel still answers,
    /// tpa's ARP/NDP stages see the same traffic and learn from it. Costs an
    /// allocation and a copy per ARP/NDP frame; if the pool is empty the
    /// host gets the frame and tpa misses it (counted in
    /// [`ClassifyCounters::copy_failed`]).
    HostAndTpa,
}

/// Who decided a frame's flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkSource {
    /// The NIC: a flow rule's MARK, read from `Meta::flow_mark`.
    Nic,
    /// [`FlowClassify`]'s software lookup over the same rules.
    Software,
}

/// A frame of one of the application's flows: an untagged Ethernet frame
/// carrying IPv4/TCP to one of the plan's addresses (as matched by the NIC
/// or by the software lookup), and which rule took it.
///
/// Its `Meta::flow_mark` holds [`mark`](Self::mark)'s id whoever decided, so
/// the mark survives [`into_buf`](Self::into_buf).
#[derive(Debug)]
pub struct Classified<B> {
    buf: B,
    mark: FlowMark,
    source: MarkSource,
}

impl<B: PacketBuf> Classified<B> {
    /// Wraps a frame that `mark`'s rule matched, as decided by `source`
    /// (for a producer other than [`FlowClassify`], a test say). Records the
    /// mark in the frame's `Meta::flow_mark`.
    #[inline]
    pub fn new(mut buf: B, mark: FlowMark, source: MarkSource) -> Self {
        buf.meta_mut().flow_mark = Some(mark.id());
        Classified { buf, mark, source }
    }

    /// The rule that took the frame: a listening port (a connection to
    /// accept or accepted) or a worker's active-open range (a reply to a
    /// connection that worker opened).
    #[inline]
    pub fn mark(&self) -> FlowMark {
        self.mark
    }

    /// Whether the NIC or the software lookup decided.
    #[inline]
    pub fn source(&self) -> MarkSource {
        self.source
    }

    /// The frame.
    #[inline]
    pub fn buf(&self) -> &B {
        &self.buf
    }

    /// The frame, writable.
    #[inline]
    pub fn buf_mut(&mut self) -> &mut B {
        &mut self.buf
    }

    /// Gives the frame back.
    #[inline]
    pub fn into_buf(self) -> B {
        self.buf
    }
}

/// What [`FlowClassify::lookup`] decides for a frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameClass {
    /// One of the application's flows, by this rule.
    Flow(FlowMark),
    /// ARP or NDP: goes where [`NeighborFrames`] says.
    Neighbor,
    /// The host's.
    Host,
}

/// What [`FlowClassify`] has done, beyond the verdicts the pipeline counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassifyCounters {
    /// Application frames classified by the NIC's mark (no lookup).
    pub marked: u64,
    /// Application frames classified by the software lookup.
    pub software: u64,
    /// Frames given to the host, as the verdict or as a copy.
    pub to_host: u64,
    /// ARP/NDP frames passed on to tpa (`Fork::Right`).
    pub neighbor: u64,
    /// ARP/NDP frames tpa missed because no buffer was free for the host's
    /// copy ([`NeighborFrames::HostAndTpa`]).
    pub copy_failed: u64,
    /// Frames marked for worker `q`'s active opens that arrived on another
    /// queue: the reply belongs to a connection another worker owns. Only
    /// happens without the rules (RSS spreads replies by hash).
    pub misdirected: u64,
}

/// The classify stage: which application flow a received frame belongs
/// to; everything else goes to the host (the exception path).
///
/// ```text
///   frame ─► FlowClassify ─┬─► Left:  Classified<B>  (the application's TCP flows)
///                          ├─► Right: B               (ARP / NDP, if tpa wants them)
///                          └─► ToHost                 (everything else: the kernel's)
/// ```
///
/// The decision is the one the [`Bifurcation`] rules make in the NIC:
///
/// - a frame whose `Meta::flow_mark` a rule set is classified by the mark
///   alone (no header is read: the NIC already matched);
/// - a frame without a (known) mark — from a vdev, a NIC that refused the
///   rules, a port that is not flow-isolated — is matched in software against
///   the same rules: untagged Ethernet, IPv4 to one of the plan's addresses,
///   TCP (first fragment) to a listening port or to a port in a worker's
///   active-open range. Listening ports are a 65536-bit map, worker ranges
///   the value/mask blocks the rules use;
/// - ARP and NDP (ICMPv6 133–137) go where [`NeighborFrames`] says: by
///   default to the host only, as with the rules on an isolated mlx5 port;
/// - everything else (ICMP, UDP, other TCP ports or addresses, IPv6, VLANs,
///   frames too short to tell) is handed to the host (`Verdict::ToHost`),
///   untouched, so the kernel keeps all that is not the application's.
///
/// The stage never drops: what it cannot read is the kernel's to judge.
///
/// ```
/// use tpa::buf::PoolBuf;
/// use tpa::stage::{Demux, Reason};
/// use tpa_stages::discard::Discard;
/// use tpa_stages::mlx5::{
///     Bifurcation, Classified, FlowClassify, FlowMark, FrameClass, NeighborFrames,
///     WorkerSteering,
/// };
///
/// let plan = Bifurcation {
///     addresses: vec!["10.0.0.1".parse().unwrap()],
///     listen_ports: vec![6379],
///     workers: vec![WorkerSteering { queue: 0, local_ports: 32768..=65535 }],
///     priority: 0,
/// };
/// let classify = FlowClassify::new(&plan, NeighborFrames::Host).unwrap();
/// assert_eq!(classify.lookup(&[0; 10]), FrameClass::Host, "too short to be ours");
/// let mut syn = [0u8; 54];
/// syn[12..14].copy_from_slice(&[0x08, 0x00]); // IPv4
/// syn[14] = 0x45; // version 4, 20-byte header
/// syn[16..18].copy_from_slice(&40u16.to_be_bytes()); // total length
/// syn[23] = 6; // TCP
/// syn[30..34].copy_from_slice(&[10, 0, 0, 1]); // to us
/// syn[36..38].copy_from_slice(&6379u16.to_be_bytes()); // to the listener
/// assert_eq!(classify.lookup(&syn), FrameClass::Flow(FlowMark::Listener { port: 6379 }));
///
/// // First in a pipeline: the application's flows left, ARP/NDP right.
/// let _front = Demux::new(
///     classify,
///     Discard::<Classified<PoolBuf>>::new(Reason::NO_SOCKET), // the TCP input, later
///     Discard::<PoolBuf>::new(Reason::UNSUPPORTED), // or tpa's ARP/NDP stages
/// );
/// ```
#[derive(Debug, Clone)]
pub struct FlowClassify {
    /// The plan's addresses, in network byte order as read from the header.
    addresses: Vec<[u8; 4]>,
    /// Bit `p` set: TCP port `p` is a listening port.
    listeners: BitBox<u64, Lsb0>,
    /// The value/mask blocks of every worker's active-open range, with the
    /// worker's queue.
    workers: Vec<(MaskedPort, u16)>,
    neighbor: NeighborFrames,
    counters: ClassifyCounters,
}

const ETHERNET_HEADER_LEN: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
const IP_PROTOCOL_TCP: u8 = 6;
const TCP_HEADER_LEN: usize = 20;
const IP_PROTOCOL_ICMPV6: u8 = 58;
/// Router solicitation (133) to redirect (137): the NDP messages.
const NDP_TYPES: core::ops::RangeInclusive<u8> = 133..=137;

impl FlowClassify {
    /// A classifier deciding as `plan`'s rules do; fails where the rules
    /// cannot be made ([`Bifurcation::rules`]).
    pub fn new(plan: &Bifurcation, neighbor: NeighborFrames) -> Result<Self, BifurcationError> {
        // The same checks as the rules: a plan the NIC would refuse is not
        // classified differently in software.
        plan.rules()?;
        let mut listeners = bitvec![u64, Lsb0; 0; 1 << 16].into_boxed_bitslice();
        for &port in &plan.listen_ports {
            listeners.set(usize::from(port), true);
        }
        let workers = plan
            .workers
            .iter()
            .flat_map(|w| {
                port_range_masks(w.local_ports.clone())
                    .into_iter()
                    .map(move |block| (block, w.queue))
            })
            .collect();
        let addresses = plan.addresses.iter().map(Ipv4Addr::octets).collect();
        Ok(FlowClassify {
            addresses,
            listeners,
            workers,
            neighbor,
            counters: ClassifyCounters::default(),
        })
    }

    /// What the rules decide for a frame, read from its bytes (the software
    /// path; marks are not looked at). Never panics: a frame too short for
    /// the headers it claims is the host's.
    pub fn lookup(&self, frame: &[u8]) -> FrameClass {
        let Some((eth, ip)) = frame.split_at_checked(ETHERNET_HEADER_LEN) else {
            return FrameClass::Host;
        };
        match [eth[12], eth[13]] {
            ETHERTYPE_IPV4 => self.lookup_ipv4(ip),
            ETHERTYPE_ARP => FrameClass::Neighbor,
            ETHERTYPE_IPV6 if is_ndp(ip) => FrameClass::Neighbor,
            _ => FrameClass::Host,
        }
    }

    /// IPv4 to one of our addresses, TCP, a first (or only) fragment with
    /// its TCP header whole: the destination port decides.
    #[inline]
    fn lookup_ipv4(&self, ip: &[u8]) -> FrameClass {
        let Some(header) = ip.get(..20) else {
            return FrameClass::Host;
        };
        let header_len = usize::from(header[0] & 0x0f) * 4;
        let fragment_offset = u16::from_be_bytes([header[6] & 0x1f, header[7]]);
        if header[0] >> 4 != 4
            || header_len < 20
            || header[9] != IP_PROTOCOL_TCP
            || fragment_offset != 0
        {
            return FrameClass::Host;
        }
        let dst = [header[16], header[17], header[18], header[19]];
        if !self.addresses.contains(&dst) {
            return FrameClass::Host;
        }
        // A whole TCP header inside the datagram, the datagram inside the
        // frame (padding behind it is fine): anything less is a truncated or
        // malformed packet tpa's TCP would not take.
        let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if total_len < header_len + TCP_HEADER_LEN || total_len > ip.len() {
            return FrameClass::Host;
        }
        let Some(ports) = ip.get(header_len..header_len + 4) else {
            return FrameClass::Host;
        };
        let dst_port = u16::from_be_bytes([ports[2], ports[3]]);
        if self.listeners[usize::from(dst_port)] {
            return FrameClass::Flow(FlowMark::Listener { port: dst_port });
        }
        self.workers
            .iter()
            .find(|(block, _)| block.matches(dst_port))
            .map_or(FrameClass::Host, |&(_, queue)| {
                FrameClass::Flow(FlowMark::Worker { queue })
            })
    }

    /// What the stage has counted so far.
    pub fn counters(&self) -> &ClassifyCounters {
        &self.counters
    }

    /// Where ARP and NDP frames go.
    pub fn neighbor_frames(&self) -> NeighborFrames {
        self.neighbor
    }

    fn hand_to_host<B>(&mut self, frame: B) -> Verdict<Fork<Classified<B>, B>, B> {
        self.counters.to_host += 1;
        Verdict::ToHost(frame)
    }

    fn neighbor<B: PacketBuf, S>(
        &mut self,
        frame: B,
        cx: &mut Cx<'_, B, S>,
    ) -> Verdict<Fork<Classified<B>, B>, B> {
        match self.neighbor {
            NeighborFrames::Host => self.hand_to_host(frame),
            NeighborFrames::Tpa => {
                self.counters.neighbor += 1;
                Verdict::Pass(Fork::Right(frame))
            }
            NeighborFrames::HostAndTpa => match copy_of(&frame, cx) {
                Some(copy) => {
                    cx.to_host(copy);
                    self.counters.to_host += 1;
                    self.counters.neighbor += 1;
                    Verdict::Pass(Fork::Right(frame))
                }
                None => {
                    self.counters.copy_failed += 1;
                    self.hand_to_host(frame)
                }
            },
        }
    }
}

impl<B: PacketBuf, S> Stage<B, S> for FlowClassify {
    type In = B;
    type Out = Fork<Classified<B>, B>;

    #[inline]
    fn process(&mut self, frame: B, cx: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        let meta = frame.meta();
        if let Some(mark) = meta.flow_mark.and_then(FlowMark::decode) {
            // The NIC matched a rule: its mark is the answer.
            if matches!(mark, FlowMark::Worker { queue } if queue != meta.rx_queue) {
                self.counters.misdirected += 1;
            }
            self.counters.marked += 1;
            return Verdict::Pass(Fork::Left(Classified {
                buf: frame,
                mark,
                source: MarkSource::Nic,
            }));
        }
        match self.lookup(frame.data()) {
            FrameClass::Flow(mark) => {
                if matches!(mark, FlowMark::Worker { queue } if queue != frame.meta().rx_queue) {
                    self.counters.misdirected += 1;
                }
                self.counters.software += 1;
                Verdict::Pass(Fork::Left(Classified::new(
                    frame,
                    mark,
                    MarkSource::Software,
                )))
            }
            FrameClass::Neighbor => self.neighbor(frame, cx),
            FrameClass::Host => self.hand_to_host(frame),
        }
    }
}

/// Whether an IPv6 packet (from its fixed header on) is an NDP message:
/// ICMPv6 directly after the fixed header (NDP takes no extension
/// headers), of type 133 to 137.
#[inline]
fn is_ndp(ip: &[u8]) -> bool {
    match ip.get(..41) {
        Some(h) => h[0] >> 4 == 6 && h[6] == IP_PROTOCOL_ICMPV6 && NDP_TYPES.contains(&h[40]),
        None => false,
    }
}

/// A copy of `frame` (every segment, and its metadata) in a buffer from the
/// port's pool; `None` when there is no buffer or it is too small.
fn copy_of<B: PacketBuf, S>(frame: &B, cx: &mut Cx<'_, B, S>) -> Option<B> {
    let mut copy = cx.alloc()?;
    let bytes = copy.append(frame.total_len()).ok()?;
    let mut at = 0;
    for segment in frame.segments() {
        bytes
            .get_mut(at..at + segment.len())?
            .copy_from_slice(segment);
        at += segment.len();
    }
    *copy.meta_mut() = *frame.meta();
    Some(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlx5::test_plan::{steering, two_workers};
    use crate::mlx5::FlowRule;
    use crate::testing::{pool, BufferPool};
    use etherparse::PacketBuilder;
    use proptest::prelude::*;
    use tpa::buf::PoolBuf;
    use tpa::pipeline::{NoHost, Runtime};
    use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};

    const US: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
    const OTHER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 6);
    const MAC_US: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_THEM: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn plan() -> Bifurcation {
        two_workers(US, 32768..=60999)
    }

    fn tcp(dst: Ipv4Addr, dst_port: u16) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(MAC_THEM, MAC_US)
            .ipv4([10, 1, 0, 9], dst.octets(), 64)
            .tcp(40000, dst_port, 1, 1024)
            .syn();
        let mut out = Vec::new();
        b.write(&mut out, &[]).unwrap();
        out
    }

    fn udp(dst: Ipv4Addr, dst_port: u16) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(MAC_THEM, MAC_US)
            .ipv4([10, 1, 0, 9], dst.octets(), 64)
            .udp(40000, dst_port);
        let mut out = Vec::new();
        b.write(&mut out, b"datagram").unwrap();
        out
    }

    fn arp() -> Vec<u8> {
        let mut f = vec![0u8; 42];
        f[..6].fill(0xff);
        f[6..12].copy_from_slice(&MAC_THEM);
        f[12..14].copy_from_slice(&ETHERTYPE_ARP);
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[38..42].copy_from_slice(&US.octets());
        f
    }

    fn icmpv6(icmp_type: u8) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(MAC_THEM, MAC_US)
            .ipv6([0xfe; 16], [0xff; 16], 255)
            .icmpv6_raw(icmp_type, 0, [0; 4]);
        let mut out = Vec::new();
        b.write(&mut out, &[0; 16]).unwrap();
        out
    }

    /// Runs `stage` on `frame` in a context whose host queue is kept;
    /// returns the verdict and the frames handed to the host by `to_host`.
    fn run(
        stage: &mut FlowClassify,
        frame: PoolBuf,
    ) -> (Verdict<Fork<Classified<PoolBuf>, PoolBuf>, PoolBuf>, usize) {
        let (mut port, _peer) = test_wire();
        let mut rt: Runtime<PoolBuf, 32, 1> = Runtime::new(["classify"], [&[]]);
        let v = rt.with_cx(&mut port, &mut NoHost, 0, |cx| stage.process(frame, cx));
        let copies = rt.drain_host().count();
        (v, copies)
    }

    /// A wire whose buffers come from the test pool, so copies made for the
    /// host count in its leak check.
    fn test_wire() -> (MemoryPort, MemoryPort) {
        MemoryWire::pair(WireConfig {
            pool: Some(pool()),
            ..WireConfig::default()
        })
        .unwrap()
    }

    fn buf(bytes: &[u8], mark: Option<u32>, queue: u16) -> PoolBuf {
        let mut b = crate::testing::frame(bytes);
        b.meta_mut().flow_mark = mark;
        b.meta_mut().rx_queue = queue;
        b
    }

    #[test]
    fn application_flows_go_left_the_rest_to_the_host() {
        let c = FlowClassify::new(&plan(), NeighborFrames::Host).unwrap();
        assert_eq!(
            c.lookup(&tcp(US, 6379)),
            FrameClass::Flow(FlowMark::Listener { port: 6379 })
        );
        assert_eq!(
            c.lookup(&tcp(US, 50000)),
            FrameClass::Flow(FlowMark::Worker { queue: 1 })
        );
        assert_eq!(c.lookup(&tcp(US, 22)), FrameClass::Host, "ssh");
        assert_eq!(
            c.lookup(&tcp(US, 61000)),
            FrameClass::Host,
            "past the ranges"
        );
        assert_eq!(
            c.lookup(&tcp(OTHER, 6379)),
            FrameClass::Host,
            "not our address"
        );
        assert_eq!(c.lookup(&udp(US, 6379)), FrameClass::Host, "UDP");
        assert_eq!(c.lookup(&arp()), FrameClass::Neighbor);
        assert_eq!(
            c.lookup(&icmpv6(135)),
            FrameClass::Neighbor,
            "neighbor solicitation"
        );
        assert_eq!(c.lookup(&icmpv6(128)), FrameClass::Host, "echo request");
        assert_eq!(c.lookup(&[]), FrameClass::Host);
    }

    #[test]
    fn ip_options_fragments_and_truncation_are_read_like_the_nic() {
        let c = FlowClassify::new(&plan(), NeighborFrames::Host).unwrap();
        // IHL 6: one option word, the ports move 4 bytes on.
        let mut with_option = tcp(US, 6379);
        with_option[14] = 0x46;
        with_option[17] += 4; // total length
        with_option.splice(34..34, [1, 1, 1, 1]);
        assert_eq!(
            c.lookup(&with_option),
            FrameClass::Flow(FlowMark::Listener { port: 6379 })
        );
        // A later fragment has no TCP header: the kernel reassembles.
        let mut fragment = tcp(US, 6379);
        fragment[20] = 0x00;
        fragment[21] = 0x10;
        assert_eq!(c.lookup(&fragment), FrameClass::Host);
        // Cut inside the ports.
        assert_eq!(c.lookup(&tcp(US, 6379)[..14 + 20 + 3]), FrameClass::Host);
        // IHL below 5 is not IPv4 the NIC would parse.
        let mut bad_ihl = tcp(US, 6379);
        bad_ihl[14] = 0x44;
        assert_eq!(c.lookup(&bad_ihl), FrameClass::Host);
    }

    #[test]
    fn a_mark_is_the_answer_without_a_lookup() {
        let mut c = FlowClassify::new(&plan(), NeighborFrames::Host).unwrap();
        // The bytes say SSH; the NIC's mark says listener 6379: the mark wins.
        let marked = FlowMark::Listener { port: 6379 }.id();
        let (v, _) = run(&mut c, buf(&tcp(US, 22), Some(marked), 0));
        let Verdict::Pass(Fork::Left(p)) = v else {
            panic!("not passed on: {v:?}")
        };
        assert_eq!(p.mark(), FlowMark::Listener { port: 6379 });
        assert_eq!(p.source(), MarkSource::Nic);
        drop(p);
        // A mark that is not ours (another application's rule): looked up.
        let (v, _) = run(&mut c, buf(&tcp(US, 6379), Some(7), 0));
        let Verdict::Pass(Fork::Left(p)) = v else {
            panic!("not passed on: {v:?}")
        };
        assert_eq!(p.source(), MarkSource::Software);
        assert_eq!(
            p.buf().meta().flow_mark,
            Some(marked),
            "the mark is recorded"
        );
        assert_eq!(p.into_buf().meta().flow_mark, Some(marked));
        // A worker mark on another worker's queue is counted.
        let w1 = FlowMark::Worker { queue: 1 }.id();
        let (v, _) = run(&mut c, buf(&tcp(US, 50000), Some(w1), 0));
        let Verdict::Pass(Fork::Left(p)) = v else {
            panic!("not passed on: {v:?}")
        };
        assert_eq!(
            (p.mark(), p.source()),
            (FlowMark::Worker { queue: 1 }, MarkSource::Nic)
        );
        drop(p);
        let (v, _) = run(&mut c, buf(&tcp(US, 22), None, 0));
        assert!(matches!(v, Verdict::ToHost(_)));
        drop(v);
        assert_eq!(
            *c.counters(),
            ClassifyCounters {
                marked: 2,
                software: 1,
                to_host: 1,
                misdirected: 1,
                ..ClassifyCounters::default()
            }
        );
        pool().assert_whole();
    }

    #[test]
    fn neighbor_frames_go_where_configured() {
        for frame in [arp(), icmpv6(136)] {
            let mut host = FlowClassify::new(&plan(), NeighborFrames::Host).unwrap();
            let (v, copies) = run(&mut host, buf(&frame, None, 0));
            assert!(matches!(v, Verdict::ToHost(_)), "{v:?}");
            assert_eq!(copies, 0);
            drop(v);

            let mut tpa = FlowClassify::new(&plan(), NeighborFrames::Tpa).unwrap();
            let (v, copies) = run(&mut tpa, buf(&frame, None, 0));
            assert!(matches!(v, Verdict::Pass(Fork::Right(_))), "{v:?}");
            assert_eq!((copies, tpa.counters().neighbor), (0, 1));
            drop(v);

            let mut both = FlowClassify::new(&plan(), NeighborFrames::HostAndTpa).unwrap();
            let mut b = buf(&frame, None, 3);
            b.meta_mut().rss_hash = Some(9);
            let (mut rt, mut port) = (
                Runtime::<PoolBuf, 32, 1>::new(["classify"], [&[]]),
                test_wire().0,
            );
            let v = rt.with_cx(&mut port, &mut NoHost, 0, |cx| both.process(b, cx));
            let Verdict::Pass(Fork::Right(original)) = v else {
                panic!("not passed on to tpa: {v:?}")
            };
            let copies: Vec<PoolBuf> = rt.drain_host().collect();
            assert_eq!(copies.len(), 1);
            assert_eq!(
                copies[0].data(),
                original.data(),
                "the host gets the same bytes"
            );
            assert_eq!(copies[0].meta(), original.meta());
            assert_eq!((both.counters().to_host, both.counters().neighbor), (1, 1));
            drop((original, copies, rt, port));
            pool().assert_whole();
        }
    }

    #[test]
    fn plans_the_nic_would_refuse_are_refused() {
        let mut p = plan();
        p.addresses.clear();
        assert_eq!(
            FlowClassify::new(&p, NeighborFrames::Host).unwrap_err(),
            BifurcationError::NoAddresses
        );
    }

    /// What the rules, as data, decide for a frame: the pattern ETH / IPV4 /
    /// TCP matches untagged IPv4 frames carrying the start of a TCP header;
    /// then the first matching rule's mark.
    fn by_rules(rules: &[FlowRule], frame: &[u8]) -> Option<FlowMark> {
        let p = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
            return None;
        };
        if ip.header().fragments_offset().value() != 0 {
            return None;
        }
        let Some(etherparse::TransportSlice::Tcp(t)) = p.transport else {
            return None;
        };
        let dst = ip.header().destination_addr();
        let hits: Vec<&FlowRule> = rules
            .iter()
            .filter(|r| r.matches(dst, t.source_port(), t.destination_port()))
            .collect();
        assert!(hits.len() <= 1, "rules overlap: {hits:?}");
        hits.first()
            .and_then(|r| r.mark())
            .and_then(FlowMark::decode)
    }

    /// A valid random plan: 1-3 distinct addresses in 10.1.0.0/30, up to 4
    /// distinct listening ports in 6370..6390, 1-4 workers splitting a
    /// range above 32768.
    fn plans() -> impl Strategy<Value = Bifurcation> {
        (
            prop::collection::vec(0u8..4, 1..4),
            prop::collection::btree_set(6370u16..6390, 0..5),
            32768u16..40000,
            50000u16..=65535,
            1u16..5,
        )
            .prop_map(|(hosts, listen_ports, lo, hi, workers)| Bifurcation {
                // Distinct: a repeated address repeats its rules.
                addresses: hosts
                    .into_iter()
                    .collect::<std::collections::BTreeSet<u8>>()
                    .into_iter()
                    .map(|h| Ipv4Addr::new(10, 1, 0, h))
                    .collect(),
                listen_ports: listen_ports.into_iter().collect(),
                workers: steering(lo..=hi, workers),
                priority: 0,
            })
    }

    /// A random frame: mostly TCP, to an address in 10.1.0.0/30, to a port
    /// near the plans' listening ports and range edges or anywhere,
    /// sometimes a later fragment or cut short.
    fn frames() -> impl Strategy<Value = Vec<u8>> {
        (
            0u8..4,
            any::<u16>(),
            prop_oneof![
                6368u16..6392,
                32766u16..32771,
                39998u16..40003,
                49998u16..50003,
                65533u16..=65535,
                any::<u16>(),
            ],
            prop::bool::weighted(0.8),
            prop_oneof![4 => Just(0u16), 1 => 1u16..4],
            prop_oneof![4 => Just(None), 1 => (0usize..80).prop_map(Some)],
        )
            .prop_map(|(host, src_port, dst_port, is_tcp, offset, cut)| {
                let ip = etherparse::Ipv4Header {
                    source: [10, 1, 0, 99],
                    destination: [10, 1, 0, host],
                    time_to_live: 64,
                    fragment_offset: etherparse::IpFragOffset::try_new(offset).unwrap(),
                    ..Default::default()
                };
                let b = PacketBuilder::ethernet2(MAC_THEM, MAC_US)
                    .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()));
                let mut out = Vec::new();
                if is_tcp {
                    b.tcp(src_port, dst_port, 1, 1024)
                        .write(&mut out, b"x")
                        .unwrap();
                } else {
                    b.udp(src_port, dst_port).write(&mut out, b"x").unwrap();
                }
                if let Some(cut) = cut {
                    out.truncate(cut);
                }
                out
            })
    }

    proptest! {
        /// For random plans and frames, the software lookup decides as the
        /// rules do.
        #[test]
        fn software_lookup_agrees_with_the_rules(
            plan in plans(),
            frames in prop::collection::vec(frames(), 1..32),
        ) {
            let rules = plan.rules().unwrap();
            let c = FlowClassify::new(&plan, NeighborFrames::Host).unwrap();
            for frame in &frames {
                let want = match by_rules(&rules, frame) {
                    Some(mark) => FrameClass::Flow(mark),
                    None => FrameClass::Host,
                };
                prop_assert_eq!(c.lookup(frame), want, "frame {:02x?}", frame);
            }
        }

        /// A frame carrying one of our marks is classified by the mark
        /// whatever its bytes; other marks fall back to the lookup.
        #[test]
        fn marked_frames_take_the_marks_answer(frame in frames(), mark in prop_oneof![
            any::<u16>().prop_map(|port| FlowMark::Listener { port }.id()),
            (0u16..4).prop_map(|queue| FlowMark::Worker { queue }.id()),
            any::<u32>(),
        ]) {
            let mut c = FlowClassify::new(&plan(), NeighborFrames::Host).unwrap();
            let decoded = FlowMark::decode(mark);
            let want = decoded.map_or_else(|| c.lookup(&frame), FrameClass::Flow);
            let (v, _) = run(&mut c, buf(&frame, Some(mark), 0));
            let got = match v {
                Verdict::Pass(Fork::Left(p)) => {
                    let source = if decoded.is_some() {
                        MarkSource::Nic
                    } else {
                        MarkSource::Software
                    };
                    prop_assert_eq!(p.source(), source);
                    FrameClass::Flow(p.mark())
                }
                Verdict::ToHost(frame) => {
                    drop(frame);
                    FrameClass::Host
                }
                other => panic!("unexpected verdict {other:?}"),
            };
            prop_assert_eq!(got, want);
            prop_assert!(pool().is_whole(), "{:?}", pool().stats());
        }

        /// Any bytes at all: a verdict, never a panic, never a drop.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
            let mut c = FlowClassify::new(&plan(), NeighborFrames::HostAndTpa).unwrap();
            let (v, _) = run(&mut c, buf(&bytes, None, 0));
            prop_assert!(!matches!(v, Verdict::Drop(_)));
            drop(v);
            prop_assert!(pool().is_whole(), "{:?}", pool().stats());
        }
    }
}
