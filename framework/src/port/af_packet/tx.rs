//! The transmit side of an AF_PACKET queue: a socket with a TPACKET_V2
//! ring flushed once per burst, or `sendmmsg(2)`; and the raw device that
//! [`offload::transmit`](crate::port::offload::transmit) drives.

use arrayvec::ArrayVec;

use super::ring::{TxRefused, TxRing, TxRingSize};
use super::socket::PacketSocket;
use super::{AfPacketStats, TxPath};
use crate::buf::{PacketBuf, Pool, PoolBuf};
use crate::port::offload::TxDevice;
use crate::port::{Burst, Offloads, PortError};

/// Frames per `sendmmsg` call.
const SENDMMSG_BATCH: usize = 32;
/// Segments per `sendmmsg` call.
const SENDMMSG_SEGMENTS: usize = 64;

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
}

impl Transmitter {
    /// A transmit socket on interface `ifindex` (named `iface`) taking
    /// frames of up to `max_frame` bytes.
    pub(super) fn new(
        iface: &str,
        ifindex: libc::c_int,
        path: TxPath,
        ring: TxRingSize,
        max_frame: usize,
        qdisc_bypass: bool,
    ) -> Result<Transmitter, PortError> {
        let sock = PacketSocket::new(iface)?;
        let one: libc::c_int = 1;
        // Drop malformed frames instead of stalling the ring on them.
        sock.set(libc::PACKET_LOSS, &one, "PACKET_LOSS")?;
        if qdisc_bypass {
            sock.set(libc::PACKET_QDISC_BYPASS, &one, "PACKET_QDISC_BYPASS")?;
        }
        let ring = match path {
            TxPath::Ring => Some(TxRing::new(&sock, ring, max_frame, iface)?),
            TxPath::Sendmmsg => None,
        };
        sock.bind(ifindex, false)?;
        Ok(Transmitter {
            sock,
            ring,
            pending: false,
            max_frame,
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
            let res = if len > self.max_frame {
                Err(TxRefused::TooLarge)
            } else {
                ring.push(len, buf.segments())
            };
            match res {
                Ok(()) => {
                    queued += 1;
                    stats.tx_packets += 1;
                    stats.tx_bytes += len as u64;
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
            let mut iov: ArrayVec<libc::iovec, SENDMMSG_SEGMENTS> = ArrayVec::new();
            // (first iovec, iovec count, bytes) per frame of this batch.
            let mut frames: ArrayVec<(usize, usize, usize), SENDMMSG_BATCH> = ArrayVec::new();
            for buf in &tx.as_slice()[taken..] {
                let len = buf.total_len();
                if len > self.max_frame {
                    if frames.is_empty() {
                        // Drop it here; the batch starts after it.
                        stats.tx_oversize += 1;
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
                stats.tx_errors += 1;
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
            match self.sock.send_batch(&mut msgs) {
                Ok(n) => {
                    for &(_, _, len) in &frames[..n] {
                        stats.tx_packets += 1;
                        stats.tx_bytes += len as u64;
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

/// The raw transmit side of one queue, as offload requests see it: the
/// device offloads nothing, TSO segments come from the port's pool.
pub(super) struct AfPacketTx<'a> {
    pub(super) tx: &'a mut Transmitter,
    pub(super) stats: &'a mut AfPacketStats,
    pub(super) pool: &'a Pool,
}

impl TxDevice<PoolBuf> for AfPacketTx<'_> {
    fn tx_offloads(&self) -> Offloads {
        Offloads::default()
    }

    #[inline]
    fn send<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        self.tx.send(tx, self.stats)
    }

    fn alloc_segment(&mut self) -> Option<PoolBuf> {
        self.pool.alloc()
    }

    /// The ring copies every segment into its frame; `sendmmsg` gathers up
    /// to this many iovecs per call.
    fn max_segments(&self) -> usize {
        SENDMMSG_SEGMENTS
    }
}
