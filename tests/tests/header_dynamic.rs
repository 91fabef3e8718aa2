//! `#[header(length = ..)]`: dynamic header length, the options/payload
//! split, every construction error, whole-buffer checksums, and the buffer
//! types a view accepts.

use tpa::header;
use tpa::header::HeaderError;

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
