//! [`PoolBuf`]: one buffer of a [`Pool`](super::Pool), owned by value.

use core::fmt;
use core::ptr::NonNull;

use super::{cache, PoolInner};
use crate::buf::{bounds, BufError, Meta, PacketBuf};
use crate::header::{Bytes, BytesMut};

/// The control block at the start of every buffer, followed by the room
/// (headroom, data, tailroom). One cache line, so a packet's metadata and
/// bookkeeping cost one miss.
#[repr(C, align(64))]
pub(super) struct BufHdr {
    /// The pool the buffer belongs to; valid while the buffer is out of its
    /// pool's shared free list (the pool counts such buffers as references).
    pub(super) pool: NonNull<PoolInner>,
    /// Offset of the first data byte from the start of the room.
    pub(super) data_off: u32,
    /// Length of the data.
    pub(super) data_len: u32,
    /// Size of the room (headroom + data room).
    pub(super) room: u32,
    /// Per-packet metadata.
    pub(super) meta: Meta,
}

/// Bytes from the start of a buffer to the start of its room.
pub(super) const HDR_SIZE: usize = core::mem::size_of::<BufHdr>();

/// A raw pointer to a buffer header, movable between threads inside the pool's
/// bookkeeping (free lists, caches). Only the pool creates and consumes these.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct BufPtr(pub(super) NonNull<BufHdr>);

// SAFETY: a `BufPtr` is an exclusive token for a free (or just-allocated)
// buffer; whoever holds it is the only one touching that buffer, whatever the
// thread.
unsafe impl Send for BufPtr {}

/// A packet buffer from a [`Pool`](super::Pool): headroom in front of the
/// data, tailroom behind it, and [`Meta`]data. Dropping it returns it to its
/// pool (through the dropping thread's cache).
///
/// `PoolBuf` is one pointer wide, `Send` and `Sync`: a buffer may be dropped
/// on another thread than the one that allocated it.
///
/// ```
/// use tpa::buf::{BufferPool, PacketBuf, Pool, PoolConfig};
/// let pool = Pool::new(PoolConfig { capacity: 64, ..PoolConfig::default() }).unwrap();
/// let mut b = pool.alloc().unwrap();
/// b.extend_from_slice(b"payload").unwrap();
/// b.prepend(4).unwrap().copy_from_slice(b"hdr:");
/// assert_eq!(b.data(), b"hdr:payload");
/// assert_eq!(b.headroom(), 128 - 4);
/// drop(b);
/// pool.assert_whole();
/// ```
pub struct PoolBuf {
    hdr: NonNull<BufHdr>,
}

// SAFETY: a `PoolBuf` exclusively owns its buffer; the pool it returns to on
// drop is thread-safe (shared free list behind a mutex, caches per thread).
unsafe impl Send for PoolBuf {}
// SAFETY: `&PoolBuf` only gives shared reads of the exclusively owned buffer.
unsafe impl Sync for PoolBuf {}

impl PoolBuf {
    /// Takes ownership of a freshly allocated buffer and resets it to empty
    /// with the pool's headroom and default metadata.
    ///
    /// # Safety
    /// `p` must be a buffer just taken from `pool`'s free lists, owned by no
    /// one else.
    #[inline]
    pub(super) unsafe fn from_fresh(p: BufPtr, headroom: u32) -> PoolBuf {
        // SAFETY: the caller hands over exclusive ownership of the buffer.
        let hdr = unsafe { &mut *p.0.as_ptr() };
        hdr.data_off = headroom;
        hdr.data_len = 0;
        hdr.meta = Meta::default();
        PoolBuf { hdr: p.0 }
    }

    #[inline]
    fn hdr(&self) -> &BufHdr {
        // SAFETY: `self` owns the buffer exclusively and the pool (kept alive
        // by this outstanding buffer) keeps the region mapped.
        unsafe { self.hdr.as_ref() }
    }

    #[inline]
    fn hdr_mut(&mut self) -> &mut BufHdr {
        // SAFETY: as in `hdr`, and `&mut self` makes the access unique.
        unsafe { self.hdr.as_mut() }
    }

    /// The start of the room, right after the header.
    #[inline]
    fn room_ptr(&self) -> *mut u8 {
        // SAFETY: the room follows the header inside the same buffer slot.
        unsafe { self.hdr.as_ptr().cast::<u8>().add(HDR_SIZE) }
    }

    /// Bytes `off..off+len` of the room.
    #[inline]
    fn room_slice(&self, off: u32, len: u32) -> &[u8] {
        debug_assert!(off as usize + len as usize <= self.hdr().room as usize);
        // SAFETY: `off + len <= room` is kept by every mutator; the room is
        // initialised memory (zero-filled mapping, only ever written since)
        // owned by this buffer.
        unsafe { core::slice::from_raw_parts(self.room_ptr().add(off as usize), len as usize) }
    }

    /// Bytes `off..off+len` of the room, writable.
    #[inline]
    fn room_slice_mut(&mut self, off: u32, len: u32) -> &mut [u8] {
        debug_assert!(off as usize + len as usize <= self.hdr().room as usize);
        // SAFETY: as in `room_slice`; `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.room_ptr().add(off as usize), len as usize) }
    }

    /// The whole room size: headroom + data + tailroom.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.hdr().room as usize
    }

    /// Empties the buffer: no data, the given headroom, default metadata.
    ///
    /// `headroom` is clamped to the room size.
    #[inline]
    pub fn reset(&mut self, headroom: usize) {
        let h = self.hdr_mut();
        h.data_off = (headroom as u32).min(h.room);
        h.data_len = 0;
        h.meta = Meta::default();
    }

    /// Appends `bytes` behind the data.
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> Result<(), BufError> {
        self.append(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Sets the data length to `len`, keeping the data start: shrinks, or
    /// grows into the tailroom (the new bytes are whatever the buffer held).
    #[inline]
    pub fn set_len(&mut self, len: usize) -> Result<(), BufError> {
        let cur = self.len();
        if len >= cur {
            self.append(len - cur).map(|_| ())
        } else {
            self.trim_back(cur - len)
        }
    }

    /// A new buffer from the same pool holding the same data at the same
    /// headroom, and the same metadata. `None` when the pool is empty.
    pub fn copy(&self) -> Option<PoolBuf> {
        let h = self.hdr();
        // SAFETY: this outstanding buffer keeps its pool alive, and its
        // header holds the pool's owning pointer.
        let mut c = unsafe { cache::alloc_one(h.pool) }?;
        let (off, len) = (h.data_off, h.data_len);
        let ch = c.hdr_mut();
        ch.data_off = off;
        ch.data_len = len;
        ch.meta = h.meta;
        c.room_slice_mut(off, len)
            .copy_from_slice(self.room_slice(off, len));
        Some(c)
    }

    /// Gives up ownership without returning the buffer to the pool.
    #[inline]
    pub(super) fn into_raw(self) -> BufPtr {
        let p = BufPtr(self.hdr);
        core::mem::forget(self);
        p
    }

    /// Frees many buffers at once, amortising the per-thread cache lookup.
    /// Equivalent to dropping each.
    pub fn free_bulk<I: IntoIterator<Item = PoolBuf>>(bufs: I) {
        cache::free_many(bufs.into_iter().map(PoolBuf::into_raw));
    }
}

impl PacketBuf for PoolBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        let h = self.hdr();
        self.room_slice(h.data_off, h.data_len)
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let (off, len) = (self.hdr().data_off, self.hdr().data_len);
        self.room_slice_mut(off, len)
    }

    #[inline]
    fn headroom(&self) -> usize {
        self.hdr().data_off as usize
    }

    #[inline]
    fn tailroom(&self) -> usize {
        let h = self.hdr();
        (h.room - h.data_off - h.data_len) as usize
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        bounds::headroom(n, self.headroom())?;
        let h = self.hdr_mut();
        h.data_off -= n as u32;
        h.data_len += n as u32;
        let off = h.data_off;
        Ok(self.room_slice_mut(off, n as u32))
    }

    #[inline]
    fn append(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        bounds::tailroom(n, self.tailroom())?;
        let h = self.hdr_mut();
        let off = h.data_off + h.data_len;
        h.data_len += n as u32;
        Ok(self.room_slice_mut(off, n as u32))
    }

    #[inline]
    fn trim_front(&mut self, n: usize) -> Result<(), BufError> {
        bounds::data(n, self.len())?;
        let h = self.hdr_mut();
        h.data_off += n as u32;
        h.data_len -= n as u32;
        Ok(())
    }

    #[inline]
    fn trim_back(&mut self, n: usize) -> Result<(), BufError> {
        bounds::data(n, self.len())?;
        self.hdr_mut().data_len -= n as u32;
        Ok(())
    }

    #[inline]
    fn meta(&self) -> &Meta {
        &self.hdr().meta
    }

    #[inline]
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.hdr_mut().meta
    }

    #[inline]
    fn len(&self) -> usize {
        self.hdr().data_len as usize
    }
}

impl AsRef<[u8]> for PoolBuf {
    /// The packet data, as [`PacketBuf::data`].
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl AsMut<[u8]> for PoolBuf {
    /// The packet data, as [`PacketBuf::data_mut`].
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        self.data_mut()
    }
}

// SAFETY: the data can only be resized through `&mut PoolBuf`; a view that
// owns the buffer never resizes it, so `as_ref` keeps returning the same bytes.
unsafe impl Bytes for PoolBuf {}
// SAFETY: as above; `as_mut` returns the same bytes as `as_ref`.
unsafe impl BytesMut for PoolBuf {}
// SAFETY: a shared borrow allows no resizing (no interior mutability).
unsafe impl Bytes for &PoolBuf {}
// SAFETY: the view holds the only borrow, through which it never resizes.
unsafe impl Bytes for &mut PoolBuf {}
// SAFETY: as above; `as_mut` returns the same bytes as `as_ref`.
unsafe impl BytesMut for &mut PoolBuf {}

impl Drop for PoolBuf {
    #[inline]
    fn drop(&mut self) {
        cache::free_one(BufPtr(self.hdr));
    }
}

impl fmt::Debug for PoolBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuf")
            .field("len", &self.len())
            .field("headroom", &self.headroom())
            .field("tailroom", &self.tailroom())
            .field("meta", self.meta())
            .finish()
    }
}
