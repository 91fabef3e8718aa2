//! The cost of `#[pipeline]`: the generated loop against the same logic
//! written by hand, against the same chain behind `Box<dyn …>`, and l2fwd
//! between two in-memory ports.
//!
//! 1. `chain/{1,4,8}`: bursts of 32 frames through 1, 4 and 8 trivial
//!    stages (each bumps one byte; the last transmits). The port recycles
//!    the same 32 buffers, so the loop itself is what is measured.
//!    Variants:
//!    - `pipeline`: the generated loop;
//!    - `hand`: one hand-written loop keeping the same per-stage counters
//!      the same way (each packet counted once, where it ends);
//!    - `dyn_packet`: the same runtime with the stages in a
//!      `Vec<Box<dyn …>>`, one virtual call per stage and *packet*;
//!    - `dyn_burst`: the same, one virtual call per stage and *burst* (each
//!      stage runs the whole burst through its own, inlined `process`, as a
//!      careful dynamic design would);
//!    - `chain/1` also `pipeline+observer`: the pipeline with an
//!      `#[observer]` counting bytes both ways.
//! 2. `l2fwd/{hot,cold}`: a MAC-swapping forwarder that receives on one
//!    port and transmits on another (the ends of two `MemoryWire`s). On the
//!    same core, a generator sends a burst of 32 frames into the first wire
//!    and a sink takes them off the second, every iteration; the sink hands
//!    the buffers back to the generator. `hot`: 32 buffers go round, always
//!    in cache. `cold`: the generator cycles through [`COLD_BUFFERS`]
//!    buffers, whose lines the forwarder and the wires touch (2 × 64 bytes
//!    each) add up to twice this machine's 32 MiB last-level cache, so each
//!    frame arrives cold. Variants `pipeline` and `hand`, checked to have
//!    forwarded every frame the generator sent, and `move`, a forwarder
//!    that only moves each burst across (what the wires and the traffic
//!    cost by themselves).
//!
//! Mpps everywhere = frames that left the forwarding (for `chain`, the
//! only) port per second, each frame counted once: 32 per iteration. For
//! `l2fwd` the time includes the generator and the sink on the same core.
//!
//! Run: `cargo bench -p tpa-benches --bench pipeline`. Medians (ns per
//! packet), Mpps and ratios are printed at the end, then an interleaved
//! comparison timed with the thread's CPU clock. `benches/callgrind.sh`
//! counts instructions per packet of `pipeline` and `hand` instead
//! (`TPA_PIPELINE_RUN=<group>/<variant>:<iterations>` runs one variant alone;
//! `TPA_PIPELINE_INTERLEAVED=1` runs only the interleaved comparison).

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::pipeline;
use tpa::pipeline::{settle, NoHost, NoObserver, Observer, Runtime};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::port::{Burst, Port, PortCaps};
use tpa::stage::{Cx, Reason, Stage, StageStats, Verdict};
use tpa::time::Clock;
use tpa::wire::MacAddr;
use tpa_benches::loop_port::LoopPort;
use tpa_benches::results::{self, Record};

/// Packets per burst.
const BURST: usize = 32;

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 41;

/// Buffers the generator of `l2fwd/cold` cycles through.
const COLD_BUFFERS: usize = 1 << 19;

/// One variant of a group: what an iteration does, and the check that every
/// iteration did all its work.
trait Workload {
    /// One iteration: a burst through the loop under test.
    fn iteration(&mut self);
    /// Panics unless every iteration so far transmitted its whole burst.
    fn check(&self);
    /// The pool the workload's buffers come from, when it made one: whole
    /// again once the workload is dropped.
    fn pool(&self) -> Option<Pool> {
        None
    }
}

/// Checks `w` did its work, drops it and checks its pool got every buffer
/// back.
fn finish(w: Box<dyn Workload>) {
    w.check();
    let pool = w.pool();
    drop(w);
    if let Some(pool) = pool {
        pool.assert_whole();
    }
}

/// A port that receives the buffers it transmitted: `BURST` 64-byte
/// frames circulate, so every iteration sees a full burst and no copy.
fn loop_port() -> LoopPort {
    LoopPort::new(BURST, MacAddr([2, 0, 0, 0, 0, 1]), |i| vec![i as u8; 64])
}

/// Adds one to byte `I` and passes the frame on.
#[derive(Default)]
struct Touch<const I: usize>;
impl<B: PacketBuf, const I: usize, S> Stage<B, S> for Touch<I> {
    type In = B;
    type Out = B;
    #[inline]
    fn process(&mut self, mut p: B, _: &mut Cx<'_, B, S>) -> Verdict<B> {
        if let Some(b) = p.data_mut().get_mut(I) {
            *b = b.wrapping_add(1);
        }
        Verdict::Pass(p)
    }
}

/// Adds one to byte 15 and transmits the frame.
#[derive(Default)]
struct Send;
impl<B: PacketBuf, S> Stage<B, S> for Send {
    type In = B;
    type Out = core::convert::Infallible;
    #[inline]
    fn process(&mut self, mut p: B, _: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        if let Some(b) = p.data_mut().get_mut(15) {
            *b = b.wrapping_add(1);
        }
        Verdict::Transmit(p)
    }
}

#[pipeline(burst = 32)]
struct Chain1 {
    #[port]
    port: LoopPort,
    send: Send,
}

/// Counts the bytes crossing the port each way: the cheapest useful observer.
#[derive(Default)]
struct ByteCount {
    rx: u64,
    tx: u64,
}

impl<B: PacketBuf> Observer<B> for ByteCount {
    #[inline]
    fn on_rx(&mut self, frame: &B, _now_ns: u64) {
        self.rx += frame.len() as u64;
    }
    #[inline]
    fn on_tx(&mut self, frame: &B, _now_ns: u64) {
        self.tx += frame.len() as u64;
    }
}

/// `Chain1` with an observer: what watching both directions costs.
#[pipeline(burst = 32)]
struct Chain1Observed {
    #[port]
    port: LoopPort,
    #[observer]
    observer: ByteCount,
    send: Send,
}

#[pipeline(burst = 32)]
struct Chain4 {
    #[port]
    port: LoopPort,
    t0: Touch<0>,
    t1: Touch<1>,
    t2: Touch<2>,
    send: Send,
}

#[pipeline(burst = 32)]
struct Chain8 {
    #[port]
    port: LoopPort,
    t0: Touch<0>,
    t1: Touch<1>,
    t2: Touch<2>,
    t3: Touch<3>,
    t4: Touch<4>,
    t5: Touch<5>,
    t6: Touch<6>,
    send: Send,
}

fn chain4() -> Chain4 {
    Chain4::new(loop_port(), Touch, Touch, Touch, Send)
}

fn chain8() -> Chain8 {
    Chain8::new(
        loop_port(),
        Touch,
        Touch,
        Touch,
        Touch,
        Touch,
        Touch,
        Touch,
        Send,
    )
}

fn chain1() -> Chain1 {
    Chain1::new(loop_port(), Send)
}

/// Implements [`Workload`] for a generated chain whose last stage is `send`.
macro_rules! chain_workload {
    ($($chain:ty),*) => {$(
        impl Workload for $chain {
            #[inline]
            fn iteration(&mut self) {
                black_box(self.run_once());
            }
            fn check(&self) {
                let s = self.stats();
                let sent = s.stage("send").expect("a stage called send").transmitted;
                assert_eq!(sent, s.counters().iterations * BURST as u64, "every frame transmitted");
                assert_eq!(s.queue_counters().tx_dropped, 0);
            }
        }
    )*};
}
chain_workload!(Chain1, Chain1Observed, Chain4, Chain8);

/// The loop's own counters, kept by the hand-written loops as the
/// pipeline keeps them.
#[derive(Default)]
struct LoopCounters {
    iterations: u64,
    rx: u64,
    tx_sent: u64,
}

/// The hand-written loop: `TOUCHES` stages bumping bytes `0..TOUCHES`, then
/// the transmitting one. It keeps the pipeline's counters, the same way:
/// each packet is counted once, where it ends (here, transmitted; the
/// passes of the stages before follow from that), and the loop counts
/// iterations, packets received and packets sent.
struct Hand<const TOUCHES: usize> {
    port: LoopPort,
    rx: Burst<PoolBuf, BURST>,
    tx: Burst<PoolBuf, 64>,
    counters: LoopCounters,
    transmitted: u64,
    clock: &'static Clock,
}

impl<const TOUCHES: usize> Hand<TOUCHES> {
    fn new() -> Self {
        Hand {
            port: loop_port(),
            rx: Burst::new(),
            tx: Burst::new(),
            counters: LoopCounters::default(),
            transmitted: 0,
            clock: Clock::global(),
        }
    }
}

impl<const TOUCHES: usize> Workload for Hand<TOUCHES> {
    #[inline]
    fn iteration(&mut self) {
        black_box(self.clock.now_ns());
        self.counters.iterations += 1;
        self.counters.rx += self.port.rx_burst(&mut self.rx) as u64;
        for mut p in self.rx.drain() {
            let data = p.data_mut();
            for i in 0..TOUCHES {
                if let Some(b) = data.get_mut(i) {
                    *b = b.wrapping_add(1);
                }
            }
            if let Some(b) = data.get_mut(15) {
                *b = b.wrapping_add(1);
            }
            self.transmitted += 1;
            self.tx.push(p);
        }
        self.counters.tx_sent += self.port.tx_burst(&mut self.tx) as u64;
    }
    fn check(&self) {
        let c = &self.counters;
        assert_eq!(self.transmitted, c.iterations * BURST as u64);
        assert_eq!((c.rx, c.tx_sent), (self.transmitted, self.transmitted));
    }
}

/// `Send` for the dynamic chains, whose stages all pass buffers.
struct DynSend;
impl Stage<PoolBuf> for DynSend {
    type In = PoolBuf;
    type Out = PoolBuf;
    #[inline]
    fn process(&mut self, p: PoolBuf, cx: &mut Cx<'_, PoolBuf>) -> Verdict<PoolBuf> {
        match Send.process(p, cx) {
            Verdict::Transmit(b) => Verdict::Transmit(b),
            _ => Verdict::Drop(Reason::UNEXPECTED),
        }
    }
}

/// A stage behind a vtable, called once per packet.
trait DynStage {
    fn process(&mut self, p: PoolBuf, cx: &mut Cx<'_, PoolBuf>) -> Verdict<PoolBuf>;
}

impl<S: Stage<PoolBuf, In = PoolBuf, Out = PoolBuf>> DynStage for S {
    fn process(&mut self, p: PoolBuf, cx: &mut Cx<'_, PoolBuf>) -> Verdict<PoolBuf> {
        Stage::process(self, p, cx)
    }
}

/// A stage behind a vtable, called once per burst: the stage's own
/// `process` is inlined into its loop over the burst.
trait DynBurstStage {
    /// Runs every packet of `input` through the stage, settling each
    /// verdict; the packets it passes on go to `output`.
    fn process_burst(
        &mut self,
        input: &mut Burst<PoolBuf, BURST>,
        output: &mut Burst<PoolBuf, BURST>,
        stats: &mut StageStats,
        cx: &mut Cx<'_, PoolBuf>,
    );
}

impl<S: Stage<PoolBuf, In = PoolBuf, Out = PoolBuf>> DynBurstStage for S {
    fn process_burst(
        &mut self,
        input: &mut Burst<PoolBuf, BURST>,
        output: &mut Burst<PoolBuf, BURST>,
        stats: &mut StageStats,
        cx: &mut Cx<'_, PoolBuf>,
    ) {
        for p in input.drain() {
            if let Some(p) = settle(Stage::process(self, p, cx), stats, cx) {
                output.push(p);
            }
        }
    }
}

/// `touches` `Touch` stages and a `DynSend`, boxed as `T`.
fn dyn_stages<T: ?Sized>(touches: usize, boxed: fn(Box<dyn AnyStage>) -> Box<T>) -> Vec<Box<T>> {
    let touch: [fn() -> Box<dyn AnyStage>; 7] = [
        || Box::new(Touch::<0>),
        || Box::new(Touch::<1>),
        || Box::new(Touch::<2>),
        || Box::new(Touch::<3>),
        || Box::new(Touch::<4>),
        || Box::new(Touch::<5>),
        || Box::new(Touch::<6>),
    ];
    let mut stages: Vec<Box<T>> = touch
        .iter()
        .take(touches)
        .map(|make| boxed(make()))
        .collect();
    stages.push(boxed(Box::new(DynSend)));
    stages
}

/// Both dynamic forms of a stage, so one list of stages builds either chain.
trait AnyStage: DynStage + DynBurstStage {}
impl<S: DynStage + DynBurstStage> AnyStage for S {}

/// The same runtime as the generated loops, stages called through `dyn`
/// once per stage and packet (`PER_BURST = false`) or once per stage and
/// burst (`true`).
struct DynChain<const PER_BURST: bool> {
    port: LoopPort,
    rt: Runtime<PoolBuf, BURST, 1>,
    stages: Vec<Box<dyn AnyStage>>,
    stats: Vec<StageStats>,
    spare: Burst<PoolBuf, BURST>,
}

impl<const PER_BURST: bool> DynChain<PER_BURST> {
    fn new(touches: usize) -> Self {
        let stages = dyn_stages(touches, |s| s);
        let stats = vec![StageStats::default(); stages.len()];
        DynChain {
            port: loop_port(),
            rt: Runtime::new(["dyn"], [&[]]),
            stages,
            stats,
            spare: Burst::new(),
        }
    }
}

impl<const PER_BURST: bool> Workload for DynChain<PER_BURST> {
    fn iteration(&mut self) {
        let now = self.rt.now_ns();
        let (stages, stats, spare) = (&mut self.stages, &mut self.stats, &mut self.spare);
        let rx = self.rt.receive(
            &mut self.port,
            &mut NoHost,
            &mut NoObserver,
            now,
            &mut (),
            |burst, cx, tally| {
                if PER_BURST {
                    let (mut input, mut output) = (burst, spare);
                    for (stage, stats) in stages.iter_mut().zip(stats.iter_mut()) {
                        DynBurstStage::process_burst(&mut **stage, input, output, stats, cx);
                        core::mem::swap(&mut input, &mut output);
                    }
                    for p in input.drain() {
                        tally.end(p);
                    }
                } else {
                    'packets: for mut p in burst.drain() {
                        for (stage, stats) in stages.iter_mut().zip(stats.iter_mut()) {
                            match settle(DynStage::process(&mut **stage, p, cx), stats, cx) {
                                Some(next) => p = next,
                                None => continue 'packets,
                            }
                        }
                        tally.end(p);
                    }
                }
            },
        );
        black_box(self.rt.flush(
            &mut self.port,
            &mut NoHost,
            &mut NoObserver,
            now,
            rx,
            0,
            None,
        ));
    }
    fn check(&self) {
        let sent = self.stats.last().map_or(0, |s| s.transmitted);
        assert_eq!(sent, self.rt.counters().iterations * BURST as u64);
    }
}

/// Swaps the Ethernet addresses in place; `false` if the frame is too short.
#[inline(always)]
fn swap_macs<B: PacketBuf>(p: &mut B) -> bool {
    let Some(h) = p.data_mut().get_mut(..12) else {
        return false;
    };
    let (dst, src) = h.split_at_mut(6);
    dst.swap_with_slice(src);
    true
}

/// The l2fwd stage: swap, then transmit.
struct L2Fwd;
impl<B: PacketBuf, S> Stage<B, S> for L2Fwd {
    type In = B;
    type Out = core::convert::Infallible;
    #[inline]
    fn process(&mut self, mut p: B, _: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        if swap_macs(&mut p) {
            Verdict::Transmit(p)
        } else {
            Verdict::Drop(Reason::TOO_SHORT)
        }
    }
}

/// The forwarding port pair of an l2fwd: receives on one port, transmits
/// on the other (DPDK's l2fwd pairs its ports the same way).
struct PortPair {
    rx: MemoryPort,
    tx: MemoryPort,
}

impl Port for PortPair {
    type Buf = PoolBuf;
    #[inline]
    fn rx_burst<const N: usize>(&mut self, rx: &mut Burst<PoolBuf, N>) -> usize {
        self.rx.rx_burst(rx)
    }
    #[inline]
    fn tx_burst<const N: usize>(&mut self, tx: &mut Burst<PoolBuf, N>) -> usize {
        self.tx.tx_burst(tx)
    }
    fn pool(&self) -> &tpa::buf::PoolOf<PoolBuf> {
        self.tx.pool()
    }
    fn caps(&self) -> &PortCaps {
        self.tx.caps()
    }
}

#[pipeline(burst = 32)]
struct Forwarder {
    #[port]
    port: PortPair,
    swap: L2Fwd,
}

/// The generator and the sink around a forwarder: `gen` sends into the
/// forwarder's receiving wire, `sink` takes frames off its transmitting
/// wire. The frames wait in bursts of `BURST`, used in turn: a burst is
/// sent, and what the sink receives refills it.
struct Traffic {
    gen: MemoryPort,
    sink: MemoryPort,
    bursts: Vec<Burst<PoolBuf, BURST>>,
    next: usize,
    sent: u64,
    delivered: u64,
    pool: Pool,
}

impl Traffic {
    /// Traffic cycling through `buffers` (a multiple of `BURST`) 60-byte
    /// frames, and the port pair it feeds.
    fn new(buffers: usize) -> (Traffic, PortPair) {
        let pool = Pool::new(PoolConfig {
            name: "l2fwd".into(),
            capacity: buffers + 4096,
            ..PoolConfig::default()
        })
        .expect("pool");
        let wire = || {
            MemoryWire::pair(WireConfig {
                pool: Some(pool.clone()),
                ..WireConfig::default()
            })
            .expect("wire")
        };
        let ((gen, rx), (tx, sink)) = (wire(), wire());
        let mut frame = [0u8; 60];
        frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        frame[12..14].copy_from_slice(&[0x88, 0xb5]);
        let bursts = (0..buffers / BURST)
            .map(|_| {
                let mut burst = Burst::new();
                for _ in 0..BURST {
                    let mut b = pool.alloc().expect("buffer");
                    b.extend_from_slice(&frame).expect("room");
                    burst.push(b);
                }
                burst
            })
            .collect();
        let traffic = Traffic {
            gen,
            sink,
            bursts,
            next: 0,
            sent: 0,
            delivered: 0,
            pool,
        };
        (traffic, PortPair { rx, tx })
    }

    /// Sends the next burst towards the forwarder.
    #[inline(always)]
    fn send(&mut self) {
        if let Some(burst) = self.bursts.get_mut(self.next) {
            self.sent += self.gen.tx_burst(burst) as u64;
        }
    }

    /// Takes what the forwarder sent off the wire, into the burst just
    /// sent, and moves on to the next burst.
    #[inline(always)]
    fn collect(&mut self) {
        if let Some(burst) = self.bursts.get_mut(self.next) {
            self.delivered += self.sink.rx_burst(burst) as u64;
        }
        self.next += 1;
        if self.next == self.bursts.len() {
            self.next = 0;
        }
    }

    /// Every frame sent was forwarded, and `forwarded` says so too.
    fn check(&self, forwarded: u64) {
        assert_eq!(
            self.delivered, self.sent,
            "every frame sent reached the sink"
        );
        assert_eq!(forwarded, self.sent, "the forwarder counted every frame");
    }
}

/// The l2fwd forwarder written by hand: receive, swap, count, transmit,
/// with the clock read once per burst and the counters kept as the
/// pipeline keeps them.
struct HandForwarder {
    port: PortPair,
    rx: Burst<PoolBuf, BURST>,
    tx: Burst<PoolBuf, 64>,
    counters: LoopCounters,
    transmitted: u64,
    dropped: u64,
    clock: &'static Clock,
}

impl HandForwarder {
    #[inline(always)]
    fn run_once(&mut self) {
        black_box(self.clock.now_ns());
        self.counters.iterations += 1;
        self.counters.rx += self.port.rx_burst(&mut self.rx) as u64;
        for mut f in self.rx.drain() {
            if swap_macs(&mut f) {
                self.transmitted += 1;
                self.tx.push(f);
            } else {
                self.dropped += 1;
            }
        }
        self.counters.tx_sent += self.port.tx_burst(&mut self.tx) as u64;
    }
}

/// A forwarder that only moves each burst from one port to the other: what
/// the ports and the traffic cost without any forwarding logic.
struct MoveForwarder {
    port: PortPair,
    burst: Burst<PoolBuf, BURST>,
    moved: u64,
}

impl MoveForwarder {
    #[inline(always)]
    fn run_once(&mut self) {
        self.port.rx_burst(&mut self.burst);
        self.moved += self.port.tx_burst(&mut self.burst) as u64;
    }
}

/// An l2fwd variant: the traffic and a forwarder (`Forwarder` or
/// `HandForwarder`).
struct L2fwd<F> {
    traffic: Traffic,
    forwarder: F,
}

fn l2fwd_pipeline(buffers: usize) -> L2fwd<Forwarder> {
    let (traffic, port) = Traffic::new(buffers);
    L2fwd {
        traffic,
        forwarder: Forwarder::new(port, L2Fwd),
    }
}

fn l2fwd_hand(buffers: usize) -> L2fwd<HandForwarder> {
    let (traffic, port) = Traffic::new(buffers);
    let forwarder = HandForwarder {
        port,
        rx: Burst::new(),
        tx: Burst::new(),
        counters: LoopCounters::default(),
        transmitted: 0,
        dropped: 0,
        clock: Clock::global(),
    };
    L2fwd { traffic, forwarder }
}

impl Workload for L2fwd<Forwarder> {
    #[inline]
    fn iteration(&mut self) {
        self.traffic.send();
        black_box(self.forwarder.run_once());
        self.traffic.collect();
    }
    fn check(&self) {
        let s = self.forwarder.stats();
        let swap = s.stage("swap").expect("the swap stage");
        self.traffic.check(swap.transmitted);
        assert_eq!(s.queue_counters().tx_sent, swap.transmitted);
        assert_eq!(swap.total(), swap.transmitted, "no frame dropped");
    }
    fn pool(&self) -> Option<Pool> {
        Some(self.traffic.pool.clone())
    }
}

fn l2fwd_move(buffers: usize) -> L2fwd<MoveForwarder> {
    let (traffic, port) = Traffic::new(buffers);
    let forwarder = MoveForwarder {
        port,
        burst: Burst::new(),
        moved: 0,
    };
    L2fwd { traffic, forwarder }
}

impl Workload for L2fwd<MoveForwarder> {
    #[inline]
    fn iteration(&mut self) {
        self.traffic.send();
        self.forwarder.run_once();
        self.traffic.collect();
    }
    fn check(&self) {
        self.traffic.check(self.forwarder.moved);
    }
    fn pool(&self) -> Option<Pool> {
        Some(self.traffic.pool.clone())
    }
}

impl Workload for L2fwd<HandForwarder> {
    #[inline]
    fn iteration(&mut self) {
        self.traffic.send();
        self.forwarder.run_once();
        self.traffic.collect();
    }
    fn check(&self) {
        let f = &self.forwarder;
        self.traffic.check(f.transmitted);
        assert_eq!(f.dropped, 0);
        assert_eq!(
            (f.counters.rx, f.counters.tx_sent),
            (f.transmitted, f.transmitted)
        );
    }
    fn pool(&self) -> Option<Pool> {
        Some(self.traffic.pool.clone())
    }
}

/// The variants of every group, as `(group, [(variant, constructor)])`.
type Make = fn() -> Box<dyn Workload>;
fn groups() -> Vec<(&'static str, Vec<(&'static str, Make)>)> {
    vec![
        (
            "chain/1",
            vec![
                ("pipeline", || Box::new(chain1())),
                ("hand", || Box::new(Hand::<0>::new())),
                ("dyn_packet", || Box::new(DynChain::<false>::new(0))),
                ("dyn_burst", || Box::new(DynChain::<true>::new(0))),
                ("pipeline+observer", || {
                    Box::new(Chain1Observed::new(loop_port(), ByteCount::default(), Send))
                }),
            ],
        ),
        (
            "chain/4",
            vec![
                ("pipeline", || Box::new(chain4())),
                ("hand", || Box::new(Hand::<3>::new())),
                ("dyn_packet", || Box::new(DynChain::<false>::new(3))),
                ("dyn_burst", || Box::new(DynChain::<true>::new(3))),
            ],
        ),
        (
            "chain/8",
            vec![
                ("pipeline", || Box::new(chain8())),
                ("hand", || Box::new(Hand::<7>::new())),
                ("dyn_packet", || Box::new(DynChain::<false>::new(7))),
                ("dyn_burst", || Box::new(DynChain::<true>::new(7))),
            ],
        ),
        (
            "l2fwd/hot",
            vec![
                ("pipeline", || Box::new(l2fwd_pipeline(BURST))),
                ("hand", || Box::new(l2fwd_hand(BURST))),
                ("move", || Box::new(l2fwd_move(BURST))),
            ],
        ),
        (
            "l2fwd/cold",
            vec![
                ("pipeline", || Box::new(l2fwd_pipeline(COLD_BUFFERS))),
                ("hand", || Box::new(l2fwd_hand(COLD_BUFFERS))),
                ("move", || Box::new(l2fwd_move(COLD_BUFFERS))),
            ],
        ),
    ]
}

fn bench_all(c: &mut Criterion) {
    for (group, variants) in groups() {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(BURST as u64));
        for (name, make) in variants {
            let mut w = make();
            g.bench_function(name, |b| b.iter(|| w.iteration()));
            finish(w);
        }
        g.finish();
    }
}

/// Reads the median point estimate (ns per iteration) criterion stored.
fn median_ns(group: &str, name: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target
        .join("criterion")
        .join(group.replace('/', "_"))
        .join(name)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let median = &text[text.find("\"median\"")?..];
    let pe = &median[median.find("\"point_estimate\":")? + 17..];
    let end = pe.find([',', '}'])?;
    pe[..end].trim().parse().ok()
}

fn summary() {
    println!("\n| group | variant | ns/packet | Mpps | ratio to pipeline |");
    println!("|---|---|---:|---:|---:|");
    for (group, variants) in groups() {
        let Some(base) = median_ns(group, "pipeline") else {
            continue;
        };
        for (name, _) in variants {
            if let Some(ns) = median_ns(group, name) {
                let per_packet = ns / BURST as f64;
                println!(
                    "| {group} | {name} | {per_packet:.2} | {:.1} | {:.3} |",
                    1e3 / per_packet,
                    ns / base
                );
            }
        }
    }
}

/// A variant of a group under its name, for [`interleaved`].
type Variant = (&'static str, Box<dyn Workload>);

/// Nanoseconds this thread has spent on a CPU (`CLOCK_THREAD_CPUTIME_ID`):
/// unlike wall time, it does not count the time other processes held the
/// core, which on a shared machine is most of the noise.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // Linux defines.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Times the variants of one group in alternation (`rounds` rounds of
/// `iters` iterations each, the order rotating), so that load from other
/// processes hits all of them alike. Returns, per variant, the median ns per
/// packet (of thread CPU time) and the median of its per-round ratio to the
/// first variant.
fn interleaved(variants: &mut [Variant], rounds: usize, iters: usize) -> Vec<(f64, f64)> {
    let k = variants.len();
    let mut ns = vec![Vec::with_capacity(rounds); k];
    for round in 0..rounds {
        let mut this = vec![0.0; k];
        for j in 0..k {
            let v = (round + j) % k;
            let w = &mut variants[v].1;
            let start = thread_cpu_ns();
            for _ in 0..iters {
                w.iteration();
            }
            this[v] = (thread_cpu_ns() - start) as f64 / (iters * BURST) as f64;
        }
        for v in 0..k {
            ns[v].push(this[v]);
        }
    }
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    (0..k)
        .map(|v| {
            let ratios = ns[v].iter().zip(&ns[0]).map(|(x, base)| x / base).collect();
            (median(ns[v].clone()), median(ratios))
        })
        .collect()
}

/// The interleaved comparison of every group, as a table.
fn interleaved_summary() {
    println!("\nInterleaved, thread CPU time (median of 41 rounds; ratio = variant / pipeline, per round)");
    println!("| group | variant | ns/packet | Mpps | ratio to pipeline |");
    println!("|---|---|---:|---:|---:|");
    let mut records = Vec::new();
    for (group, variants) in groups() {
        let iters = if group.starts_with("l2fwd") {
            5_000
        } else {
            20_000
        };
        let mut variants: Vec<Variant> =
            variants.into_iter().map(|(n, make)| (n, make())).collect();
        let rows = interleaved(&mut variants, ROUNDS, iters);
        for ((name, w), (ns, ratio)) in variants.into_iter().zip(rows) {
            finish(w);
            println!(
                "| {group} | {name} | {ns:.2} | {:.1} | {ratio:.3} |",
                1e3 / ns
            );
            records.push(Record {
                group: format!("interleaved/{group}"),
                function: name.to_string(),
                ns_per_iter: Some(ns * BURST as f64),
                instructions_per_iter: None,
                elements: BURST as u64,
                samples: ROUNDS as u64,
            });
        }
    }
    match results::write("pipeline-interleaved", &records) {
        Ok(path) => println!("(written to {})", path.display()),
        Err(e) => eprintln!("could not write the interleaved figures: {e}"),
    }
}

/// Runs one variant `iters` times and nothing else, for an instruction
/// count under callgrind (`benches/callgrind.sh`): the variant is named
/// `<group>/<variant>`, as in the tables.
fn run_alone(name: &str, iters: usize) -> Result<(), String> {
    let make = groups()
        .into_iter()
        .flat_map(|(g, vs)| {
            vs.into_iter()
                .map(move |(v, make)| (format!("{g}/{v}"), make))
        })
        .find(|(n, _)| n == name)
        .map(|(_, make)| make)
        .ok_or_else(|| format!("no variant {name}"))?;
    let mut w = make();
    for _ in 0..iters {
        w.iteration();
    }
    finish(w);
    Ok(())
}

fn main() {
    if let Ok(spec) = std::env::var("TPA_PIPELINE_RUN") {
        let parsed = spec
            .split_once(':')
            .and_then(|(n, i)| Some((n, i.parse().ok()?)));
        let result = match parsed {
            Some((name, iters)) => run_alone(name, iters),
            None => Err(format!(
                "TPA_PIPELINE_RUN={spec}: want <group>/<variant>:<iterations>"
            )),
        };
        if let Err(e) = result {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    if std::env::var_os("TPA_PIPELINE_INTERLEAVED").is_some() {
        // The interleaved comparison alone, without criterion.
        interleaved_summary();
        return;
    }
    let mut c = tpa_benches::criterion().sample_size(30);
    bench_all(&mut c);
    c.final_summary();
    // Only after a full run: with a filter, `--test` or `--profile-time`
    // the stored estimates are not all from this run, and under
    // `cargo test` nothing was measured.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args == ["--bench"] {
        summary();
        interleaved_summary();
    }
}
