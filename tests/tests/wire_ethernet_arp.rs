//! Ethernet II, 802.1Q tags and ARP: round trips, etherparse as the oracle
//! for Ethernet and VLAN, packed_struct for ARP (which etherparse did not
//! parse when these tests were written), real frames, no panics.

use std::net::Ipv4Addr;

use etherparse::{Ethernet2HeaderSlice, SingleVlanHeaderSlice};
use packed_struct::prelude::*;
use proptest::prelude::*;
use tpa::wire::arp::{Arp, ArpOperation, ArpView, HARDWARE_ETHERNET};
use tpa::wire::ethernet::{EtherType, Ethernet, EthernetView, VlanTag, VlanTagView};
use tpa::wire::MacAddr;
use tpa_tests::fixtures::{ARP_REPLY, ARP_REQUEST, UDP4_VLAN};

/// ARP for Ethernet/IPv4, declared independently.
#[derive(PackedStruct, Debug, PartialEq)]
#[packed_struct(bit_numbering = "msb0", endian = "msb", size_bytes = "28")]
struct ArpOracle {
    #[packed_field(bytes = "0..=1")]
    htype: u16,
    #[packed_field(bytes = "2..=3")]
    ptype: u16,
    #[packed_field(bytes = "4")]
    hlen: u8,
    #[packed_field(bytes = "5")]
    plen: u8,
    #[packed_field(bytes = "6..=7")]
    op: u16,
    #[packed_field(bytes = "8..=13")]
    sha: [u8; 6],
    #[packed_field(bytes = "14..=17")]
    spa: [u8; 4],
    #[packed_field(bytes = "18..=23")]
    tha: [u8; 6],
    #[packed_field(bytes = "24..=27")]
    tpa: [u8; 4],
}

#[test]
fn real_arp_request_and_reply() {
    let req = ARP_REQUEST.to_vec();
    let eth = EthernetView::new(&req[..]).unwrap();
    assert!(eth.dst().is_broadcast());
    assert_eq!(eth.ether_type(), EtherType::Arp);
    let arp = ArpView::new(eth.payload()).unwrap();
    assert!(arp.is_ethernet_ipv4());
    assert_eq!(arp.operation(), ArpOperation::Request);
    assert_eq!(arp.sender_ip(), Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(arp.target_ip(), Ipv4Addr::new(10, 0, 0, 2));

    // Answering it with the owned type gives scapy's reply byte for byte.
    let reply = Arp::reply_to(&arp.to_header(), MacAddr([2, 0, 0, 0, 0, 2]));
    let want = ARP_REPLY.to_vec();
    let mut out = [0u8; 42];
    Ethernet {
        dst: arp.sender_mac(),
        src: MacAddr([2, 0, 0, 0, 0, 2]),
        ether_type: EtherType::Arp,
    }
    .emit(&mut out)
    .unwrap();
    reply.emit(&mut out[14..]).unwrap();
    assert_eq!(&out[..], &want[..]);
    let request = Arp::request(
        MacAddr([2, 0, 0, 0, 0, 1]),
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
    );
    assert_eq!(request, arp.to_header());
}

#[test]
fn real_vlan_tag() {
    let f = UDP4_VLAN.to_vec();
    let eth = EthernetView::new(&f[..]).unwrap();
    assert_eq!(eth.ether_type(), EtherType::Vlan);
    let tag = VlanTagView::new(eth.payload()).unwrap();
    assert_eq!((tag.pcp(), tag.dei(), tag.vid()), (5, true, 100));
    assert_eq!(tag.ether_type(), EtherType::Ipv4);
    let t = VlanTag {
        pcp: 5,
        dei: true,
        vid: 100,
        ether_type: EtherType::Ipv4,
    };
    let mut b = [0u8; 4];
    t.emit(&mut b).unwrap();
    assert_eq!(&b[..], &f[14..18]);
}

#[test]
fn unknown_ether_types_survive() {
    let e = Ethernet {
        dst: MacAddr::ZERO,
        src: MacAddr::BROADCAST,
        ether_type: EtherType::from(0x88cc),
    };
    let mut b = [0u8; 14];
    e.emit(&mut b).unwrap();
    assert_eq!(&b[12..], &[0x88, 0xcc]);
    assert_eq!(
        Ethernet::parse(&b).unwrap().ether_type,
        EtherType::Unknown(0x88cc)
    );
    assert!(EthernetView::new(&b[..13]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 16 } else { 2000 }))]

    #[test]
    fn ethernet_agrees_with_etherparse(b in prop::collection::vec(any::<u8>(), 14..40), m in any::<[u8; 6]>(), t in any::<u16>()) {
        let ours = EthernetView::new(&b[..]).unwrap();
        let ep = Ethernet2HeaderSlice::from_slice(&b).unwrap();
        prop_assert_eq!(ours.dst().octets(), ep.destination());
        prop_assert_eq!(ours.src().octets(), ep.source());
        prop_assert_eq!(ours.ether_type().raw(), ep.ether_type().0);
        prop_assert_eq!(ours.payload(), &b[14..]);
        let mut c = b.clone();
        let mut v = EthernetView::new(&mut c[..]).unwrap();
        v.set_dst(MacAddr(m));
        v.set_src(MacAddr(m));
        v.set_ether_type(EtherType::from(t));
        let after = Ethernet2HeaderSlice::from_slice(&c).unwrap().to_header();
        prop_assert_eq!(after, etherparse::Ethernet2Header { destination: m, source: m, ether_type: etherparse::EtherType(t), });
        prop_assert_eq!(&c[14..], &b[14..]);
    }

    #[test]
    fn vlan_agrees_with_etherparse(b in prop::collection::vec(any::<u8>(), 4..12), pcp in 0u8..8, dei in any::<bool>(), vid in 0u16..4096) {
        let ours = VlanTagView::new(&b[..]).unwrap();
        let ep = SingleVlanHeaderSlice::from_slice(&b).unwrap();
        prop_assert_eq!(ours.pcp(), ep.priority_code_point().value());
        prop_assert_eq!(ours.dei(), ep.drop_eligible_indicator());
        prop_assert_eq!(ours.vid(), ep.vlan_identifier().value());
        prop_assert_eq!(ours.ether_type().raw(), ep.ether_type().0);
        let mut c = b.clone();
        let mut v = VlanTagView::new(&mut c[..]).unwrap();
        v.set_pcp(pcp);
        v.set_dei(dei);
        v.set_vid(vid);
        let ep = SingleVlanHeaderSlice::from_slice(&c).unwrap();
        prop_assert_eq!((ep.priority_code_point().value(), ep.drop_eligible_indicator(), ep.vlan_identifier().value()), (pcp, dei, vid));
        prop_assert_eq!(&c[2..], &b[2..]);
    }

    #[test]
    fn arp_agrees_with_packed_struct(b in prop::collection::vec(any::<u8>(), 28..40), op in any::<u16>(), ip in any::<[u8; 4]>(), mac in any::<[u8; 6]>()) {
        let o = ArpOracle::unpack_from_slice(&b[..28]).unwrap();
        let v = ArpView::new(&b[..]).unwrap();
        prop_assert_eq!(v.hardware_type(), o.htype);
        prop_assert_eq!(v.protocol_type().raw(), o.ptype);
        prop_assert_eq!((v.hardware_addr_len(), v.protocol_addr_len()), (o.hlen, o.plen));
        prop_assert_eq!(v.operation().raw(), o.op);
        prop_assert_eq!(v.sender_mac().octets(), o.sha);
        prop_assert_eq!(v.sender_ip().octets(), o.spa);
        prop_assert_eq!(v.target_mac().octets(), o.tha);
        prop_assert_eq!(v.target_ip().octets(), o.tpa);
        prop_assert_eq!(v.is_ethernet_ipv4(), o.htype == HARDWARE_ETHERNET && o.ptype == 0x0800 && o.hlen == 6 && o.plen == 4);
        let mut c = b.clone();
        let mut w = ArpView::new(&mut c[..]).unwrap();
        w.set_operation(ArpOperation::from(op));
        w.set_sender_ip(ip.into());
        w.set_target_mac(MacAddr(mac));
        let o2 = ArpOracle::unpack_from_slice(&c[..28]).unwrap();
        prop_assert_eq!(o2, ArpOracle { op, spa: ip, tha: mac, ..o });
    }

    #[test]
    fn no_panic_on_random_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(e) = EthernetView::new(&b[..]) {
            let _ = e.to_header();
            let _ = VlanTagView::new(e.payload()).map(|t| t.to_header());
            let _ = ArpView::new(e.payload()).map(|a| (a.to_header(), a.is_ethernet_ipv4()));
        }
    }
}
