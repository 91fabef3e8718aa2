//! TCP (RFC 9293): the connection engine, the socket table, the stages and
//! the application's calls.
//!
//! ```text
//!  IP input ─► TcpSplit ─┬─► other protocols (UDP, ICMP, NDP, …)
//!                        │     └─► TcpIcmp: an ICMP error quoting a segment ─► its connection
//!                        └─► TcpInput ─┬─► connection (4-tuple) ─► on_segment ─► its events
//!                                      ├─► listener (SYN) ─► Connection::accept
//!                                      │     └─ backlog full / always ─► SYN cookie SYN-ACK (no state)
//!                                      ├─► listener (cookie ACK) ─► Connection::from_cookie
//!                                      └─► no socket ─► RST (rate-limited)
//!  TcpInput::poll / fire_timers: touched connections ─► poll_transmit ─► egress
//!                                                   └─► their events ─► the app
//!  app: listen, connect, accept, recv/read, send/send_buf, shutdown, close…
//! ```
//!
//! - [`seq`]: sequence numbers and their arithmetic modulo 2^32.
//! - [`isn`]: keyed initial sequence numbers (RFC 6528).
//! - [`syncookie`]: SYN cookies: a listener's stateless answer to a SYN.
//! - [`rto`]: the retransmission timeout (RFC 6298).
//! - [`cc`]: congestion control, NewReno (RFC 5681, 6582) and CUBIC
//!   (RFC 9438).
//! - [`config`]: every TCP knob and its default; loaded from TOML with
//!   `TPA_TCP_*` environment overrides, validated.
//! - [`segment`]: a segment as the connection engine sees it (parsed,
//!   payload zero-copy).
//! - [`conn`]: the connection engine (RFC 9293 state machine, sans-IO).
//! - [`reassembly`]: the receiver's bounded out-of-order queue, and the
//!   SACK blocks it reports.
//! - [`sack`]: the sender's SACK scoreboard and RFC 6675 loss recovery.
//! - [`wire`]: frames to segments and back.
//! - [`reset`]: the reset for a segment without a connection.
//! - [`TcpSplit`] / [`tcp_branch`]: the split of an IP branch by protocol.
//! - [`TcpSockets`]: the socket table, a part of the `#[state]`;
//!   [`listen`](mod@listen): a listener's backlog and accept queue;
//!   [`ports`]: ephemeral ports; [`timers`]: the deadline queue.
//! - [`classify`]: flow marks naming connections, and what becomes of
//!   segments no socket takes ([`Unmatched`]: reset, drop, host).
//! - [`TcpInput`]: the input stage, which raises a connection's events
//!   right after its segment; its poll and timers run the connections'
//!   [`output`].
//! - `mss`: the MSS of a connection from the path's MTU.
//! - [`pmtu`]: the path MTU learnt per destination (RFC 1191, RFC 8201).
//! - [`TcpIcmp`]: ICMP errors quoting our segments, to their connection
//!   (RFC 5927): path MTU, hard and soft errors.
//! - [`listen()`], [`connect`], [`accept`], [`recv`], [`read`], [`send`],
//!   [`send_buf`], [`shutdown`], [`close`], [`abort`], [`info`]: the
//!   application's calls.

pub mod cc;
#[cfg(test)]
mod chained_tests;
pub mod classify;
pub mod config;
pub mod conn;
pub mod host_key;
pub mod icmp;
pub mod input;
pub mod isn;
pub mod listen;
mod mss;
pub mod output;
pub mod pmtu;
pub mod ports;
pub mod reassembly;
pub mod reset;
pub mod rto;
pub mod sack;
pub mod segment;
pub mod seq;
mod socket;
mod socket_ref;
pub mod sockets;
mod split;
pub mod syncookie;
#[cfg(test)]
mod testing;
pub mod timers;
pub mod tso;
pub mod wire;

pub use classify::Unmatched;
pub use icmp::{TcpIcmp, TcpIcmpCounters, OUT_OF_WINDOW};
pub use input::{
    TcpInput, TcpInputCounters, ACCEPT_QUEUE_FULL, BACKLOG_FULL, COOKIE_EXPIRED, COOKIE_INVALID,
    NO_HOST, TABLE_FULL,
};
pub use reset::ResetConfig;
pub use socket::{
    abort, accept, close, connect, connect_from, info, listen, read, recv, recv_more, send,
    send_buf, send_mss, send_space, shutdown,
};
pub use socket_ref::{socket_ref, SocketRef};
pub use sockets::{TcpCounters, TcpSockets, CONFIRM_INTERVAL_NS};
pub use split::{tcp_branch, TcpBranch, TcpSplit};
