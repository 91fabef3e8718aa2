//! Cluster mode's pieces against a real Redis Cluster (six redis-servers,
//! `redis-cli --cluster create`, see support/cluster.rs): the slot map
//! built from the real CLUSTER SLOTS sends every key to the node that
//! serves it; during a slot migration the real ASK, MOVED and TRYAGAIN
//! replies parse and `ClusterRouter` follows them to the node that
//! answers; the proxy's own CLUSTER answers read as one node owning every
//! slot, to our parser and to the real redis-cli. CLUSTER SHARDS reads as
//! the same map as CLUSTER SLOTS. Slots migrated step by step while
//! requests run are invisible to single-key requests.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::client::{frame, text, Client};
use support::cluster::Cluster;
use tpa_redis_proxy::cluster::{
    answer, parse_redirect, proxy_node_id, Attempt, ClusterRouter, Endpoint, NodeAddr, Plan,
    ProxyNode, RedirectKind, RouterConfig, SlotMap, Verdict, ASKING_REQUEST, CLUSTER_SLOTS_REQUEST,
};
use tpa_redis_proxy::command::lookup;
use tpa_redis_proxy::hash::cluster_slot;
use tpa_redis_proxy::resp::{encode, parse, Frame, Limits, Parsed};

fn local(port: u16) -> NodeAddr {
    NodeAddr::new("127.0.0.1", port)
}

/// Connections to the cluster's nodes, one per port, made on first use.
#[derive(Default)]
struct Clients(HashMap<u16, Client>);

impl Clients {
    fn get(&mut self, port: u16) -> &mut Client {
        self.0.entry(port).or_insert_with(|| Client::connect(port))
    }
}

/// One refresh through the router, against the real cluster: the node
/// `poll_refresh` names gets `CLUSTER_SLOTS_REQUEST`.
fn refresh(router: &mut ClusterRouter, clients: &mut Clients, now: Instant) {
    let node = router.poll_refresh(now).expect("a refresh is due");
    let client = clients.get(router.addr(node).port);
    client.send_raw(CLUSTER_SLOTS_REQUEST);
    let reply = client.read_reply();
    router
        .on_refresh_reply(node, &frame(&reply), now)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&reply)));
}

/// What `drive` saw: every reply in order, and the attempt at the end.
struct Driven {
    replies: Vec<Vec<u8>>,
    attempt: Attempt,
    /// The client's reply: the last one passed, or the router's error.
    answer: Vec<u8>,
}

/// Sends `args` as the engine would: to `attempt`'s node (ASKING first
/// when it says so), each reply through `on_reply`, until the router
/// passes one or gives up.
fn drive(
    router: &mut ClusterRouter,
    clients: &mut Clients,
    mut attempt: Attempt,
    args: &[&[u8]],
) -> Driven {
    let mut replies = Vec::new();
    for _ in 0..20 {
        let client = clients.get(router.addr(attempt.node).port);
        if attempt.asking {
            client.send_raw(ASKING_REQUEST);
            assert_eq!(text(&client.read_reply()), "+OK\r\n", "ASKING");
        }
        let reply = client.call(args);
        replies.push(reply.clone());
        match router.on_reply(&mut attempt, &reply, Instant::now()) {
            Verdict::Pass => {
                return Driven {
                    replies,
                    attempt,
                    answer: reply,
                }
            }
            Verdict::Resend => {}
            Verdict::ResendAt(at) => sleep(at.saturating_duration_since(Instant::now())),
            Verdict::Fail(error) => {
                return Driven {
                    replies,
                    attempt,
                    answer: error,
                }
            }
        }
    }
    panic!("the router neither passed nor failed after 20 replies");
}

fn key(i: usize) -> String {
    match i % 4 {
        0 => format!("user:{i}"),
        1 => format!("{{tag{}}}:item:{i}", i % 17),
        2 => format!("k{i}\u{e9}"),
        _ => format!("session-{i}-{}", "x".repeat(i % 13)),
    }
}

#[test]
fn slot_map_from_real_cluster_routes_every_key() {
    let cluster = Cluster::start("map");
    let ports = &cluster.ports;
    // Seeds: the last node, then the first.
    let seeds = [local(ports[5]), local(ports[0])];
    let mut router = ClusterRouter::new(&seeds, RouterConfig::default()).unwrap();
    let mut clients = Clients::default();
    let now = Instant::now();
    let first = router.poll_refresh(now).unwrap();
    assert_eq!(router.addr(first), &seeds[0], "seeds first");
    router.on_refresh_failed(first);
    // CLUSTER SLOTS may name a replica a moment after CLUSTER NODES
    // does: refresh until each master has its replica.
    let mut now = now + Duration::from_secs(1);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        refresh(&mut router, &mut clients, now);
        if router
            .slot_map()
            .shards()
            .iter()
            .all(|s| !s.replicas.is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas missing: {:?}",
            router.slot_map()
        );
        sleep(Duration::from_millis(100));
        router.request_refresh();
        now += router.config().refresh_gap;
    }
    assert!(router.has_map() && router.covers_all_slots());

    // The map: three masters (those CLUSTER NODES says), a replica each,
    // all six nodes named.
    let map = router.slot_map();
    let mut masters: Vec<u16> = map.shards().iter().map(|s| s.master.addr.port).collect();
    masters.sort_unstable();
    assert_eq!(masters, cluster.masters());
    let mut all: Vec<u16> = masters.clone();
    for shard in map.shards() {
        assert_eq!(shard.replicas.len(), 1, "{shard:?}");
        assert_eq!(shard.master.id.as_deref().map(str::len), Some(40));
        all.push(shard.replicas[0].addr.port);
    }
    all.sort_unstable();
    let mut expected = ports.clone();
    expected.sort_unstable();
    assert_eq!(all, expected);
    assert_eq!(map.assigned(), 16384);

    // CLUSTER SHARDS from the same node says the same.
    let reply = clients.get(ports[0]).call_str(&["CLUSTER", "SHARDS"]);
    let shards = SlotMap::from_cluster_shards(&frame(&reply), &local(ports[0]))
        .unwrap_or_else(|e| panic!("{e}: {}", text(&reply)));
    for slot in 0..16384 {
        assert_eq!(shards.shard(slot), map.shard(slot), "slot {slot}");
    }

    // Every key, SET on the node the map names, is served there: no
    // MOVED. The same key on another master is MOVED to that node.
    for i in 0..3000 {
        let key = key(i);
        let attempt = router.route_key(key.as_bytes()).unwrap();
        let owner = router.addr(attempt.node).port;
        let value = format!("v{i}");
        let reply = clients.get(owner).call_str(&["SET", &key, &value]);
        assert_eq!(text(&reply), "+OK\r\n", "key {key:?} on {owner}");
        if i % 50 == 0 {
            let other = *masters.iter().find(|&&p| p != owner).unwrap();
            let reply = clients.get(other).call_str(&["GET", &key]);
            let Frame::Error(e) = frame(&reply) else {
                panic!("GET {key:?} on {other}: {}", text(&reply));
            };
            let moved = parse_redirect(e).unwrap().unwrap();
            assert_eq!(moved.kind, RedirectKind::Moved);
            assert_eq!(moved.slot, cluster_slot(key.as_bytes()));
            assert_eq!(moved.endpoint, Endpoint::Addr(local(owner)));
        }
    }

    // MGET over keys of many slots: one part per slot, each answered by
    // its node without a redirect, the values those SET above.
    let keys: Vec<String> = (0..60).map(key).collect();
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    let Ok(Plan::Split(parts)) = router.route(lookup(b"MGET").unwrap(), &args) else {
        panic!("MGET of 60 keys is not split");
    };
    let mut merged: Vec<Option<String>> = vec![None; args.len()];
    for part in &parts {
        let mut sub: Vec<&[u8]> = vec![b"MGET"];
        sub.extend(part.keys.iter().map(|&p| args[p]));
        let driven = drive(&mut router, &mut clients, part.attempt, &sub);
        assert_eq!(driven.replies.len(), 1, "a part was redirected");
        let Frame::Array(Some(values)) = frame(&driven.answer) else {
            panic!("MGET part: {}", text(&driven.answer));
        };
        for (&p, v) in part.keys.iter().zip(values) {
            let Frame::Bulk(Some(v)) = v else {
                panic!("{v:?}")
            };
            merged[p] = Some(text(v));
        }
    }
    for (i, value) in merged.iter().enumerate().skip(1) {
        assert_eq!(value.as_deref(), Some(format!("v{}", i - 1).as_str()));
    }
    assert_eq!(router.stats().moved + router.stats().ask, 0);

    // A failover: the old master answers MOVED to its former replica,
    // which the router follows; a refresh then names the new master.
    let old = map_master_of(&router, b"user:0");
    let replica = router
        .slot_map()
        .shard(cluster_slot(b"user:0"))
        .unwrap()
        .replicas[0]
        .addr
        .port;
    cluster.failover(replica);
    let attempt = router.route_key(b"user:0").unwrap();
    assert_eq!(router.addr(attempt.node).port, old);
    let driven = drive(&mut router, &mut clients, attempt, &[b"GET", b"user:0"]);
    assert_eq!(text(&driven.answer), "$2\r\nv0\r\n");
    assert!(
        text(&driven.replies[0]).starts_with("-MOVED "),
        "{}",
        text(&driven.replies[0])
    );
    assert_eq!(router.addr(driven.attempt.node).port, replica);
    let mut now = Instant::now() + Duration::from_secs(2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        refresh(&mut router, &mut clients, now);
        if map_master_of(&router, b"user:0") == replica {
            break;
        }
        assert!(Instant::now() < deadline, "the map never named {replica}");
        sleep(Duration::from_millis(100));
        router.request_refresh();
        now += router.config().refresh_gap;
    }
}

/// The port of the master the last installed map names for `key`.
fn map_master_of(router: &ClusterRouter, key: &[u8]) -> u16 {
    router.slot_map().master(cluster_slot(key)).unwrap().port
}

#[test]
fn migration_ask_and_moved_are_followed() {
    let cluster = Cluster::start("migrate");
    // No periodic refresh within the test: only MOVED asks one.
    let config = RouterConfig {
        refresh_interval: Duration::from_secs(3600),
        ..RouterConfig::default()
    };
    let mut router = ClusterRouter::new(&[local(cluster.ports[0])], config).unwrap();
    let mut clients = Clients::default();
    refresh(&mut router, &mut clients, Instant::now());

    let slot = cluster_slot(b"mig");
    let keys: Vec<String> = (0..20).map(|i| format!("{{mig}}:{i}")).collect();
    for k in &keys {
        let attempt = router.route_key(k.as_bytes()).unwrap();
        let driven = drive(
            &mut router,
            &mut clients,
            attempt,
            &[b"SET", k.as_bytes(), k.as_bytes()],
        );
        assert_eq!(text(&driven.answer), "+OK\r\n");
        assert_eq!(driven.replies.len(), 1);
    }
    let from = router.addr(router.owner(slot).unwrap()).port;
    let to = *cluster.masters().iter().find(|&&p| p != from).unwrap();

    // Half the keys move; the slot still belongs to `from`.
    cluster.begin_migration(slot, from, to);
    assert_eq!(cluster.migrate_keys(slot, from, to, 10), 10);
    let mut moved_keys = Vec::new();
    let mut kept_keys = Vec::new();
    for k in &keys {
        let attempt = router.route_key(k.as_bytes()).unwrap();
        assert_eq!(router.addr(attempt.node).port, from);
        let driven = drive(&mut router, &mut clients, attempt, &[b"GET", k.as_bytes()]);
        assert_eq!(
            text(&driven.answer),
            format!("${}\r\n{k}\r\n", k.len()),
            "GET {k}"
        );
        match driven.replies.len() {
            1 => {
                assert_eq!(router.addr(driven.attempt.node).port, from);
                kept_keys.push(k.clone());
            }
            2 => {
                // The real ASK, parsed; followed to `to` with ASKING.
                let Frame::Error(e) = frame(&driven.replies[0]) else {
                    panic!("{}", text(&driven.replies[0]));
                };
                let ask = parse_redirect(e).unwrap().unwrap();
                assert_eq!(ask.kind, RedirectKind::Ask);
                assert_eq!(
                    (ask.slot, ask.endpoint.clone()),
                    (slot, Endpoint::Addr(local(to)))
                );
                assert_eq!(router.addr(driven.attempt.node).port, to);
                assert!(driven.attempt.asking);
                moved_keys.push(k.clone());
            }
            n => panic!("GET {k}: {n} replies"),
        }
    }
    assert_eq!((moved_keys.len(), kept_keys.len()), (10, 10));
    // ASK leaves the map alone and asks no refresh.
    assert_eq!(router.addr(router.owner(slot).unwrap()).port, from);
    assert_eq!(router.poll_refresh(Instant::now()), None);
    assert_eq!(router.stats().ask, 10);

    // Without ASKING, the importing node sends the client back: the
    // real MOVED to the slot's owner.
    let reply = clients.get(to).call_str(&["GET", &moved_keys[0]]);
    let Frame::Error(e) = frame(&reply) else {
        panic!("{}", text(&reply))
    };
    let back = parse_redirect(e).unwrap().unwrap();
    assert_eq!(back.kind, RedirectKind::Moved);
    assert_eq!(back.endpoint, Endpoint::Addr(local(from)));

    // A new key in the migrating slot is written on the importing node.
    let new_key = b"{mig}:new";
    let attempt = router.route_key(new_key).unwrap();
    let driven = drive(&mut router, &mut clients, attempt, &[b"SET", new_key, b"1"]);
    assert_eq!(text(&driven.answer), "+OK\r\n");
    assert_eq!(driven.replies.len(), 2, "ASK then +OK");
    assert_eq!(router.addr(driven.attempt.node).port, to);

    // A multi-key request over moved and kept keys: redis's TRYAGAIN,
    // retried after a delay, then given up as a bounded error.
    let mget = [
        b"MGET".as_slice(),
        moved_keys[0].as_bytes(),
        kept_keys[0].as_bytes(),
    ];
    let Ok(Plan::Single(attempt)) = router.route(lookup(b"MGET").unwrap(), &mget) else {
        panic!("one slot, one node")
    };
    let driven = drive(&mut router, &mut clients, attempt, &mget);
    assert!(
        text(&driven.replies[0]).starts_with("-TRYAGAIN"),
        "{}",
        text(&driven.replies[0])
    );
    assert!(
        text(&driven.answer).starts_with("-ERR too many cluster redirects (5), the last: TRYAGAIN"),
        "{}",
        text(&driven.answer)
    );

    // The rest moves and the slot is `to`'s: the old owner says MOVED,
    // the router follows it and updates the slot.
    while cluster.migrate_keys(slot, from, to, 100) > 0 {}
    cluster.finish_migration(slot, from, to);
    for k in &kept_keys {
        let attempt = router.route_key(k.as_bytes()).unwrap();
        let first_node = router.addr(attempt.node).port;
        let driven = drive(&mut router, &mut clients, attempt, &[b"GET", k.as_bytes()]);
        assert_eq!(text(&driven.answer), format!("${}\r\n{k}\r\n", k.len()));
        assert_eq!(router.addr(driven.attempt.node).port, to);
        if first_node == from {
            let Frame::Error(e) = frame(&driven.replies[0]) else {
                panic!("{}", text(&driven.replies[0]))
            };
            let moved = parse_redirect(e).unwrap().unwrap();
            assert_eq!(moved.kind, RedirectKind::Moved);
            assert_eq!(moved.endpoint, Endpoint::Addr(local(to)));
        } else {
            assert_eq!(driven.replies.len(), 1, "after the MOVED, straight to {to}");
        }
    }
    assert_eq!(router.addr(router.owner(slot).unwrap()).port, to);
    assert_eq!(router.stats().moved, 1);

    // MOVED asked a refresh; the real map says the same once the node
    // asked has the news.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = Instant::now() + router.config().refresh_gap;
    loop {
        refresh(&mut router, &mut clients, now);
        if router.slot_map().master(slot) == Some(&local(to)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster never said slot {slot} is {to}'s"
        );
        sleep(Duration::from_millis(100));
        router.request_refresh();
        now += router.config().refresh_gap + Duration::from_millis(100);
    }
    assert_eq!(router.addr(router.owner(slot).unwrap()).port, to);
}

#[test]
fn slot_migrations_under_load_are_invisible_to_single_key_requests() {
    let cluster = Cluster::start("load");
    let masters = cluster.masters();
    let tags = ["{load0}", "{load1}", "{load2}"];
    let keys: Vec<String> = tags
        .iter()
        .flat_map(|t| (0..40).map(move |i| format!("{t}:{i}")))
        .collect();
    let slots: Vec<u16> = tags.iter().map(|t| cluster_slot(t.as_bytes())).collect();
    assert!(slots[0] != slots[1] && slots[1] != slots[2] && slots[0] != slots[2]);
    let ops = AtomicU64::new(0);
    let migrated = AtomicBool::new(false);

    std::thread::scope(|scope| {
        // The load: SET then GET of every key, round after round, each
        // through the router as the engine would send it, refreshing
        // when the router says so; until the migrations are done.
        let load = scope.spawn(|| {
            // Seeds: the masters, which finish_migration tells first
            // hand (a replica learns by gossip, and may answer a refresh
            // with the slot's old owner for a while).
            let seeds: Vec<NodeAddr> = masters.iter().map(|&m| local(m)).collect();
            let mut router = ClusterRouter::new(&seeds, RouterConfig::default()).unwrap();
            let mut clients = Clients::default();
            refresh(&mut router, &mut clients, Instant::now());
            let mut round = 0u64;
            let mut last_round = false;
            loop {
                if migrated.load(Ordering::SeqCst) {
                    last_round = true;
                }
                for key in &keys {
                    let value = format!("{round}");
                    let set = [b"SET".as_slice(), key.as_bytes(), value.as_bytes()];
                    let attempt = router.route_key(key.as_bytes()).unwrap();
                    let driven = drive(&mut router, &mut clients, attempt, &set);
                    assert_eq!(text(&driven.answer), "+OK\r\n", "SET {key} round {round}");
                    let attempt = router.route_key(key.as_bytes()).unwrap();
                    let driven = drive(
                        &mut router,
                        &mut clients,
                        attempt,
                        &[b"GET", key.as_bytes()],
                    );
                    assert_eq!(
                        text(&driven.answer),
                        format!("${}\r\n{value}\r\n", value.len()),
                        "GET {key} round {round}"
                    );
                    ops.fetch_add(2, Ordering::SeqCst);
                    let now = Instant::now();
                    if let Some(node) = router.poll_refresh(now) {
                        let client = clients.get(router.addr(node).port);
                        client.send_raw(CLUSTER_SLOTS_REQUEST);
                        let reply = client.read_reply();
                        router.on_refresh_reply(node, &frame(&reply), now).unwrap();
                    }
                }
                round += 1;
                if last_round {
                    return router;
                }
            }
        });

        // The migrations, a few keys at a time, each step after the load
        // has made progress (so steps and requests interleave).
        let progress = |since: u64| {
            while ops.load(Ordering::SeqCst) < since + 20 {
                assert!(!load.is_finished(), "the load stopped");
                sleep(Duration::from_millis(1));
            }
        };
        let mut moves = Vec::new();
        for &slot in &slots {
            let from = owner_of(&cluster, slot).expect("every slot has a master");
            let to = *masters.iter().find(|&&m| m != from).unwrap();
            moves.push((slot, to));
            progress(ops.load(Ordering::SeqCst));
            cluster.begin_migration(slot, from, to);
            loop {
                progress(ops.load(Ordering::SeqCst));
                if cluster.migrate_keys(slot, from, to, 5) == 0 {
                    break;
                }
            }
            progress(ops.load(Ordering::SeqCst));
            cluster.finish_migration(slot, from, to);
        }
        progress(ops.load(Ordering::SeqCst));
        migrated.store(true, Ordering::SeqCst);
        let router = load.join().unwrap();
        let stats = router.stats();
        assert!(
            stats.ask > 0 && stats.moved > 0,
            "the load saw no migration: {stats:?}"
        );
        assert_eq!(stats.redirect_limit, 0);
        for (slot, to) in moves {
            assert_eq!(
                router.addr(router.owner(slot).unwrap()).port,
                to,
                "slot {slot}"
            );
        }
    });
}

/// The master serving `slot`, by CLUSTER SLOTS on the first node.
fn owner_of(cluster: &Cluster, slot: u16) -> Option<u16> {
    let reply = cluster
        .client(cluster.ports[0])
        .call_str(&["CLUSTER", "SLOTS"]);
    let map = SlotMap::from_cluster_slots(&frame(&reply), &local(cluster.ports[0])).ok()?;
    map.master(slot).map(|a| a.port)
}

/// A stand-in for the proxy's listener: answers what `answer` answers,
/// `-ERR` to the rest, over real sockets.
fn serve_answers(listener: TcpListener, router: ClusterRouter, me: NodeAddr) {
    let id = proxy_node_id("test-pool");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { return };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match parse(&buf, &Limits::default(), true) {
                Ok(Parsed::Frame(request, used)) => {
                    let words: Vec<&[u8]> = match &request {
                        Frame::Array(Some(items)) => items
                            .iter()
                            .filter_map(|i| match i {
                                Frame::Bulk(Some(b)) => Some(*b),
                                _ => None,
                            })
                            .collect(),
                        Frame::Inline(words) => words.clone(),
                        _ => Vec::new(),
                    };
                    let mut out = Vec::new();
                    let me = ProxyNode { addr: &me, id: &id };
                    let first = words.first().map(|w| w.to_ascii_uppercase());
                    if first.as_deref() == Some(b"INFO") {
                        // What `redis-cli --cluster` reads first; the
                        // engine answers it (cluster/info.rs), not this
                        // stand-in of `answer`.
                        let info = b"# Cluster\r\ncluster_enabled:1\r\n";
                        encode(&Frame::Bulk(Some(info)), &mut out);
                    } else if first.as_deref() == Some(b"DBSIZE") {
                        out.extend_from_slice(b":0\r\n");
                    } else if !answer(&router, &me, &words, &mut out) {
                        out.extend_from_slice(b"-ERR not a cluster command\r\n");
                    }
                    if stream.write_all(&out).is_err() {
                        break;
                    }
                    buf.drain(..used);
                    continue;
                }
                Ok(Parsed::NeedMore) => {}
                Err(_) => break,
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

#[test]
fn proxy_cluster_answers_read_as_one_node() {
    // A router with a full map (as a proxy has once it refreshed).
    let backend = [NodeAddr::new("10.0.0.1", 7000)];
    let mut router = ClusterRouter::new(&backend, RouterConfig::default()).unwrap();
    let full = b"*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$8\r\n10.0.0.1\r\n:7000\r\n$1\r\na\r\n";
    let node = router.poll_refresh(Instant::now()).unwrap();
    router
        .on_refresh_reply(node, &frame(full), Instant::now())
        .unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let me = local(port);
    std::thread::spawn(move || serve_answers(listener, router, me));

    // Our parser reads the answer as one node owning every slot.
    let reply = Client::connect(port).call_str(&["CLUSTER", "SLOTS"]);
    let map = SlotMap::from_cluster_slots(&frame(&reply), &local(port)).unwrap();
    assert_eq!(map.assigned(), 16384);
    assert_eq!(map.shards().len(), 1);
    assert_eq!(map.shards()[0].master.addr, local(port));
    assert_eq!(map.ranges_of(0), vec![(0, 16383)]);

    // The real redis-cli reads the same.
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "CLUSTER", "SLOTS"])
        .output()
        .expect("redis-cli must be installed");
    let id = proxy_node_id("test-pool");
    // Raw output: one line per leaf, an empty one for the empty
    // metadata array redis 7 adds.
    let printed = text(&out.stdout);
    let lines: Vec<&str> = printed.lines().filter(|l| !l.is_empty()).collect();
    let port_text = port.to_string();
    assert_eq!(
        lines,
        ["0", "16383", "127.0.0.1", port_text.as_str(), id.as_str()],
        "{}",
        text(&out.stderr)
    );
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "CLUSTER", "INFO"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("cluster_state:ok"),
        "{}",
        text(&out.stdout)
    );

    // redis-cli's cluster check reads our CLUSTER NODES as one master
    // owning every slot (it also asks INFO and DBSIZE, answered above as
    // an engine would).
    let out = Command::new("redis-cli")
        .args(["--cluster", "check", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    let printed = text(&out.stdout);
    for line in [
        format!("M: {id} 127.0.0.1:{port}"),
        "slots:[0-16383] (16384 slots) master".to_string(),
        "[OK] All nodes agree about slots configuration.".to_string(),
        "[OK] All 16384 slots covered.".to_string(),
    ] {
        assert!(printed.contains(&line), "{line:?} not in {printed}");
    }
    assert!(out.status.success(), "{printed}{}", text(&out.stderr));
}
