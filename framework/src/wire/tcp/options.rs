//! TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018): a zero-allocation parser
//! over the option bytes of a segment and a writer that lays options out
//! 4-byte aligned.
//!
//! ```
//! use tpa::wire::tcp::{SackBlock, TcpOption, TcpOptionWriter, TcpOptions};
//!
//! let mut buf = [0u8; 40];
//! let mut w = TcpOptionWriter::new(&mut buf);
//! w.mss(1460).unwrap();
//! w.timestamps(7, 0).unwrap();
//! w.sack(&[SackBlock { left: 100, right: 200 }]).unwrap();
//! let len = w.finish();
//! assert_eq!(len % 4, 0);
//!
//! let mut mss = None;
//! for opt in TcpOptions::new(&buf[..len]) {
//!     if let TcpOption::Mss(m) = opt.unwrap() {
//!         mss = Some(m);
//!     }
//! }
//! assert_eq!(mss, Some(1460));
//! ```

use core::fmt;

/// Option kind numbers (IANA "TCP Option Kind Numbers").
pub mod kind {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TIMESTAMPS: u8 = 8;
}

/// The largest option area a TCP header can carry (data offset 15 → 60
/// bytes, minus the 20 fixed bytes).
pub const MAX_OPTIONS_LEN: usize = 40;

/// The most SACK blocks one option can carry (2 + 8 × 4 = 34 ≤ 40 bytes).
pub const MAX_SACK_BLOCKS: usize = 4;

/// One SACK block: the sequence space `[left, right)` the receiver holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: u32,
    /// Sequence number just past the block.
    pub right: u32,
}

/// One to four SACK blocks, stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct SackBlocks {
    blocks: [SackBlock; MAX_SACK_BLOCKS],
    len: u8,
}

impl SackBlocks {
    /// Collects up to four blocks; `None` if `blocks` is empty or longer than
    /// [`MAX_SACK_BLOCKS`].
    #[inline]
    pub fn new(blocks: &[SackBlock]) -> Option<Self> {
        if blocks.is_empty() || blocks.len() > MAX_SACK_BLOCKS {
            return None;
        }
        let mut out = SackBlocks::default();
        out.blocks[..blocks.len()].copy_from_slice(blocks);
        out.len = blocks.len() as u8;
        Some(out)
    }

    /// The blocks, in the order they appeared on the wire.
    #[inline]
    pub fn as_slice(&self) -> &[SackBlock] {
        &self.blocks[..usize::from(self.len)]
    }

    /// How many blocks there are (1..=4 when parsed from a segment).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are no blocks (only for a default value).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Iterates over the blocks.
    #[inline]
    pub fn iter(&self) -> core::slice::Iter<'_, SackBlock> {
        self.as_slice().iter()
    }
}

impl fmt::Debug for SackBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<'a> IntoIterator for &'a SackBlocks {
    type Item = &'a SackBlock;
    type IntoIter = core::slice::Iter<'a, SackBlock>;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One parsed TCP option. The end-of-list option ends iteration and is not
/// yielded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// No-operation padding byte.
    Nop,
    /// Maximum segment size the sender can receive.
    Mss(u16),
    /// Window scale shift count (RFC 7323; values above 14 are the
    /// receiver's business to clamp).
    WindowScale(u8),
    /// The sender accepts SACK blocks.
    SackPermitted,
    /// Selectively acknowledged blocks.
    Sack(SackBlocks),
    /// Timestamps (RFC 7323).
    Timestamps {
        /// The sender's timestamp clock.
        tsval: u32,
        /// The timestamp echoed back.
        tsecr: u32,
    },
    /// Any other option, well-formed as kind, length, data.
    Unknown {
        /// The option kind.
        kind: u8,
        /// The option data (after kind and length).
        data: &'a [u8],
    },
}

/// Malformed option bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOptionError {
    /// The option's kind or length byte, or its data, runs past the end of
    /// the option area.
    Truncated {
        /// The kind of the option that was cut short.
        kind: u8,
    },
    /// The length byte is impossible for this kind (0 or 1 for any kind, or
    /// not the fixed length of a known option).
    BadLength {
        /// The option kind.
        kind: u8,
        /// The length byte found.
        len: u8,
    },
    /// The writer ran out of room (options are limited to 40 bytes).
    NoSpace,
}

impl fmt::Display for TcpOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TcpOptionError::Truncated { kind } => {
                write!(f, "TCP option kind {kind} runs past the end of the options")
            }
            TcpOptionError::BadLength { kind, len } => {
                write!(f, "TCP option kind {kind} has invalid length {len}")
            }
            TcpOptionError::NoSpace => f.write_str("no room left for TCP options"),
        }
    }
}

impl std::error::Error for TcpOptionError {}

/// The layout [`TcpOptions::summary_into`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionLayout {
    /// Exactly `NOP NOP TS` (RFC 7323, appendix A): the timestamps and
    /// nothing else, what an established connection's segments carry.
    Timestamps,
    /// Any other, none at all included.
    Other,
}

/// An iterator over the options in a TCP header's option area.
///
/// It stops after the end-of-list option, at the end of the bytes, or after
/// yielding the first error: it never panics and always terminates (each
/// step consumes at least one byte).
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    /// Iterates over `bytes`, the option area (header bytes 20..header_len).
    #[inline]
    pub fn new(bytes: &'a [u8]) -> Self {
        TcpOptions { rest: bytes }
    }

    /// Collects the options a TCP stack acts on into a [`TcpOptionSet`]:
    /// later occurrences override earlier ones; unknown options are skipped.
    ///
    /// Inline up to the common layout (a call's frame costs more than its
    /// test on every segment), the walk over any other out of line.
    #[inline]
    pub fn summary(self) -> Result<TcpOptionSet, TcpOptionError> {
        let mut set = TcpOptionSet::default();
        self.summary_into(&mut set)?;
        Ok(set)
    }

    /// [`summary`](Self::summary) written into `set`, the place the caller
    /// keeps it (a set returned in a `Result` is built aside and copied,
    /// some fifty bytes, on every segment). Returns the layout found: a
    /// caller that classifies segments by their options learns
    /// "timestamps and nothing else" without reading the set back. `set`
    /// is left as it was when the options are malformed.
    #[inline(always)]
    pub fn summary_into(self, set: &mut TcpOptionSet) -> Result<OptionLayout, TcpOptionError> {
        // Fast path: segments of an established connection with timestamps
        // carry exactly `NOP NOP TS` (the layout of RFC 7323, appendix A).
        // The four leading bytes are compared as one word (a slice
        // pattern compares them one by one).
        const NOP_NOP_TS: [u8; 4] = [kind::NOP, kind::NOP, kind::TIMESTAMPS, 10];
        if let Some((head, values)) = self.rest.split_first_chunk::<4>() {
            if let (true, Ok([v0, v1, v2, v3, e0, e1, e2, e3])) = (
                u32::from_ne_bytes(*head) == u32::from_ne_bytes(NOP_NOP_TS),
                <[u8; 8]>::try_from(values),
            ) {
                *set = TcpOptionSet {
                    timestamps: Some((
                        u32::from_be_bytes([v0, v1, v2, v3]),
                        u32::from_be_bytes([e0, e1, e2, e3]),
                    )),
                    ..TcpOptionSet::default()
                };
                return Ok(OptionLayout::Timestamps);
            }
        }
        *set = self.summary_walk()?;
        Ok(OptionLayout::Other)
    }

    /// [`summary`](Self::summary) of any other layout: a SYN's or
    /// SYN-ACK's in one of the two layouts stacks send read whole, any
    /// other option by option.
    #[inline(never)]
    fn summary_walk(self) -> Result<TcpOptionSet, TcpOptionError> {
        if let Some(set) = syn_summary(self.rest) {
            debug_assert_eq!(Ok(set), self.summary_by_option());
            return Ok(set);
        }
        self.summary_by_option()
    }

    /// [`summary`](Self::summary) of any layout, option by option.
    #[inline]
    fn summary_by_option(self) -> Result<TcpOptionSet, TcpOptionError> {
        let mut set = TcpOptionSet::default();
        for opt in self {
            match opt? {
                TcpOption::Mss(m) => set.mss = Some(m),
                TcpOption::WindowScale(s) => set.window_scale = Some(s),
                TcpOption::SackPermitted => set.sack_permitted = true,
                TcpOption::Sack(s) => set.sack = Some(s),
                TcpOption::Timestamps { tsval, tsecr } => set.timestamps = Some((tsval, tsecr)),
                TcpOption::Nop | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(set)
    }

    #[inline]
    fn fail(&mut self, e: TcpOptionError) -> Option<Result<TcpOption<'a>, TcpOptionError>> {
        self.rest = &[];
        Some(Err(e))
    }
}

/// The options of a SYN or SYN-ACK offering MSS, window scaling, SACK
/// and timestamps in either layout stacks send: [`TcpOptionWriter`]'s
/// (`MSS, NOP WS, NOP NOP SACKOK, NOP NOP TS`, what tpa sends) or Linux's
/// (`MSS, SACKOK, TS, NOP WS`); `None` for any other bytes. What the
/// option-by-option walk gives for those bytes, without the walk.
#[inline]
fn syn_summary(bytes: &[u8]) -> Option<TcpOptionSet> {
    use kind::{MSS, NOP, SACK_PERMITTED as SACKOK, TIMESTAMPS as TS, WINDOW_SCALE as WS};
    let (mss, shift, tsval, tsecr) = match *bytes {
        #[rustfmt::skip]
        [MSS, 4, m0, m1, NOP, WS, 3, shift, NOP, NOP, SACKOK, 2,
         NOP, NOP, TS, 10, v0, v1, v2, v3, e0, e1, e2, e3]
        | [MSS, 4, m0, m1, SACKOK, 2, TS, 10, v0, v1, v2, v3, e0, e1, e2, e3,
           NOP, WS, 3, shift] => ([m0, m1], shift, [v0, v1, v2, v3], [e0, e1, e2, e3]),
        _ => return None,
    };
    Some(TcpOptionSet {
        mss: Some(u16::from_be_bytes(mss)),
        window_scale: Some(shift),
        sack_permitted: true,
        sack: None,
        timestamps: Some((u32::from_be_bytes(tsval), u32::from_be_bytes(tsecr))),
    })
}

#[inline(always)]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline(always)]
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>, TcpOptionError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after_kind) = self.rest.split_first()?;
        match kind {
            kind::EOL => {
                self.rest = &[];
                return None;
            }
            kind::NOP => {
                self.rest = after_kind;
                return Some(Ok(TcpOption::Nop));
            }
            _ => {}
        }
        let Some(&len) = after_kind.first() else {
            return self.fail(TcpOptionError::Truncated { kind });
        };
        if len < 2 {
            return self.fail(TcpOptionError::BadLength { kind, len });
        }
        if usize::from(len) > self.rest.len() {
            return self.fail(TcpOptionError::Truncated { kind });
        }
        let (opt, rest) = self.rest.split_at(usize::from(len));
        let data = &opt[2..];
        let bad = TcpOptionError::BadLength { kind, len };
        let parsed = match kind {
            kind::MSS if len == 4 => TcpOption::Mss(be16(data)),
            kind::WINDOW_SCALE if len == 3 => TcpOption::WindowScale(data[0]),
            kind::SACK_PERMITTED if len == 2 => TcpOption::SackPermitted,
            kind::TIMESTAMPS if len == 10 => TcpOption::Timestamps {
                tsval: be32(&data[..4]),
                tsecr: be32(&data[4..]),
            },
            kind::SACK if data.len() % 8 == 0 && (8..=32).contains(&data.len()) => {
                let mut blocks = SackBlocks::default();
                for (slot, chunk) in blocks.blocks.iter_mut().zip(data.chunks_exact(8)) {
                    *slot = SackBlock {
                        left: be32(&chunk[..4]),
                        right: be32(&chunk[4..]),
                    };
                }
                blocks.len = (data.len() / 8) as u8;
                TcpOption::Sack(blocks)
            }
            kind::MSS
            | kind::WINDOW_SCALE
            | kind::SACK_PERMITTED
            | kind::TIMESTAMPS
            | kind::SACK => return self.fail(bad),
            _ => TcpOption::Unknown { kind, data },
        };
        self.rest = rest;
        Some(Ok(parsed))
    }
}

impl core::iter::FusedIterator for TcpOptions<'_> {}

/// The options a TCP stack acts on, gathered from one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptionSet {
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Window scale shift.
    pub window_scale: Option<u8>,
    /// SACK permitted was present.
    pub sack_permitted: bool,
    /// SACK blocks.
    pub sack: Option<SackBlocks>,
    /// `(tsval, tsecr)`.
    pub timestamps: Option<(u32, u32)>,
}

/// Writes TCP options into a buffer, each preceded by as many NOPs as make it
/// end on a 4-byte boundary (the layout Linux uses: `NOP NOP TS`, `NOP WS`,
/// …), so the total length is always a multiple of 4 and the 32-bit fields of
/// timestamps and SACK blocks are 4-byte aligned within the header.
#[derive(Debug)]
pub struct TcpOptionWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> TcpOptionWriter<'a> {
    /// Writes into `buf` (at most [`MAX_OPTIONS_LEN`] bytes of it are used).
    #[inline]
    pub fn new(buf: &'a mut [u8]) -> Self {
        let cap = buf.len().min(MAX_OPTIONS_LEN);
        TcpOptionWriter {
            buf: &mut buf[..cap],
            len: 0,
        }
    }

    /// Bytes written so far (always a multiple of 4).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reserves NOP padding plus `opt_len` bytes; returns the option's slot.
    #[inline]
    fn slot(&mut self, opt_len: usize) -> Result<&mut [u8], TcpOptionError> {
        let pad = (4 - opt_len % 4) % 4;
        let end = self.len + pad + opt_len;
        if end > self.buf.len() {
            return Err(TcpOptionError::NoSpace);
        }
        self.buf[self.len..self.len + pad].fill(kind::NOP);
        let start = self.len + pad;
        self.len = end;
        Ok(&mut self.buf[start..end])
    }

    /// Writes a maximum segment size option (4 bytes).
    #[inline]
    pub fn mss(&mut self, mss: u16) -> Result<(), TcpOptionError> {
        let s = self.slot(4)?;
        s[0] = kind::MSS;
        s[1] = 4;
        s[2..4].copy_from_slice(&mss.to_be_bytes());
        Ok(())
    }

    /// Writes a window scale option (`NOP` + 3 bytes).
    #[inline]
    pub fn window_scale(&mut self, shift: u8) -> Result<(), TcpOptionError> {
        let s = self.slot(3)?;
        s.copy_from_slice(&[kind::WINDOW_SCALE, 3, shift]);
        Ok(())
    }

    /// Writes a SACK-permitted option (`NOP NOP` + 2 bytes).
    #[inline]
    pub fn sack_permitted(&mut self) -> Result<(), TcpOptionError> {
        let s = self.slot(2)?;
        s.copy_from_slice(&[kind::SACK_PERMITTED, 2]);
        Ok(())
    }

    /// Writes a timestamps option (`NOP NOP` + 10 bytes).
    #[inline]
    pub fn timestamps(&mut self, tsval: u32, tsecr: u32) -> Result<(), TcpOptionError> {
        let s = self.slot(10)?;
        s[0] = kind::TIMESTAMPS;
        s[1] = 10;
        s[2..6].copy_from_slice(&tsval.to_be_bytes());
        s[6..10].copy_from_slice(&tsecr.to_be_bytes());
        Ok(())
    }

    /// Writes a SACK option with 1 to 4 blocks (`NOP NOP` + 2 + 8n bytes).
    /// An empty or over-long list is rejected as
    /// [`TcpOptionError::BadLength`].
    #[inline]
    pub fn sack(&mut self, blocks: &[SackBlock]) -> Result<(), TcpOptionError> {
        let opt_len = 2 + 8 * blocks.len();
        if blocks.is_empty() || blocks.len() > MAX_SACK_BLOCKS {
            return Err(TcpOptionError::BadLength {
                kind: kind::SACK,
                len: opt_len.min(255) as u8,
            });
        }
        let s = self.slot(opt_len)?;
        s[0] = kind::SACK;
        s[1] = opt_len as u8;
        for (chunk, b) in s[2..].chunks_exact_mut(8).zip(blocks) {
            chunk[..4].copy_from_slice(&b.left.to_be_bytes());
            chunk[4..].copy_from_slice(&b.right.to_be_bytes());
        }
        Ok(())
    }

    /// Writes any option from its kind and data (`data.len() + 2` ≤ 40).
    /// EOL and NOP are single bytes and take no data.
    #[inline]
    pub fn raw(&mut self, kind: u8, data: &[u8]) -> Result<(), TcpOptionError> {
        if kind == self::kind::EOL || kind == self::kind::NOP {
            let s = self.slot(1)?;
            s[0] = kind;
            return Ok(());
        }
        let opt_len = data.len() + 2;
        if opt_len > MAX_OPTIONS_LEN {
            return Err(TcpOptionError::NoSpace);
        }
        let s = self.slot(opt_len)?;
        s[0] = kind;
        s[1] = opt_len as u8;
        s[2..].copy_from_slice(data);
        Ok(())
    }

    /// Writes a parsed option back (useful to re-emit what was received).
    #[inline]
    pub fn option(&mut self, opt: &TcpOption<'_>) -> Result<(), TcpOptionError> {
        match *opt {
            TcpOption::Nop => self.raw(kind::NOP, &[]),
            TcpOption::Mss(m) => self.mss(m),
            TcpOption::WindowScale(s) => self.window_scale(s),
            TcpOption::SackPermitted => self.sack_permitted(),
            TcpOption::Sack(ref b) => self.sack(b.as_slice()),
            TcpOption::Timestamps { tsval, tsecr } => self.timestamps(tsval, tsecr),
            TcpOption::Unknown { kind, data } => self.raw(kind, data),
        }
    }

    /// The number of option bytes written (a multiple of 4).
    #[inline]
    pub fn finish(self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(b: &[u8]) -> Vec<Result<TcpOption<'_>, TcpOptionError>> {
        TcpOptions::new(b).collect()
    }

    #[test]
    fn parses_linux_syn_options() {
        // Options of a Linux SYN: MSS 1460, SACKOK, TS, NOP, WS 7.
        let b = [
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let v = collect(&b);
        assert_eq!(
            v,
            vec![
                Ok(TcpOption::Mss(1460)),
                Ok(TcpOption::SackPermitted),
                Ok(TcpOption::Timestamps { tsval: 1, tsecr: 0 }),
                Ok(TcpOption::Nop),
                Ok(TcpOption::WindowScale(7)),
            ]
        );
    }

    #[test]
    fn syn_layouts_read_whole_as_walked() {
        let mut w_buf = [0u8; 40];
        let mut w = TcpOptionWriter::new(&mut w_buf);
        w.mss(1460).unwrap();
        w.window_scale(9).unwrap();
        w.sack_permitted().unwrap();
        w.timestamps(0x0102_0304, 0xa0b0_c0d0).unwrap();
        let len = w.finish();
        let linux = [
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 1, 3, 3, 9,
        ];
        let expected = TcpOptionSet {
            mss: Some(1460),
            window_scale: Some(9),
            sack_permitted: true,
            sack: None,
            timestamps: Some((0x0102_0304, 0xa0b0_c0d0)),
        };
        for bytes in [&w_buf[..len], &linux[..]] {
            assert_eq!(syn_summary(bytes), Some(expected));
            assert_eq!(TcpOptions::new(bytes).summary_by_option(), Ok(expected));
            assert_eq!(TcpOptions::new(bytes).summary(), Ok(expected));
        }
        // One byte off either layout is walked.
        let mut other = linux;
        other[18] = 4;
        assert_eq!(syn_summary(&other), None);
        assert_eq!(syn_summary(&linux[..19]), None);
    }

    #[test]
    fn stops_at_eol() {
        assert_eq!(collect(&[1, 0, 2, 4, 0, 1]), vec![Ok(TcpOption::Nop)]);
    }

    #[test]
    fn rejects_malformed() {
        let bl = |kind, len| Err(TcpOptionError::BadLength { kind, len });
        assert_eq!(
            collect(&[2]),
            vec![Err(TcpOptionError::Truncated { kind: 2 })]
        );
        assert_eq!(collect(&[99, 0, 1]), vec![bl(99, 0)]);
        assert_eq!(collect(&[99, 1, 1]), vec![bl(99, 1)]);
        assert_eq!(collect(&[2, 5, 0, 0, 0]), vec![bl(2, 5)]);
        assert_eq!(collect(&[3, 2]), vec![bl(3, 2)]);
        assert_eq!(collect(&[4, 3, 0]), vec![bl(4, 3)]);
        assert_eq!(collect(&[8, 9, 0, 0, 0, 0, 0, 0, 0]), vec![bl(8, 9)]);
        assert_eq!(collect(&[5, 2]), vec![bl(5, 2)]);
        assert_eq!(collect(&[5, 9, 0, 0, 0, 0, 0, 0, 0]), vec![bl(5, 9)]);
        let mut five = [0u8; 42];
        five[0] = 5;
        five[1] = 42;
        assert_eq!(collect(&five), vec![bl(5, 42)]);
        assert_eq!(
            collect(&[2, 4, 0]),
            vec![Err(TcpOptionError::Truncated { kind: 2 })]
        );
        // Error ends iteration even if bytes follow.
        assert_eq!(collect(&[3, 2, 1, 1]).len(), 1);
    }

    #[test]
    fn unknown_options_are_skipped_whole() {
        assert_eq!(
            collect(&[30, 4, 0xaa, 0xbb, 1]),
            vec![
                Ok(TcpOption::Unknown {
                    kind: 30,
                    data: &[0xaa, 0xbb]
                }),
                Ok(TcpOption::Nop)
            ]
        );
    }

    #[test]
    fn writer_aligns_and_round_trips() {
        let sack = [
            SackBlock { left: 1, right: 2 },
            SackBlock { left: 3, right: 4 },
            SackBlock { left: 5, right: 6 },
        ];
        let mut buf = [0u8; 40];
        let mut w = TcpOptionWriter::new(&mut buf);
        w.timestamps(0x01020304, 0x05060708).unwrap();
        w.sack(&sack).unwrap();
        let n = w.finish();
        assert_eq!(n, 12 + 28);
        assert_eq!(&buf[..4], &[1, 1, 8, 10]);
        let set = TcpOptions::new(&buf[..n]).summary().unwrap();
        assert_eq!(set.timestamps, Some((0x01020304, 0x05060708)));
        assert_eq!(set.sack.unwrap().as_slice(), &sack);
    }

    #[test]
    fn summary_fast_path_matches_the_walk() {
        let b = [1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8];
        let fast = TcpOptions::new(&b).summary().unwrap();
        // The same bytes followed by an EOL take the general path.
        let mut slow_bytes = b.to_vec();
        slow_bytes.push(0);
        let slow = TcpOptions::new(&slow_bytes).summary().unwrap();
        assert_eq!(fast, slow);
        assert_eq!(fast.timestamps, Some((0x01020304, 0x05060708)));
        // In place: the same set over whatever was there, both paths.
        for bytes in [&b[..], &slow_bytes] {
            let mut into = TcpOptionSet {
                mss: Some(536),
                ..TcpOptionSet::default()
            };
            let layout = TcpOptions::new(bytes).summary_into(&mut into).unwrap();
            assert_eq!(into, fast);
            let expected = if bytes.len() == b.len() {
                OptionLayout::Timestamps
            } else {
                OptionLayout::Other
            };
            assert_eq!(layout, expected);
        }
        // Malformed (an MSS option of length 1): the error, the set untouched.
        let mut kept = fast;
        assert!(TcpOptions::new(&[2, 1]).summary_into(&mut kept).is_err());
        assert_eq!(kept, fast);
    }

    #[test]
    fn writer_reports_no_space() {
        let mut buf = [0u8; 40];
        let mut w = TcpOptionWriter::new(&mut buf);
        w.timestamps(1, 2).unwrap();
        let four = [SackBlock::default(); 4];
        assert_eq!(w.sack(&four), Err(TcpOptionError::NoSpace));
        assert_eq!(w.len(), 12);
        assert!(w.sack(&[]).is_err());
    }
}
