//! Two connections through a seeded, lossy, reordering in-memory link on a
//! virtual clock: handshakes, transfers checked byte for byte, closes in
//! every order, resets, RFC 5961 and PAWS cases, retransmission.
//!
//! Replay one seed of the randomized test with `TPA_TCP_SEED=<seed>`.

use std::collections::VecDeque;

use tpa::app::SocketError;
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf};
use tpa::wire::tcp::{TcpFlags, TcpOptionSet};

use super::super::config::{CongestionAlgorithm, TcpConfig};
use super::super::segment::{SegmentIn, SegmentOut};
use super::super::seq::SeqNumber;
use super::{ConnEvents, ConnParams, Connection, State};

const MS: u64 = 1_000_000;

/// splitmix64: small, seedable, good enough to pick impairments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What the link does to segments, per mille.
#[derive(Clone, Copy, Debug, Default)]
struct Impair {
    loss: u64,
    dup: u64,
    reorder: u64,
}

/// A received segment copied into a fresh buffer (the wire copies).
fn to_in(seg: &SegmentOut<PoolBuf>, pool: &Pool) -> Option<SegmentIn<PoolBuf>> {
    let payload = match &seg.payload {
        None => None,
        Some(p) => {
            let mut b = pool.alloc()?;
            for s in p.segments() {
                b.extend_from_slice(s).ok()?;
            }
            Some(b)
        }
    };
    Some(SegmentIn {
        seq: seg.seq,
        ack: seg.ack,
        flags: seg.flags,
        window: seg.window,
        options: TcpOptionSet {
            mss: seg.options.mss,
            window_scale: seg.options.window_scale,
            sack_permitted: seg.options.sack_permitted,
            sack: seg.options.sack,
            timestamps: seg.options.timestamps,
        },
        payload,
    })
}

/// One direction of the link: segments in flight with their arrival time.
struct Link {
    in_flight: VecDeque<(u64, SegmentIn<PoolBuf>)>,
    delay_ns: u64,
    impair: Impair,
    /// Segments that went into this direction (for assertions).
    log: Vec<(SeqNumber, SeqNumber, TcpFlags, u32)>,
}

impl Link {
    fn new(delay_ns: u64, impair: Impair) -> Self {
        Link {
            in_flight: VecDeque::new(),
            delay_ns,
            impair,
            log: Vec::new(),
        }
    }

    fn send(&mut self, seg: SegmentOut<PoolBuf>, now: u64, pool: &Pool, rng: &mut Rng) {
        self.log.push((seg.seq, seg.ack, seg.flags, seg.data_len()));
        if rng.chance(self.impair.loss) {
            return;
        }
        let copies = if rng.chance(self.impair.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let Some(s) = to_in(&seg, pool) else { return };
            let mut at = now + self.delay_ns;
            if rng.chance(self.impair.reorder) {
                at += rng.below(3 * self.delay_ns);
            }
            // Keep the queue sorted by arrival (stable for equal times).
            let pos = self.in_flight.partition_point(|(t, _)| *t <= at);
            self.in_flight.insert(pos, (at, s));
        }
    }

    fn next_arrival(&self) -> Option<u64> {
        self.in_flight.front().map(|(t, _)| *t)
    }
}

/// Two connections, a link each way, a clock.
struct Net {
    pool: Pool,
    a: Connection<PoolBuf>,
    b: Connection<PoolBuf>,
    ab: Link,
    ba: Link,
    now: u64,
    rng: Rng,
    events_a: ConnEvents,
    events_b: ConnEvents,
}

fn params(iss: u32) -> ConnParams {
    ConnParams {
        mss: 1460,
        iss: SeqNumber::new(iss),
        ts_offset: iss.rotate_left(7),
    }
}

fn merge(into: &mut ConnEvents, ev: ConnEvents) {
    into.connected |= ev.connected;
    into.readable |= ev.readable;
    into.writable |= ev.writable;
    into.peer_closed |= ev.peer_closed;
    into.closed |= ev.closed;
    if ev.error.is_some() {
        into.error = ev.error;
    }
}

impl Net {
    /// `a` connects to `b`; the SYN goes through the link like any segment.
    fn connect(cfg_a: &TcpConfig, cfg_b: &TcpConfig, seed: u64, impair: Impair) -> Net {
        let pool = Pool::with_capacity(2048).unwrap();
        let mut rng = Rng(seed);
        let iss_a = rng.next() as u32;
        let iss_b = rng.next() as u32;
        let mut a = Connection::connect(cfg_a, params(iss_a), 0);
        let syn = a.poll_transmit(0).expect("a SYN");
        let syn_in = to_in(&syn, &pool).unwrap();
        let b = Connection::accept(cfg_b, params(iss_b), &syn_in, MS);
        drop((syn, syn_in));
        let delay = MS * (1 + rng.below(20));
        Net {
            pool,
            a,
            b,
            ab: Link::new(delay, impair),
            ba: Link::new(delay, impair),
            now: MS,
            rng,
            events_a: ConnEvents::default(),
            events_b: ConnEvents::default(),
        }
    }

    /// Drains both connections' output into the links.
    fn flush(&mut self) {
        while let Some(seg) = self.a.poll_transmit(self.now) {
            self.ab.send(seg, self.now, &self.pool, &mut self.rng);
        }
        while let Some(seg) = self.b.poll_transmit(self.now) {
            self.ba.send(seg, self.now, &self.pool, &mut self.rng);
        }
        merge(&mut self.events_a, self.a.take_events());
        merge(&mut self.events_b, self.b.take_events());
    }

    /// Advances to the next arrival or deadline and handles it; false when
    /// nothing is left to happen.
    fn step(&mut self) -> bool {
        self.flush();
        let next = [
            self.ab.next_arrival(),
            self.ba.next_arrival(),
            self.a.next_deadline(),
            self.b.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(t) = next else { return false };
        self.now = self.now.max(t);
        while self.ab.next_arrival().is_some_and(|t| t <= self.now) {
            let (_, seg) = self.ab.in_flight.pop_front().unwrap();
            self.b.on_segment(seg, self.now);
        }
        while self.ba.next_arrival().is_some_and(|t| t <= self.now) {
            let (_, seg) = self.ba.in_flight.pop_front().unwrap();
            self.a.on_segment(seg, self.now);
        }
        if self.a.next_deadline().is_some_and(|d| d <= self.now) {
            self.a.on_timer(self.now);
        }
        if self.b.next_deadline().is_some_and(|d| d <= self.now) {
            self.b.on_timer(self.now);
        }
        self.flush();
        true
    }

    /// Steps until `done` or nothing is left; panics after `limit` steps.
    fn run_until(&mut self, limit: usize, mut done: impl FnMut(&mut Net) -> bool) {
        for _ in 0..limit {
            if done(self) {
                return;
            }
            if !self.step() {
                assert!(done(self), "nothing left to happen");
                return;
            }
        }
        panic!("not done after {limit} steps");
    }

    fn established(&mut self) {
        self.run_until(10_000, |n| {
            n.a.state() == State::Established && n.b.state() == State::Established
        });
    }
}

/// Byte streams each way: what is left to write, what was read.
struct Streams {
    to_send: [Vec<u8>; 2],
    sent: [usize; 2],
    got: [Vec<u8>; 2],
    eof: [bool; 2],
    shut: [bool; 2],
}

impl Streams {
    fn new(rng: &mut Rng, max: u64) -> Streams {
        let mut data = || {
            let len = rng.below(max + 1) as usize;
            (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>()
        };
        Streams {
            to_send: [data(), data()],
            sent: [0, 0],
            got: [Vec::new(), Vec::new()],
            eof: [false, false],
            shut: [false, false],
        }
    }

    /// Writes what fits, reads what arrived, shuts down once all is queued.
    fn pump(&mut self, net: &mut Net, zero_copy: bool) {
        for side in 0..2 {
            let pool = &net.pool;
            let conn = if side == 0 { &mut net.a } else { &mut net.b };
            while self.sent[side] < self.to_send[side].len() {
                let rest = &self.to_send[side][self.sent[side]..];
                match conn.send(rest, &mut || pool.alloc()) {
                    Ok(n) => self.sent[side] += n,
                    Err(SocketError::WouldBlock) => break,
                    Err(e) => panic!("side {side}: send: {e:?}"),
                }
            }
            if self.sent[side] == self.to_send[side].len() && !self.shut[side] {
                conn.shutdown().unwrap();
                self.shut[side] = true;
            }
            loop {
                if zero_copy {
                    match conn.recv() {
                        Ok(Some(buf)) => {
                            for s in buf.segments() {
                                self.got[side].extend_from_slice(s);
                            }
                        }
                        Ok(None) => {
                            self.eof[side] = true;
                            break;
                        }
                        Err(SocketError::WouldBlock) => break,
                        Err(e) => panic!("side {side}: recv: {e:?}"),
                    }
                } else {
                    let mut out = [0u8; 700];
                    match conn.read(&mut out) {
                        Ok(0) => {
                            self.eof[side] = true;
                            break;
                        }
                        Ok(n) => self.got[side].extend_from_slice(&out[..n]),
                        Err(SocketError::WouldBlock) => break,
                        Err(e) => panic!("side {side}: read: {e:?}"),
                    }
                }
            }
        }
        net.flush();
    }

    fn done(&self) -> bool {
        self.eof[0] && self.eof[1]
    }
}

fn small_cfg() -> TcpConfig {
    TcpConfig {
        send_queue_bytes: 48 * 1024,
        receive_queue_bytes: 70 * 1024,
        ..TcpConfig::default()
    }
}

/// One seeded run: handshake, random transfers both ways, close, TIME_WAIT,
/// pools whole. Returns the two infos for assertions.
fn transfer(seed: u64, impair: Impair, max_bytes: u64) -> [super::TcpInfo; 2] {
    let mut rng = Rng(seed ^ 0x5eed);
    let mut cfg_a = small_cfg();
    let mut cfg_b = small_cfg();
    // Vary the options so every combination is negotiated somewhere.
    cfg_a.timestamps = rng.chance(800);
    cfg_b.timestamps = rng.chance(800);
    cfg_a.window_scale = rng.chance(800);
    cfg_b.window_scale = rng.chance(800);
    cfg_a.nodelay = rng.chance(500);
    cfg_b.delayed_ack = rng.chance(700);
    if rng.chance(500) {
        cfg_a.congestion = CongestionAlgorithm::NewReno;
    }
    let zero_copy = rng.chance(500);
    let mut net = Net::connect(&cfg_a, &cfg_b, seed, impair);
    let mut streams = Streams::new(&mut rng, max_bytes);
    for _ in 0..2_000_000 {
        streams.pump(&mut net, zero_copy);
        if streams.done() && net.a.is_closed() && net.b.is_closed() {
            break;
        }
        if !net.step() {
            streams.pump(&mut net, zero_copy);
            break;
        }
    }
    assert!(
        streams.done(),
        "streams not finished: eof {:?}",
        streams.eof
    );
    assert_eq!(streams.got[1].len(), streams.to_send[0].len(), "a→b length");
    assert_eq!(streams.got[0].len(), streams.to_send[1].len(), "b→a length");
    assert!(streams.got[1] == streams.to_send[0], "a→b bytes differ");
    assert!(streams.got[0] == streams.to_send[1], "b→a bytes differ");
    // Both close through TIME_WAIT or LAST_ACK to CLOSED.
    assert!(
        net.a.is_closed() && net.b.is_closed(),
        "{:?} {:?}\n{:?}\n{:?}\nfin a {} {} {:?} {:?}\nlog ab tail {:?}\nlog ba tail {:?}",
        net.a.state(),
        net.b.state(),
        net.a.info(),
        net.b.info(),
        net.a.fin_sent,
        net.a.fin_acked,
        net.a.timers,
        net.a.pending,
        &net.ab.log[net.ab.log.len().saturating_sub(8)..],
        &net.ba.log[net.ba.log.len().saturating_sub(8)..],
    );
    assert_eq!(net.events_a.error, None);
    assert_eq!(net.events_b.error, None);
    assert!(!net.a.wants_transmit() && !net.b.wants_transmit());
    let infos = [net.a.info(), net.b.info()];
    let pool = net.pool.clone();
    drop(net);
    pool.assert_whole();
    infos
}

/// Totals over runs, to show the impairments were felt.
#[derive(Default, Debug)]
struct Totals {
    bytes: u64,
    retrans: u64,
    fast: u64,
    out_of_order: u64,
}

impl Totals {
    fn add(&mut self, infos: [super::TcpInfo; 2]) {
        for i in infos {
            self.bytes += i.bytes_received;
            self.retrans += i.total_retrans;
            self.fast += i.fast_retransmits;
            self.out_of_order += i.out_of_order;
        }
    }
}

/// The seed replayed from `TPA_TCP_SEED`, or `count` seeds from `first`.
fn seeds(first: u64, count: u64) -> Vec<u64> {
    match std::env::var("TPA_TCP_SEED") {
        Ok(s) => vec![s.parse().expect("TPA_TCP_SEED is a u64")],
        Err(_) => (first..first + count).collect(),
    }
}

/// Prints the seed when the test panics with it on the stack.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failed with seed {0}: replay with TPA_TCP_SEED={0}", self.0);
        }
    }
}

#[test]
fn transfers_over_a_clean_link() {
    let mut totals = Totals::default();
    for seed in seeds(1, 30) {
        let _g = SeedGuard(seed);
        totals.add(transfer(seed, Impair::default(), 150_000));
    }
    eprintln!("{totals:?}");
    assert!(totals.bytes > 0);
    assert_eq!(
        (totals.retrans, totals.out_of_order),
        (0, 0),
        "a clean link loses nothing"
    );
}

#[test]
fn transfers_under_loss_duplication_and_reordering() {
    let impair = Impair {
        loss: 30,
        dup: 20,
        reorder: 50,
    };
    let mut totals = Totals::default();
    for seed in seeds(1000, 220) {
        let _g = SeedGuard(seed);
        totals.add(transfer(seed, impair, 60_000));
    }
    eprintln!("{totals:?}");
    assert!(totals.retrans > 0 && totals.fast > 0 && totals.out_of_order > 0);
}

#[test]
fn transfers_under_heavy_loss() {
    let impair = Impair {
        loss: 150,
        dup: 0,
        reorder: 0,
    };
    let mut totals = Totals::default();
    for seed in seeds(5000, 40) {
        let _g = SeedGuard(seed);
        totals.add(transfer(seed, impair, 30_000));
    }
    eprintln!("{totals:?}");
    assert!(totals.retrans > 0);
}
