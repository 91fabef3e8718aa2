// The expansion of header_renamed_crate.rs, checked by `cargo test -p tpa-macros golden`.
// Do not edit: `TPA_BLESS=1 cargo test -p tpa-macros golden` rewrites it.

/// A VLAN tag.
///
/// Declared with `#[header]`: [`VlanView`] reads and writes the same fields in
/// place in a byte buffer; [`parse`](Self::parse) and [`emit`](Self::emit) copy
/// them out of and into one.
#[derive(
    ::core::fmt::Debug,
    ::core::clone::Clone,
    ::core::marker::Copy,
    ::core::cmp::PartialEq,
    ::core::cmp::Eq,
    ::core::hash::Hash,
)]
pub struct Vlan {
    /// Priority code point.
    ///
    /// Wire: `u3`, bits 0..3 (3 bits).
    pub pcp: u8,
    /// Drop eligible.
    ///
    /// Wire: `bool`, bits 3..4 (1 bit).
    pub dei: bool,
    /// VLAN identifier.
    ///
    /// Wire: `u12`, bits 4..16 (12 bits).
    pub vid: u16,
    /// The protocol of the payload.
    ///
    /// Wire: `u16`, bytes 2..4.
    pub ethertype: u16,
}
impl ::core::default::Default for Vlan {
    /// The header whose bytes are all zero.
    fn default() -> Self {
        Self {
            pcp: 0,
            dei: false,
            vid: 0,
            ethertype: 0,
        }
    }
}
impl Vlan {
    /// Length in bytes of the fixed part of a `Vlan` header (all declared fields).
    pub const LEN: usize = 4;
    /// Reads a header from the start of `bytes` (a copy of its fields).
    ///
    /// # Errors
    ///
    /// As for the view's `new`: the buffer is too short or the header declares a bad length.
    #[inline]
    pub fn parse(
        bytes: &[u8],
    ) -> ::core::result::Result<Self, my_tpa::header::HeaderError> {
        ::core::result::Result::Ok(VlanView::new(bytes)?.to_header())
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
    /// [`HeaderError::Truncated`](my_tpa::header::HeaderError::Truncated) if `buf`
    /// is shorter than the header length.
    #[inline]
    pub fn emit(
        &self,
        buf: &mut [u8],
    ) -> ::core::result::Result<usize, my_tpa::header::HeaderError> {
        let header_len = self.header_len();
        let mut view = VlanView {
            bytes: my_tpa::header::HeaderBytes::new(buf, "Vlan")?,
        };
        view.set_pcp(self.pcp);
        view.set_dei(self.dei);
        view.set_vid(self.vid);
        view.set_ethertype(self.ethertype);
        ::core::result::Result::Ok(header_len)
    }
}
/// A zero-copy view of a [`Vlan`] header at the start of a byte buffer.
///
/// [`new`](Self::new) checks the buffer length once; the accessors then read
/// and write the fixed part at constant offsets without further checks. `B` is
/// any [`Bytes`](my_tpa::header::Bytes) (e.g. `&[u8]`) for reading and any
/// [`BytesMut`](my_tpa::header::BytesMut) (e.g. `&mut [u8]`) for the setters.
/// The header/options/payload split is the one checked by `new`; nothing
/// panics.
#[derive(::core::clone::Clone, ::core::marker::Copy)]
pub struct VlanView<B> {
    bytes: my_tpa::header::HeaderBytes<B, { Vlan::LEN }>,
}
impl<B: my_tpa::header::Bytes> VlanView<B> {
    /// Makes a view of the `Vlan` header at the start of `bytes`.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`](my_tpa::header::HeaderError::Truncated) if
    /// `bytes` is shorter than [`Vlan::LEN`].
    #[inline]
    pub fn new(bytes: B) -> ::core::result::Result<Self, my_tpa::header::HeaderError> {
        let bytes = my_tpa::header::HeaderBytes::new(bytes, "Vlan")?;
        ::core::result::Result::Ok(Self { bytes })
    }
    /// The header length in bytes: always the fixed length.
    #[inline]
    pub fn header_len(&self) -> usize {
        Vlan::LEN
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
        self.bytes.as_bytes().get(Vlan::LEN..self.header_len()).unwrap_or_default()
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
    pub fn to_header(&self) -> Vlan {
        Vlan {
            pcp: self.pcp(),
            dei: self.dei(),
            vid: self.vid(),
            ethertype: self.ethertype(),
        }
    }
    /// Priority code point.
    ///
    /// Wire: `u3`, bits 0..3 (3 bits).
    #[inline]
    pub fn pcp(&self) -> u8 {
        let b = self.bytes.fixed();
        b[0] >> 5
    }
    /// Drop eligible.
    ///
    /// Wire: `bool`, bits 3..4 (1 bit).
    #[inline]
    pub fn dei(&self) -> bool {
        let b = self.bytes.fixed();
        b[0] & 0x10 != 0
    }
    /// VLAN identifier.
    ///
    /// Wire: `u12`, bits 4..16 (12 bits).
    #[inline]
    pub fn vid(&self) -> u16 {
        let b = self.bytes.fixed();
        u16::from_be_bytes([b[0], b[1]]) & 0xfff
    }
    /// The protocol of the payload.
    ///
    /// Wire: `u16`, bytes 2..4.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let b = self.bytes.fixed();
        u16::from_be_bytes([b[2], b[3]])
    }
}
impl<B: my_tpa::header::BytesMut> VlanView<B> {
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
        self.bytes.as_bytes_mut().get_mut(Vlan::LEN..end).unwrap_or_default()
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
    /// Sets the `pcp` field. Only the low 3 bits of the value are stored (debug
    /// builds assert that it fits).
    #[inline]
    pub fn set_pcp(&mut self, value: u8) {
        ::core::debug_assert!(
            value <= 0x7, "Vlan::pcp is 3 bits wide; {value} does not fit"
        );
        let value = value & 0x7;
        let b = self.bytes.fixed_mut();
        b[0] = (b[0] & 0x1f) | (value << 5);
    }
    /// Sets the `dei` flag.
    #[inline]
    pub fn set_dei(&mut self, value: bool) {
        let b = self.bytes.fixed_mut();
        if value {
            b[0] |= 0x10;
        } else {
            b[0] &= !0x10;
        }
    }
    /// Sets the `vid` field. Only the low 12 bits of the value are stored (debug
    /// builds assert that it fits).
    #[inline]
    pub fn set_vid(&mut self, value: u16) {
        ::core::debug_assert!(
            value <= 0xfff, "Vlan::vid is 12 bits wide; {value} does not fit"
        );
        let value = value & 0xfff;
        let b = self.bytes.fixed_mut();
        let word = (u16::from_be_bytes([b[0], b[1]]) & 0xf000) | value;
        let be = word.to_be_bytes();
        b[0] = be[0];
        b[1] = be[1];
    }
    /// Sets the `ethertype` field.
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        let b = self.bytes.fixed_mut();
        let be = value.to_be_bytes();
        b[2] = be[0];
        b[3] = be[1];
    }
}
impl<B: my_tpa::header::SplitBytes> VlanView<B> {
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
impl<B: my_tpa::header::Bytes> ::core::fmt::Debug for VlanView<B> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct("VlanView")
            .field("pcp", &self.pcp())
            .field("dei", &self.dei())
            .field("vid", &self.vid())
            .field("ethertype", &self.ethertype())
            .field("header_len", &self.header_len())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}
