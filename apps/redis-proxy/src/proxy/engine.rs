//! The engine: pools, clients and server connections, and what happens
//! between them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::buffer::{InBuf, OutQueue};
use super::cluster_router::ClusterAdapter;
use super::merge::{finish_merge, merge_fragment};
use super::request::{self, auth, encode_command, error_reply, MergeKind, Plan, PlanContext};
use super::router::{Router, StaticRouter, Verdict};
use super::session::{Client, ClientId, Inflight, Link, Merging, Pending, ServerConn};
use super::stats::{PoolStats, ServerStats, StatsClock};
use crate::cluster::{FanoutMerge, ProxyFacts};
use crate::config::{Pool, ServerAddress};
use crate::resp::{self, Scanner};

mod passthrough;

pub use passthrough::{PassthroughStats, SpliceEnd};

/// A server connection, as the runtime names it (fixed for the engine's life).
pub type ServerConnId = usize;

/// Something the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to `address` for `conn`, then call
    /// `server_connected` or `server_closed`.
    Connect {
        /// The connection.
        conn: ServerConnId,
        /// Where to.
        address: ServerAddress,
        /// Set SO_KEEPALIVE (the pool's `tcpkeepalive`).
        keepalive: bool,
    },
    /// Close this server connection's socket (the engine already forgot it).
    CloseServer(ServerConnId),
    /// Close this client's socket (the engine already forgot it).
    CloseClient(ClientId),
    /// The client has output: write `client_output` until it is empty or
    /// the socket is full.
    WriteClient(ClientId),
    /// The server connection has output.
    WriteServer(ServerConnId),
    /// A line for the log at nutcracker's `level` (4 warn, 5 notice).
    Log {
        /// The level: shown when at most the `-v` verbosity.
        level: u8,
        /// The text.
        message: String,
    },
}

/// Per-client bounds: memory a client can make the proxy hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request, in bytes: a larger one gets an error and its
    /// client is closed.
    pub max_request: usize,
    /// Requests waiting for replies before the client stops being read.
    pub max_pending: usize,
    /// Reply bytes waiting to be written before the client stops being read.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request: 512 * 1024 * 1024,
            max_pending: 1024,
            max_output: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct ServerState {
    address: ServerAddress,
    /// Its name in the stats and the log (ketama's name for the config's).
    name: String,
    conns: Vec<ServerConnId>,
    failures: u32,
    ejected_until: Option<Instant>,
    ejected_at: Option<Instant>,
    stats: ServerStats,
}

struct PoolState {
    config: Pool,
    router: Box<dyn Router + Send>,
    servers: Vec<ServerState>,
    stats: PoolStats,
    clients: u32,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    client: Option<Client>,
}

/// The proxy engine (see the module's doc).
pub struct Engine {
    pools: Vec<PoolState>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    conns: Vec<ServerConn>,
    actions: VecDeque<Action>,
    limits: Limits,
    total_connections: u64,
    /// Redirected requests waiting for their time (TRYAGAIN).
    delayed: Vec<(Instant, usize, usize, bool, Inflight)>,
    /// Big values passed through (tpa's runtime; see `passthrough`).
    splices: passthrough::Splices,
    /// Scratch: the clients a server's replies went to (kept for its
    /// capacity).
    touched: Vec<ClientId>,
}

/// What a request turned into, owning what it needs.
enum Decision {
    Reply(Vec<u8>, bool),
    Forward(usize, Option<Vec<u8>>),
    /// The merge, the key count, the fragments (server, key indices,
    /// request), the keys no server takes, INFO's own sections.
    Split(
        MergeKind,
        usize,
        Vec<(usize, Vec<u32>, Vec<u8>)>,
        Vec<u32>,
        Option<(String, bool)>,
    ),
    Ignore,
}

fn timeout_of(pool: &Pool) -> Option<Duration> {
    pool.timeout_ms
        .map(|ms| Duration::from_millis(u64::from(ms)))
}

fn client_mut(slots: &mut [Slot], id: ClientId) -> Option<&mut Client> {
    slots
        .get_mut(id.index as usize)
        .filter(|s| s.generation == id.generation)
        .and_then(|s| s.client.as_mut())
}

impl Engine {
    /// An engine over `pools` (nutcracker's config) with the static
    /// distribution. Memcached pools (`redis: false`) are refused.
    pub fn new(pools: Vec<Pool>, limits: Limits) -> Result<Engine, String> {
        let mut engine = Engine {
            pools: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            conns: Vec::new(),
            actions: VecDeque::new(),
            limits,
            total_connections: 0,
            delayed: Vec::new(),
            splices: passthrough::Splices::default(),
            touched: Vec::new(),
        };
        for (p, pool) in pools.into_iter().enumerate() {
            if !pool.redis {
                return Err(format!(
                    "pool '{}': memcached pools (redis: false) are not supported",
                    pool.name
                ));
            }
            let router: Box<dyn Router + Send> = if pool.cluster.is_some() {
                Box::new(ClusterAdapter::new(&pool)?)
            } else {
                Box::new(StaticRouter::new(&pool))
            };
            engine.pools.push(PoolState {
                router,
                servers: Vec::new(),
                stats: PoolStats::default(),
                clients: 0,
                config: pool,
            });
            let specs = engine.pools[p].config.servers.clone();
            for spec in specs {
                add_server(
                    &mut engine.pools[p],
                    p,
                    &mut engine.conns,
                    spec.address.clone(),
                    spec.ketama_name(),
                );
            }
        }
        Ok(engine)
    }

    /// The number of server connections (it grows as a router learns servers).
    pub fn server_conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Replaces pool `pool`'s router (cluster mode).
    pub fn set_router(&mut self, pool: usize, router: Box<dyn Router + Send>) {
        self.pools[pool].router = router;
    }

    /// The pools' configs, in order.
    pub fn pools(&self) -> impl Iterator<Item = &Pool> {
        self.pools.iter().map(|p| &p.config)
    }

    /// Starts: connects to every server of the pools with `preconnect`,
    /// and sends the routers' first requests.
    pub fn start(&mut self, now: Instant) {
        for c in 0..self.conns.len() {
            if self.pools[self.conns[c].pool].config.preconnect {
                self.ensure_connecting(c, now);
            }
        }
        // The routers' first requests (cluster mode: the slot map).
        for p in 0..self.pools.len() {
            while let Some((server, request)) = self.pools[p].router.poll_request(now) {
                self.router_request(p, server, request, now);
            }
        }
    }

    /// The next action for the runtime.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ---- clients ----

    /// A client connected to pool `pool`'s listener; `None` when the pool
    /// is at `client_connections` (close it).
    pub fn client_accepted(&mut self, pool: usize) -> Option<ClientId> {
        self.client_accepted_at(pool, None)
    }

    /// `client_accepted`, with the address the client reached the proxy
    /// at (cluster mode names it in its CLUSTER answers).
    pub fn client_accepted_at(
        &mut self,
        pool: usize,
        local: Option<std::net::SocketAddr>,
    ) -> Option<ClientId> {
        let state = self.pools.get_mut(pool)?;
        let limit = state.config.client_connections;
        if limit != 0 && state.clients >= limit {
            return None;
        }
        state.clients += 1;
        state.stats.client_connections += 1;
        self.total_connections += 1;
        let scanner_limits = resp::Limits {
            max_bulk: resp::Limits::default()
                .max_bulk
                .min(self.limits.max_request),
            ..resp::Limits::default()
        };
        let client = Client {
            pool,
            input: InBuf::default(),
            scanner: Scanner::new(scanner_limits, true),
            output: OutQueue::default(),
            pending: VecDeque::new(),
            head_seq: 0,
            authed: state.config.redis_auth.is_none(),
            closing: false,
            dirty: false,
            local,
            spare_replies: Vec::new(),
            at_read_end: true,
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    client: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.client = Some(client);
        Some(ClientId {
            index,
            generation: slot.generation,
        })
    }

    /// The client's read buffer: read into `spare`, `commit`, then call
    /// `client_input`. `None` for a client that is gone.
    pub fn client_buffer(&mut self, id: ClientId) -> Option<&mut InBuf> {
        client_mut(&mut self.slots, id).map(|c| &mut c.input)
    }

    /// Bytes from a client (copied into its buffer), then handled.
    pub fn client_data(&mut self, id: ClientId, bytes: &[u8], now: Instant) {
        if let Some(c) = client_mut(&mut self.slots, id) {
            c.input.extend(bytes);
        }
        self.client_input(id, now);
    }

    /// Whether the runtime should read more from the client (false while
    /// it has too much in flight or unwritten: that bounds its memory).
    pub fn client_wants_input(&mut self, id: ClientId) -> bool {
        let limits = self.limits;
        client_mut(&mut self.slots, id).is_some_and(|c| {
            !c.closing
                && !self.splices.uploading(id)
                && c.pending.len() < limits.max_pending
                && c.output.len() < limits.max_output
                && c.input.len() <= limits.max_request
        })
    }

    /// The client's next bytes to write (empty: none, or held for the rest
    /// of their read's replies, see `Client::holds_output`).
    pub fn client_output(&mut self, id: ClientId) -> &[u8] {
        let Engine { slots, splices, .. } = self;
        match client_mut(slots, id) {
            Some(c) if c.holds_output() && !splices.owes(id) => {
                // The runtime stops writing here: tell it again once the
                // read's last reply releases the output.
                c.dirty = false;
                &[]
            }
            // Up to a splice point (see `passthrough`).
            Some(c) => match splices.before(SpliceEnd::Client(id)) {
                Some(before) => {
                    let front = c.output.front();
                    &front[..front.len().min(before)]
                }
                None => c.output.front(),
            },
            None => &[],
        }
    }

    /// `n` bytes of `client_output` were written.
    pub fn client_wrote(&mut self, id: ClientId, n: usize, now: Instant) {
        let Some(c) = client_mut(&mut self.slots, id) else {
            return;
        };
        c.output.advance(n);
        self.splices.wrote(SpliceEnd::Client(id), n);
        if c.output.is_empty() {
            c.dirty = false;
            if c.closing && c.pending.is_empty() && !self.splices.owes(id) {
                self.remove_client(id, None);
                self.actions.push_back(Action::CloseClient(id));
                return;
            }
            // Requests held back while replies piled up.
            if !c.input.is_empty() {
                self.client_input(id, now);
            }
        }
    }

    /// The client's socket is gone (`eof`: it closed; else an error).
    pub fn client_closed(&mut self, id: ClientId, eof: bool) {
        self.remove_client(id, Some(eof));
    }

    fn remove_client(&mut self, id: ClientId, eof: Option<bool>) {
        let Some(slot) = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
        else {
            return;
        };
        let Some(client) = slot.client.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        let broken = self.splices.gone(SpliceEnd::Client(id));
        let pool = &mut self.pools[client.pool];
        pool.clients -= 1;
        pool.stats.client_connections -= 1;
        match eof {
            Some(true) => pool.stats.client_eof += 1,
            Some(false) => pool.stats.client_err += 1,
            None => {}
        }
        if let (Some(SpliceEnd::Server(cid)), Some(now)) = (broken, self.splices.now()) {
            // It left mid-upload: its server connection holds a partial
            // request and cannot be used again.
            self.server_failure(cid, "a client left in the middle of its request", true, now);
        }
    }

    /// Handles the client's buffered bytes: every whole request is planned
    /// and queued, until the client's bounds say stop.
    pub fn client_input(&mut self, id: ClientId, now: Instant) {
        let queued = client_mut(&mut self.slots, id).map(|c| c.head_seq + c.pending.len() as u64);
        loop {
            let limits = self.limits;
            let Some(c) = client_mut(&mut self.slots, id) else {
                return;
            };
            if c.closing
                || c.pending.len() >= limits.max_pending
                || c.output.len() >= limits.max_output
            {
                break;
            }
            match c.scanner.scan(c.input.pending()) {
                Ok(None) => {
                    if c.input.len() > limits.max_request {
                        self.refuse(id, "ERR request too large for the proxy");
                    } else {
                        // A big value's remainder may pass through.
                        self.splice_request(id, now);
                    }
                    break;
                }
                Err(e) => {
                    self.refuse(id, &format!("ERR {e}"));
                    break;
                }
                Ok(Some(end)) if end > limits.max_request => {
                    self.refuse(id, "ERR request too large for the proxy");
                    break;
                }
                Ok(Some(end)) => self.handle_request(id, end, now),
            }
        }
        if let (Some(c), Some(before)) = (client_mut(&mut self.slots, id), queued) {
            if c.head_seq + c.pending.len() as u64 > before {
                // This read queued requests: the last one ends it, or, when
                // every one of them is answered already, the output does.
                match c.pending.back_mut() {
                    Some(last) => last.ends_read = true,
                    None => c.at_read_end = true,
                }
            }
        }
        self.flush_ready(id);
    }

    /// Answers `message` after the replies owed, then closes the client.
    fn refuse(&mut self, id: ClientId, message: &str) {
        if let Some(c) = client_mut(&mut self.slots, id) {
            let mut reply = c.reply_queue();
            reply.push_bytes(&error_reply(message));
            c.pending.push_back(Pending {
                waiting: 0,
                reply,
                merge: None,
                close_after: true,
                ends_read: false,
            });
            c.closing = true;
            c.input.consume(c.input.len());
        }
    }

    fn handle_request(&mut self, id: ClientId, end: usize, now: Instant) {
        let Engine {
            pools,
            slots,
            conns,
            ..
        } = self;
        let Some(c) = client_mut(slots, id) else {
            return;
        };
        let pool = &mut pools[c.pool];
        let decision = {
            let bytes = &c.input.pending()[..end];
            let ctx = PlanContext {
                password: pool.config.redis_auth.as_deref(),
                authed: c.authed,
                db: pool.config.redis_db,
            };
            decide(request::plan(bytes, ctx), pool, &mut c.authed, c.local)
        };
        // A router may route to servers it just learned (cluster nodes).
        sync_servers(pool, c.pool, conns);
        let known = pool.servers.len();
        let decision = match decision {
            Decision::Forward(server, _) if server >= known => Decision::Reply(
                error_reply("ERR the router chose a server the proxy does not know"),
                false,
            ),
            Decision::Split(_, _, ref fragments, _, _)
                if fragments.iter().any(|f| f.0 >= known) =>
            {
                Decision::Reply(
                    error_reply("ERR the router chose a server the proxy does not know"),
                    false,
                )
            }
            other => other,
        };
        let keep = pool.router.redirects();
        let seq = c.head_seq + c.pending.len() as u64;
        match decision {
            Decision::Ignore => c.input.consume(end),
            Decision::Reply(bytes, close) => {
                c.input.consume(end);
                let mut reply = c.reply_queue();
                reply.push_bytes(&bytes);
                c.pending.push_back(Pending {
                    waiting: 0,
                    reply,
                    merge: None,
                    close_after: close,
                    ends_read: false,
                });
                if close {
                    c.closing = true;
                }
            }
            Decision::Forward(server, encoded) => {
                let reply = c.reply_queue();
                c.pending.push_back(Pending {
                    waiting: 1,
                    reply,
                    merge: None,
                    close_after: false,
                    ends_read: false,
                });
                let cid = pick_conn(pool, server, id);
                let conn = &mut conns[cid];
                let request = keep.then(|| match &encoded {
                    Some(bytes) => bytes.clone(),
                    None => c.input.pending()[..end].to_vec(),
                });
                match encoded {
                    Some(bytes) => {
                        conn.output.push_bytes(&bytes);
                        c.input.consume(end);
                    }
                    None => c.input.take_into(end, &mut conn.output),
                }
                let stats = &mut pool.servers[server].stats;
                stats.requests += 1;
                stats.request_bytes += end as u64;
                conn.inflight.push_back(Inflight {
                    owner: Some((id, seq, 0)),
                    deadline: timeout_of(&pool.config).map(|t| now + t),
                    request,
                    redirects: 0,
                    for_router: false,
                });
                self.after_queue(cid, now);
            }
            Decision::Split(kind, nkeys, fragments, unrouted, info) => {
                c.input.consume(end);
                let mut merging = merging(kind, nkeys, fragments.len(), &unrouted, info);
                pool.stats.fragments += fragments.len() as u64;
                let mut touched = Vec::new();
                for (f, (server, keys, bytes)) in fragments.into_iter().enumerate() {
                    merging.fragment_keys.push(keys);
                    let owner = (id, seq, f as u32);
                    touched.push(queue_fragment(
                        pool, conns, server, owner, &bytes, keep, now,
                    ));
                }
                let waiting = touched.len() as u32;
                let mut pending = Pending {
                    waiting,
                    reply: c.reply_queue(),
                    merge: Some(merging),
                    close_after: false,
                    ends_read: false,
                };
                if waiting == 0 {
                    finish_merge(&mut pending);
                }
                c.pending.push_back(pending);
                for cid in touched {
                    self.after_queue(cid, now);
                }
            }
        }
    }

    /// A server connection got requests: connect it or ask for a write.
    fn after_queue(&mut self, cid: ServerConnId, now: Instant) {
        match self.conns[cid].link {
            Link::Down => self.ensure_connecting(cid, now),
            Link::Connecting => {}
            Link::Up => self.mark_server_dirty(cid),
        }
    }

    fn ensure_connecting(&mut self, cid: ServerConnId, now: Instant) {
        let conn = &mut self.conns[cid];
        if conn.link != Link::Down {
            return;
        }
        conn.link = Link::Connecting;
        let config = &self.pools[conn.pool].config;
        let deadline = timeout_of(config).map(|t| now + t);
        // The connection's own requests go first, before any queued one.
        let mut preamble = OutQueue::default();
        let mut setup = 0;
        if let Some(password) = &config.redis_auth {
            preamble.push_bytes(&encode_command(&[b"AUTH", password.as_bytes()]));
            setup += 1;
        }
        if config.redis_db != 0 {
            let db = config.redis_db.to_string();
            preamble.push_bytes(&encode_command(&[b"SELECT", db.as_bytes()]));
            setup += 1;
        }
        if setup > 0 {
            let queued = std::mem::take(&mut conn.output);
            conn.output = preamble;
            conn.output.append(queued);
            for _ in 0..setup {
                conn.inflight.push_front(Inflight {
                    owner: None,
                    deadline,
                    request: None,
                    redirects: 0,
                    for_router: false,
                });
            }
        }
        let address = self.pools[conn.pool].servers[conn.server].address.clone();
        self.actions.push_back(Action::Connect {
            conn: cid,
            address,
            keepalive: config.tcpkeepalive,
        });
    }

    fn mark_server_dirty(&mut self, cid: ServerConnId) {
        let conn = &mut self.conns[cid];
        if !conn.dirty && !conn.output.is_empty() {
            conn.dirty = true;
            self.actions.push_back(Action::WriteServer(cid));
        }
    }

    /// Moves the replies that are complete, in order, to the client's output.
    fn flush_ready(&mut self, id: ClientId) {
        let Some(c) = client_mut(&mut self.slots, id) else {
            return;
        };
        let mut advanced = false;
        while c.pending.front().is_some_and(|p| p.waiting == 0) {
            let Some(p) = c.pending.pop_front() else {
                break;
            };
            advanced = true;
            c.head_seq += 1;
            c.at_read_end = p.ends_read;
            c.output_reply(p.reply);
            if p.close_after {
                c.closing = true;
                c.pending.clear();
                break;
            }
        }
        if advanced && !c.closing && self.splice_at_head(id) {
            // The new oldest request's big reply passes through now.
            return self.flush_ready(id);
        }
        let Some(c) = client_mut(&mut self.slots, id) else {
            return;
        };
        if c.closing && c.pending.is_empty() && c.output.is_empty() && !self.splices.owes(id) {
            self.remove_client(id, None);
            self.actions.push_back(Action::CloseClient(id));
            return;
        }
        if !c.dirty && !c.output.is_empty() && (!c.holds_output() || self.splices.owes(id)) {
            c.dirty = true;
            self.actions.push_back(Action::WriteClient(id));
        }
    }

    // ---- servers ----

    /// The server connection is open.
    pub fn server_connected(&mut self, cid: ServerConnId) {
        let conn = &mut self.conns[cid];
        if conn.link != Link::Connecting {
            return;
        }
        conn.link = Link::Up;
        let server = &mut self.pools[conn.pool].servers[conn.server];
        server.stats.server_connections += 1;
        self.mark_server_dirty(cid);
    }

    /// The server connection's next bytes to write.
    pub fn server_output(&self, cid: ServerConnId) -> &[u8] {
        let conn = &self.conns[cid];
        if conn.link != Link::Up {
            return &[];
        }
        let front = conn.output.front();
        match self.splices.before(SpliceEnd::Server(cid)) {
            // Up to an upload's splice point (see `passthrough`).
            Some(before) => &front[..front.len().min(before)],
            None => front,
        }
    }

    /// `n` bytes of `server_output` were written.
    pub fn server_wrote(&mut self, cid: ServerConnId, n: usize) {
        let conn = &mut self.conns[cid];
        conn.output.advance(n);
        self.splices.wrote(SpliceEnd::Server(cid), n);
        if conn.output.is_empty() {
            conn.dirty = false;
        }
    }

    /// The server connection's read buffer (see `client_buffer`).
    pub fn server_buffer(&mut self, cid: ServerConnId) -> &mut InBuf {
        &mut self.conns[cid].input
    }

    /// Bytes from a server (copied into its buffer), then handled.
    pub fn server_data(&mut self, cid: ServerConnId, bytes: &[u8], now: Instant) {
        self.conns[cid].input.extend(bytes);
        self.server_input(cid, now);
    }

    /// Handles the server connection's buffered replies.
    pub fn server_input(&mut self, cid: ServerConnId, now: Instant) {
        let mut clients = std::mem::take(&mut self.touched);
        clients.clear();
        let mut redirected = Vec::new();
        let mut failed;
        let mut need_more = false;
        loop {
            let Engine {
                pools,
                slots,
                conns,
                ..
            } = self;
            let conn = &mut conns[cid];
            let end = match conn.scanner.scan(conn.input.pending()) {
                Ok(None) => {
                    need_more = true;
                    break;
                }
                Ok(Some(end)) => end,
                Err(e) => {
                    self.server_failure(
                        cid,
                        &format!("Protocol error from the server: {e}"),
                        true,
                        now,
                    );
                    break;
                }
            };
            let Some(entry) = conn.inflight.pop_front() else {
                self.server_failure(cid, "reply from the server to no request", true, now);
                break;
            };
            let pool = &mut pools[conn.pool];
            let server = &mut pool.servers[conn.server];
            server.stats.responses += 1;
            server.stats.response_bytes += end as u64;
            server.failures = 0;
            match entry.owner {
                None => {
                    if entry.for_router {
                        let reply = &conn.input.pending()[..end];
                        pool.router.on_own_reply(conn.server, Ok(reply), now);
                    }
                    conn.input.consume(end);
                }
                Some((id, seq, fragment)) => {
                    let verdict = pool.router.on_reply(
                        conn.server,
                        entry.redirects,
                        &conn.input.pending()[..end],
                        now,
                    );
                    let reply = match verdict {
                        Verdict::Forward => Reply::Buffer(&mut conn.input, end),
                        Verdict::Fail(bytes) => {
                            conn.input.consume(end);
                            failed = bytes;
                            Reply::Bytes(&failed)
                        }
                        Verdict::Redirect { server, asking, at } => {
                            let may = pool.router.redirects()
                                && entry.request.is_some()
                                && entry.redirects < pool.router.max_redirects();
                            if may {
                                conn.input.consume(end);
                                redirected.push((conn.pool, server, asking, at, entry));
                                continue;
                            }
                            Reply::Buffer(&mut conn.input, end)
                        }
                    };
                    deliver(slots, id, seq, fragment, reply);
                    if !clients.contains(&id) {
                        clients.push(id);
                    }
                }
            }
        }
        if need_more {
            // A big bulk reply's remainder may pass through (`passthrough`).
            if let Some(id) = self.splice_reply(cid, now) {
                clients.push(id);
            }
        }
        for (p, server, asking, at, entry) in redirected {
            match at {
                Some(at) if at > now => self.delayed.push((at, p, server, asking, entry)),
                _ => {
                    if let Some(id) = self.redirect(p, server, asking, entry, now) {
                        clients.push(id);
                    }
                }
            }
        }
        for &id in &clients {
            self.flush_ready(id);
        }
        self.touched = clients;
    }

    /// Sends a redirected request to `server` of pool `p` (after ASKING
    /// when `asking`); a server the pool does not know fails it instead,
    /// and its client is returned.
    fn redirect(
        &mut self,
        p: usize,
        server: usize,
        asking: bool,
        entry: Inflight,
        now: Instant,
    ) -> Option<ClientId> {
        let (id, seq, fragment) = entry.owner?;
        let Engine {
            pools,
            slots,
            conns,
            ..
        } = self;
        let pool = &mut pools[p];
        sync_servers(pool, p, conns);
        let request = entry.request?;
        if server >= pool.servers.len() {
            let reply = error_reply("ERR redirected to a server the proxy does not know");
            deliver(slots, id, seq, fragment, Reply::Bytes(&reply));
            return Some(id);
        }
        let deadline = timeout_of(&pool.config).map(|t| now + t);
        let cid = pick_conn(pool, server, id);
        let conn = &mut conns[cid];
        if asking {
            conn.output.push_bytes(b"*1\r\n$6\r\nASKING\r\n");
            conn.inflight.push_back(Inflight {
                owner: None,
                deadline,
                request: None,
                redirects: 0,
                for_router: false,
            });
        }
        conn.output.push_bytes(&request);
        let stats = &mut pool.servers[server].stats;
        stats.requests += 1;
        stats.request_bytes += request.len() as u64;
        conn.inflight.push_back(Inflight {
            owner: entry.owner,
            deadline,
            request: Some(request),
            redirects: entry.redirects + 1,
            for_router: false,
        });
        self.after_queue(cid, now);
        None
    }

    /// The server connection's socket closed (`error`: why; `None`: the
    /// server closed it) or could not connect.
    pub fn server_closed(&mut self, cid: ServerConnId, error: Option<&str>, now: Instant) {
        match error {
            Some(e) => self.server_failure(cid, e, false, now),
            None => {
                let conn = &self.conns[cid];
                self.pools[conn.pool].servers[conn.server].stats.server_eof += 1;
                self.server_failure(cid, "Connection closed by the server", false, now);
            }
        }
    }

    /// Fails every request in flight on `cid` with `reason`, resets the
    /// connection, and counts a failure against its server (ejecting it
    /// per the pool's config).
    fn server_failure(&mut self, cid: ServerConnId, reason: &str, close: bool, now: Instant) {
        if let Some(SpliceEnd::Client(id)) = self.splices.gone(SpliceEnd::Server(cid)) {
            // Its reply was cut short mid-frame: the client cannot be
            // answered in order any more.
            self.remove_client(id, Some(false));
            self.actions.push_back(Action::CloseClient(id));
        }
        let conn = &mut self.conns[cid];
        let was = conn.link;
        conn.link = Link::Down;
        conn.input = InBuf::default();
        conn.scanner.reset();
        conn.output.clear();
        conn.dirty = false;
        let entries: Vec<Inflight> = conn.inflight.drain(..).collect();
        let (p, s) = (conn.pool, conn.server);
        let pool = &mut self.pools[p];
        let server = &mut pool.servers[s];
        if was == Link::Up {
            server.stats.server_connections -= 1;
        }
        server.stats.server_err += 1;
        let reply = error_reply(&format!("ERR {reason}"));
        let mut clients = Vec::new();
        pool.router.on_server_failure(s);
        for entry in entries {
            if entry.for_router {
                pool.router.on_own_reply(s, Err(reason), now);
            }
            if let Some((id, seq, fragment)) = entry.owner {
                pool.stats.forward_error += 1;
                deliver(&mut self.slots, id, seq, fragment, Reply::Bytes(&reply));
                if !clients.contains(&id) {
                    clients.push(id);
                }
            }
        }
        if close && was != Link::Down {
            self.actions.push_back(Action::CloseServer(cid));
        }
        let name = server.name.clone();
        self.actions.push_back(Action::Log {
            level: 5,
            message: format!("pool '{}' server {name}: {reason}", pool.config.name),
        });
        server.failures += 1;
        if pool.config.auto_eject_hosts && server.failures >= pool.config.server_failure_limit {
            server.failures = 0;
            let retry = Duration::from_millis(u64::from(pool.config.server_retry_timeout_ms));
            server.ejected_until = Some(now + retry);
            server.ejected_at = Some(now);
            pool.stats.server_ejects += 1;
            self.actions.push_back(Action::Log {
                level: 4,
                message: format!(
                    "pool '{}' server {name}: ejected for {} ms",
                    pool.config.name, pool.config.server_retry_timeout_ms
                ),
            });
            let live: Vec<bool> = pool
                .servers
                .iter()
                .map(|s| s.ejected_until.is_none())
                .collect();
            pool.router.set_live(&live);
        }
        for id in clients {
            self.flush_ready(id);
        }
    }

    // ---- time ----

    /// When `tick` must next run (a request's timeout or a server's retry).
    pub fn next_deadline(&self) -> Option<Instant> {
        let requests = self
            .conns
            .iter()
            .filter_map(|c| c.inflight.front().and_then(|i| i.deadline));
        let retries = self
            .pools
            .iter()
            .flat_map(|p| p.servers.iter().filter_map(|s| s.ejected_until));
        let routers = self.pools.iter().filter_map(|p| p.router.next_deadline());
        let delayed = self.delayed.iter().map(|d| d.0);
        requests.chain(retries).chain(routers).chain(delayed).min()
    }

    /// Times out requests (their server connection is closed and every
    /// request on it fails) and puts ejected servers back after their
    /// retry timeout.
    pub fn tick(&mut self, now: Instant) {
        for cid in 0..self.conns.len() {
            let late = self.conns[cid]
                .inflight
                .front()
                .and_then(|i| i.deadline)
                .is_some_and(|d| d <= now);
            if late {
                let conn = &self.conns[cid];
                self.pools[conn.pool].servers[conn.server]
                    .stats
                    .server_timedout += 1;
                self.server_failure(cid, "Connection timed out", true, now);
            }
        }
        for pool in &mut self.pools {
            let mut changed = false;
            for server in &mut pool.servers {
                if server.ejected_until.is_some_and(|t| t <= now) {
                    server.ejected_until = None;
                    changed = true;
                    self.actions.push_back(Action::Log {
                        level: 5,
                        message: format!(
                            "pool '{}' server {}: back in the distribution",
                            pool.config.name, server.name
                        ),
                    });
                }
            }
            if changed {
                let live: Vec<bool> = pool
                    .servers
                    .iter()
                    .map(|s| s.ejected_until.is_none())
                    .collect();
                pool.router.set_live(&live);
            }
        }
        // Redirected requests whose time came (TRYAGAIN).
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|d| d.0 <= now);
        self.delayed = later;
        let mut clients = Vec::new();
        for (_, p, server, asking, entry) in due {
            if let Some(id) = self.redirect(p, server, asking, entry, now) {
                clients.push(id);
            }
        }
        for id in clients {
            self.flush_ready(id);
        }
        // The routers' own requests (cluster mode's slot map refresh).
        for p in 0..self.pools.len() {
            while let Some((server, request)) = self.pools[p].router.poll_request(now) {
                self.router_request(p, server, request, now);
            }
        }
    }

    /// Sends a router's own request to `server` of pool `p`.
    fn router_request(&mut self, p: usize, server: usize, request: Vec<u8>, now: Instant) {
        let Engine { pools, conns, .. } = self;
        let pool = &mut pools[p];
        sync_servers(pool, p, conns);
        let Some(state) = pool.servers.get(server) else {
            pool.router
                .on_own_reply(server, Err("a server the proxy does not know"), now);
            return;
        };
        let cid = state.conns[0];
        let conn = &mut conns[cid];
        conn.output.push_bytes(&request);
        conn.inflight.push_back(Inflight {
            owner: None,
            deadline: timeout_of(&pool.config).map(|t| now + t),
            request: None,
            redirects: 0,
            for_router: true,
        });
        self.after_queue(cid, now);
    }

    /// Every pool's totals (tpa's stats), in pool order.
    pub fn pool_totals(&self) -> impl Iterator<Item = super::stats::PoolTotals> + '_ {
        self.pools.iter().map(|p| {
            let servers = p
                .servers
                .iter()
                .map(|s| (&s.stats, s.ejected_until.is_some()));
            let mut totals = super::stats::PoolTotals::new(&p.config.name, &p.stats, servers);
            totals.cluster = p.router.cluster_stats();
            totals
        })
    }

    /// Client connections accepted so far, over every pool.
    pub fn accepted_connections(&self) -> u64 {
        self.total_connections
    }

    /// nutcracker's stats JSON.
    pub fn stats_json(&self, clock: &StatsClock) -> String {
        self.stats_view(clock).render(clock)
    }

    /// The counters the stats JSON shows, to be summed with other engines'.
    pub fn stats_view(&self, clock: &StatsClock) -> super::stats::StatsView {
        let curr: u32 = self.pools.iter().map(|p| p.clients).sum();
        let pools: Vec<_> = self
            .pools
            .iter()
            .map(|p| {
                let servers: Vec<_> = p
                    .servers
                    .iter()
                    .map(|state| {
                        let mut stats = state.stats.clone();
                        stats.server_ejected_at =
                            state.ejected_at.map_or(0, |at| clock.unix_micros_at(at));
                        let queued = self.conns_of(state);
                        stats.in_queue = queued.0;
                        stats.in_queue_bytes = queued.1;
                        stats.out_queue = queued.2;
                        (state.name.clone(), stats)
                    })
                    .collect();
                let mut stats = p.stats.clone();
                stats.cluster = p.router.cluster_stats();
                (p.config.name.clone(), stats, servers)
            })
            .collect();
        super::stats::StatsView {
            total: self.total_connections,
            current: u64::from(curr),
            pools,
        }
    }

    fn conns_of(&self, state: &ServerState) -> (u64, u64, u64) {
        let mut out = (0, 0, 0);
        for &c in &state.conns {
            let conn = &self.conns[c];
            out.0 += conn.inflight.len() as u64;
            out.1 += conn.output.len() as u64;
            out.2 += conn.inflight.len() as u64;
        }
        out
    }
}

/// The connection to `server` that carries `client`'s requests: always
/// the same one, so a client's requests to a server run in its order even
/// with several `server_connections`.
/// Adds a server (and its connections) to pool `pool` (index `p`).
fn add_server(
    pool: &mut PoolState,
    p: usize,
    conns: &mut Vec<ServerConn>,
    address: ServerAddress,
    name: String,
) {
    let s = pool.servers.len();
    let mut mine = Vec::new();
    for _ in 0..pool.config.server_connections.max(1) {
        mine.push(conns.len());
        conns.push(ServerConn {
            pool: p,
            server: s,
            link: Link::Down,
            input: InBuf::default(),
            scanner: Scanner::new(resp::Limits::default(), false),
            output: OutQueue::default(),
            inflight: VecDeque::new(),
            dirty: false,
        });
    }
    pool.servers.push(ServerState {
        address,
        name,
        conns: mine,
        failures: 0,
        ejected_until: None,
        ejected_at: None,
        stats: ServerStats::default(),
    });
}

/// Adds the servers the pool's router learned since the last call.
fn sync_servers(pool: &mut PoolState, p: usize, conns: &mut Vec<ServerConn>) {
    let known = pool.servers.len() - pool.config.servers.len();
    let learned = pool.router.learned_servers();
    if learned.len() <= known {
        return;
    }
    let new: Vec<ServerAddress> = learned[known.min(learned.len())..].to_vec();
    for address in new {
        let name = match &address {
            ServerAddress::Tcp { host, port } => format!("{host}:{port}"),
            ServerAddress::Unix { path } => path.clone(),
        };
        add_server(pool, p, conns, address, name);
    }
}

fn pick_conn(pool: &PoolState, server: usize, client: ClientId) -> ServerConnId {
    let conns = &pool.servers[server].conns;
    conns[client.index as usize % conns.len()]
}

/// A split request's merge, before its fragments are queued (their key
/// lists pushed as they are): the keys no server takes get their error.
fn merging(
    kind: MergeKind,
    nkeys: usize,
    fragments: usize,
    unrouted: &[u32],
    info: Option<(String, bool)>,
) -> Merging {
    let mut merging = Merging {
        kind,
        fragment_keys: Vec::with_capacity(fragments),
        values: vec![Vec::new(); nkeys],
        sum: 0,
        error: None,
        info,
    };
    for &k in unrouted {
        let e = error_reply("ERR no live server for the key");
        if kind == MergeKind::Values {
            merging.values[k as usize] = e;
        } else {
            merging.error.get_or_insert(e);
        }
    }
    merging
}

/// Queues fragment `owner.2` of request `owner.1` of client `owner.0` on
/// the connection to `server` that the client uses: its bytes, counted,
/// and its in-flight entry (`keep`: with a copy of the bytes, for a
/// router that redirects). Returns the connection, to be written.
fn queue_fragment(
    pool: &mut PoolState,
    conns: &mut [ServerConn],
    server: usize,
    owner: (ClientId, u64, u32),
    bytes: &[u8],
    keep: bool,
    now: Instant,
) -> ServerConnId {
    let cid = pick_conn(pool, server, owner.0);
    let conn = &mut conns[cid];
    let stats = &mut pool.servers[server].stats;
    stats.requests += 1;
    stats.request_bytes += bytes.len() as u64;
    conn.output.push_bytes(bytes);
    conn.inflight.push_back(Inflight {
        owner: Some(owner),
        deadline: timeout_of(&pool.config).map(|t| now + t),
        request: keep.then(|| bytes.to_vec()),
        redirects: 0,
        for_router: false,
    });
    cid
}

/// Turns a plan into what to do, routing keys through the pool's router.
/// Inlined: every request's path (`handle_request`) would pay for the
/// call otherwise, now that the uploads' planning calls it too.
#[inline(always)]
fn decide(
    plan: Plan<'_>,
    pool: &mut PoolState,
    authed: &mut bool,
    local: Option<std::net::SocketAddr>,
) -> Decision {
    match plan {
        Plan::Ignore => Decision::Ignore,
        Plan::Reply(bytes) => Decision::Reply(bytes, false),
        Plan::RouterAnswer { args, fallback } => {
            let mut out = Vec::new();
            if pool.router.answer(&args, local, &mut out) {
                Decision::Reply(out, false)
            } else {
                Decision::Reply(fallback, false)
            }
        }
        Plan::Broadcast { args, fallback } => {
            let facts = ProxyFacts {
                version: env!("CARGO_PKG_VERSION"),
                pool: &pool.config.name,
                clients: u64::from(pool.clients),
            };
            match pool.router.broadcast(&args, &facts) {
                None => Decision::Reply(fallback, false),
                Some(Err(reply)) => Decision::Reply(reply, false),
                Some(Ok(fanout)) => {
                    let (kind, info) = match fanout.merge {
                        FanoutMerge::Sum => (MergeKind::Sum, None),
                        FanoutMerge::Info { head, keyspace } => {
                            (MergeKind::Info, Some((head, keyspace)))
                        }
                    };
                    let fragments = fanout
                        .nodes
                        .iter()
                        .enumerate()
                        .map(|(f, node)| (node.index(), vec![f as u32], fanout.request.to_vec()))
                        .collect();
                    Decision::Split(kind, fanout.nodes.len(), fragments, Vec::new(), info)
                }
            }
        }
        Plan::ReplyAndClose(bytes) => Decision::Reply(bytes, true),
        Plan::Auth(given) => {
            let (reply, ok) = auth(pool.config.redis_auth.as_deref(), given);
            *authed = ok || pool.config.redis_auth.is_none();
            Decision::Reply(reply, false)
        }
        Plan::Forward { keys, encoded } => match pool.router.route_keys(&keys) {
            Ok(server) => Decision::Forward(server, encoded),
            Err(reply) => Decision::Reply(reply, false),
        },
        Plan::Split {
            name,
            args,
            step,
            merge,
        } => {
            let keys: Vec<usize> = (1..args.len()).step_by(step).collect();
            // Parts in the order of their first key; a map finds a key's part.
            let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
            let mut part_of: std::collections::HashMap<u64, usize> = Default::default();
            let mut unrouted = Vec::new();
            for (k, &at) in keys.iter().enumerate() {
                match pool.router.split_key(args[at]) {
                    Some((server, part)) => {
                        let g = *part_of.entry(part).or_insert_with(|| {
                            groups.push((server, Vec::new()));
                            groups.len() - 1
                        });
                        groups[g].1.push(k as u32);
                    }
                    None => unrouted.push(k as u32),
                }
            }
            if groups.len() == 1 && unrouted.is_empty() {
                // Every key on one server: forward it whole.
                return Decision::Forward(groups[0].0, Some(encode_command(&args)));
            }
            let fragments = groups
                .into_iter()
                .map(|(server, ks)| {
                    let mut part: Vec<&[u8]> = vec![name];
                    for &k in &ks {
                        let at = keys[k as usize];
                        part.extend_from_slice(&args[at..at + step]);
                    }
                    (server, ks, encode_command(&part))
                })
                .collect();
            Decision::Split(merge, keys.len(), fragments, unrouted, None)
        }
    }
}

/// A reply for one fragment: in a read buffer (moved or copied out of it)
/// or made by the proxy.
enum Reply<'a> {
    Buffer(&'a mut InBuf, usize),
    Bytes(&'a [u8]),
}

impl Reply<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Reply::Buffer(buf, end) => &buf.pending()[..*end],
            Reply::Bytes(b) => b,
        }
    }

    /// Appends the reply to `out` and frees it from its buffer.
    fn into_queue(self, out: &mut OutQueue) {
        match self {
            Reply::Buffer(buf, end) => buf.take_into(end, out),
            Reply::Bytes(b) => out.push_bytes(b),
        }
    }

    fn discard(self) {
        if let Reply::Buffer(buf, end) = self {
            buf.consume(end);
        }
    }
}

/// Gives fragment `fragment` of request `seq` of client `id` its reply.
fn deliver(slots: &mut [Slot], id: ClientId, seq: u64, fragment: u32, reply: Reply<'_>) {
    let Some(c) = client_mut(slots, id) else {
        return reply.discard();
    };
    let Some(index) = seq.checked_sub(c.head_seq) else {
        return reply.discard();
    };
    let head = index == 0;
    let Some(pending) = c.pending.get_mut(index as usize) else {
        return reply.discard();
    };
    if pending.waiting == 0 {
        return reply.discard();
    }
    match &mut pending.merge {
        None => {
            pending.waiting = 0;
            // The oldest request's reply goes straight to the output.
            if head && pending.reply.is_empty() {
                reply.into_queue(&mut c.output);
            } else {
                reply.into_queue(&mut pending.reply);
            }
        }
        Some(merging) => {
            merge_fragment(merging, fragment, reply.bytes());
            reply.discard();
            pending.waiting -= 1;
            if pending.waiting == 0 {
                finish_merge(pending);
            }
        }
    }
}
