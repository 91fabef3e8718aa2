//! A cluster node's address as redis writes it: `host:port` with the
//! host bare even when it is IPv6 (`::1:7000`), or `:port` when the node
//! does not know its own address (the same host as the node that said it).

use std::fmt;

/// A node's host and port. The host is kept as text (an IP address or a
/// name); the engine resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddr {
    /// IPv4, IPv6 (without brackets) or a host name.
    pub host: String,
    /// The client port.
    pub port: u16,
}

impl NodeAddr {
    /// A node at `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> NodeAddr {
        NodeAddr {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for NodeAddr {
    /// `host:port`, with an IPv6 host bracketed so the text reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where a redirect or a slot map points: a full address, or a port on
/// the same host as the node that answered (redis's empty or unknown
/// endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A host and port.
    Addr(NodeAddr),
    /// `:port`: the host of the node that sent it.
    SameHost(u16),
}

impl Endpoint {
    /// Parses `host:port`, `[v6]:port`, `v6:port` (the last colon splits)
    /// or `:port`.
    pub fn parse(text: &[u8]) -> Result<Endpoint, AddrError> {
        let text = std::str::from_utf8(text).map_err(|_| AddrError::NotText)?;
        let (host, port) = text.rsplit_once(':').ok_or(AddrError::NoPort)?;
        let port = parse_port(port.as_bytes())?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').ok_or(AddrError::BadHost)?,
            None => host,
        };
        if host.is_empty() {
            return Ok(Endpoint::SameHost(port));
        }
        if host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(AddrError::BadHost);
        }
        Ok(Endpoint::Addr(NodeAddr::new(host, port)))
    }

    /// The address, taking the host of `via` (the node that answered)
    /// for a `:port` endpoint.
    pub fn resolve(&self, via: &NodeAddr) -> NodeAddr {
        match self {
            Endpoint::Addr(a) => a.clone(),
            Endpoint::SameHost(port) => NodeAddr::new(via.host.clone(), *port),
        }
    }
}

/// A port as redis writes it: decimal, 1 to 65535.
pub(super) fn parse_port(text: &[u8]) -> Result<u16, AddrError> {
    if text.is_empty() || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return Err(AddrError::BadPort);
    }
    let port = text.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    match u16::try_from(port) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(AddrError::BadPort),
    }
}

/// An address redis should not have written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrError {
    /// Not UTF-8.
    NotText,
    /// No `:port`.
    NoPort,
    /// The port is not a number from 1 to 65535.
    BadPort,
    /// A bracket left open, or spaces or control bytes in the host.
    BadHost,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::NotText => "address is not text",
            AddrError::NoPort => "address has no port",
            AddrError::BadPort => "port is not a number from 1 to 65535",
            AddrError::BadHost => "malformed host",
        })
    }
}

impl std::error::Error for AddrError {}
