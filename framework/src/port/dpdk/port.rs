//! [`DpdkPort`]: one queue pair of a [`DpdkDevice`](super::DpdkDevice) as a
//! [`Port`], mapping transmit offload requests onto the device.

use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys as sys;

use super::mbuf::{Mbuf, TxLens};
use super::pool::Mempool;
use super::shared::{release_queue, DeviceInner};
use crate::buf::L4Protocol;
use crate::port::offload::{self, HwOffload, IpVersion, OffloadStats, TxDevice};
use crate::port::steer::Steering;
use crate::port::{Burst, Offloads, Port, PortCaps};

/// One RX/TX queue pair of a DPDK device, owned by one worker. Receives into
/// and transmits [`Mbuf`]s without copying.
#[derive(Debug)]
pub struct DpdkPort {
    device: Arc<DeviceInner>,
    port_id: u16,
    queue: u16,
    pool: Arc<Mempool>,
    caps: PortCaps,
    offload: OffloadStats,
}

impl DpdkPort {
    pub(crate) fn new(device: Arc<DeviceInner>, queue: u16) -> DpdkPort {
        let mut caps = device.caps.clone();
        caps.queue = queue;
        let pool = device.pools[usize::from(queue)].clone();
        DpdkPort {
            port_id: device.port_id,
            device,
            queue,
            pool,
            caps,
            offload: OffloadStats::default(),
        }
    }

    /// The mempool this queue receives into and [`alloc`](Port::alloc)
    /// takes from.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// The ethdev port id.
    pub fn port_id(&self) -> u16 {
        self.port_id
    }

    /// Counters of the transmit offload requests this port carried out in
    /// software, and of the packets it dropped for malformed requests.
    pub fn offload_stats(&self) -> OffloadStats {
        self.offload
    }
}

impl Port for DpdkPort {
    type Buf = Mbuf;

    #[inline]
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<Mbuf, N>) -> usize {
        let room = rx.remaining().min(usize::from(u16::MAX));
        if room == 0 {
            return 0;
        }
        let mut raw = [MaybeUninit::<*mut sys::rte_mbuf>::uninit(); N];
        // SAFETY: `raw` has room for `room` <= N pointers; the device writes
        // the first n of them.
        let n = unsafe {
            sys::tpa_rte_eth_rx_burst(
                self.port_id,
                self.queue,
                raw.as_mut_ptr().cast(),
                room as u16,
            )
        };
        for slot in &raw[..usize::from(n)] {
            // SAFETY: the device initialised the first n slots with mbufs it
            // hands over to us, from this queue's pool (Meta-sized private area).
            let m = unsafe { NonNull::new_unchecked(slot.assume_init()) };
            // SAFETY: as above; fill_rx_meta initialises the Meta right away.
            let mut m = unsafe { Mbuf::from_raw(m) };
            m.fill_rx_meta(self.queue);
            rx.push(m);
        }
        usize::from(n)
    }

    /// Sends `tx`, carrying out the packets' [`Meta::tx`](crate::buf::Meta::tx)
    /// requests: the device does what it enabled (`caps().tx_offloads`),
    /// tpa the rest in software (see [`offload`]).
    #[inline]
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<Mbuf, N>) -> usize {
        let mut dev = DeviceTx {
            port_id: self.port_id,
            queue: self.queue,
            offloads: self.caps.tx_offloads,
            multi_seg: self.device.tx_multi_seg,
            pool: &self.pool,
        };
        offload::transmit(&mut dev, tx, &mut self.offload)
    }

    fn pool(&self) -> &Arc<Mempool> {
        &self.pool
    }

    /// One mempool access for the whole burst when the pool has it
    /// ([`Mempool::alloc_fill`]); the receive reserve stays untouched.
    #[inline]
    fn alloc_bulk<const N: usize>(&mut self, out: &mut Burst<Mbuf, N>) -> usize {
        self.pool.alloc_fill(out)
    }

    fn caps(&self) -> &PortCaps {
        &self.caps
    }

    /// The device's RSS ([`Steering::Rss`]) where the driver reports its
    /// key and table; [`Steering::Unknown`] where it does not.
    fn steering(&self) -> Steering {
        self.device.steering.clone()
    }
}

impl Drop for DpdkPort {
    fn drop(&mut self) {
        release_queue(&self.device, self.queue);
    }
}

/// The raw transmit side of one queue: `rte_eth_tx_burst`, and the mapping
/// of offload plans onto mbuf fields.
struct DeviceTx<'a> {
    port_id: u16,
    queue: u16,
    offloads: Offloads,
    multi_seg: bool,
    pool: &'a Mempool,
}

impl TxDevice<Mbuf> for DeviceTx<'_> {
    #[inline]
    fn tx_offloads(&self) -> Offloads {
        self.offloads
    }

    #[inline]
    fn send<const N: usize>(&mut self, tx: &mut Burst<Mbuf, N>) -> usize {
        let count = tx.len().min(usize::from(u16::MAX));
        if count == 0 {
            return 0;
        }
        // Mbuf is a transparent NonNull<rte_mbuf>, so the burst is an array of
        // mbuf pointers as rte_eth_tx_burst takes them.
        let pkts = tx.as_mut_slice().as_mut_ptr().cast::<*mut sys::rte_mbuf>();
        // SAFETY: `pkts` points at `count` valid mbufs we own; the device
        // takes ownership of the first n it returns.
        let n = unsafe { sys::tpa_rte_eth_tx_burst(self.port_id, self.queue, pkts, count as u16) };
        for sent in tx.drain_front(usize::from(n)) {
            // The device owns these now.
            let _ = sent.into_raw();
        }
        usize::from(n)
    }

    #[inline]
    fn alloc_segment(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }

    /// Chains go to the device as they are when it transmits multi-segment
    /// mbufs (`RTE_ETH_TX_OFFLOAD_MULTI_SEGS`), else are copied into one.
    #[inline]
    fn max_segments(&self) -> usize {
        if self.multi_seg {
            usize::from(u16::MAX)
        } else {
            1
        }
    }

    /// Sets `ol_flags`, `l2_len`, `l3_len`, `l4_len` and `tso_segsz` as the
    /// plan says; the header fields were already prepared as DPDK expects.
    #[inline]
    fn mark_for_device(&mut self, m: &mut Mbuf, plan: &HwOffload) {
        let mut flags = match plan.ip {
            IpVersion::V4 => sys::RTE_MBUF_F_TX_IPV4,
            IpVersion::V6 => sys::RTE_MBUF_F_TX_IPV6,
        };
        if plan.ipv4_checksum {
            flags |= sys::RTE_MBUF_F_TX_IP_CKSUM;
        }
        flags |= match plan.l4_checksum {
            Some(L4Protocol::Tcp) => sys::RTE_MBUF_F_TX_TCP_CKSUM,
            Some(L4Protocol::Udp) => sys::RTE_MBUF_F_TX_UDP_CKSUM,
            None => 0,
        };
        if plan.tso_mss.is_some() {
            flags |= sys::RTE_MBUF_F_TX_TCP_SEG;
        }
        let lens = TxLens {
            l2: plan.l2_len,
            l3: plan.l3_len,
            l4: plan.l4_len,
            tso_segsz: plan.tso_mss.unwrap_or(0),
        };
        m.set_tx_offload(flags, lens);
    }
}
