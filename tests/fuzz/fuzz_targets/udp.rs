//! UDP over arbitrary bytes: the view never panics, its owned copy emits the
//! same bytes, and filled checksums verify.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use tpa::wire::udp::{Udp, UdpView};

fuzz_target!(|data: &[u8]| {
    let Ok(udp) = UdpView::new(data) else {
        return;
    };
    let _ = udp.datagram_payload();
    let h = udp.to_header();
    let mut out = [0u8; Udp::LEN];
    h.emit(&mut out).expect("fits");
    assert_eq!(&out[..], &data[..Udp::LEN]);
    let mut copy = data.to_vec();
    let mut w = UdpView::new(&mut copy[..]).expect("same bytes");
    let (s4, d4) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
    w.fill_checksum_v4(s4, d4);
    assert!(w.checksum_ok_v4(s4, d4));
    let (s6, d6) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
    w.fill_checksum_v6(&s6, &d6);
    assert!(w.checksum_ok_v6(&s6, &d6));
});
