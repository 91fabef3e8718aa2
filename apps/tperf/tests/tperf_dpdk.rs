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
        "-l",
        "0",
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "-m",
        "256",
        "--log-level",
        "*:error",
        "--vdev",
        "net_tap0,iface=tpa0",
        "--file-prefix",
        prefix,
    ]
    .iter()
    .map(|s| s.to_string())
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

    let argv = with_eal(
        &[TPERF, "server"],
        &tpa,
        &["-l", "0.0.0.0:4040", "--runs", "2", "-w", "2"],
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
