//! Shared pieces of the pipeline tests: frames over an in-memory wire and a
//! few small stages.

#![allow(dead_code)]

use tpa::buf::{BufferPool, PacketBuf, PoolBuf};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::port::{Burst, Port};
use tpa::stage::{Cx, Fork, Reason, Stage, Verdict};

/// Two ends of a fresh wire: (the pipeline's port, the test's peer).
pub fn wire() -> (MemoryPort, MemoryPort) {
    MemoryWire::pair(WireConfig::default()).expect("memory wire")
}

/// Drops `peer` and checks that every buffer of its wire's pool came back:
/// call it last, once the pipeline holding the other end is dropped.
#[track_caller]
pub fn assert_wire_whole(peer: MemoryPort) {
    let pool = peer.pool().clone();
    drop(peer);
    pool.assert_whole();
}

/// Sends `frames` from `peer`, in bursts; panics if the wire refuses one.
pub fn send(peer: &mut MemoryPort, frames: &[Vec<u8>]) {
    for chunk in frames.chunks(32) {
        let mut tx: Burst<PoolBuf> = Burst::new();
        for f in chunk {
            let mut b = peer.alloc().expect("pool has room");
            b.extend_from_slice(f).expect("frame fits a buffer");
            tx.push(b);
        }
        assert_eq!(peer.tx_burst(&mut tx), chunk.len(), "wire full");
    }
}

/// Every frame waiting at `peer`, in arrival order.
pub fn receive(peer: &mut MemoryPort) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut rx: Burst<PoolBuf> = Burst::new();
        if peer.rx_burst(&mut rx) == 0 {
            return out;
        }
        out.extend(rx.drain().map(|b| b.data().to_vec()));
    }
}

/// Passes every packet on unchanged.
#[derive(Default)]
pub struct Pass;
impl<B: PacketBuf, S> Stage<B, S> for Pass {
    type In = B;
    type Out = B;
    fn process(&mut self, p: B, _: &mut Cx<'_, B, S>) -> Verdict<B> {
        Verdict::Pass(p)
    }
}

/// Acts on the first byte of the packet: 0 pass, 1 drop (filtered), 2
/// consume, 3 transmit, 4 to host, 5 drop with the stage's own reason.
#[derive(Default)]
pub struct ByFirstByte;
pub const ODD: Reason = Reason::custom(0);
impl<B: PacketBuf, S> Stage<B, S> for ByFirstByte {
    type In = B;
    type Out = B;
    const CUSTOM_REASONS: &'static [&'static str] = &["odd"];
    fn process(&mut self, p: B, _: &mut Cx<'_, B, S>) -> Verdict<B> {
        match p.data().first() {
            Some(0) => Verdict::Pass(p),
            Some(1) => Verdict::Drop(Reason::FILTERED),
            Some(2) => Verdict::Consumed,
            Some(3) => Verdict::Transmit(p),
            Some(4) => Verdict::ToHost(p),
            Some(_) => Verdict::Drop(ODD),
            None => Verdict::Drop(Reason::TOO_SHORT),
        }
    }
}

/// Swaps the Ethernet source and destination addresses and transmits.
#[derive(Default)]
pub struct MacSwap;
impl<B: PacketBuf, S> Stage<B, S> for MacSwap {
    type In = B;
    type Out = core::convert::Infallible;
    #[inline]
    fn process(&mut self, mut p: B, _: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        let Some(h) = p.data_mut().get_mut(..12) else {
            return Verdict::Drop(Reason::TOO_SHORT);
        };
        let (dst, src) = h.split_at_mut(6);
        dst.swap_with_slice(src);
        Verdict::Transmit(p)
    }
}

/// Splits Ethernet frames by EtherType: ARP left, the rest right.
#[derive(Default)]
pub struct ArpOrOther;
impl<B: PacketBuf, S> Stage<B, S> for ArpOrOther {
    type In = B;
    type Out = Fork<B, B>;
    fn process(&mut self, p: B, _: &mut Cx<'_, B, S>) -> Verdict<Fork<B, B>, B> {
        match p.data().get(12..14) {
            Some([0x08, 0x06]) => Verdict::Pass(Fork::Left(p)),
            Some(_) => Verdict::Pass(Fork::Right(p)),
            None => Verdict::Drop(Reason::TOO_SHORT),
        }
    }
}

/// Adds one to the second byte (when there is one) and passes the packet on.
#[derive(Default)]
pub struct Mark;
impl<B: PacketBuf, S> Stage<B, S> for Mark {
    type In = B;
    type Out = B;
    fn process(&mut self, mut p: B, _: &mut Cx<'_, B, S>) -> Verdict<B> {
        if let Some(b) = p.data_mut().get_mut(1) {
            *b = b.wrapping_add(1);
        }
        Verdict::Pass(p)
    }
}

/// Transmits every packet.
#[derive(Default)]
pub struct Transmit;
impl<B: PacketBuf, S> Stage<B, S> for Transmit {
    type In = B;
    type Out = core::convert::Infallible;
    fn process(&mut self, p: B, _: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        Verdict::Transmit(p)
    }
}

/// Hands every packet to the host.
#[derive(Default)]
pub struct Host;
impl<B: PacketBuf, S> Stage<B, S> for Host {
    type In = B;
    type Out = core::convert::Infallible;
    fn process(&mut self, p: B, _: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        Verdict::ToHost(p)
    }
}

/// On every poll, sends a frame of its own: `[0xee, n, now_ns as u8]`, `n`
/// counting polls. Passes received packets on.
#[derive(Default)]
pub struct Ticker {
    pub polls: u8,
}
impl<B: PacketBuf, S> Stage<B, S> for Ticker {
    type In = B;
    type Out = B;
    fn process(&mut self, p: B, _: &mut Cx<'_, B, S>) -> Verdict<B> {
        Verdict::Pass(p)
    }
    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        self.polls = self.polls.wrapping_add(1);
        let now = cx.now_ns() as u8;
        if let Some(mut b) = cx.alloc() {
            if let Ok(bytes) = b.append(3) {
                bytes.copy_from_slice(&[0xee, self.polls, now]);
                cx.transmit(b);
            }
        }
    }
}
