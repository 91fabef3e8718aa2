//! Redis Cluster mode: a pool whose `servers:` are seed nodes of a Redis
//! Cluster. The slot map comes from CLUSTER SLOTS and is refreshed
//! periodically and after MOVED; MOVED and ASK (with ASKING) are followed
//! for the client; the proxy answers CLUSTER SLOTS / NODES / INFO as a
//! single node owning every slot, so cluster-aware clients use it too.
//!
//! The engine plugs in through `ClusterRouter` (sans-IO: it sends the
//! bytes, reports replies and passes the time in):
//!
//! 1. `route` (or `route_key`) says where a command goes: one `Attempt`,
//!    or one `Part` per slot for MGET / MSET / DEL / ....
//! 2. Each reply goes through `on_reply`: `Pass` it to the client,
//!    `Resend` it (ASKING first if `attempt.asking`), `ResendAt` a later
//!    time (TRYAGAIN), or `Fail` with the given error reply.
//! 3. `poll_refresh` names a node to send `CLUSTER_SLOTS_REQUEST` to when
//!    a refresh is due; its answer goes to `on_refresh_reply`, a failure
//!    to `on_refresh_failed`; `next_deadline(now)` is when to poll again.
//! 4. `answer` writes the proxy's own replies to CLUSTER, READONLY,
//!    READWRITE and ASKING from clients.
//! 5. `broadcast` says what to send to the masters for DBSIZE and INFO
//!    (answered for the whole cluster), `info_reply` merges INFO's.

mod addr;
mod answer;
mod info;
mod redirect;
mod router;
mod slots;

pub use addr::{AddrError, Endpoint, NodeAddr};
pub use answer::{answer, proxy_node_id, ProxyNode};
pub use info::{
    broadcast, info_reply, masters, merge_keyspace, own_sections, Fanout, FanoutMerge,
    InfoSections, ProxyFacts, DBSIZE_REQUEST, INFO_KEYSPACE_REQUEST,
};
pub use redirect::{parse_redirect, Redirect, RedirectError, RedirectKind};
pub use router::{
    Attempt, ClusterRouter, NodeId, Part, Plan, RouteError, RouterConfig, RouterStats, SeedError,
    Verdict, ASKING_REQUEST, CLUSTER_SLOTS_REQUEST,
};
pub use slots::{ClusterNode, Shard, SlotMap, SlotsError};

#[cfg(test)]
mod tests;
