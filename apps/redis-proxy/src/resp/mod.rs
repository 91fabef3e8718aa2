//! RESP, redis's wire protocol: a resumable scanner that finds where a
//! frame ends in a buffer that may end mid-frame, a parser that borrows
//! the frame's payloads from the buffer, an encoder, and the limits that
//! turn oversized or malformed input into typed errors.
//!
//! A connection reads into its buffer, calls `Scanner::scan` after each
//! read, and once it returns the frame's end, `parse`s those bytes.

mod encode;
mod parse;
mod scan;

pub use encode::encode;
pub use parse::{parse, Frame, Limits, ParseError, Parsed};
pub use scan::Scanner;

#[cfg(test)]
mod tests;
