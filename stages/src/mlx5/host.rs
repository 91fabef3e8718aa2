//! The host path in both directions: frames handed to the kernel through a
//! host port (a TAP, say), and what the kernel answers, sent out of the NIC.
//!
//! On a bifurcated port the kernel shares the NIC: what [`FlowClassify`]
//! hands to the host reaches the kernel through the pipeline's `#[host]`
//! port, and the kernel's replies (ARP replies, SYN-ACKs, RSTs) come back
//! out of that port's receive side. They must leave through the NIC, whose
//! transmit queue the pipeline owns. The `#[host]` field is the host port
//! itself (every port is a host sink both ways: it transmits what is handed
//! to the host and receives what the host sends), and [`HostReturn`] is a
//! stage whose `poll` reads what the host sent ([`Cx::from_host`]) and
//! queues it for the NIC through [`Cx::transmit`], so the frames are
//! counted, tapped and flushed like every other frame the pipeline sends.
//! The pipeline owns the host port alone and lends it to the stage through
//! its context: nothing is shared, nothing is borrow-checked at run time.
//!
//! [`FlowClassify`]: super::FlowClassify

use core::convert::Infallible;
use core::marker::PhantomData;

use tpa::buf::PacketBuf;
use tpa::port::{Burst, BURST_SIZE};
use tpa::stage::{Cx, Stage, Verdict};

/// Frames read from the host port per poll, at most.
pub const RETURN_BURST: usize = BURST_SIZE;

/// The stage that sends what the pipeline's `#[host]` port receives (what
/// the kernel transmits) out of the pipeline's port.
///
/// Its `poll` reads up to [`RETURN_BURST`] frames from the host port and
/// queues as many as the transmit queue has room for; the rest wait, in
/// order, for the next poll, and nothing more is read from the host until
/// they have gone. So a full NIC makes the kernel's frames wait in the host
/// port (whose own queue drops when full, as a kernel interface does) and
/// none is dropped here.
///
/// As a stage it passes packets of type `T` on unchanged: place it where the
/// chain's types allow, at the end after a terminal stage (the default
/// `T = Infallible`) or anywhere with `T` the type flowing there.
///
/// ```
/// use tpa::buf::PoolBuf;
/// use tpa::pipeline;
/// use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
/// use tpa::stage::Reason;
/// use tpa_stages::discard::Discard;
/// use tpa_stages::mlx5::HostReturn;
///
/// #[pipeline]
/// struct Shared {
///     #[port]
///     nic: MemoryPort,
///     #[host]
///     kernel: MemoryPort,
///     app: Discard<PoolBuf>,
///     host_return: HostReturn<PoolBuf>,
/// }
///
/// let (nic, _wire) = MemoryWire::pair(WireConfig::default()).unwrap();
/// let (tap, _kernel) = MemoryWire::pair(WireConfig::default()).unwrap();
/// let mut pipe = Shared::new(nic, tap, Discard::new(Reason::UNSUPPORTED), HostReturn::new());
/// pipe.run_once();
/// ```
pub struct HostReturn<B, T = Infallible> {
    held: Burst<B, RETURN_BURST>,
    returned: u64,
    _packets: PhantomData<fn(T) -> T>,
}

impl<B, T> HostReturn<B, T> {
    /// A stage with nothing held.
    pub fn new() -> Self {
        HostReturn {
            held: Burst::new(),
            returned: 0,
            _packets: PhantomData,
        }
    }

    /// Frames from the host queued for transmission so far.
    pub fn returned(&self) -> u64 {
        self.returned
    }

    /// Frames read from the host still waiting for room in the transmit
    /// queue.
    pub fn waiting(&self) -> usize {
        self.held.len()
    }
}

impl<B, T> Default for HostReturn<B, T> {
    fn default() -> Self {
        HostReturn::new()
    }
}

impl<B, T> core::fmt::Debug for HostReturn<B, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostReturn")
            .field("returned", &self.returned)
            .field("waiting", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl<B: PacketBuf, S, T> Stage<B, S> for HostReturn<B, T> {
    type In = T;
    type Out = T;

    #[inline(always)]
    fn process(&mut self, packet: T, _cx: &mut Cx<'_, B, S>) -> Verdict<T, B> {
        Verdict::Pass(packet)
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        if self.held.is_empty() {
            cx.from_host(&mut self.held);
        }
        let room = self.held.len().min(cx.tx_room());
        for frame in self.held.drain_front(room) {
            cx.transmit(frame);
        }
        self.returned += room as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::buf::{BufferPool, PoolBuf};
    use tpa::pipeline;
    use tpa::pipeline::TX_QUEUE_LEN;
    use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
    use tpa::port::Port;

    /// Everything received goes to the host; the host's frames come back.
    struct AllToHost;

    impl Stage<PoolBuf> for AllToHost {
        type In = PoolBuf;
        type Out = Infallible;
        fn process(&mut self, f: PoolBuf, _: &mut Cx<'_, PoolBuf>) -> Verdict<Infallible, PoolBuf> {
            Verdict::ToHost(f)
        }
    }

    #[pipeline]
    struct Shared {
        #[port]
        nic: MemoryPort,
        #[host]
        kernel: MemoryPort,
        front: AllToHost,
        back: HostReturn<PoolBuf>,
    }

    fn frame(port: &mut MemoryPort, tag: u8, len: usize) -> PoolBuf {
        let mut b = port.alloc().expect("buffer");
        let bytes = b.append(len).expect("room");
        bytes.fill(tag);
        b
    }

    fn receive_all(port: &mut MemoryPort) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut rx: Burst<PoolBuf> = Burst::new();
            if port.rx_burst(&mut rx) == 0 {
                return out;
            }
            out.extend(rx.drain().map(|b| b.data().to_vec()));
        }
    }

    #[test]
    fn frames_go_to_the_host_and_the_hosts_frames_out_of_the_port() {
        let (nic, mut wire) = MemoryWire::pair(WireConfig::default()).unwrap();
        let (tap, mut kernel) = MemoryWire::pair(WireConfig::default()).unwrap();
        let mut pipe = Shared::new(nic, tap, AllToHost, HostReturn::new());

        let mut tx: Burst<PoolBuf> = Burst::new();
        tx.push(frame(&mut wire, 1, 60));
        assert_eq!(wire.tx_burst(&mut tx), 1);
        let mut tx: Burst<PoolBuf> = Burst::new();
        tx.push(frame(&mut kernel, 2, 64));
        tx.push(frame(&mut kernel, 3, 70));
        assert_eq!(kernel.tx_burst(&mut tx), 2);

        pipe.run_once();
        assert_eq!(receive_all(&mut kernel), vec![vec![1; 60]], "to the host");
        assert_eq!(
            receive_all(&mut wire),
            vec![vec![2; 64], vec![3; 70]],
            "the host's frames, in order"
        );
        assert_eq!(pipe.back.returned(), 2);
        let stats = pipe.stats();
        assert_eq!(stats.queue_counters().host_sent, 1);
        assert_eq!(stats.queue_counters().tx_sent, 2);
        assert_eq!(pipe.kernel.end(), kernel.end().peer());
        let pools = [wire.pool().clone(), kernel.pool().clone()];
        drop((pipe, wire, kernel));
        for pool in pools {
            pool.assert_whole();
        }
    }

    #[test]
    fn a_full_transmit_queue_makes_the_hosts_frames_wait_not_drop() {
        let (mut nic, mut wire) = MemoryWire::pair(WireConfig::default()).unwrap();
        let (tap, mut kernel) = MemoryWire::pair(WireConfig::default()).unwrap();
        let (mut to_kernel, mut from_kernel) = (tap, HostReturn::<PoolBuf>::new());
        let mut rt: pipeline::Runtime<PoolBuf, 32, 1> = pipeline::Runtime::new(["back"], [&[]]);

        // Fill the transmit queue but for 3 slots.
        let fill = TX_QUEUE_LEN - 3;
        let frames: Vec<PoolBuf> = (0..fill).map(|_| frame(&mut nic, 9, 60)).collect();
        rt.with_cx(&mut nic, &mut to_kernel, 0, |cx| {
            for f in frames {
                cx.transmit(f);
            }
        });
        let mut tx: Burst<PoolBuf> = Burst::new();
        for tag in 0..5 {
            tx.push(frame(&mut kernel, tag, 60));
        }
        assert_eq!(kernel.tx_burst(&mut tx), 5);

        rt.with_cx(&mut nic, &mut to_kernel, 0, |cx| from_kernel.poll(cx));
        assert_eq!((from_kernel.returned(), from_kernel.waiting()), (3, 2));
        let queued: Vec<u8> = rt.drain_tx().skip(fill).map(|b| b.data()[0]).collect();
        assert_eq!(queued, vec![0, 1, 2]);

        // The queue emptied: the two held frames go next, before new ones.
        let mut tx: Burst<PoolBuf> = Burst::new();
        tx.push(frame(&mut kernel, 7, 60));
        assert_eq!(kernel.tx_burst(&mut tx), 1);
        rt.with_cx(&mut nic, &mut to_kernel, 0, |cx| from_kernel.poll(cx));
        rt.with_cx(&mut nic, &mut to_kernel, 0, |cx| from_kernel.poll(cx));
        let queued: Vec<u8> = rt.drain_tx().map(|b| b.data()[0]).collect();
        assert_eq!(queued, vec![3, 4, 7]);
        assert_eq!((from_kernel.returned(), from_kernel.waiting()), (6, 0));
        assert_eq!(rt.queue_counters().tx_dropped, 0);
        assert!(receive_all(&mut wire).is_empty(), "nothing flushed");
        let pools = [wire.pool().clone(), kernel.pool().clone()];
        drop((rt, nic, to_kernel, from_kernel, wire, kernel));
        for pool in pools {
            pool.assert_whole();
        }
    }

    #[test]
    fn without_a_host_port_nothing_comes_back() {
        let (mut nic, _wire) = MemoryWire::pair(WireConfig::default()).unwrap();
        let mut back = HostReturn::<PoolBuf>::new();
        let mut rt: pipeline::Runtime<PoolBuf, 32, 1> = pipeline::Runtime::new(["back"], [&[]]);
        rt.with_cx(&mut nic, &mut pipeline::NoHost, 0, |cx| back.poll(cx));
        assert_eq!((back.returned(), back.waiting()), (0, 0));
        assert_eq!(rt.drain_tx().count(), 0);
    }
}
