//! The runtime behind `#[header]`: what generated views rely on.
//!
//! A protocol header is declared once with [`#[header]`](macro@crate::header),
//! which generates an owned value type and a zero-copy view over any byte
//! buffer that implements [`Bytes`] (read-only) or [`BytesMut`] (read-write).
//! The programming guide explains the declaration syntax and everything that
//! is generated; this module holds the pieces the generated code calls:
//!
//! - [`Bytes`] / [`BytesMut`]: the buffer contract a view is built on, and
//!   [`HeaderBytes`]: a buffer checked once to hold a header's fixed part.
//! - [`SplitBytes`]: borrowed buffers a view can cut after the header, so
//!   `split()`/`into_payload()` hand the payload to the next layer for the
//!   buffer's whole lifetime.
//! - [`HeaderError`]: why a buffer does not hold a valid header.
//! - [`HeaderOptions`]: how a view's `options_iter()` makes the walker named
//!   by `#[header(options = ..)]`.
//! - [`checksum`]: the internet checksum (RFC 1071), pseudo-header sums and
//!   incremental updates (RFC 1624).
//! - [`field_enum!`](crate::field_enum): typed field values with a catch-all.

mod bytes;
pub mod checksum;
mod error;
mod field_enum;
mod options;

pub use bytes::{Bytes, BytesMut, HeaderBytes, SplitBytes};
pub use error::HeaderError;
pub use options::HeaderOptions;

#[doc = include_str!("../../../doc/guide/headers.md")]
#[cfg(doctest)]
pub struct GuideHeaders;
