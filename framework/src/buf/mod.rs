//! Packet buffers.
//!
//! Every backend hands packets to the pipeline as a type implementing
//! [`PacketBuf`]: tpa's own pool buffers for the pure-Rust ports, DPDK mbufs
//! for the DPDK port. A buffer owns a contiguous data region with headroom in
//! front (to prepend headers without copying) and tailroom behind, plus
//! [`Meta`]data filled by the port on receive. Dropping a buffer returns it to
//! its pool.

pub(crate) mod bounds;
mod lending;
mod meta;
mod pool;

pub use lending::BufferPool;
pub use meta::{ChecksumStatus, L4Protocol, LayerOffsets, Meta, TxRequest};
pub use pool::{Pool, PoolBuf, PoolConfig, PoolError, PoolStats};

#[doc = include_str!("../../../doc/internals/buffers.md")]
#[cfg(doctest)]
pub struct InternalsBuffers;

/// Why a buffer operation could not be carried out. The buffer is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufError {
    /// Not enough headroom to prepend the requested bytes.
    NoHeadroom {
        /// Bytes asked for.
        needed: usize,
        /// Headroom there was.
        available: usize,
    },
    /// Not enough tailroom to append the requested bytes.
    NoTailroom {
        /// Bytes asked for.
        needed: usize,
        /// Tailroom there was.
        available: usize,
    },
    /// Asked to remove more bytes than the packet holds.
    TooShort {
        /// Bytes asked to remove.
        needed: usize,
        /// Bytes the packet held.
        available: usize,
    },
}

impl core::fmt::Display for BufError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            BufError::NoHeadroom { needed, available } => {
                write!(f, "no headroom: need {needed} bytes, have {available}")
            }
            BufError::NoTailroom { needed, available } => {
                write!(f, "no tailroom: need {needed} bytes, have {available}")
            }
            BufError::TooShort { needed, available } => {
                write!(f, "packet too short: need {needed} bytes, have {available}")
            }
        }
    }
}

impl std::error::Error for BufError {}

/// A packet in a buffer that came from (and returns to) a pool.
///
/// The data region is `data()`; bytes can be added in front
/// ([`prepend`](PacketBuf::prepend)) or behind ([`append`](PacketBuf::append))
/// and removed from either end ([`trim_front`](PacketBuf::trim_front),
/// [`trim_back`](PacketBuf::trim_back)) without copying. Backends whose buffers
/// can be chained (DPDK) expose the extra segments through
/// [`segments`](PacketBuf::segments); `data()` is always the first segment.
pub trait PacketBuf: Sized {
    /// The bytes of the (first segment of the) packet.
    fn data(&self) -> &[u8];
    /// The bytes of the (first segment of the) packet, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Free bytes in front of the data.
    fn headroom(&self) -> usize;
    /// Free bytes behind the data.
    fn tailroom(&self) -> usize;
    /// Grows the data by `n` bytes at the front and returns them.
    fn prepend(&mut self, n: usize) -> Result<&mut [u8], BufError>;
    /// Grows the data by `n` bytes at the back and returns them.
    fn append(&mut self, n: usize) -> Result<&mut [u8], BufError>;
    /// Removes `n` bytes from the front.
    fn trim_front(&mut self, n: usize) -> Result<(), BufError>;
    /// Removes `n` bytes from the back.
    fn trim_back(&mut self, n: usize) -> Result<(), BufError>;
    /// Metadata set by the port on receive and by stages on the way.
    fn meta(&self) -> &Meta;
    /// Metadata, writable.
    fn meta_mut(&mut self) -> &mut Meta;

    /// Length of the first segment's data.
    #[inline]
    fn len(&self) -> usize {
        self.data().len()
    }
    /// Whether the packet holds no bytes.
    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Total length over all segments.
    #[inline]
    fn total_len(&self) -> usize {
        self.segments().map(<[u8]>::len).sum()
    }
    /// The data of every segment, in order. Single-segment buffers yield one.
    fn segments(&self) -> impl Iterator<Item = &[u8]> {
        core::iter::once(self.data())
    }
}
