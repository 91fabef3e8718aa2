//! AF_XDP sockets as a [`Port`], beside the kernel on the same interface
//! and the same IP address (software flow bifurcation).
//!
//! tpa's XDP program ([`XdpFilter`], attached while the port is open)
//! hands tpa only the frames of its own flows: TCP and UDP to tpa's
//! addresses whose destination port tpa listens on
//! ([`XdpFilter::open_port`]) or lies in its active-open local port range
//! ([`AfXdpConfig::local_ports`]), the ICMP errors about them (PMTU), and
//! IP fragments of them. Every other frame (ARP, neighbour discovery,
//! ping, the kernel's own connections) goes to the kernel unchanged.
//! See doc/guide/ports.md ("AF_XDP").
//!
//! # Buffers: the pool is the UMEM
//!
//! The port registers the whole memory region of its [`Pool`] as the
//! sockets' UMEM (unaligned chunks, one per buffer room): the kernel
//! writes received frames straight into pool buffers put on the fill
//! ring, and sends transmitted buffers from where they lie. No frame is
//! copied into or out of a second pool. A buffer on the fill, RX, TX or
//! completion ring is lent to the kernel (counted in use by the pool) and
//! comes back as a [`PoolBuf`] when received or when its transmission
//! completes; buffers still lent when the port closes are taken back once
//! the socket is closed. The fill ring is refilled with
//! [`Pool::alloc_bulk_rx`], which may take the pool's receive reserve
//! ([`PoolConfig::rx_reserve`](crate::buf::PoolConfig::rx_reserve), at
//! least the fill ring's size), so buffers held for retransmission never
//! leave the device without buffers to receive acknowledgements into.
//! Buffers of another pool, and chains, are copied into one buffer of the
//! port's pool on transmit.
//!
//! # Zero-copy and copy mode
//!
//! With [`BindMode::Auto`] the kernel binds in zero-copy mode when the
//! driver supports it (the NIC reads and writes the pool's memory) and in
//! copy mode otherwise (the kernel copies each frame between its buffers
//! and the pool's); [`AfXdp::zero_copy`] tells which. veth has copy mode
//! only, so the zero-copy path is built but not run by tpa's tests.
//!
//! # Queues
//!
//! One socket per queue, one queue per worker
//! ([`AfXdp::open_queues`]): an AF_XDP socket receives only frames of the
//! queue it is bound to, so a port with several queues needs one per
//! device queue that may carry tpa's flows. The sockets share one UMEM
//! and one XDP program, which redirects a frame to the socket of the
//! queue it arrived on. Which queue a flow lands on is the device's RSS
//! with its own key (a veth: the transmit queue the sender's stack chose,
//! by a random per-flow hash), so [`Port::steering`] is
//! [`Steering::Single`] with one queue and [`Steering::Unknown`] with
//! more: passive opens are served by whichever worker the flow lands on;
//! active opens from several workers are not steered. The device must
//! have the queues (its channels, `ethtool -l`, are checked).

mod neighbors;
mod privilege;
mod program;
mod reserved;
mod shared;
mod xsk;

pub use neighbors::{kernel_neighbors, KernelNeighbor};
pub use program::{Transport, XdpCounters, XdpFilter, XdpMode, XdpVerdict};
pub use reserved::ReservedPorts;
pub use shared::KernelShare;
pub use xsk::BindMode;

use std::mem::ManuallyDrop;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::time::Duration;

use xsk::{RingSizes, UmemArea, Xsk};

use super::netdev::{wait_readable, NetDev};
use super::offload::{self, OffloadStats, TxDevice};
use super::steer::Steering;
use super::{Burst, Offloads, Port, PortCaps, PortError, RxWait};
use crate::buf::{PacketBuf, Pool, PoolBuf, RegionLayout};

/// Bytes the kernel leaves in front of a received frame in its chunk
/// (`XDP_PACKET_HEADROOM`).
const XDP_PACKET_HEADROOM: usize = 256;
/// Ethernet header plus one VLAN tag.
const MAX_L2_OVERHEAD: usize = 18;
/// The smallest and largest chunk the kernel takes (without huge pages).
const MIN_CHUNK: usize = 2048;
const MAX_CHUNK: usize = 4096;

/// Sizes of one socket's rings (entries, powers of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XskRingSize {
    /// Buffers offered to the kernel to receive into.
    pub fill: u32,
    /// Received frames waiting for [`Port::rx_burst`].
    pub rx: u32,
    /// Frames waiting to be sent.
    pub tx: u32,
    /// Sent buffers waiting to be taken back.
    pub completion: u32,
}

impl Default for XskRingSize {
    fn default() -> Self {
        XskRingSize {
            fill: 1024,
            rx: 1024,
            tx: 1024,
            completion: 1024,
        }
    }
}

/// How to open an AF_XDP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// The interface (it must exist and be up).
    pub interface: String,
    /// Queues, one socket each, from queue 0 (one per worker).
    pub queues: u16,
    /// Where the XDP program runs.
    pub xdp_mode: XdpMode,
    /// Zero-copy, copy, or whichever the driver can.
    pub bind_mode: BindMode,
    /// Ring sizes of each socket.
    pub rings: XskRingSize,
    /// tpa's addresses: only frames to them can be tpa's.
    pub addresses: Vec<IpAddr>,
    /// tpa's active-open local ports: taken for tpa (TCP and UDP) and
    /// reserved from the kernel's ephemeral ports
    /// (`net.ipv4.ip_local_reserved_ports`, restored when the port
    /// closes; see [`ReservedPorts`]). `None`: no active opens.
    pub local_ports: Option<RangeInclusive<u16>>,
}

impl AfXdpConfig {
    /// One queue on `interface` for `addresses`, native XDP, automatic
    /// zero-copy, default rings, no local port range.
    pub fn new(interface: impl Into<String>, addresses: Vec<IpAddr>) -> Self {
        AfXdpConfig {
            interface: interface.into(),
            queues: 1,
            xdp_mode: XdpMode::default(),
            bind_mode: BindMode::default(),
            rings: XskRingSize::default(),
            addresses,
            local_ports: None,
        }
    }
}

/// Counters of one AF_XDP queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AfXdpStats {
    /// Frames received and handed on.
    pub rx_packets: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// RX descriptors that named no buffer the port had lent (never seen
    /// from a correct kernel; skipped).
    pub rx_bad_descriptors: u64,
    /// Times the fill ring could not be refilled because the pool (with
    /// its receive reserve) was empty.
    pub fill_no_buffer: u64,
    /// Frames the kernel dropped: RX ring full, fill ring empty, or other
    /// (from `XDP_STATISTICS`, updated by [`AfXdp::stats`]).
    pub rx_kernel_dropped: u64,
    /// Of those, for want of a fill ring buffer.
    pub rx_fill_ring_empty: u64,
    /// Frames queued for transmission.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames copied into a buffer of the port's pool to be sent (they
    /// came from another pool).
    pub tx_copied: u64,
    /// Frames dropped: longer than the interface MTU allows, or from
    /// another pool with no buffer to copy them into.
    pub tx_dropped: u64,
    /// Failed transmit wake-ups (`sendto`), other than "try again".
    pub tx_errors: u64,
    /// Buffers taken back from the completion ring.
    pub tx_completed: u64,
}

/// Buffers lent to the kernel, by index in the pool, so that they can
/// be taken back when the socket closes.
#[derive(Debug)]
struct Lent {
    bits: Vec<u64>,
    count: usize,
}

impl Lent {
    fn new(capacity: usize) -> Lent {
        Lent {
            bits: vec![0; capacity.div_ceil(64)],
            count: 0,
        }
    }

    fn lend(&mut self, i: usize) {
        self.bits[i / 64] |= 1 << (i % 64);
        self.count += 1;
    }

    /// Marks buffer `i` back; false when it was not lent.
    fn take_back(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        match self.bits.get_mut(w) {
            Some(word) if *word & b != 0 => {
                *word &= !b;
                self.count -= 1;
                true
            }
            _ => false,
        }
    }
}

/// Where the pool's buffers are, as offsets in the UMEM.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    base: NonNull<u8>,
    stride: usize,
    header: usize,
    room: usize,
    capacity: usize,
}

// SAFETY: only an address used for arithmetic; the pool it points into is
// kept alive by the port's `Pool` handle.
unsafe impl Send for Geometry {}

impl Geometry {
    fn new(l: &RegionLayout) -> Geometry {
        Geometry {
            base: l.base,
            stride: l.stride,
            header: l.header,
            room: l.room,
            capacity: l.capacity,
        }
    }

    /// The pool index and header of the buffer holding UMEM offset
    /// `addr`, and the offset of `addr` in its room; `None` outside
    /// every room.
    fn locate(&self, addr: u64) -> Option<(usize, NonNull<u8>, usize)> {
        let addr = addr as usize;
        let i = addr / self.stride;
        let within = addr % self.stride;
        if i >= self.capacity || within < self.header || within - self.header > self.room {
            return None;
        }
        // SAFETY: buffer `i` lies inside the region (`i < capacity`).
        let hdr = unsafe { self.base.add(i * self.stride) };
        Some((i, hdr, within - self.header))
    }

    /// The pool index of the buffer whose header is at `hdr`, and the
    /// UMEM offset of its room.
    fn offset_of(&self, hdr: NonNull<u8>) -> (usize, u64) {
        let off = hdr.as_ptr() as usize - self.base.as_ptr() as usize;
        (off / self.stride, (off + self.header) as u64)
    }
}

/// One queue of an AF_XDP port: an AF_XDP socket bound to a device queue,
/// receiving into and sending from its pool's buffers in place.
#[derive(Debug)]
pub struct AfXdp {
    xsk: ManuallyDrop<Xsk>,
    lent: Lent,
    geometry: Geometry,
    pool: Pool,
    filter: XdpFilter,
    caps: PortCaps,
    stats: AfXdpStats,
    offload: OffloadStats,
    steering: Steering,
    max_frame: usize,
}

impl AfXdp {
    /// Opens one queue (queue 0) on `config.interface` (`config.queues`
    /// must be 1; see [`open_queues`](Self::open_queues)).
    pub fn open(config: &AfXdpConfig, pool: Pool) -> Result<AfXdp, PortError> {
        if config.queues != 1 {
            return Err(PortError::InvalidConfig {
                name: config.interface.clone(),
                what: format!(
                    "AfXdp::open drives one queue but {} were asked; use AfXdp::open_queues",
                    config.queues
                ),
            });
        }
        Ok(Self::open_queues(config, pool)?.remove(0))
    }

    /// Attaches tpa's XDP program to `config.interface` and opens
    /// `config.queues` sockets on its queues 0.., sharing `pool` as their
    /// UMEM. The program stays attached while any of the ports (or a
    /// clone of their [`filter`](Self::filter)) lives.
    pub fn open_queues(config: &AfXdpConfig, pool: Pool) -> Result<Vec<AfXdp>, PortError> {
        let name = config.interface.as_str();
        let bad = |what: String| PortError::InvalidConfig {
            name: name.to_owned(),
            what,
        };
        if config.queues == 0 {
            return Err(bad("an AF_XDP port needs at least one queue".into()));
        }
        let r = config.rings;
        for (ring, n) in [
            ("fill", r.fill),
            ("rx", r.rx),
            ("tx", r.tx),
            ("completion", r.completion),
        ] {
            if !n.is_power_of_two() {
                return Err(bad(format!(
                    "the {ring} ring size {n} is not a power of two"
                )));
            }
        }
        let layout = pool.region_layout();
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&layout.room) {
            return Err(bad(format!(
                "pool buffers have {} bytes of room (headroom + data room); AF_XDP needs {MIN_CHUNK} to {MAX_CHUNK}",
                layout.room
            )));
        }
        if pool.rx_reserve() < r.fill as usize {
            return Err(bad(format!(
                "the pool's rx_reserve ({}) must be at least the fill ring's size ({}), so that buffers held elsewhere never starve reception",
                pool.rx_reserve(),
                r.fill
            )));
        }
        // The rings' first fill comes from above the reserve, which must
        // stay for refills, and the application needs buffers to send.
        let needed = pool.rx_reserve() + usize::from(config.queues) * (r.fill + r.tx) as usize;
        if pool.capacity() < needed {
            return Err(bad(format!(
                "the pool has {} buffers; {} queue(s) need at least {needed}: its rx_reserve ({}) plus a fill ring ({}) and a TX ring ({}) each",
                pool.capacity(),
                config.queues,
                pool.rx_reserve(),
                r.fill,
                r.tx
            )));
        }
        let dev = NetDev::new(name)?;
        let ifindex = dev.index()? as u32;
        let mtu = dev.mtu()?;
        let mac = dev.mac()?;
        let max_frame = mtu as usize + MAX_L2_OVERHEAD;
        if layout.room - XDP_PACKET_HEADROOM < max_frame {
            return Err(bad(format!(
                "pool buffers hold {} bytes after the kernel's {XDP_PACKET_HEADROOM}-byte XDP headroom; frames of MTU {mtu} need {max_frame}",
                layout.room - XDP_PACKET_HEADROOM
            )));
        }
        // The kernel's refusals below would be a bare EPERM.
        if let Some(what) = privilege::missing(layout.len) {
            return Err(PortError::Unprivileged {
                name: name.to_owned(),
                what,
            });
        }
        // A queue the device does not have: the kernel's bind would say
        // EINVAL, after the program is attached.
        if let Ok(Some(channels)) = dev.channels() {
            let have = channels.queues();
            if u32::from(config.queues) > have {
                return Err(bad(format!(
                    "queue {have} does not exist: the device has {have} queue(s) (`ethtool -l {name}`) and {} were asked, one socket each",
                    config.queues
                )));
            }
        }

        let filter = XdpFilter::attach(name, ifindex, config.xdp_mode)?;
        for a in &config.addresses {
            filter.add_address(*a)?;
        }
        if let Some(range) = &config.local_ports {
            filter.set_local_port_range(range.clone())?;
            filter.reserve_kernel_ports(range.clone())?;
        }

        let umem = UmemArea {
            base: layout.base,
            len: layout.len,
            chunk: layout.room as u32,
        };
        let sizes = RingSizes {
            fill: r.fill,
            completion: r.completion,
            rx: r.rx,
            tx: r.tx,
        };
        let geometry = Geometry::new(&layout);
        let mut ports: Vec<AfXdp> = Vec::with_capacity(config.queues as usize);
        for queue in 0..config.queues {
            let share = ports.first().map(|p| p.xsk.fd());
            let xsk = Xsk::open(
                name,
                ifindex,
                u32::from(queue),
                &umem,
                share,
                sizes,
                config.bind_mode,
            )?;
            let mut port = AfXdp {
                xsk: ManuallyDrop::new(xsk),
                lent: Lent::new(layout.capacity),
                geometry,
                pool: pool.clone(),
                filter: filter.clone(),
                caps: PortCaps {
                    name: name.to_owned(),
                    mac,
                    mtu: mtu.min(u32::from(u16::MAX)) as u16,
                    queues: config.queues,
                    queue,
                    rx_offloads: Offloads::default(),
                    tx_offloads: Offloads::default(),
                    rss: config.queues > 1,
                    flow_rules: false,
                },
                stats: AfXdpStats::default(),
                offload: OffloadStats::default(),
                steering: if config.queues == 1 {
                    Steering::Single
                } else {
                    Steering::Unknown
                },
                max_frame,
            };
            // Buffers on the fill ring before frames are steered to it.
            port.refill();
            filter.set_socket(u32::from(queue), port.xsk.fd())?;
            ports.push(port);
        }
        Ok(ports)
    }

    /// The XDP program's handle: tpa's addresses and ports, its counters.
    pub fn filter(&self) -> &XdpFilter {
        &self.filter
    }

    /// What tpa's stack hands its listening and bound ports to, and
    /// learns its neighbours from (see [`SharedHost`](crate::port::SharedHost)).
    pub fn shared_host(&self) -> std::sync::Arc<KernelShare> {
        std::sync::Arc::new(KernelShare::new(self.filter.clone()))
    }

    /// Whether the socket was bound in zero-copy mode (the device reads
    /// and writes the pool's memory itself) rather than copy mode.
    pub fn zero_copy(&self) -> bool {
        self.xsk.zero_copy
    }

    /// Buffers of the pool lent to the kernel now (fill, RX, TX and
    /// completion rings, and the kernel's hands in between).
    pub fn lent(&self) -> usize {
        self.lent.count
    }

    /// This queue's counters, with the kernel's drop counts collected.
    pub fn stats(&mut self) -> AfXdpStats {
        if let Some(k) = self.xsk.kernel_stats() {
            // In copy mode a frame that finds the fill ring empty is
            // counted twice by the kernel, as dropped and as a failed
            // fill ring read; in zero-copy mode the driver drops it and
            // only the fill ring count says so.
            let fill_empty_drops = if self.xsk.zero_copy {
                k.rx_fill_ring_empty_descs
            } else {
                0
            };
            self.stats.rx_kernel_dropped = k.rx_dropped + k.rx_ring_full + fill_empty_drops;
            self.stats.rx_fill_ring_empty = k.rx_fill_ring_empty_descs;
        }
        self.stats
    }

    /// Counters of the transmit work done in software (checksums,
    /// segmentation, chains copied into one buffer).
    pub fn offload_stats(&self) -> OffloadStats {
        self.offload
    }

    /// Puts free pool buffers on the fill ring until it is full or the
    /// pool (down to the bottom of its receive reserve) is empty.
    fn refill(&mut self) {
        let mut free = self.xsk.fill.free() as usize;
        if free == 0 {
            return;
        }
        let mut burst: Burst<PoolBuf, 64> = Burst::new();
        let mut pushed = false;
        while free > 0 {
            let got = self.pool.alloc_bulk_rx(&mut burst, free.min(64));
            if got == 0 {
                self.stats.fill_no_buffer += 1;
                break;
            }
            for buf in burst.drain() {
                // A fresh buffer is unchained and held alone.
                let Some(hdr) = buf.into_raw() else { continue };
                let (i, room) = self.geometry.offset_of(hdr);
                self.lent.lend(i);
                self.xsk.fill.push(room);
                pushed = true;
            }
            free -= got;
        }
        if pushed {
            self.xsk.fill.publish();
            if self.xsk.zero_copy && self.xsk.fill.needs_wakeup() {
                self.xsk.wakeup_rx();
            }
        }
    }

    /// Takes back buffers whose transmission completed.
    fn reap_completions(&mut self) {
        let n = self.xsk.completion.ready();
        if n == 0 {
            return;
        }
        let mut done: Burst<PoolBuf, 64> = Burst::new();
        for _ in 0..n {
            let addr = self.xsk.completion.pop();
            if let Some(buf) = self.take_back(addr, 0) {
                if let Err(buf) = done.try_push(buf) {
                    PoolBuf::free_bulk(done.drain());
                    done.push(buf);
                }
                self.stats.tx_completed += 1;
            }
        }
        self.xsk.completion.release();
        PoolBuf::free_bulk(done.drain());
    }

    /// The buffer lent to the kernel that holds UMEM address `addr` (in
    /// the kernel's unaligned form: offset in the top 16 bits), its data
    /// starting there and `len` long.
    fn take_back(&mut self, addr: u64, len: u32) -> Option<PoolBuf> {
        let at = (addr & libc::XSK_UNALIGNED_BUF_ADDR_MASK)
            + (addr >> libc::XSK_UNALIGNED_BUF_OFFSET_SHIFT);
        let (i, hdr, off) = self.geometry.locate(at)?;
        if !self.lent.take_back(i) {
            return None;
        }
        // SAFETY: buffer `i` was given up with `into_raw` when lent (its
        // bit was set) and is taken back once (the bit is now clear).
        Some(unsafe { PoolBuf::from_raw(hdr, off, len as usize) })
    }

    /// Queues frames from the front of `tx` on the TX ring and wakes the
    /// kernel; what does not fit stays in `tx`.
    fn send_frames<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        self.reap_completions();
        let room = self.xsk.tx.free() as usize;
        let n = room.min(tx.len());
        let mut queued = 0;
        for buf in tx.drain_front(n) {
            if buf.len() > self.max_frame {
                self.stats.tx_dropped += 1;
                continue;
            }
            let buf = if self.pool.owns(&buf) && !buf.is_chained() {
                buf
            } else {
                let Some(mut copy) = self.pool.alloc() else {
                    self.stats.tx_dropped += 1;
                    continue;
                };
                let mut ok = true;
                for seg in buf.segments() {
                    ok &= copy.extend_from_slice(seg).is_ok();
                }
                if !ok {
                    self.stats.tx_dropped += 1;
                    continue;
                }
                self.stats.tx_copied += 1;
                copy
            };
            let len = buf.len();
            let data_off = buf.headroom();
            let Some(hdr) = buf.into_raw() else {
                // Shared first segment: not ours to lend (never from the
                // stack, whose transmitted buffers are held alone).
                self.stats.tx_dropped += 1;
                continue;
            };
            let (i, room) = self.geometry.offset_of(hdr);
            self.lent.lend(i);
            self.xsk.tx.push(libc::xdp_desc {
                addr: room + data_off as u64,
                len: len as u32,
                options: 0,
            });
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += len as u64;
            queued += 1;
        }
        if queued > 0 {
            self.xsk.tx.publish();
        }
        self.kick_tx();
        n
    }

    /// Wakes the kernel to send what the TX ring holds: in copy mode
    /// whenever it holds anything (the kernel sends only when asked, at
    /// most a batch per call, so a ring it left full needs asking again
    /// even when nothing new was queued), in zero-copy mode when the
    /// kernel says it sleeps.
    fn kick_tx(&mut self) {
        let pending = self.xsk.tx.free() < self.xsk.tx_size();
        let wake = if self.xsk.zero_copy {
            pending && self.xsk.tx.needs_wakeup()
        } else {
            pending
        };
        if wake {
            if let Err(e) = self.xsk.wakeup_tx() {
                self.stats.tx_errors += 1;
                tracing::debug!("{}: AF_XDP transmit wake-up failed: {e}", self.caps.name);
            }
        }
    }
}

/// The port as [`offload::transmit`]'s device.
struct AfXdpTx<'a>(&'a mut AfXdp);

impl TxDevice<PoolBuf> for AfXdpTx<'_> {
    fn tx_offloads(&self) -> Offloads {
        Offloads::default()
    }

    fn send<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        self.0.send_frames(tx)
    }

    fn alloc_segment(&mut self) -> Option<PoolBuf> {
        self.0.pool.alloc()
    }
}

impl Port for AfXdp {
    type Buf = PoolBuf;

    /// Takes received frames off the RX ring (the buffers the kernel wrote
    /// them into, no copy) and refills the fill ring.
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<PoolBuf, N>) -> usize {
        let n = (self.xsk.rx.ready() as usize).min(rx.remaining());
        let mut got = 0;
        for _ in 0..n {
            let d = self.xsk.rx.pop();
            match self.take_back(d.addr, d.len) {
                Some(mut buf) => {
                    buf.meta_mut().rx_queue = self.caps.queue;
                    self.stats.rx_packets += 1;
                    self.stats.rx_bytes += u64::from(d.len);
                    rx.push(buf);
                    got += 1;
                }
                None => self.stats.rx_bad_descriptors += 1,
            }
        }
        if n > 0 {
            self.xsk.rx.release();
        }
        self.refill();
        got
    }

    /// Hands frames to the kernel on the TX ring, from their buffers in
    /// place (buffers of other pools, and chains, copied into one buffer
    /// of the port's pool first). Checksums and TSO requests are done in
    /// software ([`offload::transmit`]).
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        let mut stats = self.offload;
        let n = offload::transmit(&mut AfXdpTx(self), tx, &mut stats);
        self.offload = stats;
        n
    }

    fn pool(&self) -> &Pool {
        &self.pool
    }

    fn caps(&self) -> &PortCaps {
        &self.caps
    }

    /// [`Steering::Single`] with one queue; with more, the device's RSS
    /// decides and the port cannot tell ([`Steering::Unknown`]).
    fn steering(&self) -> Steering {
        self.steering.clone()
    }

    /// `ppoll(2)` on the socket, which the kernel wakes when the RX ring
    /// gets a frame.
    fn wait_rx(&mut self, timeout: Duration) -> RxWait {
        self.reap_completions();
        self.kick_tx();
        self.refill();
        if self.xsk.rx.ready() > 0 {
            return RxWait::Ready;
        }
        wait_readable(self.xsk.fd().as_raw_fd(), timeout)
    }

    fn shared_host(&self) -> Option<std::sync::Arc<dyn crate::port::SharedHost>> {
        Some(AfXdp::shared_host(self))
    }
}

impl Drop for AfXdp {
    fn drop(&mut self) {
        self.filter.unset_socket(u32::from(self.caps.queue));
        // SAFETY: dropped once, here; not used afterwards. Closing the
        // socket unbinds it (the kernel waits for its receive path), so
        // the kernel no longer writes into the buffers it was lent.
        unsafe { ManuallyDrop::drop(&mut self.xsk) };
        let mut back = Vec::with_capacity(self.lent.count);
        for w in 0..self.lent.bits.len() {
            let mut word = self.lent.bits[w];
            while word != 0 {
                let b = word.trailing_zeros() as usize;
                word &= word - 1;
                let i = w * 64 + b;
                let (_, hdr, _) = self
                    .geometry
                    .locate((i * self.geometry.stride + self.geometry.header) as u64)
                    .expect("a lent buffer lies in the region");
                self.lent.take_back(i);
                // SAFETY: lent with `into_raw` (its bit was set), taken
                // back once (cleared just now).
                back.push(unsafe { PoolBuf::from_raw(hdr, 0, 0) });
            }
        }
        PoolBuf::free_bulk(back);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::{BufferPool, PoolConfig};

    #[test]
    fn a_port_can_move_to_its_worker_thread() {
        fn send<T: Send>() {}
        send::<AfXdp>();
    }

    #[test]
    fn addresses_map_to_buffers_and_back() {
        let pool = Pool::new(PoolConfig {
            capacity: 8,
            huge_pages: false,
            ..PoolConfig::default()
        })
        .unwrap();
        let g = Geometry::new(&pool.region_layout());
        let b = pool.alloc().unwrap();
        let hdr = b.into_raw().unwrap();
        let (i, room) = g.offset_of(hdr);
        let (j, h, off) = g.locate(room + 300).unwrap();
        assert_eq!((i, h, off), (j, hdr, 300));
        // A header, or past the last buffer, is no room.
        assert!(g.locate(room - 1).is_none());
        assert!(g.locate((g.stride * g.capacity) as u64 + 200).is_none());
        // SAFETY: given up just above, taken back once.
        let back = unsafe { PoolBuf::from_raw(hdr, 300, 60) };
        assert_eq!(back.headroom(), 300);
        assert_eq!(back.len(), 60);
        drop(back);
        pool.assert_whole();
    }

    #[test]
    fn configs_are_checked_before_touching_the_kernel() {
        let small_reserve = Pool::new(PoolConfig {
            capacity: 64,
            huge_pages: false,
            rx_reserve: 8,
            ..PoolConfig::default()
        })
        .unwrap();
        let cfg = AfXdpConfig::new("veth-x", vec![]);
        let err = AfXdp::open(&cfg, small_reserve.clone()).unwrap_err();
        assert!(err.to_string().contains("rx_reserve"), "{err}");
        let odd = AfXdpConfig {
            rings: XskRingSize {
                fill: 1000,
                ..XskRingSize::default()
            },
            ..cfg.clone()
        };
        let err = AfXdp::open(&odd, small_reserve.clone()).unwrap_err();
        assert!(err.to_string().contains("power of two"), "{err}");
        let big_room = Pool::new(PoolConfig {
            capacity: 64,
            huge_pages: false,
            data_room: 9000,
            rx_reserve: 64,
            ..PoolConfig::default()
        })
        .unwrap();
        let err = AfXdp::open(&cfg, big_room).unwrap_err();
        assert!(err.to_string().contains("room"), "{err}");
        small_reserve.assert_whole();
    }
}
