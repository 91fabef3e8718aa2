//! AF_PACKET mmap rings on any Linux interface as a [`Port`].
//!
//! Each [`AfPacket`] queue owns two packet sockets bound to the interface:
//!
//! - a receive socket with an mmap ring, in one of two [`RxMode`]s:
//!   - [`RxMode::LowLatency`] (the default): a **TPACKET_V2** ring of frame
//!     slots, each handed over by the kernel as soon as it is written, so
//!     a frame is readable the moment it arrives;
//!   - [`RxMode::Throughput`]: a **TPACKET_V3** ring whose blocks of
//!     frames the kernel hands over when full or after
//!     [`BlockRingSize::retire_timeout_ms`] (1 ms): fewer status words to
//!     touch under load, but up to that timeout of added latency when the
//!     port is lightly loaded (a ping waits about a millisecond).
//!
//!   Either way [`AfPacket::rx_burst`] walks the ring and gives each slot
//!   or block back as soon as it is read: no system call per packet, none
//!   per burst. A worker with nothing to do can block until the kernel
//!   fills a slot (hands a block over) with [`Port::wait_rx`], a `ppoll(2)`
//!   on the receive socket, instead of polling the empty ring.
//! - a transmit socket with a **TPACKET_V2** ring (V3's transmit side has
//!   fixed-size frames and no advantage): [`AfPacket::tx_burst`] fills frame
//!   slots and makes at most one `sendto(NULL, 0, MSG_DONTWAIT)` per burst.
//!   [`TxPath::RingCopy`] has the kernel copy each frame out of its slot
//!   (cheaper on a veth than packets built around ring pages; the default,
//!   [`TxPath::Auto`], takes it on a veth).
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
//! # Offloads
//!
//! By default the port offloads nothing ([`PortCaps::tx_offloads`] is
//! empty): the checksums and TCP segmentation a packet asks for in
//! [`Meta::tx`](crate::buf::Meta::tx) are done in software by
//! [`offload::transmit`] on the way out, each TSO segment in a buffer of
//! its own from the port's pool, and counted in
//! [`AfPacket::offload_stats`].
//!
//! With [`AfPacketConfig::offloads`] both sockets are set up with
//! `PACKET_VNET_HDR`: every frame, both ways, sits behind a
//! [`virtio_net_hdr`](super::vnet), in the ring slot or in front of the
//! `sendmmsg` iovecs. On transmit the kernel finishes TCP and UDP
//! checksums (`NEEDS_CSUM`) and takes TCP super-segments of up to 64 KiB
//! (`gso_type`, `gso_size`), which it cuts only where the frame goes on
//! to something that cannot take them whole (a veth with TSO on passes
//! them to its peer whole, as if GRO had merged them; one with TSO or
//! checksumming off, `ethtool -K`, has the kernel do that work in
//! software before the driver). The transmit ring's slots then are
//! 128 KiB, one for every 32 of [`TxRingSize::frame_count`] (at least
//! 16). On receive, the header says whether the checksum was left
//! unfinished by a sender on this machine (`NEEDS_CSUM`) or checked
//! (`DATA_VALID`): such frames have their L4 checksum trusted
//! ([`ChecksumStatus::Good`]), counted in
//! [`AfPacketStats::rx_checksum_trusted`]. A super-frame the kernel hands
//! over whole (the peer's TSO, GRO) does not fit a buffer: it is dropped
//! and counted in [`AfPacketStats::rx_gso_frames`] (set
//! `gso_max_segs 1` on a kernel peer's veth, or turn its TSO and GSO off,
//! so that it sends segments).
//!
//! # Several workers on one interface
//!
//! With [`AfPacketConfig::queues`] > 1, [`AfPacket::open_queues`] opens one
//! queue per worker, all joined to one fanout group: all packets of a flow
//! go to the same queue. By default ([`Fanout::Steered`]) the group runs
//! tpa's [`SteeringProgram`], so
//! [`Port::steering`] tells which queue a flow lands on (the kernel's own
//! `PACKET_FANOUT_HASH`, [`Fanout::KernelHash`], uses a per-boot secret key
//! and cannot be predicted).
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
mod tx;

pub use ring::{BlockRingSize, FrameRingSize, TxRingSize};

use ring::{BlockRxRing, FrameInfo, FrameRxRing};
use socket::PacketSocket;
use tx::{AfPacketTx, Transmitter};

use std::time::Duration;

use super::netdev::{wait_readable, NetDev};
use super::offload::{self, OffloadStats};
use super::steer::{Steering, SteeringProgram};
use super::vnet::{GsoType, VnetHeader};
use super::{Burst, Offloads, Port, PortCaps, PortError, RxWait};
use crate::buf::{ChecksumStatus, PacketBuf, Pool, PoolBuf};
use crate::time::Clock;

/// Ethernet header plus one VLAN tag: what a frame adds to the MTU.
const MAX_L2_OVERHEAD: usize = 14 + 4;

/// How [`AfPacket::tx_burst`] hands frames to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxPath {
    /// [`RingCopy`](TxPath::RingCopy) on a veth (the interface's driver,
    /// as `ETHTOOL_GDRVINFO` names it, is `veth`), [`Ring`](TxPath::Ring)
    /// on anything else; [`AfPacket::tx_path`] tells which was taken.
    #[default]
    Auto,
    /// Copy frames into a TPACKET_V2 ring shared with the kernel and flush
    /// with one `sendto` per burst. The kernel builds packets around the ring
    /// memory, which a NIC then sends from directly.
    Ring,
    /// The same ring and flush, but each frame goes behind a
    /// `virtio_net_hdr` (`PACKET_VNET_HDR`) whose `hdr_len` covers the
    /// whole frame, so the kernel copies it out of the ring into a packet
    /// of its own instead of building the packet around ring pages. For
    /// virtual devices (veth), which would copy ring-backed packets into
    /// fresh pages anyway, one page allocation and the page references
    /// less per frame, with the ring's one `sendto` per burst kept.
    RingCopy,
    /// One `sendmmsg(2)` per burst, the kernel copying each frame into a
    /// packet of its own. Can be faster on virtual devices (veth), which
    /// must copy ring-backed packets into fresh pages before passing them on.
    Sendmmsg,
}

/// How a fanout group of several queues spreads frames over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fanout {
    /// tpa's steering program (`PACKET_FANOUT_EBPF`, needs `CAP_BPF` or
    /// root): TCP and UDP flows by the symmetric Toeplitz hash of their
    /// addresses and ports, every other frame to queue 0, as
    /// [`Steering::Program`] predicts. Used for groups tpa creates
    /// ([`AfPacketConfig::fanout_group`] `None`).
    #[default]
    Steered,
    /// The kernel's flow hash (`PACKET_FANOUT_HASH`): unpredictable
    /// ([`Steering::Unknown`]). Always used to join a group given by id,
    /// which other sockets may share.
    KernelHash,
}

/// How the receive ring hands frames over: per frame, at once (low
/// latency), or per block of frames (high throughput).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxMode {
    /// A TPACKET_V2 ring of fixed frame slots, each handed over as soon as
    /// the kernel has written it: no added latency. The default, right for
    /// request/response traffic and anything lightly loaded.
    LowLatency(FrameRingSize),
    /// A TPACKET_V3 ring of blocks, each handed over when full or when its
    /// retire timer fires: one status word per block instead of per frame,
    /// and frames packed by size, which can pay under sustained high rates
    /// of small frames (on a veth it streams no faster than the frame
    /// ring); but a frame on a quiet port waits up to
    /// [`retire_timeout_ms`](BlockRingSize::retire_timeout_ms). The kernel
    /// also reports each frame's flow hash in this mode
    /// ([`Meta::rss_hash`](crate::buf::Meta::rss_hash)).
    Throughput(BlockRingSize),
}

impl RxMode {
    /// [`RxMode::LowLatency`] with the default ring size.
    pub fn low_latency() -> RxMode {
        RxMode::LowLatency(FrameRingSize::default())
    }

    /// [`RxMode::Throughput`] with the default ring size.
    pub fn throughput() -> RxMode {
        RxMode::Throughput(BlockRingSize::default())
    }
}

impl Default for RxMode {
    fn default() -> Self {
        RxMode::low_latency()
    }
}

/// How to open an AF_PACKET port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// The interface to bind to (it must exist).
    pub interface: String,
    /// Queues sharing the interface through a hash fanout group.
    pub queues: u16,
    /// The fanout group to join. `None`: with several queues, a new group
    /// with a kernel-chosen unique id; with one, no fanout. A group given
    /// by id is joined with the kernel's hash and
    /// `PACKET_FANOUT_FLAG_IGNORE_OUTGOING`, so it must have been created
    /// that way (by tpa) for the kernel to accept the join.
    pub fanout_group: Option<u16>,
    /// How a group of several queues tpa creates spreads frames.
    pub fanout: Fanout,
    /// The receive ring: per-frame (low latency, the default) or per-block
    /// (throughput) hand-over, and its size.
    pub rx_mode: RxMode,
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
    /// Set up both sockets with `PACKET_VNET_HDR` and let the kernel do
    /// TCP/UDP checksums and TCP segmentation (see the module's
    /// "Offloads").
    pub offloads: bool,
}

impl AfPacketConfig {
    /// One queue on `interface` with default ring sizes.
    pub fn new(interface: impl Into<String>) -> Self {
        AfPacketConfig {
            interface: interface.into(),
            queues: 1,
            fanout_group: None,
            fanout: Fanout::default(),
            rx_mode: RxMode::default(),
            tx_path: TxPath::default(),
            tx_ring: TxRingSize::default(),
            qdisc_bypass: false,
            promiscuous: false,
            offloads: false,
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
    /// Ring blocks or frame slots with an inconsistent descriptor (skipped).
    pub rx_bad_blocks: u64,
    /// Frames received with their L4 checksum trusted: left unfinished by
    /// a sender on this machine or checked by the kernel (its
    /// `TP_STATUS_CSUMNOTREADY`/`TP_STATUS_CSUM_VALID`, or with
    /// [`AfPacketConfig::offloads`] `NEEDS_CSUM`/`DATA_VALID` in the
    /// `virtio_net_hdr`).
    pub rx_checksum_trusted: u64,
    /// With [`AfPacketConfig::offloads`]: super-frames the kernel handed
    /// over whole (`gso_type` set), and frames whose `virtio_net_hdr` is
    /// unknown; dropped.
    pub rx_gso_frames: u64,
    /// Frames queued for transmission.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames dropped because they exceed the interface MTU.
    pub tx_oversize: u64,
    /// Failed `sendto` flushes (other than "try again").
    pub tx_errors: u64,
    /// TCP super-segments handed to the kernel to cut (`gso_type` set,
    /// with [`AfPacketConfig::offloads`]): frames longer than the MTU.
    pub tx_gso_frames: u64,
}

/// The receive ring of one queue, as its [`RxMode`] chose.
#[derive(Debug)]
enum RxRing {
    Frames(FrameRxRing),
    Blocks(BlockRxRing),
}

impl RxRing {
    fn has_data(&self) -> bool {
        match self {
            RxRing::Frames(r) => r.has_data(),
            RxRing::Blocks(r) => r.has_data(),
        }
    }

    fn bad_entries(&self) -> u64 {
        match self {
            RxRing::Frames(r) => r.bad_frames,
            RxRing::Blocks(r) => r.bad_blocks,
        }
    }
}

/// One queue of an AF_PACKET port: a [`Port`] over mmap rings.
#[derive(Debug)]
pub struct AfPacket {
    rx_sock: PacketSocket,
    rx_ring: RxRing,
    rx_mode: RxMode,
    /// The transmit path taken ([`TxPath::Auto`] resolved).
    tx_path: TxPath,
    tx: Transmitter,
    pool: Pool,
    caps: PortCaps,
    stats: AfPacketStats,
    offload: OffloadStats,
    steering: Steering,
    /// The clock received frames' timestamps are put on.
    clock: &'static Clock,
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
        Self::open_queue(config, 0, config.fanout_group, None, pool).map(|(port, _)| port)
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
        let program = match (config.fanout, group) {
            (Fanout::Steered, None) if config.queues > 1 => {
                Some(SteeringProgram::load(config.queues).map_err(|e| {
                    PortError::from_io(&config.interface, "loading the fanout program", e)
                })?)
            }
            _ => None,
        };
        let mut ports = Vec::with_capacity(config.queues as usize);
        for queue in 0..config.queues {
            let (port, joined) =
                Self::open_queue(config, queue, group, program.as_ref(), pool.clone())?;
            group = joined;
            ports.push(port);
        }
        Ok(ports)
    }

    fn open_queue(
        config: &AfPacketConfig,
        queue: u16,
        group: Option<u16>,
        program: Option<&SteeringProgram>,
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
        let one: libc::c_int = 1;
        let vnet = config.offloads;
        if vnet {
            // Before the ring: the kernel refuses it once one is set up.
            rx_sock.set(libc::PACKET_VNET_HDR, &one, "PACKET_VNET_HDR")?;
        }
        let rx_ring = match config.rx_mode {
            RxMode::LowLatency(size) => {
                RxRing::Frames(FrameRxRing::new(&rx_sock, size, max_frame, vnet, name)?)
            }
            RxMode::Throughput(size) => {
                RxRing::Blocks(BlockRxRing::new(&rx_sock, size, vnet, name)?)
            }
        };
        rx_sock.set(libc::PACKET_IGNORE_OUTGOING, &one, "PACKET_IGNORE_OUTGOING")?;
        rx_sock.bind(ifindex, true)?;
        if config.promiscuous {
            rx_sock.add_promiscuous(ifindex)?;
        }
        // Members join in queue order, so the program's answer is the
        // queue's index in the group.
        let joined = if config.queues > 1 || group.is_some() {
            let mode = match program {
                Some(_) => libc::PACKET_FANOUT_EBPF,
                None => libc::PACKET_FANOUT_HASH,
            };
            let id = rx_sock.join_fanout(group, mode)?;
            if let Some(prog) = program.filter(|_| queue == 0) {
                rx_sock.set_fanout_program(prog)?;
            }
            Some(id)
        } else {
            None
        };
        let steering = match (program, joined) {
            (Some(p), _) => Steering::Program { queues: p.queues() },
            (None, None) => Steering::Single,
            (None, Some(_)) => Steering::Unknown,
        };

        let tx_path = match config.tx_path {
            TxPath::Auto if dev.driver()?.as_deref() == Some("veth") => TxPath::RingCopy,
            TxPath::Auto => TxPath::Ring,
            path => path,
        };
        let tx = Transmitter::new(
            name,
            ifindex,
            tx_path,
            config.tx_ring,
            max_frame,
            config.qdisc_bypass,
            vnet,
        )?;
        let (rx_offloads, tx_offloads) = if vnet {
            let rx = Offloads {
                ipv4_checksum: false,
                tcp_checksum: true,
                udp_checksum: true,
                tso: false,
            };
            (rx, Offloads { tso: true, ..rx })
        } else {
            (Offloads::default(), Offloads::default())
        };

        let port = AfPacket {
            rx_sock,
            rx_ring,
            rx_mode: config.rx_mode,
            tx_path,
            tx,
            pool,
            caps: PortCaps {
                name: name.to_owned(),
                mac,
                mtu: mtu.min(u32::from(u16::MAX)) as u16,
                queues: config.queues.max(1),
                queue,
                rx_offloads,
                tx_offloads,
                rss: config.queues > 1,
                flow_rules: false,
            },
            stats: AfPacketStats::default(),
            offload: OffloadStats::default(),
            steering,
            clock: Clock::global(),
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
        self.stats.rx_bad_blocks = self.rx_ring.bad_entries();
        self.stats
    }

    /// Counters of the transmit offload requests this queue carried out
    /// in software (all of them without [`AfPacketConfig::offloads`]).
    pub fn offload_stats(&self) -> OffloadStats {
        self.offload
    }

    /// How the receive ring hands frames over, and its size as asked.
    pub fn rx_mode(&self) -> RxMode {
        self.rx_mode
    }

    /// How frames are handed to the kernel: [`AfPacketConfig::tx_path`],
    /// with [`TxPath::Auto`] resolved for the interface.
    pub fn tx_path(&self) -> TxPath {
        self.tx_path
    }

    /// Asks the kernel to send frames queued by an earlier
    /// [`tx_burst`](Port::tx_burst) whose flush was pushed back.
    pub fn flush(&mut self) {
        self.tx.flush(&mut self.stats);
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
        let clock = self.clock;
        let max = rx.remaining();
        let mut truncated = 0u64;
        let mut super_frames = 0u64;
        let mut take = |frame: &[u8], info: FrameInfo| {
            // Checked by the kernel, or sent by this host with checksum
            // offload: the checksum field holds only the pseudo-header sum,
            // the data is intact. With `PACKET_VNET_HDR`, the header says so.
            let trusted = match info.vnet.map(|bytes| VnetHeader::decode(&bytes)) {
                Some(Some(h)) if h.gso_type == GsoType::None => h.checksum_trusted(),
                // A super-frame or a header Linux does not define: consumed
                // and dropped.
                Some(_) => {
                    super_frames += 1;
                    return true;
                }
                None => {
                    info.status & (libc::TP_STATUS_CSUM_VALID | libc::TP_STATUS_CSUMNOTREADY) != 0
                }
            };
            let Some(mut buf) = pool.alloc_rx() else {
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
            // The kernel stamps frames with the wall clock; tpa's meta
            // carries its own clock's time (what the pcap observer and the
            // stages read).
            meta.rx_timestamp_ns = clock.from_unix_ns(info.timestamp_ns);
            meta.rss_hash = info.rxhash;
            if trusted {
                meta.l4_checksum = ChecksumStatus::Good;
                stats.rx_checksum_trusted += 1;
            }
            stats.rx_packets += 1;
            stats.rx_bytes += buf.len() as u64;
            rx.push(buf);
            true
        };
        let n = match &mut self.rx_ring {
            RxRing::Frames(r) => r.receive(max, &mut take),
            RxRing::Blocks(r) => r.receive(max, &mut take),
        };
        self.stats.rx_truncated += truncated;
        self.stats.rx_gso_frames += super_frames;
        n - (truncated + super_frames) as usize
    }

    /// Hands frames from the front of `tx` to the kernel: copied into the
    /// transmit ring and flushed with one `sendto` ([`TxPath::Ring`]), or
    /// sent with one `sendmmsg` ([`TxPath::Sendmmsg`]). Frames the kernel
    /// cannot take now (ring full, device queue full) stay in `tx`. A frame
    /// larger than the interface MTU allows is dropped and counted in
    /// [`AfPacketStats::tx_oversize`]; one the kernel refuses, in
    /// [`AfPacketStats::tx_errors`]. Transmit requests in `Meta::tx` are
    /// carried out in software first ([`offload::transmit`]). Returns how
    /// many were handed over (a segmented packet counts once).
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        let mut dev = AfPacketTx {
            tx: &mut self.tx,
            stats: &mut self.stats,
            pool: &self.pool,
            offloads: self.caps.tx_offloads,
        };
        offload::transmit(&mut dev, tx, &mut self.offload)
    }

    fn pool(&self) -> &crate::buf::Pool {
        &self.pool
    }

    fn caps(&self) -> &PortCaps {
        &self.caps
    }

    /// [`Steering::Program`] for queues in a group tpa created and steers
    /// ([`Fanout::Steered`]), [`Steering::Single`] without fanout,
    /// [`Steering::Unknown`] with the kernel's hash.
    fn steering(&self) -> Steering {
        self.steering.clone()
    }

    /// At once when the receive ring holds a frame, else `ppoll(2)` on
    /// the receive socket, which the kernel wakes when it fills a slot
    /// (in [`RxMode::Throughput`], when it hands a block over).
    fn visit_counters(&mut self, visit: &mut dyn FnMut(&'static str, u64)) {
        let s = self.stats();
        visit("rx_packets", s.rx_packets);
        visit("rx_bytes", s.rx_bytes);
        visit("rx_no_buffer", s.rx_no_buffer);
        visit("rx_truncated", s.rx_truncated);
        visit("rx_ring_drops", s.rx_kernel_drops);
        visit("rx_bad_blocks", s.rx_bad_blocks);
        visit("rx_gso_frames", s.rx_gso_frames);
        visit("tx_packets", s.tx_packets);
        visit("tx_bytes", s.tx_bytes);
        visit("tx_oversize", s.tx_oversize);
        visit("tx_errors", s.tx_errors);
        visit("tx_gso_frames", s.tx_gso_frames);
    }

    fn wait_rx(&mut self, timeout: Duration) -> RxWait {
        if self.rx_ring.has_data() {
            return RxWait::Ready;
        }
        wait_readable(self.rx_sock.raw(), timeout)
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
            AfPacket::open_queues(&none, pool.clone()),
            Err(PortError::InvalidConfig { .. })
        ));
        crate::buf::BufferPool::assert_whole(&pool);
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
        drop((buf, plain, runt));
        crate::buf::BufferPool::assert_whole(&pool);
    }
}
