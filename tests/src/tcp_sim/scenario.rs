//! What one seed runs: the connections (sizes, directions, close orders,
//! IPv4 or IPv6, when they start), each end's TCP configuration, the
//! wire's impairment and a partition. A pure function of the seed, so a
//! seed replays exactly.

use std::fmt;
use std::time::Duration;

use tpa::port::memory::{Corruption, Impairment, Partition};
use tpa_stages::tcp::config::{CongestionAlgorithm, TcpConfig};

/// SplitMix64: every random choice of the simulation comes from one of
/// these, seeded from the run's seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream seeded by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next_u64() as usize % items.len()]
    }
}

/// A value derived from the seed for one purpose (`salt`), so that the
/// random sources stay independent of each other.
pub fn derive(seed: u64, salt: u64) -> u64 {
    Rng::new(seed ^ salt.wrapping_mul(0xd6e8_feb8_6659_fd93)).next_u64()
}

/// When each end sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Both ends send from the start.
    Concurrent,
    /// The server sends only once it has the client's whole request.
    RequestResponse,
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOrder {
    /// The client closes once it has sent and received everything; the
    /// server closes at the end of the stream.
    ClientFirst,
    /// The server closes first, the client at the end of the stream.
    ServerFirst,
    /// Both close at the same instant once both have everything (their
    /// FINs cross on a wire with delay).
    Simultaneous,
    /// Each end shuts its sending side once it sent everything, then
    /// closes at the end of the peer's stream (data goes on the other way
    /// after the first FIN).
    HalfClose,
    /// One end resets the connection once it has sent and received
    /// `after` bytes in total (the other end half-closes as above).
    Abort {
        /// The client aborts (else the server).
        client: bool,
        /// Bytes sent plus received before it aborts.
        after: usize,
    },
}

/// How an end reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Io {
    /// Reads zero-copy (`recv`), else copies (`read`) in `read_chunk`s.
    pub zero_copy_read: bool,
    /// Bytes per copying read.
    pub read_chunk: usize,
    /// Writes zero-copy (`send_buf`, a pool buffer per write), else copies
    /// (`send`).
    pub zero_copy_write: bool,
    /// Bytes per write.
    pub write_chunk: usize,
}

/// One connection of a run.
#[derive(Debug, Clone)]
pub struct ConnPlan {
    /// Over IPv6 (else IPv4).
    pub v6: bool,
    /// When the client connects, virtual ns after the start.
    pub start_ns: u64,
    /// Bytes client → server.
    pub c2s: usize,
    /// Bytes server → client.
    pub s2c: usize,
    /// Who sends when.
    pub flow: Flow,
    /// How it ends.
    pub close: CloseOrder,
    /// The client's and the server's reads and writes.
    pub io: [Io; 2],
}

/// A partition of the wire.
#[derive(Debug, Clone)]
pub struct PartitionPlan {
    /// It begins once this share of all bytes (both ways, all
    /// connections) was received, or at `fallback_ns` if that comes first.
    pub at_share: f64,
    /// Virtual ns after the start at which it begins at the latest.
    pub fallback_ns: u64,
    /// How long it lasts.
    pub len_ns: u64,
    /// Which directions it cuts.
    pub cut: Partition,
    /// Longer than any retry budget: connections caught in it time out.
    pub long: bool,
}

/// Everything one seed runs.
#[derive(Clone)]
pub struct Scenario {
    /// The seed it came from.
    pub seed: u64,
    /// The connections, all from the client host to the server host.
    pub conns: Vec<ConnPlan>,
    /// The client's and the server's TCP configuration.
    pub cfg: [TcpConfig; 2],
    /// Impairment of A → B (client to server) and B → A.
    pub impairment: [Impairment; 2],
    /// A partition, if any.
    pub partition: Option<PartitionPlan>,
    /// Segments per frame the wire gathers
    /// ([`WireConfig::max_segments`](tpa::port::memory::WireConfig::max_segments)):
    /// 4 on half the seeds, whose data segments then cross as chains (the
    /// sender's header and send-queue chunk, shared with the receiver), 1
    /// (copied into one frame on transmit) on the others.
    pub max_segments: usize,
}

/// The impairment mix of the issue: drop 5%, duplicate 2%, reorder 5%,
/// corrupt 1% (one bit flipped; delivered unless the scenario sets
/// [`Corruption::Fcs`]), cut 1% (truncated), with `delay`.
pub fn impaired(delay: Duration, jitter: Duration) -> Impairment {
    Impairment {
        drop: 0.05,
        duplicate: 0.02,
        reorder: 0.05,
        reorder_distance: 4,
        reorder_timeout: Duration::from_millis(5),
        delay,
        jitter,
        truncate: 0.01,
        corrupt: 0.01,
        corrupt_bits: 1,
        ..Impairment::default()
    }
}

/// A clean wire with `delay`.
fn clean(delay: Duration) -> Impairment {
    Impairment {
        delay,
        ..Impairment::default()
    }
}

/// The longest a retransmission timeout grows in the simulation: keeps
/// every retry budget below [`LONG_PARTITION_MIN`].
const RTO_MAX: Duration = Duration::from_secs(10);
/// Partitions shorter than this heal before any connection gives up:
/// below keepalive's idle time, and leaving most of the retry budgets
/// (Linux's 6 SYN and 15 data retries) to the random loss after it.
const SHORT_PARTITION_MAX: Duration = Duration::from_secs(2);
/// Partitions longer than this outlast every retry budget: SYN retries
/// (1 + 2 + 4 + 8 + 10 + 10 + 10 s), data retries (at most 16 timeouts,
/// about 103 s from RTO_min with RTO_MAX) and keepalive (idle + probes ×
/// interval).
const LONG_PARTITION_MIN: Duration = Duration::from_secs(200);

/// A stream's length: empty, one byte, a few KB, tens of KB, about 1 MB.
fn size(rng: &mut Rng) -> usize {
    match rng.range(0, 99) {
        0..=11 => 0,
        12..=21 => 1,
        22..=59 => rng.range(2, 4096) as usize,
        60..=98 => rng.range(4097, 48 * 1024) as usize,
        _ => rng.range(1_000_000, 1_100_000) as usize,
    }
}

fn io(rng: &mut Rng) -> Io {
    let zero_copy_write = rng.chance(0.3);
    Io {
        zero_copy_read: rng.chance(0.5),
        read_chunk: rng.pick(&[1, 100, 1448, 4096, 65536]),
        zero_copy_write,
        // A zero-copy write takes a whole pool buffer: tiny ones would
        // pin a buffer per byte of the send queue.
        write_chunk: if zero_copy_write {
            rng.pick(&[536, 1448, 4096])
        } else {
            rng.pick(&[1, 7, 536, 1448, 4096, 65536])
        },
    }
}

/// One end's TCP configuration: Linux's defaults with the simulation's
/// bounded timers, and options and queue sizes drawn from the seed.
fn config(rng: &mut Rng) -> TcpConfig {
    let small = rng.chance(0.2);
    TcpConfig {
        congestion: if rng.chance(0.5) {
            CongestionAlgorithm::Cubic
        } else {
            CongestionAlgorithm::NewReno
        },
        sack: rng.chance(0.8),
        timestamps: rng.chance(0.8),
        window_scale: rng.chance(0.8),
        delayed_ack: rng.chance(0.7),
        nodelay: rng.chance(0.8),
        send_queue_bytes: if small { 16 * 1024 } else { 256 * 1024 },
        receive_queue_bytes: if small {
            rng.pick(&[4096, 16 * 1024])
        } else {
            256 * 1024
        },
        ooo_max_segments: rng.pick(&[4, 64, 256]),
        rto_max_ns: RTO_MAX.as_nanos() as u64,
        keepalive: true,
        keepalive_idle_ns: 10_000_000_000,
        keepalive_interval_ns: 2_000_000_000,
        keepalive_probes: 3,
        time_wait_ns: rng.pick(&[1_000_000_000, 60_000_000_000]),
        ..TcpConfig::default()
    }
}

impl Scenario {
    /// The scenario of `seed`.
    pub fn from_seed(seed: u64) -> Scenario {
        let mut rng = Rng::new(derive(seed, 0x5ce7_a210));
        let n = if rng.chance(0.5) {
            1
        } else {
            rng.range(2, 4) as usize
        };
        let conns = (0..n)
            .map(|i| {
                let c2s = size(&mut rng);
                let s2c = size(&mut rng);
                let close = match rng.range(0, 9) {
                    0 | 1 => CloseOrder::ClientFirst,
                    2 | 3 => CloseOrder::ServerFirst,
                    4 | 5 => CloseOrder::Simultaneous,
                    6..=8 => CloseOrder::HalfClose,
                    _ => CloseOrder::Abort {
                        client: rng.chance(0.5),
                        after: rng.range(0, (c2s + s2c) as u64) as usize,
                    },
                };
                ConnPlan {
                    v6: rng.chance(0.5),
                    start_ns: if i == 0 || rng.chance(0.5) {
                        0
                    } else {
                        rng.range(0, 50_000_000)
                    },
                    c2s,
                    s2c,
                    flow: if rng.chance(0.5) {
                        Flow::Concurrent
                    } else {
                        Flow::RequestResponse
                    },
                    close,
                    io: [io(&mut rng), io(&mut rng)],
                }
            })
            .collect();
        let cfg = [config(&mut rng), config(&mut rng)];
        // Delay on both lanes: FINs of a simultaneous close cross.
        let delay = Duration::from_micros(rng.range(100, 5_000));
        let jitter = if rng.chance(0.3) {
            Duration::from_micros(rng.range(1, 2_000))
        } else {
            Duration::ZERO
        };
        let mut impairment = match rng.range(0, 9) {
            0..=1 => [clean(delay), clean(delay)],
            2 => [impaired(delay, jitter), clean(delay)],
            3 => [clean(delay), impaired(delay, jitter)],
            _ => [impaired(delay, jitter), impaired(delay, jitter)],
        };
        // Half the seeds corrupt on the link, where the receiver's FCS
        // drops the frame (a real wire); the other half past the FCS, where
        // only the checksums catch it and a flipped bit in an ARP reply
        // poisons the neighbor cache until NUD finds it out. Drawn from
        // its own stream: the rest of the scenario is the same either way.
        let corruption = if Rng::new(derive(seed, 0xfc5)).chance(0.5) {
            Corruption::Fcs
        } else {
            Corruption::Delivered
        };
        for imp in &mut impairment {
            imp.corruption = corruption;
        }
        let partition = match rng.range(0, 9) {
            0 | 1 => Some(PartitionPlan {
                at_share: rng.range(0, 100) as f64 / 100.0,
                fallback_ns: rng.range(0, 2_000_000_000),
                len_ns: rng.range(1_000_000, SHORT_PARTITION_MAX.as_nanos() as u64),
                cut: rng.pick(&[
                    Partition::Both,
                    Partition::Both,
                    Partition::AToB,
                    Partition::BToA,
                ]),
                long: false,
            }),
            2 => Some(PartitionPlan {
                at_share: rng.range(0, 100) as f64 / 100.0,
                fallback_ns: rng.range(0, 2_000_000_000),
                len_ns: rng.range(
                    LONG_PARTITION_MIN.as_nanos() as u64,
                    2 * LONG_PARTITION_MIN.as_nanos() as u64,
                ),
                cut: Partition::Both,
                long: true,
            }),
            _ => None,
        };
        // Drawn from its own stream too: the rest is the same either way.
        let max_segments = if Rng::new(derive(seed, 0x6a7e)).chance(0.5) {
            4
        } else {
            1
        };
        Scenario {
            seed,
            conns,
            cfg,
            impairment,
            partition,
            max_segments,
        }
    }

    /// Bytes all connections carry, both ways.
    pub fn total_bytes(&self) -> usize {
        self.conns.iter().map(|c| c.c2s + c.s2c).sum()
    }
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: wire gathers {} segments",
            self.seed, self.max_segments
        )?;
        for (i, c) in self.conns.iter().enumerate() {
            writeln!(
                f,
                "  conn {i}: {} start {} ms, c2s {} s2c {}, {:?}, {:?}, io {:?}",
                if c.v6 { "IPv6" } else { "IPv4" },
                c.start_ns / 1_000_000,
                c.c2s,
                c.s2c,
                c.flow,
                c.close,
                c.io
            )?;
        }
        for (name, imp) in ["a->b", "b->a"].iter().zip(&self.impairment) {
            writeln!(
                f,
                "  {name}: drop {} dup {} reorder {} corrupt {} ({:?}) cut {} delay {:?} jitter {:?}",
                imp.drop,
                imp.duplicate,
                imp.reorder,
                imp.corrupt,
                imp.corruption,
                imp.truncate,
                imp.delay,
                imp.jitter
            )?;
        }
        for (name, c) in ["client", "server"].iter().zip(&self.cfg) {
            writeln!(
                f,
                "  {name}: {:?} sack {} ts {} wscale {} delack {} nodelay {} sndq {} rcvq {} ooo {} tw {} ms",
                c.congestion,
                c.sack,
                c.timestamps,
                c.window_scale,
                c.delayed_ack,
                c.nodelay,
                c.send_queue_bytes,
                c.receive_queue_bytes,
                c.ooo_max_segments,
                c.time_wait_ns / 1_000_000
            )?;
        }
        write!(f, "  partition: {:?}", self.partition)
    }
}
