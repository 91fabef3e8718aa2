//! [`Shared`]: a read-only handle to a packet that can be cloned without
//! copying the packet, to hold it in several places (a retransmission queue
//! and a transmit burst).

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;

use super::PacketBuf;

/// A packet shared by reference count: cloning adds one reference to every
/// segment, dropping removes one, and the segments go back to their pool
/// when the last holder is gone.
///
/// A handle lends only `&B` (the bytes, the segments, the metadata), never
/// `&mut B`: shared bytes are not written. [`try_unique`](Shared::try_unique)
/// gives the buffer back, writable, once this handle is the last one.
///
/// ```
/// use tpa::buf::{BufferPool, PacketBuf, Pool};
///
/// let pool = Pool::with_capacity(16).unwrap();
/// let mut data = pool.alloc().unwrap();
/// data.extend_from_slice(b"payload").unwrap();
/// let held = data.share(); // kept until acknowledged
/// let mut pkt = pool.alloc().unwrap(); // a fresh header segment
/// pkt.extend_from_slice(b"hdr:").unwrap();
/// pkt.chain_shared(held.clone()).unwrap();
/// assert_eq!(held.ref_count(), 2);
/// assert_eq!(pkt.segments().collect::<Vec<_>>(), [&b"hdr:"[..], b"payload"]);
/// drop(pkt); // sent
/// let data = held.try_unique().unwrap(); // the last holder may write again
/// drop(data);
/// pool.assert_whole();
/// ```
pub struct Shared<B: PacketBuf> {
    buf: B,
    /// Opts out of the automatic `Send`/`Sync`: they are implemented below
    /// with the bounds sharing needs.
    _not_auto: PhantomData<*const ()>,
}

// SAFETY: handles on several threads read the same buffer at once through
// `&B` and update its counts atomically; as for `Arc<B>`, that needs `B` to
// be both `Send` (the last handle frees it wherever it is) and `Sync`.
unsafe impl<B: PacketBuf + Send + Sync> Send for Shared<B> {}
// SAFETY: as above; `&Shared<B>` lends `&B` and can clone.
unsafe impl<B: PacketBuf + Send + Sync> Sync for Shared<B> {}

/// A reference count is at its maximum (65535 for both backends): the
/// buffer cannot be held once more. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRefs;

impl fmt::Display for TooManyRefs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a segment's reference count is at its maximum")
    }
}

impl std::error::Error for TooManyRefs {}

impl<B: PacketBuf> Shared<B> {
    /// Shares `buf` (also [`PacketBuf::share`]).
    #[inline]
    pub fn new(buf: B) -> Shared<B> {
        Shared::from_inner(buf)
    }

    /// Wraps a buffer whose first segment may already be shared.
    #[inline]
    pub(crate) fn from_inner(buf: B) -> Shared<B> {
        Shared {
            buf,
            _not_auto: PhantomData,
        }
    }

    /// The buffer, first segment possibly shared: only for code that reads
    /// it or moves its references (linking it into a chain).
    #[inline]
    pub(crate) fn into_inner(self) -> B {
        self.buf
    }

    /// Another handle to the same packet, or [`TooManyRefs`].
    #[inline]
    pub fn try_clone(&self) -> Result<Shared<B>, TooManyRefs> {
        // SAFETY: the new value shares the first segment and lives only in
        // the handle returned, which lends it out read-only.
        unsafe { self.buf.clone_ref() }.map(Shared::from_inner)
    }

    /// The buffer, writable, when this is the last handle to its first
    /// segment; the handle back otherwise. (Later segments may still be
    /// shared: they stay read-only, see [`PacketBuf`].)
    #[inline]
    pub fn try_unique(self) -> Result<B, Shared<B>> {
        // `ref_count` reads with acquire ordering: every other holder's
        // reads happen before our writes.
        if self.buf.ref_count() == 1 {
            Ok(self.buf)
        } else {
            Err(self)
        }
    }
}

impl<B: PacketBuf> Clone for Shared<B> {
    /// Another handle to the same packet.
    ///
    /// # Panics
    /// When a segment already holds 65535 references (as `Arc` aborts on
    /// overflow); [`try_clone`](Shared::try_clone) reports it instead.
    #[inline]
    fn clone(&self) -> Self {
        match self.try_clone() {
            Ok(s) => s,
            Err(e) => panic!("cannot share a buffer once more: {e}"),
        }
    }
}

impl<B: PacketBuf> Deref for Shared<B> {
    type Target = B;

    /// The packet, read-only.
    #[inline]
    fn deref(&self) -> &B {
        &self.buf
    }
}

impl<B: PacketBuf + fmt::Debug> fmt::Debug for Shared<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Shared").field(&self.buf).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::{BufError, BufferPool, Pool, PoolBuf, PoolConfig};

    fn pool() -> Pool {
        Pool::new(PoolConfig {
            capacity: 16,
            cache_size: 4,
            data_room: 256,
            huge_pages: false,
            ..PoolConfig::default()
        })
        .unwrap()
    }

    fn buf(p: &Pool, bytes: &[u8]) -> PoolBuf {
        let mut b = p.alloc().unwrap();
        b.extend_from_slice(bytes).unwrap();
        b
    }

    #[test]
    fn clones_count_and_the_last_one_writes_again() {
        let p = pool();
        let s = buf(&p, b"data").share();
        let c = s.clone();
        assert_eq!((s.ref_count(), c.ref_count()), (2, 2));
        let s = s.try_unique().unwrap_err();
        drop(c);
        let mut b = s.try_unique().unwrap();
        b.data_mut()[0] = b'D';
        assert_eq!(b.data(), b"Data");
        drop(b);
        p.assert_whole();
    }

    #[test]
    fn a_header_chained_to_held_data_reads_both_and_writes_neither_shared() {
        let p = pool();
        let held = buf(&p, b"payload").share();
        let mut pkt = buf(&p, b"hdr");
        pkt.chain_shared(held.clone()).unwrap();
        assert_eq!((pkt.segment_count(), pkt.total_len()), (2, 10));
        assert_eq!(pkt.append(1).unwrap_err(), BufError::Shared);
        let rest = pkt.unchain().unwrap();
        assert_eq!(rest.data(), b"payload");
        assert_eq!(held.ref_count(), 2, "the chain's reference moved to `rest`");
        drop((pkt, rest));
        assert_eq!(held.ref_count(), 1);
        drop(held);
        p.assert_whole();
    }

    #[test]
    fn the_last_reference_may_go_on_another_thread() {
        let p = pool();
        let mut head = buf(&p, b"a");
        head.chain(buf(&p, b"b")).unwrap();
        let s = head.share();
        let others: Vec<_> = (0..2).map(|_| s.clone()).collect();
        std::thread::scope(|t| {
            for o in others {
                t.spawn(move || drop(o));
            }
        });
        drop(s);
        p.assert_whole();
    }
}
