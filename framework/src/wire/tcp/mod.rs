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
use crate::header::checksum::{pseudo_header_v4, pseudo_header_v6, Checksum};
use crate::header::{Bytes, BytesMut};
use crate::wire::ipv4::IpProtocol;

mod options;

pub use options::{
    kind as option_kind, SackBlock, SackBlocks, TcpOption, TcpOptionError, TcpOptionSet,
    TcpOptionWriter, TcpOptions, MAX_OPTIONS_LEN, MAX_SACK_BLOCKS,
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

/// Sum of a segment with its checksum field (bytes 16..18) skipped.
#[inline]
fn sum_without_checksum(c: &mut Checksum, seg: &[u8]) {
    c.add_bytes(&seg[..16]);
    c.add_bytes(&seg[18..]);
}

impl<B: Bytes> TcpView<B> {
    /// The checksum this segment (the whole buffer: header and payload)
    /// should carry over IPv4.
    pub fn compute_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let seg = self.as_bytes();
        let mut c = Checksum::new();
        c.add_sum(pseudo_header_v4(
            src,
            dst,
            IpProtocol::Tcp.raw(),
            seg.len() as u16,
        ));
        sum_without_checksum(&mut c, seg);
        c.checksum()
    }

    /// The checksum this segment (the whole buffer) should carry over IPv6.
    pub fn compute_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> u16 {
        let seg = self.as_bytes();
        let mut c = Checksum::new();
        c.add_sum(pseudo_header_v6(
            src,
            dst,
            IpProtocol::Tcp.raw(),
            seg.len() as u32,
        ));
        sum_without_checksum(&mut c, seg);
        c.checksum()
    }

    /// Whether the checksum is right for a segment from `src` to `dst`.
    #[inline]
    pub fn checksum_ok_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == self.compute_checksum_v4(src, dst)
    }

    /// Whether the checksum is right for a segment from `src` to `dst`.
    #[inline]
    pub fn checksum_ok_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.checksum() == self.compute_checksum_v6(src, dst)
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
