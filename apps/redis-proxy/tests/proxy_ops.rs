//! tpa-redis-proxy as a tpa instance, looked into while it serves: a
//! namespace made here holds a redis-server (192.0.2.1, on the kernel's
//! side of a TAP) and the clients; the proxy takes the TAP's other side
//! (tpa's 192.0.2.2) with `--id`, `--metrics` and the socket trace on.
//! `tpactl` lists it and shows its client and server connections with
//! the bytes the test sent and received, its worker's counters, pool,
//! neighbour and knobs, and decodes a connection's trace; the Prometheus
//! endpoint, parsed by the reference parser (`python3-prometheus-client`),
//! has the stack's and the proxy's own counters per pool, equal to the
//! stats JSON's; a backend stopped until its request times out ejects it
//! and archives the aborted server connection's trace.
//!
//! Run as root: `cargo test -p tpa-redis-proxy --test proxy_ops` (after
//! `cargo build -p tpa-tpactl`; `cargo test --workspace` builds it).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use serde_json::Value;
use support::client::command;
use support::lab::{fresh_dir, read_stats, signal, start_redis_in, wait_proxy_listening, HANG};
use tpa_tests::netns::Netns;
use tpa_tests::ops::{
    assert_neighbour, eventually, parse_prometheus, sample, scrape, Sample, Tpactl,
};

const BIN: &str = env!("CARGO_BIN_EXE_tpa-redis-proxy");
/// The backend's port, on the namespace's kernel address 192.0.2.1.
const REDIS_PORT: u16 = 6411;
/// The proxy's listener on tpa's address.
const PROXY: (&str, u16) = ("192.0.2.2", 22121);
/// The stats port (a kernel socket on the namespace's loopback).
const STATS_PORT: u16 = 22222;
/// The Prometheus endpoint, on the namespace's loopback.
const METRICS: &str = "127.0.0.1:9466";
/// The instance's id.
const ID: &str = "rp-ops";

/// The namespace, the backend and the proxy, killed and removed even
/// when a check fails.
struct Lab {
    redis: Child,
    proxy: Option<Child>,
    dir: PathBuf,
    ns: Netns,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.redis).chain(self.proxy.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    /// The run directory (`TPA_RUN_DIR` of the proxy).
    fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// `tpactl` over the proxy's run directory.
    fn tpactl(&self) -> Tpactl {
        Tpactl::next_to(BIN, &self.run_dir())
    }

    /// `tpactl --id ID ARGS`'s standard output; fails the test with
    /// tpactl's words.
    fn tpactl_ok(&self, args: &[&str]) -> String {
        let mut all = vec!["--id", ID];
        all.extend_from_slice(args);
        let (ok, out, err) = self.tpactl().run(&all);
        assert!(ok, "tpactl {args:?}: {err}{out}");
        out
    }

    /// `tpactl --id ID ARGS --json`, parsed.
    fn tpactl_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--id", ID];
        all.extend_from_slice(args);
        self.tpactl().json(&all)
    }

    /// The stats JSON (nutcracker's, on the stats port).
    fn stats_json(&self) -> Value {
        let text = self.ns.enter(|| read_stats(STATS_PORT));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("stats JSON: {e}: {text}"))
    }

    /// The backend's figure `key` in the stats JSON.
    fn server_stat(&self, key: &str) -> u64 {
        let stats = self.stats_json();
        stats["main"][format!("192.0.2.1:{REDIS_PORT}").as_str()][key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {stats:#}"))
    }

    /// `GET /metrics` from inside the namespace, parsed by the
    /// reference parser.
    fn scrape(&self) -> (String, Vec<Sample>) {
        let text = scrape(&self.ns, METRICS);
        let samples = parse_prometheus(&text);
        (text, samples)
    }
}

/// A client of the proxy that counts the bytes it sent and received.
struct Client {
    stream: TcpStream,
    sent: u64,
    received: u64,
}

impl Client {
    /// Sends `args`, reads `reply` (exactly its bytes) back.
    fn call(&mut self, args: &[&str], reply: &str) {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let req = command(&bytes);
        self.stream.write_all(&req).unwrap();
        self.sent += req.len() as u64;
        let mut got = vec![0u8; reply.len()];
        self.stream.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), reply, "{args:?}");
        self.received += got.len() as u64;
    }
}

/// The socket of `sk --json` from `local` to `remote`.
fn socket<'a>(sockets: &'a Value, local: &str, remote: &str) -> Option<&'a Value> {
    sockets
        .as_array()?
        .iter()
        .find(|s| s["local"] == local && s["remote"] == remote)
}

fn start(ns: &Netns, dir: &Path) -> (Child, Child) {
    let redis = start_redis_in(ns, dir, "192.0.2.1", REDIS_PORT);
    // One backend, ejected at its first failure and kept out for a
    // minute; a request times out after 400 ms.
    let conf = dir.join("proxy.yml");
    std::fs::write(
        &conf,
        format!(
            "main:\n  listen: {}:{}\n  redis: true\n  timeout: 400\n  auto_eject_hosts: true\n  \
             server_failure_limit: 1\n  server_retry_timeout: 60000\n  servers:\n   - 192.0.2.1:{REDIS_PORT}:1\n",
            PROXY.0, PROXY.1
        ),
    )
    .unwrap();
    let log = dir.join("proxy.log");
    let run_dir = dir.join("run");
    let mut proxy = ns
        .command(&["env", &format!("TPA_RUN_DIR={}", run_dir.display())])
        .args(["TPA_TRACE=1", BIN, "-c", conf.to_str().unwrap()])
        .args(["-a", "127.0.0.1", "-s", &STATS_PORT.to_string()])
        .args(["-o", log.to_str().unwrap()])
        .args(["--port", "tap:tpa0", "--ip", "192.0.2.2/24"])
        .args(["--id", ID, "--metrics", METRICS])
        .stdin(Stdio::null())
        .spawn()
        .expect("start tpa-redis-proxy");
    wait_proxy_listening(&log, &mut proxy);
    (redis, proxy)
}

#[test]
fn tpactl_and_prometheus_look_into_a_live_proxy() {
    let ns = Netns::with_tap("rpops");
    let dir = fresh_dir("tpa-redis-proxy-ops");
    let (redis, proxy) = start(&ns, &dir);
    let lab = Lab {
        redis,
        proxy: Some(proxy),
        dir,
        ns,
    };

    // list, cfg: the instance runs under its id; its knobs answer.
    let (ok, listed, err) = lab.tpactl().run(&["list"]);
    assert!(
        ok && listed.contains(ID) && listed.contains("running"),
        "{listed}{err}"
    );
    let cfg = lab.tpactl_ok(&["cfg"]);
    for line in ["trace = on", "stats.interval_ms = 100", "idle = wait"] {
        assert!(cfg.contains(line), "{cfg}");
    }
    assert_eq!(
        lab.tpactl_ok(&["cfg", "stats.interval_ms", "50"]).trim(),
        "stats.interval_ms = 50"
    );
    assert_eq!(
        lab.tpactl_ok(&["cfg", "log", "debug"]).trim(),
        "log = debug"
    );
    let (ok, _, err) = lab.tpactl().run(&["--id", ID, "cfg", "idle", "poll"]);
    assert!(!ok && err.contains("idle: poll"), "{err}");

    // A client's commands: its connection and the proxy's connection to
    // the backend carry exactly its bytes (the stats JSON says what the
    // proxy sent the backend).
    let mut c = lab.ns.enter(|| Client {
        stream: TcpStream::connect(PROXY).expect("connect to the proxy"),
        sent: 0,
        received: 0,
    });
    c.stream.set_read_timeout(Some(HANG)).unwrap();
    let client_addr = c.stream.local_addr().unwrap().to_string();
    let value = "v".repeat(3000);
    c.call(&["SET", "ops:k", &value], "+OK\r\n");
    c.call(&["GET", "ops:k"], &format!("$3000\r\n{value}\r\n"));
    c.call(&["SET", "ops:small", "hello"], "+OK\r\n");
    c.call(&["GET", "ops:small"], "$5\r\nhello\r\n");
    let (to_backend, from_backend) = (
        lab.server_stat("request_bytes"),
        lab.server_stat("response_bytes"),
    );
    assert_eq!(lab.server_stat("requests"), 4);
    let backend = format!("192.0.2.1:{REDIS_PORT}");
    let listener = format!("{}:{}", PROXY.0, PROXY.1);
    let sockets = eventually("both connections' bytes in tpactl sk", || {
        let v = lab.tpactl_json(&["sk"]);
        let client = socket(&v, &listener, &client_addr)?;
        let server = v
            .as_array()?
            .iter()
            .find(|s| s["remote"] == backend.as_str())?;
        let done = client["bytes_received"] == c.sent
            && client["bytes_acked"] == c.received
            && server["bytes_acked"] == to_backend
            && server["bytes_received"] == from_backend;
        done.then(|| v.clone())
    });
    assert!(
        sockets
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["state"] == "LISTEN" && s["local"] == listener.as_str()),
        "{sockets:#}"
    );
    // The proxy forwards a single-key command as it came.
    assert_eq!((to_backend, from_backend), (c.sent, c.received));
    let sk = lab.tpactl_ok(&["sk", "-v"]);
    assert!(
        sk.contains(&client_addr) && sk.contains(&backend) && sk.contains("bytes_received"),
        "{sk}"
    );

    // The socket trace of both connections, decoded: the state, the
    // segments, the application's reads and writes.
    let st = lab.tpactl_ok(&["st"]);
    assert!(st.contains(&format!("{listener} -> {client_addr}")), "{st}");
    let server_local = socket_local(&sockets, &backend);
    assert!(st.contains(&format!("{server_local} -> {backend}")), "{st}");
    for word in ["ESTABLISHED", " in ", " out ", "write", "read"] {
        assert!(st.contains(word), "{word}: {st}");
    }

    // Load: the worker's counters move, and the proxy's own counters in
    // Prometheus are the stats JSON's.
    let worker_rx = |lab: &Lab| lab.tpactl_json(&["worker"])[0]["loop"]["rx_packets"].as_u64();
    let rx_before = worker_rx(&lab).unwrap();
    let bench = lab.ns.exec_output(&[
        "redis-benchmark",
        "-h",
        PROXY.0,
        "-p",
        &PROXY.1.to_string(),
        "-c",
        "4",
        "-n",
        "2000",
        "-P",
        "16",
        "-t",
        "set,get",
        "-r",
        "1000",
        "--csv",
    ]);
    assert!(bench.status.success(), "{bench:?}");
    // (The worker's next snapshot, at most 50 ms away, has the run.)
    let w = eventually("the benchmark's packets in tpactl worker", || {
        let w = lab.tpactl_json(&["worker"]);
        (w[0]["loop"]["rx_packets"].as_u64()? > rx_before + 100).then_some(w)
    });
    let l = &w[0]["loop"];
    assert!(l["busy_ns"].as_u64().unwrap() > 0 && l["busy_iterations"].as_u64().unwrap() > 0);
    let requests = lab.server_stat("requests");
    assert!(requests >= 4004, "{requests}");
    // The worker's next snapshot after the run: every request answered,
    // the benchmark's clients gone.
    let main = [("pool", "main")];
    let (text, samples) = eventually("Prometheus' requests at the stats JSON's", || {
        let (text, samples) = lab.scrape();
        let quiet = sample(&samples, "tpa_app_proxy_requests_total", &main)? == requests as f64
            && sample(&samples, "tpa_app_proxy_responses_total", &main)? == requests as f64
            && sample(&samples, "tpa_app_proxy_client_connections", &main)? == 1.0;
        quiet.then_some((text, samples))
    });
    assert_eq!(
        sample(&samples, "tpa_app_proxy_request_bytes_total", &main),
        Some(lab.server_stat("request_bytes") as f64),
        "{text}"
    );
    assert_eq!(
        sample(&samples, "tpa_app_proxy_response_bytes_total", &main),
        Some(lab.server_stat("response_bytes") as f64),
        "{text}"
    );
    assert_eq!(
        sample(&samples, "tpa_app_proxy_server_connections", &main),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&samples, "tpa_app_proxy_forward_errors_total", &main),
        Some(0.0)
    );
    // 1 of ours and 4 of redis-benchmark's, at least.
    assert!(sample(&samples, "tpa_app_proxy_accepted_connections_total", &[]).unwrap() >= 5.0);
    assert!(sample(&samples, "tpa_worker_rx_packets_total", &[]).unwrap() > 0.0);
    assert!(sample(&samples, "tpa_worker_busy_seconds_total", &[]).unwrap() > 0.0);
    assert!(
        sample(
            &samples,
            "tpa_stage_packets_total",
            &[("stage", "front.tcp_input_v4"), ("verdict", "consumed")]
        )
        .is_some_and(|n| n > 0.0),
        "{text}"
    );
    assert!(sample(&samples, "tpa_tcp_sockets", &[("state", "ESTABLISHED")]).unwrap() >= 2.0);
    assert!(sample(&samples, "tpa_pool_buffers", &[("pool", "redis-proxy")]).unwrap() > 0.0);

    // The people's views.
    let worker = lab.tpactl_ok(&["worker"]);
    assert!(
        worker.contains("busy")
            && worker.contains("stage front.tcp_input_v4")
            && worker.contains("app pool=main: proxy_client_connections 1,")
            && worker.contains(&format!("proxy_requests {requests},")),
        "{worker}"
    );
    let mem = lab.tpactl_json(&["mem"]);
    assert_eq!(mem[0]["name"], "redis-proxy", "{mem:#}");
    let neigh = lab.tpactl_json(&["neigh"]);
    assert_neighbour(&neigh, "192.0.2.1");

    // The backend killed with a request unread: its kernel resets the
    // connection, the proxy answers the client with an error and ejects
    // the server, and the reset connection's trace is archived.
    let pid = lab.redis.id();
    signal(pid, "STOP");
    let before = lab.server_stat("request_bytes");
    let get = command(&[b"GET", b"ops:small"]);
    c.stream.write_all(&get).unwrap();
    let sent = before + get.len() as u64;
    eventually("the request in the stopped backend's queue", || {
        let v = lab.tpactl_json(&["sk"]);
        let server = socket(&v, &server_local, &backend)?;
        (lab.server_stat("request_bytes") == sent && server["bytes_acked"] == sent).then_some(())
    });
    signal(pid, "KILL");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&c.stream), &mut line).unwrap();
    assert!(line.starts_with("-ERR "), "{line}");
    // (A benchmark client's reset may have archived its ring too.)
    let decoded = eventually("the reset server connection's archive", || {
        let list = lab.tpactl_ok(&["st", "--archive"]);
        list.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(|file| lab.tpactl_ok(&["st", file]))
            .find(|d| d.contains(&format!("{server_local} -> {backend}")))
    });
    assert!(
        decoded.contains("in    [R") && decoded.contains("state ESTABLISHED -> CLOSED"),
        "{decoded}"
    );
    let (text, samples) = eventually("the ejection in Prometheus", || {
        let (text, samples) = lab.scrape();
        (sample(&samples, "tpa_app_proxy_server_ejects_total", &main)? == 1.0)
            .then_some((text, samples))
    });
    for (name, want) in [
        ("tpa_app_proxy_ejected_servers", 1.0),
        ("tpa_app_proxy_server_errors_total", 1.0),
        ("tpa_app_proxy_forward_errors_total", 1.0),
        ("tpa_app_proxy_server_connections", 0.0),
    ] {
        assert_eq!(sample(&samples, name, &main), Some(want), "{name}: {text}");
    }

    // SIGTERM: the proxy stops, its worker's last snapshot says so, and
    // the files of a named instance stay.
    let mut lab = lab;
    let mut proxy = lab.proxy.take().unwrap();
    signal(proxy.id(), "TERM");
    assert!(proxy.wait().unwrap().success());
    let w = lab.tpactl_json(&["worker"]);
    assert_eq!(w[0]["stopped"], true, "{w:#}");
    let (ok, listed, _) = lab.tpactl().run(&["list"]);
    assert!(ok && listed.contains("gone"), "{listed}");
}

/// The local address of the connection to `remote` in `sk --json`.
fn socket_local(sockets: &Value, remote: &str) -> String {
    sockets
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["remote"] == remote)
        .and_then(|s| s["local"].as_str())
        .unwrap_or_else(|| panic!("a connection to {remote} in {sockets:#}"))
        .to_string()
}
