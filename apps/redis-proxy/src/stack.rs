//! Which stack serves the proxy: the rule of the issue, as a function of
//! the pools. A side that listens on (or a backend that lives at) a
//! loopback address, a name or a unix socket is the kernel's (a
//! userspace stack cannot own those); every other address is served on
//! tpa's stack, which owns its own addresses (`--ip`).

use std::fmt;
use std::net::IpAddr;

use crate::config::{Listen, Pool, ServerAddress};

/// The stack asked for (`--stack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StackChoice {
    /// By the addresses (the default): tpa when every side is tpa's,
    /// kernel sockets when every side is the kernel's.
    #[default]
    Auto,
    /// Kernel sockets for everything (comparison, users without root).
    Kernel,
    /// tpa for everything (an address the kernel owns is an error).
    Tpa,
}

impl std::str::FromStr for StackChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<StackChoice, String> {
        match s {
            "auto" => Ok(StackChoice::Auto),
            "kernel" => Ok(StackChoice::Kernel),
            "tpa" => Ok(StackChoice::Tpa),
            other => Err(format!("{other}: auto, kernel or tpa")),
        }
    }
}

/// The stack that serves one side (a listener or a backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Kernel sockets.
    Kernel,
    /// tpa's stack.
    Tpa,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Kernel => "kernel sockets",
            Side::Tpa => "tpa",
        })
    }
}

fn side_of_host(host: &str) -> Side {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) if !ip.is_loopback() => Side::Tpa,
        // Loopback, or a name (resolved by the kernel's resolver, most
        // often `localhost`).
        _ => Side::Kernel,
    }
}

/// Which stack serves a pool's `listen:`.
pub fn listen_side(listen: &Listen) -> Side {
    match listen {
        Listen::Tcp { host, .. } => side_of_host(host),
        Listen::Unix { .. } => Side::Kernel,
    }
}

/// Which stack reaches a backend.
pub fn server_side(address: &ServerAddress) -> Side {
    match address {
        ServerAddress::Tcp { host, .. } => side_of_host(host),
        ServerAddress::Unix { .. } => Side::Kernel,
    }
}

/// Every side of every pool, named for messages.
fn sides(pools: &[Pool]) -> Vec<(String, Side)> {
    let mut out = Vec::new();
    for pool in pools {
        out.push((
            format!("pool '{}' listen {:?}", pool.name, pool.listen),
            listen_side(&pool.listen),
        ));
        for server in &pool.servers {
            out.push((
                format!("pool '{}' server {:?}", pool.name, server.address),
                server_side(&server.address),
            ));
        }
        for seed in pool.cluster_seeds() {
            let address = ServerAddress::Tcp {
                host: seed.host.clone(),
                port: seed.port,
            };
            out.push((
                format!(
                    "pool '{}' cluster seed {}:{}",
                    pool.name, seed.host, seed.port
                ),
                server_side(&address),
            ));
        }
    }
    out
}

/// The stack that serves `pools` under `choice`; an error names the
/// side that cannot be served (a pool mixing kernel and tpa sides is not
/// supported yet: give `--stack kernel`, or move the backends off
/// loopback).
pub fn choose(pools: &[Pool], choice: StackChoice) -> Result<Side, String> {
    let all = sides(pools);
    match choice {
        StackChoice::Kernel => Ok(Side::Kernel),
        StackChoice::Tpa => match all.iter().find(|(_, s)| *s == Side::Kernel) {
            Some((what, _)) => Err(format!(
                "--stack tpa: {what} is the kernel's (loopback, a name or a unix socket); \
                 tpa serves only addresses of its own"
            )),
            None => Ok(Side::Tpa),
        },
        StackChoice::Auto => {
            let kernel = all.iter().find(|(_, s)| *s == Side::Kernel);
            let tpa = all.iter().find(|(_, s)| *s == Side::Tpa);
            match (kernel, tpa) {
                (_, None) => Ok(Side::Kernel),
                (None, Some(_)) => Ok(Side::Tpa),
                (Some((k, _)), Some((t, _))) => Err(format!(
                    "{t} is for tpa but {k} is the kernel's (loopback, a name or a unix \
                     socket): one process on both stacks is not supported yet; \
                     give --stack kernel to serve everything on kernel sockets"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn pools(listen: &str, servers: &[&str]) -> Vec<Pool> {
        let mut yaml = format!("alpha:\n  listen: \"{listen}\"\n  servers:\n");
        for s in servers {
            yaml.push_str(&format!("    - \"{s}:1\"\n"));
        }
        config::parse(&yaml).expect("a config")
    }

    #[test]
    fn loopback_names_and_unix_sockets_are_the_kernels_the_rest_tpas() {
        let kernel = pools("127.0.0.1:22121", &["127.0.0.1:6379", "localhost:6380"]);
        assert_eq!(choose(&kernel, StackChoice::Auto), Ok(Side::Kernel));
        let unix = pools("/tmp/proxy.sock 0666", &["[::1]:6379"]);
        assert_eq!(choose(&unix, StackChoice::Auto), Ok(Side::Kernel));
        let tpa = pools("192.0.2.2:22121", &["192.0.2.1:6379", "[2001:db8::1]:6380"]);
        assert_eq!(choose(&tpa, StackChoice::Auto), Ok(Side::Tpa));
        assert_eq!(choose(&tpa, StackChoice::Kernel), Ok(Side::Kernel));
        assert_eq!(choose(&tpa, StackChoice::Tpa), Ok(Side::Tpa));
        let unspecified = pools("0.0.0.0:22121", &["192.0.2.1:6379"]);
        assert_eq!(choose(&unspecified, StackChoice::Auto), Ok(Side::Tpa));
        let mixed = pools("192.0.2.2:22121", &["127.0.0.1:6379"]);
        let why = choose(&mixed, StackChoice::Auto).unwrap_err();
        assert!(
            why.contains("not supported yet") && why.contains("127.0.0.1"),
            "{why}"
        );
        let why = choose(&kernel, StackChoice::Tpa).unwrap_err();
        assert!(why.starts_with("--stack tpa:"), "{why}");
        assert_eq!("auto".parse(), Ok(StackChoice::Auto));
        assert!("dpdk".parse::<StackChoice>().is_err());
    }
}
