//! tpa-redis-proxy in cluster mode, end to end: a real 6-node Redis
//! Cluster (support/cluster.rs), the binary with a `redis_cluster: true`
//! pool whose only seed is one master, and clients that know nothing of
//! the cluster. On kernel sockets: keys on every master, MGET/DEL across
//! slots, a slot migrated while its keys are read (ASK, then MOVED), the
//! proxy's own CLUSTER INFO, DBSIZE and INFO summed over the masters,
//! and redis-benchmark without errors. On tpa's stack over a TAP (the
//! cluster in the TAP's namespace, the proxy's client and server
//! connections all tpa's): slots migrated and a master failed over while
//! several clients write and read, every reply checked.
//!
//! Run as root (the TAP test makes a network namespace): `cargo test -p
//! tpa-redis-proxy --test proxy_cluster` (Debian packages `redis-server`,
//! `redis-tools`).

mod support;

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::bench::{assert_benchmark_passes, redis_benchmark};
use support::client::{text, Client};
use support::cluster::{free_ports, Cluster};
use support::conn::Conn;
use support::lab::{
    fresh_dir, read_stats, signal, spawn_proxy, wait_listening, wait_proxy_listening, HANG,
};
use tpa_redis_proxy::hash::cluster_slot;
use tpa_tests::netns::Netns;

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_proxy(cluster: &Cluster, dir: &std::path::Path) -> (Proxy, u16) {
    let ports = free_ports(2);
    let conf = dir.join("proxy.yml");
    std::fs::write(
        &conf,
        format!(
            "c:\n  listen: 127.0.0.1:{}\n  redis_cluster: true\n  timeout: 2000\n  servers:\n   - 127.0.0.1:{}:1\n",
            ports[0], cluster.masters()[0]
        ),
    )
    .unwrap();
    let mut child = spawn_proxy(&conf, ports[1], &dir.join("proxy.log"));
    wait_listening(ports[0], "the proxy", &mut child);
    (Proxy(child), ports[0])
}

#[test]
fn a_cluster_behind_the_proxy_looks_like_one_redis() {
    let cluster = Cluster::start("proxy");
    let dir = std::env::temp_dir().join(format!("tpa-redis-proxy-cl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_proxy, port) = start_proxy(&cluster, &dir);
    let mut c = Client::connect(port);

    // Keys over every slot range, each read back.
    let keys: Vec<String> = (0..300).map(|i| format!("key:{i}")).collect();
    for k in &keys {
        assert_eq!(
            text(&c.call_str(&["SET", k, &format!("v{k}")])),
            "+OK\r\n",
            "SET {k}"
        );
    }
    for k in &keys {
        assert_eq!(c.bulk(&["GET", k]), format!("v{k}"));
    }
    // Every master holds some: the proxy spread them as the cluster says.
    for m in cluster.masters() {
        let size = text(&cluster.client(m).call_str(&["DBSIZE"]));
        assert_ne!(size, ":0\r\n", "master {m} has no key");
    }
    // Split per slot and merged in key order.
    let mut mget = vec!["MGET", "nokey"];
    mget.extend(keys[..50].iter().map(String::as_str));
    let reply = text(&c.call_str(&mget));
    let mut want = String::from("*51\r\n$-1\r\n");
    for k in &keys[..50] {
        want.push_str(&format!("${}\r\nv{k}\r\n", k.len() + 1));
    }
    assert_eq!(reply, want);
    let mut del = vec!["DEL"];
    del.extend(keys[250..].iter().map(String::as_str));
    assert_eq!(text(&c.call_str(&del)), ":50\r\n");
    // Keys of two slots in one keyed command: redis's own refusal.
    let crossslot = text(&c.call_str(&["RENAME", "key:1", "key:2"]));
    assert!(crossslot.starts_with("-CROSSSLOT"), "{crossslot}");
    // The proxy is a one-node cluster to cluster-aware clients.
    let info = text(&c.call_str(&["CLUSTER", "INFO"]));
    assert!(info.contains("cluster_state:ok"), "{info}");
    let slots = text(&c.call_str(&["CLUSTER", "SLOTS"]));
    assert!(slots.contains(&format!(":{port}\r\n")), "{slots}");
    // DBSIZE and INFO's keyspace: the masters' summed.
    let size = cluster.dbsize();
    assert_eq!(size, 250);
    assert_eq!(text(&c.call_str(&["DBSIZE"])), format!(":{size}\r\n"));
    let info = c.bulk(&["INFO", "keyspace"]);
    assert!(info.contains(&format!("db0:keys={size},")), "{info}");

    // A slot moved while its keys are read: ASK during, MOVED after.
    let key = "key:7";
    let slot = cluster_slot(key.as_bytes());
    let masters = cluster.masters();
    let owner = *masters
        .iter()
        .find(|&&m| {
            let r = text(&cluster.client(m).call_str(&[
                "CLUSTER",
                "COUNTKEYSINSLOT",
                &slot.to_string(),
            ]));
            r != ":0\r\n"
        })
        .expect("the slot's owner");
    let target = *masters.iter().find(|&&m| m != owner).unwrap();
    cluster.begin_migration(slot, owner, target);
    assert_eq!(c.bulk(&["GET", key]), format!("v{key}"));
    while cluster.migrate_keys(slot, owner, target, 10) > 0 {}
    // The key is on the target now, the slot still the owner's: ASK.
    assert_eq!(c.bulk(&["GET", key]), format!("v{key}"));
    cluster.finish_migration(slot, owner, target);
    assert_eq!(c.bulk(&["GET", key]), format!("v{key}"));
    assert_eq!(text(&c.call_str(&["SET", key, "after"])), "+OK\r\n");
    assert_eq!(
        text(&cluster.client(target).call_str(&["GET", key])),
        "$5\r\nafter\r\n"
    );

    // redis-benchmark through the proxy: no error line.
    let out = redis_benchmark(port, &["-t", "set,get,mset"]);
    let expected = ["SET", "GET", "MSET (10 keys)"].map(String::from);
    assert_benchmark_passes(&out, "through the proxy", &expected);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The kernel's address in the TAP's namespace (the cluster's nodes).
const KERNEL: &str = "192.0.2.1";
/// tpa's address (the proxy's listener and its server connections).
const TPA: &str = "192.0.2.2";
/// The proxy's port on tpa.
const PROXY_PORT: u16 = 22121;
/// The proxy's stats port (a kernel socket on the namespace's loopback).
const STATS_PORT: u16 = 22222;
/// Clients writing and reading at once.
const CLIENTS: usize = 4;

/// A number field of the stats JSON (the first one of that name: the
/// only pool's).
fn stat(json: &str, field: &str) -> u64 {
    let key = format!("\"{field}\":");
    let at = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {field} in the stats: {json}"))
        + key.len();
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// The first 8 characters of the node id `redis-cli --cluster check`
/// printed (`M: <id> ...`).
fn proxy_id(printed: &str) -> String {
    let at = printed
        .find("M: ")
        .unwrap_or_else(|| panic!("no M: line in {printed}"))
        + 3;
    printed[at..at + 8].to_string()
}

/// How long the load retries a command redis refused with
/// `-CLUSTERDOWN`: while a master fails over, a node may see the cluster
/// fail for some milliseconds (another node's slots briefly unowned in
/// its view) and refuse every command. That is redis's own reply, which
/// the proxy passes on (refreshing its slot map), and the command was not
/// run, so the load retries it as a cluster client would.
const CLUSTER_DOWN_RETRY: Duration = Duration::from_secs(5);

/// `c.call(args)`, again every 10 ms while redis answers `-CLUSTERDOWN`,
/// for [`CLUSTER_DOWN_RETRY`] at most (then the refusal is returned, and
/// the caller's check fails); each retry is counted in `retries`.
fn call_through_cluster_down(c: &mut Conn, args: &[&str], retries: &AtomicU64) -> String {
    let deadline = Instant::now() + CLUSTER_DOWN_RETRY;
    loop {
        let reply = c.call(args);
        if !reply.starts_with("-CLUSTERDOWN") || Instant::now() >= deadline {
            return reply;
        }
        retries.fetch_add(1, Ordering::SeqCst);
        sleep(Duration::from_millis(10));
    }
}

/// One client's load: round after round, SET then GET of each of its
/// keys (each reply checked; a `-CLUSTERDOWN` from redis retried, see
/// [`CLUSTER_DOWN_RETRY`]), until `stop`; returns each key's last value.
fn load(
    ns: &Netns,
    client: usize,
    keys: &[String],
    ops: &AtomicU64,
    retries: &AtomicU64,
    stop: &AtomicBool,
) -> HashMap<String, String> {
    let mut c = ns.enter(|| Conn::new(TPA, PROXY_PORT));
    let mut last = HashMap::new();
    for round in 0u64.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        for key in keys {
            let value = format!("c{client}r{round}");
            assert_eq!(
                call_through_cluster_down(&mut c, &["SET", key, &value], retries),
                "+OK",
                "SET {key}, round {round}"
            );
            assert_eq!(
                call_through_cluster_down(&mut c, &["GET", key], retries),
                format!("${value}"),
                "GET {key}, round {round}"
            );
            last.insert(key.clone(), value);
            ops.fetch_add(2, Ordering::SeqCst);
        }
    }
    last
}

#[test]
fn slots_migrate_and_a_master_fails_over_under_load_through_tpa() {
    // Two workers on a two-queue TAP: each has its own engine, router
    // and server connections; the clients land on either.
    let cluster = Cluster::start_in("tpa", Netns::with_multiqueue_tap("pcl"), KERNEL);
    let ns = cluster.ns().unwrap();
    let masters = cluster.masters();
    let dir = fresh_dir("tpa-redis-proxy-cl-tpa");
    let conf = dir.join("proxy.yml");
    let log = dir.join("proxy.log");
    // A minute between periodic refreshes: the map changes reach the
    // proxy by MOVED (and the refresh that follows), as the test wants.
    std::fs::write(
        &conf,
        format!(
            "c:\n  listen: {TPA}:{PROXY_PORT}\n  redis_cluster: true\n  redis_cluster_refresh: 60000\n  timeout: 5000\n  servers:\n   - {KERNEL}:{}:1\n",
            masters[0]
        ),
    )
    .unwrap();
    let stats = STATS_PORT.to_string();
    let proxy = ns
        .command(&[env!("CARGO_BIN_EXE_tpa-redis-proxy")])
        .args(["-c", conf.to_str().unwrap(), "-o", log.to_str().unwrap()])
        .args(["-s", &stats, "-a", "127.0.0.1"])
        .args([
            "--port",
            "tap:tpa0",
            "--ip",
            "192.0.2.2/24",
            "--workers",
            "2",
        ])
        .env("TPA_RUN_DIR", &dir)
        .stdin(Stdio::null())
        .spawn()
        .expect("start tpa-redis-proxy");
    let mut proxy = Proxy(proxy);
    let said = wait_proxy_listening(&log, &mut proxy.0);
    assert!(said.contains("(tpa on "), "{said}");

    // Two slots to migrate (hash tags), each client's keys in both and
    // over other slots.
    let tags = ["{mig0}", "{mig1}"];
    let slots: Vec<u16> = tags.iter().map(|t| cluster_slot(t.as_bytes())).collect();
    assert_ne!(slots[0], slots[1]);
    let keys: Vec<Vec<String>> = (0..CLIENTS)
        .map(|c| {
            let mut mine: Vec<String> = tags
                .iter()
                .flat_map(|t| (0..15).map(move |i| format!("{t}:c{c}:{i}")))
                .collect();
            mine.extend((0..10).map(|i| format!("spread:c{c}:{i}")));
            mine
        })
        .collect();
    let ops = AtomicU64::new(0);
    let retries = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut probe = ns.enter(|| Conn::new(TPA, PROXY_PORT));
    let started = Instant::now();

    let last: Vec<HashMap<String, String>> = std::thread::scope(|scope| {
        // The clients stop when the test does, also when it fails.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let _stop = Stop(&stop);
        let loads: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(c, mine)| {
                let (ops, retries, stop) = (&ops, &retries, &stop);
                scope.spawn(move || load(ns, c, mine, ops, retries, stop))
            })
            .collect();
        // Each step after the load has made progress, so that steps and
        // requests interleave.
        let progress = || {
            let since = ops.load(Ordering::SeqCst);
            let deadline = Instant::now() + HANG;
            while ops.load(Ordering::SeqCst) < since + 40 {
                assert!(
                    loads.iter().all(|l| !l.is_finished()),
                    "a client stopped (its assertion failed)"
                );
                assert!(Instant::now() < deadline, "the load made no progress");
                sleep(Duration::from_millis(1));
            }
        };
        for (&slot, tag) in slots.iter().zip(tags) {
            let from = cluster.owner(slot);
            let to = *masters.iter().find(|&&m| m != from).unwrap();
            progress();
            cluster.begin_migration(slot, from, to);
            loop {
                progress();
                if cluster.migrate_keys(slot, from, to, 4) == 0 {
                    break;
                }
            }
            // A key of the slot, on `to` now, the slot still `from`'s:
            // ASK. After the slot moves: MOVED.
            let key = format!("{tag}:c0:0");
            assert!(probe.call(&["GET", &key]).starts_with("$c0r"), "GET {key}");
            progress();
            cluster.finish_migration(slot, from, to);
            assert!(probe.call(&["GET", &key]).starts_with("$c0r"), "GET {key}");
        }
        // A replica takes over its master while the load runs.
        progress();
        let replica = cluster.replica_of(masters[1]);
        cluster.failover(replica);
        progress();
        progress();
        stop.store(true, Ordering::SeqCst);
        loads.into_iter().map(|l| l.join().unwrap()).collect()
    });
    println!(
        "{} requests through the proxy in {:?} (2 migrations, 1 failover; {} retried after redis's CLUSTERDOWN)",
        ops.load(Ordering::SeqCst),
        started.elapsed(),
        retries.load(Ordering::SeqCst)
    );

    // Every key reads back through the proxy, with its last value.
    let mut c = ns.enter(|| Conn::new(TPA, PROXY_PORT));
    let mut written = 0;
    for mine in &last {
        for (key, value) in mine {
            assert_eq!(c.call(&["GET", key]), format!("${value}"), "GET {key}");
            written += 1;
        }
    }
    assert_eq!(written, CLIENTS * 40);
    // DBSIZE and INFO's keyspace: the masters' summed (the new master's
    // count included).
    let size = cluster.dbsize();
    assert_eq!(size, written as i64);
    // A GET above that reached the demoted master was redirected (MOVED)
    // and set off a refresh; until that refresh's map is in, DBSIZE may
    // still go to a master of the old map as well. The map converges
    // within the refresh gap and one round trip: a bounded wait.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = c.call(&["DBSIZE"]);
        if got == format!(":{size}") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "DBSIZE through the proxy still {got}, the masters hold {size}"
        );
        sleep(Duration::from_millis(100));
    }
    let info = c.call(&["INFO"]);
    assert!(info.contains(&format!("db0:keys={size},")), "{info}");
    assert!(info.contains("cluster_state:ok"), "{info}");
    // redis-cli's cluster check (INFO, DBSIZE, CLUSTER NODES) sees one
    // master owning every slot, holding every key.
    let out = ns.exec_output(&[
        "redis-cli",
        "--cluster",
        "check",
        &format!("{TPA}:{PROXY_PORT}"),
    ]);
    let printed = text(&out.stdout);
    for line in [
        format!(
            "{TPA}:{PROXY_PORT} ({}...) -> {size} keys | 16384 slots | 0 slaves.",
            &proxy_id(&printed)
        ),
        "[OK] All 16384 slots covered.".to_string(),
    ] {
        assert!(printed.contains(&line), "{line:?} not in {printed}");
    }
    assert!(out.status.success(), "{printed}{}", text(&out.stderr));

    // The redirects were taken (and counted), none ran out.
    let deadline = Instant::now() + HANG;
    let json = loop {
        let json = ns.enter(|| read_stats(STATS_PORT));
        if stat(&json, "cluster_moved") > 0 && stat(&json, "cluster_ask") > 0 {
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "no MOVED or no ASK counted: {json}"
        );
        sleep(Duration::from_millis(20));
    };
    println!("stats: {json}");
    assert_eq!(stat(&json, "cluster_redirect_limit"), 0, "{json}");
    assert_eq!(stat(&json, "forward_error"), 0, "{json}");

    // The seed master dies (SIGKILL, its replica holding every write);
    // the cluster fails it over by itself. A request to its slots may
    // fail (with the connection's error, as from the dead node itself)
    // until the proxy's refresh has the new map; then every key reads
    // back, with no error at all on a second pass, and DBSIZE is still
    // the masters' sum.
    let promoted = cluster.kill_master(masters[0]);
    let mut errors = Vec::new();
    for mine in &last {
        for (key, value) in mine {
            let mut reply = c.call(&["GET", key]);
            for _ in 0..100 {
                if !reply.starts_with('-') {
                    break;
                }
                errors.push(reply);
                sleep(Duration::from_millis(50));
                reply = c.call(&["GET", key]);
            }
            assert_eq!(reply, format!("${value}"), "GET {key} after the kill");
        }
    }
    println!(
        "{} killed, {promoted} took over; error replies meanwhile: {errors:?}",
        masters[0]
    );
    for reply in &errors {
        assert!(reply.starts_with("-ERR "), "{reply}");
    }
    for mine in &last {
        for (key, value) in mine {
            assert_eq!(c.call(&["GET", key]), format!("${value}"), "GET {key}");
        }
    }
    let size = cluster.dbsize();
    assert_eq!(size, written as i64);
    assert_eq!(c.call(&["DBSIZE"]), format!(":{size}"));

    // SIGTERM: a clean stop, every buffer back in its pool.
    signal(proxy.0.id(), "TERM");
    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = proxy.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the proxy did not stop");
        sleep(Duration::from_millis(20));
    };
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "the proxy failed ({status}): {said}");
    assert!(
        said.contains("stopped") && !said.contains("a leak"),
        "{said}"
    );
    for line in said.lines().filter(|l| l.contains("] worker ")) {
        println!("{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
