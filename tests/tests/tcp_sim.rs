//! The TCP simulation (issue 10, proof 1): two tpa stacks over an impaired
//! MemoryWire on a virtual clock, a seeded scenario per seed (see
//! `tpa_tests::tcp_sim`), the invariants checked after every run.
//!
//! - `batch`: seeds `TPA_SIM_FIRST..TPA_SIM_FIRST+TPA_SIM_COUNT` (0 and
//!   1000 by default: the CI batch); prints every failing seed with its
//!   replay command. tests/tcp_sim_long.sh runs 10^5 in parallel batches.
//! - `replay`: `TPA_SIM_SEED=N` runs seed N alone and prints its scenario
//!   and outcome; without it, the seeds that once failed (regressions).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use tpa_tests::tcp_sim::{check, run, run_captured, Scenario, Verdict};

/// Seeds that once failed, each with what it found.
const REGRESSIONS: &[(u64, &str)] = &[
    (
        606,
        "a reordered window update shrank the peer's window below the chunk in flight: \
         never resent, the sender timed out, its peer got a reset",
    ),
    (
        6,
        "a half-closed socket in FIN_WAIT_2 waited forever for a peer that had timed out \
         (no keepalive there)",
    ),
    (
        26,
        "a half-closed socket in FIN_WAIT_2 waited forever for a peer that had timed out",
    ),
    (
        121,
        "a half-open passive connection the application never heard of raised Error and Closed",
    ),
    (
        293,
        "a half-open passive connection the application never heard of raised Error and Closed",
    ),
    (
        812,
        "a connection reset after its Accepted event left the accept queue: accept said \
         WouldBlock and its slot was never freed",
    ),
    (
        12309,
        "a zero window and a long partition: the window probe's timer was never re-armed \
         after a probe, and unanswered probes never timed out (stuck in LAST_ACK)",
    ),
    (11371, "the same stuck in CLOSING"),
    (24735, "the same stuck in FIN_WAIT_1"),
    (
        87928,
        "Eifel took the echo of an earlier fast retransmit for the original's and undid a \
         timeout whose flight was lost; the receiver's keepalive ignored the sender's \
         duplicates and gave up on it",
    ),
    (
        54134,
        "a full out-of-order queue refused the segment after the hole (the newest dropped, \
         not the farthest): a peer without SACK moved one segment per 10 s timeout",
    ),
];

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
    })
}

/// Runs `seed` and checks it; the panic of a run counts as a failure.
fn run_seed(seed: u64, verbose: bool) -> Result<Verdict, String> {
    let scenario = Scenario::from_seed(seed);
    if verbose {
        println!("{scenario:?}");
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        let pcap = std::env::var("TPA_SIM_PCAP").ok().filter(|_| verbose);
        let outcome = match &pcap {
            Some(prefix) => {
                let (c, s) = (
                    format!("{prefix}.client.pcap"),
                    format!("{prefix}.server.pcap"),
                );
                println!("capturing into {c} and {s}");
                run_captured(&scenario, Some((c.as_ref(), s.as_ref())))
            }
            None => run(&scenario),
        };
        if verbose {
            println!(
                "virtual {} ms, {} turns, partition {:?}, wire drop/dup/corrupt/cut {:?}, \
                 FCS drops {}, neighbor entries given up {}",
                outcome.virtual_ms,
                outcome.turns,
                outcome.partition_ms,
                outcome.wire,
                outcome.fcs_drops,
                outcome.neighbors_failed
            );
            for (i, c) in outcome.world.conns.iter().enumerate() {
                println!("  conn {i}: client {:?}", c.ends[0]);
                println!("  conn {i}: server {:?}", c.ends[1]);
            }
        }
        check(&scenario, &outcome)
    }));
    match result {
        Ok(r) => r,
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    }
}

fn replay_command(seed: u64) -> String {
    format!("TPA_SIM_SEED={seed} cargo test -p tpa-tests --test tcp_sim -- replay --nocapture")
}

#[test]
fn batch() {
    let first = env_u64("TPA_SIM_FIRST").unwrap_or(0);
    let count = env_u64("TPA_SIM_COUNT").unwrap_or(1000);
    let started = Instant::now();
    let mut total = Verdict::default();
    let mut failed = Vec::new();
    for seed in first..first + count {
        match run_seed(seed, false) {
            Ok(v) => total.add(&v),
            Err(e) => {
                println!(
                    "FAILED seed {seed}: {e}\n  replay: {}",
                    replay_command(seed)
                );
                failed.push(seed);
            }
        }
    }
    println!(
        "seeds {first}..{}: passed {} failed {} in {:.1} s; ends completed {} timed out {} reset {} \
         aborted {} cut short {}; longest run {} ms virtual; frames dropped by FCS {}, neighbor \
         entries given up {}",
        first + count,
        count - failed.len() as u64,
        failed.len(),
        started.elapsed().as_secs_f64(),
        total.completed,
        total.timed_out,
        total.reset,
        total.aborted,
        total.cut_short,
        total.virtual_ms,
        total.fcs_drops,
        total.neighbors_failed,
    );
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
    if count >= 1000 {
        // The mix reached every way a connection ends.
        assert!(total.completed > 0 && total.timed_out > 0 && total.reset > 0 && total.aborted > 0);
        // Some seeds corrupt on the link (dropped by the FCS).
        assert!(total.fcs_drops > 0);
    }
}

#[test]
fn replay() {
    if let Some(seed) = env_u64("TPA_SIM_SEED") {
        let r = run_seed(seed, true);
        assert!(r.is_ok(), "seed {seed}: {}", r.unwrap_err());
        println!("seed {seed}: passed, {:?}", r.unwrap());
        return;
    }
    for &(seed, what) in REGRESSIONS {
        let r = run_seed(seed, false);
        assert!(r.is_ok(), "seed {seed} ({what}): {}", r.unwrap_err());
    }
}
