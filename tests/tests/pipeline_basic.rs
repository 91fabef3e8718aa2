//! `#[pipeline]` verdict handling, counters, polls, the host path, demux and
//! transmit back-pressure, over in-memory wires.

mod pipeline_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pipeline_support::*;
use tpa::buf::{PacketBuf, PoolBuf};
use tpa::pipeline;
use tpa::pipeline::{settle, NoHost, Runtime};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::port::{Burst, Port};
use tpa::stage::{Counted, Cx, Demux, Reason, Stage, StageStats, Verdict};
use tpa::time::{TimeSource, TimerWheel, VirtualClock};

#[pipeline]
struct Verdicts {
    #[port]
    port: MemoryPort,
    #[host]
    host: MemoryPort,
    first: ByFirstByte,
    mark: Mark,
}

#[test]
fn each_verdict_is_carried_out_and_counted() {
    let (port, mut peer) = wire();
    let (host, mut kernel) = wire();
    let mut p = Verdicts::new(port, host, ByFirstByte, Mark);
    let frames: Vec<Vec<u8>> = [0u8, 1, 2, 3, 4, 5, 3, 0, 9]
        .iter()
        .map(|b| vec![*b, 0x10])
        .chain([vec![]])
        .collect();
    send(&mut peer, &frames);

    let it = p.run_once_at(7);
    assert_eq!((it.rx, it.tx), (10, 2));
    assert_eq!(receive(&mut peer), vec![vec![3, 0x10], vec![3, 0x10]]);
    assert_eq!(receive(&mut kernel), vec![vec![4, 0x10]]);

    let first = p.stats().stage("first").unwrap();
    assert_eq!(
        (
            first.passed,
            first.consumed,
            first.transmitted,
            first.to_host
        ),
        (2, 1, 2, 1)
    );
    assert_eq!(first.dropped(Reason::FILTERED), 1);
    assert_eq!(first.dropped(ODD), 2);
    assert_eq!(first.dropped(Reason::TOO_SHORT), 1);
    assert_eq!(first.total(), 10);
    let mark = p.stats().stage("mark").unwrap();
    assert_eq!((mark.passed, mark.total()), (2, 2));
    let c = p.stats().counters();
    assert_eq!((c.iterations, c.rx, c.ended), (1, 10, 2));
    let q = p.stats().queue_counters();
    assert_eq!(
        (q.tx_sent, q.host_sent, q.host_dropped, q.tx_dropped),
        (2, 1, 0, 0)
    );
    assert_eq!(Verdicts::STAGES, ["first", "mark"]);
    let text = p.stats().to_string();
    assert!(text.contains("drop:odd 2"), "{text}");
    assert!(text.contains("drop:filtered 1"), "{text}");
    drop(p);
    assert_wire_whole(peer);
    assert_wire_whole(kernel);
}

#[pipeline]
struct NoHostPath {
    port: MemoryPort,
    host: Host,
}

#[test]
fn without_a_host_sink_host_packets_are_dropped_and_counted() {
    let (port, mut peer) = wire();
    let mut p = NoHostPath::new(port, Host);
    send(&mut peer, &[vec![1], vec![2], vec![3]]);
    p.run_once_at(0);
    assert_eq!(p.stats().stage("host").unwrap().to_host, 3);
    assert_eq!(p.stats().queue_counters().host_dropped, 3);
    assert!(receive(&mut peer).is_empty());
    drop(p);
    assert_wire_whole(peer);
}

#[pipeline(burst = 4)]
struct Polled {
    #[port]
    port: MemoryPort,
    ticker: Ticker,
    mark: Mark,
}

#[test]
fn poll_runs_once_per_iteration_with_or_without_traffic() {
    let (port, mut peer) = wire();
    let mut p = Polled::new(port, Ticker::default(), Mark);
    p.run_once_at(100);
    p.run_once_at(101);
    send(&mut peer, &vec![vec![0, 0]; 6]);
    let it = p.run_once_at(102);
    assert_eq!(it.rx, 4, "burst = 4 bounds a receive");
    p.run_once_at(103);
    assert_eq!(p.ticker.polls, 4);
    assert_eq!(
        receive(&mut peer),
        vec![
            vec![0xee, 1, 100],
            vec![0xee, 2, 101],
            vec![0xee, 3, 102],
            vec![0xee, 4, 103]
        ]
    );
    assert_eq!(p.stats().counters().ended, 6);
    assert_eq!(p.stats().stage("mark").unwrap().passed, 6);
    drop(p);
    assert_wire_whole(peer);
}

type Arms = Demux<ArpOrOther, Counted<Transmit>, Counted<(Mark, Host)>>;

#[pipeline]
struct Branching {
    #[port]
    port: MemoryPort,
    #[host]
    host: MemoryPort,
    split: Arms,
}

fn ethernet(ethertype: [u8; 2], tag: u8) -> Vec<u8> {
    let mut f = vec![tag; 14];
    f[12..14].copy_from_slice(&ethertype);
    f
}

#[test]
fn demux_routes_each_frame_to_its_arm() {
    let (port, mut peer) = wire();
    let (host, mut kernel) = wire();
    let split = Demux::new(
        ArpOrOther,
        Counted::new(Transmit),
        Counted::new((Mark, Host)),
    );
    let mut p = Branching::new(port, host, split);
    let arp = |t| ethernet([0x08, 0x06], t);
    let ip = |t| ethernet([0x08, 0x00], t);
    send(&mut peer, &[arp(1), ip(2), ip(3), vec![0; 5], arp(4)]);
    p.run_once_at(0);

    assert_eq!(receive(&mut peer), vec![arp(1), arp(4)]);
    let mut marked = vec![ip(2), ip(3)];
    for f in &mut marked {
        f[1] += 1;
    }
    assert_eq!(receive(&mut kernel), marked);
    assert_eq!(p.split.left.stats.transmitted, 2);
    assert_eq!(p.split.right.stats.to_host, 2);
    let s = p.stats().stage("split").unwrap();
    assert_eq!(
        (s.transmitted, s.to_host, s.dropped(Reason::TOO_SHORT)),
        (2, 2, 1)
    );
    drop(p);
    assert_wire_whole(peer);
    assert_wire_whole(kernel);
}

#[pipeline]
struct Reflect {
    #[port]
    port: MemoryPort,
    tx: Transmit,
}

#[test]
fn unsent_packets_wait_in_order_and_overflow_is_counted() {
    let wire = MemoryWire::new(WireConfig {
        ring_size: 8,
        ..WireConfig::default()
    })
    .unwrap();
    let (port, mut peer) = (
        wire.port(tpa::port::memory::End::A, 0).unwrap(),
        wire.port(tpa::port::memory::End::B, 0).unwrap(),
    );
    let mut p = Reflect::new(port, Transmit);

    // The peer does not read: 8 go out, 24 wait in the transmit queue.
    let frames: Vec<Vec<u8>> = (0..32u8).map(|i| vec![i]).collect();
    for (i, chunk) in frames.chunks(8).enumerate() {
        send(&mut peer, chunk);
        let it = p.run_once_at(0);
        assert_eq!((it.rx, it.tx), (8, if i == 0 { 8 } else { 0 }));
    }
    assert_eq!(p.stats().queues().tx_pending(), 24);
    // Then it reads: nothing was lost, nothing reordered.
    let mut got = receive(&mut peer);
    while p.stats().queues().tx_pending() > 0 {
        p.run_once_at(0);
        got.extend(receive(&mut peer));
    }
    assert_eq!(got, frames);
    assert_eq!(p.stats().queue_counters().tx_dropped, 0);

    // With the peer not reading, the queue fills (64) and the rest is
    // dropped and counted.
    let frames: Vec<Vec<u8>> = (0..8).map(|_| vec![0xab]).collect();
    for _ in 0..12 {
        send(&mut peer, &frames);
        p.run_once_at(0);
    }
    let q = *p.stats().queue_counters();
    assert_eq!(q.tx_sent, 32 + 8);
    assert_eq!(p.stats().queues().tx_pending(), 64);
    assert_eq!(q.tx_dropped, 96 - 8 - 64);
    assert_eq!(p.stats().stage("tx").unwrap().transmitted, 32 + 96);
    drop((p, wire));
    assert_wire_whole(peer);
}

/// Records the size of every burst it is given, then handles each packet
/// as `Pass` would.
#[derive(Default)]
struct BurstSizes {
    seen: Vec<usize>,
}
impl<B: PacketBuf, S> Stage<B, S> for BurstSizes {
    type In = B;
    type Out = B;
    fn process(&mut self, p: B, _: &mut Cx<'_, B, S>) -> Verdict<B> {
        Verdict::Pass(p)
    }
    fn process_burst<const N: usize>(
        &mut self,
        burst: &mut Burst<B, N>,
        cx: &mut Cx<'_, B, S>,
        mut next: impl FnMut(Verdict<B>, &mut Cx<'_, B, S>),
    ) {
        self.seen.push(burst.len());
        for p in burst.drain() {
            let v = self.process(p, cx);
            next(v, cx);
        }
    }
}

/// A pipeline generic over its port.
#[pipeline(burst = 16)]
struct Generic<P: Port> {
    port: P,
    sizes: BurstSizes,
    mark: Mark,
    tx: Transmit,
}

#[test]
fn the_first_stage_sees_whole_bursts_and_generic_ports_work() {
    let (port, mut peer) = wire();
    let mut p = Generic::new(port, BurstSizes::default(), Mark, Transmit);
    let frames: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i, i]).collect();
    send(&mut peer, &frames);
    while p.run_once_at(0).rx != 0 {}
    assert_eq!(p.sizes.seen, vec![16, 16, 8]);
    let expected: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i, i + 1]).collect();
    assert_eq!(receive(&mut peer), expected);
    drop(p);
    assert_wire_whole(peer);
}

/// Sets the stop flag when a frame starting with 0xff arrives.
struct StopOn(Arc<AtomicBool>);
impl<B: PacketBuf, S> Stage<B, S> for StopOn {
    type In = B;
    type Out = B;
    fn process(&mut self, p: B, _: &mut Cx<'_, B, S>) -> Verdict<B> {
        if p.data().first() == Some(&0xff) {
            self.0.store(true, Ordering::Relaxed);
        }
        Verdict::Pass(p)
    }
}

#[pipeline]
struct Stoppable {
    port: MemoryPort,
    stop: StopOn,
    tx: Transmit,
}

#[test]
fn run_returns_once_the_flag_is_set() {
    let (port, mut peer) = wire();
    let flag = Arc::new(AtomicBool::new(false));
    let mut p = Stoppable::new(port, StopOn(flag.clone()), Transmit);
    send(&mut peer, &[vec![1], vec![2], vec![0xff]]);
    p.run(&flag);
    assert_eq!(receive(&mut peer), vec![vec![1], vec![2], vec![0xff]]);
    assert_eq!(p.stats().counters().iterations, 1);
    drop(p);
    assert_wire_whole(peer);
}

#[test]
fn a_stage_runs_outside_a_pipeline_with_a_runtime_context() {
    let (mut port, peer) = wire();
    let mut rt: Runtime<PoolBuf, 32, 0> = Runtime::new([], []);
    let mut buf = port.alloc().unwrap();
    buf.extend_from_slice(&[3, 9]).unwrap();
    let v = rt.with_cx(&mut port, &mut NoHost, 5, |cx| {
        assert_eq!(cx.now_ns(), 5);
        assert_eq!(cx.caps().mtu, 1500);
        settle(ByFirstByte.process(buf, cx), &mut StageStats::default(), cx)
    });
    assert!(v.is_none(), "byte 3 means transmit");
    let sent: Vec<Vec<u8>> = rt.drain_tx().map(|b| b.data().to_vec()).collect();
    assert_eq!(sent, vec![vec![3, 9]]);
    drop((rt, port));
    assert_wire_whole(peer);
}

/// Holds every frame for `DELAY_NS` on a timer wheel, then sends it back;
/// notes the time each frame arrived at.
struct DelayedEcho {
    wheel: TimerWheel<PoolBuf>,
    arrived_at: Vec<u64>,
}

const DELAY_NS: u64 = 3_000_000;

impl Stage<PoolBuf> for DelayedEcho {
    type In = PoolBuf;
    type Out = core::convert::Infallible;
    fn process(&mut self, p: PoolBuf, cx: &mut Cx<'_, PoolBuf>) -> Verdict<Self::Out, PoolBuf> {
        self.arrived_at.push(cx.now_ns());
        self.wheel.schedule(cx.now_ns() + DELAY_NS, p);
        Verdict::Consumed
    }
    fn poll(&mut self, cx: &mut Cx<'_, PoolBuf>) {
        self.wheel.advance(cx.now_ns(), |p| cx.transmit(p));
    }
}

#[pipeline]
struct Delayer {
    #[port]
    port: MemoryPort,
    echo: DelayedEcho,
}

#[test]
fn a_pipeline_given_a_virtual_clock_runs_and_fires_timers_on_it() {
    // One virtual time for the wire, the pipeline and the stage's timers:
    // `run_once` reads it, so frames arrive and timers fire at exact
    // virtual instants.
    let clock = VirtualClock::new();
    let time = TimeSource::from(clock.clone());
    let (port, mut peer) = MemoryWire::pair(WireConfig {
        clock: time.clone(),
        ..WireConfig::default()
    })
    .expect("memory wire");
    let echo = DelayedEcho {
        wheel: TimerWheel::new(1_000),
        arrived_at: Vec::new(),
    };
    let mut p = Delayer::new(port, echo).with_time_source(time.clone());
    assert!(p.stats().time_source().is_virtual());
    assert_eq!(p.stats().now_ns(), 0);

    let sent_at = [1_000_000u64, 2_500_000];
    let mut echoed = Vec::new();
    // Step 50 µs at a time through 8 ms.
    for step in 0..=160u64 {
        let now = step * 50_000;
        clock.advance_to(now);
        if let Some(i) = sent_at.iter().position(|&t| t == now) {
            send(&mut peer, &[vec![i as u8; 60]]);
        }
        p.run_once();
        let mut rx: Burst<PoolBuf> = Burst::new();
        peer.rx_burst(&mut rx);
        for f in rx.drain() {
            assert_eq!(f.meta().rx_timestamp_ns, now, "received on the wire's time");
            echoed.push((f.data()[0], now));
        }
    }
    assert_eq!(
        p.echo.arrived_at, sent_at,
        "cx.now_ns() is the virtual time"
    );
    assert_eq!(
        echoed,
        [(0, 1_000_000 + DELAY_NS), (1, 2_500_000 + DELAY_NS)],
        "each timer fires exactly DELAY_NS after its frame arrived"
    );
    assert!(p.echo.wheel.is_empty());
    assert_eq!(p.stats().stage("echo").unwrap().consumed, 2);
    drop(p);
    assert_wire_whole(peer);
}
