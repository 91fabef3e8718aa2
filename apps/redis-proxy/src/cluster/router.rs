//! `ClusterRouter`: what the proxy engine asks in cluster mode. Which
//! node serves a key or each part of a multi-key command, what to do with
//! a reply (pass it on, follow MOVED / ASK / TRYAGAIN, or give up after a
//! bounded number of redirects), and when to refresh the slot map and
//! from which node. Sans-IO: it opens no socket and reads no clock; the
//! engine sends the bytes and passes the time in.

use super::addr::NodeAddr;
use super::redirect::{parse_redirect, RedirectKind};
use super::slots::{SlotMap, SlotsError};
use crate::command::{keys, Command, KeyError, Route};
use crate::hash::{cluster_slot, CLUSTER_SLOTS};
use crate::resp::Frame;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// The request the engine sends to refresh the map.
pub const CLUSTER_SLOTS_REQUEST: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

/// Sent before a request that follows an ASK; its `+OK` is not the
/// client's.
pub const ASKING_REQUEST: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

/// How the router refreshes and follows redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterConfig {
    /// A refresh is due this long after the last successful one.
    pub refresh_interval: Duration,
    /// Least time between two refresh attempts (after MOVED, after a
    /// failed refresh).
    pub refresh_gap: Duration,
    /// A refresh with no answer by then counts as failed; the next
    /// candidate node is asked.
    pub refresh_timeout: Duration,
    /// Redirects (MOVED, ASK, TRYAGAIN) one request may follow before its
    /// client gets an error.
    pub max_redirects: u8,
    /// How long to wait before resending after TRYAGAIN.
    pub try_again_delay: Duration,
}

impl Default for RouterConfig {
    fn default() -> RouterConfig {
        RouterConfig {
            refresh_interval: Duration::from_secs(10),
            refresh_gap: Duration::from_millis(100),
            refresh_timeout: Duration::from_secs(2),
            max_redirects: 5,
            try_again_delay: Duration::from_millis(10),
        }
    }
}

/// A node the router knows, as a small index (seeds first, then nodes in
/// the order replies named them). Ids are never reused or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u16);

impl NodeId {
    /// The index, for the engine's per-node tables.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Where one request (or one part of a split one) goes, and how many
/// redirects it has followed. The engine keeps it with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The node to send it to.
    pub node: NodeId,
    /// The slot of its keys.
    pub slot: u16,
    /// Send ASKING first (the request follows an ASK).
    pub asking: bool,
    /// Redirects followed so far.
    pub redirects: u8,
}

/// One part of a command split across slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Where the part goes.
    pub attempt: Attempt,
    /// The positions in the command's arguments of this part's keys, in
    /// order (for MSET, each key's value follows it).
    pub keys: Vec<usize>,
}

/// How to forward a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The whole command, unchanged, to one node.
    Single(Attempt),
    /// One sub-command per slot (a cluster node refuses keys of two
    /// slots in one command, even slots it owns both of); parts in the
    /// order of their first key. The engine merges the replies in key
    /// order.
    Split(Vec<Part>),
}

/// Why a command cannot be forwarded; `reply` is the client's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// The map has no owner for the slot.
    SlotNotServed(u16),
    /// A keyed (not splittable) command's keys are in different slots.
    CrossSlot,
    /// The arguments do not hold the keys the command needs.
    Keys(KeyError),
    /// The command is answered locally or refused, never forwarded.
    NotForwarded,
}

impl RouteError {
    /// The error reply's text, redis's own where redis has one.
    pub fn message(&self) -> String {
        match self {
            RouteError::SlotNotServed(_) => "CLUSTERDOWN Hash slot not served".into(),
            RouteError::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".into(),
            RouteError::Keys(KeyError::BadCount) => {
                "ERR value is not an integer or out of range".into()
            }
            RouteError::Keys(KeyError::TooFewArguments) => "ERR wrong number of arguments".into(),
            RouteError::NotForwarded => "ERR command is not forwarded to the cluster".into(),
        }
    }

    /// The whole error reply, `-...\r\n`.
    pub fn reply(&self) -> Vec<u8> {
        format!("-{}\r\n", self.message()).into_bytes()
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for RouteError {}

/// What to do with a node's reply to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The reply is the client's.
    Pass,
    /// Send the request again now to `attempt.node`, with ASKING first
    /// if `attempt.asking` (the attempt was updated).
    Resend,
    /// Send it again at that time (TRYAGAIN: a multi-key request while
    /// its slot migrates).
    ResendAt(Instant),
    /// Give the client this error reply (`-...\r\n`) instead.
    Fail(Vec<u8>),
}

/// What the router has seen, for the proxy's stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// MOVED replies followed.
    pub moved: u64,
    /// ASK replies followed.
    pub ask: u64,
    /// TRYAGAIN replies retried.
    pub try_again: u64,
    /// Requests failed after too many redirects.
    pub redirect_limit: u64,
    /// MOVED or ASK replies that did not parse (passed to the client).
    pub bad_redirects: u64,
    /// Slot maps installed.
    pub refreshes: u64,
    /// Refreshes that failed (error, bad reply, no answer in time).
    pub refresh_failures: u64,
}

impl RouterStats {
    /// Adds `other`'s counts to these (several workers' routers).
    pub fn add(&mut self, other: &RouterStats) {
        self.moved += other.moved;
        self.ask += other.ask;
        self.try_again += other.try_again;
        self.redirect_limit += other.redirect_limit;
        self.bad_redirects += other.bad_redirects;
        self.refreshes += other.refreshes;
        self.refresh_failures += other.refresh_failures;
    }
}

const NO_NODE: u16 = u16::MAX;

/// Routes keys to cluster nodes and keeps the slot map fresh.
pub struct ClusterRouter {
    config: RouterConfig,
    nodes: Vec<NodeAddr>,
    ids: HashMap<NodeAddr, NodeId>,
    seeds: usize,
    /// Per slot, the serving node's id (MOVED updates it), or NO_NODE.
    slots: Box<[u16]>,
    /// The last installed map (shards, replicas, node ids).
    map: SlotMap,
    has_map: bool,
    stale: bool,
    last_success: Option<Instant>,
    last_attempt: Option<Instant>,
    in_flight: Option<(NodeId, Instant)>,
    /// The next refresh candidate, an index into `nodes`.
    cursor: usize,
    stats: RouterStats,
}

impl fmt::Debug for ClusterRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterRouter")
            .field("nodes", &self.nodes)
            .field("seeds", &self.seeds)
            .field("has_map", &self.has_map)
            .field("stale", &self.stale)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The error of `ClusterRouter::new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedError {
    /// No seed node.
    NoSeeds,
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a cluster pool needs at least one seed node")
    }
}

impl std::error::Error for SeedError {}

impl ClusterRouter {
    /// A router that knows only its seeds; the first refresh is due at
    /// once. Until a map is installed, keys go to a seed (the refresh
    /// candidate), whose MOVED replies teach the router where slots are.
    pub fn new(seeds: &[NodeAddr], config: RouterConfig) -> Result<ClusterRouter, SeedError> {
        if seeds.is_empty() {
            return Err(SeedError::NoSeeds);
        }
        let mut router = ClusterRouter {
            config,
            nodes: Vec::new(),
            ids: HashMap::new(),
            seeds: 0,
            slots: vec![NO_NODE; usize::from(CLUSTER_SLOTS)].into_boxed_slice(),
            map: SlotMap::empty(),
            has_map: false,
            stale: true,
            last_success: None,
            last_attempt: None,
            in_flight: None,
            cursor: 0,
            stats: RouterStats::default(),
        };
        for seed in seeds {
            // Seeds are few: the id space cannot be full.
            let _ = router.intern(seed);
        }
        router.seeds = router.nodes.len();
        Ok(router)
    }

    /// The router's settings.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The id of `addr`, added if new; `None` when 65535 nodes are known.
    fn intern(&mut self, addr: &NodeAddr) -> Option<NodeId> {
        if let Some(&id) = self.ids.get(addr) {
            return Some(id);
        }
        let id = NodeId(
            u16::try_from(self.nodes.len())
                .ok()
                .filter(|&i| i != NO_NODE)?,
        );
        self.nodes.push(addr.clone());
        self.ids.insert(addr.clone(), id);
        Some(id)
    }

    /// The address of a node.
    pub fn addr(&self, node: NodeId) -> &NodeAddr {
        &self.nodes[node.index()]
    }

    /// The id of a known address.
    pub fn node_id(&self, addr: &NodeAddr) -> Option<NodeId> {
        self.ids.get(addr).copied()
    }

    /// Every node known so far (seeds first), with its id.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &NodeAddr)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, a)| (NodeId(i as u16), a))
    }

    /// The last map installed by a refresh (MOVED updates since are not
    /// in it: `owner` has them).
    pub fn slot_map(&self) -> &SlotMap {
        &self.map
    }

    /// Whether a refresh has installed a map yet.
    pub fn has_map(&self) -> bool {
        self.has_map
    }

    /// Whether every slot has a serving node.
    pub fn covers_all_slots(&self) -> bool {
        self.slots.iter().all(|&s| s != NO_NODE)
    }

    /// Counters.
    pub fn stats(&self) -> RouterStats {
        self.stats
    }

    /// The node serving `slot`, as the map and later MOVED replies say.
    pub fn owner(&self, slot: u16) -> Option<NodeId> {
        match self.slots.get(usize::from(slot)) {
            Some(&id) if id != NO_NODE => Some(NodeId(id)),
            _ => None,
        }
    }

    /// Where a request for `slot` goes first.
    pub fn attempt_for_slot(&self, slot: u16) -> Result<Attempt, RouteError> {
        let node = match self.owner(slot) {
            Some(node) => node,
            // No map yet: a seed, whose MOVED will say.
            None if !self.has_map => NodeId((self.cursor % self.seeds.max(1)) as u16),
            None => return Err(RouteError::SlotNotServed(slot)),
        };
        Ok(Attempt {
            node,
            slot,
            asking: false,
            redirects: 0,
        })
    }

    /// Where a request for `key` goes first (its slot honours `{tags}`).
    pub fn route_key(&self, key: &[u8]) -> Result<Attempt, RouteError> {
        self.attempt_for_slot(cluster_slot(key))
    }

    /// How to forward `command` with arguments `args` (`args[0]` is its
    /// name). A keyed command goes whole to its keys' slot (keys in two
    /// slots: CROSSSLOT, as redis says); a split command (MGET, MSET,
    /// DEL, ...) goes whole if its keys share a slot, else one part per
    /// slot. A command without keys goes to the node serving slot 0's
    /// neighbourhood: the first node with a slot.
    pub fn route(&self, command: &Command, args: &[&[u8]]) -> Result<Plan, RouteError> {
        if !matches!(command.route, Route::Keyed | Route::Split) {
            return Err(RouteError::NotForwarded);
        }
        let positions = keys(command, args).map_err(RouteError::Keys)?;
        let Some(&first) = positions.first() else {
            return self.any_node().map(Plan::Single);
        };
        let first_slot = cluster_slot(args[first]);
        if positions[1..]
            .iter()
            .all(|&p| cluster_slot(args[p]) == first_slot)
        {
            return self.attempt_for_slot(first_slot).map(Plan::Single);
        }
        if command.route == Route::Keyed {
            return Err(RouteError::CrossSlot);
        }
        let mut parts: Vec<Part> = Vec::new();
        // Slot → index in `parts`: linear in the keys however many slots.
        let mut part_of: HashMap<u16, usize> = HashMap::new();
        for &p in &positions {
            let slot = cluster_slot(args[p]);
            match part_of.get(&slot) {
                Some(&i) => parts[i].keys.push(p),
                None => {
                    part_of.insert(slot, parts.len());
                    parts.push(Part {
                        attempt: self.attempt_for_slot(slot)?,
                        keys: vec![p],
                    });
                }
            }
        }
        Ok(Plan::Split(parts))
    }

    fn any_node(&self) -> Result<Attempt, RouteError> {
        let slot = self.slots.iter().position(|&s| s != NO_NODE).unwrap_or(0) as u16;
        self.attempt_for_slot(slot)
    }

    /// Reads a node's whole reply (its wire bytes) to the request of
    /// `attempt`. Anything but an error reply is passed on at once.
    pub fn on_reply(&mut self, attempt: &mut Attempt, reply: &[u8], now: Instant) -> Verdict {
        let Some(text) = reply.strip_prefix(b"-") else {
            return Verdict::Pass;
        };
        let end = text
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(text.len());
        self.on_error(attempt, &text[..end], now)
    }

    /// Reads an error reply's text (no `-`, no CRLF) to the request of
    /// `attempt`: follows MOVED (and updates the slot), ASK (this request
    /// only) and TRYAGAIN up to `max_redirects`; marks the map stale on
    /// MOVED and CLUSTERDOWN; passes every other error on.
    pub fn on_error(&mut self, attempt: &mut Attempt, text: &[u8], now: Instant) -> Verdict {
        if text.starts_with(b"CLUSTERDOWN") {
            self.stale = true;
            return Verdict::Pass;
        }
        let try_again = text.starts_with(b"TRYAGAIN");
        let redirect = match parse_redirect(text) {
            Ok(Some(r)) => Some(r),
            Ok(None) if try_again => None,
            Ok(None) => return Verdict::Pass,
            Err(_) => {
                self.stats.bad_redirects += 1;
                return Verdict::Pass;
            }
        };
        if let Some(r) = &redirect {
            if r.kind == RedirectKind::Moved {
                self.stale = true;
            }
        }
        if attempt.redirects >= self.config.max_redirects {
            self.stats.redirect_limit += 1;
            if let Some(r) = &redirect {
                if r.kind == RedirectKind::Moved {
                    let via = self.addr(attempt.node).clone();
                    if let Some(id) = self.intern(&r.endpoint.resolve(&via)) {
                        self.slots[usize::from(r.slot)] = id.0;
                    }
                }
            }
            return Verdict::Fail(
                format!(
                    "-ERR too many cluster redirects ({}), the last: {}\r\n",
                    attempt.redirects,
                    String::from_utf8_lossy(text)
                )
                .into_bytes(),
            );
        }
        attempt.redirects += 1;
        let Some(r) = redirect else {
            self.stats.try_again += 1;
            return Verdict::ResendAt(now + self.config.try_again_delay);
        };
        let via = self.addr(attempt.node).clone();
        let Some(target) = self.intern(&r.endpoint.resolve(&via)) else {
            return Verdict::Fail(b"-ERR the proxy knows too many cluster nodes\r\n".to_vec());
        };
        attempt.node = target;
        attempt.slot = r.slot;
        match r.kind {
            RedirectKind::Moved => {
                self.stats.moved += 1;
                self.slots[usize::from(r.slot)] = target.0;
                attempt.asking = false;
            }
            RedirectKind::Ask => {
                self.stats.ask += 1;
                attempt.asking = true;
            }
        }
        Verdict::Resend
    }

    /// The engine could not reach `node` (connect failed, connection
    /// lost, timeout): the map may be stale (a failover), refresh it.
    pub fn on_node_down(&mut self, _node: NodeId) {
        self.stale = true;
    }

    /// Asks for a refresh as soon as the gap allows.
    pub fn request_refresh(&mut self) {
        self.stale = true;
    }

    fn refresh_wanted(&self, now: Instant) -> bool {
        !self.has_map
            || self.stale
            || self
                .last_success
                .is_none_or(|t| now >= t + self.config.refresh_interval)
    }

    /// If a refresh is due and none is in flight, the node to send
    /// `CLUSTER_SLOTS_REQUEST` to (then `on_refresh_reply` or
    /// `on_refresh_failed`). A refresh unanswered for `refresh_timeout`
    /// counts as failed. Candidates: the node that answered last, else
    /// seeds first, then every node replies named.
    pub fn poll_refresh(&mut self, now: Instant) -> Option<NodeId> {
        if let Some((node, since)) = self.in_flight {
            if now < since + self.config.refresh_timeout {
                return None;
            }
            self.on_refresh_failed(node);
        }
        if !self.refresh_wanted(now) {
            return None;
        }
        if let Some(t) = self.last_attempt {
            if now < t + self.config.refresh_gap {
                return None;
            }
        }
        let node = NodeId((self.cursor % self.nodes.len()) as u16);
        self.in_flight = Some((node, now));
        self.last_attempt = Some(now);
        Some(node)
    }

    /// When `poll_refresh` next has something to do, for the engine's
    /// timer: `now` when a refresh is due at once (an event such as MOVED
    /// can make it earlier than said).
    pub fn next_deadline(&self, now: Instant) -> Instant {
        if let Some((_, since)) = self.in_flight {
            return since + self.config.refresh_timeout;
        }
        let gap_end = self.last_attempt.map(|t| t + self.config.refresh_gap);
        let due = if !self.has_map || self.stale {
            gap_end.unwrap_or(now)
        } else {
            let periodic = self
                .last_success
                .map_or(now, |t| t + self.config.refresh_interval);
            gap_end.map_or(periodic, |g| g.max(periodic))
        };
        due.max(now)
    }

    /// The answer to a refresh sent to `node`: installs the map it
    /// describes (an error or malformed reply keeps the old map and
    /// moves to the next candidate).
    pub fn on_refresh_reply(
        &mut self,
        node: NodeId,
        reply: &Frame<'_>,
        now: Instant,
    ) -> Result<(), SlotsError> {
        let via = self.addr(node).clone();
        match SlotMap::from_cluster_slots(reply, &via) {
            Ok(map) => {
                if self.in_flight.is_some_and(|(n, _)| n == node) {
                    self.in_flight = None;
                }
                self.install(map, now);
                self.cursor = node.index();
                Ok(())
            }
            Err(e) => {
                self.on_refresh_failed(node);
                Err(e)
            }
        }
    }

    /// A refresh sent to `node` failed (no connection, lost, timed out):
    /// the next candidate is asked after `refresh_gap`.
    pub fn on_refresh_failed(&mut self, node: NodeId) {
        if self.in_flight.is_some_and(|(n, _)| n == node) {
            self.in_flight = None;
        }
        self.stats.refresh_failures += 1;
        if self.cursor % self.nodes.len() == node.index() {
            self.cursor = (node.index() + 1) % self.nodes.len();
        }
    }

    /// Installs `map` as the routing table (what a refresh does).
    pub fn install(&mut self, map: SlotMap, now: Instant) {
        let mut ids = Vec::with_capacity(map.shards().len());
        for shard in map.shards() {
            let master = self.intern(&shard.master.addr);
            for replica in &shard.replicas {
                let _ = self.intern(&replica.addr);
            }
            ids.push(master.map_or(NO_NODE, |m| m.0));
        }
        for slot in 0..CLUSTER_SLOTS {
            let shard = map.shard_index(slot);
            self.slots[usize::from(slot)] = shard.map_or(NO_NODE, |i| ids[i]);
        }
        self.map = map;
        self.has_map = true;
        self.stale = false;
        self.last_success = Some(now);
        self.stats.refreshes += 1;
    }
}
