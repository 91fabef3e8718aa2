//! The engine driven by hand: a fake runtime that plays the servers.

use std::time::{Duration, Instant};

use super::*;
use crate::config;

fn engine(yaml: &str, limits: Limits) -> Engine {
    Engine::new(config::parse(yaml).unwrap(), limits).unwrap()
}

const TWO: &str = "p:\n  listen: 127.0.0.1:9999\n  redis: true\n  timeout: 100\n  servers:\n   - 127.0.0.1:7001:1 one\n   - 127.0.0.1:7002:1 two\n";

fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Runs the actions: connects succeed at once unless `refuse` names the
/// connection; returns the actions seen.
fn run(e: &mut Engine, refuse: &[ServerConnId], now: Instant) -> Vec<Action> {
    let mut seen = Vec::new();
    while let Some(a) = e.poll_action() {
        if let Action::Connect { conn, .. } = &a {
            if refuse.contains(conn) {
                e.server_closed(*conn, Some("Connection refused"), now);
            } else {
                e.server_connected(*conn);
            }
        }
        seen.push(a);
    }
    seen
}

fn drain_server(e: &mut Engine, conn: ServerConnId) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let front = e.server_output(conn).to_vec();
        if front.is_empty() {
            return out;
        }
        e.server_wrote(conn, front.len());
        out.extend_from_slice(&front);
    }
}

fn drain_client(e: &mut Engine, id: ClientId, now: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let front = e.client_output(id).to_vec();
        if front.is_empty() {
            return out;
        }
        e.client_wrote(id, front.len(), now);
        out.extend_from_slice(&front);
    }
}

/// Two keys the pool puts on different servers: (key on 0, key on 1).
fn keys_apart() -> (String, String) {
    let pool = &config::parse(TWO).unwrap()[0];
    let mut router = StaticRouter::new(pool);
    let mut found = [None, None];
    for i in 0.. {
        let k = format!("key{i}");
        let s = router.server_for(k.as_bytes()).unwrap();
        found[s].get_or_insert(k);
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    let [a, b] = found;
    (a.unwrap(), b.unwrap())
}

#[test]
fn replies_keep_request_order_across_servers() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let (k0, k1) = keys_apart();
    let c = e.client_accepted(0).unwrap();
    let mut req = cmd(&["GET", &k0]);
    req.extend(cmd(&["GET", &k1]));
    e.client_data(c, &req, now);
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 0), cmd(&["GET", &k0]));
    assert_eq!(drain_server(&mut e, 1), cmd(&["GET", &k1]));
    // The second server answers first: nothing may reach the client yet.
    e.server_data(1, b"$3\r\nbee\r\n", now);
    assert!(drain_client(&mut e, c, now).is_empty());
    e.server_data(0, b"$3\r\nayy\r\n", now);
    assert_eq!(drain_client(&mut e, c, now), b"$3\r\nayy\r\n$3\r\nbee\r\n");
}

#[test]
fn replies_of_one_read_are_written_together_and_a_read_does_not_wait_for_the_next() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let (k0, k1) = keys_apart();
    let c = e.client_accepted(0).unwrap();
    // One read (a pipeline of two), then a second read of one request.
    let mut req = cmd(&["GET", &k0]);
    req.extend(cmd(&["GET", &k1]));
    e.client_data(c, &req, now);
    e.client_data(c, &cmd(&["GET", &k0]), now);
    run(&mut e, &[], now);
    drain_server(&mut e, 0);
    drain_server(&mut e, 1);
    // The first read's first reply waits for its second: no write yet.
    e.server_data(0, b"$3\r\nayy\r\n", now);
    assert!(!run(&mut e, &[], now).contains(&Action::WriteClient(c)));
    assert!(drain_client(&mut e, c, now).is_empty());
    // Its last reply: both go together, without the second read's.
    e.server_data(1, b"$3\r\nbee\r\n", now);
    assert_eq!(run(&mut e, &[], now), [Action::WriteClient(c)]);
    assert_eq!(drain_client(&mut e, c, now), b"$3\r\nayy\r\n$3\r\nbee\r\n");
    // The second read's only reply goes at once.
    e.server_data(0, b"$2\r\nzz\r\n", now);
    assert_eq!(run(&mut e, &[], now), [Action::WriteClient(c)]);
    assert_eq!(drain_client(&mut e, c, now), b"$2\r\nzz\r\n");
    // A read the proxy answers itself goes whole at once.
    let mut pings = cmd(&["PING"]);
    pings.extend(cmd(&["PING"]));
    e.client_data(c, &pings, now);
    assert_eq!(run(&mut e, &[], now), [Action::WriteClient(c)]);
    assert_eq!(drain_client(&mut e, c, now), b"+PONG\r\n+PONG\r\n");
}

/// One read of `GET k0` and `GET k1` from client `c`, forwarded to both
/// servers.
fn send_two_gets(e: &mut Engine, c: ClientId, k0: &str, k1: &str, now: Instant) {
    let mut pair = cmd(&["GET", k0]);
    pair.extend(cmd(&["GET", k1]));
    e.client_data(c, &pair, now);
    run(e, &[], now);
    assert_eq!(drain_server(e, 0), cmd(&["GET", k0]));
    assert_eq!(drain_server(e, 1), cmd(&["GET", k1]));
}

#[test]
fn output_left_unwritten_before_a_hold_is_announced_again_when_it_ends() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let (k0, k1) = keys_apart();
    let c = e.client_accepted(0).unwrap();
    send_two_gets(&mut e, c, &k0, &k1, now);
    e.server_data(0, b"$1\r\na\r\n", now);
    e.server_data(1, b"$1\r\nb\r\n", now);
    assert_eq!(run(&mut e, &[], now), [Action::WriteClient(c)]);
    // The socket takes one byte of the first read's replies, then is full.
    assert!(!e.client_output(c).is_empty());
    e.client_wrote(c, 1, now);
    // A second read; its first reply joins the rest: all of it is held, and
    // the runtime, writable again, finds nothing to write.
    send_two_gets(&mut e, c, &k0, &k1, now);
    e.server_data(0, b"$1\r\nc\r\n", now);
    run(&mut e, &[], now);
    assert!(e.client_output(c).is_empty());
    // The read's last reply: the runtime is told again, and all of it goes.
    e.server_data(1, b"$1\r\nd\r\n", now);
    assert_eq!(run(&mut e, &[], now), [Action::WriteClient(c)]);
    assert_eq!(
        drain_client(&mut e, c, now),
        b"1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"
    );
}

#[test]
fn held_replies_go_once_they_fill_the_hold() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let (k0, k1) = keys_apart();
    let c = e.client_accepted(0).unwrap();
    send_two_gets(&mut e, c, &k0, &k1, now);
    let value = "v".repeat(crate::proxy::session::HOLD_BYTES);
    let reply = format!("${}\r\n{value}\r\n", value.len());
    e.server_data(0, reply.as_bytes(), now);
    assert_eq!(run(&mut e, &[], now), [Action::WriteClient(c)]);
    assert_eq!(drain_client(&mut e, c, now), reply.as_bytes());
}

#[test]
fn mget_splits_and_merges_in_key_order_with_per_key_errors() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let (k0, k1) = keys_apart();
    let c = e.client_accepted(0).unwrap();
    e.client_data(c, &cmd(&["MGET", &k1, &k0, &k1]), now);
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 0), cmd(&["MGET", &k0]));
    assert_eq!(drain_server(&mut e, 1), cmd(&["MGET", &k1, &k1]));
    e.server_data(0, b"*1\r\n$1\r\nx\r\n", now);
    e.server_data(1, b"*2\r\n$1\r\ny\r\n$-1\r\n", now);
    assert_eq!(
        drain_client(&mut e, c, now),
        b"*3\r\n$1\r\ny\r\n$1\r\nx\r\n$-1\r\n"
    );
    // One server failing: its keys get the error, the others their value.
    e.client_data(c, &cmd(&["MGET", &k0, &k1]), now);
    run(&mut e, &[], now);
    drain_server(&mut e, 0);
    drain_server(&mut e, 1);
    e.server_data(1, b"*1\r\n$1\r\ny\r\n", now);
    e.server_closed(0, Some("Connection reset by peer"), now);
    assert_eq!(
        drain_client(&mut e, c, now),
        b"*2\r\n-ERR Connection reset by peer\r\n$1\r\ny\r\n"
    );
}

#[test]
fn del_sums_and_mset_needs_every_ok() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let (k0, k1) = keys_apart();
    let c = e.client_accepted(0).unwrap();
    let mut req = cmd(&["DEL", &k0, &k1]);
    req.extend(cmd(&["MSET", &k0, "1", &k1, "2"]));
    e.client_data(c, &req, now);
    run(&mut e, &[], now);
    let mut s0 = cmd(&["DEL", &k0]);
    s0.extend(cmd(&["MSET", &k0, "1"]));
    assert_eq!(drain_server(&mut e, 0), s0);
    e.server_data(0, b":1\r\n+OK\r\n", now);
    e.server_data(1, b":1\r\n-ERR oom\r\n", now);
    assert_eq!(drain_client(&mut e, c, now), b":2\r\n-ERR oom\r\n");
}

/// An MSET whose last value (40 bytes, passthrough from 16 on) has 4
/// bytes here: the value's fragment (`k1`'s pairs, the value last) is
/// queued up to the splice point and the rest uploaded from the client;
/// `k0`'s fragment is held back until the value is through, then sent;
/// the client gets one `+OK`. A client leaving mid-value: the value's
/// connection is closed and `k0`'s fragment is never sent. The value's
/// connection failing mid-value: the rest drains, `k0`'s fragment goes,
/// the reply is the failure.
#[test]
fn an_mset_uploads_its_last_value_and_holds_its_other_fragments_back() {
    let now = Instant::now();
    let (k0, k1) = keys_apart();
    let value = "v".repeat(40);
    let whole = cmd(&["MSET", &k1, "a", &k0, "b", &k1, &value]);
    let head = &whole[..whole.len() - 38];
    let fragment = cmd(&["MSET", &k1, "a", &k1, &value]);
    let start = |e: &mut Engine| {
        e.enable_passthrough(16, |_| true);
        let c = e.client_accepted(0).unwrap();
        // Both connections up and idle first.
        let mut gets = cmd(&["GET", &k0]);
        gets.extend(cmd(&["GET", &k1]));
        e.client_data(c, &gets, now);
        run(e, &[], now);
        drain_server(e, 0);
        drain_server(e, 1);
        e.server_data(0, b"$-1\r\n", now);
        e.server_data(1, b"$-1\r\n", now);
        assert_eq!(drain_client(e, c, now), b"$-1\r\n$-1\r\n");
        e.client_data(c, head, now);
        run(e, &[], now);
        c
    };

    let mut e = engine(TWO, Limits::default());
    let c = start(&mut e);
    assert_eq!(
        e.splice_from(SpliceEnd::Client(c)),
        Some((SpliceEnd::Server(1), 38))
    );
    assert!(!e.client_wants_input(c));
    assert_eq!(drain_server(&mut e, 1), fragment[..fragment.len() - 38]);
    assert!(drain_server(&mut e, 0).is_empty(), "k0's fragment waits");
    assert_eq!(
        e.splice_into(SpliceEnd::Server(1)),
        Some((SpliceEnd::Client(c), 38))
    );
    assert!(!e.splice_moved(SpliceEnd::Client(c), 30, true, now));
    assert!(drain_server(&mut e, 0).is_empty(), "k0's fragment waits");
    assert!(e.splice_moved(SpliceEnd::Client(c), 8, true, now));
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 0), cmd(&["MSET", &k0, "b"]));
    assert!(e.client_wants_input(c));
    e.server_data(0, b"+OK\r\n", now);
    assert!(drain_client(&mut e, c, now).is_empty(), "k1's OK first");
    e.server_data(1, b"+OK\r\n", now);
    assert_eq!(drain_client(&mut e, c, now), b"+OK\r\n");
    let stats = e.passthrough_stats();
    assert_eq!((stats.frames, stats.zero_copy_bytes), (1, 38));

    let mut e = engine(TWO, Limits::default());
    let c = start(&mut e);
    e.client_closed(c, true);
    let actions = run(&mut e, &[], now);
    assert!(actions.contains(&Action::CloseServer(1)), "{actions:?}");
    assert!(!actions.contains(&Action::WriteServer(0)), "{actions:?}");
    assert!(drain_server(&mut e, 0).is_empty());

    // The value's connection failing mid-value: the rest drains from the
    // client, then `k0`'s fragment goes; the reply is the failure.
    let mut e = engine(TWO, Limits::default());
    let c = start(&mut e);
    e.server_closed(1, Some("Connection reset by peer"), now);
    assert_eq!(
        e.splice_from(SpliceEnd::Client(c)),
        Some((SpliceEnd::Drop, 38))
    );
    assert!(e.splice_moved(SpliceEnd::Client(c), 38, false, now));
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 0), cmd(&["MSET", &k0, "b"]));
    e.server_data(0, b"+OK\r\n", now);
    assert_eq!(
        drain_client(&mut e, c, now),
        b"-ERR Connection reset by peer\r\n"
    );
    assert_eq!(e.passthrough_stats().dropped_bytes, 38);
}

#[test]
fn proxy_answers_and_refuses_locally() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let c = e.client_accepted(0).unwrap();
    let mut req = cmd(&["PING"]);
    req.extend(cmd(&["BLPOP", "k", "0"]));
    req.extend(cmd(&["NOSUCH"]));
    req.extend(cmd(&["GET"]));
    req.extend(b"PING\r\n");
    e.client_data(c, &req, now);
    let out = String::from_utf8(drain_client(&mut e, c, now)).unwrap();
    assert_eq!(
        out,
        "+PONG\r\n-ERR blocking commands are not supported by the proxy\r\n\
         -ERR unknown command 'nosuch' (or not supported by the proxy)\r\n\
         -ERR wrong number of arguments for 'get' command\r\n+PONG\r\n"
    );
    assert!(run(&mut e, &[], now)
        .iter()
        .all(|a| matches!(a, Action::WriteClient(_))));
}

#[test]
fn timeout_fails_the_request_and_closes_the_connection() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let (k0, _) = keys_apart();
    let c = e.client_accepted(0).unwrap();
    e.client_data(c, &cmd(&["GET", &k0]), now);
    run(&mut e, &[], now);
    drain_server(&mut e, 0);
    assert_eq!(e.next_deadline(), Some(now + Duration::from_millis(100)));
    e.tick(now + Duration::from_millis(99));
    assert!(drain_client(&mut e, c, now).is_empty());
    e.tick(now + Duration::from_millis(100));
    assert_eq!(
        drain_client(&mut e, c, now),
        b"-ERR Connection timed out\r\n"
    );
    assert!(run(&mut e, &[], now).contains(&Action::CloseServer(0)));
    // A late reply on a new connection is not mixed up with the next request.
    e.client_data(c, &cmd(&["GET", &k0]), now);
    let actions = run(&mut e, &[], now);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Connect { conn: 0, .. })));
    e.server_data(0, b"$1\r\nz\r\n", now);
    assert_eq!(drain_client(&mut e, c, now), b"$1\r\nz\r\n");
}

#[test]
fn failing_server_is_ejected_then_retried() {
    let yaml = format!(
        "{TWO}  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 1000\n"
    );
    let now = Instant::now();
    let mut e = engine(&yaml, Limits::default());
    let (k0, _) = keys_apart();
    let c = e.client_accepted(0).unwrap();
    for _ in 0..2 {
        e.client_data(c, &cmd(&["GET", &k0]), now);
        run(&mut e, &[0], now);
        assert_eq!(drain_client(&mut e, c, now), b"-ERR Connection refused\r\n");
    }
    // Ejected: the key now lives on the other server.
    e.client_data(c, &cmd(&["GET", &k0]), now);
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 1), cmd(&["GET", &k0]));
    e.server_data(1, b"$-1\r\n", now);
    assert_eq!(drain_client(&mut e, c, now), b"$-1\r\n");
    assert_eq!(e.next_deadline(), Some(now + Duration::from_millis(1000)));
    // Retried after the timeout: back on its own server.
    e.tick(now + Duration::from_millis(1000));
    e.client_data(c, &cmd(&["GET", &k0]), now);
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 0), cmd(&["GET", &k0]));
    let stats = e.stats_json(&StatsClock {
        now,
        unix_micros: 0,
        uptime: 0,
        source: "t".into(),
        version: "v".into(),
    });
    assert!(stats.contains("\"server_ejects\":1"), "{stats}");
}

#[test]
fn malformed_input_closes_only_that_client() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let bad = e.client_accepted(0).unwrap();
    let good = e.client_accepted(0).unwrap();
    e.client_data(bad, b"*1\r\n$x\r\n", now);
    assert_eq!(
        drain_client(&mut e, bad, now),
        b"-ERR Protocol error: invalid number\r\n"
    );
    assert!(run(&mut e, &[], now).contains(&Action::CloseClient(bad)));
    e.client_data(good, &cmd(&["PING"]), now);
    assert_eq!(drain_client(&mut e, good, now), b"+PONG\r\n");
}

#[test]
fn auth_is_required_and_sent_to_servers() {
    let yaml = "p:\n  listen: 127.0.0.1:9999\n  redis: true\n  redis_auth: pw\n  redis_db: 3\n  servers:\n   - 127.0.0.1:7001:1\n";
    let now = Instant::now();
    let mut e = engine(yaml, Limits::default());
    let c = e.client_accepted(0).unwrap();
    let mut req = cmd(&["GET", "a"]);
    req.extend(cmd(&["AUTH", "nope"]));
    req.extend(cmd(&["AUTH", "pw"]));
    req.extend(cmd(&["GET", "a"]));
    e.client_data(c, &req, now);
    run(&mut e, &[], now);
    let mut expect = cmd(&["AUTH", "pw"]);
    expect.extend(cmd(&["SELECT", "3"]));
    expect.extend(cmd(&["GET", "a"]));
    assert_eq!(drain_server(&mut e, 0), expect);
    e.server_data(0, b"+OK\r\n+OK\r\n$1\r\nv\r\n", now);
    assert_eq!(
        drain_client(&mut e, c, now),
        b"-NOAUTH Authentication required\r\n-ERR invalid password\r\n+OK\r\n$1\r\nv\r\n"
    );
}

#[test]
fn a_flooding_client_stops_being_read_and_a_huge_request_is_refused() {
    let now = Instant::now();
    let limits = Limits {
        max_request: 1000,
        max_pending: 4,
        max_output: 1 << 20,
    };
    let mut e = engine(TWO, limits);
    let (k0, _) = keys_apart();
    let c = e.client_accepted(0).unwrap();
    let flood: Vec<u8> = (0..10).flat_map(|_| cmd(&["GET", &k0])).collect();
    e.client_data(c, &flood, now);
    assert!(!e.client_wants_input(c));
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 0).len(), 4 * cmd(&["GET", &k0]).len());
    let replies: Vec<u8> = (0..4).flat_map(|_| b"$-1\r\n".to_vec()).collect();
    e.server_data(0, &replies, now);
    // Writing the replies lets the held requests through.
    drain_client(&mut e, c, now);
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 0).len(), 4 * cmd(&["GET", &k0]).len());

    let other = e.client_accepted(0).unwrap();
    let big = "x".repeat(2000);
    e.client_data(other, &cmd(&["SET", "k", &big]), now);
    assert_eq!(
        drain_client(&mut e, other, now),
        b"-ERR Protocol error: bulk length 2000 above the limit\r\n"
    );
    assert!(run(&mut e, &[], now).contains(&Action::CloseClient(other)));
}

#[test]
fn a_big_value_is_forwarded_without_a_copy() {
    let now = Instant::now();
    let one = "p:\n  listen: 127.0.0.1:9999\n  redis: true\n  servers:\n   - 127.0.0.1:7001:1\n";
    let mut e = engine(one, Limits::default());
    let c = e.client_accepted(0).unwrap();
    e.client_data(c, &cmd(&["PING"]), now);
    drain_client(&mut e, c, now);
    let value = "v".repeat(4 << 20);
    let req = cmd(&["SET", "k", &value]);
    let buf = e.client_buffer(c).unwrap();
    let room = buf.spare(req.len());
    room[..req.len()].copy_from_slice(&req);
    let read_into = room.as_ptr();
    buf.commit(req.len());
    e.client_input(c, now);
    run(&mut e, &[], now);
    // The request leaves as the buffer it was read into.
    assert_eq!(e.server_output(0).as_ptr(), read_into);
    assert_eq!(drain_server(&mut e, 0), req);
}

#[test]
fn preconnect_and_client_connections() {
    let yaml =
        format!("{TWO}  preconnect: true\n  server_connections: 2\n  client_connections: 2\n");
    let now = Instant::now();
    let mut e = engine(&yaml, Limits::default());
    e.start(now);
    let connects = run(&mut e, &[], now)
        .iter()
        .filter(|a| matches!(a, Action::Connect { .. }))
        .count();
    assert_eq!(connects, 4);
    let a = e.client_accepted(0).unwrap();
    let _b = e.client_accepted(0).unwrap();
    assert!(e.client_accepted(0).is_none());
    e.client_closed(a, true);
    assert!(e.client_accepted(0).is_some());
}

#[test]
fn quit_answers_then_closes() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let c = e.client_accepted(0).unwrap();
    let mut req = cmd(&["PING"]);
    req.extend(cmd(&["QUIT"]));
    req.extend(cmd(&["PING"]));
    e.client_data(c, &req, now);
    assert_eq!(drain_client(&mut e, c, now), b"+PONG\r\n+OK\r\n");
    assert!(run(&mut e, &[], now).contains(&Action::CloseClient(c)));
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    /// Pieces that make plausible and broken traffic alike.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(cmd(&["GET", "a"])),
            Just(cmd(&["MGET", "a", "b", "c", "d"])),
            Just(cmd(&["MSET", "a", "1", "b", "2"])),
            Just(cmd(&["DEL", "a", "b", "c"])),
            Just(cmd(&["PING"])),
            Just(cmd(&["QUIT"])),
            Just(b"*1\r\n$4\r\n".to_vec()),
            Just(b"$-1\r\n".to_vec()),
            Just(b"+OK\r\n".to_vec()),
            Just(b":3\r\n".to_vec()),
            Just(b"*2\r\n$1\r\nx\r\n$-1\r\n".to_vec()),
            Just(b"-ERR x\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..24),
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Client(usize, Vec<u8>),
        Server(usize, Vec<u8>),
        ServerClosed(usize),
        ClientClosed(usize),
        Write(usize, usize),
        Tick(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..3usize, piece()).prop_map(|(c, b)| Step::Client(c, b)),
            4 => (0..2usize, piece()).prop_map(|(s, b)| Step::Server(s, b)),
            1 => (0..2usize).prop_map(Step::ServerClosed),
            1 => (0..3usize).prop_map(Step::ClientClosed),
            2 => (0..3usize, 0..64usize).prop_map(|(c, n)| Step::Write(c, n)),
            1 => (0..300u64).prop_map(Step::Tick),
        ]
    }

    proptest! {
        /// Any interleaving of client bytes, server bytes, closes, partial
        /// writes and time never panics, and every client's replies are
        /// whole RESP frames.
        #[test]
        fn arbitrary_traffic_never_panics(steps in proptest::collection::vec(step(), 1..60)) {
            let yaml = format!("{TWO}  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 50\n");
            let start = Instant::now();
            let mut now = start;
            let mut e = engine(&yaml, Limits { max_request: 4096, max_pending: 8, max_output: 4096 });
            let mut clients: Vec<Option<ClientId>> = (0..3).map(|_| e.client_accepted(0)).collect();
            let mut written: Vec<Vec<u8>> = vec![Vec::new(); 3];
            for step in steps {
                match step {
                    Step::Client(c, bytes) => {
                        if let Some(id) = clients[c] {
                            e.client_data(id, &bytes, now);
                        }
                    }
                    Step::Server(s, bytes) => e.server_data(s, &bytes, now),
                    Step::ServerClosed(s) => e.server_closed(s, Some("Connection reset by peer"), now),
                    Step::ClientClosed(c) => {
                        if let Some(id) = clients[c].take() {
                            e.client_closed(id, true);
                            written[c].clear();
                        }
                    }
                    Step::Write(c, n) => {
                        if let Some(id) = clients[c] {
                            let front = e.client_output(id);
                            let n = n.min(front.len());
                            written[c].extend_from_slice(&front[..n]);
                            e.client_wrote(id, n, now);
                        }
                    }
                    Step::Tick(ms) => {
                        now += Duration::from_millis(ms);
                        e.tick(now);
                    }
                }
                while let Some(action) = e.poll_action() {
                    match action {
                        Action::Connect { conn, .. } => e.server_connected(conn),
                        Action::WriteServer(conn) => {
                            drain_server(&mut e, conn);
                        }
                        _ => {}
                    }
                }
            }
            for (c, id) in clients.into_iter().enumerate() {
                let mut out = std::mem::take(&mut written[c]);
                if let Some(id) = id {
                    out.extend(drain_client(&mut e, id, now));
                }
                let mut at = 0;
                while at < out.len() {
                    match crate::resp::parse(&out[at..], &crate::resp::Limits::default(), false) {
                        Ok(crate::resp::Parsed::Frame(_, used)) => at += used,
                        other => prop_assert!(false, "reply bytes {:?}: {other:?}", &out[at..]),
                    }
                }
            }
        }

        /// Liveness: well-formed pipelines read in any chunking, servers
        /// answering in any chunking, and a runtime that writes a client
        /// only when told (`WriteClient`) or when its socket, full after a
        /// short write, becomes writable again: once the servers have
        /// answered everything, every request has its reply.
        #[test]
        fn every_request_is_answered_whatever_the_chunking(
            reads in proptest::collection::vec(
                (0..2usize, proptest::collection::vec(0..5u8, 1..6)), 1..12),
            server_chunk in 1..40usize,
            socket_room in proptest::collection::vec(1..64usize, 1..8),
        ) {
            let now = Instant::now();
            let mut e = engine(TWO, Limits::default());
            let clients: Vec<ClientId> = (0..2).map(|_| e.client_accepted(0).unwrap()).collect();
            let mut sent = [0usize; 2];
            let mut got: Vec<Vec<u8>> = vec![Vec::new(); 2];
            // Told to write, or its socket took a short write and waits
            // for room.
            let mut told = [false; 2];
            let mut full = [false; 2];
            let mut room = socket_room.iter().cycle();
            // Per server: requests received and not answered yet, and
            // answers not sent yet.
            let mut at_server: Vec<(Vec<u8>, Vec<u8>)> = vec![(Vec::new(), Vec::new()); 2];
            let (k0, k1) = keys_apart();
            for (c, ops) in reads {
                let mut bytes = Vec::new();
                for op in ops {
                    bytes.extend(match op {
                        0 => cmd(&["GET", &k0]),
                        1 => cmd(&["GET", &k1]),
                        2 => cmd(&["SET", &k1, "v"]),
                        3 => cmd(&["MGET", &k0, &k1]),
                        _ => cmd(&["PING"]),
                    });
                    sent[c] += 1;
                }
                e.client_data(clients[c], &bytes, now);
                // The runtime's turn, with servers answering a chunk each.
                for i in 0..4 {
                    if i % 2 == 1 {
                        full = [false; 2];
                    }
                    turn(&mut e, &clients, &mut told, &mut full, &mut got, &mut room, &mut at_server, server_chunk, now);
                }
            }
            // Everything answered, every socket drained: quiet at last.
            for _ in 0..10_000 {
                full = [false; 2];
                turn(&mut e, &clients, &mut told, &mut full, &mut got, &mut room, &mut at_server, usize::MAX, now);
            }
            for c in 0..2 {
                let mut at = 0;
                let mut replies = 0;
                while at < got[c].len() {
                    match crate::resp::parse(&got[c][at..], &crate::resp::Limits::default(), false) {
                        Ok(crate::resp::Parsed::Frame(_, used)) => {
                            at += used;
                            replies += 1;
                        }
                        other => prop_assert!(false, "client {c} reply bytes {:?}: {other:?}", &got[c][at..]),
                    }
                }
                prop_assert_eq!(replies, sent[c], "client {}: replies for its requests", c);
            }
        }

    }
}

/// One turn of the liveness test's runtime: connects, servers answer what
/// they received, up to `chunk` bytes of answers each per turn, clients told to write (or whose
/// socket has room again) are written until empty or their socket's room
/// (drawn from `room`) is used up.
#[allow(clippy::too_many_arguments)]
fn turn(
    e: &mut Engine,
    clients: &[ClientId],
    told: &mut [bool; 2],
    full: &mut [bool; 2],
    got: &mut [Vec<u8>],
    room: &mut dyn Iterator<Item = &usize>,
    at_server: &mut [(Vec<u8>, Vec<u8>)],
    chunk: usize,
    now: Instant,
) {
    while let Some(action) = e.poll_action() {
        match action {
            Action::Connect { conn, .. } => e.server_connected(conn),
            Action::WriteClient(id) => {
                if let Some(c) = clients.iter().position(|&x| x == id) {
                    told[c] = true;
                }
            }
            _ => {}
        }
    }
    for (s, (held, answer)) in at_server.iter_mut().enumerate() {
        held.extend(drain_server(e, s));
        let mut at = 0;
        while let Ok(crate::resp::Parsed::Frame(crate::resp::Frame::Array(Some(args)), used)) =
            crate::resp::parse(&held[at..], &crate::resp::Limits::default(), false)
        {
            at += used;
            let name = match args.first() {
                Some(crate::resp::Frame::Bulk(Some(n))) => n.to_ascii_uppercase(),
                _ => Vec::new(),
            };
            answer.extend_from_slice(match name.as_slice() {
                b"GET" => b"$1\r\nv\r\n".as_slice(),
                b"MGET" if args.len() == 2 => b"*1\r\n$1\r\nv\r\n",
                b"MGET" => b"*2\r\n$1\r\nv\r\n$1\r\nv\r\n",
                _ => b"+OK\r\n",
            });
        }
        held.drain(..at);
        // At most `chunk` bytes of answers reach the proxy per turn.
        let n = answer.len().min(chunk.max(1));
        if n > 0 {
            let piece: Vec<u8> = answer.drain(..n).collect();
            e.server_data(s, &piece, now);
        }
    }
    for (c, &id) in clients.iter().enumerate() {
        if !told[c] || full[c] {
            continue;
        }
        let mut left = *room.next().unwrap_or(&64);
        loop {
            let front = e.client_output(id).to_vec();
            if front.is_empty() {
                // Nothing to write: the runtime waits to be told again.
                told[c] = false;
                break;
            }
            let n = front.len().min(left);
            got[c].extend_from_slice(&front[..n]);
            e.client_wrote(id, n, now);
            left -= n;
            if left == 0 {
                // The socket is full: writable again next turn.
                full[c] = true;
                break;
            }
        }
    }
}

/// A stand-in for cluster mode's router: every key to server 0, split
/// parts by the key's first byte; `-MOVED`/`-ASK` name a node it learns
/// as server 2, `-TRYAGAIN` resends after 10 ms, `-CLUSTERDOWN` becomes
/// another error; it asks server 1 for `CLUSTER SLOTS` once.
/// The replies a router got to its own requests.
type OwnReplies = std::sync::Arc<std::sync::Mutex<Vec<Result<Vec<u8>, String>>>>;

#[derive(Default)]
struct Redirecting {
    learned: Vec<crate::config::ServerAddress>,
    asked: bool,
    own: OwnReplies,
}

impl Router for Redirecting {
    fn server_for(&mut self, _key: &[u8]) -> Option<usize> {
        Some(0)
    }
    fn set_live(&mut self, _live: &[bool]) {}
    fn split_key(&mut self, key: &[u8]) -> Option<(usize, u64)> {
        Some((0, u64::from(key[0])))
    }
    fn on_reply(&mut self, _server: usize, _redirects: u8, reply: &[u8], now: Instant) -> Verdict {
        if reply.starts_with(b"-TRYAGAIN") {
            return Verdict::Redirect {
                server: 0,
                asking: false,
                at: Some(now + Duration::from_millis(10)),
            };
        }
        if reply.starts_with(b"-CLUSTERDOWN") {
            return Verdict::Fail(b"-ERR down\r\n".to_vec());
        }
        let asking = reply.starts_with(b"-ASK ");
        if !(asking || reply.starts_with(b"-MOVED ")) {
            return Verdict::Forward;
        }
        if self.learned.is_empty() {
            self.learned.push(crate::config::ServerAddress::Tcp {
                host: "127.0.0.1".into(),
                port: 7003,
            });
        }
        Verdict::Redirect {
            server: 2,
            asking,
            at: None,
        }
    }
    fn redirects(&self) -> bool {
        true
    }
    fn learned_servers(&self) -> &[crate::config::ServerAddress] {
        &self.learned
    }
    fn poll_request(&mut self, _now: Instant) -> Option<(usize, Vec<u8>)> {
        if self.asked {
            return None;
        }
        self.asked = true;
        Some((1, cmd(&["CLUSTER", "SLOTS"])))
    }
    fn on_own_reply(&mut self, _server: usize, reply: Result<&[u8], &str>, _now: Instant) {
        self.own
            .lock()
            .unwrap()
            .push(reply.map(<[u8]>::to_vec).map_err(str::to_string));
    }
}

#[test]
fn a_router_redirects_requests_to_servers_it_learned() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    e.set_router(0, Box::new(Redirecting::default()));
    let c = e.client_accepted(0).unwrap();
    let mut req = cmd(&["GET", "a"]);
    req.extend(cmd(&["GET", "b"]));
    e.client_data(c, &req, now);
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 0), req);
    // MOVED for the first, ASK for the second: both go to the new node,
    // the second after an ASKING whose reply the client never sees.
    e.server_data(
        0,
        b"-MOVED 15495 127.0.0.1:7003\r\n-ASK 3999 127.0.0.1:7003\r\n",
        now,
    );
    let actions = run(&mut e, &[], now);
    let new_conn = e.server_conn_count() - 1;
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Connect { conn, address: crate::config::ServerAddress::Tcp { port: 7003, .. }, .. }
                if *conn == new_conn
        )),
        "{actions:?}"
    );
    let mut expect = cmd(&["GET", "a"]);
    expect.extend(cmd(&["ASKING"]));
    expect.extend(cmd(&["GET", "b"]));
    assert_eq!(drain_server(&mut e, new_conn), expect);
    assert!(drain_client(&mut e, c, now).is_empty());
    e.server_data(new_conn, b"$1\r\nA\r\n+OK\r\n$1\r\nB\r\n", now);
    assert_eq!(drain_client(&mut e, c, now), b"$1\r\nA\r\n$1\r\nB\r\n");
    // A request redirected again and again ends with the last reply.
    e.client_data(c, &cmd(&["GET", "c"]), now);
    run(&mut e, &[], now);
    drain_server(&mut e, 0);
    e.server_data(0, b"-MOVED 1 127.0.0.1:7003\r\n", now);
    for _ in 0..5 {
        run(&mut e, &[], now);
        drain_server(&mut e, new_conn);
        e.server_data(new_conn, b"-MOVED 1 127.0.0.1:7003\r\n", now);
    }
    assert_eq!(drain_client(&mut e, c, now), b"-MOVED 1 127.0.0.1:7003\r\n");
}

#[test]
fn a_router_delays_fails_splits_per_part_and_sends_its_own_requests() {
    let now = Instant::now();
    let mut e = engine(TWO, Limits::default());
    let router = Redirecting::default();
    let own = router.own.clone();
    e.set_router(0, Box::new(router));
    let c = e.client_accepted(0).unwrap();
    // One server, two parts: one sub-command per part, merged in key order.
    e.client_data(c, &cmd(&["MGET", "x1", "y1", "x2"]), now);
    run(&mut e, &[], now);
    let mut parts = cmd(&["MGET", "x1", "x2"]);
    parts.extend(cmd(&["MGET", "y1"]));
    assert_eq!(drain_server(&mut e, 0), parts);
    e.server_data(0, b"*2\r\n$1\r\n1\r\n$1\r\n3\r\n*1\r\n$1\r\n2\r\n", now);
    assert_eq!(
        drain_client(&mut e, c, now),
        b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    // TRYAGAIN: sent again once its time comes, not before.
    e.client_data(c, &cmd(&["GET", "k"]), now);
    run(&mut e, &[], now);
    drain_server(&mut e, 0);
    e.server_data(0, b"-TRYAGAIN busy\r\n", now);
    assert_eq!(e.next_deadline(), Some(now + Duration::from_millis(10)));
    e.tick(now + Duration::from_millis(9));
    run(&mut e, &[], now);
    assert!(drain_server(&mut e, 0).is_empty());
    e.tick(now + Duration::from_millis(10));
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 0), cmd(&["GET", "k"]));
    // A reply the router turns into another error.
    e.server_data(0, b"-CLUSTERDOWN no\r\n", now);
    assert_eq!(drain_client(&mut e, c, now), b"-ERR down\r\n");
    // The router's own request went to server 1 at the first tick; its
    // reply is the router's, never a client's.
    run(&mut e, &[], now);
    assert_eq!(drain_server(&mut e, 1), cmd(&["CLUSTER", "SLOTS"]));
    e.server_data(1, b"*0\r\n", now);
    assert_eq!(own.lock().unwrap().as_slice(), &[Ok(b"*0\r\n".to_vec())]);
    assert!(drain_client(&mut e, c, now).is_empty());
}
