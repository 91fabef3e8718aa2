//! The proxy on tpa's own TCP stack: one `#[pipeline]` per worker on a
//! port (a TAP device by default, any interface through AF_PACKET, a DPDK
//! port, or an interface through AF_XDP beside the kernel on the host's
//! own address), whose inline app ([`ProxyApp`]) drives the same sans-IO
//! [`Engine`] as the kernel runtime from tpa's socket calls and events.
//!
//! ```text
//! port ─► Ethernet front ─┬─► ARP responder
//!                          ├─► IPv4 input ─┬─► TCP input ─► TCP sockets ─► ProxyApp
//!                          │               └─► ICMPv4 echo, TCP's ICMP ─► discard
//!                          └─► IPv6 input ─┬─► TCP input ─► TCP sockets ─► ProxyApp
//!                                          └─► NDP, ICMPv6 echo, TCP's ICMP ─► discard
//! ```
//!
//! Workers are shared-nothing: each has its own engine, its own listener
//! on every pool's address (a client's SYN lands on the worker its
//! 4-tuple steers to) and its own server connections, opened from ports
//! whose replies land on its own queue. The ports are opened as tperf's
//! are ([`tpa_responder::workers`]): a worker's queue of a multi-queue
//! TAP, an AF_PACKET fanout group, AF_XDP sockets or a DPDK device's
//! queue pairs (a frame the device put on another worker's queue handed
//! over to that worker), neighbour answers shared between workers.
//! Beside the kernel (AF_XDP), tpa takes the pools' listening ports and
//! its active-open range (61000-65535) from the kernel on the host's
//! address, and learns its neighbours from the kernel's table.
//!
//! The stats port stays on a kernel socket, looked at by worker 0 every
//! few milliseconds from the app's `poll`; every worker posts its
//! engine's counters as often, and the stats JSON sums them.
//!
//! The proxy is a tpa instance (doc/operations.md; `ops.rs`): each worker
//! publishes its loop, stages, sockets, pools and neighbours, and its
//! engine's counters per pool, for `tpactl` and the Prometheus endpoint.

mod app;
mod ops;
mod slots;

use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

use tpa::app::{App, Events};
use tpa::buf::PacketBuf;
use tpa::port::steer::{ShareAnswers, Steering};
use tpa::port::Port;
use tpa::state::State;
use tpa::wire::MacAddr;
use tpa::worker::{run_loop, IdlePolicy, Progress, StopFlag, WorkLoop};
use tpa_responder::tcp_stack::{tcp_egress, tcp_front, TcpFront};
use tpa_responder::workers::{
    handed_line, on_ports, worker_line, Handed, OnPorts, PortSetup, PortsError, WorkerPorts,
};
use tpa_responder::{IpCidr, PortSpec};
use tpa_stages::egress::Egress;
use tpa_stages::iface::Interface;
use tpa_stages::ops::{run_metered, Instance, Publisher, Settings};
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::{TcpInput, TcpSockets};
use tpa_stages::trace::TraceConfig;

pub use app::ProxyApp;

use crate::config::{Listen, Pool};
use crate::proxy::{Engine, Limits};

/// The port tpa uses when `--port` is not given.
pub const DEFAULT_PORT_SPEC: &str = "tap:tpa0";

/// What the loop does when it has nothing to do (`--idle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Idle {
    /// Spin a while after the last work, then block on the port until a
    /// frame or the next timer (the default).
    #[default]
    Wait,
    /// Sleep 50 µs at a time after 1024 idle turns.
    Sleep,
    /// Poll again at once (a core at 100 %, the lowest latency).
    Spin,
}

impl std::str::FromStr for Idle {
    type Err = String;

    fn from_str(s: &str) -> Result<Idle, String> {
        match s {
            "wait" => Ok(Idle::Wait),
            "sleep" => Ok(Idle::Sleep),
            "spin" => Ok(Idle::Spin),
            other => Err(format!("{other}: wait, sleep or spin")),
        }
    }
}

impl Idle {
    fn policy(self) -> IdlePolicy {
        match self {
            Idle::Wait => IdlePolicy::wait(),
            Idle::Sleep => IdlePolicy::default(),
            Idle::Spin => IdlePolicy::Spin,
        }
    }
}

/// tpa's side: the device, our addresses, the workers.
#[derive(Debug, Clone)]
pub struct TpaOptions {
    /// The device (`--port`, default `tap:tpa0`).
    pub port: PortSpec,
    /// Our addresses (`--ip`, at least one).
    pub ips: Vec<IpCidr>,
    /// Our MAC address (`--mac`; TAP default 02:74:70:61:00:01, else the
    /// interface's own).
    pub mac: Option<MacAddr>,
    /// Workers (`--workers`), each its own queue of the port.
    pub workers: u16,
    /// What the loop does when idle (`--idle`).
    pub idle: Idle,
    /// DPDK only: the EAL's arguments (after `--`).
    pub eal_args: Vec<String>,
    /// The TCP knobs, the socket trace and the instance (stats, control
    /// socket, Prometheus): `--tpa-config`'s tables, the `TPA_*`
    /// variables, `--id`, `--metrics`, `--no-stats`.
    pub settings: Settings,
}

/// Why tpa's side could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpaError(pub String);

impl fmt::Display for TpaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TpaError {}

impl TpaOptions {
    /// Checks the flags against the pools: an address of our own, each
    /// pool's listen address one of ours (or unspecified), a port kind
    /// this build runs (DPDK needs the `dpdk` feature), EAL arguments
    /// with DPDK only, at least one worker.
    pub fn validate(&self, pools: &[Pool]) -> Result<(), TpaError> {
        if self.ips.is_empty() {
            return Err(TpaError(
                "--ip: tpa needs an address of its own, the pools' listen address, \
                 e.g. --ip 192.0.2.2/24 (or --stack kernel for kernel sockets)"
                    .into(),
            ));
        }
        if self.workers == 0 {
            return Err(TpaError("--workers: at least 1".into()));
        }
        match &self.port {
            PortSpec::Dpdk(device) if !cfg!(feature = "dpdk") => {
                return Err(TpaError(format!(
                    "--port dpdk:{device}: built without the dpdk feature; \
                     rebuild with --features dpdk"
                )))
            }
            PortSpec::Dpdk(_) => {}
            _ if !self.eal_args.is_empty() => {
                return Err(TpaError(
                    "EAL arguments (after `--`) are only for a DPDK port (--port dpdk:<device>)"
                        .into(),
                ))
            }
            _ => {}
        }
        for pool in pools {
            let addr = listen_addr(&pool.listen).map_err(TpaError)?;
            if !addr.ip().is_unspecified() && !self.owns(addr.ip()) {
                return Err(TpaError(format!(
                    "pool '{}' listens on {addr}, not one of tpa's --ip addresses",
                    pool.name
                )));
            }
        }
        Ok(())
    }

    fn owns(&self, ip: IpAddr) -> bool {
        self.ips.iter().any(|c| match (*c, ip) {
            (IpCidr::V4(c), IpAddr::V4(a)) => c.addr == a,
            (IpCidr::V6(c), IpAddr::V6(a)) => c.addr == a,
            _ => false,
        })
    }

    fn interface(&self, mac: MacAddr) -> Interface {
        self.ips
            .iter()
            .fold(Interface::new(mac), |iface, ip| match *ip {
                IpCidr::V4(c) => iface.with_ipv4(c),
                IpCidr::V6(c) => iface.with_ipv6(c),
            })
    }

    /// The device, as `--port` names it.
    pub fn port_name(&self) -> String {
        match &self.port {
            PortSpec::Tap(n) => format!("tap:{n}"),
            PortSpec::AfPacket(n) => format!("af_packet:{n}"),
            PortSpec::AfXdp(n) => format!("af_xdp:{n}"),
            PortSpec::Dpdk(n) => format!("dpdk:{n}"),
        }
    }
}

/// A pool's listen address as a socket address (tpa takes addresses, not
/// names).
fn listen_addr(listen: &Listen) -> Result<SocketAddr, String> {
    match listen {
        Listen::Tcp { host, port } => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            bare.parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, *port))
                .map_err(|_| format!("listen {host}:{port}: tpa listens on addresses, not names"))
        }
        Listen::Unix { path, .. } => Err(format!(
            "listen {path}: a unix socket is the kernel's (--stack kernel)"
        )),
    }
}

/// The front with its branches (shared with tperf:
/// [`tpa_responder::tcp_stack`]).
pub type ProxyFront<B> = TcpFront<B>;

/// What the stages and the app share.
#[derive(State)]
pub struct ProxyState<B: PacketBuf> {
    /// IP output, neighbor resolution, Ethernet.
    #[polled]
    pub egress: Egress<B>,
    /// The TCP socket table.
    #[polled]
    pub tcp: TcpSockets<B>,
    /// Events for the app.
    pub events: Events,
    /// The socket trace's settings, for `tpactl cfg trace on`.
    pub trace: TraceConfig,
}

/// The proxy's pipeline on port `P`.
#[tpa::pipeline]
pub struct ProxyPipeline<P: Port, A: App<P::Buf, ProxyState<P::Buf>>> {
    #[port]
    port: P,
    #[state]
    state: ProxyState<P::Buf>,
    #[app]
    app: A,
    front: ProxyFront<P::Buf>,
}

fn build<P: Port, A: App<P::Buf, ProxyState<P::Buf>>>(
    port: P,
    options: &TpaOptions,
    tcp: TcpConfig,
    app: A,
    trace: TraceConfig,
) -> ProxyPipeline<P, A> {
    let iface = options.interface(options.mac.unwrap_or(port.caps().mac));
    let front = tcp_front(&iface, TcpInput::default());
    // The host's key, active opens on this worker's queue (and beside the
    // kernel, from the ports the port took from it); `TPA_TRACE=1` (or
    // `[trace]`, or `tpactl cfg trace on` later): every connection's
    // socket trace, for `tpactl st`.
    let (egress, sockets) = tcp_egress(&port, iface, tcp, &trace);
    let state = ProxyState {
        egress,
        tcp: sockets,
        events: Events::default(),
        trace,
    };
    ProxyPipeline::new(port, state, app, front)
}

/// Buffers in the pool: room for many connections' queues.
const POOL_BUFFERS: usize = 1 << 16;

/// How the runtime runs, besides the pools (shared with the kernel
/// runtime's options).
pub use crate::kernel::Options;

/// A worker's loop: the pipeline until the process is told to stop.
struct ProxyLoop<'l, P: Port> {
    pipeline: ProxyPipeline<P, ProxyApp<'l, P::Buf>>,
    /// The worker's stats, when the instance publishes them.
    stats: Option<Publisher>,
}

impl<P: Port> WorkLoop for ProxyLoop<'_, P> {
    type Report = ();

    fn run_once(&mut self) -> Progress {
        let (done, due) = run_metered(
            self.stats.as_mut(),
            &mut self.pipeline,
            |p| p.stats().now_ns(),
            |p, now| p.run_once_at(now),
        );
        if let (true, Some(stats)) = (due, self.stats.as_mut()) {
            self.pipeline.publish(stats, false);
        }
        done.into()
    }

    fn idle_change(&mut self) -> Option<IdlePolicy> {
        self.stats.as_mut()?.idle_change()
    }

    fn wait_rx(&mut self, timeout: Duration) -> tpa::port::RxWait {
        // Kernel sockets are looked at each turn: the loop sleeps rather
        // than blocking on the port alone.
        if self.pipeline.app.has_kernel_sockets() {
            return tpa::port::RxWait::Unsupported;
        }
        self.pipeline.wait_rx(timeout)
    }

    fn finish(self) {}
}

/// Serves `pools` on tpa's stack over `tpa`'s port until SIGINT/SIGTERM
/// (see [`crate::kernel::catch_stop_signals`]): binds the stats port and
/// every worker's listeners, calls `on_ready` with what was bound, then
/// runs the workers. `log(level, line)` gets the engines' log lines.
pub fn run(
    pools: Vec<Pool>,
    limits: Limits,
    tpa: &TpaOptions,
    options: &Options,
    on_ready: impl FnOnce(&[String]),
    log: &(dyn Fn(u8, &str) + Sync),
) -> Result<(), TpaError> {
    tpa.validate(&pools)?;
    let tcp = tpa.settings.tcp.clone();
    let stats = match options.stats {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|e| TpaError(format!("stats on {addr}: {e}")))?;
            Some(l)
        }
        None => None,
    };
    let instance = ops::start(tpa);
    let root_hint = |e: PortsError| {
        let text = e.to_string();
        let hint = if text.contains("ermission") || text.contains("EPERM") {
            " (tpa's ports need root or CAP_NET_ADMIN/CAP_NET_RAW; without them, \
             --stack kernel serves on kernel sockets)"
        } else {
            ""
        };
        TpaError(format!("{text}{hint}"))
    };
    let mut bound: Vec<String> = pools
        .iter()
        .filter_map(|p| listen_addr(&p.listen).ok())
        .map(|a| a.to_string())
        .collect();
    if let Some(l) = &stats {
        if let Ok(a) = l.local_addr() {
            bound.push(a.to_string());
        }
    }
    let engines = (0..tpa.workers)
        .map(|_| Engine::new(pools.clone(), limits).map_err(TpaError))
        .collect::<Result<Vec<_>, _>>()?;
    let ports = WorkerPorts {
        mac: tpa.mac,
        buffers: POOL_BUFFERS,
        eal_args: tpa.eal_args.clone(),
        ..WorkerPorts::new(
            tpa.port.clone(),
            tpa.workers,
            tpa.ips.clone(),
            "tpa-redis-proxy",
        )
    };
    let job = ProxyJob {
        engines,
        tpa,
        tcp: &tcp,
        options,
        stats,
        on_ready,
        bound: &bound,
        log,
        instance: instance.as_ref(),
    };
    let (served, leaked) = on_ports(&ports, job).map_err(root_hint)?;
    served?;
    if leaked > 0 {
        log(
            4,
            &format!("{leaked} buffers not returned to the pool at the end (a leak)"),
        );
    }
    Ok(())
}

/// What the proxy runs on the opened ports: a worker each.
struct ProxyJob<'a, R> {
    engines: Vec<Engine>,
    tpa: &'a TpaOptions,
    tcp: &'a TcpConfig,
    options: &'a Options,
    stats: Option<TcpListener>,
    on_ready: R,
    bound: &'a [String],
    log: &'a (dyn Fn(u8, &str) + Sync),
    /// The instance (stats, control socket), when on.
    instance: Option<&'a Instance>,
}

impl<R: FnOnce(&[String])> OnPorts for ProxyJob<'_, R> {
    type Out = Result<(), TpaError>;

    fn run<P: Port + Send + Handed>(
        self,
        ports: Vec<ShareAnswers<P>>,
        setup: &PortSetup<'_>,
    ) -> Self::Out
    where
        P::Buf: Send,
    {
        serve(ports, self, setup)
    }
}

/// Runs a worker per port, each with its engine (and set up by `setup`:
/// DPDK's worker threads register with the EAL); returns once every
/// worker stopped, each having logged its line (its connections, the
/// neighbour answers and frames handed between workers).
fn serve<P: Port + Send + Handed, R: FnOnce(&[String])>(
    ports: Vec<ShareAnswers<P>>,
    job: ProxyJob<'_, R>,
    setup: &PortSetup<'_>,
) -> Result<(), TpaError>
where
    P::Buf: Send,
{
    let ProxyJob {
        engines,
        tpa,
        tcp,
        options,
        stats,
        on_ready,
        bound,
        log,
        instance,
    } = job;
    // Each pool in `tpactl mem`.
    if let Some(i) = instance {
        setup.publish_pools(i);
    }
    if ports.len() > 1 && ports.iter().any(|p| p.steering() == Steering::Unknown) {
        // AF_XDP on several queues: the device's hash picks the queue,
        // and nothing hands a misplaced frame over.
        log(
            4,
            &format!(
                "{} workers on --port {}, whose queue per flow tpa cannot tell: \
                 a connection's frames may land on another worker's queue (one worker is safe)",
                ports.len(),
                tpa.port_name()
            ),
        );
    }
    let stop = StopFlag::new();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), TpaError>>();
    let board: Option<app::StatsBoard> = stats
        .is_some()
        .then(|| std::sync::Arc::new(std::sync::Mutex::new(vec![None; ports.len()])));
    let mut stats = stats;
    std::thread::scope(|scope| {
        let workers: Vec<_> = ports
            .into_iter()
            .zip(engines)
            .enumerate()
            .map(|(w, (port, engine))| {
                let ready_tx = ready_tx.clone();
                let stats = if w == 0 { stats.take() } else { None };
                let board = board.clone().map(|b| (b, w));
                let stop = stop.clone();
                scope.spawn(move || {
                    let _thread = setup.enter_worker();
                    let app = ProxyApp::new(engine, options, stats, board, log);
                    let trace = match instance {
                        Some(i) => i.trace_config(&tpa.settings.trace),
                        None => tpa.settings.trace.clone(),
                    };
                    let mut pipeline = build(port, tpa, tcp.clone(), app, trace);
                    let addrs = pipeline.app.listen_addrs();
                    let listened = pipeline.with_cx(|cx| app::listen_all(cx, &addrs));
                    let failed = listened.is_err();
                    let _ = ready_tx.send(listened.map(|listeners| {
                        pipeline.app.set_listeners(listeners);
                    }));
                    if failed {
                        return;
                    }
                    let mut work = ProxyLoop {
                        pipeline,
                        stats: instance.and_then(|i| i.publisher_or_warn(w as u32)),
                    };
                    run_loop(&mut work, &stop, tpa.idle.policy());
                    if let Some(mut stats) = work.stats.take() {
                        work.pipeline.publish(&mut stats, true);
                    }
                    let port = &work.pipeline.port;
                    log(5, &worker_line(port, &work.pipeline.state.tcp.counters()));
                    let pass = work.pipeline.app.engine().passthrough_stats();
                    log(
                        5,
                        &format!(
                            "passthrough: {} values, {} bytes, {} zero-copy, {} dropped",
                            pass.frames, pass.bytes, pass.zero_copy_bytes, pass.dropped_bytes
                        ),
                    );
                    if let Some(line) = handed_line(port) {
                        log(5, &line);
                    }
                })
            })
            .collect();
        drop(ready_tx);
        let mut result = Ok(());
        for _ in 0..workers.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(TpaError("a worker ended before listening".into())),
            }
        }
        if result.is_ok() {
            on_ready(bound);
            while !crate::kernel::STOP.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        stop.raise();
        for w in workers {
            if w.join().is_err() {
                result = Err(TpaError("a worker thread panicked".into()));
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(port: &str) -> TpaOptions {
        TpaOptions {
            port: port.parse().expect("a port"),
            ips: vec!["192.0.2.2/24".parse().expect("an address")],
            mac: None,
            workers: 2,
            idle: Idle::default(),
            settings: Settings::default(),
            eal_args: vec![],
        }
    }

    fn pools(listen: &str) -> Vec<Pool> {
        crate::config::parse(&format!(
            "p:\n  listen: {listen}\n  servers:\n   - 192.0.2.1:6379:1\n"
        ))
        .expect("a pool")
    }

    #[test]
    fn every_port_kind_is_taken_and_bad_flags_are_named() {
        let ours = pools("192.0.2.2:22121");
        for port in ["tap:tpa0", "af_packet:eth0", "af_xdp:eth0"] {
            assert_eq!(options(port).validate(&ours), Ok(()), "{port}");
        }
        let dpdk = TpaOptions {
            eal_args: vec!["--no-huge".into()],
            ..options("dpdk:net_tap0")
        };
        let result = dpdk.validate(&ours);
        if cfg!(feature = "dpdk") {
            assert_eq!(result, Ok(()));
        } else {
            let e = result.unwrap_err();
            assert!(e.0.contains("rebuild with --features dpdk"), "{e}");
        }
        let eal_elsewhere = TpaOptions {
            eal_args: vec!["--no-huge".into()],
            ..options("af_xdp:eth0")
        };
        let e = eal_elsewhere.validate(&ours).unwrap_err();
        assert!(e.0.starts_with("EAL arguments"), "{e}");
        let e = options("af_xdp:eth0")
            .validate(&pools("192.0.2.3:22121"))
            .unwrap_err();
        assert!(e.0.contains("not one of tpa's --ip addresses"), "{e}");
        let none = TpaOptions {
            workers: 0,
            ..options("dpdk:net_tap0")
        };
        assert!(none.validate(&ours).unwrap_err().0.starts_with("--workers"));
    }
}
