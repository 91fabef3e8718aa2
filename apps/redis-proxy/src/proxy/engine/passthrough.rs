//! Passthrough of big bulk replies: the engine names the bytes, the
//! runtime moves them.
//!
//! When a server's next reply is a bulk string of at least the runtime's
//! threshold, answers the oldest request of its client (a request
//! forwarded whole to this one server, not a fragment of a split one),
//! and only its head and first bytes have arrived, the engine queues
//! those for the client and leaves the rest of the frame in the server
//! connection's socket: a *splice* from that connection to the client.
//! The client's output stops at the splice point (`client_output` shows
//! only the bytes before it); once they are written the splice is the
//! client's turn (`passthrough_to`), and the runtime moves the frame's
//! remaining bytes from the server's socket to the client's however it
//! can (on tpa's stack: the received packet buffers themselves), telling
//! the engine with `passthrough_moved`. Meanwhile the server connection
//! is not read for anything else (`passthrough_from`); once the frame's
//! last byte moved, it is read as usual again, and the client's later
//! replies follow.
//!
//! The other way, an *upload*: a request whose last argument is a big
//! bulk string not all received, forwarded whole to one server, has
//! what arrived queued for its server connection and the rest spliced
//! from the client's socket (`upload_from`, `upload_to`,
//! `upload_moved`): the connection's output stops at the splice point,
//! the client is read only for the upload. A client leaving mid-request
//! fails that connection (it holds half a request); a connection failing
//! mid-request drains the rest from the client.
//!
//! A client that leaves mid-frame turns the splice into a drain: the
//! frame's remaining bytes are read and dropped, and the server
//! connection (shared with other clients) carries on. A server connection
//! that fails mid-frame closes the client, whose reply cannot be
//! finished.
//!
//! Only a runtime that calls [`Engine::enable_passthrough`] (tpa's) sees
//! splices, and only on the connections it allows; the kernel runtime
//! moves big frames as their allocation instead (see `buffer`).

use std::time::Instant;

use super::super::buffer::OutQueue;
use super::super::request::{self, Plan, PlanContext};
use super::super::router::Verdict;
use super::super::session::{ClientId, Inflight, Link, Pending, ServerConn};
use super::{client_mut, pick_conn, timeout_of, Action, Engine, PoolState, ServerConnId};
use crate::config::ServerAddress;

/// Where a splice's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpliceTo {
    /// To this client.
    Client(ClientId),
    /// Nowhere: the client left mid-frame; read and drop them.
    Drop,
}

/// Passthrough's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassthroughStats {
    /// Big values (replies and requests) whose remainder was spliced.
    pub frames: u64,
    /// Bytes moved from a server's socket to a client's by splices.
    pub bytes: u64,
    /// Of those, bytes moved as the received buffers themselves.
    pub zero_copy_bytes: u64,
    /// Bytes read and dropped because their client left mid-frame.
    pub dropped_bytes: u64,
}

/// One frame's remainder, from a server connection to a client.
#[derive(Debug)]
struct Splice {
    source: ServerConnId,
    to: SpliceTo,
    /// The client's output bytes before the splice point.
    before: usize,
    /// The frame's bytes still in the source.
    left: usize,
}

/// One big request's remainder, from a client's socket to a server
/// connection (an upload).
#[derive(Debug)]
struct Upload {
    client: ClientId,
    /// `None`: the connection failed mid-request; read and drop them.
    conn: Option<ServerConnId>,
    /// The connection's output bytes before the splice point.
    before: usize,
    /// The request's bytes still in the client's socket.
    left: usize,
}

/// Every splice in progress and the settings (the engine's part).
#[derive(Debug, Default)]
pub(super) struct Splices {
    /// The least bulk payload spliced; `None`: off.
    min: Option<usize>,
    /// Whether the runtime can splice from or to a server at this
    /// address (its socket hands over received buffers).
    reachable: Option<fn(&ServerAddress) -> bool>,
    active: Vec<Splice>,
    uploads: Vec<Upload>,
    stats: PassthroughStats,
    /// The time of the last server input (the router's clock).
    now: Option<Instant>,
}

impl Splices {
    fn of_source(&self, cid: ServerConnId) -> Option<usize> {
        self.active.iter().position(|s| s.source == cid)
    }

    fn of_client(&self, id: ClientId) -> Option<usize> {
        self.active
            .iter()
            .position(|s| s.to == SpliceTo::Client(id))
    }

    /// The client's output bytes before its splice point, if it has one.
    pub(super) fn before(&self, id: ClientId) -> Option<usize> {
        self.of_client(id).map(|i| self.active[i].before)
    }

    /// `n` bytes of the client's output were written.
    pub(super) fn wrote(&mut self, id: ClientId, n: usize) {
        if let Some(i) = self.of_client(id) {
            let s = &mut self.active[i];
            s.before = s.before.saturating_sub(n);
        }
    }

    /// Whether the client still waits for a splice's bytes.
    pub(super) fn owes(&self, id: ClientId) -> bool {
        self.of_client(id).is_some()
    }

    /// The time of the last input that could start a splice.
    pub(super) fn now(&self) -> Option<Instant> {
        self.now
    }

    fn upload_of(&self, id: ClientId) -> Option<usize> {
        self.uploads.iter().position(|u| u.client == id)
    }

    fn upload_into(&self, cid: ServerConnId) -> Option<usize> {
        self.uploads.iter().position(|u| u.conn == Some(cid))
    }

    /// Whether the client's socket carries an upload (read only for it).
    pub(super) fn uploading(&self, id: ClientId) -> bool {
        self.upload_of(id).is_some()
    }

    /// The connection's output bytes before its upload's splice point.
    pub(super) fn server_before(&self, cid: ServerConnId) -> Option<usize> {
        self.upload_into(cid).map(|i| self.uploads[i].before)
    }

    /// `n` bytes of the connection's output were written.
    pub(super) fn server_wrote(&mut self, cid: ServerConnId, n: usize) {
        if let Some(i) = self.upload_into(cid) {
            let u = &mut self.uploads[i];
            u.before = u.before.saturating_sub(n);
        }
    }

    /// The client left: its reply splice (if any) drains; its upload
    /// ends, and the connection it went to (which holds a partial
    /// request now) is returned, to be failed.
    pub(super) fn client_gone(&mut self, id: ClientId) -> Option<ServerConnId> {
        if let Some(i) = self.of_client(id) {
            self.active[i].to = SpliceTo::Drop;
        }
        let i = self.upload_of(id)?;
        self.uploads.swap_remove(i).conn
    }

    /// The source failed: its splice ends; the client it fed (its reply
    /// cut short) is returned. An upload into it drains.
    pub(super) fn source_failed(&mut self, cid: ServerConnId) -> Option<ClientId> {
        if let Some(i) = self.upload_into(cid) {
            self.uploads[i].conn = None;
        }
        let i = self.of_source(cid)?;
        match self.active.swap_remove(i).to {
            SpliceTo::Client(id) => Some(id),
            SpliceTo::Drop => None,
        }
    }
}

/// The head of a bulk string at the start of `bytes` whose payload is at
/// least `min`: the head's length (`$<len>\r\n`) and the payload's.
fn bulk_head(bytes: &[u8], min: usize) -> Option<(usize, usize)> {
    if bytes.first() != Some(&b'$') {
        return None;
    }
    let cr = bytes.iter().take(24).position(|&b| b == b'\r')?;
    if bytes.get(cr + 1) != Some(&b'\n') || cr < 2 {
        return None;
    }
    let digits = &bytes[1..cr];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (len >= min).then_some((cr + 2, len))
}

/// A request whose last argument is a bulk string of at least `min`
/// bytes not all here: the bytes of its head and every argument before
/// the last, the last's head (`$<len>\r\n`) length, and its payload's.
fn big_last_argument(bytes: &[u8], min: usize) -> Option<(usize, usize, usize)> {
    /// The number after the type byte at `at` and where its line ends.
    fn number_line(bytes: &[u8], at: usize, kind: u8) -> Option<(usize, usize)> {
        if bytes.get(at) != Some(&kind) {
            return None;
        }
        let from = at + 1;
        let cr = from
            + bytes
                .get(from..)?
                .iter()
                .take(21)
                .position(|&b| b == b'\r')?;
        if bytes.get(cr + 1) != Some(&b'\n') || cr == from {
            return None;
        }
        let digits = &bytes[from..cr];
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some((std::str::from_utf8(digits).ok()?.parse().ok()?, cr + 2))
    }
    let (count, mut at) = number_line(bytes, 0, b'*')?;
    for i in 0..count {
        let (len, start) = number_line(bytes, at, b'$')?;
        if i + 1 == count {
            let end = start.checked_add(len)?.checked_add(2)?;
            return (len >= min && bytes.len() < end).then_some((at, start - at, len));
        }
        let end = start.checked_add(len)?;
        if bytes.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        at = end + 2;
    }
    None
}

/// Whether splices may involve server connection `cid`.
fn allowed(
    splices: &Splices,
    pools: &[PoolState],
    conns: &[ServerConn],
    cid: ServerConnId,
) -> bool {
    let Some(reachable) = splices.reachable else {
        return false;
    };
    conns
        .get(cid)
        .is_some_and(|c| reachable(&pools[c.pool].servers[c.server].address))
}

impl Engine {
    /// Turns passthrough on (tpa's runtime): bulk replies of at least
    /// `min_payload` bytes are spliced (see the module's doc).
    /// `reachable` tells the servers whose sockets can take part (tpa's,
    /// not the kernel's).
    pub fn enable_passthrough(
        &mut self,
        min_payload: usize,
        reachable: fn(&ServerAddress) -> bool,
    ) {
        self.splices.min = Some(min_payload.max(1));
        self.splices.reachable = Some(reachable);
    }

    /// The splice reading from `cid`: where its bytes go and how many are
    /// left. While there is one, the runtime reads `cid` only for it.
    pub fn passthrough_from(&self, cid: ServerConnId) -> Option<(SpliceTo, usize)> {
        let s = &self.splices.active[self.splices.of_source(cid)?];
        Some((s.to, s.left))
    }

    /// The client's splice when its turn came (every output byte before it
    /// written): the source and the bytes left.
    pub fn passthrough_to(&self, id: ClientId) -> Option<(ServerConnId, usize)> {
        let s = &self.splices.active[self.splices.of_client(id)?];
        (s.before == 0).then_some((s.source, s.left))
    }

    /// The sources of the splices whose client left: the runtime drains
    /// them (no event may come for bytes already received).
    pub fn passthrough_drains(&self) -> impl Iterator<Item = ServerConnId> + '_ {
        self.splices
            .active
            .iter()
            .filter(|s| s.to == SpliceTo::Drop)
            .map(|s| s.source)
    }

    /// `n` bytes of the splice from `cid` were moved (`zero_copy`: as the
    /// received buffers) or dropped. True once the frame's last byte went:
    /// `cid` is then read as usual again, and what follows the frame in
    /// the last buffer goes to `server_buffer` and `server_input`.
    pub fn passthrough_moved(
        &mut self,
        cid: ServerConnId,
        n: usize,
        zero_copy: bool,
        now: Instant,
    ) -> bool {
        let Some(i) = self.splices.of_source(cid) else {
            return true;
        };
        let splices = &mut self.splices;
        let s = &mut splices.active[i];
        let n = n.min(s.left);
        s.left -= n;
        match s.to {
            SpliceTo::Drop => splices.stats.dropped_bytes += n as u64,
            SpliceTo::Client(_) => {
                splices.stats.bytes += n as u64;
                if zero_copy {
                    splices.stats.zero_copy_bytes += n as u64;
                }
            }
        }
        if s.left > 0 {
            return false;
        }
        if let SpliceTo::Client(id) = splices.active.swap_remove(i).to {
            self.after_splice(id, now);
        }
        true
    }

    /// The client's upload: the server connection it goes to (`None`: it
    /// failed, read and drop the bytes) and the bytes left. While there is
    /// one, the runtime reads the client only for it.
    pub fn upload_from(&self, id: ClientId) -> Option<(Option<ServerConnId>, usize)> {
        let u = &self.splices.uploads[self.splices.upload_of(id)?];
        Some((u.conn, u.left))
    }

    /// The upload into `cid` when its turn came (every output byte before
    /// it written): its client and the bytes left.
    pub fn upload_to(&self, cid: ServerConnId) -> Option<(ClientId, usize)> {
        let u = &self.splices.uploads[self.splices.upload_into(cid)?];
        (u.before == 0).then_some((u.client, u.left))
    }

    /// The clients whose upload drains (its server connection failed).
    pub fn upload_drains(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.splices
            .uploads
            .iter()
            .filter(|u| u.conn.is_none())
            .map(|u| u.client)
    }

    /// `n` bytes of the client's upload were moved (`zero_copy`: as the
    /// received buffers) or dropped. True once the request's last byte
    /// went: the client is read as usual again (what follows the request
    /// in the last buffer goes to `client_buffer` and `client_input`).
    pub fn upload_moved(&mut self, id: ClientId, n: usize, zero_copy: bool) -> bool {
        let Some(i) = self.splices.upload_of(id) else {
            return true;
        };
        let splices = &mut self.splices;
        let u = &mut splices.uploads[i];
        let n = n.min(u.left);
        u.left -= n;
        if u.conn.is_none() {
            splices.stats.dropped_bytes += n as u64;
        } else {
            splices.stats.bytes += n as u64;
            if zero_copy {
                splices.stats.zero_copy_bytes += n as u64;
            }
        }
        if u.left > 0 {
            return false;
        }
        let done = splices.uploads.swap_remove(i);
        if let Some(cid) = done.conn {
            let conn = &mut self.conns[cid];
            if conn.output.is_empty() {
                conn.dirty = false;
            } else {
                // Later requests wait behind the splice point.
                conn.dirty = true;
                self.actions.push_back(Action::WriteServer(cid));
            }
        }
        true
    }

    /// Starts an upload of the request at the front of the client's input
    /// when its last argument is big and the request goes whole to one
    /// server (a SET of a big value); true if it did.
    pub(super) fn splice_request(&mut self, id: ClientId, now: Instant) -> bool {
        let Some(min) = self.splices.min else {
            return false;
        };
        self.splices.now = Some(now);
        let Engine {
            pools,
            slots,
            conns,
            splices,
            ..
        } = self;
        let Some(c) = client_mut(slots, id) else {
            return false;
        };
        if c.closing || splices.uploading(id) {
            return false;
        }
        let pool = &mut pools[c.pool];
        if pool.router.redirects() {
            return false;
        }
        let Some((args_end, last_head, payload)) = big_last_argument(c.input.pending(), min) else {
            return false;
        };
        // The request with its last argument empty says where it goes
        // (the last argument must not be a key).
        let mut head = c.input.pending()[..args_end].to_vec();
        head.extend_from_slice(b"$0\r\n\r\n");
        let ctx = PlanContext {
            password: pool.config.redis_auth.as_deref(),
            authed: c.authed,
            db: pool.config.redis_db,
        };
        let Plan::Forward {
            keys,
            encoded: None,
        } = request::plan(&head, ctx)
        else {
            return false;
        };
        if keys.iter().any(|k| k.is_empty()) {
            return false;
        }
        let Ok(server) = pool.router.route_keys(&keys) else {
            return false;
        };
        if server >= pool.servers.len() {
            return false;
        }
        let cid = pick_conn(pool, server, id);
        if !allowed(splices, pools, conns, cid) {
            return false;
        }
        let total = args_end + last_head + payload + 2;
        let have = c.input.len();
        if conns[cid].link == Link::Down {
            // Connecting first puts its own requests (AUTH, SELECT) in
            // front of the output: before the splice point is taken.
            self.ensure_connecting(cid, now);
        }
        let Engine {
            pools,
            slots,
            conns,
            splices,
            ..
        } = self;
        let Some(c) = client_mut(slots, id) else {
            return false;
        };
        let pool = &mut pools[c.pool];
        let conn = &mut conns[cid];
        let seq = c.head_seq + c.pending.len() as u64;
        c.pending.push_back(Pending {
            waiting: 1,
            reply: OutQueue::default(),
            merge: None,
            close_after: false,
        });
        c.input.take_into(have, &mut conn.output);
        c.scanner.reset();
        let stats = &mut pool.servers[server].stats;
        stats.requests += 1;
        stats.request_bytes += total as u64;
        conn.inflight.push_back(Inflight {
            owner: Some((id, seq, 0)),
            deadline: timeout_of(&pool.config).map(|t| now + t),
            request: None,
            redirects: 0,
            for_router: false,
        });
        splices.uploads.push(Upload {
            client: id,
            conn: Some(cid),
            before: conn.output.len(),
            left: total - have,
        });
        splices.stats.frames += 1;
        self.after_queue(cid, now);
        true
    }

    /// Passthrough's counters.
    pub fn passthrough_stats(&self) -> PassthroughStats {
        self.splices.stats
    }

    /// The client's splice is done: its later output goes, requests held
    /// back are read, a closing client closes.
    fn after_splice(&mut self, id: ClientId, now: Instant) {
        let Some(c) = client_mut(&mut self.slots, id) else {
            return;
        };
        if !c.output.is_empty() {
            // Asked for even when asked before: that write stopped at
            // the splice point.
            c.dirty = true;
            self.actions.push_back(Action::WriteClient(id));
            return;
        }
        c.dirty = false;
        if c.closing && c.pending.is_empty() {
            self.remove_client(id, None);
            self.actions.push_back(Action::CloseClient(id));
        } else if !c.input.is_empty() {
            self.client_input(id, now);
        }
    }

    /// Whether the runtime should read server connection `cid` now: not
    /// while its next reply is a big bulk string whose client owes older
    /// replies first (it waits in the socket until it can pass through),
    /// nor while a splice reads it (`passthrough_from`). Requests reach
    /// every connection in the engine's one order, so a connection waits
    /// only for requests older than its own: no cycle. Pools whose router
    /// redirects (re-queueing old requests) never wait.
    pub fn server_wants_input(&self, cid: ServerConnId) -> bool {
        let Some(min) = self.splices.min else {
            return true;
        };
        if self.splices.of_source(cid).is_some() {
            return false;
        }
        let Some(conn) = self.conns.get(cid) else {
            return true;
        };
        // The cheap test first: most replies are small (`allowed` asks
        // the runtime about the server's address).
        let Some((head, payload)) = bulk_head(conn.input.pending(), min) else {
            return true;
        };
        if !allowed(&self.splices, &self.pools, &self.conns, cid)
            || self.pools[conn.pool].router.redirects()
        {
            return true;
        }
        if conn.input.len() >= head + payload + 2 {
            return true;
        }
        let Some((id, seq, _)) = conn.inflight.front().and_then(|e| e.owner) else {
            return true;
        };
        let Some(c) = self
            .slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.client.as_ref())
        else {
            return true;
        };
        let unsplit = c
            .pending
            .get(seq.saturating_sub(c.head_seq) as usize)
            .is_some_and(|p| p.merge.is_none());
        !(unsplit && seq > c.head_seq)
    }

    /// The client's oldest request became the head: when its server
    /// connection holds the start of a big reply to it, splices the rest.
    pub(super) fn splice_at_head(&mut self, id: ClientId) -> bool {
        let Some(now) = self.splices.now else {
            return false;
        };
        let Some(head) = client_mut(&mut self.slots, id).map(|c| c.head_seq) else {
            return false;
        };
        let waiting = self.conns.iter().position(|conn| {
            !conn.input.is_empty()
                && conn
                    .inflight
                    .front()
                    .and_then(|e| e.owner)
                    .is_some_and(|(o, seq, _)| o == id && seq == head)
        });
        waiting.is_some_and(|cid| self.splice_reply(cid, now).is_some())
    }

    /// Starts a splice of the reply at the front of `cid`'s input when it
    /// qualifies (see the module's doc); returns its client, whose ready
    /// replies the caller flushes.
    pub(super) fn splice_reply(&mut self, cid: ServerConnId, now: Instant) -> Option<ClientId> {
        let min = self.splices.min?;
        self.splices.now = Some(now);
        // The cheap test first: most replies are small (`allowed` asks
        // the runtime about the server's address).
        bulk_head(self.conns.get(cid)?.input.pending(), min)?;
        if !allowed(&self.splices, &self.pools, &self.conns, cid)
            || self.splices.of_source(cid).is_some()
        {
            return None;
        }
        let Engine {
            pools,
            slots,
            conns,
            splices,
            ..
        } = self;
        let conn = &mut conns[cid];
        if conn.link != Link::Up {
            return None;
        }
        let (head, payload) = bulk_head(conn.input.pending(), min)?;
        let total = head + payload + 2;
        let have = conn.input.len();
        if have >= total {
            return None;
        }
        let entry = conn.inflight.front()?;
        let (id, seq, _) = entry.owner?;
        if entry.for_router {
            return None;
        }
        let c = client_mut(slots, id)?;
        let pending = c.pending.front()?;
        if seq != c.head_seq
            || pending.merge.is_some()
            || pending.waiting == 0
            || !pending.reply.is_empty()
            || splices.of_client(id).is_some()
        {
            return None;
        }
        let pool = &mut pools[conn.pool];
        let verdict = pool.router.on_reply(
            conn.server,
            entry.redirects,
            &conn.input.pending()[..head],
            now,
        );
        if !matches!(verdict, Verdict::Forward) {
            return None;
        }
        conn.inflight.pop_front();
        let server = &mut pool.servers[conn.server];
        server.stats.responses += 1;
        server.stats.response_bytes += total as u64;
        server.failures = 0;
        conn.scanner.reset();
        conn.input.take_into(have, &mut c.output);
        if let Some(p) = c.pending.front_mut() {
            p.waiting = 0;
        }
        splices.active.push(Splice {
            source: cid,
            to: SpliceTo::Client(id),
            before: c.output.len(),
            left: total - have,
        });
        splices.stats.frames += 1;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::{big_last_argument, bulk_head, PassthroughStats, SpliceTo};
    use crate::config;
    use crate::proxy::{Action, ClientId, Engine, ServerConnId};

    /// An engine with passthrough from 16 bytes on, a client that sent
    /// `GET a` and `GET b` to the one server, written out; the server
    /// connection.
    fn engine_with_two_gets() -> (Engine, ClientId, ServerConnId) {
        let yaml =
            "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n";
        let mut engine = Engine::new(config::parse(yaml).unwrap(), Default::default()).unwrap();
        engine.enable_passthrough(16, |_| true);
        let id = engine.client_accepted(0).unwrap();
        let now = Instant::now();
        engine.client_data(id, b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n", now);
        engine.client_data(id, b"*2\r\n$3\r\nGET\r\n$1\r\nb\r\n", now);
        let mut conn = None;
        while let Some(a) = engine.poll_action() {
            if let Action::Connect { conn: c, .. } = a {
                engine.server_connected(c);
                conn = Some(c);
            }
        }
        let conn = conn.expect("a connection");
        let n = engine.server_output(conn).len();
        engine.server_wrote(conn, n);
        (engine, id, conn)
    }

    /// Writes every byte of the client's output up to its splice point.
    fn write_out(engine: &mut Engine, id: ClientId) -> Vec<u8> {
        let out = engine.client_output(id).to_vec();
        engine.client_wrote(id, out.len(), Instant::now());
        out
    }

    #[test]
    fn a_big_reply_passes_through_and_the_next_reply_follows_it() {
        let (mut engine, id, conn) = engine_with_two_gets();
        let now = Instant::now();
        // The head and 10 of 40 payload bytes arrived.
        engine.server_data(conn, b"$40\r\n0123456789", now);
        assert!(!engine.server_wants_input(conn));
        assert_eq!(
            engine.passthrough_from(conn),
            Some((SpliceTo::Client(id), 32))
        );
        assert_eq!(engine.passthrough_to(id), None, "its output first");
        assert_eq!(write_out(&mut engine, id), b"$40\r\n0123456789");
        assert_eq!(engine.passthrough_to(id), Some((conn, 32)));
        assert!(!engine.passthrough_moved(conn, 30, true, now));
        assert!(engine.passthrough_moved(conn, 2, false, now));
        assert!(engine.server_wants_input(conn));
        engine.server_data(conn, b"$1\r\nb\r\n", now);
        assert_eq!(write_out(&mut engine, id), b"$1\r\nb\r\n");
        assert_eq!(
            engine.passthrough_stats(),
            PassthroughStats {
                frames: 1,
                bytes: 32,
                zero_copy_bytes: 30,
                dropped_bytes: 0,
            }
        );
    }

    #[test]
    fn a_client_leaving_mid_reply_drains_it_and_a_failing_server_closes_the_client() {
        let (mut engine, id, conn) = engine_with_two_gets();
        let now = Instant::now();
        engine.server_data(conn, b"$40\r\n0123", now);
        engine.client_closed(id, false);
        assert_eq!(engine.passthrough_from(conn), Some((SpliceTo::Drop, 38)));
        assert_eq!(engine.passthrough_drains().collect::<Vec<_>>(), [conn]);
        assert!(engine.passthrough_moved(conn, 38, false, now));
        assert_eq!(engine.passthrough_stats().dropped_bytes, 38);
        assert!(engine.server_wants_input(conn));

        let (mut engine, id, conn) = engine_with_two_gets();
        engine.server_data(conn, b"$40\r\n0123", now);
        while engine.poll_action().is_some() {}
        engine.server_closed(conn, Some("reset"), now);
        assert_eq!(engine.passthrough_from(conn), None);
        let actions: Vec<Action> = std::iter::from_fn(|| engine.poll_action()).collect();
        assert!(actions.contains(&Action::CloseClient(id)), "{actions:?}");
    }

    #[test]
    fn without_passthrough_a_big_reply_is_buffered_as_before() {
        let (mut engine, id, conn) = engine_with_two_gets();
        engine.enable_passthrough(16, |_| false);
        let now = Instant::now();
        engine.server_data(conn, b"$40\r\n0123456789", now);
        assert_eq!(engine.passthrough_from(conn), None);
        assert!(engine.server_wants_input(conn));
        engine.server_data(conn, b"012345678901234567890123456789\r\n", now);
        assert_eq!(write_out(&mut engine, id).len(), 5 + 40 + 2);
    }

    #[test]
    fn a_big_value_uploads_and_the_next_request_follows_it() {
        let (mut engine, id, conn) = engine_with_two_gets();
        let now = Instant::now();
        engine.server_data(conn, b"$1\r\na\r\n$1\r\nb\r\n", now);
        write_out(&mut engine, id);
        // A SET whose 40-byte value has 4 bytes here, then a GET.
        let head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$40\r\n0123";
        engine.client_data(id, head, now);
        assert_eq!(engine.upload_from(id), Some((Some(conn), 38)));
        assert!(!engine.client_wants_input(id));
        assert_eq!(engine.upload_to(conn), None, "the head first");
        assert_eq!(engine.server_output(conn), head);
        engine.server_wrote(conn, head.len());
        assert_eq!(engine.upload_to(conn), Some((id, 38)));
        assert!(engine.upload_moved(id, 38, true));
        assert!(engine.client_wants_input(id));
        engine.client_data(id, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", now);
        assert_eq!(
            engine.server_output(conn),
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
        assert_eq!(engine.passthrough_stats().zero_copy_bytes, 38);

        // A client leaving mid-upload fails the connection it went to.
        let (mut engine, id, conn) = engine_with_two_gets();
        engine.server_data(conn, b"$1\r\na\r\n$1\r\nb\r\n", now);
        write_out(&mut engine, id);
        engine.client_data(id, head, now);
        while engine.poll_action().is_some() {}
        engine.client_closed(id, true);
        let actions: Vec<Action> = std::iter::from_fn(|| engine.poll_action()).collect();
        assert!(actions.contains(&Action::CloseServer(conn)), "{actions:?}");
        assert_eq!(engine.upload_from(id), None);
    }

    #[test]
    fn a_big_last_argument_is_found_only_when_not_all_here() {
        let set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20\r\n0123";
        assert_eq!(big_last_argument(set, 16), Some((20, 5, 20)));
        assert_eq!(big_last_argument(set, 21), None);
        assert_eq!(big_last_argument(b"*3\r\n$3\r\nSET\r\n$1\r\nk", 1), None);
        assert_eq!(big_last_argument(b"*1\r\n$3\r\nSE", 1), Some((4, 4, 3)));
        assert_eq!(big_last_argument(b"*2\r\n$3\r\nSETx\r\n$9\r\n", 1), None);
        assert_eq!(big_last_argument(b"$3\r\nabc", 1), None);
    }

    #[test]
    fn a_bulk_head_is_found_only_when_big_and_well_formed() {
        assert_eq!(bulk_head(b"$70000\r\nabc", 65536), Some((8, 70000)));
        assert_eq!(bulk_head(b"$70000\r\n", 80000), None);
        assert_eq!(bulk_head(b"$-1\r\n", 1), None);
        assert_eq!(bulk_head(b"$\r\n", 0), None);
        assert_eq!(bulk_head(b"$12x4\r\n", 1), None);
        assert_eq!(bulk_head(b"$123", 1), None);
        assert_eq!(bulk_head(b"+OK\r\n", 1), None);
        assert_eq!(bulk_head(b"$99999999999999999999999\r\n", 1), None);
    }
}
