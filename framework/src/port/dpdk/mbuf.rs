//! [`Mbuf`]: an owned DPDK packet buffer, used directly as a [`PacketBuf`].

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use dpdk_sys as sys;

use crate::buf::{bounds, BufError, ChecksumStatus, Meta, PacketBuf, Shared, TooManyRefs};

/// Bytes reserved at the start of each mbuf's private area for its
/// [`Meta`]: its size, rounded up to DPDK's private-area alignment.
pub const META_PRIV_SIZE: u16 = priv_round(core::mem::size_of::<Meta>());

/// The whole private area tpa's pools give each mbuf: the [`Meta`], then the
/// shared-info block an attached external buffer needs (see
/// [`ExtMemRegion::attach`](super::ExtMemRegion::attach)).
pub const MBUF_PRIV_SIZE: u16 =
    META_PRIV_SIZE + priv_round(core::mem::size_of::<sys::rte_mbuf_ext_shared_info>());

const fn priv_round(size: usize) -> u16 {
    let align = sys::RTE_MBUF_PRIV_ALIGN as usize;
    let size = size.div_ceil(align) * align;
    assert!(size <= u16::MAX as usize);
    size as u16
}

// The private area starts right after `struct rte_mbuf`, which is cache-line
// sized, so it is aligned enough for Meta.
const _: () =
    assert!(core::mem::size_of::<sys::rte_mbuf>().is_multiple_of(core::mem::align_of::<Meta>()));

/// One DPDK `rte_mbuf` (possibly the head of a chain), owned: dropping it
/// releases one reference on every segment (DPDK's `rte_pktmbuf_free`), and
/// the segments whose last reference that was go back to their mempool.
///
/// An `Mbuf` holds its first segment alone; later segments may be shared
/// (`refcnt` above one) and are read-only, as [`PacketBuf`] states. DPDK
/// updates `refcnt` atomically (`RTE_MBUF_REFCNT_ATOMIC`), as tpa does.
///
/// Its [`Meta`] lives in the mbuf's private area (pools made by
/// [`Mempool`](super::Mempool) reserve [`MBUF_PRIV_SIZE`] bytes for it), so
/// metadata costs no extra allocation and travels with the buffer.
#[repr(transparent)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf owns its first segment alone and holds a reference on
// the others, whose counts are updated atomically; mempools are
// multi-producer/multi-consumer, so freeing from another thread is allowed.
unsafe impl Send for Mbuf {}
// SAFETY: `&Mbuf` only reads the mbufs (counts are atomic), so `Shared`
// handles on several threads may read one at once.
unsafe impl Sync for Mbuf {}

/// The reference count of mbuf `m`, accessed atomically as DPDK does.
///
/// # Safety
/// The caller must hold a reference to `m` for `'a`.
#[inline]
unsafe fn refcnt<'a>(m: *mut sys::rte_mbuf) -> &'a AtomicU16 {
    // SAFETY: `refcnt` is a naturally aligned u16 that DPDK (built with
    // RTE_MBUF_REFCNT_ATOMIC) and tpa only access atomically while shared.
    unsafe { AtomicU16::from_ptr(core::ptr::addr_of_mut!((*m).refcnt)) }
}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `m` must be a valid mbuf not owned by anything else, from a pool whose
    /// private area holds at least [`MBUF_PRIV_SIZE`] bytes with an
    /// initialised [`Meta`] (see [`Mbuf::from_raw_reset_meta`] otherwise).
    #[inline]
    pub unsafe fn from_raw(m: NonNull<sys::rte_mbuf>) -> Mbuf {
        // SAFETY: the caller guarantees `m` is a valid mbuf.
        let priv_size = unsafe { (*m.as_ptr()).priv_size };
        debug_assert!(
            priv_size >= MBUF_PRIV_SIZE,
            "mbuf from a pool without room for Meta"
        );
        Mbuf(m)
    }

    /// Takes ownership of a raw mbuf and sets its [`Meta`] to the default.
    ///
    /// # Safety
    /// As [`Mbuf::from_raw`], except that the Meta need not be initialised.
    #[inline]
    pub unsafe fn from_raw_reset_meta(m: NonNull<sys::rte_mbuf>) -> Mbuf {
        // SAFETY: the caller guarantees a private area of META_PRIV_SIZE bytes.
        unsafe { meta_ptr(m).write(Meta::default()) };
        Mbuf(m)
    }

    /// Gives up ownership, returning the raw pointer (for `rte_eth_tx_burst`).
    #[inline]
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let m = self.0;
        core::mem::forget(self);
        m
    }

    /// The raw mbuf, still owned by `self`.
    #[inline]
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.0.as_ptr()
    }

    /// The raw mbuf as a non-null pointer, still owned by `self`.
    #[inline]
    pub fn as_non_null(&self) -> NonNull<sys::rte_mbuf> {
        self.0
    }

    /// The DPDK offload flags (`ol_flags`).
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }

    /// Number of segments in the chain.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Total packet length over all segments (`pkt_len`).
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// Whether the data lives in memory attached from outside the pool
    /// (see [`ExtMemRegion::attach`](super::ExtMemRegion::attach)).
    #[inline]
    pub fn has_external_buffer(&self) -> bool {
        self.raw().ol_flags & sys::RTE_MBUF_F_EXTERNAL != 0
    }

    #[inline]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: self owns a valid mbuf.
        unsafe { self.0.as_ref() }
    }

    /// The segments of the chain, first to last.
    #[inline]
    fn segment_ptrs(&self) -> impl Iterator<Item = *mut sys::rte_mbuf> + '_ {
        let mut next = self.0.as_ptr();
        core::iter::from_fn(move || {
            if next.is_null() {
                return None;
            }
            let m = next;
            // SAFETY: `m` is a segment of our chain; its `next` changes only
            // through its unique holder, which is not reading here.
            next = unsafe { (*m).next };
            Some(m)
        })
    }

    /// The last segment, if this value is its only holder.
    #[inline]
    fn last_segment_unique(&self) -> Result<*mut sys::rte_mbuf, BufError> {
        let last = self.last_segment();
        // SAFETY: we hold the segment. Acquire: other holders' reads happen
        // before the caller's writes.
        if unsafe { refcnt(last) }.load(Ordering::Acquire) != 1 {
            return Err(BufError::Shared);
        }
        Ok(last)
    }

    #[inline]
    fn last_segment(&self) -> *mut sys::rte_mbuf {
        let mut m = self.0.as_ptr();
        // SAFETY: the chain is well formed (each `next` valid or NULL).
        unsafe {
            while !(*m).next.is_null() {
                m = (*m).next;
            }
        }
        m
    }

    /// Fills the Meta from what the device reported in `ol_flags`, and
    /// clears transmit requests a looped-back mbuf may still carry.
    #[inline]
    pub(crate) fn fill_rx_meta(&mut self, queue: u16) {
        let flags = self.ol_flags();
        let m = self.0.as_ptr();
        let rss_hash = if flags & sys::RTE_MBUF_F_RX_RSS_HASH != 0 {
            // SAFETY: a valid mbuf; the flag says the hash union holds the
            // RSS hash.
            Some(unsafe { sys::tpa_mbuf_rss_hash(m) })
        } else {
            None
        };
        let flow_mark = if flags & sys::RTE_MBUF_F_RX_FDIR_ID != 0 {
            // SAFETY: a valid mbuf; the flag says the hash union holds a
            // flow-director (MARK) id.
            Some(unsafe { sys::tpa_mbuf_fdir_id(m) })
        } else {
            None
        };
        let meta = Meta {
            l3_checksum: checksum_status(
                flags & sys::RTE_MBUF_F_RX_IP_CKSUM_MASK,
                sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD,
                sys::RTE_MBUF_F_RX_IP_CKSUM_BAD,
            ),
            l4_checksum: checksum_status(
                flags & sys::RTE_MBUF_F_RX_L4_CKSUM_MASK,
                sys::RTE_MBUF_F_RX_L4_CKSUM_GOOD,
                sys::RTE_MBUF_F_RX_L4_CKSUM_BAD,
            ),
            rss_hash,
            flow_mark,
            rx_queue: queue,
            ..Meta::default()
        };
        // SAFETY: we own the mbuf, which came from a tpa pool (the receive
        // queue's), whose private area holds a Meta.
        unsafe {
            meta_ptr(self.0).write(meta);
            (*m).ol_flags = flags & !TX_OFFLOAD_MASK;
        }
    }

    /// Sets the transmit offload request bits and header lengths.
    #[inline]
    pub(crate) fn set_tx_offload(&mut self, flags: u64, lens: TxLens) {
        let m = self.0.as_ptr();
        // SAFETY: we own the mbuf; the shim writes its bitfields.
        unsafe {
            (*m).ol_flags = ((*m).ol_flags & !TX_OFFLOAD_MASK) | flags;
            sys::tpa_mbuf_set_tx_offload(m, lens.l2, lens.l3, lens.l4, lens.tso_segsz);
        }
    }
}

/// Every `RTE_MBUF_F_TX_*` bit tpa may set.
pub(crate) const TX_OFFLOAD_MASK: u64 = sys::RTE_MBUF_F_TX_IPV4
    | sys::RTE_MBUF_F_TX_IPV6
    | sys::RTE_MBUF_F_TX_IP_CKSUM
    | sys::RTE_MBUF_F_TX_L4_MASK
    | sys::RTE_MBUF_F_TX_TCP_SEG;

/// Header lengths for transmit offloads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TxLens {
    pub l2: u16,
    pub l3: u16,
    pub l4: u16,
    pub tso_segsz: u16,
}

/// Maps DPDK's two-bit checksum status (`masked` = flags & mask) to ours.
/// "None" (both bits) means the data is known intact though the checksum
/// field is not set, which is as good as good.
#[inline]
fn checksum_status(masked: u64, good: u64, bad: u64) -> ChecksumStatus {
    if masked == good | bad || masked == good {
        ChecksumStatus::Good
    } else if masked == bad {
        ChecksumStatus::Bad
    } else {
        ChecksumStatus::Unknown
    }
}

/// The Meta in the private area of `m`.
///
/// # Safety
/// `m` must be valid and its private area at least [`META_PRIV_SIZE`] bytes.
#[inline]
unsafe fn meta_ptr(m: NonNull<sys::rte_mbuf>) -> *mut Meta {
    // SAFETY: the private area directly follows struct rte_mbuf.
    unsafe { m.as_ptr().add(1).cast::<Meta>() }
}

/// The external-buffer shared info in the private area of `m`.
///
/// # Safety
/// `m` must be valid and its private area at least [`MBUF_PRIV_SIZE`] bytes.
#[inline]
pub(crate) unsafe fn shinfo_ptr(m: NonNull<sys::rte_mbuf>) -> *mut sys::rte_mbuf_ext_shared_info {
    // SAFETY: the shared info follows the Meta in the private area.
    unsafe {
        m.as_ptr()
            .add(1)
            .cast::<u8>()
            .add(usize::from(META_PRIV_SIZE))
            .cast()
    }
}

/// The data of one segment.
///
/// # Safety
/// `m` must be a valid mbuf that outlives `'a` and is not written meanwhile.
#[inline]
unsafe fn segment<'a>(m: *const sys::rte_mbuf) -> &'a [u8] {
    // SAFETY: buf_addr + data_off .. + data_len lies inside the buffer.
    unsafe {
        let m = &*m;
        core::slice::from_raw_parts(
            m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
            usize::from(m.data_len),
        )
    }
}

impl PacketBuf for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        // SAFETY: self owns the mbuf; the slice borrows self.
        unsafe { segment(self.0.as_ptr()) }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw();
        // SAFETY: as data(), borrowed mutably through &mut self.
        unsafe {
            core::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    #[inline]
    fn headroom(&self) -> usize {
        usize::from(self.raw().data_off)
    }

    /// Free bytes behind the data of the last segment (where
    /// [`append`](PacketBuf::append) writes).
    #[inline]
    fn tailroom(&self) -> usize {
        // SAFETY: last_segment returns a valid segment of our chain.
        let last = unsafe { &*self.last_segment() };
        usize::from(last.buf_len) - usize::from(last.data_off) - usize::from(last.data_len)
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        bounds::headroom(n, self.headroom())?;
        // n <= data_off <= u16::MAX.
        let n16 = n as u16;
        let m = self.0.as_ptr();
        // SAFETY: we own the mbuf; n bytes of headroom exist.
        unsafe {
            (*m).data_off -= n16;
            (*m).data_len += n16;
            (*m).pkt_len += u32::from(n16);
        }
        Ok(&mut self.data_mut()[..n])
    }

    /// Grows the last segment by `n` bytes and returns them
    /// ([`BufError::Shared`] when that segment is shared).
    #[inline]
    fn append(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        let last = self.last_segment_unique()?;
        bounds::tailroom(n, self.tailroom())?;
        let n16 = n as u16; // n <= tailroom <= u16::MAX
        let head = self.0.as_ptr();
        // SAFETY: we own the chain; the last segment has n bytes of tailroom,
        // and the returned slice borrows self mutably.
        unsafe {
            let start = (*last)
                .buf_addr
                .cast::<u8>()
                .add(usize::from((*last).data_off) + usize::from((*last).data_len));
            (*last).data_len += n16;
            (*head).pkt_len += u32::from(n16);
            Ok(core::slice::from_raw_parts_mut(start, n))
        }
    }

    /// Removes `n` bytes from the front of the first segment.
    #[inline]
    fn trim_front(&mut self, n: usize) -> Result<(), BufError> {
        bounds::data(n, self.len())?;
        let n16 = n as u16;
        let m = self.0.as_ptr();
        // SAFETY: we own the mbuf; n <= data_len.
        unsafe {
            (*m).data_off += n16;
            (*m).data_len -= n16;
            (*m).pkt_len -= u32::from(n16);
        }
        Ok(())
    }

    /// Removes `n` bytes from the back of the last segment
    /// ([`BufError::Shared`] when that segment is shared).
    #[inline]
    fn trim_back(&mut self, n: usize) -> Result<(), BufError> {
        let last = self.last_segment_unique()?;
        // SAFETY: last is a valid segment of our chain.
        bounds::data(n, usize::from(unsafe { (*last).data_len }))?;
        let n16 = n as u16;
        let head = self.0.as_ptr();
        // SAFETY: we own the chain; n <= the last segment's data_len.
        unsafe {
            (*last).data_len -= n16;
            (*head).pkt_len -= u32::from(n16);
        }
        Ok(())
    }

    #[inline]
    fn meta(&self) -> &Meta {
        // SAFETY: an Mbuf's private area holds an initialised Meta (from_raw's
        // contract); the reference borrows self.
        unsafe { &*meta_ptr(self.0) }
    }

    #[inline]
    fn meta_mut(&mut self) -> &mut Meta {
        // SAFETY: as meta(), borrowed mutably through &mut self.
        unsafe { &mut *meta_ptr(self.0) }
    }

    #[inline]
    fn total_len(&self) -> usize {
        self.pkt_len() as usize
    }

    fn segments(&self) -> impl Iterator<Item = &[u8]> {
        // SAFETY: every segment of our chain is alive while self is
        // borrowed, and shared ones are never written.
        self.segment_ptrs().map(|m| unsafe { segment(m) })
    }

    #[inline]
    fn segment_count(&self) -> usize {
        usize::from(self.nb_segs())
    }

    #[inline]
    fn ref_count(&self) -> usize {
        // SAFETY: we hold the first segment.
        usize::from(unsafe { refcnt(self.0.as_ptr()) }.load(Ordering::Acquire))
    }

    /// Appends `tail` (a chain of its own) behind the last segment: gives it
    /// back when the last segment is shared, or the chain would pass 65535
    /// segments or `u32::MAX` bytes.
    fn chain(&mut self, tail: Mbuf) -> Result<(), Mbuf> {
        let tail_len = tail.pkt_len();
        let tail_segs = tail.nb_segs();
        let head = self.raw();
        if u32::from(head.nb_segs) + u32::from(tail_segs) > u32::from(u16::MAX)
            || head.pkt_len.checked_add(tail_len).is_none()
        {
            return Err(tail);
        }
        let Ok(last) = self.last_segment_unique() else {
            return Err(tail);
        };
        // Every segment up to the last is held by us alone (a holder of a
        // segment holds all that follow, so counts never fall along a
        // chain): keep each one's nb_segs and pkt_len those of the chain
        // from it, so any of them can become a head again (`unchain`).
        let mut m = self.0.as_ptr();
        // SAFETY: we own those segments alone, and the tail's chain moves
        // into ours.
        unsafe {
            while !m.is_null() {
                (*m).nb_segs += tail_segs;
                // Exact on the head (checked above); on later segments
                // possibly stale (`append`/`trim_back` keep only the
                // head's), and recounted by `unchain`.
                (*m).pkt_len = (*m).pkt_len.wrapping_add(tail_len);
                m = (*m).next;
            }
            (*last).next = tail.into_raw().as_ptr();
        }
        Ok(())
    }

    fn unchain(&mut self) -> Option<Shared<Mbuf>> {
        let head = self.0.as_ptr();
        // SAFETY: we own the first segment alone.
        let rest = unsafe {
            let rest = NonNull::new((*head).next)?;
            (*head).next = core::ptr::null_mut();
            (*head).nb_segs = 1;
            (*head).pkt_len = u32::from((*head).data_len);
            rest
        };
        let rest = Mbuf(rest);
        // SAFETY: we hold the rest's first segment.
        if unsafe { refcnt(rest.0.as_ptr()) }.load(Ordering::Acquire) == 1 {
            // Held by us alone, so possibly grown since it was chained
            // (`append` keeps only the head's pkt_len): recount.
            let (segs, len) = rest
                .segments()
                .fold((0u16, 0u32), |(s, l), d| (s + 1, l + d.len() as u32));
            // SAFETY: ours alone.
            unsafe {
                (*rest.0.as_ptr()).nb_segs = segs;
                (*rest.0.as_ptr()).pkt_len = len;
            }
        }
        // The rest's references move from our chain to the handle.
        Some(Shared::from_inner(rest))
    }

    unsafe fn clone_ref(&self) -> Result<Mbuf, TooManyRefs> {
        for (i, m) in self.segment_ptrs().enumerate() {
            // SAFETY: we hold a reference on the segment.
            let r = unsafe { refcnt(m) };
            // Relaxed, as `Arc::clone`: a holder adds a reference.
            if r.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1))
                .is_err()
            {
                for u in self.segment_ptrs().take(i) {
                    // SAFETY: as above; undoes our own additions.
                    unsafe { refcnt(u) }.fetch_sub(1, Ordering::Relaxed);
                }
                return Err(TooManyRefs);
            }
        }
        Ok(Mbuf(self.0))
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the chain; it goes back to its pool(s), and external
        // buffers to their owners through their free callbacks.
        unsafe { sys::tpa_rte_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl core::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("pkt_len", &self.pkt_len())
            .field("nb_segs", &self.nb_segs())
            .field("meta", self.meta())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_status_maps_all_four_states() {
        let (good, bad) = (1 << 7, 1 << 4);
        assert_eq!(checksum_status(0, good, bad), ChecksumStatus::Unknown);
        assert_eq!(checksum_status(good, good, bad), ChecksumStatus::Good);
        assert_eq!(checksum_status(bad, good, bad), ChecksumStatus::Bad);
        assert_eq!(checksum_status(good | bad, good, bad), ChecksumStatus::Good);
    }

    #[test]
    fn meta_fits_its_private_area() {
        assert!(usize::from(META_PRIV_SIZE) >= core::mem::size_of::<Meta>());
        assert_eq!(META_PRIV_SIZE as u32 % sys::RTE_MBUF_PRIV_ALIGN, 0);
    }
}
