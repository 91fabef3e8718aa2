//! UDP (RFC 768) over IPv4 and IPv6: sockets in the pipeline state, an
//! input stage, and the socket calls of the application.
//!
//! ```text
//!  IP input ─► UdpSplit ─┬─► other protocols (ICMP echo, NDP, …)
//!                        └─► UdpInput ─► the socket's queue ─► Readable event
//!                               └─ closed port: ICMP port unreachable (egress)
//!
//!  app: recv(cx, socket)                 zero-copy Datagram (buffer + from)
//!       send_to(cx, socket, dst, &[u8])  copy into a pool buffer ─► egress
//!       send_buf_to(cx, socket, dst, b)  UDP header in b's headroom ─► egress
//! ```
//!
//! - [`UdpSockets`]: the socket table, a part of the `#[state]` beside
//!   [`Egress`](crate::egress::Egress) and [`Events`](tpa::app::Events).
//! - [`UdpSplit`] / [`udp_branch`]: the split of an IP branch by protocol.
//! - [`UdpInput`]: the input stage.
//! - [`Datagram`]: a received datagram, held zero-copy.
//! - [`bind`], [`close`], [`recv`], [`send_to`], [`send_buf_to`],
//!   [`take_error`]: the application's calls.
//! - [`UdpIcmp`]: ICMP errors quoting our datagrams (port unreachable…),
//!   kept as the sending socket's pending error ([`take_error`]).
//! - [`TokenBucket`]: the rate limit of port unreachable messages.
//! - [`unreachable`](mod@unreachable): the port unreachable message itself.

mod datagram;
mod icmp;
mod input;
mod rate;
mod socket;
mod sockets;
mod split;
#[cfg(test)]
mod testing;
pub mod unreachable;

pub use datagram::{Datagram, MIN_CHARGE};
pub use icmp::{UdpIcmp, UdpIcmpCounters};
pub use input::{UdpInput, UdpInputCounters, UnreachableConfig, QUEUE_FULL};
pub use rate::TokenBucket;
pub use socket::{bind, close, recv, send_buf_to, send_to, take_error};
pub use sockets::{SocketCounters, UdpConfig, UdpSockets};
pub use split::{udp_branch, UdpBranch, UdpSplit};
