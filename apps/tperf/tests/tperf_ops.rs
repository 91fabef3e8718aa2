//! Operability against a live tperf: a tpa server on a TAP device in a
//! namespace made here, measured by the kernel's client, looked into while
//! it runs by `tpactl` (sockets, worker counters, runtime knobs, traces)
//! and by its Prometheus endpoint, parsed by the reference parser
//! (`python3-prometheus-client`); then a server killed with SIGKILL
//! mid-run, whose stats `tpactl` still reads.
//!
//! Run as root: `cargo test -p tpa-tperf --test tperf_ops`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TPA, TPERF};
use serde_json::Value;
use tpa_tests::netns::Netns;
use tpa_tests::ops::{assert_neighbour, eventually, parse_prometheus, sample, scrape, Tpactl};

/// A fresh run directory for this test.
fn run_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tpa-ops-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `tpactl --run-dir DIR ARGS`: its success, standard output and error.
fn tpactl(dir: &Path, args: &[&str]) -> (bool, String, String) {
    Tpactl::next_to(TPERF, dir).run(args)
}

/// `tpactl ... --json`, parsed; fails the test with tpactl's words.
fn tpactl_json(dir: &Path, args: &[&str]) -> Value {
    Tpactl::next_to(TPERF, dir).json(args)
}

/// `tpactl ... --json`, parsed, or `None` when it fails (while an
/// instance starts).
fn try_tpactl_json(dir: &Path, args: &[&str]) -> Option<Value> {
    Tpactl::next_to(TPERF, dir).try_json(args)
}

/// Worker 0's figure `key` of its loop, per `tpactl worker --json`.
fn loop_figure(dir: &Path, id: &str, key: &str) -> u64 {
    let w = tpactl_json(dir, &["--id", id, "worker"]);
    w[0]["loop"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {w:#}"))
}

/// Starts a kernel tperf client in `ns` against the tpa server: `test`
/// for `secs` seconds over `conns` connections.
fn kernel_client(ns: &Netns, test: &str, secs: &str, conns: &str) -> std::process::Child {
    ns.command(&[
        TPERF,
        "client",
        "--kernel",
        "-s",
        "192.0.2.2:4040",
        "-t",
        test,
        "-d",
        secs,
        "-c",
        conns,
        "--json",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start the kernel client")
}

#[test]
fn tpactl_and_prometheus_look_into_a_live_tperf() {
    let ns = Netns::with_tap("tpops");
    let dir = run_dir("live");
    let env_dir = format!("TPA_RUN_DIR={}", dir.display());
    // The latency stages on: `sk -v` shows them.
    let mut argv = vec![
        "env",
        &env_dir,
        "TPA_TCP_MEASURE_LATENCY=true",
        TPERF,
        "server",
    ];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&[
        "-l",
        "0.0.0.0:4040",
        "--runs",
        "2",
        "--id",
        "srv",
        "--metrics",
        "127.0.0.1:9464",
    ]);
    let server = ns.spawn_until(
        &argv,
        "tpa-tperf server: listening on 0.0.0.0:4040 (tpa on tap:tpa0, 1 worker)",
    );
    // The instance answers on its control socket; trace is off.
    let (ok, listed, err) = tpactl(&dir, &["list"]);
    assert!(ok, "{err}");
    assert!(
        listed.contains("srv") && listed.contains("running"),
        "{listed}"
    );
    let (ok, cfg, err) = tpactl(&dir, &["--id", "srv", "cfg"]);
    assert!(ok, "{err}");
    assert!(cfg.contains("trace = off"), "{cfg}");
    assert!(cfg.contains("stats.interval_ms = 100"), "{cfg}");
    // A knob that does not exist, or a bad value: refused, named.
    let (ok, _, err) = tpactl(&dir, &["--id", "srv", "cfg", "trace", "maybe"]);
    assert!(
        !ok && err.contains("trace: maybe is not on or off"),
        "{err}"
    );
    let (ok, _, err) = tpactl(&dir, &["--id", "srv", "cfg", "tracing", "on"]);
    assert!(!ok && err.contains("the nearest is trace"), "{err}");
    // Trace on, at runtime: the worker applies it at its next publish,
    // so the connections of the run below are traced.
    let (ok, out, err) = tpactl(&dir, &["--id", "srv", "cfg", "trace", "on"]);
    assert!(ok && out.trim() == "trace = on", "{out}{err}");
    let (ok, out, err) = tpactl(&dir, &["--id", "srv", "cfg", "stats.interval_ms", "50"]);
    assert!(ok && out.trim() == "stats.interval_ms = 50", "{out}{err}");
    let (ok, out, err) = tpactl(&dir, &["--id", "srv", "cfg", "log", "debug"]);
    assert!(ok && out.trim() == "log = debug", "{out}{err}");
    // The worker picks the interval up within one (old) interval.
    std::thread::sleep(Duration::from_millis(300));

    let rx_before = loop_figure(&dir, "srv", "rx_packets");
    let client = kernel_client(&ns, "rr", "3", "2");
    // sk: the run's two data connections and its control connection,
    // established, and the listener.
    let socks = eventually("three established connections in tpactl sk", || {
        let v = try_tpactl_json(&dir, &["--id", "srv", "sk"])?;
        let established = v
            .as_array()?
            .iter()
            .filter(|s| s["state"] == "ESTABLISHED")
            .count();
        (established == 3).then_some(v)
    });
    let socks = socks.as_array().unwrap();
    assert!(
        socks
            .iter()
            .any(|s| s["state"] == "LISTEN" && s["local"] == "0.0.0.0:4040"),
        "{socks:#?}"
    );
    for s in socks.iter().filter(|s| s["state"] == "ESTABLISHED") {
        assert_eq!(s["local"], "192.0.2.2:4040", "{s:#}");
        assert!(
            s["remote"].as_str().unwrap().starts_with("192.0.2.1:"),
            "{s:#}"
        );
        assert!(s["cwnd"].as_u64().unwrap() > 0, "{s:#}");
    }
    // Counters move while the run goes on.
    let rx_mid = loop_figure(&dir, "srv", "rx_packets");
    let bytes_mid: u64 = eventually("data received on a connection", || {
        let v = try_tpactl_json(&dir, &["--id", "srv", "sk"])?;
        let sum: u64 = v
            .as_array()?
            .iter()
            .filter_map(|s| s["bytes_received"].as_u64())
            .sum();
        (sum > 0).then_some(sum)
    });
    std::thread::sleep(Duration::from_millis(400));
    let rx_later = loop_figure(&dir, "srv", "rx_packets");
    assert!(
        rx_before < rx_mid && rx_mid < rx_later,
        "{rx_before} {rx_mid} {rx_later}"
    );
    // The latency stages of a connection that read and wrote: every
    // stage has samples, its mean between its extremes.
    let lat = eventually("latency stages in tpactl sk", || {
        let v = try_tpactl_json(&dir, &["--id", "srv", "sk"])?;
        v.as_array()?
            .iter()
            .find(|s| {
                ["read", "write_sent", "write_acked"].iter().all(|st| {
                    s[format!("{st}_latency_count").as_str()]
                        .as_u64()
                        .is_some_and(|n| n > 0)
                })
            })
            .cloned()
    });
    for st in ["read", "write_sent", "write_acked"] {
        let f = |k: &str| lat[format!("{st}_latency_{k}").as_str()].as_u64().unwrap();
        assert!(
            f("min_ns") <= f("avg_ns") && f("avg_ns") <= f("max_ns"),
            "{lat:#}"
        );
    }
    // The people's views print.
    let (ok, out, err) = tpactl(&dir, &["--id", "srv", "sk", "-v"]);
    assert!(
        ok && out.contains("ESTABLISHED")
            && out.contains("bytes_received")
            && out.contains("read_latency_avg_ms")
            && out.contains("write_acked_latency_max_ms"),
        "{out}{err}"
    );
    let (ok, out, err) = tpactl(&dir, &["--id", "srv", "worker"]);
    assert!(
        ok && out.contains("stage") && out.contains("busy"),
        "{out}{err}"
    );
    let (ok, out, err) = tpactl(&dir, &["--id", "srv", "ss", "--once", "--interval", "0.3"]);
    assert!(
        ok && out.contains("rx pkt/s") && out.contains("192.0.2.1:"),
        "{out}{err}"
    );
    let ss = tpactl_json(&dir, &["--id", "srv", "ss", "--once", "--interval", "0.3"]);
    assert!(ss[0]["rx_packets_per_s"].as_f64().unwrap() > 0.0, "{ss:#}");
    let mem = tpactl_json(&dir, &["--id", "srv", "mem"]);
    assert_eq!(mem[0]["name"], "tperf", "{mem:#}");
    assert!(mem[0]["in_use"].as_u64().unwrap() > 0, "{mem:#}");
    let neigh = tpactl_json(&dir, &["--id", "srv", "neigh"]);
    assert_neighbour(&neigh, "192.0.2.1");

    // Prometheus: parsed by the reference parser, between two tpactl
    // readings of the same counter.
    let before = loop_figure(&dir, "srv", "rx_packets");
    let text = scrape(&ns, "127.0.0.1:9464");
    let after = loop_figure(&dir, "srv", "rx_packets");
    let samples = parse_prometheus(&text);
    let rx = sample(&samples, "tpa_worker_rx_packets_total", &[]).expect("rx packets");
    assert!(
        before as f64 <= rx && rx <= after as f64,
        "tpactl {before}..{after}, Prometheus {rx}"
    );
    assert!(sample(&samples, "tpa_worker_busy_seconds_total", &[]).unwrap() > 0.0);
    assert!(sample(&samples, "tpa_tcp_passive_opens_total", &[]).unwrap() >= 3.0);
    assert!(
        sample(
            &samples,
            "tpa_stage_packets_total",
            &[("verdict", "consumed")]
        )
        .is_some(),
        "{text}"
    );
    // Stages nested in the Ethernet front: the IPv4 TCP input passed
    // every segment of the run on; ARP answered the client's request.
    let tcp_in = sample(
        &samples,
        "tpa_stage_packets_total",
        &[("stage", "front.tcp_input_v4"), ("verdict", "consumed")],
    );
    assert!(tcp_in.is_some_and(|n| n > 0.0), "{text}");
    let w = tpactl_json(&dir, &["--id", "srv", "worker"]);
    let stage = |name: &str| {
        w[0]["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {w:#}"))
    };
    assert!(
        stage("front.arp")["transmitted"].as_u64().unwrap() >= 1,
        "{w:#}"
    );
    assert!(
        stage("front.tcp_input_v4")["consumed"].as_u64().unwrap() > 0,
        "{w:#}"
    );
    assert_eq!(stage("front.tcp_input_v6")["consumed"], 0, "{w:#}");
    // The TAP queue's own counters: what it read and wrote.
    let port = |name: &str| {
        w[0]["port"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_u64())
            .unwrap_or_else(|| panic!("port {name} in {w:#}"))
    };
    assert!(
        port("rx_packets") > 0 && port("rx_bytes") > port("rx_packets"),
        "{w:#}"
    );
    assert!(
        port("tx_packets") > 0 && port("tx_bytes") > port("tx_packets"),
        "{w:#}"
    );
    assert!(
        sample(&samples, "tpa_port_rx_packets_total", &[]).is_some_and(|n| n > 0.0),
        "{text}"
    );
    assert_eq!(
        sample(&samples, "tpa_tcp_sockets", &[("state", "ESTABLISHED")]),
        Some(3.0),
        "{text}"
    );
    assert!(sample(&samples, "tpa_pool_buffers", &[("pool", "tperf")]).unwrap() > 0.0);
    assert!(
        text.contains("# TYPE tpa_worker_rx_packets_total counter"),
        "{text}"
    );

    let out = client.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Tracing was switched on before the run: its connections' rings are
    // in the instance's directory.
    let (ok, st, err) = tpactl(&dir, &["--id", "srv", "st", "--all"]);
    assert!(ok, "{err}");
    assert!(st.contains("192.0.2.2:4040 -> 192.0.2.1:"), "{st}");
    assert!(st.contains("ESTABLISHED"), "{st}");
    let _ = bytes_mid;

    // The second run, then the server ends: its files stay (a named id),
    // its last snapshot says so, and the knobs are gone with it.
    let client = kernel_client(&ns, "rr", "1", "1");
    assert!(client.wait_with_output().unwrap().status.success());
    server.finish();
    let w = tpactl_json(&dir, &["--id", "srv", "worker"]);
    assert_eq!(w[0]["stopped"], true, "{w:#}");
    let (ok, listed, _) = tpactl(&dir, &["list"]);
    assert!(ok && listed.contains("gone"), "{listed}");
    let (ok, _, err) = tpactl(&dir, &["--id", "srv", "cfg"]);
    assert!(!ok && err.contains("control.sock"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_stats_of_a_killed_instance_stay_readable() {
    let ns = Netns::with_tap("tpops9");
    let dir = run_dir("kill9");
    let env_dir = format!("TPA_RUN_DIR={}", dir.display());
    let mut argv = vec!["env", &env_dir, TPERF, "server"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-l", "0.0.0.0:4040", "--id", "victim"]);
    let server = ns.spawn_until(
        &argv,
        "tpa-tperf server: listening on 0.0.0.0:4040 (tpa on tap:tpa0, 1 worker)",
    );
    let mut client = kernel_client(&ns, "rr", "3", "2");
    eventually("connections established", || {
        let v = try_tpactl_json(&dir, &["--id", "victim", "sk"])?;
        let n = v
            .as_array()?
            .iter()
            .filter(|s| s["state"] == "ESTABLISHED")
            .count();
        (n == 3).then_some(())
    });
    // SIGKILL (the guard's drop): no chance to clean up or publish.
    drop(server);
    let _ = client.kill();
    let _ = client.wait();
    let w = tpactl_json(&dir, &["--id", "victim", "worker"]);
    assert_eq!(w[0]["stopped"], false, "killed, not stopped: {w:#}");
    assert!(w[0]["loop"]["rx_packets"].as_u64().unwrap() > 0, "{w:#}");
    let socks = tpactl_json(&dir, &["--id", "victim", "sk"]);
    let established = socks
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "ESTABLISHED")
        .count();
    assert_eq!(established, 3, "its last snapshot: {socks:#}");
    let (ok, listed, _) = tpactl(&dir, &["list"]);
    assert!(
        ok && listed.contains("victim") && listed.contains("gone"),
        "{listed}"
    );
    // The next instance with that id starts afresh.
    let mut argv = vec!["env", &env_dir, TPERF, "server"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-l", "0.0.0.0:4040", "--id", "victim"]);
    let again = ns.spawn_until(
        &argv,
        "tpa-tperf server: listening on 0.0.0.0:4040 (tpa on tap:tpa0, 1 worker)",
    );
    let fresh = eventually("the new instance's first snapshot", || {
        let w = try_tpactl_json(&dir, &["--id", "victim", "worker"])?;
        let rx = w[0]["loop"]["rx_packets"].as_u64()?;
        Some((w[0]["pid"].as_u64()?, rx))
    });
    let (fresh_pid, fresh) = fresh;
    assert_ne!(
        Some(fresh_pid),
        w[0]["pid"].as_u64(),
        "a new process's file"
    );
    let killed_rx = w[0]["loop"]["rx_packets"].as_u64().unwrap();
    assert!(
        fresh < killed_rx,
        "counters restart: {fresh} vs {killed_rx}"
    );
    drop(again);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--config FILE`: its `[stats]`, `[trace]` and `[tcp]` tables reach the
/// instance (id, interval, trace on, a longer minimum RTO seen on a live
/// connection); a bad key is refused at start, named with the file.
#[test]
fn a_config_file_sets_the_tables_of_each_part() {
    let dir = run_dir("config");
    let file = dir.join("tperf.toml");
    std::fs::write(
        &file,
        "[tcp.rto]\nmin = \"350ms\"\n\n[trace]\nenabled = true\n\n[stats]\nid = \"fromfile\"\ninterval_ms = 40\n",
    )
    .unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[stats]\ninterval = 40\n").unwrap();
    let out = Command::new(TPERF)
        .args(["server", "--config"])
        .arg(&bad)
        .output()
        .expect("run tperf");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "bad.toml: stats.interval: unknown key; the nearest valid key is stats.interval_ms"
        ),
        "{err}"
    );

    let ns = Netns::with_tap("tpopscf");
    let env_dir = format!("TPA_RUN_DIR={}", dir.display());
    let file = file.display().to_string();
    let mut argv = vec!["env", &env_dir, TPERF, "server"];
    argv.extend_from_slice(&TPA);
    argv.extend_from_slice(&["-l", "0.0.0.0:4040", "--runs", "1", "--config", &file]);
    let server = ns.spawn_until(
        &argv,
        "tpa-tperf server: listening on 0.0.0.0:4040 (tpa on tap:tpa0, 1 worker)",
    );
    let (ok, cfg, err) = tpactl(&dir, &["--id", "fromfile", "cfg"]);
    assert!(ok, "{err}");
    assert!(cfg.contains("trace = on"), "{cfg}");
    assert!(cfg.contains("stats.interval_ms = 40"), "{cfg}");
    // The idle policy at runtime: a waiting loop with nothing to do
    // (tperf's default, an adaptive spin that shrinks while nothing comes)
    // blocks on its port (a millisecond at most per turn); told to spin,
    // it turns over and over; told to wait again, it blocks again.
    assert!(cfg.contains("idle = wait:~50,coalesce:50\n"), "{cfg}");
    let (ok, _, err) = tpactl(&dir, &["--id", "fromfile", "cfg", "idle", "nap"]);
    assert!(!ok && err.contains("idle: nap: wait, wait:N"), "{err}");
    let idle_turns = |dir: &Path| {
        let before = loop_figure(dir, "fromfile", "iterations");
        std::thread::sleep(Duration::from_millis(300));
        loop_figure(dir, "fromfile", "iterations") - before
    };
    let waiting = idle_turns(&dir);
    let (ok, out, err) = tpactl(&dir, &["--id", "fromfile", "cfg", "idle", "spin"]);
    assert!(ok && out.trim() == "idle = spin", "{out}{err}");
    std::thread::sleep(Duration::from_millis(100));
    let spinning = idle_turns(&dir);
    assert!(
        spinning > 1000 && spinning > 20 * waiting,
        "turns in 300 ms: waiting {waiting}, spinning {spinning}"
    );
    let (ok, out, err) = tpactl(&dir, &["--id", "fromfile", "cfg", "idle", "wait"]);
    assert!(ok && out.trim() == "idle = wait", "{out}{err}");
    std::thread::sleep(Duration::from_millis(100));
    let waiting_again = idle_turns(&dir);
    eprintln!("idle turns in 300 ms: waiting {waiting}, spinning {spinning}, waiting again {waiting_again}");
    assert!(
        spinning > 20 * waiting_again,
        "turns in 300 ms: spinning {spinning}, waiting again {waiting_again}"
    );
    let mut client = kernel_client(&ns, "rr", "2", "1");
    let rtos = eventually("an established connection's RTO", || {
        let v = try_tpactl_json(&dir, &["--id", "fromfile", "sk"])?;
        let rtos: Vec<u64> = v
            .as_array()?
            .iter()
            .filter(|s| s["state"] == "ESTABLISHED")
            .filter_map(|s| s["rto_ns"].as_u64())
            .collect();
        (!rtos.is_empty()).then_some(rtos)
    });
    assert!(
        rtos.iter().all(|&r| r >= 350_000_000),
        "[tcp.rto] min = 350ms: {rtos:?}"
    );
    let _ = client.wait();
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
