//! `#[header]` bit layout: odd widths crossing bytes, a `u33` and a `u64` at
//! odd bit offsets, flags, byte arrays, addresses, a narrow typed field and
//! little-endian fields.
//!
//! The expected layout is written out independently below ([`FIELDS`]) and
//! checked with a plain bit-by-bit reader, so the generated shifts and masks
//! are compared against a second implementation, not against themselves.

use std::net::Ipv6Addr;

use proptest::prelude::*;
use tpa::header;
use tpa::wire::MacAddr;

tpa::field_enum! {
    /// A 7-bit typed field.
    pub enum Kind7: u8 {
        Small = 3,
        Large = 0x7f,
    }
}

/// Every kind of field at awkward offsets.
#[header]
pub struct Odd {
    pub a: u3,
    pub flag: bool,
    pub b: u33,
    pub c: u64,
    pub d: u11,
    pub mac: MacAddr,
    pub e: u1,
    #[field(u7)]
    pub kind: Kind7,
    pub arr: [u8; 3],
    pub f: u24,
    pub g: u5,
    pub h: u19,
    pub addr: Ipv6Addr,
    pub last: u16,
}

/// (name, bit offset, width) of every field of [`Odd`], by hand.
const FIELDS: [(&str, usize, usize); 14] = [
    ("a", 0, 3),
    ("flag", 3, 1),
    ("b", 4, 33),
    ("c", 37, 64),
    ("d", 101, 11),
    ("mac", 112, 48),
    ("e", 160, 1),
    ("kind", 161, 7),
    ("arr", 168, 24),
    ("f", 192, 24),
    ("g", 216, 5),
    ("h", 221, 19),
    ("addr", 240, 128),
    ("last", 368, 16),
];

/// Reads `width` bits at bit `offset`, most significant bit first.
fn bits(buf: &[u8], offset: usize, width: usize) -> u128 {
    (offset..offset + width).fold(0u128, |acc, i| {
        (acc << 1) | u128::from((buf[i / 8] >> (7 - i % 8)) & 1)
    })
}

fn bit(buf: &[u8], i: usize) -> u8 {
    (buf[i / 8] >> (7 - i % 8)) & 1
}

/// A field's value as read through the view, widened to 128 bits.
fn get(v: &OddView<&[u8]>, field: usize) -> u128 {
    match field {
        0 => v.a().into(),
        1 => v.flag().into(),
        2 => v.b().into(),
        3 => v.c().into(),
        4 => v.d().into(),
        5 => u64::from_be_bytes([
            0,
            0,
            v.mac().0[0],
            v.mac().0[1],
            v.mac().0[2],
            v.mac().0[3],
            v.mac().0[4],
            v.mac().0[5],
        ])
        .into(),
        6 => v.e().into(),
        7 => u8::from(v.kind()).into(),
        8 => u32::from_be_bytes([0, v.arr()[0], v.arr()[1], v.arr()[2]]).into(),
        9 => v.f().into(),
        10 => v.g().into(),
        11 => v.h().into(),
        12 => u128::from(v.addr()),
        13 => v.last().into(),
        _ => unreachable!(),
    }
}

/// Sets a field through the view from a 128-bit value that fits its width.
fn set(v: &mut OddView<&mut [u8]>, field: usize, x: u128) {
    match field {
        0 => v.set_a(x as u8),
        1 => v.set_flag(x == 1),
        2 => v.set_b(x as u64),
        3 => v.set_c(x as u64),
        4 => v.set_d(x as u16),
        5 => {
            let b = (x as u64).to_be_bytes();
            v.set_mac(MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]]))
        }
        6 => v.set_e(x as u8),
        7 => v.set_kind(Kind7::from(x as u8)),
        8 => {
            let b = (x as u32).to_be_bytes();
            v.set_arr([b[1], b[2], b[3]])
        }
        9 => v.set_f(x as u32),
        10 => v.set_g(x as u8),
        11 => v.set_h(x as u32),
        12 => v.set_addr(Ipv6Addr::from(x)),
        13 => v.set_last(x as u16),
        _ => unreachable!(),
    }
}

fn mask(width: usize) -> u128 {
    if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    }
}

#[test]
fn length_is_the_sum_of_the_widths() {
    assert_eq!(Odd::LEN, 48);
    let (_, last_offset, last_width) = FIELDS[FIELDS.len() - 1];
    assert_eq!(Odd::LEN * 8, last_offset + last_width);
}

#[test]
fn getters_read_the_declared_bits() {
    // A recognisable pattern: every byte different.
    let buf: Vec<u8> = (0..Odd::LEN as u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let v = OddView::new(&buf[..]).unwrap();
    for (i, (name, offset, width)) in FIELDS.iter().enumerate() {
        assert_eq!(get(&v, i), bits(&buf, *offset, *width), "field {name}");
    }
}

#[test]
fn known_values_at_odd_offsets() {
    let mut buf = [0u8; Odd::LEN];
    let mut v = OddView::new(&mut buf[..]).unwrap();
    v.set_b((1 << 33) - 1);
    v.set_c(0x0123_4567_89ab_cdef);
    // b: bits 4..37 all ones; c starts at bit 37.
    assert_eq!(&buf[..5], &[0x0f, 0xff, 0xff, 0xff, 0xf8]);
    let v = OddView::new(&buf[..]).unwrap();
    assert_eq!(v.b(), (1 << 33) - 1);
    assert_eq!(v.c(), 0x0123_4567_89ab_cdef);
    assert_eq!(v.a(), 0);
    assert!(!v.flag());
    assert_eq!(v.d(), 0);
}

#[test]
fn debug_lists_fields() {
    let buf = [0u8; 48];
    let s = format!("{:?}", OddView::new(&buf[..]).unwrap());
    assert!(s.starts_with("OddView { a: 0, flag: false, b: 0,"), "{s}");
    assert!(s.contains("header_len: 48, payload_len: 0"), "{s}");
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "Odd::g is 5 bits wide; 32 does not fit")]
fn setter_asserts_width_in_debug_builds() {
    let mut buf = [0u8; 48];
    OddView::new(&mut buf[..]).unwrap().set_g(32);
}

#[cfg(not(debug_assertions))]
#[test]
fn setter_masks_wide_values_in_release_builds() {
    let mut buf = [0u8; 48];
    let mut v = OddView::new(&mut buf[..]).unwrap();
    v.set_g(0xff);
    assert_eq!(v.g(), 0x1f);
    assert_eq!(v.h(), 0);
}

fn odd_strategy() -> impl Strategy<Value = Odd> {
    (
        (
            0u8..8,
            any::<bool>(),
            0u64..1 << 33,
            any::<u64>(),
            0u16..1 << 11,
        ),
        (
            any::<[u8; 6]>(),
            0u8..2,
            0u8..0x80,
            any::<[u8; 3]>(),
            0u32..1 << 24,
        ),
        (0u8..32, 0u32..1 << 19, any::<u128>(), any::<u16>()),
    )
        .prop_map(
            |((a, flag, b, c, d), (mac, e, kind, arr, f), (g, h, addr, last))| Odd {
                a,
                flag,
                b,
                c,
                d,
                mac: MacAddr(mac),
                e,
                kind: Kind7::from(kind),
                arr,
                f,
                g,
                h,
                addr: Ipv6Addr::from(addr),
                last,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Miri runs each case thousands of times slower.
        cases: if cfg!(miri) { 16 } else { ProptestConfig::default().cases },
        ..ProptestConfig::default()
    })]

    /// Setting one field changes exactly its bits, and it reads back.
    #[test]
    fn setters_leave_neighbours_alone(
        start in any::<[u8; 48]>(),
        field in 0..FIELDS.len(),
        raw in any::<u128>(),
    ) {
        let (name, offset, width) = FIELDS[field];
        let value = raw & mask(width);
        let mut buf = start;
        set(&mut OddView::new(&mut buf[..]).unwrap(), field, value);
        prop_assert_eq!(bits(&buf, offset, width), value, "field {} bits", name);
        prop_assert_eq!(get(&OddView::new(&buf[..]).unwrap(), field), value, "field {} getter", name);
        for i in (0..offset).chain(offset + width..Odd::LEN * 8) {
            prop_assert_eq!(bit(&buf, i), bit(&start, i), "bit {} changed by set_{}", i, name);
        }
    }

    /// emit → view → to_header is the identity, and every field lands on
    /// the bits the hand-written table says.
    #[test]
    fn emit_then_view_round_trips(h in odd_strategy(), junk in any::<[u8; 50]>()) {
        let mut buf = junk;
        prop_assert_eq!(h.emit(&mut buf), Ok(Odd::LEN));
        prop_assert_eq!(&buf[Odd::LEN..], &junk[Odd::LEN..], "emit wrote past the header");
        let v = OddView::new(&buf[..]).unwrap();
        prop_assert_eq!(v.to_header(), h);
        prop_assert_eq!(Odd::parse(&buf), Ok(h));
        for (i, (name, offset, width)) in FIELDS.iter().enumerate() {
            prop_assert_eq!(get(&v, i), bits(&buf, *offset, *width), "field {}", name);
        }
        prop_assert_eq!(v.payload(), &junk[Odd::LEN..]);
    }
}

#[test]
fn default_is_the_all_zero_header() {
    let zero = [0u8; 48];
    assert_eq!(Odd::default(), Odd::parse(&zero).unwrap());
}

/// A descriptor mixing byte orders, as DPDK-style descriptors and some
/// tunnels do: little-endian fields next to network-order ones.
#[header(length = words * 4)]
pub struct Descriptor {
    pub words: u8,
    pub flags: u8,
    #[field(le)]
    pub data_len: u16,
    pub tag: u16,
    #[field(le)]
    pub addr: u64,
    #[field(le)]
    pub cookie: u32,
    pub pad: u16,
}

#[test]
fn little_endian_fields_store_the_low_byte_first() {
    let d = Descriptor {
        words: 5,
        flags: 0x80,
        data_len: 0x0102,
        tag: 0x0304,
        addr: 0x1122_3344_5566_7788,
        cookie: 0xa1b2_c3d4,
        pad: 0xbeef,
    };
    let mut buf = [0u8; 21];
    assert_eq!(Descriptor::LEN, 20);
    assert_eq!(d.emit(&mut buf), Ok(20));
    assert_eq!(
        buf[..20],
        [
            5, 0x80, 0x02, 0x01, 0x03, 0x04, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xd4,
            0xc3, 0xb2, 0xa1, 0xbe, 0xef
        ]
    );
    let v = DescriptorView::new(&buf[..]).unwrap();
    assert_eq!(v.to_header(), d);
    assert_eq!(
        (v.data_len(), v.addr(), v.cookie()),
        (0x0102, 0x1122_3344_5566_7788, 0xa1b2_c3d4)
    );

    let mut w = DescriptorView::new(&mut buf[..]).unwrap();
    w.set_data_len(0xfffe);
    w.set_cookie(1);
    assert_eq!(buf[2..4], [0xfe, 0xff]);
    assert_eq!(buf[14..18], [1, 0, 0, 0]);
    assert_eq!(buf[4..6], [0x03, 0x04], "neighbours untouched");
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Miri runs each case thousands of times slower.
        cases: if cfg!(miri) { 16 } else { ProptestConfig::default().cases },
        ..ProptestConfig::default()
    })]

    #[test]
    fn little_endian_fields_round_trip(data_len: u16, addr: u64, cookie: u32, tag: u16) {
        let d = Descriptor { words: 5, flags: 0, data_len, tag, addr, cookie, pad: 0 };
        let mut buf = [0u8; 20];
        d.emit(&mut buf).unwrap();
        prop_assert_eq!(&buf[2..4], &data_len.to_le_bytes()[..]);
        prop_assert_eq!(&buf[6..14], &addr.to_le_bytes()[..]);
        prop_assert_eq!(&buf[14..18], &cookie.to_le_bytes()[..]);
        prop_assert_eq!(&buf[4..6], &tag.to_be_bytes()[..]);
        prop_assert_eq!(Descriptor::parse(&buf).unwrap(), d);
    }
}
