//! UDP: round trips, etherparse as the oracle for accessors, setters and
//! checksums (IPv4 and IPv6), real packets, no panics.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::UdpHeaderSlice;
use proptest::prelude::*;
use tpa::wire::ipv4::Ipv4View;
use tpa::wire::ipv6::Ipv6View;
use tpa::wire::udp::{Udp, UdpView};
use tpa_tests::fixtures::{UDP4_VLAN, UDP6};

#[test]
fn real_ipv6_datagram() {
    let f = UDP6.to_vec();
    let ip = Ipv6View::new(&f[14..]).unwrap();
    let udp = UdpView::new(ip.datagram_payload().unwrap()).unwrap();
    assert_eq!(
        (udp.src_port(), udp.dst_port(), udp.total_len()),
        (5353, 5353, 21)
    );
    assert!(udp.checksum_ok_v6(&ip.src(), &ip.dst()));
    assert!(!udp.checksum_ok_v6(&ip.dst(), &Ipv6Addr::LOCALHOST));
    assert_eq!(udp.datagram_payload(), Some(&b"hello udp six"[..]));
}

#[test]
fn real_ipv4_datagram_with_odd_payload() {
    let f = UDP4_VLAN.to_vec();
    let ip = Ipv4View::new(&f[18..]).unwrap();
    let seg = ip.datagram_payload().unwrap();
    let udp = UdpView::new(seg).unwrap();
    assert!(udp.checksum_ok_v4(ip.src(), ip.dst()));
    let mut copy = seg.to_vec();
    let mut v = UdpView::new(&mut copy[..]).unwrap();
    v.set_checksum(0);
    // A zero checksum means "none" over IPv4.
    assert!(v.checksum_ok_v4(ip.src(), ip.dst()));
    v.fill_checksum_v4(ip.src(), ip.dst());
    assert_eq!(copy, seg);
}

#[test]
fn emit_round_trip_and_length() {
    let h = Udp {
        src_port: 9,
        dst_port: 7,
        total_len: 8,
        checksum: 0,
    };
    let mut b = [0u8; 8];
    assert_eq!(h.emit(&mut b), Ok(8));
    assert_eq!(Udp::parse(&b), Ok(h));
    assert_eq!(
        UdpView::new(&b[..]).unwrap().datagram_payload(),
        Some(&[][..])
    );
    let bad = Udp { total_len: 7, ..h };
    bad.emit(&mut b).unwrap();
    assert_eq!(UdpView::new(&b[..]).unwrap().datagram_payload(), None);
    assert!(UdpView::new(&b[..7]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 16 } else { 2000 }))]

    #[test]
    fn getters_and_checksums_agree_with_etherparse(
        mut b in prop::collection::vec(any::<u8>(), 8..64),
        s4 in any::<[u8; 4]>(), d4 in any::<[u8; 4]>(),
        s6 in any::<[u8; 16]>(), d6 in any::<[u8; 16]>(),
    ) {
        // etherparse sums `total_len` bytes; tpa sums the buffer it is given:
        // the same datagram when `total_len` is right.
        let len = b.len() as u16;
        b[4..6].copy_from_slice(&len.to_be_bytes());
        let ours = UdpView::new(&b[..]).unwrap();
        let ep = UdpHeaderSlice::from_slice(&b).unwrap();
        prop_assert_eq!(ours.src_port(), ep.source_port());
        prop_assert_eq!(ours.dst_port(), ep.destination_port());
        prop_assert_eq!(ours.total_len(), ep.length());
        prop_assert_eq!(ours.checksum(), ep.checksum());
        prop_assert_eq!(ours.payload(), &b[8..]);
        // Checksums over the whole buffer, as etherparse computes them.
        let h = ep.to_header();
        let want4 = h.calc_checksum_ipv4_raw(s4, d4, &b[8..]).unwrap();
        prop_assert_eq!(ours.compute_checksum_v4(s4.into(), d4.into()), want4);
        let want6 = h.calc_checksum_ipv6_raw(s6, d6, &b[8..]).unwrap();
        prop_assert_eq!(ours.compute_checksum_v6(&s6.into(), &d6.into()), want6);
        let mut c = b.clone();
        let mut v = UdpView::new(&mut c[..]).unwrap();
        v.fill_checksum_v4(Ipv4Addr::from(s4), Ipv4Addr::from(d4));
        prop_assert_eq!(v.checksum(), want4);
        prop_assert!(v.checksum_ok_v4(s4.into(), d4.into()));
    }

    #[test]
    fn setters_agree_with_etherparse(b in prop::collection::vec(any::<u8>(), 8..9), v in any::<u16>()) {
        let before = UdpHeaderSlice::from_slice(&b).unwrap().to_header();
        let check = |f: &dyn Fn(&mut UdpView<&mut [u8]>), expect: &dyn Fn(&mut etherparse::UdpHeader)| {
            let mut c = b.clone();
            f(&mut UdpView::new(&mut c[..]).unwrap());
            let mut want = before.clone();
            expect(&mut want);
            assert_eq!(UdpHeaderSlice::from_slice(&c).unwrap().to_header(), want);
        };
        check(&|u| u.set_src_port(v), &|h| h.source_port = v);
        check(&|u| u.set_dst_port(v), &|h| h.destination_port = v);
        check(&|u| u.set_total_len(v), &|h| h.length = v);
        check(&|u| u.set_checksum(v), &|h| h.checksum = v);
    }

    #[test]
    fn no_panic_on_random_bytes(b in prop::collection::vec(any::<u8>(), 0..32)) {
        if let Ok(v) = UdpView::new(&b[..]) {
            let _ = (v.to_header(), v.datagram_payload(), v.checksum_ok_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST));
        }
    }
}
