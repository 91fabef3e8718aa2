//! tpa-redis-proxy end to end, on the kernel's sockets: real redis-server
//! backends on loopback ports in a temporary directory, the proxy binary
//! with a nutcracker config, and redis-benchmark, redis-cli and raw
//! sockets as clients (Debian packages `redis-server`, `redis-tools`).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::bench::{assert_benchmark_passes, csv_tests, redis_benchmark};
use support::client::command;
use support::cluster::free_ports;
use support::conn::Conn;
use support::lab::{
    assert_keys_at_home, call_until_ok, fresh_dir, key_on, mapper, read_stats, signal, spawn_proxy,
    start_redis, wait_listening, HANG,
};
use tpa_redis_proxy::hash::KeyMapper;

/// Backends and the proxy, killed and removed even when a check fails.
struct Lab {
    dir: PathBuf,
    redis: Vec<(u16, Option<Child>)>,
    proxy: Option<Child>,
    proxy_port: u16,
    stats_port: u16,
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

impl Lab {
    /// `backends` redis-servers and the proxy with one pool over them;
    /// `extra` is appended to the pool's YAML.
    fn new(name: &str, backends: usize, extra: &str) -> Lab {
        let dir = fresh_dir(&format!("tpa-redis-proxy-{name}"));
        let ports = free_ports(backends + 2);
        let mut lab = Lab {
            dir,
            redis: Vec::new(),
            proxy: None,
            proxy_port: ports[backends],
            stats_port: ports[backends + 1],
        };
        for &port in &ports[..backends] {
            let child = start_redis(&lab.dir, port);
            lab.redis.push((port, Some(child)));
        }
        let yaml = lab.yaml(extra);
        let conf = lab.dir.join("proxy.yml");
        std::fs::write(&conf, &yaml).unwrap();
        let mut proxy = spawn_proxy(&conf, lab.stats_port, &lab.dir.join("proxy.log"));
        wait_listening(lab.proxy_port, "tpa-redis-proxy", &mut proxy);
        lab.proxy = Some(proxy);
        lab
    }

    fn yaml(&self, extra: &str) -> String {
        let mut y = format!(
            "main:\n  listen: 127.0.0.1:{}\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n{extra}  servers:\n",
            self.proxy_port
        );
        for (port, _) in &self.redis {
            y.push_str(&format!("   - 127.0.0.1:{port}:1\n"));
        }
        y
    }

    fn mapper(&self, extra: &str) -> KeyMapper {
        mapper(&self.yaml(extra))
    }

    fn client(&self) -> Conn {
        Conn::local(self.proxy_port)
    }

    fn stats(&self) -> String {
        read_stats(self.stats_port)
    }
}

#[test]
fn every_default_redis_benchmark_test_passes_with_and_without_pipelining() {
    let lab = Lab::new("bench", 3, "  timeout: 5000\n");
    // The default tests are those redis-benchmark runs against redis itself.
    let direct = redis_benchmark(lab.redis[0].0, &[]);
    let expected: Vec<String> = csv_tests(&direct).into_iter().map(|t| t.0).collect();
    assert!(expected.len() >= 15, "direct run: {direct:?}");
    for extra in [&[][..], &["-P", "16"][..]] {
        let out = redis_benchmark(lab.proxy_port, extra);
        assert_benchmark_passes(&out, &format!("through the proxy {extra:?}"), &expected);
    }
    // `-r` spread the keys: every backend took some.
    for (port, _) in &lab.redis {
        let mut c = Conn::local(*port);
        let size = c.call(&["DBSIZE"]);
        assert!(size != ":0", "backend {port} got no key");
    }
    let stats = lab.stats();
    assert!(stats.contains("\"forward_error\":0"), "{stats}");
}

#[test]
fn keys_land_where_nutcracker_puts_them_and_mget_mset_return_what_redis_holds() {
    let lab = Lab::new("keys", 4, "");
    let mapper = lab.mapper("");
    let mut c = lab.client();
    let keys: Vec<String> = (0..120).map(|i| format!("user:{i}")).collect();
    for chunk in keys.chunks(12) {
        let mut args = vec!["MSET".to_string()];
        for k in chunk {
            args.push(k.clone());
            args.push(format!("v-{k}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.call(&args), "+OK");
    }
    // Each key is on the backend our mapping (equal to nutcracker's, see
    // nutcracker_mapping.rs) chooses, and only there.
    let mut direct: Vec<Conn> = lab.redis.iter().map(|(p, _)| Conn::local(*p)).collect();
    assert_keys_at_home(&mapper, &keys, &mut direct);
    // MGET across every backend, with missing keys, in the request's order.
    let mut args = vec!["MGET", "nokey"];
    args.extend(keys.iter().rev().map(String::as_str));
    let got = c.call(&args);
    let mut want = vec!["$nil".to_string()];
    want.extend(keys.iter().rev().map(|k| format!("$v-{k}")));
    assert_eq!(got, format!("[{}]", want.join(", ")));
    let mut del = vec!["DEL"];
    del.extend(keys[..30].iter().map(String::as_str));
    del.push("nokey");
    assert_eq!(c.call(&del), ":30");
    let mut exists = vec!["EXISTS"];
    exists.extend(keys[..40].iter().map(String::as_str));
    assert_eq!(c.call(&exists), ":10");
    // redis-cli through the proxy.
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &lab.proxy_port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli (Debian package redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "cli-key", "hello"]), "OK");
    assert_eq!(cli(&["GET", "cli-key"]), "hello");
    assert_eq!(cli(&["MGET", "cli-key", "user:99"]), "hello\nv-user:99");
    assert!(cli(&["KEYS", "*"]).contains("not supported by the proxy"));
}

#[test]
fn a_large_value_goes_through_whole() {
    let lab = Lab::new("large", 2, "");
    let mut c = lab.client();
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
}

#[test]
fn a_malformed_client_gets_an_error_and_only_it_is_closed() {
    let lab = Lab::new("malformed", 2, "");
    let mut good = lab.client();
    assert_eq!(good.call(&["SET", "k", "v"]), "+OK");
    let mut bad = lab.client();
    bad.send(b"*2\r\n$3\r\nGET\r\n$x\r\n");
    assert_eq!(bad.reply(), "-ERR Protocol error: invalid number");
    assert!(bad.closed());
    assert_eq!(good.call(&["GET", "k"]), "$v");
}

#[test]
fn a_dead_backend_gives_errors_not_a_hang_and_is_served_again_once_back() {
    let lab_extra = "  timeout: 400\n";
    let mut lab = Lab::new("failure", 2, lab_extra);
    let mapper = lab.mapper(lab_extra);
    let (k0, k1) = (key_on(&mapper, 0), key_on(&mapper, 1));
    let mut c = lab.client();
    assert_eq!(c.call(&["SET", &k0, "zero"]), "+OK");
    assert_eq!(c.call(&["SET", &k1, "one"]), "+OK");

    // Stopped (SIGSTOP): the request times out and the client hears it.
    let pid = lab.redis[0].1.as_ref().unwrap().id();
    signal(pid, "STOP");
    assert_eq!(c.call(&["GET", &k0]), "-ERR Connection timed out");
    assert_eq!(c.call(&["GET", &k1]), "$one");
    signal(pid, "CONT");

    // Killed: refused at once, the other backend still served.
    let (port, child) = &mut lab.redis[0];
    let port = *port;
    let mut child = child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let refused = c.call(&["GET", &k0]);
    assert!(
        refused == "-ERR Connection refused" || refused == "-ERR Connection closed by the server",
        "{refused}"
    );
    assert_eq!(c.call(&["GET", &k1]), "$one");

    // Restarted: served again (an empty redis: the value is gone).
    let child = start_redis(&lab.dir, port);
    lab.redis[0].1 = Some(child);
    let reply = call_until_ok(&mut c, &["SET", &k0, "again"]);
    assert_eq!(reply, "+OK");
    assert_eq!(c.call(&["GET", &k0]), "$again");
    let stats = lab.stats();
    assert!(stats.contains("\"server_timedout\":1"), "{stats}");
}

#[test]
fn an_ejected_backend_s_keys_move_to_the_others_until_its_retry() {
    let extra = "  timeout: 400\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n";
    let mut lab = Lab::new("eject", 2, extra);
    let mapper = lab.mapper(extra);
    let k0 = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| mapper.server_for(k.as_bytes(), 0) == Some(0))
        .unwrap();
    let mut c = lab.client();
    assert_eq!(c.call(&["SET", &k0, "zero"]), "+OK");
    let mut child = lab.redis[0].1.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // Its connection's end is the one failure that ejects it (or, if the
    // proxy sees the end only when it next writes, the next request's).
    let deadline = Instant::now() + HANG;
    while !lab.stats().contains("\"server_ejects\":1") {
        let reply = c.call(&["GET", &k0]);
        assert!(reply.starts_with("-ERR") || reply == "$nil", "{reply}");
        assert!(Instant::now() < deadline, "never ejected: {}", lab.stats());
        sleep(Duration::from_millis(20));
    }
    // The key is now served by the other backend.
    assert_eq!(c.call(&["GET", &k0]), "$nil");
    assert_eq!(c.call(&["SET", &k0, "moved"]), "+OK");
    let mut other = Conn::local(lab.redis[1].0);
    assert_eq!(other.call(&["GET", &k0]), "$moved");
    assert!(lab.stats().contains("\"server_ejects\":1"));
}

#[test]
fn auth_and_select_per_pool() {
    let lab = Lab::new("auth", 1, "  redis_db: 2\n");
    let mut c = lab.client();
    assert_eq!(c.call(&["SET", "k", "in-db-2"]), "+OK");
    let mut direct = Conn::local(lab.redis[0].0);
    assert_eq!(direct.call(&["GET", "k"]), "$nil");
    assert_eq!(direct.call(&["SELECT", "2"]), "+OK");
    assert_eq!(direct.call(&["GET", "k"]), "$in-db-2");
    assert_eq!(
        c.call(&["AUTH", "x"]),
        "-ERR Client sent AUTH, but no password is set"
    );
}

#[test]
fn clients_must_auth_and_the_proxy_auths_its_server_connections() {
    let lab = Lab::new("redis-auth", 1, "  redis_auth: sekret\n");
    // The backend asks for the password too (set before the proxy's first
    // connection to it, which is made on the first request).
    let mut direct = Conn::local(lab.redis[0].0);
    assert_eq!(
        direct.call(&["CONFIG", "SET", "requirepass", "sekret"]),
        "+OK"
    );
    let mut c = lab.client();
    assert_eq!(c.call(&["GET", "k"]), "-NOAUTH Authentication required");
    assert_eq!(c.call(&["AUTH", "wrong"]), "-ERR invalid password");
    assert_eq!(c.call(&["AUTH", "sekret"]), "+OK");
    assert_eq!(c.call(&["SET", "k", "v"]), "+OK");
    assert_eq!(c.call(&["GET", "k"]), "$v");
}

#[test]
fn a_pool_on_unix_sockets_both_sides() {
    let dir = std::env::temp_dir().join(format!("tpa-redis-proxy-unix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut lab = Lab {
        dir: dir.clone(),
        redis: Vec::new(),
        proxy: None,
        proxy_port: 0,
        stats_port: free_ports(1)[0],
    };
    let redis_sock = dir.join("redis.sock");
    let proxy_sock = dir.join("proxy.sock");
    let redis = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--unixsocket",
            redis_sock.to_str().unwrap(),
            "--save",
            "",
        ])
        .args(["--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    lab.redis.push((0, Some(redis)));
    let yaml = format!(
        "u:\n  listen: {} 0600\n  redis: true\n  servers:\n   - {}:1\n",
        proxy_sock.display(),
        redis_sock.display()
    );
    let conf = dir.join("proxy.yml");
    std::fs::write(&conf, yaml).unwrap();
    let proxy = spawn_proxy(&conf, lab.stats_port, &dir.join("proxy.log"));
    lab.proxy = Some(proxy);
    let deadline = Instant::now() + HANG;
    let stream = loop {
        if redis_sock.exists() {
            if let Ok(s) = std::os::unix::net::UnixStream::connect(&proxy_sock) {
                break s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no proxy on {}",
            proxy_sock.display()
        );
        sleep(Duration::from_millis(20));
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&proxy_sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    stream.set_read_timeout(Some(HANG)).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    w.write_all(&command(&[b"SET", b"k", b"over-unix"]))
        .unwrap();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    line.clear();
    w.write_all(&command(&[b"GET", b"k"])).unwrap();
    r.read_line(&mut line).unwrap();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "$9\r\nover-unix\r\n");
}

/// Every field name of a stats JSON, with its path (`pool/server/field`),
/// pool and server names replaced by their kind.
fn stats_fields(json: &str) -> Vec<String> {
    let value: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let mut out = Vec::new();
    for (k, v) in value.as_object().unwrap() {
        match v.as_object() {
            None => out.push(k.clone()),
            Some(pool) => {
                for (pk, pv) in pool {
                    match pv.as_object() {
                        None => out.push(format!("pool/{pk}")),
                        Some(server) => {
                            out.extend(server.keys().map(|f| format!("pool/server/{f}")))
                        }
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn stats_have_nutcracker_s_fields() {
    let lab = Lab::new("stats", 2, "");
    let mut c = lab.client();
    assert_eq!(c.call(&["SET", "k", "v"]), "+OK");
    let ours = lab.stats();
    let ports = free_ports(2);
    let yaml = lab
        .yaml("")
        .replace(&lab.proxy_port.to_string(), &ports[0].to_string());
    let conf = lab.dir.join("nutcracker.yml");
    std::fs::write(&conf, yaml).unwrap();
    let mut nutcracker = Command::new("nutcracker")
        .args([
            "-c",
            conf.to_str().unwrap(),
            "-s",
            &ports[1].to_string(),
            "-a",
            "127.0.0.1",
        ])
        .args(["-o", lab.dir.join("nutcracker.log").to_str().unwrap()])
        .spawn()
        .expect("nutcracker (Debian package nutcracker)");
    wait_listening(ports[1], "nutcracker's stats", &mut nutcracker);
    let mut s = TcpStream::connect(("127.0.0.1", ports[1])).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    let mut theirs = String::new();
    s.read_to_string(&mut theirs).unwrap();
    let _ = nutcracker.kill();
    let _ = nutcracker.wait();
    assert_eq!(
        stats_fields(&ours),
        stats_fields(&theirs),
        "ours: {ours}\ntheirs: {theirs}"
    );
    assert!(ours.contains("\"requests\":1,"), "{ours}");
}

#[test]
fn a_flooding_client_is_held_back_and_answered_in_order_while_others_are_served() {
    let lab = Lab::new("flood", 2, "");
    let mut setup = lab.client();
    assert_eq!(setup.call(&["SET", "k", "v"]), "+OK");
    // 20000 pipelined requests written by a thread, none read meanwhile:
    // the proxy holds at most its bound in flight and stops reading.
    const N: usize = 20_000;
    let flood = TcpStream::connect(("127.0.0.1", lab.proxy_port)).unwrap();
    flood.set_read_timeout(Some(HANG)).unwrap();
    let mut writer = flood.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..N {
            let key = if i % 2 == 0 { "k" } else { "missing" };
            batch.extend(command(&[b"GET", key.as_bytes()]));
        }
        writer.write_all(&batch).unwrap();
    });
    sleep(Duration::from_millis(300));
    // Another client is served meanwhile.
    let mut other = lab.client();
    assert_eq!(other.call(&["PING"]), "+PONG");
    assert_eq!(other.call(&["GET", "k"]), "$v");
    // Every reply arrives, in request order.
    let mut flood = Conn::over(flood);
    for i in 0..N {
        let want = if i % 2 == 0 { "$v" } else { "$nil" };
        assert_eq!(flood.reply(), want, "reply {i}");
    }
    sender.join().unwrap();
}
