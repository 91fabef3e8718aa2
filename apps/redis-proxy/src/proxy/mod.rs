//! The proxy engine, sans IO: the runtime hands it bytes read, connection
//! events and the time, and takes bytes to write, connections to open or
//! close, and the next deadline. No socket and no clock inside, so the same
//! engine runs on kernel sockets and on the tpa stack.
//!
//! Clients' requests are answered strictly in arrival order, whichever
//! server answers first; split requests (MGET, MSET, DEL, UNLINK, EXISTS,
//! TOUCH) go to every server holding some of their keys and are merged in
//! key order. Large values pass through as the buffers they were read into.

mod buffer;
mod cluster_router;
mod engine;
mod merge;
mod request;
mod router;
mod session;
mod stats;

pub use buffer::{InBuf, OutQueue, BIG, READ_CHUNK};
pub use cluster_router::ClusterAdapter;
pub use engine::{Action, Engine, Limits, PassthroughStats, ServerConnId, SpliceEnd};
pub use request::{error_reply, MergeKind};
pub use router::{Router, StaticRouter, Verdict};
pub use session::ClientId;
pub use stats::{describe_stats, PoolTotals, StatsClock, StatsView};

#[cfg(test)]
mod tests;
