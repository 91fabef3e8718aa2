//! `#[header]` on an IPv4-shaped test header: layout, accessors, dynamic
//! length, checksum, owned round trip.

use std::net::Ipv4Addr;

use tpa::header;
use tpa::header::HeaderError;

tpa::field_enum! {
    /// IP protocol numbers (test copy).
    pub enum Proto: u8 {
        Icmp = 1,
        Tcp = 6,
        Udp = 17,
    }
}

/// IPv4-shaped header.
#[header(length = ihl * 4)]
pub struct Ip4 {
    pub version: u4,
    pub ihl: u4,
    pub dscp: u6,
    pub ecn: u2,
    pub total_len: u16,
    pub ident: u16,
    pub flags: u3,
    pub frag_offset: u13,
    pub ttl: u8,
    #[field(u8)]
    pub protocol: Proto,
    #[checksum]
    pub checksum: u16,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

const PACKET: [u8; 20] = [
    0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01,
    0xc0, 0xa8, 0x00, 0xc7,
];

#[test]
fn reads_a_real_header() {
    let v = Ip4View::new(&PACKET[..]).unwrap();
    assert_eq!(Ip4::LEN, 20);
    assert_eq!(v.version(), 4);
    assert_eq!(v.ihl(), 5);
    assert_eq!(v.total_len(), 0x73);
    assert_eq!(v.flags(), 0b010);
    assert_eq!(v.frag_offset(), 0);
    assert_eq!(v.ttl(), 64);
    assert_eq!(v.protocol(), Proto::Udp);
    assert_eq!(v.checksum(), 0xb861);
    assert_eq!(v.src(), Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(v.dst(), Ipv4Addr::new(192, 168, 0, 199));
    assert!(v.checksum_ok());
    assert_eq!(v.header_len(), 20);
    assert!(v.options().is_empty());
    assert!(v.payload().is_empty());
}

#[test]
fn emit_round_trip() {
    let h = Ip4View::new(&PACKET[..]).unwrap().to_header();
    let mut buf = [0u8; 20];
    assert_eq!(h.emit(&mut buf), Ok(20));
    assert_eq!(buf, PACKET);
    assert_eq!(Ip4::parse(&buf), Ok(h));
}

#[test]
fn errors() {
    assert_eq!(
        Ip4View::new(&PACKET[..10]).unwrap_err(),
        HeaderError::Truncated {
            header: "Ip4",
            needed: 20,
            available: 10
        }
    );
    let mut p = PACKET;
    p[0] = 0x44;
    assert_eq!(
        Ip4View::new(&p[..]).unwrap_err(),
        HeaderError::BadLength {
            header: "Ip4",
            declared: 16,
            min: 20
        }
    );
    p[0] = 0x46;
    assert_eq!(
        Ip4View::new(&p[..]).unwrap_err(),
        HeaderError::Truncated {
            header: "Ip4",
            needed: 24,
            available: 20
        }
    );
}

#[test]
fn default_is_the_all_zero_header() {
    let zero = Ip4::default();
    assert_eq!(
        (zero.version, zero.ihl, zero.total_len, zero.checksum),
        (0, 0, 0, 0)
    );
    assert_eq!(zero.protocol, Proto::Unknown(0));
    assert_eq!(zero.src, Ipv4Addr::UNSPECIFIED);
    // An IHL of 0 declares a length below the fixed part.
    assert_eq!(
        zero.emit(&mut [0u8; 20]),
        Err(HeaderError::BadLength {
            header: "Ip4",
            declared: 0,
            min: 20
        })
    );
    let h = Ip4 {
        version: 4,
        ihl: 5,
        ttl: 64,
        ..Default::default()
    };
    let mut buf = [0xffu8; 20];
    assert_eq!(h.emit(&mut buf), Ok(20));
    assert_eq!(buf[0], 0x45);
    assert_eq!(buf[8], 64);
    assert!(Ip4View::new(&buf[..]).unwrap().checksum_ok());
}

mod against_etherparse {
    //! The generated accessors agree with an independent parser on random
    //! headers with options.
    use super::*;
    use proptest::prelude::*;

    fn header() -> impl Strategy<Value = (Ip4, Vec<u8>)> {
        (
            (
                0u8..64,
                0u8..4,
                any::<u16>(),
                any::<u16>(),
                // DF and MF; etherparse has no field for the reserved bit.
                0u8..4,
                0u16..1 << 13,
            ),
            (any::<u8>(), any::<u8>(), any::<[u8; 4]>(), any::<[u8; 4]>()),
            (0usize..=10).prop_flat_map(|words| proptest::collection::vec(any::<u8>(), words * 4)),
        )
            .prop_map(
                |(
                    (dscp, ecn, total_len, ident, flags, frag_offset),
                    (ttl, proto, src, dst),
                    options,
                )| {
                    let ip = Ip4 {
                        version: 4,
                        ihl: 5 + (options.len() / 4) as u8,
                        dscp,
                        ecn,
                        total_len,
                        ident,
                        flags,
                        frag_offset,
                        ttl,
                        protocol: Proto::from(proto),
                        checksum: 0,
                        src: Ipv4Addr::from(src),
                        dst: Ipv4Addr::from(dst),
                    };
                    (ip, options)
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            // Miri runs each case thousands of times slower.
            cases: if cfg!(miri) { 16 } else { ProptestConfig::default().cases },
            ..ProptestConfig::default()
        })]

        #[test]
        fn emitted_headers_parse_the_same(
            (ip, options) in header(),
            payload in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut buf = vec![0u8; Ip4::LEN];
            buf.extend_from_slice(&options);
            buf.extend_from_slice(&payload);
            buf[Ip4::LEN..Ip4::LEN + options.len()].copy_from_slice(&options);
            prop_assert_eq!(ip.emit(&mut buf), Ok(20 + options.len()));

            let (theirs, rest) = etherparse::Ipv4Header::from_slice(&buf).unwrap();
            let ours = Ip4View::new(&buf[..]).unwrap();
            prop_assert_eq!(ours.dscp(), theirs.dscp.value());
            prop_assert_eq!(ours.ecn(), theirs.ecn.value());
            prop_assert_eq!(ours.total_len(), theirs.total_len);
            prop_assert_eq!(ours.ident(), theirs.identification);
            prop_assert_eq!(ours.flags() & 0b010 != 0, theirs.dont_fragment);
            prop_assert_eq!(ours.flags() & 0b001 != 0, theirs.more_fragments);
            prop_assert_eq!(ours.frag_offset(), theirs.fragment_offset.value());
            prop_assert_eq!(ours.ttl(), theirs.time_to_live);
            prop_assert_eq!(u8::from(ours.protocol()), theirs.protocol.0);
            prop_assert_eq!(ours.checksum(), theirs.header_checksum);
            prop_assert_eq!(ours.checksum(), theirs.calc_header_checksum());
            prop_assert!(ours.checksum_ok());
            prop_assert_eq!(ours.src().octets(), theirs.source);
            prop_assert_eq!(ours.dst().octets(), theirs.destination);
            prop_assert_eq!(ours.options(), theirs.options.as_slice());
            prop_assert_eq!(ours.payload(), rest);
            prop_assert_eq!(ours.to_header(), Ip4 { checksum: theirs.header_checksum, ..ip });
        }
    }
}
