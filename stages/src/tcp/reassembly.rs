//! The receiver's out-of-order queue: data that arrived ahead of `RCV.NXT`,
//! held zero-copy until the hole before it is filled (RFC 9293 §3.10.7.4:
//! segments beyond `RCV.NXT` "may be held for later processing").
//!
//! [`ReassemblyQueue`] keeps the received buffers themselves, trimmed so
//! that no two overlap, sorted by sequence number. When the connection's
//! `RCV.NXT` moves, [`pop_in_order`](ReassemblyQueue::pop_in_order) hands
//! the buffers that now continue the stream back, one at a time, without
//! a copy. The queue also knows which ranges it holds, in the order they
//! changed, which is what the SACK option reports (RFC 2018 §4).
//!
//! # Overlaps
//!
//! A newcomer overlapping data already held is cut to the bytes that are
//! new: the held bytes stay (Linux's `tcp_data_queue_ofo` keeps what it
//! has when a segment arrives partly inside it). A newcomer that covers
//! held segments entirely replaces them, again as Linux does: one buffer
//! cannot be cut into several owned buffers without a copy, and the bytes
//! are the same ones (TCP assumes a retransmission repeats the data).
//!
//! # Bounds
//!
//! Held payload bytes and held segments are both bounded. At a bound,
//! held segments beyond a newcomer make room for it, the farthest first
//! (Linux's `tcp_prune_ofo_queue`): the data nearest `RCV.NXT` is what
//! the stream needs next, and a peer without SACK only resends what the
//! holes before it need (a queue full of far data, refusing the segment
//! after the hole, moved one segment per timeout). A newcomer that would
//! still pass a bound is refused whole and counted. Pruned data may have
//! been SACKed: RFC 2018 §8 lets a receiver renege, and senders (tpa's
//! too) keep SACKed data until it is acknowledged cumulatively. The
//! segment bound is what bounds memory,
//! since every held segment is a whole pool buffer whatever its payload:
//! a peer sending one-byte segments fills `max_segments` buffers.

use std::collections::VecDeque;

use tpa::buf::PacketBuf;
use tpa::wire::tcp::{SackBlock, SackBlocks, MAX_SACK_BLOCKS};

use super::config::TcpConfig;
use super::seq::{SeqNumber, SeqRange};

/// One held segment: the payload exactly covers `range`.
#[derive(Debug)]
struct Held<B> {
    range: SeqRange,
    buf: B,
    /// When the segment was queued (or last received again): a larger
    /// stamp is more recent. Orders the SACK blocks.
    stamp: u64,
}

/// What [`ReassemblyQueue::insert`] did with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// New bytes are held. `duplicate` is the first range of the segment
    /// that was already held (trimmed off, or released from the queue
    /// because the segment covered it): the D-SACK block to report
    /// (RFC 2883 §4).
    Queued {
        /// Bytes the queue holds now that it did not before.
        bytes: u32,
        /// The first part of the segment that was a duplicate.
        duplicate: Option<SeqRange>,
    },
    /// Every byte was already held; the segment was dropped. The range is
    /// the segment's, the D-SACK block to report.
    Duplicate(SeqRange),
    /// The segment was dropped, counted; the queue is unchanged.
    Refused(Refusal),
    /// The segment had no payload.
    Empty,
}

/// Why a segment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Held bytes would pass the byte bound.
    Bytes,
    /// Held segments would pass the segment bound.
    Segments,
    /// The payload is a chain to be cut inside a segment shared with
    /// another holder (a gathering port's frame: the sender's chunk), and
    /// the copy that cut needs did not fit its first segment's room.
    Shared,
    /// Held data and the segment would span more than [`MAX_SPAN`] bytes
    /// of sequence space: the segment cannot be in the receive window.
    Span,
}

/// The most sequence space held data may span: the largest receive window
/// (RFC 7323 §2.3: 2^30 with window scaling). Within it every held number
/// is less than 2^31 from every other, so comparisons are exact.
pub const MAX_SPAN: u32 = 1 << 30;

/// Counters, since the queue was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReassemblyStats {
    /// Segments that brought new bytes and are held.
    pub queued: u64,
    /// Segments dropped because every byte was already held.
    pub duplicates: u64,
    /// Bytes of received segments that were already held (trimmed off or
    /// dropped with their segment).
    pub duplicate_bytes: u64,
    /// Held segments released because a newcomer covered them whole.
    pub replaced: u64,
    /// Segments refused at the byte bound.
    pub refused_bytes: u64,
    /// Segments refused at the segment bound.
    pub refused_segments: u64,
    /// Segments refused because a shared chain could not be trimmed.
    pub refused_shared: u64,
    /// Segments refused because they lie too far from held data.
    pub refused_span: u64,
    /// Held segments dropped to make room for a newcomer before them.
    pub pruned: u64,
}

/// The bounded out-of-order queue of one connection.
///
/// Every segment handed to [`insert`](Self::insert) should lie within the
/// receive window (the engine trims segments to it first, RFC 9293
/// §3.10.7.4); one that would make held data span more than [`MAX_SPAN`]
/// is refused, so everything held stays less than 2^31 bytes apart and
/// the sequence comparisons stay exact whatever the caller passes.
///
/// ```
/// use tpa::buf::{BufferPool, PacketBuf, Pool};
/// use tpa_stages::tcp::reassembly::{Insert, ReassemblyQueue};
/// use tpa_stages::tcp::seq::{SeqNumber, SeqRange};
///
/// let pool = Pool::with_capacity(8).unwrap();
/// let seg = |bytes: &[u8]| {
///     let mut b = pool.alloc().unwrap();
///     b.extend_from_slice(bytes).unwrap();
///     b
/// };
/// let rcv_nxt = SeqNumber::new(1000);
/// let mut q = ReassemblyQueue::new(64 * 1024, 16);
/// // "world" arrives before "hello ".
/// let ins = q.insert(rcv_nxt + 6, seg(b"world"));
/// assert_eq!(ins, Insert::Queued { bytes: 5, duplicate: None });
/// let blocks = q.sack_blocks(3).unwrap();
/// assert_eq!((blocks.as_slice()[0].left, blocks.as_slice()[0].right), (1006, 1011));
/// // The engine takes "hello " in order, then asks for what follows.
/// let rcv_nxt = rcv_nxt + 6;
/// let next = q.pop_in_order(rcv_nxt).unwrap();
/// assert_eq!(next.data(), b"world");
/// assert!(q.pop_in_order(rcv_nxt + 5).is_none() && q.is_empty());
/// drop(next);
/// pool.assert_whole();
/// ```
#[derive(Debug)]
pub struct ReassemblyQueue<B> {
    /// Sorted by sequence number; no two overlap (adjacent is fine).
    held: VecDeque<Held<B>>,
    bytes: usize,
    max_bytes: usize,
    max_segments: usize,
    next_stamp: u64,
    stats: ReassemblyStats,
}

impl<B: PacketBuf> ReassemblyQueue<B> {
    /// An empty queue holding at most `max_bytes` payload bytes in at most
    /// `max_segments` segments.
    pub fn new(max_bytes: usize, max_segments: usize) -> Self {
        Self {
            held: VecDeque::new(),
            bytes: 0,
            max_bytes,
            max_segments,
            next_stamp: 0,
            stats: ReassemblyStats::default(),
        }
    }

    /// An empty queue with the configured bounds: `receive_queue_bytes`
    /// and `ooo_max_segments`.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::reassembly::ReassemblyQueue;
    /// let q: ReassemblyQueue<PoolBuf> = ReassemblyQueue::from_config(&TcpConfig::default());
    /// assert_eq!(q.max_segments(), 256);
    /// ```
    pub fn from_config(cfg: &TcpConfig) -> Self {
        Self::new(cfg.receive_queue_bytes, cfg.ooo_max_segments)
    }

    /// Changes the bounds for later insertions (what is held stays).
    pub fn set_limits(&mut self, max_bytes: usize, max_segments: usize) {
        self.max_bytes = max_bytes;
        self.max_segments = max_segments;
    }

    /// The byte bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The segment bound.
    pub fn max_segments(&self) -> usize {
        self.max_segments
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Segments (buffers) held.
    pub fn segments(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// The ranges held, in sequence order, one per held segment (adjacent
    /// segments are not merged).
    pub fn ranges(&self) -> impl Iterator<Item = SeqRange> + '_ {
        self.held.iter().map(|h| h.range)
    }

    /// Just past the highest byte held (`None` when empty).
    pub fn highest_end(&self) -> Option<SeqNumber> {
        self.held.back().map(|h| h.range.end)
    }

    /// Releases everything held (an abort, or a reset of the connection).
    pub fn clear(&mut self) {
        self.held.clear();
        self.bytes = 0;
    }

    /// Holds `buf` (a payload, trimmed to exactly the data, possibly a
    /// chain) whose first byte has sequence number `seq`, keeping only the
    /// bytes not already held (see the module's notes on overlaps).
    pub fn insert(&mut self, seq: SeqNumber, buf: B) -> Insert {
        let len = buf.total_len();
        if len == 0 {
            return Insert::Empty;
        }
        if !self.fits_span(seq, len) {
            self.stats.refused_span += 1;
            return Insert::Refused(Refusal::Span);
        }
        let seg = SeqRange::from_len(seq, len as u32);
        // held[..first] end at or before the segment; held[first..past]
        // overlap it; held[past..] start at or after its end.
        let first = self.held.partition_point(|h| h.range.end.le(seg.start));
        let past = self.held.partition_point(|h| h.range.start.lt(seg.end));
        if first == past {
            return self.place(first, first, seg, buf, 0, 0, None);
        }
        // Keep held data at the edges: cut the segment to start after a
        // held segment covering its start and end before one covering its
        // end.
        let (mut new, mut covered) = (seg, first..past);
        let mut duplicate = None;
        let head = self.held[first].range;
        if head.start.le(seg.start) {
            new.start = head.end;
            covered.start += 1;
            duplicate = Some(SeqRange::new(seg.start, head.end.min(seg.end)));
        }
        let tail = self.held[past - 1].range;
        if seg.end.le(tail.end) && covered.start < past {
            new.end = tail.start;
            covered.end -= 1;
        } else if seg.end.le(tail.end) {
            // The segment lies inside the one held segment at `first`.
            new.end = new.start;
        }
        let covered_bytes: u64 = self
            .held
            .range(covered.clone())
            .map(|h| u64::from(h.range.len()))
            .sum();
        let new_len = if new.start.lt(new.end) { new.len() } else { 0 };
        if u64::from(new_len) == covered_bytes {
            // Nothing new: the held bytes stay, the segment goes. The
            // segment containing its start is the most recent block now
            // (RFC 2883 §4: the D-SACK's enclosing block comes next).
            self.held[first].stamp = self.stamp();
            self.stats.duplicates += 1;
            self.stats.duplicate_bytes += len as u64;
            return Insert::Duplicate(seg);
        }
        if duplicate.is_none() && !covered.is_empty() {
            duplicate = Some(self.held[covered.start].range);
        }
        if duplicate.is_none() {
            duplicate = Some(SeqRange::new(tail.start, seg.end));
        }
        let front = new.start.wrapping_sub(seg.start) as usize;
        let back = seg.end.wrapping_sub(new.end) as usize;
        self.place(covered.start, covered.end, new, buf, front, back, duplicate)
    }

    /// Replaces `held[from..to]` (entirely inside `new`) by `buf` cut by
    /// `front` and `back` bytes to cover exactly `new`, within the bounds.
    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        from: usize,
        to: usize,
        new: SeqRange,
        buf: B,
        front: usize,
        back: usize,
        duplicate: Option<SeqRange>,
    ) -> Insert {
        let released: usize = self
            .held
            .range(from..to)
            .map(|h| h.range.len() as usize)
            .sum();
        let added = new.len() as usize - released;
        let mut segments = self.held.len() - (to - from) + 1;
        let mut bytes = self.bytes + added;
        // Held segments after `to` lie beyond the newcomer: the farthest
        // make room first.
        let mut prune = 0;
        while (segments > self.max_segments || bytes > self.max_bytes)
            && self.held.len() - prune > to
        {
            bytes -= self.held[self.held.len() - 1 - prune].range.len() as usize;
            segments -= 1;
            prune += 1;
        }
        if segments > self.max_segments {
            self.stats.refused_segments += 1;
            return Insert::Refused(Refusal::Segments);
        }
        if bytes > self.max_bytes {
            self.stats.refused_bytes += 1;
            return Insert::Refused(Refusal::Bytes);
        }
        let Some(buf) = trim(buf, front, back) else {
            self.stats.refused_shared += 1;
            return Insert::Refused(Refusal::Shared);
        };
        self.held.truncate(self.held.len() - prune);
        self.stats.pruned += prune as u64;
        self.stats.queued += 1;
        self.stats.replaced += (to - from) as u64;
        self.stats.duplicate_bytes += (front + back + released) as u64;
        self.held.drain(from..to);
        let stamp = self.stamp();
        self.held.insert(
            from,
            Held {
                range: new,
                buf,
                stamp,
            },
        );
        self.bytes = bytes;
        Insert::Queued {
            bytes: added as u32,
            duplicate,
        }
    }

    /// Whether held data and `len` bytes at `seq` span at most
    /// [`MAX_SPAN`] (held data does: offsets from the first held byte are
    /// exact).
    fn fits_span(&self, seq: SeqNumber, len: usize) -> bool {
        let (Some(front), Some(back)) = (self.held.front(), self.held.back()) else {
            return len <= MAX_SPAN as usize;
        };
        let base = front.range.start;
        let start = i64::from(seq.distance(base));
        let end = start + len as i64;
        let held_end = i64::from(back.range.end.wrapping_sub(base));
        end.max(held_end) - start.min(0) <= i64::from(MAX_SPAN)
    }

    fn stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }

    /// The next buffer of the stream once `RCV.NXT` is `rcv_nxt`: the held
    /// segment containing `rcv_nxt`, its bytes before `rcv_nxt` trimmed
    /// off, handed back without a copy. Held data wholly before `rcv_nxt`
    /// (delivered meanwhile by in-order segments) is released on the way.
    /// `None` when the byte at `rcv_nxt` is not held: call this until it
    /// is, advancing `rcv_nxt` by each buffer's length.
    pub fn pop_in_order(&mut self, rcv_nxt: SeqNumber) -> Option<B> {
        loop {
            let head = self.held.front()?;
            if head.range.start.gt(rcv_nxt) {
                return None;
            }
            let Held { range, buf, .. } = self.held.pop_front()?;
            self.bytes -= range.len() as usize;
            if range.end.le(rcv_nxt) {
                continue;
            }
            let front = rcv_nxt.wrapping_sub(range.start) as usize;
            match trim(buf, front, 0) {
                Some(buf) => return Some(buf),
                // Lost to a shared chain: the hole stays and the peer
                // retransmits it.
                None => self.stats.refused_shared += 1,
            }
        }
    }

    /// The SACK blocks to send (RFC 2018 §4): the held ranges with
    /// adjacent segments merged, the block holding the most recently
    /// received segment first, then the others, most recently changed
    /// first; at most `max` (up to [`MAX_SACK_BLOCKS`]; 3 leave room for
    /// timestamps). `None` when nothing is held or `max` is 0.
    pub fn sack_blocks(&self, max: usize) -> Option<SackBlocks> {
        if self.held.is_empty() {
            return None; // every ACK of an in-order stream: nothing to build
        }
        let mut out = [SackBlock::default(); MAX_SACK_BLOCKS];
        let n = self.newest_blocks(&mut out[..max.min(MAX_SACK_BLOCKS)]);
        SackBlocks::new(&out[..n])
    }

    /// The SACK blocks behind a D-SACK block (RFC 2883 §4): `duplicate`
    /// first, then up to `max - 1` of [`sack_blocks`](Self::sack_blocks).
    pub fn sack_blocks_after(&self, duplicate: SeqRange, max: usize) -> Option<SackBlocks> {
        let mut out = [SackBlock::default(); MAX_SACK_BLOCKS];
        let max = max.min(MAX_SACK_BLOCKS);
        if max == 0 {
            return None;
        }
        out[0] = SackBlock {
            left: duplicate.start.get(),
            right: duplicate.end.get(),
        };
        let n = self.newest_blocks(&mut out[1..max]);
        SackBlocks::new(&out[..n + 1])
    }

    /// Fills `out` with the most recent merged blocks, newest first, and
    /// says how many.
    fn newest_blocks(&self, out: &mut [SackBlock]) -> usize {
        let mut best: [(u64, SeqRange); MAX_SACK_BLOCKS] = Default::default();
        let mut n = 0;
        let mut offer = |stamp: u64, range: SeqRange| {
            // Insertion into the `out.len()` newest, kept sorted.
            let mut at = n;
            while at > 0 && best[at - 1].0 < stamp {
                at -= 1;
            }
            if at >= out.len() {
                return;
            }
            let last = n.min(out.len() - 1);
            best.copy_within(at..last, at + 1);
            best[at] = (stamp, range);
            n = (n + 1).min(out.len());
        };
        let mut run: Option<(u64, SeqRange)> = None;
        for h in &self.held {
            run = match run {
                Some((stamp, range)) if range.end == h.range.start => {
                    Some((stamp.max(h.stamp), SeqRange::new(range.start, h.range.end)))
                }
                other => {
                    if let Some((stamp, range)) = other {
                        offer(stamp, range);
                    }
                    Some((h.stamp, h.range))
                }
            };
        }
        if let Some((stamp, range)) = run {
            offer(stamp, range);
        }
        for (slot, (_, range)) in out.iter_mut().zip(&best[..n]) {
            *slot = SackBlock {
                left: range.start.get(),
                right: range.end.get(),
            };
        }
        n
    }
}

/// Cuts `front` bytes off the front and `back` off the back of a payload
/// (`front + back` less than its length). `None` when a cut inside a
/// chain's shared segment found no room to copy it (see
/// [`crate::chained`]; the buffer is released).
fn trim<B: PacketBuf>(mut buf: B, front: usize, back: usize) -> Option<B> {
    if !buf.is_chained() {
        buf.trim_front(front).ok()?;
        buf.trim_back(back).ok()?;
        return Some(buf);
    }
    trim_chain(buf, front, back)
}

/// [`trim`] for a chain: takes it apart, drops whole segments at either
/// end, trims the new end segments and links the rest again. Chained
/// payloads (a jumbo frame in several mbufs) are rare; this path
/// allocates a small vector.
#[cold]
fn trim_chain<B: PacketBuf>(buf: B, mut front: usize, mut back: usize) -> Option<B> {
    let mut pieces: Vec<B> = Vec::with_capacity(buf.segment_count());
    let mut cur = buf;
    loop {
        let rest = cur.unchain();
        pieces.push(cur);
        match rest {
            None => break,
            Some(rest) => match rest.try_unique() {
                Ok(rest) => cur = rest,
                // Shared with another holder (a gathered frame's payload,
                // the sender's own chunk): linked back as it was, and cut
                // by copying where a cut falls inside it.
                Err(shared) => return trim_shared(pieces, shared, front, back),
            },
        }
    }
    let mut first = 0;
    while first < pieces.len() && front > 0 && front >= pieces[first].len() {
        front -= pieces[first].len();
        first += 1;
    }
    let mut past = pieces.len();
    while past > first && back > 0 && back >= pieces[past - 1].len() {
        back -= pieces[past - 1].len();
        past -= 1;
    }
    if first >= past {
        return None;
    }
    pieces[first].trim_front(front).ok()?;
    pieces[past - 1].trim_back(back).ok()?;
    pieces.truncate(past);
    let mut kept = pieces.drain(first..);
    let mut head = kept.next()?;
    for piece in kept {
        head.chain(piece).ok()?;
    }
    Some(head)
}

/// [`trim_chain`] for a chain whose segments from `shared` on are shared:
/// `pieces` (held alone) and `shared` linked again, then cut by
/// [`crate::chained`] (a copy where a cut falls inside a shared segment).
#[cold]
fn trim_shared<B: PacketBuf>(
    pieces: Vec<B>,
    shared: tpa::buf::Shared<B>,
    front: usize,
    back: usize,
) -> Option<B> {
    let mut pieces = pieces.into_iter();
    let mut head = pieces.next()?;
    for piece in pieces {
        head.chain(piece).ok()?;
    }
    head.chain_shared(shared).ok()?;
    crate::chained::trim_front(&mut head, front).ok()?;
    crate::chained::trim_back(&mut head, back).ok()?;
    Some(head)
}

#[cfg(test)]
mod tests;
