//! [`Mempool`]: a DPDK pool of packet mbufs with room for tpa's [`Meta`].
//!
//! [`Meta`]: crate::buf::Meta

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::{dpdk_error, errno, Eal};
use super::mbuf::{Mbuf, MBUF_PRIV_SIZE};
use crate::port::{Burst, PortError};

/// Sizes of a packet mbuf pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Number of mbufs (a power of two minus one uses memory best).
    pub mbufs: u32,
    /// Per-lcore cache size (DPDK threads only; 0 disables it).
    pub cache: u32,
    /// Data room of each mbuf, headroom included.
    pub data_room: u16,
    /// Mbufs only the receive path may take (0 by default; less than
    /// `mbufs`): [`Mempool::alloc`] and the transmit path fail, counted,
    /// once no more than this many are free to the allocating thread,
    /// while the device keeps refilling its receive ring from them.
    pub rx_reserve: u32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            mbufs: 4095,
            cache: 256,
            data_room: sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            rx_reserve: 0,
        }
    }
}

/// A DPDK mempool of packet mbufs whose private area holds a [`Meta`]
/// (`priv_size` = [`MBUF_PRIV_SIZE`]).
///
/// It keeps a receive reserve ([`PoolConfig::rx_reserve`]) as tpa's own
/// pool does: ordinary allocations ([`alloc`](Self::alloc),
/// [`alloc_bulk`](Self::alloc_bulk), the transmit path's copies) leave the
/// last `rx_reserve` free mbufs alone; the device's receive refill, which
/// DPDK's driver does straight from the pool, and
/// [`alloc_rx`](Self::alloc_rx) may take them. "Free" counts what the
/// allocating thread can reach: the pool's common store and its own
/// lcore cache.
///
/// Dropping it frees the pool when every mbuf has come back; while some are
/// still out (held by the application, or in a device ring) the pool is
/// leaked instead, with a warning, because freeing it would leave them
/// dangling.
///
/// [`Meta`]: crate::buf::Meta
#[derive(Debug)]
pub struct Mempool {
    pool: NonNull<sys::rte_mempool>,
    name: String,
    rx_reserve: u32,
    data_room: u16,
    failed_allocs: AtomicU64,
    failed_rx_allocs: AtomicU64,
}

/// A snapshot of a [`Mempool`]'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolStats {
    /// Mbufs the pool owns.
    pub capacity: usize,
    /// Mbufs out of the pool (held by the application or a device).
    pub in_use: usize,
    /// Mbufs free (per-lcore caches included).
    pub available: usize,
    /// Mbufs asked for but not obtained (for ordinary allocations: because
    /// only the receive reserve was left).
    pub failed_allocs: u64,
    /// Of those, receive allocations ([`Mempool::alloc_rx`]); the device's
    /// own refill failures count in
    /// [`DeviceStats::rx_nombuf`](super::DeviceStats::rx_nombuf).
    pub failed_rx_allocs: u64,
    /// The receive reserve.
    pub rx_reserve: u32,
}

// SAFETY: DPDK's default mempool ops (ring_mp_mc) are safe for concurrent
// get/put from any thread; the handle itself is immutable.
unsafe impl Send for Mempool {}
// SAFETY: as above.
unsafe impl Sync for Mempool {}

/// Makes pool names unique in the process (DPDK names are global).
static NEXT_POOL: AtomicU32 = AtomicU32::new(0);

impl Mempool {
    /// Creates a pool on NUMA `socket` named after `label` (shortened and made
    /// unique, as DPDK pool names are global and short).
    pub fn create(
        _eal: &Eal,
        label: &str,
        cfg: &PoolConfig,
        socket: i32,
    ) -> Result<Mempool, PortError> {
        if cfg.rx_reserve >= cfg.mbufs {
            return Err(PortError::InvalidConfig {
                name: label.to_owned(),
                what: format!(
                    "rx_reserve of {} leaves nothing of a pool of {} mbufs",
                    cfg.rx_reserve, cfg.mbufs
                ),
            });
        }
        let serial = NEXT_POOL.fetch_add(1, Ordering::Relaxed);
        let max = sys::RTE_MEMPOOL_NAMESIZE as usize - 1 - 3 - 12;
        let label: String = label
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(max)
            .collect();
        let name = format!("tpa{serial}_{label}");
        let cname = CString::new(name.clone()).map_err(|_| PortError::InvalidConfig {
            name: name.clone(),
            what: "pool name contains NUL".into(),
        })?;
        // SAFETY: the EAL is initialised (we hold &Eal); the name is a valid C
        // string copied by DPDK.
        let pool = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                cfg.mbufs,
                cfg.cache.min(sys::RTE_MEMPOOL_CACHE_MAX_SIZE),
                MBUF_PRIV_SIZE,
                cfg.data_room,
                socket,
            )
        };
        match NonNull::new(pool) {
            Some(pool) => Ok(Mempool {
                pool,
                name,
                rx_reserve: cfg.rx_reserve,
                data_room: cfg.data_room,
                failed_allocs: AtomicU64::new(0),
                failed_rx_allocs: AtomicU64::new(0),
            }),
            None => Err(dpdk_error(&name, "rte_pktmbuf_pool_create", errno())),
        }
    }

    /// Allocates an empty mbuf with the default headroom and a default
    /// Meta, leaving the receive reserve alone; `None` (counted in
    /// [`MempoolStats::failed_allocs`]) when only the reserve is left.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid; a non-NULL result is a fresh mbuf we own.
        let m = unsafe {
            if self.rx_reserve == 0 {
                sys::tpa_rte_pktmbuf_alloc(self.pool.as_ptr())
            } else {
                sys::tpa_pktmbuf_alloc_above(self.pool.as_ptr(), self.rx_reserve)
            }
        };
        self.take(m, false)
    }

    /// Allocates an mbuf for a frame being received: as
    /// [`alloc`](Self::alloc), but it may take the receive reserve. Failures
    /// count in both `failed_allocs` and `failed_rx_allocs`.
    #[inline]
    pub fn alloc_rx(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid; a non-NULL result is a fresh mbuf we own.
        let m = unsafe { sys::tpa_rte_pktmbuf_alloc(self.pool.as_ptr()) };
        self.take(m, true)
    }

    /// Wraps a fresh mbuf from this pool, or counts the failure.
    #[inline]
    fn take(&self, m: *mut sys::rte_mbuf, rx: bool) -> Option<Mbuf> {
        match NonNull::new(m) {
            // SAFETY: the mbuf is fresh and ours, from this pool, whose
            // private area has room for Meta.
            Some(m) => Some(unsafe { Mbuf::from_raw_reset_meta(m) }),
            None => {
                self.count_failures(1, rx);
                None
            }
        }
    }

    fn count_failures(&self, n: u64, rx: bool) {
        self.failed_allocs.fetch_add(n, Ordering::Relaxed);
        if rx {
            self.failed_rx_allocs.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Allocates `n` empty mbufs at once (one pool access) and appends them
    /// to `burst`: all of them, or none (`false`) when the pool has fewer
    /// than `n` free above the receive reserve (counted: `n` failed
    /// allocations) or `burst` has no room for `n`.
    pub fn alloc_bulk<const N: usize>(&self, burst: &mut Burst<Mbuf, N>, n: usize) -> bool {
        if n > burst.remaining() {
            return false;
        }
        let mut raw = [MaybeUninit::<*mut sys::rte_mbuf>::uninit(); N];
        // SAFETY: `raw` has room for n <= N pointers, all written on success.
        let rc = unsafe {
            sys::tpa_pktmbuf_alloc_bulk_above(
                self.pool.as_ptr(),
                raw.as_mut_ptr().cast(),
                n as u32,
                self.rx_reserve,
            )
        };
        if rc != 0 {
            self.count_failures(n as u64, false);
            return false;
        }
        for slot in &raw[..n] {
            // SAFETY: initialised by the successful bulk allocation, each a
            // fresh mbuf of this pool (which has room for Meta) that we own.
            let m =
                unsafe { Mbuf::from_raw_reset_meta(NonNull::new_unchecked(slot.assume_init())) };
            burst.push(m);
        }
        true
    }

    /// Fills `burst` with empty mbufs, as many as it has room for or the
    /// pool has above the receive reserve: in one pool access when all are
    /// there, else one by one (the shortfall counted once, as one failed
    /// allocation). Returns how many were added.
    pub fn alloc_fill<const N: usize>(&self, burst: &mut Burst<Mbuf, N>) -> usize {
        let want = burst.remaining();
        if want == 0 {
            return 0;
        }
        let mut raw = [MaybeUninit::<*mut sys::rte_mbuf>::uninit(); N];
        // SAFETY: `raw` has room for want <= N pointers, all written on
        // success.
        let rc = unsafe {
            sys::tpa_pktmbuf_alloc_bulk_above(
                self.pool.as_ptr(),
                raw.as_mut_ptr().cast(),
                want as u32,
                self.rx_reserve,
            )
        };
        if rc == 0 {
            for slot in &raw[..want] {
                // SAFETY: initialised by the successful bulk allocation,
                // each a fresh mbuf of this pool that we own.
                let m = unsafe {
                    Mbuf::from_raw_reset_meta(NonNull::new_unchecked(slot.assume_init()))
                };
                burst.push(m);
            }
            return want;
        }
        let mut added = 0;
        while !burst.is_full() {
            let Some(m) = self.alloc() else { break };
            burst.push(m);
            added += 1;
        }
        added
    }

    /// The receive reserve ([`PoolConfig::rx_reserve`]).
    pub fn rx_reserve(&self) -> u32 {
        self.rx_reserve
    }

    /// Free mbufs the calling thread can take: the pool's common store and
    /// this thread's lcore cache (an [`EalThread`](super::EalThread) has
    /// one; other threads none).
    pub fn free_here(&self) -> usize {
        // SAFETY: the pool is valid.
        unsafe { sys::tpa_mempool_free_here(self.pool.as_ptr()) as usize }
    }

    /// The pool's counters.
    pub fn stats(&self) -> MempoolStats {
        MempoolStats {
            capacity: self.capacity(),
            in_use: self.in_use(),
            available: self.available(),
            failed_allocs: self.failed_allocs.load(Ordering::Relaxed),
            failed_rx_allocs: self.failed_rx_allocs.load(Ordering::Relaxed),
            rx_reserve: self.rx_reserve,
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of an mbuf's data room (headroom included).
    pub fn data_room(&self) -> u16 {
        self.data_room
    }

    /// Number of mbufs in the pool.
    pub fn capacity(&self) -> usize {
        // SAFETY: the pool is valid.
        unsafe { sys::tpa_rte_mempool_size(self.pool.as_ptr()) as usize }
    }

    /// Mbufs available for allocation (per-lcore caches included).
    pub fn available(&self) -> usize {
        // SAFETY: the pool is valid.
        unsafe { sys::rte_mempool_avail_count(self.pool.as_ptr()) as usize }
    }

    /// Mbufs currently allocated (held by the application or a device).
    pub fn in_use(&self) -> usize {
        // SAFETY: the pool is valid.
        unsafe { sys::rte_mempool_in_use_count(self.pool.as_ptr()) as usize }
    }

    /// The raw pool.
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.pool.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        let in_use = self.in_use();
        if in_use == 0 {
            // SAFETY: no mbuf of the pool is alive, and nothing else refers to it.
            unsafe { sys::rte_mempool_free(self.pool.as_ptr()) }
        } else {
            tracing::warn!(pool = %self.name, in_use, "mempool dropped with mbufs outstanding; leaking it");
        }
    }
}

/// Mbufs in per-lcore caches count as returned; mbufs posted to a started
/// device's receive ring count as lent until the device is stopped.
impl crate::buf::BufferPool for Mempool {
    fn name(&self) -> &str {
        Mempool::name(self)
    }
    fn capacity(&self) -> usize {
        Mempool::capacity(self)
    }
    fn in_use(&self) -> usize {
        Mempool::in_use(self)
    }
}

impl crate::buf::Pooled for Mbuf {
    type Pool = Arc<Mempool>;
}

impl crate::buf::BufSource<Mbuf> for Arc<Mempool> {
    #[inline]
    fn alloc(&self) -> Option<Mbuf> {
        Mempool::alloc(self)
    }
    #[inline]
    fn alloc_bulk<const N: usize>(&self, out: &mut Burst<Mbuf, N>) -> usize {
        Mempool::alloc_fill(self, out)
    }
}
