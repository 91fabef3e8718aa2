//! tpa-redis-proxy on tpa's own TCP stack, end to end: a network
//! namespace made here holds the redis-servers (on the kernel's side of a
//! TAP, 192.0.2.1) and the clients (redis-cli, redis-benchmark, raw
//! sockets); the proxy takes the TAP's other side with tpa's address
//! 192.0.2.2, so both its client connections and its server connections
//! are tpa's. Then the same over a veth pair with an AF_PACKET port, and
//! two workers on a multi-queue TAP.
//!
//! Run as root: `cargo test -p tpa-redis-proxy --test proxy_tpa`
//! (Debian packages `redis-server`, `redis-tools`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tpa_redis_proxy::config;
use tpa_redis_proxy::hash::KeyMapper;
use tpa_tests::netns::Netns;

/// A hang guard on every wait (no speed is asserted).
const HANG: Duration = Duration::from_secs(20);

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
/// when a check fails (the namespace goes last).
struct Lab {
    redis: Vec<(u16, Option<Child>)>,
    proxy: Option<Child>,
    dir: PathBuf,
    extra: String,
    ns: Netns,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let children = self
            .redis
            .iter_mut()
            .filter_map(|(_, c)| c.as_mut())
            .chain(self.proxy.as_mut());
        for child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How the proxy reaches the namespace.
enum Link {
    /// A TAP with this many queues (workers).
    Tap(u16),
    /// A veth pair, tpa on `vt` through AF_PACKET.
    Veth,
}

impl Lab {
    /// A namespace over `link`, `backends` redis-servers in it and the
    /// proxy on tpa with one pool over them (`extra` appended to the
    /// pool's YAML).
    fn new(tag: &str, link: Link, backends: usize, extra: &str) -> Lab {
        let (ns, port, workers) = match link {
            Link::Tap(1) => (Netns::with_tap(tag), "tap:tpa0", 1),
            Link::Tap(n) => (Netns::with_multiqueue_tap(tag), "tap:tpa0", n),
            Link::Veth => (Netns::with_veth(tag), "af_packet:vt", 1),
        };
        let dir =
            std::env::temp_dir().join(format!("tpa-redis-proxy-tpa-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            redis: Vec::new(),
            proxy: None,
            dir,
            extra: extra.to_string(),
            ns,
        };
        for i in 0..backends {
            let port = REDIS_BASE + i as u16;
            let child = lab.start_redis(port);
            lab.redis.push((port, Some(child)));
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
        let mut proxy = lab
            .ns
            .command(&argv)
            .stdin(Stdio::null())
            .spawn()
            .expect("start tpa-redis-proxy");
        let deadline = Instant::now() + HANG;
        loop {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            if said.contains("listening on") {
                assert!(said.contains("(tpa on "), "{said}");
                break;
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
        lab.proxy = Some(proxy);
        lab
    }

    fn start_redis(&self, port: u16) -> Child {
        let child = self
            .ns
            .command(&[
                "redis-server",
                "--port",
                &port.to_string(),
                "--bind",
                KERNEL,
            ])
            .args(["--protected-mode", "no", "--save", "", "--appendonly", "no"])
            .args(["--dir", self.dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        let deadline = Instant::now() + HANG;
        while self
            .ns
            .enter(|| TcpStream::connect((KERNEL, port)))
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} never listened"
            );
            sleep(Duration::from_millis(20));
        }
        child
    }

    fn yaml(&self) -> String {
        let mut y = format!(
            "main:\n  listen: {TPA}:{PROXY_PORT}\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n{}  servers:\n",
            self.extra
        );
        for (port, _) in &self.redis {
            y.push_str(&format!("   - {KERNEL}:{port}:1\n"));
        }
        y
    }

    fn mapper(&self) -> KeyMapper {
        let pool = &config::parse(&self.yaml()).unwrap()[0];
        let points: Vec<_> = pool.servers.iter().map(|s| s.point()).collect();
        KeyMapper::new(pool.hash, pool.hash_tag, pool.distribution, &points)
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
        self.ns.enter(|| {
            let mut s = TcpStream::connect(("127.0.0.1", STATS_PORT)).unwrap();
            s.set_read_timeout(Some(HANG)).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
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

/// A raw RESP connection.
struct Conn {
    reader: BufReader<TcpStream>,
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Conn {
    fn new(host: &str, port: u16) -> Conn {
        let s = TcpStream::connect((host, port))
            .unwrap_or_else(|e| panic!("connect to {host}:{port}: {e}"));
        s.set_read_timeout(Some(HANG)).unwrap();
        Conn {
            reader: BufReader::new(s),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// One reply, in a readable form: `+x`, `-x`, `:n`, `$x` / `$nil`,
    /// arrays as `[a, b]`.
    fn reply(&mut self) -> String {
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .expect("a reply (the proxy hung?)");
        assert!(line.ends_with(b"\r\n"), "reply line {line:?}");
        let text = String::from_utf8_lossy(&line[1..line.len() - 2]).to_string();
        match line[0] {
            b'$' if text == "-1" => "$nil".into(),
            b'$' => {
                let mut data = vec![0; text.parse::<usize>().unwrap() + 2];
                self.reader.read_exact(&mut data).unwrap();
                format!("${}", String::from_utf8_lossy(&data[..data.len() - 2]))
            }
            b'*' => {
                let items: Vec<String> = (0..text.parse::<usize>().unwrap())
                    .map(|_| self.reply())
                    .collect();
                format!("[{}]", items.join(", "))
            }
            kind => format!("{}{text}", kind as char),
        }
    }

    fn call(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&command(&args));
        self.reply()
    }

    /// Whether the proxy closed the connection (EOF on the next read).
    fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

/// The tests a redis-benchmark CSV run reports, with their requests/s.
fn csv_tests(out: &Output) -> Vec<(String, f64)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut fields = l.split(',').map(|f| f.trim_matches('"'));
            let name = fields.next()?.to_string();
            let rps = fields.next()?.parse().ok()?;
            Some((name, rps))
        })
        .collect()
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
    let mut direct: Vec<Conn> = lab.redis.iter().map(|(p, _)| lab.backend(*p)).collect();
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
    let mut args = vec!["MGET", "nokey"];
    args.extend(keys.iter().rev().map(String::as_str));
    let mut want = vec!["$nil".to_string()];
    want.extend(keys.iter().rev().map(|k| format!("$v-{k}")));
    assert_eq!(c.call(&args), format!("[{}]", want.join(", ")));
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
        let out = lab.benchmark(TPA, PROXY_PORT, extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{extra:?}: {stdout}\n{stderr}");
        // Its only complaint may be that CONFIG (refused by the proxy) failed.
        for line in stderr.lines().chain(stdout.lines()) {
            assert!(
                !line.contains("rror") || line.contains("Could not fetch server CONFIG"),
                "{extra:?}: {line}"
            );
        }
        let tests = csv_tests(&out);
        let names: Vec<String> = tests.iter().map(|t| t.0.clone()).collect();
        assert_eq!(names, expected, "{extra:?}");
        for (name, rps) in &tests {
            assert!(*rps > 0.0, "{extra:?}: {name} at {rps} requests/s");
        }
        println!("through the proxy on tpa {extra:?}:\n{stdout}");
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

/// A stopped backend: its requests time out with an error reply while
/// the other backend is served; killed: refused; restarted: served again.
#[test]
fn a_dead_backend_gives_errors_over_tpa_and_is_served_again_once_back() {
    let mut lab = Lab::new("rpf", Link::Tap(1), 2, "  timeout: 400\n");
    let mapper = lab.mapper();
    let key_on = |server: usize| {
        (0..)
            .map(|i| format!("k{i}"))
            .find(|k| mapper.server_for(k.as_bytes(), 0) == Some(server as u32))
            .unwrap()
    };
    let (k0, k1) = (key_on(0), key_on(1));
    let mut c = lab.client();
    assert_eq!(c.call(&["SET", &k0, "zero"]), "+OK");
    assert_eq!(c.call(&["SET", &k1, "one"]), "+OK");

    let pid = lab.redis[0].1.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(c.call(&["GET", &k0]), "-ERR Connection timed out");
    assert_eq!(c.call(&["GET", &k1]), "$one");
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());

    let port = lab.redis[0].0;
    let mut child = lab.redis[0].1.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let refused = c.call(&["GET", &k0]);
    assert!(refused.starts_with("-ERR "), "{refused}");
    assert_eq!(c.call(&["GET", &k1]), "$one");

    let child = lab.start_redis(port);
    lab.redis[0].1 = Some(child);
    let mut reply = String::new();
    for _ in 0..50 {
        reply = c.call(&["SET", &k0, "again"]);
        if reply == "+OK" {
            break;
        }
        sleep(Duration::from_millis(50));
    }
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
    let child = lab
        .ns
        .command(&[
            "redis-server",
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--dir", lab.dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("redis-server");
    let deadline = Instant::now() + HANG;
    while lab
        .ns
        .enter(|| TcpStream::connect(("127.0.0.1", port)))
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "redis-server on {port} never listened"
        );
        sleep(Duration::from_millis(20));
    }
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
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + HANG;
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("listening on")
    {
        assert!(proxy.try_wait().unwrap().is_none(), "the proxy exited");
        assert!(Instant::now() < deadline, "the proxy never listened");
        sleep(Duration::from_millis(20));
    }
    lab.proxy = Some(proxy);
    let pool = &config::parse(&yaml).unwrap()[0];
    let points: Vec<_> = pool.servers.iter().map(|s| s.point()).collect();
    let mapper = KeyMapper::new(pool.hash, pool.hash_tag, pool.distribution, &points);
    let mut c = lab.client();
    let keys: Vec<String> = (0..40).map(|i| format!("mixed:{i}")).collect();
    let mut direct = [
        lab.backend(REDIS_BASE),
        lab.ns.enter(|| Conn::new("127.0.0.1", port)),
    ];
    for k in &keys {
        assert_eq!(c.call(&["SET", k, &format!("v-{k}")]), "+OK");
    }
    for k in &keys {
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
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    let want: Vec<String> = keys.iter().map(|k| format!("$v-{k}")).collect();
    assert_eq!(c.call(&mget), format!("[{}]", want.join(", ")));
    let on_loopback = keys
        .iter()
        .find(|k| mapper.server_for(k.as_bytes(), 0) == Some(1))
        .expect("a key on the loopback backend");
    let pid = lab.redis[1].1.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(c.call(&["GET", on_loopback]), "-ERR Connection timed out");
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());

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
