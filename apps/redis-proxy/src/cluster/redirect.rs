//! Redis Cluster's redirect errors: `-MOVED <slot> <endpoint>` (the slot
//! now lives there: update the map) and `-ASK <slot> <endpoint>` (this
//! one request goes there, preceded by ASKING; the map stays).

use super::addr::{AddrError, Endpoint};
use crate::hash::CLUSTER_SLOTS;
use std::fmt;

/// MOVED or ASK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    /// The slot has moved for good.
    Moved,
    /// The slot is migrating: ask the importing node, this once.
    Ask,
}

/// A parsed redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// MOVED or ASK.
    pub kind: RedirectKind,
    /// The key's slot.
    pub slot: u16,
    /// The node to go to.
    pub endpoint: Endpoint,
}

/// A MOVED or ASK error whose slot or address is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectError {
    /// Not `<slot> <endpoint>` after the word.
    Shape,
    /// The slot is not a number below 16384.
    BadSlot,
    /// The endpoint does not parse.
    Addr(AddrError),
}

impl fmt::Display for RedirectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectError::Shape => f.write_str("redirect is not '<slot> <host:port>'"),
            RedirectError::BadSlot => f.write_str("redirect slot is not below 16384"),
            RedirectError::Addr(e) => write!(f, "redirect address: {e}"),
        }
    }
}

impl std::error::Error for RedirectError {}

/// Reads an error reply's text (without the `-` and CRLF). `Ok(None)`
/// for any error that is not MOVED or ASK.
pub fn parse_redirect(error: &[u8]) -> Result<Option<Redirect>, RedirectError> {
    let (kind, rest) = if let Some(rest) = error.strip_prefix(b"MOVED ") {
        (RedirectKind::Moved, rest)
    } else if let Some(rest) = error.strip_prefix(b"ASK ") {
        (RedirectKind::Ask, rest)
    } else {
        return Ok(None);
    };
    let mut words = rest.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let (Some(slot), Some(endpoint), None) = (words.next(), words.next(), words.next()) else {
        return Err(RedirectError::Shape);
    };
    let slot = parse_slot(slot).ok_or(RedirectError::BadSlot)?;
    let endpoint = Endpoint::parse(endpoint).map_err(RedirectError::Addr)?;
    Ok(Some(Redirect {
        kind,
        slot,
        endpoint,
    }))
}

fn parse_slot(text: &[u8]) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = text.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok().filter(|&s| s < CLUSTER_SLOTS)
}
