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
