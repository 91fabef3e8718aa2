//! Running the responder: open the port, loop until told to stop, report.

use core::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tpa::buf::{Pool, PoolError};
use tpa::port::af_packet::{AfPacket, AfPacketConfig, RxMode};
use tpa::port::af_xdp::{AfXdp, AfXdpConfig};
use tpa::port::tap::{Tap, TapConfig};
use tpa::port::{Port, PortError};
use tpa::stage::earliest;
use tpa::time::Clock;
use tpa::wire::MacAddr;
use tpa::worker::{run_loop, IdlePolicy, Progress, StopFlag, WorkLoop};
use tpa_stages::acl::{Acl, Action};
use tpa_stages::pcap::PcapCapture;

use crate::config::{Config, DEFAULT_TAP_MAC};
use crate::pipeline::{build, Responder};

/// Why the responder could not run.
#[derive(Debug)]
pub enum Error {
    /// `--ip` was not given.
    NoAddress,
    /// The buffer pool could not be created.
    Pool(PoolError),
    /// The port could not be opened.
    Port(PortError),
    /// The capture file could not be created.
    Pcap { path: String, source: io::Error },
    /// A DPDK port was asked of a build without the `dpdk` feature.
    DpdkUnavailable { device: String },
    /// EAL arguments were given, but the port is not a DPDK one.
    EalArgsWithoutDpdk,
    /// A receive mode was given, but the port is not an AF_PACKET one.
    RxModeWithoutAfPacket,
    /// The responder was asked to serve an AF_XDP port: beside the kernel,
    /// ARP and ping (all it answers) are the kernel's.
    AfXdpUnsupported,
    /// Once the responder stopped and its port was closed, buffers of a
    /// pool had not come back: a leak.
    BuffersNotReturned {
        /// The pool's name.
        pool: String,
        /// Buffers still out.
        out: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAddress => f.write_str("no address to answer for: give at least one --ip"),
            Error::Pool(e) => write!(f, "buffer pool: {e}"),
            Error::Port(e) => write!(f, "port: {e}"),
            Error::Pcap { path, source } => write!(f, "capture file {path}: {source}"),
            Error::DpdkUnavailable { device } => write!(
                f,
                "port dpdk:{device}: built without the dpdk feature; rebuild with --features dpdk"
            ),
            Error::EalArgsWithoutDpdk => f.write_str(
                "EAL arguments (after `--`) are only for a DPDK port (--port dpdk:<device>)",
            ),
            Error::RxModeWithoutAfPacket => {
                f.write_str("--rx-mode is only for an AF_PACKET port (--port af_packet:<ifname>)")
            }
            Error::AfXdpUnsupported => f.write_str(
                "an AF_XDP port leaves ARP and ping to the kernel: the responder has nothing to answer there",
            ),
            Error::BuffersNotReturned { pool, out } => write!(
                f,
                "pool {pool}: {out} buffers not returned after the port closed (a leak)"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Pool(e) => Some(e),
            Error::Port(e) => Some(e),
            Error::Pcap { source, .. } => Some(source),
            Error::NoAddress
            | Error::DpdkUnavailable { .. }
            | Error::EalArgsWithoutDpdk
            | Error::RxModeWithoutAfPacket
            | Error::AfXdpUnsupported
            | Error::BuffersNotReturned { .. } => None,
        }
    }
}

/// What the responder did, reported when it stops.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The MAC address it answered with.
    pub mac: MacAddr,
    /// Frames received.
    pub rx: u64,
    /// Frames the port accepted for transmission.
    pub tx: u64,
    /// ARP requests answered.
    pub arp_replies: u64,
    /// ICMPv4 echo requests answered.
    pub icmpv4_replies: u64,
    /// Neighbor solicitations answered.
    pub ndp_replies: u64,
    /// ICMPv6 echo requests answered.
    pub icmpv6_replies: u64,
    /// Frames written to the capture file.
    pub captured: u64,
    /// IPv4 neighbors learned from ARP.
    pub neighbors_v4: Vec<(Ipv4Addr, MacAddr)>,
    /// IPv6 neighbors learned from NDP.
    pub neighbors_v6: Vec<(Ipv6Addr, MacAddr)>,
    /// Every stage's counters, as the pipeline prints them.
    pub counters: String,
    /// Buffers of the pool `run` made that were not back once the port
    /// and pipeline were gone (a leak when not 0); `None` where the caller
    /// owns the pool ([`serve`]) or the port is DPDK's.
    pub buffers_not_returned: Option<usize>,
}

impl Summary {
    /// One line of the main counters.
    pub fn line(&self) -> String {
        format!(
            "rx {} tx {} arp {} icmp {} ndp {} icmp6 {} captured {}",
            self.rx,
            self.tx,
            self.arp_replies,
            self.icmpv4_replies,
            self.ndp_replies,
            self.icmpv6_replies,
            self.captured
        )
    }
}

fn summarize<P: Port>(r: &Responder<P>) -> Summary {
    let stats = r.stats();
    Summary {
        mac: r.port().caps().mac,
        rx: stats.counters().rx,
        tx: stats.queue_counters().tx_sent,
        arp_replies: r.arp().stats.transmitted,
        icmpv4_replies: r.icmpv4().stats.transmitted,
        ndp_replies: r.ndp().stats.transmitted,
        icmpv6_replies: r.icmpv6().stats.transmitted,
        captured: r.capture().map_or(0, |c| c.stats().written),
        neighbors_v4: r
            .egress()
            .neighbors_v4()
            .iter()
            .filter_map(|n| Some((n.ip, n.mac?)))
            .collect(),
        neighbors_v6: r
            .egress()
            .neighbors_v6()
            .iter()
            .filter_map(|n| Some((n.ip, n.mac?)))
            .collect(),
        counters: stats.to_string(),
        buffers_not_returned: None,
    }
}

/// The responder's loop as a [`WorkLoop`]: runs the pipeline, prints
/// counters now and then, and raises the stop flag when the duration or
/// count is reached.
struct ServeLoop<'a, P: Port, L> {
    responder: Responder<P>,
    stop: &'a StopFlag,
    clock: &'static Clock,
    deadline_ns: Option<u64>,
    count: Option<u64>,
    interval_ns: Option<u64>,
    next_report_ns: u64,
    log: L,
}

impl<P: Port, L: FnMut(&str)> WorkLoop for ServeLoop<'_, P, L> {
    type Report = Summary;

    fn run_once(&mut self) -> Progress {
        let done = self.responder.run_once();
        let now = self.clock.now_ns();
        if self.deadline_ns.is_some_and(|d| now >= d)
            || self
                .count
                .is_some_and(|c| self.responder.stats().counters().rx >= c)
        {
            self.stop.raise();
        }
        if let Some(interval) = self.interval_ns {
            if now >= self.next_report_ns {
                self.next_report_ns = now + interval;
                (self.log)(&summarize(&self.responder).line());
            }
        }
        // Wake for the pipeline's timers, the end of the run and the next
        // counters line, whichever comes first.
        let mut progress = Progress::from(done);
        for deadline in [
            self.deadline_ns,
            self.interval_ns.map(|_| self.next_report_ns),
        ] {
            progress.next_deadline_ns = earliest(progress.next_deadline_ns, deadline);
        }
        progress
    }

    fn finish(mut self) -> Summary {
        let summary = summarize(&self.responder);
        if let Some(capture) = self.responder.capture_mut() {
            if let Err(e) = capture.flush() {
                (self.log)(&format!("capture file: {e}"));
            }
        }
        summary
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Serves an opened port until `stop` is raised (or the configured duration
/// or count is reached), calling `log` with a counters line every
/// `stats_interval`. Returns what was done.
///
/// The responder answers with `config.mac` when one is given and differs
/// from the port's own address (the port must then receive frames sent to
/// it: open it promiscuous), with the port's MAC address otherwise.
pub fn serve<P: Port>(
    port: P,
    config: &Config,
    stop: &StopFlag,
    log: impl FnMut(&str),
) -> Result<Summary, Error> {
    match config.mac {
        Some(mac) if mac != port.caps().mac => {
            let mut caps = port.caps().clone();
            caps.mac = mac;
            serve_as_port(WithMac { port, caps }, config, stop, log)
        }
        _ => serve_as_port(port, config, stop, log),
    }
}

/// Serves `port` (see [`serve`]) answering with its own MAC address.
fn serve_as_port<P: Port>(
    port: P,
    config: &Config,
    stop: &StopFlag,
    log: impl FnMut(&str),
) -> Result<Summary, Error> {
    if config.ips.is_empty() {
        return Err(Error::NoAddress);
    }
    let iface = config.interface(port.caps().mac);
    let capture = match &config.pcap {
        Some(path) => Some(PcapCapture::create(path).map_err(|source| Error::Pcap {
            path: path.display().to_string(),
            source,
        })?),
        None => None,
    };
    let mut responder = build(port, &iface, capture).announcing(config.announce);
    if !config.acl.is_empty() {
        let acl = config
            .acl
            .iter()
            .cloned()
            .fold(Acl::new(Action::Allow), Acl::rule);
        responder = responder.with_acl(acl);
    }
    let clock = Clock::global();
    let start = clock.now_ns();
    let mut work = ServeLoop {
        responder,
        stop,
        clock,
        deadline_ns: config.duration.map(|d| start.saturating_add(nanos(d))),
        count: config.count,
        interval_ns: config.stats_interval.map(nanos).filter(|&n| n > 0),
        next_report_ns: start + config.stats_interval.map_or(0, nanos),
        log,
    };
    run_loop(&mut work, stop, IdlePolicy::default());
    Ok(work.finish())
}

/// Opens the port `config` names, with buffers from `pool`.
pub fn open_tap(name: &str, mac: Option<MacAddr>, pool: Pool) -> Result<Tap, Error> {
    let config = TapConfig {
        mac: Some(mac.unwrap_or(DEFAULT_TAP_MAC)),
        ..TapConfig::new(name)
    };
    Tap::open(&config, pool).map_err(Error::Port)
}

/// Opens an AF_PACKET port on `name` receiving in `rx_mode`. With a `mac`
/// other than the interface's own, the interface is put in promiscuous mode
/// so that frames to that address arrive.
pub fn open_af_packet(
    name: &str,
    mac: Option<MacAddr>,
    rx_mode: RxMode,
    pool: Pool,
) -> Result<AfPacket, Error> {
    let mut config = AfPacketConfig {
        rx_mode,
        ..AfPacketConfig::new(name)
    };
    if mac.is_some() {
        config.promiscuous = true;
    }
    AfPacket::open(&config, pool).map_err(Error::Port)
}

/// The buffers of an AF_XDP port: the pool is its UMEM, and keeps a
/// receive reserve of the fill ring's size.
pub const AF_XDP_RX_RESERVE: usize = 1024;

/// tpa's active-open local ports beside the kernel: above Linux's
/// default ephemeral range (32768-60999), so the kernel keeps all of its
/// own (they are reserved from it all the same while the port is open).
pub const AF_XDP_LOCAL_PORTS: std::ops::RangeInclusive<u16> = 61000..=65535;

/// Opens an AF_XDP port on `name`'s queue 0 for `addresses` (beside the
/// kernel, which keeps serving them on every other port), with its own
/// pool named `pool_name`; `local_ports` are tpa's active-open ports
/// (taken from the kernel's ephemeral range while the port is open).
pub fn open_af_xdp(
    name: &str,
    addresses: Vec<std::net::IpAddr>,
    local_ports: Option<std::ops::RangeInclusive<u16>>,
    pool_name: &str,
) -> Result<(AfXdp, Pool), Error> {
    let pool = Pool::new(tpa::buf::PoolConfig {
        name: pool_name.into(),
        rx_reserve: AF_XDP_RX_RESERVE,
        ..tpa::buf::PoolConfig::default()
    })
    .map_err(Error::Pool)?;
    let config = AfXdpConfig {
        local_ports,
        ..AfXdpConfig::new(name, addresses)
    };
    let port = AfXdp::open(&config, pool.clone()).map_err(Error::Port)?;
    Ok((port, pool))
}

/// A port answering with a MAC address of our choosing (AF_PACKET and DPDK
/// ports in promiscuous mode).
struct WithMac<P> {
    port: P,
    caps: tpa::port::PortCaps,
}

impl<P: Port> Port for WithMac<P> {
    type Buf = P::Buf;
    #[inline]
    fn rx_burst<const N: usize>(&mut self, rx: &mut tpa::port::Burst<P::Buf, N>) -> usize {
        self.port.rx_burst(rx)
    }
    #[inline]
    fn tx_burst<const N: usize>(&mut self, tx: &mut tpa::port::Burst<P::Buf, N>) -> usize {
        self.port.tx_burst(tx)
    }
    fn pool(&self) -> &tpa::buf::PoolOf<P::Buf> {
        self.port.pool()
    }
    fn caps(&self) -> &tpa::port::PortCaps {
        &self.caps
    }
}
