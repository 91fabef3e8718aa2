//! Every header tpa declares, on random bytes and on real frames: the owned
//! copy a view makes emits exactly the bytes it was read from (so every
//! getter and the emitter agree bit for bit), `parse` equals `to_header`,
//! and emitting into a buffer one byte too short is an error, not a panic.

use packed_struct::prelude::*;
use proptest::prelude::*;
use tpa::wire::arp::{Arp, ArpView};
use tpa::wire::ethernet::{Ethernet, EthernetView, VlanTag, VlanTagView};
use tpa::wire::icmpv4::{
    Icmpv4, Icmpv4DestUnreachable, Icmpv4DestUnreachableView, Icmpv4Echo, Icmpv4EchoView,
    Icmpv4TimeExceeded, Icmpv4TimeExceededView, Icmpv4View,
};
use tpa::wire::icmpv6::{
    Icmpv6, Icmpv6Echo, Icmpv6EchoView, Icmpv6View, NeighborAdvertisement,
    NeighborAdvertisementView, NeighborSolicitation, NeighborSolicitationView, RouterSolicitation,
    RouterSolicitationView,
};
use tpa::wire::ipv4::{Ipv4, Ipv4View};
use tpa::wire::ipv6::{
    AuthHeader, AuthHeaderView, Ipv6, Ipv6ExtHeader, Ipv6ExtHeaderView, Ipv6Fragment,
    Ipv6FragmentView, Ipv6View,
};
use tpa::wire::tcp::{Tcp, TcpView};
use tpa::wire::udp::{Udp, UdpView};
use tpa_tests::fixtures::{
    ARP_REQUEST, ICMP4_ECHO, ICMP4_FRAG_NEEDED, ICMP4_TIME_EXCEEDED, ICMP6_ECHO,
    IP6_TCP_EXTENSIONS, NDP_NA, NDP_NS, NDP_RS, TCP4_OPTIONS_SACK, UDP4_VLAN, UDP6,
};

/// The IPv6 fragment header (RFC 8200, 4.5), declared independently.
#[derive(PackedStruct, Debug, PartialEq)]
#[packed_struct(bit_numbering = "msb0", endian = "msb", size_bytes = "8")]
struct FragOracle {
    #[packed_field(bits = "0..=7")]
    next_header: u8,
    #[packed_field(bits = "8..=15")]
    reserved_1: u8,
    #[packed_field(bits = "16..=28")]
    offset: Integer<u16, packed_bits::Bits<13>>,
    #[packed_field(bits = "29..=30")]
    reserved_2: Integer<u8, packed_bits::Bits<2>>,
    #[packed_field(bits = "31")]
    more: bool,
    #[packed_field(bits = "32..=63")]
    ident: u32,
}

/// Checks one header type on `bytes`; `fill` puts the checksum a header's
/// `emit` computes into the reference bytes (a no-op without one).
macro_rules! round_trip {
    ($bytes:expr, $owned:ty, $view:ident, $fill:expr) => {{
        let bytes: &[u8] = $bytes;
        if let Ok(view) = $view::new(bytes) {
            let h: $owned = view.to_header();
            prop_assert_eq!(<$owned>::parse(bytes), Ok(h));
            prop_assert_eq!(h.header_len(), view.header_len());
            let mut want = bytes.to_vec();
            let fill: fn(&mut [u8]) = $fill;
            fill(&mut want);
            let mut got = bytes.to_vec();
            got[..<$owned>::LEN].fill(0);
            prop_assert_eq!(h.emit(&mut got), Ok(view.header_len()));
            prop_assert_eq!(
                &got[..view.header_len()],
                &want[..view.header_len()],
                "{}",
                stringify!($owned)
            );
            let mut short = vec![0u8; view.header_len() - 1];
            prop_assert!(h.emit(&mut short).is_err());
        }
    }};
    ($bytes:expr, $owned:ty, $view:ident) => {
        round_trip!($bytes, $owned, $view, |_| {})
    };
}

/// [`round_trip!`] on bytes that must parse as the header: on random bytes
/// a view that refused everything would pass unnoticed.
macro_rules! round_trip_real {
    ($bytes:expr, $owned:ty, $view:ident $(, $fill:expr)?) => {{
        let bytes: &[u8] = $bytes;
        if let Err(e) = $view::new(bytes) {
            return Err(TestCaseError::fail(format!(
                "{} does not parse: {e:?}",
                stringify!($owned)
            )));
        }
        round_trip!(bytes, $owned, $view $(, $fill)?);
    }};
}

/// The round trip of every header on a real frame holding it (offsets:
/// Ethernet 14, VLAN tag 4, IPv4 20 or more, IPv6 40).
#[test]
fn every_header_round_trips_on_real_frames() -> Result<(), TestCaseError> {
    // RFC 4302: next header TCP, length 1 (12 bytes), SPI 0x100, seq 7.
    let auth = [6u8, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 7, 0xaa, 0xbb];
    round_trip_real!(&ARP_REQUEST, Ethernet, EthernetView);
    round_trip_real!(&UDP4_VLAN[14..], VlanTag, VlanTagView);
    round_trip_real!(&ARP_REQUEST[14..], Arp, ArpView);
    round_trip_real!(&ICMP4_ECHO[14..], Ipv4, Ipv4View, |b| Ipv4View::new(b)
        .unwrap()
        .fill_checksum());
    round_trip_real!(&TCP4_OPTIONS_SACK[14..], Ipv4, Ipv4View, |b| {
        Ipv4View::new(b).unwrap().fill_checksum()
    });
    round_trip_real!(&UDP6[14..], Ipv6, Ipv6View);
    round_trip_real!(&IP6_TCP_EXTENSIONS[54..], Ipv6ExtHeader, Ipv6ExtHeaderView);
    round_trip_real!(&IP6_TCP_EXTENSIONS[70..], Ipv6Fragment, Ipv6FragmentView);
    round_trip_real!(&auth, AuthHeader, AuthHeaderView);
    round_trip_real!(&ICMP4_ECHO[34..], Icmpv4, Icmpv4View, |b| Icmpv4View::new(
        b
    )
    .unwrap()
    .fill_checksum());
    round_trip_real!(&ICMP4_ECHO[34..], Icmpv4Echo, Icmpv4EchoView, |b| {
        Icmpv4EchoView::new(b).unwrap().fill_checksum()
    });
    round_trip_real!(
        &ICMP4_FRAG_NEEDED[34..],
        Icmpv4DestUnreachable,
        Icmpv4DestUnreachableView,
        |b| Icmpv4DestUnreachableView::new(b).unwrap().fill_checksum()
    );
    round_trip_real!(
        &ICMP4_TIME_EXCEEDED[34..],
        Icmpv4TimeExceeded,
        Icmpv4TimeExceededView,
        |b| Icmpv4TimeExceededView::new(b).unwrap().fill_checksum()
    );
    round_trip_real!(&ICMP6_ECHO[54..], Icmpv6, Icmpv6View);
    round_trip_real!(&ICMP6_ECHO[54..], Icmpv6Echo, Icmpv6EchoView);
    round_trip_real!(&NDP_RS[54..], RouterSolicitation, RouterSolicitationView);
    round_trip_real!(
        &NDP_NS[54..],
        NeighborSolicitation,
        NeighborSolicitationView
    );
    round_trip_real!(
        &NDP_NA[54..],
        NeighborAdvertisement,
        NeighborAdvertisementView
    );
    round_trip_real!(&UDP6[54..], Udp, UdpView);
    round_trip_real!(&TCP4_OPTIONS_SACK[42..], Tcp, TcpView);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 16 } else { 3000 }))]

    #[test]
    fn every_header_round_trips(b in prop::collection::vec(any::<u8>(), 0..96)) {
        round_trip!(&b, Ethernet, EthernetView);
        round_trip!(&b, VlanTag, VlanTagView);
        round_trip!(&b, Arp, ArpView);
        round_trip!(&b, Ipv4, Ipv4View, |b| Ipv4View::new(b).unwrap().fill_checksum());
        round_trip!(&b, Ipv6, Ipv6View);
        round_trip!(&b, Ipv6ExtHeader, Ipv6ExtHeaderView);
        round_trip!(&b, Ipv6Fragment, Ipv6FragmentView);
        round_trip!(&b, AuthHeader, AuthHeaderView);
        round_trip!(&b, Icmpv4, Icmpv4View, |b| Icmpv4View::new(b).unwrap().fill_checksum());
        round_trip!(&b, Icmpv4Echo, Icmpv4EchoView, |b| Icmpv4EchoView::new(b).unwrap().fill_checksum());
        round_trip!(&b, Icmpv4DestUnreachable, Icmpv4DestUnreachableView, |b| {
            Icmpv4DestUnreachableView::new(b).unwrap().fill_checksum()
        });
        round_trip!(&b, Icmpv4TimeExceeded, Icmpv4TimeExceededView, |b| {
            Icmpv4TimeExceededView::new(b).unwrap().fill_checksum()
        });
        round_trip!(&b, Icmpv6, Icmpv6View);
        round_trip!(&b, Icmpv6Echo, Icmpv6EchoView);
        round_trip!(&b, RouterSolicitation, RouterSolicitationView);
        round_trip!(&b, NeighborSolicitation, NeighborSolicitationView);
        round_trip!(&b, NeighborAdvertisement, NeighborAdvertisementView);
        round_trip!(&b, Udp, UdpView);
        round_trip!(&b, Tcp, TcpView);
    }

    /// The IPv6 fragment header agrees with a packed_struct declaration of
    /// RFC 8200's layout. (etherparse 0.16 is no oracle here: it reads M from
    /// the top bit of byte 3 and the offset from the wrong bits; 0.21 fixed
    /// both.)
    #[test]
    fn ipv6_fragment_agrees_with_packed_struct(b in prop::collection::vec(any::<u8>(), 8..16), off in 0u16..8192, m in any::<bool>()) {
        let o = FragOracle::unpack_from_slice(&b[..8]).unwrap();
        let ours = Ipv6FragmentView::new(&b[..]).unwrap();
        prop_assert_eq!(ours.next_header().raw(), o.next_header);
        prop_assert_eq!(ours.reserved_1(), o.reserved_1);
        prop_assert_eq!(ours.frag_offset(), u16::from(o.offset));
        prop_assert_eq!(ours.reserved_2(), u8::from(o.reserved_2));
        prop_assert_eq!(ours.more_fragments(), o.more);
        prop_assert_eq!(ours.ident(), o.ident);
        let mut c = b.clone();
        let mut w = Ipv6FragmentView::new(&mut c[..]).unwrap();
        w.set_frag_offset(off);
        w.set_more_fragments(m);
        let o2 = FragOracle::unpack_from_slice(&c[..8]).unwrap();
        prop_assert_eq!(o2, FragOracle { offset: off.into(), more: m, ..o });
    }

    /// The generic extension header and the authentication header agree
    /// with etherparse on their lengths and next headers.
    #[test]
    fn ipv6_ext_and_ah_agree_with_etherparse(b in prop::collection::vec(any::<u8>(), 8..128)) {
        let ours = Ipv6ExtHeaderView::new(&b[..]);
        let ep = etherparse::Ipv6RawExtHeaderSlice::from_slice(&b);
        prop_assert_eq!(ours.is_ok(), ep.is_ok());
        if let (Ok(o), Ok(e)) = (ours, ep) {
            prop_assert_eq!(o.next_header().raw(), e.next_header().0);
            prop_assert_eq!(o.header_len(), e.slice().len());
        }
        let ours = AuthHeaderView::new(&b[..]);
        let ep = etherparse::IpAuthHeaderSlice::from_slice(&b);
        if let Ok(e) = ep {
            let o = ours.unwrap();
            prop_assert_eq!(o.next_header().raw(), e.next_header().0);
            prop_assert_eq!(o.header_len(), e.slice().len());
            prop_assert_eq!(o.spi(), e.spi());
            prop_assert_eq!(o.seq(), e.sequence_number());
        }
    }
}
