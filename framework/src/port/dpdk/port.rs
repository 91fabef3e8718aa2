//! [`DpdkPort`]: one queue pair of a [`DpdkDevice`](super::DpdkDevice) as a
//! [`Port`], and transmit offload requests.

use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys as sys;

use super::device::{release_queue, DeviceInner};
use super::mbuf::{Mbuf, TxLens};
use super::pool::Mempool;
use crate::buf::{LayerOffsets, PacketBuf};
use crate::port::{Burst, Port, PortCaps};

/// One RX/TX queue pair of a DPDK device, owned by one worker. Receives into
/// and transmits [`Mbuf`]s without copying.
#[derive(Debug)]
pub struct DpdkPort {
    device: Arc<DeviceInner>,
    port_id: u16,
    queue: u16,
    pool: Arc<Mempool>,
    caps: PortCaps,
}

/// The transport protocol whose checksum a transmit request covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Checksum {
    /// TCP (checksum at offset 16 of the header).
    Tcp,
    /// UDP (checksum at offset 6 of the header).
    Udp,
}

/// What to compute for an outgoing IPv4 packet: by the device when the port
/// enabled the offload, in software otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOffload {
    /// Fill the IPv4 header checksum.
    pub ipv4_checksum: bool,
    /// Fill the TCP or UDP checksum.
    pub l4_checksum: Option<L4Checksum>,
    /// Segment the TCP payload into segments of this many bytes (device only).
    pub tso_mss: Option<u16>,
}

/// Why a transmit offload request cannot be carried out. The packet is
/// unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxOffloadError {
    /// The packet's Meta lacks the layer offsets the request needs.
    LayersUnset,
    /// The layer at the L3 offset is not IPv4, or headers run past the first
    /// segment.
    Malformed,
    /// TSO was asked of a port without it (there is no software fallback).
    TsoUnavailable,
}

impl core::fmt::Display for TxOffloadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TxOffloadError::LayersUnset => "layer offsets not set in the packet's Meta",
            TxOffloadError::Malformed => "not an IPv4 packet with its headers in the first segment",
            TxOffloadError::TsoUnavailable => "the port has no TSO",
        })
    }
}

impl std::error::Error for TxOffloadError {}

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

    /// Prepares `m` so its IPv4/TCP/UDP checksums (and TSO) get done: marks
    /// it for the device where the port enabled the offload (zeroing the IPv4
    /// checksum and seeding the L4 checksum with the pseudo-header sum, as
    /// DPDK expects), computes the rest in software now. Needs the packet's
    /// final headers and `meta().layers` l3 and l4 (and payload for TSO);
    /// for a software L4 checksum the payload must be final too.
    pub fn offload_tx(&self, m: &mut Mbuf, req: TxOffload) -> Result<(), TxOffloadError> {
        if req == TxOffload::default() {
            return Ok(());
        }
        let LayerOffsets {
            l3, l4, payload, ..
        } = m.meta().layers;
        if l3 == LayerOffsets::UNSET || l4 == LayerOffsets::UNSET || l4 <= l3 {
            return Err(TxOffloadError::LayersUnset);
        }
        let tso = match req.tso_mss {
            Some(_) if !self.caps.tx_offloads.tso => return Err(TxOffloadError::TsoUnavailable),
            Some(_) if payload == LayerOffsets::UNSET || payload <= l4 => {
                return Err(TxOffloadError::LayersUnset)
            }
            Some(mss) => Some(mss),
            None => None,
        };
        let (l3o, l4o) = (usize::from(l3), usize::from(l4));
        // TSO implies the TCP checksum; the field's offset in the packet.
        let l4_proto = if tso.is_some() {
            Some(L4Checksum::Tcp)
        } else {
            req.l4_checksum
        };
        let l4_field = l4_proto.map(|proto| match proto {
            L4Checksum::Tcp => (proto, l4o + 16),
            L4Checksum::Udp => (proto, l4o + 6),
        });
        let headers_end = l4_field.map_or(l3o + 20, |(_, at)| at + 2);
        let data = m.data();
        if data.len() < headers_end || l3o + 20 > l4o || data[l3o] >> 4 != 4 {
            return Err(TxOffloadError::Malformed);
        }
        // The IPv4 header, options included, must end where L4 starts.
        let ihl = usize::from(data[l3o] & 0x0f) * 4;
        if ihl < 20 || l3o + ihl != l4o {
            return Err(TxOffloadError::Malformed);
        }

        let txo = self.caps.tx_offloads;
        let hw_ip = req.ipv4_checksum && txo.ipv4_checksum;
        let hw_l4 = tso.is_some()
            || match l4_field {
                Some((L4Checksum::Tcp, _)) => txo.tcp_checksum,
                Some((L4Checksum::Udp, _)) => txo.udp_checksum,
                None => false,
            };
        let mut flags = 0u64;
        if hw_ip || hw_l4 {
            flags |= sys::RTE_MBUF_F_TX_IPV4;
        }
        if hw_ip {
            flags |= sys::RTE_MBUF_F_TX_IP_CKSUM;
        }
        if let (true, Some((proto, _))) = (hw_l4, l4_field) {
            flags |= match proto {
                L4Checksum::Tcp => sys::RTE_MBUF_F_TX_TCP_CKSUM,
                L4Checksum::Udp => sys::RTE_MBUF_F_TX_UDP_CKSUM,
            };
        }
        if tso.is_some() {
            flags |= sys::RTE_MBUF_F_TX_TCP_SEG;
        }

        // IPv4 header checksum: zero for the device, or computed here.
        if req.ipv4_checksum {
            let data = m.data_mut();
            data[l3o + 10..l3o + 12].fill(0);
            if !hw_ip {
                // SAFETY: a full IPv4 header lies at l3 (checked above); the
                // C struct is packed, so any address is aligned.
                let sum = unsafe { sys::tpa_rte_ipv4_cksum(data[l3o..].as_ptr().cast()) };
                data[l3o + 10..l3o + 12].copy_from_slice(&sum.to_ne_bytes());
            }
        }
        // L4 checksum: pseudo-header sum for the device, or the full sum.
        if let Some((_, at)) = l4_field {
            let raw = m.as_ptr();
            let data = m.data_mut();
            data[at..at + 2].fill(0);
            let ip = data[l3o..].as_ptr().cast::<sys::rte_ipv4_hdr>();
            // SAFETY: `ip` points at a full IPv4 header in the first segment
            // and `raw` is the mbuf holding it; both calls only read.
            let sum = unsafe {
                if hw_l4 {
                    sys::tpa_rte_ipv4_phdr_cksum(ip, flags)
                } else {
                    sys::tpa_rte_ipv4_udptcp_cksum_mbuf(raw, ip, l4)
                }
            };
            m.data_mut()[at..at + 2].copy_from_slice(&sum.to_ne_bytes());
        }
        let lens = TxLens {
            l2: l3,
            l3: l4 - l3,
            l4: if payload != LayerOffsets::UNSET && payload > l4 {
                payload - l4
            } else {
                0
            },
            tso_segsz: tso.unwrap_or(0),
        };
        m.set_tx_offload(flags, lens);
        Ok(())
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

    #[inline]
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<Mbuf, N>) -> usize {
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
    fn alloc(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }

    fn caps(&self) -> &PortCaps {
        &self.caps
    }
}

impl Drop for DpdkPort {
    fn drop(&mut self) {
        release_queue(&self.device, self.queue);
    }
}
