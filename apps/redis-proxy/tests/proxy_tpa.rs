//! tpa-redis-proxy on tpa's own TCP stack, end to end: a network
//! namespace made here holds the redis-servers (on the kernel's side of a
//! TAP, 192.0.2.1) and the clients (redis-cli, redis-benchmark, raw
//! sockets); the proxy takes the TAP's other side with tpa's address
//! 192.0.2.2, so both its client connections and its server connections
//! are tpa's. Then the same over a veth pair with an AF_PACKET port, two
//! workers on a multi-queue TAP, two DPDK workers on a `net_tap` vdev
//! (feature `dpdk`), and an AF_XDP port beside the kernel on the host's
//! own address (the proxy in a namespace of its own, the clients and
//! backends in the other).
//!
//! Run as root: `cargo test -p tpa-redis-proxy --all-features --test
//! proxy_tpa` (Debian packages `redis-server`, `redis-tools`, and
//! `libdpdk-dev` for the DPDK test).

mod support;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::bench::{assert_benchmark_passes, csv_tests};
use support::client::command;
use support::conn::Conn;
use support::lab::{
    assert_keys_at_home, call_until_ok, fresh_dir, key_on, mapper, read_stats, signal,
    start_redis_in, wait_proxy_listening, HANG,
};
use tpa_redis_proxy::hash::KeyMapper;
use tpa_tests::netns::Netns;

/// The kernel's address in the namespace (backends, clients).
const KERNEL: &str = "192.0.2.1";
/// tpa's address (the proxy's listener and its server connections).
const TPA: &str = "192.0.2.2";
/// The proxy's port.
const PROXY_PORT: u16 = 22121;
/// The stats port (a kernel socket, on the namespace's loopback).
const STATS_PORT: u16 = 22222;
/// The first backend's port.
const REDIS_BASE: u16 = 6401;

/// The namespace, its backends and the proxy, killed and removed even
/// when a check fails (the namespaces go last).
struct Lab {
    redis: Vec<(u16, Option<Child>)>,
    /// A backend on the proxy's namespace's loopback (reached on a
    /// kernel socket), last in the pool.
    loopback: Option<(u16, Child)>,
    proxy: Option<Child>,
    dir: PathBuf,
    extra: String,
    /// DPDK: the EAL's runtime directory, removed at the end.
    dpdk_prefix: Option<String>,
    /// The clients and the backends.
    ns: Netns,
    /// Where the proxy runs when not in `ns` (AF_XDP: the host whose
    /// address it shares).
    host: Option<Netns>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let children = self
            .redis
            .iter_mut()
            .filter_map(|(_, c)| c.as_mut())
            .chain(self.loopback.as_mut().map(|(_, c)| c))
            .chain(self.proxy.as_mut());
        for child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(prefix) = &self.dpdk_prefix {
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
        }
    }
}

/// How the proxy reaches the namespace.
enum Link {
    /// A TAP with this many queues (workers).
    Tap(u16),
    /// A veth pair, tpa on `vt` through AF_PACKET.
    Veth,
    /// A DPDK `net_tap` vdev on a multi-queue TAP, this many workers.
    #[cfg(feature = "dpdk")]
    DpdkTap(u16),
    /// AF_XDP on `vs`, a veth end in a namespace of its own with the
    /// kernel's address 192.0.2.2 (tpa shares it), a loopback backend
    /// there too; the clients and the other backends at `vc`, 192.0.2.1.
    AfXdp,
}

impl Lab {
    /// A namespace over `link`, `backends` redis-servers in it and the
    /// proxy on tpa with one pool over them (`extra` appended to the
    /// pool's YAML).
    fn new(tag: &str, link: Link, backends: usize, extra: &str) -> Lab {
        // The namespace of the clients and backends, the port, the
        // workers, the EAL's arguments (DPDK), the proxy's own namespace
        // (AF_XDP).
        let (ns, port, workers, eal, host) = match link {
            Link::Tap(1) => (Netns::with_tap(tag), "tap:tpa0", 1, vec![], None),
            Link::Tap(n) => (Netns::with_multiqueue_tap(tag), "tap:tpa0", n, vec![], None),
            Link::Veth => (Netns::with_veth(tag), "af_packet:vt", 1, vec![], None),
            #[cfg(feature = "dpdk")]
            Link::DpdkTap(n) => {
                let ns = Netns::with_multiqueue_tap(tag);
                let eal = tpa_tests::eal::vdev_args("net_tap0,iface=tpa0", ns.name());
                (ns, "dpdk:net_tap0", n, eal, None)
            }
            Link::AfXdp => {
                let (server, client) = Netns::beside_kernel_pair(tag);
                (client, "af_xdp:vs", 1, vec![], Some(server))
            }
        };
        let dpdk_prefix = (!eal.is_empty()).then(|| ns.name().to_owned());
        let dir = fresh_dir(&format!("tpa-redis-proxy-tpa-{tag}"));
        let mut lab = Lab {
            redis: Vec::new(),
            loopback: None,
            proxy: None,
            dir,
            extra: extra.to_string(),
            dpdk_prefix,
            ns,
            host,
        };
        for i in 0..backends {
            let port = REDIS_BASE + i as u16;
            let child = lab.start_redis(port);
            lab.redis.push((port, Some(child)));
        }
        if lab.host.is_some() {
            let port = REDIS_BASE + backends as u16;
            let child = lab.start_redis_in(lab.proxy_ns(), "127.0.0.1", port);
            lab.loopback = Some((port, child));
        }
        let conf = lab.dir.join("proxy.yml");
        std::fs::write(&conf, lab.yaml()).unwrap();
        let log = lab.dir.join("proxy.log");
        let workers = workers.to_string();
        let mut argv = vec![
            env!("CARGO_BIN_EXE_tpa-redis-proxy"),
            "-c",
            conf.to_str().unwrap(),
            "-a",
            "127.0.0.1",
            "-o",
            log.to_str().unwrap(),
            "--port",
            port,
            "--ip",
            "192.0.2.2/24",
            "--workers",
            &workers,
        ];
        let stats = STATS_PORT.to_string();
        argv.extend_from_slice(&["-s", &stats]);
        if !eal.is_empty() {
            argv.push("--");
            argv.extend(eal.iter().map(String::as_str));
        }
        let mut proxy = lab
            .proxy_ns()
            .command(&argv)
            .env("TPA_RUN_DIR", &lab.dir) // its stats files go with the lab
            .stdin(Stdio::null())
            .spawn()
            .expect("start tpa-redis-proxy");
        let said = wait_proxy_listening(&log, &mut proxy);
        assert!(said.contains("(tpa on "), "{said}");
        lab.proxy = Some(proxy);
        lab
    }

    /// The namespace the proxy runs in.
    fn proxy_ns(&self) -> &Netns {
        self.host.as_ref().unwrap_or(&self.ns)
    }

    fn start_redis(&self, port: u16) -> Child {
        self.start_redis_in(&self.ns, KERNEL, port)
    }

    /// A redis-server in `ns` on `addr`:`port`, once it listens.
    fn start_redis_in(&self, ns: &Netns, addr: &str, port: u16) -> Child {
        start_redis_in(ns, &self.dir, addr, port)
    }

    fn yaml(&self) -> String {
        let mut y = format!(
            "main:\n  listen: {TPA}:{PROXY_PORT}\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n{}  servers:\n",
            self.extra
        );
        for (port, _) in &self.redis {
            y.push_str(&format!("   - {KERNEL}:{port}:1\n"));
        }
        if let Some((port, _)) = &self.loopback {
            y.push_str(&format!("   - 127.0.0.1:{port}:1\n"));
        }
        y
    }

    /// A direct client of every backend, in the pool's order.
    fn backends(&self) -> Vec<Conn> {
        let mut all: Vec<Conn> = self.redis.iter().map(|(p, _)| self.backend(*p)).collect();
        if let Some((port, _)) = &self.loopback {
            all.push(self.proxy_ns().enter(|| Conn::new("127.0.0.1", *port)));
        }
        all
    }

    /// Stops the proxy with SIGTERM: it must exit cleanly, with every
    /// buffer back in its pools (else its log says "a leak"). Returns
    /// its log.
    fn stop_proxy(&mut self) -> String {
        let mut proxy = self.proxy.take().expect("a proxy");
        signal(proxy.id(), "TERM");
        let deadline = Instant::now() + HANG;
        let status = loop {
            if let Some(status) = proxy.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not stop: {}",
                self.log()
            );
            sleep(Duration::from_millis(20));
        };
        let log = self.log();
        assert!(status.success(), "the proxy failed ({status}): {log}");
        assert!(log.contains("stopped"), "{log}");
        assert!(!log.contains("a leak"), "{log}");
        log
    }

    fn mapper(&self) -> KeyMapper {
        mapper(&self.yaml())
    }

    /// A client of the proxy (over the TAP, to tpa).
    fn client(&self) -> Conn {
        self.ns.enter(|| Conn::new(TPA, PROXY_PORT))
    }

    /// A client of a backend, directly.
    fn backend(&self, port: u16) -> Conn {
        self.ns.enter(|| Conn::new(KERNEL, port))
    }

    fn stats(&self) -> String {
        self.proxy_ns().enter(|| read_stats(STATS_PORT))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> String {
        let port = PROXY_PORT.to_string();
        let mut argv = vec!["redis-cli", "-h", TPA, "-p", &port];
        argv.extend_from_slice(args);
        let out = self.ns.exec_output(&argv);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn benchmark(&self, host: &str, port: u16, extra: &[&str]) -> Output {
        let port = port.to_string();
        let mut argv = vec![
            "redis-benchmark",
            "-h",
            host,
            "-p",
            &port,
            "-n",
            "2000",
            "-r",
            "100000",
            "--csv",
        ];
        argv.extend_from_slice(extra);
        self.ns.exec_output(&argv)
    }
}

/// MSETs `keys` through `c` (12 a command), checks each landed on the
/// backend nutcracker's mapping names and only there, then MGETs them
/// all back in reverse order with a missing key first.
fn keys_land_where_nutcracker_puts_them(lab: &Lab, c: &mut Conn, keys: &[String]) {
    for chunk in keys.chunks(12) {
        let mut args = vec!["MSET".to_string()];
        for k in chunk {
            args.push(k.clone());
            args.push(format!("v-{k}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.call(&args), "+OK");
    }
    let mapper = lab.mapper();
    let mut direct = lab.backends();
    assert_keys_at_home(&mapper, keys, &mut direct);
    let mut args = vec!["MGET", "nokey"];
    args.extend(keys.iter().rev().map(String::as_str));
    let mut want = vec!["$nil".to_string()];
    want.extend(keys.iter().rev().map(|k| format!("$v-{k}")));
    assert_eq!(c.call(&args), format!("[{}]", want.join(", ")));
}

/// A redis-benchmark run through the proxy with `extra` flags: it
/// succeeds without an error and reports the `expected` tests
/// ([`assert_benchmark_passes`]).
fn benchmark_passes(lab: &Lab, extra: &[&str], expected: &[String]) {
    let out = lab.benchmark(TPA, PROXY_PORT, extra);
    assert_benchmark_passes(
        &out,
        &format!("through the proxy on tpa {extra:?}"),
        expected,
    );
}

/// SET, GET and MGET with redis-cli through the proxy, then a short
/// pipelined redis-benchmark (`-P 16`: SET, GET, MSET of 10 keys, LPUSH,
/// LPOP) without an error; `-r` spreads its keys over every backend.
fn cli_and_a_pipelined_benchmark(lab: &Lab) {
    assert_eq!(lab.cli(&["SET", "cli-key", "hello"]), "OK");
    assert_eq!(lab.cli(&["SET", "cli-other", "world"]), "OK");
    assert_eq!(lab.cli(&["GET", "cli-key"]), "hello");
    assert_eq!(
        lab.cli(&["MGET", "cli-key", "nokey", "cli-other"]),
        "hello\n\nworld"
    );
    let expected: Vec<String> = ["SET", "GET", "LPUSH", "LPOP", "MSET (10 keys)"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    benchmark_passes(
        lab,
        &["-P", "16", "-t", "set,get,lpush,lpop,mset"],
        &expected,
    );
    for mut backend in lab.backends() {
        let size = backend.call(&["DBSIZE"]);
        assert!(size != ":0", "a backend got no key");
    }
}

/// Every default redis-benchmark test through the proxy on tpa, with and
/// without `-P 16`: the same tests as against redis directly, none with
/// an error, and `-r` spreads the keys over every backend.
#[test]
fn every_default_redis_benchmark_test_passes_through_tpa() {
    let lab = Lab::new("rpb", Link::Tap(1), 3, "  timeout: 5000\n");
    let direct = lab.benchmark(KERNEL, REDIS_BASE, &[]);
    let expected: Vec<String> = csv_tests(&direct).into_iter().map(|t| t.0).collect();
    assert!(expected.len() >= 15, "direct run: {direct:?}");
    for extra in [&[][..], &["-P", "16"][..]] {
        benchmark_passes(&lab, extra, &expected);
    }
    for (port, _) in &lab.redis {
        let size = lab.backend(*port).call(&["DBSIZE"]);
        assert!(size != ":0", "backend {port} got no key");
    }
    let stats = lab.stats();
    assert!(
        stats.contains("\"forward_error\":0"),
        "{stats}\n{}",
        lab.log()
    );
}

/// Keys where nutcracker puts them, MGET/MSET/DEL/EXISTS across the
/// backends, redis-cli, an 8 MiB value both ways, and a malformed client
/// closed alone.
#[test]
fn keys_split_commands_large_values_and_a_malformed_client_over_tpa() {
    let lab = Lab::new("rpk", Link::Tap(1), 4, "");
    let mut c = lab.client();
    let keys: Vec<String> = (0..120).map(|i| format!("user:{i}")).collect();
    keys_land_where_nutcracker_puts_them(&lab, &mut c, &keys);
    let mut del = vec!["DEL"];
    del.extend(keys[..30].iter().map(String::as_str));
    del.push("nokey");
    assert_eq!(c.call(&del), ":30");
    let mut exists = vec!["EXISTS"];
    exists.extend(keys[..40].iter().map(String::as_str));
    assert_eq!(c.call(&exists), ":10");
    assert_eq!(lab.cli(&["SET", "cli-key", "hello"]), "OK");
    assert_eq!(lab.cli(&["GET", "cli-key"]), "hello");
    assert_eq!(lab.cli(&["MGET", "cli-key", "user:99"]), "hello\nv-user:99");

    let value: String = (0..8 << 20)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    assert_eq!(c.call(&["SET", "big", &value]), "+OK");
    let got = c.call(&["GET", "big"]);
    assert!(
        got == format!("${value}"),
        "GET big returned {} bytes",
        got.len()
    );

    let mut bad = lab.client();
    bad.send(b"*2\r\n$3\r\nGET\r\n$x\r\n");
    assert_eq!(bad.reply(), "-ERR Protocol error: invalid number");
    assert!(bad.closed());
    assert_eq!(c.call(&["GET", "cli-key"]), "$hello");
}

/// `len` letters from a xorshift seeded with `seed` (printable, so a
/// reply compares as text).
fn letters(seed: u64, len: usize) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (b'a' + (x % 26) as u8) as char
        })
        .collect()
}

/// GET `key` through `c`: its reply must be `value`, byte for byte.
fn get_is(c: &mut Conn, key: &str, value: &str) {
    let got = c.call(&["GET", key]);
    assert!(
        got.len() == value.len() + 1 && got.as_bytes()[1..] == *value.as_bytes(),
        "GET {key}: {} bytes back for {} (first {:?})",
        got.len(),
        value.len(),
        &got[..got.len().min(40)]
    );
}

/// The figures of the proxy's `passthrough:` log line at its stop:
/// replies, bytes, zero-copy bytes, dropped bytes.
fn passthrough_line(log: &str) -> (u64, u64, u64, u64) {
    let line = log
        .lines()
        .find(|l| l.contains("passthrough: "))
        .unwrap_or_else(|| panic!("no passthrough line in {log}"));
    let n = numbers(line.split("passthrough: ").nth(1).unwrap());
    assert_eq!(n.len(), 4, "{line}");
    (n[0], n[1], n[2], n[3])
}

/// Values of 1, 8 and 32 MiB SET and read back through the proxy on tpa,
/// then a pipeline mixing big and small GETs and SETs over every backend,
/// then an MSET over the three backends whose last value is 1 MiB: every
/// byte right, and the big values' bytes past their first segment went
/// from one socket to the other as the received buffers, the SETs' and
/// the MSET's from the client's to the server's, the replies' from the
/// server's to the client's (≥ 99 % of their payload by the proxy's
/// count).
#[test]
fn big_values_pass_through_tpa_without_a_copy() {
    let mut lab = Lab::new("rpz", Link::Tap(1), 3, "");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mapper = lab.mapper();
    let mut c = lab.client();
    // Payload bytes of the big replies read whole.
    let mut spliced = 0u64;
    let mut bigs = Vec::new();
    for (i, size) in [1usize << 20, 8 << 20, 32 << 20].into_iter().enumerate() {
        let key = format!("big:{i}");
        let value = letters(seed + i as u64, size);
        assert_eq!(c.call(&["SET", &key, &value]), "+OK");
        get_is(&mut c, &key, &value);
        // Up with the SET, down with the GET.
        spliced += 2 * size as u64;
        bigs.push((key, value));
    }

    // A pipeline over the three backends (key i on backend i % 3): a
    // 2 MiB value every fourth key (one on each backend), small ones
    // between; SETs then GETs, each batch in one write.
    let keys: Vec<String> = (0..12u32)
        .map(|i| {
            (0..)
                .map(|j| format!("pipe:{i}:{j}"))
                .find(|k| mapper.server_for(k.as_bytes(), 0) == Some(i % 3))
                .unwrap()
        })
        .collect();
    let values: Vec<String> = (0..keys.len())
        .map(|i| {
            let len = if i % 4 == 0 { 2 << 20 } else { 10 + i };
            letters(seed ^ (i as u64 + 100), len)
        })
        .collect();
    let mut sets = Vec::new();
    for (k, v) in keys.iter().zip(&values) {
        sets.extend_from_slice(&command(&[b"SET", k.as_bytes(), v.as_bytes()]));
    }
    c.send(&sets);
    for k in &keys {
        assert_eq!(c.reply(), "+OK", "SET {k}");
    }
    let mut gets = Vec::new();
    for k in keys.iter().rev() {
        gets.extend_from_slice(&command(&[b"GET", k.as_bytes()]));
        gets.extend_from_slice(&command(&[b"GET", b"nokey"]));
    }
    c.send(&gets);
    for (k, v) in keys.iter().zip(&values).rev() {
        let got = c.reply();
        assert!(
            got.len() == v.len() + 1 && got.as_bytes()[1..] == *v.as_bytes(),
            "pipelined GET {k}: {} bytes for {}",
            got.len(),
            v.len()
        );
        assert_eq!(c.reply(), "$nil");
        if v.len() >= 2 << 20 {
            spliced += 2 * v.len() as u64;
        }
    }

    // An MSET over the three backends whose last value is 1 MiB (its
    // key on backend 0, with another key of that backend before it): that
    // value's fragment uploads it, the other two follow it; every key
    // reads back whole.
    let on = |backend: u32, tag: &str| {
        (0..)
            .map(|j| format!("mset:{tag}:{j}"))
            .find(|k| mapper.server_for(k.as_bytes(), 0) == Some(backend))
            .unwrap()
    };
    let pairs = [
        (on(0, "a"), letters(seed ^ 200, 100)),
        (on(1, "b"), letters(seed ^ 201, 3000)),
        (on(2, "c"), letters(seed ^ 202, 20)),
        (on(0, "big"), letters(seed ^ 203, 1 << 20)),
    ];
    let mut mset = vec!["MSET"];
    for (k, v) in &pairs {
        mset.extend([k.as_str(), v.as_str()]);
    }
    assert_eq!(c.call(&mset), "+OK");
    for (k, v) in &pairs {
        get_is(&mut c, k, v);
    }
    // Up with the MSET, down with the GET.
    spliced += 2 << 20;

    let log = lab.stop_proxy();
    let (frames, bytes, zero_copy, dropped) = passthrough_line(&log);
    println!(
        "passthrough: {frames} values, {bytes} bytes, {zero_copy} zero-copy, \
         {dropped} dropped; {spliced} payload bytes of big values"
    );
    // 1, 8, 32 MiB up and down; three of 2 MiB up and down; the MSET's
    // 1 MiB up and down.
    assert_eq!(frames, 14, "values passed through");
    assert!(
        zero_copy * 100 >= spliced * 99,
        "{zero_copy} of {spliced} bytes zero-copy"
    );
    assert!(bytes >= zero_copy && bytes <= spliced);
    // Each value's bytes not spliced are its first received buffer's.
    assert!(
        spliced - bytes <= frames * 65536,
        "{bytes} of {spliced} bytes spliced"
    );
    assert_eq!(dropped, 0);
}

/// A client leaving in the middle of a 32 MiB reply: the rest of that
/// reply is drained from the server connection it shares with another
/// client, who is answered right after; a client leaving in the middle
/// of a 32 MiB SET: the half request's server connection is closed, the
/// value is not set, and the next requests to that backend go on a new
/// one; no buffer is leaked at the proxy's stop.
#[test]
fn clients_leaving_mid_value_leave_the_proxy_healthy_over_tpa() {
    let mut lab = Lab::new("rpq", Link::Tap(1), 2, "");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mapper = lab.mapper();
    let mut c = lab.client();
    let big = "big:leaving".to_string();
    let value = letters(seed, 32 << 20);
    assert_eq!(c.call(&["SET", &big, &value]), "+OK");
    let bigs = [(String::from("big:other"), letters(seed + 1, 8 << 20))];
    assert_eq!(c.call(&["SET", &bigs[0].0, &bigs[0].1]), "+OK");
    let (big, value) = (&big, &value);
    // A client leaving mid-reply; another client of the same backend
    // (one server connection each) is answered right after.
    let home = mapper.server_for(big.as_bytes(), 0).unwrap();
    let small = (0..)
        .map(|i| format!("near:{i}"))
        .find(|k| mapper.server_for(k.as_bytes(), 0) == Some(home))
        .unwrap();
    assert_eq!(c.call(&["SET", &small, "still-here"]), "+OK");
    let mut quitter = lab
        .ns
        .enter(|| std::net::TcpStream::connect((TPA, PROXY_PORT)))
        .expect("connect to the proxy");
    quitter
        .write_all(&command(&[b"GET", big.as_bytes()]))
        .unwrap();
    quitter.set_read_timeout(Some(HANG)).unwrap();
    let mut first = vec![0u8; 256 * 1024];
    quitter.read_exact(&mut first).unwrap();
    let head = format!("${}\r\n", value.len());
    assert!(first.starts_with(head.as_bytes()));
    assert_eq!(
        &first[head.len()..],
        &value.as_bytes()[..first.len() - head.len()]
    );
    drop(quitter);
    assert_eq!(c.call(&["GET", &small]), "$still-here");

    // A client leaving in the middle of a 32 MiB SET: that server
    // connection (holding half a request) is closed, the value is not
    // set, and the next requests to that backend are served on a new one.
    let mut quitter = lab
        .ns
        .enter(|| std::net::TcpStream::connect((TPA, PROXY_PORT)))
        .expect("connect to the proxy");
    let mut half = format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{big}\r\n${}\r\n",
        big.len(),
        32 << 20
    )
    .into_bytes();
    half.extend_from_slice(&vec![b'x'; 4 << 20]);
    quitter.write_all(&half).unwrap();
    drop(quitter);
    assert_eq!(call_until_ok(&mut c, &["SET", &small, "again"]), "+OK");
    assert_eq!(c.call(&["GET", &small]), "$again");
    // The half SET set nothing; the values are whole, for new clients too.
    get_is(&mut c, big, value);
    get_is(&mut c, &bigs[0].0, &bigs[0].1);
    let mut other = lab.client();
    get_is(&mut other, big, value);

    let log = lab.stop_proxy();
    let (_, _, _, dropped) = passthrough_line(&log);
    assert!(dropped > 0, "the leaving client's reply was not drained");
    assert!(
        log.contains("a client left in the middle of its request"),
        "{log}"
    );
}

/// A stopped backend: its requests time out with an error reply while
/// the other backend is served; killed: refused; restarted: served again.
#[test]
fn a_dead_backend_gives_errors_over_tpa_and_is_served_again_once_back() {
    let mut lab = Lab::new("rpf", Link::Tap(1), 2, "  timeout: 400\n");
    let mapper = lab.mapper();
    let (k0, k1) = (key_on(&mapper, 0), key_on(&mapper, 1));
    let mut c = lab.client();
    assert_eq!(c.call(&["SET", &k0, "zero"]), "+OK");
    assert_eq!(c.call(&["SET", &k1, "one"]), "+OK");

    let pid = lab.redis[0].1.as_ref().unwrap().id();
    signal(pid, "STOP");
    assert_eq!(c.call(&["GET", &k0]), "-ERR Connection timed out");
    assert_eq!(c.call(&["GET", &k1]), "$one");
    signal(pid, "CONT");

    let port = lab.redis[0].0;
    let mut child = lab.redis[0].1.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let refused = c.call(&["GET", &k0]);
    assert!(refused.starts_with("-ERR "), "{refused}");
    assert_eq!(c.call(&["GET", &k1]), "$one");

    let child = lab.start_redis(port);
    lab.redis[0].1 = Some(child);
    let reply = call_until_ok(&mut c, &["SET", &k0, "again"]);
    assert_eq!(reply, "+OK", "{}", lab.log());
    assert_eq!(c.call(&["GET", &k0]), "$again");
    let stats = lab.stats();
    assert!(stats.contains("\"server_timedout\":1"), "{stats}");
}

/// Over a veth pair with an AF_PACKET port: keys where nutcracker puts
/// them, MGET/MSET across the backends.
#[test]
fn the_proxy_serves_over_af_packet() {
    let lab = Lab::new("rpv", Link::Veth, 3, "");
    let mut c = lab.client();
    let keys: Vec<String> = (0..60).map(|i| format!("veth:{i}")).collect();
    keys_land_where_nutcracker_puts_them(&lab, &mut c, &keys);
    assert_eq!(lab.cli(&["PING"]), "PONG");
}

/// Two workers on a multi-queue TAP, each its own engine, listener and
/// server connections: 16 clients (spread over both queues by their
/// ports) each MSET and MGET their keys; every one is answered right, and
/// the stats JSON counts the clients and requests of both workers.
#[test]
fn two_workers_serve_clients_on_both_queues() {
    let lab = Lab::new("rpw", Link::Tap(2), 3, "");
    let mut clients: Vec<Conn> = (0..16).map(|_| lab.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let keys: Vec<String> = (0..24).map(|k| format!("w{i}:{k}")).collect();
        keys_land_where_nutcracker_puts_them(&lab, c, &keys);
    }
    assert_eq!(lab.cli(&["PING"]), "PONG");
    // The stats sum both workers: every one of the 17 clients (16 and
    // redis-cli's), and at least a request per MSET and per MGET. Each
    // worker posts its counters every few milliseconds (as nutcracker
    // aggregates its own every interval), so the last client may take a
    // moment to show.
    let numbers = |stats: &str, field: &str| -> Vec<u64> {
        stats
            .split(&format!("\"{field}\":"))
            .skip(1)
            .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    let deadline = Instant::now() + HANG;
    let mut stats = lab.stats();
    while numbers(&stats, "total_connections") != [17] && Instant::now() < deadline {
        sleep(Duration::from_millis(20));
        stats = lab.stats();
    }
    assert_eq!(numbers(&stats, "total_connections"), [17], "{stats}");
    let requests: u64 = numbers(&stats, "requests").iter().sum();
    assert!(requests >= 32, "{requests} requests: {stats}");
}

/// A pool on tpa's address with one backend on the namespace's kernel
/// address (reached on tpa) and one on its loopback (reached on a kernel
/// socket from the same worker): keys land where nutcracker puts them on
/// both, and the loopback backend's stop times out with an error reply.
/// Then the flag errors: `--stack tpa` without `--ip`, and `--ip` with no
/// pool on it.
#[test]
fn a_tpa_listener_with_a_loopback_backend_and_flag_errors() {
    let mut lab = Lab::new("rpm", Link::Tap(1), 1, "  timeout: 400\n");
    // A second backend on the namespace's loopback, then the proxy again
    // over both.
    let port = REDIS_BASE + 1;
    let child = lab.start_redis_in(&lab.ns, "127.0.0.1", port);
    lab.redis.push((port, Some(child)));
    let yaml = lab
        .yaml()
        .replace(&format!("{KERNEL}:{port}"), &format!("127.0.0.1:{port}"));
    assert!(yaml.contains("127.0.0.1:"), "{yaml}");
    let mut old = lab.proxy.take().unwrap();
    old.kill().unwrap();
    old.wait().unwrap();
    let conf = lab.dir.join("mixed.yml");
    std::fs::write(&conf, &yaml).unwrap();
    let log = lab.dir.join("mixed.log");
    let bin = env!("CARGO_BIN_EXE_tpa-redis-proxy");
    let mut proxy = lab
        .ns
        .command(&[bin, "-c", conf.to_str().unwrap(), "-a", "127.0.0.1"])
        .args(["-o", log.to_str().unwrap(), "--ip", "192.0.2.2/24"])
        .env("TPA_RUN_DIR", &lab.dir)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_proxy_listening(&log, &mut proxy);
    lab.proxy = Some(proxy);
    let mapper = mapper(&yaml);
    let mut c = lab.client();
    let keys: Vec<String> = (0..40).map(|i| format!("mixed:{i}")).collect();
    let mut direct = [
        lab.backend(REDIS_BASE),
        lab.ns.enter(|| Conn::new("127.0.0.1", port)),
    ];
    for k in &keys {
        assert_eq!(c.call(&["SET", k, &format!("v-{k}")]), "+OK");
    }
    assert_keys_at_home(&mapper, &keys, &mut direct);
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    let want: Vec<String> = keys.iter().map(|k| format!("$v-{k}")).collect();
    assert_eq!(c.call(&mget), format!("[{}]", want.join(", ")));
    let on_loopback = keys
        .iter()
        .find(|k| mapper.server_for(k.as_bytes(), 0) == Some(1))
        .expect("a key on the loopback backend");
    let pid = lab.redis[1].1.as_ref().unwrap().id();
    signal(pid, "STOP");
    assert_eq!(c.call(&["GET", on_loopback]), "-ERR Connection timed out");
    signal(pid, "CONT");

    let out = lab
        .ns
        .exec_output(&[bin, "-c", conf.to_str().unwrap(), "--stack", "tpa"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && err.contains("--ip: tpa needs an address"),
        "{err}"
    );
    let out = lab
        .ns
        .exec_output(&[bin, "-c", conf.to_str().unwrap(), "--ip", "192.0.2.3/24"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && err.contains("not one of tpa's addresses"),
        "{err}"
    );
}

/// Two DPDK workers on a `net_tap` vdev over a two-queue TAP: the
/// kernel's side picks each frame's queue with its own hash, so a frame
/// on the other worker's queue is handed over to its worker
/// (`DpdkDevice::worker_ports`), and each worker's server connections
/// come from ports tpa's hash gives its own queue. 16 clients' keys land
/// where nutcracker puts them; redis-cli and a pipelined redis-benchmark
/// pass; the stats count every client of both workers; SIGTERM ends the
/// proxy cleanly with every mbuf back in the queues' mempools, and each
/// worker's line says it had connections, and frames were handed over
/// between them (none dropped).
#[cfg(feature = "dpdk")]
#[test]
fn the_proxy_serves_on_two_dpdk_workers() {
    let mut lab = Lab::new("rpd", Link::DpdkTap(2), 3, "");
    let said = lab.log();
    assert!(said.contains("(tpa on dpdk:net_tap0, 2 workers)"), "{said}");
    let mut clients: Vec<Conn> = (0..16).map(|_| lab.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let keys: Vec<String> = (0..12).map(|k| format!("d{i}:{k}")).collect();
        keys_land_where_nutcracker_puts_them(&lab, c, &keys);
    }
    cli_and_a_pipelined_benchmark(&lab);
    let stats = lab.stats();
    assert!(stats.contains("\"forward_error\":0"), "{stats}");
    // 16 clients, redis-cli's 4 and redis-benchmark's 50 per test.
    let total = stats
        .split("\"total_connections\":")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no total_connections: {stats}"));
    assert!(total >= 16 + 4 + 50, "{total} clients: {stats}");
    drop(clients);
    let said = lab.stop_proxy();
    println!("the proxy's log:\n{said}");
    let workers = worker_lines(&said);
    assert_eq!(workers.len(), 2, "{said}");
    for (worker, active, passive) in workers {
        assert!(active > 0 && passive > 0, "worker {worker}: {said}");
    }
    let handed: Vec<Vec<u64>> = said
        .lines()
        .filter_map(|l| l.split_once("] queue ").map(|(_, rest)| numbers(rest)))
        .collect();
    assert_eq!(handed.len(), 2, "{said}");
    for h in &handed {
        assert_eq!(h[3], 0, "frames dropped between workers: {said}");
    }
    // Hundreds of connections: the kernel put some of their frames on
    // the other worker's queue.
    assert!(handed.iter().map(|h| h[1]).sum::<u64>() > 0, "{said}");
}

/// The numbers in `text`, in order.
fn numbers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().expect("a number"))
        .collect()
}

/// Each worker's line in the proxy's log at its end, as (worker, active
/// opens, passive opens).
fn worker_lines(log: &str) -> Vec<(u64, u64, u64)> {
    log.lines()
        .filter_map(|l| l.split_once("] worker ").map(|(_, rest)| numbers(rest)))
        .map(|n| (n[0], n[2], n[3]))
        .collect()
}

/// Kills a child on drop.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The kernel's TCP resets sent in `ns` so far.
fn out_rsts(ns: &Netns) -> u64 {
    tpa_tests::nstat::Counters::read(ns).get("TcpOutRsts")
}

/// AF_XDP beside the kernel on the host's own address (192.0.2.2 on
/// `vs`): the host's kernel serves a redis-server of its own on that
/// address and answers ping while the proxy on tpa serves port 22121
/// there, with two backends across the veth (tpa's connections, from
/// its active-open range 61000-65535 the kernel gave up) and one on the
/// host's loopback (a kernel socket). Keys land where nutcracker puts
/// them on all three; redis-cli and a pipelined redis-benchmark pass;
/// the host's kernel reset none of tpa's connections; SIGTERM ends the
/// proxy cleanly, the XDP program detached and the reserved ports given
/// back, the kernel's server still there.
#[test]
fn the_proxy_serves_on_af_xdp_beside_the_kernel() {
    const KERNEL_REDIS: u16 = 6500;
    let mut lab = Lab::new("rpx", Link::AfXdp, 2, "");
    let host = lab.host.as_ref().expect("the host's namespace");
    let said = lab.log();
    assert!(said.contains("(tpa on af_xdp:vs, 1 worker)"), "{said}");
    let _kernel = Reap(lab.start_redis_in(host, TPA, KERNEL_REDIS));
    assert!(host.ip(&["link", "show", "dev", "vs"]).contains("xdp"));
    let reserved = host.sysctl("net.ipv4.ip_local_reserved_ports");
    assert!(reserved.contains("61000-65535"), "{reserved}");
    let rsts = out_rsts(host);

    let mut c = lab.client();
    let mut kernel = lab.ns.enter(|| Conn::new(TPA, KERNEL_REDIS));
    assert_eq!(kernel.call(&["SET", "served-by", "kernel"]), "+OK");
    let keys: Vec<String> = (0..60).map(|i| format!("xdp:{i}")).collect();
    keys_land_where_nutcracker_puts_them(&lab, &mut c, &keys);
    lab.ns.ping_ok("-4", TPA);
    assert_eq!(kernel.call(&["GET", "served-by"]), "$kernel");
    assert_eq!(
        kernel.call(&["DBSIZE"]),
        ":1",
        "a proxy's key reached the kernel's redis"
    );
    cli_and_a_pipelined_benchmark(&lab);
    assert_eq!(c.call(&["GET", "xdp:7"]), "$v-xdp:7");
    let stats = lab.stats();
    assert!(stats.contains("\"forward_error\":0"), "{stats}");
    assert_eq!(
        out_rsts(lab.host.as_ref().unwrap()),
        rsts,
        "the host's kernel reset connections that were tpa's"
    );

    drop(c);
    let said = lab.stop_proxy();
    println!("the proxy's log:\n{said}");
    // tpa's connections to the two backends across the veth, the clients'.
    let workers = worker_lines(&said);
    assert_eq!(workers.len(), 1, "{said}");
    assert!(workers[0].1 >= 2 && workers[0].2 > 50, "{said}");
    let host = lab.host.as_ref().unwrap();
    assert!(!host.ip(&["link", "show", "dev", "vs"]).contains("xdp"));
    assert_eq!(host.sysctl("net.ipv4.ip_local_reserved_ports"), "");
    assert_eq!(kernel.call(&["GET", "served-by"]), "$kernel");
}
