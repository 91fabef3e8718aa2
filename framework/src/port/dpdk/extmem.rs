//! Zero-copy transmit of application memory: register it with DPDK, DMA map
//! it for a device, and attach pieces of it to mbufs as external buffers.
//! When the device is done with a piece, its owner gets it back through
//! [`ExtBufOwner::release`].

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::device::DpdkDevice;
use super::eal::{dpdk_error, errno, Eal};
use super::mbuf::{shinfo_ptr, Mbuf};
use super::pool::Mempool;
use crate::buf::PacketBuf;
use crate::port::PortError;

/// The owner of memory lent to DPDK for transmission.
pub trait ExtBufOwner: Send + Sync + 'static {
    /// The piece starting at `addr` (as passed to
    /// [`ExtMemRegion::attach`]) is no longer used by DPDK or the device.
    /// Called from whichever thread frees the mbuf, typically the worker's.
    fn release(&self, addr: NonNull<u8>);
}

/// What [`ExtMemRegion::dma_map`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaMapping {
    /// The device can now DMA from the region.
    Mapped,
    /// The device does not need (or support) explicit mapping: virtual
    /// devices copy with the CPU.
    NotNeeded,
}

/// Application memory registered with DPDK for zero-copy transmit.
///
/// Dropping the region DMA-unmaps and unregisters it once every attached
/// piece has been released; if some are still in flight it stays registered
/// (with a warning) so the device never reads unmapped memory.
pub struct ExtMemRegion<O: ExtBufOwner> {
    base: NonNull<u8>,
    len: usize,
    iova_is_va: bool,
    shared: Arc<Shared<O>>,
    mapped: Vec<(DpdkDevice, *mut sys::rte_device)>,
}

/// The owner and the count of pieces in flight, reached from the free
/// callback.
struct Shared<O> {
    owner: O,
    in_flight: AtomicUsize,
}

// SAFETY: the raw pointers name memory and devices that stay valid while the
// region exists; DPDK's registration calls are thread-safe.
unsafe impl<O: ExtBufOwner> Send for ExtMemRegion<O> {}

/// Warn once that DMA mapping was skipped.
static DMA_NOT_NEEDED_LOGGED: AtomicBool = AtomicBool::new(false);

impl<O: ExtBufOwner> ExtMemRegion<O> {
    /// Registers `len` bytes at `base` (both multiples of `page_size`) with
    /// DPDK, `owner` getting pieces back as they are released.
    ///
    /// # Safety
    /// The memory must stay valid, and not be unmapped or reused by its owner
    /// for any piece in flight, until the region is dropped and every piece
    /// was released.
    pub unsafe fn register(
        eal: &Eal,
        base: NonNull<u8>,
        len: usize,
        page_size: usize,
        owner: O,
    ) -> Result<Self, PortError> {
        if page_size == 0
            || len == 0
            || !len.is_multiple_of(page_size)
            || !(base.as_ptr() as usize).is_multiple_of(page_size)
        {
            return Err(PortError::InvalidConfig {
                name: "extmem".into(),
                what: format!("region {base:p}+{len} is not made of whole {page_size}-byte pages"),
            });
        }
        // SAFETY: the caller vouches for the memory; NULL IO addresses let
        // DPDK treat them as unknown (we supply them per device mapping).
        let rc = unsafe {
            sys::rte_extmem_register(
                base.as_ptr().cast(),
                len,
                std::ptr::null_mut(),
                0,
                page_size,
            )
        };
        if rc != 0 {
            return Err(dpdk_error("extmem", "rte_extmem_register", errno()));
        }
        Ok(ExtMemRegion {
            base,
            len,
            iova_is_va: eal.iova_is_va(),
            shared: Arc::new(Shared {
                owner,
                in_flight: AtomicUsize::new(0),
            }),
            mapped: Vec::new(),
        })
    }

    /// DMA maps the region for `device` (mlx5 needs this). A bus or device
    /// that does not support mapping, or IOVA mode PA, gets
    /// [`DmaMapping::NotNeeded`], logged once. DPDK's vdev bus accepts the
    /// mapping (a no-op for drivers without a DMA map operation of their
    /// own): vdevs get [`DmaMapping::Mapped`].
    pub fn dma_map(&mut self, device: &DpdkDevice) -> Result<DmaMapping, PortError> {
        let dev = device.inner().device;
        if !self.iova_is_va {
            log_not_needed("IOVA mode is PA; DMA mapping of external memory skipped");
            return Ok(DmaMapping::NotNeeded);
        }
        // SAFETY: the region is registered; with IOVA as VA the IO address
        // equals the virtual one.
        let rc = unsafe {
            sys::rte_dev_dma_map(
                dev,
                self.base.as_ptr().cast(),
                self.base.as_ptr() as u64,
                self.len,
            )
        };
        if rc != 0 {
            // Buses report either -1 with rte_errno or a negative errno.
            let code = if rc < -1 { -rc } else { errno() };
            if code == libc::ENOTSUP || code == libc::EOPNOTSUPP || code == libc::ENODEV {
                log_not_needed(
                    "the device does not DMA map external memory (not needed for vdevs)",
                );
                return Ok(DmaMapping::NotNeeded);
            }
            return Err(dpdk_error(device.name(), "rte_dev_dma_map", code));
        }
        self.mapped.push((device.clone(), dev));
        Ok(DmaMapping::Mapped)
    }

    /// Attaches `len` bytes at `addr` (inside the region) to an mbuf from
    /// `pool` as its data, without copying: the result's `data()` is that
    /// memory. Chain it behind a header mbuf ([`Mbuf::chain`]) and transmit;
    /// when DPDK frees it, the owner's [`release`](ExtBufOwner::release) gets
    /// `addr`. `None` when the pool is empty or the piece is not in the
    /// region.
    pub fn attach(&self, pool: &Mempool, addr: NonNull<u8>, len: u16) -> Option<Mbuf> {
        let start = addr.as_ptr() as usize;
        let base = self.base.as_ptr() as usize;
        if start < base || start + usize::from(len) > base + self.len {
            return None;
        }
        let mut m = pool.alloc()?;
        let iova = if self.iova_is_va {
            start as u64
        } else {
            // SAFETY: `addr` is valid, registered memory.
            unsafe { sys::rte_mem_virt2iova(addr.as_ptr().cast()) }
        };
        self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let opaque = Arc::into_raw(self.shared.clone())
            .cast_mut()
            .cast::<c_void>();
        let raw = m.as_non_null();
        // SAFETY: `m` is a fresh mbuf from a tpa pool, so its private area
        // holds the shared-info block; it is used by this mbuf only, and the
        // free callback runs (once) before the mbuf returns to its pool.
        unsafe {
            sys::tpa_rte_pktmbuf_attach_extbuf(
                raw.as_ptr(),
                addr.as_ptr().cast(),
                iova,
                len,
                shinfo_ptr(raw),
                Some(release_piece::<O>),
                opaque,
            );
        }
        m.append(usize::from(len)).ok()?;
        Some(m)
    }

    /// Pieces attached and not yet released.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// The owner given at registration.
    pub fn owner(&self) -> &O {
        &self.shared.owner
    }
}

/// DPDK's free callback for an attached piece.
unsafe extern "C" fn release_piece<O: ExtBufOwner>(addr: *mut c_void, opaque: *mut c_void) {
    // SAFETY: `opaque` is the Arc<Shared<O>> leaked by `attach` for this very
    // piece; DPDK calls back exactly once per attachment.
    let shared = unsafe { Arc::from_raw(opaque.cast_const().cast::<Shared<O>>()) };
    if let Some(addr) = NonNull::new(addr.cast::<u8>()) {
        shared.owner.release(addr);
    }
    shared.in_flight.fetch_sub(1, Ordering::AcqRel);
}

fn log_not_needed(why: &str) {
    if !DMA_NOT_NEEDED_LOGGED.swap(true, Ordering::Relaxed) {
        tracing::info!("{why}");
    }
}

impl<O: ExtBufOwner> Drop for ExtMemRegion<O> {
    fn drop(&mut self) {
        let in_flight = self.in_flight();
        if in_flight != 0 {
            tracing::warn!(
                in_flight,
                "external memory region dropped with pieces in flight; leaving it registered"
            );
            return;
        }
        for (device, dev) in self.mapped.drain(..) {
            // SAFETY: the mapping was made by dma_map for this device.
            let rc = unsafe {
                sys::rte_dev_dma_unmap(
                    dev,
                    self.base.as_ptr().cast(),
                    self.base.as_ptr() as u64,
                    self.len,
                )
            };
            if rc != 0 {
                tracing::warn!(device = device.name(), error = %dpdk_error(device.name(), "rte_dev_dma_unmap", errno()), "unmap failed");
            }
        }
        // SAFETY: registered by `register`, no piece in flight.
        let rc = unsafe { sys::rte_extmem_unregister(self.base.as_ptr().cast(), self.len) };
        if rc != 0 {
            tracing::warn!(error = %dpdk_error("extmem", "rte_extmem_unregister", errno()), "unregister failed");
        }
    }
}

impl<O: ExtBufOwner> core::fmt::Debug for ExtMemRegion<O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ExtMemRegion")
            .field("base", &self.base)
            .field("len", &self.len)
            .field("in_flight", &self.in_flight())
            .field("dma_mapped", &self.mapped.len())
            .finish()
    }
}
