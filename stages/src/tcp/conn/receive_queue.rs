//! The receive queue: in-order payload buffers the application has not
//! read yet, held zero-copy, within a byte budget.

use std::collections::VecDeque;

use tpa::buf::PacketBuf;

use crate::chained::trim_front as trim_front_chained;

/// The queue's storage: each buffer with its length (what
/// `total_len` would walk its chain for).
pub(super) type Storage<B> = VecDeque<(B, usize)>;

/// In-order received data, oldest first.
pub(super) struct ReceiveQueue<B> {
    bufs: Storage<B>,
    bytes: usize,
    capacity: usize,
}

impl<B: PacketBuf> ReceiveQueue<B> {
    /// An empty queue holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        ReceiveQueue {
            bufs: VecDeque::new(),
            bytes: 0,
            capacity,
        }
    }

    /// The queue's storage, if it is empty (it is left with none), for a
    /// later connection's queue ([`adopt_storage`](Self::adopt_storage)).
    pub fn take_storage(&mut self) -> Option<Storage<B>> {
        self.bufs
            .is_empty()
            .then(|| core::mem::take(&mut self.bufs))
    }

    /// Takes `storage` (empty; from [`take_storage`](Self::take_storage))
    /// as the queue's storage, if it has none yet.
    pub fn adopt_storage(&mut self, storage: Storage<B>) {
        if self.bufs.capacity() == 0 && storage.is_empty() {
            self.bufs = storage;
        }
    }

    /// The byte budget.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes the queue can still take.
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.bytes)
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// Whether [`push`](Self::push) has a slot for one more buffer
    /// without growing its storage.
    #[inline]
    pub fn has_slot(&self) -> bool {
        self.bufs.len() < self.bufs.capacity()
    }

    /// Appends a payload of `len` bytes, not empty (the caller trimmed
    /// it to the window and knows its length: `buf.total_len()`, which
    /// for a chain is a walk over its segments, is not asked again).
    #[inline]
    pub fn push(&mut self, buf: B, len: usize) {
        debug_assert!(len > 0 && len == buf.total_len());
        self.bytes += len;
        self.bufs.push_back((buf, len));
    }

    /// The oldest buffer's receive timestamp, if one is queued.
    pub fn front_rx_ns(&self) -> Option<u64> {
        self.bufs.front().map(|(b, _)| b.meta().rx_timestamp_ns)
    }

    /// The oldest buffer, and its length.
    #[inline]
    pub fn pop(&mut self) -> Option<(B, usize)> {
        let (buf, len) = self.bufs.pop_front()?;
        self.bytes -= len;
        Some((buf, len))
    }

    /// Copies the oldest bytes into `out`; returns how many.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let mut done = 0;
        while done < out.len() {
            let Some((front, front_len)) = self.bufs.front_mut() else {
                break;
            };
            let mut consumed = 0;
            for seg in front.segments() {
                let n = seg.len().min(out.len() - done);
                out[done..done + n].copy_from_slice(&seg[..n]);
                done += n;
                consumed += n;
                if done == out.len() {
                    break;
                }
            }
            let before = *front_len;
            if consumed == before {
                self.pop();
            } else {
                self.bytes -= consumed;
                *front_len -= consumed;
                if trim_front_chained(front, consumed).is_err() {
                    // A cut inside a shared segment that did not fit the
                    // first one's room (see `crate::chained`): drop it
                    // rather than hand out the same bytes twice.
                    self.bytes -= before - consumed;
                    self.bufs.pop_front();
                }
            }
        }
        done
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.bufs.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::buf::{BufferPool, Pool, PoolBuf};

    #[test]
    fn reads_across_buffers_and_keeps_the_rest() {
        let pool = Pool::with_capacity(8).unwrap();
        let mut q = ReceiveQueue::<PoolBuf>::new(100);
        for part in [&b"hello "[..], b"world"] {
            let mut b = pool.alloc().unwrap();
            b.extend_from_slice(part).unwrap();
            q.push(b, part.len());
        }
        assert_eq!((q.bytes(), q.free()), (11, 89));
        let mut out = [0u8; 8];
        assert_eq!(q.read(&mut out), 8);
        assert_eq!(&out, b"hello wo");
        assert_eq!(q.bytes(), 3);
        let (rest, len) = q.pop().unwrap();
        assert_eq!((rest.data(), len), (&b"rld"[..], 3));
        assert!(q.is_empty() && q.pop().is_none());
        drop(rest);
        pool.assert_whole();
    }
}
