//! What to do with one client request: answer it here, forward it whole to
//! one server, or split it per server (and how to merge the replies).

use std::ops::Deref;

use crate::command::{self, Route};
use crate::resp::{self, Frame, Parsed};

/// Arguments held without a heap allocation (GET, SET with options, ...).
const INLINE_ARGS: usize = 8;

/// Byte strings borrowed from a request (its arguments, or its keys): up to
/// `INLINE_ARGS` inline, more on the heap.
#[derive(Debug, Clone, PartialEq)]
pub enum Args<'a> {
    /// The first `len` of `items`.
    Inline {
        /// How many are used.
        len: usize,
        /// The byte strings.
        items: [&'a [u8]; INLINE_ARGS],
    },
    /// More than fit inline.
    Heap(Vec<&'a [u8]>),
}

impl<'a> Args<'a> {
    /// None yet.
    pub fn new() -> Args<'a> {
        Args::Inline {
            len: 0,
            items: [&[]; INLINE_ARGS],
        }
    }

    /// Appends `arg`.
    pub fn push(&mut self, arg: &'a [u8]) {
        match self {
            Args::Inline { len, items } if *len < INLINE_ARGS => {
                items[*len] = arg;
                *len += 1;
            }
            Args::Inline { len, items } => {
                let mut heap = Vec::with_capacity(2 * INLINE_ARGS);
                heap.extend_from_slice(&items[..*len]);
                heap.push(arg);
                *self = Args::Heap(heap);
            }
            Args::Heap(heap) => heap.push(arg),
        }
    }
}

impl Default for Args<'_> {
    fn default() -> Self {
        Args::new()
    }
}

impl<'a> Deref for Args<'a> {
    type Target = [&'a [u8]];

    fn deref(&self) -> &[&'a [u8]] {
        match self {
            Args::Inline { len, items } => &items[..*len],
            Args::Heap(heap) => heap,
        }
    }
}

impl<'a> FromIterator<&'a [u8]> for Args<'a> {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Args<'a> {
        let mut args = Args::new();
        for arg in iter {
            args.push(arg);
        }
        args
    }
}

/// How the replies of a split request become the client's one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// MGET: one array, each key's value in the request's key order.
    Values,
    /// DEL, UNLINK, EXISTS, TOUCH: the sum of the integer replies.
    Sum,
    /// MSET: `+OK` when every server said so.
    AllOk,
    /// Cluster mode's INFO: the proxy's own sections, then the masters'
    /// keyspace sections summed (`crate::cluster::info_reply`).
    Info,
}

/// The decision for one request.
#[derive(Debug, PartialEq)]
pub enum Plan<'a> {
    /// Answered by the proxy with these bytes.
    Reply(Vec<u8>),
    /// Answered, then the client is closed (QUIT, bad input).
    ReplyAndClose(Vec<u8>),
    /// AUTH with this password.
    Auth(&'a [u8]),
    /// Forwarded whole to the server of `key` (all its keys hash alike);
    /// `encoded` is the request re-encoded when it came inline.
    Forward {
        /// Its keys (at least one), in order.
        keys: Args<'a>,
        /// The RESP form, when the request was inline.
        encoded: Option<Vec<u8>>,
    },
    /// Split per key; `step` is 2 for key-value pairs (MSET).
    Split {
        /// The command name as the client wrote it.
        name: &'a [u8],
        /// The arguments; keys at `first`, `first + step`, ...
        args: Args<'a>,
        /// Key-value pairs (2) or keys (1).
        step: usize,
        /// How replies merge.
        merge: MergeKind,
    },
    /// Answered by the proxy: by the router if it answers this command
    /// (cluster mode's CLUSTER ...), else with `fallback`.
    RouterAnswer {
        /// The arguments.
        args: Args<'a>,
        /// The reply when the router does not answer.
        fallback: Vec<u8>,
    },
    /// Answered by the router asking several servers (cluster mode's
    /// DBSIZE and INFO over the masters), else with `fallback`.
    Broadcast {
        /// The arguments.
        args: Args<'a>,
        /// The reply when the router does not answer it.
        fallback: Vec<u8>,
    },
    /// Nothing to do (an empty multibulk, as redis ignores it).
    Ignore,
}

/// An error reply's wire form.
pub fn error_reply(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(b'-');
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends RESP's `<kind><n>\r\n` (an array's or a bulk string's header,
/// an integer reply) to `out`, without formatting machinery.
pub fn push_header(out: &mut Vec<u8>, kind: u8, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.push(kind);
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

fn push_bulk(out: &mut Vec<u8>, data: &[u8]) {
    push_header(out, b'$', data.len() as i64);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn bulk(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    push_bulk(&mut out, data);
    out
}

/// A request's arguments as byte strings (RESP array or inline).
fn arguments<'a>(frame: &Frame<'a>) -> Option<Args<'a>> {
    match frame {
        Frame::Inline(words) => Some(words.iter().copied().collect()),
        Frame::Array(Some(items)) => items
            .iter()
            .map(|f| match f {
                Frame::Bulk(Some(b)) => Some(*b),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// The RESP form of `args`.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let size: usize = args.iter().map(|a| a.len() + 16).sum();
    let mut out = Vec::with_capacity(size + 16);
    push_header(&mut out, b'*', args.len() as i64);
    for a in args {
        push_bulk(&mut out, a);
    }
    out
}

/// What the proxy knows of the client and pool when it plans.
#[derive(Debug, Clone, Copy)]
pub struct PlanContext<'p> {
    /// The pool's `redis_auth`.
    pub password: Option<&'p str>,
    /// Whether the client has authenticated.
    pub authed: bool,
    /// The pool's `redis_db`.
    pub db: u32,
}

/// The number after the type byte `kind` at `at` (at most 19 digits, so
/// no overflow), and where its line ends; `None` for anything else.
fn header(bytes: &[u8], at: usize, kind: u8) -> Option<(usize, usize)> {
    if *bytes.get(at)? != kind {
        return None;
    }
    let mut n: u64 = 0;
    let mut i = at + 1;
    loop {
        match *bytes.get(i)? {
            d @ b'0'..=b'9' if i - at <= 19 => n = n * 10 + u64::from(d - b'0'),
            b'\r' => break,
            _ => return None,
        }
        i += 1;
    }
    if i == at + 1 || *bytes.get(i + 1)? != b'\n' {
        return None;
    }
    Some((usize::try_from(n).ok()?, i + 2))
}

/// The arguments of a request that is an array of bulk strings (nearly
/// every request), read in one pass without building frames; `None` for
/// anything else, which the full parser then reads.
fn bulk_arguments(bytes: &[u8]) -> Option<Args<'_>> {
    let (count, mut at) = header(bytes, 0, b'*')?;
    let mut args = Args::new();
    for _ in 0..count {
        let (len, data) = header(bytes, at, b'$')?;
        let end = data.checked_add(len)?;
        if bytes.get(end..end.checked_add(2)?)? != b"\r\n" {
            return None;
        }
        args.push(&bytes[data..end]);
        at = end + 2;
    }
    Some(args)
}

/// Plans one request; `bytes` is exactly its frame (as the scanner found
/// it).
pub fn plan<'a>(bytes: &'a [u8], ctx: PlanContext<'_>) -> Plan<'a> {
    if let Some(args) = bulk_arguments(bytes) {
        return plan_arguments(args, false, ctx);
    }
    match resp::parse(bytes, &resp::Limits::default(), true) {
        Ok(Parsed::Frame(frame, _)) => match arguments(&frame) {
            Some(args) => plan_arguments(args, matches!(frame, Frame::Inline(_)), ctx),
            None => Plan::ReplyAndClose(error_reply(
                "ERR Protocol error: a request is an array of bulk strings",
            )),
        },
        Ok(Parsed::NeedMore) => {
            Plan::ReplyAndClose(error_reply("ERR Protocol error: incomplete request"))
        }
        Err(e) => Plan::ReplyAndClose(error_reply(&format!("ERR {e}"))),
    }
}

/// Plans a request with these arguments (`inline`: it came as an inline
/// command, so it is re-encoded to be forwarded).
fn plan_arguments<'a>(args: Args<'a>, inline: bool, ctx: PlanContext<'_>) -> Plan<'a> {
    let Some(&name) = args.first() else {
        return Plan::Ignore;
    };
    let lower = || String::from_utf8_lossy(name).to_lowercase();
    let Some(cmd) = command::lookup(name) else {
        return Plan::Reply(error_reply(&format!(
            "ERR unknown command '{}' (or not supported by the proxy)",
            lower()
        )));
    };
    if !cmd.arity_ok(args.len()) {
        return Plan::Reply(error_reply(&format!(
            "ERR wrong number of arguments for '{}' command",
            lower()
        )));
    }
    if ctx.password.is_some() && !ctx.authed && cmd.name != "AUTH" && cmd.name != "QUIT" {
        return Plan::Reply(error_reply("NOAUTH Authentication required"));
    }
    match cmd.route {
        Route::Unsupported(why) => match cmd.name {
            "DBSIZE" | "INFO" => Plan::Broadcast {
                args,
                fallback: error_reply(why.message()),
            },
            _ => Plan::Reply(error_reply(why.message())),
        },
        Route::Local => match (cmd.name, local(cmd.name, &args, ctx)) {
            ("CLUSTER" | "READONLY" | "READWRITE" | "ASKING", Plan::Reply(fallback)) => {
                Plan::RouterAnswer { args, fallback }
            }
            (_, plan) => plan,
        },
        Route::Keyed => {
            let mut keys = Args::new();
            if command::for_each_key(cmd, &args, |p| keys.push(args[p])).is_err() {
                return Plan::Reply(error_reply(&format!(
                    "ERR wrong number of arguments for '{}' command",
                    lower()
                )));
            }
            if keys.is_empty() {
                return Plan::Reply(error_reply(&format!(
                    "ERR '{}' without a key cannot be routed by the proxy",
                    lower()
                )));
            }
            Plan::Forward {
                keys,
                encoded: inline.then(|| encode_command(&args)),
            }
        }
        Route::Split => {
            let (step, merge) = match cmd.name {
                "MGET" => (1, MergeKind::Values),
                "MSET" => (2, MergeKind::AllOk),
                _ => (1, MergeKind::Sum),
            };
            if step == 2 && args.len().is_multiple_of(2) {
                return Plan::Reply(error_reply(&format!(
                    "ERR wrong number of arguments for '{}' command",
                    lower()
                )));
            }
            Plan::Split {
                name,
                args,
                step,
                merge,
            }
        }
    }
}

fn local<'a>(name: &str, args: &[&'a [u8]], ctx: PlanContext<'_>) -> Plan<'a> {
    match name {
        "PING" => match args.get(1) {
            Some(m) => Plan::Reply(bulk(m)),
            None => Plan::Reply(b"+PONG\r\n".to_vec()),
        },
        "ECHO" => Plan::Reply(bulk(args[1])),
        "QUIT" => Plan::ReplyAndClose(b"+OK\r\n".to_vec()),
        "AUTH" => Plan::Auth(args[args.len() - 1]),
        "SELECT" => {
            if args[1] == ctx.db.to_string().as_bytes() {
                Plan::Reply(b"+OK\r\n".to_vec())
            } else {
                Plan::Reply(error_reply(&format!(
                    "ERR the proxy serves database {} only (redis_db)",
                    ctx.db
                )))
            }
        }
        "COMMAND" => match args.get(1).map(|a| a.to_ascii_uppercase()) {
            Some(sub) if sub == b"COUNT" => Plan::Reply(b":0\r\n".to_vec()),
            _ => Plan::Reply(b"*0\r\n".to_vec()),
        },
        "CLUSTER" => Plan::Reply(error_reply(
            "ERR This instance has cluster support disabled",
        )),
        _ => Plan::Reply(error_reply(&format!(
            "ERR {} is not supported by the proxy",
            name.to_lowercase()
        ))),
    }
}

/// The AUTH reply, and whether the client is now authenticated.
pub fn auth(password: Option<&str>, given: &[u8]) -> (Vec<u8>, bool) {
    match password {
        None => (
            error_reply("ERR Client sent AUTH, but no password is set"),
            false,
        ),
        Some(p) if p.as_bytes() == given => (b"+OK\r\n".to_vec(), true),
        Some(_) => (error_reply("ERR invalid password"), false),
    }
}
