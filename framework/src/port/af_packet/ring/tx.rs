//! The TPACKET_V2 transmit ring: fixed frame slots that we fill and mark,
//! and the kernel sends on the next flush (`sendto(NULL, 0)`).

use std::sync::atomic::Ordering;

use super::{Mapping, SlotLayout};
use crate::port::af_packet::socket::PacketSocket;
use crate::port::PortError;

/// Where the frame data starts in a TX frame: after the aligned V2 header
/// (`TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`).
const TX_DATA_OFFSET: usize = (std::mem::size_of::<libc::tpacket2_hdr>() + libc::TPACKET_ALIGNMENT
    - 1)
    & !(libc::TPACKET_ALIGNMENT - 1);

/// Sizes of a TPACKET_V2 transmit ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRingSize {
    /// Frames in the ring (rounded up to fill whole blocks).
    pub frame_count: u32,
}

impl Default for TxRingSize {
    fn default() -> Self {
        TxRingSize { frame_count: 1024 }
    }
}

/// Why a frame was not queued for transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxRefused {
    /// No free frame slot: the kernel is still sending earlier frames.
    Full,
    /// The packet is larger than a frame slot.
    TooLarge,
}

/// A TPACKET_V2 transmit ring.
#[derive(Debug)]
pub(crate) struct TxRing {
    map: Mapping,
    layout: SlotLayout,
    frame_count: usize,
    /// The next frame slot to fill.
    head: usize,
}

impl TxRing {
    /// Sets up and maps a V2 transmit ring on `sock` for frames of up to
    /// `max_frame` bytes.
    pub(crate) fn new(
        sock: &PacketSocket,
        size: TxRingSize,
        max_frame: usize,
        iface: &str,
    ) -> Result<Self, PortError> {
        let version = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
        sock.set(libc::PACKET_VERSION, &version, "PACKET_VERSION(V2)")?;
        let layout = SlotLayout::new(TX_DATA_OFFSET, max_frame, size.frame_count);
        sock.set(libc::PACKET_TX_RING, &layout.request(), "PACKET_TX_RING")?;
        Ok(TxRing {
            map: Mapping::new(sock, layout.bytes(), iface)?,
            frame_count: layout.frame_count(),
            layout,
            head: 0,
        })
    }

    /// The largest frame a slot holds.
    pub(crate) fn max_frame(&self) -> usize {
        self.layout.frame_size - TX_DATA_OFFSET
    }

    /// Copies `prefix` (a `virtio_net_hdr` on a socket with
    /// `PACKET_VNET_HDR`, else empty) and a packet made of `segments`
    /// (total `len` bytes) into the next free slot and marks it for
    /// sending. The kernel sends it on the next `kick_tx`.
    pub(crate) fn push<'a>(
        &mut self,
        prefix: &'a [u8],
        len: usize,
        segments: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(), TxRefused> {
        let len = prefix.len() + len;
        if len > self.max_frame() {
            return Err(TxRefused::TooLarge);
        }
        let off = self.layout.offset(self.head);
        let status = self.map.status(off);
        if status.load(Ordering::Acquire) != libc::TP_STATUS_AVAILABLE {
            return Err(TxRefused::Full);
        }
        let mut at = off + TX_DATA_OFFSET;
        let end = at + len;
        for seg in std::iter::once(prefix).chain(segments) {
            let n = seg.len().min(end - at);
            // SAFETY: the slot is ours (status AVAILABLE, acquired) and
            // `at..at + n` stays within its data area (`len <= max_frame`,
            // and `n` is capped at what is left of `len`).
            unsafe {
                std::ptr::copy_nonoverlapping(seg.as_ptr(), self.map.base.as_ptr().add(at), n);
            }
            at += n;
        }
        let written = at - (off + TX_DATA_OFFSET);
        // SAFETY: `tp_len` is the second u32 of the slot's header, which is
        // ours until the release store below.
        unsafe {
            self.map
                .base
                .as_ptr()
                .add(off + 4)
                .cast::<u32>()
                .write(written as u32);
        }
        status.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.head = (self.head + 1) % self.frame_count;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_data_follows_the_aligned_v2_header() {
        // TPACKET2_HDRLEN - sizeof(sockaddr_ll), as the kernel computes it.
        assert_eq!(
            TX_DATA_OFFSET,
            libc::TPACKET2_HDRLEN - std::mem::size_of::<libc::sockaddr_ll>()
        );
        assert_eq!(TX_DATA_OFFSET % libc::TPACKET_ALIGNMENT, 0);
    }
}
