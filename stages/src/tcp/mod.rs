//! TCP (RFC 9293): the pure-logic pieces landing ahead of the stages.
//!
//! Nothing here touches packets or the pipeline yet; the input, output and
//! timer stages built on these come next.
//!
//! - [`seq`]: sequence numbers and their arithmetic modulo 2^32.
//! - [`isn`]: keyed initial sequence numbers (RFC 6528).

pub mod isn;
pub mod seq;
