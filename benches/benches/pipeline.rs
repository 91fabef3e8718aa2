//! The cost of `#[pipeline]`: the generated loop against the same logic
//! written by hand, against the same chain behind `Box<dyn …>`, and an
//! l2fwd-style MAC swap over the in-memory wire.
//!
//! 1. `chain/{1,4,8}`: bursts of 32 frames through 1, 4 and 8 trivial
//!    stages (each bumps one byte and is counted; the last transmits).
//!    Variants: `pipeline` (generated), `hand` (one hand-written loop keeping
//!    the same counters), `dyn` (the same runtime with the stages in a
//!    `Vec<Box<dyn DynStage>>`); `chain/1` also `pipeline+observer` (the same
//!    pipeline with an `#[observer]` counting bytes both ways). The port
//!    recycles the same 32 buffers, so the loop itself is what is measured.
//! 2. `l2fwd`: a MAC-swap reflector on one end of a `MemoryWire`, the peer
//!    on the other end sending the frames back (both ends on this core, so
//!    every packet crosses the wire twice per iteration): `pipeline` vs
//!    `hand`.
//!
//! Run: `cargo bench -p tpa-benches --bench pipeline`. Medians (ns per
//! packet), Mpps and ratios are printed at the end.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use tpa::buf::{PacketBuf, PoolBuf};
use tpa::pipeline;
use tpa::pipeline::{settle, NoHost, NoObserver, Observer, Runtime};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::port::{Burst, Port};
use tpa::stage::{Cx, Reason, Stage, StageStats, Verdict};
use tpa::time::Clock;
use tpa::wire::MacAddr;
use tpa_benches::loop_port::LoopPort;

/// Packets per burst.
const BURST: usize = 32;

/// A port that receives the buffers it transmitted: `BURST` 64-byte
/// frames circulate, so every iteration sees a full burst and no copy.
fn loop_port() -> LoopPort {
    LoopPort::new(BURST, MacAddr([2, 0, 0, 0, 0, 1]), |i| vec![i as u8; 64])
}

/// Adds one to byte `I` and passes the frame on.
#[derive(Default)]
struct Touch<const I: usize>;
impl<B: PacketBuf, const I: usize> Stage<B> for Touch<I> {
    type In = B;
    type Out = B;
    #[inline]
    fn process(&mut self, mut p: B, _: &mut Cx<'_, B>) -> Verdict<B> {
        if let Some(b) = p.data_mut().get_mut(I) {
            *b = b.wrapping_add(1);
        }
        Verdict::Pass(p)
    }
}

/// Adds one to byte 15 and transmits the frame.
#[derive(Default)]
struct Send;
impl<B: PacketBuf> Stage<B> for Send {
    type In = B;
    type Out = core::convert::Infallible;
    #[inline]
    fn process(&mut self, mut p: B, _: &mut Cx<'_, B>) -> Verdict<Self::Out, B> {
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

/// The hand-written loop: `touches` stages bumping bytes `0..touches`, then
/// the transmitting one, counted as the pipeline counts: where each packet
/// ends (here, transmitted), the passes of every stage before following
/// from that.
struct Hand {
    port: LoopPort,
    rx: Burst<PoolBuf, BURST>,
    tx: Burst<PoolBuf, 64>,
    transmitted: u64,
    clock: &'static Clock,
}

impl Hand {
    fn new() -> Self {
        Hand {
            port: loop_port(),
            rx: Burst::new(),
            tx: Burst::new(),
            transmitted: 0,
            clock: Clock::global(),
        }
    }

    #[inline(always)]
    fn run_once<const TOUCHES: usize>(&mut self) -> usize {
        black_box(self.clock.now_ns());
        let n = self.port.rx_burst(&mut self.rx);
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
        self.port.tx_burst(&mut self.tx);
        n
    }
}

/// A stage behind a vtable: what the pipeline would be without generics.
trait DynStage {
    fn process(&mut self, p: PoolBuf, cx: &mut Cx<'_, PoolBuf>) -> Verdict<PoolBuf>;
    fn poll(&mut self, cx: &mut Cx<'_, PoolBuf>);
}

impl<S: Stage<PoolBuf, In = PoolBuf>> DynStage for S
where
    S::Out: Into<PoolBuf>,
{
    fn process(&mut self, p: PoolBuf, cx: &mut Cx<'_, PoolBuf>) -> Verdict<PoolBuf> {
        Stage::process(self, p, cx).map(Into::into)
    }
    fn poll(&mut self, cx: &mut Cx<'_, PoolBuf>) {
        Stage::poll(self, cx)
    }
}

/// `Send` for the dynamic chain, whose stages all pass buffers.
struct DynSend;
impl Stage<PoolBuf> for DynSend {
    type In = PoolBuf;
    type Out = PoolBuf;
    fn process(&mut self, p: PoolBuf, cx: &mut Cx<'_, PoolBuf>) -> Verdict<PoolBuf> {
        match Send.process(p, cx) {
            Verdict::Transmit(b) => Verdict::Transmit(b),
            _ => Verdict::Drop(Reason::UNEXPECTED),
        }
    }
}

/// The same runtime as the generated loops, stages called through `dyn`.
struct DynChain {
    port: LoopPort,
    rt: Runtime<PoolBuf, BURST, 1>,
    stages: Vec<Box<dyn DynStage>>,
    stats: Vec<StageStats>,
}

impl DynChain {
    fn new(touches: usize) -> Self {
        let mut stages: Vec<Box<dyn DynStage>> = Vec::new();
        let touch: [fn() -> Box<dyn DynStage>; 7] = [
            || Box::new(Touch::<0>),
            || Box::new(Touch::<1>),
            || Box::new(Touch::<2>),
            || Box::new(Touch::<3>),
            || Box::new(Touch::<4>),
            || Box::new(Touch::<5>),
            || Box::new(Touch::<6>),
        ];
        for make in touch.iter().take(touches) {
            stages.push(make());
        }
        stages.push(Box::new(DynSend));
        let stats = vec![StageStats::default(); stages.len()];
        DynChain {
            port: loop_port(),
            rt: Runtime::new(["dyn"], [&[]]),
            stages,
            stats,
        }
    }

    fn run_once(&mut self) -> usize {
        let now = self.rt.now_ns();
        let (stages, stats) = (&mut self.stages, &mut self.stats);
        let rx = self.rt.receive(
            &mut self.port,
            &mut NoHost,
            &mut NoObserver,
            now,
            |burst, cx, tally| {
                'packets: for mut p in burst.drain() {
                    for (stage, stats) in stages.iter_mut().zip(stats.iter_mut()) {
                        match settle(stage.process(p, cx), stats, cx) {
                            Some(next) => p = next,
                            None => continue 'packets,
                        }
                    }
                    tally.end(p);
                }
            },
        );
        self.rt
            .poll(&mut self.port, &mut NoHost, &mut NoObserver, now, |cx| {
                for s in stages.iter_mut() {
                    s.poll(cx);
                }
            });
        self.rt
            .flush(&mut self.port, &mut NoHost, &mut NoObserver, now, rx)
            .rx
    }
}

fn bench_chains(c: &mut Criterion) {
    for stages in [1usize, 4, 8] {
        let mut g = c.benchmark_group(format!("chain/{stages}"));
        g.throughput(Throughput::Elements(BURST as u64));
        match stages {
            1 => {
                let mut p = Chain1::new(loop_port(), Send);
                g.bench_function("pipeline", |b| b.iter(|| black_box(p.run_once())));
                let mut h = Hand::new();
                g.bench_function("hand", |b| b.iter(|| black_box(h.run_once::<0>())));
                let mut t = Chain1Observed::new(loop_port(), ByteCount::default(), Send);
                g.bench_function("pipeline+observer", |b| b.iter(|| black_box(t.run_once())));
                black_box((t.observer.rx, t.observer.tx));
            }
            4 => {
                let mut p = chain4();
                g.bench_function("pipeline", |b| b.iter(|| black_box(p.run_once())));
                let mut h = Hand::new();
                g.bench_function("hand", |b| b.iter(|| black_box(h.run_once::<3>())));
            }
            _ => {
                let mut p = chain8();
                g.bench_function("pipeline", |b| b.iter(|| black_box(p.run_once())));
                let mut h = Hand::new();
                g.bench_function("hand", |b| b.iter(|| black_box(h.run_once::<7>())));
            }
        }
        let mut d = DynChain::new(stages - 1);
        g.bench_function("dyn", |b| b.iter(|| black_box(d.run_once())));
        g.finish();
    }
}

/// Swaps the Ethernet addresses in place (`Consumed`: done).
#[inline(always)]
fn swap_macs<B: PacketBuf, T>(p: &mut B) -> Verdict<T, B> {
    let Some(h) = p.data_mut().get_mut(..12) else {
        return Verdict::Drop(Reason::TOO_SHORT);
    };
    let (dst, src) = h.split_at_mut(6);
    dst.swap_with_slice(src);
    Verdict::Consumed
}

#[pipeline(burst = 32)]
struct Reflector {
    #[port]
    port: MemoryPort,
    swap: L2Fwd,
}

/// The l2fwd stage: swap, then transmit.
struct L2Fwd;
impl<B: PacketBuf> Stage<B> for L2Fwd {
    type In = B;
    type Out = core::convert::Infallible;
    #[inline]
    fn process(&mut self, mut p: B, _: &mut Cx<'_, B>) -> Verdict<Self::Out, B> {
        match swap_macs::<B, ()>(&mut p) {
            Verdict::Consumed => Verdict::Transmit(p),
            _ => Verdict::Drop(Reason::TOO_SHORT),
        }
    }
}

/// A wire with `BURST` 64-byte frames in flight towards end A; returns
/// (end A, end B).
fn loaded_wire() -> (MemoryPort, MemoryPort) {
    let (a, mut b) = MemoryWire::pair(WireConfig::default()).expect("wire");
    let mut tx: Burst<PoolBuf> = Burst::new();
    for i in 0..BURST {
        let mut f = b.alloc().expect("buffer");
        f.extend_from_slice(&[i as u8; 64]).expect("room");
        tx.push(f);
    }
    assert_eq!(b.tx_burst(&mut tx), BURST);
    (a, b)
}

/// The peer's side of an iteration: take the reflected frames, send them
/// back.
#[inline(always)]
fn bounce(peer: &mut MemoryPort, burst: &mut Burst<PoolBuf>) {
    peer.rx_burst(burst);
    peer.tx_burst(burst);
    burst.clear();
}

/// l2fwd written by hand: receive, swap, count, transmit, with the clock
/// read once per burst as the pipeline does.
fn l2fwd_by_hand() -> impl FnMut(&mut MemoryPort) {
    let mut rx: Burst<PoolBuf> = Burst::new();
    let mut tx: Burst<PoolBuf, 64> = Burst::new();
    let clock = Clock::global();
    let mut transmitted = 0u64;
    move |port| {
        black_box(clock.now_ns());
        port.rx_burst(&mut rx);
        for mut f in rx.drain() {
            if let Verdict::Consumed = swap_macs::<PoolBuf, ()>(&mut f) {
                transmitted += 1;
                tx.push(f);
            }
        }
        port.tx_burst(&mut tx);
        black_box(transmitted);
    }
}

fn bench_l2fwd(c: &mut Criterion) {
    let mut g = c.benchmark_group("l2fwd");
    g.throughput(Throughput::Elements(BURST as u64));
    {
        let (a, mut peer) = loaded_wire();
        let mut p = Reflector::new(a, L2Fwd);
        let mut burst = Burst::new();
        assert_eq!(p.run_once().tx, BURST, "the reflector sends the burst back");
        bounce(&mut peer, &mut burst);
        g.bench_function("pipeline", |b| {
            b.iter(|| {
                black_box(p.run_once());
                bounce(&mut peer, &mut burst);
            })
        });
    }
    {
        let (mut a, mut peer) = loaded_wire();
        let mut hand = l2fwd_by_hand();
        let mut burst = Burst::new();
        g.bench_function("hand", |b| {
            b.iter(|| {
                hand(&mut a);
                bounce(&mut peer, &mut burst);
            })
        });
    }
    g.finish();
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
    for group in ["chain/1", "chain/4", "chain/8", "l2fwd"] {
        let Some(base) = median_ns(group, "pipeline") else {
            continue;
        };
        for name in ["pipeline", "hand", "dyn"] {
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

/// A named variant of a benchmark group, one iteration per call.
type Variant<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// The variant `name` running `iteration` (its result kept from the
/// optimizer).
fn variant<'a, R>(name: &'static str, mut iteration: impl FnMut() -> R + 'a) -> Variant<'a> {
    (
        name,
        Box::new(move || {
            black_box(iteration());
        }),
    )
}

/// Times the variants of one group in alternation (`rounds` rounds of
/// `iters` iterations each, the order rotating), so that load from other
/// processes hits all of them alike. Returns, per variant, the median ns per
/// packet (of thread CPU time) and the median of its per-round ratio to the
/// first variant.
fn interleaved(variants: &mut [Variant<'_>], rounds: usize, iters: usize) -> Vec<(f64, f64)> {
    let k = variants.len();
    let mut ns = vec![Vec::with_capacity(rounds); k];
    for round in 0..rounds {
        let mut this = vec![0.0; k];
        for j in 0..k {
            let v = (round + j) % k;
            let run = &mut variants[v].1;
            let start = thread_cpu_ns();
            for _ in 0..iters {
                run();
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
    let run = |group: &str, mut variants: Vec<Variant<'_>>, iters: usize| {
        let rows = interleaved(&mut variants, 41, iters);
        for ((name, _), (ns, ratio)) in variants.iter().zip(rows) {
            println!(
                "| {group} | {name} | {ns:.2} | {:.1} | {ratio:.3} |",
                1e3 / ns
            );
        }
    };
    {
        let (mut p, mut h, mut d) = (
            Chain1::new(loop_port(), Send),
            Hand::new(),
            DynChain::new(0),
        );
        let mut t = Chain1Observed::new(loop_port(), ByteCount::default(), Send);
        let v = vec![
            variant("pipeline", || p.run_once()),
            variant("hand", || h.run_once::<0>()),
            variant("dyn", || d.run_once()),
            variant("pipeline+observer", || t.run_once()),
        ];
        run("chain/1", v, 20_000);
    }
    {
        let (mut p, mut h, mut d) = (chain4(), Hand::new(), DynChain::new(3));
        let v = vec![
            variant("pipeline", || p.run_once()),
            variant("hand", || h.run_once::<3>()),
            variant("dyn", || d.run_once()),
        ];
        run("chain/4", v, 20_000);
    }
    {
        let (mut p, mut h, mut d) = (chain8(), Hand::new(), DynChain::new(7));
        let v = vec![
            variant("pipeline", || p.run_once()),
            variant("hand", || h.run_once::<7>()),
            variant("dyn", || d.run_once()),
        ];
        run("chain/8", v, 20_000);
    }
    {
        let (a, mut peer) = loaded_wire();
        let mut p = Reflector::new(a, L2Fwd);
        let mut burst = Burst::new();
        let (mut a2, mut peer2) = loaded_wire();
        let mut hand = l2fwd_by_hand();
        let mut burst2 = Burst::new();
        let v = vec![
            variant("pipeline", || {
                black_box(p.run_once());
                bounce(&mut peer, &mut burst);
            }),
            variant("hand", || {
                hand(&mut a2);
                bounce(&mut peer2, &mut burst2);
            }),
        ];
        run("l2fwd", v, 5_000);
    }
}

/// Runs one variant `iters` times and nothing else, for an instruction
/// count under callgrind (`benches/callgrind.sh`): the variant is named
/// `<group>/<variant>`, as in the tables.
fn run_alone(name: &str, iters: usize) -> Result<(), String> {
    let mut run: Box<dyn FnMut()> = match name {
        "chain/1/pipeline" => {
            let mut p = Chain1::new(loop_port(), Send);
            Box::new(move || {
                black_box(p.run_once());
            })
        }
        "chain/1/hand" => {
            let mut h = Hand::new();
            Box::new(move || {
                black_box(h.run_once::<0>());
            })
        }
        "chain/4/pipeline" => {
            let mut p = chain4();
            Box::new(move || {
                black_box(p.run_once());
            })
        }
        "chain/4/hand" => {
            let mut h = Hand::new();
            Box::new(move || {
                black_box(h.run_once::<3>());
            })
        }
        "chain/8/pipeline" => {
            let mut p = chain8();
            Box::new(move || {
                black_box(p.run_once());
            })
        }
        "chain/8/hand" => {
            let mut h = Hand::new();
            Box::new(move || {
                black_box(h.run_once::<7>());
            })
        }
        "l2fwd/pipeline" => {
            let (a, mut peer) = loaded_wire();
            let mut p = Reflector::new(a, L2Fwd);
            let mut burst = Burst::new();
            Box::new(move || {
                black_box(p.run_once());
                bounce(&mut peer, &mut burst);
            })
        }
        "l2fwd/hand" => {
            let (mut a, mut peer) = loaded_wire();
            let mut hand = l2fwd_by_hand();
            let mut burst = Burst::new();
            Box::new(move || {
                hand(&mut a);
                bounce(&mut peer, &mut burst);
            })
        }
        _ => return Err(format!("no variant {name}")),
    };
    for _ in 0..iters {
        run();
    }
    Ok(())
}

fn main() {
    if let Ok(spec) = std::env::var("TPA_PIPELINE_RUN") {
        let (name, iters) = spec
            .split_once(':')
            .and_then(|(n, i)| Some((n, i.parse().ok()?)))
            .unwrap_or_else(|| {
                panic!("TPA_PIPELINE_RUN={spec}: want <group>/<variant>:<iterations>")
            });
        if let Err(e) = run_alone(name, iters) {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    let mut c = tpa_benches::criterion().sample_size(30);
    bench_chains(&mut c);
    bench_l2fwd(&mut c);
    c.final_summary();
    summary();
    // Not with a filter or `--profile-time`, nor under `cargo test`.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args == ["--bench"] {
        interleaved_summary();
    }
}
