//! tpa-tperf: a TCP benchmark that checks every byte. A client runs one
//! test — `read`, `write`, `rw` (throughput), `rr`, `crr` (transactions and
//! their latency) — over `-c` connections in `-w` worker threads for `-d`
//! seconds against a tperf server, and reports throughput, transactions
//! per second, p50/p99/p999 latency and CPU per byte and per transaction.
//! Both directions of every connection carry a pattern derived from the
//! stream offset and the connection ([`pattern`]): each side checks every
//! byte it receives, the server returns what it found on the run's
//! control connection ([`protocol`]), and a wrong, missing or duplicated
//! byte is reported with its offset.
//!
//! The test logic is sans IO and shared by the backends: [`session`] (one
//! data connection, client and server), [`serve`] (a server's
//! connection, its hello first), [`control`] (the run's end),
//! [`histogram`], [`report`]. A backend moves bytes: [`tpa`] over tpa's
//! TCP stack on a port (TAP, AF_PACKET, DPDK), the default; [`kernel`]
//! over the kernel's sockets (`--kernel`).
//!
//! ```text
//! tpa-tperf server --port tap:tpa0 --ip 192.0.2.2/24 -l 192.0.2.2:4040
//! tpa-tperf client --kernel -s 192.0.2.2:4040 -t rr -m 64 -c 8 -w 2 -d 10
//! ```

pub mod config;
pub mod control;
pub mod cpu;
pub mod histogram;
pub mod kernel;
pub mod live;
pub mod pattern;
pub mod protocol;
pub mod report;
pub mod serve;
pub mod session;
pub mod tpa;

pub use config::{ClientConfig, ServerConfig};
pub use protocol::TestKind;
pub use report::ClientReport;
