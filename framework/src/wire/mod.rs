//! The protocol headers tpa speaks, each in its own module and each declared
//! once with `#[header]`.
//!
//! Each header `Foo` comes as an owned value type `Foo` (plain fields,
//! `LEN`, `parse`, `emit`) and a zero-copy view `FooView<B>` over any byte
//! buffer (getters and `set_*` setters named like the fields, `header_len`,
//! `options`, `payload`, checksum helpers).
//!
//! Field names follow one convention across headers: reserved bits are
//! `reserved` (`reserved_1`, `reserved_2`, … when there are several), flag
//! bits are named `bool`s, lengths in bytes end in `_len` and say what they
//! cover; the programming guide's "Field names" section lists where a name
//! differs from the RFC's and why.
//!
//! | module | headers (owned type / view) | helpers |
//! |---|---|---|
//! | [`ethernet`] | `Ethernet`, `VlanTag` | [`EtherType`] |
//! | [`arp`] | `Arp` | `ArpOperation` |
//! | [`ipv4`] | `Ipv4` | [`IpProtocol`], fragment helpers, options iterator |
//! | [`ipv6`] | `Ipv6`, `Ipv6ExtHeader`, `Ipv6Fragment`, `AuthHeader` | [`ipv6::upper_layer`]: bounded extension-header walk |
//! | [`icmpv4`] | `Icmpv4`, `Icmpv4Echo`, `Icmpv4DestUnreachable`, `Icmpv4TimeExceeded` | type and code enums |
//! | [`icmpv6`] | `Icmpv6`, `Icmpv6Echo`, `NeighborSolicitation`, `NeighborAdvertisement`, `RouterSolicitation` | NDP options, pseudo-header checksums |
//! | [`udp`] | `Udp` | pseudo-header checksums |
//! | [`tcp`] | `Tcp` | [`TcpFlags`](tcp::TcpFlags), option parser and writer, pseudo-header checksums |

pub mod arp;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
mod mac;
pub mod tcp;
mod transport;
pub mod udp;

pub use ethernet::{EtherType, Ethernet, EthernetView};
pub use ipv4::{IpProtocol, Ipv4, Ipv4View};
pub use ipv6::{Ipv6, Ipv6View};
pub use mac::MacAddr;
pub use tcp::{Tcp, TcpView};
pub use udp::{Udp, UdpView};
