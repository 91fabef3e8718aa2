//! RESP, redis's wire protocol: an incremental parser over byte slices that
//! may end mid-frame, an encoder, and the limits that turn oversized or
//! malformed input into typed errors.

mod encode;
mod parse;

pub use encode::encode;
pub use parse::{parse, Frame, Limits, ParseError, Parsed};

#[cfg(test)]
mod tests;
