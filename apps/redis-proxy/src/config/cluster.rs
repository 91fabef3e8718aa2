//! Our extension to nutcracker's YAML: `redis_cluster: true` puts a pool
//! in Redis Cluster mode, its `servers:` being seed nodes (weights and
//! names are read and ignored). Keys that make no sense there (a hash, a
//! distribution, ejection, a database other than 0) are refused.

use super::{ConfigError, PoolReader, ServerAddress, ServerSpec};
use crate::cluster::{NodeAddr, RouterConfig};
use serde_yaml_ng::Value;
use std::time::Duration;

/// A cluster pool's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Milliseconds between periodic slot map refreshes
    /// (`redis_cluster_refresh`, default 10000).
    pub refresh_interval_ms: u32,
    /// Redirects one request may follow before its client gets an error
    /// (`redis_cluster_max_redirects`, default 5).
    pub max_redirects: u8,
}

impl ClusterOptions {
    /// The router's settings; a refresh waits at most the pool's
    /// `timeout`, if set.
    pub fn router_config(&self, timeout_ms: Option<u32>) -> RouterConfig {
        let defaults = RouterConfig::default();
        RouterConfig {
            refresh_interval: Duration::from_millis(u64::from(self.refresh_interval_ms)),
            max_redirects: self.max_redirects,
            refresh_timeout: timeout_ms.map_or(defaults.refresh_timeout, |t| {
                Duration::from_millis(u64::from(t))
            }),
            ..defaults
        }
    }
}

/// The keys of our extension.
pub(super) const CLUSTER_KEYS: [&str; 3] = [
    "redis_cluster",
    "redis_cluster_refresh",
    "redis_cluster_max_redirects",
];

/// Keys refused in a cluster pool, and why.
const REFUSED: [(&str, &str); 5] = [
    ("hash", "the cluster decides: CRC16 of the key"),
    ("distribution", "the cluster decides: its slot map"),
    ("auto_eject_hosts", "the cluster fails over by itself"),
    ("server_retry_timeout", "it goes with auto_eject_hosts"),
    ("server_failure_limit", "it goes with auto_eject_hosts"),
];

/// Reads `redis_cluster` and its keys; `None` for a nutcracker pool.
pub(super) fn read(r: &PoolReader<'_>) -> Result<Option<ClusterOptions>, ConfigError> {
    if !r.boolean("redis_cluster", false)? {
        for key in &CLUSTER_KEYS[1..] {
            if r.get(key).is_some() {
                return Err(r.error(key, "only with redis_cluster: true"));
            }
        }
        return Ok(None);
    }
    for (key, why) in REFUSED {
        if r.get(key).is_some() {
            return Err(r.error(key, format!("not allowed with redis_cluster: true ({why})")));
        }
    }
    if let Some(tag) = r.get("hash_tag") {
        if !matches!(tag, Value::String(t) if t == "{}") {
            return Err(r.error(
                "hash_tag",
                "with redis_cluster: true, only \"{}\" (the cluster's own hash tags)",
            ));
        }
    }
    if matches!(r.get("redis"), Some(Value::Bool(false)))
        || matches!(r.get("redis"), Some(Value::String(s)) if s == "false")
    {
        return Err(r.error("redis", "a cluster pool is a redis pool"));
    }
    if r.number("redis_db", 0)? != 0 {
        return Err(r.error("redis_db", "Redis Cluster has only database 0"));
    }
    let refresh_interval_ms = r.number("redis_cluster_refresh", 10_000)?;
    if refresh_interval_ms == 0 {
        return Err(r.error("redis_cluster_refresh", "must be at least 1 (milliseconds)"));
    }
    let max_redirects = r.number("redis_cluster_max_redirects", 5)?;
    let max_redirects = u8::try_from(max_redirects)
        .ok()
        .filter(|&m| m >= 1)
        .ok_or_else(|| r.error("redis_cluster_max_redirects", "must be from 1 to 255"))?;
    Ok(Some(ClusterOptions {
        refresh_interval_ms,
        max_redirects,
    }))
}

/// Seed nodes are TCP addresses.
pub(super) fn check_seeds(r: &PoolReader<'_>, servers: &[ServerSpec]) -> Result<(), ConfigError> {
    for s in servers {
        if let ServerAddress::Unix { path } = &s.address {
            return Err(r.error(
                "servers",
                format!("'{path}': cluster seed nodes are host:port, not unix sockets"),
            ));
        }
    }
    Ok(())
}

/// The seed nodes of a cluster pool's `servers:`, in order.
pub(super) fn seeds(servers: &[ServerSpec]) -> Vec<NodeAddr> {
    servers
        .iter()
        .filter_map(|s| match &s.address {
            ServerAddress::Tcp { host, port } => Some(NodeAddr::new(host.clone(), *port)),
            ServerAddress::Unix { .. } => None,
        })
        .collect()
}
