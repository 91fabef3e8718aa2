//! tpa's own packet buffer pool, for the pure-Rust ports.
//!
//! A [`Pool`] owns `capacity` fixed-size buffers carved out of one memory
//! region, mapped once (on huge pages when the system has them, on normal
//! pages otherwise). Allocation and free never touch the heap:
//!
//! - each thread keeps a small cache of free buffers per pool, so the common
//!   [`alloc`](Pool::alloc) and drop of a [`PoolBuf`] take no lock;
//! - a cache that runs empty refills half its size from the pool's shared free
//!   list in one locked step, and a full one flushes half back the same way.
//!
//! A buffer may be dropped on any thread; it goes to that thread's cache.
//!
//! The pool keeps a receive reserve ([`PoolConfig::rx_reserve`]): ordinary
//! allocations ([`Pool::alloc`]) never take the shared free list below it;
//! receive allocations ([`Pool::alloc_rx`], what ports receive into) may.
//! Buffers sitting in a cache count as free: the pool is
//! [whole](crate::buf::BufferPool::is_whole) when
//! every buffer is home, wherever it is cached. See `doc/internals/buffers.md`.
//!
//! ```
//! use tpa::buf::{BufferPool, PacketBuf, Pool, PoolConfig};
//! use tpa::port::Burst;
//!
//! let pool = Pool::new(PoolConfig { capacity: 1024, ..PoolConfig::default() }).unwrap();
//! let mut burst: Burst<_, 32> = Burst::new();
//! assert_eq!(pool.alloc_bulk(&mut burst, 32), 32);
//! assert_eq!(pool.in_use(), 32);
//! burst.clear();
//! pool.assert_whole();
//! ```

mod buf;
mod cache;
mod region;

use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use buf::PoolBuf;

use buf::{BufHdr, BufPtr, HDR_SIZE};
use cache::CacheSlot;
use region::Region;

use crate::buf::Meta;
use crate::port::Burst;

/// How to build a [`Pool`]. Start from `PoolConfig::default()` and override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// A name for stats and error messages.
    pub name: String,
    /// Number of buffers.
    pub capacity: usize,
    /// Bytes of data a buffer holds after its headroom (2048 by default: a
    /// full Ethernet frame plus room to grow).
    pub data_room: usize,
    /// Free bytes in front of the data of a fresh buffer (128 by default).
    pub headroom: usize,
    /// Free buffers each thread keeps for this pool (256 by default; clamped
    /// to a quarter of the capacity; 0 disables the caches).
    pub cache_size: usize,
    /// Try explicit huge pages first (falls back to normal pages silently).
    pub huge_pages: bool,
    /// Buffers of the shared free list only receive allocations
    /// ([`Pool::alloc_rx`]) may take (0 by default; at most the capacity),
    /// so a worker whose application holds every ordinary buffer still
    /// receives (and can process the acknowledgements that free them).
    pub rx_reserve: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            name: "pool".to_owned(),
            capacity: 8192,
            data_room: 2048,
            headroom: 128,
            cache_size: 256,
            huge_pages: true,
            rx_reserve: 0,
        }
    }
}

/// Why a pool could not be created.
#[derive(Debug)]
pub enum PoolError {
    /// A configuration value is out of range.
    InvalidConfig {
        /// The pool's name.
        name: String,
        /// Which value, and what is wrong with it.
        what: &'static str,
    },
    /// The memory region could not be mapped.
    Map {
        /// The pool's name.
        name: String,
        /// The error `mmap` returned.
        source: io::Error,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::InvalidConfig { name, what } => write!(f, "pool {name}: {what}"),
            PoolError::Map { name, source } => {
                write!(f, "pool {name}: cannot map buffer memory: {source}")
            }
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Map { source, .. } => Some(source),
            PoolError::InvalidConfig { .. } => None,
        }
    }
}

/// How a pool's buffers lie in its one region: buffer `i` starts at
/// `base + i * stride`, its header first, then its room.
#[cfg(feature = "af_xdp")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct RegionLayout {
    /// The region's first byte.
    pub(crate) base: NonNull<u8>,
    /// Bytes mapped (whole pages).
    pub(crate) len: usize,
    /// Bytes from one buffer to the next.
    pub(crate) stride: usize,
    /// Bytes of header in front of each room.
    pub(crate) header: usize,
    /// Bytes of room (headroom + data room) of each buffer.
    pub(crate) room: usize,
    /// Number of buffers.
    pub(crate) capacity: usize,
}

/// A snapshot of a pool's counters. Exact when no other thread is using the
/// pool at the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Number of buffers the pool owns.
    pub capacity: usize,
    /// Buffers held by the application (allocated and not yet dropped).
    pub in_use: usize,
    /// Buffers available: in the shared free list or in a thread's cache.
    pub free: usize,
    /// Of the free buffers, those sitting in per-thread caches.
    pub cached: usize,
    /// Buffers asked for but not obtained because the pool was empty (for
    /// ordinary allocations: empty down to the receive reserve).
    pub failed_allocs: u64,
    /// Of those, receive allocations ([`Pool::alloc_rx`]).
    pub failed_rx_allocs: u64,
    /// The receive reserve.
    pub rx_reserve: usize,
}

/// The shared state of a pool. Lives until no handle, no buffer outside the
/// shared free list, and no reference from a cache remains (`refs`).
struct PoolInner {
    id: u64,
    name: String,
    headroom: u32,
    room: u32,
    cache_size: usize,
    capacity: usize,
    /// Buffers of `shared` only receive allocations take.
    rx_reserve: usize,
    /// Free buffers not in any cache.
    shared: Mutex<Vec<BufPtr>>,
    /// 1 while any [`Pool`] handle exists, plus one per buffer outside
    /// `shared` (cached or in use). Frees the pool when it reaches 0.
    refs: AtomicUsize,
    /// Live [`Pool`] handles.
    handles: AtomicUsize,
    /// Set when the last handle is gone: buffers then skip the caches.
    closed: AtomicBool,
    failed_allocs: AtomicU64,
    failed_rx_allocs: AtomicU64,
    /// The published fill level of every thread cache of this pool.
    caches: Mutex<Vec<Arc<CacheSlot>>>,
    /// Where the buffers live; dropped (unmapped) last.
    region: Region,
}

/// Locks a mutex, ignoring poisoning: the pool's lists stay consistent even
/// if a thread panicked elsewhere while holding the guard (no user code runs
/// under these locks).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PoolInner {
    /// Moves up to `n` free buffers from the shared list to `dst` and counts
    /// them as out, leaving the receive reserve unless `class` may take it.
    /// Returns how many moved.
    fn take_shared(&self, dst: &mut Vec<BufPtr>, n: usize, class: AllocClass) -> usize {
        let mut shared = lock(&self.shared);
        let k = n.min(self.takeable(shared.len(), class));
        let at = shared.len() - k;
        dst.extend(shared.drain(at..));
        drop(shared);
        if k > 0 {
            self.refs.fetch_add(k, Ordering::Relaxed);
        }
        k
    }

    /// Free buffers of a shared list of `len` that `class` may take.
    #[inline]
    fn takeable(&self, len: usize, class: AllocClass) -> usize {
        match class {
            AllocClass::Ordinary => len.saturating_sub(self.rx_reserve),
            AllocClass::Receive => len,
        }
    }

    /// Takes one free buffer from the shared list, counting it as out.
    fn take_one_shared(&self, class: AllocClass) -> Option<BufPtr> {
        let mut shared = lock(&self.shared);
        if self.takeable(shared.len(), class) == 0 {
            return None;
        }
        let p = shared.pop()?;
        drop(shared);
        self.refs.fetch_add(1, Ordering::Relaxed);
        Some(p)
    }

    /// Returns buffers to the shared list and drops the references they held;
    /// frees the pool if they were the last.
    ///
    /// # Safety
    /// `this` must be alive, and every buffer must belong to it and be owned
    /// by the caller. The pool may be gone when this returns.
    unsafe fn put_shared(this: NonNull<PoolInner>, bufs: impl Iterator<Item = BufPtr>) {
        // SAFETY: the caller guarantees the pool is alive; the buffers given
        // back below are references that keep it so until `release`.
        let inner = unsafe { this.as_ref() };
        let mut shared = lock(&inner.shared);
        let before = shared.len();
        shared.extend(bufs);
        let k = shared.len() - before;
        drop(shared);
        if k > 0 {
            // SAFETY: the `k` buffers just returned each held one reference.
            unsafe { PoolInner::release(this, k) };
        }
    }

    /// Drops `n` references, freeing the pool when they were the last.
    ///
    /// # Safety
    /// The caller must own `n` references to the pool at `this`.
    unsafe fn release(this: NonNull<PoolInner>, n: usize) {
        // SAFETY: the caller's references keep the pool alive until here.
        let prev = unsafe { this.as_ref() }
            .refs
            .fetch_sub(n, Ordering::Release);
        debug_assert!(prev >= n);
        if prev == n {
            // Pairs with the `Release` decrements: every use of the pool by
            // other threads happens before it is freed.
            fence(Ordering::Acquire);
            // SAFETY: `this` came from `Box::into_raw` in `Pool::new` and no
            // reference remains.
            drop(unsafe { Box::from_raw(this.as_ptr()) });
        }
    }

    /// Buffers in thread caches, as last published.
    fn cached(&self) -> usize {
        lock(&self.caches)
            .iter()
            .map(|s| s.len.load(Ordering::Relaxed))
            .sum()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        for slot in lock(&self.caches).iter() {
            slot.pool_alive.store(false, Ordering::Release);
        }
    }
}

/// Who allocates: ordinary allocations leave the receive reserve alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AllocClass {
    /// Anything but a port's receive path.
    Ordinary,
    /// A port receiving a packet: may take the reserve.
    Receive,
}

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// A handle to a buffer pool. Cloning is cheap (the clones share the pool);
/// `Pool` is `Send` and `Sync`.
///
/// The pool's memory is released once the last handle is dropped and every
/// buffer has come back. Buffers still in flight keep it alive.
pub struct Pool {
    inner: NonNull<PoolInner>,
}

// SAFETY: all shared state of `PoolInner` is atomics or behind mutexes; the
// thread caches are thread-local.
unsafe impl Send for Pool {}
// SAFETY: as above.
unsafe impl Sync for Pool {}

impl Pool {
    /// Creates a pool and maps its memory.
    pub fn new(config: PoolConfig) -> Result<Pool, PoolError> {
        let invalid = |what| PoolError::InvalidConfig {
            name: config.name.clone(),
            what,
        };
        if config.capacity == 0 {
            return Err(invalid("capacity must be at least 1"));
        }
        let room = config
            .headroom
            .checked_add(config.data_room)
            .filter(|&r| r > 0 && r <= u32::MAX as usize / 2)
            .ok_or_else(|| invalid("headroom + data room must be between 1 byte and 2 GiB"))?;
        let stride = (HDR_SIZE + room).next_multiple_of(core::mem::align_of::<BufHdr>());
        let len = stride
            .checked_mul(config.capacity)
            .ok_or_else(|| invalid("capacity × buffer size overflows"))?;
        let region = Region::map(len, config.huge_pages).map_err(|source| PoolError::Map {
            name: config.name.clone(),
            source,
        })?;
        if config.rx_reserve > config.capacity {
            return Err(invalid("rx_reserve must not exceed the capacity"));
        }
        let cache_size = config.cache_size.min(config.capacity / 4);
        let inner = Box::new(PoolInner {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            name: config.name,
            headroom: config.headroom as u32,
            room: room as u32,
            cache_size,
            capacity: config.capacity,
            rx_reserve: config.rx_reserve,
            shared: Mutex::new(Vec::with_capacity(config.capacity)),
            refs: AtomicUsize::new(1),
            handles: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
            failed_allocs: AtomicU64::new(0),
            failed_rx_allocs: AtomicU64::new(0),
            caches: Mutex::new(Vec::new()),
            region,
        });
        let inner = NonNull::from(Box::leak(inner));
        // SAFETY: just created; no other reference exists yet.
        let r = unsafe { inner.as_ref() };
        let base = r.region.base().as_ptr();
        let mut shared = lock(&r.shared);
        // Push in reverse so the first allocations come from the region start.
        for i in (0..r.capacity).rev() {
            // SAFETY: slot `i` lies inside the region (`len = stride × capacity`)
            // and is aligned to the header's alignment (the base is page
            // aligned, the stride a multiple of it).
            let hdr = unsafe { base.add(i * stride) }.cast::<BufHdr>();
            // SAFETY: as above; the slot is not yet shared with anyone.
            unsafe {
                hdr.write(BufHdr {
                    pool: inner,
                    data_off: r.headroom,
                    data_len: 0,
                    room: r.room,
                    refs: AtomicU16::new(1),
                    nb_segs: 1,
                    meta: Meta::default(),
                    next: None,
                })
            };
            // SAFETY: `hdr` is derived from the non-null region base.
            shared.push(BufPtr(unsafe { NonNull::new_unchecked(hdr) }));
        }
        drop(shared);
        Ok(Pool { inner })
    }

    /// Where this pool's buffers lie, for a device that reads and writes
    /// them in place by offset (AF_XDP's UMEM).
    #[cfg(feature = "af_xdp")]
    pub(crate) fn region_layout(&self) -> RegionLayout {
        let r = self.inner();
        RegionLayout {
            base: r.region.base(),
            len: r.region.len(),
            stride: (HDR_SIZE + r.room as usize).next_multiple_of(core::mem::align_of::<BufHdr>()),
            header: HDR_SIZE,
            room: r.room as usize,
            capacity: r.capacity,
        }
    }

    /// Whether `buf`'s first segment is one of this pool's buffers.
    #[cfg(feature = "af_xdp")]
    pub(crate) fn owns(&self, buf: &PoolBuf) -> bool {
        buf.pool_ptr() == self.inner
    }

    /// The receive reserve ([`PoolConfig::rx_reserve`]).
    pub fn rx_reserve(&self) -> usize {
        self.inner().rx_reserve
    }

    /// A pool of `capacity` default-sized buffers.
    pub fn with_capacity(capacity: usize) -> Result<Pool, PoolError> {
        Pool::new(PoolConfig {
            capacity,
            ..PoolConfig::default()
        })
    }

    #[inline]
    fn inner(&self) -> &PoolInner {
        // SAFETY: a handle holds a reference to the pool.
        unsafe { self.inner.as_ref() }
    }

    /// An empty buffer with the pool's headroom, or `None` when the pool (and
    /// this thread's cache) is empty, which also counts a failed allocation.
    /// Leaves the receive reserve alone.
    #[inline]
    pub fn alloc(&self) -> Option<PoolBuf> {
        // SAFETY: the handle keeps the pool alive; `inner` is its owning
        // pointer (from `Box::leak`).
        unsafe { cache::alloc_one(self.inner, AllocClass::Ordinary) }
    }

    /// An empty buffer to receive a packet into: as [`alloc`](Pool::alloc),
    /// but may take the receive reserve. Failures count in both
    /// `failed_allocs` and `failed_rx_allocs`.
    #[inline]
    pub fn alloc_rx(&self) -> Option<PoolBuf> {
        // SAFETY: as in `alloc`.
        unsafe { cache::alloc_one(self.inner, AllocClass::Receive) }
    }

    /// Appends up to `n` fresh buffers to `burst` (fewer if it fills up or
    /// the pool runs dry down to the receive reserve). Returns how many were
    /// added; shortfalls caused by an empty pool count as failed
    /// allocations.
    pub fn alloc_bulk<const N: usize>(&self, burst: &mut Burst<PoolBuf, N>, n: usize) -> usize {
        let n = n.min(burst.remaining());
        // SAFETY: as in `alloc`.
        unsafe { cache::alloc_with(self.inner, n, AllocClass::Ordinary, |b| burst.push(b)) }
    }

    /// As [`alloc_bulk`](Pool::alloc_bulk), for receiving: may take the
    /// receive reserve.
    pub fn alloc_bulk_rx<const N: usize>(&self, burst: &mut Burst<PoolBuf, N>, n: usize) -> usize {
        let n = n.min(burst.remaining());
        // SAFETY: as in `alloc`.
        unsafe { cache::alloc_with(self.inner, n, AllocClass::Receive, |b| burst.push(b)) }
    }

    /// Counters of the pool.
    pub fn stats(&self) -> PoolStats {
        let r = self.inner();
        // Two separate reads: a refill or flush by another thread in between
        // skews the sum for that moment (clamped below), never afterwards.
        let cached = r.cached();
        let shared = lock(&r.shared).len();
        let free = (shared + cached).min(r.capacity);
        PoolStats {
            capacity: r.capacity,
            in_use: r.capacity - free,
            free,
            cached,
            failed_allocs: r.failed_allocs.load(Ordering::Relaxed),
            failed_rx_allocs: r.failed_rx_allocs.load(Ordering::Relaxed),
            rx_reserve: r.rx_reserve,
        }
    }

    /// Number of buffers the pool owns.
    pub fn capacity(&self) -> usize {
        self.inner().capacity
    }

    /// Buffers currently held outside the pool (allocated, not yet dropped).
    pub fn in_use(&self) -> usize {
        self.stats().in_use
    }

    /// Returns this thread's cached buffers to the shared free list, so other
    /// threads can allocate them.
    pub fn flush_cache(&self) {
        cache::flush_current(self.inner());
    }

    /// Returns every buffer this thread caches, of any pool, to its pool's
    /// shared list.
    ///
    /// A pool whose last handle was dropped on another thread stays mapped
    /// while some thread still caches its buffers; those go back when the
    /// thread exits, creates a cache for another pool, or calls this.
    pub fn flush_local_caches() {
        cache::flush_all_current();
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner().name
    }

    /// Headroom of a fresh buffer.
    pub fn headroom(&self) -> usize {
        self.inner().headroom as usize
    }

    /// Headroom + data room of every buffer.
    pub fn buf_capacity(&self) -> usize {
        self.inner().room as usize
    }

    /// Whether the buffers live on explicit huge pages.
    pub fn is_huge(&self) -> bool {
        self.inner().region.is_huge()
    }
}

impl crate::buf::Pooled for PoolBuf {
    type Pool = Pool;
}

impl crate::buf::BufSource<PoolBuf> for Pool {
    #[inline]
    fn alloc(&self) -> Option<PoolBuf> {
        Pool::alloc(self)
    }
    #[inline]
    fn alloc_bulk<const N: usize>(&self, out: &mut Burst<PoolBuf, N>) -> usize {
        Pool::alloc_bulk(self, out, N)
    }
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        self.inner().handles.fetch_add(1, Ordering::Relaxed);
        Pool { inner: self.inner }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let r = self.inner();
        if r.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            cache::flush_current(r);
            r.closed.store(true, Ordering::Release);
            // SAFETY: the handles collectively held one reference.
            unsafe { PoolInner::release(self.inner, 1) };
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name())
            .field("buf_capacity", &self.buf_capacity())
            .field("huge", &self.is_huge())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Buffers sitting in a thread's cache count as returned, so the pool is
/// whole once every buffer is dropped, on whatever thread.
impl crate::buf::BufferPool for Pool {
    fn name(&self) -> &str {
        Pool::name(self)
    }
    fn capacity(&self) -> usize {
        Pool::capacity(self)
    }
    fn in_use(&self) -> usize {
        Pool::in_use(self)
    }
    #[track_caller]
    fn assert_whole(&self) {
        let s = self.stats();
        assert!(
            s.in_use == 0,
            "pool {}: {} of {} buffers not returned ({s:?})",
            self.name(),
            s.in_use,
            s.capacity
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::{BufferPool, PacketBuf};

    fn small_pool() -> Pool {
        Pool::new(PoolConfig {
            capacity: 64,
            cache_size: 8,
            ..PoolConfig::default()
        })
        .unwrap()
    }

    /// A view of whether the pool behind `p` has been freed, via the slot of
    /// this thread's cache (created by one alloc/free round trip).
    fn alive_flag(p: &Pool) -> Arc<CacheSlot> {
        drop(p.alloc());
        let slots = lock(&p.inner().caches);
        Arc::clone(slots.last().expect("a cache slot"))
    }

    #[test]
    fn an_unchained_packet_touches_one_cache_line_of_header() {
        assert_eq!(buf::HOT_SIZE, 64);
        assert_eq!(HDR_SIZE, 128);
        assert_eq!(core::mem::size_of::<PoolBuf>(), 8);
    }

    #[test]
    fn a_recycled_buffer_is_as_a_new_one_and_a_chain_is_not_recycled() {
        let p = small_pool();
        let fresh = p.alloc().unwrap();
        let mut b = p.alloc().unwrap();
        b.extend_from_slice(b"payload").unwrap();
        b.trim_front(3).unwrap();
        b.prepend(1).unwrap();
        b.meta_mut().rx_timestamp_ns = 7;
        b.meta_mut().rss_hash = Some(9);
        assert!(b.recycle());
        assert_eq!(
            (b.len(), b.headroom(), b.tailroom(), b.meta()),
            (0, fresh.headroom(), fresh.tailroom(), fresh.meta())
        );
        let mut tail = p.alloc().unwrap();
        tail.extend_from_slice(b"tail").unwrap();
        b.chain(tail).unwrap();
        assert!(!b.recycle());
        assert_eq!(b.total_len(), 4);
        drop((b, fresh));
        p.assert_whole();
    }

    #[test]
    fn pool_is_freed_when_handles_and_buffers_are_gone() {
        let p = small_pool();
        let flag = alive_flag(&p);
        let b = p.alloc().unwrap();
        let q = p.clone();
        drop(p);
        assert!(flag.pool_alive.load(Ordering::Acquire));
        drop(q);
        assert!(flag.pool_alive.load(Ordering::Acquire), "a buffer is out");
        assert_eq!(b.len(), 0);
        drop(b);
        assert!(!flag.pool_alive.load(Ordering::Acquire));
    }

    #[test]
    fn pool_is_freed_when_a_caching_thread_exits() {
        let p = small_pool();
        let flag = alive_flag(&p);
        let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let q = p.clone();
        let t = std::thread::spawn(move || {
            // Leave buffers in this thread's cache, then give up the handle.
            drop(q.alloc());
            drop(q);
            ready_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        });
        ready.recv().unwrap();
        drop(p);
        assert!(
            flag.pool_alive.load(Ordering::Acquire),
            "the thread caches buffers"
        );
        go.send(()).unwrap();
        t.join().unwrap();
        assert!(!flag.pool_alive.load(Ordering::Acquire));
    }

    #[test]
    fn buffers_freed_by_thread_local_destructors_return_to_their_pool() {
        // A buffer dropped by another thread-local's destructor may find this
        // thread's caches alive or already gone, and must reach its pool
        // either way (never through the pointer the fast paths keep to the
        // caches). Destructors run in reverse order of first use here.
        thread_local! {
            static HELD_BEFORE: std::cell::RefCell<Vec<PoolBuf>> =
                const { std::cell::RefCell::new(Vec::new()) };
            static HELD_AFTER: std::cell::RefCell<Vec<PoolBuf>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        let p = small_pool();
        let q = p.clone();
        std::thread::spawn(move || {
            HELD_BEFORE.with(|h| h.borrow_mut().clear());
            // Reach the caches, between the two holders' first uses.
            drop(q.alloc());
            for held in [&HELD_BEFORE, &HELD_AFTER] {
                let bufs: Vec<PoolBuf> = (0..4).filter_map(|_| q.alloc()).collect();
                assert_eq!(bufs.len(), 4);
                held.with(|h| h.borrow_mut().extend(bufs));
            }
        })
        .join()
        .unwrap();
        p.assert_whole();
    }

    #[test]
    fn flushing_local_caches_frees_a_pool_closed_elsewhere() {
        let p = small_pool();
        let flag = alive_flag(&p);
        std::thread::spawn(move || drop(p)).join().unwrap();
        assert!(
            flag.pool_alive.load(Ordering::Acquire),
            "this thread caches buffers"
        );
        Pool::flush_local_caches();
        assert!(!flag.pool_alive.load(Ordering::Acquire));
    }

    #[test]
    fn a_pool_is_freed_through_a_cache_that_only_took_frees() {
        // The last references to a pool may sit in the cache of a thread that
        // never allocated from it, only dropped its buffers; that cache frees
        // the pool when its thread exits. Under Miri this checks the cache
        // frees through the pool's owning pointer (it once kept a pointer made
        // from `&PoolInner`, which grants no right to free).
        let p = small_pool();
        let flag = alive_flag(&p);
        let bufs: Vec<PoolBuf> = (0..4).map(|_| p.alloc().unwrap()).collect();
        let (dropped_tx, dropped) = std::sync::mpsc::channel::<()>();
        let (exit, exit_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            drop(bufs);
            dropped_tx.send(()).unwrap();
            exit_rx.recv().unwrap();
        });
        dropped.recv().unwrap();
        drop(p);
        assert!(
            flag.pool_alive.load(Ordering::Acquire),
            "the other thread caches the buffers"
        );
        exit.send(()).unwrap();
        t.join().unwrap();
        assert!(!flag.pool_alive.load(Ordering::Acquire));
    }

    #[test]
    fn stale_cache_entries_are_pruned() {
        // Each pool is slow to build under Miri: fewer there.
        for _ in 0..if cfg!(miri) { 10 } else { 100 } {
            let p = small_pool();
            drop(p.alloc());
        }
        let n = with_caches_len();
        assert!(n <= 2, "{n} cache entries left");
    }

    /// `chain_clone` links as `chain_shared` of a clone: straight for a
    /// header and a one-segment tail, the general way for a longer tail,
    /// the tail's references counted either way and given back on drop.
    #[test]
    fn a_chained_clone_is_a_clone_chained() {
        let p = small_pool();
        let mut chunk = p.alloc().unwrap();
        chunk.extend_from_slice(b"payload").unwrap();
        let mut chunk = chunk.share();
        let mut head = p.alloc().unwrap();
        head.extend_from_slice(b"hdr").unwrap();
        head.chain_clone(&mut chunk).unwrap();
        assert_eq!((head.segment_count(), head.total_len()), (2, 10));
        assert_eq!(
            head.segments().collect::<Vec<_>>(),
            [&b"hdr"[..], b"payload"]
        );
        assert_eq!(chunk.ref_count(), 2);
        let mut long = head.share();
        let mut other = p.alloc().unwrap();
        other.chain_clone(&mut long).unwrap();
        assert_eq!((other.segment_count(), other.total_len()), (3, 10));
        assert_eq!((long.ref_count(), chunk.ref_count()), (2, 3));
        drop((long, other));
        assert_eq!(chunk.ref_count(), 1);
        drop(chunk);
        assert_eq!(p.in_use(), 0);
    }

    fn with_caches_len() -> usize {
        // One more pool to trigger the sweep on entry creation.
        let p = small_pool();
        drop(p.alloc());
        cache::entries_on_this_thread()
    }
}
