//! Per-thread caches of free buffers, one per (thread, pool) pair.
//!
//! The cache is the lock-free fast path: allocation pops from it, free pushes
//! to it. It refills from and flushes to the pool's shared free list half a
//! cache at a time. Its fill level is published in a [`CacheSlot`] the pool
//! can read, so [`BufferPool::is_whole`](crate::buf::BufferPool::is_whole) counts cached
//! buffers as free.
//!
//! A cache entry points at its pool without owning a reference; the buffers
//! it holds do (each buffer outside the shared list is one). An empty entry is
//! therefore never used to reach its pool: it is found only through a live
//! pool or buffer of the same id, and pruned once its slot says the pool died.

use core::cell::{Cell, RefCell};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::{lock, AllocClass, BufPtr, PoolBuf, PoolInner};

/// What a pool can see of one thread's cache.
pub(super) struct CacheSlot {
    /// Buffers in the cache, as last published by its thread.
    pub(super) len: AtomicUsize,
    /// Cleared by the pool when it is freed.
    pub(super) pool_alive: AtomicBool,
}

/// One thread's cache for one pool.
struct LocalCache {
    id: u64,
    pool: NonNull<PoolInner>,
    slot: Arc<CacheSlot>,
    /// Free buffers, at most `size`: allocated once, never grown.
    bufs: Vec<BufPtr>,
    /// `bufs.capacity()` (at least the pool's cache size), so a free that
    /// finds room below the size pushes without a growth path.
    size: usize,
}

impl LocalCache {
    #[inline]
    fn publish(&self) {
        self.slot.len.store(self.bufs.len(), Ordering::Relaxed);
    }

    /// Returns every cached buffer to the shared list.
    fn flush_all(&mut self) {
        if self.bufs.is_empty() {
            return;
        }
        self.slot.len.store(0, Ordering::Relaxed);
        // SAFETY: the cached buffers belong to the pool and keep it alive
        // until they are back.
        unsafe { PoolInner::put_shared(self.pool, self.bufs.drain(..)) };
    }
}

/// This thread's caches.
struct Caches {
    entries: Vec<LocalCache>,
    /// The entry that is hot between borrows, and while borrowed the one to
    /// heat when the borrow ends (the last one used).
    hot: Option<usize>,
}

impl Caches {
    /// Takes the hot cache back from [`HOT`]: its length returns to its
    /// `Vec`, and the fast paths miss until [`heat`](Self::heat).
    fn cool(&mut self) {
        // Not hot (a borrow that panicked never heated): the `Vec` holds
        // the length already.
        if HOT.with(|h| h.id.replace(0)) == 0 {
            return;
        }
        if let Some(i) = self.hot {
            let e = &mut self.entries[i];
            let len = e.slot.len.load(Ordering::Relaxed);
            debug_assert!(len <= e.size);
            // SAFETY: while hot, the fast paths kept the array's first `len`
            // buffers initialised (a pop takes the last, a push writes the
            // next below the capacity) and published `len` in the slot.
            unsafe { e.bufs.set_len(len) };
        }
    }

    /// Makes the entry used last hot.
    fn heat(&mut self) {
        let Some(i) = self.hot else {
            return;
        };
        let e = &mut self.entries[i];
        e.publish();
        HOT.with(|h| {
            h.bufs.set(e.bufs.as_mut_ptr());
            h.size.set(e.size);
            h.slot.set(Arc::as_ptr(&e.slot));
            h.id.set(e.id);
        });
    }

    /// The cache for the pool at `pool`, created on first use.
    ///
    /// The cache keeps `pool` and may free the pool through it (when the
    /// buffers it flushes were the pool's last references), so `pool` must be
    /// the pool's owning pointer (from `Box::leak` in `Pool::new`), never one
    /// made from a `&PoolInner`: a shared reference grants no right to free.
    ///
    /// # Safety
    /// The pool at `pool` must be alive.
    #[inline]
    unsafe fn entry(&mut self, pool: NonNull<PoolInner>) -> &mut LocalCache {
        // SAFETY: the caller guarantees the pool is alive.
        let id = unsafe { pool.as_ref() }.id;
        let i = match self.entries.iter().position(|e| e.id == id) {
            Some(i) => i,
            // SAFETY: as above.
            None => unsafe { self.create(pool) },
        };
        self.hot = Some(i);
        &mut self.entries[i]
    }

    /// The cache for the pool with id `id`, if this thread has one.
    fn find(&mut self, id: u64) -> Option<&mut LocalCache> {
        self.entries.iter_mut().find(|e| e.id == id)
    }

    /// Returns the new entry's index.
    ///
    /// # Safety
    /// As for [`entry`](Self::entry).
    #[cold]
    unsafe fn create(&mut self, pool_ptr: NonNull<PoolInner>) -> usize {
        self.sweep();
        // SAFETY: the caller guarantees the pool is alive; the sweep above
        // frees only pools with no buffer out, and ours has a handle or a
        // buffer keeping it.
        let pool = unsafe { pool_ptr.as_ref() };
        let slot = Arc::new(CacheSlot {
            len: AtomicUsize::new(0),
            pool_alive: AtomicBool::new(true),
        });
        {
            let mut slots = lock(&pool.caches);
            // Forget slots of caches whose thread has exited.
            slots.retain(|s| Arc::strong_count(s) > 1 || s.len.load(Ordering::Relaxed) > 0);
            slots.push(Arc::clone(&slot));
        }
        let bufs = Vec::with_capacity(pool.cache_size);
        self.entries.push(LocalCache {
            id: pool.id,
            pool: pool_ptr,
            slot,
            size: bufs.capacity(),
            bufs,
        });
        self.entries.len() - 1
    }

    /// Hands the cached buffers of closed pools back (so those pools can be
    /// freed) and forgets caches of pools that are gone.
    fn sweep(&mut self) {
        for e in &mut self.entries {
            // SAFETY: a non-empty cache holds buffers, which keep the pool alive.
            if !e.bufs.is_empty() && unsafe { e.pool.as_ref() }.closed.load(Ordering::Acquire) {
                e.flush_all();
            }
        }
        self.hot = None;
        self.entries
            .retain(|e| !e.bufs.is_empty() || e.slot.pool_alive.load(Ordering::Acquire));
    }
}

impl Drop for Caches {
    fn drop(&mut self) {
        // From here on the fast paths miss, and the slow ones find the key
        // gone.
        self.cool();
        for e in &mut self.entries {
            e.flush_all();
        }
    }
}

/// The hot cache: the one of this thread's caches used last, reached with
/// no borrow. Its length is its slot's `len`.
struct Hot {
    /// The cache's pool's id; 0 (no pool's: ids start at 1) while no cache
    /// is hot.
    id: Cell<u64>,
    /// The cache's buffer array (its `Vec`'s, which never moves: a cache
    /// never grows).
    bufs: Cell<*mut BufPtr>,
    /// The array's capacity.
    size: Cell<usize>,
    /// The cache's slot.
    slot: Cell<*const CacheSlot>,
}

impl Hot {
    /// A buffer of the pool with id `id` from the hot cache, if it is that
    /// pool's and holds one.
    #[inline]
    fn pop(&self, id: u64) -> Option<BufPtr> {
        if self.id.get() != id {
            return None;
        }
        // SAFETY: a hot cache's entry is alive and holds its slot: entries
        // are dropped only under a borrow of the caches, which cools first.
        let slot = unsafe { &*self.slot.get() };
        let n = slot.len.load(Ordering::Relaxed);
        if n == 0 {
            return None;
        }
        slot.len.store(n - 1, Ordering::Relaxed);
        if n >= 2 {
            // The buffer the next allocation hands out: its header is cold
            // when it was freed long ago, and the allocation writes it.
            // SAFETY: as below, the array's first `n` are initialised.
            let next = unsafe { self.bufs.get().add(n - 2).read() };
            super::buf::prefetch_line(next.0.as_ptr().cast());
        }
        // SAFETY: the array's first `n` buffers are initialised, and the
        // cache owns them; the last is ours now (the length says so).
        Some(unsafe { self.bufs.get().add(n - 1).read() })
    }

    /// Puts `p`, a buffer of the pool with id `id`, in the hot cache; false
    /// when that cache is another pool's or full.
    #[inline]
    fn push(&self, id: u64, p: BufPtr) -> bool {
        if self.id.get() != id {
            return false;
        }
        // SAFETY: as in `pop`.
        let slot = unsafe { &*self.slot.get() };
        let n = slot.len.load(Ordering::Relaxed);
        if n == self.size.get() {
            return false;
        }
        // SAFETY: `n` is below the array's capacity; the slot past the
        // length is free to write.
        unsafe { self.bufs.get().add(n).write(p) };
        slot.len.store(n + 1, Ordering::Relaxed);
        true
    }
}

thread_local! {
    static CACHES: RefCell<Caches> = const {
        RefCell::new(Caches { entries: Vec::new(), hot: None })
    };
    /// No destructor and a constant start: reached with no state check.
    static HOT: Hot = const {
        Hot {
            id: Cell::new(0),
            bufs: Cell::new(core::ptr::null_mut()),
            size: Cell::new(0),
            slot: Cell::new(core::ptr::null()),
        }
    };
}

/// This thread's [`HOT`], reached with no call: a closure that does more
/// than take the address may leave `LocalKey::with` out of line, where it
/// reaches the key through its accessor's function pointer.
#[inline(always)]
fn hot() -> &'static Hot {
    // SAFETY: `HOT` has no destructor: its storage lives as long as this
    // thread, and a `&Hot` cannot leave the thread (`Hot` is not `Sync`).
    HOT.with(|h| unsafe { &*core::ptr::from_ref(h) })
}

/// Runs `f` on this thread's caches, or returns `None` when they are not
/// available (thread exiting, or re-entered). The hot cache is cooled for
/// the borrow and the cache used last heated after it (not if `f` panics).
#[inline]
fn with_caches<R>(f: impl FnOnce(&mut Caches) -> R) -> Option<R> {
    CACHES
        .try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            c.cool();
            let r = f(&mut c);
            c.heat();
            Some(r)
        })
        .ok()
        .flatten()
}

/// Allocates one buffer.
///
/// # Safety
/// As for [`alloc_with`].
///
/// The common case (the hot cache is this pool's and holds one) is a pop and the
/// buffer's reset, inline; an empty or unavailable cache, a pool without
/// caches and a failure go through [`alloc_with`], out of line.
#[inline]
pub(super) unsafe fn alloc_one(pool_ptr: NonNull<PoolInner>, class: AllocClass) -> Option<PoolBuf> {
    // SAFETY: the caller guarantees the pool is alive.
    let pool = unsafe { pool_ptr.as_ref() };
    // A pool without caches has no entry in any thread: it is never hot
    // and takes the slow path.
    if let Some(p) = hot().pop(pool.id) {
        // SAFETY: `p` came off this pool's free list; we own it now.
        return Some(unsafe { PoolBuf::from_fresh(p, pool.headroom) });
    }
    // SAFETY: the caller's guarantee.
    unsafe { alloc_one_slow(pool_ptr, class) }
}

/// [`alloc_one`] when the hot cache has nothing to give (another pool's,
/// empty, or none): this pool's cache, refilled from the shared list, or
/// the shared list itself, or a failure counted.
///
/// # Safety
/// As for [`alloc_with`].
#[cold]
#[inline(never)]
unsafe fn alloc_one_slow(pool_ptr: NonNull<PoolInner>, class: AllocClass) -> Option<PoolBuf> {
    let mut out = None;
    // SAFETY: the caller's guarantee.
    unsafe { alloc_with(pool_ptr, 1, class, |b| out = Some(b)) };
    out
}

/// Allocates up to `n` buffers, handing each to `sink`; returns how many.
/// `sink` must not drop buffers or touch the pool.
///
/// Refills take half a cache from the shared list above the receive
/// reserve; a receive allocation that finds nothing there takes exactly
/// what it still needs from the reserve, so reserve buffers never sit in a
/// cache for ordinary allocations to find.
///
/// # Safety
/// `pool_ptr` must be the owning pointer of a live pool (a
/// [`Pool`](super::Pool) handle's, or a buffer header's), not one made from a
/// reference: this thread's cache keeps it and may free the pool through it.
#[inline]
pub(super) unsafe fn alloc_with(
    pool_ptr: NonNull<PoolInner>,
    n: usize,
    class: AllocClass,
    mut sink: impl FnMut(PoolBuf),
) -> usize {
    // SAFETY: the caller guarantees the pool is alive; the handle or buffer
    // keeping it so outlives this call.
    let pool = unsafe { pool_ptr.as_ref() };
    let headroom = pool.headroom;
    let got = if pool.cache_size == 0 {
        None
    } else {
        with_caches(|c| {
            // SAFETY: the pool is alive, and `pool_ptr` is its owning pointer.
            let e = unsafe { c.entry(pool_ptr) };
            let mut got = 0;
            while got < n {
                let p = match e.bufs.pop() {
                    Some(p) => p,
                    None => {
                        if !refill(pool, e, n - got, class) {
                            break;
                        }
                        continue;
                    }
                };
                // SAFETY: `p` came off this pool's free list; we own it now.
                sink(unsafe { PoolBuf::from_fresh(p, headroom) });
                got += 1;
            }
            e.publish();
            got
        })
    };
    let got = match got {
        Some(got) => got,
        None => alloc_uncached(pool, n, class, &mut sink),
    };
    if got < n {
        count_failed(pool, (n - got) as u64, class);
    }
    got
}

/// Refills an empty cache from the shared list: half a cache above the
/// receive reserve, or for a receive allocation what it still `needs` from
/// the reserve, a cache at most (the rest on the next refill). False when
/// nothing was taken. Out of line: one call in `size / 2` allocations.
#[cold]
fn refill(pool: &PoolInner, e: &mut LocalCache, needs: usize, class: AllocClass) -> bool {
    debug_assert!(e.bufs.is_empty(), "a refill of a cache that holds buffers");
    let half = (e.size / 2).max(1);
    pool.take_shared(&mut e.bufs, half, AllocClass::Ordinary) != 0
        || (class != AllocClass::Ordinary
            && pool.take_shared(&mut e.bufs, needs.min(e.size), class) != 0)
}

/// Allocation without this thread's cache: straight from the shared list.
#[cold]
fn alloc_uncached(
    pool: &PoolInner,
    n: usize,
    class: AllocClass,
    sink: &mut impl FnMut(PoolBuf),
) -> usize {
    let mut got = 0;
    while got < n {
        let Some(p) = pool.take_one_shared(class) else {
            break;
        };
        // SAFETY: `p` came off this pool's free list; we own it now.
        sink(unsafe { PoolBuf::from_fresh(p, pool.headroom) });
        got += 1;
    }
    got
}

#[cold]
fn count_failed(pool: &PoolInner, failed: u64, class: AllocClass) {
    pool.failed_allocs.fetch_add(failed, Ordering::Relaxed);
    if class == AllocClass::Receive {
        pool.failed_rx_allocs.fetch_add(failed, Ordering::Relaxed);
    }
}

/// Frees one buffer into this thread's cache (or the shared list).
///
/// Out of line: a buffer is dropped in many places, and the push inlined
/// into each made callers too big to inline in turn.
#[inline(never)]
pub(super) fn free_one(p: BufPtr) {
    // SAFETY: the buffer is ours and keeps its pool alive.
    let pool = unsafe { p.0.as_ref().pool.as_ref() };
    if pool.closed.load(Ordering::Acquire) {
        return free_uncached(p);
    }
    // Spills and entries are the slow path's (a call here would make every
    // free save registers). A pool without caches is never hot.
    if !hot().push(pool.id, p) {
        free_one_slow(p);
    }
}

/// [`free_one`] when the hot cache cannot take the buffer (another pool's,
/// full, or none).
#[cold]
#[inline(never)]
fn free_one_slow(p: BufPtr) {
    free_many(core::iter::once(p));
}

/// Frees buffers, possibly of several pools, into this thread's caches (or
/// the shared lists).
#[inline]
pub(super) fn free_many(mut bufs: impl Iterator<Item = BufPtr>) {
    let rest = with_caches(|c| {
        for p in bufs.by_ref() {
            // SAFETY: the buffer is ours and keeps its pool alive.
            let pool_ptr = unsafe { p.0.as_ref() }.pool;
            // SAFETY: as above.
            let pool = unsafe { pool_ptr.as_ref() };
            if pool.cache_size == 0 || pool.closed.load(Ordering::Acquire) {
                free_uncached(p);
                continue;
            }
            // SAFETY: `p` keeps the pool alive; `pool_ptr` is the owning
            // pointer the pool wrote into its buffers.
            let e = unsafe { c.entry(pool_ptr) };
            if e.bufs.len() >= e.size {
                spill(e);
            }
            e.bufs.push(p);
            e.publish();
        }
    });
    if rest.is_none() {
        bufs.for_each(free_uncached);
    }
}

/// Gives one buffer straight back to its pool's shared list.
#[cold]
fn free_uncached(p: BufPtr) {
    // SAFETY: the buffer is ours and keeps its pool alive.
    let pool = unsafe { p.0.as_ref() }.pool;
    // SAFETY: `p` belongs to the live pool and is ours to give.
    unsafe { PoolInner::put_shared(pool, core::iter::once(p)) };
}

/// A full cache gives half its buffers back to the shared list. Out of
/// line: one call in `size / 2` frees. The caller holds a buffer of the
/// pool, which keeps it alive through this call.
#[cold]
fn spill(e: &mut LocalCache) {
    let keep = e.size / 2;
    // SAFETY: the cached buffers belong to the pool, which the caller's
    // buffer (still out) keeps alive.
    unsafe { PoolInner::put_shared(e.pool, e.bufs.drain(keep..)) };
}

/// Returns this thread's cached buffers of `pool` to its shared list.
pub(super) fn flush_current(pool: &PoolInner) {
    with_caches(|c| {
        if let Some(e) = c.find(pool.id) {
            e.flush_all();
        }
    });
}

/// Returns all of this thread's cached buffers and forgets dead pools.
pub(super) fn flush_all_current() {
    with_caches(|c| {
        for e in &mut c.entries {
            e.flush_all();
        }
        c.hot = None;
        c.entries
            .retain(|e| e.slot.pool_alive.load(Ordering::Acquire));
    });
}

/// Number of cache entries this thread holds (for tests of pruning).
#[cfg(test)]
pub(super) fn entries_on_this_thread() -> usize {
    with_caches(|c| c.entries.len()).unwrap_or(0)
}
