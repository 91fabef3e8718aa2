//! Byte buffers of a connection: what was read and not yet used, and what
//! waits to be written. A frame of at least `BIG` bytes moves between them
//! as the allocation it was read into, never copied; small frames are
//! copied into a shared chunk so many of them go out in one write.
//!
//! A moved frame keeps its whole allocation, initialised bytes after the
//! frame included; once written it goes back to this thread's [`spares`]
//! and becomes the next read buffer, so no fresh allocation is zero-filled
//! before each big frame is read.

use std::cell::RefCell;
use std::collections::VecDeque;

/// Frames from this size on move as their own allocation.
pub const BIG: usize = 16 * 1024;
/// The least room offered to one read.
pub const READ_CHUNK: usize = 16 * 1024;

/// Bytes read from a peer and not yet taken: `data[start..filled]`.
#[derive(Debug, Default)]
pub struct InBuf {
    data: Vec<u8>,
    start: usize,
    filled: usize,
}

impl InBuf {
    /// The bytes read and not yet taken.
    pub fn pending(&self) -> &[u8] {
        &self.data[self.start..self.filled]
    }

    /// How many bytes are pending.
    pub fn len(&self) -> usize {
        self.filled - self.start
    }

    /// Whether no byte is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for a read of at least `at_least` bytes after the pending ones
    /// (moved to the front first, so a frame grows from offset 0).
    pub fn spare(&mut self, at_least: usize) -> &mut [u8] {
        if self.start > 0 {
            self.data.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
        if self.data.len() - self.filled < at_least {
            let want = (self.filled + at_least).max(self.data.len() * 2);
            if self.filled == 0 && self.data.len() < want {
                // Nothing pending to keep: a written frame's buffer, whose
                // bytes are initialised already, saves zero-filling one.
                if let Some(spare) = spares::take(want) {
                    spares::give(std::mem::replace(&mut self.data, spare));
                }
            }
            if self.data.len() < want {
                self.data.resize(want, 0);
            }
        }
        &mut self.data[self.filled..]
    }

    /// Marks `n` bytes of the last `spare` as read.
    pub fn commit(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.data.len());
    }

    /// Appends `bytes` (a runtime that reads into its own buffer).
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.data.len() - self.filled >= bytes.len() {
            self.data[self.filled..self.filled + bytes.len()].copy_from_slice(bytes);
        } else {
            // Grown by copying in, not by zero-filling first.
            self.data.truncate(self.filled);
            self.data.extend_from_slice(bytes);
        }
        self.filled += bytes.len();
    }

    /// Drops the first `len` pending bytes.
    pub fn consume(&mut self, len: usize) {
        self.start = (self.start + len).min(self.filled);
        if self.start == self.filled {
            self.start = 0;
            self.filled = 0;
            if self.data.len() > 4 * READ_CHUNK {
                // A big frame went through: do not keep its room forever.
                spares::give(std::mem::take(&mut self.data));
            }
        }
    }

    /// Takes the first `len` pending bytes into `out`: a big frame at the
    /// buffer's front moves as the allocation (only the bytes after it are
    /// copied into a fresh buffer); a small one is copied.
    pub fn take_into(&mut self, len: usize, out: &mut OutQueue) {
        let len = len.min(self.len());
        if len >= BIG && self.start == 0 {
            let rest = self.filled - len;
            // The bytes after the frame are copied into a written frame's
            // buffer when one is spare, else into a fresh one that is grown
            // (zero-filled) only when the next read asks for room.
            let after = &self.data[len..self.filled];
            let fresh = match spares::take(rest) {
                Some(mut spare) => {
                    spare[..rest].copy_from_slice(after);
                    spare
                }
                None => {
                    let mut fresh = Vec::with_capacity(rest.max(READ_CHUNK));
                    fresh.extend_from_slice(after);
                    fresh
                }
            };
            let frame = std::mem::replace(&mut self.data, fresh);
            self.filled = rest;
            out.push_frame(frame, len);
        } else {
            out.push_bytes(&self.data[self.start..self.start + len]);
            self.consume(len);
        }
    }
}

/// One buffer of an [`OutQueue`]: its bytes `bytes[..end]` go out; a moved
/// frame keeps the initialised bytes after it, so its buffer can be reused.
#[derive(Debug)]
struct Chunk {
    bytes: Vec<u8>,
    end: usize,
}

impl Chunk {
    fn data(&self) -> &[u8] {
        &self.bytes[..self.end]
    }
}

/// The largest small-frame chunk an [`OutQueue`] keeps, once written, for
/// its next bytes.
const KEEP_SMALL: usize = 4 * BIG;

/// Bytes waiting to be written to a peer, in order. Written small-frame
/// chunks are kept (one, cleared) for the next bytes, and the queue keeps
/// its capacity, so a connection's steady traffic allocates nothing.
#[derive(Debug, Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    offset: usize,
    bytes: usize,
    /// A written small-frame chunk's buffer, empty, for the next chunk.
    spare: Vec<u8>,
}

impl OutQueue {
    /// Appends a copy of `bytes`.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.bytes += bytes.len();
        if let Some(back) = self.chunks.back_mut() {
            // A small-frame chunk takes more; a moved big frame is never grown.
            if back.end < BIG {
                back.bytes.extend_from_slice(bytes);
                back.end = back.bytes.len();
                return;
            }
        }
        let mut chunk = std::mem::take(&mut self.spare);
        if chunk.capacity() == 0 {
            chunk.reserve(bytes.len().max(512));
        }
        chunk.extend_from_slice(bytes);
        let end = chunk.len();
        self.chunks.push_back(Chunk { bytes: chunk, end });
    }

    /// Appends `chunk`, moving it when big.
    pub fn push_chunk(&mut self, chunk: Vec<u8>) {
        let end = chunk.len();
        self.push_frame(chunk, end);
    }

    /// Appends `buffer[..end]`, moving the buffer (whole) when the frame is
    /// big.
    fn push_frame(&mut self, buffer: Vec<u8>, end: usize) {
        if end < BIG {
            self.push_bytes(&buffer[..end]);
        } else {
            self.bytes += end;
            self.chunks.push_back(Chunk { bytes: buffer, end });
        }
    }

    /// Appends every byte of `other`, moving its big chunks.
    pub fn append(&mut self, mut other: OutQueue) {
        self.append_from(&mut other);
    }

    /// Moves every byte of `other` to the end of this queue (big chunks
    /// moved whole, small ones copied), leaving `other` empty with its
    /// capacity and a spare chunk for reuse.
    pub fn append_from(&mut self, other: &mut OutQueue) {
        let mut skip = std::mem::take(&mut other.offset);
        other.bytes = 0;
        while let Some(chunk) = other.chunks.pop_front() {
            if skip == 0 && chunk.end >= BIG {
                self.bytes += chunk.end;
                self.chunks.push_back(chunk);
            } else {
                self.push_bytes(&chunk.bytes[skip..chunk.end]);
                other.retire(chunk);
            }
            skip = 0;
        }
    }

    /// Drops the spare chunk when its capacity is above `max` bytes (a
    /// queue kept idle should not hold much).
    pub fn limit_spare(&mut self, max: usize) {
        if self.spare.capacity() > max {
            self.spare = Vec::new();
        }
    }

    /// Done with a written chunk: a moved frame's buffer goes to the next
    /// read, a small-frame chunk becomes this queue's spare.
    #[inline]
    fn retire(&mut self, chunk: Chunk) {
        if chunk.end >= BIG {
            spares::give(chunk.bytes);
        } else if chunk.bytes.capacity() <= KEEP_SMALL
            && chunk.bytes.capacity() > self.spare.capacity()
        {
            let mut bytes = chunk.bytes;
            bytes.clear();
            self.spare = bytes;
        }
    }

    /// The next bytes to write (empty when nothing waits).
    pub fn front(&self) -> &[u8] {
        self.chunks
            .front()
            .map_or(&[][..], |c| &c.data()[self.offset..])
    }

    /// Marks `n` bytes of `front` as written.
    pub fn advance(&mut self, mut n: usize) {
        n = n.min(self.bytes);
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.end - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            if let Some(done) = self.chunks.pop_front() {
                self.retire(done);
            }
        }
        if self.chunks.front().is_some_and(|c| c.end == self.offset) {
            if let Some(done) = self.chunks.pop_front() {
                self.retire(done);
            }
            self.offset = 0;
        }
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        while let Some(chunk) = self.chunks.pop_front() {
            self.retire(chunk);
        }
        self.offset = 0;
        self.bytes = 0;
    }
}

/// This thread's written big-frame buffers, initialised to their length,
/// waiting to be read into again (a few, none too big).
mod spares {
    use super::{RefCell, READ_CHUNK};

    /// How many buffers wait at most.
    const KEPT: usize = 8;
    /// The biggest buffer kept.
    const LARGEST: usize = 64 * READ_CHUNK;

    thread_local! {
        static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// A buffer of at least `len` initialised bytes, if one waits.
    #[cold]
    pub fn take(len: usize) -> Option<Vec<u8>> {
        SPARES.with_borrow_mut(|spares| {
            let at = spares.iter().position(|b| b.len() >= len)?;
            Some(spares.swap_remove(at))
        })
    }

    /// Keeps `buffer` (its whole allocation, initialised) for a later read.
    #[cold]
    pub fn give(buffer: Vec<u8>) {
        if buffer.len() < READ_CHUNK || buffer.capacity() > LARGEST {
            return;
        }
        SPARES.with_borrow_mut(|spares| {
            if spares.len() < KEPT {
                spares.push(buffer);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_frames_move_small_ones_are_copied() {
        let mut inbuf = InBuf::default();
        let big = vec![7u8; 3 * BIG];
        inbuf.extend(&big);
        inbuf.extend(b"tail");
        let before = inbuf.pending().as_ptr();
        let mut out = OutQueue::default();
        inbuf.take_into(big.len(), &mut out);
        // The frame left as the very allocation it was read into.
        assert_eq!(out.front().as_ptr(), before);
        assert_eq!(out.len(), 3 * BIG);
        assert_eq!(inbuf.pending(), b"tail");
        inbuf.take_into(4, &mut out);
        assert!(inbuf.is_empty());
        let mut written = Vec::new();
        while !out.is_empty() {
            let n = out.front().len().min(1000);
            written.extend_from_slice(&out.front()[..n]);
            out.advance(n);
        }
        assert_eq!(written.len(), 3 * BIG + 4);
        assert_eq!(&written[3 * BIG..], b"tail");
    }

    #[test]
    fn written_small_chunks_take_the_next_bytes() {
        let mut out = OutQueue::default();
        out.push_bytes(b"+OK\r\n");
        let first = out.front().as_ptr();
        out.advance(5);
        assert!(out.is_empty());
        out.push_bytes(b"$1\r\nx\r\n");
        assert_eq!(out.front().as_ptr(), first);
        // A reply queue appended empties into the output and keeps its
        // chunk for its next reply.
        let mut reply = OutQueue::default();
        reply.push_bytes(b":1\r\n");
        let kept = reply.front().as_ptr();
        out.append_from(&mut reply);
        assert!(reply.is_empty());
        assert_eq!(out.front(), b"$1\r\nx\r\n:1\r\n");
        reply.push_bytes(b":2\r\n");
        assert_eq!(reply.front().as_ptr(), kept);
        reply.limit_spare(0);
        reply.advance(4);
        reply.limit_spare(0);
        reply.push_bytes(b":3\r\n");
        assert_eq!(reply.front(), b":3\r\n");
    }

    #[test]
    fn a_written_frame_buffer_is_the_next_read_buffer() {
        std::thread::spawn(|| {
            let mut inbuf = InBuf::default();
            let mut out = OutQueue::default();
            inbuf.extend(&vec![1u8; 2 * BIG]);
            let frame = inbuf.pending().as_ptr();
            inbuf.take_into(2 * BIG, &mut out);
            // Written: its buffer waits for the next read that needs room.
            out.advance(out.len());
            assert!(out.is_empty());
            let room = inbuf.spare(2 * BIG);
            assert_eq!(room.as_ptr(), frame);
            // Reused, not cleared: what the read writes is what is pending.
            room[..3].copy_from_slice(b"abc");
            inbuf.commit(3);
            assert_eq!(inbuf.pending(), b"abc");
        })
        .join()
        .unwrap();
    }
}
