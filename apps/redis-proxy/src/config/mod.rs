//! nutcracker's YAML config: named pools, each with its listen address,
//! hashing, timeouts and servers. Every key nutcracker knows is read,
//! validated, and defaulted as nutcracker does; errors name the pool and
//! the key.

mod cluster;
mod server;

pub use cluster::ClusterOptions;
pub use server::{Listen, ServerAddress, ServerSpec};

use crate::hash::{DistributionKind, HashFunction};
use serde_yaml_ng::{Mapping, Value};
use std::fmt;

/// One pool of the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// The pool's name (its top-level key).
    pub name: String,
    /// Where clients connect: `host:port` or a unix socket path (with an
    /// optional permission suffix as `path mode`).
    pub listen: Listen,
    /// The key hash function (default fnv1a_64).
    pub hash: HashFunction,
    /// Two bytes that delimit the hashed part of a key, if set.
    pub hash_tag: Option<[u8; 2]>,
    /// ketama (default), modula or random.
    pub distribution: DistributionKind,
    /// Server timeout in milliseconds; `None` waits forever (the default).
    pub timeout_ms: Option<u32>,
    /// The listen backlog (default 512).
    pub backlog: u32,
    /// Most client connections at once; 0 means no limit (the default).
    pub client_connections: u32,
    /// Whether the backends speak redis (true) or memcached (false, the default).
    pub redis: bool,
    /// The password sent with AUTH to each server, and required of clients.
    pub redis_auth: Option<String>,
    /// The database selected on each server connection (default 0).
    pub redis_db: u32,
    /// Connect to every server at start (default false).
    pub preconnect: bool,
    /// Set SO_KEEPALIVE on server connections (default false).
    pub tcpkeepalive: bool,
    /// Connections to each server (default 1).
    pub server_connections: u32,
    /// Take a failing server out of the distribution (default false).
    pub auto_eject_hosts: bool,
    /// Milliseconds before an ejected server is tried again (default 30000).
    pub server_retry_timeout_ms: u32,
    /// Consecutive failures that eject a server (default 2).
    pub server_failure_limit: u32,
    /// The servers, in order (their order decides the mapping); in a
    /// cluster pool, the seed nodes.
    pub servers: Vec<ServerSpec>,
    /// Redis Cluster mode (our extension, `redis_cluster: true`), if set.
    pub cluster: Option<ClusterOptions>,
}

impl Pool {
    /// A cluster pool's seed nodes (its `servers:`, in order); empty for
    /// a nutcracker pool.
    pub fn cluster_seeds(&self) -> Vec<crate::cluster::NodeAddr> {
        match self.cluster {
            Some(_) => cluster::seeds(&self.servers),
            None => Vec::new(),
        }
    }
}

/// A config error: which pool, which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The pool, if the error is inside one.
    pub pool: Option<String>,
    /// The key, if the error is about one.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.pool, &self.key) {
            (Some(p), Some(k)) => write!(f, "pool '{p}', key '{k}': {}", self.message),
            (Some(p), None) => write!(f, "pool '{p}': {}", self.message),
            _ => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses a whole nutcracker config file into its pools, in file order.
pub fn parse(text: &str) -> Result<Vec<Pool>, ConfigError> {
    let top: Value = serde_yaml_ng::from_str(text).map_err(|e| ConfigError {
        pool: None,
        key: None,
        message: format!("not valid YAML: {e}"),
    })?;
    let Value::Mapping(pools) = top else {
        return Err(ConfigError {
            pool: None,
            key: None,
            message: "the top level must be a mapping of pool names to pools".into(),
        });
    };
    if pools.is_empty() {
        return Err(ConfigError {
            pool: None,
            key: None,
            message: "no pools".into(),
        });
    }
    pools
        .iter()
        .map(|(name, body)| {
            let name = match name {
                Value::String(s) => s.clone(),
                other => {
                    return Err(ConfigError {
                        pool: None,
                        key: None,
                        message: format!("pool name {other:?} is not a string"),
                    })
                }
            };
            parse_pool(name, body)
        })
        .collect()
}

struct PoolReader<'a> {
    pool: &'a str,
    body: &'a Mapping,
}

impl PoolReader<'_> {
    fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            pool: Some(self.pool.to_string()),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.body.get(key)
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.error(key, format!("expected a string, found {other:?}"))),
        }
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            // nutcracker accepts exactly "true" and "false".
            Some(Value::String(s)) if s == "true" => Ok(true),
            Some(Value::String(s)) if s == "false" => Ok(false),
            Some(other) => Err(self.error(key, format!("expected true or false, found {other:?}"))),
        }
    }

    fn number(&self, key: &str, default: u32) -> Result<u32, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Number(n)) => {
                n.as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| {
                        self.error(key, format!("{n} is not a non-negative 32-bit integer"))
                    })
            }
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| self.error(key, format!("'{s}' is not a non-negative integer"))),
            Some(other) => Err(self.error(key, format!("expected a number, found {other:?}"))),
        }
    }
}

/// The keys a pool may have.
const POOL_KEYS: [&str; 17] = [
    "listen",
    "hash",
    "hash_tag",
    "distribution",
    "timeout",
    "backlog",
    "client_connections",
    "redis",
    "redis_auth",
    "redis_db",
    "preconnect",
    "tcpkeepalive",
    "server_connections",
    "auto_eject_hosts",
    "server_retry_timeout",
    "server_failure_limit",
    "servers",
];

fn parse_pool(name: String, body: &Value) -> Result<Pool, ConfigError> {
    let Value::Mapping(body) = body else {
        return Err(ConfigError {
            pool: Some(name),
            key: None,
            message: "a pool must be a mapping of keys to values".into(),
        });
    };
    let r = PoolReader { pool: &name, body };
    for key in body.keys() {
        match key {
            Value::String(k)
                if POOL_KEYS.contains(&k.as_str())
                    || cluster::CLUSTER_KEYS.contains(&k.as_str()) => {}
            Value::String(k) => return Err(r.error(k, "unknown key")),
            other => return Err(r.error(&format!("{other:?}"), "keys must be strings")),
        }
    }
    let listen = r
        .string("listen")?
        .ok_or_else(|| r.error("listen", "missing (every pool needs one)"))?;
    let listen = Listen::parse(&listen).map_err(|m| r.error("listen", m))?;
    let hash = match r.string("hash")? {
        None => HashFunction::Fnv1a_64,
        Some(h) => HashFunction::from_name(&h).ok_or_else(|| {
            r.error(
                "hash",
                format!("unknown hash '{h}' (one of one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins)"),
            )
        })?,
    };
    let hash_tag = match r.string("hash_tag")? {
        None => None,
        Some(t) => match t.as_bytes() {
            [open, close] => Some([*open, *close]),
            _ => return Err(r.error("hash_tag", format!("'{t}' is not exactly two characters"))),
        },
    };
    let distribution = match r.string("distribution")? {
        None => DistributionKind::Ketama,
        Some(d) => DistributionKind::from_name(&d).ok_or_else(|| {
            r.error(
                "distribution",
                format!("unknown distribution '{d}' (ketama, modula or random)"),
            )
        })?,
    };
    let timeout_ms = match r.get("timeout") {
        None => None,
        Some(_) => Some(r.number("timeout", 0)?),
    };
    let cluster = cluster::read(&r)?;
    let redis = r.boolean("redis", cluster.is_some())?;
    let redis_auth = r.string("redis_auth")?;
    let redis_db = r.number("redis_db", 0)?;
    if !redis && redis_auth.is_some() {
        return Err(r.error(
            "redis_auth",
            "set, but the pool is not a redis pool (redis: false)",
        ));
    }
    let server_connections = r.number("server_connections", 1)?;
    if server_connections == 0 {
        return Err(r.error("server_connections", "must be at least 1"));
    }
    let servers = match r.get("servers") {
        Some(Value::Sequence(list)) if !list.is_empty() => list
            .iter()
            .map(|entry| match entry {
                Value::String(s) => ServerSpec::parse(s).map_err(|m| r.error("servers", m)),
                other => Err(r.error("servers", format!("entry {other:?} is not a string"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Sequence(_)) => return Err(r.error("servers", "empty list")),
        Some(other) => return Err(r.error("servers", format!("expected a list, found {other:?}"))),
        None => return Err(r.error("servers", "missing (every pool needs at least one server)")),
    };
    if cluster.is_some() {
        cluster::check_seeds(&r, &servers)?;
    }
    let mut names = std::collections::HashSet::new();
    for s in &servers {
        if !names.insert(s.ketama_name()) {
            return Err(r.error(
                "servers",
                format!("duplicate server name '{}'", s.ketama_name()),
            ));
        }
    }
    Ok(Pool {
        listen,
        hash,
        hash_tag,
        distribution,
        timeout_ms,
        backlog: r.number("backlog", 512)?,
        client_connections: r.number("client_connections", 0)?,
        redis,
        redis_auth,
        redis_db,
        preconnect: r.boolean("preconnect", false)?,
        tcpkeepalive: r.boolean("tcpkeepalive", false)?,
        server_connections,
        auto_eject_hosts: r.boolean("auto_eject_hosts", false)?,
        server_retry_timeout_ms: r.number("server_retry_timeout", 30_000)?,
        server_failure_limit: r.number("server_failure_limit", 2)?,
        servers,
        cluster,
        name,
    })
}

#[cfg(test)]
mod tests;
