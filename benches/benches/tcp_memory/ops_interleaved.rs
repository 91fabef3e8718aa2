//! The trace's and the stats' cost per rr transaction in one process:
//! four pairs of tpa hosts (off; trace on; stats on; both), each with
//! its connection established and warmed up, run blocks of transactions
//! in turn, the order rotated every round, each block timed in thread CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`). Alternating blocks of a few
//! milliseconds puts every variant under the same load from other
//! processes, and leaves out what a run of its own also measures (the
//! process's start, the hosts', the files'): what is left is the cost
//! per transaction. `TPA_TCP_RR_INTERLEAVED=<rounds>:<transactions a
//! block>` (benches/ops_interleaved.sh).

use tpa_stages::ops::OpsConfig;
use tpa_stages::trace::TraceConfig;

use super::tpa_peers::{Ops, TpaPeers};
use super::{Peers, Workload};

/// Transactions each pair runs before the first timed block.
const WARM_UP: u64 = 2_000;

/// Nanoseconds this thread has run on a CPU: unlike wall time, not the
/// time other processes held the core.
pub(super) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant Linux defines.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The median of `xs` (sorted in place).
pub(super) fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The four variants' settings: the environment's trace and stats knobs
/// (`TPA_RUN_DIR`, `TPA_STATS_INTERVAL_MS`, ...), each switched on or
/// off; the stats instances get ids of their own.
fn variants() -> Result<Vec<(&'static str, Ops)>, String> {
    let base = Ops::from_env()?;
    let trace = |on: bool| TraceConfig {
        enabled: on,
        ..base.trace.clone()
    };
    let stats = |on: bool, name: &str| -> Result<Option<OpsConfig>, String> {
        if !on {
            return Ok(None);
        }
        let mut cfg = match &base.stats {
            Some(cfg) => cfg.clone(),
            None => OpsConfig::from_env().map_err(|e| e.to_string())?,
        };
        cfg.enabled = true;
        cfg.id = Some(format!("tcp-memory-{}-{name}", std::process::id()));
        Ok(Some(cfg))
    };
    [
        ("off", false, false),
        ("trace", true, false),
        ("stats", false, true),
        ("both", true, true),
    ]
    .into_iter()
    .map(|(name, t, s)| {
        Ok((
            name,
            Ops {
                trace: trace(t),
                stats: stats(s, name)?,
            },
        ))
    })
    .collect()
}

/// Runs `rounds` rounds of a block of `block` transactions on each
/// variant and prints each one's median CPU time per transaction, its
/// ratio to off's, and the median, lowest and highest of its ratio to
/// off's block of the same round.
pub fn run(rounds: usize, block: u64) -> Result<(), String> {
    if rounds == 0 || block == 0 {
        return Err("TPA_TCP_RR_INTERLEAVED: rounds and transactions must be positive".into());
    }
    let mut peers = Vec::new();
    for (name, ops) in variants()? {
        let mut p = TpaPeers::with_ops(Workload::Rr, &ops).map_err(|e| format!("{name}: {e}"))?;
        p.connect().map_err(|e| format!("{name}: {e}"))?;
        for _ in 0..WARM_UP {
            p.rr().map_err(|e| format!("{name}: {e}"))?;
        }
        peers.push((name, p));
    }
    let k = peers.len();
    let mut ns = vec![Vec::with_capacity(rounds); k];
    for round in 0..rounds {
        for j in 0..k {
            let v = (round + j) % k;
            let p = &mut peers[v].1;
            let start = thread_cpu_ns();
            for _ in 0..block {
                p.rr()?;
            }
            ns[v].push((thread_cpu_ns() - start) as f64 / block as f64);
        }
    }
    println!(
        "rr over MemoryWire in one process, {rounds} rounds of a block of {block} \
         transactions on each variant (order rotated), thread CPU time per transaction"
    );
    println!("| variant | median ns | ratio of medians to off | median, lowest, highest ratio in a round |");
    println!("|---|---:|---:|---:|");
    let off = median(&mut ns[0].clone());
    for (v, (name, _)) in peers.iter().enumerate() {
        let m = median(&mut ns[v].clone());
        let mut ratios: Vec<f64> = ns[v].iter().zip(&ns[0]).map(|(a, b)| a / b).collect();
        let mid = median(&mut ratios);
        println!(
            "| {name} | {m:.1} | {:.3} | {mid:.3}, {:.3}, {:.3} |",
            m / off,
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
    for (name, p) in peers {
        p.check().map_err(|e| format!("{name}: {e}"))?;
        p.teardown().map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}
