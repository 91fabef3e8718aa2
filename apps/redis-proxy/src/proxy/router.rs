//! Which server of a pool serves a key. The static router is nutcracker's
//! distribution over the live servers; cluster mode plugs in its own
//! router (slot map, MOVED/ASK) through the same trait.

use std::time::Instant;

use super::request::error_reply;
use crate::cluster::{Fanout, ProxyFacts, RouterStats};
use crate::config::{Pool, ServerAddress};
use crate::hash::{DistributionKind, KeyMapper, ServerPoint};

/// What the engine does with a server's reply to a client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Give it to the client.
    Forward,
    /// Send the request again to `server` (cluster mode's MOVED, or with
    /// `asking`, ASK: the request then goes after an ASKING), at `at` if
    /// given (TRYAGAIN), else now. Honoured only when `Router::redirects`
    /// is true, at most `Router::max_redirects` times a request (then the
    /// reply is forwarded).
    Redirect {
        /// The server's index (one of the config's, or a learned one).
        server: usize,
        /// Send ASKING first.
        asking: bool,
        /// Not before then.
        at: Option<Instant>,
    },
    /// Give the client this reply (`-...\r\n`) instead.
    Fail(Vec<u8>),
}

/// Decides the server of a key, among a pool's servers (by index: the
/// config's servers first, then those the router learned, in order).
pub trait Router {
    /// The server for `key`; `None` when no server can take it.
    fn server_for(&mut self, key: &[u8]) -> Option<usize>;

    /// Which servers are live changed (ejection or retry).
    fn set_live(&mut self, live: &[bool]);

    /// The server for a command with these keys (at least one), or the
    /// client's error reply. By default: the first key's server, and the
    /// others must be on it too.
    fn route_keys(&mut self, keys: &[&[u8]]) -> Result<usize, Vec<u8>> {
        keys_on_one_server(self, keys)
    }

    /// Where one key of a split command (MGET, ...) goes: its server, and
    /// the part it joins (keys of one part go in one sub-command). By
    /// default one part per server; cluster mode makes one per slot.
    fn split_key(&mut self, key: &[u8]) -> Option<(usize, u64)> {
        self.server_for(key).map(|s| (s, s as u64))
    }

    /// Sees each reply `server` sent to a client's request (redirected
    /// `redirects` times so far) before it is forwarded: cluster mode
    /// learns from MOVED and ASK here and redirects the request.
    fn on_reply(
        &mut self,
        _server: usize,
        _redirects: u8,
        _reply: &[u8],
        _now: Instant,
    ) -> Verdict {
        Verdict::Forward
    }

    /// A connection to `server` failed (refused, closed, timed out).
    fn on_server_failure(&mut self, _server: usize) {}

    /// Answers a command the proxy answers itself in this mode (cluster
    /// mode: CLUSTER, READONLY, READWRITE, ASKING) into `out`, for a
    /// client that reached the proxy at `local`; false: not one of them,
    /// the proxy's usual answer stands.
    fn answer(
        &self,
        _args: &[&[u8]],
        _local: Option<std::net::SocketAddr>,
        _out: &mut Vec<u8>,
    ) -> bool {
        false
    }

    /// A keyless command the router answers by asking several servers
    /// (cluster mode's DBSIZE and INFO, over the masters): what to send
    /// to whom and how to merge (node ids are server indices), or the
    /// client's error reply; `None`: not one of them, the proxy refuses
    /// it as usual.
    fn broadcast(
        &mut self,
        _args: &[&[u8]],
        _facts: &ProxyFacts<'_>,
    ) -> Option<Result<Fanout, Vec<u8>>> {
        None
    }

    /// The router's redirect and refresh counters (cluster mode), for
    /// the stats.
    fn cluster_stats(&self) -> Option<RouterStats> {
        None
    }

    /// Whether requests are kept until answered, so that they can be
    /// redirected (a copy of each: off for the static distribution).
    fn redirects(&self) -> bool {
        false
    }

    /// Redirects one request may follow.
    fn max_redirects(&self) -> u8 {
        5
    }

    /// Servers beyond the config's that the router routes to (cluster
    /// nodes it learned), in index order after the config's; the list only
    /// grows.
    fn learned_servers(&self) -> &[ServerAddress] {
        &[]
    }

    /// A request of the router's own to send now (cluster mode's CLUSTER
    /// SLOTS refresh): the server and the request's bytes.
    fn poll_request(&mut self, _now: Instant) -> Option<(usize, Vec<u8>)> {
        None
    }

    /// The reply to one of the router's own requests, or why it failed.
    fn on_own_reply(&mut self, _server: usize, _reply: Result<&[u8], &str>, _now: Instant) {}

    /// When the router next wants `poll_request` called.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

/// nutcracker's key → server mapping over the live servers of a pool.
#[derive(Debug)]
pub struct StaticRouter {
    pool: Pool,
    /// The mapper over the live servers only.
    mapper: KeyMapper,
    /// Live server `i` of the mapper is `live[i]` of the pool.
    live: Vec<usize>,
    /// xorshift state for the random distribution.
    draw: u32,
}

impl StaticRouter {
    /// A router over every server of `pool`.
    pub fn new(pool: &Pool) -> StaticRouter {
        let all = vec![true; pool.servers.len()];
        let mut router = StaticRouter {
            pool: pool.clone(),
            mapper: KeyMapper::new(pool.hash, pool.hash_tag, pool.distribution, &[]),
            live: Vec::new(),
            draw: 0x9e37_79b9,
        };
        router.set_live(&all);
        router
    }
}

/// [`Router::route_keys`]' default: the first key's server, which
/// every other key must be on too; else the client's error reply.
fn keys_on_one_server<R: Router + ?Sized>(
    router: &mut R,
    keys: &[&[u8]],
) -> Result<usize, Vec<u8>> {
    let server = router
        .server_for(keys[0])
        .ok_or_else(|| error_reply("ERR no live server for the key"))?;
    if keys[1..]
        .iter()
        .all(|k| router.server_for(k) == Some(server))
    {
        Ok(server)
    } else {
        Err(error_reply(
            "ERR the command's keys are on different servers",
        ))
    }
}

impl Router for StaticRouter {
    fn server_for(&mut self, key: &[u8]) -> Option<usize> {
        self.draw ^= self.draw << 13;
        self.draw ^= self.draw >> 17;
        self.draw ^= self.draw << 5;
        let i = self.mapper.server_for(key, self.draw)?;
        self.live.get(i as usize).copied()
    }

    fn set_live(&mut self, live: &[bool]) {
        self.live = (0..self.pool.servers.len())
            .filter(|&i| live.get(i).copied().unwrap_or(true))
            .collect();
        let points: Vec<ServerPoint> = self
            .live
            .iter()
            .map(|&i| self.pool.servers[i].point())
            .collect();
        self.mapper = KeyMapper::new(
            self.pool.hash,
            self.pool.hash_tag,
            self.pool.distribution,
            &points,
        );
    }

    fn route_keys(&mut self, keys: &[&[u8]]) -> Result<usize, Vec<u8>> {
        if self.pool.distribution == DistributionKind::Random {
            // Each key draws its own server: the first one's decides.
            return self
                .server_for(keys[0])
                .ok_or_else(|| error_reply("ERR no live server for the key"));
        }
        keys_on_one_server(self, keys)
    }
}
