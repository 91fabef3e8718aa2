//! A TCP segment as the connection engine sees it: parsed numbers and
//! options, with the payload held zero-copy.
//!
//! The input stage turns a received frame into a [`SegmentIn`] (header
//! checked, options gathered, the buffer trimmed to the payload) and hands
//! it to a connection; a connection answers with [`SegmentOut`]s, which the
//! output path writes as a header buffer with the payload chained behind
//! it. Neither touches wire bytes: that is the stages' job, so the engine
//! is tested by passing segments from one connection to another.

use tpa::buf::{PacketBuf, Shared};
use tpa::wire::tcp::{SackBlocks, TcpFlags, TcpOptionSet};

use super::seq::SeqNumber;

/// A received segment, checked and parsed.
///
/// ```
/// use tpa::buf::PoolBuf;
/// use tpa::wire::tcp::{TcpFlags, TcpOptionSet};
/// use tpa_stages::tcp::segment::SegmentIn;
/// use tpa_stages::tcp::seq::SeqNumber;
///
/// let syn: SegmentIn<PoolBuf> = SegmentIn {
///     seq: SeqNumber::new(1000),
///     ack: SeqNumber::new(0),
///     flags: TcpFlags::SYN,
///     window: 65535,
///     options: TcpOptionSet { mss: Some(1460), ..TcpOptionSet::default() },
///     payload: None,
/// };
/// assert_eq!(syn.seq_len(), 1);
/// ```
#[derive(Debug)]
pub struct SegmentIn<B> {
    /// SEG.SEQ.
    pub seq: SeqNumber,
    /// SEG.ACK (meaningful only with ACK set).
    pub ack: SeqNumber,
    /// The control bits.
    pub flags: TcpFlags,
    /// SEG.WND as on the wire, not yet scaled.
    pub window: u16,
    /// The options the stack acts on.
    pub options: TcpOptionSet,
    /// The data: the received buffer trimmed to exactly the payload (no
    /// header in front, no padding behind); `None` when there is none.
    pub payload: Option<B>,
}

impl<B: PacketBuf> SegmentIn<B> {
    /// Payload bytes.
    #[inline]
    pub fn data_len(&self) -> u32 {
        self.payload.as_ref().map_or(0, |p| p.total_len() as u32)
    }

    /// SEG.LEN: payload bytes plus one for SYN and one for FIN (RFC 9293
    /// §3.4).
    #[inline]
    pub fn seq_len(&self) -> u32 {
        self.data_len() + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

/// The options a connection puts on a segment it sends. The output path
/// writes them in this order, NOP-aligned: MSS, window scale, SACK
/// permitted, timestamps, SACK blocks (Linux's order).
///
/// ```
/// use tpa_stages::tcp::segment::OptionsOut;
/// let opts = OptionsOut { mss: Some(1460), timestamps: Some((1, 0)), ..OptionsOut::default() };
/// assert_eq!(opts.wire_len(), 4 + 12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptionsOut {
    /// MSS (SYN and SYN-ACK only).
    pub mss: Option<u16>,
    /// Window scale shift (SYN and SYN-ACK only).
    pub window_scale: Option<u8>,
    /// SACK permitted (SYN and SYN-ACK only).
    pub sack_permitted: bool,
    /// `(TSval, TSecr)`.
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks, most recent first (RFC 2018 §4).
    pub sack: Option<SackBlocks>,
}

impl OptionsOut {
    /// Bytes the options take on the wire, padded to a multiple of 4 the
    /// way [`TcpOptionWriter`](tpa::wire::tcp::TcpOptionWriter) pads them.
    #[inline]
    pub fn wire_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.window_scale.is_some() {
            len += 4; // NOP + 3
        }
        if self.sack_permitted {
            len += 4; // NOP NOP + 2
        }
        if self.timestamps.is_some() {
            len += 12; // NOP NOP + 10
        }
        if let Some(sack) = &self.sack {
            len += 4 + 8 * sack.len(); // NOP NOP + 2 + 8n
        }
        len
    }
}

/// A segment a connection wants sent. The output path fills in the ports,
/// addresses and checksum.
///
/// ```
/// use tpa::buf::PoolBuf;
/// use tpa::wire::tcp::TcpFlags;
/// use tpa_stages::tcp::segment::{OptionsOut, SegmentOut};
/// use tpa_stages::tcp::seq::SeqNumber;
///
/// let ack: SegmentOut<PoolBuf> = SegmentOut {
///     seq: SeqNumber::new(1),
///     ack: SeqNumber::new(1001),
///     flags: TcpFlags::ACK,
///     window: 512,
///     options: OptionsOut::default(),
///     payload: None,
/// };
/// assert_eq!(ack.data_len(), 0);
/// ```
#[derive(Debug)]
pub struct SegmentOut<B: PacketBuf> {
    /// SEG.SEQ.
    pub seq: SeqNumber,
    /// SEG.ACK (sent with ACK set).
    pub ack: SeqNumber,
    /// The control bits.
    pub flags: TcpFlags,
    /// SEG.WND as it goes on the wire, already scaled down.
    pub window: u16,
    /// The options.
    pub options: OptionsOut,
    /// The data: a handle on the send queue's buffer (chained behind the
    /// header buffer without a copy; the queue keeps its own handle until
    /// the data is acknowledged).
    pub payload: Option<Shared<B>>,
}

impl<B: PacketBuf> SegmentOut<B> {
    /// Payload bytes.
    #[inline]
    pub fn data_len(&self) -> u32 {
        self.payload.as_ref().map_or(0, |p| p.total_len() as u32)
    }

    /// SEG.LEN: payload bytes plus one for SYN and one for FIN.
    #[inline]
    pub fn seq_len(&self) -> u32 {
        self.data_len() + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

/// A segment of the straight path (`Connection::poll_quiet`): ACK set,
/// the timestamps option when agreed and no other option; its data
/// borrowed from the send queue (no reference taken when it is copied).
pub(crate) struct QuietSeg<'a, B: PacketBuf> {
    /// SEG.SEQ.
    pub seq: SeqNumber,
    /// SEG.ACK.
    pub ack: SeqNumber,
    /// The control bits (ACK among them).
    pub flags: TcpFlags,
    /// SEG.WND, scaled down.
    pub window: u16,
    /// `(TSval, TSecr)`, when timestamps were agreed.
    pub timestamps: Option<(u32, u32)>,
    /// The data: the send queue's chunk, borrowed mutably (the segment's
    /// buffer may link it, which adds a reference: see
    /// [`PacketBuf::chain_clone`]).
    pub payload: Option<&'a mut Shared<B>>,
    /// The sum of `payload`'s bytes when the send queue took it as it
    /// copied them: the checksum adds it rather than reading them.
    pub payload_sum: SummedLen,
}

/// The length (high 16 bits) and the one's-complement sum (low 16 bits)
/// of a send-queue chunk's bytes, taken as they were copied; 0 when not
/// taken. A chunk whose bytes change (grown, cut or refilled) is given
/// [`NONE`](Self::NONE), and the length kept with the sum is checked
/// again where it is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SummedLen(u32);

impl SummedLen {
    /// No sum taken.
    pub const NONE: Self = Self(0);

    /// The sum `sum` of `len` bytes ([`NONE`](Self::NONE) past 16 bits of
    /// length).
    #[inline]
    pub fn new(len: usize, sum: u16) -> Self {
        match u16::try_from(len) {
            Ok(len) => Self(u32::from(len) << 16 | u32::from(sum)),
            Err(_) => Self::NONE,
        }
    }

    /// The sum, when it was taken of bytes of this length (not none).
    #[inline]
    pub fn sum_of(self, len: usize) -> Option<u16> {
        (len > 0 && (self.0 >> 16) as usize == len).then_some(self.0 as u16)
    }
}

#[cfg(test)]
impl<B: PacketBuf> QuietSeg<'_, B> {
    /// The equal segment of the full path.
    pub(crate) fn into_segment(self) -> SegmentOut<B> {
        SegmentOut {
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            options: OptionsOut {
                timestamps: self.timestamps,
                ..OptionsOut::default()
            },
            payload: self.payload.cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::buf::{BufferPool, Pool, PoolBuf};
    use tpa::wire::tcp::{SackBlock, TcpOptionWriter};

    #[test]
    fn wire_len_matches_the_writer() {
        let blocks = SackBlocks::new(&[
            SackBlock { left: 1, right: 2 },
            SackBlock { left: 5, right: 9 },
        ])
        .unwrap();
        for mask in 0u8..32 {
            let opts = OptionsOut {
                mss: (mask & 1 != 0).then_some(1460),
                window_scale: (mask & 2 != 0).then_some(7),
                sack_permitted: mask & 4 != 0,
                timestamps: (mask & 8 != 0).then_some((1, 2)),
                sack: (mask & 16 != 0).then_some(blocks),
            };
            if opts.wire_len() > tpa::wire::tcp::MAX_OPTIONS_LEN {
                continue; // a connection never asks for more than fits
            }
            let mut buf = [0u8; 60];
            let mut w = TcpOptionWriter::new(&mut buf);
            if let Some(m) = opts.mss {
                w.mss(m).unwrap();
            }
            if let Some(s) = opts.window_scale {
                w.window_scale(s).unwrap();
            }
            if opts.sack_permitted {
                w.sack_permitted().unwrap();
            }
            if let Some((a, b)) = opts.timestamps {
                w.timestamps(a, b).unwrap();
            }
            if let Some(s) = &opts.sack {
                w.sack(s.as_slice()).unwrap();
            }
            assert_eq!(w.finish(), opts.wire_len(), "options {opts:?}");
        }
    }

    #[test]
    fn seq_len_counts_syn_fin_and_data() {
        let pool = Pool::with_capacity(4).unwrap();
        let mut data: PoolBuf = pool.alloc().unwrap();
        data.extend_from_slice(b"hello").unwrap();
        let seg = SegmentIn {
            seq: SeqNumber::new(7),
            ack: SeqNumber::new(0),
            flags: TcpFlags::FIN | TcpFlags::ACK,
            window: 1,
            options: TcpOptionSet::default(),
            payload: Some(data),
        };
        assert_eq!((seg.data_len(), seg.seq_len()), (5, 6));
        drop(seg);
        pool.assert_whole();
    }
}
