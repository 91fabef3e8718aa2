//! Cluster mode in the engine: `ClusterRouter` (crate::cluster, sans IO)
//! behind the engine's `Router` trait. Server indices are the router's
//! node ids: the seeds (the pool's `servers:`, in order) first, then the
//! nodes the slot map and redirects named, in the order it learned them.

use std::time::Instant;

use super::request::error_reply;
use super::router::{Router, Verdict};
use crate::cluster::{
    answer, broadcast, proxy_node_id, Attempt, ClusterRouter, Fanout, NodeAddr, NodeId, ProxyFacts,
    ProxyNode, RouterStats, Verdict as ClusterVerdict, CLUSTER_SLOTS_REQUEST,
};
use crate::config::{Listen, Pool, ServerAddress};
use crate::hash::cluster_slot;
use crate::resp::{self, Parsed};

/// A cluster pool's router.
pub struct ClusterAdapter {
    router: ClusterRouter,
    /// Every node as a server address, by node id.
    nodes: Vec<ServerAddress>,
    /// How many of `nodes` are the pool's seeds.
    seeds: usize,
    /// The node asked for the slot map, while a refresh is out.
    refreshing: Option<NodeId>,
    /// The last time the engine gave (for `next_deadline`).
    now: Option<Instant>,
    /// Who the proxy says it is to cluster-aware clients that did not
    /// come over TCP: the pool's listen address.
    me: NodeAddr,
    id: String,
}

impl ClusterAdapter {
    /// The router of cluster pool `pool`; `Err` names what is wrong.
    pub fn new(pool: &Pool) -> Result<ClusterAdapter, String> {
        let options = pool
            .cluster
            .ok_or_else(|| format!("pool '{}' is not a cluster pool", pool.name))?;
        let seeds = pool.cluster_seeds();
        let router = ClusterRouter::new(&seeds, options.router_config(pool.timeout_ms))
            .map_err(|e| format!("pool '{}': {e}", pool.name))?;
        let me = match &pool.listen {
            Listen::Tcp { host, port } => NodeAddr::new(host.clone(), *port),
            Listen::Unix { path, .. } => NodeAddr::new(path.clone(), 0),
        };
        let id = proxy_node_id(&format!("{}@{me}", pool.name));
        let mut adapter = ClusterAdapter {
            router,
            nodes: Vec::new(),
            seeds: 0,
            refreshing: None,
            now: None,
            me,
            id,
        };
        adapter.learn();
        adapter.seeds = adapter.nodes.len();
        Ok(adapter)
    }

    /// Catches up `nodes` with the router's.
    fn learn(&mut self) {
        let known = self.nodes.len();
        for (_, addr) in self.router.nodes().skip(known) {
            self.nodes.push(ServerAddress::Tcp {
                host: addr.host.clone(),
                port: addr.port,
            });
        }
    }

    fn node(&self, server: usize) -> Option<NodeId> {
        match self.nodes.get(server)? {
            ServerAddress::Tcp { host, port } => {
                self.router.node_id(&NodeAddr::new(host.clone(), *port))
            }
            ServerAddress::Unix { .. } => None,
        }
    }

    fn attempt(&mut self, key: &[u8]) -> Result<Attempt, Vec<u8>> {
        let attempt = self.router.route_key(key).map_err(|e| e.reply())?;
        self.learn();
        Ok(attempt)
    }
}

impl Router for ClusterAdapter {
    fn server_for(&mut self, key: &[u8]) -> Option<usize> {
        self.attempt(key).ok().map(|a| a.node.index())
    }

    fn set_live(&mut self, _live: &[bool]) {}

    fn route_keys(&mut self, keys: &[&[u8]]) -> Result<usize, Vec<u8>> {
        let slot = cluster_slot(keys[0]);
        if keys[1..].iter().any(|k| cluster_slot(k) != slot) {
            return Err(error_reply(
                "CROSSSLOT Keys in request don't hash to the same slot",
            ));
        }
        self.attempt(keys[0]).map(|a| a.node.index())
    }

    fn split_key(&mut self, key: &[u8]) -> Option<(usize, u64)> {
        // One part per slot: a node refuses keys of two slots in one command.
        let attempt = self.attempt(key).ok()?;
        Some((attempt.node.index(), u64::from(attempt.slot)))
    }

    fn on_reply(&mut self, server: usize, redirects: u8, reply: &[u8], now: Instant) -> Verdict {
        self.now = Some(now);
        if !reply.starts_with(b"-") {
            return Verdict::Forward;
        }
        let Some(node) = self.node(server) else {
            return Verdict::Forward;
        };
        let mut attempt = Attempt {
            node,
            slot: 0,
            asking: false,
            redirects,
        };
        let verdict = self.router.on_reply(&mut attempt, reply, now);
        self.learn();
        match verdict {
            ClusterVerdict::Pass => Verdict::Forward,
            ClusterVerdict::Resend => Verdict::Redirect {
                server: attempt.node.index(),
                asking: attempt.asking,
                at: None,
            },
            ClusterVerdict::ResendAt(at) => Verdict::Redirect {
                server: attempt.node.index(),
                asking: attempt.asking,
                at: Some(at),
            },
            ClusterVerdict::Fail(bytes) => Verdict::Fail(bytes),
        }
    }

    fn redirects(&self) -> bool {
        true
    }

    fn broadcast(
        &mut self,
        args: &[&[u8]],
        facts: &ProxyFacts<'_>,
    ) -> Option<Result<Fanout, Vec<u8>>> {
        let fanout = broadcast(&self.router, facts, args);
        self.learn();
        fanout
    }

    fn cluster_stats(&self) -> Option<RouterStats> {
        Some(self.router.stats())
    }

    fn max_redirects(&self) -> u8 {
        // The cluster router counts and answers the client itself.
        u8::MAX
    }

    fn learned_servers(&self) -> &[ServerAddress] {
        &self.nodes[self.seeds..]
    }

    fn on_server_failure(&mut self, server: usize) {
        if let Some(node) = self.node(server) {
            self.router.on_node_down(node);
        }
    }

    fn poll_request(&mut self, now: Instant) -> Option<(usize, Vec<u8>)> {
        self.now = Some(now);
        let node = self.router.poll_refresh(now)?;
        self.refreshing = Some(node);
        Some((node.index(), CLUSTER_SLOTS_REQUEST.to_vec()))
    }

    fn on_own_reply(&mut self, server: usize, reply: Result<&[u8], &str>, now: Instant) {
        self.now = Some(now);
        let Some(node) = self.node(server) else {
            return;
        };
        if self.refreshing == Some(node) {
            self.refreshing = None;
        }
        let frame = reply.ok().and_then(|bytes| {
            match resp::parse(bytes, &resp::Limits::default(), false) {
                Ok(Parsed::Frame(frame, _)) => Some(frame),
                _ => None,
            }
        });
        match frame {
            // A bad map is counted by the router and the next node asked.
            Some(frame) => {
                let _ = self.router.on_refresh_reply(node, &frame, now);
            }
            None => self.router.on_refresh_failed(node),
        }
        self.learn();
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.now.map(|now| self.router.next_deadline(now))
    }

    fn answer(
        &self,
        args: &[&[u8]],
        local: Option<std::net::SocketAddr>,
        out: &mut Vec<u8>,
    ) -> bool {
        // The address this client reached, else the pool's listen address.
        let reached = local.map(|a| NodeAddr::new(a.ip().to_string(), a.port()));
        let me = ProxyNode {
            addr: reached.as_ref().unwrap_or(&self.me),
            id: &self.id,
        };
        answer(&self.router, &me, args, out)
    }
}
