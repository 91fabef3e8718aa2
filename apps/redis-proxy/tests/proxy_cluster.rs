//! tpa-redis-proxy in cluster mode, end to end: a real 6-node Redis
//! Cluster (support/cluster.rs), the binary with a `redis_cluster: true`
//! pool whose only seed is one master, and clients that know nothing of
//! the cluster: keys on every master, MGET/DEL across slots, a slot
//! migrated while its keys are read (ASK, then MOVED), the proxy's own
//! CLUSTER INFO, and redis-benchmark without errors.

mod support;

use std::process::Child;

use support::bench::{assert_benchmark_passes, redis_benchmark};
use support::client::{text, Client};
use support::cluster::{free_ports, Cluster};
use support::lab::{spawn_proxy, wait_listening};
use tpa_redis_proxy::hash::cluster_slot;

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
