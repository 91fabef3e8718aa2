//! A `--port` opened for several workers, one queue each: the buffer
//! pool, one port per worker (a multi-queue TAP, an AF_PACKET fanout
//! group, AF_XDP sockets on the interface's queues 0.., a DPDK device's
//! queue pairs guarded by `DpdkDevice::worker_ports`), each wrapped so
//! that the neighbour answers one queue receives reach every worker
//! ([`ShareAnswers`]); then the close, and how many buffers did not come
//! back. tpa-tperf and tpa-redis-proxy open their ports here; what runs on
//! them is theirs ([`OnPorts`]), generic over the port's type, which
//! differs per kind.
//!
//! ```text
//! PortSpec ─► pool ─► ports (one per worker) ─► ShareAnswers ─► OnPorts::run
//!                                                                   │
//!            buffers not returned ◄── close (DPDK: the device) ◄───┘
//! ```
//!
//! Beside the host's kernel (AF_XDP), a worker's TCP stack takes its
//! active opens from [`AF_XDP_LOCAL_PORTS`], tells the port its listening
//! ports and learns its neighbours from the kernel: [`beside_kernel`].

use core::fmt;
use std::any::Any;
use std::sync::Arc;

use tpa::buf::{Pool, PoolConfig, PoolError};
use tpa::port::af_packet::{AfPacket, AfPacketConfig, RxMode, TxPath};
use tpa::port::af_xdp::{AfXdp, AfXdpConfig};
use tpa::port::steer::{Handover, ShareAnswers, SteerGuard};
use tpa::port::tap::{Tap, TapConfig};
use tpa::port::{Port, PortError, SharedHost};
use tpa::wire::MacAddr;
use tpa_stages::ops::{collect, Instance};
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::TcpCounters;

use crate::config::{IpCidr, PortSpec, DEFAULT_TAP_MAC};
use crate::serve::{AF_XDP_LOCAL_PORTS, AF_XDP_RX_RESERVE};

/// Inbox depth of the mesh that shares neighbour answers between workers.
pub const SHARE_DEPTH: usize = 64;

/// Inbox depth of the mesh that hands a DPDK worker the frames another
/// worker's queue received for it: a receive ring's worth.
pub const HANDOVER_DEPTH: usize = 1024;

/// How to open a `--port` for several workers.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerPorts {
    /// The device (`--port`).
    pub spec: PortSpec,
    /// Workers, one queue each (at least 1).
    pub workers: u16,
    /// tpa's addresses (`--ip`): an AF_XDP port's filter takes only
    /// frames to them.
    pub ips: Vec<IpCidr>,
    /// Our MAC address (`--mac`): on TAP the device's (default
    /// [`DEFAULT_TAP_MAC`]); on AF_PACKET and DPDK, given, the device
    /// turns promiscuous.
    pub mac: Option<MacAddr>,
    /// Buffers of tpa's pool (TAP, AF_PACKET, AF_XDP; a DPDK device has a
    /// mempool per queue of its own size).
    pub buffers: usize,
    /// The pool's name (in stats).
    pub pool_name: String,
    /// AF_PACKET: how the receive ring hands frames over (`None`: its
    /// default).
    pub rx_mode: Option<RxMode>,
    /// AF_PACKET: how frames go to the kernel (`None`: its default).
    pub tx_path: Option<TxPath>,
    /// TAP and AF_PACKET: the kernel does checksums and TSO.
    pub offloads: bool,
    /// DPDK: the EAL's arguments.
    pub eal_args: Vec<String>,
    /// The program's name, at the head of the lines it logs
    /// (`tpa-tperf`).
    pub program: String,
}

impl WorkerPorts {
    /// `workers` queues of `spec` for `ips`, with every other choice the
    /// port's default and a pool of 8192 buffers named `program`.
    pub fn new(spec: PortSpec, workers: u16, ips: Vec<IpCidr>, program: &str) -> Self {
        WorkerPorts {
            spec,
            workers,
            ips,
            mac: None,
            buffers: 8192,
            pool_name: program.trim_start_matches("tpa-").to_owned(),
            rx_mode: None,
            tx_path: None,
            offloads: false,
            eal_args: Vec::new(),
            program: program.to_owned(),
        }
    }
}

/// Why the ports could not be opened (or, DPDK, closed).
#[derive(Debug)]
pub enum PortsError {
    /// tpa's buffer pool could not be made.
    Pool(PoolError),
    /// The port (or the EAL) refused.
    Open {
        /// The device, as `--port` named it.
        spec: PortSpec,
        /// What it said.
        error: PortError,
    },
    /// A DPDK port in a build without the `dpdk` feature.
    NoDpdk(String),
    /// The DPDK device was still in use when it was to close.
    BusyAtClose(String),
}

impl fmt::Display for PortsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortsError::Pool(e) => write!(f, "buffer pool: {e}"),
            PortsError::Open { spec, error } => write!(f, "--port {spec}: {error}"),
            PortsError::NoDpdk(device) => write!(
                f,
                "--port dpdk:{device}: built without the dpdk feature; rebuild with --features dpdk"
            ),
            PortsError::BusyAtClose(device) => write!(f, "--port dpdk:{device}: busy at close"),
        }
    }
}

impl std::error::Error for PortsError {}

/// A pool the ports take their buffers from, for stats.
#[derive(Debug, Clone)]
pub enum OpenedPool {
    /// tpa's pool (TAP, AF_PACKET, AF_XDP).
    Tpa(Pool),
    /// A DPDK queue's mempool, held weakly: the device takes it back at
    /// its close.
    #[cfg(feature = "dpdk")]
    Dpdk(std::sync::Weak<tpa::port::dpdk::Mempool>),
}

/// What the workers of opened ports need besides their port.
pub struct PortSetup<'a> {
    enter: &'a (dyn Fn() -> Box<dyn Any> + Sync),
    pools: Vec<OpenedPool>,
    #[cfg(feature = "dpdk")]
    device: Option<&'a tpa::port::dpdk::DpdkDevice>,
}

impl PortSetup<'_> {
    /// What a worker thread does first: on DPDK, register with the EAL
    /// (for its mempool cache; a failure is logged, not fatal). Hold what
    /// it returns until the thread ends.
    pub fn enter_worker(&self) -> Box<dyn Any> {
        (self.enter)()
    }

    /// The function [`enter_worker`](Self::enter_worker) calls.
    pub fn enter_fn(&self) -> &(dyn Fn() -> Box<dyn Any> + Sync) {
        self.enter
    }

    /// The pools the ports' buffers come from.
    pub fn pools(&self) -> &[OpenedPool] {
        &self.pools
    }

    /// Has `instance` publish every pool (`tpactl mem`; a DPDK queue's
    /// mempool held weakly: the device takes it back at its close).
    pub fn publish_pools(&self, instance: &Instance) {
        for pool in &self.pools {
            match pool.clone() {
                OpenedPool::Tpa(pool) => instance.add_pool(move || collect::pool(&pool)),
                #[cfg(feature = "dpdk")]
                OpenedPool::Dpdk(pool) => instance.add_pool(move || {
                    pool.upgrade()
                        .map(|p| collect::mempool(&p))
                        .unwrap_or_default()
                }),
            }
        }
    }

    /// The DPDK device, for flow rules (`None` on other ports).
    #[cfg(feature = "dpdk")]
    pub fn dpdk_device(&self) -> Option<&tpa::port::dpdk::DpdkDevice> {
        self.device
    }
}

/// What runs on the opened ports, one per worker (in queue order).
pub trait OnPorts {
    /// What it returns.
    type Out;
    /// Runs on `ports`; `setup` is what each worker needs besides.
    fn run<P: Port + Send + Handed>(
        self,
        ports: Vec<ShareAnswers<P>>,
        setup: &PortSetup<'_>,
    ) -> Self::Out
    where
        P::Buf: Send;
}

/// A port that may hand misplaced frames over to other workers: its
/// counts, for the worker's lines.
pub trait Handed {
    /// Frames handed over to other workers, received from them, and
    /// dropped because the other worker's inbox was full (not those for
    /// a worker already gone, as at the end of a run); `None` for a port
    /// whose steering never misplaces a frame.
    fn handed(&self) -> Option<(u64, u64, u64)> {
        None
    }
}

impl Handed for Tap {}
impl Handed for AfPacket {}
impl Handed for AfXdp {}

impl<P: Port> Handed for SteerGuard<P> {
    fn handed(&self) -> Option<(u64, u64, u64)> {
        let h = self.handover_stats();
        Some((h.sent, h.received, h.full))
    }
}

/// Opens `config.workers` queues of `config.spec`, each wrapped so the
/// neighbour answers it receives reach every worker ([`ShareAnswers`]),
/// and runs `job` on them; then closes them and returns what `job`
/// returned with how many buffers did not come back to their pools (a
/// leak when not 0).
pub fn on_ports<J: OnPorts>(config: &WorkerPorts, job: J) -> Result<(J::Out, usize), PortsError> {
    let open_error = |error: PortError| PortsError::Open {
        spec: config.spec.clone(),
        error,
    };
    let pool = |rx_reserve: usize| {
        Pool::new(PoolConfig {
            name: config.pool_name.clone(),
            capacity: config.buffers,
            rx_reserve,
            ..PoolConfig::default()
        })
        .map_err(PortsError::Pool)
    };
    match &config.spec {
        PortSpec::Tap(name) => {
            let pool = pool(0)?;
            let tap = TapConfig {
                mac: Some(config.mac.unwrap_or(DEFAULT_TAP_MAC)),
                queues: config.workers,
                offloads: config.offloads,
                ..TapConfig::new(name.as_str())
            };
            let ports = Tap::open_queues(&tap, pool.clone()).map_err(open_error)?;
            Ok(on_pool_ports(job, ports, &pool))
        }
        PortSpec::AfPacket(name) => {
            let pool = pool(0)?;
            let af_packet = AfPacketConfig {
                rx_mode: config.rx_mode.unwrap_or_default(),
                tx_path: config.tx_path.unwrap_or_default(),
                queues: config.workers,
                promiscuous: config.mac.is_some(),
                offloads: config.offloads,
                ..AfPacketConfig::new(name.as_str())
            };
            let ports = AfPacket::open_queues(&af_packet, pool.clone()).map_err(open_error)?;
            Ok(on_pool_ports(job, ports, &pool))
        }
        PortSpec::AfXdp(name) => {
            let pool = pool(AF_XDP_RX_RESERVE)?;
            let af_xdp = AfXdpConfig {
                queues: config.workers,
                local_ports: Some(AF_XDP_LOCAL_PORTS),
                ..AfXdpConfig::new(name.as_str(), config.ips.iter().map(|c| c.addr()).collect())
            };
            let ports = AfXdp::open_queues(&af_xdp, pool.clone()).map_err(open_error)?;
            Ok(on_pool_ports(job, ports, &pool))
        }
        #[cfg(feature = "dpdk")]
        PortSpec::Dpdk(device) => on_dpdk(config, device, job),
        #[cfg(not(feature = "dpdk"))]
        PortSpec::Dpdk(device) => Err(PortsError::NoDpdk(device.clone())),
    }
}

/// Runs `job` on `ports`, whose buffers come from tpa's `pool` (nothing
/// to set up on their threads), then drops them and counts the buffers
/// still out.
fn on_pool_ports<J: OnPorts, P: Port + Send + Handed>(
    job: J,
    ports: Vec<P>,
    pool: &Pool,
) -> (J::Out, usize)
where
    P::Buf: Send,
{
    let setup = PortSetup {
        enter: &|| Box::new(()),
        pools: vec![OpenedPool::Tpa(pool.clone())],
        #[cfg(feature = "dpdk")]
        device: None,
    };
    let out = job.run(share_answers(ports), &setup);
    (out, pool.in_use())
}

/// [`on_ports`] on the DPDK device `device`: the EAL from
/// `config.eal_args` (this thread registered with it), the device's queue
/// pairs guarded so that a frame on another worker's queue is handed over
/// to that worker (`DpdkDevice::worker_ports`), each worker thread
/// registered with the EAL; then the device closed and its mempools
/// counted.
#[cfg(feature = "dpdk")]
fn on_dpdk<J: OnPorts>(
    config: &WorkerPorts,
    device: &str,
    job: J,
) -> Result<(J::Out, usize), PortsError> {
    use tpa::buf::BufferPool;
    use tpa::port::dpdk::{DeviceConfig, DpdkDevice, Eal};
    let open_error = |error: PortError| PortsError::Open {
        spec: config.spec.clone(),
        error,
    };
    let eal = Eal::init(&config.eal_args).map_err(open_error)?;
    let _lcore = eal.register_thread().map_err(open_error)?;
    let device_config = DeviceConfig {
        queues: config.workers,
        promiscuous: config.mac.is_some(),
        ..DeviceConfig::default()
    };
    let dev = DpdkDevice::open(eal, device, &device_config).map_err(open_error)?;
    let ports = dev.worker_ports(HANDOVER_DEPTH).map_err(open_error)?;
    let pools = ports
        .iter()
        .map(|port| OpenedPool::Dpdk(Arc::downgrade(port.pool())))
        .collect();
    let program = config.program.as_str();
    let enter = move || -> Box<dyn Any> {
        match eal.register_thread() {
            Ok(lcore) => Box::new(lcore),
            Err(e) => {
                eprintln!("{program}: a worker thread runs without an EAL lcore: {e}");
                Box::new(())
            }
        }
    };
    let setup = PortSetup {
        enter: &enter,
        pools,
        device: Some(&dev),
    };
    let out = job.run(share_answers(ports), &setup);
    drop(setup);
    let pools = dev
        .close()
        .map_err(|_| PortsError::BusyAtClose(device.to_owned()))?;
    Ok((out, pools.iter().map(|p| BufferPool::in_use(&**p)).sum()))
}

/// Each of `ports` (one per worker, in queue order) wrapped so that the
/// neighbour answers one of them receives reach all.
pub fn share_answers<P: Port>(ports: Vec<P>) -> Vec<ShareAnswers<P>>
where
    P::Buf: Send,
{
    let mesh = Handover::mesh(ports.len() as u16, SHARE_DEPTH);
    ports
        .into_iter()
        .zip(mesh)
        .map(|(p, end)| ShareAnswers::new(p, end))
        .collect()
}

/// A worker's line at the end of a run: its queue, its connections (`tcp`
/// counts them), the neighbour answers its port shared with the other
/// workers and received from them.
pub fn worker_line<P: Port>(port: &ShareAnswers<P>, tcp: &TcpCounters) -> String
where
    P::Buf: Send,
{
    let share = port.stats();
    format!(
        "worker {}: {} connections ({} active, {} passive), {} neighbor answers shared, {} received",
        port.caps().queue,
        tcp.active_opens + tcp.passive_opens,
        tcp.active_opens,
        tcp.passive_opens,
        share.answers,
        share.copies_received,
    )
}

/// The frames a worker's port handed over to other workers, received
/// from them and dropped (their inbox full), as a line; `None` for a
/// port that never misplaces a frame ([`Handed`]).
pub fn handed_line<P: Port + Handed>(port: &ShareAnswers<P>) -> Option<String>
where
    P::Buf: Send,
{
    let (sent, received, dropped) = port.port().handed()?;
    Some(format!(
        "queue {}: {sent} frames handed over to other workers, {received} received from them, {dropped} dropped",
        port.caps().queue
    ))
}

/// Beside the host's kernel (`port` is an AF_XDP port): the kernel's side
/// of the interface that the worker's egress path and socket tables get
/// (`Egress::set_shared_host`, `TcpSockets::set_shared_host`: listening
/// ports reach the port's filter, neighbours come from the kernel's
/// table), with `tcp`'s active opens moved to the ports the port took
/// from the kernel ([`AF_XDP_LOCAL_PORTS`]). `None`, `tcp` untouched, on
/// a port that has its interface to itself.
pub fn beside_kernel<P: Port>(port: &P, tcp: &mut TcpConfig) -> Option<Arc<dyn SharedHost>> {
    let host = port.shared_host()?;
    tcp.port_first = *AF_XDP_LOCAL_PORTS.start();
    tcp.port_last = *AF_XDP_LOCAL_PORTS.end();
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the ports it is given and what the setup holds.
    struct Count;

    impl OnPorts for Count {
        type Out = (usize, usize);
        fn run<P: Port + Send + Handed>(
            self,
            ports: Vec<ShareAnswers<P>>,
            setup: &PortSetup<'_>,
        ) -> Self::Out
        where
            P::Buf: Send,
        {
            let _guard = setup.enter_worker();
            (ports.len(), setup.pools().len())
        }
    }

    #[test]
    fn errors_name_the_port_and_the_cause() {
        let e = PortsError::Open {
            spec: "af_packet:nosuch0".parse().expect("a port"),
            error: PortError::InvalidConfig {
                name: "nosuch0".into(),
                what: "no such interface".into(),
            },
        };
        let text = e.to_string();
        assert!(
            text.starts_with("--port af_packet:nosuch0: ") && text.contains("no such interface"),
            "{text}"
        );
        assert_eq!(
            PortsError::BusyAtClose("net_tap0".into()).to_string(),
            "--port dpdk:net_tap0: busy at close"
        );
        assert!(PortsError::NoDpdk("net_tap0".into())
            .to_string()
            .contains("rebuild with --features dpdk"));
    }

    #[test]
    fn a_missing_interface_is_an_error_naming_it() {
        let config = WorkerPorts::new(
            "af_packet:tpa-nosuch9".parse().expect("a port"),
            2,
            vec!["192.0.2.2/24".parse().expect("an address")],
            "tpa-test",
        );
        assert_eq!(config.pool_name, "test");
        match on_ports(&config, Count) {
            Err(e @ PortsError::Open { .. }) => {
                assert!(
                    e.to_string().starts_with("--port af_packet:tpa-nosuch9: "),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_impossible_pool_is_an_error() {
        let config = WorkerPorts {
            buffers: 0,
            ..WorkerPorts::new(
                "tap:tpa-nosuch9".parse().expect("a port"),
                1,
                vec![],
                "tpa-test",
            )
        };
        match on_ports(&config, Count) {
            Err(e @ PortsError::Pool(_)) => assert!(e.to_string().starts_with("buffer pool: ")),
            other => panic!("{other:?}"),
        }
    }
}
