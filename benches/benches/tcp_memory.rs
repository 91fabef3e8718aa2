//! TCP between two stacks in one process, over an in-memory wire: tpa's two
//! pipelines over `MemoryWire` against smoltcp's two interfaces over an
//! equal wire of frame queues (`tcp_memory/frame_wire.rs`), in the same run.
//!
//! Three workloads, each a criterion group with one function per stack:
//! - `tcp_memory/bulk`: one established connection moves 1 MiB per
//!   iteration from client to server (bytes per second); the server checks
//!   every byte against the stream's pattern (`tcp_memory/stream.rs`).
//! - `tcp_memory/rr`: one established connection; per iteration the client
//!   sends a 64-byte request and the server echoes it (transactions per
//!   second); the client checks the echo.
//! - `tcp_memory/crr`: per iteration a fresh connection: connect, one
//!   64-byte request and its echo, the client closes, the server closes
//!   (the client in TIME_WAIT, the server listening again).
//!
//! Both stacks run in rounds on one virtual clock that advances 10 µs per
//! round: the client host runs once (receive, its application, transmit),
//! then the server host. No loss, no reordering, no delay on the wire. Each
//! stack's settings and copies are described in its module
//! (`tcp_memory/tpa_peers.rs`, `tcp_memory/smoltcp_peers.rs`). Every run
//! is checked before it is timed: all bytes right, every response the echo
//! of its request, no frame dropped.
//!
//! Run: `cargo bench -p tpa-benches --bench tcp_memory`;
//! `TPA_TCP_BULK_RUN=<stack>:<MiB>`, `TPA_TCP_RR_RUN=<stack>:<transactions>`
//! and `TPA_TCP_CRR_RUN=<stack>:<connections>` run one workload of one
//! stack alone, without criterion (what `benches/callgrind_tcp_memory.sh`
//! counts), and print what moved. `TPA_TCP_RR_INTERLEAVED=<rounds>:<transactions>`
//! times tpa's rr with the trace and the stats off and on in one process
//! (`tcp_memory/ops_interleaved.rs`, benches/ops_interleaved.sh).
//! `TPA_TCP_PAIRED=<workload>:<rounds>:<iterations a block>` times tpa and
//! smoltcp on one workload in alternating blocks in one process
//! (`tcp_memory/paired.rs`, benches/tcp_memory_paired.sh).

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use tpa_benches::criterion;

#[path = "tcp_memory/frame_wire.rs"]
mod frame_wire;
#[path = "tcp_memory/ops_interleaved.rs"]
mod ops_interleaved;
#[path = "tcp_memory/paired.rs"]
mod paired;
#[path = "tcp_memory/smoltcp_peers.rs"]
mod smoltcp_peers;
#[path = "tcp_memory/stream.rs"]
mod stream;
#[path = "tcp_memory/tpa_peers.rs"]
mod tpa_peers;

use smoltcp_peers::SmoltcpPeers;
use tpa_peers::TpaPeers;

/// The server's port.
const PORT: u16 = 5001;
/// Send and receive buffer of each socket: tpa's `send_queue_bytes` and
/// `receive_queue_bytes` defaults.
const SOCKET_BUFFER: usize = 512 * 1024;
/// Virtual time per round.
const ROUND_US: u64 = 10;
/// Rounds one operation may take before the run fails.
const MAX_ROUNDS: u64 = 1_000_000;
/// Bytes one bulk iteration moves.
const BULK_CHUNK: u64 = 1 << 20;

/// A client and a server of one stack, joined by an in-memory wire.
trait Peers: Sized {
    /// The stack's name (the bench function's).
    const NAME: &'static str;
    /// Both hosts up for `workload`, no connection yet.
    fn new(workload: Workload) -> Result<Self, String>;
    /// The server listens, the client connects; returns once both ends
    /// are established.
    fn connect(&mut self) -> Result<(), String>;
    /// Moves `len` more bytes of the stream from client to server over the
    /// connection, each one checked.
    fn bulk(&mut self, len: u64) -> Result<(), String>;
    /// One request and its echo over the connection.
    fn rr(&mut self) -> Result<(), String>;
    /// Connect, one request and its echo, close both ends.
    fn crr(&mut self) -> Result<(), String>;
    /// Every byte right, every response the echo of its request, nothing
    /// dropped.
    fn check(&self) -> Result<(), String>;
    /// What moved, for the log.
    fn summary(&self) -> String;
    /// Tears both hosts and the wire down; fails if memory they lent is
    /// not all back (tpa's buffer pool).
    fn teardown(self) -> Result<(), String> {
        Ok(())
    }
}

/// The three workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Bulk,
    Rr,
    Crr,
}

impl Workload {
    const ALL: [Workload; 3] = [Workload::Bulk, Workload::Rr, Workload::Crr];

    fn name(self) -> &'static str {
        match self {
            Workload::Bulk => "bulk",
            Workload::Rr => "rr",
            Workload::Crr => "crr",
        }
    }

    /// The variable that runs it alone.
    fn variable(self) -> &'static str {
        match self {
            Workload::Bulk => "TPA_TCP_BULK_RUN",
            Workload::Rr => "TPA_TCP_RR_RUN",
            Workload::Crr => "TPA_TCP_CRR_RUN",
        }
    }
}

/// Peers ready for `w`: connected for bulk and rr, idle for crr.
fn ready<P: Peers>(w: Workload) -> Result<P, String> {
    let mut p = P::new(w)?;
    if w != Workload::Crr {
        p.connect()?;
    }
    Ok(p)
}

/// One iteration of `w`.
#[inline]
fn once<P: Peers>(p: &mut P, w: Workload) -> Result<(), String> {
    match w {
        Workload::Bulk => p.bulk(BULK_CHUNK),
        Workload::Rr => p.rr(),
        Workload::Crr => p.crr(),
    }
}

/// Runs `iterations` of `w` and checks the outcome.
fn run<P: Peers>(p: &mut P, w: Workload, iterations: u64) -> Result<(), String> {
    for _ in 0..iterations {
        once(p, w)?;
    }
    p.check()
}

/// Adds `P`'s function to `w`'s group: checked over a few iterations
/// first, and again after timing.
fn bench_peers<P: Peers>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    w: Workload,
) {
    let fail = |e: String| -> ! { panic!("{} {}: {e}", P::NAME, w.name()) };
    let mut p = ready::<P>(w).unwrap_or_else(|e| fail(e));
    run(&mut p, w, 3).unwrap_or_else(|e| fail(e));
    g.bench_function(P::NAME, |b| {
        b.iter(|| once(&mut p, w).unwrap_or_else(|e| fail(e)))
    });
    p.check().unwrap_or_else(|e| fail(e));
    black_box(&p);
}

fn bench_tcp_memory(c: &mut Criterion) {
    for w in Workload::ALL {
        let mut g = c.benchmark_group(format!("tcp_memory/{}", w.name()));
        g.throughput(match w {
            Workload::Bulk => Throughput::Bytes(BULK_CHUNK),
            Workload::Rr | Workload::Crr => Throughput::Elements(1),
        });
        bench_peers::<TpaPeers>(&mut g, w);
        bench_peers::<SmoltcpPeers>(&mut g, w);
        g.finish();
    }
}

/// Runs `iterations` of `w` on `stack` alone, without criterion (what a
/// callgrind run counts), and prints what moved.
fn run_alone(w: Workload, stack: &str, iterations: u64) -> Result<(), String> {
    fn go<P: Peers>(w: Workload, iterations: u64) -> Result<(), String> {
        let mut p = ready::<P>(w)?;
        run(&mut p, w, iterations)?;
        eprintln!("{}", p.summary());
        p.teardown()
    }
    match stack {
        "tpa" => go::<TpaPeers>(w, iterations),
        "smoltcp" => go::<SmoltcpPeers>(w, iterations),
        other => Err(format!("no stack {other} (tpa, smoltcp)")),
    }
}

fn main() {
    if let Ok(spec) = std::env::var("TPA_TCP_RR_INTERLEAVED") {
        let result = match spec
            .split_once(':')
            .and_then(|(r, n)| Some((r.parse().ok()?, n.parse().ok()?)))
        {
            Some((rounds, block)) => ops_interleaved::run(rounds, block),
            None => Err(format!(
                "TPA_TCP_RR_INTERLEAVED={spec}: want <rounds>:<transactions a block>"
            )),
        };
        if let Err(e) = result {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    if let Ok(spec) = std::env::var("TPA_TCP_PAIRED") {
        let mut parts = spec.split(':');
        let parsed = (|| {
            let name = parts.next()?;
            let w = Workload::ALL.into_iter().find(|w| w.name() == name)?;
            let rounds = parts.next()?.parse().ok()?;
            let block = parts.next()?.parse().ok()?;
            parts.next().is_none().then_some((w, rounds, block))
        })();
        let result = match parsed {
            Some((w, rounds, block)) => paired::run(w, rounds, block),
            None => Err(format!(
                "TPA_TCP_PAIRED={spec}: want <bulk|rr|crr>:<rounds>:<iterations a block>"
            )),
        };
        if let Err(e) = result {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    for w in Workload::ALL {
        let Ok(spec) = std::env::var(w.variable()) else {
            continue;
        };
        let result = match spec
            .split_once(':')
            .and_then(|(s, i)| Some((s, i.parse().ok()?)))
        {
            Some((stack, iterations)) => run_alone(w, stack, iterations),
            None => Err(format!(
                "{}={spec}: want <stack>:<iterations>",
                w.variable()
            )),
        };
        if let Err(e) = result {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    let mut c = criterion();
    bench_tcp_memory(&mut c);
    c.final_summary();
}
