//! Passthrough of big values: the engine names the bytes, the runtime
//! moves them.
//!
//! A *splice* moves a frame's remainder from one socket to another
//! without the engine holding it, one way or the other:
//!
//! - a reply: when a server's next reply is a bulk string of at least the
//!   runtime's threshold, answers the oldest request of its client (a
//!   request forwarded whole to this one server, not a fragment of a
//!   split one), and only its head and first bytes have arrived, the
//!   engine queues those for the client and leaves the rest of the frame
//!   in the server connection's socket: a splice from that connection to
//!   the client;
//! - an upload: when a request's last argument is a big bulk string not
//!   all received and the request goes whole to one server (a SET of a
//!   big value), what arrived is queued for its server connection and the
//!   rest is left in the client's socket: a splice from the client to
//!   that connection. An MSET split across servers uploads its last value
//!   the same way, in the fragment of that value's key (which ends with
//!   it); its other fragments are held back with the splice and queued
//!   once it is through, so that a client leaving mid-value leaves no
//!   part of its request applied.
//!
//! Either way the destination's output stops at the splice point (its
//! output shows only the bytes before it); once they are written the
//! splice has its turn ([`Engine::splice_into`]), and the runtime moves
//! the frame's remaining bytes from the source's socket to the
//! destination's however it can (on tpa's stack: the received packet
//! buffers themselves), telling the engine with [`Engine::splice_moved`].
//! Meanwhile the source is read for nothing else
//! ([`Engine::splice_from`]); once the frame's last byte moved, it is
//! read as usual again, and the destination's later output follows.
//!
//! An end that goes away mid-frame: a destination leaving turns the
//! splice into a drain (the frame's remaining bytes are read and
//! dropped, [`SpliceEnd::Drop`]): a server connection, shared with other
//! clients, carries on after a reply its client left; a client whose
//! server connection failed mid-upload is read on past its request. A
//! source leaving ends the splice and cuts the destination's frame short:
//! a client whose reply's server failed is closed (it cannot be answered
//! in order any more); a server connection whose uploading client left
//! is failed (it holds half a request).
//!
//! Only a runtime that calls [`Engine::enable_passthrough`] (tpa's) sees
//! splices, and only on the connections it allows; the kernel runtime
//! moves big frames as their allocation instead (see `buffer`).

use std::time::Instant;

use super::super::buffer::OutQueue;
use super::super::request::{self, MergeKind, Plan, PlanContext};
use super::super::router::Verdict;
use super::super::session::{ClientId, Link, Pending, ServerConn};
use super::{
    client_mut, decide, merging, pick_conn, queue_fragment, Action, Decision, Engine, PoolState,
    ServerConnId,
};
use crate::config::ServerAddress;

/// One end of a splice: the socket its bytes come from or go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpliceEnd {
    /// A client's socket.
    Client(ClientId),
    /// A server connection's socket.
    Server(ServerConnId),
    /// Nowhere (a destination only): it left mid-frame; the bytes are
    /// read and dropped.
    Drop,
}

/// Passthrough's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassthroughStats {
    /// Big values (replies and requests) whose remainder was spliced.
    pub frames: u64,
    /// Bytes moved from one socket to the other by splices.
    pub bytes: u64,
    /// Of those, bytes moved as the received buffers themselves.
    pub zero_copy_bytes: u64,
    /// Bytes read and dropped because their destination left mid-frame.
    pub dropped_bytes: u64,
}

/// One frame's remainder, from one socket to another.
#[derive(Debug)]
struct Splice {
    from: SpliceEnd,
    to: SpliceEnd,
    /// The destination's output bytes before the splice point.
    before: usize,
    /// The frame's bytes still in the source.
    left: usize,
    /// Requests queued once the frame is through (an upload's).
    then: Vec<Held>,
}

/// A fragment of a split request held back until its big value's upload
/// is through: a client leaving mid-value leaves no part of its request
/// applied.
#[derive(Debug)]
struct Held {
    server: usize,
    /// The client, the request's sequence number, the fragment's index.
    owner: (ClientId, u64, u32),
    bytes: Vec<u8>,
}

/// A request's last argument, empty: planning the request with it in
/// place of a big value not all here tells where the request goes.
const PLACEHOLDER: &[u8] = b"$0\r\n\r\n";

/// Every splice in progress and the settings (the engine's part).
#[derive(Debug, Default)]
pub(super) struct Splices {
    /// The least bulk payload spliced; `None`: off.
    min: Option<usize>,
    /// Whether the runtime can splice from or to a server at this
    /// address (its socket hands over received buffers).
    reachable: Option<fn(&ServerAddress) -> bool>,
    active: Vec<Splice>,
    stats: PassthroughStats,
    /// The time of the last input that could start a splice.
    now: Option<Instant>,
}

impl Splices {
    fn of_source(&self, from: SpliceEnd) -> Option<usize> {
        self.active.iter().position(|s| s.from == from)
    }

    fn of_destination(&self, to: SpliceEnd) -> Option<usize> {
        self.active.iter().position(|s| s.to == to)
    }

    /// The destination's output bytes before its splice point, if it has
    /// one.
    pub(super) fn before(&self, to: SpliceEnd) -> Option<usize> {
        self.of_destination(to).map(|i| self.active[i].before)
    }

    /// `n` bytes of the destination's output were written.
    pub(super) fn wrote(&mut self, to: SpliceEnd, n: usize) {
        if let Some(i) = self.of_destination(to) {
            let s = &mut self.active[i];
            s.before = s.before.saturating_sub(n);
        }
    }

    /// Whether the client still waits for a splice's bytes.
    pub(super) fn owes(&self, id: ClientId) -> bool {
        self.of_destination(SpliceEnd::Client(id)).is_some()
    }

    /// Whether the client's socket carries an upload (read only for it).
    pub(super) fn uploading(&self, id: ClientId) -> bool {
        self.of_source(SpliceEnd::Client(id)).is_some()
    }

    /// The time of the last input that could start a splice.
    pub(super) fn now(&self) -> Option<Instant> {
        self.now
    }

    /// `end` left (a client) or failed (a server connection): the splice
    /// into it drains; the splice from it ends, and its destination (cut
    /// short mid-frame) is returned, to be closed or failed.
    pub(super) fn gone(&mut self, end: SpliceEnd) -> Option<SpliceEnd> {
        if let Some(i) = self.of_destination(end) {
            self.active[i].to = SpliceEnd::Drop;
        }
        let i = self.of_source(end)?;
        Some(self.active.swap_remove(i).to).filter(|to| *to != SpliceEnd::Drop)
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
    /// Turns passthrough on (tpa's runtime): big values of at least
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

    /// The splice reading from `from`: where its bytes go and how many
    /// are left. While there is one, the runtime reads `from` only for it.
    pub fn splice_from(&self, from: SpliceEnd) -> Option<(SpliceEnd, usize)> {
        let s = &self.splices.active[self.splices.of_source(from)?];
        Some((s.to, s.left))
    }

    /// The splice into `to` when its turn came (every output byte before
    /// it written): its source and the bytes left.
    pub fn splice_into(&self, to: SpliceEnd) -> Option<(SpliceEnd, usize)> {
        let s = &self.splices.active[self.splices.of_destination(to)?];
        (s.before == 0).then_some((s.from, s.left))
    }

    /// The sources of the splices that drain (their destination left):
    /// the runtime reads them (no event may come for bytes already
    /// received).
    pub fn splice_drains(&self) -> impl Iterator<Item = SpliceEnd> + '_ {
        self.splices
            .active
            .iter()
            .filter(|s| s.to == SpliceEnd::Drop)
            .map(|s| s.from)
    }

    /// `n` bytes of the splice from `from` were moved (`zero_copy`: as the
    /// received buffers) or dropped. True once the frame's last byte went:
    /// `from` is then read as usual again (what follows the frame in the
    /// last buffer goes to its buffer, `server_buffer` or `client_buffer`,
    /// and its input call), and the destination's later output follows.
    pub fn splice_moved(
        &mut self,
        from: SpliceEnd,
        n: usize,
        zero_copy: bool,
        now: Instant,
    ) -> bool {
        let Some(i) = self.splices.of_source(from) else {
            return true;
        };
        let splices = &mut self.splices;
        let s = &mut splices.active[i];
        let n = n.min(s.left);
        s.left -= n;
        if s.to == SpliceEnd::Drop {
            splices.stats.dropped_bytes += n as u64;
        } else {
            splices.stats.bytes += n as u64;
            if zero_copy {
                splices.stats.zero_copy_bytes += n as u64;
            }
        }
        if s.left > 0 {
            return false;
        }
        let done = splices.active.swap_remove(i);
        match done.to {
            SpliceEnd::Client(id) => self.after_reply(id, now),
            SpliceEnd::Server(cid) => self.after_upload(cid),
            SpliceEnd::Drop => {}
        }
        // Drained too: the request's other fragments are answered, so is
        // the client.
        self.queue_held(done.then, now);
        true
    }

    /// The upload into `cid` is done: the requests queued behind its
    /// splice point go.
    fn after_upload(&mut self, cid: ServerConnId) {
        let conn = &mut self.conns[cid];
        if conn.output.is_empty() {
            conn.dirty = false;
        } else {
            // Later requests wait behind the splice point.
            conn.dirty = true;
            self.actions.push_back(Action::WriteServer(cid));
        }
    }

    /// Starts an upload of the request at the front of the client's input
    /// when its last argument is big and not all here, and the request
    /// goes whole to one server (a SET of a big value) or is an MSET (the
    /// value's fragment uploads, the others are held back until it is
    /// through); true if it did.
    pub(super) fn splice_request(&mut self, id: ClientId, now: Instant) -> bool {
        let Some(min) = self.splices.min else {
            return false;
        };
        self.splices.now = Some(now);
        self.upload(id, min, now)
    }

    /// `splice_request` with passthrough on (out of the way of every
    /// request without it).
    #[inline(never)]
    fn upload(&mut self, id: ClientId, min: usize, now: Instant) -> bool {
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
        if c.closing || splices.uploading(id) || pools[c.pool].router.redirects() {
            return false;
        }
        let Some((at, value_head, payload)) = big_last_argument(c.input.pending(), min) else {
            return false;
        };
        let total = at + value_head + payload + 2;
        let have = c.input.len();
        // The request with its last argument empty says where it goes.
        let mut probe = c.input.pending()[..at].to_vec();
        probe.extend_from_slice(PLACEHOLDER);
        let pool = &mut pools[c.pool];
        let ctx = PlanContext {
            password: pool.config.redis_auth.as_deref(),
            authed: c.authed,
            db: pool.config.redis_db,
        };
        let plan = request::plan(&probe, ctx);
        let uploads = match &plan {
            // Not when the last argument is a key.
            Plan::Forward {
                keys,
                encoded: None,
            } => !keys.iter().any(|k| k.is_empty()),
            // MSET's last argument is a value.
            Plan::Split {
                merge: MergeKind::AllOk,
                ..
            } => true,
            _ => false,
        };
        if !uploads {
            return false;
        }
        // `decide` changes `authed` for AUTH only.
        let mut authed = c.authed;
        let (server, split) = match decide(plan, pool, &mut authed, c.local) {
            Decision::Forward(server, _) => (server, None),
            Decision::Split(MergeKind::AllOk, nkeys, fragments, unrouted, None)
                if unrouted.is_empty() =>
            {
                // The value is the last key's: last in its fragment.
                let last = (nkeys as u32).checked_sub(1);
                let Some(f) = fragments
                    .iter()
                    .position(|(_, k, _)| k.last().copied() == last)
                else {
                    return false;
                };
                if fragments.iter().any(|(s, ..)| *s >= pool.servers.len()) {
                    return false;
                }
                (fragments[f].0, Some((nkeys, fragments, f)))
            }
            _ => return false,
        };
        if server >= pool.servers.len() {
            return false;
        }
        let cid = pick_conn(pool, server, id);
        if !allowed(splices, pools, conns, cid) {
            return false;
        }
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
        let seq = c.head_seq + c.pending.len() as u64;
        // The request's bytes from `skip` on that are here go after
        // `front`: all of them (a SET goes as it came), or the value's
        // head and bytes after its fragment's head (an MSET).
        let (fragment, front, skip, then) = match split {
            None => {
                c.pending.push_back(Pending {
                    waiting: 1,
                    reply: OutQueue::default(),
                    merge: None,
                    close_after: false,
                    ends_read: false,
                });
                (0, Vec::new(), 0, Vec::new())
            }
            Some((nkeys, mut fragments, f)) => {
                let n = fragments.len();
                let mut merging = merging(MergeKind::AllOk, nkeys, 0, &[], None);
                merging.fragment_keys = fragments
                    .iter_mut()
                    .map(|(_, keys, _)| std::mem::take(keys))
                    .collect();
                pool.stats.fragments += n as u64;
                let reply = c.reply_queue();
                c.pending.push_back(Pending {
                    waiting: n as u32,
                    reply,
                    merge: Some(merging),
                    close_after: false,
                    ends_read: false,
                });
                let mut front = std::mem::take(&mut fragments[f].2);
                front.truncate(front.len() - PLACEHOLDER.len());
                let then = fragments
                    .into_iter()
                    .enumerate()
                    .filter(|&(i, _)| i != f)
                    .map(|(i, (server, _, bytes))| Held {
                        server,
                        owner: (id, seq, i as u32),
                        bytes,
                    })
                    .collect();
                (f as u32, front, at, then)
            }
        };
        queue_fragment(pool, conns, server, (id, seq, fragment), &front, false, now);
        pool.servers[server].stats.request_bytes += (total - skip) as u64;
        let conn = &mut conns[cid];
        c.input.consume(skip);
        c.input.take_into(have - skip, &mut conn.output);
        c.scanner.reset();
        splices.active.push(Splice {
            from: SpliceEnd::Client(id),
            to: SpliceEnd::Server(cid),
            before: conn.output.len(),
            left: total - have,
            then,
        });
        splices.stats.frames += 1;
        self.after_queue(cid, now);
        true
    }

    /// Queues the requests a splice held back until it was through (an
    /// MSET's fragments for the servers its big value does not go to).
    fn queue_held(&mut self, held: Vec<Held>, now: Instant) {
        let Some(id) = held.first().map(|h| h.owner.0) else {
            return;
        };
        let Some(p) = client_mut(&mut self.slots, id).map(|c| c.pool) else {
            return;
        };
        let (pool, conns) = (&mut self.pools[p], &mut self.conns);
        let touched: Vec<ServerConnId> = held
            .iter()
            .map(|h| queue_fragment(pool, conns, h.server, h.owner, &h.bytes, false, now))
            .collect();
        for cid in touched {
            self.after_queue(cid, now);
        }
    }

    /// Passthrough's counters.
    pub fn passthrough_stats(&self) -> PassthroughStats {
        self.splices.stats
    }

    /// The reply spliced to the client is done: its later output goes,
    /// requests held back are read, a closing client closes.
    fn after_reply(&mut self, id: ClientId, now: Instant) {
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
    /// nor while a splice reads it (`splice_from`). Requests reach
    /// every connection in the engine's one order, so a connection waits
    /// only for requests older than its own: no cycle. Pools whose router
    /// redirects (re-queueing old requests) never wait.
    pub fn server_wants_input(&self, cid: ServerConnId) -> bool {
        let Some(min) = self.splices.min else {
            return true;
        };
        if self.splices.of_source(SpliceEnd::Server(cid)).is_some() {
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
            || self.splices.of_source(SpliceEnd::Server(cid)).is_some()
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
            || splices.owes(id)
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
            from: SpliceEnd::Server(cid),
            to: SpliceEnd::Client(id),
            before: c.output.len(),
            left: total - have,
            then: Vec::new(),
        });
        splices.stats.frames += 1;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::{big_last_argument, bulk_head, PassthroughStats, SpliceEnd};
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
            engine.splice_from(SpliceEnd::Server(conn)),
            Some((SpliceEnd::Client(id), 32))
        );
        assert_eq!(
            engine.splice_into(SpliceEnd::Client(id)),
            None,
            "its output first"
        );
        assert_eq!(write_out(&mut engine, id), b"$40\r\n0123456789");
        assert_eq!(
            engine.splice_into(SpliceEnd::Client(id)),
            Some((SpliceEnd::Server(conn), 32))
        );
        assert!(!engine.splice_moved(SpliceEnd::Server(conn), 30, true, now));
        assert!(engine.splice_moved(SpliceEnd::Server(conn), 2, false, now));
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
        assert_eq!(
            engine.splice_from(SpliceEnd::Server(conn)),
            Some((SpliceEnd::Drop, 38))
        );
        assert_eq!(
            engine.splice_drains().collect::<Vec<_>>(),
            [SpliceEnd::Server(conn)]
        );
        assert!(engine.splice_moved(SpliceEnd::Server(conn), 38, false, now));
        assert_eq!(engine.passthrough_stats().dropped_bytes, 38);
        assert!(engine.server_wants_input(conn));

        let (mut engine, id, conn) = engine_with_two_gets();
        engine.server_data(conn, b"$40\r\n0123", now);
        while engine.poll_action().is_some() {}
        engine.server_closed(conn, Some("reset"), now);
        assert_eq!(engine.splice_from(SpliceEnd::Server(conn)), None);
        let actions: Vec<Action> = std::iter::from_fn(|| engine.poll_action()).collect();
        assert!(actions.contains(&Action::CloseClient(id)), "{actions:?}");
    }

    #[test]
    fn without_passthrough_a_big_reply_is_buffered_as_before() {
        let (mut engine, id, conn) = engine_with_two_gets();
        engine.enable_passthrough(16, |_| false);
        let now = Instant::now();
        engine.server_data(conn, b"$40\r\n0123456789", now);
        assert_eq!(engine.splice_from(SpliceEnd::Server(conn)), None);
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
        assert_eq!(
            engine.splice_from(SpliceEnd::Client(id)),
            Some((SpliceEnd::Server(conn), 38))
        );
        assert!(!engine.client_wants_input(id));
        assert_eq!(
            engine.splice_into(SpliceEnd::Server(conn)),
            None,
            "the head first"
        );
        assert_eq!(engine.server_output(conn), head);
        engine.server_wrote(conn, head.len());
        assert_eq!(
            engine.splice_into(SpliceEnd::Server(conn)),
            Some((SpliceEnd::Client(id), 38))
        );
        assert!(engine.splice_moved(SpliceEnd::Client(id), 38, true, now));
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
        assert_eq!(engine.splice_from(SpliceEnd::Client(id)), None);
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
