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
    refused: TxRefusals,
}

/// Packets the device refused in `rte_eth_tx_prepare` (its check of their
/// offload fields), each dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxRefusals {
    /// Packets refused, all kinds.
    pub packets: u64,
    /// Of those, TSO packets: the first turns the port's TSO off (segmented
    /// in software from then on).
    pub tso: u64,
    /// `rte_errno` of the last refusal.
    pub last_error: i32,
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
            refused: TxRefusals::default(),
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

    /// The packets the device refused to transmit as marked
    /// (`rte_eth_tx_prepare`), dropped.
    pub fn tx_refusals(&self) -> TxRefusals {
        self.refused
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
        let tso = self.caps.tx_offloads.tso;
        let mut dev = DeviceTx {
            port_id: self.port_id,
            queue: self.queue,
            offloads: self.caps.tx_offloads,
            multi_seg: self.device.tx_multi_seg,
            tso_frame_limit: self.device.tso_frame_limit,
            tso_ipv6: self.device.tso_ipv6,
            pool: &self.pool,
            refused: &mut self.refused,
        };
        let taken = offload::transmit(&mut dev, tx, &mut self.offload);
        if tso && self.refused.tso > 0 {
            self.caps.tx_offloads.tso = false;
            tracing::warn!(
                device = %self.device.name,
                queue = self.queue,
                errno = self.refused.last_error,
                "the device refused a TSO packet: TCP segmentation in software from now on"
            );
        }
        taken
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

    /// The device's counters (`rte_eth_stats`, every queue's: `device_*`)
    /// and this queue's where the driver keeps them per queue, then the
    /// packets refused in `rte_eth_tx_prepare`. One call into the driver.
    fn visit_counters(&mut self, visit: &mut dyn FnMut(&'static str, u64)) {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: the port is started (this queue lives); `s` is a valid
        // out-parameter the call fills.
        let rc = unsafe { sys::rte_eth_stats_get(self.port_id, &mut s) };
        if rc == 0 {
            visit("device_rx_packets", s.ipackets);
            visit("device_rx_bytes", s.ibytes);
            visit("device_rx_missed", s.imissed);
            visit("device_rx_errors", s.ierrors);
            visit("device_rx_nombuf", s.rx_nombuf);
            visit("device_tx_packets", s.opackets);
            visit("device_tx_bytes", s.obytes);
            visit("device_tx_errors", s.oerrors);
            let q = usize::from(self.queue);
            if q < s.q_ipackets.len() {
                visit("rx_packets", s.q_ipackets[q]);
                visit("rx_bytes", s.q_ibytes[q]);
                visit("tx_packets", s.q_opackets[q]);
                visit("tx_bytes", s.q_obytes[q]);
            }
        }
        visit("tx_prepare_refused", self.refused.packets);
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
    tso_frame_limit: Option<u16>,
    tso_ipv6: bool,
    pool: &'a Mempool,
    refused: &'a mut TxRefusals,
}

impl DeviceTx<'_> {
    /// `rte_eth_tx_burst` of the first `count` packets of `tx`; those
    /// taken leave `tx`.
    #[inline]
    fn burst<const N: usize>(&mut self, tx: &mut Burst<Mbuf, N>, count: usize) -> usize {
        if count == 0 {
            return 0;
        }
        // Mbuf is a transparent NonNull<rte_mbuf>, so the burst is an array of
        // mbuf pointers as rte_eth_tx_burst takes them.
        let pkts = tx.as_mut_slice().as_mut_ptr().cast::<*mut sys::rte_mbuf>();
        // SAFETY: `pkts` points at `count` <= tx.len() valid mbufs we own;
        // the device takes ownership of the first n it returns.
        let n = unsafe { sys::tpa_rte_eth_tx_burst(self.port_id, self.queue, pkts, count as u16) };
        for sent in tx.drain_front(usize::from(n)) {
            // The device owns these now.
            let _ = sent.into_raw();
        }
        usize::from(n)
    }
}

/// The TSO segment payload for `mss` behind `headers` bytes of headers:
/// lowered where the driver's frame limit is below an MTU-sized frame (at
/// least one byte: the driver refuses what still does not fit).
#[inline]
fn fit_segment_size(mss: u16, headers: u16, frame_limit: Option<u16>) -> u16 {
    match frame_limit {
        Some(limit) => mss.min(limit.saturating_sub(headers).max(1)),
        None => mss,
    }
}

impl TxDevice<Mbuf> for DeviceTx<'_> {
    #[inline]
    fn tx_offloads(&self) -> Offloads {
        self.offloads
    }

    /// Lets the driver check and fix up the marked packets first
    /// (`rte_eth_tx_prepare`, a no-op where the PMD has no such step): a
    /// packet it refuses is dropped and counted in [`TxRefusals`] (taken,
    /// as a malformed request is), after the ones in front of it are sent.
    #[inline]
    fn send<const N: usize>(&mut self, tx: &mut Burst<Mbuf, N>) -> usize {
        let count = tx.len().min(usize::from(u16::MAX));
        if count == 0 {
            return 0;
        }
        let pkts = tx.as_mut_slice().as_mut_ptr().cast::<*mut sys::rte_mbuf>();
        let mut error = 0;
        // SAFETY: `pkts` points at `count` valid mbufs we own; the driver
        // only reads and fixes up their headers and offload fields.
        let ok = unsafe {
            sys::tpa_rte_eth_tx_prepare(self.port_id, self.queue, pkts, count as u16, &mut error)
        };
        let ok = usize::from(ok);
        let sent = self.burst(tx, ok);
        if ok == count || sent < ok {
            return sent;
        }
        // The refused packet is at the front now.
        if let Some(bad) = tx.drain_front(1).next() {
            self.refused.packets += 1;
            self.refused.last_error = error;
            if bad.ol_flags() & sys::RTE_MBUF_F_TX_TCP_SEG != 0 {
                self.refused.tso += 1;
            }
        }
        sent + 1
    }

    /// No packet carries an offload mark: nothing for the driver to check.
    #[inline]
    fn send_checked<const N: usize>(&mut self, tx: &mut Burst<Mbuf, N>) -> usize {
        let count = tx.len().min(usize::from(u16::MAX));
        self.burst(tx, count)
    }

    #[inline]
    fn tso_ipv6(&self) -> bool {
        self.tso_ipv6
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
            tso_segsz: plan.tso_mss.map_or(0, |mss| {
                let headers = plan.l2_len + plan.l3_len + plan.l4_len;
                fit_segment_size(mss, headers, self.tso_frame_limit)
            }),
        };
        m.set_tx_offload(flags, lens);
    }
}

#[cfg(test)]
mod tests {
    use super::fit_segment_size;

    #[test]
    fn segments_fit_net_taps_frame_limit() {
        // Ethernet + IPv4 + TCP with timestamps: 66 bytes of headers.
        assert_eq!(fit_segment_size(1448, 66, None), 1448);
        assert_eq!(fit_segment_size(1448, 66, Some(1500)), 1434);
        assert_eq!(fit_segment_size(1000, 66, Some(1500)), 1000);
        assert_eq!(fit_segment_size(1448, 66, Some(9000)), 1448);
        assert_eq!(fit_segment_size(1448, 66, Some(40)), 1);
    }
}
