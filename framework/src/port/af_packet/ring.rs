//! The memory-mapped rings shared with the kernel: a TPACKET_V3 receive ring
//! (blocks of variable-size frames) and a TPACKET_V2 transmit ring (fixed
//! frames).
//!
//! Ownership of ring memory passes back and forth through a status word: the
//! kernel writes a block or frame, then flips its status to "user"; we read
//! (or fill) it, then flip it back. Statuses are read with acquire and written
//! with release ordering, so the data accesses cannot move across them.
//! Everything the kernel wrote that we use as an offset or a length is
//! bounds-checked against the block before memory is touched.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::socket::PacketSocket;
use crate::port::PortError;

/// Where the frame data starts in a TX frame: after the aligned V2 header
/// (`TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)`).
const TX_DATA_OFFSET: usize = (std::mem::size_of::<libc::tpacket2_hdr>() + libc::TPACKET_ALIGNMENT
    - 1)
    & !(libc::TPACKET_ALIGNMENT - 1);

/// Offset of `block_status` in a V3 block descriptor.
const BLOCK_STATUS_OFFSET: usize = 8;

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
        debug_assert!(off % 4 == 0 && off + 4 <= self.len);
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

/// Sizes of a TPACKET_V3 receive ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxRingSize {
    /// Bytes per block; a power of two and a multiple of the page size.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a block that is not
    /// full; bounds the latency a lightly loaded port adds.
    pub retire_timeout_ms: u32,
}

impl Default for RxRingSize {
    fn default() -> Self {
        RxRingSize {
            block_size: 1 << 18,
            block_count: 32,
            retire_timeout_ms: 1,
        }
    }
}

/// What the kernel reported about a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameInfo {
    /// `TP_STATUS_*` bits.
    pub status: u32,
    /// Length on the wire (may exceed the captured bytes).
    pub wire_len: u32,
    /// Receive time, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The kernel's flow hash.
    pub rxhash: u32,
    /// A VLAN tag the device stripped, as (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
}

/// A TPACKET_V3 receive ring.
#[derive(Debug)]
pub(super) struct RxRing {
    map: Mapping,
    block_size: usize,
    block_count: usize,
    /// The block being read, or to be read next.
    block: usize,
    /// Within `block` (once handed to us): frames left and the next one's
    /// offset from the block start.
    cursor: Option<(u32, usize)>,
    /// Blocks whose descriptor made no sense (skipped, returned to the kernel).
    pub bad_blocks: u64,
}

impl RxRing {
    /// Sets up and maps a V3 receive ring on `sock` (before it is bound).
    pub(super) fn new(
        sock: &PacketSocket,
        size: RxRingSize,
        iface: &str,
    ) -> Result<Self, PortError> {
        let invalid = |what: String| PortError::InvalidConfig {
            name: iface.to_owned(),
            what,
        };
        let page = page_size();
        let bs = size.block_size as usize;
        if !bs.is_power_of_two() || bs < page || size.block_count == 0 {
            return Err(invalid(format!(
                "RX block size {bs} must be a power of two >= the page size ({page}), with at least one block"
            )));
        }
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        sock.set(libc::PACKET_VERSION, &version, "PACKET_VERSION(V3)")?;
        // Frames are variable-size in V3; the frame size only has to divide
        // the block size for the kernel's sanity checks.
        let frame_size = 2048u32.min(size.block_size);
        let req = libc::tpacket_req3 {
            tp_block_size: size.block_size,
            tp_block_nr: size.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: size.block_size / frame_size * size.block_count,
            tp_retire_blk_tov: size.retire_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: libc::TP_FT_REQ_FILL_RXHASH,
        };
        sock.set(libc::PACKET_RX_RING, &req, "PACKET_RX_RING")?;
        let len = bs * size.block_count as usize;
        Ok(RxRing {
            map: Mapping::new(sock, len, iface)?,
            block_size: bs,
            block_count: size.block_count as usize,
            block: 0,
            cursor: None,
            bad_blocks: 0,
        })
    }

    /// Whether the next block is ours to read.
    pub(super) fn has_data(&self) -> bool {
        self.cursor.is_some() || self.block_is_ours(self.block)
    }

    fn block_is_ours(&self, block: usize) -> bool {
        let status = self
            .map
            .status(block * self.block_size + BLOCK_STATUS_OFFSET)
            .load(Ordering::Acquire);
        status & libc::TP_STATUS_USER != 0
    }

    fn block_u32(&self, block: usize, off: usize) -> u32 {
        debug_assert!(off + 4 <= self.block_size);
        // SAFETY: the block is ours (status acquired), `off + 4` is inside it
        // and 4-aligned; the kernel does not write it until we give it back.
        unsafe {
            self.map
                .base
                .as_ptr()
                .add(block * self.block_size + off)
                .cast::<u32>()
                .read()
        }
    }

    /// Hands the current block back to the kernel and moves to the next.
    fn release_block(&mut self) {
        self.map
            .status(self.block * self.block_size + BLOCK_STATUS_OFFSET)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.block = (self.block + 1) % self.block_count;
        self.cursor = None;
    }

    /// Offers up to `max` received frames to `take`, in order. `take` gets
    /// the frame bytes (valid for the call only) and returns whether it
    /// consumed the frame; on `false` the frame stays for the next call and
    /// reception stops. Blocks are given back to the kernel as soon as they
    /// are read. Returns how many frames were consumed.
    pub(super) fn receive(
        &mut self,
        max: usize,
        mut take: impl FnMut(&[u8], FrameInfo) -> bool,
    ) -> usize {
        const HDR: usize = std::mem::size_of::<libc::tpacket3_hdr>();
        let mut done = 0;
        while done < max {
            let (left, off) = match self.cursor {
                Some(c) => c,
                None => {
                    if !self.block_is_ours(self.block) {
                        break;
                    }
                    // tpacket_block_desc: version, offset_to_priv, then
                    // block_status, num_pkts, offset_to_first_pkt.
                    let num = self.block_u32(self.block, 12);
                    let first = self.block_u32(self.block, 16) as usize;
                    (num, first)
                }
            };
            if left == 0 {
                self.release_block();
                continue;
            }
            if off % 4 != 0 || off.checked_add(HDR).is_none_or(|end| end > self.block_size) {
                self.bad_blocks += 1;
                self.release_block();
                continue;
            }
            // SAFETY: the block is ours, and `off..off + HDR` lies inside it
            // (checked above) at a 4-aligned offset; `read_unaligned` copes
            // with the header's 8-byte alignment not being guaranteed.
            let hdr: libc::tpacket3_hdr = unsafe {
                self.map
                    .base
                    .as_ptr()
                    .add(self.block * self.block_size + off)
                    .cast::<libc::tpacket3_hdr>()
                    .read_unaligned()
            };
            let data_start = off + usize::from(hdr.tp_mac);
            let data_end = data_start.saturating_add(hdr.tp_snaplen as usize);
            if data_end > self.block_size {
                self.bad_blocks += 1;
                self.release_block();
                continue;
            }
            // SAFETY: `data_start..data_end` lies inside our block (checked),
            // which the kernel leaves alone until `release_block`; the slice
            // is only lent to `take` and does not outlive this iteration.
            let frame = unsafe {
                std::slice::from_raw_parts(
                    self.map
                        .base
                        .as_ptr()
                        .add(self.block * self.block_size + data_start),
                    hdr.tp_snaplen as usize,
                )
            };
            let vlan = (hdr.tp_status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
                let tpid = if hdr.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    hdr.hv1.tp_vlan_tpid
                } else {
                    0x8100
                };
                (tpid, hdr.hv1.tp_vlan_tci as u16)
            });
            let info = FrameInfo {
                status: hdr.tp_status,
                wire_len: hdr.tp_len,
                timestamp_ns: u64::from(hdr.tp_sec) * 1_000_000_000 + u64::from(hdr.tp_nsec),
                rxhash: hdr.hv1.tp_rxhash,
                vlan,
            };
            if !take(frame, info) {
                self.cursor = Some((left, off));
                break;
            }
            done += 1;
            if left == 1 {
                self.release_block();
            } else {
                let next = off + hdr.tp_next_offset as usize;
                if hdr.tp_next_offset == 0 {
                    self.bad_blocks += 1;
                    self.release_block();
                } else {
                    self.cursor = Some((left - 1, next));
                }
            }
        }
        done
    }
}

/// Sizes of a TPACKET_V2 transmit ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRingSize {
    /// Frames in the ring (rounded up to fill whole blocks).
    pub frame_count: u32,
}

impl Default for TxRingSize {
    fn default() -> Self {
        TxRingSize { frame_count: 1024 }
    }
}

/// Why a frame was not queued for transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxRefused {
    /// No free frame slot: the kernel is still sending earlier frames.
    Full,
    /// The packet is larger than a frame slot.
    TooLarge,
}

/// A TPACKET_V2 transmit ring.
#[derive(Debug)]
pub(super) struct TxRing {
    map: Mapping,
    frame_size: usize,
    frames_per_block: usize,
    block_size: usize,
    frame_count: usize,
    /// The next frame slot to fill.
    head: usize,
}

impl TxRing {
    /// Sets up and maps a V2 transmit ring on `sock` for frames of up to
    /// `max_frame` bytes.
    pub(super) fn new(
        sock: &PacketSocket,
        size: TxRingSize,
        max_frame: usize,
        iface: &str,
    ) -> Result<Self, PortError> {
        let version = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
        sock.set(libc::PACKET_VERSION, &version, "PACKET_VERSION(V2)")?;
        let page = page_size();
        let frame_size = (TX_DATA_OFFSET + max_frame).next_power_of_two().max(2048);
        let block_size = frame_size.max(page).max(1 << 16);
        let frames_per_block = block_size / frame_size;
        let block_count = (size.frame_count.max(1) as usize).div_ceil(frames_per_block);
        let frame_count = block_count * frames_per_block;
        let req = libc::tpacket_req {
            tp_block_size: block_size as u32,
            tp_block_nr: block_count as u32,
            tp_frame_size: frame_size as u32,
            tp_frame_nr: frame_count as u32,
        };
        sock.set(libc::PACKET_TX_RING, &req, "PACKET_TX_RING")?;
        Ok(TxRing {
            map: Mapping::new(sock, block_size * block_count, iface)?,
            frame_size,
            frames_per_block,
            block_size,
            frame_count,
            head: 0,
        })
    }

    /// The largest frame a slot holds.
    pub(super) fn max_frame(&self) -> usize {
        self.frame_size - TX_DATA_OFFSET
    }

    fn frame_offset(&self, i: usize) -> usize {
        (i / self.frames_per_block) * self.block_size
            + (i % self.frames_per_block) * self.frame_size
    }

    /// Copies a packet made of `segments` (total `len` bytes) into the next
    /// free slot and marks it for sending. The kernel sends it on the next
    /// `kick_tx`.
    pub(super) fn push<'a>(
        &mut self,
        len: usize,
        segments: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(), TxRefused> {
        if len > self.max_frame() {
            return Err(TxRefused::TooLarge);
        }
        let off = self.frame_offset(self.head);
        let status = self.map.status(off);
        if status.load(Ordering::Acquire) != libc::TP_STATUS_AVAILABLE {
            return Err(TxRefused::Full);
        }
        let mut at = off + TX_DATA_OFFSET;
        let end = at + len;
        for seg in segments {
            let n = seg.len().min(end - at);
            // SAFETY: the slot is ours (status AVAILABLE, acquired) and
            // `at..at + n` stays within its data area (`len <= max_frame`,
            // and `n` is capped at what is left of `len`).
            unsafe {
                std::ptr::copy_nonoverlapping(seg.as_ptr(), self.map.base.as_ptr().add(at), n);
            }
            at += n;
        }
        let written = at - (off + TX_DATA_OFFSET);
        // SAFETY: `tp_len` is the second u32 of the slot's header, which is
        // ours until the release store below.
        unsafe {
            self.map
                .base
                .as_ptr()
                .add(off + 4)
                .cast::<u32>()
                .write(written as u32);
        }
        status.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.head = (self.head + 1) % self.frame_count;
        Ok(())
    }
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
mod tests {
    use super::*;

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

    const BS: usize = 4096;

    fn ring(blocks: usize) -> RxRing {
        RxRing {
            map: Mapping::anonymous(BS * blocks),
            block_size: BS,
            block_count: blocks,
            block: 0,
            cursor: None,
            bad_blocks: 0,
        }
    }

    fn put32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// Writes a block the way the kernel does: descriptor, then frames each
    /// with a `tpacket3_hdr`, data at `tp_mac`, chained by `tp_next_offset`.
    fn write_block(r: &mut RxRing, block: usize, frames: &[&[u8]]) {
        let base = block * BS;
        let b = &mut r.map.bytes()[base..base + BS];
        b.fill(0);
        put32(b, 0, 3);
        put32(b, 12, frames.len() as u32);
        let first = 48;
        put32(b, 16, first as u32);
        let mut off = first;
        for (i, f) in frames.iter().enumerate() {
            let mac = 80usize;
            let next = (mac + f.len()).next_multiple_of(16);
            let h = &mut b[off..];
            put32(h, 0, if i + 1 < frames.len() { next as u32 } else { 0 });
            put32(h, 12, f.len() as u32); // tp_snaplen
            put32(h, 16, f.len() as u32); // tp_len
            put32(h, 20, libc::TP_STATUS_USER);
            h[24..26].copy_from_slice(&(mac as u16).to_ne_bytes());
            h[mac..mac + f.len()].copy_from_slice(f);
            off += next;
        }
        put32(b, BLOCK_STATUS_OFFSET, libc::TP_STATUS_USER);
    }

    fn status(r: &RxRing, block: usize) -> u32 {
        r.map
            .status(block * BS + BLOCK_STATUS_OFFSET)
            .load(Ordering::Relaxed)
    }

    #[test]
    fn frames_are_walked_in_order_and_blocks_given_back() {
        let mut r = ring(2);
        write_block(&mut r, 0, &[b"first", b"second frame", b"3"]);
        write_block(&mut r, 1, &[b"fourth"]);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let n = r.receive(16, |f, info| {
            assert_eq!(info.wire_len as usize, f.len());
            got.push(f.to_vec());
            true
        });
        assert_eq!(n, 4);
        assert_eq!(got, [&b"first"[..], b"second frame", b"3", b"fourth"]);
        assert_eq!(status(&r, 0), libc::TP_STATUS_KERNEL);
        assert_eq!(status(&r, 1), libc::TP_STATUS_KERNEL);
        assert_eq!(r.block, 0, "wrapped around");
        assert!(!r.has_data());
        assert_eq!(r.receive(16, |_, _| true), 0);
    }

    #[test]
    fn a_refused_frame_is_offered_again() {
        let mut r = ring(1);
        write_block(&mut r, 0, &[b"a", b"b", b"c"]);
        let mut calls = 0;
        let n = r.receive(16, |f, _| {
            calls += 1;
            f != b"b"
        });
        assert_eq!((n, calls), (1, 2));
        assert_eq!(status(&r, 0), libc::TP_STATUS_USER, "block still ours");
        let mut rest = Vec::new();
        let n = r.receive(1, |f, _| {
            rest.push(f.to_vec());
            true
        });
        assert_eq!(n, 1);
        assert_eq!(rest, [b"b"]);
        assert_eq!(r.receive(16, |_, _| true), 1);
        assert_eq!(status(&r, 0), libc::TP_STATUS_KERNEL);
    }

    #[test]
    fn garbage_descriptors_never_escape_the_block() {
        // Whatever the descriptor says, frames handed out lie inside the
        // block and every block goes back to the kernel.
        let seed = 0x7a9e_11c3_5d2b_0f01u64;
        let mut x = seed;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..2000 {
            let mut r = ring(1);
            write_block(&mut r, 0, &[b"0123456789", b"abcdefghij"]);
            // Corrupt a few words of the descriptor or frame headers.
            for _ in 0..1 + next() % 4 {
                let off = (next() as usize % 160) & !3;
                let v = match next() % 3 {
                    0 => next() as u32,
                    1 => (next() % 8192) as u32,
                    _ => 0,
                };
                put32(r.map.bytes(), off, v);
            }
            put32(r.map.bytes(), BLOCK_STATUS_OFFSET, libc::TP_STATUS_USER);
            let base = r.map.base.as_ptr() as usize;
            let mut frames = 0;
            r.receive(64, |f, _| {
                let start = f.as_ptr() as usize;
                assert!(
                    start >= base && start + f.len() <= base + BS,
                    "round {round}, seed {seed:#x}: frame outside the block"
                );
                frames += 1;
                true
            });
            assert!(frames <= 64, "round {round}, seed {seed:#x}");
            if frames < 64 {
                assert_eq!(
                    status(&r, 0),
                    libc::TP_STATUS_KERNEL,
                    "round {round}, seed {seed:#x}: block not given back"
                );
            }
        }
    }

    #[test]
    fn tx_data_follows_the_aligned_v2_header() {
        // TPACKET2_HDRLEN - sizeof(sockaddr_ll), as the kernel computes it.
        assert_eq!(
            TX_DATA_OFFSET,
            libc::TPACKET2_HDRLEN - std::mem::size_of::<libc::sockaddr_ll>()
        );
        assert_eq!(TX_DATA_OFFSET % libc::TPACKET_ALIGNMENT, 0);
    }

    #[test]
    fn block_status_is_where_the_kernel_puts_it() {
        // struct tpacket_block_desc { u32 version; u32 offset_to_priv;
        //   struct tpacket_hdr_v1 { u32 block_status; u32 num_pkts;
        //   u32 offset_to_first_pkt; ... } }
        assert_eq!(
            std::mem::offset_of!(libc::tpacket_block_desc, hdr),
            BLOCK_STATUS_OFFSET
        );
        assert_eq!(std::mem::offset_of!(libc::tpacket_hdr_v1, num_pkts), 4);
        assert_eq!(
            std::mem::offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt),
            8
        );
    }
}
