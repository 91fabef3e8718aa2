//! The stages bundled with tpa, one module each.
//!
//! - [`packet`]: the typed packets passed between them.
//! - [`iface`]: the addresses a pipeline answers for.
//! - [`ethernet`]: the Ethernet front (EtherType demux).
//! - [`ipv4`], [`ipv6`]: network-layer input checks.
//! - [`arp`], [`ndp`]: address resolution, over one [`neighbor`] cache type.
//! - [`egress`]: the output path (IP output, routing, neighbor resolution,
//!   Ethernet) and the state part it shares with ARP and NDP.
//! - [`icmp`]: ICMPv4 and ICMPv6 echo responders.
//! - [`acl`]: allow/deny rules with per-rule counters.
//! - [`mlx5`]: flow bifurcation rules and offload fallbacks for ConnectX NICs.
//! - [`pcap`]: capture to a pcap file.
//! - [`udp`]: UDP sockets, their input stage and the application's calls.
//! - [`tcp`]: TCP connections, sockets, their stages and the application's calls.
//! - [`trace`]: the always-on socket trace (a ring of records per connection).
//! - [`discard`]: the end of a branch; [`optional`]: a stage switched on or off at startup.

#![warn(missing_docs)]

pub mod acl;
pub mod arp;
pub(crate) mod chained;
pub mod discard;
pub mod egress;
pub mod ethernet;
pub mod hash;
pub mod icmp;
pub mod icmp_error;
pub mod iface;
pub mod ipv4;
pub mod ipv6;
pub mod mlx5;
pub mod ndp;
pub mod neighbor;
pub mod ops;
pub mod optional;
pub mod packet;
pub mod pcap;
pub mod split;
pub mod tcp;
pub mod trace;
pub mod udp;

#[cfg(test)]
mod testing;
