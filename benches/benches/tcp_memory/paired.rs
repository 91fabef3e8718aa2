//! tpa against smoltcp on one workload in one process, in alternating
//! blocks: both pairs of hosts set up (connected, for bulk and rr) and
//! warmed up, then `rounds` rounds of a block of iterations on each,
//! the order swapped every round, each block timed in thread CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`). Criterion times one stack for seconds
//! and then the other, and a machine whose speed drifts by a tenth
//! between the two moves their ratio by as much; blocks of a few
//! milliseconds put both stacks under the same drift and load, so the
//! ratio of each round's pair is the ratio of their costs alone.
//! `TPA_TCP_PAIRED=<workload>:<rounds>:<iterations a block>`
//! (benches/tcp_memory_paired.sh).

use super::ops_interleaved::{median, thread_cpu_ns};
use super::smoltcp_peers::SmoltcpPeers;
use super::tpa_peers::TpaPeers;
use super::{once, ready, Peers, Workload};

/// Iterations each stack runs before the first timed block.
const WARM_UP: u64 = 200;

/// One stack's peers and the CPU time per iteration of each of its blocks.
struct Side<P> {
    peers: P,
    ns: Vec<f64>,
}

impl<P: Peers> Side<P> {
    fn new(w: Workload, rounds: usize) -> Result<Self, String> {
        let mut peers = ready::<P>(w).map_err(|e| format!("{}: {e}", P::NAME))?;
        for _ in 0..WARM_UP {
            once(&mut peers, w).map_err(|e| format!("{}: {e}", P::NAME))?;
        }
        Ok(Side {
            peers,
            ns: Vec::with_capacity(rounds),
        })
    }

    /// Runs and times one block of `block` iterations.
    fn block(&mut self, w: Workload, block: u64) -> Result<(), String> {
        let start = thread_cpu_ns();
        for _ in 0..block {
            once(&mut self.peers, w).map_err(|e| format!("{}: {e}", P::NAME))?;
        }
        self.ns
            .push((thread_cpu_ns() - start) as f64 / block as f64);
        Ok(())
    }

    fn finish(self) -> Result<(), String> {
        self.peers
            .check()
            .map_err(|e| format!("{}: {e}", P::NAME))?;
        self.peers
            .teardown()
            .map_err(|e| format!("{}: {e}", P::NAME))
    }
}

/// Runs `rounds` rounds of a block of `block` iterations of `w` on each
/// stack and prints a row of benches/tcp_memory_paired.sh's table: each
/// stack's median CPU time per iteration (a MiB in bulk, a transaction in
/// rr and crr), the ratio of the medians, and the median, lowest and
/// highest of the rounds' ratios (tpa's block over smoltcp's of the same
/// round).
pub fn run(w: Workload, rounds: usize, block: u64) -> Result<(), String> {
    if rounds == 0 || block == 0 {
        return Err("TPA_TCP_PAIRED: rounds and iterations must be positive".into());
    }
    let mut tpa = Side::<TpaPeers>::new(w, rounds)?;
    let mut smoltcp = Side::<SmoltcpPeers>::new(w, rounds)?;
    for round in 0..rounds {
        if round % 2 == 0 {
            tpa.block(w, block)?;
            smoltcp.block(w, block)?;
        } else {
            smoltcp.block(w, block)?;
            tpa.block(w, block)?;
        }
    }
    let (t, s) = (median(&mut tpa.ns.clone()), median(&mut smoltcp.ns.clone()));
    let mut ratios: Vec<f64> = tpa.ns.iter().zip(&smoltcp.ns).map(|(a, b)| a / b).collect();
    let mid = median(&mut ratios);
    println!(
        "| {} | {rounds} x {block} | {t:.1} | {s:.1} | {:.3} | {mid:.3} | {:.3}, {:.3} |",
        w.name(),
        t / s,
        ratios[0],
        ratios[ratios.len() - 1]
    );
    tpa.finish()?;
    smoltcp.finish()
}
