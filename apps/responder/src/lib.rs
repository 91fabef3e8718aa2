//! tpa-responder: answers ARP, ICMP echo, NDP and ICMPv6 echo for the
//! addresses it is given, on a TAP device or any interface through
//! AF_PACKET. A small, complete tpa application: one `#[pipeline]` of the
//! bundled stages, run to completion on one thread.
//!
//! ```text
//! tpa-responder --port tap:tpa0 --ip 192.0.2.1/24 --ip 2001:db8::1/64
//! ```
//!
//! The library half lets tests run the responder in-process: [`serve`] an
//! opened port until a [`StopFlag`](tpa::worker::StopFlag) is raised and
//! read the [`Summary`].

mod config;
mod pipeline;
mod serve;

pub use config::{Config, IpCidr, ParsePortError, PortSpec, DEFAULT_TAP_MAC};
pub use pipeline::{build, Ipv4Branch, Ipv6Branch, Responder, ResponderFront};
pub use serve::{open_af_packet, open_tap, run, serve, Error, Summary};
