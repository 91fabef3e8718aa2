//! What tpa-echo is told to do, and the checks of it all before anything
//! is opened: a bad flag is an error that names the flag.

use core::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tpa::port::af_packet::RxMode;
use tpa::wire::MacAddr;
use tpa_responder::{IpCidr, PortSpec};
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::trace::TraceConfig;

use crate::payload::MIN_SIZE;

/// How datagrams are sent and received, as both modes share it.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// The kernel's UDP sockets (`--kernel`) instead of tpa.
    pub kernel: bool,
    /// tpa: the device (`--port`).
    pub port: Option<PortSpec>,
    /// tpa: our addresses (`--ip`, at least one). Kernel: the address to
    /// bind, at most one (none: every address).
    pub ips: Vec<IpCidr>,
    /// tpa: our MAC address (`--mac`; default as for tpa-responder).
    pub mac: Option<MacAddr>,
    /// tpa, AF_PACKET only: how the receive ring hands frames over.
    pub rx_mode: Option<RxMode>,
    /// tpa, DPDK only: the EAL's arguments (after `--`).
    pub eal_args: Vec<String>,
    /// tpa: poll again at once when idle (`--spin`; one core at 100%, the
    /// lowest latency) instead of backing off to short sleeps.
    pub spin: bool,
}

/// `tpa-echo server`: echo every datagram to its sender, and (tpa only)
/// every byte of every TCP connection back to where it came from.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Sockets and device.
    pub endpoint: Endpoint,
    /// The UDP port to serve (`--udp-port`).
    pub udp_port: u16,
    /// The TCP port to serve (`--tcp-port`, by default the UDP port's on
    /// tpa; `None`: no TCP, as with `--no-tcp` and on the kernel's
    /// sockets).
    pub tcp_port: Option<u16>,
    /// Stop after this long (`--duration`).
    pub duration: Option<Duration>,
    /// Stop after echoing this many datagrams (`--count`).
    pub count: Option<u64>,
    /// tpa's TCP knobs (`--config`'s `[tcp]`, `TPA_TCP_*`).
    pub tcp: TcpConfig,
    /// The socket trace (`--config`'s `[trace]`, `TPA_TRACE*`).
    pub trace: TraceConfig,
}

/// `tpa-echo client`: send datagrams to an echo server, check the echoes.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Sockets and device.
    pub endpoint: Endpoint,
    /// The echo server (`--to ADDR:PORT`).
    pub to: SocketAddr,
    /// Datagrams to send (`--count`).
    pub count: u64,
    /// UDP payload bytes of each (`--size`).
    pub size: usize,
    /// Datagrams per second at most (`--rate`).
    pub rate: Option<f64>,
    /// Datagrams out at once at most (`--window`).
    pub window: u32,
    /// How long an echo may take before its datagram counts as lost
    /// (`--timeout`).
    pub timeout: Duration,
    /// Our UDP port (`--udp-port`; 0: one of the ephemeral range).
    pub local_port: u16,
}

/// How long an echo may take by default before its datagram counts as
/// lost: a whole neighbor resolution (three solicitations a second apart,
/// RFC 4861), so that a datagram held while an ARP request or its answer
/// was lost and sent again is not counted as lost.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest UDP payload in one IPv4 datagram (65535 - 20 - 8).
pub const MAX_SIZE_V4: usize = 65_507;
/// The largest UDP payload in one IPv6 packet without jumbograms (65535 - 8).
pub const MAX_SIZE_V6: usize = 65_527;

/// A configuration tpa-echo refuses, naming the flag at fault.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// tpa mode without `--port`.
    NoPort,
    /// `--port` with `--kernel`.
    PortWithKernel,
    /// `--mac` with `--kernel`.
    MacWithKernel,
    /// `--spin` with `--kernel`.
    SpinWithKernel,
    /// `--rx-mode` with `--kernel` or a port other than AF_PACKET.
    RxModeWithoutAfPacket,
    /// EAL arguments without a DPDK port.
    EalArgsWithoutDpdk,
    /// A DPDK port in a build without the `dpdk` feature.
    DpdkUnavailable(String),
    /// tpa mode without `--ip`.
    NoAddress,
    /// More than one `--ip` with `--kernel`.
    KernelAddresses(usize),
    /// `--udp-port 0` for the server.
    ServerPortZero,
    /// `--tcp-port 0` for the server.
    TcpPortZero,
    /// `--tcp-port` with `--kernel` (its TCP echo is tpa's only).
    TcpWithKernel,
    /// `--to` with port 0 or an unspecified or multicast address.
    BadDestination(SocketAddr),
    /// `--to` of a family none of the `--ip` addresses has.
    NoSourceFor(SocketAddr),
    /// `--size` outside what the client can send and check.
    Size { size: usize, max: usize },
    /// `--count 0`.
    CountZero,
    /// `--window 0`.
    WindowZero,
    /// `--rate` not a positive finite number.
    Rate(f64),
    /// `--timeout` zero.
    TimeoutZero,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoPort => f.write_str(
                "--port: required for tpa (tap:<ifname>, af_packet:<ifname>, af_xdp:<ifname> or dpdk:<device>); \
                 or --kernel for the kernel's UDP sockets",
            ),
            ConfigError::PortWithKernel => f.write_str(
                "--port: not with --kernel (the kernel's routing picks the interface); leave it out",
            ),
            ConfigError::MacWithKernel => f.write_str("--mac: not with --kernel"),
            ConfigError::SpinWithKernel => {
                f.write_str("--spin: not with --kernel (the kernel's sockets block)")
            }
            ConfigError::RxModeWithoutAfPacket => {
                f.write_str("--rx-mode: only for an AF_PACKET port (--port af_packet:<ifname>)")
            }
            ConfigError::EalArgsWithoutDpdk => f.write_str(
                "EAL arguments (after `--`) are only for a DPDK port (--port dpdk:<device>)",
            ),
            ConfigError::DpdkUnavailable(device) => write!(
                f,
                "--port dpdk:{device}: built without the dpdk feature; rebuild with --features dpdk"
            ),
            ConfigError::NoAddress => {
                f.write_str("--ip: tpa needs at least one address of its own, e.g. 192.0.2.1/24")
            }
            ConfigError::KernelAddresses(n) => write!(
                f,
                "--ip: with --kernel, at most one address to bind ({n} given; none binds every address)"
            ),
            ConfigError::ServerPortZero => f.write_str("--udp-port: 0 is not a port to serve"),
            ConfigError::TcpPortZero => f.write_str("--tcp-port: 0 is not a port to serve"),
            ConfigError::TcpWithKernel => f.write_str(
                "--tcp-port: not with --kernel (the kernel mode echoes UDP only); leave it out",
            ),
            ConfigError::BadDestination(to) => write!(
                f,
                "--to {to}: expected a unicast address and a port other than 0"
            ),
            ConfigError::NoSourceFor(to) => write!(
                f,
                "--to {to}: no --ip of its family ({}) to send from",
                if to.is_ipv4() { "IPv4" } else { "IPv6" }
            ),
            ConfigError::Size { size, max } => write!(
                f,
                "--size {size}: expected {MIN_SIZE} to {max} bytes (a sequence number, then checked bytes)"
            ),
            ConfigError::CountZero => f.write_str("--count: at least 1"),
            ConfigError::WindowZero => f.write_str("--window: at least 1"),
            ConfigError::Rate(r) => {
                write!(f, "--rate {r}: expected a positive number of datagrams per second")
            }
            ConfigError::TimeoutZero => f.write_str("--timeout: longer than 0"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Endpoint {
    /// Checks the flags of the device and addresses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.kernel {
            if self.port.is_some() {
                return Err(ConfigError::PortWithKernel);
            }
            if self.mac.is_some() {
                return Err(ConfigError::MacWithKernel);
            }
            if self.spin {
                return Err(ConfigError::SpinWithKernel);
            }
            if self.rx_mode.is_some() {
                return Err(ConfigError::RxModeWithoutAfPacket);
            }
            if !self.eal_args.is_empty() {
                return Err(ConfigError::EalArgsWithoutDpdk);
            }
            if self.ips.len() > 1 {
                return Err(ConfigError::KernelAddresses(self.ips.len()));
            }
            return Ok(());
        }
        let port = self.port.as_ref().ok_or(ConfigError::NoPort)?;
        if self.rx_mode.is_some() && !matches!(port, PortSpec::AfPacket(_)) {
            return Err(ConfigError::RxModeWithoutAfPacket);
        }
        match port {
            PortSpec::Dpdk(device) if !cfg!(feature = "dpdk") => {
                return Err(ConfigError::DpdkUnavailable(device.clone()))
            }
            PortSpec::Dpdk(_) => {}
            _ if !self.eal_args.is_empty() => return Err(ConfigError::EalArgsWithoutDpdk),
            _ => {}
        }
        if self.ips.is_empty() {
            return Err(ConfigError::NoAddress);
        }
        Ok(())
    }

    /// The address to bind a kernel socket to for talking to `peer_family`
    /// (`--ip`, or the unspecified address of that family).
    pub fn kernel_bind(&self, v6: bool, port: u16) -> SocketAddr {
        match self.ips.first() {
            Some(IpCidr::V4(c)) => SocketAddr::new(IpAddr::V4(c.addr), port),
            Some(IpCidr::V6(c)) => SocketAddr::new(IpAddr::V6(c.addr), port),
            None if v6 => SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), port),
            None => SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), port),
        }
    }

    fn has_family_of(&self, addr: IpAddr) -> bool {
        self.ips
            .iter()
            .any(|ip| matches!(ip, IpCidr::V4(_)) == addr.is_ipv4())
    }
}

impl ServerConfig {
    /// A server on `endpoint` for `udp_port` (and, on tpa, TCP on the
    /// same port), until stopped.
    pub fn new(endpoint: Endpoint, udp_port: u16) -> Self {
        ServerConfig {
            tcp_port: (!endpoint.kernel).then_some(udp_port),
            endpoint,
            udp_port,
            duration: None,
            count: None,
            tcp: TcpConfig::default(),
            trace: TraceConfig::default(),
        }
    }

    /// Checks every flag.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.endpoint.validate()?;
        if self.udp_port == 0 {
            return Err(ConfigError::ServerPortZero);
        }
        match self.tcp_port {
            Some(_) if self.endpoint.kernel => return Err(ConfigError::TcpWithKernel),
            Some(0) => return Err(ConfigError::TcpPortZero),
            _ => {}
        }
        Ok(())
    }
}

impl ClientConfig {
    /// A client of `to` on `endpoint`: `count` datagrams of `size` bytes,
    /// one at a time, [`DEFAULT_TIMEOUT`] each.
    pub fn new(endpoint: Endpoint, to: SocketAddr, count: u64, size: usize) -> Self {
        ClientConfig {
            endpoint,
            to,
            count,
            size,
            rate: None,
            window: 1,
            timeout: DEFAULT_TIMEOUT,
            local_port: 0,
        }
    }

    /// Checks every flag.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.endpoint.validate()?;
        let ip = self.to.ip();
        if self.to.port() == 0 || ip.is_unspecified() || ip.is_multicast() {
            return Err(ConfigError::BadDestination(self.to));
        }
        let families_agree = self.endpoint.ips.is_empty() || self.endpoint.has_family_of(ip);
        if !families_agree || (!self.endpoint.kernel && !self.endpoint.has_family_of(ip)) {
            return Err(ConfigError::NoSourceFor(self.to));
        }
        let max = if ip.is_ipv4() {
            MAX_SIZE_V4
        } else {
            MAX_SIZE_V6
        };
        if !(MIN_SIZE..=max).contains(&self.size) {
            return Err(ConfigError::Size {
                size: self.size,
                max,
            });
        }
        if self.count == 0 {
            return Err(ConfigError::CountZero);
        }
        if self.window == 0 {
            return Err(ConfigError::WindowZero);
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(ConfigError::Rate(r));
            }
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::TimeoutZero);
        }
        Ok(())
    }

    /// The session plan of this configuration.
    pub fn plan(&self) -> crate::session::Plan {
        crate::session::Plan {
            count: self.count,
            size: self.size,
            window: self.window,
            rate: self.rate,
            timeout_ns: u64::try_from(self.timeout.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpa() -> Endpoint {
        Endpoint {
            port: Some("tap:tpa0".parse().unwrap()),
            ips: vec!["192.0.2.1/24".parse().unwrap()],
            ..Endpoint::default()
        }
    }

    fn kernel() -> Endpoint {
        Endpoint {
            kernel: true,
            ..Endpoint::default()
        }
    }

    fn client(endpoint: Endpoint) -> ClientConfig {
        ClientConfig::new(endpoint, "192.0.2.2:7".parse().unwrap(), 10, 64)
    }

    #[test]
    fn good_configurations_pass() {
        assert_eq!(ServerConfig::new(tpa(), 7).validate(), Ok(()));
        assert_eq!(ServerConfig::new(tpa(), 7).tcp_port, Some(7));
        assert_eq!(ServerConfig::new(kernel(), 7).validate(), Ok(()));
        assert_eq!(ServerConfig::new(kernel(), 7).tcp_port, None);
        assert_eq!(client(tpa()).validate(), Ok(()));
        assert_eq!(client(kernel()).validate(), Ok(()));
        let v6 = ClientConfig {
            to: "[2001:db8::2]:7".parse().unwrap(),
            size: MAX_SIZE_V6,
            ..client(kernel())
        };
        assert_eq!(v6.validate(), Ok(()));
    }

    #[test]
    fn every_refusal_names_its_flag() {
        let cases: Vec<(Result<(), ConfigError>, &str)> = vec![
            (
                ServerConfig::new(
                    Endpoint {
                        port: None,
                        ..tpa()
                    },
                    7,
                )
                .validate(),
                "--port: required",
            ),
            (
                ServerConfig::new(
                    Endpoint {
                        port: tpa().port,
                        ..kernel()
                    },
                    7,
                )
                .validate(),
                "--port: not with --kernel",
            ),
            (
                ServerConfig::new(
                    Endpoint {
                        mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
                        ..kernel()
                    },
                    7,
                )
                .validate(),
                "--mac",
            ),
            (
                ServerConfig::new(
                    Endpoint {
                        spin: true,
                        ..kernel()
                    },
                    7,
                )
                .validate(),
                "--spin",
            ),
            (
                ServerConfig::new(
                    Endpoint {
                        rx_mode: Some(RxMode::throughput()),
                        ..tpa()
                    },
                    7,
                )
                .validate(),
                "--rx-mode",
            ),
            (
                ServerConfig::new(
                    Endpoint {
                        eal_args: vec!["--no-huge".into()],
                        ..tpa()
                    },
                    7,
                )
                .validate(),
                "EAL arguments",
            ),
            (
                ServerConfig::new(
                    Endpoint {
                        ips: vec![],
                        ..tpa()
                    },
                    7,
                )
                .validate(),
                "--ip: tpa needs",
            ),
            (
                ServerConfig::new(
                    Endpoint {
                        ips: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
                        ..kernel()
                    },
                    7,
                )
                .validate(),
                "--ip: with --kernel",
            ),
            (ServerConfig::new(tpa(), 0).validate(), "--udp-port: 0"),
            (
                ServerConfig {
                    tcp_port: Some(0),
                    ..ServerConfig::new(tpa(), 7)
                }
                .validate(),
                "--tcp-port: 0",
            ),
            (
                ServerConfig {
                    tcp_port: Some(7),
                    ..ServerConfig::new(kernel(), 7)
                }
                .validate(),
                "--tcp-port: not with --kernel",
            ),
            (
                ClientConfig {
                    to: "192.0.2.2:0".parse().unwrap(),
                    ..client(tpa())
                }
                .validate(),
                "--to 192.0.2.2:0",
            ),
            (
                ClientConfig {
                    to: "0.0.0.0:7".parse().unwrap(),
                    ..client(kernel())
                }
                .validate(),
                "--to 0.0.0.0:7",
            ),
            (
                ClientConfig {
                    to: "[2001:db8::2]:7".parse().unwrap(),
                    ..client(tpa())
                }
                .validate(),
                "no --ip of its family (IPv6)",
            ),
            (
                ClientConfig {
                    to: "[2001:db8::2]:7".parse().unwrap(),
                    ..client(Endpoint {
                        ips: vec!["192.0.2.1".parse().unwrap()],
                        ..kernel()
                    })
                }
                .validate(),
                "no --ip of its family",
            ),
            (
                ClientConfig {
                    size: 7,
                    ..client(tpa())
                }
                .validate(),
                "--size 7: expected 8 to 65507",
            ),
            (
                ClientConfig {
                    size: MAX_SIZE_V4 + 1,
                    ..client(kernel())
                }
                .validate(),
                "--size 65508",
            ),
            (
                ClientConfig {
                    count: 0,
                    ..client(tpa())
                }
                .validate(),
                "--count",
            ),
            (
                ClientConfig {
                    window: 0,
                    ..client(tpa())
                }
                .validate(),
                "--window",
            ),
            (
                ClientConfig {
                    rate: Some(f64::NAN),
                    ..client(tpa())
                }
                .validate(),
                "--rate NaN",
            ),
            (
                ClientConfig {
                    rate: Some(-1.0),
                    ..client(tpa())
                }
                .validate(),
                "--rate -1",
            ),
            (
                ClientConfig {
                    timeout: Duration::ZERO,
                    ..client(tpa())
                }
                .validate(),
                "--timeout",
            ),
        ];
        for (i, (result, flag)) in cases.into_iter().enumerate() {
            let e = result.expect_err(flag).to_string();
            assert!(e.starts_with(flag) || e.contains(flag), "case {i}: {e}");
        }
    }

    #[cfg(not(feature = "dpdk"))]
    #[test]
    fn a_dpdk_port_without_the_feature_says_how_to_get_it() {
        let e = ServerConfig::new(
            Endpoint {
                port: Some("dpdk:net_tap0".parse().unwrap()),
                ..tpa()
            },
            7,
        )
        .validate()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--port dpdk:net_tap0: built without the dpdk feature; rebuild with --features dpdk"
        );
    }

    #[test]
    fn a_kernel_socket_binds_the_given_address_or_any() {
        assert_eq!(
            kernel().kernel_bind(false, 7),
            "0.0.0.0:7".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            kernel().kernel_bind(true, 0),
            "[::]:0".parse::<SocketAddr>().unwrap()
        );
        let one = Endpoint {
            ips: vec!["192.0.2.9/24".parse().unwrap()],
            ..kernel()
        };
        assert_eq!(
            one.kernel_bind(false, 9),
            "192.0.2.9:9".parse::<SocketAddr>().unwrap()
        );
    }
}
