//! The send queue: the bytes the application handed over, as chunks of at
//! most one segment each, from the oldest unacknowledged byte onwards.
//!
//! A chunk is sent as one whole segment and retransmitted as the same
//! segment (never re-sliced); a chunk the peer acknowledged only in part
//! stays until it is acknowledged whole (the receiver trims the old bytes
//! off a retransmission, RFC 9293 §3.10.7.4). A chunk is shared
//! ([`Shared`]) so a segment in flight and the queue hold it at once
//! without a copy; a chunk not yet sent may still be written: copies of
//! small writes fill its tailroom, so back-to-back small writes leave as
//! one segment when they arrive before it is sent.

use std::collections::VecDeque;

use tpa::buf::{PacketBuf, Shared};
use tpa::header::checksum;

use super::super::segment::SummedLen;
use super::super::seq::{SeqNumber, SeqRange};
use super::super::wire::COPY_BREAK;

/// One segment's worth of queued data.
pub(super) struct Chunk<B: PacketBuf> {
    /// The bytes, shared with segments in flight.
    pub buf: Shared<B>,
    /// The sequence number of its first byte.
    pub seq: SeqNumber,
    /// Its length in bytes (`buf.total_len()`).
    pub len: u32,
    /// When it was last (re)transmitted, for RACK (RFC 8985 §6.1:
    /// Segment.xmit_ts).
    pub sent_ns: u64,
    /// It was transmitted more than once (Segment.retransmitted).
    pub rexmit: bool,
    /// When the application wrote its first byte, for the latency stages
    /// (0: not measured).
    pub written_ns: u64,
    /// The peer SACKed it whole: delivered, though not yet acknowledged
    /// cumulatively (kept across a timeout, RFC 8985 §6.3).
    pub sacked: bool,
    /// What a cut at the window edge left ([`SendQueue::split_next`]):
    /// shorter than a segment though data follows it, so it is refilled
    /// from the chunks behind it ([`SendQueue::refill_next`]) before it
    /// goes (sender silly window syndrome avoidance).
    pub short: bool,
    /// The sum of the bytes `push_copy` copied into it in one go, with
    /// their length.
    pub summed: SummedLen,
}

impl<B: PacketBuf> Chunk<B> {
    /// The sequence number just past its last byte.
    pub fn end(&self) -> SeqNumber {
        self.seq + self.len
    }
}

/// Copies `src` into `dst` and returns their sum. Out of line: the
/// short writes' `push_copy` does not carry the vector copy. The sum
/// alone, paired with its length by the caller: this call is then the
/// kernel's, its last, with no frame of its own.
#[inline(never)]
fn copy_summed(dst: &mut [u8], src: &[u8]) -> u16 {
    checksum::copy_and_sum(dst, src)
}

/// The queue: chunks in sequence order, the index of the next one to
/// (re)transmit, and the byte budget.
pub(super) struct SendQueue<B: PacketBuf> {
    chunks: VecDeque<Chunk<B>>,
    /// Chunks before this index were transmitted since the last rewind.
    next: usize,
    /// The sequence number after the last queued byte.
    end: SeqNumber,
    /// Bytes queued (acknowledged in part or not at all).
    bytes: usize,
    /// The most bytes queued at once.
    capacity: usize,
    /// A [`resegment`](Self::resegment) ran out of buffers: chunks longer
    /// than the MSS remain.
    oversized: bool,
    /// The buffer of a chunk a cumulative ACK released, emptied as new
    /// ([`PacketBuf::recycle`]), for the table to take at once
    /// ([`take_spare`](Self::take_spare)) and hand to the next write.
    spare: Option<B>,
}

impl<B: PacketBuf> SendQueue<B> {
    /// The chunks' storage, if the queue is empty (it is left with none,
    /// and allocates again if it ever queues more), for a later
    /// connection's queue ([`adopt_storage`](Self::adopt_storage)).
    pub fn take_storage(&mut self) -> Option<VecDeque<Chunk<B>>> {
        self.chunks
            .is_empty()
            .then(|| core::mem::take(&mut self.chunks))
    }

    /// Takes `storage` (empty; from [`take_storage`](Self::take_storage))
    /// as the chunks' storage, if this queue has none yet: its first
    /// chunks then need no allocation.
    pub fn adopt_storage(&mut self, storage: VecDeque<Chunk<B>>) {
        if self.chunks.capacity() == 0 && storage.is_empty() {
            self.chunks = storage;
        }
    }

    /// An empty queue whose first byte will be `start`.
    pub fn new(start: SeqNumber, capacity: usize) -> Self {
        SendQueue {
            chunks: VecDeque::new(),
            next: 0,
            end: start,
            bytes: 0,
            capacity,
            oversized: false,
            spare: None,
        }
    }

    /// Bytes the queue takes before it is full.
    pub fn space(&self) -> usize {
        self.capacity.saturating_sub(self.bytes)
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The sequence number after the last queued byte (where a FIN goes).
    pub fn end(&self) -> SeqNumber {
        self.end
    }

    /// Copies as much of `data` as fits, at most `chunk_max` bytes per
    /// chunk, filling the last unsent chunk first; new buffers come from
    /// `alloc`. Returns the bytes taken (fewer when the budget or the
    /// buffers ran out). Inline for the common small write, one new chunk
    /// copied plainly; more goes to [`push_chunks`](Self::push_chunks).
    #[inline]
    pub fn push_copy<A>(&mut self, data: &[u8], chunk_max: usize, alloc: &mut A) -> usize
    where
        A: FnMut() -> Option<B> + ?Sized,
    {
        let data = &data[..data.len().min(self.space())];
        // The last chunk, while unsent, is ours alone: grow it in place.
        let rest = if !data.is_empty() && self.next < self.chunks.len() {
            self.grow_unsent_tail(data, chunk_max)
        } else {
            data
        };
        let held = data.len() - rest.len();
        if rest.is_empty() {
            return held;
        }
        if rest.len() > chunk_max.min(COPY_BREAK) {
            return held + self.push_chunks(rest, chunk_max, None, alloc);
        }
        // `push_chunks`' first round, when the buffer takes all of `rest`.
        let Some(mut buf) = alloc() else {
            return held;
        };
        if buf.tailroom() < rest.len() {
            return held + self.push_chunks(rest, chunk_max, Some(buf), alloc);
        }
        let Ok(dst) = buf.append(rest.len()) else {
            return held;
        };
        dst.copy_from_slice(rest);
        self.push_chunk(buf.share(), rest.len() as u32, SummedLen::NONE);
        data.len()
    }

    /// Copies `rest` into new chunks of at most `chunk_max` bytes, in
    /// `first` and then buffers from `alloc`; returns the bytes taken.
    #[inline]
    fn push_chunks<A>(
        &mut self,
        mut rest: &[u8],
        chunk_max: usize,
        mut first: Option<B>,
        alloc: &mut A,
    ) -> usize
    where
        A: FnMut() -> Option<B> + ?Sized,
    {
        let len = rest.len();
        while !rest.is_empty() {
            let Some(mut buf) = (match first.take() {
                Some(buf) => Some(buf),
                None => alloc(),
            }) else {
                break;
            };
            let n = chunk_max.min(buf.tailroom()).min(rest.len());
            if n == 0 {
                break; // a buffer with no room: nothing sensible to do
            }
            let Ok(dst) = buf.append(n) else { break };
            let summed = if n > COPY_BREAK {
                // Data the segment chains rather than copies behind its
                // header: its sum, taken in the copy, spares the
                // checksum a pass over it.
                SummedLen::new(n, copy_summed(dst, &rest[..n]))
            } else {
                dst.copy_from_slice(&rest[..n]);
                SummedLen::NONE
            };
            rest = &rest[n..];
            self.push_chunk(buf.share(), n as u32, summed);
        }
        len - rest.len()
    }

    /// [`push_copy`](Self::push_copy) into the last chunk, unsent and
    /// held alone: as much of `data` as its room and `chunk_max` allow;
    /// returns the rest. Out of line: a write after the tail went out (the
    /// common small write) does not need it.
    #[inline(never)]
    fn grow_unsent_tail<'d>(&mut self, mut data: &'d [u8], chunk_max: usize) -> &'d [u8] {
        let Some(last) = self.chunks.pop_back() else {
            return data;
        };
        let seq = last.seq;
        match last.buf.try_unique() {
            Ok(mut buf) => {
                let room = chunk_max
                    .saturating_sub(last.len as usize)
                    .min(buf.tailroom())
                    .min(data.len());
                let n = if buf.is_chained() { 0 } else { room };
                if n > 0 {
                    if let Ok(dst) = buf.append(n) {
                        dst.copy_from_slice(&data[..n]);
                        data = &data[n..];
                        self.bytes += n;
                    }
                }
                let len = buf.total_len() as u32;
                self.chunks.push_back(Chunk {
                    buf: buf.share(),
                    len,
                    // Other bytes now: the sum taken in the copy is gone.
                    summed: SummedLen::NONE,
                    ..last
                });
                self.end = seq + len;
            }
            Err(buf) => self.chunks.push_back(Chunk { buf, ..last }),
        }
        data
    }

    /// Queues `buf` as one chunk without copying it.
    pub fn push_buf(&mut self, buf: B) {
        let len = buf.total_len();
        self.push_chunk(buf.share(), len as u32, SummedLen::NONE);
    }

    /// Appends a chunk of `len` bytes at the queue's end, their sum when
    /// taken.
    fn push_chunk(&mut self, buf: Shared<B>, len: u32, summed: SummedLen) {
        // The end is the last chunk's (or, empty, the next byte's).
        debug_assert!(self.chunks.back().is_none_or(|c| c.end() == self.end));
        let seq = self.end;
        self.chunks.push_back(Chunk {
            buf,
            seq,
            len,
            sent_ns: 0,
            rexmit: false,
            written_ns: 0,
            sacked: false,
            short: false,
            summed,
        });
        self.bytes += len as usize;
        self.end = seq + len;
    }

    /// Drops every chunk acknowledged whole by `snd_una`; returns how many.
    pub fn ack(&mut self, snd_una: SeqNumber) -> usize {
        let mut popped = 0;
        while let Some(front) = self.chunks.front() {
            if !front.end().le(snd_una) {
                break;
            }
            self.bytes -= front.len as usize;
            self.chunks.pop_front();
            popped += 1;
        }
        self.next = self.next.saturating_sub(popped);
        popped
    }

    /// [`ack`](Self::ack), showing each chunk to `seen` before it is
    /// dropped: a cumulative ACK's one walk over what it delivered (RACK's
    /// part and the release, as Linux's `tcp_clean_rtx_queue`). The walk
    /// reads them in place; the release pops them after it.
    #[inline]
    pub fn ack_each(&mut self, snd_una: SeqNumber, mut seen: impl FnMut(&Chunk<B>)) -> usize {
        let Some(front) = self.chunks.front() else {
            return 0;
        };
        if !front.end().le(snd_una) {
            return 0;
        }
        seen(front);
        let mut bytes = front.len as usize;
        let mut popped = 1;
        // The commonest case, one chunk delivered, stops at the first look.
        while let Some(c) = self.chunks.get(popped) {
            if !c.end().le(snd_una) {
                break;
            }
            seen(c);
            bytes += c.len as usize;
            popped += 1;
        }
        self.bytes -= bytes;
        for _ in 1..popped {
            self.chunks.pop_front();
        }
        if let Some(last) = self.chunks.pop_front() {
            self.keep_spare(last.buf);
        }
        self.next = self.next.saturating_sub(popped);
        popped
    }

    /// The queue's chunk, if it holds exactly one.
    pub fn sole(&self) -> Option<&Chunk<B>> {
        if self.chunks.len() == 1 {
            self.chunks.front()
        } else {
            None
        }
    }

    /// [`ack_each`](Self::ack_each) of an ACK that covers the queue's
    /// one chunk ([`sole`](Self::sole), which the caller saw): drops it,
    /// its buffer kept emptied for a write.
    #[inline(always)]
    pub fn release_sole(&mut self) {
        debug_assert_eq!(self.chunks.len(), 1);
        if let Some(last) = self.chunks.pop_front() {
            self.bytes -= last.len as usize;
            self.next = self.next.saturating_sub(1);
            self.keep_spare(last.buf);
        }
    }

    /// The last released chunk's buffer, if held alone, kept emptied for
    /// a write (as [`take_spare`](Self::take_spare) hands it out).
    #[inline(always)]
    fn keep_spare(&mut self, buf: Shared<B>) {
        if self.spare.is_none() {
            if let Ok(mut buf) = buf.try_unique() {
                if buf.recycle() {
                    // Empty, as tested above. Tested again as a branch:
                    // the compiler cannot tell that the buffer's header
                    // writes left it empty, and an assignment would call
                    // the drop glue.
                    if let Some(old) = self.spare.replace(buf) {
                        drop(old);
                    }
                }
            }
        }
    }

    /// The buffer the last [`ack_each`](Self::ack_each) released and
    /// emptied, if any: held alone, unchained, as its pool hands out a new
    /// one.
    #[inline]
    pub fn take_spare(&mut self) -> Option<B> {
        self.spare.take()
    }

    /// Stamps the chunks from index `from` on that carry no write stamp
    /// yet with `ns` (the chunks a write just made). Out of line: only a
    /// connection that measures latency stamps.
    #[inline(never)]
    pub fn stamp_written(&mut self, from: usize, ns: u64) {
        for c in self.chunks.iter_mut().skip(from) {
            if c.written_ns == 0 {
                c.written_ns = ns;
            }
        }
    }

    /// [`ack`](Self::ack), recording each stamped chunk's wait from its
    /// write to `now_ns` in `stage`.
    pub fn ack_timed(
        &mut self,
        snd_una: SeqNumber,
        now_ns: u64,
        stage: &mut super::LatencyStage,
    ) -> usize {
        for c in self.chunks.iter() {
            if !c.end().le(snd_una) {
                break;
            }
            if c.written_ns != 0 {
                stage.record(now_ns.saturating_sub(c.written_ns));
            }
        }
        self.ack(snd_una)
    }

    /// The next chunk to transmit, if any.
    pub fn next_unsent(&self) -> Option<&Chunk<B>> {
        self.chunks.get(self.next)
    }

    /// Whether the next chunk to transmit is the last one queued.
    pub fn next_is_last(&self) -> bool {
        self.next + 1 == self.chunks.len()
    }

    /// Marks the next chunk transmitted.
    pub fn advance(&mut self) {
        self.next = (self.next + 1).min(self.chunks.len());
    }

    /// Whether every chunk was transmitted since the last rewind.
    pub fn all_sent(&self) -> bool {
        self.next >= self.chunks.len()
    }

    /// The oldest chunk (the one holding SND.UNA).
    pub fn front(&self) -> Option<&Chunk<B>> {
        self.chunks.front()
    }

    /// Whether the front chunk is the only one.
    pub fn front_is_last(&self) -> bool {
        self.chunks.len() == 1
    }

    /// Go back N: transmit again from the oldest chunk (after a timeout).
    pub fn rewind(&mut self) {
        self.next = 0;
    }

    /// Marks every chunk that ends at or before `seq` transmitted: a
    /// rewind undone (a spurious timeout; F-RTO's new data). Never moves
    /// back.
    pub fn skip_to(&mut self, seq: SeqNumber) {
        while self.chunks.get(self.next).is_some_and(|c| c.end().le(seq)) {
            self.next += 1;
        }
    }

    /// The chunk whose first byte is `seq`, if one is.
    pub fn chunk_starting_at(&self, seq: SeqNumber) -> Option<&Chunk<B>> {
        let front = self.chunks.front()?.seq;
        let offset = seq.wrapping_sub(front);
        let i = self
            .chunks
            .partition_point(|c| c.seq.wrapping_sub(front) < offset);
        self.chunks.get(i).filter(|c| c.seq == seq)
    }

    /// The sequence number the next transmission starts at (the queue's
    /// end once everything was sent).
    pub fn next_seq(&self) -> SeqNumber {
        self.chunks.get(self.next).map_or(self.end, |c| c.seq)
    }

    /// The chunks transmitted since the last rewind, as sequence ranges
    /// from the oldest (the sender's segments for `tcp::sack`).
    pub fn sent_ranges(&self) -> impl Iterator<Item = SeqRange> + Clone + '_ {
        self.chunks
            .range(..self.next)
            .map(|c| SeqRange::from_len(c.seq, c.len))
    }

    /// The chunk at `index` (0: the oldest).
    pub fn get(&self, index: usize) -> Option<&Chunk<B>> {
        self.chunks.get(index)
    }

    /// Cuts the queue again into chunks of at most `max` bytes (the path's
    /// MSS fell: RFC 1191 / RFC 8201), when any is longer: the bytes are
    /// copied, packed full, into buffers from `alloc` (a chunk may be in
    /// flight, shared, so it is never cut in place; packing, not
    /// splitting each chunk, keeps 1448 bytes from becoming 1228 + 220).
    /// A chunk is copied whole or not at all: when `alloc` runs dry, it
    /// and the chunks after it stay as they were. Leaves the queue
    /// rewound (the old boundaries no longer exist: everything is to be
    /// sent again from the oldest) and returns how many chunks were
    /// copied, or `Err` with that count when buffers ran out.
    pub fn resegment(
        &mut self,
        max: usize,
        alloc: &mut dyn FnMut() -> Option<B>,
    ) -> Result<usize, usize> {
        let max = max.max(1);
        self.next = 0;
        self.oversized = false;
        if self.chunks.iter().all(|c| c.len as usize <= max) {
            return Ok(0);
        }
        let mut old = core::mem::take(&mut self.chunks).into_iter();
        // The piece being filled, and where it starts.
        let mut open: Option<(B, SeqNumber)> = None;
        let mut copied = 0;
        while let Some(chunk) = old.next() {
            let len = chunk.len as usize;
            // Buffers for the bytes the open piece cannot take.
            let mut room = open.as_ref().map_or(0, |(b, _)| piece_room(b, max));
            let mut fresh = Vec::new();
            while room < len {
                match alloc().filter(|b| b.tailroom() > 0) {
                    Some(b) => {
                        room += piece_room(&b, max);
                        fresh.push(b);
                    }
                    None => break,
                }
            }
            if room < len {
                self.oversized = true;
                drop(fresh);
                if let Some((b, seq)) = open.take() {
                    self.push_piece(b, seq);
                }
                self.chunks.push_back(chunk);
                self.chunks.extend(old);
                return Err(copied);
            }
            fresh.reverse();
            let mut seq = chunk.seq;
            for mut bytes in chunk.buf.segments() {
                while !bytes.is_empty() {
                    if open.as_ref().is_none_or(|(b, _)| piece_room(b, max) == 0) {
                        if let Some((b, start)) = open.take() {
                            self.push_piece(b, start);
                        }
                        // Counted above: the room covers every byte.
                        let Some(b) = fresh.pop() else { break };
                        open = Some((b, seq));
                    }
                    let Some((b, _)) = open.as_mut() else { break };
                    let n = piece_room(b, max).min(bytes.len());
                    let Ok(dst) = b.append(n) else { break };
                    dst.copy_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    seq += n as u32;
                }
            }
            copied += 1;
        }
        if let Some((b, seq)) = open.take() {
            self.push_piece(b, seq);
        }
        Ok(copied)
    }

    /// Appends a piece [`resegment`](Self::resegment) filled.
    fn push_piece(&mut self, buf: B, seq: SeqNumber) {
        let len = buf.total_len() as u32;
        // New boundaries: no send time nor SACK mark carries over (RACK
        // starts afresh on them once resent).
        self.chunks.push_back(Chunk {
            buf: buf.share(),
            seq,
            len,
            sent_ns: 0,
            rexmit: false,
            written_ns: 0,
            sacked: false,
            short: false,
            summed: SummedLen::NONE,
        });
    }

    /// Cuts the next chunk to transmit after its first `at` bytes, so that
    /// a segment can end at the peer's window edge (RFC 9293 §3.8.6). The
    /// bytes after the cut go, copied, into a buffer from `alloc` together
    /// with the following chunk's when both fit `chunk_max` and that chunk
    /// was not transmitted yet (so 1460 + 540 cut at 1024 leaves 1024 and
    /// 976, not three segments). The bytes before the cut stay in place
    /// when the chunk's buffer is ours alone and not chained, and are
    /// copied too otherwise. Returns whether the queue was cut: it is left
    /// as it was when `at` is not inside the chunk or buffers ran out.
    pub fn split_next(
        &mut self,
        at: u32,
        chunk_max: usize,
        alloc: &mut dyn FnMut() -> Option<B>,
    ) -> bool {
        let index = self.next;
        let Some(chunk) = self.chunks.get(index) else {
            return false;
        };
        if at == 0 || at >= chunk.len {
            return false;
        }
        let tail_len = (chunk.len - at) as usize;
        // The following chunk joins the tail when it was never sent and
        // both fit one segment.
        let join = self
            .chunks
            .get(index + 1)
            .filter(|next| next.sent_ns == 0 && !next.rexmit && !next.sacked)
            .is_some_and(|next| tail_len + next.len as usize <= chunk_max);
        let Some(mut tail) = alloc() else {
            return false;
        };
        let joined_len = tail_len
            + if join {
                self.chunks[index + 1].len as usize
            } else {
                0
            };
        if tail.tailroom() < joined_len {
            return false;
        }
        let Some(chunk) = self.chunks.remove(index) else {
            return false;
        };
        let head = match chunk.buf.try_unique() {
            Ok(mut buf) if !buf.is_chained() => {
                copy_range(&buf, at as usize, tail_len, &mut tail);
                // `at` < the buffer's length: trimming cannot fail.
                let _ = buf.trim_back(tail_len);
                Ok(buf.share())
            }
            Ok(buf) => copy_head(buf.share(), at, tail_len, &mut tail, alloc),
            Err(shared) => copy_head(shared, at, tail_len, &mut tail, alloc),
        };
        let head = match head {
            Ok(head) => head,
            Err(buf) => {
                // Buffers ran out: the chunk goes back as it was.
                self.chunks.insert(index, Chunk { buf, ..chunk });
                return false;
            }
        };
        if join {
            if let Some(next) = self.chunks.remove(index) {
                for bytes in next.buf.segments() {
                    if let Ok(dst) = tail.append(bytes.len()) {
                        dst.copy_from_slice(bytes);
                    }
                }
            }
        }
        let tail_len = tail.total_len();
        let tail_chunk = Chunk {
            seq: chunk.seq + at,
            len: tail_len as u32,
            buf: tail.share(),
            // Chunks follow it (they start at `index` now): refill it first.
            short: tail_len < chunk_max && index < self.chunks.len(),
            summed: SummedLen::NONE,
            ..chunk
        };
        self.chunks.insert(index, tail_chunk);
        self.chunks.insert(
            index,
            Chunk {
                buf: head,
                len: at,
                short: false,
                summed: SummedLen::NONE,
                ..chunk
            },
        );
        true
    }

    /// Whether the next chunk to transmit is the short leftover of a cut
    /// that the chunks behind it can fill up to `target` bytes.
    pub fn next_wants_refill(&self, target: usize) -> bool {
        self.chunks.get(self.next).is_some_and(|c| {
            c.short && (c.len as usize) < target && self.next + 1 < self.chunks.len()
        })
    }

    /// Fills the short leftover of a cut ([`next_wants_refill`](Self::next_wants_refill))
    /// up to `target` bytes with the first bytes of the unsent chunks
    /// behind it, copied; a chunk emptied goes, one left in part keeps its
    /// last bytes (in place when its buffer is ours alone and not chained,
    /// copied otherwise) and becomes the next short leftover. Only about
    /// one segment's bytes move per call, however long the queue. When
    /// buffers run out the leftover is sent as it is (its mark cleared).
    pub fn refill_next(&mut self, target: usize, alloc: &mut dyn FnMut() -> Option<B>) {
        let index = self.next;
        let Some(mut short) = self.chunks.remove(index) else {
            return;
        };
        short.short = false;
        let room = target.saturating_sub(short.len as usize);
        // The leftover's buffer was made by the cut: ours, with room.
        let mut buf = match short.buf.try_unique() {
            Ok(buf) if !buf.is_chained() && buf.tailroom() >= room => buf,
            other => {
                let old = match other {
                    Ok(buf) => buf.share(),
                    Err(shared) => shared,
                };
                match alloc().filter(|b| b.tailroom() >= target) {
                    Some(mut fresh) => {
                        copy_range(&*old, 0, short.len as usize, &mut fresh);
                        fresh
                    }
                    None => {
                        self.chunks.insert(index, Chunk { buf: old, ..short });
                        return;
                    }
                }
            }
        };
        let mut len = short.len as usize;
        while len < target {
            let Some(next) = self.chunks.get(index) else {
                break;
            };
            if next.sent_ns != 0 || next.rexmit || next.sacked {
                break;
            }
            let take = (target - len).min(next.len as usize);
            let Some(next) = self.chunks.remove(index) else {
                break;
            };
            copy_range(&*next.buf, 0, take, &mut buf);
            len += take;
            if take == next.len as usize {
                continue;
            }
            let rest = next.len as usize - take;
            let rest_buf = match next.buf.try_unique() {
                Ok(mut b) if !b.is_chained() => {
                    // `take` < its length: trimming cannot fail.
                    let _ = b.trim_front(take);
                    Ok(b.share())
                }
                Ok(b) => copy_rest(b.share(), take, rest, alloc),
                Err(shared) => copy_rest(shared, take, rest, alloc),
            };
            match rest_buf {
                Ok(rest_buf) => {
                    // Chunks follow it (from `index` now): refilled in turn.
                    let short = index < self.chunks.len();
                    self.chunks.insert(
                        index,
                        Chunk {
                            buf: rest_buf,
                            seq: next.seq + take as u32,
                            len: rest as u32,
                            short,
                            summed: SummedLen::NONE,
                            ..next
                        },
                    );
                }
                Err(whole) => {
                    // No buffer for its rest: the bytes taken go back.
                    let _ = buf.trim_back(take);
                    len -= take;
                    self.chunks.insert(index, Chunk { buf: whole, ..next });
                }
            }
            break;
        }
        self.chunks.insert(
            index,
            Chunk {
                buf: buf.share(),
                len: len as u32,
                summed: SummedLen::NONE,
                ..short
            },
        );
    }

    /// Whether the last [`resegment`](Self::resegment) left chunks longer
    /// than it was asked for (buffers ran out).
    pub fn oversized(&self) -> bool {
        self.oversized
    }

    /// The next chunk to transmit, to stamp its transmission.
    pub fn next_unsent_mut(&mut self) -> Option<&mut Chunk<B>> {
        self.chunks.get_mut(self.next)
    }

    /// The chunk at `index`, to stamp its transmission.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Chunk<B>> {
        self.chunks.get_mut(index)
    }

    /// Starts loading the bookkeeping of the chunk at `index`, if there is
    /// one ([`PacketBuf::prefetch_meta`]): a segment to be sent soon
    /// reads its length and takes a reference.
    #[inline(always)]
    pub fn prefetch(&self, index: usize) {
        if let Some(c) = self.chunks.get(index) {
            c.buf.prefetch_meta();
        }
    }

    /// Every chunk from the oldest, sent or not.
    pub fn iter(&self) -> impl Iterator<Item = &Chunk<B>> + '_ {
        self.chunks.iter()
    }

    /// Every chunk from the oldest, to mark them SACKed.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Chunk<B>> + '_ {
        self.chunks.iter_mut()
    }

    /// Chunks queued.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// The index of the next chunk to transmit.
    pub fn next_index(&self) -> usize {
        self.next
    }

    /// Drops everything (the connection is gone).
    pub fn clear(&mut self) {
        self.oversized = false;
        self.spare = None;
        self.chunks.clear();
        self.next = 0;
        self.bytes = 0;
    }
}

/// The bytes a piece being packed still takes: up to `max` in all, as
/// far as its buffer has room.
fn piece_room<B: PacketBuf>(buf: &B, max: usize) -> usize {
    max.saturating_sub(buf.total_len()).min(buf.tailroom())
}

/// Appends `len` bytes of `src` from `offset` on to `dst` (which has the
/// room).
fn copy_range<B: PacketBuf>(src: &B, mut offset: usize, mut len: usize, dst: &mut B) {
    for bytes in src.segments() {
        if len == 0 {
            break;
        }
        if offset >= bytes.len() {
            offset -= bytes.len();
            continue;
        }
        let n = (bytes.len() - offset).min(len);
        if let Ok(out) = dst.append(n) {
            out.copy_from_slice(&bytes[offset..offset + n]);
        }
        offset = 0;
        len -= n;
    }
}

/// The bytes of `chunk` after its first `skip`, `len` of them, copied into
/// a buffer from `alloc` ([`SendQueue::refill_next`]); `Err` gives the chunk
/// back untouched when no buffer with the room comes.
fn copy_rest<B: PacketBuf>(
    chunk: Shared<B>,
    skip: usize,
    len: usize,
    alloc: &mut dyn FnMut() -> Option<B>,
) -> Result<Shared<B>, Shared<B>> {
    let Some(mut rest) = alloc().filter(|b| b.tailroom() >= len) else {
        return Err(chunk);
    };
    copy_range(&*chunk, skip, len, &mut rest);
    Ok(rest.share())
}

/// [`SendQueue::split_next`] of a chunk whose buffer is shared or chained:
/// its first `at` bytes are copied into a buffer from `alloc`, the
/// `tail_len` after them onto `tail`. `Err` gives the chunk back untouched
/// when no buffer with the room comes.
fn copy_head<B: PacketBuf>(
    chunk: Shared<B>,
    at: u32,
    tail_len: usize,
    tail: &mut B,
    alloc: &mut dyn FnMut() -> Option<B>,
) -> Result<Shared<B>, Shared<B>> {
    let Some(mut head) = alloc().filter(|b| b.tailroom() >= at as usize) else {
        return Err(chunk);
    };
    copy_range(&*chunk, 0, at as usize, &mut head);
    copy_range(&*chunk, at as usize, tail_len, tail);
    Ok(head.share())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::buf::{BufferPool, Pool, PoolBuf};

    fn collect(q: &SendQueue<PoolBuf>) -> Vec<u8> {
        let mut out = Vec::new();
        for c in &q.chunks {
            for s in c.buf.segments() {
                out.extend_from_slice(s);
            }
        }
        out
    }

    #[test]
    fn copies_fill_the_unsent_tail_then_new_chunks() {
        let pool = Pool::with_capacity(16).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(100), 10_000);
        let mut alloc = || pool.alloc();
        assert_eq!(q.push_copy(b"abc", 5, &mut alloc), 3);
        assert_eq!(q.push_copy(b"defgh", 5, &mut alloc), 5);
        assert_eq!(q.chunks.len(), 2);
        assert_eq!((q.chunks[0].len, q.chunks[1].len), (5, 3));
        assert_eq!(q.end(), SeqNumber::new(108));
        assert_eq!(collect(&q), b"abcdefgh");
        // Once sent, a chunk is not written again.
        q.advance();
        q.advance();
        assert_eq!(q.push_copy(b"ij", 5, &mut alloc), 2);
        assert_eq!(q.chunks.len(), 3);
        assert_eq!(q.chunks[2].seq, SeqNumber::new(108));
        drop(q);
        pool.assert_whole();
    }

    #[test]
    fn a_small_write_into_a_buffer_short_of_room_goes_on_in_the_next() {
        let pool = Pool::new(tpa::buf::PoolConfig {
            name: "short-room".to_owned(),
            capacity: 8,
            data_room: 8,
            headroom: 0,
            huge_pages: false,
            ..tpa::buf::PoolConfig::default()
        })
        .unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(100), 10_000);
        let mut alloc = || pool.alloc();
        // The first buffer takes 8 of the 10 bytes, the next one the rest,
        // as a write of more than one chunk would be cut.
        assert_eq!(q.push_copy(b"0123456789", 100, &mut alloc), 10);
        assert_eq!((q.chunks[0].len, q.chunks[1].len), (8, 2));
        assert_eq!(q.chunks[1].seq, SeqNumber::new(108));
        assert_eq!(collect(&q), b"0123456789");
        // Buffers run out: what was copied is taken, no more.
        q.advance();
        q.advance();
        let mut none = || None;
        assert_eq!(q.push_copy(b"ab", 100, &mut none), 0);
        let mut one = Some(pool.alloc().unwrap());
        assert_eq!(q.push_copy(&[7; 12], 100, &mut || one.take()), 8);
        assert_eq!(q.end(), SeqNumber::new(118));
        drop(q);
        pool.assert_whole();
    }

    #[test]
    fn a_grown_chunk_cut_back_to_its_first_length_has_no_sum() {
        let pool = Pool::with_capacity(16).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(100), 10_000);
        let mut alloc = || pool.alloc();
        let data: Vec<u8> = (0..1200u32).map(|i| (i * 31 + 3) as u8).collect();
        assert_eq!(q.push_copy(&data[..1000], 1460, &mut alloc), 1000);
        assert_eq!(q.push_copy(&data[1000..1200], 1460, &mut alloc), 200);
        assert_eq!(q.chunks[0].len, 1200);
        // The tail of the cut is 1000 bytes again, but other bytes.
        assert!(q.split_next(200, 1460, &mut alloc));
        assert_eq!(q.chunks[1].len, 1000);
        assert_eq!(q.chunks[1].summed.sum_of(1000), None);
    }

    #[test]
    fn a_chunk_copied_in_one_go_keeps_its_sum_until_its_length_changes() {
        let pool = Pool::with_capacity(16).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(100), 10_000);
        let mut alloc = || pool.alloc();
        let data: Vec<u8> = (0..2500u32).map(|i| (i * 13 + 7) as u8).collect();
        assert_eq!(q.push_copy(&data[..2000], 1460, &mut alloc), 2000);
        // Long enough to be chained: summed as copied.
        assert_eq!(
            q.chunks[0].summed.sum_of(q.chunks[0].len as usize),
            Some(checksum::sum(&data[..1460]))
        );
        assert_eq!(
            q.chunks[1].summed.sum_of(q.chunks[1].len as usize),
            Some(checksum::sum(&data[1460..2000]))
        );
        // The unsent tail grown: its old sum no longer holds.
        assert_eq!(q.push_copy(&data[2000..2100], 1460, &mut alloc), 100);
        assert_eq!(q.chunks[1].len, 640);
        assert_eq!(q.chunks[1].summed.sum_of(q.chunks[1].len as usize), None);
        // Cut: neither piece keeps the whole chunk's sum.
        assert!(q.split_next(1024, 1460, &mut alloc));
        assert_eq!(q.chunks[0].summed.sum_of(q.chunks[0].len as usize), None);
        assert_eq!(q.chunks[1].summed.sum_of(q.chunks[1].len as usize), None);
        // Short data is copied behind the header and summed there.
        assert_eq!(q.push_copy(&data[..100], 100, &mut alloc), 100);
        assert_eq!(
            q.chunks
                .back()
                .map(|c| c.summed.sum_of(c.len as usize))
                .unwrap(),
            None
        );
    }

    #[test]
    fn acks_drop_whole_chunks_only() {
        let pool = Pool::with_capacity(16).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(u32::MAX - 2), 10_000);
        let mut alloc = || pool.alloc();
        q.push_copy(&[7; 12], 4, &mut alloc);
        q.advance();
        q.advance();
        assert_eq!(q.ack(SeqNumber::new(u32::MAX - 2) + 6), 1);
        assert_eq!(q.bytes(), 8);
        assert_eq!(q.next_seq(), SeqNumber::new(u32::MAX - 2) + 8);
        q.rewind();
        assert_eq!(q.next_seq(), SeqNumber::new(u32::MAX - 2) + 4);
        assert_eq!(q.ack(SeqNumber::new(u32::MAX - 2) + 12), 2);
        assert!(q.chunks.is_empty());
        pool.assert_whole();
    }

    #[test]
    fn ack_each_keeps_the_last_released_buffer_held_alone_emptied() {
        let pool = Pool::with_capacity(16).unwrap();
        let mut alloc = || pool.alloc();
        let base = SeqNumber::new(7);
        let mut q = SendQueue::<PoolBuf>::new(base, 10_000);
        q.push_copy(&[1; 12], 4, &mut alloc);
        for _ in 0..3 {
            q.advance();
        }
        // Still held elsewhere (a segment in flight): not kept.
        let in_flight = q.chunks[1].buf.clone();
        assert_eq!(q.ack_each(base + 8, |_| {}), 2);
        assert!(q.take_spare().is_none());
        drop(in_flight);
        assert_eq!(q.ack_each(base + 12, |_| {}), 1);
        let spare = q.take_spare().expect("held alone");
        let fresh = pool.alloc().unwrap();
        assert_eq!(
            (spare.len(), spare.headroom(), spare.tailroom()),
            (0, fresh.headroom(), fresh.tailroom())
        );
        assert!(q.take_spare().is_none());
        // It serves a write as a new buffer would.
        let mut spare = Some(spare);
        assert_eq!(q.push_copy(b"abc", 4, &mut || spare.take()), 3);
        assert_eq!(collect(&q), b"abc");
        drop((q, fresh));
        pool.assert_whole();
    }

    #[test]
    fn ack_each_shows_and_drops_what_ack_drops() {
        let pool = Pool::with_capacity(32).unwrap();
        let mut alloc = || pool.alloc();
        let base = SeqNumber::new(u32::MAX - 5);
        // The same queue twice (five chunks of 4, three sent), acked
        // by each way at every sequence number over it.
        for upto in 0..=21u32 {
            let mut a = SendQueue::<PoolBuf>::new(base, 10_000);
            let mut b = SendQueue::<PoolBuf>::new(base, 10_000);
            for q in [&mut a, &mut b] {
                q.push_copy(&[7; 20], 4, &mut alloc);
                for _ in 0..3 {
                    q.advance();
                }
            }
            let mut seen = Vec::new();
            let popped = b.ack_each(base + upto, |c| seen.push((c.seq, c.len)));
            assert_eq!(popped, a.ack(base + upto), "ack to +{upto}");
            let whole = (upto / 4) as usize;
            let expect: Vec<_> = (0..whole).map(|i| (base + 4 * i as u32, 4)).collect();
            assert_eq!(seen, expect, "ack to +{upto}");
            assert_eq!((b.bytes(), b.len()), (a.bytes(), a.len()), "ack to +{upto}");
            assert_eq!(b.next_seq(), a.next_seq(), "ack to +{upto}");
        }
        pool.assert_whole();
    }

    #[test]
    fn skip_to_undoes_a_rewind_up_to_a_sequence_number() {
        let pool = Pool::with_capacity(16).unwrap();
        let start = SeqNumber::new(u32::MAX - 5);
        let mut q = SendQueue::<PoolBuf>::new(start, 10_000);
        let mut alloc = || pool.alloc();
        q.push_copy(&[1; 16], 4, &mut alloc);
        for _ in 0..3 {
            q.advance();
        }
        q.rewind();
        q.skip_to(start + 9); // inside the third chunk: it stays unsent
        assert_eq!(q.next_seq(), start + 8);
        q.skip_to(start + 4); // never back
        assert_eq!(q.next_seq(), start + 8);
        q.skip_to(start + 100);
        assert!(q.all_sent());
        assert_eq!(q.chunk_starting_at(start + 12).map(|c| c.len), Some(4));
        assert!(q.chunk_starting_at(start + 13).is_none());
        assert!(q.chunk_starting_at(start + 16).is_none());
        assert!(q.chunk_starting_at(start - 4).is_none());
        drop(q);
        pool.assert_whole();
    }

    #[test]
    fn resegmenting_packs_the_bytes_into_shorter_chunks() {
        let pool = Pool::with_capacity(32).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(u32::MAX - 5), 10_000);
        let mut alloc = || pool.alloc();
        let data: Vec<u8> = (0..25u8).collect();
        q.push_copy(&data, 10, &mut alloc);
        q.advance();
        q.advance();
        // One chunk held by a segment in flight: split by copy all the same.
        let in_flight = q.chunks[0].buf.clone();
        assert_eq!(q.resegment(4, &mut alloc), Ok(3));
        let lens: Vec<u32> = q.chunks.iter().map(|c| c.len).collect();
        assert_eq!(lens, [4, 4, 4, 4, 4, 4, 1], "packed, not split");
        let contiguous = q.chunks.iter().zip(q.chunks.iter().skip(1));
        assert!(contiguous.into_iter().all(|(a, b)| a.end() == b.seq));
        assert_eq!(q.chunks[0].seq, SeqNumber::new(u32::MAX - 5));
        assert_eq!(q.end(), SeqNumber::new(u32::MAX - 5) + 25);
        assert_eq!((q.bytes(), collect(&q)), (25, data.clone()));
        assert_eq!(q.next_seq(), q.chunks[0].seq, "rewound");
        drop(in_flight);
        drop(q);
        pool.assert_whole();
    }

    #[test]
    fn resegmenting_without_buffers_keeps_the_chunks_it_cannot_split() {
        let pool = Pool::with_capacity(4).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(0), 10_000);
        let mut alloc = || pool.alloc();
        q.push_copy(&[9; 20], 10, &mut alloc);
        // Two buffers left: the first chunk is cut in two (its buffer
        // comes back), the second needs two and finds one: it stays whole.
        assert_eq!(q.resegment(5, &mut alloc), Err(1));
        let lens: Vec<u32> = q.chunks.iter().map(|c| c.len).collect();
        assert_eq!(lens, [5, 5, 10]);
        assert!(q.oversized());
        assert_eq!((q.bytes(), collect(&q)), (20, vec![9; 20]));
        // Once acknowledged, the first chunks' buffers come back: the
        // retry finishes the job.
        q.advance();
        q.advance();
        assert_eq!(q.ack(SeqNumber::new(10)), 2);
        assert_eq!(q.resegment(5, &mut alloc), Ok(1));
        assert!(!q.oversized());
        assert_eq!((q.bytes(), collect(&q)), (10, vec![9; 10]));
        drop(q);
        pool.assert_whole();
    }

    #[test]
    fn budget_and_buffers_bound_a_copy() {
        let pool = Pool::with_capacity(2).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(0), 6);
        let mut alloc = || pool.alloc();
        assert_eq!(q.push_copy(&[1; 10], 4, &mut alloc), 6);
        assert_eq!(q.space(), 0);
        q.clear();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(0), 100);
        assert_eq!(q.push_copy(&[1; 20], 4, &mut alloc), 8, "two buffers");
        drop(q);
        pool.assert_whole();
    }

    #[test]
    fn a_cut_at_the_window_edge_joins_the_rest_with_the_next_chunk() {
        let pool = Pool::with_capacity(16).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(u32::MAX - 3), 10_000);
        let mut alloc = || pool.alloc();
        let data: Vec<u8> = (0..=255u8).cycle().take(2000).collect();
        q.push_copy(&data, 1460, &mut alloc);
        assert!(!q.split_next(0, 1460, &mut alloc), "nothing before the cut");
        assert!(
            !q.split_next(1460, 1460, &mut alloc),
            "the whole chunk fits"
        );
        assert!(q.split_next(1024, 1460, &mut alloc));
        let lens: Vec<u32> = q.chunks.iter().map(|c| c.len).collect();
        assert_eq!(lens, [1024, 976], "436 + 540 joined");
        assert_eq!(q.chunks[1].seq, SeqNumber::new(u32::MAX - 3) + 1024);
        assert_eq!((q.bytes(), collect(&q)), (2000, data.clone()));
        assert_eq!(q.end(), SeqNumber::new(u32::MAX - 3) + 2000);
        drop(q);
        pool.assert_whole();
    }

    #[test]
    fn a_shared_chunk_is_cut_by_copy_and_a_sent_one_not_joined() {
        let pool = Pool::with_capacity(16).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(0), 10_000);
        let mut alloc = || pool.alloc();
        let data: Vec<u8> = (0..30u8).collect();
        q.push_copy(&data, 10, &mut alloc);
        // The application's buffer (held elsewhere too) and a chunk after
        // it that was transmitted before a rewind.
        let held = q.chunks[0].buf.clone();
        q.chunks[1].sent_ns = 5;
        assert!(q.split_next(4, 10, &mut alloc));
        let lens: Vec<u32> = q.chunks.iter().map(|c| c.len).collect();
        assert_eq!(lens, [4, 6, 10, 10]);
        assert_eq!((q.bytes(), collect(&q)), (30, data));
        assert_eq!(held.total_len(), 10, "the shared buffer untouched");
        drop(held);
        drop(q);
        pool.assert_whole();
        // No buffer: nothing changes.
        let pool = Pool::with_capacity(1).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(0), 10_000);
        let mut alloc = || pool.alloc();
        q.push_copy(&[7; 10], 10, &mut alloc);
        assert!(!q.split_next(4, 10, &mut alloc));
        assert_eq!(q.chunks.len(), 1);
        drop(q);
        pool.assert_whole();
    }

    #[test]
    fn a_short_leftover_is_refilled_one_segment_at_a_time() {
        let pool = Pool::with_capacity(32).unwrap();
        let mut q = SendQueue::<PoolBuf>::new(SeqNumber::new(0), 100_000);
        let mut alloc = || pool.alloc();
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        q.push_copy(&data, 1460, &mut alloc);
        let lens = |q: &SendQueue<PoolBuf>| q.chunks.iter().map(|c| c.len).collect::<Vec<_>>();
        assert_eq!(lens(&q), [1460, 1460, 1460, 620]);
        assert!(q.split_next(1024, 1460, &mut alloc));
        assert_eq!(lens(&q), [1024, 436, 1460, 1460, 620]);
        q.advance();
        assert!(q.next_wants_refill(1460));
        assert!(!q.next_wants_refill(436), "the window takes no more");
        q.refill_next(1024, &mut alloc);
        assert_eq!(
            lens(&q),
            [1024, 1024, 872, 1460, 620],
            "filled to the window"
        );
        assert!(!q.chunks[1].short && q.chunks[2].short);
        q.advance();
        q.refill_next(1460, &mut alloc);
        assert_eq!(lens(&q), [1024, 1024, 1460, 872, 620]);
        q.advance();
        q.refill_next(1460, &mut alloc);
        assert_eq!(
            lens(&q),
            [1024, 1024, 1460, 1460, 32],
            "the last one emptied in part"
        );
        q.advance();
        assert!(!q.next_wants_refill(1460), "the last chunk is not refilled");
        assert_eq!((q.bytes(), collect(&q)), (5000, data));
        let seqs_follow = q
            .chunks
            .iter()
            .zip(q.chunks.iter().skip(1))
            .all(|(a, b)| a.end() == b.seq);
        assert!(seqs_follow);
        drop(q);
        pool.assert_whole();
    }
}
