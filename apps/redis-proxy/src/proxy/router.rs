//! Which server of a pool serves a key. The static router is nutcracker's
//! distribution over the live servers; cluster mode plugs in its own
//! router (slot map, MOVED/ASK) through the same trait.

use crate::config::{Pool, ServerAddress};
use crate::hash::{KeyMapper, ServerPoint};

/// What the engine does with a server's reply to a client's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Give it to the client.
    Forward,
    /// Send the request again to `server` (cluster mode's MOVED, or with
    /// `asking`, ASK: the request then goes after an ASKING). Honoured
    /// only when `Router::redirects` is true, at most 5 times a request.
    Redirect {
        /// The server's index (one of the config's, or a learned one).
        server: usize,
        /// Send ASKING first.
        asking: bool,
    },
}

/// Decides the server of a key, among a pool's servers (by index: the
/// config's servers first, then those the router learned, in order).
pub trait Router {
    /// The server for `key`; `None` when no server can take it.
    fn server_for(&mut self, key: &[u8]) -> Option<usize>;
    /// Which servers are live changed (ejection or retry).
    fn set_live(&mut self, live: &[bool]);
    /// Sees each reply `server` sent, before it is forwarded: cluster mode
    /// learns from MOVED and ASK here and redirects the request.
    fn on_reply(&mut self, _server: usize, _reply: &[u8]) -> Verdict {
        Verdict::Forward
    }
    /// Whether requests are kept until answered, so that they can be
    /// redirected (a copy of each: off for the static distribution).
    fn redirects(&self) -> bool {
        false
    }
    /// Servers beyond the config's that the router routes to (cluster
    /// nodes it learned), in index order after the config's; the list only
    /// grows.
    fn learned_servers(&self) -> &[ServerAddress] {
        &[]
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
}
