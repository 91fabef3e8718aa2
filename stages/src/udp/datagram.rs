//! A received datagram, held zero-copy: the frame it arrived in, where its
//! payload lies, and who sent it to which of our addresses.

use std::net::SocketAddr;

use tpa::buf::{Meta, PacketBuf};

/// One datagram handed to the application: the received buffer itself
/// (no copy), the payload's place in it and the two endpoints. Dropping
/// it releases the buffer to its pool.
///
/// For an echo without a copy, [`into_payload`](Datagram::into_payload)
/// turns it into a buffer holding just the payload, with the headers'
/// room free in front for [`send_buf_to`](super::send_buf_to) to prepend
/// new ones.
#[derive(Debug)]
pub struct Datagram<B> {
    buf: B,
    offset: usize,
    len: usize,
    from: SocketAddr,
    to: SocketAddr,
}

impl<B: PacketBuf> Datagram<B> {
    /// The datagram whose payload is `buf.data()[offset..offset + len]`,
    /// sent by `from` to our `to`.
    ///
    /// # Panics
    ///
    /// Never: a range beyond the data reads as an empty payload.
    #[inline]
    pub fn new(buf: B, offset: usize, len: usize, from: SocketAddr, to: SocketAddr) -> Self {
        let (offset, len) = if offset.checked_add(len).is_some_and(|end| end <= buf.len()) {
            (offset, len)
        } else {
            (0, 0)
        };
        Datagram {
            buf,
            offset,
            len,
            from,
            to,
        }
    }

    /// The payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buf.data()[self.offset..self.offset + self.len]
    }

    /// The payload's length.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sender's address and port.
    #[inline]
    pub fn from(&self) -> SocketAddr {
        self.from
    }

    /// Our address and port it was sent to (the socket's own address, or
    /// which of ours when the socket is bound to the unspecified address).
    #[inline]
    pub fn to(&self) -> SocketAddr {
        self.to
    }

    /// The whole received frame, headers included.
    #[inline]
    pub fn buf(&self) -> &B {
        &self.buf
    }

    /// What the datagram costs its socket's receive budget: its frame's
    /// bytes, at least [`MIN_CHARGE`], so a flood of empty datagrams cannot
    /// hold thousands of buffers under a byte limit.
    #[inline]
    pub(crate) fn charge(&self) -> usize {
        self.buf.total_len().max(MIN_CHARGE)
    }

    /// The buffer with the headers and link-layer padding cut off: its data
    /// is the payload, the headers' room is headroom again and its metadata
    /// is reset, ready for [`send_buf_to`](super::send_buf_to) (an echo
    /// without a copy).
    #[inline]
    pub fn into_payload(self) -> B {
        let mut buf = self.buf;
        let tail = buf.len() - self.offset - self.len;
        // Both cuts are within the first segment's data (checked in `new`),
        // so neither can fail; a chained tail goes with the cut.
        drop(buf.unchain());
        let _ = buf.trim_back(tail);
        let _ = buf.trim_front(self.offset);
        *buf.meta_mut() = Meta::default();
        buf
    }

    /// The received frame, headers included.
    #[inline]
    pub fn into_buf(self) -> B {
        self.buf
    }
}

/// The least a datagram costs a receive budget, in bytes.
pub const MIN_CHARGE: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{frame, pool, BufferPool};

    #[test]
    fn the_payload_and_the_payload_buffer_agree() {
        let bytes: Vec<u8> = (0..60).collect();
        let mut buf = frame(&bytes);
        buf.meta_mut().layers.l3 = 14;
        let headroom = buf.headroom();
        let from: SocketAddr = "192.0.2.2:1000".parse().unwrap();
        let to: SocketAddr = "192.0.2.1:7".parse().unwrap();
        let d = Datagram::new(buf, 42, 5, from, to);
        assert_eq!(d.payload(), &[42, 43, 44, 45, 46]);
        assert_eq!((d.from(), d.to(), d.len()), (from, to, 5));
        assert_eq!(d.charge(), MIN_CHARGE);
        let buf = d.into_payload();
        assert_eq!(buf.data(), &[42, 43, 44, 45, 46]);
        assert_eq!(buf.headroom(), headroom + 42);
        assert_eq!(*buf.meta(), Meta::default());
        drop(buf);
        pool().assert_whole();
    }

    #[test]
    fn a_range_beyond_the_data_reads_as_empty() {
        let d = Datagram::new(
            frame(&[1, 2, 3]),
            2,
            5,
            "[::1]:1".parse().unwrap(),
            "[::1]:2".parse().unwrap(),
        );
        assert!(d.is_empty());
        assert_eq!(d.payload(), &[] as &[u8]);
        assert!(d.into_payload().is_empty());
        pool().assert_whole();
    }
}
