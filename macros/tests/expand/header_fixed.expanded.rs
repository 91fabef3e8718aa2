// The expansion of header_fixed.rs, checked by `cargo test -p tpa-macros golden`.
// Do not edit: `TPA_BLESS=1 cargo test -p tpa-macros golden` rewrites it.

/// An Ethernet II header.
///
/// Declared with `#[header]`: [`EthernetView`] reads and writes the same fields
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
pub struct Ethernet {
    /// Destination MAC address.
    ///
    /// Wire: `MacAddr`, bytes 0..6.
    pub dst: MacAddr,
    /// Source MAC address.
    ///
    /// Wire: `MacAddr`, bytes 6..12.
    pub src: MacAddr,
    /// The protocol of the payload.
    ///
    /// Wire: `u16`, bytes 12..14.
    pub ethertype: u16,
}
impl ::core::default::Default for Ethernet {
    /// The header whose bytes are all zero.
    fn default() -> Self {
        Self {
            dst: <MacAddr as ::core::convert::From<[u8; 6]>>::from([0; 6]),
            src: <MacAddr as ::core::convert::From<[u8; 6]>>::from([0; 6]),
            ethertype: 0,
        }
    }
}
impl Ethernet {
    /// Length in bytes of the fixed part of a `Ethernet` header (all declared
    /// fields).
    pub const LEN: usize = 14;
    /// Reads a header from the start of `bytes` (a copy of its fields).
    ///
    /// # Errors
    ///
    /// As for the view's `new`: the buffer is too short or the header declares a bad length.
    #[inline]
    pub fn parse(
        bytes: &[u8],
    ) -> ::core::result::Result<Self, ::tpa::header::HeaderError> {
        ::core::result::Result::Ok(EthernetView::new(bytes)?.to_header())
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
        let mut view = EthernetView {
            bytes: ::tpa::header::HeaderBytes::new(buf, "Ethernet")?,
        };
        view.set_dst(self.dst);
        view.set_src(self.src);
        view.set_ethertype(self.ethertype);
        ::core::result::Result::Ok(header_len)
    }
}
/// A zero-copy view of a [`Ethernet`] header at the start of a byte buffer.
///
/// [`new`](Self::new) checks the buffer length once; the accessors then read
/// and write the fixed part at constant offsets without further checks. `B` is
/// any [`Bytes`](::tpa::header::Bytes) (e.g. `&[u8]`) for reading and any
/// [`BytesMut`](::tpa::header::BytesMut) (e.g. `&mut [u8]`) for the setters.
/// The header/options/payload split is the one checked by `new`; nothing
/// panics.
#[derive(::core::clone::Clone, ::core::marker::Copy)]
pub struct EthernetView<B> {
    bytes: ::tpa::header::HeaderBytes<B, { Ethernet::LEN }>,
}
impl<B: ::tpa::header::Bytes> EthernetView<B> {
    /// Makes a view of the `Ethernet` header at the start of `bytes`.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`](::tpa::header::HeaderError::Truncated) if `bytes`
    /// is shorter than [`Ethernet::LEN`].
    #[inline]
    pub fn new(bytes: B) -> ::core::result::Result<Self, ::tpa::header::HeaderError> {
        let bytes = ::tpa::header::HeaderBytes::new(bytes, "Ethernet")?;
        ::core::result::Result::Ok(Self { bytes })
    }
    /// The header length in bytes: always the fixed length.
    #[inline]
    pub fn header_len(&self) -> usize {
        Ethernet::LEN
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
        self.bytes.as_bytes().get(Ethernet::LEN..self.header_len()).unwrap_or_default()
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
    pub fn to_header(&self) -> Ethernet {
        Ethernet {
            dst: self.dst(),
            src: self.src(),
            ethertype: self.ethertype(),
        }
    }
    /// Destination MAC address.
    ///
    /// Wire: `MacAddr`, bytes 0..6.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        let b = self.bytes.fixed();
        let mut bytes = [0u8; 6];
        bytes.copy_from_slice(&b[0..6]);
        <MacAddr as ::core::convert::From<[u8; 6]>>::from(bytes)
    }
    /// Source MAC address.
    ///
    /// Wire: `MacAddr`, bytes 6..12.
    #[inline]
    pub fn src(&self) -> MacAddr {
        let b = self.bytes.fixed();
        let mut bytes = [0u8; 6];
        bytes.copy_from_slice(&b[6..12]);
        <MacAddr as ::core::convert::From<[u8; 6]>>::from(bytes)
    }
    /// The protocol of the payload.
    ///
    /// Wire: `u16`, bytes 12..14.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let b = self.bytes.fixed();
        u16::from_be_bytes([b[12], b[13]])
    }
}
impl<B: ::tpa::header::BytesMut> EthernetView<B> {
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
        self.bytes.as_bytes_mut().get_mut(Ethernet::LEN..end).unwrap_or_default()
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
    /// Sets the `dst` field.
    #[inline]
    pub fn set_dst(&mut self, value: MacAddr) {
        let b = self.bytes.fixed_mut();
        b[0..6].copy_from_slice(&value.octets());
    }
    /// Sets the `src` field.
    #[inline]
    pub fn set_src(&mut self, value: MacAddr) {
        let b = self.bytes.fixed_mut();
        b[6..12].copy_from_slice(&value.octets());
    }
    /// Sets the `ethertype` field.
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        let b = self.bytes.fixed_mut();
        let be = value.to_be_bytes();
        b[12] = be[0];
        b[13] = be[1];
    }
}
impl<B: ::tpa::header::SplitBytes> EthernetView<B> {
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
impl<B: ::tpa::header::Bytes> ::core::fmt::Debug for EthernetView<B> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct("EthernetView")
            .field("dst", &self.dst())
            .field("src", &self.src())
            .field("ethertype", &self.ethertype())
            .field("header_len", &self.header_len())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}
