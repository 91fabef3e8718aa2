//! A pool's listen address and its `servers:` entries.

use crate::hash::ServerPoint;

/// Where a pool listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `host:port` (a name or an IPv4/IPv6 address; IPv6 may be bracketed).
    Tcp {
        /// The host part.
        host: String,
        /// The port.
        port: u16,
    },
    /// A unix socket path, with the file mode if given (`/path 0666`).
    Unix {
        /// The path.
        path: String,
        /// The permissions, octal in the config.
        mode: Option<u32>,
    },
}

impl Listen {
    /// Parses nutcracker's `listen:` value.
    pub fn parse(text: &str) -> Result<Listen, String> {
        let text = text.trim();
        if text.starts_with('/') {
            let mut parts = text.split_whitespace();
            let path = parts.next().unwrap_or_default().to_string();
            let mode = match parts.next() {
                None => None,
                Some(m) => Some(
                    u32::from_str_radix(m, 8)
                        .map_err(|_| format!("'{m}' is not an octal file mode"))?,
                ),
            };
            if parts.next().is_some() {
                return Err(format!("'{text}': expected a path and at most a mode"));
            }
            return Ok(Listen::Unix { path, mode });
        }
        let (host, port) = split_host_port(text)?;
        Ok(Listen::Tcp { host, port })
    }
}

fn split_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("'{text}' is not host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("'{text}' has an empty host"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{port}' in '{text}' is not a port number"))?;
    if port == 0 {
        return Err(format!("'{text}': port 0"));
    }
    Ok((host.to_string(), port))
}

/// Where a backend lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddress {
    /// A TCP backend.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A unix socket backend.
    Unix {
        /// The socket's path.
        path: String,
    },
}

/// One `servers:` entry: `host:port:weight [name]` or `/path:weight [name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Where the server lives.
    pub address: ServerAddress,
    /// Its weight (>= 1).
    pub weight: u32,
    /// Its name, if given: ketama hashes it instead of the address.
    pub name: Option<String>,
}

impl ServerSpec {
    /// Parses one `servers:` entry.
    pub fn parse(text: &str) -> Result<ServerSpec, String> {
        let text = text.trim();
        let (spec, name) = match text.split_once(char::is_whitespace) {
            Some((spec, name)) => (spec, Some(name.trim().to_string())),
            None => (text, None),
        };
        if name.as_deref() == Some("") {
            return Err(format!("'{text}': empty name"));
        }
        let (address, weight) = spec
            .rsplit_once(':')
            .ok_or_else(|| format!("'{text}' is not host:port:weight [name]"))?;
        let weight: u32 = weight
            .parse()
            .map_err(|_| format!("'{weight}' in '{text}' is not a weight"))?;
        if weight == 0 {
            return Err(format!("'{text}': weight must be at least 1"));
        }
        let address = if address.starts_with('/') {
            ServerAddress::Unix {
                path: address.to_string(),
            }
        } else {
            let (host, port) = split_host_port(address)?;
            ServerAddress::Tcp { host, port }
        };
        Ok(ServerSpec {
            address,
            weight,
            name,
        })
    }

    /// The name ketama hashes: the given name, else `host:port` (or the path).
    pub fn ketama_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match &self.address {
            ServerAddress::Tcp { host, port } => format!("{host}:{port}"),
            ServerAddress::Unix { path } => path.clone(),
        }
    }

    /// The server as the distribution sees it.
    pub fn point(&self) -> ServerPoint {
        ServerPoint {
            name: self.ketama_name(),
            weight: self.weight,
        }
    }
}
