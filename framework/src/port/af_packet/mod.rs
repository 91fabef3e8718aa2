//! AF_PACKET mmap rings on any Linux interface as a [`Port`].
//!
//! Each [`AfPacket`] queue owns two packet sockets bound to the interface:
//!
//! - a receive socket with a **TPACKET_V3** ring: the kernel fills blocks of
//!   frames and hands a block over when it is full or after
//!   [`RxRingSize::retire_timeout_ms`]; [`AfPacket::rx_burst`] walks the
//!   frames and gives each block back as soon as it is read. No system call
//!   per packet, none per burst.
//! - a transmit socket with a **TPACKET_V2** ring (V3's transmit side has
//!   fixed-size frames and no advantage): [`AfPacket::tx_burst`] fills frame
//!   slots and makes at most one `sendto(NULL, 0, MSG_DONTWAIT)` per burst.
//!   [`TxPath::Sendmmsg`] replaces the ring by one `sendmmsg(2)` per burst,
//!   which can be faster on virtual devices such as veth.
//!
//! # One copy
//!
//! Ring memory belongs to the kernel, which reuses a block as soon as it is
//! handed back, and packets must outlive that (they are [`PoolBuf`]s that
//! stages keep, modify and transmit). So each received frame is copied once
//! from the ring into a pool buffer, and each transmitted one from its buffer
//! into a ring slot. A VLAN tag the device stripped is put back in the copy,
//! so the pipeline sees the frame as it was on the wire.
//!
//! # Several workers on one interface
//!
//! With [`AfPacketConfig::queues`] > 1, [`AfPacket::open_queues`] opens one
//! queue per worker, all joined to one `PACKET_FANOUT_HASH` group: the kernel
//! sends all packets of a flow to the same queue.
//!
//! # Sharing the interface with the kernel
//!
//! The kernel's own stack still sees every frame of the interface. Give the
//! interface no IP address in the kernel (or use a MAC of tpa's own with
//! [`AfPacketConfig::promiscuous`]) so that the kernel does not answer the
//! traffic meant for tpa. The receive socket ignores outgoing frames
//! (`PACKET_IGNORE_OUTGOING`), so what tpa (or the kernel) sends on the
//! interface does not come back to tpa.
//!
//! ```no_run
//! use tpa::buf::{Pool, PoolConfig};
//! use tpa::port::af_packet::{AfPacket, AfPacketConfig};
//! use tpa::port::{Burst, Port};
//!
//! let pool = Pool::new(PoolConfig::default())?;
//! let mut port = AfPacket::open(&AfPacketConfig::new("veth0"), pool)?;
//! let mut rx: Burst<_> = Burst::new();
//! port.rx_burst(&mut rx);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ring;
mod socket;

pub use ring::{RxRingSize, TxRingSize};

use arrayvec::ArrayVec;

use ring::{RxRing, TxRefused, TxRing};
use socket::PacketSocket;

use super::netdev::NetDev;
use super::{Burst, Offloads, Port, PortCaps, PortError};
use crate::buf::{ChecksumStatus, PacketBuf, Pool, PoolBuf};

/// Ethernet header plus one VLAN tag: what a frame adds to the MTU.
const MAX_L2_OVERHEAD: usize = 14 + 4;

/// How [`AfPacket::tx_burst`] hands frames to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxPath {
    /// Copy frames into a TPACKET_V2 ring shared with the kernel and flush
    /// with one `sendto` per burst. The kernel builds packets around the ring
    /// memory, which a NIC then sends from directly.
    #[default]
    Ring,
    /// One `sendmmsg(2)` per burst, the kernel copying each frame into a
    /// packet of its own. Can be faster on virtual devices (veth), which
    /// must copy ring-backed packets into fresh pages before passing them on.
    Sendmmsg,
}

/// How to open an AF_PACKET port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// The interface to bind to (it must exist).
    pub interface: String,
    /// Queues sharing the interface through a hash fanout group.
    pub queues: u16,
    /// The fanout group to join. `None`: with several queues, a new group
    /// with a kernel-chosen unique id; with one, no fanout.
    pub fanout_group: Option<u16>,
    /// Receive ring sizes.
    pub rx_ring: RxRingSize,
    /// How frames are handed to the kernel.
    pub tx_path: TxPath,
    /// Transmit ring sizes (with [`TxPath::Ring`]).
    pub tx_ring: TxRingSize,
    /// Send straight to the driver, skipping the interface's qdisc
    /// (`PACKET_QDISC_BYPASS`): faster, but no traffic shaping and no
    /// `tcpdump` view of tpa's transmitted frames.
    pub qdisc_bypass: bool,
    /// Put the interface in promiscuous mode while the port is open, to
    /// receive frames addressed to MACs other than the interface's.
    pub promiscuous: bool,
}

impl AfPacketConfig {
    /// One queue on `interface` with default ring sizes.
    pub fn new(interface: impl Into<String>) -> Self {
        AfPacketConfig {
            interface: interface.into(),
            queues: 1,
            fanout_group: None,
            rx_ring: RxRingSize::default(),
            tx_path: TxPath::default(),
            tx_ring: TxRingSize::default(),
            qdisc_bypass: false,
            promiscuous: false,
        }
    }
}

/// Counters of one AF_PACKET queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AfPacketStats {
    /// Frames received and handed on.
    pub rx_packets: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames left in the ring because the pool had no buffer (they are
    /// delivered later, or lost if the ring overflows meanwhile).
    pub rx_no_buffer: u64,
    /// Frames dropped because they were cut short by the ring or did not
    /// fit a buffer.
    pub rx_truncated: u64,
    /// Frames the kernel dropped because the ring was full (from
    /// `PACKET_STATISTICS`, updated by [`AfPacket::stats`]).
    pub rx_kernel_drops: u64,
    /// Ring blocks with an inconsistent descriptor (skipped).
    pub rx_bad_blocks: u64,
    /// Frames queued for transmission.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames dropped because they exceed the interface MTU.
    pub tx_oversize: u64,
    /// Failed `sendto` flushes (other than "try again").
    pub tx_errors: u64,
}

/// One queue of an AF_PACKET port: a [`Port`] over mmap rings.
#[derive(Debug)]
pub struct AfPacket {
    rx_sock: PacketSocket,
    rx_ring: RxRing,
    tx_sock: PacketSocket,
    /// The transmit ring, with [`TxPath::Ring`].
    tx_ring: Option<TxRing>,
    /// Frames are marked in the TX ring that the kernel has not yet been
    /// asked to send (the last flush was pushed back).
    tx_pending: bool,
    max_tx_frame: usize,
    pool: Pool,
    caps: PortCaps,
    stats: AfPacketStats,
}

impl AfPacket {
    /// Opens one queue on `config.interface` (`config.queues` must be 1; see
    /// [`open_queues`](Self::open_queues)). With `config.fanout_group` the
    /// queue joins that fanout group, e.g. one shared with other processes.
    /// Received frames go into buffers from `pool`, which must hold a full
    /// frame (MTU + 18 bytes) after its headroom.
    pub fn open(config: &AfPacketConfig, pool: Pool) -> Result<AfPacket, PortError> {
        if config.queues != 1 {
            return Err(PortError::InvalidConfig {
                name: config.interface.clone(),
                what: format!(
                    "AfPacket::open drives one queue but {} were asked; use AfPacket::open_queues",
                    config.queues
                ),
            });
        }
        Self::open_queue(config, 0, config.fanout_group, pool).map(|(port, _)| port)
    }

    /// Opens `config.queues` queues on `config.interface`, sharing the
    /// traffic through one hash fanout group; buffers come from `pool`.
    pub fn open_queues(config: &AfPacketConfig, pool: Pool) -> Result<Vec<AfPacket>, PortError> {
        if config.queues == 0 {
            return Err(PortError::InvalidConfig {
                name: config.interface.clone(),
                what: "an AF_PACKET port needs at least one queue".into(),
            });
        }
        let mut group = config.fanout_group;
        let mut ports = Vec::with_capacity(config.queues as usize);
        for queue in 0..config.queues {
            let (port, joined) = Self::open_queue(config, queue, group, pool.clone())?;
            group = joined;
            ports.push(port);
        }
        Ok(ports)
    }

    fn open_queue(
        config: &AfPacketConfig,
        queue: u16,
        group: Option<u16>,
        pool: Pool,
    ) -> Result<(AfPacket, Option<u16>), PortError> {
        let name = config.interface.as_str();
        let dev = NetDev::new(name)?;
        let ifindex = dev.index()?;
        let mtu = dev.mtu()?;
        let mac = dev.mac()?;
        let max_frame = mtu as usize + MAX_L2_OVERHEAD;
        let have = pool.buf_capacity() - pool.headroom();
        if have < max_frame {
            return Err(PortError::InvalidConfig {
                name: name.to_owned(),
                what: format!(
                    "pool buffers hold {have} bytes after headroom; frames of MTU {mtu} need {max_frame}"
                ),
            });
        }

        let rx_sock = PacketSocket::new(name)?;
        let rx_ring = RxRing::new(&rx_sock, config.rx_ring, name)?;
        let one: libc::c_int = 1;
        rx_sock.set(libc::PACKET_IGNORE_OUTGOING, &one, "PACKET_IGNORE_OUTGOING")?;
        rx_sock.bind(ifindex, true)?;
        if config.promiscuous {
            rx_sock.add_promiscuous(ifindex)?;
        }
        let joined = if config.queues > 1 || group.is_some() {
            Some(rx_sock.join_fanout(group)?)
        } else {
            None
        };

        let tx_sock = PacketSocket::new(name)?;
        // Drop malformed frames instead of stalling the ring on them.
        tx_sock.set(libc::PACKET_LOSS, &one, "PACKET_LOSS")?;
        if config.qdisc_bypass {
            tx_sock.set(libc::PACKET_QDISC_BYPASS, &one, "PACKET_QDISC_BYPASS")?;
        }
        let tx_ring = match config.tx_path {
            TxPath::Ring => Some(TxRing::new(&tx_sock, config.tx_ring, max_frame, name)?),
            TxPath::Sendmmsg => None,
        };
        tx_sock.bind(ifindex, false)?;

        let port = AfPacket {
            rx_sock,
            rx_ring,
            tx_sock,
            tx_ring,
            tx_pending: false,
            max_tx_frame: max_frame,
            pool,
            caps: PortCaps {
                name: name.to_owned(),
                mac,
                mtu: mtu.min(u32::from(u16::MAX)) as u16,
                queues: config.queues.max(1),
                queue,
                rx_offloads: Offloads::default(),
                tx_offloads: Offloads::default(),
                rss: config.queues > 1,
                flow_rules: false,
            },
            stats: AfPacketStats::default(),
        };
        Ok((port, joined))
    }

    /// This queue's counters, with the kernel's ring-overflow drops
    /// collected first.
    pub fn stats(&mut self) -> AfPacketStats {
        if let Ok(k) = self
            .rx_sock
            .get::<libc::tpacket_stats_v3>(libc::PACKET_STATISTICS, "PACKET_STATISTICS")
        {
            // The kernel resets its counters on every read.
            self.stats.rx_kernel_drops += u64::from(k.tp_drops);
        }
        self.stats.rx_bad_blocks = self.rx_ring.bad_blocks;
        self.stats
    }

    /// Waits up to `timeout_ms` milliseconds for received frames (for
    /// workers that sleep when idle; a polling worker never needs it).
    pub fn wait_rx(&self, timeout_ms: i32) -> bool {
        self.rx_ring.has_data() || self.rx_sock.poll_readable(timeout_ms)
    }

    /// Asks the kernel to send frames queued by an earlier
    /// [`tx_burst`](Port::tx_burst) whose flush was pushed back.
    pub fn flush(&mut self) {
        if !self.tx_pending {
            return;
        }
        match self.tx_sock.kick_tx() {
            Ok(true) => self.tx_pending = false,
            Ok(false) => {}
            Err(_) => {
                self.stats.tx_errors += 1;
                self.tx_pending = false;
            }
        }
    }
}

/// Frames per `sendmmsg` call.
const SENDMMSG_BATCH: usize = 32;
/// Segments per `sendmmsg` call.
const SENDMMSG_SEGMENTS: usize = 64;

impl AfPacket {
    fn tx_ring_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        let Some(ring) = self.tx_ring.as_mut() else {
            return 0;
        };
        let mut taken = 0;
        let mut queued = 0;
        for buf in tx.as_slice() {
            let len = buf.total_len();
            let res = if len > self.max_tx_frame {
                Err(TxRefused::TooLarge)
            } else {
                ring.push(len, buf.segments())
            };
            match res {
                Ok(()) => {
                    queued += 1;
                    self.stats.tx_packets += 1;
                    self.stats.tx_bytes += len as u64;
                }
                Err(TxRefused::TooLarge) => self.stats.tx_oversize += 1,
                Err(TxRefused::Full) => break,
            }
            taken += 1;
        }
        tx.drain_front(taken);
        if queued > 0 {
            self.tx_pending = true;
        }
        self.flush();
        queued
    }

    fn tx_sendmmsg_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        let mut taken = 0;
        let mut sent = 0;
        'bursts: while taken < tx.len() {
            let mut iov: ArrayVec<libc::iovec, SENDMMSG_SEGMENTS> = ArrayVec::new();
            // (first iovec, iovec count, bytes) per frame of this batch.
            let mut frames: ArrayVec<(usize, usize, usize), SENDMMSG_BATCH> = ArrayVec::new();
            for buf in &tx.as_slice()[taken..] {
                let len = buf.total_len();
                if len > self.max_tx_frame {
                    if frames.is_empty() {
                        // Drop it here; the batch starts after it.
                        self.stats.tx_oversize += 1;
                        taken += 1;
                        continue 'bursts;
                    }
                    break;
                }
                let first = iov.len();
                let segments = buf.segments().count();
                if frames.is_full() || iov.remaining_capacity() < segments {
                    break;
                }
                for seg in buf.segments() {
                    iov.push(libc::iovec {
                        iov_base: seg.as_ptr() as *mut libc::c_void,
                        iov_len: seg.len(),
                    });
                }
                frames.push((first, segments, len));
            }
            if frames.is_empty() {
                // A frame with more segments than one call carries.
                self.stats.tx_errors += 1;
                taken += 1;
                continue;
            }
            let mut msgs: ArrayVec<libc::mmsghdr, SENDMMSG_BATCH> = frames
                .iter()
                .map(|&(first, count, _)| {
                    // SAFETY: `msghdr` is a plain C struct; all-zero (no
                    // address, no control data) is valid.
                    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                    hdr.msg_iov = iov[first..].as_ptr() as *mut libc::iovec;
                    hdr.msg_iovlen = count as _;
                    libc::mmsghdr {
                        msg_hdr: hdr,
                        msg_len: 0,
                    }
                })
                .collect();
            match self.tx_sock.send_batch(&mut msgs) {
                Ok(n) => {
                    for &(_, _, len) in &frames[..n] {
                        self.stats.tx_packets += 1;
                        self.stats.tx_bytes += len as u64;
                    }
                    taken += n;
                    sent += n;
                    if n == 0 {
                        break; // pushed back: the rest stays for later
                    }
                }
                Err(_) => {
                    // The first frame was refused: drop it, go on after it.
                    self.stats.tx_errors += 1;
                    taken += 1;
                }
            }
        }
        tx.drain_front(taken);
        sent
    }
}

/// Copies a ring frame into `buf`, putting back a stripped VLAN tag.
fn fill(buf: &mut PoolBuf, frame: &[u8], vlan: Option<(u16, u16)>) -> bool {
    match vlan {
        Some((tpid, tci)) if frame.len() >= 12 => {
            let Ok(dst) = buf.append(frame.len() + 4) else {
                return false;
            };
            dst[..12].copy_from_slice(&frame[..12]);
            dst[12..14].copy_from_slice(&tpid.to_be_bytes());
            dst[14..16].copy_from_slice(&tci.to_be_bytes());
            dst[16..].copy_from_slice(&frame[12..]);
        }
        _ => {
            let Ok(dst) = buf.append(frame.len()) else {
                return false;
            };
            dst.copy_from_slice(frame);
        }
    }
    true
}

impl Port for AfPacket {
    type Buf = PoolBuf;

    /// Copies frames out of the receive ring until it is empty, the burst is
    /// full or the pool is empty.
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<PoolBuf, N>) -> usize {
        let pool = &self.pool;
        let stats = &mut self.stats;
        let queue = self.caps.queue;
        let mut truncated = 0u64;
        let n = self.rx_ring.receive(rx.remaining(), |frame, info| {
            let Some(mut buf) = pool.alloc() else {
                stats.rx_no_buffer += 1;
                return false;
            };
            // A frame cut short by the ring, or too big for a buffer, is
            // consumed and dropped (dropping `buf` returns it).
            if (info.wire_len as usize) > frame.len() || !fill(&mut buf, frame, info.vlan) {
                truncated += 1;
                return true;
            }
            let meta = buf.meta_mut();
            meta.rx_queue = queue;
            meta.rx_timestamp_ns = info.timestamp_ns;
            meta.rss_hash = Some(info.rxhash);
            if info.status & libc::TP_STATUS_CSUM_VALID != 0 {
                meta.l4_checksum = ChecksumStatus::Good;
            } else if info.status & libc::TP_STATUS_CSUMNOTREADY != 0 {
                // Sent by this host with checksum offload: the checksum field
                // holds only the pseudo-header sum, the data is intact.
                meta.l4_checksum = ChecksumStatus::Good;
            }
            stats.rx_packets += 1;
            stats.rx_bytes += buf.len() as u64;
            rx.push(buf);
            true
        });
        self.stats.rx_truncated += truncated;
        n - truncated as usize
    }

    /// Hands frames from the front of `tx` to the kernel: copied into the
    /// transmit ring and flushed with one `sendto` ([`TxPath::Ring`]), or
    /// sent with one `sendmmsg` ([`TxPath::Sendmmsg`]). Frames the kernel
    /// cannot take now (ring full, device queue full) stay in `tx`. A frame
    /// larger than the interface MTU allows is dropped and counted in
    /// [`AfPacketStats::tx_oversize`]; one the kernel refuses, in
    /// [`AfPacketStats::tx_errors`]. Returns how many were handed over.
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        if self.tx_ring.is_some() {
            self.tx_ring_burst(tx)
        } else {
            self.tx_sendmmsg_burst(tx)
        }
    }

    fn alloc(&mut self) -> Option<PoolBuf> {
        self.pool.alloc()
    }

    fn caps(&self) -> &PortCaps {
        &self.caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_can_move_to_its_worker_thread() {
        fn send<T: Send>() {}
        send::<AfPacket>();
    }

    #[test]
    fn queue_counts_are_checked_before_touching_the_kernel() {
        let pool = Pool::new(crate::buf::PoolConfig {
            capacity: 4,
            huge_pages: false,
            ..crate::buf::PoolConfig::default()
        })
        .unwrap();
        let two = AfPacketConfig {
            queues: 2,
            ..AfPacketConfig::new("veth-x")
        };
        assert!(matches!(
            AfPacket::open(&two, pool.clone()),
            Err(PortError::InvalidConfig { name, .. }) if name == "veth-x"
        ));
        let none = AfPacketConfig {
            queues: 0,
            ..AfPacketConfig::new("veth-x")
        };
        assert!(matches!(
            AfPacket::open_queues(&none, pool),
            Err(PortError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn a_stripped_vlan_tag_is_reinserted_after_the_addresses() {
        let pool = Pool::new(crate::buf::PoolConfig {
            capacity: 4,
            huge_pages: false,
            ..crate::buf::PoolConfig::default()
        })
        .unwrap();
        let mut frame = vec![0xd; 6];
        frame.extend_from_slice(&[0x5; 6]);
        frame.extend_from_slice(&[0x08, 0x00, 0x45]);
        let mut buf = pool.alloc().unwrap();
        assert!(fill(&mut buf, &frame, Some((0x8100, 0xa064))));
        assert_eq!(&buf.data()[..12], &frame[..12]);
        assert_eq!(&buf.data()[12..16], &[0x81, 0x00, 0xa0, 0x64]);
        assert_eq!(&buf.data()[16..], &[0x08, 0x00, 0x45]);

        let mut plain = pool.alloc().unwrap();
        assert!(fill(&mut plain, &frame, None));
        assert_eq!(plain.data(), &frame[..]);
        // Too short to carry addresses: copied as is.
        let mut runt = pool.alloc().unwrap();
        assert!(fill(&mut runt, &frame[..5], Some((0x8100, 1))));
        assert_eq!(runt.data(), &frame[..5]);
    }
}
