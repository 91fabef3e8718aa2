//! tperf over tpa's TCP on an AF_XDP port beside the kernel (issue 14):
//! two namespaces joined by a veth pair, tpa on the server end `vs`
//! (192.0.2.2, the kernel's address too). First tpa's client measures
//! the kernel's server in the other namespace, from fresh neighbour
//! tables: tpa's egress finds no neighbour, has the kernel resolve it and
//! learns its answer from the kernel's table; its active-open ports
//! (61000-65535) reach tpa through the XDP filter. Then the kernel's
//! client measures tpa's server, whose listening port reached the filter
//! when it listened. Every byte is checked by both sides.
//!
//! Run as root: `cargo test -p tpa-tperf --test tperf_af_xdp`.

mod common;

use common::{run, run_on, worker_lines, TPERF};
use tpa_tests::netns::Netns;

/// tpa's flags: AF_XDP on `vs`, the kernel's address.
const TPA: [&str; 4] = ["--port", "af_xdp:vs", "--ip", "192.0.2.2/24"];

/// Client and server namespaces joined by `vc` <-> `vs`
/// ([`Netns::beside_kernel_pair`]): (server, client).
fn pair() -> (Netns, Netns) {
    pair_with_queues(1)
}

/// [`pair`] with `queues` receive and transmit queues on both ends.
fn pair_with_queues(queues: u16) -> (Netns, Netns) {
    Netns::beside_kernel_pair_with_queues("tpx", queues)
}

#[test]
fn tperf_over_af_xdp_both_ways() {
    let (server, client) = pair();

    let kernel = client.spawn_until(
        &[
            TPERF,
            "server",
            "--kernel",
            "-l",
            "192.0.2.1:4040",
            "--runs",
            "1",
        ],
        "tpa-tperf server: listening on 192.0.2.1:4040 (kernel sockets, 1 worker)",
    );
    run(&server, "tpa", &TPA, "192.0.2.1:4040", "write");
    let said = kernel.finish();
    assert_eq!(said.matches("run ").count(), 1, "{said}");

    let mut argv = vec![TPERF, "server"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-l", "0.0.0.0:4040", "--runs", "2"]);
    let tpa = server.spawn_until(
        &argv,
        "tpa-tperf server: listening on 0.0.0.0:4040 (tpa on af_xdp:vs, 1 worker)",
    );
    run(&client, "kernel", &["--kernel"], "192.0.2.2:4040", "write");
    run(&client, "kernel", &["--kernel"], "192.0.2.2:4040", "rr");
    let said = tpa.finish();
    assert_eq!(said.matches("run ").count(), 2, "{said}");
}

/// `-w 2` over AF_XDP: tpa's server opens one AF_XDP socket on each of
/// `vs`'s two queues, one queue per worker, and the kernel's client's 16
/// connections, which its kernel spreads over the two queues by a random
/// per-connection hash (see tests/tests/af_xdp.rs,
/// `each_queue_has_its_own_socket`), are served by both workers (all 16
/// landing on one queue: a chance of 2^-15). Every byte is checked.
/// Request-response rather than a bulk write: a connection stays on its
/// queue only while the client's kernel keeps its hash, which it changes
/// after a retransmission timeout (see doc/guide/ports.md, "Queues"), and
/// a bulk transfer into a debug build on a loaded machine is where
/// timeouts come from.
#[test]
fn tperf_server_on_two_workers_over_af_xdp() {
    let (server, client) = pair_with_queues(2);
    let mut argv = vec![TPERF, "server"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-l", "0.0.0.0:4040", "--runs", "1", "-w", "2"]);
    let tpa = server.spawn_until(
        &argv,
        "tpa-tperf server: listening on 0.0.0.0:4040 (tpa on af_xdp:vs, 2 workers)",
    );
    run_on(
        &client,
        "kernel",
        &["--kernel"],
        "192.0.2.2:4040",
        "rr",
        &["-d", "500ms", "-c", "16"],
    );
    let said = tpa.finish();
    let workers = worker_lines(&said);
    assert_eq!(
        workers.iter().map(|w| w.0).collect::<Vec<_>>(),
        [0, 1],
        "{said}"
    );
    for (worker, conns, _, _) in &workers {
        assert!(*conns > 0, "worker {worker} served no connection: {said}");
    }
}
