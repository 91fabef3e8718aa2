//! [`Mempool`]: a DPDK pool of packet mbufs with room for tpa's [`Meta`].
//!
//! [`Meta`]: crate::buf::Meta

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

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
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            mbufs: 4095,
            cache: 256,
            data_room: sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
        }
    }
}

/// A DPDK mempool of packet mbufs whose private area holds a [`Meta`]
/// (`priv_size` = [`MBUF_PRIV_SIZE`]).
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
            Some(pool) => Ok(Mempool { pool, name }),
            None => Err(dpdk_error(&name, "rte_pktmbuf_pool_create", errno())),
        }
    }

    /// Allocates an empty mbuf with the default headroom and a default Meta.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid; a non-NULL result is a fresh mbuf we own.
        let m = NonNull::new(unsafe { sys::tpa_rte_pktmbuf_alloc(self.pool.as_ptr()) })?;
        // SAFETY: the mbuf is ours, from a pool with a Meta-sized private area.
        Some(unsafe { Mbuf::from_raw_reset_meta(m) })
    }

    /// Allocates `n` empty mbufs at once (one pool access) and appends them
    /// to `burst`: all of them, or none (`false`) when the pool has fewer
    /// than `n` free or `burst` has no room for `n`.
    pub fn alloc_bulk<const N: usize>(&self, burst: &mut Burst<Mbuf, N>, n: usize) -> bool {
        if n > burst.remaining() {
            return false;
        }
        let mut raw = [MaybeUninit::<*mut sys::rte_mbuf>::uninit(); N];
        // SAFETY: `raw` has room for n <= N pointers, all written on success.
        let rc = unsafe {
            sys::tpa_rte_pktmbuf_alloc_bulk(self.pool.as_ptr(), raw.as_mut_ptr().cast(), n as u32)
        };
        if rc != 0 {
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

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
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
