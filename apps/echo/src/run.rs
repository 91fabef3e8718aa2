//! Running a mode: check the whole configuration, then open what it names
//! and run until done or stopped.

use core::fmt;
use std::io;
use std::net::SocketAddr;

use tpa::app::SocketError;
use tpa::buf::{Pool, PoolConfig, PoolError};
use tpa::worker::StopFlag;
use tpa_responder::{open_af_packet, open_af_xdp, open_tap, PortSpec};

use crate::config::{ClientConfig, ConfigError, Endpoint, ServerConfig};
use crate::kernel;
use crate::report::{ClientReport, ServerReport};
use crate::stack;

/// Why tpa-echo could not run.
#[derive(Debug)]
pub enum Error {
    /// A flag was refused (nothing was opened, or only the port to learn
    /// its MTU).
    Config(ConfigError),
    /// A kernel socket could not be made or used.
    Socket(io::Error),
    /// The buffer pool could not be made.
    Pool(PoolError),
    /// The port could not be opened (or, DPDK, closed).
    Open(tpa_responder::Error),
    /// A tpa socket could not be bound.
    Bind(SocketAddr, SocketError),
    /// A tpa TCP listener could not be opened.
    Listen(SocketAddr, SocketError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => e.fmt(f),
            Error::Socket(e) => write!(f, "kernel socket: {e}"),
            Error::Pool(e) => write!(f, "buffer pool: {e}"),
            Error::Open(e) => e.fmt(f),
            Error::Bind(local, e) => write!(f, "bind udp {local}: {e}"),
            Error::Listen(local, e) => write!(f, "listen tcp {local}: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(e) => Some(e),
            Error::Socket(e) => Some(e),
            Error::Pool(e) => Some(e),
            Error::Open(e) => Some(e),
            Error::Bind(_, e) | Error::Listen(_, e) => Some(e),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

/// The pool of a tpa port tpa-echo opens.
fn pool() -> Result<Pool, Error> {
    Pool::new(PoolConfig {
        name: "echo".into(),
        ..PoolConfig::default()
    })
    .map_err(Error::Pool)
}

/// Opens the port `$endpoint` names and evaluates `$run` with it bound to
/// `$port` (a different type per kind of port, hence a macro); then sets
/// how many buffers of tpa's pool did not come back, or (DPDK) checks the
/// device's pools once it is closed.
macro_rules! on_port {
    ($endpoint:expr, |$port:ident| $run:expr) => {{
        let endpoint: &Endpoint = $endpoint;
        match endpoint.port.as_ref().ok_or(ConfigError::NoPort)? {
            PortSpec::Tap(name) => {
                let pool = pool()?;
                let $port = open_tap(name, endpoint.mac, pool.clone()).map_err(Error::Open)?;
                let mut report = $run?;
                report.buffers_not_returned = Some(pool.in_use());
                Ok(report)
            }
            PortSpec::AfPacket(name) => {
                let pool = pool()?;
                let rx_mode = endpoint.rx_mode.unwrap_or_default();
                let $port = open_af_packet(name, endpoint.mac, rx_mode, pool.clone())
                    .map_err(Error::Open)?;
                let mut report = $run?;
                report.buffers_not_returned = Some(pool.in_use());
                Ok(report)
            }
            PortSpec::AfXdp(name) => {
                let addresses = endpoint.ips.iter().map(|c| c.addr()).collect();
                let (port, pool) =
                    open_af_xdp(name, addresses, None, "echo").map_err(Error::Open)?;
                let $port = port;
                let mut report = $run?;
                report.buffers_not_returned = Some(pool.in_use());
                Ok(report)
            }
            #[cfg(feature = "dpdk")]
            PortSpec::Dpdk(device) => {
                let (_lcore, dev, $port) = dpdk::open(device, endpoint)?;
                let mut report = $run?;
                report.buffers_not_returned = Some(dpdk::close(dev)?);
                Ok(report)
            }
            #[cfg(not(feature = "dpdk"))]
            PortSpec::Dpdk(device) => Err(ConfigError::DpdkUnavailable(device.clone()).into()),
        }
    }};
}

/// Runs the server of `config` until `stop` (or its count or duration);
/// `ready` is called with a line saying where it listens once it does.
pub fn run_server(
    config: &ServerConfig,
    stop: &StopFlag,
    ready: impl FnOnce(&str),
) -> Result<ServerReport, Error> {
    run_server_with(config, stop, None, ready)
}

/// [`run_server`], publishing tpa's stats through `instance` if given
/// (its stats files, control socket and Prometheus endpoint).
pub fn run_server_with(
    config: &ServerConfig,
    stop: &StopFlag,
    instance: Option<&tpa_stages::ops::Instance>,
    ready: impl FnOnce(&str),
) -> Result<ServerReport, Error> {
    config.validate()?;
    if config.endpoint.kernel {
        let socket = kernel::bind_server(config).map_err(Error::Socket)?;
        let local = socket.local_addr().map_err(Error::Socket)?;
        ready(&format!("listening on udp {local} (kernel)"));
        return kernel::serve(&socket, config, stop).map_err(Error::Socket);
    }
    on_port!(&config.endpoint, |port| stack::serve(
        port, config, stop, instance, ready
    ))
}

/// Runs the client of `config` until every datagram came back or timed out
/// (or `stop`).
pub fn run_client(config: &ClientConfig, stop: &StopFlag) -> Result<ClientReport, Error> {
    config.validate()?;
    if config.endpoint.kernel {
        return kernel::run_client(config, stop).map_err(Error::Socket);
    }
    on_port!(&config.endpoint, |port| stack::run_client(
        port, config, stop
    ))
}

/// DPDK ports (feature `dpdk`): the EAL from the arguments after `--`, the
/// ethdev by name, its queue 0.
#[cfg(feature = "dpdk")]
mod dpdk {
    use tpa::buf::BufferPool;
    use tpa::port::dpdk::{DpdkDevice, DpdkPort, Eal, EalThread};
    use tpa::port::PortError;

    use super::{Endpoint, Error};

    /// Initialises the EAL (once per process), registers this thread with
    /// it (for as long as the returned guard lives: the port is served on
    /// this thread) and opens `device`'s queue 0.
    pub fn open(
        device: &str,
        endpoint: &Endpoint,
    ) -> Result<(EalThread, DpdkDevice, DpdkPort), Error> {
        let port_error = |e| Error::Open(tpa_responder::Error::Port(e));
        let eal = Eal::init(&endpoint.eal_args).map_err(port_error)?;
        let lcore = eal.register_thread().map_err(port_error)?;
        let (dev, port) = tpa_responder::open_dpdk(device, endpoint.mac, &endpoint.eal_args)
            .map_err(Error::Open)?;
        Ok((lcore, dev, port))
    }

    /// Closes `dev` (its queues give their mbufs back) and returns how many
    /// mbufs of its pools are still out.
    pub fn close(dev: DpdkDevice) -> Result<usize, Error> {
        let name = dev.name().to_owned();
        let pools = dev
            .close()
            .map_err(|_| Error::Open(tpa_responder::Error::Port(PortError::Busy { name })))?;
        Ok(pools.iter().map(|p| BufferPool::in_use(&**p)).sum())
    }
}
