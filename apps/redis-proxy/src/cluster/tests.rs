use super::*;
use crate::command::lookup;
use crate::hash::cluster_slot;
use crate::resp::{parse, Frame, Limits, Parsed};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn frame(bytes: &[u8]) -> Frame<'_> {
    match parse(bytes, &Limits::default(), false).unwrap() {
        Parsed::Frame(f, used) => {
            assert_eq!(used, bytes.len());
            f
        }
        Parsed::NeedMore => panic!("incomplete: {}", String::from_utf8_lossy(bytes)),
    }
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

/// A CLUSTER SLOTS node entry as redis 7 writes it.
fn node(host: &str, port: u16, id: &str) -> String {
    format!("*4\r\n{}:{port}\r\n{}*0\r\n", bulk(host), bulk(id))
}

fn range(start: u16, end: u16, nodes: &[String]) -> String {
    format!(
        "*{}\r\n:{start}\r\n:{end}\r\n{}",
        nodes.len() + 2,
        nodes.concat()
    )
}

fn reply(ranges: &[String]) -> Vec<u8> {
    format!("*{}\r\n{}", ranges.len(), ranges.concat()).into_bytes()
}

fn addr(host: &str, port: u16) -> NodeAddr {
    NodeAddr::new(host, port)
}

/// Three shards over 127.0.0.1:7000-7002 with replicas on 7003-7005.
fn three_shards() -> Vec<u8> {
    reply(&[
        range(
            0,
            5460,
            &[node("127.0.0.1", 7000, "a"), node("127.0.0.1", 7003, "d")],
        ),
        range(
            5461,
            10922,
            &[node("127.0.0.1", 7001, "b"), node("127.0.0.1", 7004, "e")],
        ),
        range(
            10923,
            16383,
            &[node("127.0.0.1", 7002, "c"), node("127.0.0.1", 7005, "f")],
        ),
    ])
}

#[test]
fn endpoints() {
    let parsed = |t: &str| Endpoint::parse(t.as_bytes());
    assert_eq!(
        parsed("10.0.0.1:7000"),
        Ok(Endpoint::Addr(addr("10.0.0.1", 7000)))
    );
    assert_eq!(parsed("::1:7000"), Ok(Endpoint::Addr(addr("::1", 7000))));
    assert_eq!(
        parsed("[2001:db8::5]:6379"),
        Ok(Endpoint::Addr(addr("2001:db8::5", 6379)))
    );
    assert_eq!(
        parsed("redis-3.example:6379"),
        Ok(Endpoint::Addr(addr("redis-3.example", 6379)))
    );
    assert_eq!(parsed(":6381"), Ok(Endpoint::SameHost(6381)));
    assert_eq!(
        Endpoint::SameHost(6381).resolve(&addr("10.1.1.1", 7000)),
        addr("10.1.1.1", 6381)
    );
    assert_eq!(parsed("7000"), Err(AddrError::NoPort));
    assert_eq!(parsed("h:0"), Err(AddrError::BadPort));
    assert_eq!(parsed("h:65536"), Err(AddrError::BadPort));
    assert_eq!(parsed("h:"), Err(AddrError::BadPort));
    assert_eq!(parsed("h:+1"), Err(AddrError::BadPort));
    assert_eq!(parsed("[::1:7000"), Err(AddrError::BadHost));
    assert_eq!(parsed("a\tb:7000"), Err(AddrError::BadHost));
    assert_eq!(Endpoint::parse(b"\xff:1"), Err(AddrError::NotText));
    assert_eq!(addr("::1", 7000).to_string(), "[::1]:7000");
    assert_eq!(addr("10.0.0.1", 7000).to_string(), "10.0.0.1:7000");
}

#[test]
fn redirects() {
    let r = parse_redirect(b"MOVED 3999 127.0.0.1:6381")
        .unwrap()
        .unwrap();
    assert_eq!(r.kind, RedirectKind::Moved);
    assert_eq!(r.slot, 3999);
    assert_eq!(r.endpoint, Endpoint::Addr(addr("127.0.0.1", 6381)));
    let r = parse_redirect(b"ASK 16383 ::1:7002").unwrap().unwrap();
    assert_eq!((r.kind, r.slot), (RedirectKind::Ask, 16383));
    assert_eq!(r.endpoint, Endpoint::Addr(addr("::1", 7002)));
    let r = parse_redirect(b"MOVED 0 :7000").unwrap().unwrap();
    assert_eq!(r.endpoint, Endpoint::SameHost(7000));
    assert_eq!(parse_redirect(b"ERR unknown command"), Ok(None));
    assert_eq!(parse_redirect(b"MOVEDX 1 h:1"), Ok(None));
    assert_eq!(parse_redirect(b"TRYAGAIN Multiple keys"), Ok(None));
    assert_eq!(
        parse_redirect(b"MOVED 16384 h:1"),
        Err(RedirectError::BadSlot)
    );
    assert_eq!(parse_redirect(b"MOVED -1 h:1"), Err(RedirectError::BadSlot));
    assert_eq!(
        parse_redirect(b"MOVED 99999999 h:1"),
        Err(RedirectError::BadSlot)
    );
    assert_eq!(parse_redirect(b"MOVED 1"), Err(RedirectError::Shape));
    assert_eq!(
        parse_redirect(b"ASK 1 h:1 extra"),
        Err(RedirectError::Shape)
    );
    assert_eq!(
        parse_redirect(b"ASK 1 h:port"),
        Err(RedirectError::Addr(AddrError::BadPort))
    );
}

#[test]
fn slot_map_from_cluster_slots() {
    let bytes = three_shards();
    let map = SlotMap::from_cluster_slots(&frame(&bytes), &addr("127.0.0.1", 7000)).unwrap();
    assert_eq!(map.assigned(), 16384);
    assert_eq!(map.shards().len(), 3);
    assert_eq!(map.master(0), Some(&addr("127.0.0.1", 7000)));
    assert_eq!(map.master(5461), Some(&addr("127.0.0.1", 7001)));
    assert_eq!(map.master(16383), Some(&addr("127.0.0.1", 7002)));
    assert_eq!(map.master(16384), None);
    let shard = map.shard(12182).unwrap();
    assert_eq!(shard.master.id.as_deref(), Some("c"));
    assert_eq!(
        shard.replicas,
        vec![ClusterNode {
            addr: addr("127.0.0.1", 7005),
            id: Some("f".into())
        }]
    );
    assert_eq!(map.ranges_of(1), vec![(5461, 10922)]);
}

#[test]
fn slot_map_variants() {
    // One master in two ranges, a gap, redis 3's nodes without id, and
    // an unknown endpoint (empty, `?`, null) taken as the answering host.
    let bytes = reply(&[
        range(0, 99, &["*2\r\n$8\r\n10.0.0.1\r\n:7000\r\n".into()]),
        range(200, 299, &["*3\r\n$0\r\n\r\n:7001\r\n$1\r\nb\r\n".into()]),
        range(
            300,
            399,
            &[
                "*3\r\n$-1\r\n:7002\r\n$1\r\nc\r\n".into(),
                node("?", 7003, "d"),
            ],
        ),
        range(100, 100, &["*2\r\n$8\r\n10.0.0.1\r\n:7000\r\n".into()]),
    ]);
    let via = addr("10.9.9.9", 7000);
    let map = SlotMap::from_cluster_slots(&frame(&bytes), &via).unwrap();
    assert_eq!(map.assigned(), 301);
    assert_eq!(map.shards().len(), 3);
    assert_eq!(map.ranges_of(0), vec![(0, 100)]);
    assert_eq!(map.master(150), None);
    assert_eq!(map.master(250), Some(&addr("10.9.9.9", 7001)));
    assert_eq!(map.master(350), Some(&addr("10.9.9.9", 7002)));
    assert_eq!(
        map.shard(350).unwrap().replicas[0].addr,
        addr("10.9.9.9", 7003)
    );
    assert_eq!(map.shard(0).unwrap().master.id, None);
}

#[test]
fn slot_map_errors() {
    let via = addr("127.0.0.1", 7000);
    let err = |bytes: &[u8]| SlotMap::from_cluster_slots(&frame(bytes), &via).unwrap_err();
    assert_eq!(
        err(b"-ERR This instance has cluster support disabled\r\n"),
        SlotsError::ErrorReply("ERR This instance has cluster support disabled".into())
    );
    assert_eq!(err(b"+OK\r\n"), SlotsError::NotAnArray);
    assert_eq!(err(b"*-1\r\n"), SlotsError::NotAnArray);
    assert_eq!(err(b"*0\r\n"), SlotsError::NoSlots);
    assert_eq!(err(b"*1\r\n:1\r\n"), SlotsError::BadRange { range: 0 });
    assert_eq!(
        err(b"*1\r\n*2\r\n:0\r\n:1\r\n"),
        SlotsError::BadRange { range: 0 }
    );
    let n = node("h", 1, "x");
    assert_eq!(
        err(&reply(&[range(0, 16384, std::slice::from_ref(&n))])),
        SlotsError::BadSlots { range: 0 }
    );
    assert_eq!(
        err(&reply(&[range(9, 8, std::slice::from_ref(&n))])),
        SlotsError::BadSlots { range: 0 }
    );
    assert_eq!(
        err(&reply(&[
            range(0, 10, std::slice::from_ref(&n)),
            range(10, 20, &[node("g", 2, "y")])
        ])),
        SlotsError::Overlap { slot: 10 }
    );
    let bad = |node: &str| err(&reply(&[range(0, 1, &[n.clone(), node.into()])]));
    assert!(matches!(
        bad("*2\r\n$1\r\nh\r\n:0\r\n"),
        SlotsError::BadNode {
            range: 0,
            node: 1,
            ..
        }
    ));
    assert!(matches!(
        bad("*2\r\n$1\r\nh\r\n:70000\r\n"),
        SlotsError::BadNode { .. }
    ));
    assert!(matches!(
        bad("*2\r\n$1\r\nh\r\n$4\r\n7000\r\n"),
        SlotsError::BadNode { .. }
    ));
    assert!(matches!(
        bad("*1\r\n$1\r\nh\r\n"),
        SlotsError::BadNode { .. }
    ));
    assert!(matches!(bad(":5\r\n"), SlotsError::BadNode { .. }));
    assert!(matches!(
        bad("*2\r\n:1\r\n:7000\r\n"),
        SlotsError::BadNode { .. }
    ));
    assert!(matches!(
        bad("*2\r\n$3\r\na b\r\n:7000\r\n"),
        SlotsError::BadNode { .. }
    ));
    assert!(matches!(
        bad("*3\r\n$1\r\nh\r\n:7000\r\n:1\r\n"),
        SlotsError::BadNode { .. }
    ));
}

fn router(now: Instant) -> ClusterRouter {
    let seeds = [addr("127.0.0.1", 7000), addr("127.0.0.1", 7001)];
    let mut router = ClusterRouter::new(&seeds, RouterConfig::default()).unwrap();
    let bytes = three_shards();
    let node = router.poll_refresh(now).unwrap();
    router.on_refresh_reply(node, &frame(&bytes), now).unwrap();
    router
}

fn args(words: &[&'static str]) -> Vec<&'static [u8]> {
    words.iter().map(|w| w.as_bytes()).collect()
}

fn port_of(router: &ClusterRouter, node: NodeId) -> u16 {
    router.addr(node).port
}

#[test]
fn routes_keys_and_splits_per_slot() {
    let now = Instant::now();
    let router = router(now);
    assert!(router.covers_all_slots());
    // "foo" is slot 12182 (third shard), "bar" 5061 (first), "a" 15495.
    let foo = router.route_key(b"foo").unwrap();
    assert_eq!(
        (port_of(&router, foo.node), foo.slot, foo.asking),
        (7002, 12182, false)
    );
    assert_eq!(
        port_of(&router, router.route_key(b"bar").unwrap().node),
        7000
    );
    assert_eq!(
        router.route_key(b"{bar}.x").unwrap(),
        router.route_key(b"bar").unwrap()
    );
    let get = lookup(b"GET").unwrap();
    assert!(matches!(router.route(get, &args(&["GET", "foo"])), Ok(Plan::Single(a)) if a == foo));
    let rename = lookup(b"RENAME").unwrap();
    assert_eq!(
        router.route(rename, &args(&["RENAME", "foo", "bar"])),
        Err(RouteError::CrossSlot)
    );
    assert!(matches!(
        router.route(rename, &args(&["RENAME", "{t}a", "{t}b"])),
        Ok(Plan::Single(a)) if a.slot == cluster_slot(b"t")
    ));
    let mget = lookup(b"MGET").unwrap();
    // Same slot: the command goes whole.
    assert!(matches!(
        router.route(mget, &args(&["MGET", "{u}1", "{u}2"])),
        Ok(Plan::Single(_))
    ));
    // Two keys of one node but different slots still split (a node
    // refuses keys of two slots in one command).
    let Ok(Plan::Split(parts)) = router.route(mget, &args(&["MGET", "foo", "bar", "{foo}2", "a"]))
    else {
        panic!("not split");
    };
    let shape: Vec<(u16, Vec<usize>)> = parts
        .iter()
        .map(|p| (p.attempt.slot, p.keys.clone()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (12182, vec![1, 3]),
            (5061, vec![2]),
            (cluster_slot(b"a"), vec![4])
        ]
    );
    let mset = lookup(b"MSET").unwrap();
    let Ok(Plan::Split(parts)) = router.route(mset, &args(&["MSET", "foo", "1", "bar", "2"]))
    else {
        panic!("not split");
    };
    assert_eq!(
        parts.iter().map(|p| p.keys.clone()).collect::<Vec<_>>(),
        vec![vec![1], vec![3]]
    );
    assert_eq!(
        router.route(mset, &args(&["MSET", "foo", "1", "bar"])),
        Err(RouteError::Keys(crate::command::KeyError::TooFewArguments))
    );
    let ping = lookup(b"PING").unwrap();
    assert_eq!(
        router.route(ping, &args(&["PING"])),
        Err(RouteError::NotForwarded)
    );
    let eval = lookup(b"EVAL").unwrap();
    assert!(matches!(
        router.route(eval, &args(&["EVAL", "return 1", "0"])),
        Ok(Plan::Single(_))
    ));
    assert_eq!(
        RouteError::CrossSlot.reply(),
        b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
}

#[test]
fn unserved_slots_and_no_map() {
    let now = Instant::now();
    let seeds = [addr("10.0.0.1", 7000)];
    let mut router = ClusterRouter::new(&seeds, RouterConfig::default()).unwrap();
    // No map yet: the seed, whose MOVED teaches the router.
    let mut a = router.route_key(b"foo").unwrap();
    assert_eq!(router.addr(a.node), &seeds[0]);
    assert_eq!(
        router.on_reply(&mut a, b"-MOVED 12182 10.0.0.3:7002\r\n", now),
        Verdict::Resend
    );
    assert_eq!(router.route_key(b"foo").unwrap().node, a.node);
    assert_eq!(router.addr(a.node), &addr("10.0.0.3", 7002));
    // A map with a gap: that slot is not served.
    let bytes = reply(&[range(0, 100, &[node("10.0.0.1", 7000, "a")])]);
    let node = router.poll_refresh(now).unwrap();
    router.on_refresh_reply(node, &frame(&bytes), now).unwrap();
    assert!(!router.covers_all_slots());
    assert_eq!(
        router.route_key(b"foo"),
        Err(RouteError::SlotNotServed(12182))
    );
    assert_eq!(
        router.route_key(b"foo").unwrap_err().reply(),
        b"-CLUSTERDOWN Hash slot not served\r\n"
    );
    assert_eq!(
        ClusterRouter::new(&[], RouterConfig::default()).unwrap_err(),
        SeedError::NoSeeds
    );
}

#[test]
fn follows_moved_and_ask() {
    let t0 = Instant::now();
    let mut router = router(t0);
    let mut a = router.route_key(b"foo").unwrap();
    assert_eq!(router.on_reply(&mut a, b"$3\r\nbar\r\n", t0), Verdict::Pass);
    assert_eq!(
        router.on_reply(&mut a, b"-ERR wrong type\r\n", t0),
        Verdict::Pass
    );
    assert_eq!(router.poll_refresh(t0), None, "fresh map, nothing due");
    // ASK: this request to 7001 with ASKING; the map is unchanged.
    assert_eq!(
        router.on_reply(&mut a, b"-ASK 12182 127.0.0.1:7001\r\n", t0),
        Verdict::Resend
    );
    assert_eq!(
        (port_of(&router, a.node), a.asking, a.redirects),
        (7001, true, 1)
    );
    assert_eq!(port_of(&router, router.owner(12182).unwrap()), 7002);
    assert_eq!(
        router.poll_refresh(t0 + Duration::from_secs(1)),
        None,
        "ASK asks no refresh"
    );
    // MOVED: the slot moves in the map, the map is stale, ASKING is off.
    assert_eq!(
        router.on_reply(&mut a, b"-MOVED 12182 127.0.0.1:7001\r\n", t0),
        Verdict::Resend
    );
    assert_eq!(
        (port_of(&router, a.node), a.asking, a.redirects),
        (7001, false, 2)
    );
    assert_eq!(port_of(&router, router.owner(12182).unwrap()), 7001);
    assert_eq!(port_of(&router, router.owner(12181).unwrap()), 7002);
    let refresh = router
        .poll_refresh(t0 + Duration::from_secs(1))
        .expect("MOVED asks a refresh");
    assert_eq!(
        port_of(&router, refresh),
        7000,
        "from the node that answered last"
    );
    // An empty host: the host of the node that redirected.
    let mut b = router.route_key(b"bar").unwrap();
    assert_eq!(
        router.on_reply(&mut b, b"-ASK 5061 :7009\r\n", t0),
        Verdict::Resend
    );
    assert_eq!(router.addr(b.node), &addr("127.0.0.1", 7009));
    let s = router.stats();
    assert_eq!((s.moved, s.ask), (1, 2));
}

#[test]
fn redirects_are_bounded() {
    let t0 = Instant::now();
    let mut router = router(t0);
    let mut a = router.route_key(b"foo").unwrap();
    for i in 0..5 {
        let port = 7001 + i % 2;
        let moved = format!("-MOVED 12182 127.0.0.1:{port}\r\n");
        assert_eq!(
            router.on_reply(&mut a, moved.as_bytes(), t0),
            Verdict::Resend,
            "{i}"
        );
    }
    let Verdict::Fail(reply) = router.on_reply(&mut a, b"-MOVED 12182 127.0.0.1:7002\r\n", t0)
    else {
        panic!("a sixth redirect is followed");
    };
    assert_eq!(
        reply,
        b"-ERR too many cluster redirects (5), the last: MOVED 12182 127.0.0.1:7002\r\n"
    );
    assert_eq!(router.stats().redirect_limit, 1);
    // TRYAGAIN waits, counts as a redirect, keeps the node.
    let mut b = router.route_key(b"bar").unwrap();
    let node = b.node;
    assert_eq!(
        router.on_reply(
            &mut b,
            b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
            t0
        ),
        Verdict::ResendAt(t0 + router.config().try_again_delay)
    );
    assert_eq!((b.node, b.redirects), (node, 1));
    // A malformed redirect is redis's error: passed on, counted.
    assert_eq!(
        router.on_reply(&mut b, b"-MOVED nine h:1\r\n", t0),
        Verdict::Pass
    );
    assert_eq!(router.stats().bad_redirects, 1);
    // CLUSTERDOWN is passed on and asks a refresh.
    let mut c = router.route_key(b"a").unwrap();
    let later = t0 + Duration::from_secs(1);
    router
        .on_refresh_reply(NodeId_of(&router, 7000), &frame(&three_shards()), later)
        .unwrap();
    assert_eq!(
        router.on_reply(&mut c, b"-CLUSTERDOWN The cluster is down\r\n", later),
        Verdict::Pass
    );
    assert!(router
        .poll_refresh(later + Duration::from_millis(100))
        .is_some());
}

#[allow(non_snake_case)]
fn NodeId_of(router: &ClusterRouter, port: u16) -> NodeId {
    router.node_id(&addr("127.0.0.1", port)).unwrap()
}

#[test]
fn refresh_schedule() {
    let t0 = Instant::now();
    let config = RouterConfig::default();
    let seeds = [addr("10.0.0.1", 7000), addr("10.0.0.2", 7000)];
    let mut router = ClusterRouter::new(&seeds, config).unwrap();
    assert_eq!(router.next_deadline(t0), t0, "due at once");
    let first = router.poll_refresh(t0).unwrap();
    assert_eq!(router.addr(first), &seeds[0], "seeds first");
    assert_eq!(router.poll_refresh(t0), None, "one refresh at a time");
    assert_eq!(router.next_deadline(t0), t0 + config.refresh_timeout);
    // No answer in time: the next seed.
    let t1 = t0 + config.refresh_timeout;
    let second = router.poll_refresh(t1).unwrap();
    assert_eq!(router.addr(second), &seeds[1]);
    assert_eq!(router.stats().refresh_failures, 1);
    // A bad reply keeps no map and moves on (after the gap).
    let bad = frame(b"-ERR This instance has cluster support disabled\r\n");
    assert!(router.on_refresh_reply(second, &bad, t1).is_err());
    assert!(!router.has_map());
    assert_eq!(router.poll_refresh(t1), None, "the gap");
    let t2 = t1 + config.refresh_gap;
    let third = router.poll_refresh(t2).unwrap();
    assert_eq!(router.addr(third), &seeds[0], "around again");
    router.on_refresh_failed(third);
    let t3 = t2 + config.refresh_gap;
    let fourth = router.poll_refresh(t3).unwrap();
    assert_eq!(router.addr(fourth), &seeds[1]);
    // Success: the map's nodes become candidates too; nothing due until
    // the interval has passed.
    let bytes = three_shards();
    router.on_refresh_reply(fourth, &frame(&bytes), t3).unwrap();
    assert!(router.has_map());
    assert_eq!(router.nodes().count(), 8);
    assert_eq!(router.next_deadline(t3), t3 + config.refresh_interval);
    // MOVED makes it due once the gap since the last attempt is over.
    let mut a = router.route_key(b"foo").unwrap();
    assert_eq!(
        router.on_reply(&mut a, b"-MOVED 12182 127.0.0.1:7000\r\n", t3),
        Verdict::Resend
    );
    assert_eq!(router.next_deadline(t3), t3 + config.refresh_gap);
    assert_eq!(router.poll_refresh(t3), None);
    let n = router.poll_refresh(t3 + config.refresh_gap).unwrap();
    router
        .on_refresh_reply(n, &frame(&bytes), t3 + config.refresh_gap)
        .unwrap();
    let t3 = t3 + config.refresh_gap;
    assert_eq!(router.poll_refresh(t3 + config.refresh_interval / 2), None);
    let again = router.poll_refresh(t3 + config.refresh_interval).unwrap();
    assert_eq!(router.addr(again), &seeds[1], "the node that answered last");
    // The seeds fail: the map's nodes are asked in turn.
    let mut t = t3 + config.refresh_interval;
    router.on_refresh_failed(again);
    let mut asked = Vec::new();
    for _ in 0..7 {
        t += config.refresh_gap;
        let n = router.poll_refresh(t).unwrap();
        asked.push(router.addr(n).clone());
        router.on_refresh_failed(n);
    }
    assert_eq!(asked[0], addr("127.0.0.1", 7000));
    assert_eq!(asked[5], addr("127.0.0.1", 7005));
    assert_eq!(asked[6], seeds[0]);
    assert_eq!(router.stats().refreshes, 2);
}

fn answer_to(router: &ClusterRouter, words: &[&[u8]]) -> Vec<u8> {
    let me = addr("192.0.2.10", 22121);
    let id = proxy_node_id("pool 192.0.2.10:22121");
    let mut out = Vec::new();
    assert!(answer(
        router,
        &ProxyNode { addr: &me, id: &id },
        words,
        &mut out
    ));
    out
}

#[test]
fn proxy_answers_as_one_node() {
    let now = Instant::now();
    let router = router(now);
    let id = proxy_node_id("pool 192.0.2.10:22121");
    assert_eq!(id.len(), 40);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(id, proxy_node_id("other"));
    let slots = answer_to(&router, &[b"cluster", b"slots"]);
    let map = SlotMap::from_cluster_slots(&frame(&slots), &addr("0.0.0.0", 1)).unwrap();
    assert_eq!(map.assigned(), 16384);
    assert_eq!(map.shards().len(), 1);
    assert_eq!(map.shards()[0].master.addr, addr("192.0.2.10", 22121));
    assert_eq!(map.shards()[0].master.id.as_deref(), Some(id.as_str()));
    let line = format!("{id} 192.0.2.10:22121@0 myself,master - 0 0 1 connected 0-16383\n");
    assert_eq!(
        answer_to(&router, &[b"CLUSTER", b"NODES"]),
        format!("${}\r\n{line}\r\n", line.len()).into_bytes()
    );
    let info = answer_to(&router, &[b"CLUSTER", b"INFO"]);
    let Frame::Bulk(Some(text)) = frame(&info) else {
        panic!()
    };
    let text = String::from_utf8_lossy(text);
    assert!(
        text.contains("cluster_state:ok\r\n") && text.contains("cluster_known_nodes:1\r\n"),
        "{text}"
    );
    let shards = answer_to(&router, &[b"CLUSTER", b"SHARDS"]);
    assert!(matches!(frame(&shards), Frame::Array(Some(s)) if s.len() == 1));
    assert_eq!(
        answer_to(&router, &[b"CLUSTER", b"KEYSLOT", b"foo"]),
        b":12182\r\n"
    );
    assert_eq!(
        answer_to(&router, &[b"CLUSTER", b"MYID"]),
        format!("$40\r\n{id}\r\n").into_bytes()
    );
    assert_eq!(answer_to(&router, &[b"readonly"]), b"+OK\r\n");
    assert_eq!(answer_to(&router, &[b"ASKING"]), b"+OK\r\n");
    let refused = answer_to(&router, &[b"CLUSTER", b"SETSLOT\r\n+OK", b"1"]);
    assert!(
        refused.starts_with(b"-ERR CLUSTER SETSLOT??+OK is not supported"),
        "{refused:?}"
    );
    assert_eq!(refused.iter().filter(|&&b| b == b'\n').count(), 1);
    assert!(answer_to(&router, &[b"CLUSTER", b"SLOTS", b"x"]).starts_with(b"-ERR wrong number"));
    assert!(answer_to(&router, &[b"CLUSTER"]).starts_with(b"-ERR wrong number"));
    let mut out = Vec::new();
    let me = addr("h", 1);
    assert!(!answer(
        &router,
        &ProxyNode { addr: &me, id: &id },
        &[b"GET", b"k"],
        &mut out
    ));
    assert!(out.is_empty());
    // A map that misses slots makes the proxy say its cluster is down.
    let mut partial = ClusterRouter::new(&[addr("h", 1)], RouterConfig::default()).unwrap();
    let bytes = reply(&[range(0, 100, &[node("h", 1, "a")])]);
    let n = partial.poll_refresh(now).unwrap();
    partial.on_refresh_reply(n, &frame(&bytes), now).unwrap();
    let info = answer_to(&partial, &[b"CLUSTER", b"INFO"]);
    assert!(String::from_utf8_lossy(&info).contains("cluster_state:fail"));
}

proptest! {
    #[test]
    fn arbitrary_replies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_redirect(&bytes);
        let _ = Endpoint::parse(&bytes);
        if let Ok(Parsed::Frame(f, _)) = parse(&bytes, &Limits::default(), false) {
            let _ = SlotMap::from_cluster_slots(&f, &addr("h", 1));
            let _ = SlotMap::from_cluster_shards(&f, &addr("h", 1));
        }
        let mut router = ClusterRouter::new(&[addr("h", 1)], RouterConfig::default()).unwrap();
        let mut a = router.route_key(b"k").unwrap();
        let _ = router.on_reply(&mut a, &bytes, Instant::now());
        let mut moved = b"-MOVED ".to_vec();
        moved.extend_from_slice(&bytes);
        let _ = router.on_reply(&mut a, &moved, Instant::now());
    }

    #[test]
    fn structured_slot_replies_never_panic(
        ranges in proptest::collection::vec((any::<i16>(), any::<i16>(), any::<u32>(), 0usize..4), 0..6)
    ) {
        let text: Vec<String> = ranges
            .iter()
            .map(|&(s, e, port, n)| {
                let nodes: Vec<String> = (0..n).map(|i| format!("*2\r\n$1\r\nh\r\n:{}\r\n", port.wrapping_add(i as u32))).collect();
                format!("*{}\r\n:{s}\r\n:{e}\r\n{}", n + 2, nodes.concat())
            })
            .collect();
        let bytes = reply(&text);
        let f = frame(&bytes);
        if let Ok(map) = SlotMap::from_cluster_slots(&f, &addr("h", 1)) {
            let mut router = ClusterRouter::new(&[addr("h", 1)], RouterConfig::default()).unwrap();
            router.install(map.clone(), Instant::now());
            for slot in (0..16384).step_by(97) {
                prop_assert_eq!(router.owner(slot).map(|n| router.addr(n).clone()), map.master(slot).cloned());
            }
        }
    }
}

#[test]
fn slot_map_from_cluster_shards() {
    let via = addr("10.9.9.9", 7000);
    // RESP2: flat key/value arrays; a replica online, one loading; an
    // unknown endpoint; a shard without slots (an empty master).
    let node = |fields: &[(&str, &str)]| {
        let body: String = fields
            .iter()
            .map(|(k, v)| match v.parse::<i64>() {
                Ok(n) if *k == "port" => format!("{}:{n}\r\n", bulk(k)),
                _ => format!("{}{}", bulk(k), bulk(v)),
            })
            .collect();
        format!("*{}\r\n{body}", fields.len() * 2)
    };
    let shard = |slots: &[u16], nodes: &[String]| {
        let slots: String = slots.iter().map(|s| format!(":{s}\r\n")).collect();
        format!(
            "*4\r\n$5\r\nslots\r\n*{}\r\n{slots}$5\r\nnodes\r\n*{}\r\n{}",
            slots.matches(':').count(),
            nodes.len(),
            nodes.concat()
        )
    };
    let m1 = node(&[
        ("id", "a"),
        ("port", "7000"),
        ("ip", "10.0.0.1"),
        ("endpoint", "10.0.0.1"),
        ("role", "master"),
        ("health", "online"),
    ]);
    let r1 = node(&[
        ("id", "d"),
        ("port", "7003"),
        ("ip", "10.0.0.4"),
        ("endpoint", "10.0.0.4"),
        ("role", "replica"),
        ("health", "online"),
    ]);
    let r2 = node(&[
        ("id", "e"),
        ("port", "7004"),
        ("ip", "10.0.0.5"),
        ("endpoint", "10.0.0.5"),
        ("role", "replica"),
        ("health", "loading"),
    ]);
    let m2 = node(&[
        ("id", "b"),
        ("port", "7001"),
        ("ip", ""),
        ("endpoint", "?"),
        ("role", "master"),
        ("health", "online"),
    ]);
    let m3 = node(&[
        ("id", "c"),
        ("port", "7002"),
        ("ip", "10.0.0.3"),
        ("role", "master"),
        ("health", "online"),
    ]);
    let bytes = reply(&[
        shard(&[0, 99, 200, 299], &[r1.clone(), m1.clone(), r2.clone()]),
        shard(&[100, 199], std::slice::from_ref(&m2)),
        shard(&[], std::slice::from_ref(&m3)),
    ]);
    let map = SlotMap::from_cluster_shards(&frame(&bytes), &via).unwrap();
    assert_eq!(map.assigned(), 300);
    assert_eq!(map.shards().len(), 2);
    assert_eq!(map.ranges_of(0), vec![(0, 99), (200, 299)]);
    assert_eq!(map.master(250), Some(&addr("10.0.0.1", 7000)));
    assert_eq!(
        map.shard(0).unwrap().replicas,
        vec![ClusterNode {
            addr: addr("10.0.0.4", 7003),
            id: Some("d".into())
        }]
    );
    assert_eq!(map.master(150), Some(&addr("10.9.9.9", 7001)));
    assert_eq!(map.master(300), None);

    let err = |bytes: &[u8]| SlotMap::from_cluster_shards(&frame(bytes), &via).unwrap_err();
    assert_eq!(
        err(&reply(&[shard(&[0, 1], std::slice::from_ref(&r1))])),
        SlotsError::NoMaster { shard: 0 }
    );
    assert!(matches!(
        err(&reply(&[shard(&[0, 1], &[m1.clone(), m2.clone()])])),
        SlotsError::BadNode {
            range: 0,
            node: 1,
            ..
        }
    ));
    assert_eq!(
        err(&reply(&[shard(&[0], std::slice::from_ref(&m1))])),
        SlotsError::BadSlots { range: 0 }
    );
    assert_eq!(
        err(&reply(&[shard(&[5, 4], std::slice::from_ref(&m1))])),
        SlotsError::BadSlots { range: 0 }
    );
    assert_eq!(
        err(&reply(&[
            shard(&[0, 5], std::slice::from_ref(&m1)),
            shard(&[5, 9], std::slice::from_ref(&m2))
        ])),
        SlotsError::Overlap { slot: 5 }
    );
    assert_eq!(
        err(&reply(&[shard(&[], std::slice::from_ref(&m3))])),
        SlotsError::NoSlots
    );
    assert_eq!(
        err(b"*1\r\n*1\r\n$5\r\nslots\r\n"),
        SlotsError::BadRange { range: 0 }
    );
    let no_role = node(&[("port", "1"), ("ip", "h")]);
    assert!(matches!(
        err(&reply(&[shard(&[0, 1], &[no_role])])),
        SlotsError::BadNode { .. }
    ));
    let no_port = node(&[("ip", "h"), ("role", "master")]);
    assert!(matches!(
        err(&reply(&[shard(&[0, 1], &[no_port])])),
        SlotsError::BadNode { .. }
    ));

    // RESP3 maps read the same; and the proxy's own answer reads as one
    // node owning every slot.
    let resp3 = b"*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n%3\r\n$2\r\nip\r\n$1\r\nh\r\n$4\r\nport\r\n:9\r\n$4\r\nrole\r\n$6\r\nmaster\r\n";
    let map = SlotMap::from_cluster_shards(&frame(resp3), &via).unwrap();
    assert_eq!(
        (map.assigned(), map.master(77)),
        (16384, Some(&addr("h", 9)))
    );
    let now = Instant::now();
    let shards = answer_to(&router(now), &[b"CLUSTER", b"SHARDS"]);
    let map = SlotMap::from_cluster_shards(&frame(&shards), &via).unwrap();
    assert_eq!(map.assigned(), 16384);
    assert_eq!(map.shards().len(), 1);
    assert_eq!(map.shards()[0].master.addr, addr("192.0.2.10", 22121));
}

fn facts() -> ProxyFacts<'static> {
    ProxyFacts {
        version: "9.9.9",
        pool: "alpha",
        clients: 3,
    }
}

fn ports_of(router: &ClusterRouter, nodes: &[NodeId]) -> Vec<u16> {
    nodes.iter().map(|&n| port_of(router, n)).collect()
}

#[test]
fn info_sections_asked_for() {
    let all = InfoSections {
        own: [true; 4],
        keyspace: true,
    };
    assert_eq!(InfoSections::parse(&[]), all);
    assert_eq!(InfoSections::parse(&args(&["default"])), all);
    assert_eq!(InfoSections::parse(&args(&["ALL"])), all);
    assert_eq!(InfoSections::parse(&args(&["everything"])), all);
    assert_eq!(
        InfoSections::parse(&args(&["Keyspace"])),
        InfoSections {
            own: [false; 4],
            keyspace: true
        }
    );
    assert_eq!(
        InfoSections::parse(&args(&["clients", "proxy"])),
        InfoSections {
            own: [false, true, false, true],
            keyspace: false
        }
    );
    // A section the proxy does not have: nothing, as redis answers.
    assert_eq!(
        InfoSections::parse(&args(&["memory"])),
        InfoSections::default()
    );
}

#[test]
fn dbsize_and_info_go_to_every_master() {
    let now = Instant::now();
    // No map yet: DBSIZE has nowhere to go; INFO answers its own part.
    let seeds = [addr("127.0.0.1", 7000)];
    let empty = ClusterRouter::new(&seeds, RouterConfig::default()).unwrap();
    assert!(masters(&empty).is_empty());
    assert_eq!(
        broadcast(&empty, &facts(), &args(&["DBSIZE"])),
        Some(Err(b"-CLUSTERDOWN Hash slot not served\r\n".to_vec()))
    );
    let Some(Ok(info)) = broadcast(&empty, &facts(), &args(&["info"])) else {
        panic!("INFO without a map")
    };
    assert!(info.nodes.is_empty());
    match &info.merge {
        FanoutMerge::Info { head, keyspace } => {
            assert!(*keyspace);
            assert!(head.contains("cluster_state:fail\r\n"), "{head}");
        }
        other => panic!("{other:?}"),
    }

    let mut router = router(now);
    assert_eq!(ports_of(&router, &masters(&router)), vec![7000, 7001, 7002]);
    let Some(Ok(size)) = broadcast(&router, &facts(), &args(&["dbsize"])) else {
        panic!("DBSIZE")
    };
    assert_eq!(ports_of(&router, &size.nodes), vec![7000, 7001, 7002]);
    assert_eq!(size.request, DBSIZE_REQUEST);
    assert_eq!(size.merge, FanoutMerge::Sum);
    // A MOVED gives a slot to a replica's address: a master now.
    let mut a = router.route_key(b"foo").unwrap();
    let moved = format!("-MOVED {} 127.0.0.1:7005\r\n", cluster_slot(b"foo"));
    assert_eq!(
        router.on_reply(&mut a, moved.as_bytes(), now),
        Verdict::Resend
    );
    assert_eq!(
        ports_of(&router, &masters(&router)),
        vec![7000, 7001, 7002, 7005]
    );

    // INFO: the own sections made now, the keyspace asked of the masters.
    let Some(Ok(info)) = broadcast(&router, &facts(), &args(&["INFO"])) else {
        panic!("INFO")
    };
    assert_eq!(info.request, INFO_KEYSPACE_REQUEST);
    assert_eq!(info.nodes.len(), 4);
    let FanoutMerge::Info { head, keyspace } = &info.merge else {
        panic!("{:?}", info.merge)
    };
    assert!(*keyspace);
    for line in [
        "# Server\r\n",
        "proxy_version:9.9.9\r\n",
        "pool:alpha\r\n",
        "# Clients\r\nconnected_clients:3\r\n",
        "# Cluster\r\ncluster_enabled:1\r\ncluster_state:ok\r\n",
        "cluster_masters:4\r\n",
        "cluster_slots_served:16384\r\n",
        "cluster_moved:1\r\n",
        "cluster_ask:0\r\n",
        "cluster_refreshes:1\r\n",
    ] {
        assert!(head.contains(line), "{line:?} in {head}");
    }
    // Only the proxy's sections: no master is asked.
    let Some(Ok(own)) = broadcast(&router, &facts(), &args(&["INFO", "clients"])) else {
        panic!("INFO clients")
    };
    assert!(own.nodes.is_empty());
    assert_eq!(
        own.merge,
        FanoutMerge::Info {
            head: "# Clients\r\nconnected_clients:3\r\n".into(),
            keyspace: false
        }
    );
    assert_eq!(broadcast(&router, &facts(), &args(&["GET", "x"])), None);
}

#[test]
fn keyspace_sections_are_summed() {
    let a = bulk("# Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=1000\r\n");
    let b = bulk("# Keyspace\r\ndb0:keys=5,expires=6,avg_ttl=3000,subexpiry=1\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n");
    let empty = bulk("# Keyspace\r\n");
    let replies = [a.as_bytes(), b.as_bytes(), empty.as_bytes()];
    // avg_ttl weighted by expires: (2*1000 + 6*3000) / 8 = 2500.
    assert_eq!(
        merge_keyspace(&replies).unwrap(),
        "# Keyspace\r\ndb0:keys=15,expires=8,avg_ttl=2500,subexpiry=1\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n"
    );
    assert_eq!(
        merge_keyspace(&[empty.as_bytes()]).unwrap(),
        "# Keyspace\r\n"
    );
    // RESP3's verbatim string.
    let verbatim = b"=34\r\ntxt:db0:keys=4,expires=0,avg_ttl=0\r\n";
    assert_eq!(
        merge_keyspace(&[verbatim]).unwrap(),
        "# Keyspace\r\ndb0:keys=4,expires=0,avg_ttl=0\r\n"
    );
    // A node's error is the client's; a line that does not read is named.
    let down = b"-LOADING Redis is loading the dataset in memory\r\n";
    assert_eq!(
        merge_keyspace(&[a.as_bytes(), down]).unwrap_err(),
        down.to_vec()
    );
    let bad = bulk("db0:keys=many\r\n");
    let e = String::from_utf8(merge_keyspace(&[bad.as_bytes()]).unwrap_err()).unwrap();
    assert_eq!(
        e,
        "-ERR a cluster node's keyspace line does not read: db0:keys=many\r\n"
    );
    assert!(merge_keyspace(&[b":1\r\n"]).is_err());

    // The whole INFO reply: a bulk string, the head then the keyspace.
    let reply = info_reply(
        "# Clients\r\nconnected_clients:1\r\n",
        true,
        &[a.as_bytes()],
    );
    let text = "# Clients\r\nconnected_clients:1\r\n\r\n# Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=1000\r\n";
    assert_eq!(reply, bulk(text).into_bytes());
    assert_eq!(
        info_reply("", true, &[empty.as_bytes()]),
        bulk("# Keyspace\r\n").into_bytes()
    );
    assert_eq!(info_reply("", false, &[]), b"$0\r\n\r\n".to_vec());
    assert_eq!(info_reply("x", true, &[down]), down.to_vec());
}

#[test]
fn router_stats_add_up() {
    let mut a = RouterStats {
        moved: 1,
        ask: 2,
        try_again: 3,
        redirect_limit: 4,
        bad_redirects: 5,
        refreshes: 6,
        refresh_failures: 7,
    };
    a.add(&a.clone());
    assert_eq!(
        a,
        RouterStats {
            moved: 2,
            ask: 4,
            try_again: 6,
            redirect_limit: 8,
            bad_redirects: 10,
            refreshes: 12,
            refresh_failures: 14,
        }
    );
}
