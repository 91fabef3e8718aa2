//! Cutting bytes off a packet that may be a chain of buffer segments, some
//! of them shared read-only with another holder (a frame a gathering port
//! passed on as it was sent: the sender's header segment, then the
//! sender's send-queue chunk, still held for retransmission).
//!
//! Whole segments are dropped without a copy; a cut inside a segment the
//! packet holds alone changes only its bounds. A cut inside a *shared*
//! segment cannot change its bounds (they are the other holder's too), so
//! the rest of the chain is first copied into the first segment's room
//! ([`linearize`] without a fresh buffer); when it does not fit there the
//! cut fails and the caller drops the packet. Both are rare in TCP's input
//! (a segment overrunning the window, a retransmission overlapping data
//! already received, a partial copy-out read).

use tpa::buf::{linearize, PacketBuf};

/// Removes `n` bytes from the front of `buf` (over all its segments).
/// `Err` when `n` is more than it holds or the cut falls inside a shared
/// segment that does not fit in the first one's room; `buf` may then have
/// lost whole leading segments, and is to be dropped.
pub(crate) fn trim_front<B: PacketBuf>(buf: &mut B, mut n: usize) -> Result<(), ()> {
    while n > 0 {
        let first = buf.len();
        if n < first || !buf.is_chained() {
            return buf.trim_front(n).map_err(|_| ());
        }
        // The whole first segment goes: keep the rest of the chain.
        let Some(rest) = buf.unchain() else {
            return Err(());
        };
        match rest.try_unique() {
            Ok(rest) => {
                *buf = rest;
                n -= first;
            }
            Err(shared) => {
                // Linked back behind the (unique) segment it followed,
                // which is left empty when the cut ends where it does.
                buf.chain_shared(shared).map_err(|_| ())?;
                if n == first {
                    return buf.trim_front(n).map_err(|_| ());
                }
                return cut_copied(buf, n, 0);
            }
        }
    }
    Ok(())
}

/// Removes `n` bytes from the back of `buf` (over all its segments).
/// `Err` as [`trim_front`].
#[inline]
pub(crate) fn trim_back<B: PacketBuf>(buf: &mut B, n: usize) -> Result<(), ()> {
    if !buf.is_chained() {
        return buf.trim_back(n).map_err(|_| ());
    }
    trim_back_chain(buf, n)
}

/// [`trim_back`] of a chain.
#[cold]
#[inline(never)]
fn trim_back_chain<B: PacketBuf>(buf: &mut B, n: usize) -> Result<(), ()> {
    if n == 0 {
        return Ok(());
    }
    let total = buf.total_len();
    let keep = total.checked_sub(n).ok_or(())?;
    if keep <= buf.len() {
        // Everything after the first segment goes.
        drop(buf.unchain());
        return buf.trim_back(buf.len() - keep).map_err(|_| ());
    }
    if buf.trim_back(n).is_ok() {
        // Within a last segment held alone.
        return Ok(());
    }
    cut_copied(buf, 0, n)
}

/// Copies the chain into its first segment's room, then cuts `front` and
/// `back` bytes off it.
#[cold]
fn cut_copied<B: PacketBuf>(buf: &mut B, front: usize, back: usize) -> Result<(), ()> {
    linearize(buf, || None).map_err(|_| ())?;
    buf.trim_front(front).map_err(|_| ())?;
    buf.trim_back(back).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::joined as flat;
    use tpa::buf::{BufferPool, Pool, PoolBuf, Shared};

    fn bytes(p: &Pool, b: &[u8]) -> PoolBuf {
        let mut buf = p.alloc().unwrap();
        buf.extend_from_slice(b).unwrap();
        buf
    }

    /// A header segment, a shared middle and a unique tail: `hdr|shared|tail`.
    fn chain(p: &Pool) -> (PoolBuf, Shared<PoolBuf>) {
        let held = bytes(p, b"shared").share();
        let mut head = bytes(p, b"hdr|");
        head.chain_shared(held.clone()).unwrap();
        (head, held)
    }

    #[test]
    fn whole_segments_go_without_a_copy_and_shared_bytes_stay() {
        let p = Pool::with_capacity(8).unwrap();
        let (mut b, held) = chain(&p);
        trim_front(&mut b, 4).unwrap();
        assert_eq!((flat(&b), b.segment_count()), (b"shared".to_vec(), 2));
        assert_eq!(
            b.len(),
            0,
            "the first segment left empty, the shared one whole"
        );
        trim_back(&mut b, 0).unwrap();
        assert_eq!(b.segment_count(), 2, "nothing cut, nothing copied");
        // Into the shared segment: copied into the first segment's room,
        // the other holder's bytes and bounds unchanged.
        trim_front(&mut b, 2).unwrap();
        assert_eq!((flat(&b), b.segment_count()), (b"ared".to_vec(), 1));
        assert_eq!((held.data(), held.ref_count()), (&b"shared"[..], 1));
        drop((b, held));
        let (mut b, held) = chain(&p);
        trim_back(&mut b, 3).unwrap();
        assert_eq!(flat(&b), b"hdr|sha");
        assert_eq!(held.data(), b"shared");
        trim_back(&mut b, 5).unwrap();
        assert_eq!(flat(&b), b"hd");
        assert!(trim_back(&mut b, 3).is_err());
        drop((b, held));
        p.assert_whole();
    }

    #[test]
    fn a_unique_tail_is_cut_in_place() {
        let p = Pool::with_capacity(8).unwrap();
        let mut b = bytes(&p, b"ab");
        b.chain(bytes(&p, b"cdef")).unwrap();
        trim_back(&mut b, 1).unwrap();
        assert_eq!((flat(&b), b.segment_count()), (b"abcde".to_vec(), 2));
        trim_front(&mut b, 3).unwrap();
        assert_eq!((flat(&b), b.segment_count()), (b"de".to_vec(), 1));
        drop(b);
        p.assert_whole();
    }

    #[test]
    fn a_shared_segment_too_long_for_the_first_ones_room_fails() {
        let p = Pool::with_capacity(8).unwrap();
        let mut head = p.alloc().unwrap();
        let room = head.tailroom();
        head.extend_from_slice(&vec![1; room - 10]).unwrap();
        let held = bytes(&p, &[2; 100]).share();
        head.chain_shared(held.clone()).unwrap();
        assert!(trim_back(&mut head, 1).is_err());
        assert_eq!(held.data(), &[2; 100][..], "the shared bytes are untouched");
        drop((head, held));
        p.assert_whole();
    }
}
