// The expansion of header_bit_fields.rs, checked by `cargo test -p tpa-macros golden`.
// Do not edit: `TPA_BLESS=1 cargo test -p tpa-macros golden` rewrites it.

/// A made-up tunnel header.
///
/// Declared with `#[header]`: [`TunnelView`] reads and writes the same fields
/// in place in a byte buffer; [`parse`](Self::parse) and [`emit`](Self::emit)
/// copy them out of and into one.
#[derive(
    ::core::fmt::Debug,
    ::core::clone::Clone,
    ::core::marker::Copy,
    ::core::cmp::PartialEq,
    ::core::cmp::Eq,
    ::core::hash::Hash,
)]
pub struct Tunnel {
    /// Always 2.
    ///
    /// Wire: `u4`, bits 0..4 (4 bits).
    pub version: u8,
    /// Traffic class: crosses from byte 0 into byte 1.
    ///
    /// Wire: `u8`, bits 4..12 (8 bits).
    pub class: u8,
    /// Flow label: crosses bytes 1..4.
    ///
    /// Wire: `u20`, bits 12..32 (20 bits).
    pub flow: u32,
    /// Set when the payload is a control message.
    ///
    /// Wire: `bool`, bits 32..33 (1 bit).
    pub control: bool,
    /// Reserved, zero.
    ///
    /// Wire: `u7`, bits 33..40 (7 bits).
    pub reserved: u8,
    /// Hop count.
    ///
    /// Wire: `u8`, bytes 5..6.
    pub hops: u8,
    /// A sender-local cookie, little-endian on the wire.
    ///
    /// Wire: `u32` little-endian, bytes 6..10.
    pub cookie: u32,
    /// Opaque bytes.
    ///
    /// Wire: `[u8; 2]`, bytes 10..12.
    pub tag: [u8; 2],
}
impl ::core::default::Default for Tunnel {
    /// The header whose bytes are all zero.
    fn default() -> Self {
        Self {
            version: 0,
            class: 0,
            flow: 0,
            control: false,
            reserved: 0,
            hops: 0,
            cookie: 0,
            tag: [0; 2],
        }
    }
}
impl Tunnel {
    /// Length in bytes of the fixed part of a `Tunnel` header (all declared
    /// fields).
    pub const LEN: usize = 12;
    /// Reads a header from the start of `bytes` (a copy of its fields).
    ///
    /// # Errors
    ///
    /// As for the view's `new`: the buffer is too short or the header declares a bad length.
    #[inline]
    pub fn parse(
        bytes: &[u8],
    ) -> ::core::result::Result<Self, ::tpa::header::HeaderError> {
        ::core::result::Result::Ok(TunnelView::new(bytes)?.to_header())
    }
    /// The header length in bytes: always [`Self::LEN`].
    #[inline]
    pub fn header_len(&self) -> usize {
        Self::LEN
    }
    /// Writes the header's fields to the start of `buf` and returns the header
    /// length.
    ///
    /// Only the fixed part ([`Self::LEN`] bytes) is written; options and payload
    /// bytes are left alone. Values too wide for their field are masked to its
    /// width (debug builds assert instead).
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`](::tpa::header::HeaderError::Truncated) if `buf`
    /// is shorter than the header length.
    #[inline]
    pub fn emit(
        &self,
        buf: &mut [u8],
    ) -> ::core::result::Result<usize, ::tpa::header::HeaderError> {
        let header_len = self.header_len();
        let mut view = TunnelView {
            bytes: ::tpa::header::HeaderBytes::new(buf, "Tunnel")?,
        };
        view.set_version(self.version);
        view.set_class(self.class);
        view.set_flow(self.flow);
        view.set_control(self.control);
        view.set_reserved(self.reserved);
        view.set_hops(self.hops);
        view.set_cookie(self.cookie);
        view.set_tag(self.tag);
        ::core::result::Result::Ok(header_len)
    }
}
/// A zero-copy view of a [`Tunnel`] header at the start of a byte buffer.
///
/// [`new`](Self::new) checks the buffer length once; the accessors then read
/// and write the fixed part at constant offsets without further checks. `B` is
/// any [`Bytes`](::tpa::header::Bytes) (e.g. `&[u8]`) for reading and any
/// [`BytesMut`](::tpa::header::BytesMut) (e.g. `&mut [u8]`) for the setters.
/// The header/options/payload split is the one checked by `new`; nothing
/// panics.
#[derive(::core::clone::Clone, ::core::marker::Copy)]
pub struct TunnelView<B> {
    bytes: ::tpa::header::HeaderBytes<B, { Tunnel::LEN }>,
}
impl<B: ::tpa::header::Bytes> TunnelView<B> {
    /// Makes a view of the `Tunnel` header at the start of `bytes`.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`](::tpa::header::HeaderError::Truncated) if `bytes`
    /// is shorter than [`Tunnel::LEN`].
    #[inline]
    pub fn new(bytes: B) -> ::core::result::Result<Self, ::tpa::header::HeaderError> {
        let bytes = ::tpa::header::HeaderBytes::new(bytes, "Tunnel")?;
        ::core::result::Result::Ok(Self { bytes })
    }
    /// The header length in bytes: always the fixed length.
    #[inline]
    pub fn header_len(&self) -> usize {
        Tunnel::LEN
    }
    /// The header bytes: the fixed part and the options.
    #[inline]
    pub fn header_bytes(&self) -> &[u8] {
        self.bytes.as_bytes().get(..self.header_len()).unwrap_or_default()
    }
    /// The bytes between the fixed part and the end of the header
    /// (empty when the header has no options).
    #[inline]
    pub fn options(&self) -> &[u8] {
        self.bytes.as_bytes().get(Tunnel::LEN..self.header_len()).unwrap_or_default()
    }
    /// The bytes after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.bytes.as_bytes().get(self.header_len()..).unwrap_or_default()
    }
    /// The whole buffer: header and payload.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_bytes()
    }
    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> B {
        self.bytes.into_inner()
    }
    /// Copies the fields into an owned header value.
    #[inline]
    pub fn to_header(&self) -> Tunnel {
        Tunnel {
            version: self.version(),
            class: self.class(),
            flow: self.flow(),
            control: self.control(),
            reserved: self.reserved(),
            hops: self.hops(),
            cookie: self.cookie(),
            tag: self.tag(),
        }
    }
    /// Always 2.
    ///
    /// Wire: `u4`, bits 0..4 (4 bits).
    #[inline]
    pub fn version(&self) -> u8 {
        let b = self.bytes.fixed();
        b[0] >> 4
    }
    /// Traffic class: crosses from byte 0 into byte 1.
    ///
    /// Wire: `u8`, bits 4..12 (8 bits).
    #[inline]
    pub fn class(&self) -> u8 {
        let b = self.bytes.fixed();
        (u16::from_be_bytes([b[0], b[1]]) >> 4) as u8
    }
    /// Flow label: crosses bytes 1..4.
    ///
    /// Wire: `u20`, bits 12..32 (20 bits).
    #[inline]
    pub fn flow(&self) -> u32 {
        let b = self.bytes.fixed();
        u32::from_be_bytes([0, b[1], b[2], b[3]]) & 0xf_ffff
    }
    /// Set when the payload is a control message.
    ///
    /// Wire: `bool`, bits 32..33 (1 bit).
    #[inline]
    pub fn control(&self) -> bool {
        let b = self.bytes.fixed();
        b[4] & 0x80 != 0
    }
    /// Reserved, zero.
    ///
    /// Wire: `u7`, bits 33..40 (7 bits).
    #[inline]
    pub fn reserved(&self) -> u8 {
        let b = self.bytes.fixed();
        b[4] & 0x7f
    }
    /// Hop count.
    ///
    /// Wire: `u8`, bytes 5..6.
    #[inline]
    pub fn hops(&self) -> u8 {
        let b = self.bytes.fixed();
        b[5]
    }
    /// A sender-local cookie, little-endian on the wire.
    ///
    /// Wire: `u32` little-endian, bytes 6..10.
    #[inline]
    pub fn cookie(&self) -> u32 {
        let b = self.bytes.fixed();
        u32::from_le_bytes([b[6], b[7], b[8], b[9]])
    }
    /// Opaque bytes.
    ///
    /// Wire: `[u8; 2]`, bytes 10..12.
    #[inline]
    pub fn tag(&self) -> [u8; 2] {
        let b = self.bytes.fixed();
        let mut bytes = [0u8; 2];
        bytes.copy_from_slice(&b[10..12]);
        bytes
    }
}
impl<B: ::tpa::header::BytesMut> TunnelView<B> {
    /// The header bytes, writable: the fixed part and the options.
    #[inline]
    pub fn header_bytes_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        self.bytes.as_bytes_mut().get_mut(..end).unwrap_or_default()
    }
    /// The options, writable (empty when the header has none).
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        self.bytes.as_bytes_mut().get_mut(Tunnel::LEN..end).unwrap_or_default()
    }
    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        self.bytes.as_bytes_mut().get_mut(start..).unwrap_or_default()
    }
    /// The whole buffer, writable.
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.bytes.as_bytes_mut()
    }
    /// Sets the `version` field. Only the low 4 bits of the value are stored (debug
    /// builds assert that it fits).
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        ::core::debug_assert!(
            value <= 0xf, "Tunnel::version is 4 bits wide; {value} does not fit"
        );
        let value = value & 0xf;
        let b = self.bytes.fixed_mut();
        b[0] = (b[0] & 0xf) | (value << 4);
    }
    /// Sets the `class` field.
    #[inline]
    pub fn set_class(&mut self, value: u8) {
        let b = self.bytes.fixed_mut();
        let word = (u16::from_be_bytes([b[0], b[1]]) & 0xf00f) | ((value as u16) << 4);
        let be = word.to_be_bytes();
        b[0] = be[0];
        b[1] = be[1];
    }
    /// Sets the `flow` field. Only the low 20 bits of the value are stored (debug
    /// builds assert that it fits).
    #[inline]
    pub fn set_flow(&mut self, value: u32) {
        ::core::debug_assert!(
            value <= 0xf_ffff, "Tunnel::flow is 20 bits wide; {value} does not fit"
        );
        let value = value & 0xf_ffff;
        let b = self.bytes.fixed_mut();
        let word = (u32::from_be_bytes([0, b[1], b[2], b[3]]) & 0xfff0_0000) | value;
        let be = word.to_be_bytes();
        b[1] = be[1];
        b[2] = be[2];
        b[3] = be[3];
    }
    /// Sets the `control` flag.
    #[inline]
    pub fn set_control(&mut self, value: bool) {
        let b = self.bytes.fixed_mut();
        if value {
            b[4] |= 0x80;
        } else {
            b[4] &= !0x80;
        }
    }
    /// Sets the `reserved` field. Only the low 7 bits of the value are stored
    /// (debug builds assert that it fits).
    #[inline]
    pub fn set_reserved(&mut self, value: u8) {
        ::core::debug_assert!(
            value <= 0x7f, "Tunnel::reserved is 7 bits wide; {value} does not fit"
        );
        let value = value & 0x7f;
        let b = self.bytes.fixed_mut();
        b[4] = (b[4] & 0x80) | value;
    }
    /// Sets the `hops` field.
    #[inline]
    pub fn set_hops(&mut self, value: u8) {
        let b = self.bytes.fixed_mut();
        b[5] = value;
    }
    /// Sets the `cookie` field.
    #[inline]
    pub fn set_cookie(&mut self, value: u32) {
        let b = self.bytes.fixed_mut();
        let le = value.to_le_bytes();
        b[6] = le[0];
        b[7] = le[1];
        b[8] = le[2];
        b[9] = le[3];
    }
    /// Sets the `tag` field.
    #[inline]
    pub fn set_tag(&mut self, value: [u8; 2]) {
        let b = self.bytes.fixed_mut();
        b[10..12].copy_from_slice(&value);
    }
}
impl<B: ::tpa::header::SplitBytes> TunnelView<B> {
    /// Cuts the buffer after the header: a view of the header
    /// alone (fixed part and options) and the payload, both
    /// borrowing as long as the original buffer (`&'a [u8]` or
    /// `&'a mut [u8]`), ready for the next layer's view.
    #[inline]
    pub fn split(self) -> (Self, B) {
        let header_len = self.header_len();
        let (bytes, payload) = self.bytes.split_at(header_len);
        (Self { bytes }, payload)
    }
    /// The bytes after the header, borrowing as long as the
    /// original buffer: `payload()` for the next layer, without
    /// the borrow of the view.
    #[inline]
    pub fn into_payload(self) -> B {
        self.split().1
    }
}
impl<B: ::tpa::header::Bytes> ::core::fmt::Debug for TunnelView<B> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct("TunnelView")
            .field("version", &self.version())
            .field("class", &self.class())
            .field("flow", &self.flow())
            .field("control", &self.control())
            .field("reserved", &self.reserved())
            .field("hops", &self.hops())
            .field("cookie", &self.cookie())
            .field("tag", &self.tag())
            .field("header_len", &self.header_len())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}
