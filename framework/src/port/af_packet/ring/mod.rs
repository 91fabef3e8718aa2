//! The memory-mapped rings shared with the kernel:
//!
//! - [`frames`]: a TPACKET_V2 receive ring of fixed frame slots, each handed
//!   over the moment the kernel has written it (low latency);
//! - [`blocks`]: a TPACKET_V3 receive ring of blocks of variable-size frames,
//!   handed over a block at a time (high throughput);
//! - [`tx`]: a TPACKET_V2 transmit ring of fixed frame slots.
//!
//! Ownership of ring memory passes back and forth through a status word: the
//! kernel writes a block or frame, then flips its status to "user"; we read
//! (or fill) it, then flip it back. Statuses are read with acquire and written
//! with release ordering, so the data accesses cannot move across them.
//! Everything the kernel wrote that we use as an offset or a length is
//! bounds-checked against the block or slot before memory is touched.

mod blocks;
mod frames;
mod tx;

pub use blocks::BlockRingSize;
pub use frames::FrameRingSize;
pub use tx::TxRingSize;

pub(crate) use blocks::BlockRxRing;
pub(crate) use frames::FrameRxRing;
pub(crate) use tx::{TxRefused, TxRing};

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use super::socket::PacketSocket;
use crate::port::{vnet, PortError};

/// A shared mapping of a socket's ring, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; the rings that
// own it are used by one thread at a time (`&mut self` methods).
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(sock: &PacketSocket, len: usize, iface: &str) -> Result<Self, PortError> {
        // SAFETY: mapping the ring the kernel just allocated for this socket
        // at an address of the kernel's choosing; aliases no Rust memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                sock.raw(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(PortError::from_io(
                iface,
                "mmap of the packet ring",
                io::Error::last_os_error(),
            ));
        }
        let base = NonNull::new(p.cast()).ok_or_else(|| PortError::InvalidConfig {
            name: iface.to_owned(),
            what: "the packet ring was mapped at address 0".into(),
        })?;
        Ok(Mapping { base, len })
    }

    /// The status word at byte `off` (4-aligned, inside the mapping).
    fn status(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off.is_multiple_of(4) && off + 4 <= self.len);
        // SAFETY: `off` is inside the mapping and 4-byte aligned (the mapping
        // is page aligned, blocks and frames are 16-aligned); the kernel
        // accesses this word concurrently, hence atomic access only.
        unsafe { &*self.base.as_ptr().add(off).cast::<AtomicU32>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped; no slices into it
        // outlive the ring (they are only lent out for a closure call).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// What the kernel reported about a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    /// `TP_STATUS_*` bits.
    pub status: u32,
    /// Length on the wire (may exceed the captured bytes).
    pub wire_len: u32,
    /// Receive time, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The kernel's flow hash (TPACKET_V3 only).
    pub rxhash: Option<u32>,
    /// A VLAN tag the device stripped, as (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
    /// The `virtio_net_hdr` in front of the frame, on a socket with
    /// `PACKET_VNET_HDR`.
    pub vnet: Option<[u8; vnet::LEN]>,
}

/// The VLAN tag a frame header reports, if the device stripped one.
fn stripped_vlan(status: u32, tpid: u16, tci: u16) -> Option<(u16, u16)> {
    (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
        let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
            tpid
        } else {
            0x8100
        };
        (tpid, tci)
    })
}

/// The geometry of a ring of fixed frame slots (TPACKET_V2, receive or
/// transmit): blocks of whole slots, none straddling a block boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlotLayout {
    frame_size: usize,
    frames_per_block: usize,
    block_size: usize,
    block_count: usize,
}

impl SlotLayout {
    /// Slots big enough for `data_offset + max_frame` bytes (a power of two,
    /// at least 2 KiB), in blocks of at least 64 KiB, rounded up to hold at
    /// least `frames` slots.
    fn new(data_offset: usize, max_frame: usize, frames: u32) -> SlotLayout {
        let frame_size = (data_offset + max_frame).next_power_of_two().max(2048);
        let block_size = frame_size.max(page_size()).max(1 << 16);
        let frames_per_block = block_size / frame_size;
        let block_count = (frames.max(1) as usize).div_ceil(frames_per_block);
        SlotLayout {
            frame_size,
            frames_per_block,
            block_size,
            block_count,
        }
    }

    fn frame_count(&self) -> usize {
        self.block_count * self.frames_per_block
    }

    fn bytes(&self) -> usize {
        self.block_size * self.block_count
    }

    /// The `tpacket_req` asking the kernel for this ring.
    fn request(&self) -> libc::tpacket_req {
        libc::tpacket_req {
            tp_block_size: self.block_size as u32,
            tp_block_nr: self.block_count as u32,
            tp_frame_size: self.frame_size as u32,
            tp_frame_nr: self.frame_count() as u32,
        }
    }

    /// Byte offset of slot `i` in the mapping.
    fn offset(&self, i: usize) -> usize {
        (i / self.frames_per_block) * self.block_size
            + (i % self.frames_per_block) * self.frame_size
    }
}

/// The `virtio_net_hdr` the kernel wrote just in front of a frame at
/// `frame` (an offset into `map`), which it leaves alone until the slot or
/// block holding both is given back.
///
/// # Safety
///
/// `frame - vnet::LEN..frame` must lie inside a slot or block that is ours.
unsafe fn vnet_header_before(map: &Mapping, frame: usize) -> [u8; vnet::LEN] {
    let mut out = [0u8; vnet::LEN];
    // SAFETY: the caller's promise: those bytes are inside our slot or
    // block, and `out` is a distinct local array.
    unsafe {
        std::ptr::copy_nonoverlapping(
            map.base.as_ptr().add(frame - vnet::LEN),
            out.as_mut_ptr(),
            vnet::LEN,
        );
    }
    out
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

#[cfg(test)]
impl Mapping {
    /// Anonymous memory standing in for a kernel ring.
    fn anonymous(len: usize) -> Mapping {
        // SAFETY: a fresh private anonymous mapping aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        Mapping {
            base: NonNull::new(p.cast()).unwrap(),
            len,
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the whole mapping, exclusively borrowed; in these tests
        // no kernel shares it.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), self.len) }
    }
}

#[cfg(test)]
fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

/// A xorshift64 generator started at `seed` (nonzero) for the randomized
/// tests, which print the seed when they fail: each call gives the next
/// number.
#[cfg(test)]
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_never_straddle_blocks() {
        for (max_frame, frames) in [(1518, 1024), (9018, 64), (1518, 1), (65535, 3)] {
            let l = SlotLayout::new(80, max_frame, frames);
            assert!(l.frame_size >= 80 + max_frame);
            assert_eq!(l.block_size % l.frame_size, 0);
            assert_eq!(l.block_size % page_size(), 0);
            assert!(l.frame_count() >= frames as usize);
            let last = l.offset(l.frame_count() - 1);
            assert!(last + l.frame_size <= l.bytes(), "{l:?}");
        }
    }

    #[test]
    fn vlan_tpid_defaults_to_802_1q() {
        assert_eq!(stripped_vlan(0, 0x88a8, 5), None);
        assert_eq!(
            stripped_vlan(libc::TP_STATUS_VLAN_VALID, 0x88a8, 5),
            Some((0x8100, 5))
        );
        assert_eq!(
            stripped_vlan(
                libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID,
                0x88a8,
                5
            ),
            Some((0x88a8, 5))
        );
    }
}
