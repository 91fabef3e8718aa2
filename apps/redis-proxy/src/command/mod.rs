//! The command table: each redis command's arity, where its keys are, and
//! how the proxy treats it (read or write, split across servers, answered
//! by the proxy, or refused with an error reply).

use std::sync::OnceLock;

mod keys;
mod table;

pub use keys::{for_each_key, keys, KeyError};
pub use table::TABLE;

/// Where a command's keys are among its arguments (0 = the command name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// No keys.
    None,
    /// Keys at `first`, `first + step`, ... up to `last`; a negative `last`
    /// counts from the end (-1: the last argument).
    Range {
        /// The first key's position.
        first: usize,
        /// The last key's position, negative from the end.
        last: isize,
        /// The distance between keys (2 for key-value pairs).
        step: usize,
    },
    /// A count at `count_at` then that many keys (EVAL, ZUNIONSTORE);
    /// `extra` names one more key before the count (a destination).
    Counted {
        /// The count's position.
        count_at: usize,
        /// A key before the count, if any.
        extra: Option<usize>,
    },
}

/// How the proxy handles a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Forwarded to the server of its (single) key, or of all its keys when
    /// they hash alike.
    Keyed,
    /// Split per key across servers and merged in order (MGET, MSET, DEL,
    /// UNLINK, EXISTS, TOUCH).
    Split,
    /// Answered by the proxy itself (PING, QUIT, AUTH, SELECT, ECHO, ...).
    Local,
    /// Refused with an error reply; the reason says why.
    Unsupported(Unsupported),
}

/// Why a command cannot go through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// It blocks a server connection (BLPOP, ...).
    Blocking,
    /// Publish/subscribe.
    PubSub,
    /// MULTI/EXEC/WATCH: a transaction over one connection.
    Transaction,
    /// It acts on every key of a server (KEYS, SCAN, FLUSHALL, ...).
    Keyspace,
    /// Administration of one server (CONFIG, SHUTDOWN, ...).
    Admin,
}

impl Unsupported {
    /// The error reply's text.
    pub fn message(self) -> &'static str {
        match self {
            Unsupported::Blocking => "ERR blocking commands are not supported by the proxy",
            Unsupported::PubSub => "ERR pub/sub is not supported by the proxy",
            Unsupported::Transaction => "ERR transactions are not supported by the proxy",
            Unsupported::Keyspace => {
                "ERR commands over the whole keyspace are not supported by the proxy"
            }
            Unsupported::Admin => "ERR server administration is not supported through the proxy",
        }
    }
}

/// One command of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// The upper-case name.
    pub name: &'static str,
    /// redis's arity: the exact argument count (name included) if
    /// positive, the least if negative.
    pub arity: i8,
    /// Where its keys are.
    pub keys: KeySpec,
    /// Whether it writes.
    pub write: bool,
    /// How the proxy handles it.
    pub route: Route,
}

impl Command {
    /// Whether `args` arguments (the name included) suit the arity.
    pub fn arity_ok(&self, args: usize) -> bool {
        if self.arity >= 0 {
            args == self.arity as usize
        } else {
            args >= self.arity.unsigned_abs() as usize
        }
    }

    /// Whether the command only reads.
    pub fn readonly(&self) -> bool {
        !self.write
    }
}

/// The longest command name in the table.
const MAX_NAME: usize = 24;

/// The command named `name`, in any letter case, found without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    if name.len() > MAX_NAME {
        return None;
    }
    let mut upper = [0u8; MAX_NAME];
    for (dst, &src) in upper.iter_mut().zip(name) {
        *dst = src.to_ascii_uppercase();
    }
    let upper = &upper[..name.len()];
    let letter = usize::from(upper.first()?.checked_sub(b'A')?);
    let &(start, end) = by_letter().get(letter)?;
    TABLE[usize::from(start)..usize::from(end)]
        .iter()
        .find(|c| c.name.len() == upper.len() && c.name.as_bytes() == upper)
}

/// For each letter A to Z, the range of `TABLE` whose names start with it
/// (the table is sorted): a lookup compares a few names, not a dozen.
fn by_letter() -> &'static [(u16, u16); 26] {
    static RANGES: OnceLock<[(u16, u16); 26]> = OnceLock::new();
    RANGES.get_or_init(|| {
        let mut ranges = [(0u16, 0u16); 26];
        for (i, c) in TABLE.iter().enumerate() {
            let Some(letter) = c.name.as_bytes()[0].checked_sub(b'A') else {
                continue;
            };
            if let Some(range) = ranges.get_mut(usize::from(letter)) {
                if range.1 == 0 {
                    range.0 = i as u16;
                }
                range.1 = i as u16 + 1;
            }
        }
        ranges
    })
}

#[cfg(test)]
mod tests;
