//! IPv6, the extension-header walk, ICMPv6 and NDP options over arbitrary
//! bytes: nothing panics, the walk stays in bounds and terminates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tpa::wire::icmpv6::{
    Icmpv6Type, Icmpv6View, NdpOptions, NeighborAdvertisement, NeighborAdvertisementView,
    NeighborSolicitation, NeighborSolicitationView,
};
use tpa::wire::ipv4::IpProtocol;
use tpa::wire::ipv6::{upper_layer, Ipv6View};

fuzz_target!(|data: &[u8]| {
    // The walk on its own, from any first next-header value.
    if let Some((&first, rest)) = data.split_first() {
        if let Ok(u) = upper_layer(IpProtocol::from(first), rest) {
            assert_eq!(u.offset + u.payload.len(), rest.len());
        }
    }
    let Ok(ip) = Ipv6View::new(data) else {
        return;
    };
    let _ = ip.to_header();
    let Ok(upper) = ip.upper_layer() else {
        return;
    };
    if upper.protocol != IpProtocol::Icmpv6 {
        return;
    }
    let Ok(icmp) = Icmpv6View::new(upper.payload) else {
        return;
    };
    let (src, dst) = (ip.src(), ip.dst());
    let _ = icmp.checksum_ok_v6(&src, &dst);
    let opts = match icmp.msg_type() {
        Icmpv6Type::NeighborSolicitation => NeighborSolicitationView::new(upper.payload)
            .ok()
            .map(|v| v.to_header())
            .and_then(|_| upper.payload.get(NeighborSolicitation::LEN..)),
        Icmpv6Type::NeighborAdvertisement => NeighborAdvertisementView::new(upper.payload)
            .ok()
            .map(|v| v.to_header())
            .and_then(|_| upper.payload.get(NeighborAdvertisement::LEN..)),
        _ => None,
    };
    if let Some(opts) = opts {
        let mut n = 0;
        for o in NdpOptions::new(opts) {
            n += 1;
            assert!(n <= opts.len());
            if o.is_err() {
                break;
            }
        }
    }
    let mut copy = upper.payload.to_vec();
    let mut w = Icmpv6View::new(&mut copy[..]).expect("same bytes");
    w.fill_checksum_v6(&src, &dst);
    assert!(w.checksum_ok_v6(&src, &dst));
});
