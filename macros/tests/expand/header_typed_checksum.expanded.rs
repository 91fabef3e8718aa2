// The expansion of header_typed_checksum.rs, checked by `cargo test -p tpa-macros golden`.
// Do not edit: `TPA_BLESS=1 cargo test -p tpa-macros golden` rewrites it.

/// An ICMPv4 echo header.
///
/// Declared with `#[header]`: [`EchoView`] reads and writes the same fields in
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
pub struct Echo {
    /// The message type.
    ///
    /// Wire: `u8`, bytes 0..1.
    pub kind: IcmpType,
    /// The message code.
    ///
    /// Wire: `u8`, bytes 1..2.
    pub code: u8,
    /// Internet checksum of the whole message.
    ///
    /// Wire: `u16`, bytes 2..4.
    pub checksum: u16,
    /// Identifier.
    ///
    /// Wire: `u16`, bytes 4..6.
    pub ident: u16,
    /// Sequence number.
    ///
    /// Wire: `u16`, bytes 6..8.
    pub seq: u16,
}
impl ::core::default::Default for Echo {
    /// The header whose bytes are all zero.
    fn default() -> Self {
        Self {
            kind: <IcmpType as ::core::convert::From<u8>>::from(0),
            code: 0,
            checksum: 0,
            ident: 0,
            seq: 0,
        }
    }
}
impl Echo {
    /// Length in bytes of the fixed part of a `Echo` header (all declared fields).
    pub const LEN: usize = 8;
    /// Reads a header from the start of `bytes` (a copy of its fields).
    ///
    /// # Errors
    ///
    /// As for the view's `new`: the buffer is too short or the header declares a bad length.
    #[inline]
    pub fn parse(
        bytes: &[u8],
    ) -> ::core::result::Result<Self, ::tpa::header::HeaderError> {
        ::core::result::Result::Ok(EchoView::new(bytes)?.to_header())
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
    /// The `checksum` field's value is ignored: `emit` computes the checksum over
    /// all of `buf`, so the payload must already be in place and `buf` must end
    /// where the message ends.
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
        let available = buf.len();
        let ::core::option::Option::Some((out, rest)) = buf
            .split_at_mut_checked(Self::LEN) else {
            return ::core::result::Result::Err(::tpa::header::HeaderError::Truncated {
                header: "Echo",
                needed: Self::LEN,
                available,
            });
        };
        let mut fixed = [0u8; Self::LEN];
        let mut view = EchoView {
            bytes: ::tpa::header::HeaderBytes::from_array(&mut fixed),
        };
        view.set_kind(self.kind);
        view.set_code(self.code);
        view.set_ident(self.ident);
        view.set_seq(self.seq);
        let mut sum = ::tpa::header::checksum::Checksum::new();
        sum.add_bytes(view.as_bytes());
        sum.add_bytes(rest);
        view.set_checksum(sum.checksum());
        out.copy_from_slice(&fixed);
        ::core::result::Result::Ok(header_len)
    }
}
/// A zero-copy view of a [`Echo`] header at the start of a byte buffer.
///
/// [`new`](Self::new) checks the buffer length once; the accessors then read
/// and write the fixed part at constant offsets without further checks. `B` is
/// any [`Bytes`](::tpa::header::Bytes) (e.g. `&[u8]`) for reading and any
/// [`BytesMut`](::tpa::header::BytesMut) (e.g. `&mut [u8]`) for the setters.
/// The header/options/payload split is the one checked by `new`; nothing
/// panics.
#[derive(::core::clone::Clone, ::core::marker::Copy)]
pub struct EchoView<B> {
    bytes: ::tpa::header::HeaderBytes<B, { Echo::LEN }>,
}
impl<B: ::tpa::header::Bytes> EchoView<B> {
    /// Makes a view of the `Echo` header at the start of `bytes`.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`](::tpa::header::HeaderError::Truncated) if `bytes`
    /// is shorter than [`Echo::LEN`].
    #[inline]
    pub fn new(bytes: B) -> ::core::result::Result<Self, ::tpa::header::HeaderError> {
        let bytes = ::tpa::header::HeaderBytes::new(bytes, "Echo")?;
        ::core::result::Result::Ok(Self { bytes })
    }
    /// The header length in bytes: always the fixed length.
    #[inline]
    pub fn header_len(&self) -> usize {
        Echo::LEN
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
        self.bytes.as_bytes().get(Echo::LEN..self.header_len()).unwrap_or_default()
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
    pub fn to_header(&self) -> Echo {
        Echo {
            kind: self.kind(),
            code: self.code(),
            checksum: self.checksum(),
            ident: self.ident(),
            seq: self.seq(),
        }
    }
    /// Whether the `checksum` field holds the correct internet checksum of the
    /// whole buffer (header and payload).
    #[inline]
    pub fn checksum_ok(&self) -> bool {
        ::tpa::header::checksum::checksum(self.as_bytes()) == 0
    }
    /// The message type.
    ///
    /// Wire: `u8`, bytes 0..1.
    #[inline]
    pub fn kind(&self) -> IcmpType {
        let b = self.bytes.fixed();
        <IcmpType as ::core::convert::From<u8>>::from(b[0])
    }
    /// The message code.
    ///
    /// Wire: `u8`, bytes 1..2.
    #[inline]
    pub fn code(&self) -> u8 {
        let b = self.bytes.fixed();
        b[1]
    }
    /// Internet checksum of the whole message.
    ///
    /// Wire: `u16`, bytes 2..4.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = self.bytes.fixed();
        u16::from_be_bytes([b[2], b[3]])
    }
    /// Identifier.
    ///
    /// Wire: `u16`, bytes 4..6.
    #[inline]
    pub fn ident(&self) -> u16 {
        let b = self.bytes.fixed();
        u16::from_be_bytes([b[4], b[5]])
    }
    /// Sequence number.
    ///
    /// Wire: `u16`, bytes 6..8.
    #[inline]
    pub fn seq(&self) -> u16 {
        let b = self.bytes.fixed();
        u16::from_be_bytes([b[6], b[7]])
    }
}
impl<B: ::tpa::header::BytesMut> EchoView<B> {
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
        self.bytes.as_bytes_mut().get_mut(Echo::LEN..end).unwrap_or_default()
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
    /// Computes the internet checksum of the whole buffer (header and payload) and
    /// stores it in the `checksum` field.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let checksum = ::tpa::header::checksum::checksum(self.as_bytes());
        self.set_checksum(checksum);
    }
    /// Sets the `kind` field.
    #[inline]
    pub fn set_kind(&mut self, value: IcmpType) {
        let value: u8 = <IcmpType as ::core::convert::Into<u8>>::into(value);
        let b = self.bytes.fixed_mut();
        b[0] = value;
    }
    /// Sets the `code` field.
    #[inline]
    pub fn set_code(&mut self, value: u8) {
        let b = self.bytes.fixed_mut();
        b[1] = value;
    }
    /// Sets the `checksum` field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        let b = self.bytes.fixed_mut();
        let be = value.to_be_bytes();
        b[2] = be[0];
        b[3] = be[1];
    }
    /// Sets the `ident` field.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        let b = self.bytes.fixed_mut();
        let be = value.to_be_bytes();
        b[4] = be[0];
        b[5] = be[1];
    }
    /// Sets the `seq` field.
    #[inline]
    pub fn set_seq(&mut self, value: u16) {
        let b = self.bytes.fixed_mut();
        let be = value.to_be_bytes();
        b[6] = be[0];
        b[7] = be[1];
    }
}
impl<B: ::tpa::header::SplitBytes> EchoView<B> {
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
impl<B: ::tpa::header::Bytes> ::core::fmt::Debug for EchoView<B> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct("EchoView")
            .field("kind", &self.kind())
            .field("code", &self.code())
            .field("checksum", &self.checksum())
            .field("ident", &self.ident())
            .field("seq", &self.seq())
            .field("header_len", &self.header_len())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}
