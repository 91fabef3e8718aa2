//! INFO and DBSIZE in cluster mode: what a client of one redis expects,
//! answered for the whole cluster behind the proxy.
//!
//! - `DBSIZE` goes to every master serving slots; the client gets the sum.
//! - `INFO [section ...]` is the proxy's own sections (`server`,
//!   `clients`, `cluster`, `proxy`: who it is, its clients, the cluster
//!   as the proxy shows it, its slot map and redirect counters) and a
//!   `keyspace` section summed over the masters (`INFO keyspace` sent to
//!   each; per database, every count added, `avg_ttl` averaged weighted
//!   by `expires`). No section, `default`, `all` and `everything` mean
//!   all five; another section name is answered with nothing, as redis
//!   does for a section it does not have.
//!
//! The engine plugs these in through `broadcast` (what to send to whom)
//! and `info_reply` (the merged answer).

use super::router::{ClusterRouter, NodeId, RouterStats};
use crate::resp::{encode, parse, Frame, Limits, Parsed};

/// The request sent to every master for INFO's keyspace section.
pub const INFO_KEYSPACE_REQUEST: &[u8] = b"*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n";

/// The request sent to every master for DBSIZE.
pub const DBSIZE_REQUEST: &[u8] = b"*1\r\n$6\r\nDBSIZE\r\n";

/// The proxy's own sections, in INFO's order.
const OWN: [&str; 4] = ["server", "clients", "cluster", "proxy"];

/// Which of INFO's sections a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InfoSections {
    /// `server`, `clients`, `cluster`, `proxy`, in that order.
    pub own: [bool; 4],
    /// `keyspace` (summed over the masters).
    pub keyspace: bool,
}

impl InfoSections {
    /// The sections `INFO <args...>` asks for (`args` without the name;
    /// case does not matter).
    pub fn parse(args: &[&[u8]]) -> InfoSections {
        let mut s = InfoSections::default();
        if args.is_empty() {
            return InfoSections {
                own: [true; 4],
                keyspace: true,
            };
        }
        for arg in args {
            let arg = arg.to_ascii_lowercase();
            match arg.as_slice() {
                b"default" | b"all" | b"everything" => {
                    s.own = [true; 4];
                    s.keyspace = true;
                }
                b"keyspace" => s.keyspace = true,
                other => {
                    if let Some(i) = OWN.iter().position(|o| o.as_bytes() == other) {
                        s.own[i] = true;
                    }
                }
            }
        }
        s
    }
}

/// What the engine knows that INFO shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyFacts<'a> {
    /// The proxy's version.
    pub version: &'a str,
    /// The pool's name.
    pub pool: &'a str,
    /// Clients connected to the pool (this engine's: one worker's).
    pub clients: u64,
}

/// What the proxy sends for a command it answers for the whole cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fanout {
    /// The nodes to send `request` to (the masters serving slots).
    pub nodes: Vec<NodeId>,
    /// The request each of them gets.
    pub request: &'static [u8],
    /// How the replies become the client's.
    pub merge: FanoutMerge,
}

/// How a fan-out's replies merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanoutMerge {
    /// DBSIZE: the sum of the integer replies.
    Sum,
    /// INFO: the proxy's own sections (this text, already made), then
    /// the keyspace sections summed (`info_reply`), when `keyspace`.
    Info {
        /// The own sections' text.
        head: String,
        /// Whether a keyspace section follows.
        keyspace: bool,
    },
}

/// The masters serving slots now (as the map and later MOVED replies
/// say), each once, in id order.
pub fn masters(router: &ClusterRouter) -> Vec<NodeId> {
    let mut nodes: Vec<NodeId> = (0..crate::hash::CLUSTER_SLOTS)
        .filter_map(|slot| router.owner(slot))
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// What to do for `args` (`args[0]` is the command name) when the proxy
/// answers it for the whole cluster: `None` for a command that is not
/// DBSIZE or INFO; `Err` with the client's error reply (DBSIZE while no
/// master is known).
pub fn broadcast(
    router: &ClusterRouter,
    facts: &ProxyFacts<'_>,
    args: &[&[u8]],
) -> Option<Result<Fanout, Vec<u8>>> {
    let name = args.first()?.to_ascii_uppercase();
    match name.as_slice() {
        b"DBSIZE" => {
            let nodes = masters(router);
            if nodes.is_empty() {
                return Some(Err(b"-CLUSTERDOWN Hash slot not served\r\n".to_vec()));
            }
            Some(Ok(Fanout {
                nodes,
                request: DBSIZE_REQUEST,
                merge: FanoutMerge::Sum,
            }))
        }
        b"INFO" => {
            let sections = InfoSections::parse(&args[1..]);
            let head = own_sections(router, facts, &sections);
            let nodes = if sections.keyspace {
                masters(router)
            } else {
                Vec::new()
            };
            Some(Ok(Fanout {
                nodes,
                request: INFO_KEYSPACE_REQUEST,
                merge: FanoutMerge::Info {
                    head,
                    keyspace: sections.keyspace,
                },
            }))
        }
        _ => None,
    }
}

/// The text of the proxy's own sections asked for, each `# Name` then
/// `field:value` lines, CRLF-ended, a blank line between sections.
pub fn own_sections(
    router: &ClusterRouter,
    facts: &ProxyFacts<'_>,
    sections: &InfoSections,
) -> String {
    let stats: RouterStats = router.stats();
    let ok = router.covers_all_slots();
    let mut parts: Vec<String> = Vec::new();
    if sections.own[0] {
        parts.push(format!(
            "# Server\r\nproxy:tpa-redis-proxy\r\nproxy_version:{}\r\nredis_mode:cluster\r\npool:{}\r\n",
            facts.version, facts.pool
        ));
    }
    if sections.own[1] {
        parts.push(format!(
            "# Clients\r\nconnected_clients:{}\r\n",
            facts.clients
        ));
    }
    if sections.own[2] {
        parts.push(format!(
            "# Cluster\r\ncluster_enabled:1\r\ncluster_state:{}\r\n",
            if ok { "ok" } else { "fail" }
        ));
    }
    if sections.own[3] {
        parts.push(format!(
            "# Proxy\r\ncluster_known_nodes:{}\r\ncluster_masters:{}\r\ncluster_slots_served:{}\r\n\
             cluster_moved:{}\r\ncluster_ask:{}\r\ncluster_tryagain:{}\r\ncluster_redirect_limit:{}\r\n\
             cluster_refreshes:{}\r\ncluster_refresh_failures:{}\r\n",
            router.nodes().count(),
            masters(router).len(),
            (0..crate::hash::CLUSTER_SLOTS)
                .filter(|&s| router.owner(s).is_some())
                .count(),
            stats.moved,
            stats.ask,
            stats.try_again,
            stats.redirect_limit,
            stats.refreshes,
            stats.refresh_failures,
        ));
    }
    parts.join("\r\n")
}

/// One database's counts in a keyspace section: `db0:keys=1,expires=0,
/// avg_ttl=0` (and any other `name=number` field redis adds).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DbLine {
    db: String,
    /// Fields in the order first seen; `avg_ttl` is kept as the sum of
    /// `avg_ttl * expires` until written.
    fields: Vec<(String, u128)>,
}

/// Adds one node's keyspace text to `dbs`; `Err` names the line that
/// does not read.
fn add_keyspace(dbs: &mut Vec<DbLine>, text: &str) -> Result<(), String> {
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((db, rest)) = line.split_once(':') else {
            return Err(line.to_string());
        };
        let mut fields: Vec<(String, u128)> = Vec::new();
        for field in rest.split(',') {
            let Some((name, value)) = field.split_once('=') else {
                return Err(line.to_string());
            };
            let Ok(value) = value.parse::<u128>() else {
                return Err(line.to_string());
            };
            fields.push((name.to_string(), value));
        }
        let expires = fields.iter().find(|f| f.0 == "expires").map_or(0, |f| f.1);
        let index = match dbs.iter().position(|d| d.db == db) {
            Some(i) => i,
            None => {
                dbs.push(DbLine {
                    db: db.to_string(),
                    fields: Vec::new(),
                });
                dbs.len() - 1
            }
        };
        let into = &mut dbs[index].fields;
        for (name, value) in fields {
            let value = if name == "avg_ttl" {
                value * expires
            } else {
                value
            };
            match into.iter_mut().find(|f| f.0 == name) {
                Some(f) => f.1 += value,
                None => into.push((name, value)),
            }
        }
    }
    Ok(())
}

/// The keyspace section summed over `replies` (each master's reply to
/// `INFO keyspace`, its wire bytes): `Err` with the client's error reply
/// when one is an error or does not read.
pub fn merge_keyspace(replies: &[&[u8]]) -> Result<String, Vec<u8>> {
    let mut dbs: Vec<DbLine> = Vec::new();
    for reply in replies {
        let text = match parse(reply, &Limits::default(), false) {
            Ok(Parsed::Frame(Frame::Bulk(Some(b)) | Frame::Verbatim(b), _)) => b,
            Ok(Parsed::Frame(Frame::Error(_), _)) => return Err(reply.to_vec()),
            _ => {
                return Err(
                    b"-ERR unexpected reply from a cluster node to INFO keyspace\r\n".to_vec(),
                )
            }
        };
        // RESP3's verbatim strings start with their format, `txt:`.
        let text = String::from_utf8_lossy(text.strip_prefix(b"txt:").unwrap_or(text));
        add_keyspace(&mut dbs, &text).map_err(|line| {
            format!("-ERR a cluster node's keyspace line does not read: {line}\r\n").into_bytes()
        })?;
    }
    let mut out = String::from("# Keyspace\r\n");
    for db in &dbs {
        let expires = db
            .fields
            .iter()
            .find(|f| f.0 == "expires")
            .map_or(0, |f| f.1);
        let fields: Vec<String> = db
            .fields
            .iter()
            .map(|(name, value)| {
                let value = match name.as_str() {
                    "avg_ttl" if expires == 0 => 0,
                    "avg_ttl" => value / expires,
                    _ => *value,
                };
                format!("{name}={value}")
            })
            .collect();
        out.push_str(&format!("{}:{}\r\n", db.db, fields.join(",")));
    }
    Ok(out)
}

/// The client's reply to INFO: `head` (the own sections), then, when
/// `keyspace`, the masters' keyspace sections summed, as one bulk
/// string; an error reply if a master's reply was one.
pub fn info_reply(head: &str, keyspace: bool, replies: &[&[u8]]) -> Vec<u8> {
    let mut text = head.to_string();
    if keyspace {
        match merge_keyspace(replies) {
            Ok(section) => {
                if !text.is_empty() {
                    text.push_str("\r\n");
                }
                text.push_str(&section);
            }
            Err(error) => return error,
        }
    }
    let mut out = Vec::with_capacity(text.len() + 16);
    encode(&Frame::Bulk(Some(text.as_bytes())), &mut out);
    out
}
