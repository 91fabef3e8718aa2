//! IPv4 (with options) and ICMPv4 over arbitrary bytes: views never panic,
//! header lengths stay in bounds, checksums are self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpa::wire::icmpv4::{
    Icmpv4DestUnreachableView, Icmpv4EchoView, Icmpv4TimeExceededView, Icmpv4Type, Icmpv4View,
};
use tpa::wire::ipv4::{IpProtocol, Ipv4View};

fuzz_target!(|data: &[u8]| {
    let Ok(ip) = Ipv4View::new(data) else {
        return;
    };
    assert!(ip.header_len() >= 20 && ip.header_len() <= data.len());
    assert_eq!(ip.options().len(), ip.header_len() - 20);
    let _ = (ip.is_fragment(), ip.frag_offset_bytes(), ip.checksum_ok());
    assert!(ip.options_iter().count() <= ip.options().len());
    let h = ip.to_header();
    assert_eq!(usize::from(h.ihl) * 4, ip.header_len());

    // Filling the checksum makes it verify.
    let mut copy = data.to_vec();
    let mut w = Ipv4View::new(&mut copy[..]).expect("same bytes");
    w.fill_checksum();
    assert!(w.checksum_ok());

    let payload = ip.datagram_payload().unwrap_or(ip.payload());
    if ip.protocol() == IpProtocol::Icmp {
        if let Ok(icmp) = Icmpv4View::new(payload) {
            let _ = icmp.checksum_ok();
            match icmp.msg_type() {
                Icmpv4Type::EchoRequest | Icmpv4Type::EchoReply => {
                    let e = Icmpv4EchoView::new(payload).expect("8 bytes");
                    let _ = (e.ident(), e.seq(), e.payload().len());
                }
                Icmpv4Type::DestUnreachable => {
                    let d = Icmpv4DestUnreachableView::new(payload).expect("8 bytes");
                    let _ = (d.code(), d.next_hop_mtu());
                    // The quoted datagram is itself parsed without panics.
                    if let Ok(inner) = Ipv4View::new(d.payload()) {
                        let _ = inner.to_header();
                    }
                }
                Icmpv4Type::TimeExceeded => {
                    let t = Icmpv4TimeExceededView::new(payload).expect("8 bytes");
                    let _ = t.code();
                }
                _ => {}
            }
            let mut copy = payload.to_vec();
            let mut w = Icmpv4View::new(&mut copy[..]).expect("same bytes");
            w.fill_checksum();
            assert!(w.checksum_ok());
        }
    }
});
