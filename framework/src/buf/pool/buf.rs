//! [`PoolBuf`]: one buffer of a [`Pool`](super::Pool), owned by value.

use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicU16, Ordering};

use super::{cache, AllocClass, PoolInner};
use crate::buf::{bounds, BufError, Meta, PacketBuf, Shared, TooManyRefs};
use crate::header::{Bytes, BytesMut};

/// The control block at the start of every buffer, followed by the room
/// (headroom, data, tailroom). Everything an unchained packet needs is in
/// its first cache line, so its metadata and bookkeeping cost one miss; the
/// link to the next segment is in the second, read only for chains.
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
    /// Holders of this segment (of a chain through it). 1 in a free buffer.
    pub(super) refs: AtomicU16,
    /// Segments from this one to the end of its chain: 1 when `next` is
    /// `None`. Kept exact on every segment (shared ones never change).
    pub(super) nb_segs: u16,
    /// Per-packet metadata.
    pub(super) meta: Meta,
    /// The next segment of the chain; `None` in a free buffer.
    pub(super) next: Option<NonNull<BufHdr>>,
}

/// Bytes from the start of a buffer to the start of its room.
pub(super) const HDR_SIZE: usize = core::mem::size_of::<BufHdr>();

/// Bytes of the header an unchained packet touches.
#[cfg(test)]
pub(super) const HOT_SIZE: usize = core::mem::offset_of!(BufHdr, next);

/// The data of segment `h`.
///
/// # Safety
/// `h` must be a segment held by the caller for `'a`, not written meanwhile.
#[inline]
unsafe fn segment_data<'a>(h: NonNull<BufHdr>) -> &'a [u8] {
    // SAFETY: the caller holds the segment; `data_off + data_len <= room`
    // is kept by every mutator and the room follows the header in the same
    // slot, initialised (zero-filled mapping, only ever written since).
    unsafe {
        let hdr = h.as_ref();
        let start = h
            .as_ptr()
            .cast::<u8>()
            .add(HDR_SIZE + hdr.data_off as usize);
        core::slice::from_raw_parts(start, hdr.data_len as usize)
    }
}

/// The reference count of segment `h`.
///
/// # Safety
/// `h` must be a segment the caller holds a reference to.
#[inline]
unsafe fn refs<'a>(h: NonNull<BufHdr>) -> &'a AtomicU16 {
    // SAFETY: the count is only ever accessed atomically (or through
    // `&mut` of a buffer no one else holds).
    unsafe { &(*h.as_ptr()).refs }
}

/// Drops the caller's reference to segment `h`; true when it was the last
/// (the segment is then the caller's alone, to free).
///
/// # Safety
/// The caller must hold one reference to `h` and use `h` no more after a
/// `false` answer.
#[inline]
unsafe fn release_ref(h: NonNull<BufHdr>) -> bool {
    // SAFETY: the caller holds a reference.
    let r = unsafe { refs(h) };
    // Held alone: no one else can add a reference (that needs a handle),
    // so no read-modify-write. The acquire pairs with the release of the
    // holder that dropped the count to 1.
    if r.load(Ordering::Acquire) == 1 {
        return true;
    }
    if r.fetch_sub(1, Ordering::Release) == 1 {
        // As `Arc`: every other holder's use happens before the free.
        fence(Ordering::Acquire);
        return true;
    }
    false
}

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
/// on another thread than the one that allocated it. It may be the head of
/// a chain whose later segments are shared; see [`PacketBuf`] for the rules.
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

// SAFETY: a `PoolBuf` exclusively owns its first segment and holds a
// reference on the others, whose counts are atomic; the pool a segment
// returns to is thread-safe (shared free list behind a mutex, caches per
// thread).
unsafe impl Send for PoolBuf {}
// SAFETY: `&PoolBuf` only gives reads of the buffer (counts are atomic).
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
        // A free buffer is unchained with one reference: written once,
        // by the pool's setup and by the frees (a buffer freed from its
        // last holder is freed at a count of 1, `release_chain` resets a
        // shared one's), not with every allocation (`next` lives in the
        // second cache line).
        debug_assert!(hdr.nb_segs == 1 && hdr.next.is_none() && *hdr.refs.get_mut() == 1);
        PoolBuf { hdr: p.0 }
    }

    #[inline]
    fn hdr(&self) -> &BufHdr {
        // SAFETY: `self` holds the buffer and the pool (kept alive by this
        // outstanding buffer) keeps the region mapped. Shared holders only
        // read it, and update `refs` atomically.
        unsafe { self.hdr.as_ref() }
    }

    #[inline]
    fn hdr_mut(&mut self) -> &mut BufHdr {
        // SAFETY: as in `hdr`; a `PoolBuf` reachable through `&mut` holds
        // its first segment alone (only `Shared` handles share it, and they
        // lend no `&mut`), so the access is unique.
        unsafe { self.hdr.as_mut() }
    }

    /// The segments of the chain, first to last.
    #[inline]
    fn segment_ptrs(&self) -> impl Iterator<Item = NonNull<BufHdr>> + '_ {
        let mut next = Some(self.hdr);
        core::iter::from_fn(move || {
            let h = next?;
            // SAFETY: `self` holds a reference on every segment of its
            // chain; `next` of a held segment changes only through the
            // unique holder of the segment, which is not reading here.
            next = unsafe { h.as_ref() }.next;
            Some(h)
        })
    }

    /// The last segment (the first when not chained).
    #[inline]
    fn last_segment(&self) -> NonNull<BufHdr> {
        if self.hdr().nb_segs == 1 {
            return self.hdr;
        }
        self.segment_ptrs().last().unwrap_or(self.hdr)
    }

    /// The last segment, if this value is its only holder.
    #[inline]
    fn last_segment_unique(&mut self) -> Result<NonNull<BufHdr>, BufError> {
        let last = self.last_segment();
        // SAFETY: `self` holds the segment. Acquire: other holders' reads
        // happen before the caller's writes.
        if unsafe { refs(last) }.load(Ordering::Acquire) != 1 {
            return Err(BufError::Shared);
        }
        Ok(last)
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

    /// Empties the buffer: no data, the given headroom, default metadata,
    /// no chained segments.
    ///
    /// `headroom` is clamped to the room size.
    #[inline]
    pub fn reset(&mut self, headroom: usize) {
        drop(self.unchain());
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

    /// Sets the data length of the last segment (the only one unless
    /// chained) to `len`, keeping the data start: shrinks, or grows into the
    /// tailroom (the new bytes are whatever the buffer held).
    #[inline]
    pub fn set_len(&mut self, len: usize) -> Result<(), BufError> {
        // SAFETY: `self` holds its last segment; read only.
        let cur = unsafe { segment_data(self.last_segment()) }.len();
        if len >= cur {
            self.append(len - cur).map(|_| ())
        } else {
            self.trim_back(cur - len)
        }
    }

    /// A new buffer from the same pool holding the same data at the same
    /// headroom, and the same metadata; a chain is copied into one segment.
    /// `None` when the pool is empty or the chain does not fit one buffer.
    pub fn copy(&self) -> Option<PoolBuf> {
        let h = self.hdr();
        let off = h.data_off;
        let total = self.total_len();
        if off as usize + total > h.room as usize {
            return None;
        }
        // SAFETY: this outstanding buffer keeps its pool alive, and its
        // header holds the pool's owning pointer.
        let mut c = unsafe { cache::alloc_one(h.pool, AllocClass::Ordinary) }?;
        let ch = c.hdr_mut();
        ch.data_off = off;
        ch.data_len = total as u32; // <= room
        ch.meta = h.meta;
        let dst = c.room_slice_mut(off, total as u32);
        let mut at = 0;
        for seg in self.segments() {
            dst[at..at + seg.len()].copy_from_slice(seg);
            at += seg.len();
        }
        Some(c)
    }

    /// The pool this buffer's first segment belongs to.
    #[cfg(feature = "af_xdp")]
    #[inline]
    pub(super) fn pool_ptr(&self) -> NonNull<PoolInner> {
        self.hdr().pool
    }

    /// Gives the buffer up without freeing it, as the address of its
    /// header, for a device to hold (AF_XDP's rings);
    /// [`from_raw`](Self::from_raw) takes it back. `None` (and the buffer
    /// dropped) when it is chained or shared, which a device cannot hold.
    #[cfg(feature = "af_xdp")]
    #[inline]
    pub(crate) fn into_raw(self) -> Option<NonNull<u8>> {
        self.into_raw_if_simple().map(|p| p.0.cast())
    }

    /// Takes back a buffer given up by [`into_raw`](Self::into_raw), with
    /// its data set to bytes `data_off..data_off + len` of its room
    /// (clamped to the room) and default metadata.
    ///
    /// # Safety
    /// `p` must come from `into_raw` and be taken back once.
    #[cfg(feature = "af_xdp")]
    #[inline]
    pub(crate) unsafe fn from_raw(p: NonNull<u8>, data_off: usize, len: usize) -> PoolBuf {
        let mut b = PoolBuf { hdr: p.cast() };
        let h = b.hdr_mut();
        let off = (data_off as u32).min(h.room);
        h.data_off = off;
        h.data_len = (len as u32).min(h.room - off);
        h.meta = Meta::default();
        b
    }

    /// The buffer, if dropping it would free exactly its one segment.
    #[inline]
    fn into_raw_if_simple(self) -> Option<BufPtr> {
        let h = self.hdr();
        if h.nb_segs != 1 || h.refs.load(Ordering::Acquire) != 1 {
            // Chained or shared: dropping it is the general path.
            drop(self);
            return None;
        }
        let p = BufPtr(self.hdr);
        core::mem::forget(self);
        Some(p)
    }

    /// Frees many buffers at once, amortising the per-thread cache lookup.
    /// Equivalent to dropping each.
    pub fn free_bulk<I: IntoIterator<Item = PoolBuf>>(bufs: I) {
        cache::free_many(bufs.into_iter().filter_map(PoolBuf::into_raw_if_simple));
    }
}

/// Bytes of a chain's second segment that [`PacketBuf::prefetch`] asks
/// for: a full-sized TCP segment's payload on a 1500-byte MTU, rounded up
/// to whole lines.
const CHAIN_PREFETCH: usize = 1472;

/// Asks the CPU to load the cache line at `p` into its first-level cache,
/// without waiting; nothing elsewhere than on x86-64. Any address will do:
/// a prefetch never faults nor reads into the program.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn prefetch_line(p: *const u8) {
    use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: SSE, which `_mm_prefetch` needs, is part of x86-64; a
    // prefetch of any address is a hint that cannot fault.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
}

/// [`prefetch_line`] where there is no prefetch instruction to call: nothing.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn prefetch_line(p: *const u8) {
    let _ = p;
}

/// Drops one reference on every segment of the chain starting at `first`,
/// freeing those it held last. The general path of `PoolBuf`'s drop.
///
/// It takes the pointer, not the `PoolBuf`: a drop whose slow path borrows
/// the value makes the compiler keep every buffer that may be dropped
/// (each one moved through a loop that can unwind) in memory, one store
/// per packet.
///
/// # Safety
/// The caller must hold one reference on `first` (and through it on every
/// later segment) and give it up: `first` is not used afterwards.
#[cold]
#[inline(never)]
unsafe fn release_chain(first: NonNull<BufHdr>) {
    let mut next = Some(first);
    while let Some(h) = next {
        // SAFETY: the caller holds a reference on `h`: its `next` is
        // stable until that reference goes.
        next = unsafe { h.as_ref() }.next;
        // SAFETY: as above; `h` is not used after a `false`.
        if unsafe { release_ref(h) } {
            // SAFETY: the last reference was ours: the segment is ours
            // alone. Free buffers are unchained, with one reference.
            unsafe {
                let hdr = &mut *h.as_ptr();
                hdr.next = None;
                hdr.nb_segs = 1;
                *hdr.refs.get_mut() = 1;
            }
            cache::free_one(BufPtr(h));
        }
    }
}

impl PacketBuf for PoolBuf {
    #[inline]
    fn recycle(&mut self) -> bool {
        if self.hdr().nb_segs != 1 {
            return false;
        }
        // SAFETY: this outstanding buffer keeps its pool alive, and its
        // header holds the pool's owning pointer.
        let headroom = unsafe { self.hdr().pool.as_ref() }.headroom;
        let h = self.hdr_mut();
        h.data_off = headroom;
        h.data_len = 0;
        h.meta = Meta::default();
        true
    }

    /// The header's line (its data's offset and length, references).
    #[inline(always)]
    fn prefetch_meta(&self) {
        prefetch_line(self.hdr.as_ptr().cast());
    }

    /// The first two lines of data (a frame's Ethernet, IP and TCP
    /// headers) and, for a chain, the second segment's header and data.
    #[inline(always)]
    fn prefetch(&self) {
        let h = self.hdr();
        let data = self.room_ptr().wrapping_add(h.data_off as usize);
        prefetch_line(data);
        prefetch_line(data.wrapping_add(64));
        if h.nb_segs != 1 {
            if let Some(next) = h.next {
                // The second segment is a sender's chunk, shared by a
                // wire that gathers (the first holds the headers). Its
                // header is not read here (the load would wait for the
                // line being fetched): its data is taken to start where a
                // fresh buffer of this segment's pool starts it, as a
                // chunk's does, and to run a full segment's payload
                // ([`CHAIN_PREFETCH`]) where the room holds one; the
                // checksum reads it all next.
                // SAFETY: `self` holds its first segment, whose pool is
                // alive while the buffer is out.
                let pool = unsafe { h.pool.as_ref() };
                prefetch_line(next.as_ptr().cast());
                let data = next
                    .as_ptr()
                    .cast::<u8>()
                    .wrapping_add(HDR_SIZE + pool.headroom as usize);
                // A constant count (the common room holds it), so that
                // the loop unrolls into the prefetches alone.
                if pool.room.saturating_sub(pool.headroom) as usize >= CHAIN_PREFETCH {
                    for line in (0..CHAIN_PREFETCH).step_by(64) {
                        prefetch_line(data.wrapping_add(line));
                    }
                }
            }
        }
    }

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

    /// Free bytes behind the data of the last segment (where
    /// [`append`](PacketBuf::append) writes).
    #[inline]
    fn tailroom(&self) -> usize {
        // SAFETY: `self` holds its last segment; read only.
        let h = unsafe { self.last_segment().as_ref() };
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

    /// Grows the last segment by `n` bytes and returns them
    /// ([`BufError::Shared`] when that segment is shared).
    #[inline]
    fn append(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        if self.hdr().nb_segs != 1 {
            return append_to_last(self, n);
        }
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

    /// Removes `n` bytes from the back of the last segment
    /// ([`BufError::Shared`] when that segment is shared).
    #[inline]
    fn trim_back(&mut self, n: usize) -> Result<(), BufError> {
        if self.hdr().nb_segs != 1 {
            let last = self.last_segment_unique()?;
            // SAFETY: `self` is the only holder of its last segment, and
            // `&mut self` makes this the only access.
            let h = unsafe { &mut *last.as_ptr() };
            bounds::data(n, h.data_len as usize)?;
            h.data_len -= n as u32;
            return Ok(());
        }
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

    #[inline]
    fn total_len(&self) -> usize {
        if self.hdr().nb_segs == 1 {
            return self.len();
        }
        self.segments().map(<[u8]>::len).sum()
    }

    #[inline]
    fn segments(&self) -> impl Iterator<Item = &[u8]> {
        // SAFETY: `self` holds every segment while the borrow lasts, and
        // shared segments are never written.
        self.segment_ptrs().map(|h| unsafe { segment_data(h) })
    }

    #[inline]
    fn segment_count(&self) -> usize {
        usize::from(self.hdr().nb_segs)
    }

    #[inline]
    fn is_chained(&self) -> bool {
        self.hdr().nb_segs != 1
    }

    #[inline]
    fn ref_count(&self) -> usize {
        usize::from(self.hdr().refs.load(Ordering::Acquire))
    }

    fn chain(&mut self, tail: PoolBuf) -> Result<(), PoolBuf> {
        let add = tail.hdr().nb_segs;
        let Some(total) = self.hdr().nb_segs.checked_add(add) else {
            return Err(tail);
        };
        let Ok(last) = self.last_segment_unique() else {
            return Err(tail);
        };
        // Every segment up to the last is held by `self` alone (a holder of
        // a segment holds all that follow, so counts never fall along a
        // chain): their lengths grow by the tail's.
        let mut h = Some(self.hdr);
        while let Some(p) = h {
            // SAFETY: `p` is held by `self` alone (see above) and
            // `&mut self` makes this the only access.
            let hdr = unsafe { &mut *p.as_ptr() };
            hdr.nb_segs += add; // <= total, checked
            h = hdr.next;
        }
        debug_assert_eq!(self.hdr().nb_segs, total);
        // SAFETY: as above, `last` is ours alone; the tail's references move
        // into the chain.
        unsafe { (*last.as_ptr()).next = Some(tail.hdr) };
        core::mem::forget(tail);
        Ok(())
    }

    /// One unshared segment and a one-segment `tail` (a header and the
    /// send queue's chunk) linked straight: the reference that cloning
    /// `tail` adds and the link that [`chain`](PacketBuf::chain) makes,
    /// with no walk along either. Any other case, or a count at its
    /// maximum, takes the general way (which then refuses, or panics, as
    /// it does).
    #[inline]
    fn chain_clone(&mut self, tail: &mut Shared<PoolBuf>) -> Result<(), BufError> {
        let t = tail.hdr;
        // SAFETY: `tail` holds a reference on its first segment.
        let tail_segs = unsafe { t.as_ref() }.nb_segs;
        // SAFETY: `self` holds its first segment. Acquire: as
        // `last_segment_unique`.
        let unique = unsafe { refs(self.hdr) }.load(Ordering::Acquire) == 1;
        let added = self.hdr().nb_segs == 1 && tail_segs == 1 && unique && {
            // SAFETY: as above, `tail` holds the segment.
            let r = unsafe { refs(t) };
            // Held alone (a count of 1 is `tail`'s own reference), no one
            // else can reach the count: a new reference needs a handle, and
            // the only one is borrowed mutably here. So a plain store, no
            // locked read-modify-write (as DPDK's `rte_mbuf_refcnt_update`
            // of a lone holder). Acquire: as `release_ref`'s lone case.
            if r.load(Ordering::Acquire) == 1 {
                r.store(2, Ordering::Relaxed);
                true
            } else {
                // Relaxed, as `clone_ref`: a holder adds a reference.
                r.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1))
                    .is_ok()
            }
        };
        if !added {
            return self
                .chain_shared(tail.clone())
                .map_err(|_| BufError::Shared);
        }
        // The reference just added moves into the chain.
        let h = self.hdr_mut();
        h.nb_segs = 2;
        h.next = Some(t);
        Ok(())
    }

    fn unchain(&mut self) -> Option<Shared<PoolBuf>> {
        if self.hdr().nb_segs == 1 {
            return None;
        }
        let h = self.hdr_mut();
        let next = h.next.take()?;
        h.nb_segs = 1;
        // The rest's references move from this chain to the handle.
        Some(Shared::from_inner(PoolBuf { hdr: next }))
    }

    unsafe fn clone_ref(&self) -> Result<PoolBuf, TooManyRefs> {
        for (i, h) in self.segment_ptrs().enumerate() {
            // SAFETY: `self` holds a reference on the segment.
            let r = unsafe { refs(h) };
            // Relaxed, as `Arc::clone`: a holder adds a reference.
            if r.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1))
                .is_err()
            {
                // Undo the first `i`, which were ours to add.
                for u in self.segment_ptrs().take(i) {
                    // SAFETY: as above.
                    unsafe { refs(u) }.fetch_sub(1, Ordering::Relaxed);
                }
                return Err(TooManyRefs);
            }
        }
        Ok(PoolBuf { hdr: self.hdr })
    }
}

/// [`PacketBuf::append`] on a chain: into the last segment, if unshared.
#[cold]
fn append_to_last(buf: &mut PoolBuf, n: usize) -> Result<&mut [u8], BufError> {
    let last = buf.last_segment_unique()?;
    // SAFETY: `buf` is the only holder of its last segment, and the slice
    // returned borrows `buf` mutably.
    let h = unsafe { &mut *last.as_ptr() };
    bounds::tailroom(n, (h.room - h.data_off - h.data_len) as usize)?;
    let off = h.data_off + h.data_len;
    h.data_len += n as u32;
    // SAFETY: `off + n <= room` was just checked; the room follows the
    // header in the same slot.
    Ok(unsafe {
        core::slice::from_raw_parts_mut(last.as_ptr().cast::<u8>().add(HDR_SIZE + off as usize), n)
    })
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
        // Only the pointer is used from here on (see `release_chain`).
        let first = self.hdr;
        // SAFETY: this value holds the segment (as in `hdr`).
        let h = unsafe { first.as_ref() };
        // An unchained buffer held alone (the common case): one load, no
        // read-modify-write.
        if h.nb_segs == 1 && h.refs.load(Ordering::Acquire) == 1 {
            cache::free_one(BufPtr(first));
        } else {
            // SAFETY: this value's references go with it.
            unsafe { release_chain(first) };
        }
    }
}

impl fmt::Debug for PoolBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuf")
            .field("len", &self.len())
            .field("segments", &self.segment_count())
            .field("refs", &self.ref_count())
            .field("headroom", &self.headroom())
            .field("tailroom", &self.tailroom())
            .field("meta", self.meta())
            .finish()
    }
}
