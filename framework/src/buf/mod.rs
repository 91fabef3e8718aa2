//! Packet buffers.
//!
//! Every backend hands packets to the pipeline as a type implementing
//! [`PacketBuf`]: tpa's own pool buffers for the pure-Rust ports, DPDK mbufs
//! for the DPDK port. A buffer owns a contiguous data region with headroom in
//! front (to prepend headers without copying) and tailroom behind, plus
//! [`Meta`]data filled by the port on receive. Dropping a buffer returns it to
//! its pool.
//!
//! Buffers are reference counted per segment and can be chained: a packet
//! is a writable first segment, owned alone, followed by segments that may be
//! [`Shared`] with other holders (a copy kept for retransmission). The rules
//! are on [`PacketBuf`] and in `doc/internals/buffers.md`.

pub(crate) mod bounds;
mod budget;
mod chain;
mod lending;
mod meta;
mod pool;
mod shared;

pub use budget::{ByteBudget, OverBudget};
pub use chain::{linearize, LinearizeError};
pub use lending::{BufSource, BufferPool, Pooled};
pub use meta::{ChecksumStatus, L4Protocol, LayerOffsets, Meta, TxRequest};
#[cfg(feature = "af_xdp")]
pub(crate) use pool::RegionLayout;
pub use pool::{Pool, PoolBuf, PoolConfig, PoolError, PoolStats};
pub use shared::{Shared, TooManyRefs};

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
    /// The segment to change is shared with another holder (its reference
    /// count is above one): shared bytes are never written.
    Shared,
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
            BufError::Shared => f.write_str("the segment is shared and cannot be changed"),
        }
    }
}

impl std::error::Error for BufError {}

/// A packet in a buffer that came from (and returns to) a pool.
///
/// The data region is `data()`; bytes can be added in front
/// ([`prepend`](PacketBuf::prepend)) or behind ([`append`](PacketBuf::append))
/// and removed from either end ([`trim_front`](PacketBuf::trim_front),
/// [`trim_back`](PacketBuf::trim_back)) without copying. A packet may be a
/// chain of segments ([`chain`](PacketBuf::chain),
/// [`segments`](PacketBuf::segments)); `data()` is always the first one.
///
/// # Sharing and chains: the rules
///
/// - **Counts are per segment and atomic.** Every segment carries a
///   reference count; a holder of a chain holds one reference on each of its
///   segments (DPDK's mbuf model, which tpa's pool follows). Counts are
///   atomic because buffers are `Send`: a clone may be dropped on another
///   worker. A buffer held alone (count 1) frees without an atomic
///   read-modify-write, so unshared packets pay one load for the counting.
/// - **A value of this type owns its first segment alone.** Only
///   [`Shared`] handles (from [`share`](PacketBuf::share)) can be cloned;
///   they give read access only. Writes are therefore refused at the type
///   level, not copied on write: `data_mut`, `prepend`, `trim_front` and
///   `meta_mut` need `&mut` of an unshared first segment, which a
///   `Shared` never lends. [`Shared::try_unique`] turns a handle back into
///   a writable buffer once it is the last. (Copy-on-write was rejected: a
///   copy needs a free buffer, so every write would become fallible and
///   could allocate on the fast path.)
/// - **Segments after the first may be shared** (a header segment chained
///   in front of data held for retransmission). They are read-only: `append`
///   and `trim_back`, which change the last segment, return
///   [`BufError::Shared`] when it is shared, and a tail cannot be chained
///   behind a shared last segment.
/// - **Dropping** releases one reference on every segment; a segment goes
///   back to its pool when its last reference goes, on whatever thread that
///   happens (for tpa's pool, into that thread's cache, see [`Pool`]).
pub trait PacketBuf: Pooled {
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
    fn segments(&self) -> impl Iterator<Item = &[u8]>;

    /// Number of segments (1 for a buffer that is not chained).
    fn segment_count(&self) -> usize;

    /// Starts loading into the CPU's cache what handling the packet reads
    /// first (its first bytes, the next segment's bookkeeping), without
    /// waiting for it: a burst's loop calls it for the next packet while
    /// it handles the current one. A hint: the packet is not changed. The
    /// default does nothing.
    #[inline(always)]
    fn prefetch(&self) {}

    /// Starts loading the buffer's own bookkeeping (its length, offsets
    /// and references), not its data, without waiting for it: for a
    /// buffer about to be handed on by reference, whose bytes the caller
    /// does not read. A hint; the default does nothing.
    #[inline(always)]
    fn prefetch_meta(&self) {}

    /// Whether more segments follow the first.
    #[inline]
    fn is_chained(&self) -> bool {
        self.segment_count() > 1
    }

    /// References held on the first segment (1: held by this value alone;
    /// more while [`Shared`] clones of it exist).
    fn ref_count(&self) -> usize;

    /// Appends `tail` (a chain of its own) behind the last segment, without
    /// copying. Gives `tail` back when the last segment is shared or the
    /// chain would grow past the backend's limits (65535 segments, or
    /// `u32::MAX` bytes for mbufs).
    fn chain(&mut self, tail: Self) -> Result<(), Self>;

    /// Appends a shared `tail` behind the last segment, without copying:
    /// e.g. a fresh header segment in front of data held for
    /// retransmission. The chain takes over `tail`'s references. Gives it
    /// back when [`chain`](PacketBuf::chain) would.
    #[inline]
    fn chain_shared(&mut self, tail: Shared<Self>) -> Result<(), Shared<Self>> {
        // Linking reads nothing of the tail's bytes and writes none: the
        // references simply move from the handle into the chain.
        self.chain(tail.into_inner()).map_err(Shared::from_inner)
    }

    /// Appends another holder of `tail` behind the last segment, without
    /// copying: [`chain_shared`](PacketBuf::chain_shared) of a clone of
    /// `tail`, in one step where the backend can. [`BufError::Shared`], and
    /// nothing linked, when `chain_shared` would give the clone back.
    /// `tail` is borrowed mutably: while the caller's handle is its only
    /// holder, no one else can reach its count, and a backend may add the
    /// reference without a locked instruction.
    ///
    /// # Panics
    /// As cloning `tail`, when one of its segments already holds the most
    /// references a count can.
    #[inline]
    fn chain_clone(&mut self, tail: &mut Shared<Self>) -> Result<(), BufError> {
        self.chain_shared(tail.clone())
            .map_err(|_| BufError::Shared)
    }

    /// Detaches every segment after the first and returns them (`None` when
    /// there were none).
    fn unchain(&mut self) -> Option<Shared<Self>>;

    /// Empties the buffer into the state its pool hands a new one out in
    /// (no data, the pool's headroom, default metadata), so that it can
    /// serve as a new buffer without a trip through the pool; `false`, and
    /// the buffer unchanged, when it is chained or the backend does not
    /// recycle (the default).
    #[inline]
    fn recycle(&mut self) -> bool {
        false
    }

    /// Freezes the buffer into a [`Shared`] handle, which can be cloned to
    /// hold the packet in several places without copying it.
    #[inline]
    fn share(self) -> Shared<Self> {
        Shared::new(self)
    }

    /// Adds one reference to every segment and returns a second value
    /// holding them, or adds none (returning [`TooManyRefs`]) when a count is
    /// already at its maximum.
    ///
    /// # Safety
    /// The value returned shares its first segment: the caller must only
    /// read it, as [`Shared`] does (the one caller).
    #[doc(hidden)]
    unsafe fn clone_ref(&self) -> Result<Self, TooManyRefs>;
}

/// The pool type of buffer type `B`.
pub type PoolOf<B> = <B as Pooled>::Pool;
