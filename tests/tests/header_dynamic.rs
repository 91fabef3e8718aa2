//! `#[header(length = ..)]`: dynamic header length, the options/payload
//! split, every construction error, whole-buffer checksums, the buffer
//! types a view accepts, the option-walker hook and walking layers with
//! `split`/`into_payload`.

use tpa::header;
use tpa::header::{HeaderError, HeaderOptions};

/// A 4-byte fixed part followed by `words * 4 - 4` option bytes.
#[header(length = words * 4)]
pub struct Opt {
    pub kind: u8,
    pub words: u4,
    pub flags: u4,
    pub value: u16,
}

/// A length expression that needs the wider type: `(ext + 1) * 8` overflows
/// a `u8` for `ext = 255`, so fields are widened to `usize` first.
#[header(length = (ext + 1) * 8)]
pub struct Ext {
    pub next: u8,
    pub ext: u8,
    pub rest: [u8; 6],
}

/// An ICMP-like header whose checksum covers the payload too.
#[header]
pub struct Echo {
    pub ty: u8,
    pub code: u8,
    #[checksum(all)]
    pub checksum: u16,
    pub id: u16,
    pub seq: u16,
}

/// A header with a checksum over its options too, and a walker for them:
/// options are `(kind, len, data..)` records.
#[header(length = words * 4, options = Records)]
pub struct Rec {
    pub kind: u8,
    pub words: u8,
    #[checksum]
    pub checksum: u16,
}

/// Walks `Rec`'s options: the length byte counts kind and length too.
#[derive(Debug)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> HeaderOptions<'a> for Records<'a> {
    fn from_bytes(bytes: &'a [u8]) -> Self {
        Records { rest: bytes }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = (u8, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, &len) = (self.rest.first()?, self.rest.get(1)?);
        let (record, rest) = self.rest.split_at_checked(usize::from(len).max(2))?;
        self.rest = rest;
        Some((kind, &record[2..]))
    }
}

#[test]
fn options_iter_hands_the_option_bytes_to_the_declared_walker() {
    let buf = [1, 3, 0, 0, 7, 3, 0xaa, 9, 2, 0, 0, 0, 0x55];
    let v = RecView::new(&buf[..]).unwrap();
    let records: Vec<_> = v.options_iter().collect();
    assert_eq!(records, [(7, &[0xaa][..]), (9, &[][..]), (0, &[][..])]);
    assert_eq!(v.payload(), [0x55]);
}

#[test]
fn emit_checksums_the_options_already_in_the_buffer() {
    let mut buf = [0u8; 13];
    buf[4..12].copy_from_slice(&[7, 3, 0xaa, 9, 2, 0, 0, 0]);
    buf[12] = 0x55;
    let h = Rec {
        kind: 1,
        words: 3,
        checksum: 0x1234,
    };
    assert_eq!(h.emit(&mut buf), Ok(12));
    let v = RecView::new(&buf[..]).unwrap();
    assert!(v.checksum_ok());
    let mut zeroed = buf;
    zeroed[2..4].fill(0);
    assert_eq!(v.checksum(), tpa::header::checksum::checksum(&zeroed[..12]));
    buf[5] ^= 0x10; // an option byte: the checksum covers it
    assert!(!RecView::new(&buf[..]).unwrap().checksum_ok());
}

#[test]
fn split_hands_on_the_payload_for_the_buffer_lifetime() {
    let frame = [
        7, 0x20, 0xbe, 0xef, 1, 2, 3, 4, /* inner */ 5, 0x10, 0x12, 0x34, 9, 10,
    ];
    // Walk two layers without re-slicing: the inner view borrows `frame`,
    // not the outer view, so it outlives the outer view.
    let inner = {
        let outer = OptView::new(&frame[..]).unwrap();
        OptView::new(outer.into_payload()).unwrap()
    };
    assert_eq!((inner.kind(), inner.value()), (5, 0x1234));
    assert_eq!(inner.into_payload(), [9, 10]);

    let (header, payload) = OptView::new(&frame[..]).unwrap().split();
    assert_eq!(payload, &frame[8..]);
    assert_eq!(header.as_bytes(), &frame[..8]);
    assert_eq!(
        (header.header_len(), header.options(), header.payload()),
        (8, &frame[4..8], &[][..])
    );
    assert_eq!(header.value(), 0xbeef);
    // A fixed-length header splits after its fixed part.
    let (echo, data) = EchoView::new(&frame[..]).unwrap().split();
    assert_eq!((echo.as_bytes().len(), data), (8, &frame[8..]));
}

#[test]
fn split_mut_writes_each_layer_in_place() {
    let mut frame = [
        0u8, 0x20, 0, 0, 0, 0, 0, 0, /* inner */ 0, 0x10, 0, 0, 0xff,
    ];
    let (mut outer, payload) = OptView::new(&mut frame[..]).unwrap().split();
    let mut inner = OptView::new(payload).unwrap();
    outer.set_value(0x0102);
    inner.set_value(0x0304);
    inner.into_payload()[0] = 0xee;
    outer.options_mut().fill(0x11);
    assert_eq!(
        frame,
        [0, 0x20, 1, 2, 0x11, 0x11, 0x11, 0x11, 0, 0x10, 3, 4, 0xee]
    );
}

#[test]
fn options_and_payload_split_at_the_declared_length() {
    let buf = [7, 0x3a, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let v = OptView::new(&buf[..]).unwrap();
    assert_eq!(Opt::LEN, 4);
    assert_eq!(
        (v.kind(), v.words(), v.flags(), v.value()),
        (7, 3, 0xa, 0xbeef)
    );
    assert_eq!(v.header_len(), 12);
    assert_eq!(v.header_bytes(), &buf[..12]);
    assert_eq!(v.options(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(v.payload(), &[9, 10]);
    assert_eq!(v.as_bytes(), &buf[..]);
    assert_eq!(v.to_header().header_len(), 12);
}

#[test]
fn no_options_no_payload() {
    let buf = [7, 0x10, 0, 0];
    let v = OptView::new(&buf[..]).unwrap();
    assert_eq!(v.header_len(), 4);
    assert!(v.options().is_empty());
    assert!(v.payload().is_empty());
}

#[test]
fn writable_options_and_payload() {
    let mut buf = vec![0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut v = OptView::new(&mut buf).unwrap();
    v.options_mut().copy_from_slice(&[1, 2, 3, 4]);
    v.payload_mut().copy_from_slice(&[9, 9]);
    v.header_bytes_mut()[0] = 5;
    v.set_value(0x1234);
    assert_eq!(buf, [5, 0x20, 0x12, 0x34, 1, 2, 3, 4, 9, 9]);
}

#[test]
fn errors_name_the_header_and_the_lengths() {
    assert_eq!(
        OptView::new(&[1u8, 0x20][..]).unwrap_err(),
        HeaderError::Truncated {
            header: "Opt",
            needed: 4,
            available: 2
        }
    );
    assert_eq!(
        OptView::new(&[1u8, 0x00, 0, 0][..]).unwrap_err(),
        HeaderError::BadLength {
            header: "Opt",
            declared: 0,
            min: 4
        }
    );
    assert_eq!(
        OptView::new(&[1u8, 0x20, 0, 0, 0, 0, 0][..]).unwrap_err(),
        HeaderError::Truncated {
            header: "Opt",
            needed: 8,
            available: 7
        }
    );
    assert!(OptView::new(&[1u8, 0x20, 0, 0, 0, 0, 0, 0][..]).is_ok());
    assert_eq!(
        Opt::parse(&[1u8, 0xf0, 0, 0]).unwrap_err().to_string(),
        "Opt header truncated: needs 60 bytes, 4 available"
    );
    assert_eq!(
        Opt::parse(&[1u8, 0x00, 0, 0]).unwrap_err().to_string(),
        "Opt header declares a length of 0 bytes, less than its minimum of 4"
    );
}

#[test]
fn emit_checks_the_declared_length() {
    let h = Opt {
        kind: 1,
        words: 2,
        flags: 0,
        value: 9,
    };
    let mut small = [0u8; 6];
    assert_eq!(
        h.emit(&mut small),
        Err(HeaderError::Truncated {
            header: "Opt",
            needed: 8,
            available: 6
        })
    );
    let bad = Opt { words: 0, ..h };
    assert_eq!(
        bad.emit(&mut small),
        Err(HeaderError::BadLength {
            header: "Opt",
            declared: 0,
            min: 4
        })
    );
    let mut buf = [0xaa; 10];
    assert_eq!(h.emit(&mut buf), Ok(8));
    assert_eq!(buf, [1, 0x20, 0, 9, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
}

#[test]
fn length_expression_is_evaluated_in_usize() {
    let mut buf = vec![0u8; 2048];
    buf[1] = 255;
    let v = ExtView::new(&buf[..]).unwrap();
    assert_eq!(v.header_len(), 2048);
    assert_eq!(v.options().len(), 2040);
    assert_eq!(
        ExtView::new(&buf[..2047]).unwrap_err(),
        HeaderError::Truncated {
            header: "Ext",
            needed: 2048,
            available: 2047
        }
    );
}

#[test]
fn checksum_all_covers_the_payload() {
    let mut buf = [0u8; 8 + 5];
    buf[8..].copy_from_slice(b"hello");
    let h = Echo {
        ty: 8,
        code: 0,
        checksum: 0x1111,
        id: 0x1234,
        seq: 1,
    };
    assert_eq!(h.emit(&mut buf), Ok(8));
    let v = EchoView::new(&buf[..]).unwrap();
    assert!(v.checksum_ok());
    assert_ne!(v.checksum(), 0x1111, "emit computes the checksum");
    assert_eq!(
        v.checksum(),
        tpa::header::checksum::checksum(&{
            let mut c = buf;
            c[2] = 0;
            c[3] = 0;
            c
        })
    );
    buf[12] ^= 1;
    assert!(!EchoView::new(&buf[..]).unwrap().checksum_ok());
    let mut v = EchoView::new(&mut buf[..]).unwrap();
    v.fill_checksum();
    assert!(v.checksum_ok());
}

#[test]
fn views_over_every_buffer_type() {
    let bytes = [8u8, 0, 0, 0, 0, 1, 0, 2];
    let expect = Echo {
        ty: 8,
        code: 0,
        checksum: 0,
        id: 1,
        seq: 2,
    };
    assert_eq!(EchoView::new(bytes).unwrap().to_header(), expect);
    assert_eq!(EchoView::new(&bytes).unwrap().to_header(), expect);
    assert_eq!(EchoView::new(bytes.to_vec()).unwrap().to_header(), expect);
    assert_eq!(EchoView::new(&bytes.to_vec()).unwrap().to_header(), expect);
    let boxed: Box<[u8]> = bytes.into();
    assert_eq!(EchoView::new(boxed).unwrap().to_header(), expect);
    let shared: std::sync::Arc<[u8]> = bytes.into();
    assert_eq!(EchoView::new(shared).unwrap().to_header(), expect);

    let mut v = EchoView::new(bytes.to_vec()).unwrap();
    v.set_seq(7);
    v.fill_checksum();
    let out = v.into_inner();
    assert_eq!(Echo::parse(&out).unwrap().seq, 7);
    assert!(EchoView::new(&out[..]).unwrap().checksum_ok());

    let mut arr = bytes;
    EchoView::new(&mut arr).unwrap().set_id(0xffff);
    assert_eq!(arr[4..6], [0xff, 0xff]);
    let mut vec = bytes.to_vec();
    EchoView::new(&mut vec).unwrap().set_code(3);
    assert_eq!(vec[1], 3);
}

/// Generated code is safe Rust: headers can be declared where `unsafe` is
/// forbidden (the one `unsafe` block lives in `tpa::header::HeaderBytes`).
#[forbid(unsafe_code)]
mod no_unsafe {
    use tpa::header;

    #[header(length = words * 4)]
    pub struct Tiny {
        pub words: u8,
        pub flags: u8,
        pub tag: [u8; 2],
    }
}

#[test]
fn headers_compile_under_forbid_unsafe_code() {
    let v = no_unsafe::TinyView::new(&[2u8, 0, 9, 9, 1, 2, 3, 4, 5][..]).unwrap();
    assert_eq!(
        (v.header_len(), v.tag(), v.options(), v.payload()),
        (8, [9, 9], &[1u8, 2, 3, 4][..], &[5u8][..])
    );
}
