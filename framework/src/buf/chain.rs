//! Flattening a chain into one segment, for devices that cannot gather.

use core::fmt;

use super::PacketBuf;

/// Why a chain could not be copied into one segment. The packet is
/// unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearizeError {
    /// The first segment had no room for the rest and no buffer was free.
    NoBuffer,
    /// The packet does not fit one buffer.
    TooLarge,
}

impl fmt::Display for LinearizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinearizeError::NoBuffer => "no free buffer to copy the chain into",
            LinearizeError::TooLarge => "the chain does not fit one buffer",
        })
    }
}

impl std::error::Error for LinearizeError {}

/// Makes `buf` one segment holding the bytes of all its segments, with the
/// same metadata. The rest is copied into the first segment's tailroom when
/// it fits there (the first segment's bytes stay where they are), else the
/// whole packet into a buffer from `alloc`. Returns whether it copied
/// anything (`false` for a buffer that is not chained).
///
/// ```
/// use tpa::buf::{linearize, BufferPool, PacketBuf, Pool};
/// let pool = Pool::with_capacity(8).unwrap();
/// let mut head = pool.alloc().unwrap();
/// head.extend_from_slice(b"head").unwrap();
/// let mut tail = pool.alloc().unwrap();
/// tail.extend_from_slice(b"tail").unwrap();
/// head.chain(tail).unwrap();
/// assert_eq!(linearize(&mut head, || pool.alloc()), Ok(true));
/// assert_eq!((head.data(), head.segment_count()), (&b"headtail"[..], 1));
/// drop(head);
/// pool.assert_whole();
/// ```
pub fn linearize<B: PacketBuf>(
    buf: &mut B,
    alloc: impl FnOnce() -> Option<B>,
) -> Result<bool, LinearizeError> {
    let Some(rest) = buf.unchain() else {
        return Ok(false);
    };
    let rest_len = rest.total_len();
    if let Ok(room) = buf.append(rest_len) {
        copy_segments(rest.segments(), room);
        return Ok(true);
    }
    let total = buf.len() + rest_len;
    let fresh = match alloc() {
        Some(b) if b.tailroom() >= total => Ok(b),
        Some(_) => Err(LinearizeError::TooLarge),
        None => Err(LinearizeError::NoBuffer),
    };
    let mut flat = match fresh {
        Ok(b) => b,
        Err(e) => {
            // Put the rest back: the first segment is unshared and was the
            // head of this very chain a moment ago.
            let _ = buf.chain_shared(rest);
            return Err(e);
        }
    };
    *flat.meta_mut() = *buf.meta();
    if let Ok(room) = flat.append(total) {
        let first = buf.data();
        room[..first.len()].copy_from_slice(first);
        copy_segments(rest.segments(), &mut room[first.len()..]);
    }
    *buf = flat;
    Ok(true)
}

/// Copies `segments` one after the other into `dst` (exactly their length).
fn copy_segments<'a>(segments: impl Iterator<Item = &'a [u8]>, dst: &mut [u8]) {
    let mut at = 0;
    for seg in segments {
        dst[at..at + seg.len()].copy_from_slice(seg);
        at += seg.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::{BufferPool, Pool};

    /// What a receiver of a gathered frame relies on to cut inside the
    /// sender's shared segment: without a fresh buffer, the rest is copied
    /// into the first segment's room, the shared segment left as it was
    /// (bytes, bounds and count); with no room, nothing changes.
    #[test]
    fn a_shared_tail_is_copied_into_the_first_segments_room_and_left_whole() {
        let pool = Pool::with_capacity(8).unwrap();
        let mut held = pool.alloc().unwrap();
        held.extend_from_slice(b"shared payload").unwrap();
        let held = held.share();
        let mut head = pool.alloc().unwrap();
        head.extend_from_slice(b"hdr").unwrap();
        head.trim_front(3).unwrap(); // the headers cut off: an empty first segment
        head.chain_shared(held.clone()).unwrap();
        assert_eq!(held.ref_count(), 2);
        assert_eq!(linearize(&mut head, || None), Ok(true));
        assert_eq!(
            (head.data(), head.segment_count()),
            (&b"shared payload"[..], 1)
        );
        assert_eq!((held.data(), held.ref_count()), (&b"shared payload"[..], 1));
        // A first segment without the room: refused, the chain unchanged.
        let mut full = pool.alloc().unwrap();
        let room = full.tailroom();
        full.extend_from_slice(&vec![7; room - 4]).unwrap();
        full.chain_shared(held.clone()).unwrap();
        assert_eq!(linearize(&mut full, || None), Err(LinearizeError::NoBuffer));
        assert_eq!((full.segment_count(), full.total_len()), (2, room - 4 + 14));
        assert_eq!(held.ref_count(), 2);
        drop((head, full, held));
        pool.assert_whole();
    }
}
