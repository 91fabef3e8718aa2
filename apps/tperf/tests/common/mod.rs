//! What the tests of tperf against the kernel share: the client's run and
//! the checks of its report, the workers' lines.

#![allow(dead_code)] // each test binary uses its own part

use std::process::Output;

use serde_json::Value;
use tpa_tests::netns::Netns;

pub const TPERF: &str = env!("CARGO_BIN_EXE_tpa-tperf");

/// tpa's flags: the namespace's TAP, both addresses.
pub const TPA: [&str; 6] = [
    "--port",
    "tap:tpa0",
    "--ip",
    "192.0.2.2/24",
    "--ip",
    "2001:db8::2/64",
];

/// Runs `client --json` in `ns` with `args`; returns its exit code and
/// JSON report.
pub fn client(ns: &Netns, args: &[&str]) -> (Option<i32>, Value, Output) {
    let mut argv = vec![TPERF, "client", "--json"];
    argv.extend_from_slice(args);
    let out = ns.exec_output(&argv);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{argv:?}: not one JSON object ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report, out)
}

pub fn u(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {report:#}"))
}

/// Runs `test` for a second over 2 connections from `client_args` to
/// `server` and checks the report: passed, every byte checked on both
/// sides and counted the same by both, the test's figures present, the
/// client's stack `stack`.
pub fn run(ns: &Netns, stack: &str, client_args: &[&str], server: &str, test: &str) {
    run_on(
        ns,
        stack,
        client_args,
        server,
        test,
        &["-d", "1", "-c", "2"],
    );
}

/// [`run`] with `more` flags (duration, connections, workers); returns
/// the client's standard error. EAL arguments in `client_args` (from
/// `--` on) stay last.
pub fn run_on(
    ns: &Netns,
    stack: &str,
    client_args: &[&str],
    server: &str,
    test: &str,
    more: &[&str],
) -> String {
    let cut = client_args
        .iter()
        .position(|a| *a == "--")
        .unwrap_or(client_args.len());
    let mut args = client_args[..cut].to_vec();
    args.extend_from_slice(&["-s", server, "-t", test]);
    args.extend_from_slice(more);
    args.extend_from_slice(&client_args[cut..]);
    let conns: u64 = more
        .windows(2)
        .find(|w| w[0] == "-c")
        .map_or(1, |w| w[1].parse().expect("-c N"));
    let (code, r, out) = client(ns, &args);
    let ctx = format!(
        "{test} to {server} ({stack}): {r:#}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(code, Some(0), "{ctx}");
    assert_eq!(r["ok"], Value::Bool(true), "{ctx}");
    assert_eq!(r["stack"], stack, "{ctx}");
    assert_eq!(u(&r, "integrity_errors"), 0, "{ctx}");
    assert_eq!(u(&r, "failed_connections"), 0, "{ctx}");
    let sv = &r["server_view"];
    assert_eq!(u(sv, "integrity_errors"), 0, "{ctx}");
    assert_eq!(u(sv, "failed_connections"), 0, "{ctx}");
    assert_eq!(sv["incomplete"], Value::Bool(false), "{ctx}");
    assert_eq!(u(sv, "bytes_received"), u(&r, "bytes_sent"), "{ctx}");
    assert_eq!(u(sv, "bytes_sent"), u(&r, "bytes_received"), "{ctx}");
    let opened = u(&r, "connections_opened");
    if test == "crr" {
        assert!(opened > conns, "{ctx}");
        assert_eq!(u(&r, "transactions"), u(sv, "transactions"), "{ctx}");
    } else {
        assert_eq!(opened, conns, "{ctx}");
    }
    assert_eq!(u(&r, "connections_completed"), opened, "{ctx}");
    match test {
        "rr" | "crr" => {
            let txns = u(&r, "transactions");
            assert!(txns > 0, "{ctx}");
            assert_eq!(u(sv, "transactions"), txns, "{ctx}");
            assert_eq!(u(&r, "bytes_sent"), txns * 64, "64-byte requests: {ctx}");
        }
        "read" => assert!(
            u(&r, "bytes_received") > 0 && u(&r, "bytes_sent") == 0,
            "{ctx}"
        ),
        "rw" => assert!(
            u(&r, "bytes_sent") > 0 && u(&r, "bytes_received") > 0,
            "{ctx}"
        ),
        _ => assert!(
            u(&r, "bytes_sent") > 0 && u(&r, "bytes_received") == 0,
            "{ctx}"
        ),
    }
    println!(
        "{stack} client, {test} to {server}: {} B sent, {} transactions, p99 {} us",
        u(&r, "bytes_sent"),
        u(&r, "transactions"),
        r["latency_p99_us"]
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The numbers in `text`, in order.
fn counts(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().expect("a count"))
        .collect()
}

/// The figures of each `worker N: C connections (…), S neighbor answers
/// shared, R received` line tpa prints at the end, by worker.
pub fn worker_lines(said: &str) -> Vec<(u64, u64, u64, u64)> {
    let mut lines: Vec<(u64, u64, u64, u64)> = said
        .lines()
        .filter_map(|l| l.split_once("worker ").map(|(_, rest)| rest))
        .filter(|rest| rest.contains("neighbor answers"))
        .map(|rest| {
            let n = counts(rest);
            // worker, connections, active, passive, shared, received
            assert_eq!(n.len(), 6, "{rest}");
            (n[0], n[1], n[4], n[5])
        })
        .collect();
    lines.sort_unstable();
    lines
}

/// Checks that both of tpa's workers had connections (the steering spread
/// them and each worker's replies came back to it) and that worker 1
/// heard the neighbor answers that landed on queue 0.
pub fn both_workers_served(said: &str, what: &str) {
    let workers = worker_lines(said);
    assert_eq!(
        workers.iter().map(|w| w.0).collect::<Vec<_>>(),
        [0, 1],
        "{what}: {said}"
    );
    for (worker, conns, _, _) in &workers {
        assert!(
            *conns > 0,
            "{what}: worker {worker} had no connection: {said}"
        );
    }
    assert!(workers[0].2 > 0, "{what}: queue 0 shared no answer: {said}");
    assert!(
        workers[1].3 > 0,
        "{what}: worker 1 received no answer: {said}"
    );
}

/// The figures of each `queue N: S frames handed over to other workers,
/// R received from them, D dropped` line tpa prints at the end on a port
/// that hands misplaced frames over (DPDK), by queue.
pub fn handover_lines(said: &str) -> Vec<(u64, u64, u64, u64)> {
    let mut lines: Vec<(u64, u64, u64, u64)> = said
        .lines()
        .filter(|l| l.contains("frames handed over"))
        .filter_map(|l| l.split_once("queue ").map(|(_, rest)| rest))
        .map(|rest| {
            let n = counts(rest);
            // queue, sent, received, dropped
            assert_eq!(n.len(), 4, "{rest}");
            (n[0], n[1], n[2], n[3])
        })
        .collect();
    lines.sort_unstable();
    lines
}
