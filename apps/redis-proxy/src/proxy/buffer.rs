//! Byte buffers of a connection: what was read and not yet used, and what
//! waits to be written. A frame of at least `BIG` bytes moves between them
//! as the allocation it was read into, never copied; small frames are
//! copied into a shared chunk so many of them go out in one write.

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
            self.data.resize(want, 0);
        }
        &mut self.data[self.filled..]
    }

    /// Marks `n` bytes of the last `spare` as read.
    pub fn commit(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.data.len());
    }

    /// Appends `bytes` (a runtime that reads into its own buffer).
    pub fn extend(&mut self, bytes: &[u8]) {
        let room = self.spare(bytes.len());
        room[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// Drops the first `len` pending bytes.
    pub fn consume(&mut self, len: usize) {
        self.start = (self.start + len).min(self.filled);
        if self.start == self.filled {
            self.start = 0;
            self.filled = 0;
            if self.data.len() > 4 * READ_CHUNK {
                // A big frame went through: do not keep its room forever.
                self.data = Vec::new();
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
            let mut fresh = vec![0u8; rest.max(READ_CHUNK)];
            fresh[..rest].copy_from_slice(&self.data[len..self.filled]);
            let mut frame = std::mem::replace(&mut self.data, fresh);
            frame.truncate(len);
            self.filled = rest;
            out.push_chunk(frame);
        } else {
            out.push_bytes(&self.data[self.start..self.start + len]);
            self.consume(len);
        }
    }
}

/// Bytes waiting to be written to a peer, in order.
#[derive(Debug, Default)]
pub struct OutQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    offset: usize,
    bytes: usize,
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
            if back.len() < BIG {
                back.extend_from_slice(bytes);
                return;
            }
        }
        let mut chunk = Vec::with_capacity(bytes.len().max(512));
        chunk.extend_from_slice(bytes);
        self.chunks.push_back(chunk);
    }

    /// Appends `chunk`, moving it when big.
    pub fn push_chunk(&mut self, chunk: Vec<u8>) {
        if chunk.len() < BIG {
            self.push_bytes(&chunk);
        } else {
            self.bytes += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Appends every byte of `other`, moving its big chunks.
    pub fn append(&mut self, mut other: OutQueue) {
        if other.offset > 0 {
            if let Some(front) = other.chunks.front_mut() {
                front.drain(..other.offset);
            }
        }
        for chunk in other.chunks {
            self.push_chunk(chunk);
        }
    }

    /// The next bytes to write (empty when nothing waits).
    pub fn front(&self) -> &[u8] {
        self.chunks.front().map_or(&[][..], |c| &c[self.offset..])
    }

    /// Marks `n` bytes of `front` as written.
    pub fn advance(&mut self, mut n: usize) {
        n = n.min(self.bytes);
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            self.chunks.pop_front();
        }
        if self.chunks.front().is_some_and(|c| c.len() == self.offset) {
            self.chunks.pop_front();
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
        self.chunks.clear();
        self.offset = 0;
        self.bytes = 0;
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
}
