// The expansion of header_dynamic.rs, checked by `cargo test -p tpa-macros golden`.
// Do not edit: `TPA_BLESS=1 cargo test -p tpa-macros golden` rewrites it.

/// An IPv4 header.
///
/// Declared with `#[header]`: [`Ipv4View`] reads and writes the same fields in
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
pub struct Ipv4 {
    /// Always 4.
    ///
    /// Wire: `u4`, bits 0..4 (4 bits).
    pub version: u8,
    /// Header length in 32-bit words.
    ///
    /// Wire: `u4`, bits 4..8 (4 bits).
    pub ihl: u8,
    /// Differentiated services code point.
    ///
    /// Wire: `u6`, bits 8..14 (6 bits).
    pub dscp: u8,
    /// Explicit congestion notification.
    ///
    /// Wire: `u2`, bits 14..16 (2 bits).
    pub ecn: u8,
    /// Length of the datagram in bytes.
    ///
    /// Wire: `u16`, bytes 2..4.
    pub total_len: u16,
    /// Identification.
    ///
    /// Wire: `u16`, bytes 4..6.
    pub ident: u16,
    /// Flags.
    ///
    /// Wire: `u3`, bits 48..51 (3 bits).
    pub flags: u8,
    /// Fragment offset in units of 8 bytes.
    ///
    /// Wire: `u13`, bits 51..64 (13 bits).
    pub frag_offset: u16,
    /// Time to live.
    ///
    /// Wire: `u8`, bytes 8..9.
    pub ttl: u8,
    /// The protocol of the payload.
    ///
    /// Wire: `u8`, bytes 9..10.
    pub protocol: IpProtocol,
    /// Header checksum.
    ///
    /// Wire: `u16`, bytes 10..12.
    pub checksum: u16,
    /// Source address.
    ///
    /// Wire: `Ipv4Addr`, bytes 12..16.
    pub src: Ipv4Addr,
    /// Destination address.
    ///
    /// Wire: `Ipv4Addr`, bytes 16..20.
    pub dst: Ipv4Addr,
}
impl ::core::default::Default for Ipv4 {
    /// The header whose bytes are all zero.
    fn default() -> Self {
        Self {
            version: 0,
            ihl: 0,
            dscp: 0,
            ecn: 0,
            total_len: 0,
            ident: 0,
            flags: 0,
            frag_offset: 0,
            ttl: 0,
            protocol: <IpProtocol as ::core::convert::From<u8>>::from(0),
            checksum: 0,
            src: <Ipv4Addr as ::core::convert::From<[u8; 4]>>::from([0; 4]),
            dst: <Ipv4Addr as ::core::convert::From<[u8; 4]>>::from([0; 4]),
        }
    }
}
impl Ipv4 {
    /// Length in bytes of the fixed part of a `Ipv4` header (all declared fields);
    /// the smallest valid header length.
    pub const LEN: usize = 20;
    /// Reads a header from the start of `bytes` (a copy of its fields).
    ///
    /// # Errors
    ///
    /// As for the view's `new`: the buffer is too short or the header declares a bad length.
    #[inline]
    pub fn parse(
        bytes: &[u8],
    ) -> ::core::result::Result<Self, ::tpa::header::HeaderError> {
        ::core::result::Result::Ok(Ipv4View::new(bytes)?.to_header())
    }
    /// The header length in bytes these field values declare: `ihl * 4`.
    #[inline]
    pub fn header_len(&self) -> usize {
        let ihl = self.ihl as usize;
        ihl * 4
    }
    /// Writes the header's fields to the start of `buf` and returns the header
    /// length.
    ///
    /// Only the fixed part ([`Self::LEN`] bytes) is written; options and payload
    /// bytes are left alone. Values too wide for their field are masked to its
    /// width (debug builds assert instead).
    ///
    /// The `checksum` field's value is ignored: `emit` computes the checksum over
    /// the `header_len()` bytes, so options (if any) must already be in `buf` after
    /// the fixed part.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`](::tpa::header::HeaderError::Truncated) if `buf`
    /// is shorter than the header length;
    /// [`HeaderError::BadLength`](::tpa::header::HeaderError::BadLength) if the
    /// fields declare a length shorter than [`Self::LEN`].
    #[inline]
    pub fn emit(
        &self,
        buf: &mut [u8],
    ) -> ::core::result::Result<usize, ::tpa::header::HeaderError> {
        let header_len = self.header_len();
        if header_len < Self::LEN {
            return ::core::result::Result::Err(::tpa::header::HeaderError::BadLength {
                header: "Ipv4",
                declared: header_len,
                min: Self::LEN,
            });
        }
        if buf.len() < header_len {
            return ::core::result::Result::Err(::tpa::header::HeaderError::Truncated {
                header: "Ipv4",
                needed: header_len,
                available: buf.len(),
            });
        }
        let available = buf.len();
        let ::core::option::Option::Some((out, rest)) = buf
            .split_at_mut_checked(Self::LEN) else {
            return ::core::result::Result::Err(::tpa::header::HeaderError::Truncated {
                header: "Ipv4",
                needed: Self::LEN,
                available,
            });
        };
        let mut fixed = [0u8; Self::LEN];
        let mut view = Ipv4View {
            bytes: ::tpa::header::HeaderBytes::from_array(&mut fixed),
            header_len: Self::LEN,
        };
        view.set_version(self.version);
        view.set_ihl(self.ihl);
        view.set_dscp(self.dscp);
        view.set_ecn(self.ecn);
        view.set_total_len(self.total_len);
        view.set_ident(self.ident);
        view.set_flags(self.flags);
        view.set_frag_offset(self.frag_offset);
        view.set_ttl(self.ttl);
        view.set_protocol(self.protocol);
        view.set_src(self.src);
        view.set_dst(self.dst);
        let mut sum = ::tpa::header::checksum::Checksum::new();
        sum.add_bytes(view.as_bytes());
        sum.add_bytes(rest.get(..header_len - Self::LEN).unwrap_or_default());
        view.set_checksum(sum.checksum());
        out.copy_from_slice(&fixed);
        ::core::result::Result::Ok(header_len)
    }
}
/// A zero-copy view of a [`Ipv4`] header at the start of a byte buffer.
///
/// [`new`](Self::new) checks the buffer length once (and the length the header
/// declares); the accessors then read and write the fixed part at constant
/// offsets without further checks. `B` is any [`Bytes`](::tpa::header::Bytes)
/// (e.g. `&[u8]`) for reading and any [`BytesMut`](::tpa::header::BytesMut)
/// (e.g. `&mut [u8]`) for the setters. The header/options/payload split is the
/// one checked by `new`; nothing panics.
#[derive(::core::clone::Clone, ::core::marker::Copy)]
pub struct Ipv4View<B> {
    bytes: ::tpa::header::HeaderBytes<B, { Ipv4::LEN }>,
    header_len: usize,
}
impl<B: ::tpa::header::Bytes> Ipv4View<B> {
    /// Makes a view of the `Ipv4` header at the start of `bytes`.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`](::tpa::header::HeaderError::Truncated) if `bytes`
    /// is shorter than [`Ipv4::LEN`] or than the length the header declares;
    /// [`HeaderError::BadLength`](::tpa::header::HeaderError::BadLength) if the
    /// declared length is shorter than the fixed part.
    #[inline]
    pub fn new(bytes: B) -> ::core::result::Result<Self, ::tpa::header::HeaderError> {
        let bytes = ::tpa::header::HeaderBytes::new(bytes, "Ipv4")?;
        let available = bytes.as_bytes().len();
        let mut view = Self {
            bytes,
            header_len: Ipv4::LEN,
        };
        let declared = view.declared_len();
        if declared < Ipv4::LEN {
            return ::core::result::Result::Err(::tpa::header::HeaderError::BadLength {
                header: "Ipv4",
                declared,
                min: Ipv4::LEN,
            });
        }
        if declared > available {
            return ::core::result::Result::Err(::tpa::header::HeaderError::Truncated {
                header: "Ipv4",
                needed: declared,
                available,
            });
        }
        view.header_len = declared;
        ::core::result::Result::Ok(view)
    }
    /// The header length `ihl * 4` declares, in bytes (not yet checked).
    #[inline]
    fn declared_len(&self) -> usize {
        let ihl = self.ihl() as usize;
        ihl * 4
    }
    /// The header length in bytes, as declared by the header and checked when the
    /// view was made (a later setter call does not move it).
    #[inline]
    pub fn header_len(&self) -> usize {
        self.header_len
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
        self.bytes.as_bytes().get(Ipv4::LEN..self.header_len()).unwrap_or_default()
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
    pub fn to_header(&self) -> Ipv4 {
        Ipv4 {
            version: self.version(),
            ihl: self.ihl(),
            dscp: self.dscp(),
            ecn: self.ecn(),
            total_len: self.total_len(),
            ident: self.ident(),
            flags: self.flags(),
            frag_offset: self.frag_offset(),
            ttl: self.ttl(),
            protocol: self.protocol(),
            checksum: self.checksum(),
            src: self.src(),
            dst: self.dst(),
        }
    }
    /// Whether the `checksum` field holds the correct internet checksum of the
    /// header bytes.
    #[inline]
    pub fn checksum_ok(&self) -> bool {
        ::tpa::header::checksum::checksum(self.header_bytes()) == 0
    }
    /// Walks the options (the bytes [`options`](Self::options) returns) with
    /// [`Ipv4Options`], the walker this header's declaration names.
    #[inline]
    pub fn options_iter(&self) -> Ipv4Options<'_> {
        <Ipv4Options<'_> as ::tpa::header::HeaderOptions<'_>>::from_bytes(self.options())
    }
    /// Always 4.
    ///
    /// Wire: `u4`, bits 0..4 (4 bits).
    #[inline]
    pub fn version(&self) -> u8 {
        let b = self.bytes.fixed();
        b[0] >> 4
    }
    /// Header length in 32-bit words.
    ///
    /// Wire: `u4`, bits 4..8 (4 bits).
    #[inline]
    pub fn ihl(&self) -> u8 {
        let b = self.bytes.fixed();
        b[0] & 0xf
    }
    /// Differentiated services code point.
    ///
    /// Wire: `u6`, bits 8..14 (6 bits).
    #[inline]
    pub fn dscp(&self) -> u8 {
        let b = self.bytes.fixed();
        b[1] >> 2
    }
    /// Explicit congestion notification.
    ///
    /// Wire: `u2`, bits 14..16 (2 bits).
    #[inline]
    pub fn ecn(&self) -> u8 {
        let b = self.bytes.fixed();
        b[1] & 0x3
    }
    /// Length of the datagram in bytes.
    ///
    /// Wire: `u16`, bytes 2..4.
    #[inline]
    pub fn total_len(&self) -> u16 {
        let b = self.bytes.fixed();
        u16::from_be_bytes([b[2], b[3]])
    }
    /// Identification.
    ///
    /// Wire: `u16`, bytes 4..6.
    #[inline]
    pub fn ident(&self) -> u16 {
        let b = self.bytes.fixed();
        u16::from_be_bytes([b[4], b[5]])
    }
    /// Flags.
    ///
    /// Wire: `u3`, bits 48..51 (3 bits).
    #[inline]
    pub fn flags(&self) -> u8 {
        let b = self.bytes.fixed();
        b[6] >> 5
    }
    /// Fragment offset in units of 8 bytes.
    ///
    /// Wire: `u13`, bits 51..64 (13 bits).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        let b = self.bytes.fixed();
        u16::from_be_bytes([b[6], b[7]]) & 0x1fff
    }
    /// Time to live.
    ///
    /// Wire: `u8`, bytes 8..9.
    #[inline]
    pub fn ttl(&self) -> u8 {
        let b = self.bytes.fixed();
        b[8]
    }
    /// The protocol of the payload.
    ///
    /// Wire: `u8`, bytes 9..10.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        let b = self.bytes.fixed();
        <IpProtocol as ::core::convert::From<u8>>::from(b[9])
    }
    /// Header checksum.
    ///
    /// Wire: `u16`, bytes 10..12.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = self.bytes.fixed();
        u16::from_be_bytes([b[10], b[11]])
    }
    /// Source address.
    ///
    /// Wire: `Ipv4Addr`, bytes 12..16.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        let b = self.bytes.fixed();
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&b[12..16]);
        <Ipv4Addr as ::core::convert::From<[u8; 4]>>::from(bytes)
    }
    /// Destination address.
    ///
    /// Wire: `Ipv4Addr`, bytes 16..20.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.bytes.fixed();
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&b[16..20]);
        <Ipv4Addr as ::core::convert::From<[u8; 4]>>::from(bytes)
    }
}
impl<B: ::tpa::header::BytesMut> Ipv4View<B> {
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
        self.bytes.as_bytes_mut().get_mut(Ipv4::LEN..end).unwrap_or_default()
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
    /// Computes the internet checksum of the header bytes and stores it in the
    /// `checksum` field.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let checksum = ::tpa::header::checksum::checksum(self.header_bytes());
        self.set_checksum(checksum);
    }
    /// Sets the `version` field. Only the low 4 bits of the value are stored (debug
    /// builds assert that it fits).
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        ::core::debug_assert!(
            value <= 0xf, "Ipv4::version is 4 bits wide; {value} does not fit"
        );
        let value = value & 0xf;
        let b = self.bytes.fixed_mut();
        b[0] = (b[0] & 0xf) | (value << 4);
    }
    /// Sets the `ihl` field. Only the low 4 bits of the value are stored (debug
    /// builds assert that it fits).
    #[inline]
    pub fn set_ihl(&mut self, value: u8) {
        ::core::debug_assert!(
            value <= 0xf, "Ipv4::ihl is 4 bits wide; {value} does not fit"
        );
        let value = value & 0xf;
        let b = self.bytes.fixed_mut();
        b[0] = (b[0] & 0xf0) | value;
    }
    /// Sets the `dscp` field. Only the low 6 bits of the value are stored (debug
    /// builds assert that it fits).
    #[inline]
    pub fn set_dscp(&mut self, value: u8) {
        ::core::debug_assert!(
            value <= 0x3f, "Ipv4::dscp is 6 bits wide; {value} does not fit"
        );
        let value = value & 0x3f;
        let b = self.bytes.fixed_mut();
        b[1] = (b[1] & 0x3) | (value << 2);
    }
    /// Sets the `ecn` field. Only the low 2 bits of the value are stored (debug
    /// builds assert that it fits).
    #[inline]
    pub fn set_ecn(&mut self, value: u8) {
        ::core::debug_assert!(
            value <= 0x3, "Ipv4::ecn is 2 bits wide; {value} does not fit"
        );
        let value = value & 0x3;
        let b = self.bytes.fixed_mut();
        b[1] = (b[1] & 0xfc) | value;
    }
    /// Sets the `total_len` field.
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
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
    /// Sets the `flags` field. Only the low 3 bits of the value are stored (debug
    /// builds assert that it fits).
    #[inline]
    pub fn set_flags(&mut self, value: u8) {
        ::core::debug_assert!(
            value <= 0x7, "Ipv4::flags is 3 bits wide; {value} does not fit"
        );
        let value = value & 0x7;
        let b = self.bytes.fixed_mut();
        b[6] = (b[6] & 0x1f) | (value << 5);
    }
    /// Sets the `frag_offset` field. Only the low 13 bits of the value are stored
    /// (debug builds assert that it fits).
    #[inline]
    pub fn set_frag_offset(&mut self, value: u16) {
        ::core::debug_assert!(
            value <= 0x1fff, "Ipv4::frag_offset is 13 bits wide; {value} does not fit"
        );
        let value = value & 0x1fff;
        let b = self.bytes.fixed_mut();
        let word = (u16::from_be_bytes([b[6], b[7]]) & 0xe000) | value;
        let be = word.to_be_bytes();
        b[6] = be[0];
        b[7] = be[1];
    }
    /// Sets the `ttl` field.
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        let b = self.bytes.fixed_mut();
        b[8] = value;
    }
    /// Sets the `protocol` field.
    #[inline]
    pub fn set_protocol(&mut self, value: IpProtocol) {
        let value: u8 = <IpProtocol as ::core::convert::Into<u8>>::into(value);
        let b = self.bytes.fixed_mut();
        b[9] = value;
    }
    /// Sets the `checksum` field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        let b = self.bytes.fixed_mut();
        let be = value.to_be_bytes();
        b[10] = be[0];
        b[11] = be[1];
    }
    /// Sets the `src` field.
    #[inline]
    pub fn set_src(&mut self, value: Ipv4Addr) {
        let b = self.bytes.fixed_mut();
        b[12..16].copy_from_slice(&value.octets());
    }
    /// Sets the `dst` field.
    #[inline]
    pub fn set_dst(&mut self, value: Ipv4Addr) {
        let b = self.bytes.fixed_mut();
        b[16..20].copy_from_slice(&value.octets());
    }
}
impl<B: ::tpa::header::SplitBytes> Ipv4View<B> {
    /// Cuts the buffer after the header: a view of the header
    /// alone (fixed part and options) and the payload, both
    /// borrowing as long as the original buffer (`&'a [u8]` or
    /// `&'a mut [u8]`), ready for the next layer's view.
    #[inline]
    pub fn split(self) -> (Self, B) {
        let header_len = self.header_len();
        let (bytes, payload) = self.bytes.split_at(header_len);
        (Self { bytes, header_len }, payload)
    }
    /// The bytes after the header, borrowing as long as the
    /// original buffer: `payload()` for the next layer, without
    /// the borrow of the view.
    #[inline]
    pub fn into_payload(self) -> B {
        self.split().1
    }
}
impl<B: ::tpa::header::Bytes> ::core::fmt::Debug for Ipv4View<B> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct("Ipv4View")
            .field("version", &self.version())
            .field("ihl", &self.ihl())
            .field("dscp", &self.dscp())
            .field("ecn", &self.ecn())
            .field("total_len", &self.total_len())
            .field("ident", &self.ident())
            .field("flags", &self.flags())
            .field("frag_offset", &self.frag_offset())
            .field("ttl", &self.ttl())
            .field("protocol", &self.protocol())
            .field("checksum", &self.checksum())
            .field("src", &self.src())
            .field("dst", &self.dst())
            .field("header_len", &self.header_len())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}
