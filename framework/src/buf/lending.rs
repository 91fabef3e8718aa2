//! The leak check shared by every pool: how many buffers are out.

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
