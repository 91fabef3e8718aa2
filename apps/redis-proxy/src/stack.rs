//! Which stack serves the proxy: the rule of the issue, as a function of
//! the pools and of tpa's addresses (`--ip`). tpa serves the addresses
//! it owns: a pool listening on one of `--ip`'s addresses (or on the
//! unspecified address, when `--ip` is given) is tpa's; a listener on any
//! other address, a name or a unix socket is the kernel's, as nutcracker
//! binds it. On tpa, a backend at a loopback address, a name or a unix
//! socket is reached on kernel sockets (a userspace stack cannot own
//! those), every other backend on tpa.

use std::fmt;
use std::net::IpAddr;

use crate::config::{Listen, Pool, ServerAddress};

/// The stack asked for (`--stack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StackChoice {
    /// By the addresses (the default): tpa when the pools listen on tpa's
    /// addresses, kernel sockets when none is given.
    #[default]
    Auto,
    /// Kernel sockets for everything (comparison, users without root).
    Kernel,
    /// tpa: every pool must listen on one of tpa's addresses.
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

fn parse_host(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
}

/// Which stack serves a pool's `listen:`, tpa owning `ips`.
pub fn listen_side(listen: &Listen, ips: &[IpAddr]) -> Side {
    match listen {
        Listen::Tcp { host, .. } => match parse_host(host) {
            Some(ip) if !ips.is_empty() && (ip.is_unspecified() || ips.contains(&ip)) => Side::Tpa,
            _ => Side::Kernel,
        },
        Listen::Unix { .. } => Side::Kernel,
    }
}

/// Which stack reaches a backend when the proxy runs on tpa.
pub fn server_side(address: &ServerAddress) -> Side {
    match address {
        ServerAddress::Tcp { host, .. } => match parse_host(host) {
            Some(ip) if !ip.is_loopback() => Side::Tpa,
            // Loopback, or a name (the kernel's resolver; most often
            // `localhost`).
            _ => Side::Kernel,
        },
        ServerAddress::Unix { .. } => Side::Kernel,
    }
}

/// The stack that serves `pools` under `choice`, tpa owning `ips`; an
/// error names the listener that cannot be served (pools listening on
/// both stacks in one process are not supported yet).
pub fn choose(pools: &[Pool], choice: StackChoice, ips: &[IpAddr]) -> Result<Side, String> {
    let sides: Vec<(String, Side)> = pools
        .iter()
        .map(|p| {
            (
                format!("pool '{}' listens on {:?}", p.name, p.listen),
                listen_side(&p.listen, ips),
            )
        })
        .collect();
    let kernel = sides.iter().find(|(_, s)| *s == Side::Kernel);
    let tpa = sides.iter().find(|(_, s)| *s == Side::Tpa);
    match choice {
        StackChoice::Kernel => Ok(Side::Kernel),
        StackChoice::Auto if ips.is_empty() => Ok(Side::Kernel),
        StackChoice::Tpa if ips.is_empty() => Err(
            "--ip: tpa needs an address of its own, the pools' listen address, \
             e.g. --ip 192.0.2.2/24 (or --stack kernel for kernel sockets)"
                .into(),
        ),
        StackChoice::Auto | StackChoice::Tpa => match (kernel, tpa) {
            (None, _) => Ok(Side::Tpa),
            (Some((k, _)), None) => Err(format!(
                "--ip is given but {k}, not one of tpa's addresses \
                 (drop --ip, or give --stack kernel, for kernel sockets)"
            )),
            (Some((k, _)), Some((t, _))) => Err(format!(
                "{t} is tpa's but {k} is the kernel's: pools on both stacks in \
                 one process are not supported yet; give --stack kernel to serve \
                 everything on kernel sockets"
            )),
        },
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
    fn tpa_serves_its_own_addresses_and_the_kernel_the_rest() {
        let ours: Vec<IpAddr> = vec!["192.0.2.2".parse().unwrap()];
        let nutcracker = pools("127.0.0.1:22121", &["10.0.0.1:6379", "localhost:6380"]);
        assert_eq!(
            choose(&nutcracker, StackChoice::Auto, &[]),
            Ok(Side::Kernel)
        );
        let any = pools("0.0.0.0:22121", &["10.0.0.1:6379"]);
        assert_eq!(choose(&any, StackChoice::Auto, &[]), Ok(Side::Kernel));
        assert_eq!(choose(&any, StackChoice::Auto, &ours), Ok(Side::Tpa));
        let tpa = pools("192.0.2.2:22121", &["192.0.2.1:6379", "127.0.0.1:6380"]);
        assert_eq!(choose(&tpa, StackChoice::Auto, &ours), Ok(Side::Tpa));
        assert_eq!(choose(&tpa, StackChoice::Tpa, &ours), Ok(Side::Tpa));
        assert_eq!(choose(&tpa, StackChoice::Kernel, &ours), Ok(Side::Kernel));
        assert_eq!(choose(&tpa, StackChoice::Auto, &[]), Ok(Side::Kernel));
        let why = choose(&tpa, StackChoice::Tpa, &[]).unwrap_err();
        assert!(why.starts_with("--ip: tpa needs an address"), "{why}");
        let why = choose(&nutcracker, StackChoice::Auto, &ours).unwrap_err();
        assert!(why.contains("not one of tpa's addresses"), "{why}");
        let mut both = pools("192.0.2.2:22121", &["192.0.2.1:6379"]);
        both.extend(pools("/tmp/proxy.sock 0666", &["[::1]:6379"]));
        let why = choose(&both, StackChoice::Auto, &ours).unwrap_err();
        assert!(why.contains("not supported yet"), "{why}");
        assert_eq!(server_side(&tpa[0].servers[0].address), Side::Tpa);
        assert_eq!(server_side(&tpa[0].servers[1].address), Side::Kernel);
        assert_eq!(server_side(&nutcracker[0].servers[1].address), Side::Kernel);
        assert_eq!("auto".parse(), Ok(StackChoice::Auto));
        assert!("dpdk".parse::<StackChoice>().is_err());
    }
}
