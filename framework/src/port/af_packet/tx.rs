//! The transmit side of an AF_PACKET queue: a socket with a TPACKET_V2
//! ring flushed once per burst, or `sendmmsg(2)`; and the raw device that
//! [`offload::transmit`](crate::port::offload::transmit) drives.

use arrayvec::ArrayVec;

use super::ring::{TxRefused, TxRing, TxRingSize};
use super::socket::PacketSocket;
use super::{AfPacketStats, TxPath, MAX_L2_OVERHEAD};
use crate::buf::{PacketBuf, Pool, PoolBuf};
use crate::port::offload::{HwOffload, TxDevice};
use crate::port::vnet::{self, GsoType, VnetHeader};
use crate::port::{Burst, Offloads, PortError};

/// Frames per `sendmmsg` call.
const SENDMMSG_BATCH: usize = 32;
/// Segments of one frame, at most.
const FRAME_SEGMENTS: usize = 64;
/// Segments per `sendmmsg` call (a `virtio_net_hdr` counts as one): room
/// for several TCP super-segments of 64 KiB in chains of 2 KiB buffers.
const SENDMMSG_SEGMENTS: usize = 256;
/// The longest TCP super-segment the kernel is handed to cut: an IPv6
/// header and a payload of 64 KiB less a byte (IPv4's whole packet is
/// shorter), behind Ethernet and a VLAN tag.
pub(super) const MAX_GSO_FRAME: usize = MAX_L2_OVERHEAD + 40 + u16::MAX as usize;
/// With offloads, the transmit ring has one slot of 128 KiB (room for a
/// super-segment) for this many of [`TxRingSize::frame_count`].
const GSO_SLOT_SHARE: u32 = 32;

/// A transmit socket bound to one interface, with its ring if any.
#[derive(Debug)]
pub(super) struct Transmitter {
    sock: PacketSocket,
    /// The transmit ring, with [`TxPath::Ring`].
    ring: Option<TxRing>,
    /// Frames are marked in the ring that the kernel has not yet been
    /// asked to send (the last flush was pushed back).
    pending: bool,
    /// The largest frame the interface takes (MTU + 18).
    max_frame: usize,
    /// The socket has `PACKET_VNET_HDR`: every frame goes behind a
    /// `virtio_net_hdr`, and TCP super-segments of up to
    /// [`MAX_GSO_FRAME`] bytes are the kernel's to cut.
    vnet: bool,
    /// [`TxPath::RingCopy`]: the socket has `PACKET_VNET_HDR` (for the
    /// offloads or only for this) and each frame's header has the kernel
    /// copy all of it.
    copy: bool,
}

impl Transmitter {
    /// A transmit socket on interface `ifindex` (named `iface`) taking
    /// frames of up to `max_frame` bytes; with `vnet`, each behind a
    /// `virtio_net_hdr` (`PACKET_VNET_HDR`), TCP super-segments longer.
    pub(super) fn new(
        iface: &str,
        ifindex: libc::c_int,
        path: TxPath,
        ring: TxRingSize,
        max_frame: usize,
        qdisc_bypass: bool,
        vnet: bool,
    ) -> Result<Transmitter, PortError> {
        let sock = PacketSocket::new(iface)?;
        let one: libc::c_int = 1;
        // Drop malformed frames instead of stalling the ring on them.
        sock.set(libc::PACKET_LOSS, &one, "PACKET_LOSS")?;
        if qdisc_bypass {
            sock.set(libc::PACKET_QDISC_BYPASS, &one, "PACKET_QDISC_BYPASS")?;
        }
        let copy = path == TxPath::RingCopy;
        if vnet || copy {
            // Before the ring: the kernel refuses it once one is set up.
            sock.set(libc::PACKET_VNET_HDR, &one, "PACKET_VNET_HDR")?;
        }
        let ring = match (path, vnet) {
            (TxPath::Ring, false) => Some(TxRing::new(&sock, ring, max_frame, iface)?),
            (TxPath::RingCopy, false) => {
                Some(TxRing::new(&sock, ring, vnet::LEN + max_frame, iface)?)
            }
            (TxPath::Ring | TxPath::RingCopy, true) => {
                let slots = TxRingSize {
                    frame_count: ring.frame_count.div_ceil(GSO_SLOT_SHARE).max(16),
                };
                let slot = vnet::LEN + MAX_GSO_FRAME;
                Some(TxRing::new(&sock, slots, slot, iface)?)
            }
            (TxPath::Sendmmsg, _) => None,
            (TxPath::Auto, _) => {
                return Err(PortError::InvalidConfig {
                    name: iface.to_owned(),
                    what: "the transmit path must be resolved before the socket is opened".into(),
                })
            }
        };
        sock.bind(ifindex, false)?;
        Ok(Transmitter {
            sock,
            ring,
            pending: false,
            max_frame,
            vnet,
            copy,
        })
    }

    /// Hands frames from the front of `tx` to the kernel (see
    /// [`AfPacket::tx_burst`](super::AfPacket)).
    pub(super) fn send<const N: usize>(
        &mut self,
        tx: &mut Burst<PoolBuf, N>,
        stats: &mut AfPacketStats,
    ) -> usize {
        if self.ring.is_some() {
            self.send_ring(tx, stats)
        } else {
            self.send_mmsg(tx, stats)
        }
    }

    /// Asks the kernel to send frames marked in the ring by an earlier call
    /// whose flush was pushed back.
    pub(super) fn flush(&mut self, stats: &mut AfPacketStats) {
        if !self.pending {
            return;
        }
        match self.sock.kick_tx() {
            Ok(true) => self.pending = false,
            Ok(false) => {}
            Err(_) => {
                stats.tx_errors += 1;
                self.pending = false;
            }
        }
    }

    fn send_ring<const N: usize>(
        &mut self,
        tx: &mut Burst<PoolBuf, N>,
        stats: &mut AfPacketStats,
    ) -> usize {
        let Some(ring) = self.ring.as_mut() else {
            return 0;
        };
        let mut taken = 0;
        let mut queued = 0;
        for buf in tx.as_slice() {
            let len = buf.total_len();
            let (mut header, max) = frame_header(self.vnet, self.max_frame, buf);
            if self.copy {
                header = Some(copied_whole(header, len));
            }
            let bytes = header.map(|h| h.encode());
            let res = if len > max {
                Err(TxRefused::TooLarge)
            } else {
                ring.push(
                    bytes.as_ref().map_or(&[][..], |b| &b[..]),
                    len,
                    buf.segments(),
                )
            };
            match res {
                Ok(()) => {
                    queued += 1;
                    stats.tx_packets += 1;
                    stats.tx_bytes += len as u64;
                    if header.is_some_and(|h| h.gso_type != GsoType::None) {
                        stats.tx_gso_frames += 1;
                    }
                }
                Err(TxRefused::TooLarge) => stats.tx_oversize += 1,
                Err(TxRefused::Full) => break,
            }
            taken += 1;
        }
        tx.drain_front(taken);
        if queued > 0 {
            self.pending = true;
        }
        self.flush(stats);
        queued
    }

    fn send_mmsg<const N: usize>(
        &mut self,
        tx: &mut Burst<PoolBuf, N>,
        stats: &mut AfPacketStats,
    ) -> usize {
        let mut taken = 0;
        let mut sent = 0;
        'bursts: while taken < tx.len() {
            // The frames' `virtio_net_hdr`s, which `iov` points into: an
            // ArrayVec keeps them in place as it fills.
            let mut headers: ArrayVec<[u8; vnet::LEN], SENDMMSG_BATCH> = ArrayVec::new();
            let mut iov: ArrayVec<libc::iovec, SENDMMSG_SEGMENTS> = ArrayVec::new();
            // (first iovec, iovec count, bytes, super-segment) per frame of
            // this batch.
            let mut frames: ArrayVec<(usize, usize, usize, bool), SENDMMSG_BATCH> = ArrayVec::new();
            for buf in &tx.as_slice()[taken..] {
                let len = buf.total_len();
                let (header, max) = frame_header(self.vnet, self.max_frame, buf);
                if len > max {
                    if frames.is_empty() {
                        // Drop it here; the batch starts after it.
                        stats.tx_oversize += 1;
                        taken += 1;
                        continue 'bursts;
                    }
                    break;
                }
                let first = iov.len();
                let segments = buf.segments().count() + usize::from(header.is_some());
                if frames.is_full() || iov.remaining_capacity() < segments {
                    break;
                }
                if let Some(h) = header {
                    headers.push(h.encode());
                    let bytes = &headers[headers.len() - 1];
                    iov.push(libc::iovec {
                        iov_base: bytes.as_ptr() as *mut libc::c_void,
                        iov_len: bytes.len(),
                    });
                }
                let gso = header.is_some_and(|h| h.gso_type != GsoType::None);
                for seg in buf.segments() {
                    iov.push(libc::iovec {
                        iov_base: seg.as_ptr() as *mut libc::c_void,
                        iov_len: seg.len(),
                    });
                }
                frames.push((first, segments, len, gso));
            }
            if frames.is_empty() {
                // A frame with more segments than one call carries.
                stats.tx_errors += 1;
                taken += 1;
                continue;
            }
            let mut msgs: ArrayVec<libc::mmsghdr, SENDMMSG_BATCH> = frames
                .iter()
                .map(|&(first, count, _, _)| {
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
            match self.sock.send_batch(&mut msgs) {
                Ok(n) => {
                    for &(_, _, len, gso) in &frames[..n] {
                        stats.tx_packets += 1;
                        stats.tx_bytes += len as u64;
                        stats.tx_gso_frames += u64::from(gso);
                    }
                    taken += n;
                    sent += n;
                    if n == 0 {
                        break; // pushed back: the rest stays for later
                    }
                }
                Err(_) => {
                    // The first frame was refused: drop it, go on after it.
                    stats.tx_errors += 1;
                    taken += 1;
                }
            }
        }
        tx.drain_front(taken);
        sent
    }
}

/// The `virtio_net_hdr` for `buf` on a socket with `PACKET_VNET_HDR`
/// (`vnet`), and the longest frame allowed: a super-segment's
/// ([`MAX_GSO_FRAME`]) when the header asks for segmentation, else
/// `max_frame` (the MTU's).
fn frame_header(vnet: bool, max_frame: usize, buf: &PoolBuf) -> (Option<VnetHeader>, usize) {
    if !vnet {
        return (None, max_frame);
    }
    let h = VnetHeader::for_request(buf);
    let max = if h.gso_type == GsoType::None {
        max_frame
    } else {
        MAX_GSO_FRAME
    };
    (Some(h), max)
}

/// `header` (or a header asking for nothing) with `hdr_len` raised to the
/// whole frame of `len` bytes, which has the kernel copy the frame out of
/// the ring into the packet's own memory ([`TxPath::RingCopy`]); a
/// super-segment keeps its own `hdr_len` (its headers), as the kernel
/// cuts it from the ring's pages.
fn copied_whole(header: Option<VnetHeader>, len: usize) -> VnetHeader {
    let mut h = header.unwrap_or(VnetHeader::NONE);
    if h.gso_type == GsoType::None {
        // A frame fits in u16 (at most the MTU's, which is below 64 KiB).
        h.hdr_len = h.hdr_len.max(u16::try_from(len).unwrap_or(u16::MAX));
    }
    h
}

/// The raw transmit side of one queue, as offload requests see it: the
/// device offloads what the port's caps say (nothing, or with
/// `PACKET_VNET_HDR` the L4 checksums and TSO); segments cut in software
/// come from the port's pool.
pub(super) struct AfPacketTx<'a> {
    pub(super) tx: &'a mut Transmitter,
    pub(super) stats: &'a mut AfPacketStats,
    pub(super) pool: &'a Pool,
    pub(super) offloads: Offloads,
}

impl TxDevice<PoolBuf> for AfPacketTx<'_> {
    fn tx_offloads(&self) -> Offloads {
        self.offloads
    }

    /// Leaves the L4 checksum and segmentation to the kernel
    /// ([`vnet::mark_for_kernel`]): the send paths put the request in each
    /// frame's `virtio_net_hdr`.
    fn mark_for_device(&mut self, buf: &mut PoolBuf, plan: &HwOffload) {
        vnet::mark_for_kernel(buf, plan);
    }

    #[inline]
    fn send<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        self.tx.send(tx, self.stats)
    }

    fn alloc_segment(&mut self) -> Option<PoolBuf> {
        self.pool.alloc()
    }

    /// The ring copies every segment into its frame; `sendmmsg` gathers up
    /// to this many iovecs per frame.
    fn max_segments(&self) -> usize {
        FRAME_SEGMENTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copied_frame_asks_the_kernel_to_copy_all_of_it() {
        let h = copied_whole(None, 1514);
        assert_eq!((h.gso_type, h.hdr_len, h.flags), (GsoType::None, 1514, 0));
        // An offload's checksum request keeps its fields; only the
        // length copied grows.
        let csum = VnetHeader {
            flags: vnet::F_NEEDS_CSUM,
            hdr_len: 66,
            csum_start: 34,
            csum_offset: 16,
            ..VnetHeader::NONE
        };
        let h = copied_whole(Some(csum), 1514);
        assert_eq!(
            (h.flags, h.hdr_len, h.csum_start),
            (vnet::F_NEEDS_CSUM, 1514, 34)
        );
    }

    #[test]
    fn a_super_segment_is_still_cut_from_the_ring() {
        let gso = VnetHeader {
            gso_type: GsoType::TcpV4,
            gso_size: 1448,
            hdr_len: 66,
            ..VnetHeader::NONE
        };
        assert_eq!(copied_whole(Some(gso), 60_000).hdr_len, 66);
    }
}
