//! IPv6, its extension-header walk, ICMPv6 and NDP: etherparse as the oracle
//! for accessors, setters, the walk and checksums; packed_struct for the NDP
//! layouts etherparse does not expose; real packets; no panics.

use std::net::Ipv6Addr;

use etherparse::{IpNumber, Ipv6ExtensionsSlice, Ipv6HeaderSlice};
use packed_struct::prelude::*;
use proptest::prelude::*;
use tpa::wire::icmpv6::{
    solicited_node, Icmpv6Echo, Icmpv6EchoView, Icmpv6Type, Icmpv6View, NdpOption, NdpOptionError,
    NdpOptionWriter, NdpOptions, NeighborAdvertisement, NeighborAdvertisementView,
    NeighborSolicitationView, RouterSolicitationView,
};
use tpa::wire::ipv4::IpProtocol;
use tpa::wire::ipv6::{upper_layer, Ipv6, Ipv6ExtError, Ipv6View, MAX_EXTENSION_HEADERS};
use tpa::wire::MacAddr;
use tpa_tests::fixtures::{ICMP6_ECHO, IP6_TCP_EXTENSIONS, NDP_NA, NDP_NS, NDP_RS};

/// The NDP neighbor advertisement layout, declared independently.
#[derive(PackedStruct, Debug, PartialEq)]
#[packed_struct(bit_numbering = "msb0", endian = "msb", size_bytes = "24")]
struct NaOracle {
    #[packed_field(bits = "0..=7")]
    msg_type: u8,
    #[packed_field(bits = "8..=15")]
    code: u8,
    #[packed_field(bits = "16..=31")]
    checksum: u16,
    #[packed_field(bits = "32")]
    router: bool,
    #[packed_field(bits = "33")]
    solicited: bool,
    #[packed_field(bits = "34")]
    override_entry: bool,
    #[packed_field(bits = "35..=63")]
    reserved: Integer<u32, packed_bits::Bits<29>>,
    #[packed_field(bits = "64..=191")]
    target: [u8; 16],
}

#[test]
fn real_tcp_behind_extension_headers() {
    let f = IP6_TCP_EXTENSIONS.to_vec();
    let ip = Ipv6View::new(&f[14..]).unwrap();
    assert_eq!(ip.version(), 6);
    // Traffic class 0x28: DSCP 10 (AF11), ECN 0.
    assert_eq!((ip.dscp(), ip.ecn()), (10, 0));
    assert_eq!(ip.flow_label(), 0xbeef);
    assert_eq!(ip.hop_limit(), 61);
    assert_eq!(ip.next_header(), IpProtocol::HopByHop);
    let up = ip.upper_layer().unwrap();
    assert_eq!(up.protocol, IpProtocol::Tcp);
    assert_eq!(up.offset, 8 + 8 + 8);
    let frag = up.fragment.unwrap();
    assert_eq!(
        (frag.ident, frag.offset_bytes, frag.more_fragments),
        (0xabcdef, 0, true)
    );
    let tcp = tpa::wire::tcp::TcpView::new(up.payload).unwrap();
    assert!(tcp.checksum_ok_v6(&ip.src(), &ip.dst()));
    assert_eq!(tcp.payload(), b"xyz");
}

#[test]
fn real_neighbor_solicitation() {
    let f = NDP_NS.to_vec();
    let ip = Ipv6View::new(&f[14..]).unwrap();
    let up = ip.upper_layer().unwrap();
    assert_eq!(up.protocol, IpProtocol::Icmpv6);
    let ns = NeighborSolicitationView::new(up.payload).unwrap();
    assert_eq!(ns.msg_type(), Icmpv6Type::NeighborSolicitation);
    assert!(ns.checksum_ok_v6(&ip.src(), &ip.dst()));
    let target: Ipv6Addr = "fe80::2".parse().unwrap();
    assert_eq!(ns.target(), target);
    assert_eq!(solicited_node(&target), ip.dst());
    let opts: Vec<_> = NdpOptions::new(ns.payload()).collect();
    assert_eq!(
        opts,
        vec![Ok(NdpOption::SourceLinkAddr(MacAddr([2, 0, 0, 0, 0, 1])))]
    );
    assert!(Icmpv6View::new(up.payload)
        .unwrap()
        .checksum_ok_v6(&ip.src(), &ip.dst()));
}

#[test]
fn real_neighbor_advertisement_rebuilt_byte_for_byte() {
    let f = NDP_NA.to_vec();
    let ip = Ipv6View::new(&f[14..]).unwrap();
    let msg = ip.upper_layer().unwrap().payload;
    let na = NeighborAdvertisementView::new(msg).unwrap();
    assert!(na.checksum_ok_v6(&ip.src(), &ip.dst()));
    assert!(!na.router() && na.solicited() && na.override_entry());
    let oracle = NaOracle::unpack_from_slice(&msg[..24]).unwrap();
    assert_eq!(oracle.msg_type, 136);
    assert_eq!(
        (oracle.router, oracle.solicited, oracle.override_entry),
        (false, true, true)
    );

    let mut out = vec![0u8; 32];
    NeighborAdvertisement {
        msg_type: Icmpv6Type::NeighborAdvertisement,
        code: 0,
        checksum: 0,
        router: false,
        solicited: true,
        override_entry: true,
        reserved: 0,
        target: "fe80::2".parse().unwrap(),
    }
    .emit(&mut out)
    .unwrap();
    NdpOptionWriter::new(&mut out[24..])
        .target_link_addr(MacAddr([2, 0, 0, 0, 0, 2]))
        .unwrap();
    NeighborAdvertisementView::new(&mut out[..])
        .unwrap()
        .fill_checksum_v6(&ip.src(), &ip.dst());
    assert_eq!(out, msg);
}

#[test]
fn real_echo_and_router_solicitation() {
    let f = ICMP6_ECHO.to_vec();
    let ip = Ipv6View::new(&f[14..]).unwrap();
    let msg = ip.upper_layer().unwrap().payload;
    let echo = Icmpv6EchoView::new(msg).unwrap();
    assert!(echo.checksum_ok_v6(&ip.src(), &ip.dst()));
    assert_eq!(
        (echo.ident(), echo.seq(), echo.payload()),
        (9, 10, &b"ping6"[..])
    );
    let ep = etherparse::Icmpv6Slice::from_slice(msg).unwrap();
    assert!(ep.is_checksum_valid(ip.src().octets(), ip.dst().octets()));

    let f = NDP_RS.to_vec();
    let ip = Ipv6View::new(&f[14..]).unwrap();
    let rs = RouterSolicitationView::new(ip.upper_layer().unwrap().payload).unwrap();
    assert!(rs.checksum_ok_v6(&ip.src(), &ip.dst()));
    assert_eq!(rs.msg_type(), Icmpv6Type::RouterSolicitation);
}

#[test]
fn emit_round_trip() {
    let h = Ipv6 {
        version: 6,
        dscp: 46,
        ecn: 0,
        flow_label: 0xfffff,
        payload_len: 0,
        next_header: IpProtocol::NoNextHeader,
        hop_limit: 1,
        src: Ipv6Addr::LOCALHOST,
        dst: "ff02::1".parse().unwrap(),
    };
    let mut b = [0u8; 40];
    assert_eq!(h.emit(&mut b), Ok(40));
    assert_eq!(Ipv6::parse(&b), Ok(h));
    let ep = Ipv6HeaderSlice::from_slice(&b).unwrap();
    assert_eq!(ep.flow_label().value(), 0xfffff);
    let view = Ipv6View::new(&b[..]).unwrap();
    let up = view.upper_layer().unwrap();
    assert_eq!(
        (up.protocol, up.payload.len()),
        (IpProtocol::NoNextHeader, 0)
    );
    let e = Icmpv6Echo {
        msg_type: Icmpv6Type::EchoReply,
        code: 0,
        checksum: 0,
        ident: 1,
        seq: 2,
    };
    let mut m = [0u8; 8];
    e.emit(&mut m).unwrap();
    assert_eq!(Icmpv6Echo::parse(&m), Ok(e));
}

#[test]
fn malformed_extension_chains_are_errors() {
    // Hop-by-hop not first.
    let mut p = vec![0u8; 16];
    p[0] = 0; // dest opts → next = hop-by-hop
    assert_eq!(
        upper_layer(IpProtocol::Ipv6Opts, &p),
        Err(Ipv6ExtError::HopByHopNotFirst { offset: 8 })
    );
    // Length beyond the payload.
    let p = [6u8, 1, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        upper_layer(IpProtocol::Ipv6Route, &p),
        Err(Ipv6ExtError::Truncated { .. })
    ));
    // An endless chain of destination options stops.
    let p: Vec<u8> = [60u8, 0, 0, 0, 0, 0, 0, 0].repeat(MAX_EXTENSION_HEADERS + 2);
    assert_eq!(
        upper_layer(IpProtocol::Ipv6Opts, &p),
        Err(Ipv6ExtError::TooMany)
    );
    // Two fragment headers.
    let p = [44u8, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        upper_layer(IpProtocol::Ipv6Frag, &p),
        Err(Ipv6ExtError::SecondFragmentHeader { offset: 8 })
    );
    // NDP option with length 0.
    let o = [1u8, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        NdpOptions::new(&o).collect::<Vec<_>>(),
        vec![Err(NdpOptionError::ZeroLength { offset: 0 })]
    );
}

/// A well-formed chain of up to six extension headers (hop-by-hop first,
/// at most one fragment header) ending in an upper-layer protocol.
fn ext_chain() -> impl Strategy<Value = (u8, Vec<u8>)> {
    (
        any::<bool>(),
        prop::collection::vec((prop::sample::select(vec![43u8, 60, 51]), 0u8..3), 0..5),
        any::<bool>(),
        prop::sample::select(vec![6u8, 17, 58, 59, 50]),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(hbh, mid, frag, upper, tail)| {
            let mut kinds: Vec<(u8, u8)> = Vec::new();
            if hbh {
                kinds.push((0, 0));
            }
            kinds.extend(mid);
            if frag {
                kinds.push((44, 0));
            }
            let first = kinds.first().map_or(upper, |k| k.0);
            let mut bytes = Vec::new();
            for (i, &(kind, units)) in kinds.iter().enumerate() {
                let next = kinds.get(i + 1).map_or(upper, |k| k.0);
                match kind {
                    44 => bytes.extend_from_slice(&[next, 0, 0, 0, 1, 2, 3, 4]),
                    51 => {
                        // AH: length in 4-byte units minus 2; keep 8-byte multiples.
                        let len = 12 + 8 * usize::from(units);
                        bytes.push(next);
                        bytes.push((len / 4 - 2) as u8);
                        bytes.extend(std::iter::repeat_n(0xaa, len - 2));
                    }
                    _ => {
                        let len = 8 * (usize::from(units) + 1);
                        bytes.push(next);
                        bytes.push(units);
                        bytes.extend(std::iter::repeat_n(0x55, len - 2));
                    }
                }
            }
            bytes.extend(tail);
            (first, bytes)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 16 } else { 2000 }))]

    #[test]
    fn getters_agree_with_etherparse(mut b in prop::collection::vec(any::<u8>(), 40..64)) {
        b[0] = (b[0] & 0x0f) | 0x60;
        let ours = Ipv6View::new(&b[..]).unwrap();
        let ep = Ipv6HeaderSlice::from_slice(&b).unwrap();
        prop_assert_eq!(ours.version(), ep.version());
        prop_assert_eq!((ours.dscp() << 2) | ours.ecn(), ep.traffic_class());
        prop_assert_eq!(ours.flow_label(), ep.flow_label().value());
        prop_assert_eq!(ours.payload_len(), ep.payload_length());
        prop_assert_eq!(ours.next_header().raw(), ep.next_header().0);
        prop_assert_eq!(ours.hop_limit(), ep.hop_limit());
        prop_assert_eq!(ours.src(), ep.source_addr());
        prop_assert_eq!(ours.dst(), ep.destination_addr());
        prop_assert_eq!(ours.payload(), &b[40..]);
    }

    #[test]
    fn setters_agree_with_etherparse(
        mut b in prop::collection::vec(any::<u8>(), 40..41),
        v8 in any::<u8>(), v16 in any::<u16>(), v20 in 0u32..(1 << 20), a in any::<[u8; 16]>(),
    ) {
        b[0] = (b[0] & 0x0f) | 0x60;
        let before = Ipv6HeaderSlice::from_slice(&b).unwrap().to_header();
        let check = |f: &dyn Fn(&mut Ipv6View<&mut [u8]>), expect: &dyn Fn(&mut etherparse::Ipv6Header)| {
            let mut c = b.clone();
            f(&mut Ipv6View::new(&mut c[..]).unwrap());
            let mut want = before.clone();
            expect(&mut want);
            assert_eq!(Ipv6HeaderSlice::from_slice(&c).unwrap().to_header(), want);
        };
        check(&|v| v.set_dscp(v8 >> 2), &|h| h.traffic_class = (h.traffic_class & 0b11) | (v8 & !0b11));
        check(&|v| v.set_ecn(v8 & 0b11), &|h| h.traffic_class = (h.traffic_class & !0b11) | (v8 & 0b11));
        check(&|v| v.set_flow_label(v20), &|h| h.flow_label = etherparse::Ipv6FlowLabel::try_new(v20).unwrap());
        check(&|v| v.set_payload_len(v16), &|h| h.payload_length = v16);
        check(&|v| v.set_next_header(IpProtocol::from(v8)), &|h| h.next_header = IpNumber(v8));
        check(&|v| v.set_hop_limit(v8), &|h| h.hop_limit = v8);
        check(&|v| v.set_src(Ipv6Addr::from(a)), &|h| h.source = a);
        check(&|v| v.set_dst(Ipv6Addr::from(a)), &|h| h.destination = a);
    }

    /// The extension-header walk finds the same upper layer at the same
    /// offset as etherparse.
    #[test]
    fn walk_agrees_with_etherparse((first, bytes) in ext_chain()) {
        let ours = upper_layer(IpProtocol::from(first), &bytes).unwrap();
        let (exts, next, rest) = Ipv6ExtensionsSlice::from_slice(IpNumber(first), &bytes).unwrap();
        prop_assert_eq!(ours.protocol.raw(), next.0);
        prop_assert_eq!(ours.offset, exts.slice().len());
        prop_assert_eq!(ours.payload, rest);
        prop_assert_eq!(ours.fragment.is_some_and(|f| f.more_fragments || f.offset_bytes != 0), exts.is_fragmenting_payload());
    }

    /// On arbitrary bytes, whenever both succeed they agree; tpa never reads
    /// out of bounds or loops.
    #[test]
    fn walk_on_random_bytes(first in any::<u8>(), bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        let ours = upper_layer(IpProtocol::from(first), &bytes);
        if let Ok(u) = ours {
            prop_assert_eq!(u.offset + u.payload.len(), bytes.len());
            if let Ok((exts, next, _)) = Ipv6ExtensionsSlice::from_slice(IpNumber(first), &bytes) {
                prop_assert_eq!(u.protocol.raw(), next.0);
                prop_assert_eq!(u.offset, exts.slice().len());
            }
        }
    }

    /// ICMPv6 fields and checksum agree with etherparse.
    #[test]
    fn icmpv6_agrees_with_etherparse(
        b in prop::collection::vec(any::<u8>(), 8..64),
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
    ) {
        let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
        let ours = Icmpv6View::new(&b[..]).unwrap();
        let ep = etherparse::Icmpv6Slice::from_slice(&b).unwrap();
        prop_assert_eq!(ours.msg_type().raw(), ep.type_u8());
        prop_assert_eq!(ours.code(), ep.code_u8());
        prop_assert_eq!(ours.checksum(), ep.checksum());
        prop_assert_eq!(ours.rest(), ep.bytes5to8());
        prop_assert_eq!(ours.checksum_ok_v6(&s, &d), ep.is_checksum_valid(src, dst));
        let mut c = b.clone();
        Icmpv6View::new(&mut c[..]).unwrap().fill_checksum_v6(&s, &d);
        prop_assert!(etherparse::Icmpv6Slice::from_slice(&c).unwrap().is_checksum_valid(src, dst));
    }

    /// The neighbor advertisement accessors agree with the packed_struct
    /// declaration.
    #[test]
    fn neighbor_advertisement_agrees_with_packed_struct(b in prop::collection::vec(any::<u8>(), 24..40), flags in any::<u8>()) {
        let oracle = NaOracle::unpack_from_slice(&b[..24]).unwrap();
        let v = NeighborAdvertisementView::new(&b[..]).unwrap();
        prop_assert_eq!(v.msg_type().raw(), oracle.msg_type);
        prop_assert_eq!(v.code(), oracle.code);
        prop_assert_eq!(v.checksum(), oracle.checksum);
        prop_assert_eq!((v.router(), v.solicited(), v.override_entry()), (oracle.router, oracle.solicited, oracle.override_entry));
        prop_assert_eq!(v.reserved(), u32::from(oracle.reserved));
        prop_assert_eq!(v.target().octets(), oracle.target);
        // Setters land where packed_struct reads them.
        let mut c = b.clone();
        let mut w = NeighborAdvertisementView::new(&mut c[..]).unwrap();
        w.set_router(flags & 1 != 0);
        w.set_solicited(flags & 2 != 0);
        w.set_override_entry(flags & 4 != 0);
        let o2 = NaOracle::unpack_from_slice(&c[..24]).unwrap();
        prop_assert_eq!((o2.router, o2.solicited, o2.override_entry), (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0));
        prop_assert_eq!(o2.reserved, oracle.reserved);
        prop_assert_eq!(&c[24..], &b[24..]);
    }

    #[test]
    fn no_panic_on_random_bytes(b in prop::collection::vec(any::<u8>(), 0..96)) {
        if let Ok(v) = Ipv6View::new(&b[..]) {
            let _ = (v.to_header(), v.upper_layer(), v.datagram_payload());
        }
        prop_assert!(NdpOptions::new(&b).count() <= b.len());
        let _ = NeighborSolicitationView::new(&b[..]).map(|v| (v.to_header(), NdpOptions::new(v.payload()).count()));
        let _ = NeighborAdvertisementView::new(&b[..]).map(|v| v.to_header());
        let _ = Icmpv6View::new(&b[..]).map(|v| v.checksum_ok_v6(&Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST));
    }
}
