//! tpa-responder: answers ARP, ICMP echo, NDP and ICMPv6 echo for the
//! addresses it is given, on a TAP device, any interface through AF_PACKET,
//! or (feature `dpdk`) any DPDK port. A small, complete tpa application: one
//! `#[pipeline]` of the bundled stages, generic over the port, run to
//! completion on one thread.
//!
//! ```text
//! tpa-responder --port tap:tpa0 --ip 192.0.2.1/24 --ip 2001:db8::1/64
//! tpa-responder --port dpdk:net_tap0 --ip 192.0.2.1/24 \
//!     -- -l 0 --no-huge --no-pci --vdev net_tap0,iface=tpa0
//! ```
//!
//! The library half lets tests run the responder in-process: [`serve`] an
//! opened port until a [`StopFlag`](tpa::worker::StopFlag) is raised and
//! read the [`Summary`].

mod acl;
mod config;
#[cfg(feature = "dpdk")]
mod dpdk;
mod pipeline;
mod run;
mod serve;
pub mod tcp_stack;
pub mod workers;

pub use acl::{parse_rule, ParseRuleError, ACL_SYNTAX};
pub use config::{
    parse_rx_mode, Config, IpCidr, ParsePortError, ParseRxModeError, PortSpec, DEFAULT_TAP_MAC,
};
#[cfg(feature = "dpdk")]
pub use dpdk::open_dpdk;
pub use pipeline::{build, Ipv4Branch, Ipv6Branch, Responder, ResponderFront, ResponderState};
pub use run::run;
pub use serve::{
    open_af_packet, open_af_xdp, open_tap, serve, Error, Summary, AF_XDP_LOCAL_PORTS,
    AF_XDP_RX_RESERVE,
};
