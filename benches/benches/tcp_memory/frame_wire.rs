//! The "equal wire" for smoltcp: two Ethernet `phy::Device`s joined in
//! memory by a pair of frame queues, the counterpart of tpa's `MemoryWire`
//! without impairment.
//!
//! What it does per frame, and what it copies: a transmit takes a
//! full-size buffer from the wire's free list (allocated once, then
//! reused, as a pool's buffers are), smoltcp writes the whole frame into it
//! (headers and payload: smoltcp's own serialization, the copy out of its
//! send ring), and the buffer moves by value into the peer's receive queue;
//! a receive hands smoltcp the frame in place (it copies the payload into
//! its receive ring) and the buffer goes back to the free list. The wire
//! itself copies no byte and fills none. Like `MemoryWire` it offloads
//! nothing (smoltcp computes and checks every checksum in software), and a
//! full receive queue refuses a transmit. Unlike `MemoryWire` it takes no
//! lock (one thread drives both ends through a `RefCell`) and reads no
//! clock: a little less work per frame than tpa's wire does.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// The largest Ethernet frame the wire carries: a 1500-byte IP packet and
/// its 14-byte Ethernet header (`MemoryWire`'s default MTU).
pub const FRAME_MAX: usize = 1514;

/// Frames a receive queue holds (`MemoryWire`'s default ring size).
pub const QUEUE_FRAMES: usize = 1024;

/// One frame on the wire: a full-size buffer and how much of it is the frame.
struct Frame {
    buf: Box<[u8]>,
    len: usize,
}

/// What both ends share: a queue per direction and the free buffers.
#[derive(Default)]
struct Lanes {
    /// Indexed by the receiving end: `queues[0]` is what end 0 receives.
    queues: [VecDeque<Frame>; 2],
    free: Vec<Box<[u8]>>,
    /// Frames transmitted by each end.
    sent: [u64; 2],
    /// Frames a full queue refused (a transmit token taken with a receive
    /// and used when the peer's queue was full).
    dropped: u64,
}

impl Lanes {
    fn buffer(&mut self) -> Box<[u8]> {
        self.free
            .pop()
            .unwrap_or_else(|| vec![0; FRAME_MAX].into_boxed_slice())
    }
}

/// Counters of one wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WireStats {
    /// Frames sent by the first end, then by the second.
    pub sent: [u64; 2],
    /// Frames dropped because the receiving queue was full.
    pub dropped: u64,
    /// Frames still queued, both directions.
    pub queued: usize,
}

/// One end of the wire: a smoltcp Ethernet device.
pub struct WireEnd {
    lanes: Rc<RefCell<Lanes>>,
    /// 0 or 1: which queue this end receives from.
    end: usize,
}

impl WireEnd {
    /// The two ends of a fresh, empty wire.
    pub fn pair() -> (WireEnd, WireEnd) {
        let lanes = Rc::new(RefCell::new(Lanes::default()));
        (
            WireEnd {
                lanes: Rc::clone(&lanes),
                end: 0,
            },
            WireEnd { lanes, end: 1 },
        )
    }

    /// The wire's counters (the same from both ends).
    pub fn stats(&self) -> WireStats {
        let l = self.lanes.borrow();
        WireStats {
            sent: l.sent,
            dropped: l.dropped,
            queued: l.queues[0].len() + l.queues[1].len(),
        }
    }
}

/// Receives one frame: smoltcp reads it in place.
pub struct Rx<'a> {
    frame: Frame,
    lanes: &'a RefCell<Lanes>,
}

/// Transmits one frame to the peer's queue.
pub struct Tx<'a> {
    lanes: &'a RefCell<Lanes>,
    /// The receiving end.
    to: usize,
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let r = f(&self.frame.buf[..self.frame.len]);
        self.lanes.borrow_mut().free.push(self.frame.buf);
        r
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = self.lanes.borrow_mut().buffer();
        // smoltcp never asks for more than the MTU it was given; a longer
        // frame would be a bug in the bench, not on the wire.
        let len = len.min(FRAME_MAX);
        let r = f(&mut buf[..len]);
        let mut lanes = self.lanes.borrow_mut();
        lanes.sent[1 - self.to] += 1;
        if lanes.queues[self.to].len() < QUEUE_FRAMES {
            lanes.queues[self.to].push_back(Frame { buf, len });
        } else {
            lanes.dropped += 1;
            lanes.free.push(buf);
        }
        r
    }
}

impl phy::Device for WireEnd {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let frame = self.lanes.borrow_mut().queues[self.end].pop_front()?;
        Some((
            Rx {
                frame,
                lanes: &self.lanes,
            },
            Tx {
                lanes: &self.lanes,
                to: 1 - self.end,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Tx<'_>> {
        let to = 1 - self.end;
        (self.lanes.borrow().queues[to].len() < QUEUE_FRAMES).then_some(Tx {
            lanes: &self.lanes,
            to,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME_MAX;
        // Every checksum computed and checked in software, as over
        // `MemoryWire`, which offloads nothing.
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}
