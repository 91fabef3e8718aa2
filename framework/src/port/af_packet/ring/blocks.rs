//! The TPACKET_V3 receive ring: the kernel packs frames of any size into
//! blocks and hands a block over when it is full or its retire timer fires,
//! so a lightly loaded port waits up to that timeout for each frame.

use std::sync::atomic::Ordering;

use super::{page_size, stripped_vlan, vnet_header_before, FrameInfo, Mapping};
use crate::port::af_packet::socket::PacketSocket;
use crate::port::{vnet, PortError};

/// Offset of `block_status` in a V3 block descriptor.
const BLOCK_STATUS_OFFSET: usize = 8;

/// Sizes of a TPACKET_V3 receive ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRingSize {
    /// Bytes per block; a power of two and a multiple of the page size.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a block that is not
    /// full; bounds the latency a lightly loaded port adds.
    pub retire_timeout_ms: u32,
}

impl Default for BlockRingSize {
    fn default() -> Self {
        BlockRingSize {
            block_size: 1 << 18,
            block_count: 32,
            retire_timeout_ms: 1,
        }
    }
}

/// A TPACKET_V3 receive ring.
#[derive(Debug)]
pub(crate) struct BlockRxRing {
    map: Mapping,
    block_size: usize,
    block_count: usize,
    /// The block being read, or to be read next.
    block: usize,
    /// Within `block` (once handed to us): frames left and the next one's
    /// offset from the block start.
    cursor: Option<(u32, usize)>,
    /// Blocks whose descriptor made no sense (skipped, returned to the kernel).
    pub(crate) bad_blocks: u64,
    /// The socket has `PACKET_VNET_HDR`: a `virtio_net_hdr` precedes
    /// every frame.
    vnet: bool,
}

impl BlockRxRing {
    /// Sets up and maps a V3 receive ring on `sock` (before it is bound),
    /// each frame after a `virtio_net_hdr` when `vnet` (the socket has
    /// `PACKET_VNET_HDR`).
    pub(crate) fn new(
        sock: &PacketSocket,
        size: BlockRingSize,
        vnet: bool,
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
        Ok(BlockRxRing {
            map: Mapping::new(sock, len, iface)?,
            block_size: bs,
            block_count: size.block_count as usize,
            block: 0,
            cursor: None,
            bad_blocks: 0,
            vnet,
        })
    }

    /// Whether the next block is ours to read.
    pub(crate) fn has_data(&self) -> bool {
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
    pub(crate) fn receive(
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
            let header = if self.vnet { vnet::LEN } else { 0 };
            if data_end > self.block_size || usize::from(hdr.tp_mac) < HDR + header {
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
            let vlan = stripped_vlan(
                hdr.tp_status,
                hdr.hv1.tp_vlan_tpid,
                hdr.hv1.tp_vlan_tci as u16,
            );
            let info = FrameInfo {
                status: hdr.tp_status,
                wire_len: hdr.tp_len,
                timestamp_ns: u64::from(hdr.tp_sec) * 1_000_000_000 + u64::from(hdr.tp_nsec),
                rxhash: Some(hdr.hv1.tp_rxhash),
                vlan,
                // SAFETY: `tp_mac >= HDR + vnet::LEN` (checked), so the
                // header's bytes lie in our block, after the frame's V3
                // header.
                vnet: self.vnet.then(|| unsafe {
                    vnet_header_before(&self.map, self.block * self.block_size + data_start)
                }),
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

#[cfg(test)]
mod tests {
    use super::super::{put32, xorshift};
    use super::*;

    const BS: usize = 4096;

    fn ring(blocks: usize) -> BlockRxRing {
        BlockRxRing {
            map: Mapping::anonymous(BS * blocks),
            block_size: BS,
            block_count: blocks,
            block: 0,
            cursor: None,
            bad_blocks: 0,
            vnet: false,
        }
    }

    /// Writes a block the way the kernel does: descriptor, then frames each
    /// with a `tpacket3_hdr`, data at `tp_mac`, chained by `tp_next_offset`.
    fn write_block(r: &mut BlockRxRing, block: usize, frames: &[&[u8]]) {
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

    fn status(r: &BlockRxRing, block: usize) -> u32 {
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
        let mut next = xorshift(seed);
        // Miri checks every access of each round: fewer rounds there.
        let rounds = if cfg!(miri) { 100 } else { 2000 };
        for round in 0..rounds {
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

    #[test]
    fn with_vnet_the_header_in_front_of_each_frame_comes_along() {
        let mut r = ring(2);
        r.vnet = true;
        write_block(&mut r, 0, &[b"one", b"two"]);
        // The frames' headers start at 48 and 48 + 96; each frame at 80
        // from its header, its virtio_net_hdr just before.
        let headers = [[1u8; vnet::LEN], [2u8; vnet::LEN]];
        for (at, h) in [48 + 80, 48 + 96 + 80].into_iter().zip(&headers) {
            r.map.bytes()[at - vnet::LEN..at].copy_from_slice(h);
        }
        // A block whose frame starts too close to its V3 header for one.
        write_block(&mut r, 1, &[b"short"]);
        let too_close = (48 + vnet::LEN - 1) as u16;
        r.map.bytes()[BS + 48 + 24..BS + 48 + 26].copy_from_slice(&too_close.to_ne_bytes());
        let mut got = Vec::new();
        let n = r.receive(16, |f, info| {
            got.push((f.to_vec(), info.vnet));
            true
        });
        assert_eq!(n, 2);
        assert_eq!(
            got,
            [
                (b"one".to_vec(), Some(headers[0])),
                (b"two".to_vec(), Some(headers[1]))
            ]
        );
        assert_eq!(r.bad_blocks, 1);
        assert_eq!(status(&r, 1), libc::TP_STATUS_KERNEL);
    }
}
