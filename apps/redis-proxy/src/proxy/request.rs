//! What to do with one client request: answer it here, forward it whole to
//! one server, or split it per server (and how to merge the replies).

use crate::command::{self, Route};
use crate::resp::Frame;

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
        keys: Vec<&'a [u8]>,
        /// The RESP form, when the request was inline.
        encoded: Option<Vec<u8>>,
    },
    /// Split per key; `step` is 2 for key-value pairs (MSET).
    Split {
        /// The command name as the client wrote it.
        name: &'a [u8],
        /// The arguments; keys at `first`, `first + step`, ...
        args: Vec<&'a [u8]>,
        /// Key-value pairs (2) or keys (1).
        step: usize,
        /// How replies merge.
        merge: MergeKind,
    },
    /// Answered by the proxy: by the router if it answers this command
    /// (cluster mode's CLUSTER ...), else with `fallback`.
    RouterAnswer {
        /// The arguments.
        args: Vec<&'a [u8]>,
        /// The reply when the router does not answer.
        fallback: Vec<u8>,
    },
    /// Answered by the router asking several servers (cluster mode's
    /// DBSIZE and INFO over the masters), else with `fallback`.
    Broadcast {
        /// The arguments.
        args: Vec<&'a [u8]>,
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

fn bulk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// A request's arguments as byte strings (RESP array or inline).
fn arguments<'a>(frame: &Frame<'a>) -> Option<Vec<&'a [u8]>> {
    match frame {
        Frame::Inline(words) => Some(words.clone()),
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
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(&bulk(a));
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

/// Plans one parsed request.
pub fn plan<'a>(frame: &Frame<'a>, ctx: PlanContext<'_>) -> Plan<'a> {
    let Some(args) = arguments(frame) else {
        return Plan::ReplyAndClose(error_reply(
            "ERR Protocol error: a request is an array of bulk strings",
        ));
    };
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
            let positions = match command::keys(cmd, &args) {
                Ok(p) => p,
                Err(_) => {
                    return Plan::Reply(error_reply(&format!(
                        "ERR wrong number of arguments for '{}' command",
                        lower()
                    )))
                }
            };
            if positions.is_empty() {
                return Plan::Reply(error_reply(&format!(
                    "ERR '{}' without a key cannot be routed by the proxy",
                    lower()
                )));
            }
            Plan::Forward {
                keys: positions.iter().map(|&p| args[p]).collect(),
                encoded: matches!(frame, Frame::Inline(_)).then(|| encode_command(&args)),
            }
        }
        Route::Split => {
            let (step, merge) = match cmd.name {
                "MGET" => (1, MergeKind::Values),
                "MSET" => (2, MergeKind::AllOk),
                _ => (1, MergeKind::Sum),
            };
            if step == 2 && args.len() % 2 == 0 {
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
