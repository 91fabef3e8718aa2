//! tpa-echo: a UDP echo server and client, over tpa (a `#[pipeline]` with
//! the UDP and TCP stages, their sockets and an inline
//! [`App`](tpa::app::App)) on a TAP device, any interface through AF_PACKET
//! or (feature `dpdk`) a DPDK port; or, with `--kernel`, over the kernel's
//! own UDP sockets, the same command line and the same report: the far end
//! of the tests and the baseline of the benchmark. On tpa the server also
//! echoes TCP ([`tcp_echo`]), on the UDP port unless `--tcp-port` says
//! otherwise (`--no-tcp`: none).
//!
//! ```text
//! tpa-echo server --port tap:tpa0 --ip 192.0.2.1/24 --udp-port 7
//! tpa-echo client --kernel --to 192.0.2.1:7 --count 10000 --size 64 --window 8
//! ```
//!
//! The client sends `--count` datagrams of `--size` bytes, at most
//! `--window` out at once and `--rate` per second, checks every byte of
//! every echo ([`payload`]) and reports datagrams per second, the p50, p99
//! and p999 round-trip times and what was lost ([`ClientReport`]).

pub mod config;
pub mod kernel;
pub mod payload;
pub mod report;
pub mod run;
pub mod session;
pub mod stack;
pub mod tcp_echo;

pub use config::{ClientConfig, ConfigError, Endpoint, ServerConfig};
pub use report::{ClientReport, ServerReport, TcpReport};
pub use run::{run_client, run_server, Error};
