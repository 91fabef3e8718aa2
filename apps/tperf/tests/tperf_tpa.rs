//! tperf over tpa's TCP against tperf over the kernel's, through a TAP
//! device in a network namespace made here (tpa's side 192.0.2.2 and
//! 2001:db8::2, the kernel's 192.0.2.1 and 2001:db8::1): a tpa server
//! with a kernel client, then a kernel server with a tpa client; `rr` and
//! `write` for a second each (IPv4 and IPv6), every byte checked by both
//! sides and counted alike; then tpa on two workers over a multi-queue
//! TAP, as a server and as a client of every test.
//!
//! (Here rather than in tests/tests: only a test of this package can name
//! the binary cargo built for it.) Run as root: `cargo test -p tpa-tperf
//! --test tperf_tpa`.

use std::process::Output;

use serde_json::Value;
use tpa_tests::netns::Netns;

const TPERF: &str = env!("CARGO_BIN_EXE_tpa-tperf");

/// A namespace with a persistent TAP `tpa0` whose kernel side has
/// 192.0.2.1/24 and 2001:db8::1/64.
fn tap_namespace(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&["tuntap", "add", "dev", "tpa0", "mode", "tap"]);
    ns.add_addr("tpa0", "192.0.2.1/24");
    ns.ip(&["addr", "add", "2001:db8::1/64", "dev", "tpa0", "nodad"]);
    ns.up("tpa0");
    ns
}

/// The same with a multi-queue TAP, for tpa's workers.
fn multiqueue_tap_namespace(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip(&["tuntap", "add", "dev", "tpa0", "mode", "tap", "multi_queue"]);
    ns.add_addr("tpa0", "192.0.2.1/24");
    ns.ip(&["addr", "add", "2001:db8::1/64", "dev", "tpa0", "nodad"]);
    ns.up("tpa0");
    ns
}

/// tpa's flags: the namespace's TAP, both addresses.
const TPA: [&str; 6] = [
    "--port",
    "tap:tpa0",
    "--ip",
    "192.0.2.2/24",
    "--ip",
    "2001:db8::2/64",
];

/// Runs `client --json` in `ns` with `args`; returns its exit code and
/// JSON report.
fn client(ns: &Netns, args: &[&str]) -> (Option<i32>, Value, Output) {
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

fn u(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {report:#}"))
}

/// Runs `test` for a second over 2 connections from `client_args` to
/// `server` and checks the report: passed, every byte checked on both
/// sides and counted the same by both, the test's figures present, the
/// client's stack `stack`.
fn run(ns: &Netns, stack: &str, client_args: &[&str], server: &str, test: &str) {
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
/// the client's standard error.
fn run_on(
    ns: &Netns,
    stack: &str,
    client_args: &[&str],
    server: &str,
    test: &str,
    more: &[&str],
) -> String {
    let mut args = client_args.to_vec();
    args.extend_from_slice(&["-s", server, "-t", test]);
    args.extend_from_slice(more);
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

/// The figures of each `worker N: C connections (…), S neighbor answers
/// shared, R received` line tpa prints at the end, by worker.
fn worker_lines(said: &str) -> Vec<(u64, u64, u64, u64)> {
    let mut lines: Vec<(u64, u64, u64, u64)> = said
        .lines()
        .filter_map(|l| l.split_once("worker ").map(|(_, rest)| rest))
        .filter(|rest| rest.contains("neighbor answers"))
        .map(|rest| {
            let n: Vec<u64> = rest
                .split(|c: char| !c.is_ascii_digit())
                .filter(|w| !w.is_empty())
                .map(|w| w.parse().expect("a count"))
                .collect();
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
fn both_workers_served(said: &str, what: &str) {
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

/// tpa on two workers (a multi-queue TAP, steered by tpa's program):
/// its server measured by the kernel's client (rr and crr, 4 connections
/// in 2 threads), then its client measuring the kernel's server in every
/// test. Every byte is checked on both sides; both workers must have
/// carried connections, and worker 1 must have learned the kernel's MAC
/// address from an answer that landed on queue 0.
#[test]
fn tpa_on_two_workers_against_the_kernel() {
    let ns = multiqueue_tap_namespace("tptpa-w");
    let mut argv = vec![TPERF, "server"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-l", "0.0.0.0:4040", "--runs", "2", "-w", "2"]);
    let server = ns.spawn_until(
        &argv,
        "tpa-tperf server: listening on 0.0.0.0:4040 (tpa on tap:tpa0, 2 workers)",
    );
    let more = ["-d", "500ms", "-c", "4", "-w", "2"];
    for test in ["rr", "crr"] {
        run_on(&ns, "kernel", &["--kernel"], "192.0.2.2:4040", test, &more);
    }
    let said = server.finish();
    assert_eq!(said.matches("run ").count(), 2, "{said}");
    both_workers_served(&said, "tpa's server");

    let server = ns.spawn_until(
        &[
            TPERF,
            "server",
            "--kernel",
            "-l",
            "[::]:4040",
            "-w",
            "2",
            "--runs",
            "5",
        ],
        "tpa-tperf server: listening on [::]:4040 (kernel sockets, 2 workers)",
    );
    for test in ["read", "write", "rw", "rr", "crr"] {
        let said = run_on(&ns, "tpa", &TPA, "192.0.2.1:4040", test, &more);
        both_workers_served(&said, test);
    }
    let said = server.finish();
    assert_eq!(said.matches("run ").count(), 5, "{said}");
}

/// A tpa server on the TAP, the kernel's client in the namespace: rr and
/// write over IPv4, then rr over IPv6; the server exits after its runs
/// (`--runs`), every buffer back in its pool (it fails otherwise), having
/// printed each.
#[test]
fn a_kernel_client_measures_a_tpa_server() {
    let ns = tap_namespace("tptpa-s");
    let mut argv = vec![TPERF, "server"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-l", "0.0.0.0:4040", "--runs", "2"]);
    // Only IPv4's wildcard: the IPv6 run needs its own listener.
    let server = ns.spawn_until(
        &argv,
        "tpa-tperf server: listening on 0.0.0.0:4040 (tpa on tap:tpa0, 1 worker)",
    );
    run(&ns, "kernel", &["--kernel"], "192.0.2.2:4040", "rr");
    run(&ns, "kernel", &["--kernel"], "192.0.2.2:4040", "write");
    let said = server.finish();
    assert_eq!(said.matches("run ").count(), 2, "{said}");

    let mut argv = vec![TPERF, "server"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-l", "[::]:4040", "--runs", "1"]);
    let server = ns.spawn_until(
        &argv,
        "tpa-tperf server: listening on [::]:4040 (tpa on tap:tpa0, 1 worker)",
    );
    run(&ns, "kernel", &["--kernel"], "[2001:db8::2]:4040", "rr");
    let said = server.finish();
    assert!(said.contains("rr over 2 connections"), "{said}");
}

/// The kernel's server in the namespace, tpa's client on the TAP: rr over
/// IPv4, write over IPv6.
#[test]
fn a_tpa_client_measures_a_kernel_server() {
    let ns = tap_namespace("tptpa-c");
    let server = ns.spawn_until(
        &[
            TPERF,
            "server",
            "--kernel",
            "-l",
            "[::]:4040",
            "--runs",
            "2",
        ],
        "tpa-tperf server: listening on [::]:4040 (kernel sockets, 1 worker)",
    );
    run(&ns, "tpa", &TPA, "192.0.2.1:4040", "rr");
    run(&ns, "tpa", &TPA, "[2001:db8::1]:4040", "write");
    let said = server.finish();
    assert_eq!(said.matches("run ").count(), 2, "{said}");
}

/// tpa's flags are refused with `--kernel`, two workers on a single-queue
/// TAP are refused, unmatched segments to a host path tperf's ports lack
/// are refused, and a tpa client without a server says so: each exits
/// with 2.
#[test]
fn tpa_flags_are_checked_and_a_missing_server_is_an_error() {
    let ns = tap_namespace("tptpa-e");
    let exit_2_saying = |argv: &[&str], said: &str| {
        let out = ns.exec_output(argv);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {err}");
        assert!(err.contains(said), "{argv:?}: {err}");
    };
    exit_2_saying(
        &[
            TPERF,
            "client",
            "--kernel",
            "--port",
            "tap:tpa0",
            "-s",
            "192.0.2.1:4040",
            "-t",
            "rr",
        ],
        "--port: for tpa's stack, not with --kernel",
    );
    exit_2_saying(
        &[TPERF, "client", "-s", "192.0.2.1:4040", "-t", "rr"],
        "--ip: tpa needs an address",
    );
    let mut argv = vec![TPERF, "client"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-s", "192.0.2.1:4040", "-t", "rr", "-c", "2", "-w", "2"]);
    exit_2_saying(&argv, "single- vs multi-queue");
    // No host path on tperf's ports: unmatched segments cannot go there.
    let mut argv = vec![TPERF, "client"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-s", "192.0.2.1:4040", "-t", "rr", "--unmatched", "host"]);
    exit_2_saying(
        &argv,
        "--unmatched host: unmatched segments to the host: this port has no host path",
    );
    // Nobody listens on the kernel's side: the SYN is answered by a reset.
    let mut argv = vec![TPERF, "client"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-s", "192.0.2.1:4040", "-t", "rr", "-d", "1"]);
    exit_2_saying(&argv, "cannot connect to the server at 192.0.2.1:4040");
}
