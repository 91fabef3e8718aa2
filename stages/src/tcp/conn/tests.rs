//! Two connections through a seeded, lossy, reordering in-memory link on a
//! virtual clock: handshakes, transfers checked byte for byte, closes in
//! every order, resets, RFC 5961 and PAWS cases, retransmission.
//!
//! Replay one seed of the randomized test with `TPA_TCP_SEED=<seed>`.

use std::collections::VecDeque;

use tpa::app::SocketError;
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf};
use tpa::wire::tcp::{TcpFlags, TcpOptionSet};

use super::super::cc::CongestionControl;
use super::super::config::{CongestionAlgorithm, TcpConfig};
use super::super::segment::{SegmentIn, SegmentOut};
use super::super::seq::SeqNumber;
use super::{ConnEvents, ConnParams, Connection, IcmpError, Quiet, QuietPass, State};

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
    /// The largest segment (options and payload) the link carries, 0
    /// for any: a larger one is dropped and its sender gets an ICMP
    /// "packet too big" saying this much.
    path_mss: u16,
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

/// A segment's options and payload, in bytes (what the MSS bounds).
fn segment_size(seg: &SegmentOut<PoolBuf>) -> usize {
    let ts = if seg.options.timestamps.is_some() {
        12
    } else {
        0
    };
    let sack = seg.options.sack.map_or(0, |b| 4 + 8 * b.len());
    seg.data_len() as usize + ts + sack
}

/// One direction of the link: segments in flight with their arrival time.
struct Link {
    in_flight: VecDeque<(u64, SegmentIn<PoolBuf>)>,
    delay_ns: u64,
    impair: Impair,
    /// Segments that went into this direction, with the time (for
    /// assertions).
    log: Vec<(SeqNumber, SeqNumber, TcpFlags, u32, u64, u16)>,
    /// Segments dropped as larger than `impair.path_mss`.
    too_big: u64,
    /// Every segment whole (options, a hash of the payload), when
    /// recording for a comparison of two runs.
    full: Option<Vec<String>>,
}

impl Link {
    fn new(delay_ns: u64, impair: Impair) -> Self {
        Link {
            in_flight: VecDeque::new(),
            delay_ns,
            impair,
            log: Vec::new(),
            too_big: 0,
            full: None,
        }
    }

    fn send(&mut self, seg: SegmentOut<PoolBuf>, now: u64, pool: &Pool, rng: &mut Rng) {
        self.log
            .push((seg.seq, seg.ack, seg.flags, seg.data_len(), now, seg.window));
        if let Some(full) = self.full.as_mut() {
            // FNV-1a over the payload.
            let mut hash = 0xcbf2_9ce4_8422_2325u64;
            for part in seg.payload.iter().flat_map(|p| p.segments()) {
                for &b in part {
                    hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
            full.push(format!(
                "{now} {:?} {:?} {:?} {} {:?} {} {hash:x}",
                seg.seq,
                seg.ack,
                seg.flags,
                seg.window,
                seg.options,
                seg.data_len()
            ));
        }
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
    into.merge(ev);
    if let Some(e) = ev.error() {
        into.set_error(e);
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

    /// Drains both connections' output into the links, checking that no
    /// data but a window probe goes beyond the right edge the peer
    /// announced (its RCV.NXT + RCV.WND, which never moves left).
    fn flush(&mut self) {
        for side in 0..2 {
            loop {
                let (conn, peer, link) = if side == 0 {
                    (&mut self.a, &self.b, &mut self.ab)
                } else {
                    (&mut self.b, &self.a, &mut self.ba)
                };
                let probes = conn.stats.window_probes;
                let edge = peer.rcv_adv;
                let Some(seg) = next_out(conn, self.now) else {
                    break;
                };
                let limit = link.impair.path_mss;
                if limit > 0 && segment_size(&seg) > usize::from(limit) {
                    // The router drops it and says why, at once.
                    let seq = seg.seq;
                    drop(seg);
                    let pool = &self.pool;
                    let too_big = IcmpError::PacketTooBig { mss: limit };
                    conn.on_icmp_error(seq, too_big, &mut || pool.alloc(), self.now);
                    link.too_big += 1;
                    continue;
                }
                if seg.data_len() > 0 && conn.stats.window_probes == probes {
                    let end = seg.seq + seg.data_len();
                    assert!(
                        end.le(edge),
                        "data beyond the peer's window: {end} > {edge}"
                    );
                }
                link.send(seg, self.now, &self.pool, &mut self.rng);
            }
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

    /// Queues `data` on `a` with buffers from the pool.
    fn send_a(&mut self, data: &[u8]) -> Result<usize, SocketError> {
        let pool = &self.pool;
        self.a.send(data, &mut || pool.alloc())
    }

    /// Puts `segs` on the link from `a` to `b`, now.
    fn put_ab(&mut self, segs: impl IntoIterator<Item = SegmentOut<PoolBuf>>) {
        for seg in segs {
            self.ab.send(seg, self.now, &self.pool, &mut self.rng);
        }
    }

    /// Where a segment forged for `b` goes in sequence: its RCV.NXT, its
    /// SND.UNA (the ACK `a` would send), and the time.
    fn next_to_b(&self) -> (SeqNumber, SeqNumber, u64) {
        (self.b.rcv_nxt, self.b.snd_una, self.now)
    }

    /// The same for a segment forged for `a`.
    fn next_to_a(&self) -> (SeqNumber, SeqNumber, u64) {
        (self.a.rcv_nxt, self.a.snd_una, self.now)
    }

    /// Everything `b` has to read, zero-copy, in one vector.
    fn read_all_b(&mut self) -> Vec<u8> {
        let mut got = Vec::new();
        while let Ok(Some(buf)) = self.b.recv() {
            for s in buf.segments() {
                got.extend_from_slice(s);
            }
        }
        got
    }
}

/// Byte streams each way: what is left to write, what was read.
struct Streams {
    to_send: [Vec<u8>; 2],
    sent: [usize; 2],
    got: [Vec<u8>; 2],
    eof: [bool; 2],
    shut: [bool; 2],
    /// Per side: shut down only after reading the peer's end of stream
    /// (CLOSE_WAIT → LAST_ACK), else as soon as all is written.
    passive_close: [bool; 2],
    /// Per side: `close()` instead of `shutdown()` (only after EOF, so no
    /// unread data resets).
    use_close: [bool; 2],
    /// Per side: reads per pump at most (a slow application).
    reads_per_pump: [usize; 2],
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
            passive_close: [false, false],
            use_close: [false, false],
            reads_per_pump: [usize::MAX, usize::MAX],
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
            let may_shut = !self.passive_close[side] || self.eof[side];
            if self.sent[side] == self.to_send[side].len() && !self.shut[side] && may_shut {
                if self.use_close[side] && self.eof[side] {
                    conn.close();
                } else {
                    conn.shutdown().unwrap();
                }
                self.shut[side] = true;
            }
            for _ in 0..self.reads_per_pump[side] {
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

    /// A measure of the application's progress.
    fn progress(&self) -> usize {
        self.sent[0]
            + self.sent[1]
            + self.got[0].len()
            + self.got[1].len()
            + usize::from(self.eof[0])
            + usize::from(self.eof[1])
            + usize::from(self.shut[0])
            + usize::from(self.shut[1])
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
    transfer_with(seed, impair, max_bytes, false)
}

/// [`transfer`], optionally with small queues and slow readers (zero
/// windows, persist probes and window updates under impairment).
fn transfer_with(seed: u64, impair: Impair, max_bytes: u64, cramped: bool) -> [super::TcpInfo; 2] {
    transfer_run(seed, impair, max_bytes, cramped, true, None)
}

/// Everything of a connection's state two runs must agree on, as text
/// (the count of predicted segments left out: it is what differs).
fn digest(c: &Connection<PoolBuf>) -> String {
    let mut info = c.info();
    info.segs_predicted = 0;
    format!(
        "{info:?} | {:?} {:?} {:?} {:?} {} {} {} {:?} {} {} {} {:?} {} {} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {} {} {} {}",
        c.probe_end,
        c.snd_wl1,
        c.snd_wl2,
        c.rcv_adv,
        c.max_snd_wnd,
        c.ts_recent,
        c.ts_recent_ns,
        c.last_ack_sent,
        c.unacked_bytes,
        c.dup_acks,
        c.retries,
        c.rtt_timed,
        c.persist_backoff,
        c.probes_unanswered,
        c.keepalive_sent,
        c.timers,
        c.pending,
        c.events,
        c.cwv,
        c.rack,
        c.rto,
        c.cc,
        c.dsacks,
        c.ooo_fin,
        c.soft_error,
        c.next_deadline(),
        c.write_blocked,
        c.fin_sent,
        c.fin_acked,
        c.send_queue.len(),
    )
}

/// [`transfer_with`], with header prediction on or off; with `trace`,
/// both connections' [`digest`] after every step and, at the end, every
/// segment each way go into it.
fn transfer_run(
    seed: u64,
    impair: Impair,
    max_bytes: u64,
    cramped: bool,
    predict: bool,
    mut trace: Option<&mut Vec<String>>,
) -> [super::TcpInfo; 2] {
    let mut rng = Rng(seed ^ 0x5eed);
    let mut cfg_a = small_cfg();
    let mut cfg_b = small_cfg();
    if cramped {
        for cfg in [&mut cfg_a, &mut cfg_b] {
            cfg.receive_queue_bytes = 2000 + rng.below(20_000) as usize;
            cfg.send_queue_bytes = 1000 + rng.below(30_000) as usize;
        }
    }
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
    net.a.knobs.header_prediction = predict;
    net.b.knobs.header_prediction = predict;
    net.a.refresh_predicting();
    net.b.refresh_predicting();
    if trace.is_some() {
        net.ab.full = Some(Vec::new());
        net.ba.full = Some(Vec::new());
    }
    let mut streams = Streams::new(&mut rng, max_bytes);
    // Close orders: active/passive on each side (not both passive: no one
    // would go first), close() or shutdown().
    let passive = rng.below(3);
    streams.passive_close = [passive == 1, passive == 2];
    streams.use_close = [rng.chance(500), rng.chance(500)];
    if cramped {
        streams.reads_per_pump = [1 + rng.below(2) as usize, 1 + rng.below(2) as usize];
    }
    for _ in 0..2_000_000 {
        streams.pump(&mut net, zero_copy);
        if let Some(t) = trace.as_deref_mut() {
            t.push(format!("a {}", digest(&net.a)));
            t.push(format!("b {}", digest(&net.b)));
        }
        if streams.done() && net.a.is_closed() && net.b.is_closed() {
            break;
        }
        if !net.step() {
            // Nothing on the wire and no timer: only the application can
            // move things on.
            let before = streams.progress();
            streams.pump(&mut net, zero_copy);
            if streams.progress() == before && !net.a.wants_transmit() && !net.b.wants_transmit() {
                break;
            }
        }
    }
    assert!(
        streams.done(),
        "streams not finished: eof {:?}\na {:?}\nb {:?}",
        streams.eof,
        net.a.info(),
        net.b.info()
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
    assert_eq!(net.events_a.error(), None);
    assert_eq!(net.events_b.error(), None);
    assert!(!net.a.wants_transmit() && !net.b.wants_transmit());
    let infos = [net.a.info(), net.b.info()];
    if let Some(t) = trace {
        t.extend(
            net.ab
                .full
                .take()
                .into_iter()
                .flatten()
                .map(|s| format!("a→b {s}")),
        );
        t.extend(
            net.ba
                .full
                .take()
                .into_iter()
                .flatten()
                .map(|s| format!("b→a {s}")),
        );
    }
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
    spurious_rtos: u64,
    cwnd_unused_reductions: u64,
}

impl Totals {
    fn add(&mut self, infos: [super::TcpInfo; 2]) {
        for i in infos {
            self.bytes += i.bytes_received;
            self.retrans += i.total_retrans;
            self.fast += i.fast_retransmits;
            self.out_of_order += i.out_of_order;
            self.spurious_rtos += i.spurious_rtos;
            self.cwnd_unused_reductions += i.cwnd_unused_reductions;
        }
    }
}

/// The seed replayed from `TPA_TCP_SEED`, or `count` seeds from `first`
/// (`TPA_TCP_SEEDS=<n>` runs `n` instead, for long sweeps).
fn seeds(first: u64, count: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("TPA_TCP_SEED") {
        return vec![s.parse().expect("TPA_TCP_SEED is a u64")];
    }
    let count = std::env::var("TPA_TCP_SEEDS")
        .map(|n| n.parse().expect("TPA_TCP_SEEDS is a count"))
        .unwrap_or(count);
    (first..first + count).collect()
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

/// Runs `run` for each of [`seeds`]`(first, count)` (naming the seed if it
/// panics) and adds up the infos it returns.
fn sweep(first: u64, count: u64, mut run: impl FnMut(u64) -> [super::TcpInfo; 2]) -> Totals {
    let mut totals = Totals::default();
    for seed in seeds(first, count) {
        let _g = SeedGuard(seed);
        totals.add(run(seed));
    }
    eprintln!("{totals:?}");
    totals
}

/// The link of a path-equality test's seed: clean for a third of the
/// seeds, else lossy, duplicating and reordering.
fn impairment_of(seed: u64) -> Impair {
    match seed % 3 {
        0 => Impair::default(),
        _ => Impair {
            loss: 30,
            dup: 20,
            reorder: 50,
            path_mss: 0,
        },
    }
}

/// Header prediction changes nothing but the path taken: the same seeded
/// transfers (clean, impaired, with small queues and slow readers) with
/// the fast path on and off put the same segments on the wire, options
/// and payload included, and leave both connections in the same state
/// after every step.
#[test]
fn header_prediction_is_equal_to_the_full_path() {
    // Segments predicted and received, on a clean link and an impaired one.
    let mut predicted = [0; 2];
    let mut segs = [0; 2];
    for seed in seeds(7000, 60) {
        let _g = SeedGuard(seed);
        let impair = impairment_of(seed);
        let cramped = seed % 4 == 1;
        let (mut fast, mut full) = (Vec::new(), Vec::new());
        let on = transfer_run(seed, impair, 60_000, cramped, true, Some(&mut fast));
        let off = transfer_run(seed, impair, 60_000, cramped, false, Some(&mut full));
        if let Some(i) = (0..fast.len().max(full.len())).find(|&i| fast.get(i) != full.get(i)) {
            panic!(
                "the runs differ at record {i} of {}/{}:\nfast: {:?}\nfull: {:?}\nbefore: {:?}",
                fast.len(),
                full.len(),
                fast.get(i),
                full.get(i),
                i.checked_sub(2).and_then(|j| fast.get(j))
            );
        }
        assert_eq!(off[0].segs_predicted + off[1].segs_predicted, 0);
        let kind = usize::from(seed % 3 != 0);
        predicted[kind] += on[0].segs_predicted + on[1].segs_predicted;
        segs[kind] += on[0].segs_in + on[1].segs_in;
    }
    eprintln!("segments predicted of those received (clean, impaired): {predicted:?} of {segs:?}");
    // Over a clean link, every segment of an ESTABLISHED connection but
    // a FIN is the predicted kind: more than a third of all (the short
    // transfers' handshakes and closes are the rest).
    assert!(
        predicted[0] * 3 > segs[0],
        "{predicted:?} of {segs:?} predicted"
    );
    assert!(predicted[1] > 0, "{predicted:?} of {segs:?} predicted");
}

/// `msg` written on one side (`from_a`) and read whole on the other,
/// stepping the network; both connections' [`digest`] after every step
/// into `trace`.
fn send_whole(net: &mut Net, from_a: bool, msg: &[u8], trace: &mut Vec<String>) {
    let mut sent = 0;
    let mut got = Vec::new();
    for _ in 0..100_000 {
        let pool = &net.pool;
        let (tx, rx) = if from_a {
            (&mut net.a, &mut net.b)
        } else {
            (&mut net.b, &mut net.a)
        };
        if sent < msg.len() {
            match tx.send(&msg[sent..], &mut || pool.alloc()) {
                Ok(n) => sent += n,
                Err(SocketError::WouldBlock) => {}
                Err(e) => panic!("send: {e:?}"),
            }
        }
        let mut out = [0u8; 700];
        while let Ok(n @ 1..) = rx.read(&mut out) {
            got.extend_from_slice(&out[..n]);
        }
        if got.len() == msg.len() {
            assert!(got == msg, "bytes differ");
            return;
        }
        let moved = net.step();
        trace.push(format!("a {}", digest(&net.a)));
        trace.push(format!("b {}", digest(&net.b)));
        assert!(moved || sent < msg.len(), "stuck");
    }
    panic!("the exchange did not end");
}

/// Seeded request/response exchanges (a asks, b answers with as many
/// bytes, as the rr bench does), on a clean or impaired link, with
/// `on_answer_predicted`'s leaf on or off: the trace of both
/// connections' digests and every segment each way.
fn rr_run(seed: u64, impair: Impair, leaf: bool) -> Vec<String> {
    use super::predict::ANSWER_LEAF;
    let mut rng = Rng(seed ^ 0xabcd);
    let (mut cfg_a, mut cfg_b) = (small_cfg(), small_cfg());
    cfg_a.timestamps = rng.chance(800);
    cfg_b.timestamps = rng.chance(800);
    cfg_a.nodelay = rng.chance(500);
    cfg_b.nodelay = rng.chance(500);
    cfg_a.delayed_ack = rng.chance(700);
    cfg_b.delayed_ack = rng.chance(700);
    let mut net = Net::connect(&cfg_a, &cfg_b, seed, impair);
    net.ab.full = Some(Vec::new());
    net.ba.full = Some(Vec::new());
    ANSWER_LEAF.set((leaf, ANSWER_LEAF.get().1));
    let mut trace = Vec::new();
    for _ in 0..150 {
        let most = if rng.chance(100) { 4000 } else { 200 };
        let len = 1 + rng.below(most) as usize;
        let msg: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        send_whole(&mut net, true, &msg, &mut trace);
        send_whole(&mut net, false, &msg, &mut trace);
    }
    ANSWER_LEAF.set((true, ANSWER_LEAF.get().1));
    for (dir, link) in [("a→b", &mut net.ab), ("b→a", &mut net.ba)] {
        trace.extend(
            link.full
                .take()
                .into_iter()
                .flatten()
                .map(|s| format!("{dir} {s}")),
        );
    }
    trace
}

/// The leaf for a request's answer (`on_answer_predicted`) takes the
/// decisions of the predicted path it stands for: the same seeded
/// exchanges and transfers with the leaf taken and with every such
/// segment handed to `on_segment_predicted` put the same segments on
/// the wire and leave both connections in the same state after every
/// step.
#[test]
fn the_answer_leaf_is_equal_to_the_predicted_path() {
    use super::predict::ANSWER_LEAF;
    let mut taken = 0;
    for seed in seeds(7300, 30) {
        let _g = SeedGuard(seed);
        let impair = impairment_of(seed);
        ANSWER_LEAF.set((true, 0));
        let leaf = rr_run(seed, impair, true);
        taken += ANSWER_LEAF.get().1;
        let full = rr_run(seed, impair, false);
        if let Some(i) = (0..leaf.len().max(full.len())).find(|&i| leaf.get(i) != full.get(i)) {
            panic!(
                "the exchanges differ at record {i} of {}/{}:\nleaf: {:?}\nfull: {:?}",
                leaf.len(),
                full.len(),
                leaf.get(i),
                full.get(i),
            );
        }
    }
    for seed in seeds(7100, 40) {
        let _g = SeedGuard(seed);
        let impair = impairment_of(seed);
        let cramped = seed % 4 == 1;
        let (mut leaf, mut full) = (Vec::new(), Vec::new());
        ANSWER_LEAF.set((true, 0));
        transfer_run(seed, impair, 60_000, cramped, true, Some(&mut leaf));
        taken += ANSWER_LEAF.get().1;
        ANSWER_LEAF.set((false, 0));
        transfer_run(seed, impair, 60_000, cramped, true, Some(&mut full));
        ANSWER_LEAF.set((true, 0));
        if let Some(i) = (0..leaf.len().max(full.len())).find(|&i| leaf.get(i) != full.get(i)) {
            panic!(
                "the runs differ at record {i} of {}/{}:\nleaf: {:?}\nfull: {:?}",
                leaf.len(),
                full.len(),
                leaf.get(i),
                full.get(i),
            );
        }
    }
    eprintln!("segments the answer leaf took: {taken}");
    assert!(taken > 0);
}

#[test]
fn transfers_over_a_clean_link() {
    let totals = sweep(1, 30, |seed| transfer(seed, Impair::default(), 150_000));
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
        ..Impair::default()
    };
    let totals = sweep(1000, 220, |seed| transfer(seed, impair, 60_000));
    assert!(totals.retrans > 0 && totals.fast > 0 && totals.out_of_order > 0);
}

#[test]
fn transfers_with_small_queues_and_slow_readers_under_loss() {
    let impair = Impair {
        loss: 30,
        dup: 10,
        reorder: 30,
        ..Impair::default()
    };
    let mut totals = Totals::default();
    let mut probes = 0;
    for seed in seeds(9000, 60) {
        let _g = SeedGuard(seed);
        let infos = transfer_with(seed, impair, 40_000, true);
        probes += infos[0].window_probes + infos[1].window_probes;
        totals.add(infos);
    }
    eprintln!("{totals:?}, {probes} window probes");
    assert!(totals.retrans > 0 && probes > 0);
}

#[test]
fn transfers_under_heavy_loss() {
    let impair = Impair {
        loss: 150,
        dup: 0,
        reorder: 0,
        ..Impair::default()
    };
    let totals = sweep(5000, 40, |seed| transfer(seed, impair, 30_000));
    assert!(totals.retrans > 0);
}

#[test]
fn transfers_through_a_narrower_path_lower_the_mss_and_lose_nothing() {
    // Each run's link carries less than the 1460 both ends announce; half
    // the runs lose segments too. Every byte arrives (`transfer` checks),
    // and the senders end at or under the path's MSS.
    let mut reductions = 0;
    for seed in seeds(7000, 40) {
        let _g = SeedGuard(seed);
        let path_mss = 536 + (seed * 37 % 900) as u16;
        let impair = Impair {
            loss: if seed % 2 == 0 { 20 } else { 0 },
            path_mss,
            ..Impair::default()
        };
        for info in transfer(seed, impair, 60_000) {
            if info.pmtu_reductions > 0 {
                // The effective MSS (less the timestamps) under the path's.
                assert!(info.path_mss == path_mss && info.snd_mss <= info.path_mss);
            }
            reductions += info.pmtu_reductions;
        }
    }
    eprintln!("{reductions} path MSS reductions");
    assert!(reductions >= 40, "every run has a sender that met the path");
}

// ---- Targeted cases -------------------------------------------------------

/// A hand-made segment for `conn`'s peer to "send": in sequence with what
/// `conn` expects unless the caller moves `seq`.
fn forged(
    pool: &Pool,
    seq: SeqNumber,
    ack: SeqNumber,
    flags: TcpFlags,
    data: &[u8],
    ts: Option<(u32, u32)>,
) -> SegmentIn<PoolBuf> {
    let payload = (!data.is_empty()).then(|| {
        let mut b = pool.alloc().unwrap();
        b.extend_from_slice(data).unwrap();
        b
    });
    SegmentIn {
        seq,
        ack,
        flags,
        window: 65535,
        options: TcpOptionSet {
            timestamps: ts,
            ..TcpOptionSet::default()
        },
        payload,
    }
}

/// A forged segment with no data and no timestamp (resets, bare ACKs,
/// SYNs).
fn bare(pool: &Pool, seq: SeqNumber, ack: SeqNumber, flags: TcpFlags) -> SegmentIn<PoolBuf> {
    forged(pool, seq, ack, flags, b"", None)
}

/// The next segment as the output path asks for it: the straight case
/// for a quiet connection ([`Connection::poll_quiet`], its decision held
/// against `next_full`'s), [`Connection::poll_transmit`] for everything
/// else. The simulations send through it, so every seeded run exercises
/// both.
fn next_out(conn: &mut Connection<PoolBuf>, now: u64) -> Option<SegmentOut<PoolBuf>> {
    if !conn.quiet() {
        return conn.poll_transmit(now);
    }
    let mut pass = QuietPass::default();
    let (seg, full) = match conn.poll_quiet(now, &mut pass) {
        Quiet::Seg(seg) => (Some(seg.into_segment()), false),
        Quiet::Nothing => (None, false),
        Quiet::Full => (None, true),
    };
    conn.end_quiet_pass(now, &mut pass);
    if full {
        return conn.poll_transmit(now);
    }
    seg
}

/// Drains a connection's output, returning the segments.
fn drain(conn: &mut Connection<PoolBuf>, now: u64) -> Vec<SegmentOut<PoolBuf>> {
    core::iter::from_fn(|| conn.poll_transmit(now)).collect()
}

/// An established pair over a clean link, events of the handshake taken.
fn established(cfg_a: &TcpConfig, cfg_b: &TcpConfig) -> Net {
    let mut net = Net::connect(cfg_a, cfg_b, 7, Impair::default());
    net.established();
    net.run_until(1000, |n| {
        n.ab.in_flight.is_empty() && n.ba.in_flight.is_empty()
    });
    net
}

/// Lets the pair exchange segments until the links are empty (timers
/// fire only as far as the exchange takes).
fn settle(net: &mut Net) {
    net.flush();
    net.run_until(100_000, |n| {
        n.ab.in_flight.is_empty()
            && n.ba.in_flight.is_empty()
            && !n.a.wants_transmit()
            && !n.b.wants_transmit()
            && n.a.timers.delayed_ack.is_stopped()
            && n.b.timers.delayed_ack.is_stopped()
    });
}

#[test]
fn options_are_on_only_when_both_sides_offer_them() {
    let cfg = small_cfg();
    let net = established(&cfg, &cfg);
    let (a, b) = (net.a.info(), net.b.info());
    assert!(a.timestamps && b.timestamps && a.sack && b.sack);
    // 70 KiB needs one shift to fit 16 bits (RFC 7323 §2.2).
    assert_eq!(
        (a.snd_wscale, a.rcv_wscale, b.snd_wscale, b.rcv_wscale),
        (1, 1, 1, 1)
    );
    // The effective MSS, as Linux's tcpi_snd_mss: 1460 less 12 bytes of
    // timestamps.
    assert_eq!((a.snd_mss, b.snd_mss), (1448, 1448));
    assert_eq!((a.rcv_mss, b.rcv_mss), (1460, 1460), "the MSS announced");
    assert!(net.events_a.connected() && net.events_a.writable() && net.events_b.connected());

    for (off_a, off_b) in [(true, false), (false, true)] {
        let mut ca = small_cfg();
        let mut cb = small_cfg();
        ca.timestamps = !off_a;
        ca.window_scale = !off_a;
        ca.sack = !off_a;
        cb.timestamps = !off_b;
        cb.window_scale = !off_b;
        cb.sack = !off_b;
        let net = established(&ca, &cb);
        for i in [net.a.info(), net.b.info()] {
            assert!(!i.timestamps && !i.sack, "{i:?}");
            assert_eq!(i.snd_mss, 1460, "no options to leave room for");
            assert_eq!((i.snd_wscale, i.rcv_wscale), (0, 0));
        }
        // Unscaled, the window is capped at 65535 (RFC 7323 §2.2).
        assert_eq!(net.a.info().rcv_wnd, 65535);
        // No SYN-ACK option the SYN did not carry.
        let syn_ack = net.ba.log[0];
        assert!(syn_ack.2.syn() && syn_ack.2.ack());
    }
}

#[test]
fn peer_mss_caps_ours_and_a_missing_one_means_536() {
    let pool = Pool::with_capacity(8).unwrap();
    let cfg = TcpConfig::default();
    let mut syn = bare(&pool, SeqNumber::new(9), SeqNumber::new(0), TcpFlags::SYN);
    syn.options.mss = Some(1000);
    let c = Connection::accept(&cfg, params(1), &syn, 0);
    assert_eq!(c.info().snd_mss, 1000);
    syn.options.mss = None;
    let c = Connection::accept(&cfg, params(1), &syn, 0);
    // RFC 9293 §3.7.1: the default send MSS is 536.
    assert_eq!(c.info().snd_mss, 536);
    syn.options.mss = Some(1);
    let c = Connection::accept(&cfg, params(1), &syn, 0);
    assert_eq!(c.info().snd_mss, 48, "a tiny MSS is raised to the floor");
}

#[test]
fn simultaneous_open_meets_in_the_middle() {
    let pool = Pool::with_capacity(64).unwrap();
    let cfg = small_cfg();
    let mut a = Connection::<PoolBuf>::connect(&cfg, params(100), 0);
    let mut b = Connection::<PoolBuf>::connect(&cfg, params(90_000), 0);
    let sa = a.poll_transmit(0).unwrap();
    let sb = b.poll_transmit(0).unwrap();
    a.on_segment(to_in(&sb, &pool).unwrap(), MS);
    b.on_segment(to_in(&sa, &pool).unwrap(), MS);
    // RFC 9293 §3.5 figure 8: both go to SYN_RECEIVED and SYN-ACK.
    assert_eq!(
        (a.state(), b.state()),
        (State::SynReceived, State::SynReceived)
    );
    let ra = drain(&mut a, MS);
    let rb = drain(&mut b, MS);
    assert_eq!(ra.len(), 1);
    assert!(ra[0].flags.syn() && ra[0].flags.ack() && ra[0].seq == SeqNumber::new(100));
    for s in rb {
        a.on_segment(to_in(&s, &pool).unwrap(), 2 * MS);
    }
    for s in ra {
        b.on_segment(to_in(&s, &pool).unwrap(), 2 * MS);
    }
    assert_eq!(
        (a.state(), b.state()),
        (State::Established, State::Established)
    );
    assert!(a.take_events().connected() && b.take_events().connected());
    drop((a, b, sa, sb));
    pool.assert_whole();
}

#[test]
fn syn_is_retransmitted_with_backoff_then_times_out() {
    let cfg = TcpConfig {
        syn_retries: 3,
        ..TcpConfig::default()
    };
    let mut a = Connection::<PoolBuf>::connect(&cfg, params(5), 0);
    let mut syns = 0;
    let mut deadlines = Vec::new();
    let mut now = 0;
    loop {
        syns += drain(&mut a, now).iter().filter(|s| s.flags.syn()).count();
        let Some(d) = a.next_deadline() else { break };
        deadlines.push(d - now);
        now = d;
        a.on_timer(now);
    }
    // RFC 6298 §5.5: the timeout doubles from 1 s.
    assert_eq!(deadlines, [1, 2, 4, 8].map(|s| s * 1_000_000_000));
    assert_eq!(syns, 4, "the SYN and 3 retransmissions");
    assert_eq!(a.state(), State::Closed);
    assert_eq!(a.take_events().error(), Some(SocketError::TimedOut));
    assert_eq!(a.send(b"x", &mut || None), Err(SocketError::TimedOut));
}

#[test]
fn rst_to_our_syn_is_refused_only_with_the_right_ack() {
    let pool = Pool::with_capacity(8).unwrap();
    let cfg = TcpConfig::default();
    let mut a = Connection::<PoolBuf>::connect(&cfg, params(500), 0);
    a.poll_transmit(0).unwrap();
    let from_peer = |ack: u32, flags| bare(&pool, SeqNumber::new(0), SeqNumber::new(ack), flags);
    // RFC 9293 §3.10.7.3: an RST whose ACK is not for our SYN is dropped.
    a.on_segment(from_peer(9, TcpFlags::RST | TcpFlags::ACK), MS);
    assert_eq!(a.state(), State::SynSent);
    assert!(!a.wants_transmit());
    // A SYN-ACK acknowledging something else draws <SEQ=SEG.ACK><CTL=RST>.
    a.on_segment(from_peer(9, TcpFlags::SYN | TcpFlags::ACK), MS);
    let rst = a.poll_transmit(MS).unwrap();
    assert_eq!((rst.flags, rst.seq), (TcpFlags::RST, SeqNumber::new(9)));
    assert_eq!(a.state(), State::SynSent);
    a.on_segment(from_peer(501, TcpFlags::RST | TcpFlags::ACK), MS);
    assert_eq!(a.state(), State::Closed);
    let ev = a.take_events();
    assert_eq!(
        (ev.error(), ev.closed()),
        (Some(SocketError::ConnectionRefused), true)
    );
    pool.assert_whole();
}

/// Closes `first` then the other side once it saw the FIN (or both at
/// once), and checks the states each side goes through.
fn close_in_order(order: &str) {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    match order {
        "a first" => {
            net.a.close();
            assert_eq!(net.a.state(), State::FinWait1);
            settle(&mut net);
            assert_eq!(
                (net.a.state(), net.b.state()),
                (State::FinWait2, State::CloseWait)
            );
            assert!(net.events_b.peer_closed());
            assert_eq!(net.b.recv().map(|b| b.is_none()), Ok(true), "end of stream");
            net.b.close();
            assert_eq!(net.b.state(), State::LastAck);
            settle(&mut net);
            assert_eq!(
                (net.a.state(), net.b.state()),
                (State::TimeWait, State::Closed)
            );
        }
        "b first" => {
            net.b.shutdown().unwrap();
            settle(&mut net);
            assert_eq!(
                (net.a.state(), net.b.state()),
                (State::CloseWait, State::FinWait2)
            );
            // Half-closed: a may still send, b still reads.
            net.send_a(b"after the fin").unwrap();
            settle(&mut net);
            let mut out = [0u8; 64];
            let n = net.b.read(&mut out).unwrap();
            assert_eq!(&out[..n], b"after the fin");
            net.a.close();
            settle(&mut net);
            assert_eq!(
                (net.a.state(), net.b.state()),
                (State::Closed, State::TimeWait)
            );
        }
        "both" => {
            net.a.close();
            net.b.close();
            net.flush();
            // The FINs cross: RFC 9293 §3.6 figure 13, CLOSING both sides.
            net.run_until(100, |n| {
                n.a.state() != State::FinWait1 && n.b.state() != State::FinWait1
            });
            assert_eq!(
                (net.a.state(), net.b.state()),
                (State::Closing, State::Closing)
            );
            settle(&mut net);
            assert_eq!(
                (net.a.state(), net.b.state()),
                (State::TimeWait, State::TimeWait)
            );
        }
        _ => unreachable!(),
    }
    // TIME_WAIT lasts cfg.time_wait_ns (2 MSL) and ends in CLOSED.
    let start = net.now;
    net.run_until(100, |n| n.a.is_closed() && n.b.is_closed());
    assert!(
        net.now - start >= cfg.time_wait_ns - 100 * MS,
        "TIME_WAIT too short"
    );
    assert!(net.events_a.closed() && net.events_b.closed());
    assert_eq!((net.events_a.error(), net.events_b.error()), (None, None));
    let pool = net.pool.clone();
    drop(net);
    pool.assert_whole();
}

#[test]
fn close_active_passive_and_simultaneous() {
    close_in_order("a first");
    close_in_order("b first");
    close_in_order("both");
}

#[test]
fn close_with_unread_data_resets_the_peer() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    net.send_a(b"never read").unwrap();
    settle(&mut net);
    net.b.close();
    let out = drain(&mut net.b, net.now);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].flags.rst(),
        "RFC 9293 §3.10.4: unread data means RST"
    );
    assert!(net.b.is_closed());
    for s in out {
        net.ba.send(s, net.now, &net.pool, &mut net.rng);
    }
    settle(&mut net);
    assert_eq!(net.a.state(), State::Closed);
    assert_eq!(net.events_a.error(), Some(SocketError::ConnectionReset));
    assert_eq!(net.a.recv().err(), Some(SocketError::ConnectionReset));
    assert_eq!(
        net.a.send(b"x", &mut || None),
        Err(SocketError::ConnectionReset)
    );
}

#[test]
fn data_after_close_resets() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    net.b.close();
    settle(&mut net);
    assert_eq!(net.b.state(), State::FinWait2);
    net.send_a(b"too late").unwrap();
    settle(&mut net);
    assert!(net.b.is_closed());
    assert_eq!(net.events_a.error(), Some(SocketError::ConnectionReset));
}

#[test]
fn rfc5961_rst_resets_only_on_an_exact_match() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    // Out of the window: dropped silently.
    net.b
        .on_segment(bare(&pool, nxt + 1_000_000, una, TcpFlags::RST), now);
    assert!(!net.b.wants_transmit());
    // In the window, not exact: a challenge ACK (RFC 5961 §3.2).
    net.b
        .on_segment(bare(&pool, nxt + 10, una, TcpFlags::RST), now);
    let out = drain(&mut net.b, now);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].ack), (TcpFlags::ACK, nxt));
    assert_eq!(
        (net.b.state(), net.b.info().challenge_acks),
        (State::Established, 1)
    );
    // Exact: reset.
    net.b.on_segment(bare(&pool, nxt, una, TcpFlags::RST), now);
    assert_eq!(net.b.state(), State::Closed);
    assert_eq!(
        net.b.take_events().error(),
        Some(SocketError::ConnectionReset)
    );
}

#[test]
fn rfc5961_syn_on_an_established_connection_draws_a_challenge_ack() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let (nxt, now) = (net.b.rcv_nxt, net.now);
    let pool = net.pool.clone();
    for (i, seq) in [nxt, nxt + 5, nxt - 5_000_000].into_iter().enumerate() {
        // Apart by more than the rate limit of RFC 5961 §7.
        let now = now + i as u64 * 1000 * MS;
        net.b
            .on_segment(bare(&pool, seq, SeqNumber::new(0), TcpFlags::SYN), now);
        let out = drain(&mut net.b, now);
        assert_eq!(out.len(), 1, "SYN at {seq}");
        assert_eq!((out[0].flags, out[0].ack), (TcpFlags::ACK, nxt));
        assert_eq!(net.b.state(), State::Established);
    }
}

#[test]
fn rfc5961_acks_outside_the_sent_range_are_dropped() {
    let cfg = TcpConfig {
        timestamps: false,
        ..small_cfg()
    };
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    // An ACK for data never sent, carrying data: the data is not taken.
    net.b.on_segment(
        forged(&pool, nxt, una + 5000, TcpFlags::ACK, b"bogus", None),
        now,
    );
    let out = drain(&mut net.b, now);
    assert_eq!((out.len(), out[0].ack), (1, nxt));
    assert_eq!(net.b.info().bytes_received, 0);
    // Too old (before SND.UNA - MAX.SND.WND, RFC 5961 §5.2): dropped too.
    net.b.on_segment(
        forged(&pool, nxt, una - 1_000_000, TcpFlags::ACK, b"bogus", None),
        now + 1000 * MS,
    );
    assert_eq!(drain(&mut net.b, now + 1000 * MS).len(), 1);
    assert_eq!(net.b.info().bytes_received, 0);
    assert_eq!(net.b.info().challenge_acks, 2);
    // In range: taken.
    net.b
        .on_segment(forged(&pool, nxt, una, TcpFlags::ACK, b"good", None), now);
    assert_eq!(net.b.info().bytes_received, 4);
}

#[test]
fn answers_to_out_of_window_segments_are_rate_limited() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    let ts = Some((net.b.ts_recent.wrapping_add(1), 0));
    let mut answered = 0;
    // A flood of in-window RSTs and stray SYNs, 1 ms apart for 2 s.
    for i in 0..2000u64 {
        let flags = if i % 2 == 0 {
            TcpFlags::RST
        } else {
            TcpFlags::SYN
        };
        net.b
            .on_segment(forged(&pool, nxt + 7, una, flags, b"", ts), now + i * MS);
        answered += drain(&mut net.b, now + i * MS).len();
    }
    // One answer per 500 ms (Linux's tcp_invalid_ratelimit).
    assert_eq!(answered, 4);
    assert_eq!(net.b.info().acks_rate_limited, 1996);
    assert_eq!(net.b.state(), State::Established);
    // Old data is answered every time: its sender needs the ACK.
    for i in 0..3 {
        net.b.on_segment(
            forged(&pool, nxt - 10, una, TcpFlags::ACK, b"0123456789", ts),
            now + 2000 * MS + i,
        );
        assert_eq!(drain(&mut net.b, now + 2000 * MS + i).len(), 1);
    }
}

#[test]
fn paws_drops_a_segment_with_an_old_timestamp() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    let recent = net.b.ts_recent;
    let pool = net.pool.clone();
    // RFC 7323 §5.3: TSval older than TS.Recent: drop, ACK.
    net.b.on_segment(
        forged(
            &pool,
            nxt,
            una,
            TcpFlags::ACK,
            b"old",
            Some((recent.wrapping_sub(10), 0)),
        ),
        now,
    );
    assert_eq!(drain(&mut net.b, now).len(), 1);
    assert_eq!((net.b.info().bytes_received, net.b.info().dropped), (0, 1));
    net.b.on_segment(
        forged(
            &pool,
            nxt,
            una,
            TcpFlags::ACK,
            b"new",
            Some((recent.wrapping_add(1), 0)),
        ),
        now,
    );
    assert_eq!(net.b.info().bytes_received, 3);
    assert_eq!(
        net.b.ts_recent,
        recent.wrapping_add(1),
        "TS.Recent follows (RFC 7323 §4.3)"
    );
}

/// `n` in-order segments of ten bytes each from `a` to `b`, taken by `b`
/// and ACKed; returns the sequence number of the first.
fn ten_byte_segments_to_b(net: &mut Net, n: u32, ts: Option<(u32, u32)>) -> SeqNumber {
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    for i in 0..n {
        net.b.on_segment(
            forged(&pool, nxt + i * 10, una, TcpFlags::ACK, &[i as u8; 10], ts),
            now,
        );
    }
    drain(&mut net.b, now);
    assert_eq!(net.b.rcv_nxt, nxt + n * 10);
    nxt
}

#[test]
fn each_duplicate_of_a_burst_gets_an_ack_with_its_own_dsack() {
    // Linux answers every duplicate segment at once with a D-SACK block
    // for it (RFC 2883 §4); here the whole burst arrives before the
    // output path runs, and still each duplicate gets its ACK, in order.
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let ts = Some((net.b.ts_recent.wrapping_add(1), 0));
    let first = ten_byte_segments_to_b(&mut net, 14, ts);
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    // The fourteen again, newest first (a sender's go-back-N in reverse
    // order makes no difference to the rule).
    let order: Vec<u32> = (0..14).rev().collect();
    for &i in &order {
        net.b.on_segment(
            forged(
                &pool,
                first + i * 10,
                una,
                TcpFlags::ACK,
                &[i as u8; 10],
                ts,
            ),
            now,
        );
    }
    let out = drain(&mut net.b, now);
    assert_eq!(out.len(), 14, "one ACK per duplicate: {out:?}");
    for (seg, &i) in out.iter().zip(&order) {
        assert_eq!(seg.ack, nxt);
        assert!(seg.flags.ack() && seg.payload.is_none());
        let sack = seg.options.sack.expect("a D-SACK block");
        let block = sack.as_slice()[0];
        assert_eq!(
            (block.left, block.right),
            ((first + i * 10).get(), (first + i * 10 + 10).get()),
            "duplicate {i}"
        );
    }
    assert_eq!(net.b.info().bytes_received, 140, "nothing delivered twice");
    // Reports owed are settled: nothing more goes out.
    assert!(drain(&mut net.b, now).is_empty());
}

#[test]
fn partial_and_out_of_order_duplicates_in_one_burst_are_each_reported() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let ts = Some((net.b.ts_recent.wrapping_add(1), 0));
    let first = ten_byte_segments_to_b(&mut net, 2, ts);
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    // Held beyond a hole, then sent again, then a segment whose first
    // half is old and whose second half is new, all in one burst.
    let far = nxt + 40;
    net.b.on_segment(
        forged(&pool, far, una, TcpFlags::ACK, b"0123456789", ts),
        now,
    );
    net.b.on_segment(
        forged(&pool, far, una, TcpFlags::ACK, b"0123456789", ts),
        now,
    );
    net.b.on_segment(
        forged(&pool, first + 15, una, TcpFlags::ACK, b"abcdefghij", ts),
        now,
    );
    let out = drain(&mut net.b, now);
    let firsts: Vec<(u32, u32)> = out
        .iter()
        .filter_map(|s| {
            s.options
                .sack
                .map(|b| (b.as_slice()[0].left, b.as_slice()[0].right))
        })
        .collect();
    assert!(
        firsts.contains(&(far.get(), (far + 10).get())),
        "the out-of-order duplicate reported: {firsts:?}"
    );
    assert!(
        firsts.contains(&((first + 15).get(), nxt.get())),
        "the old half of the partial duplicate reported: {firsts:?}"
    );
    assert_eq!(net.b.rcv_nxt, nxt + 5, "the new half taken");
}

#[test]
fn without_sack_a_burst_of_duplicates_is_answered_without_blocks() {
    let cfg = TcpConfig {
        sack: false,
        ..small_cfg()
    };
    let mut net = established(&cfg, &cfg);
    let ts = Some((net.b.ts_recent.wrapping_add(1), 0));
    let first = ten_byte_segments_to_b(&mut net, 3, ts);
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    for i in 0..3 {
        net.b.on_segment(
            forged(&pool, first + i * 10, una, TcpFlags::ACK, &[0; 10], ts),
            now,
        );
    }
    let out = drain(&mut net.b, now);
    assert!(!out.is_empty() && out.len() <= 3, "{out:?}");
    assert!(out.iter().all(|s| s.ack == nxt && s.options.sack.is_none()));
}

#[test]
fn out_of_order_data_is_held_sacked_and_delivered_when_the_hole_fills() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    let ts = Some((net.b.ts_recent.wrapping_add(1), 0));
    net.b.on_segment(
        forged(
            &pool,
            nxt + 5,
            una,
            TcpFlags::ACK | TcpFlags::FIN,
            b"world",
            ts,
        ),
        now,
    );
    let out = drain(&mut net.b, now);
    // An immediate duplicate ACK (RFC 5681 §4.2) with a SACK block for
    // what is held (RFC 2018 §4).
    assert_eq!((out.len(), out[0].ack), (1, nxt));
    let sack = out[0].options.sack.expect("a SACK block");
    assert_eq!(
        (sack.as_slice()[0].left, sack.as_slice()[0].right),
        ((nxt + 5).get(), (nxt + 10).get())
    );
    assert_eq!(net.b.info().out_of_order, 1);
    assert!(net.b.receive_queue.is_empty());
    // The same segment again: a D-SACK block first (RFC 2883 §4).
    net.b.on_segment(
        forged(&pool, nxt + 5, una, TcpFlags::ACK, b"world", ts),
        now,
    );
    let out = drain(&mut net.b, now);
    assert_eq!(
        out[0].options.sack.unwrap().as_slice()[0].left,
        (nxt + 5).get()
    );
    // The hole fills: both parts and the held FIN come out, ACKed at once.
    net.b
        .on_segment(forged(&pool, nxt, una, TcpFlags::ACK, b"hello", ts), now);
    let out = drain(&mut net.b, now);
    assert_eq!((out.len(), out[0].ack), (1, nxt + 11));
    assert_eq!(out[0].options.sack, None);
    assert_eq!(net.b.state(), State::CloseWait);
    let mut buf = [0u8; 16];
    let n = net.b.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"helloworld");
    assert_eq!(net.b.read(&mut buf), Ok(0), "end of stream");
}

#[test]
fn sack_blocks_never_push_a_full_segment_past_the_mss() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    let ts = Some((net.b.ts_recent.wrapping_add(1), 0));
    // A hole: b holds out-of-order data, so its ACKs carry a SACK block.
    net.b.on_segment(
        forged(&pool, nxt + 5, una, TcpFlags::ACK, b"world", ts),
        now,
    );
    assert!(drain(&mut net.b, now)[0].options.sack.is_some());
    // The MSS the peer announced: payload and options together.
    let mss = usize::from(net.b.neg.snd_mss);
    // A full segment and a small one from b.
    let full = vec![7u8; net.b.send_mss()];
    let mut alloc = || pool.alloc();
    assert_eq!(net.b.send(&full, &mut alloc), Ok(full.len()));
    let out = drain(&mut net.b, now);
    let data = out.iter().find(|s| s.payload.is_some()).expect("data");
    let len = data.payload.as_ref().map_or(0, |p| p.total_len());
    assert_eq!(len, full.len());
    assert!(
        len + data.options.wire_len() <= mss,
        "{len} bytes and {} of options over an MSS of {mss}",
        data.options.wire_len()
    );
    assert_eq!(data.options.sack, None, "no room beside a full segment");
    assert_eq!(net.b.send(b"tiny", &mut alloc), Ok(4));
    let out = drain(&mut net.b, now);
    let data = out.iter().find(|s| s.payload.is_some()).expect("data");
    assert!(data.options.sack.is_some(), "room beside a small one");
}

#[test]
fn acks_are_delayed_except_every_second_full_segment() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    let ts = Some((net.b.ts_recent.wrapping_add(1), 0));
    net.b
        .on_segment(forged(&pool, nxt, una, TcpFlags::ACK, b"small", ts), now);
    assert!(!net.b.wants_transmit(), "one small segment: the ACK waits");
    assert_eq!(net.b.next_deadline(), Some(now + cfg.delayed_ack_ns));
    net.b.on_timer(now + cfg.delayed_ack_ns);
    assert_eq!(drain(&mut net.b, now + cfg.delayed_ack_ns)[0].ack, nxt + 5);
    // Two full-sized segments: ACK at once (RFC 5681 §4.2).
    let full = vec![7u8; net.b.neg.rcv_payload_max()];
    let mut seq = nxt + 5;
    for i in 0..2 {
        net.b
            .on_segment(forged(&pool, seq, una, TcpFlags::ACK, &full, ts), now);
        seq += full.len() as u32;
        assert_eq!(net.b.wants_transmit(), i == 1, "segment {i}");
    }
    assert_eq!(drain(&mut net.b, now)[0].ack, seq);
}

#[test]
fn writes_are_refused_before_the_handshake_and_after_shutdown() {
    let cfg = small_cfg();
    let pool = Pool::with_capacity(8).unwrap();
    let mut a = Connection::<PoolBuf>::connect(&cfg, params(1), 0);
    assert_eq!(
        a.send(b"early", &mut || pool.alloc()),
        Err(SocketError::WouldBlock)
    );
    assert_eq!(a.send_space(), 0);
    assert_eq!(a.recv().err(), Some(SocketError::WouldBlock));
    let mut net = established(&cfg, &cfg);
    assert!(net.a.send_space() > 0);
    net.a.shutdown().unwrap();
    assert_eq!(net.send_a(b"late"), Err(SocketError::BrokenPipe));
    let b = net.pool.alloc().unwrap();
    let (e, _back) = net.a.send_buf(b).unwrap_err();
    assert_eq!(e, SocketError::BrokenPipe);
    drop(a);
    pool.assert_whole();
}

#[test]
fn zero_copy_writes_are_released_on_ack() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let mut buf = net.pool.alloc().unwrap();
    buf.extend_from_slice(b"zero copy").unwrap();
    net.a.send_buf(buf).unwrap();
    let too_big = {
        let mut b = net.pool.alloc().unwrap();
        b.append(net.a.send_mss() + 1).unwrap();
        b
    };
    assert_eq!(
        net.a.send_buf(too_big).unwrap_err().0,
        SocketError::MessageTooLong
    );
    settle(&mut net);
    assert_eq!(
        net.a.info().send_queue_bytes,
        0,
        "acknowledged and released"
    );
    let got = net.b.recv().unwrap().unwrap();
    assert_eq!(got.data(), b"zero copy");
}

#[test]
fn a_zero_window_is_probed_until_it_opens() {
    let cfg_a = small_cfg();
    let cfg_b = TcpConfig {
        receive_queue_bytes: 4096,
        ..small_cfg()
    };
    let mut net = established(&cfg_a, &cfg_b);
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
    let mut sent = 0;
    while sent < data.len() {
        match net.send_a(&data[sent..]) {
            Ok(n) => sent += n,
            Err(e) => panic!("{e:?}"),
        }
    }
    // b reads nothing for a while: its window closes, a probes.
    let start = net.now;
    net.run_until(100_000, |n| n.now > start + 30_000 * MS);
    assert!(net.a.info().window_probes >= 3, "{:?}", net.a.info());
    assert_eq!(net.b.info().receive_queue_bytes, 4096);
    assert_eq!(net.a.state(), State::Established, "probes never time out");
    // Reading opens the window; the rest flows.
    let mut got = Vec::new();
    net.run_until(100_000, |n| {
        let mut out = [0u8; 1000];
        while let Ok(k) = n.b.read(&mut out) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&out[..k]);
        }
        n.flush();
        got.len() == data.len()
    });
    assert!(got == data);
}

#[test]
fn unanswered_data_times_out_after_the_retries() {
    let cfg = TcpConfig {
        data_retries: 4,
        ..small_cfg()
    };
    let mut net = established(&cfg, &cfg);
    net.ab.impair.loss = 1000; // the path dies
    net.send_a(b"into the void").unwrap();
    net.run_until(1000, |n| n.a.is_closed());
    assert_eq!(net.events_a.error(), Some(SocketError::TimedOut));
    // 1 + 4 transmissions of the data, each timeout twice the last
    // (RFC 6298 §5.5).
    let times: Vec<u64> = net.ab.log.iter().filter(|s| s.3 > 0).map(|s| s.4).collect();
    assert_eq!(times.len(), 5);
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for g in gaps.windows(2) {
        assert_eq!(g[1], 2 * g[0], "{gaps:?}");
    }
}

#[test]
fn keepalive_probes_an_idle_peer_and_gives_up_when_it_is_gone() {
    let cfg = TcpConfig {
        keepalive: true,
        keepalive_idle_ns: 10_000 * MS,
        keepalive_interval_ns: 1_000 * MS,
        keepalive_probes: 3,
        ..small_cfg()
    };
    let mut net = established(&cfg, &small_cfg());
    let start = net.now;
    net.run_until(1000, |n| n.now > start + 35_000 * MS);
    assert_eq!(net.a.state(), State::Established, "answered probes keep it");
    assert!(net.a.info().keepalive_probes >= 3);
    net.ba.impair.loss = 1000;
    net.run_until(1000, |n| n.a.is_closed());
    assert_eq!(net.events_a.error(), Some(SocketError::TimedOut));
}

#[test]
fn fast_retransmit_after_three_duplicate_acks() {
    let cfg = TcpConfig {
        timestamps: false,
        ..small_cfg()
    };
    let mut net = established(&cfg, &cfg);
    let data = vec![3u8; 10 * 1460];
    net.send_a(&data).unwrap();
    // Lose exactly the first data segment.
    let first = net.a.poll_transmit(net.now).unwrap();
    assert_eq!(first.data_len(), 1460);
    drop(first);
    net.run_until(10_000, |n| n.b.info().bytes_received == data.len() as u64);
    let info = net.a.info();
    assert_eq!(
        info.fast_retransmits, 1,
        "{info:?}\n{:?}\n{:?}",
        net.ab.log, net.ba.log
    );
    assert!(net.now < 1_000 * MS, "recovered before any timeout");
}

/// A segment of random numbers near the connection's windows (or
/// anywhere), random flags, options and payload.
fn hostile(rng: &mut Rng, pool: &Pool, conn: &Connection<PoolBuf>) -> SegmentIn<PoolBuf> {
    let near = |rng: &mut Rng, base: SeqNumber| match rng.below(4) {
        0 => SeqNumber::new(rng.next() as u32),
        1 => base,
        _ => base + (rng.below(200_000) as u32).wrapping_sub(100_000),
    };
    let seq = near(rng, conn.rcv_nxt);
    let ack = near(rng, conn.snd_una);
    let len = match rng.below(3) {
        0 => 0,
        1 => rng.below(20) as usize,
        _ => rng.below(1900) as usize,
    };
    let payload = (len > 0).then(|| {
        let mut b = pool.alloc().unwrap();
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        b.extend_from_slice(&bytes).unwrap();
        b
    });
    let blocks: Vec<_> = (0..rng.below(5))
        .map(|_| tpa::wire::tcp::SackBlock {
            left: near(rng, conn.snd_una).get(),
            right: near(rng, conn.snd_una).get(),
        })
        .collect();
    let options = TcpOptionSet {
        mss: rng.chance(300).then(|| rng.next() as u16),
        window_scale: rng.chance(300).then(|| rng.next() as u8),
        sack_permitted: rng.chance(300),
        sack: tpa::wire::tcp::SackBlocks::new(&blocks),
        timestamps: rng.chance(600).then(|| {
            let tsval = if rng.chance(500) {
                conn.ts_recent.wrapping_add(rng.below(3) as u32)
            } else {
                rng.next() as u32
            };
            (tsval, rng.next() as u32)
        }),
    };
    SegmentIn {
        seq,
        ack,
        flags: TcpFlags(rng.next() as u8),
        window: rng.next() as u16,
        options,
        payload,
    }
}

#[test]
fn hostile_segments_in_every_state_are_dropped_or_handled_without_panic() {
    let mut states_seen = std::collections::HashSet::new();
    for seed in seeds(20_000, 300) {
        let _g = SeedGuard(seed);
        let mut rng = Rng(seed);
        let cfg = TcpConfig {
            keepalive: rng.chance(300),
            ..small_cfg()
        };
        let mut net = established(&cfg, &cfg);
        // Move the pair somewhere along its life.
        let scenario = rng.below(7);
        match scenario {
            0 => {}
            6 => {
                // LAST_ACK: the peer closed first, then we do.
                net.b.close();
                settle(&mut net);
                net.a.close();
            }
            1 => net.a.close(),
            2 => net.b.close(),
            3 => {
                net.a.close();
                net.b.close();
            }
            4 => {
                net.a.send(&[1; 5000], &mut || net.pool.alloc()).unwrap();
            }
            _ => {
                net.b.shutdown().unwrap();
                net.a.send(&[2; 3000], &mut || net.pool.alloc()).unwrap();
            }
        }
        if scenario != 6 {
            for _ in 0..rng.below(6) {
                net.step();
            }
        }
        let target_b = scenario != 6 && rng.chance(500);
        for _ in 0..200 {
            let conn = if target_b { &net.b } else { &net.a };
            states_seen.insert(conn.state());
            let seg = hostile(&mut rng, &net.pool, conn);
            let conn = if target_b { &mut net.b } else { &mut net.a };
            conn.on_segment(seg, net.now);
            if rng.chance(200) {
                net.step();
            }
            let conn = if target_b { &net.b } else { &net.a };
            let info = conn.info();
            assert!(info.send_queue_bytes <= cfg.send_queue_bytes);
            assert!(info.receive_queue_bytes <= cfg.receive_queue_bytes);
            assert!(conn.reassembly.bytes() <= cfg.receive_queue_bytes);
        }
        // Whatever happened, both sides end: drained, timers run out.
        net.a.abort();
        net.b.abort();
        net.run_until(1_000_000, |n| {
            n.a.is_closed() && n.b.is_closed() && !n.a.wants_transmit() && !n.b.wants_transmit()
        });
        let pool = net.pool.clone();
        drop(net);
        pool.assert_whole();
    }
    // Also the handshake states.
    for seed in seeds(30_000, 50) {
        let _g = SeedGuard(seed);
        let mut rng = Rng(seed);
        let pool = Pool::with_capacity(64).unwrap();
        let cfg = small_cfg();
        let mut a = Connection::<PoolBuf>::connect(&cfg, params(rng.next() as u32), 0);
        drain(&mut a, 0);
        let syn = bare(
            &pool,
            SeqNumber::new(rng.next() as u32),
            SeqNumber::new(0),
            TcpFlags::SYN,
        );
        let mut b = Connection::<PoolBuf>::accept(&cfg, params(rng.next() as u32), &syn, 0);
        drop(syn);
        drain(&mut b, 0);
        for _ in 0..100 {
            for conn in [&mut a, &mut b] {
                states_seen.insert(conn.state());
                let seg = hostile(&mut rng, &pool, conn);
                conn.on_segment(seg, MS);
                drain(conn, MS);
            }
        }
        drop((a, b));
        pool.assert_whole();
    }
    for s in [
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::LastAck,
        State::TimeWait,
        State::Closed,
    ] {
        assert!(states_seen.contains(&s), "never hit {s:?}: {states_seen:?}");
    }
}

#[test]
fn abort_resets_an_open_connection_but_not_one_in_time_wait() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    net.a.abort();
    let out = drain(&mut net.a, net.now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(out[0].seq, net.a.snd_max);
    let ev = net.a.take_events();
    assert!(ev.closed() && ev.error().is_none());
    let mut net = established(&cfg, &cfg);
    net.a.close();
    settle(&mut net);
    net.b.close();
    settle(&mut net);
    assert_eq!(net.a.state(), State::TimeWait);
    net.a.abort();
    // RFC 9293 §3.10.5: TIME_WAIT just goes, without an RST.
    assert!(net.a.is_closed() && !net.a.wants_transmit());
}

#[test]
fn a_window_shrunk_to_zero_under_data_in_flight_is_probed_not_timed_out() {
    let cfg = TcpConfig {
        data_retries: 3,
        timestamps: false,
        ..small_cfg()
    };
    let mut net = established(&cfg, &cfg);
    net.a.send(&[9; 3000], &mut || net.pool.alloc()).unwrap();
    let sent = drain(&mut net.a, net.now);
    assert_eq!(sent.len(), 3);
    drop(sent);
    // The peer takes the window back: an ACK of nothing with window 0.
    let (una, nxt) = (net.a.snd_una, net.a.rcv_nxt);
    let mut shrink = bare(&net.pool, nxt, una, TcpFlags::ACK);
    shrink.window = 0;
    net.a.on_segment(shrink, net.now);
    assert_eq!(net.a.info().snd_wnd, 0);
    for _ in 0..10 {
        let now = net.a.next_deadline().unwrap();
        net.a.on_timer(now);
        let out = drain(&mut net.a, now);
        assert!(!out.is_empty(), "a probe");
        assert_eq!(out[0].seq, una);
    }
    assert_eq!(net.a.state(), State::Established);
    assert!(net.a.info().window_probes >= 10);
}

#[test]
fn a_connection_is_small() {
    // Memory per idle connection matters at a million connections (the
    // issue's goal: 4 GiB per million, everything included).
    // 1032 bytes for the engine (1024 until the out-of-order queue
    // counted what it prunes), 8 for the socket trace's handle (a boxed
    // ring: an untraced connection pays the pointer only) and 8 for the
    // count of segments that took the fast path (`segs_predicted`), 8
    // for the latency stages' handle (boxed: unmeasured connections pay
    // the pointer only).
    let size = core::mem::size_of::<Connection<PoolBuf>>();
    eprintln!("Connection<PoolBuf>: {size} bytes");
    assert!(size <= 1056, "{size} bytes");
}

#[test]
fn time_wait_acks_every_retransmitted_fin_and_restarts() {
    let cfg = TcpConfig {
        timestamps: false,
        ..small_cfg()
    };
    let mut net = established(&cfg, &cfg);
    net.a.close();
    settle(&mut net);
    net.b.close();
    settle(&mut net);
    assert_eq!(net.a.state(), State::TimeWait);
    let (fin_seq, ack) = (net.a.rcv_nxt - 1, net.a.snd_max);
    for i in 1..=3 {
        let now = net.now + i * 10 * MS;
        let fin = bare(&net.pool, fin_seq, ack, TcpFlags::FIN | TcpFlags::ACK);
        net.a.on_segment(fin, now);
        let out = drain(&mut net.a, now);
        assert_eq!(out.len(), 1, "FIN {i} is ACKed");
        assert_eq!(out[0].ack, fin_seq + 1);
        assert_eq!(net.a.next_deadline(), Some(now + cfg.time_wait_ns));
    }
}

#[test]
fn sack_recovery_repairs_several_losses_in_one_window() {
    for rack in [false, true] {
        sack_recovery_repairs_several_losses(rack);
    }
}

fn sack_recovery_repairs_several_losses(rack: bool) {
    let cfg = TcpConfig {
        rack,
        ..small_cfg()
    };
    let mut net = established(&cfg, &cfg);
    let data: Vec<u8> = (0..12 * 1448u32).map(|i| (i % 251) as u8).collect();
    net.send_a(&data).unwrap();
    // Lose the 2nd, 5th and 8th segments of the first flight.
    let first = drain(&mut net.a, net.now);
    assert_eq!(first.len(), 10);
    for (i, seg) in first.into_iter().enumerate() {
        if ![1, 4, 7].contains(&i) {
            net.ab.send(seg, net.now, &net.pool, &mut net.rng);
        }
    }
    let mut got = Vec::new();
    net.run_until(10_000, |n| {
        got.extend(n.read_all_b());
        got.len() == data.len()
    });
    assert!(got == data);
    let info = net.a.info();
    assert_eq!(info.fast_retransmits, 1, "{info:?}");
    assert_eq!(info.backoffs, 0, "{info:?}");
    if rack {
        // RACK (RFC 8985 §6.2) marks the three holes lost together once
        // three segments sent after them are SACKed: one recovery,
        // NextSeg resends the other two, and nothing else is resent.
        assert_eq!(info.rack_losses, 3, "{info:?}");
        assert_eq!(info.sack_retransmits, 2, "{info:?}");
        assert_eq!(info.total_retrans, 3, "{info:?}");
    } else {
        // One recovery, NextSeg resent the other two holes, then the one
        // rescue retransmission of RFC 6675 §4 rule 4 (the last segment,
        // unSACKed; PRR-SSRB leaves room for it), no timeout.
        assert_eq!(info.rack_losses, 0, "{info:?}");
        assert_eq!(info.sack_retransmits, 3, "{info:?}");
        assert_eq!(info.total_retrans, 4, "{info:?}");
    }
}

#[test]
fn the_configured_initial_window_and_ceiling_bound_the_flight() {
    for (algo, initial, max) in [
        (CongestionAlgorithm::NewReno, 3u32, 6 * 1448u32),
        (CongestionAlgorithm::Cubic, 1, 4 * 1448),
        (CongestionAlgorithm::Cubic, 10, 1 << 20),
    ] {
        let cfg = TcpConfig {
            congestion: algo,
            initial_cwnd_segments: initial,
            max_cwnd_bytes: max,
            ..small_cfg()
        };
        let mut net = established(&cfg, &small_cfg());
        let data = vec![9u8; 30 * 1448];
        net.send_a(&data).unwrap();
        // RFC 6928 §2 with N = `initial`: the first flight is N segments
        // (the MSS of 1460 less 12 bytes of timestamps is 1448).
        let first = drain(&mut net.a, net.now);
        assert_eq!(first.len(), initial as usize, "{algo:?}");
        net.put_ab(first);
        let mut most = 0;
        net.run_until(100_000, |n| {
            most = most.max(n.a.flight());
            while let Ok(Some(_)) = n.b.recv() {}
            n.b.info().bytes_received == data.len() as u64
        });
        assert!(most <= max, "{algo:?}: {most} bytes in flight > {max}");
        assert!(net.a.cc.cwnd() <= max, "{algo:?}: {:?}", net.a.cc);
    }
}

/// A pair whose `a` sends `segments` full segments at once (the initial
/// window made that large) with as many again queued behind, dropped at
/// the indices in `lose`; returns the pair and the segments that made
/// it, still to be delivered.
fn one_flight(cfg: &TcpConfig, segments: u32, lose: &[usize]) -> (Net, Vec<SegmentOut<PoolBuf>>) {
    let cfg_a = TcpConfig {
        initial_cwnd_segments: segments,
        send_queue_bytes: 2 * segments as usize * 1448,
        ..cfg.clone()
    };
    let mut net = established(&cfg_a, cfg);
    let data = vec![5u8; 2 * segments as usize * 1448];
    net.send_a(&data).unwrap();
    let flight = drain(&mut net.a, net.now);
    assert_eq!(flight.len(), segments as usize);
    let kept = flight
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !lose.contains(i))
        .map(|(_, s)| s)
        .collect();
    (net, kept)
}

/// Delivers one segment to `b` and `b`'s answers to `a`; returns the
/// data segments `a` sends in response (not delivered).
fn exchange(net: &mut Net, seg: SegmentOut<PoolBuf>) -> Vec<SegmentOut<PoolBuf>> {
    let seg = to_in(&seg, &net.pool).unwrap();
    net.b.on_segment(seg, net.now);
    let mut out = Vec::new();
    for ack in drain(&mut net.b, net.now) {
        let ack = to_in(&ack, &net.pool).unwrap();
        net.a.on_segment(ack, net.now);
        out.extend(
            drain(&mut net.a, net.now)
                .into_iter()
                .filter(|s| s.data_len() > 0),
        );
    }
    out
}

#[test]
fn prr_spreads_the_reduction_over_the_recovery() {
    // RFC 6675's losses. (With RACK: at no delay the fast retransmit
    // shares the flight's send time, RACK's tie-break by sequence (RFC
    // 8985 §6.2) takes it for older than the originals delivered after,
    // and it counts as lost again.)
    let cfg = TcpConfig {
        congestion: CongestionAlgorithm::NewReno,
        rack: false,
        ..small_cfg()
    };
    // 20 segments out, the first lost: 19 duplicate ACKs each SACK one.
    let (mut net, kept) = one_flight(&cfg, 20, &[0]);
    let mut per_ack = Vec::new();
    for seg in kept {
        per_ack.push(exchange(&mut net, seg).len());
    }
    // RFC 6937 §3: ssthresh = 10 segments, RecoverFS = 20; from the third
    // duplicate ACK (the fast retransmit and its half segment) one
    // segment leaves per two delivered, never a burst.
    assert_eq!(net.a.info().fast_retransmits, 1);
    assert_eq!(net.a.cc.ssthresh(), 10 * 1448, "{per_ack:?}");
    assert_eq!(&per_ack[..2], &[0, 0], "{per_ack:?}");
    assert!(per_ack.iter().all(|&n| n <= 1), "{per_ack:?}");
    // While pipe > ssthresh, prr_out = CEIL(prr_delivered * ssthresh /
    // RecoverFS): one segment per two ACKs, the retransmission included.
    let proportional: usize = per_ack[2..12].iter().sum();
    assert_eq!(proportional, 5, "{per_ack:?}");
    // Then PRR-SSRB holds pipe at ssthresh, one out per one delivered
    // (RFC 6937 §1: the window ends the recovery at ssthresh).
    assert_eq!(&per_ack[14..], &[1; 5], "{per_ack:?}");
    assert_eq!(net.a.sack_pipe(), Some(10 * 1448), "{per_ack:?}");
    assert_eq!(net.a.info().spurious_recoveries, 0);
}

#[test]
fn a_recovery_whose_retransmission_is_dsacked_is_undone() {
    for algo in [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic] {
        let cfg = TcpConfig {
            congestion: algo,
            ..small_cfg()
        };
        // The first segment is late, not lost: three others overtake it.
        let (mut net, mut kept) = one_flight(&cfg, 10, &[]);
        let before = (net.a.cc.cwnd(), net.a.cc.ssthresh());
        let late = kept.remove(0);
        let mut resent = Vec::new();
        for seg in kept.drain(..3) {
            resent.extend(exchange(&mut net, seg));
        }
        assert_eq!(resent.len(), 1, "{algo:?}: the fast retransmit");
        assert!(net.a.cc.in_recovery());
        assert!(net.a.cc.ssthresh() < before.1);
        // The original arrives, then its copy: the receiver D-SACKs the
        // copy (RFC 2883 §4), and that was the recovery's one
        // retransmission (RFC 3708 §3).
        exchange(&mut net, late);
        assert_eq!(net.a.info().spurious_recoveries, 0, "{algo:?}");
        exchange(&mut net, resent.remove(0));
        let info = net.a.info();
        assert_eq!(info.spurious_recoveries, 1, "{algo:?}: {info:?}");
        assert!(!net.a.cc.in_recovery(), "{algo:?}");
        assert_eq!(net.a.cc.ssthresh(), before.1, "{algo:?}");
        assert!(net.a.cc.cwnd() >= before.0, "{algo:?}: {info:?}");
        // The rest of the transfer goes through as usual.
        net.put_ab(kept);
        run_until_received(&mut net, 20 * 1448);
        assert_eq!(net.a.info().spurious_recoveries, 1, "{algo:?}");
    }
}

#[test]
fn small_writes_coalesce_while_their_chunk_is_unsent() {
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    // Fill cwnd so that the next writes wait.
    let cwnd = net.a.info().cwnd as usize;
    net.a
        .send(&vec![1; cwnd], &mut || net.pool.alloc())
        .unwrap();
    let flight = drain(&mut net.a, net.now);
    assert_eq!(
        flight.iter().map(|s| s.data_len() as usize).sum::<usize>(),
        cwnd
    );
    for _ in 0..100 {
        net.send_a(b"0123456789").unwrap();
    }
    // 1000 bytes in one chunk, not 100 chunks.
    assert_eq!(net.a.send_queue.sent_ranges().count(), flight.len());
    let unsent = net.a.send_queue.next_unsent().unwrap();
    assert_eq!(unsent.len, 1000);
    net.put_ab(flight);
    settle(&mut net);
    assert_eq!(net.b.info().bytes_received as usize, cwnd + 1000);
    assert!(
        net.ab.log.iter().any(|s| s.3 == 1000),
        "one 1000-byte segment"
    );
}

#[test]
fn the_receiver_avoids_silly_window_updates() {
    let cfg_b = TcpConfig {
        receive_queue_bytes: 8 * 1448,
        timestamps: false,
        ..small_cfg()
    };
    let cfg_a = TcpConfig {
        timestamps: false,
        ..small_cfg()
    };
    let mut net = established(&cfg_a, &cfg_b);
    net.a
        .send(&vec![5; 8 * 1448], &mut || net.pool.alloc())
        .unwrap();
    settle(&mut net);
    assert_eq!(net.a.info().snd_wnd, 0, "the window is full");
    // Reading less than a segment's worth announces nothing (RFC 9293
    // §3.8.6.2.2): the right edge stays.
    let mut out = [0u8; 1000];
    assert_eq!(net.b.read(&mut out), Ok(1000));
    assert!(!net.b.wants_transmit());
    assert_eq!(net.b.announce_window(), 0);
    // A full segment's worth more: the window opens, and an update goes.
    assert_eq!(net.b.read(&mut out), Ok(1000));
    assert!(net.b.wants_transmit());
    settle(&mut net);
    assert_eq!(net.a.info().snd_wnd, 2000);
}

/// The ACK `conn` sends at once (no timer), if any: the last segment out.
fn immediate_ack(conn: &mut Connection<PoolBuf>, now: u64) -> Option<SeqNumber> {
    drain(conn, now).last().map(|s| s.ack)
}

#[test]
fn a_fin_is_acked_at_once_on_every_path() {
    // RFC 9293 §3.10.7.4 eighth step: "send an acknowledgment for the
    // FIN"; Linux quick-ACKs it. A delayed ACK here made the kernel
    // resend its FIN (its tail loss probe fires before 40 ms).
    let cfg = small_cfg();
    // In order, alone, behind data whose ACK waits.
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    let pool = net.pool.clone();
    let ts = Some((net.b.ts_recent.wrapping_add(1), 0));
    net.b
        .on_segment(forged(&pool, nxt, una, TcpFlags::ACK, b"data", ts), now);
    assert!(!net.b.wants_transmit(), "small data: the ACK waits");
    net.b.on_segment(
        forged(&pool, nxt + 4, una, TcpFlags::ACK | TcpFlags::FIN, b"", ts),
        now,
    );
    assert_eq!(immediate_ack(&mut net.b, now), Some(nxt + 5), "FIN alone");
    assert_eq!(net.b.state(), State::CloseWait);

    // In order, with data.
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    net.b.on_segment(
        forged(&pool, nxt, una, TcpFlags::ACK | TcpFlags::FIN, b"data", ts),
        now,
    );
    assert_eq!(immediate_ack(&mut net.b, now), Some(nxt + 5), "data + FIN");

    // Out of order, alone, then the hole fills.
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    net.b.on_segment(
        forged(&pool, nxt + 4, una, TcpFlags::ACK | TcpFlags::FIN, b"", ts),
        now,
    );
    assert_eq!(immediate_ack(&mut net.b, now), Some(nxt), "a duplicate ACK");
    net.b
        .on_segment(forged(&pool, nxt, una, TcpFlags::ACK, b"data", ts), now);
    assert_eq!(immediate_ack(&mut net.b, now), Some(nxt + 5), "hole filled");
    assert_eq!(net.b.state(), State::CloseWait);

    // Out of order with data, the hole filled by a resend that also
    // covers part of what is held.
    let mut net = established(&cfg, &cfg);
    let (nxt, una, now) = net.next_to_b();
    net.b.on_segment(
        forged(
            &pool,
            nxt + 4,
            una,
            TcpFlags::ACK | TcpFlags::FIN,
            b"tail",
            ts,
        ),
        now,
    );
    drain(&mut net.b, now);
    net.b
        .on_segment(forged(&pool, nxt, una, TcpFlags::ACK, b"datata", ts), now);
    assert_eq!(immediate_ack(&mut net.b, now), Some(nxt + 9), "overlap");
    assert_eq!(net.b.state(), State::CloseWait);

    // In FIN_WAIT_2 (we shut down first): the FIN moves us to TIME_WAIT.
    let mut net = established(&cfg, &cfg);
    net.a.shutdown().unwrap();
    settle(&mut net);
    assert_eq!(net.a.state(), State::FinWait2);
    let (nxt, una, now) = net.next_to_a();
    let ts_a = Some((net.a.ts_recent.wrapping_add(1), 0));
    net.a
        .on_segment(forged(&pool, nxt, una, TcpFlags::ACK, b"late", ts_a), now);
    net.a.on_segment(
        forged(
            &pool,
            nxt + 4,
            una,
            TcpFlags::ACK | TcpFlags::FIN,
            b"",
            ts_a,
        ),
        now,
    );
    assert_eq!(immediate_ack(&mut net.a, now), Some(nxt + 5), "FIN_WAIT_2");
    assert_eq!(net.a.state(), State::TimeWait);
    // Resent in TIME_WAIT (timestamps on), the same and with its data.
    for (i, (seq, data)) in [(nxt + 4, &b""[..]), (nxt, &b"late"[..])]
        .iter()
        .enumerate()
    {
        let at = now + (i as u64 + 1) * MS;
        let ts = Some((net.a.ts_recent.wrapping_add(2 + i as u32), 0));
        net.a.on_segment(
            forged(&pool, *seq, una, TcpFlags::ACK | TcpFlags::FIN, data, ts),
            at,
        );
        assert_eq!(
            immediate_ack(&mut net.a, at),
            Some(nxt + 5),
            "TIME_WAIT {i}"
        );
    }
}

#[test]
fn a_forged_segment_with_a_bad_ack_does_not_move_ts_recent() {
    // RFC 7323 §4.3 keeps TS.Recent from segments found acceptable; Linux
    // takes it only once the ACK passed too (tcp_ack's
    // FLAG_UPDATE_TS_RECENT). Else a blind attacker's segment at RCV.NXT
    // with an ACK beyond SND.NXT and a far-future TSval would become
    // TS.Recent, and PAWS would drop the real peer.
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let (nxt, una, max, now) = (net.b.rcv_nxt, net.b.snd_una, net.b.snd_max, net.now);
    let pool = net.pool.clone();
    let recent = net.b.ts_recent;
    let future = Some((recent.wrapping_add(1 << 30), 0));
    for (what, ack) in [
        ("beyond SND.NXT", max + 100_000),
        ("too old", una - (1 << 30)),
    ] {
        net.b.on_segment(
            forged(&pool, nxt, ack, TcpFlags::ACK, b"forged", future),
            now,
        );
        assert_eq!(net.b.ts_recent, recent, "ACK {what}: TS.Recent kept");
        assert_eq!(net.b.info().bytes_received, 0, "ACK {what}: dropped");
    }
    // The real peer, a tick later, is still heard.
    let real = Some((recent.wrapping_add(1), 0));
    net.b.on_segment(
        forged(&pool, nxt, una, TcpFlags::ACK, b"real", real),
        now + MS,
    );
    assert_eq!(net.b.info().bytes_received, 4, "the real peer's data");
    assert_eq!(net.b.ts_recent, recent.wrapping_add(1));
}

/// A flight of `segments` out (more data queued behind it), held; `a`'s
/// retransmission timer fires. Returns the pair, the held flight, the
/// retransmission, and cwnd/ssthresh before the timeout.
fn timed_out_flight(
    cfg: &TcpConfig,
    segments: u32,
) -> (
    Net,
    Vec<SegmentOut<PoolBuf>>,
    SegmentOut<PoolBuf>,
    (u32, u32),
) {
    // The timeout itself: RACK-TLP's probe would go first (its PTO runs
    // ahead of the RTO) and its ACK would make the timeout moot.
    let cfg = TcpConfig {
        rack: false,
        ..cfg.clone()
    };
    let (mut net, flight) = one_flight(&cfg, segments, &[]);
    let before = (net.a.cc.cwnd(), net.a.cc.ssthresh());
    let deadline = net.a.next_deadline().expect("the retransmission timer");
    net.now = deadline;
    net.a.on_timer(net.now);
    let mut resent = drain(&mut net.a, net.now);
    assert_eq!(resent.len(), 1, "one segment in the loss window");
    let resent = resent.remove(0);
    assert_eq!(resent.seq, flight[0].seq, "the oldest chunk again");
    assert_eq!(
        net.a.cc.cwnd(),
        net.a.neg.payload_max() as u32,
        "RFC 5681 §3.1's loss window"
    );
    (net, flight, resent, before)
}

#[test]
fn eifel_undoes_a_timeout_whose_flight_was_only_late() {
    // RFC 3522: with timestamps, the first ACK after the timeout echoes
    // the original transmission's TSval, older than the retransmission's.
    for algo in [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic] {
        let cfg = TcpConfig {
            congestion: algo,
            ..small_cfg()
        };
        let (mut net, flight, resent, before) = timed_out_flight(&cfg, 10);
        let recovery_point = net.a.snd_max;
        let mut sent = Vec::new();
        for seg in flight {
            sent.extend(exchange(&mut net, seg));
        }
        let info = net.a.info();
        assert_eq!(info.spurious_rtos, 1, "{algo:?}: {info:?}");
        assert_eq!(
            (net.a.cc.cwnd() >= before.0, net.a.cc.ssthresh()),
            (true, before.1),
            "{algo:?}: the window before the timeout"
        );
        // RFC 4015 §3: no go-back-N: only new data followed.
        assert!(!sent.is_empty(), "{algo:?}");
        assert!(
            sent.iter().all(|s| s.seq.ge(recovery_point)),
            "{algo:?}: {:?}",
            sent.iter().map(|s| s.seq).collect::<Vec<_>>()
        );
        // The late retransmission arrives: D-SACKed, nothing undone twice.
        exchange(&mut net, resent);
        assert_eq!(net.a.info().spurious_rtos, 1, "{algo:?}");
        assert_eq!(net.a.info().total_retrans, 1, "{algo:?}");
    }
}

#[test]
fn frto_without_timestamps_undoes_a_late_flight_after_two_new_segments() {
    // RFC 5682 §3.1: the ACK of the retransmission brings two new
    // segments (step 2b); the next ACK covers data never resent (3b).
    for sack in [true, false] {
        let cfg = TcpConfig {
            timestamps: false,
            sack,
            ..small_cfg()
        };
        let (mut net, mut flight, _resent, before) = timed_out_flight(&cfg, 10);
        let recovery_point = net.a.snd_max;
        let mut first = Vec::new();
        // The receiver ACKs every second segment: two arrive.
        for seg in flight.drain(..2) {
            first.extend(exchange(&mut net, seg));
        }
        assert_eq!(first.len(), 2, "sack {sack}: step 2b's two new segments");
        assert!(
            first.iter().all(|s| s.seq.ge(recovery_point)),
            "sack {sack}"
        );
        assert_eq!(net.a.info().spurious_rtos, 0, "sack {sack}");
        let mut later = Vec::new();
        for seg in flight.drain(..2) {
            later.extend(exchange(&mut net, seg));
        }
        let info = net.a.info();
        assert_eq!(info.spurious_rtos, 1, "sack {sack}: {info:?}");
        assert_eq!(net.a.cc.ssthresh(), before.1, "sack {sack}");
        assert!(net.a.cc.cwnd() >= before.0, "sack {sack}");
        assert!(
            later.iter().all(|s| s.seq.ge(recovery_point)),
            "sack {sack}"
        );
        // The rest of the flight and of the data goes through.
        net.put_ab(flight.into_iter().chain(first).chain(later));
        run_until_received(&mut net, 20 * 1448);
        assert_eq!(
            net.a.info().total_retrans,
            1,
            "sack {sack}: only the timeout's"
        );
    }
}

#[test]
fn eifel_does_not_take_an_earlier_retransmissions_echo_for_the_originals() {
    // Simulation seed 87928: the head went out again before the timeout (a
    // fast retransmit that arrived, its ACK lost); the ACK of the
    // timeout's retransmission echoes that earlier TSval, older than the
    // timeout's, while the rest of the flight was lost. Taken for RFC
    // 3522's proof, it undid the timeout: the lost flight counted as in
    // flight, and only backed-off timeouts resent it, one chunk each.
    let cfg = TcpConfig {
        rack: false,
        sack: false,
        delayed_ack: false,
        ..small_cfg()
    };
    let (mut net, flight) = one_flight(&cfg, 10, &[]);
    let head = flight[0].seq;
    let hole = flight[5].seq;
    let mut flight = flight.into_iter().skip(1);
    // Segments 1 to 4 arrive past the lost head: duplicate ACKs.
    let mut sent = Vec::new();
    for seg in flight.by_ref().take(4) {
        sent.extend(exchange(&mut net, seg));
    }
    drop(flight); // 5 to 9 are lost
    let fast = sent
        .into_iter()
        .find(|s| s.seq == head)
        .expect("a fast retransmit of the head");
    // It arrives; its ACK is lost.
    net.b.on_segment(to_in(&fast, &net.pool).unwrap(), net.now);
    drop(drain(&mut net.b, net.now));
    // Two timeouts: the first retransmission is lost, the second arrives.
    let mut resent = None;
    for _ in 0..2 {
        net.now = net.a.next_deadline().expect("the retransmission timer");
        net.a.on_timer(net.now);
        let seg = drain(&mut net.a, net.now).into_iter().next();
        resent = seg.filter(|s| s.seq == head);
    }
    let resent = resent.expect("the head again");
    let mut after = exchange(&mut net, resent);
    assert_eq!(net.a.info().spurious_rtos, 0, "{:?}", net.a.info());
    // F-RTO's new segments bring duplicate ACKs: go-back-N from the hole.
    for _ in 0..4 {
        if after.iter().any(|s| s.seq == hole) {
            break;
        }
        let mut next = Vec::new();
        for seg in after {
            next.extend(exchange(&mut net, seg));
        }
        after = next;
    }
    assert!(
        after.iter().any(|s| s.seq == hole),
        "the lost flight is sent again: {:?}",
        after.iter().map(|s| s.seq).collect::<Vec<_>>()
    );
    assert_eq!(net.a.info().spurious_rtos, 0);
}

#[test]
fn a_duplicate_with_a_good_ack_restarts_keepalive() {
    // Simulation seed 87928 again: the peer's timeout retransmission of
    // data already received is the peer alive; keepalive idled on from
    // the last new data and gave up on a peer that was sending.
    let cfg = TcpConfig {
        keepalive: true,
        keepalive_idle_ns: 10_000 * MS,
        keepalive_interval_ns: 1_000 * MS,
        keepalive_probes: 3,
        ..small_cfg()
    };
    let mut net = established(&small_cfg(), &cfg);
    net.send_a(&[7u8; 1000]).unwrap();
    let seg = drain(&mut net.a, net.now).remove(0);
    let again = to_in(&seg, &net.pool).unwrap();
    net.b.on_segment(to_in(&seg, &net.pool).unwrap(), net.now);
    drop(drain(&mut net.b, net.now));
    let idle_from = net.now;
    net.now += 9_000 * MS;
    net.b.on_segment(again, net.now);
    assert_eq!(
        net.b.timers.keepalive.get(),
        Some(net.now + 10_000 * MS),
        "keepalive waits a whole idle time from the duplicate, not from {idle_from}"
    );
}

#[test]
fn frto_keeps_the_reduction_when_the_flight_was_lost() {
    // The whole flight is lost: the retransmission's ACK brings two new
    // segments, which arrive past a hole: duplicate ACKs (RFC 5682 §3.1
    // step 3a), and go-back-N resumes from SND.UNA.
    for ts in [true, false] {
        let cfg = TcpConfig {
            timestamps: ts,
            delayed_ack: false,
            ..small_cfg()
        };
        let (mut net, flight, resent, before) = timed_out_flight(&cfg, 10);
        let recovery_point = net.a.snd_max;
        let second = flight[1].seq;
        drop(flight);
        let new = exchange(&mut net, resent);
        assert_eq!(new.len(), 2, "ts {ts}");
        assert!(new.iter().all(|s| s.seq.ge(recovery_point)), "ts {ts}");
        let mut after = Vec::new();
        for seg in new {
            after.extend(exchange(&mut net, seg));
        }
        let info = net.a.info();
        assert_eq!(info.spurious_rtos, 0, "ts {ts}: {info:?}");
        assert!(net.a.cc.ssthresh() < before.1, "ts {ts}");
        assert_eq!(
            after.first().map(|s| s.seq),
            Some(second),
            "ts {ts}: go-back-N from the hole"
        );
        net.put_ab(after);
        run_until_received(&mut net, 20 * 1448);
        assert_eq!(net.a.info().spurious_rtos, 0, "ts {ts}");
    }
}

#[test]
fn without_frto_a_late_flight_is_sent_again() {
    let cfg = TcpConfig {
        frto: false,
        ..small_cfg()
    };
    let (mut net, flight, _resent, before) = timed_out_flight(&cfg, 10);
    let recovery_point = net.a.snd_max;
    let mut sent = Vec::new();
    for seg in flight {
        sent.extend(exchange(&mut net, seg));
    }
    assert_eq!(net.a.info().spurious_rtos, 0);
    assert!(net.a.cc.ssthresh() < before.1);
    assert!(
        sent.iter().any(|s| s.seq.lt(recovery_point)),
        "go-back-N resends what the peer holds"
    );
}

/// `a` sends `bytes` to `b`, which reads them all; returns when every
/// byte is acknowledged and the links are quiet.
fn bulk(net: &mut Net, bytes: usize) {
    let target = net.b.info().bytes_received + bytes as u64;
    let data = vec![9u8; bytes];
    let mut sent = 0;
    net.run_until(100_000, |n| {
        if sent < data.len() {
            sent += n.a.send(&data[sent..], &mut || n.pool.alloc()).unwrap_or(0);
        }
        while let Ok(Some(_)) = n.b.recv() {}
        n.b.info().bytes_received == target
    });
    settle(net);
}

/// `a` sends one small message per round trip, `rounds` times.
fn trickle(net: &mut Net, rounds: usize) {
    for _ in 0..rounds {
        net.a.send(b"ping", &mut || net.pool.alloc()).unwrap();
        settle(net);
        while let Ok(Some(_)) = net.b.recv() {}
    }
}

#[test]
fn an_application_limited_sender_does_not_grow_cwnd() {
    // RFC 7661 §4.3: one small segment per round trip never uses half of
    // the initial window: its ACKs grow nothing.
    for validation in [true, false] {
        let cfg = TcpConfig {
            cwnd_validation: validation,
            ..small_cfg()
        };
        let mut net = established(&cfg, &cfg);
        let initial = net.a.cc.cwnd();
        trickle(&mut net, 20);
        let cwnd = net.a.cc.cwnd();
        if validation {
            assert_eq!(cwnd, initial, "an unvalidated window stays");
        } else {
            assert!(
                cwnd > initial,
                "without validation every ACK grows it: {cwnd}"
            );
        }
    }
}

#[test]
fn an_unused_window_decays_toward_what_was_used() {
    // RFC 7661 §4.4 with Linux's period: a window grown by a bulk
    // transfer, then left half unused for timeouts on end, falls halfway
    // to the initial window per timeout; ssthresh keeps 3/4 of it.
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let initial = net.a.cc.cwnd();
    for _ in 0..3 {
        bulk(&mut net, 40_000);
    }
    let grown = net.a.cc.cwnd();
    assert!(grown > 2 * initial, "slow start grew it: {grown}");
    let start = net.now;
    trickle(&mut net, 40);
    let info = net.a.info();
    assert!(net.now - start > 3 * info.rto_ns, "several timeouts long");
    assert!(info.cwnd_unused_reductions >= 2, "{info:?}");
    assert!(info.cwnd < grown && info.cwnd >= initial, "{info:?}");
    assert!(info.ssthresh >= grown / 4 * 3, "{info:?}");
    // With validation off the grown window stays.
    let cfg = TcpConfig {
        cwnd_validation: false,
        slow_start_after_idle: false,
        ..small_cfg()
    };
    let mut net = established(&cfg, &cfg);
    bulk(&mut net, 40_000);
    let grown = net.a.cc.cwnd();
    trickle(&mut net, 40);
    assert!(net.a.cc.cwnd() >= grown);
    assert_eq!(net.a.info().cwnd_unused_reductions, 0);
}

#[test]
fn cwnd_restarts_after_an_idle_period() {
    // RFC 5681 §4.1, Linux's tcp_cwnd_restart: after more than a timeout
    // of silence, cwnd is halved per timeout idle down to the initial
    // window, so the next flight is no burst of a stale window.
    for restart in [true, false] {
        let cfg = TcpConfig {
            slow_start_after_idle: restart,
            cwnd_validation: false,
            ..small_cfg()
        };
        let mut net = established(&cfg, &cfg);
        let initial = net.a.cc.cwnd();
        for _ in 0..3 {
            bulk(&mut net, 40_000);
        }
        let grown = net.a.cc.cwnd();
        assert!(grown > 2 * initial, "{grown}");
        net.now += 10 * net.a.info().rto_ns;
        let data = vec![1u8; 40_000];
        net.a.send(&data, &mut || net.pool.alloc()).unwrap();
        let burst = drain(&mut net.a, net.now)
            .iter()
            .filter(|s| s.data_len() > 0)
            .count();
        let info = net.a.info();
        if restart {
            assert_eq!(burst, 10, "the initial window: {info:?}");
            assert_eq!(info.cwnd, initial, "{info:?}");
            assert!(info.ssthresh >= grown / 4 * 3, "{info:?}");
            assert_eq!(info.cwnd_unused_reductions, 1);
        } else {
            assert!(burst > 10, "the stale window goes at once: {burst}");
            assert_eq!(info.cwnd_unused_reductions, 0);
        }
    }
}

#[test]
fn a_withheld_challenge_ack_is_not_sent_but_other_acks_are() {
    // The socket table's stack-wide limit (RFC 5961 §7) may withhold a
    // challenge ACK the connection's own limit let through.
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let (nxt, now) = (net.b.rcv_nxt, net.now);
    let pool = net.pool.clone();
    let syn = |pool: &Pool| forged(pool, nxt, SeqNumber::new(0), TcpFlags::SYN, b"", None);
    net.b.on_segment(syn(&pool), now);
    assert!(net.b.challenge_ack_pending());
    net.b.withhold_challenge_ack();
    assert!(!net.b.challenge_ack_pending());
    assert!(drain(&mut net.b, now).is_empty(), "nothing goes");
    let info = net.b.info();
    assert_eq!((info.challenge_acks, info.acks_rate_limited), (0, 1));
    // A later one goes when not withheld, and sending settles it.
    let later = now + 1000 * MS;
    net.b.on_segment(syn(&pool), later);
    let out = drain(&mut net.b, later);
    assert_eq!((out.len(), out[0].flags), (1, TcpFlags::ACK));
    assert!(!net.b.challenge_ack_pending());
    assert_eq!(net.b.info().challenge_acks, 1);
    // Withholding with nothing pending changes nothing.
    net.b.withhold_challenge_ack();
    assert_eq!(net.b.info().acks_rate_limited, 1);
}

#[test]
fn a_loss_inside_an_undone_timeouts_flight_is_repaired_by_fast_retransmit() {
    // The flight was late, but its sixth segment was lost too: the
    // timeout is undone (Eifel) and the loss found by duplicate ACKs
    // (RFC 6675 with SACK, NewReno without), not by a second timeout.
    for sack in [true, false] {
        let cfg = TcpConfig {
            sack,
            delayed_ack: false,
            // The timeout, not RACK-TLP's probe ahead of it.
            rack: false,
            ..small_cfg()
        };
        let (mut net, mut flight) = one_flight(&cfg, 10, &[]);
        if sack {
            // A scoreboard from SACK blocks seen earlier: the timeout
            // leaves its recovery point on it (RFC 6675 §5.1).
            let board = super::super::sack::SackScoreboard::new(net.a.snd_una, 1448);
            net.a.sack = Some(Box::new(board));
        }
        net.now = net.a.next_deadline().expect("the retransmission timer");
        net.a.on_timer(net.now);
        assert_eq!(drain(&mut net.a, net.now).len(), 1, "sack {sack}");
        let lost = flight.remove(5);
        let mut sent = Vec::new();
        for seg in flight {
            sent.extend(exchange(&mut net, seg));
        }
        let info = net.a.info();
        assert_eq!(info.spurious_rtos, 1, "sack {sack}: {info:?}");
        assert_eq!(info.fast_retransmits, 1, "sack {sack}: {info:?}");
        assert!(
            sent.iter().any(|s| s.seq == lost.seq),
            "sack {sack}: the lost segment resent before any timeout"
        );
        drop(lost);
        net.put_ab(sent);
        run_until_received(&mut net, 20 * 1448);
    }
}

/// A pair whose `a` sent exactly `segments` full segments (its initial
/// window made that large, nothing queued behind), with `rack` set on
/// both ends; returns the pair and the segments, not yet delivered.
fn tail_flight(rack: bool, segments: u32) -> (Net, Vec<SegmentOut<PoolBuf>>) {
    let cfg = TcpConfig {
        rack,
        initial_cwnd_segments: segments,
        ..small_cfg()
    };
    let mut net = established(&cfg, &cfg);
    let data = vec![3u8; segments as usize * 1448];
    net.a.send(&data, &mut || net.pool.alloc()).unwrap();
    let flight = drain(&mut net.a, net.now);
    assert_eq!(flight.len(), segments as usize);
    (net, flight)
}

/// Runs the pair until `b` received `bytes` in all; returns when.
fn run_until_received(net: &mut Net, bytes: u64) -> u64 {
    net.run_until(100_000, |n| {
        while let Ok(Some(_)) = n.b.recv() {}
        n.b.info().bytes_received == bytes
    });
    net.now
}

#[test]
fn a_lost_tail_is_recovered_by_a_probe_well_before_the_rto() {
    // RFC 8985 §7: the last two segments of a flight are lost, so no ACK
    // would ever say so. The probe timeout (2·SRTT, §7.2) resends the last
    // segment; its SACK lets RACK mark the other lost (§6.2), and fast
    // recovery resends it: all is in after about 2·SRTT + RTT. Without
    // RACK-TLP the same loss waits for the RTO.
    let mut took = Vec::new();
    for rack in [true, false] {
        let (mut net, flight) = tail_flight(rack, 10);
        let (start, rto_ns) = (net.now, net.a.info().rto_ns);
        net.put_ab(flight.into_iter().take(8));
        let done = run_until_received(&mut net, 10 * 1448);
        let info = net.a.info();
        took.push(done - start);
        if rack {
            assert_eq!(info.tlp_probes, 1, "{info:?}");
            assert_eq!(info.backoffs, 0, "no timeout: {info:?}");
            assert_eq!(info.rack_losses, 1, "{info:?}");
            assert_eq!(info.total_retrans, 2, "the probe and one fast retransmit");
            let srtt = info.rtt_ns;
            assert!(
                done - start < rto_ns,
                "{} ms with an RTO of {} ms",
                (done - start) / MS,
                rto_ns / MS
            );
            // The flight's ACKs (an RTT), the PTO (2·SRTT), the probe's
            // SACK (an RTT), the fast retransmit's way (half an RTT).
            let rtt = net.ab.delay_ns + net.ba.delay_ns;
            assert!(done - start <= 2 * srtt + 3 * rtt, "{info:?}");
        } else {
            assert_eq!((info.tlp_probes, info.fast_retransmits), (0, 0), "{info:?}");
            assert!(done - start >= rto_ns, "the RTO: {info:?}");
        }
    }
    assert!(took[0] < took[1], "{took:?}");
}

#[test]
fn a_probe_sends_new_data_when_the_window_allows() {
    // RFC 8985 §7.3: with unsent data the peer's window takes, the probe
    // is new data (cwnd aside) rather than a retransmission; its ACK
    // settles the episode without any loss response.
    let cfg = TcpConfig {
        initial_cwnd_segments: 4,
        ..small_cfg()
    };
    let mut net = established(&cfg, &cfg);
    let data = vec![4u8; 8 * 1448];
    net.a.send(&data, &mut || net.pool.alloc()).unwrap();
    let flight = drain(&mut net.a, net.now);
    assert_eq!(flight.len(), 4);
    let cwnd = net.a.cc.cwnd();
    // The whole flight and its ACKs vanish: only the probe draws an ACK.
    drop(flight);
    let pto = net.a.next_deadline().unwrap();
    assert!(
        pto < net.now + net.a.info().rto_ns,
        "the PTO runs ahead of the RTO"
    );
    net.now = pto;
    net.a.on_timer(pto);
    let probe = drain(&mut net.a, pto);
    assert_eq!(probe.len(), 1);
    assert_eq!(
        probe[0].seq,
        net.a.snd_una + 4 * 1448,
        "the fifth segment, new"
    );
    let info = net.a.info();
    assert_eq!((info.tlp_probes, info.total_retrans), (1, 0), "{info:?}");
    assert_eq!(net.a.cc.cwnd(), cwnd, "cwnd unchanged by the probe");
    // A second PTO does not follow: the RTO does (§7.3).
    assert_eq!(net.a.next_deadline(), net.a.timers.rto.get());
    let done = run_until_received(&mut net, data.len() as u64);
    assert!(done > pto);
    assert_eq!(net.a.info().tlp_probes, 1);
}

#[test]
fn a_loss_with_two_later_segments_sacked_is_found_by_time_not_three_dup_acks() {
    // RFC 8985 §6.2: one segment lost, the two after it SACKed: two
    // duplicate ACKs, fewer than DupThresh, and fewer than three segments
    // SACKed above it (RFC 6675's IsLost says no). RACK marks it lost once
    // RACK.rtt + reo_wnd passed since it went out, arming the reordering
    // timer for that moment; without RACK only the RTO finds it.
    for rack in [true, false] {
        let (mut net, mut flight) = tail_flight(rack, 3);
        let start = net.now;
        let rto_ns = net.a.info().rto_ns;
        flight.remove(0);
        let mut resent = Vec::new();
        for seg in flight {
            resent.extend(exchange(&mut net, seg));
        }
        let info = net.a.info();
        assert_eq!(info.dup_acks_in, 2, "{info:?}");
        assert!(resent.is_empty(), "not at once: reo_wnd waits");
        let timer = net.a.next_deadline().unwrap();
        net.a.on_timer(timer);
        let out = drain(&mut net.a, timer);
        let info = net.a.info();
        if rack {
            let reo_wnd = net.a.rack.as_deref().unwrap().min_rtt_ns() / 4;
            assert_eq!(timer, start + reo_wnd, "RACK.rtt is 0 here: reo_wnd after");
            assert!(timer - start < rto_ns);
            assert_eq!(out.len(), 1, "the fast retransmit");
            assert_eq!(out[0].seq, net.a.snd_una);
            assert_eq!((info.fast_retransmits, info.rack_losses), (1, 1));
            assert_eq!(info.backoffs, 0);
        } else {
            assert_eq!(timer, start + rto_ns, "only the RTO");
            assert_eq!((info.fast_retransmits, info.backoffs), (0, 1));
        }
    }
}

#[test]
fn reordering_within_reo_wnd_resends_nothing() {
    // RFC 8985 §6.2: once reordering was seen, a segment overtaken by
    // seven others is not lost before RACK.rtt + reo_wnd (a quarter of
    // the least RTT); arriving within it, nothing is resent. DupThresh
    // (RFC 6675) resends it at the third duplicate ACK.
    for rack in [true, false] {
        let (mut net, mut flight) = tail_flight(rack, 10);
        // Reordering seen: the second segment overtakes the first.
        let first = flight.remove(0);
        exchange(&mut net, flight.remove(0));
        exchange(&mut net, first);
        if rack {
            assert!(net.a.rack.as_deref().unwrap().reordering_seen());
        }
        // The next one is overtaken by all seven others.
        let late = flight.remove(0);
        let mut resent = Vec::new();
        for seg in flight {
            resent.extend(exchange(&mut net, seg));
        }
        let half = if rack {
            net.a.rack.as_deref().unwrap().min_rtt_ns() / 8
        } else {
            MS
        };
        net.now += half;
        if net.a.next_deadline().is_some_and(|d| d <= net.now) {
            net.a.on_timer(net.now);
        }
        resent.extend(
            drain(&mut net.a, net.now)
                .into_iter()
                .filter(|s| s.data_len() > 0),
        );
        resent.extend(exchange(&mut net, late));
        let info = net.a.info();
        if rack {
            assert!(resent.is_empty(), "{info:?}");
            assert_eq!((info.total_retrans, info.fast_retransmits), (0, 0));
            assert_eq!(info.rack_losses, 0);
        } else {
            assert_eq!(info.fast_retransmits, 1, "{info:?}");
            assert!(!resent.is_empty());
        }
    }
}

#[test]
fn a_dsack_widens_reo_wnd() {
    // RFC 8985 §6.2 step 4: the first segment is late behind three others
    // (treated as lost: no reordering seen yet); its retransmission comes
    // back D-SACKed, so the loss was reordering: the recovery is undone
    // (RFC 3708) and reo_wnd grows by a quarter RTT for the next rounds.
    let (mut net, mut flight) = one_flight(&small_cfg(), 10, &[]);
    let base = net.a.rack.as_deref().unwrap().reo_wnd_now(None);
    assert_eq!(base, net.a.rack.as_deref().unwrap().min_rtt_ns() / 4);
    assert!(base > 0);
    let late = flight.remove(0);
    let mut resent = Vec::new();
    for seg in flight.drain(..3) {
        resent.extend(exchange(&mut net, seg));
    }
    assert_eq!(resent.len(), 1, "RACK: three SACKed, reo_wnd 0, lost");
    assert_eq!(net.a.info().rack_losses, 1);
    exchange(&mut net, late);
    // (The instant exchanges here brought RTT samples of one tick.)
    let rack = net.a.rack.as_deref().unwrap();
    let quarter = rack.min_rtt_ns() / 4;
    assert_eq!(rack.reo_wnd_now(None), quarter);
    exchange(&mut net, resent.remove(0));
    let info = net.a.info();
    assert_eq!(info.spurious_recoveries, 1, "{info:?}");
    assert_eq!(
        net.a.rack.as_deref().unwrap().reo_wnd_now(None),
        2 * quarter
    );
    net.put_ab(flight);
    run_until_received(&mut net, 20 * 1448);
    assert_eq!(net.a.info().spurious_recoveries, 1);
}

#[test]
fn after_an_rto_the_chunks_the_peer_sacked_are_not_resent() {
    // RFC 8985 §6.3: a timeout keeps the SACK marks (the peer did not
    // renege), so go-back-N resends the two holes only. Without RACK the
    // scoreboard forgets them (RFC 6675 §5.1) and SACKed data goes again.
    for rack in [true, false] {
        let (mut net, mut flight) = tail_flight(rack, 10);
        let holes = vec![flight[0].seq, flight[5].seq];
        flight.remove(5);
        flight.remove(0);
        for seg in flight {
            // Every retransmission before the timeout is lost too.
            drop(exchange(&mut net, seg));
        }
        let mut pending = VecDeque::new();
        while net.a.info().backoffs == 0 {
            let t = net.a.next_deadline().unwrap();
            net.now = t;
            net.a.on_timer(t);
            // Probes before the timeout are lost; from it on, nothing is.
            pending = drain(&mut net.a, t).into();
        }
        let mut after_rto = Vec::new();
        while let Some(seg) = pending.pop_front() {
            if seg.data_len() > 0 {
                after_rto.push(seg.seq);
            }
            pending.extend(exchange(&mut net, seg));
        }
        assert_eq!(net.b.info().bytes_received, 10 * 1448, "rack {rack}");
        if rack {
            assert_eq!(after_rto, holes);
        } else {
            assert!(after_rto.len() > holes.len(), "{after_rto:?}");
        }
    }
}

#[test]
fn a_lost_retransmission_is_found_by_rack_and_resent_before_the_rto() {
    // RFC 8985 §6.2 (and §3.3's motivation): the fast retransmit is lost
    // too. New data sent after it is SACKed, so by time the retransmission
    // is late as well (no reordering seen: reo_wnd 0 in recovery): it is
    // resent in the same recovery. DupThresh knows of no second loss of
    // one segment and waits for the RTO.
    for rack in [true, false] {
        let cfg = TcpConfig {
            rack,
            ..small_cfg()
        };
        let (mut net, kept) = one_flight(&cfg, 10, &[0]);
        let first = net.a.snd_una;
        let mut pending: VecDeque<_> = kept.into();
        let (mut dropped, mut again) = (false, false);
        // A first-in first-out link, a millisecond per segment, that
        // loses the first retransmission.
        while let Some(seg) = pending.pop_front() {
            net.now += MS;
            for out in exchange(&mut net, seg) {
                if out.seq == first && !dropped {
                    dropped = true;
                } else {
                    again |= out.seq == first;
                    pending.push_back(out);
                }
            }
        }
        assert!(dropped, "rack {rack}: a fast retransmit");
        let info = net.a.info();
        if rack {
            assert!(again, "{info:?}");
            assert_eq!(info.rack_losses, 2, "the segment, then its resend");
            assert_eq!((info.fast_retransmits, info.backoffs), (1, 0), "{info:?}");
            assert_eq!(net.b.info().bytes_received, 20 * 1448);
        } else {
            assert!(!again, "{info:?}");
            run_until_received(&mut net, 20 * 1448);
            assert_eq!(net.a.info().lost, 2, "the fast retransmit, then the RTO");
        }
    }
}

#[test]
fn a_syn_in_time_wait_may_open_a_new_incarnation_as_rfc_6191_says() {
    for timestamps in [true, false] {
        let cfg = TcpConfig {
            timestamps,
            ..small_cfg()
        };
        let mut net = established(&cfg, &cfg);
        net.a.close();
        settle(&mut net);
        net.b.close();
        settle(&mut net);
        assert_eq!(net.a.state(), State::TimeWait);
        let (rcv_nxt, recent) = (net.a.rcv_nxt, net.a.ts_recent);
        let pool = net.pool.clone();
        let syn = |seq: SeqNumber, ts: Option<(u32, u32)>| {
            forged(&pool, seq, SeqNumber::new(0), TcpFlags::SYN, b"", ts)
        };
        let newer_ts = Some((recent.wrapping_add(1), 0));
        let older_ts = Some((recent.wrapping_sub(1), 0));
        let a = &net.a;
        if timestamps {
            // The timestamp decides, whatever the sequence number.
            assert!(a.time_wait_accepts_syn(&syn(rcv_nxt - 100, newer_ts)));
            assert!(!a.time_wait_accepts_syn(&syn(rcv_nxt + 100, older_ts)));
            assert!(!a.time_wait_accepts_syn(&syn(rcv_nxt + 100, Some((recent, 0)))));
        } else {
            // RFC 1122 §4.2.2.13: the sequence number decides.
            assert!(a.time_wait_accepts_syn(&syn(rcv_nxt + 1, older_ts)));
            assert!(!a.time_wait_accepts_syn(&syn(rcv_nxt, newer_ts)));
            assert!(!a.time_wait_accepts_syn(&syn(rcv_nxt - 1, newer_ts)));
        }
        // A SYN without timestamps always goes by sequence number.
        assert!(a.time_wait_accepts_syn(&syn(rcv_nxt + 1, None)));
        assert!(!a.time_wait_accepts_syn(&syn(rcv_nxt - 1, None)));
        // Not a bare SYN: never.
        for flags in [
            TcpFlags::SYN | TcpFlags::ACK,
            TcpFlags::SYN | TcpFlags::RST,
            TcpFlags::ACK,
        ] {
            let seg = forged(&pool, rcv_nxt + 1, a.snd_max, flags, b"", newer_ts);
            assert!(!a.time_wait_accepts_syn(&seg), "{flags:?}");
        }
        // Another state: never (the established peer).
        assert!(!net.b.time_wait_accepts_syn(&syn(net.b.rcv_nxt + 1, None)));
        // The next incarnation starts a window past all we sent.
        assert_eq!(a.next_incarnation_iss(), a.snd_max + 65_537);
    }
}

#[test]
fn the_trace_writes_an_rtos_collapse_and_the_recovery_after_it() {
    use crate::trace::decode::{decode, Event};
    use crate::trace::record::CwndReason;
    use crate::trace::ring::TraceFile;
    let dir = std::env::temp_dir().join(format!("tpa-conn-trace-rto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = TraceFile::create(&dir.join("t.trace"), 1, 256).unwrap();
    let cfg = small_cfg();
    let mut net = established(&cfg, &cfg);
    let (a, b) = (
        "10.0.0.1:1000".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
    );
    let ring = file.ring(0, 0, a, b, net.now).unwrap();
    net.a.attach_trace(ring, net.now);
    // The path dies until the retransmission timer fires, then heals.
    net.ab.impair.loss = 1000;
    net.send_a(&[7; 3000]).unwrap();
    net.run_until(10_000, |n| n.a.stats.total_retrans > 0);
    net.ab.impair.loss = 0;
    net.run_until(10_000, |n| n.a.snd_una == n.a.snd_max);
    assert!(net.a.take_trace_archive(), "a recovery's end is archived");
    let dump = decode(&std::fs::read(file.path()).unwrap()).unwrap();
    let events: Vec<Event> = dump.sockets[0].entries.iter().map(|e| e.event).collect();
    // In this order: the timeout, its collapse of ssthresh, a
    // retransmission, the recovery's end (SND.UNA past what was out).
    type Found = fn(&Event) -> bool;
    let story: [(&str, Found); 4] = [
        ("the timeout", |e| matches!(e, Event::Rto { .. })),
        ("the collapse", |e| {
            matches!(
                e,
                Event::Cwnd {
                    reason: Some(CwndReason::Rto),
                    ..
                }
            )
        }),
        ("a retransmission", |e| matches!(e, Event::Retransmit(_))),
        ("the recovery's end", |e| {
            matches!(
                e,
                Event::Cwnd {
                    reason: Some(CwndReason::RecoveryEnd),
                    ..
                }
            )
        }),
    ];
    let mut at = 0;
    for (what, found) in story {
        match events[at..].iter().position(found) {
            Some(i) => at += i + 1,
            None => panic!("no {what} after record {at} in {events:#?}"),
        }
    }
    drop(net);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn latency_stages_measure_reads_and_writes_on_the_clock() {
    let cfg = TcpConfig {
        measure_latency: true,
        delayed_ack: false,
        ..TcpConfig::default()
    };
    let mut net = Net::connect(&cfg, &cfg, 1, Impair::default());
    net.established();
    net.flush();
    let t0 = net.now + MS;
    drop(drain(&mut net.a, t0));
    drop(drain(&mut net.b, t0));
    // `a` writes at t0 and its segment leaves 2 ms later.
    assert_eq!(net.send_a(b"ping").unwrap(), 4);
    let seg = net.a.poll_transmit(t0 + 2 * MS).expect("the data segment");
    assert_eq!(seg.data_len(), 4);
    // It arrives at `b` at t0 + 3 ms, stamped by the port 1 ms earlier
    // (the stamp, not the queueing, dates it).
    let mut seg_in = to_in(&seg, &net.pool).unwrap();
    drop(seg);
    seg_in.payload.as_mut().unwrap().meta_mut().rx_timestamp_ns = t0 + 2 * MS;
    net.b.on_segment(seg_in, t0 + 3 * MS);
    let ack = drain(&mut net.b, t0 + 3 * MS).pop().expect("b's ACK");
    // The application reads 5 ms after the arrival stamp.
    assert!(drain(&mut net.b, t0 + 7 * MS).is_empty());
    let mut out = [0u8; 8];
    assert_eq!(net.b.read(&mut out).unwrap(), 4);
    assert_eq!(&out[..4], b"ping");
    let read = net.b.info().latency.read;
    assert_eq!((read.count, read.min_ns, read.max_ns), (1, 5 * MS, 5 * MS));
    // The ACK reaches `a` 20 ms after the write.
    let ack_in = to_in(&ack, &net.pool).unwrap();
    drop(ack);
    net.a.on_segment(ack_in, t0 + 20 * MS);
    let lat = net.a.info().latency;
    assert_eq!((lat.write_sent.count, lat.write_sent.avg_ns()), (1, 2 * MS));
    assert_eq!(
        (lat.write_acked.count, lat.write_acked.avg_ns()),
        (1, 20 * MS)
    );
    assert_eq!(lat.read.count, 0);
}

#[test]
fn latency_stages_stay_zero_when_off() {
    let cfg = TcpConfig {
        delayed_ack: false,
        ..TcpConfig::default()
    };
    assert!(!cfg.measure_latency);
    let mut net = Net::connect(&cfg, &cfg, 2, Impair::default());
    net.established();
    net.send_a(b"ping").unwrap();
    net.run_until(10_000, |n| n.a.info().bytes_acked == 4);
    assert_eq!(net.read_all_b(), b"ping");
    assert!(net.b.info().bytes_received == 4);
    assert_eq!(net.a.info().latency, super::SocketLatency::default());
    assert_eq!(net.b.info().latency, super::SocketLatency::default());
}

#[test]
fn latency_stages_count_every_chunk_of_a_transfer_once() {
    let cfg = TcpConfig {
        measure_latency: true,
        ..small_cfg()
    };
    let mut net = Net::connect(&cfg, &cfg, 3, Impair::default());
    net.established();
    let data = vec![7u8; 20_000];
    let mut sent = 0;
    let mut got = Vec::new();
    net.run_until(100_000, |n| {
        if sent < data.len() {
            sent += n.send_a(&data[sent..]).unwrap_or(0);
        }
        got.extend(n.read_all_b());
        got.len() == data.len() && n.a.info().bytes_acked == data.len() as u64
    });
    let lat = net.a.info().latency;
    // Each chunk is one segment sent once (no loss) and acknowledged once.
    let chunks = net.a.info().data_segs_out;
    assert_eq!(lat.write_sent.count, chunks);
    assert_eq!(lat.write_acked.count, chunks);
    assert!(lat.write_acked.min_ns >= lat.write_sent.min_ns);
    assert!(lat.write_acked.max_ns >= net.a.info().rtt_ns / 2);
    assert!(net.b.info().latency.read.count > 0);
}

#[test]
fn queue_storage_moves_only_out_of_empty_queues_and_serves_a_new_connection() {
    let cfg = TcpConfig::default();
    let mut net = Net::connect(&cfg, &cfg, 5, Impair::default());
    net.established();
    assert_eq!(net.send_a(b"hello").unwrap(), 5);
    net.flush();
    // In flight (a's send queue) or unread (b's receive queue): kept.
    assert!(net.a.take_queue_storage().is_none(), "data not yet acked");
    net.run_until(10_000, |n| n.a.send_queue.len() == 0);
    assert!(net.b.take_queue_storage().is_none(), "data not yet read");
    assert_eq!(net.read_all_b(), b"hello");
    // Both empty now: the storage moves, and the queues still work after
    // (they allocate again).
    let a_storage = net.a.take_queue_storage().expect("a's empty queues");
    let b_storage = net.b.take_queue_storage().expect("b's empty queues");
    assert!(net.a.take_queue_storage().is_none(), "none left to give");
    assert_eq!(net.send_a(b"again").unwrap(), 5);
    net.run_until(10_000, |n| n.b.receive_queue.bytes() == 5);
    assert_eq!(net.read_all_b(), b"again");
    // A new pair adopts them and carries a stream as any other.
    let mut fresh = Net::connect(&cfg, &cfg, 6, Impair::default());
    fresh.a.adopt_queue_storage(a_storage);
    fresh.b.adopt_queue_storage(b_storage);
    fresh.established();
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    fresh.run_until(100_000, |n| {
        if sent < data.len() {
            sent += n.send_a(&data[sent..]).unwrap_or(0);
        }
        got.extend(n.read_all_b());
        got.len() == data.len()
    });
    assert_eq!(got, data);
}
