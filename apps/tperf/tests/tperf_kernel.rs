//! The `tpa-tperf` command over the kernel's sockets, as a user runs it:
//! a server and a client process on the loopback of a network namespace
//! made here, every test for about a second; then a peer that corrupts one
//! byte each way, which tperf must report with its offset and fail on.
//!
//! (Here rather than in tests/tests: only a test of this package can name
//! the binary cargo built for it, `CARGO_BIN_EXE_tpa-tperf`, always
//! fresh.) Run as root: `cargo test -p tpa-tperf --test tperf_kernel`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Output;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tpa_tests::netns::{Background, Netns};

mod common;
use common::{u, TPERF};

const SERVER: &str = "127.0.0.1:4040";
/// The corrupting proxy's address.
const PROXY: &str = "127.0.0.1:4041";

/// A tperf server in `ns` on `addr`, with two workers and `extra`
/// arguments.
fn server_on(ns: &Netns, addr: &str, extra: &[&str]) -> Background {
    let mut argv = vec![TPERF, "server", "--kernel", "-l", addr, "-w", "2"];
    argv.extend_from_slice(extra);
    ns.spawn_until(
        &argv,
        &format!("tpa-tperf server: listening on {addr} (kernel sockets, 2 workers)"),
    )
}

/// A tperf server in `ns` on [`SERVER`], with two workers.
fn server(ns: &Netns) -> Background {
    server_on(ns, SERVER, &[])
}

/// Runs the client in `ns` with `args` after `client --json --kernel`;
/// returns its exit code and its JSON report.
fn client(ns: &Netns, args: &[&str]) -> (Option<i32>, Value, Output) {
    let mut argv = vec!["--kernel"];
    argv.extend_from_slice(args);
    common::client(ns, &argv)
}

fn f(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {report:#}"))
}

/// Runs `test` for a second over 3 connections in 2 workers against a
/// server on [`SERVER`], and checks the report.
fn run_test(test: &str) {
    run_test_on(test, SERVER);
}

/// Runs `test` for a second over 3 connections in 2 workers against a
/// server on `addr` and checks the report: passed, every byte checked on
/// both sides and counted the same by both, the figures of the test
/// present.
fn run_test_on(test: &str, addr: &str) {
    let ns = Netns::new("tperf");
    let _server = server_on(&ns, addr, &[]);
    let (code, r, _) = client(
        &ns,
        &["-s", addr, "-t", test, "-d", "1", "-c", "3", "-w", "2"],
    );
    assert_eq!(code, Some(0), "{test}: {r:#}");
    assert_eq!(r["ok"], Value::Bool(true), "{r:#}");
    assert_eq!(r["test"], test);
    assert_eq!(r["stack"], "kernel");
    assert_eq!(u(&r, "integrity_errors"), 0);
    assert_eq!(u(&r, "failed_connections"), 0);
    let sv = &r["server_view"];
    assert_eq!(u(sv, "integrity_errors"), 0, "{r:#}");
    assert_eq!(u(sv, "failed_connections"), 0, "{r:#}");
    assert_eq!(sv["incomplete"], Value::Bool(false));
    // What one side sent, the other received and checked.
    assert_eq!(u(sv, "bytes_received"), u(&r, "bytes_sent"), "{r:#}");
    assert_eq!(u(sv, "bytes_sent"), u(&r, "bytes_received"), "{r:#}");
    assert_eq!(u(&r, "connections_completed"), u(&r, "connections_opened"));
    assert!(f(&r, "seconds") >= 1.0);
    assert!(f(&r, "cpu_user_s") + f(&r, "cpu_system_s") > 0.0, "{r:#}");
    assert!(f(&r, "cpu_ns_per_byte") > 0.0);
    match test {
        "rr" | "crr" => {
            let txns = u(&r, "transactions");
            assert!(txns > 0, "{r:#}");
            assert_eq!(u(sv, "transactions"), txns, "every request answered once");
            assert_eq!(u(&r, "bytes_sent"), txns * 64, "64-byte requests");
            assert!(f(&r, "transactions_per_s") > 0.0);
            let (p50, p99, p999) = (
                f(&r, "latency_p50_us"),
                f(&r, "latency_p99_us"),
                f(&r, "latency_p999_us"),
            );
            assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{r:#}");
            assert!(p999 <= f(&r, "latency_max_us"));
            assert!(f(&r, "cpu_us_per_transaction") > 0.0);
            if test == "crr" {
                assert_eq!(u(&r, "connections_opened"), u(sv, "connections"));
                assert!(u(&r, "connections_opened") >= txns);
            } else {
                assert_eq!(u(&r, "connections_opened"), 3);
            }
        }
        _ => {
            assert_eq!(u(&r, "connections_opened"), 3);
            assert_eq!(u(&r, "transactions"), 0);
            assert!(r["latency_p50_us"].is_null());
            let (sent, received) = (u(&r, "bytes_sent"), u(&r, "bytes_received"));
            match test {
                "read" => assert!(sent == 0 && received > 0, "{r:#}"),
                "write" => assert!(sent > 0 && received == 0, "{r:#}"),
                _ => assert!(sent > 0 && received > 0, "{r:#}"),
            }
        }
    }
}

#[test]
fn read() {
    run_test("read");
}

#[test]
fn write() {
    run_test("write");
}

#[test]
fn rw() {
    run_test("rw");
}

#[test]
fn rr() {
    run_test("rr");
}

#[test]
fn crr() {
    run_test("crr");
}

#[test]
fn rr_over_ipv6() {
    run_test_on("rr", "[::1]:4040");
}

#[test]
fn a_stranger_is_turned_away_and_the_server_goes_on() {
    let ns = Netns::new("tperf");
    let _server = server(&ns);
    let mut stranger = ns
        .enter(|| TcpStream::connect(SERVER))
        .expect("connect to the server");
    stranger
        .write_all(b"GET / HTTP/1.1\r\nHost: tperf\r\nAccept: */*\r\n\r\n")
        .expect("write");
    let mut rest = Vec::new();
    // The server closes the connection: an end of stream, or a reset if
    // it closed with bytes unread; never an answer.
    match stranger.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "the server answered: {rest:?}"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
    // The next client is served; this time with the table for people, and
    // a line every 0.1 s.
    let out = ns.exec_output(&[
        TPERF, "client", "--kernel", "-s", SERVER, "-t", "rr", "-d", "0.3", "-i", "0.1",
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(
        table.starts_with("tpa-tperf client: rr to 127.0.0.1:4040"),
        "{table}"
    );
    assert!(table.contains(" transactions/s  mean latency "), "{table}");
    assert!(
        table.contains("\nresult                          ok: every byte checked both ways\n"),
        "{table}"
    );
}

/// Copies `from` to `to`, XOR-ing 0x01 into the byte at `flip` (counted
/// from the first byte of `from`); passes the end of the stream on.
fn pump(mut from: TcpStream, mut to: TcpStream, flip: Option<u64>) {
    let mut buf = vec![0; 64 << 10];
    let mut offset = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(at) = flip {
            if (offset..offset + n as u64).contains(&at) {
                buf[(at - offset) as usize] ^= 0x01;
            }
        }
        offset += n as u64;
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Runs `f` with a TCP proxy in `ns` from [`PROXY`] to [`SERVER`] for
/// `conns` connections, which flips one bit of byte `to_server` of what
/// each client sends, and of byte `to_client` of what the server sends
/// back.
fn with_corrupting_proxy<R>(
    ns: &Netns,
    conns: usize,
    to_server: Option<u64>,
    to_client: Option<u64>,
    f: impl FnOnce() -> R,
) -> R {
    let listener = ns
        .enter(|| TcpListener::bind(PROXY))
        .expect("bind the proxy");
    listener.set_nonblocking(true).expect("non-blocking");
    thread::scope(|scope| {
        scope.spawn(|| {
            // A bound on waiting for the client (not a timing assertion:
            // the client's own checks fail the test if it never came).
            let give_up = Instant::now() + Duration::from_secs(30);
            let mut accepted = 0;
            while accepted < conns && Instant::now() < give_up {
                let down = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(e) => panic!("proxy accept: {e}"),
                };
                accepted += 1;
                down.set_nonblocking(false).expect("blocking");
                // Sockets belong to the namespace of the thread making them.
                let up = ns
                    .enter(|| TcpStream::connect(SERVER))
                    .expect("proxy connect");
                let (down2, up2) = (
                    down.try_clone().expect("clone"),
                    up.try_clone().expect("clone"),
                );
                scope.spawn(move || pump(down, up, to_server));
                scope.spawn(move || pump(up2, down2, to_client));
            }
        });
        f()
    })
}

/// Byte 100 000 of a stream: past the control connection's few bytes, in
/// the first data connection's.
const FLIP_AT: u64 = 100_000;

#[test]
fn a_byte_corrupted_towards_the_client_is_reported_with_its_offset() {
    let ns = Netns::new("tperfbad");
    let _server = server(&ns);
    // The control connection and one data connection.
    let (code, r, _) = with_corrupting_proxy(&ns, 2, None, Some(FLIP_AT), || {
        client(&ns, &["-s", PROXY, "-t", "read", "-d", "1"])
    });
    assert_eq!(code, Some(1), "a corrupted run fails: {r:#}");
    assert_eq!(r["ok"], Value::Bool(false));
    assert_eq!(u(&r, "integrity_errors"), 1, "{r:#}");
    let first = &r["first_integrity_error"];
    assert_eq!(u(first, "connection"), 0);
    assert_eq!(u(first, "offset"), FLIP_AT, "{r:#}");
    assert_eq!(u(first, "got"), u(first, "expected") ^ 1);
    let problems = r["problems"].to_string();
    assert!(
        problems.contains(&format!("integrity error: byte at offset {FLIP_AT}")),
        "{problems}"
    );
}

#[test]
fn a_byte_corrupted_towards_the_server_is_reported_with_its_offset() {
    let ns = Netns::new("tperfbad");
    let server = server_on(&ns, SERVER, &["--runs", "1"]);
    let (code, r, _) = with_corrupting_proxy(&ns, 2, Some(FLIP_AT), None, || {
        client(&ns, &["-s", PROXY, "-t", "write", "-d", "1"])
    });
    assert_eq!(code, Some(1), "a corrupted run fails: {r:#}");
    assert_eq!(u(&r, "integrity_errors"), 0, "the client saw nothing wrong");
    let sv = &r["server_view"];
    assert_eq!(u(sv, "integrity_errors"), 1, "{r:#}");
    let first = &sv["first_integrity_error"];
    assert_eq!(u(first, "connection"), 0);
    // The data connection's first 40 bytes are its hello.
    assert_eq!(u(first, "offset"), FLIP_AT - 40, "{r:#}");
    assert_eq!(u(first, "got"), u(first, "expected") ^ 1);
    let problems = r["problems"].to_string();
    assert!(
        problems.contains(&format!(
            "the server found an integrity error: connection 0: byte at offset {}",
            FLIP_AT - 40
        )),
        "{problems}"
    );
    // The server, told to serve one run, said the same and ended.
    let said = server.finish();
    assert!(
        said.contains(&format!(
            ": write over 1 connections: received {} B, sent 0 B, 0 transactions, \
             1 integrity errors (first: connection 0: byte at offset {}",
            u(sv, "bytes_received"),
            FLIP_AT - 40
        )),
        "{said}"
    );
}

#[test]
fn without_an_address_or_a_server_it_says_why_and_exits_2() {
    let ns = Netns::new("tperfcli");
    // Without --kernel it is tpa's stack, which needs an address.
    let out = ns.exec_output(&[TPERF, "client", "-s", SERVER, "-t", "rr", "-d", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ip: tpa needs an address"), "{err}");
    let out = ns.exec_output(&[
        TPERF, "client", "--kernel", "-s", SERVER, "-t", "rr", "-d", "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot connect to the server at {SERVER}")),
        "{err}"
    );
}

#[test]
fn congestion_pins_both_ends_algorithm_and_the_report_names_it() {
    let ns = Netns::new("tperfcc");
    // reno: in every kernel, and no namespace's default here (bbr or
    // cubic), so only the option makes it.
    let _server = ns.spawn_until(
        &[
            TPERF,
            "server",
            "--kernel",
            "--congestion",
            "reno",
            "-l",
            SERVER,
        ],
        &format!("tpa-tperf server: listening on {SERVER} (kernel sockets, reno, 1 worker)"),
    );
    let (code, r, out) = client(
        &ns,
        &[
            "--congestion",
            "reno",
            "-s",
            SERVER,
            "-t",
            "rr",
            "-d",
            "0.3",
        ],
    );
    assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(r["congestion"], "reno", "{r:#}");
    assert!(f(&r, "transactions") > 0.0, "{r:#}");
    // Without the option the report names the namespace's default.
    let (code, r, _) = client(&ns, &["-s", SERVER, "-t", "rr", "-d", "0.2"]);
    assert_eq!(code, Some(0));
    let default = ns.exec_output(&["sysctl", "-n", "net.ipv4.tcp_congestion_control"]);
    let default = String::from_utf8_lossy(&default.stdout).trim().to_owned();
    assert_eq!(r["congestion"], default.as_str(), "{r:#}");
    // A name the kernel lacks: the run does not start, and says why.
    let out = ns.exec_output(&[
        TPERF,
        "client",
        "--kernel",
        "--congestion",
        "no-such-cc",
        "-s",
        SERVER,
        "-t",
        "rr",
        "-d",
        "0.2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("congestion control no-such-cc"), "{err}");
    // And on tpa's stack the flag is refused, pointing to tpa's knob.
    let out = ns.exec_output(&[
        TPERF,
        "client",
        "--congestion",
        "cubic",
        "--ip",
        "10.0.0.2/24",
        "-s",
        SERVER,
        "-t",
        "rr",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TPA_TCP_CONGESTION"), "{err}");
}
