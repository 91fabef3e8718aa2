//! The checked constructors of the typed packets (`ArpFrame::parse`,
//! `Ipv4Packet::parse`, …) refuse exactly what the stages that produce
//! those types drop, for the same reason, and pass what they pass with the
//! same bytes and layer offsets; a refusal names the layer and its length
//! and gives the buffer back.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use tpa::buf::{BufferPool, ChecksumStatus, LayerOffsets, PacketBuf, Pool, PoolBuf};
use tpa::pipeline::{NoHost, Runtime};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::stage::{Fork, Stage, Verdict};
use tpa::wire::ethernet::{EtherType, Ethernet};
use tpa::wire::ipv4::{IpProtocol, Ipv4, Ipv4View};
use tpa::wire::ipv6::Ipv6;
use tpa::wire::MacAddr;
use tpa_stages::ethernet::{EthernetClassify, OtherFrames};
use tpa_stages::iface::Interface;
use tpa_stages::ipv4::Ipv4Input;
use tpa_stages::ipv6::Ipv6Input;
use tpa_stages::packet::{
    ArpFrame, Ipv4Frame, Ipv4Packet, Ipv6Frame, Ipv6Packet, Layer, PacketError, PacketErrorKind,
};

const US: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const THEM: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const OUR_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const THEIR_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const OUR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const THEIR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn iface() -> Interface {
    Interface::new(US)
        .with_ipv4("192.0.2.1/24".parse().unwrap())
        .with_ipv6("2001:db8::1/64".parse().unwrap())
}

/// A buffer from `pool` holding `bytes`, with the port's verdict on the IP
/// header checksum.
fn buf(pool: &Pool, bytes: &[u8], l3_checksum: ChecksumStatus) -> PoolBuf {
    let mut b = pool.alloc().expect("pool has room");
    b.extend_from_slice(bytes).expect("frame fits");
    b.meta_mut().l3_checksum = l3_checksum;
    b
}

/// What a packet became: its bytes and layer offsets, or a drop reason.
type Outcome = Result<(Vec<u8>, u16, u16), &'static str>;

fn passed<B: PacketBuf>(b: &B) -> (Vec<u8>, u16, u16) {
    let layers = b.meta().layers;
    (b.data().to_vec(), layers.l3, layers.l4)
}

/// Where the stages sent a frame: dropped by the Ethernet classifier, or
/// down a branch and what that branch's input stage made of it.
#[derive(Debug)]
enum StagePath {
    EthernetDrop(&'static str),
    Arp(Outcome),
    Ipv4(Outcome),
    Ipv6(Outcome),
}

/// Drives the stages over a memory port, as a pipeline would.
struct Stages {
    runtime: Runtime<PoolBuf, 32, 0>,
    port: MemoryPort,
    _peer: MemoryPort,
    classify: EthernetClassify,
    ipv4: Ipv4Input,
    ipv6: Ipv6Input,
}

impl Stages {
    fn new() -> Self {
        let (port, peer) = MemoryWire::pair(WireConfig::default()).expect("memory wire");
        Stages {
            runtime: Runtime::new([], []),
            port,
            _peer: peer,
            classify: EthernetClassify::new(US, OtherFrames::Drop),
            ipv4: Ipv4Input::new(iface()),
            ipv6: Ipv6Input::new(iface()),
        }
    }

    fn run(&mut self, frame: PoolBuf) -> StagePath {
        let Stages {
            runtime,
            port,
            classify,
            ipv4,
            ipv6,
            ..
        } = self;
        runtime.with_cx(port, &mut NoHost, 0, |cx| {
            let fork = match classify.process(frame, cx) {
                Verdict::Pass(fork) => fork,
                Verdict::Drop(r) => return StagePath::EthernetDrop(r.name(&[])),
                _ => panic!("the classifier only passes or drops"),
            };
            match fork {
                Fork::Left(arp) => StagePath::Arp(Ok(passed(arp.buf()))),
                Fork::Right(Fork::Left(v4)) => StagePath::Ipv4(match ipv4.process(v4, cx) {
                    Verdict::Pass(p) => Ok(passed(p.buf())),
                    Verdict::Drop(r) => Err(r.name(&[])),
                    _ => panic!("IPv4 input only passes or drops"),
                }),
                Fork::Right(Fork::Right(v6)) => StagePath::Ipv6(match ipv6.process(v6, cx) {
                    Verdict::Pass(p) => Ok(passed(p.buf())),
                    Verdict::Drop(r) => Err(r.name(&[])),
                    _ => panic!("IPv6 input only passes or drops"),
                }),
            }
        })
    }
}

/// What a checked constructor should make of a frame the stages took
/// down `path`, for the constructor of the `wanted` branch (`frame_only`:
/// the link-layer check alone, as `Ipv4Frame::parse` does).
fn expected(path: &StagePath, bytes: &[u8], wanted: Layer, frame_only: bool) -> Outcome {
    let frame_pass = Ok((bytes.to_vec(), 14, LayerOffsets::UNSET));
    match (path, wanted) {
        (StagePath::EthernetDrop(r), _) => Err(*r),
        (StagePath::Arp(o), Layer::Ethernet) => o.clone(),
        (StagePath::Ipv4(o), Layer::Ipv4) | (StagePath::Ipv6(o), Layer::Ipv6) => {
            if frame_only {
                frame_pass
            } else {
                o.clone()
            }
        }
        // Another branch: not the EtherType asked for.
        _ => Err("unsupported"),
    }
}

/// A checked constructor's result as an [`Outcome`]; a refusal must hand
/// back the frame unchanged and blame the Ethernet layer exactly when the
/// stages dropped the frame there or sent it down another branch.
fn checked<T, B: PacketBuf>(
    result: Result<T, tpa_stages::packet::Rejected<B>>,
    as_buf: impl Fn(&T) -> &B,
    bytes: &[u8],
) -> (Outcome, Option<Layer>) {
    match result {
        Ok(p) => (Ok(passed(as_buf(&p))), None),
        Err(rejected) => {
            let error = *rejected.error();
            let back = rejected.into_buf();
            assert_eq!(back.data(), bytes, "a refused frame comes back unchanged");
            (Err(error.reason().name(&[])), Some(error.layer))
        }
    }
}

// ---- random frames that reach every check ----

#[derive(Debug, Clone)]
enum Payload {
    Ipv4 {
        version: u8,
        ihl: u8,
        total_len: Option<u16>,
        more_fragments: bool,
        frag_offset: u16,
        dst: Ipv4Addr,
        src: Ipv4Addr,
        bad_checksum: bool,
    },
    Ipv6 {
        version: u8,
        payload_len: Option<u16>,
        next_header: IpProtocol,
        dst: Ipv6Addr,
        src: Ipv6Addr,
    },
    Arp,
    Other(u16),
}

#[derive(Debug, Clone)]
struct FrameCase {
    dst_mac: MacAddr,
    src_mac: MacAddr,
    payload: Payload,
    body_len: usize,
    padding: usize,
    cut: Option<Index>,
    flip: Option<(Index, u8)>,
    l3_checksum: ChecksumStatus,
}

/// `right` most of the time, `other` sometimes.
fn mostly<T: Clone + core::fmt::Debug + 'static>(
    right: T,
    other: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![4 => Just(right), 1 => other].boxed()
}

fn ipv4_payload() -> impl Strategy<Value = Payload> {
    (
        mostly(4u8, 0u8..16),
        mostly(5u8, 0u8..16),
        mostly(None, any::<u16>().prop_map(Some)),
        mostly(false, Just(true)),
        mostly(0u16, 0u16..8192),
        mostly(
            OUR_V4,
            prop_oneof![
                Just(THEIR_V4),
                Just(Ipv4Addr::BROADCAST),
                any::<[u8; 4]>().prop_map(Ipv4Addr::from)
            ],
        ),
        mostly(
            THEIR_V4,
            prop_oneof![
                Just(Ipv4Addr::BROADCAST),
                Just(Ipv4Addr::UNSPECIFIED),
                Just(Ipv4Addr::new(224, 0, 0, 1)),
                Just(OUR_V4)
            ],
        ),
        mostly(false, Just(true)),
    )
        .prop_map(
            |(version, ihl, total_len, more_fragments, frag_offset, dst, src, bad_checksum)| {
                Payload::Ipv4 {
                    version,
                    ihl,
                    total_len,
                    more_fragments,
                    frag_offset,
                    dst,
                    src,
                    bad_checksum,
                }
            },
        )
}

fn ipv6_payload() -> impl Strategy<Value = Payload> {
    let solicited: Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
    (
        mostly(6u8, 0u8..16),
        mostly(None, any::<u16>().prop_map(Some)),
        mostly(
            IpProtocol::Icmpv6,
            prop_oneof![
                Just(IpProtocol::Udp),
                Just(IpProtocol::HopByHop),
                Just(IpProtocol::Ipv6Frag),
                Just(IpProtocol::Ah),
                Just(IpProtocol::Esp),
                Just(IpProtocol::Ipv6Opts),
                Just(IpProtocol::Ipv6Route),
            ],
        ),
        mostly(
            OUR_V6,
            prop_oneof![
                Just(THEIR_V6),
                Just(solicited),
                Just("ff02::1".parse().unwrap()),
                Just("ff02::2".parse().unwrap()),
            ],
        ),
        mostly(THEIR_V6, Just("ff02::1".parse().unwrap())),
    )
        .prop_map(
            |(version, payload_len, next_header, dst, src)| Payload::Ipv6 {
                version,
                payload_len,
                next_header,
                dst,
                src,
            },
        )
}

fn frame_case() -> impl Strategy<Value = FrameCase> {
    (
        mostly(
            US,
            prop_oneof![
                Just(THEM),
                Just(MacAddr::BROADCAST),
                Just(MacAddr([0x33, 0x33, 0, 0, 0, 1]))
            ],
        ),
        mostly(THEM, Just(MacAddr([0x01, 0, 0x5e, 0, 0, 1]))),
        prop_oneof![
            3 => ipv4_payload(),
            3 => ipv6_payload(),
            1 => Just(Payload::Arp),
            1 => prop_oneof![Just(0x8100u16), Just(0x88cc), any::<u16>()].prop_map(Payload::Other),
        ],
        0usize..32,
        mostly(0usize, 1usize..24),
        mostly(None, any::<Index>().prop_map(Some)),
        mostly(None, (any::<Index>(), 1u8..=255).prop_map(Some)),
        prop_oneof![
            3 => Just(ChecksumStatus::Unknown),
            1 => Just(ChecksumStatus::Good),
            1 => Just(ChecksumStatus::Bad)
        ],
    )
        .prop_map(
            |(dst_mac, src_mac, payload, body_len, padding, cut, flip, l3_checksum)| FrameCase {
                dst_mac,
                src_mac,
                payload,
                body_len,
                padding,
                cut,
                flip,
                l3_checksum,
            },
        )
}

impl FrameCase {
    fn bytes(&self) -> Vec<u8> {
        let ether_type = match self.payload {
            Payload::Ipv4 { .. } => EtherType::Ipv4,
            Payload::Ipv6 { .. } => EtherType::Ipv6,
            Payload::Arp => EtherType::Arp,
            Payload::Other(t) => EtherType::from(t),
        };
        let mut b = vec![0xa5u8; 14 + 60 + 40 + self.body_len + self.padding];
        Ethernet {
            dst: self.dst_mac,
            src: self.src_mac,
            ether_type,
        }
        .emit(&mut b)
        .unwrap();
        let l3_len = match self.payload {
            Payload::Ipv4 {
                version,
                ihl,
                total_len,
                more_fragments,
                frag_offset,
                dst,
                src,
                bad_checksum,
            } => {
                let header_len = usize::from(ihl.max(5)) * 4;
                let len = header_len + self.body_len;
                let ip = &mut b[14..14 + len];
                Ipv4 {
                    ihl: ihl.max(5),
                    total_len: total_len.unwrap_or(len as u16),
                    dont_fragment: !more_fragments && frag_offset == 0,
                    more_fragments,
                    frag_offset,
                    protocol: IpProtocol::Udp,
                    src,
                    dst,
                    ..Ipv4::basic()
                }
                .emit(ip)
                .unwrap();
                ip[0] = (version << 4) | ihl;
                if ihl >= 5 {
                    Ipv4View::new(&mut ip[..]).unwrap().fill_checksum();
                }
                if bad_checksum {
                    ip[10] ^= 0x5a;
                }
                len
            }
            Payload::Ipv6 {
                version,
                payload_len,
                next_header,
                dst,
                src,
            } => {
                let len = 40 + self.body_len;
                Ipv6 {
                    version: 6,
                    dscp: 0,
                    ecn: 0,
                    flow_label: 0,
                    payload_len: payload_len.unwrap_or(self.body_len as u16),
                    next_header,
                    hop_limit: 64,
                    src,
                    dst,
                }
                .emit(&mut b[14..])
                .unwrap();
                b[14] = (version << 4) | (b[14] & 0x0f);
                len
            }
            Payload::Arp => 28,
            Payload::Other(_) => self.body_len,
        };
        b.truncate(14 + l3_len + self.padding);
        if let Some(cut) = &self.cut {
            let at = cut.index(b.len() + 1);
            b.truncate(at);
        }
        if let Some((at, x)) = &self.flip {
            if !b.is_empty() {
                let i = at.index(b.len());
                b[i] ^= x;
            }
        }
        b
    }
}

/// How many random frames each property test tries.
const CASES: u32 = 3000;

#[test]
fn checked_constructors_refuse_what_the_stages_drop() {
    let pool = Pool::with_capacity(16).unwrap();
    let stages = RefCell::new(Stages::new());
    let iface = iface();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        source_file: Some(file!()),
        ..Config::default()
    });
    // Every way a frame can end, seen at least once: (path, reason).
    let seen = RefCell::new(BTreeSet::new());
    runner
        .run(&frame_case(), |case| {
            let bytes = case.bytes();
            let fresh = || buf(&pool, &bytes, case.l3_checksum);
            let path = stages.borrow_mut().run(fresh());
            let key = match &path {
                StagePath::EthernetDrop(r) => ("ethernet", *r),
                StagePath::Arp(_) => ("arp", "pass"),
                StagePath::Ipv4(o) => ("ipv4", o.as_ref().err().copied().unwrap_or("pass")),
                StagePath::Ipv6(o) => ("ipv6", o.as_ref().err().copied().unwrap_or("pass")),
            };
            seen.borrow_mut().insert(key);
            let dropped_at_ethernet = matches!(path, StagePath::EthernetDrop(_));

            let checks = [
                (
                    "ArpFrame::parse",
                    Layer::Ethernet,
                    true,
                    checked(ArpFrame::parse(fresh(), &iface), ArpFrame::buf, &bytes),
                ),
                (
                    "Ipv4Frame::parse",
                    Layer::Ipv4,
                    true,
                    checked(Ipv4Frame::parse(fresh(), &iface), Ipv4Frame::buf, &bytes),
                ),
                (
                    "Ipv6Frame::parse",
                    Layer::Ipv6,
                    true,
                    checked(Ipv6Frame::parse(fresh(), &iface), Ipv6Frame::buf, &bytes),
                ),
                (
                    "Ipv4Packet::parse",
                    Layer::Ipv4,
                    false,
                    checked(Ipv4Packet::parse(fresh(), &iface), Ipv4Packet::buf, &bytes),
                ),
                (
                    "Ipv6Packet::parse",
                    Layer::Ipv6,
                    false,
                    checked(Ipv6Packet::parse(fresh(), &iface), Ipv6Packet::buf, &bytes),
                ),
            ];
            for (name, wanted, frame_only, (got, blamed)) in checks {
                // The ARP branch is the Ethernet layer's alone.
                let want = expected(&path, &bytes, wanted, frame_only);
                prop_assert_eq!(&got, &want, "{} on {:?}: stages {:?}", name, bytes, path);
                if let Some(layer) = blamed {
                    let at_ethernet = dropped_at_ethernet
                        || frame_only
                        || !matches!(
                            (&path, wanted),
                            (StagePath::Ipv4(_), Layer::Ipv4) | (StagePath::Ipv6(_), Layer::Ipv6)
                        );
                    let want_layer = if at_ethernet { Layer::Ethernet } else { wanted };
                    prop_assert_eq!(layer, want_layer, "{} blames the wrong layer", name);
                }
            }
            Ok(())
        })
        .unwrap();
    // The generator reaches every check of every stage, so the comparison
    // above covered each of them.
    let want = [
        ("arp", "pass"),
        ("ethernet", "malformed"),
        ("ethernet", "not-for-us"),
        ("ethernet", "too-short"),
        ("ethernet", "unsupported"),
        ("ipv4", "bad-checksum"),
        ("ipv4", "malformed"),
        ("ipv4", "not-for-us"),
        ("ipv4", "pass"),
        ("ipv4", "too-short"),
        ("ipv4", "unsupported"),
        ("ipv6", "malformed"),
        ("ipv6", "not-for-us"),
        ("ipv6", "pass"),
        ("ipv6", "too-short"),
        ("ipv6", "unsupported"),
    ];
    let seen = seen.into_inner();
    for key in want {
        assert!(
            seen.contains(&key),
            "no frame ended as {key:?}; seen {seen:?}"
        );
    }
    drop(stages);
    pool.assert_whole();
}

// ---- the errors, one by one ----

fn ipv4_frame(edit: impl FnOnce(&mut Ipv4)) -> Vec<u8> {
    let mut b = vec![0u8; 14 + 20 + 8];
    Ethernet {
        dst: US,
        src: THEM,
        ether_type: EtherType::Ipv4,
    }
    .emit(&mut b)
    .unwrap();
    let mut ip = Ipv4 {
        total_len: 28,
        protocol: IpProtocol::Udp,
        src: THEIR_V4,
        dst: OUR_V4,
        ..Ipv4::basic()
    };
    edit(&mut ip);
    ip.emit(&mut b[14..]).unwrap();
    b
}

fn ipv6_frame(next_header: IpProtocol) -> Vec<u8> {
    let mut b = vec![0u8; 14 + 40 + 8];
    Ethernet {
        dst: US,
        src: THEM,
        ether_type: EtherType::Ipv6,
    }
    .emit(&mut b)
    .unwrap();
    Ipv6 {
        version: 6,
        dscp: 0,
        ecn: 0,
        flow_label: 0,
        payload_len: 8,
        next_header,
        hop_limit: 64,
        src: THEIR_V6,
        dst: OUR_V6,
    }
    .emit(&mut b[14..])
    .unwrap();
    b
}

fn v4_error(pool: &Pool, bytes: &[u8]) -> PacketError {
    let b = buf(pool, bytes, ChecksumStatus::Unknown);
    *Ipv4Packet::parse(b, &iface()).unwrap_err().error()
}

fn v6_error(pool: &Pool, bytes: &[u8]) -> PacketError {
    let b = buf(pool, bytes, ChecksumStatus::Unknown);
    *Ipv6Packet::parse(b, &iface()).unwrap_err().error()
}

fn error(layer: Layer, len: usize, kind: PacketErrorKind) -> PacketError {
    PacketError { layer, len, kind }
}

#[test]
fn refusals_name_the_layer_its_length_and_the_field() {
    use PacketErrorKind::*;
    let pool = Pool::with_capacity(4).unwrap();

    let good = ipv4_frame(|_| {});
    let p = Ipv4Packet::parse(buf(&pool, &good, ChecksumStatus::Unknown), &iface()).unwrap();
    assert_eq!((p.l3_offset(), p.l4_offset(), p.l4().len()), (14, 34, 8));
    drop(p);

    assert_eq!(
        v4_error(&pool, &good[..10]),
        error(Layer::Ethernet, 10, Truncated { needed: 14 })
    );
    let mut to_them = good.clone();
    to_them[5] = 9;
    assert_eq!(
        v4_error(&pool, &to_them),
        error(Layer::Ethernet, 42, NotForUs { field: "dst" })
    );
    assert_eq!(
        v4_error(&pool, &ipv6_frame(IpProtocol::Udp)),
        error(
            Layer::Ethernet,
            62,
            Unsupported {
                field: "ether_type"
            }
        )
    );
    assert_eq!(
        v4_error(&pool, &good[..14 + 12]),
        error(Layer::Ipv4, 12, Truncated { needed: 20 })
    );
    assert_eq!(
        v4_error(&pool, &good[..14 + 24]),
        error(Layer::Ipv4, 24, Truncated { needed: 28 })
    );
    let fragment = ipv4_frame(|ip| ip.more_fragments = true);
    assert_eq!(
        v4_error(&pool, &fragment),
        error(
            Layer::Ipv4,
            28,
            Unsupported {
                field: "more_fragments"
            }
        )
    );
    let last_fragment = ipv4_frame(|ip| ip.frag_offset = 185);
    assert_eq!(
        v4_error(&pool, &last_fragment),
        error(
            Layer::Ipv4,
            28,
            Unsupported {
                field: "frag_offset"
            }
        )
    );
    let short_total = ipv4_frame(|ip| ip.total_len = 19);
    assert_eq!(
        v4_error(&pool, &short_total),
        error(Layer::Ipv4, 28, Malformed { field: "total_len" })
    );
    let from_broadcast = ipv4_frame(|ip| ip.src = Ipv4Addr::BROADCAST);
    assert_eq!(
        v4_error(&pool, &from_broadcast),
        error(Layer::Ipv4, 28, Malformed { field: "src" })
    );
    let not_ours = ipv4_frame(|ip| ip.dst = THEIR_V4);
    assert_eq!(
        v4_error(&pool, &not_ours),
        error(Layer::Ipv4, 28, NotForUs { field: "dst" })
    );
    let mut bad_sum = good.clone();
    bad_sum[14 + 10] ^= 1;
    assert_eq!(
        v4_error(&pool, &bad_sum),
        error(Layer::Ipv4, 28, BadChecksum)
    );
    // The port's verdict stands in for the software check, both ways.
    let b = buf(&pool, &bad_sum, ChecksumStatus::Good);
    assert!(Ipv4Packet::parse(b, &iface()).is_ok());
    let b = buf(&pool, &good, ChecksumStatus::Bad);
    assert_eq!(
        Ipv4Packet::parse(b, &iface()).unwrap_err().error().kind,
        BadChecksum
    );
    let mut short_ihl = good.clone();
    short_ihl[14] = 0x44;
    assert_eq!(
        v4_error(&pool, &short_ihl),
        error(Layer::Ipv4, 28, Malformed { field: "ihl" })
    );

    let v6 = ipv6_frame(IpProtocol::Udp);
    let p = Ipv6Packet::parse(buf(&pool, &v6, ChecksumStatus::Unknown), &iface()).unwrap();
    assert_eq!((p.l3_offset(), p.l4_offset(), p.l4().len()), (14, 54, 8));
    drop(p);
    assert_eq!(
        v6_error(&pool, &v6[..14 + 40 + 4]),
        error(Layer::Ipv6, 44, Truncated { needed: 48 })
    );
    assert_eq!(
        v6_error(&pool, &ipv6_frame(IpProtocol::HopByHop)),
        error(
            Layer::Ipv6,
            48,
            Unsupported {
                field: "next_header"
            }
        )
    );
    let mut v4_in_v6 = v6.clone();
    v4_in_v6[14] = 0x40;
    assert_eq!(
        v6_error(&pool, &v4_in_v6),
        error(Layer::Ipv6, 48, Malformed { field: "version" })
    );

    // The messages say the same.
    assert_eq!(
        v4_error(&pool, &good[..14 + 24]).to_string(),
        "IPv4 (24 bytes): truncated, needs 28 bytes"
    );
    assert_eq!(
        v4_error(&pool, &fragment).to_string(),
        "IPv4 (28 bytes): unsupported `more_fragments`"
    );
    assert_eq!(
        v4_error(&pool, &to_them).to_string(),
        "Ethernet (42 bytes): `dst` is not ours"
    );
    pool.assert_whole();
}
