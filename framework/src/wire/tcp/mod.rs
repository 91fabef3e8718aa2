//! TCP (RFC 9293): the header, its flags, its options and its pseudo-header
//! checksums.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use tpa::wire::tcp::{Tcp, TcpFlags, TcpOptionWriter, TcpOptions, TcpView};
//!
//! let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let mut seg = [0u8; 60];
//! let mut w = TcpOptionWriter::new(&mut seg[20..]);
//! w.mss(1460).unwrap();
//! w.window_scale(7).unwrap();
//! let opt_len = w.finish();
//! let tcp = Tcp {
//!     src_port: 40000,
//!     dst_port: 80,
//!     seq: 1,
//!     ack: 0,
//!     data_offset: ((20 + opt_len) / 4) as u8,
//!     reserved: 0,
//!     flags: TcpFlags::SYN,
//!     window: 65535,
//!     checksum: 0,
//!     urgent: 0,
//! };
//! tcp.emit(&mut seg).unwrap();
//! let mut view = TcpView::new(&mut seg[..20 + opt_len]).unwrap();
//! view.fill_checksum_v4(src, dst);
//! assert!(view.checksum_ok_v4(src, dst));
//! assert!(view.flags().syn());
//! let opts = TcpOptions::new(view.options()).summary().unwrap();
//! assert_eq!((opts.mss, opts.window_scale), (Some(1460), Some(7)));
//! ```

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::header;
use crate::header::checksum;
use crate::header::{Bytes, BytesMut, HeaderError};
use crate::wire::ipv4::IpProtocol;
use crate::wire::transport::Endpoints;

mod options;

pub use options::{
    kind as option_kind, OptionLayout, SackBlock, SackBlocks, TcpOption, TcpOptionError,
    TcpOptionSet, TcpOptionWriter, TcpOptions, MAX_OPTIONS_LEN, MAX_SACK_BLOCKS,
};

/// The eight TCP control bits of header byte 13 (CWR, ECE, URG, ACK, PSH,
/// RST, SYN, FIN).
///
/// ```
/// use tpa::wire::tcp::TcpFlags;
/// let f = TcpFlags::SYN | TcpFlags::ACK;
/// assert!(f.syn() && f.ack() && !f.fin());
/// assert_eq!(u8::from(f), 0x12);
/// assert_eq!(format!("{f}"), "SYN|ACK");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment number is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Whether every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether FIN is set.
    #[inline]
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    /// Whether SYN is set.
    #[inline]
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    /// Whether RST is set.
    #[inline]
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// Whether PSH is set.
    #[inline]
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    /// Whether ACK is set.
    #[inline]
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    /// Whether URG is set.
    #[inline]
    pub const fn urg(self) -> bool {
        self.contains(Self::URG)
    }
    /// Whether ECE is set.
    #[inline]
    pub const fn ece(self) -> bool {
        self.contains(Self::ECE)
    }
    /// Whether CWR is set.
    #[inline]
    pub const fn cwr(self) -> bool {
        self.contains(Self::CWR)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl From<u8> for TcpFlags {
    #[inline]
    fn from(b: u8) -> Self {
        TcpFlags(b)
    }
}

impl From<TcpFlags> for u8 {
    #[inline]
    fn from(f: TcpFlags) -> u8 {
        f.0
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

/// A TCP header, 20 bytes plus up to 40 bytes of options
/// (`data_offset * 4`), walked by [`TcpView::options_iter`].
#[header(length = data_offset * 4, options = TcpOptions)]
pub struct Tcp {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (significant with ACK).
    pub ack: u32,
    /// Header length in 32-bit words (5 without options, up to 15).
    pub data_offset: u4,
    /// Reserved bits; the lowest is the former ECN-nonce (NS) bit of RFC 3540.
    pub reserved: u4,
    /// Control bits.
    #[field(u8)]
    pub flags: TcpFlags,
    /// Receive window (scaled by the negotiated shift).
    pub window: u16,
    /// Checksum over the pseudo-header, header and payload.
    pub checksum: u16,
    /// Urgent pointer (significant with URG).
    pub urgent: u16,
}

impl Tcp {
    /// The one's-complement sum of the 20-byte fixed header as [`Tcp::emit`]
    /// writes it, with the checksum field counted as zero, computed from the
    /// field values: nothing is read back from a buffer.
    #[inline]
    fn fixed_sum(&self) -> u16 {
        let offset_flags = u16::from_be_bytes([
            ((self.data_offset & 0x0f) << 4) | (self.reserved & 0x0f),
            self.flags.0,
        ]);
        // Nine 16-bit words: the total stays below 2^20, so two folds
        // bring it down to 16 bits.
        let acc = u32::from(self.src_port)
            + u32::from(self.dst_port)
            + (self.seq >> 16)
            + (self.seq & 0xffff)
            + (self.ack >> 16)
            + (self.ack & 0xffff)
            + u32::from(offset_flags)
            + u32::from(self.window)
            + u32::from(self.urgent);
        let acc = (acc & 0xffff) + (acc >> 16);
        ((acc & 0xffff) + (acc >> 16)) as u16
    }

    /// The checksum a segment headed by `self` carries over IPv4, where
    /// `rest` is everything after the fixed header: the options, then the
    /// payload. The header's own `checksum` field is ignored.
    ///
    /// The fixed header is summed from the field values, so this gives the
    /// same result as [`TcpView::compute_checksum_v4`] on the emitted
    /// segment without reading the header back.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use tpa::wire::tcp::{Tcp, TcpFlags, TcpView};
    /// let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    /// let tcp = Tcp {
    ///     src_port: 80, dst_port: 40000, seq: 7, ack: 2, data_offset: 5, reserved: 0,
    ///     flags: TcpFlags::ACK, window: 512, checksum: 0, urgent: 0,
    /// };
    /// let payload = b"hello";
    /// let mut seg = [0u8; 25];
    /// tcp.emit(&mut seg).unwrap();
    /// seg[20..].copy_from_slice(payload);
    /// let view = TcpView::new(&seg[..]).unwrap();
    /// assert_eq!(tcp.checksum_v4(src, dst, payload), view.compute_checksum_v4(src, dst));
    /// ```
    #[inline]
    pub fn checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr, rest: &[u8]) -> u16 {
        self.checksum_over(Endpoints::V4(src, dst), rest)
    }

    /// The checksum a segment headed by `self` carries over IPv6; as
    /// [`Tcp::checksum_v4`].
    #[inline]
    pub fn checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr, rest: &[u8]) -> u16 {
        self.checksum_over(Endpoints::V6(src, dst), rest)
    }

    /// The checksum from the pseudo-header of `ends`, the fixed header's
    /// fields and `rest` (which starts at the even offset 20).
    #[inline]
    fn checksum_over(&self, ends: Endpoints<'_>, rest: &[u8]) -> u16 {
        let pseudo = ends.pseudo_header(IpProtocol::Tcp, Self::LEN + rest.len());
        let head = checksum::combine(pseudo, self.fixed_sum());
        !checksum::combine(head, checksum::sum(rest))
    }

    /// Writes the header into the start of `segment` with the checksum over
    /// the pseudo-header of `ends` filled in.
    #[inline]
    fn emit_checksummed(
        &self,
        ends: Endpoints<'_>,
        segment: &mut [u8],
    ) -> Result<usize, HeaderError> {
        let rest = segment.get(Self::LEN..).unwrap_or_default();
        let checksum = self.checksum_over(ends, rest);
        Tcp { checksum, ..*self }.emit(segment)
    }

    /// Writes the header into the start of `segment` with the checksum for
    /// IPv4 filled in; `segment` is the whole TCP segment, with the options
    /// and the payload already in place after the fixed 20 bytes. Returns
    /// the header length, as [`Tcp::emit`].
    ///
    /// Faster than [`Tcp::emit`] followed by
    /// [`TcpView::fill_checksum_v4`]: the fixed header is summed from the
    /// field values instead of being loaded back right after being stored.
    ///
    /// # Errors
    ///
    /// As [`Tcp::emit`]: `segment` is shorter than the header, or
    /// `data_offset` is below 5.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use tpa::wire::tcp::{Tcp, TcpFlags, TcpView};
    /// let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    /// let tcp = Tcp {
    ///     src_port: 80, dst_port: 40000, seq: 7, ack: 2, data_offset: 5, reserved: 0,
    ///     flags: TcpFlags::ACK | TcpFlags::PSH, window: 512, checksum: 0, urgent: 0,
    /// };
    /// let mut seg = [0u8; 25];
    /// seg[20..].copy_from_slice(b"hello");
    /// assert_eq!(tcp.emit_checksummed_v4(src, dst, &mut seg), Ok(20));
    /// assert!(TcpView::new(&seg[..]).unwrap().checksum_ok_v4(src, dst));
    /// ```
    #[inline]
    pub fn emit_checksummed_v4(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        segment: &mut [u8],
    ) -> Result<usize, HeaderError> {
        self.emit_checksummed(Endpoints::V4(src, dst), segment)
    }

    /// Writes the header into the start of `segment` with the checksum for
    /// IPv6 filled in; as [`Tcp::emit_checksummed_v4`].
    ///
    /// # Errors
    ///
    /// As [`Tcp::emit`].
    #[inline]
    pub fn emit_checksummed_v6(
        &self,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        segment: &mut [u8],
    ) -> Result<usize, HeaderError> {
        self.emit_checksummed(Endpoints::V6(src, dst), segment)
    }
}

impl<B: Bytes> TcpView<B> {
    /// The checksum this segment (the whole buffer: header and payload)
    /// should carry over IPv4.
    pub fn compute_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        self.compute_checksum(Endpoints::V4(src, dst))
    }

    /// The checksum this segment (the whole buffer) should carry over IPv6.
    pub fn compute_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> u16 {
        self.compute_checksum(Endpoints::V6(src, dst))
    }

    /// The checksum this segment should carry over the pseudo-header of
    /// `ends`; the checksum field (bytes 16..18) counts as zero.
    #[inline]
    fn compute_checksum(&self, ends: Endpoints<'_>) -> u16 {
        ends.segment_sum(IpProtocol::Tcp, self.as_bytes(), 16)
            .checksum()
    }

    /// Whether the checksum is right for a segment from `src` to `dst`:
    /// the pseudo-header and the segment, field included, sum to zero. A
    /// field of 0x0000 and one of 0xFFFF are the same one's complement
    /// zero (RFC 1624 §3): a sender may write either where the sum comes
    /// out zero (Linux's TAP writes 0xFFFF where `fill_checksum_v4` writes
    /// 0x0000).
    #[inline]
    pub fn checksum_ok_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        Endpoints::V4(src, dst).verifies(IpProtocol::Tcp, self.as_bytes())
    }

    /// Whether the checksum is right for a segment from `src` to `dst` (as
    /// [`checksum_ok_v4`](Self::checksum_ok_v4)).
    #[inline]
    pub fn checksum_ok_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        Endpoints::V6(src, dst).verifies(IpProtocol::Tcp, self.as_bytes())
    }
}

impl<'a> header::HeaderOptions<'a> for TcpOptions<'a> {
    #[inline]
    fn from_bytes(bytes: &'a [u8]) -> Self {
        TcpOptions::new(bytes)
    }
}

impl<B: BytesMut> TcpView<B> {
    /// Computes and stores the checksum for IPv4.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let c = self.compute_checksum_v4(src, dst);
        self.set_checksum(c);
    }

    /// Computes and stores the checksum for IPv6.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let c = self.compute_checksum_v6(src, dst);
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A header with random fields whose `data_offset` covers `options_len`.
    fn header(
        ports: (u16, u16),
        seq_ack: (u32, u32),
        reserved: u8,
        flags: u8,
        window_urgent: (u16, u16),
        checksum: u16,
        options_len: usize,
    ) -> Tcp {
        Tcp {
            src_port: ports.0,
            dst_port: ports.1,
            seq: seq_ack.0,
            ack: seq_ack.1,
            data_offset: ((Tcp::LEN + options_len) / 4) as u8,
            reserved,
            flags: TcpFlags(flags),
            window: window_urgent.0,
            checksum,
            urgent: window_urgent.1,
        }
    }

    /// The segment `tcp` heads, emitted and checksummed the reference way:
    /// `Tcp::emit`, then `fill_checksum_*` over the buffer.
    fn reference(tcp: &Tcp, rest: &[u8], fill: impl FnOnce(&mut TcpView<&mut [u8]>)) -> Vec<u8> {
        let mut seg = vec![0u8; Tcp::LEN + rest.len()];
        seg[Tcp::LEN..].copy_from_slice(rest);
        tcp.emit(&mut seg).unwrap();
        fill(&mut TcpView::new(&mut seg[..]).unwrap());
        seg
    }

    #[test]
    fn a_zero_sum_checks_as_either_zero() {
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
        let tcp = header((4040, 39129), (1, 2), 0, 0x12, (65160, 0), 0, 0);
        // A payload word that brings the sum to zero: the checksum of the
        // segment with payload 0 (the complement of its sum) added to it.
        let mut seg = reference(&tcp, &[0, 0], |v| v.fill_checksum_v4(src, dst));
        let c = TcpView::new(&seg[..]).unwrap().checksum();
        seg[Tcp::LEN..].copy_from_slice(&c.to_be_bytes());
        let mut view = TcpView::new(&mut seg[..]).unwrap();
        view.fill_checksum_v4(src, dst);
        assert_eq!(view.checksum(), 0x0000);
        assert!(view.checksum_ok_v4(src, dst));
        view.set_checksum(0xFFFF);
        assert!(view.checksum_ok_v4(src, dst), "0xFFFF is zero too");
        // Any other value is still wrong, and so is a zero for a sum that
        // is not.
        view.set_checksum(0xFFFE);
        assert!(!view.checksum_ok_v4(src, dst));
        seg[Tcp::LEN] ^= 1;
        let mut view = TcpView::new(&mut seg[..]).unwrap();
        for field in [0x0000, 0xFFFF] {
            view.set_checksum(field);
            assert!(!view.checksum_ok_v4(src, dst), "{field:#x}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 16 } else { 2000 }))]

        #[test]
        fn emit_checksummed_matches_fill_checksum(
            ports in any::<(u16, u16)>(),
            seq_ack in any::<(u32, u32)>(),
            reserved in 0u8..16,
            flags in any::<u8>(),
            window_urgent in any::<(u16, u16)>(),
            stale_checksum in any::<u16>(),
            option_words in 0usize..=10,
            bytes in proptest::collection::vec(any::<u8>(), 40 + 300),
            payload_len in 0usize..=300,
            v4 in any::<([u8; 4], [u8; 4])>(),
            v6 in any::<([u8; 16], [u8; 16])>(),
        ) {
            let options_len = 4 * option_words;
            // Options and payload: random bytes, any payload length (odd
            // ones included).
            let rest = &bytes[..options_len + payload_len];
            let tcp = header(ports, seq_ack, reserved, flags, window_urgent, stale_checksum, options_len);

            let (src, dst) = (Ipv4Addr::from(v4.0), Ipv4Addr::from(v4.1));
            let want = reference(&tcp, rest, |v| v.fill_checksum_v4(src, dst));
            let mut got = vec![0u8; want.len()];
            got[Tcp::LEN..].copy_from_slice(rest);
            prop_assert_eq!(tcp.emit_checksummed_v4(src, dst, &mut got), Ok(Tcp::LEN + options_len));
            prop_assert_eq!(&got, &want);
            let view = TcpView::new(&want[..]).unwrap();
            prop_assert_eq!(tcp.checksum_v4(src, dst, rest), view.checksum());
            prop_assert!(view.checksum_ok_v4(src, dst));

            let (src, dst) = (Ipv6Addr::from(v6.0), Ipv6Addr::from(v6.1));
            let want = reference(&tcp, rest, |v| v.fill_checksum_v6(&src, &dst));
            let mut got = vec![0u8; want.len()];
            got[Tcp::LEN..].copy_from_slice(rest);
            prop_assert_eq!(tcp.emit_checksummed_v6(&src, &dst, &mut got), Ok(Tcp::LEN + options_len));
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(tcp.checksum_v6(&src, &dst, rest), TcpView::new(&want[..]).unwrap().checksum());
        }

        #[test]
        fn emit_checksummed_rejects_short_segments(
            option_words in 0usize..=10,
            short_by in 1usize..=20,
        ) {
            let options_len = 4 * option_words;
            let tcp = header((1, 2), (3, 4), 0, 0x10, (5, 0), 0, options_len);
            let mut seg = vec![0u8; Tcp::LEN + options_len - short_by];
            let src = Ipv4Addr::new(10, 0, 0, 1);
            prop_assert!(tcp.emit_checksummed_v4(src, src, &mut seg).is_err());
            prop_assert!(seg.iter().all(|&b| b == 0), "nothing written on error");
        }
    }
}
