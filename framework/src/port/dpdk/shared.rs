//! What a [`DpdkDevice`](super::DpdkDevice) and its [`DpdkPort`](super::DpdkPort)s
//! share: the device's state, kept alive by every port (an `Arc`), and
//! closed when the last of them is dropped.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::pool::Mempool;
use super::steer::RssLimits;
use crate::port::steer::Steering;
use crate::port::PortCaps;

/// What the device and its ports share.
#[derive(Debug)]
pub(crate) struct DeviceInner {
    pub(crate) port_id: u16,
    pub(crate) name: String,
    /// The vdev this device was created from, removed on drop.
    pub(super) vdev: Option<CString>,
    /// `rte_device` behind the ethdev (for DMA mapping).
    pub(crate) device: *mut sys::rte_device,
    /// One pool per queue; dropped after the device is closed.
    pub(crate) pools: Vec<Arc<Mempool>>,
    /// Which queues have a live [`DpdkPort`].
    pub(super) taken: Vec<AtomicBool>,
    /// Capabilities as enabled (the `queue` field is set per port).
    pub(crate) caps: PortCaps,
    /// Whether `rte_eth_dev_start` succeeded (so drop must stop it).
    pub(super) started: bool,
    /// Whether flow isolation mode is on.
    pub(super) isolated: bool,
    /// The rings of a [`DpdkDevice::ring_pair`], shared by both devices
    /// and freed after the last is closed.
    pub(super) _rings: Option<Arc<PairRings>>,
    /// Which queue each flow lands on, as the driver reports it.
    pub(crate) steering: Steering,
    /// Whether the device transmits chained mbufs (`MULTI_SEGS` enabled).
    pub(crate) tx_multi_seg: bool,
    /// The longest frame (Ethernet header to the end of the payload) of a
    /// TSO segment the driver cuts, where it is shorter than an MTU-sized
    /// frame: net_tap's librte_gso takes the MTU for it.
    pub(crate) tso_frame_limit: Option<u16>,
    /// Whether the driver's TSO cuts TCP/IPv6 too (net_tap's librte_gso
    /// does only IPv4: it writes IPv6 super-segments out whole).
    pub(crate) tso_ipv6: bool,
    /// What the driver reports of its RSS.
    pub(super) rss_limits: RssLimits,
}

/// The rings wiring the two devices of a [`DpdkDevice::ring_pair`].
#[derive(Debug)]
pub(super) struct PairRings(pub(super) Vec<NonNull<sys::rte_ring>>);

// SAFETY: the rings are only freed, once, by whichever thread drops the
// last device; DPDK's ring calls are thread-safe for that.
unsafe impl Send for PairRings {}
// SAFETY: as above; the pointers are never read through `&PairRings`.
unsafe impl Sync for PairRings {}

impl Drop for PairRings {
    fn drop(&mut self) {
        for ring in &self.0 {
            // SAFETY: created by ring_pair, no device uses it any more
            // (both hold this Arc and are closed), freed once.
            unsafe { sys::rte_ring_free(ring.as_ptr()) };
        }
    }
}

// SAFETY: `device` is only passed to thread-safe DPDK control calls; all
// other fields are Send + Sync.
unsafe impl Send for DeviceInner {}
// SAFETY: as above.
unsafe impl Sync for DeviceInner {}

/// Most packets taken off one receive queue when the device closes: enough
/// for any ring, and a bound on a NIC that keeps receiving meanwhile.
const DRAIN_LIMIT: usize = 1 << 16;

impl DeviceInner {
    /// Frees what waits in the receive queues. A PMD releases the mbufs it
    /// posted to its descriptors when the queue is released, but packets
    /// queued in software are its to keep: `net_ring` leaks what was sent
    /// and never received when it is closed.
    fn drain_receive_queues(&self) {
        const BURST: u16 = 32;
        let mut raw = [std::ptr::null_mut::<sys::rte_mbuf>(); BURST as usize];
        for queue in 0..self.pools.len() as u16 {
            let mut drained = 0;
            while drained < DRAIN_LIMIT {
                // SAFETY: the device is started and no port polls it (each
                // holds an Arc to us); `raw` has room for BURST pointers.
                let n = unsafe {
                    sys::tpa_rte_eth_rx_burst(self.port_id, queue, raw.as_mut_ptr(), BURST)
                };
                if n == 0 {
                    break;
                }
                // SAFETY: the device handed us these n mbufs; freed once.
                unsafe { sys::rte_pktmbuf_free_bulk(raw.as_mut_ptr(), u32::from(n)) };
                drained += usize::from(n);
            }
            if drained > 0 {
                tracing::debug!(device = %self.name, queue, drained, "freed packets left in a receive queue");
            }
        }
    }
}

impl Drop for DeviceInner {
    fn drop(&mut self) {
        if self.started {
            self.drain_receive_queues();
        }
        // SAFETY: no port of this device is alive (each holds an Arc to us),
        // so no queue is in use; stopping and closing release the mbufs
        // posted to the queues' descriptors.
        unsafe {
            if self.started {
                sys::rte_eth_dev_stop(self.port_id);
            }
            sys::rte_eth_dev_close(self.port_id);
            if let Some(vdev) = &self.vdev {
                sys::rte_vdev_uninit(vdev.as_ptr());
            }
        }
        // `pools` drop after this: every mbuf the device held is back.
    }
}

/// Releases the queue claimed by a port.
pub(crate) fn release_queue(inner: &DeviceInner, queue: u16) {
    if let Some(t) = inner.taken.get(usize::from(queue)) {
        t.store(false, Ordering::Release);
    }
}
