//! tperf over tpa's TCP against tperf over the kernel's, through a TAP
//! device in a network namespace made here (tpa's side 192.0.2.2 and
//! 2001:db8::2, the kernel's 192.0.2.1 and 2001:db8::1): a tpa server
//! with a kernel client, then a kernel server with a tpa client; `rr` and
//! `write` for a second each (IPv4 and IPv6), every byte checked by both
//! sides and counted alike; then tpa on two workers over a multi-queue
//! TAP, as a server and as a client of every test; and two tpa clients
//! in a row through the kernel's TIME_WAIT.
//!
//! (Here rather than in tests/tests: only a test of this package can name
//! the binary cargo built for it.) Run as root: `cargo test -p tpa-tperf
//! --test tperf_tpa`.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{both_workers_served, run, run_on, u, TPA, TPERF};
use serde_json::Value;
use tpa_tests::netns::Netns;
use tpa_tests::nstat::Counters;

/// tpa on two workers (a multi-queue TAP, steered by tpa's program):
/// its server measured by the kernel's client (rr and crr, 4 connections
/// in 2 threads), then its client measuring the kernel's server in every
/// test. Every byte is checked on both sides; both workers must have
/// carried connections, and worker 1 must have learned the kernel's MAC
/// address from an answer that landed on queue 0.
#[test]
fn tpa_on_two_workers_against_the_kernel() {
    let ns = Netns::with_multiqueue_tap("tptpa-w");
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
    let ns = Netns::with_tap("tptpa-s");
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
    let ns = Netns::with_tap("tptpa-c");
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
    let ns = Netns::with_tap("tptpa-e");
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

/// Two tpa client processes one after the other, each crr for half a
/// second to the kernel's server from the same address and a range of 64
/// local ports, so the second reuses 4-tuples the kernel still holds in
/// TIME_WAIT from the first. On the host's key (the same
/// `$TPA_RUN_DIR/tcp-host.key` for both) and the boot clock, the second
/// process's timestamps follow on from the first's and the kernel lets
/// every SYN in: `TcpExtPAWSTimewait` stays 0. Then a third client whose
/// run directory cannot be made falls back to a key of its own (saying
/// so) and, its timestamps unrelated to the second's, has SYNs dropped
/// there: the counter the first two left alone is the one that moves.
#[test]
fn a_later_client_process_gets_through_the_earlier_ones_time_wait() {
    let ns = Netns::with_tap("tptpa-tw");
    let run_dir = std::env::temp_dir().join(format!("tpa-hostkey-tw-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    /// Removes the scratch run directory however the test ends.
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _scratch = Scratch(run_dir.clone());
    let server = ns.spawn_until(
        &[
            TPERF,
            "server",
            "--kernel",
            "-l",
            "0.0.0.0:4040",
            "--runs",
            "3",
        ],
        "tpa-tperf server: listening on 0.0.0.0:4040 (kernel sockets, 1 worker)",
    );
    let crr = |dir: &std::path::Path| {
        let mut argv = vec![TPERF, "client", "--json"];
        argv.extend_from_slice(&TPA);
        argv.extend_from_slice(&["-s", "192.0.2.1:4040", "-t", "crr", "-d", "500ms"]);
        let before = Counters::read(&ns);
        let out = ns
            .command(&argv)
            .env("TPA_RUN_DIR", dir)
            .env("TPA_TCP_LOCAL_PORT_RANGE", "40000-40063")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run tpa-tperf client");
        let kernel = Counters::read(&ns).delta(&before);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{stdout}\n{stderr}"));
        let moved: Vec<_> = kernel.all().iter().filter(|(_, n)| **n != 0).collect();
        let ctx = format!("{report:#}\nstderr: {stderr}\nkernel: {moved:?}");
        assert_eq!(u(&report, "integrity_errors"), 0, "{ctx}");
        let opened = u(&report, "connections_opened");
        let passed = out.status.code() == Some(0);
        (
            passed,
            kernel.get("TcpExtPAWSTimewait"),
            opened,
            stderr,
            ctx,
        )
    };
    for run in ["first", "second"] {
        let (passed, paws, opened, stderr, ctx) = crr(&run_dir);
        assert!(passed, "{run} run: {ctx}");
        assert_eq!(paws, 0, "{run} run: SYNs dropped by TIME_WAIT: {ctx}");
        // More connections than ports: 4-tuples were used again (the
        // second run's, from the first run's TIME_WAIT).
        assert!(opened > 64, "{run} run: {ctx}");
        assert!(!stderr.contains("TCP host key"), "{run} run: {ctx}");
    }
    let key = run_dir.join("tcp-host.key");
    let meta = std::fs::metadata(&key).expect("the host key file");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta.len(), 32);
    // /proc takes no new directories: the host key cannot be made.
    // (Its run may end before a stalled connection's first transaction:
    // only the drop is checked.)
    let (_, paws, _, stderr, ctx) = crr(std::path::Path::new("/proc/tpa-no-such-dir"));
    assert!(
        stderr.contains("TCP host key") && stderr.contains("/proc/tpa-no-such-dir"),
        "{ctx}"
    );
    assert!(paws > 0, "a key of its own, yet no SYN dropped: {ctx}");
    let said = server.finish();
    assert_eq!(said.matches("run ").count(), 3, "{said}");
}
