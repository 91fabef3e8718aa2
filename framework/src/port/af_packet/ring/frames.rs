//! The TPACKET_V2 receive ring: fixed frame slots, each with its own status
//! word, handed over by the kernel the moment the frame is written. No
//! block to fill and no retire timer, so a frame is readable as soon as it
//! arrives, at the cost of one status word per frame and slots sized for
//! the largest frame.

use std::sync::atomic::Ordering;

use super::{stripped_vlan, vnet_header_before, FrameInfo, Mapping, SlotLayout};
use crate::port::af_packet::socket::PacketSocket;
use crate::port::{vnet, PortError};

/// The V2 header, 16-aligned, as the kernel lays it out in a slot.
const HDR: usize = std::mem::size_of::<libc::tpacket2_hdr>();

/// Where the kernel puts the network header of a received frame in a slot
/// (`TPACKET_ALIGN(TPACKET2_HDRLEN + 16)`): the MAC header sits just in
/// front of it, so a slot must hold this many bytes plus the frame.
const RX_NET_OFFSET: usize =
    (libc::TPACKET2_HDRLEN + 16 + libc::TPACKET_ALIGNMENT - 1) & !(libc::TPACKET_ALIGNMENT - 1);

/// Size of a TPACKET_V2 receive ring.
///
/// The default, 1024 slots (2 MiB at the default MTU), holds what one
/// busy TCP connection can have in flight towards tpa at tpa's default
/// queue sizes (a 512 KiB receive window, 362 full segments, and the
/// peer's ACKs of a 512 KiB send queue, about 180 more) twice over, so a
/// worker that is not scheduled for a while loses nothing. A larger ring
/// costs CPU on every frame: before writing a frame the kernel reads the
/// status word of the slot a quarter of the ring ahead (its "is there
/// room" check), and both its copy into the slot and tpa's copy out of it
/// touch memory the ring last used a whole turn earlier; the larger the
/// ring, the colder all three. Profiling a bulk receive over a veth
/// (`perf record` of the receiving process), those three took 19% of its
/// CPU samples with 4096 slots, 15–16% with 1024 and 10–11% with 512.
/// Many busy
/// connections on one queue want more slots: a frame that finds the ring
/// full is dropped by the kernel, counted in
/// [`AfPacketStats::rx_kernel_drops`](crate::port::af_packet::AfPacketStats::rx_kernel_drops),
/// and resent by TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRingSize {
    /// Frame slots (rounded up to fill whole blocks). Each slot holds one
    /// frame of up to the interface MTU plus 18 bytes, rounded up to a power
    /// of two: 2 KiB at the default MTU of 1500.
    pub frame_count: u32,
}

impl Default for FrameRingSize {
    fn default() -> Self {
        FrameRingSize { frame_count: 1024 }
    }
}

/// A TPACKET_V2 receive ring.
#[derive(Debug)]
pub(crate) struct FrameRxRing {
    map: Mapping,
    layout: SlotLayout,
    frame_count: usize,
    /// The next slot to read.
    head: usize,
    /// Slots whose header made no sense (skipped, returned to the kernel).
    pub(crate) bad_frames: u64,
    /// The socket has `PACKET_VNET_HDR`: a `virtio_net_hdr` precedes
    /// every frame.
    vnet: bool,
}

impl FrameRxRing {
    /// Sets up and maps a V2 receive ring on `sock` (before it is bound)
    /// for frames of up to `max_frame` bytes, each after a
    /// `virtio_net_hdr` when `vnet` (the socket has `PACKET_VNET_HDR`).
    pub(crate) fn new(
        sock: &PacketSocket,
        size: FrameRingSize,
        max_frame: usize,
        vnet: bool,
        iface: &str,
    ) -> Result<Self, PortError> {
        let version = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
        sock.set(libc::PACKET_VERSION, &version, "PACKET_VERSION(V2)")?;
        let header = if vnet { vnet::LEN } else { 0 };
        let layout = SlotLayout::new(RX_NET_OFFSET + header, max_frame, size.frame_count);
        sock.set(libc::PACKET_RX_RING, &layout.request(), "PACKET_RX_RING")?;
        Ok(FrameRxRing {
            map: Mapping::new(sock, layout.bytes(), iface)?,
            frame_count: layout.frame_count(),
            layout,
            head: 0,
            bad_frames: 0,
            vnet,
        })
    }

    /// Whether the next slot holds a frame for us.
    pub(crate) fn has_data(&self) -> bool {
        self.status(self.head) & libc::TP_STATUS_USER != 0
    }

    fn status(&self, slot: usize) -> u32 {
        self.map
            .status(self.layout.offset(slot))
            .load(Ordering::Acquire)
    }

    /// Hands the head slot back to the kernel and moves to the next.
    fn release(&mut self) {
        self.map
            .status(self.layout.offset(self.head))
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.head = (self.head + 1) % self.frame_count;
    }

    /// Offers up to `max` received frames to `take`, in order. `take` gets
    /// the frame bytes (valid for the call only) and returns whether it
    /// consumed the frame; on `false` the frame stays for the next call and
    /// reception stops. Each slot is given back as soon as it is read.
    /// Returns how many frames were consumed.
    pub(crate) fn receive(
        &mut self,
        max: usize,
        mut take: impl FnMut(&[u8], FrameInfo) -> bool,
    ) -> usize {
        let mut done = 0;
        while done < max {
            let status = self.status(self.head);
            if status & libc::TP_STATUS_USER == 0 {
                break;
            }
            let off = self.layout.offset(self.head);
            // SAFETY: the slot is ours (status acquired) and at least 2 KiB,
            // so its first `HDR` bytes are inside it; slots are 16-aligned,
            // enough for the header's 4-byte alignment.
            let hdr: libc::tpacket2_hdr = unsafe {
                self.map
                    .base
                    .as_ptr()
                    .add(off)
                    .cast::<libc::tpacket2_hdr>()
                    .read()
            };
            let start = usize::from(hdr.tp_mac);
            let len = hdr.tp_snaplen as usize;
            let header = if self.vnet { vnet::LEN } else { 0 };
            if start < HDR + header || start.saturating_add(len) > self.layout.frame_size {
                self.bad_frames += 1;
                self.release();
                continue;
            }
            // SAFETY: `start..start + len` lies inside our slot (checked),
            // which the kernel leaves alone until `release`; the slice is
            // only lent to `take` and does not outlive this iteration.
            let frame =
                unsafe { std::slice::from_raw_parts(self.map.base.as_ptr().add(off + start), len) };
            let info = FrameInfo {
                status,
                wire_len: hdr.tp_len,
                timestamp_ns: u64::from(hdr.tp_sec) * 1_000_000_000 + u64::from(hdr.tp_nsec),
                rxhash: None,
                vlan: stripped_vlan(status, hdr.tp_vlan_tpid, hdr.tp_vlan_tci),
                // SAFETY: `start >= HDR + vnet::LEN` (checked), so the
                // header's bytes lie in our slot, after its V2 header.
                vnet: self
                    .vnet
                    .then(|| unsafe { vnet_header_before(&self.map, off + start) }),
            };
            if !take(frame, info) {
                break;
            }
            done += 1;
            self.release();
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::super::{put32, xorshift};
    use super::*;

    fn ring(frames: u32) -> FrameRxRing {
        let layout = SlotLayout::new(RX_NET_OFFSET, 1518, frames);
        FrameRxRing {
            map: Mapping::anonymous(layout.bytes()),
            frame_count: layout.frame_count(),
            layout,
            head: 0,
            bad_frames: 0,
            vnet: false,
        }
    }

    /// Writes slot `i` the way the kernel does: header, frame at `tp_mac`,
    /// status last.
    fn write_slot(r: &mut FrameRxRing, i: usize, frame: &[u8], wire_len: u32) {
        let off = r.layout.offset(i);
        let fs = r.layout.frame_size;
        let mac = RX_NET_OFFSET - 14;
        let b = &mut r.map.bytes()[off..off + fs];
        b.fill(0);
        put32(b, 4, wire_len); // tp_len
        put32(b, 8, frame.len() as u32); // tp_snaplen
        b[12..14].copy_from_slice(&(mac as u16).to_ne_bytes()); // tp_mac
        put32(b, 16, 7); // tp_sec
        put32(b, 20, 9); // tp_nsec
        b[mac..mac + frame.len()].copy_from_slice(frame);
        put32(b, 0, libc::TP_STATUS_USER);
    }

    fn status(r: &FrameRxRing, i: usize) -> u32 {
        r.map.status(r.layout.offset(i)).load(Ordering::Relaxed)
    }

    #[test]
    fn the_header_is_what_the_kernel_writes() {
        assert_eq!(HDR, 32);
        assert_eq!(std::mem::offset_of!(libc::tpacket2_hdr, tp_mac), 12);
        assert_eq!(std::mem::offset_of!(libc::tpacket2_hdr, tp_sec), 16);
        assert_eq!(RX_NET_OFFSET, 80);
    }

    #[test]
    fn frames_are_read_in_order_and_slots_given_back_at_once() {
        let mut r = ring(1);
        let n = r.frame_count;
        assert!(n >= 2);
        // Start near the end to cross the wrap-around.
        r.head = n - 1;
        write_slot(&mut r, n - 1, b"first", 5);
        write_slot(&mut r, 0, b"second frame", 12);
        assert!(r.has_data());
        let mut got = Vec::new();
        let done = r.receive(16, |f, info| {
            assert_eq!(info.timestamp_ns, 7_000_000_009);
            assert_eq!(info.rxhash, None);
            got.push(f.to_vec());
            true
        });
        assert_eq!(done, 2);
        assert_eq!(got, [&b"first"[..], b"second frame"]);
        assert_eq!(status(&r, n - 1), libc::TP_STATUS_KERNEL);
        assert_eq!(status(&r, 0), libc::TP_STATUS_KERNEL);
        assert_eq!(r.head, 1);
        assert!(!r.has_data());
    }

    #[test]
    fn a_refused_frame_stays_ours_and_is_offered_again() {
        let mut r = ring(4);
        write_slot(&mut r, 0, b"a", 1);
        write_slot(&mut r, 1, b"b", 1);
        assert_eq!(r.receive(16, |f, _| f != b"b"), 1);
        assert_eq!(status(&r, 1), libc::TP_STATUS_USER);
        let mut again = Vec::new();
        assert_eq!(
            r.receive(16, |f, _| {
                again.push(f.to_vec());
                true
            }),
            1
        );
        assert_eq!(again, [b"b"]);
    }

    #[test]
    fn a_cut_frame_reports_its_wire_length() {
        let mut r = ring(1);
        write_slot(&mut r, 0, b"cut", 9000);
        let mut lens = None;
        r.receive(1, |f, info| {
            lens = Some((f.len(), info.wire_len));
            true
        });
        assert_eq!(lens, Some((3, 9000)));
    }

    #[test]
    fn garbage_headers_never_escape_the_slot() {
        let seed = 0x51a7_0f2b_9c3d_u64;
        let mut next = xorshift(seed);
        // Miri checks every access of each round: fewer rounds there.
        let rounds = if cfg!(miri) { 100 } else { 2000 };
        for round in 0..rounds {
            let mut r = ring(1);
            write_slot(&mut r, 0, b"0123456789", 10);
            let off = r.layout.offset(0);
            let fs = r.layout.frame_size;
            for _ in 0..1 + next() % 3 {
                let at = off + 4 + ((next() as usize % 28) & !3);
                let v = match next() % 3 {
                    0 => next() as u32,
                    1 => (next() % 8192) as u32,
                    _ => 0,
                };
                put32(r.map.bytes(), at, v);
            }
            let base = r.map.base.as_ptr() as usize + off;
            let mut frames = 0;
            r.receive(4, |f, _| {
                let start = f.as_ptr() as usize;
                assert!(
                    start >= base + HDR && start + f.len() <= base + fs,
                    "round {round}, seed {seed:#x}: frame outside its slot"
                );
                frames += 1;
                true
            });
            assert!(frames <= 1, "round {round}, seed {seed:#x}");
            assert_eq!(
                status(&r, 0),
                libc::TP_STATUS_KERNEL,
                "round {round}, seed {seed:#x}: slot not given back"
            );
        }
    }

    #[test]
    fn with_vnet_the_header_in_front_of_the_frame_comes_along() {
        let mut r = ring(2);
        r.vnet = true;
        write_slot(&mut r, 0, b"frame", 5);
        let mac = RX_NET_OFFSET - 14;
        let off = r.layout.offset(0);
        let header: [u8; vnet::LEN] = [1, 4, 0, 1, 2, 3, 4, 5, 6, 7];
        r.map.bytes()[off + mac - vnet::LEN..off + mac].copy_from_slice(&header);
        // A slot whose frame starts too close to its V2 header for one.
        write_slot(&mut r, 1, b"short", 5);
        let off1 = r.layout.offset(1);
        let too_close = (HDR + vnet::LEN - 2) as u16;
        r.map.bytes()[off1 + 12..off1 + 14].copy_from_slice(&too_close.to_ne_bytes());
        let mut got = Vec::new();
        assert_eq!(
            r.receive(4, |f, info| {
                got.push((f.to_vec(), info.vnet));
                true
            }),
            1
        );
        assert_eq!(got, [(b"frame".to_vec(), Some(header))]);
        assert_eq!(r.bad_frames, 1);
        assert_eq!(status(&r, 1), libc::TP_STATUS_KERNEL);
    }
}
