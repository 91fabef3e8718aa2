//! The proxy's own answers to CLUSTER SLOTS / SHARDS / NODES / INFO /
//! MYID / KEYSLOT, and to READONLY / READWRITE / ASKING: to a
//! cluster-aware client the proxy is a one-node cluster that owns every
//! slot, at the address the client reached it on, so the client sends
//! everything to it and never sees a redirect.

use super::addr::NodeAddr;
use super::router::ClusterRouter;
use crate::hash::{cluster_slot, CLUSTER_SLOTS};
use crate::resp::{encode, Frame};

/// The proxy's node id: 40 hex digits derived from `name` (say the pool
/// name and listen address), the same on every start.
pub fn proxy_node_id(name: &str) -> String {
    let first = crate::hash::md5(name.as_bytes());
    let second = crate::hash::md5(&first);
    first
        .iter()
        .chain(&second[..4])
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who the proxy says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyNode<'a> {
    /// The address the client connected to (the engine's local address
    /// of that connection, so a wildcard listen still names a reachable
    /// address).
    pub addr: &'a NodeAddr,
    /// `proxy_node_id`'s answer.
    pub id: &'a str,
}

fn error(out: &mut Vec<u8>, text: &str) {
    encode(&Frame::Error(text.as_bytes()), out);
}

/// A client's word, safe inside an error line: control bytes become `?`,
/// at most 64 characters.
fn printable(word: &[u8]) -> String {
    String::from_utf8_lossy(word)
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn upper(word: &[u8]) -> Vec<u8> {
    word.to_ascii_uppercase()
}

/// Appends to `out` the answer to a command the proxy answers itself in
/// cluster mode: `CLUSTER <sub> ...`, `READONLY`, `READWRITE`, `ASKING`
/// (`args[0]` is the command name). Returns false, writing nothing, for
/// any other command.
pub fn answer(
    router: &ClusterRouter,
    me: &ProxyNode<'_>,
    args: &[&[u8]],
    out: &mut Vec<u8>,
) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    match upper(name).as_slice() {
        // Reads from replicas are the proxy's business: accepted, and
        // every key still goes to its master.
        b"READONLY" | b"READWRITE" | b"ASKING" if args.len() == 1 => {
            encode(&Frame::Simple(b"OK"), out);
            true
        }
        b"READONLY" | b"READWRITE" | b"ASKING" => {
            let name = printable(name).to_ascii_lowercase();
            error(
                out,
                &format!("ERR wrong number of arguments for '{name}' command"),
            );
            true
        }
        b"CLUSTER" => {
            cluster(router, me, &args[1..], out);
            true
        }
        _ => false,
    }
}

fn cluster(router: &ClusterRouter, me: &ProxyNode<'_>, args: &[&[u8]], out: &mut Vec<u8>) {
    let Some(sub) = args.first() else {
        error(out, "ERR wrong number of arguments for 'cluster' command");
        return;
    };
    let last = i64::from(CLUSTER_SLOTS) - 1;
    let host = me.addr.host.as_bytes();
    let port = i64::from(me.addr.port);
    match (upper(sub).as_slice(), args.len()) {
        (b"SLOTS", 1) => {
            let node = Frame::Array(Some(vec![
                Frame::Bulk(Some(host)),
                Frame::Integer(port),
                Frame::Bulk(Some(me.id.as_bytes())),
                Frame::Array(Some(Vec::new())),
            ]));
            let range = Frame::Array(Some(vec![Frame::Integer(0), Frame::Integer(last), node]));
            encode(&Frame::Array(Some(vec![range])), out);
        }
        (b"SHARDS", 1) => {
            let node = Frame::Array(Some(vec![
                Frame::Bulk(Some(b"id")),
                Frame::Bulk(Some(me.id.as_bytes())),
                Frame::Bulk(Some(b"port")),
                Frame::Integer(i64::from(me.addr.port)),
                Frame::Bulk(Some(b"ip")),
                Frame::Bulk(Some(host)),
                Frame::Bulk(Some(b"endpoint")),
                Frame::Bulk(Some(host)),
                Frame::Bulk(Some(b"role")),
                Frame::Bulk(Some(b"master")),
                Frame::Bulk(Some(b"replication-offset")),
                Frame::Integer(0),
                Frame::Bulk(Some(b"health")),
                Frame::Bulk(Some(if router.covers_all_slots() {
                    b"online"
                } else {
                    b"fail"
                })),
            ]));
            let shard = Frame::Array(Some(vec![
                Frame::Bulk(Some(b"slots")),
                Frame::Array(Some(vec![Frame::Integer(0), Frame::Integer(last)])),
                Frame::Bulk(Some(b"nodes")),
                Frame::Array(Some(vec![node])),
            ]));
            encode(&Frame::Array(Some(vec![shard])), out);
        }
        (b"NODES", 1) => {
            // id addr:port@bus flags master ping pong epoch link slots
            let line = format!(
                "{} {}:{}@0 myself,master - 0 0 1 connected 0-{last}\n",
                me.id, me.addr.host, me.addr.port
            );
            encode(&Frame::Bulk(Some(line.as_bytes())), out);
        }
        (b"INFO", 1) => {
            let ok = router.covers_all_slots();
            let text = format!(
                "cluster_enabled:1\r\n\
                 cluster_state:{}\r\n\
                 cluster_slots_assigned:{CLUSTER_SLOTS}\r\n\
                 cluster_slots_ok:{}\r\n\
                 cluster_slots_pfail:0\r\n\
                 cluster_slots_fail:{}\r\n\
                 cluster_known_nodes:1\r\n\
                 cluster_size:1\r\n\
                 cluster_current_epoch:1\r\n\
                 cluster_my_epoch:1\r\n",
                if ok { "ok" } else { "fail" },
                if ok { CLUSTER_SLOTS } else { 0 },
                if ok { 0 } else { CLUSTER_SLOTS },
            );
            encode(&Frame::Bulk(Some(text.as_bytes())), out);
        }
        (b"MYID", 1) | (b"MYSHARDID", 1) => encode(&Frame::Bulk(Some(me.id.as_bytes())), out),
        (b"KEYSLOT", 2) => encode(&Frame::Integer(i64::from(cluster_slot(args[1]))), out),
        (b"SLOTS" | b"SHARDS" | b"NODES" | b"INFO" | b"MYID" | b"MYSHARDID" | b"KEYSLOT", _) => {
            let sub = printable(sub).to_ascii_lowercase();
            error(
                out,
                &format!("ERR wrong number of arguments for 'cluster|{sub}' command"),
            );
        }
        _ => {
            let sub = printable(sub);
            error(
                out,
                &format!("ERR CLUSTER {sub} is not supported by the proxy (it answers SLOTS, SHARDS, NODES, INFO, MYID, MYSHARDID, KEYSLOT)"),
            );
        }
    }
}
