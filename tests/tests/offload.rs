//! Transmit offloads (`tpa::port::offload`): software checksums and TSO
//! checked against etherparse, the hardware plan's seeded checksum fields,
//! malformed requests, and a MemoryWire carrying requests end to end.
//! `cargo test -p tpa-tests --test offload`.

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use tpa::buf::{BufferPool, L4Protocol, LayerOffsets, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::header::checksum;
use tpa::port::memory::{End, MemoryPort, MemoryWire, WireConfig};
use tpa::port::offload::{
    self, HwOffload, IpVersion, OffloadError, OffloadStats, Prepared, TsoSegments,
};
use tpa::port::{Burst, Offloads, Port};

const SRC4: [u8; 4] = [10, 1, 0, 1];
const DST4: [u8; 4] = [10, 1, 0, 2];
const SRC6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const MACS: ([u8; 6], [u8; 6]) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp4,
    Udp4,
    Tcp6,
    Udp6,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Tcp4, Kind::Udp4, Kind::Tcp6, Kind::Udp6];
    fn l4(self) -> L4Protocol {
        match self {
            Kind::Tcp4 | Kind::Tcp6 => L4Protocol::Tcp,
            Kind::Udp4 | Kind::Udp6 => L4Protocol::Udp,
        }
    }
    fn v4(self) -> bool {
        matches!(self, Kind::Tcp4 | Kind::Udp4)
    }
}

/// A correct frame built by etherparse, and its layer offsets. TCP frames
/// carry FIN, PSH and CWR so segmentation has flags to distribute.
fn frame(kind: Kind, payload: &[u8]) -> (Vec<u8>, LayerOffsets) {
    let eth = PacketBuilder::ethernet2(MACS.0, MACS.1);
    let mut out = Vec::new();
    let tcp = |b: etherparse::PacketBuilderStep<etherparse::IpHeaders>| {
        b.tcp(40000, 6379, 0xffff_f000, 65535)
            .ack(77)
            .fin()
            .psh()
            .cwr()
    };
    match kind {
        Kind::Tcp4 => tcp(eth.ipv4(SRC4, DST4, 64)).write(&mut out, payload),
        Kind::Udp4 => eth
            .ipv4(SRC4, DST4, 64)
            .udp(5353, 53)
            .write(&mut out, payload),
        Kind::Tcp6 => tcp(eth.ipv6(SRC6, DST6, 64)).write(&mut out, payload),
        Kind::Udp6 => eth
            .ipv6(SRC6, DST6, 64)
            .udp(5353, 53)
            .write(&mut out, payload),
    }
    .expect("build");
    let l4 = if kind.v4() { 34 } else { 54 };
    let l4_header = if kind.l4() == L4Protocol::Tcp { 20 } else { 8 };
    (
        out,
        LayerOffsets {
            l2: 0,
            l3: 14,
            l4,
            payload: l4 + l4_header,
        },
    )
}

/// Where the L4 checksum field is.
fn l4_field(kind: Kind, layers: LayerOffsets) -> usize {
    usize::from(layers.l4) + if kind.l4() == L4Protocol::Tcp { 16 } else { 6 }
}

fn pool(buffers: usize, data_room: usize) -> Pool {
    Pool::new(PoolConfig {
        capacity: buffers,
        data_room,
        ..PoolConfig::default()
    })
    .expect("pool")
}

/// `bytes` in a buffer with the checksum fields garbled and the request set.
fn request(pool: &Pool, kind: Kind, bytes: &[u8], layers: LayerOffsets) -> PoolBuf {
    let mut b = pool.alloc().expect("buffer");
    b.extend_from_slice(bytes).expect("room");
    let d = b.data_mut();
    if kind.v4() {
        d[24..26].copy_from_slice(&[0xde, 0xad]);
    }
    let f = l4_field(kind, layers);
    d[f..f + 2].copy_from_slice(&[0xbe, 0xef]);
    b.meta_mut().layers = layers;
    b.meta_mut().tx.request_checksums(kind.l4());
    b
}

fn payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

#[test]
fn software_checksums_equal_etherparse() {
    let pool = pool(16, 2048);
    for kind in Kind::ALL {
        for len in [0, 1, 2, 7, 63, 1001, 1400] {
            let (good, layers) = frame(kind, &payload(len, 3));
            let mut b = request(&pool, kind, &good, layers);
            assert_eq!(
                offload::prepare(&mut b, &Offloads::default()),
                Ok(Prepared::Done),
                "{kind:?} len {len}"
            );
            assert_eq!(b.data(), &good[..], "{kind:?} payload {len}");
            assert!(b.meta().tx.is_empty());
        }
    }
    pool.assert_whole();
}

#[test]
fn device_offloads_get_seeded_fields_and_lengths() {
    let pool = pool(4, 2048);
    let all = Offloads {
        ipv4_checksum: true,
        tcp_checksum: true,
        udp_checksum: true,
        tso: true,
    };
    for kind in Kind::ALL {
        let (good, layers) = frame(kind, &payload(333, 9));
        let mut b = request(&pool, kind, &good, layers);
        let plan = match offload::prepare(&mut b, &all) {
            Ok(Prepared::Hardware(plan)) => plan,
            other => panic!("{kind:?}: {other:?}"),
        };
        assert_eq!(
            plan,
            HwOffload {
                ip: if kind.v4() {
                    IpVersion::V4
                } else {
                    IpVersion::V6
                },
                l2_len: 14,
                l3_len: layers.l4 - 14,
                l4_len: layers.payload - layers.l4,
                ipv4_checksum: kind.v4(),
                l4_checksum: Some(kind.l4()),
                tso_mss: None,
            }
        );
        if kind.v4() {
            assert_eq!(&b.data()[24..26], &[0, 0], "zeroed for the device");
        }
        // What the device does: sum the L4 bytes, the seed included.
        let f = l4_field(kind, layers);
        let done = checksum::checksum(&b.data()[usize::from(layers.l4)..]);
        assert_eq!(done.to_be_bytes(), good[f..f + 2], "{kind:?}");
    }
    // Only TCP offloaded: the IPv4 checksum is done now.
    let (good, layers) = frame(Kind::Tcp4, b"x");
    let mut b = request(&pool, Kind::Tcp4, &good, layers);
    let only_tcp = Offloads {
        tcp_checksum: true,
        ..Offloads::default()
    };
    let Ok(Prepared::Hardware(plan)) = offload::prepare(&mut b, &only_tcp) else {
        panic!("TCP left to the device")
    };
    assert!(!plan.ipv4_checksum);
    assert_eq!(&b.data()[14..34], &good[14..34]);
    drop(b);
    pool.assert_whole();
}

#[test]
fn hardware_tso_is_planned_when_the_device_has_it() {
    let pool = pool(2, 16384);
    let (good, layers) = frame(Kind::Tcp6, &payload(5000, 1));
    let mut b = pool.alloc().unwrap();
    b.extend_from_slice(&good).unwrap();
    b.meta_mut().layers = layers;
    b.meta_mut().tx.request_tso(1440);
    let tso = Offloads {
        tso: true,
        ..Offloads::default()
    };
    let Ok(Prepared::Hardware(plan)) = offload::prepare(&mut b, &tso) else {
        panic!("TSO left to the device")
    };
    assert_eq!(plan.tso_mss, Some(1440));
    assert_eq!(plan.l4_checksum, Some(L4Protocol::Tcp));
    assert!(!plan.ipv4_checksum, "IPv6 has no header checksum");
    // The seed is the pseudo-header without the length.
    let src: std::net::Ipv6Addr = SRC6.into();
    let dst: std::net::Ipv6Addr = DST6.into();
    let seed = checksum::pseudo_header_v6(&src, &dst, 6, 0);
    assert_eq!(&b.data()[70..72], &seed.to_be_bytes());
    // Without TSO in the device: segment in software.
    let mut c = pool.alloc().unwrap();
    c.extend_from_slice(&good).unwrap();
    c.meta_mut().layers = layers;
    c.meta_mut().tx.request_tso(1440);
    assert_eq!(
        offload::prepare(&mut c, &Offloads::default()),
        Ok(Prepared::Segment { mss: 1440 })
    );
    assert_eq!(c.data(), &good[..], "untouched until segmented");
    drop((b, c));
    pool.assert_whole();
}

#[test]
fn malformed_requests_are_errors() {
    let pool = pool(4, 2048);
    let none = Offloads::default();
    let (good, layers) = frame(Kind::Udp4, b"hello");
    let check = |edit: &dyn Fn(&mut PoolBuf), want: OffloadError| {
        let mut b = request(&pool, Kind::Udp4, &good, layers);
        edit(&mut b);
        assert_eq!(offload::prepare(&mut b, &none), Err(want));
    };
    check(
        &|b| b.meta_mut().layers = LayerOffsets::default(),
        OffloadError::LayersUnset,
    );
    check(&|b| b.meta_mut().layers.l4 = 10, OffloadError::LayersUnset);
    check(&|b| b.meta_mut().layers.l4 = 38, OffloadError::NotIp);
    check(&|b| b.data_mut()[14] = 0x55, OffloadError::NotIp);
    check(&|b| b.data_mut()[17] += 1, OffloadError::LengthMismatch); // IP total length
    check(&|b| b.data_mut()[39] += 1, OffloadError::LengthMismatch); // UDP length
    check(&|b| b.trim_back(10).unwrap(), OffloadError::LengthMismatch);
    check(&|b| b.trim_back(27).unwrap(), OffloadError::Truncated);
    check(
        &|b| {
            b.meta_mut().tx.clear();
            b.meta_mut().tx.request_l4_checksum(L4Protocol::Tcp);
        },
        OffloadError::Truncated,
    );
    pool.assert_whole();
}

/// Checks one TCP segment with etherparse and returns (seq, flags, payload).
fn parse_segment(bytes: &[u8]) -> (u32, (bool, bool, bool), Vec<u8>, Option<u16>) {
    let p = SlicedPacket::from_ethernet(bytes).expect("parses");
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        panic!("TCP")
    };
    let (want, ident) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            assert_eq!(
                h.header_checksum(),
                h.to_header().calc_header_checksum(),
                "IPv4 checksum"
            );
            assert_eq!(usize::from(h.total_len()), bytes.len() - 14);
            (
                tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap(),
                Some(h.identification()),
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            assert_eq!(usize::from(h.payload_length()), bytes.len() - 54);
            (
                tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap(),
                None,
            )
        }
        _ => panic!("IP"),
    };
    assert_eq!(tcp.checksum(), want, "TCP checksum");
    (
        tcp.sequence_number(),
        (tcp.fin(), tcp.psh(), tcp.cwr()),
        tcp.payload().to_vec(),
        ident,
    )
}

/// Segments `kind` carrying `len` payload bytes at `mss` in software and
/// checks every segment; returns the segment count.
fn check_tso(kind: Kind, len: usize, mss: u16) -> Result<usize, TestCaseError> {
    let pool = pool(len / usize::from(mss) + 4, 65536 + 256);
    let data = payload(len, 5);
    let (good, layers) = frame(kind, &data);
    let mut big = pool.alloc().unwrap();
    big.extend_from_slice(&good).unwrap();
    big.meta_mut().layers = layers;
    big.meta_mut().tx.request_tso(mss);
    let mut segs = TsoSegments::new(&big, mss).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let count = segs.remaining();
    prop_assert_eq!(count, len.div_ceil(usize::from(mss)).max(1));
    let mut joined = Vec::new();
    let mut i = 0;
    while let Some(seg) = segs.next_with(|| pool.alloc()) {
        let mut seg = seg.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            offload::prepare(&mut seg, &Offloads::default()),
            Ok(Prepared::Done)
        );
        let (seq, (fin, psh, cwr), body, ident) = parse_segment(seg.data());
        let last = i + 1 == count;
        prop_assert_eq!(
            seq,
            0xffff_f000u32.wrapping_add((i * usize::from(mss)) as u32)
        );
        prop_assert_eq!((fin, psh, cwr), (last, last, i == 0), "segment {}", i);
        prop_assert!(body.len() <= usize::from(mss));
        if let Some(id) = ident {
            prop_assert_eq!(id, i as u16, "identification + 1 per segment");
        }
        joined.extend_from_slice(&body);
        i += 1;
    }
    prop_assert_eq!(i, count);
    prop_assert!(joined == data, "payload differs");
    drop(big);
    prop_assert!(pool.is_whole());
    Ok(count)
}

#[test]
fn software_tso_of_10000_bytes() {
    assert_eq!(check_tso(Kind::Tcp4, 10_000, 1448).unwrap(), 7);
    assert_eq!(check_tso(Kind::Tcp6, 10_000, 1448).unwrap(), 7);
    assert_eq!(check_tso(Kind::Tcp4, 1448, 1448).unwrap(), 1);
    assert_eq!(check_tso(Kind::Tcp6, 0, 1448).unwrap(), 1);
}

#[test]
fn tso_without_buffers_or_with_bad_mss_is_an_error() {
    let pool = pool(4, 16384);
    let (good, layers) = frame(Kind::Tcp4, &payload(5000, 0));
    let mut big = pool.alloc().unwrap();
    big.extend_from_slice(&good).unwrap();
    big.meta_mut().layers = layers;
    assert!(matches!(
        TsoSegments::new(&big, 0),
        Err(OffloadError::BadMss)
    ));
    let mut segs = TsoSegments::new(&big, 1000).unwrap();
    assert!(matches!(
        segs.next_with(|| None),
        Some(Err(OffloadError::NoBuffers))
    ));
    let small = self::pool(2, 256);
    assert!(matches!(
        segs.next_with(|| small.alloc()),
        Some(Err(OffloadError::BadMss))
    ));
    drop(big);
    small.assert_whole();
    pool.assert_whole();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any payload size and MSS: the segments put the payload back together.
    #[test]
    fn tso_reassembles(len in 0usize..20_000, mss in 64u16..9000, v6 in any::<bool>()) {
        let kind = if v6 { Kind::Tcp6 } else { Kind::Tcp4 };
        check_tso(kind, len, mss)?;
    }

    /// Random bytes and offsets, or a real TCP frame with a few bytes
    /// changed, and any request: an answer, never a panic. With no device
    /// offloads the answer is done, segment (only when TSO was asked) or an
    /// error; a segmentation plan yields exactly the segments it counted;
    /// nothing leaks.
    #[test]
    fn garbage_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        l3 in 0u16..80, l4 in 0u16..140, what in 0u8..4, mss in 0u16..100,
        real in proptest::option::of((any::<bool>(), 0usize..400)),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    ) {
        let pool = pool(64, 2048);
        let mut b = pool.alloc().unwrap();
        match real {
            Some((v6, len)) => {
                let (mut f, layers) = frame(if v6 { Kind::Tcp6 } else { Kind::Tcp4 }, &payload(len, 1));
                for &(at, x) in &flips {
                    let at = at % f.len();
                    f[at] ^= x;
                }
                b.extend_from_slice(&f).unwrap();
                b.meta_mut().layers = layers;
            }
            None => {
                b.extend_from_slice(&bytes).unwrap();
                b.meta_mut().layers = LayerOffsets { l2: 0, l3, l4, payload: LayerOffsets::UNSET };
            }
        }
        match what {
            0 => { b.meta_mut().tx.request_checksums(L4Protocol::Tcp); }
            1 => { b.meta_mut().tx.request_checksums(L4Protocol::Udp); }
            2 => { b.meta_mut().tx.request_ipv4_checksum(); }
            _ => { b.meta_mut().tx.request_tso(mss); }
        }
        match offload::prepare(&mut b, &Offloads::default()) {
            Ok(Prepared::Hardware(plan)) => {
                prop_assert!(false, "a device plan without device offloads: {:?}", plan);
            }
            Ok(Prepared::Segment { mss: m }) => {
                prop_assert_eq!(what, 3, "segmentation only when TSO was asked");
                prop_assert_eq!(m, mss);
            }
            Ok(Prepared::Done) | Err(_) => {}
        }
        if let Ok(mut segs) = TsoSegments::new(&b, mss.max(1)) {
            let planned = segs.remaining();
            prop_assert!(planned >= 1);
            let mut produced = 0;
            while let Some(s) = segs.next_with(|| pool.alloc()) {
                produced += 1;
                drop(s);
            }
            prop_assert_eq!(produced, planned);
        }
        drop(b);
        prop_assert!(pool.is_whole(), "{:?}", pool.stats());
    }
}

/// A wire whose pool holds 16 KiB buffers (room for a TSO packet).
fn big_wire(ring_size: usize) -> (MemoryWire, MemoryPort, MemoryPort) {
    let wire = MemoryWire::new(WireConfig {
        ring_size,
        pool: Some(pool(512, 16384)),
        ..WireConfig::default()
    })
    .unwrap();
    let a = wire.port(End::A, 0).unwrap();
    let b = wire.port(End::B, 0).unwrap();
    (wire, a, b)
}

fn receive_all(port: &mut impl Port<Buf = PoolBuf>) -> Vec<PoolBuf> {
    let mut got = Vec::new();
    loop {
        let mut rx: Burst<PoolBuf> = Burst::new();
        if port.rx_burst(&mut rx) == 0 {
            return got;
        }
        got.extend(rx.drain());
    }
}

#[test]
fn memory_wire_carries_out_requests() {
    let (wire, mut a, mut b) = big_wire(1024);
    let mut tx: Burst<PoolBuf> = Burst::new();
    let mut expected = Vec::new();
    for (i, kind) in Kind::ALL.into_iter().enumerate() {
        let (good, layers) = frame(kind, &payload(100 + i, i as u8));
        tx.push(request(wire.pool(), kind, &good, layers));
        expected.push(good);
    }
    // A packet without a request passes as it is; a malformed one is dropped.
    let (plain, _) = frame(Kind::Udp4, b"as is");
    let mut p = a.alloc().unwrap();
    p.extend_from_slice(&plain).unwrap();
    tx.push(p);
    let mut bad = a.alloc().unwrap();
    bad.extend_from_slice(&plain).unwrap();
    bad.meta_mut().tx.request_checksums(L4Protocol::Udp); // no layers
    tx.push(bad);
    // 10 000 bytes to segment in software at MSS 1448.
    let data = payload(10_000, 7);
    let (good, layers) = frame(Kind::Tcp4, &data);
    let mut big = a.alloc().unwrap();
    big.extend_from_slice(&good).unwrap();
    big.meta_mut().layers = layers;
    big.meta_mut().tx.request_tso(1448);
    tx.push(big);

    assert_eq!(a.tx_burst(&mut tx), 7);
    assert!(tx.is_empty());
    assert_eq!(
        a.offload_stats(),
        OffloadStats {
            malformed: 1,
            tso_packets: 1,
            tso_segments: 7,
            tso_dropped: 0,
            ..OffloadStats::default()
        }
    );
    let got = receive_all(&mut b);
    assert_eq!(got.len(), 4 + 1 + 7);
    for (g, want) in got.iter().zip(&expected) {
        assert_eq!(g.data(), &want[..], "checksums right on the far side");
        assert!(g.meta().tx.is_empty());
    }
    assert_eq!(got[4].data(), &plain[..]);
    let mut joined = Vec::new();
    for (i, seg) in got[5..].iter().enumerate() {
        let (seq, _, body, _) = parse_segment(seg.data());
        assert_eq!(seq, 0xffff_f000u32.wrapping_add(1448 * i as u32));
        joined.extend_from_slice(&body);
    }
    assert_eq!(joined, data);
    drop(got);
    drop((a, b));
    wire.pool().assert_whole();
}

#[test]
fn a_full_ring_keeps_the_rest_of_a_segmented_packet_for_later() {
    let (wire, mut a, mut b) = big_wire(4);
    let data = payload(10_000, 2);
    let (good, layers) = frame(Kind::Tcp4, &data);
    let mut big = a.alloc().unwrap();
    big.extend_from_slice(&good).unwrap();
    big.meta_mut().layers = layers;
    big.meta_mut().tx.request_tso(1448);
    let (small, small_layers) = frame(Kind::Udp6, b"after");
    let mut tx: Burst<PoolBuf> = Burst::new();
    tx.push(big);
    tx.push(request(wire.pool(), Kind::Udp6, &small, small_layers));
    assert_eq!(a.tx_burst(&mut tx), 0, "the ring took 4 of 7 segments");
    assert_eq!(tx.len(), 2, "the rest of the packet waits, then the other");
    let mut got = receive_all(&mut b);
    assert_eq!(got.len(), 4);
    assert_eq!(a.tx_burst(&mut tx), 2);
    assert!(tx.is_empty());
    got.extend(receive_all(&mut b));
    assert_eq!(got.len(), 8);
    assert_eq!(got[7].data(), &small[..]);
    let mut joined = Vec::new();
    for (i, seg) in got[..7].iter().enumerate() {
        let (seq, flags, body, ident) = parse_segment(seg.data());
        assert_eq!(seq, 0xffff_f000u32.wrapping_add(1448 * i as u32));
        assert_eq!(flags, (i == 6, i == 6, i == 0), "FIN, PSH, CWR of {i}");
        assert_eq!(ident, Some(i as u16));
        joined.extend_from_slice(&body);
    }
    assert_eq!(joined, data, "nothing lost, nothing repeated");
    assert_eq!(
        a.offload_stats(),
        OffloadStats {
            malformed: 0,
            tso_packets: 1,
            tso_segments: 7,
            tso_dropped: 0,
            ..OffloadStats::default()
        }
    );
    drop((got, tx, a, b));
    wire.pool().assert_whole();
}

#[test]
fn an_empty_pool_holds_segmentation_back() {
    let (wire, mut a, mut b) = big_wire(64);
    let (good, layers) = frame(Kind::Tcp6, &payload(5000, 4));
    let mut big = a.alloc().unwrap();
    big.extend_from_slice(&good).unwrap();
    big.meta_mut().layers = layers;
    big.meta_mut().tx.request_tso(1000);
    // Leave two buffers in the pool: two of five segments can be built.
    let mut hog = Vec::new();
    while wire.pool().capacity() - wire.pool().in_use() > 2 {
        hog.push(a.alloc().unwrap());
    }
    let mut tx: Burst<PoolBuf> = Burst::new();
    tx.push(big);
    assert_eq!(a.tx_burst(&mut tx), 0);
    assert_eq!(a.offload_stats().tso_segments, 2);
    let first = receive_all(&mut b);
    assert_eq!(first.len(), 2);
    drop(first);
    drop(hog);
    assert_eq!(a.tx_burst(&mut tx), 1);
    let rest = receive_all(&mut b);
    assert_eq!(rest.len(), 3);
    let (seq, _, _, _) = parse_segment(rest[0].data());
    assert_eq!(seq, 0xffff_f000u32.wrapping_add(2000));
    drop((rest, tx, a, b));
    wire.pool().assert_whole();
}

/// A device whose TSO cuts TCP over IPv4 only (as DPDK's net_tap):
/// records the plans it is told of and keeps what it is sent.
struct Ipv4OnlyTso<'a> {
    pool: &'a Pool,
    plans: Vec<HwOffload>,
    sent: Vec<PoolBuf>,
}

impl offload::TxDevice<PoolBuf> for Ipv4OnlyTso<'_> {
    fn tx_offloads(&self) -> Offloads {
        Offloads {
            ipv4_checksum: true,
            tcp_checksum: true,
            udp_checksum: true,
            tso: true,
        }
    }

    fn tso_ipv6(&self) -> bool {
        false
    }

    fn send<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        let n = tx.len();
        self.sent.extend(tx.drain_front(n));
        n
    }

    fn alloc_segment(&mut self) -> Option<PoolBuf> {
        self.pool.alloc()
    }

    fn mark_for_device(&mut self, _buf: &mut PoolBuf, plan: &HwOffload) {
        self.plans.push(*plan);
    }
}

/// On a device whose TSO takes only IPv4, a TCP/IPv4 super-segment goes to
/// the device whole with a TSO plan, a TCP/IPv6 one is cut in software
/// into segments of the MSS (their checksums still the device's), in
/// order.
#[test]
fn ipv6_tso_is_cut_in_software_where_the_device_cuts_only_ipv4() {
    let pool = pool(32, 65536 + 256);
    let data = payload(10_000, 9);
    let mut tx: Burst<PoolBuf, 8> = Burst::new();
    for kind in [Kind::Tcp4, Kind::Tcp6] {
        let (bytes, layers) = frame(kind, &data);
        let mut b = pool.alloc().unwrap();
        b.extend_from_slice(&bytes).unwrap();
        b.meta_mut().layers = layers;
        b.meta_mut().tx.request_tso(1448);
        tx.push(b);
    }
    let mut dev = Ipv4OnlyTso {
        pool: &pool,
        plans: Vec::new(),
        sent: Vec::new(),
    };
    let mut stats = OffloadStats::default();
    assert_eq!(offload::transmit(&mut dev, &mut tx, &mut stats), 2);
    assert!(tx.is_empty());
    assert_eq!(stats.tso_packets, 1, "{stats:?}");
    assert_eq!(stats.tso_segments, 7, "{stats:?}");
    assert_eq!(dev.sent.len(), 8);
    assert!(dev.sent[0].len() > 10_000, "the IPv4 packet went whole");
    assert!(dev.sent[1..].iter().all(|s| s.len() <= 14 + 40 + 20 + 1448));
    assert_eq!(dev.plans.len(), 8);
    assert_eq!(dev.plans[0].ip, IpVersion::V4);
    assert_eq!(dev.plans[0].tso_mss, Some(1448));
    for plan in &dev.plans[1..] {
        assert_eq!(plan.ip, IpVersion::V6);
        assert_eq!(plan.tso_mss, None);
        assert_eq!(plan.l4_checksum, Some(L4Protocol::Tcp));
    }
    drop(dev);
    pool.assert_whole();
}
