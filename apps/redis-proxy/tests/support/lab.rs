//! The pieces every lab of the end-to-end tests is built of: a fresh
//! directory, redis-servers (on loopback or in a namespace) waited for
//! until they listen, the proxy's start on kernel sockets, its log
//! waited for, its stats read, and our key mapping of a pool's YAML.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tpa_redis_proxy::config;
use tpa_redis_proxy::hash::KeyMapper;
use tpa_tests::netns::Netns;

use super::conn::Conn;

/// A hang guard on every wait and read (no speed is asserted).
pub const HANG: Duration = Duration::from_secs(20);

/// `$TMPDIR/<name>-<pid>`, emptied and created.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until 127.0.0.1:`port` accepts a connection; fails naming
/// `what` if `child` exits first or [`HANG`] passes.
pub fn wait_listening(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + HANG;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} on port {port} exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} on port {port} never listened"
        );
        sleep(Duration::from_millis(20));
    }
}

/// A redis-server on 127.0.0.1:`port` with its files in `dir`, once it
/// listens.
pub fn start_redis(dir: &Path, port: u16) -> Child {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (Debian package redis-server)");
    wait_listening(port, "redis-server", &mut child);
    child
}

/// A redis-server in `ns` on `addr`:`port` with its files in `dir`, once
/// it listens.
pub fn start_redis_in(ns: &Netns, dir: &Path, addr: &str, port: u16) -> Child {
    let child = ns
        .command(&["redis-server", "--port", &port.to_string(), "--bind", addr])
        .args(["--protected-mode", "no", "--save", "", "--appendonly", "no"])
        .args(["--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("redis-server (Debian package redis-server)");
    let deadline = Instant::now() + HANG;
    while ns.enter(|| TcpStream::connect((addr, port))).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server on {addr}:{port} never listened"
        );
        sleep(Duration::from_millis(20));
    }
    child
}

/// The proxy binary on kernel sockets with the config `conf`, its stats
/// on 127.0.0.1:`stats_port` and its log in `log` (not yet waited for).
pub fn spawn_proxy(conf: &Path, stats_port: u16, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tpa-redis-proxy"))
        .args(["-c", conf.to_str().unwrap(), "-s", &stats_port.to_string()])
        .args(["-a", "127.0.0.1", "-o", log.to_str().unwrap()])
        .spawn()
        .expect("start tpa-redis-proxy")
}

/// Waits until the proxy's `log` says it is listening and returns the
/// log; fails with the log if `proxy` exits first or [`HANG`] passes.
pub fn wait_proxy_listening(log: &Path, proxy: &mut Child) -> String {
    let deadline = Instant::now() + HANG;
    loop {
        let said = std::fs::read_to_string(log).unwrap_or_default();
        if said.contains("listening on") {
            return said;
        }
        if let Ok(Some(status)) = proxy.try_wait() {
            panic!("the proxy exited ({status}): {said}");
        }
        assert!(
            Instant::now() < deadline,
            "the proxy never listened: {said}"
        );
        sleep(Duration::from_millis(20));
    }
}

/// The stats JSON served on 127.0.0.1:`port` (in the caller's
/// namespace).
pub fn read_stats(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Our key mapping of the first pool of `yaml`.
pub fn mapper(yaml: &str) -> KeyMapper {
    let pool = &config::parse(yaml).unwrap()[0];
    let points: Vec<_> = pool.servers.iter().map(|s| s.point()).collect();
    KeyMapper::new(pool.hash, pool.hash_tag, pool.distribution, &points)
}

/// The first key `k0`, `k1`, … that `mapper` puts on backend `server`.
pub fn key_on(mapper: &KeyMapper, server: usize) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| mapper.server_for(k.as_bytes(), 0) == Some(server as u32))
        .unwrap()
}

/// Asserts that each of `keys` holds `v-<key>` on the backend `mapper`
/// puts it on and nothing on the others (`direct[i]`: a client of
/// backend i).
pub fn assert_keys_at_home(mapper: &KeyMapper, keys: &[String], direct: &mut [Conn]) {
    for k in keys {
        let home = mapper.server_for(k.as_bytes(), 0).unwrap() as usize;
        for (i, d) in direct.iter_mut().enumerate() {
            let want = if i == home {
                format!("$v-{k}")
            } else {
                "$nil".into()
            };
            assert_eq!(d.call(&["GET", k]), want, "key {k}, backend {i}");
        }
    }
}

/// Sends `kill -<signal>` to the process `pid` (seen from this
/// namespace); fails the test if kill does.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

/// Sends `args` on `c` until the reply is `+OK` (a backend coming back),
/// at most 50 times 50 ms apart; returns the last reply.
pub fn call_until_ok(c: &mut Conn, args: &[&str]) -> String {
    let mut reply = String::new();
    for _ in 0..50 {
        reply = c.call(args);
        if reply == "+OK" {
            break;
        }
        sleep(Duration::from_millis(50));
    }
    reply
}
