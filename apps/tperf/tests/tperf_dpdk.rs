//! tperf over tpa's TCP on a DPDK port with two workers, against tperf
//! over the kernel's: a `net_tap` vdev with two queue pairs attached to a
//! persistent multi-queue TAP in a network namespace made here (tpa's side
//! 192.0.2.2, the kernel's 192.0.2.1). The kernel's side picks each
//! frame's queue with its own hash (no rte_flow RSS here), so a frame on
//! the wrong worker's queue is handed over to the right one
//! (`DpdkDevice::worker_ports`) and active opens pick ports that tpa's
//! symmetric hash gives their own worker. tpa's server is measured by the
//! kernel's client (rr, crr), then tpa's client measures the kernel's
//! server in every test, and rr over IPv6; every byte is checked on both
//! sides. Each side asks for a flow rule per connection (`--flow-marks`),
//! which net_tap refuses: once per worker, every connection then found
//! by its hash.
//!
//! Run as root: `cargo test -p tpa-tperf --features dpdk --test
//! tperf_dpdk`.

#![cfg(feature = "dpdk")]

mod common;

use common::{both_workers_served, handover_lines, run_on, worker_lines, TPERF};
use tpa_tests::netns::Netns;
use tpa_tests::nstat::Counters;

/// Removes the DPDK runtime directory of `--file-prefix` on drop.
struct RuntimeDir(String);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.0));
    }
}

/// tpa's flags: a `net_tap` vdev on the namespace's `tpa0`, a flow rule
/// per connection asked for, the EAL without hugepages or PCI, its files
/// under `prefix`.
fn tpa_on_dpdk(prefix: &str) -> Vec<String> {
    [
        "--port",
        "dpdk:net_tap0",
        "--ip",
        "192.0.2.2/24",
        "--ip",
        "2001:db8::2/64",
        "--flow-marks",
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(tpa_tests::eal::vdev_args("net_tap0,iface=tpa0", prefix))
    .collect()
}

/// Checks the `queue N: …` lines: one per worker, and no frame dropped
/// for a full inbox; returns the frames handed over in all.
fn handed_over(said: &str, what: &str) -> u64 {
    let queues = handover_lines(said);
    assert_eq!(
        queues.iter().map(|q| q.0).collect::<Vec<_>>(),
        [0, 1],
        "{what}: {said}"
    );
    for (queue, _, _, dropped) in &queues {
        assert_eq!(*dropped, 0, "{what}: queue {queue} dropped: {said}");
    }
    queues.iter().map(|q| q.1).sum()
}

/// What net_tap says of a connection's flow rule (it has rte_flow, but no
/// MARK action).
const REFUSED: &str = "0 rules installed, 0 removed, 1 refused (the device: rule 0: \
                       action not supported (Operation not supported)), ";

/// Checks each worker's `queue N: flow marks: …` line: the device refused
/// the first connection's rule, once, and every connection of the worker
/// went on unmarked (found by its 4-tuple's hash).
fn marks_refused_cleanly(said: &str, what: &str) {
    let workers = worker_lines(said);
    assert_eq!(workers.len(), 2, "{what}: {said}");
    for (worker, conns, _, _) in workers {
        let head = format!("queue {worker}: flow marks: ");
        let line = said
            .lines()
            .find_map(|l| l.strip_prefix(&head))
            .unwrap_or_else(|| panic!("{what}: no flow marks line for {worker}: {said}"));
        let unmarked = line
            .strip_prefix(REFUSED)
            .and_then(|rest| rest.strip_suffix(" connections unmarked"))
            .unwrap_or_else(|| panic!("{what}: worker {worker}: {line}"));
        assert_eq!(
            unmarked,
            conns.to_string(),
            "{what}: worker {worker}: {line}"
        );
    }
}

/// Splits `argv` at `--`: tperf's flags, then the EAL's, as `tperf`
/// takes them (`… -- EAL`).
fn with_eal<'a>(before: &[&'a str], tpa: &'a [String], after: &[&'a str]) -> Vec<&'a str> {
    let cut = tpa.iter().position(|a| a == "--").expect("--");
    let mut argv = before.to_vec();
    argv.extend(tpa[..cut].iter().map(String::as_str));
    argv.extend_from_slice(after);
    argv.extend(tpa[cut..].iter().map(String::as_str));
    argv
}

/// tpa on two DPDK workers: as a server (the kernel's client opens
/// hundreds of connections in crr: their SYNs land on the queue the
/// kernel picks, about half of them on the other worker's, handed over),
/// then as a client of every test. Both workers must have carried
/// connections and heard the kernel's neighbor answers; every run passes
/// with every byte checked; no frame is dropped on the way between
/// workers; the server's process exits cleanly only with every mbuf back
/// in its pools.
#[test]
fn tpa_on_two_dpdk_workers_against_the_kernel() {
    let ns: Netns = Netns::with_multiqueue_tap("tpdpdk");
    // net_tap takes the interface down when its process closes the port,
    // and the kernel drops an interface's IPv6 addresses when it goes
    // down, unless told to keep them.
    ns.try_set_sysctl("net.ipv6.conf.tpa0.keep_addr_on_down", "1")
        .expect("keep IPv6 addresses over net_tap's restarts");
    let prefix = ns.name().to_owned();
    let _runtime_dir = RuntimeDir(prefix.clone());
    let tpa = tpa_on_dpdk(&prefix);

    let run_dir = std::env::temp_dir().join(format!("tpa-dpdk-ops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let env_dir = format!("TPA_RUN_DIR={}", run_dir.display());
    let argv = with_eal(
        &["env", &env_dir, TPERF, "server"],
        &tpa,
        &[
            "-l",
            "0.0.0.0:4040",
            "--runs",
            "2",
            "-w",
            "2",
            "--id",
            "dpdk",
        ],
    );
    let server = ns.spawn_until(
        &argv,
        "tpa-tperf server: listening on 0.0.0.0:4040 (tpa on dpdk:net_tap0, 2 workers)",
    );
    let more = ["-d", "500ms", "-c", "4", "-w", "2"];
    for test in ["rr", "crr"] {
        run_on(&ns, "kernel", &["--kernel"], "192.0.2.2:4040", test, &more);
    }
    let (status, said) = server.wait_output();
    assert!(status.success(), "tpa's server failed ({status}): {said}");
    assert_eq!(said.matches("run ").count(), 2, "{said}");
    both_workers_served(&said, "tpa's server");
    marks_refused_cleanly(&said, "tpa's server");
    assert!(
        handed_over(&said, "tpa's server") > 0,
        "no SYN landed on the other worker's queue in hundreds: {said}"
    );
    // The device's counters in each worker's last snapshot (`tpactl
    // worker`): what net_tap received and sent.
    let out = std::process::Command::new(std::path::Path::new(TPERF).with_file_name("tpactl"))
        .arg("--run-dir")
        .arg(&run_dir)
        .args(["--id", "dpdk", "worker", "--json"])
        .output()
        .expect("run tpactl (cargo build -p tpa-tpactl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tpactl's JSON");
    for worker in w.as_array().expect("workers") {
        let counter = |name: &str| {
            worker["port"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c["name"] == name))
                .and_then(|c| c["value"].as_u64())
                .unwrap_or_else(|| panic!("{name} in {worker:#}"))
        };
        assert!(counter("device_rx_packets") > 0, "{worker:#}");
        assert!(
            counter("device_tx_bytes") > counter("device_tx_packets"),
            "{worker:#}"
        );
    }
    // Each queue's mempool in `tpactl mem` (worker 0's last snapshot).
    let out = std::process::Command::new(std::path::Path::new(TPERF).with_file_name("tpactl"))
        .arg("--run-dir")
        .arg(&run_dir)
        .args(["--id", "dpdk", "mem", "--json"])
        .output()
        .expect("run tpactl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mem: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tpactl's JSON");
    let pools = mem.as_array().expect("pools");
    assert_eq!(pools.len(), 2, "a mempool per queue: {mem:#}");
    for p in pools {
        assert!(p["capacity"].as_u64().unwrap() > 0, "{mem:#}");
        assert!(p["buffer_bytes"].as_u64().unwrap() >= 2048, "{mem:#}");
    }
    std::fs::remove_dir_all(&run_dir).unwrap();

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
            "6",
        ],
        "tpa-tperf server: listening on [::]:4040 (kernel sockets, 2 workers)",
    );
    for test in ["read", "write", "rw", "rr", "crr"] {
        let client: Vec<&str> = tpa.iter().map(String::as_str).collect();
        let said = run_on(&ns, "tpa", &client, "192.0.2.1:4040", test, &more);
        both_workers_served(&said, test);
        handed_over(&said, test);
        marks_refused_cleanly(&said, test);
    }
    // IPv6: the kernel's neighbor advertisement lands on the worker its
    // addresses hash to, which shares it with the other.
    let client: Vec<&str> = tpa.iter().map(String::as_str).collect();
    let said = run_on(&ns, "tpa", &client, "[2001:db8::1]:4040", "rr", &more);
    let workers = worker_lines(&said);
    assert_eq!(workers.len(), 2, "{said}");
    for (worker, conns, _, _) in &workers {
        assert!(
            *conns > 0,
            "IPv6: worker {worker} had no connection: {said}"
        );
    }
    let sharer = usize::from(workers[0].2 == 0);
    assert!(
        workers[sharer].2 > 0 && workers[1 - sharer].3 > 0,
        "IPv6: no neighbor answer shared between the workers: {said}"
    );
    handed_over(&said, "rr over IPv6");
    marks_refused_cleanly(&said, "rr over IPv6");
    let said = server.finish();
    assert_eq!(said.matches("run ").count(), 6, "{said}");
}

/// The `queue N: tcp: …` line of each worker: (segments sent,
/// super-segments, their segments, retransmitted), summed.
fn tcp_sent(said: &str, what: &str) -> (u64, u64, u64, u64) {
    let lines: Vec<Vec<u64>> = said
        .lines()
        .filter(|l| l.contains(": tcp: ") && l.contains("super-segments"))
        .map(|l| {
            let rest = l.split_once("queue ").expect("queue N").1;
            rest.split(|c: char| !c.is_ascii_digit())
                .filter(|w| !w.is_empty())
                .map(|w| w.parse().expect("a count"))
                .collect()
        })
        .collect();
    assert!(!lines.is_empty(), "{what}: no tcp line: {said}");
    lines.iter().fold((0, 0, 0, 0), |a, n| {
        assert_eq!(n.len(), 5, "{what}: {n:?}");
        (a.0 + n[1], a.1 + n[2], a.2 + n[3], a.3 + n[4])
    })
}

/// tpa's client over `tpa` runs `rw` for half a second against the
/// kernel's server at `server`, its TCP super-segments on or off
/// (`TPA_TCP_TSO`): every byte checked on both sides, over a megabyte
/// each way. Returns the client's standard error and the bytes it sent.
fn rw_with_tso(ns: &Netns, tpa: &[String], server: &str, tso: bool) -> (String, u64) {
    let cut = tpa.iter().position(|a| a == "--").expect("--");
    let mut argv = vec![TPERF, "client", "--json"];
    argv.extend(tpa[..cut].iter().map(String::as_str));
    argv.extend_from_slice(&["-s", server, "-t", "rw", "-d", "500ms"]);
    argv.extend(tpa[cut..].iter().map(String::as_str));
    let out = ns
        .command(&argv)
        .env("TPA_TCP_TSO", if tso { "true" } else { "false" })
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run tperf");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let ctx = format!("{server} TSO {tso}: {stdout}\nstderr: {said}");
    assert!(out.status.success(), "{ctx}");
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).expect(&ctx);
    let sv = &r["server_view"];
    assert_eq!(r["ok"], serde_json::Value::Bool(true), "{ctx}");
    for (side, key) in [
        (&r, "integrity_errors"),
        (&r, "failed_connections"),
        (sv, "integrity_errors"),
        (sv, "failed_connections"),
    ] {
        assert_eq!(side[key].as_u64(), Some(0), "{key}: {ctx}");
    }
    let (sent, received) = (r["bytes_sent"].as_u64(), r["bytes_received"].as_u64());
    assert_eq!(sv["bytes_received"].as_u64(), sent, "{ctx}");
    assert_eq!(sv["bytes_sent"].as_u64(), received, "{ctx}");
    for n in [sent, received] {
        assert!(n.unwrap_or(0) >= 1 << 20, "under a megabyte one way: {ctx}");
    }
    (said, sent.unwrap_or(0))
}

/// TSO through net_tap (its librte_gso cuts tpa's TCP/IPv4
/// super-segments; TCP/IPv6 ones the port cuts in software): tpa's client
/// moves data both ways at once (`rw`, every byte checked on both sides,
/// well over a megabyte each way) with the kernel's server over IPv4 and
/// IPv6, with TCP super-segments on and then off (`TPA_TCP_TSO=false`,
/// every segment built one by one). With them on, tpa sent
/// super-segments; off, none. Every time the kernel got no segment longer
/// than the MTU allows and its counters show a clean transfer: no reset,
/// no bad segment or checksum, nothing out of order, no loss recovery, at
/// most tail loss probes retransmitted.
#[test]
fn tso_through_net_tap_against_the_kernel() {
    let ns: Netns = Netns::with_multiqueue_tap("tpdtso");
    ns.try_set_sysctl("net.ipv6.conf.tpa0.keep_addr_on_down", "1")
        .expect("keep IPv6 addresses over net_tap's restarts");
    let prefix = ns.name().to_owned();
    let _runtime_dir = RuntimeDir(prefix.clone());
    let tpa: Vec<String> = tpa_on_dpdk(&prefix)
        .into_iter()
        .filter(|a| a != "--flow-marks")
        .collect();
    let server = ns.spawn_until(
        &[
            TPERF,
            "server",
            "--kernel",
            "-l",
            "[::]:4040",
            "--runs",
            "4",
        ],
        "tpa-tperf server: listening on [::]:4040 (kernel sockets, 1 worker)",
    );
    for (to, tso) in [
        ("192.0.2.1:4040", true),
        ("192.0.2.1:4040", false),
        ("[2001:db8::1]:4040", true),
        ("[2001:db8::1]:4040", false),
    ] {
        let what = format!("{to} TSO {}", if tso { "on" } else { "off" });
        let before = Counters::read(&ns);
        let (said, sent) = rw_with_tso(&ns, &tpa, to, tso);
        let seen = Counters::read(&ns).delta(&before);
        let (segs, frames, segments, retransmitted) = tcp_sent(&said, &what);
        let s = seen.summary();
        println!(
            "{what}: tpa sent {sent} B in {segs} segments, {frames} super-segments of \
             {segments}, {retransmitted} retransmitted; kernel: {s}"
        );
        if tso {
            assert!(frames > 0, "{what}: no super-segment: {said}");
            assert!(segments >= 2 * frames, "{what}: {said}");
        } else {
            assert_eq!((frames, segments), (0, 0), "{what}: {said}");
        }
        // An MTU of 1500 carries at most 1460 bytes of TCP payload.
        assert!(
            seen.get("TcpInSegs") * 1460 >= sent,
            "{what}: the kernel got segments longer than the MTU: {s}"
        );
        for name in [
            "TcpOutRsts",
            "TcpEstabResets",
            "TcpInErrs",
            "TcpInCsumErrors",
            "TcpExtTCPFastRetrans",
            "TcpExtTCPSackRecovery",
            "TcpExtTCPTimeouts",
            "TcpExtTCPOFOQueue",
        ] {
            assert_eq!(seen.get(name), 0, "{what}: {name}: {s}");
        }
        assert!(
            seen.get("TcpRetransSegs")
                <= seen.get("TcpExtTCPLossProbes") + seen.get("TcpExtTCPSynRetrans"),
            "{what}: the kernel retransmitted more than probes: {s}"
        );
    }
    let said = server.finish();
    assert_eq!(said.matches("run ").count(), 4, "{said}");
}
