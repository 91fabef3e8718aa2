//! The state of one client connection and of one server connection.

use std::collections::VecDeque;
use std::time::Instant;

use super::buffer::{InBuf, OutQueue};
use super::request::MergeKind;
use crate::resp::Scanner;

/// A client, as the runtime names it: a slot and its generation (a reply
/// for a client that left and whose slot was reused is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId {
    /// The slot.
    pub index: u32,
    /// The slot's generation.
    pub generation: u32,
}

/// One request of a client, waiting for its reply (or replies, if split).
#[derive(Debug)]
pub struct Pending {
    /// Fragments still owed by servers.
    pub waiting: u32,
    /// The reply so far: the whole reply when not split.
    pub reply: OutQueue,
    /// For split requests: how the fragments merge.
    pub merge: Option<Merging>,
    /// Close the client once this reply is out (QUIT).
    pub close_after: bool,
    /// The last request of a read (see `Client::holds_output`).
    pub ends_read: bool,
}

/// A split request's merge in progress.
#[derive(Debug)]
pub struct Merging {
    /// How replies merge.
    pub kind: MergeKind,
    /// Per fragment, the request's key indices it carries.
    pub fragment_keys: Vec<Vec<u32>>,
    /// MGET: each key's element (its wire form).
    pub values: Vec<Vec<u8>>,
    /// Sum of integer replies.
    pub sum: i64,
    /// The first error reply seen.
    pub error: Option<Vec<u8>>,
    /// `MergeKind::Info`: the proxy's own sections, and whether the
    /// keyspace section follows.
    pub info: Option<(String, bool)>,
}

/// One client connection.
#[derive(Debug)]
pub struct Client {
    /// Its pool.
    pub pool: usize,
    /// Bytes read, not yet a whole request.
    pub input: InBuf,
    /// Where the next request ends.
    pub scanner: Scanner,
    /// Replies ready to write, in request order.
    pub output: OutQueue,
    /// Requests in arrival order, oldest first; `head_seq` numbers the first.
    pub pending: VecDeque<Pending>,
    /// The sequence number of `pending[0]`.
    pub head_seq: u64,
    /// Whether it sent the right AUTH (or none is needed).
    pub authed: bool,
    /// No more requests are read: close once the replies are out.
    pub closing: bool,
    /// Whether the runtime was told there is output.
    pub dirty: bool,
    /// The address the client reached the proxy at, if TCP.
    pub local: Option<std::net::SocketAddr>,
    /// Emptied reply queues of answered requests, reused by the next ones
    /// (at most `SPARE_REPLIES`).
    pub spare_replies: Vec<OutQueue>,
    /// Whether the output ends with the reply to a read's last request
    /// (or holds no reply): replies of requests that arrived together are
    /// written together.
    pub at_read_end: bool,
}

/// Reply queues a client keeps for reuse: enough for a pipeline's worth of
/// replies arriving out of order.
pub const SPARE_REPLIES: usize = 32;

/// The most capacity a kept reply queue's spare chunk may have (so the
/// spares of one client hold at most 128 KiB).
pub const SPARE_REPLY_BYTES: usize = 4096;

/// Output held back for the rest of its read's replies is written anyway
/// once it reaches this many bytes.
pub const HOLD_BYTES: usize = 8192;

impl Client {
    /// Whether the output waits for more replies of the read its last
    /// reply belongs to: it is written whole once that read's last reply
    /// joins it (one segment and one wake-up for the client instead of one
    /// per backend that answered), or once it reaches `HOLD_BYTES`.
    #[inline]
    pub fn holds_output(&self) -> bool {
        !self.at_read_end && !self.closing && self.output.len() < HOLD_BYTES
    }

    /// An empty reply queue for a new request, reused when one is spare.
    pub fn reply_queue(&mut self) -> OutQueue {
        self.spare_replies.pop().unwrap_or_default()
    }

    /// Moves a request's reply to the output and keeps its emptied queue.
    #[inline]
    pub fn output_reply(&mut self, mut reply: OutQueue) {
        self.output.append_from(&mut reply);
        if self.spare_replies.len() < SPARE_REPLIES {
            reply.limit_spare(SPARE_REPLY_BYTES);
            self.spare_replies.push(reply);
        }
    }
}

/// A server connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// No socket.
    Down,
    /// Connecting (requests queue meanwhile).
    Connecting,
    /// Connected.
    Up,
}

/// A request sent to a server and not answered yet.
#[derive(Debug, Clone)]
pub struct Inflight {
    /// Whose request, or `None` for the proxy's own (AUTH, SELECT).
    pub owner: Option<(ClientId, u64, u32)>,
    /// When it times out.
    pub deadline: Option<Instant>,
    /// A copy of the request, kept when the router may redirect it.
    pub request: Option<Vec<u8>>,
    /// How many times it was redirected.
    pub redirects: u8,
    /// The router's own request (its reply goes to the router).
    pub for_router: bool,
}

/// One connection to a server.
#[derive(Debug)]
pub struct ServerConn {
    /// Its pool.
    pub pool: usize,
    /// Its server's index in the pool.
    pub server: usize,
    /// The link state.
    pub link: Link,
    /// Bytes read, not yet a whole reply.
    pub input: InBuf,
    /// Where the next reply ends.
    pub scanner: Scanner,
    /// Requests waiting to be written.
    pub output: OutQueue,
    /// Requests written or queued, oldest first: replies come in this order.
    pub inflight: VecDeque<Inflight>,
    /// Whether the runtime was told there is output.
    pub dirty: bool,
}
