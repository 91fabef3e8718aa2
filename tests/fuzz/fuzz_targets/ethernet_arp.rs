//! Ethernet, VLAN tags and ARP over arbitrary bytes: views never panic, and
//! what a view reads survives a round trip through the owned type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpa::wire::arp::{Arp, ArpView};
use tpa::wire::ethernet::{EtherType, Ethernet, EthernetView, VlanTag, VlanTagView};

fuzz_target!(|data: &[u8]| {
    let Ok(eth) = EthernetView::new(data) else {
        return;
    };
    let owned = eth.to_header();
    let mut out = [0u8; Ethernet::LEN];
    owned.emit(&mut out).expect("fits");
    assert_eq!(&out[..], &data[..Ethernet::LEN]);
    let mut ty = eth.ether_type();
    let mut rest = eth.payload();
    while ty == EtherType::Vlan || ty == EtherType::QinQ {
        let Ok(tag) = VlanTagView::new(rest) else {
            return;
        };
        let t = tag.to_header();
        let mut out = [0u8; VlanTag::LEN];
        t.emit(&mut out).expect("fits");
        assert_eq!(&out[..], &rest[..VlanTag::LEN]);
        ty = tag.ether_type();
        rest = &rest[tag.header_len()..];
    }
    if ty == EtherType::Arp {
        if let Ok(arp) = ArpView::new(rest) {
            let _ = arp.is_ethernet_ipv4();
            let a = arp.to_header();
            let mut out = [0u8; Arp::LEN];
            a.emit(&mut out).expect("fits");
            assert_eq!(&out[..], &rest[..Arp::LEN]);
            assert_eq!(Arp::parse(rest).ok(), Some(a));
        }
    }
});
