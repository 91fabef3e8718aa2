//! What every pool shares: allocation by buffer type ([`BufSource`]) and
//! the leak check ([`BufferPool`]): how many buffers are out.

use crate::port::Burst;

/// A pool that lends buffers and knows how many are out: tpa's
/// [`Pool`](super::Pool) and, with feature `dpdk`, DPDK's `Mempool`
/// (`tpa::port::dpdk::Mempool`).
///
/// Tests end with [`assert_whole`](BufferPool::assert_whole) on every pool
/// they allocated from, so a buffer leaked anywhere on the way fails the
/// test that leaked it.
///
/// ```
/// use tpa::buf::{BufferPool, Pool};
///
/// let pool = Pool::with_capacity(64).unwrap();
/// let buf = pool.alloc().unwrap();
/// assert_eq!(BufferPool::in_use(&pool), 1);
/// assert!(!pool.is_whole());
/// drop(buf);
/// pool.assert_whole();
/// ```
pub trait BufferPool {
    /// The pool's name, for messages.
    fn name(&self) -> &str;
    /// Number of buffers the pool owns.
    fn capacity(&self) -> usize;
    /// Buffers lent out and not yet returned (a device's receive ring
    /// counts: it holds buffers until the device is stopped).
    fn in_use(&self) -> usize;

    /// Whether every buffer is back.
    #[inline]
    fn is_whole(&self) -> bool {
        self.in_use() == 0
    }

    /// Panics, naming the pool and how many buffers are out, unless every
    /// buffer is back.
    #[track_caller]
    fn assert_whole(&self) {
        let out = self.in_use();
        assert!(
            out == 0,
            "pool {}: {out} of {} buffers not returned",
            self.name(),
            self.capacity()
        );
    }
}

/// A buffer type and the pool it comes from: every
/// [`PacketBuf`](super::PacketBuf) is one. Implemented where the pool is
/// defined (the pool says which buffers it lends).
pub trait Pooled: Sized {
    /// Where buffers of this type come from (tpa's [`Pool`](super::Pool), a
    /// DPDK mempool): what [`Cx::alloc`](crate::stage::Cx::alloc) allocates
    /// from.
    type Pool: BufSource<Self>;
}

/// Where buffers of type `B` come from: tpa's [`Pool`](super::Pool) for
/// [`PoolBuf`](super::PoolBuf), a DPDK mempool for an mbuf. Named by the
/// buffer type ([`Pooled::Pool`]), so code that
/// knows only `B` (a stage, through [`Cx`](crate::stage::Cx)) allocates
/// with a direct, inlinable call, whatever the port.
///
/// ```
/// use tpa::buf::{BufSource, Pool, PoolBuf};
/// use tpa::port::Burst;
///
/// let pool = Pool::with_capacity(64).unwrap();
/// let one: Option<PoolBuf> = BufSource::alloc(&pool);
/// let mut more: Burst<PoolBuf, 8> = Burst::new();
/// assert_eq!(BufSource::alloc_bulk(&pool, &mut more), 8);
/// drop((one, more));
/// tpa::buf::BufferPool::assert_whole(&pool);
/// ```
pub trait BufSource<B>: Clone {
    /// An empty buffer with the pool's headroom, or `None` (counted by the
    /// pool) when only the receive reserve is left.
    fn alloc(&self) -> Option<B>;
    /// Fills `out` with empty buffers, as many as it has room for or the
    /// pool has above its receive reserve; returns how many were added.
    fn alloc_bulk<const N: usize>(&self, out: &mut Burst<B, N>) -> usize;
}
