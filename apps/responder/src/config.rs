//! What the responder is told to do: which port, which addresses, what to
//! record and when to stop.

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tpa::port::af_packet::RxMode;
use tpa::wire::MacAddr;
use tpa_stages::acl::Rule;
use tpa_stages::iface::{Interface, Ipv4Cidr, Ipv6Cidr, ParseCidrError};

/// The MAC address used on a TAP port when none is given: locally
/// administered, unicast, fixed so that runs are reproducible.
pub const DEFAULT_TAP_MAC: MacAddr = MacAddr([0x02, 0x74, 0x70, 0x61, 0x00, 0x01]);

/// The device to serve, as given to `--port`.
///
/// ```
/// use tpa_responder::PortSpec;
/// assert_eq!("tap:tpa0".parse(), Ok(PortSpec::Tap("tpa0".into())));
/// assert_eq!("af_packet:veth1".parse(), Ok(PortSpec::AfPacket("veth1".into())));
/// assert_eq!("af_xdp:veth1".parse(), Ok(PortSpec::AfXdp("veth1".into())));
/// assert_eq!("dpdk:net_tap0".parse(), Ok(PortSpec::Dpdk("net_tap0".into())));
/// assert!("eth0".parse::<PortSpec>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// `tap:<ifname>`: a TAP device, created if missing; the kernel is the peer.
    Tap(String),
    /// `af_packet:<ifname>`: an existing interface through AF_PACKET rings.
    AfPacket(String),
    /// `af_xdp:<ifname>`: an existing interface through AF_XDP, beside the
    /// kernel on its addresses (tpa's XDP program hands tpa only its own
    /// flows; queue 0).
    AfXdp(String),
    /// `dpdk:<device>`: a DPDK ethdev by name: a vdev the EAL arguments
    /// create (`--vdev net_tap0,iface=tpa0` makes `net_tap0`) or a PCI
    /// address (`0000:3b:00.0`). Serving one needs the `dpdk` feature.
    Dpdk(String),
}

/// `--port` was not `tap:<ifname>`, `af_packet:<ifname>`, `af_xdp:<ifname>`
/// or `dpdk:<device>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsePortError(String);

impl fmt::Display for ParsePortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: expected tap:<ifname>, af_packet:<ifname>, af_xdp:<ifname> or dpdk:<device>",
            self.0
        )
    }
}

impl std::error::Error for ParsePortError {}

impl FromStr for PortSpec {
    type Err = ParsePortError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParsePortError(s.to_owned());
        let (kind, name) = s.split_once(':').ok_or_else(err)?;
        if name.is_empty() {
            return Err(err());
        }
        match kind {
            "tap" => Ok(PortSpec::Tap(name.to_owned())),
            "af_packet" => Ok(PortSpec::AfPacket(name.to_owned())),
            "af_xdp" => Ok(PortSpec::AfXdp(name.to_owned())),
            "dpdk" => Ok(PortSpec::Dpdk(name.to_owned())),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Tap(n) => write!(f, "tap:{n}"),
            PortSpec::AfPacket(n) => write!(f, "af_packet:{n}"),
            PortSpec::AfXdp(n) => write!(f, "af_xdp:{n}"),
            PortSpec::Dpdk(n) => write!(f, "dpdk:{n}"),
        }
    }
}

/// Parses `--rx-mode`: `low-latency` or `throughput` (an AF_PACKET
/// receive ring with default sizes).
///
/// ```
/// use tpa::port::af_packet::RxMode;
/// use tpa_responder::parse_rx_mode;
/// assert_eq!(parse_rx_mode("throughput"), Ok(RxMode::throughput()));
/// assert!(parse_rx_mode("fast").is_err());
/// ```
pub fn parse_rx_mode(s: &str) -> Result<RxMode, ParseRxModeError> {
    match s {
        "low-latency" => Ok(RxMode::low_latency()),
        "throughput" => Ok(RxMode::throughput()),
        _ => Err(ParseRxModeError(s.to_owned())),
    }
}

/// `--rx-mode` was not `low-latency` or `throughput`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseRxModeError(String);

impl fmt::Display for ParseRxModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: expected low-latency or throughput", self.0)
    }
}

impl std::error::Error for ParseRxModeError {}

/// An IPv4 or IPv6 address with its prefix, as given to `--ip`.
///
/// ```
/// use tpa_responder::IpCidr;
/// assert!(matches!("192.0.2.1/24".parse(), Ok(IpCidr::V4(_))));
/// assert!(matches!("2001:db8::1/64".parse(), Ok(IpCidr::V6(_))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpCidr {
    /// An IPv4 address.
    V4(Ipv4Cidr),
    /// An IPv6 address.
    V6(Ipv6Cidr),
}

impl IpCidr {
    /// The address, without its prefix.
    pub fn addr(&self) -> IpAddr {
        match self {
            IpCidr::V4(c) => IpAddr::V4(c.addr),
            IpCidr::V6(c) => IpAddr::V6(c.addr),
        }
    }
}

impl FromStr for IpCidr {
    type Err = ParseCidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let addr = s.split_once('/').map_or(s, |(a, _)| a);
        match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => s.parse().map(IpCidr::V4),
            _ => s.parse().map(IpCidr::V6),
        }
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpCidr::V4(c) => c.fmt(f),
            IpCidr::V6(c) => c.fmt(f),
        }
    }
}

/// Everything the responder needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The device to serve.
    pub port: PortSpec,
    /// The addresses to answer for.
    pub ips: Vec<IpCidr>,
    /// Our MAC address; `None`: [`DEFAULT_TAP_MAC`] on TAP, the interface's
    /// (or the DPDK device's) own on AF_PACKET and DPDK.
    pub mac: Option<MacAddr>,
    /// Record every frame received and sent to this pcap file.
    pub pcap: Option<PathBuf>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after receiving this many frames.
    pub count: Option<u64>,
    /// Print counters this often (`None`: only at the end).
    pub stats_interval: Option<Duration>,
    /// Arguments for DPDK's EAL (`rte_eal_init`, without a program name),
    /// used with [`PortSpec::Dpdk`] only: e.g. `-l 0 --no-huge --no-pci
    /// --vdev net_tap0,iface=tpa0`.
    pub eal_args: Vec<String>,
    /// How an AF_PACKET port's receive ring hands frames over; `None`: its
    /// default (low latency). Only for [`PortSpec::AfPacket`].
    pub rx_mode: Option<RxMode>,
    /// Access control, in order, first match wins; frames no rule matches
    /// are allowed. Empty: no ACL stage runs.
    pub acl: Vec<Rule>,
    /// Send a gratuitous ARP and an unsolicited neighbor advertisement for
    /// each address when the loop starts.
    pub announce: bool,
}

impl Config {
    /// A configuration serving `port` for `ips`, with defaults otherwise.
    pub fn new(port: PortSpec, ips: Vec<IpCidr>) -> Self {
        Config {
            port,
            ips,
            mac: None,
            pcap: None,
            duration: None,
            count: None,
            stats_interval: None,
            eal_args: Vec::new(),
            rx_mode: None,
            acl: Vec::new(),
            announce: false,
        }
    }

    /// The interface the stages answer for, with MAC address `mac`.
    pub fn interface(&self, mac: MacAddr) -> Interface {
        self.ips
            .iter()
            .fold(Interface::new(mac), |iface, ip| match *ip {
                IpCidr::V4(c) => iface.with_ipv4(c),
                IpCidr::V6(c) => iface.with_ipv6(c),
            })
    }
}
