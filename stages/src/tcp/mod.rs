//! TCP (RFC 9293): the pure-logic pieces landing ahead of the stages.
//!
//! Nothing here touches packets or the pipeline yet; the input, output and
//! timer stages and the socket table built on these come next.
//!
//! - [`seq`]: sequence numbers and their arithmetic modulo 2^32.
//! - [`isn`]: keyed initial sequence numbers (RFC 6528).
//! - [`rto`]: the retransmission timeout (RFC 6298).
//! - [`cc`]: congestion control, NewReno (RFC 5681, 6582) and CUBIC
//!   (RFC 9438).
//! - [`config`]: every TCP knob and its default; loaded from TOML with
//!   `TPA_TCP_*` environment overrides, validated.
//! - [`segment`]: a segment as the connection engine sees it (parsed,
//!   payload zero-copy).
//! - [`reassembly`]: the receiver's bounded out-of-order queue, and the
//!   SACK blocks it reports.
//! - [`sack`]: the sender's SACK scoreboard and RFC 6675 loss recovery.

pub mod cc;
pub mod config;
pub mod isn;
pub mod reassembly;
pub mod rto;
pub mod sack;
pub mod segment;
pub mod seq;
