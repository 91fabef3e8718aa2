//! The hostile-input kit for TCP, from Rust tests: runs
//! `tests/src/tcp_hostile.py` (scapy) against a live connection, the SYN
//! flood generator (`tests/src/bin/synflood.rs`), the kernel peer
//! `tests/src/tcp_hostile_peer.py`, and reads a namespace's kernel counters.
//!
//! The kit needs scapy, which Debian's python3-scapy installs for the
//! system interpreter: it runs under `/usr/bin/python3`, whatever `python3`
//! the PATH finds first.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::netns::Netns;

/// The interpreter with Debian's scapy.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// The path of a script in tests/src.
pub fn script(name: &str) -> String {
    format!("{}/src/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// One line the kit printed for one injection.
#[derive(Debug, Clone)]
pub struct Injection(pub Value);

impl Injection {
    /// The injection's name (`rst-in-window`, …).
    pub fn name(&self) -> &str {
        self.0["injection"].as_str().unwrap_or("?")
    }

    /// A field of the state it was computed from (`rcv_nxt`, …).
    pub fn state(&self, field: &str) -> u64 {
        self.0["state"][field]
            .as_u64()
            .unwrap_or_else(|| panic!("no state.{field} in {}", self.0))
    }

    /// The target's segments without payload seen after it, as
    /// (flags, seq, ack).
    pub fn answers(&self) -> Vec<(String, u64, u64)> {
        self.0["answers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        (
                            s["flags"].as_str().unwrap_or("").to_owned(),
                            s["seq"].as_u64().unwrap_or(0),
                            s["ack"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The pure ACKs among the answers that acknowledge RCV.NXT (what a
    /// challenge ACK or a duplicate ACK looks like).
    pub fn acks_at_rcv_nxt(&self) -> usize {
        let rcv_nxt = self.state("rcv_nxt");
        self.answers()
            .iter()
            .filter(|(flags, _, ack)| flags == "A" && *ack == rcv_nxt)
            .count()
    }

    /// How many segments with payload the target sent while the kit
    /// watched for answers (the live transfer).
    pub fn data_segments(&self) -> u64 {
        self.0["target_data_segments"].as_u64().unwrap_or(0)
    }

    /// Any other numeric field of the line.
    pub fn field(&self, name: &str) -> Option<u64> {
        self.0[name].as_u64()
    }
}

/// Where the kit runs and what it forges: segments from `peer` to
/// `target` on `iface` of the namespace it runs in.
#[derive(Debug, Clone)]
pub struct KitRun<'a> {
    /// The interface that carries the connection, in the kit's namespace.
    pub iface: &'a str,
    /// The legitimate peer whose segments the kit forges (address, port).
    pub peer: (&'a str, u16),
    /// The stack under test (address, port).
    pub target: (&'a str, u16),
    /// Injections in order (`None`: the default battery).
    pub only: Option<&'a [&'a str]>,
    /// Extra arguments (`--target-wscale 7`, `--observe 0.2`, …).
    pub extra: &'a [&'a str],
}

/// Runs the kit in `ns` and returns its lines, one per injection.
///
/// # Panics
/// If it fails or does not report every injection it was given.
pub fn run_kit(ns: &Netns, run: &KitRun) -> Vec<Injection> {
    let kit = script("tcp_hostile.py");
    let (pp, tp) = (run.peer.1.to_string(), run.target.1.to_string());
    let mut argv = vec![
        SYSTEM_PYTHON,
        &kit,
        run.iface,
        run.peer.0,
        &pp,
        run.target.0,
        &tp,
    ];
    let only = run.only.map(|o| o.join(","));
    if let Some(o) = &only {
        argv.extend(["--only", o.as_str()]);
    }
    argv.extend(run.extra);
    let out = ns.exec_output(&argv);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the kit failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = Vec::new();
    let mut done = None;
    for l in stdout.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("kit line {l:?}: {e}"));
        if let Some(n) = v["done"].as_u64() {
            done = Some(n);
        } else {
            lines.push(Injection(v));
        }
    }
    assert_eq!(
        done,
        Some(lines.len() as u64),
        "the kit ended early:\n{stdout}"
    );
    lines
}

/// Finds the line of injection `name`.
///
/// # Panics
/// If the kit did not report it.
pub fn find<'a>(lines: &'a [Injection], name: &str) -> &'a Injection {
    lines
        .iter()
        .find(|l| l.name() == name)
        .unwrap_or_else(|| panic!("no {name} in the kit's report"))
}

/// The kernel's SNMP and netstat counters in `ns` (`nstat -asz`:
/// absolute values, every counter, no history file touched).
pub fn kernel_counters(ns: &Netns) -> BTreeMap<String, u64> {
    ns.exec(&["nstat", "-asz"])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_owned(), f.next()?.parse().ok()?))
        })
        .collect()
}

/// `after[name] - before[name]` (0 for a counter absent from both).
pub fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, name: &str) -> u64 {
    after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0)
}

/// The counters that changed between two snapshots, one per line, for
/// failure messages and the test's log.
pub fn deltas(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> String {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d != 0).then(|| format!("{k} +{d}\n"))
        })
        .collect()
}

/// A SYN flood from `ns` (see tests/src/bin/synflood.rs): `count` SYNs at
/// `rate` per second to `dst` from random addresses of `src_net`.
/// Returns the generator's report line.
///
/// # Panics
/// If the generator fails.
#[allow(clippy::too_many_arguments)]
pub fn syn_flood(
    ns: &Netns,
    binary: &str,
    iface: &str,
    macs: (&str, &str),
    src_net: &str,
    dst: (&str, u16),
    count: u64,
    rate: u64,
    seed: u64,
) -> String {
    ns.exec(&[
        binary,
        iface,
        macs.0,
        macs.1,
        src_net,
        dst.0,
        &dst.1.to_string(),
        &count.to_string(),
        &rate.to_string(),
        &seed.to_string(),
    ])
    .trim()
    .to_owned()
}
