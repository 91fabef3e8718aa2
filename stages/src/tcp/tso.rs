//! TCP segmentation offload on the way out: consecutive data segments a
//! connection sends in one turn leave as one super-segment of up to
//! 64 KiB, which the port cuts back into segments (a TSO request in
//! `Meta::tx`).
//!
//! The engine is unchanged: it still forms, counts and tracks one segment
//! per send-queue chunk (cwnd, RACK, the SACK scoreboard and
//! retransmissions stay per segment). The output path only joins what
//! the engine produced back to back: segments that follow each other in
//! sequence space, carry the same ACK, window and options, only ACK (and
//! PSH) among their flags, and all but the last a full segment of the
//! first one's size, which becomes the segment size asked of the port.
//! The port cuts the payload at that size, so the kernel (or the wire)
//! sees the very segments the engine made.
//!
//! The send queue's chunks are shared with the queue (held for
//! retransmission), so they cannot be linked into one chain: their bytes
//! are copied into fresh buffers behind the header. On a TAP or
//! AF_PACKET port, which copy every frame into the kernel anyway, the
//! copy costs far less than the system call and the kernel's work per
//! frame it saves.

use tpa::buf::{L4Protocol, PacketBuf};
use tpa::stage::Cx;
use tpa::state::Part;
use tpa::wire::tcp::TcpFlags;

use super::segment::SegmentOut;
use super::wire::{send_tcp_packet, write_header, FourTuple};
use crate::egress::{Egress, Sent};
use tpa::app::SocketError;

/// The most payload bytes of one super-segment: IPv4's 16-bit total
/// length less its header and the largest TCP header.
pub const MAX_PAYLOAD: usize = u16::MAX as usize - 20 - 60;

/// Whether `seg` may start or join a super-segment: data, only ACK and
/// PSH set, no options of a handshake and no SACK blocks.
#[inline]
pub fn joinable<B: PacketBuf>(seg: &SegmentOut<B>) -> bool {
    let flags = seg.flags.0 & !TcpFlags::PSH.0;
    flags == TcpFlags::ACK.0
        && seg.data_len() > 0
        && seg.options.sack.is_none()
        && seg.options.mss.is_none()
        && seg.options.window_scale.is_none()
        && !seg.options.sack_permitted
}

/// A super-segment being built: the header of its first segment and the
/// payload bytes of all, copied into a chain of fresh buffers.
pub struct Batch<B: PacketBuf> {
    /// The header buffer, with the full buffers of payload chained.
    frame: B,
    /// The buffer being filled, chained at the end.
    filling: Option<B>,
    /// Where the header's flags byte is in `frame`.
    flags_at: usize,
    first: SegmentOut<B>,
    /// The sequence number the next segment must start at.
    next_seq: u32,
    /// The segment size: the first segment's payload bytes.
    size: u32,
    /// The last segment's payload bytes.
    last_len: u32,
    payload: usize,
    segments: u32,
    psh: bool,
    /// Buffers the frame may have, at most.
    max_buffers: usize,
    buffers: usize,
    /// Bytes a fresh buffer holds.
    buffer_room: usize,
}

impl<B: PacketBuf> Batch<B> {
    /// Whether `seg` may join: it starts where the batch ends, matches the
    /// first segment's ACK, window and options, is no larger than the
    /// segment size, follows a full segment, and keeps the payload within
    /// [`MAX_PAYLOAD`].
    pub fn accepts(&self, seg: &SegmentOut<B>) -> bool {
        let len = seg.data_len();
        joinable(seg)
            && seg.seq.get() == self.next_seq
            && seg.ack == self.first.ack
            && seg.window == self.first.window
            && seg.options == self.first.options
            && self.last_len == self.size
            && len <= self.size
            && self.payload + len as usize <= MAX_PAYLOAD
    }

    /// Whether `second` may follow `first` (both [`joinable`]) so that a
    /// batch is worth starting.
    pub fn pair(first: &SegmentOut<B>, second: &SegmentOut<B>) -> bool {
        let size = first.data_len();
        joinable(first)
            && joinable(second)
            && second.seq.get() == first.seq.get().wrapping_add(size)
            && second.ack == first.ack
            && second.window == first.window
            && second.options == first.options
            && second.data_len() <= size
    }

    /// Starts a batch with `first` (its header written, its payload
    /// copied); `max_buffers` bounds the frame's chain.
    ///
    /// # Errors
    ///
    /// [`NoBuffers`](SocketError::NoBuffers) when the pool is empty.
    pub fn start<S>(
        cx: &mut Cx<'_, B, S>,
        tuple: &FourTuple,
        mut first: SegmentOut<B>,
        max_buffers: usize,
    ) -> Result<Self, SocketError> {
        let mut frame = cx.alloc().ok_or(SocketError::NoBuffers)?;
        let buffer_room = frame.tailroom();
        write_header(&mut frame, tuple, &first)?;
        let payload = first.payload.take();
        let size = payload.as_ref().map_or(0, |p| p.total_len() as u32);
        let mut batch = Batch {
            frame,
            filling: None,
            flags_at: 13,
            next_seq: first.seq.get().wrapping_add(size),
            size,
            last_len: size,
            payload: size as usize,
            segments: 1,
            psh: first.flags.psh(),
            first,
            max_buffers: max_buffers.max(2),
            buffers: 1,
            buffer_room: buffer_room.max(1),
        };
        if let Some(p) = payload {
            batch.copy(cx, &p)?;
        }
        Ok(batch)
    }

    /// Adds `seg` (which [`accepts`](Self::accepts) took) to the batch.
    ///
    /// # Errors
    ///
    /// [`NoBuffers`](SocketError::NoBuffers) when the pool is empty or
    /// the chain would be too long; the batch keeps what it had, and the
    /// segment is lost to the wire (its retransmission recovers it).
    pub fn push<S>(
        &mut self,
        cx: &mut Cx<'_, B, S>,
        mut seg: SegmentOut<B>,
    ) -> Result<(), SocketError> {
        let Some(p) = seg.payload.take() else {
            return Ok(());
        };
        let len = p.total_len();
        let need = len.saturating_sub(self.room()).div_ceil(self.buffer_room);
        if self.buffers + need > self.max_buffers {
            return Err(SocketError::NoBuffers);
        }
        self.copy(cx, &p)?;
        self.next_seq = self.next_seq.wrapping_add(len as u32);
        self.last_len = len as u32;
        self.payload += len;
        self.segments += 1;
        self.psh |= seg.flags.psh();
        Ok(())
    }

    /// Segments joined so far.
    pub fn segments(&self) -> u32 {
        self.segments
    }

    /// Sends the super-segment from `tuple.local` to `tuple.remote` with a
    /// TSO request of the batch's segment size (one segment: none), PSH
    /// set when any of its segments had it.
    ///
    /// # Errors
    ///
    /// As [`send_tcp_packet`].
    pub fn send<S: Part<Egress<B>>>(
        mut self,
        cx: &mut Cx<'_, B, S>,
        tuple: &FourTuple,
    ) -> Result<Sent, SocketError> {
        if let Some(last) = self.filling.take() {
            self.frame.chain(last).map_err(|_| SocketError::NoBuffers)?;
        }
        if self.psh {
            self.frame.data_mut()[self.flags_at] |= TcpFlags::PSH.0;
        }
        let meta = self.frame.meta_mut();
        meta.tx.clear();
        meta.tx.request_l4_checksum(L4Protocol::Tcp);
        if self.segments > 1 {
            // `size` is one segment's payload: at most an MSS, < 64 KiB.
            meta.tx.request_tso(self.size as u16);
        }
        send_tcp_packet(cx, tuple, self.frame)
    }

    /// Room left in the buffer being filled (or the header buffer).
    fn room(&self) -> usize {
        match &self.filling {
            Some(b) => b.tailroom(),
            None => self.frame.tailroom(),
        }
    }

    /// Copies `payload`'s bytes behind the frame's, taking fresh buffers
    /// as they fill.
    fn copy<S>(&mut self, cx: &mut Cx<'_, B, S>, payload: &B) -> Result<(), SocketError> {
        for piece in payload.segments() {
            let mut rest = piece;
            while !rest.is_empty() {
                if self.room() == 0 {
                    let fresh = cx.alloc().ok_or(SocketError::NoBuffers)?;
                    if let Some(full) = self.filling.replace(fresh) {
                        self.frame.chain(full).map_err(|_| SocketError::NoBuffers)?;
                    }
                    self.buffers += 1;
                }
                let target = match &mut self.filling {
                    Some(b) => b,
                    None => &mut self.frame,
                };
                let n = rest.len().min(target.tailroom());
                target
                    .append(n)
                    .map_err(|_| SocketError::NoBuffers)?
                    .copy_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
        }
        Ok(())
    }
}
