//! tperf over tpa's own TCP stack: one `#[pipeline]` on a port (a TAP
//! device by default, any interface through AF_PACKET, or a DPDK port),
//! whose inline app drives the same sans-IO sessions as the kernel
//! backend ([`crate::session`], [`crate::control`]) from tpa's socket
//! calls and events.
//!
//! ```text
//! port ─► Ethernet front ─┬─► ARP responder
//!                          ├─► IPv4 input ─┬─► TCP input ─► TCP sockets ─► app
//!                          │               └─► ICMPv4 echo ─► discard
//!                          └─► IPv6 input ─┬─► TCP input ─► TCP sockets ─► app
//!                                          └─► NDP ─► ICMPv6 echo ─► discard
//! ```
//!
//! Each worker (`-w`) runs its own pipeline on its own queue of the port:
//! a multi-queue TAP or an AF_PACKET fanout group steered by tpa's eBPF
//! program, or a DPDK device's queue pairs, each guarded so that a frame
//! the device put on another worker's queue is handed over to that worker
//! (`DpdkDevice::worker_ports`). The neighbor answers that land on one
//! queue are copied to every worker ([`ShareAnswers`]).

mod client;
mod server;

pub use client::run_client;
pub use server::run_server;

use core::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tpa::app::{App, Events, SocketError, SocketId};
use tpa::buf::PacketBuf;
use tpa::port::af_packet::{RxMode, TxPath};
use tpa::port::steer::ShareAnswers;
use tpa::port::Port;
use tpa::stage::Cx;
use tpa::state::State;
use tpa::wire::MacAddr;
use tpa::worker::IdlePolicy;
use tpa_responder::tcp_stack::{tcp_egress, tcp_front, TcpFront};
use tpa_responder::workers::{self, on_ports, Handed, OnPorts, PortSetup, WorkerPorts};
use tpa_responder::{IpCidr, PortSpec};
use tpa_stages::egress::Egress;
use tpa_stages::iface::Interface;
use tpa_stages::ops::stack::StackParts;
use tpa_stages::ops::{collect, Instance, OpsConfig, Publisher};
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::{self, TcpInput, TcpSockets, Unmatched};
use tpa_stages::trace::TraceConfig;

/// The device and addresses of tpa's side (`--port`, `--ip`, `--mac`,
/// `--rx-mode`, `--idle`, EAL arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct TpaEndpoint {
    /// The device (`--port`; default `tap:tpa0`).
    pub port: PortSpec,
    /// Our addresses (`--ip`, at least one).
    pub ips: Vec<IpCidr>,
    /// Our MAC address (`--mac`; TAP default 02:74:70:61:00:01, else the
    /// interface's or device's own).
    pub mac: Option<MacAddr>,
    /// AF_PACKET only: how the receive ring hands frames over.
    pub rx_mode: Option<RxMode>,
    /// AF_PACKET only: how frames are handed to the kernel (`--tx-path`).
    pub tx_path: Option<TxPath>,
    /// TAP and AF_PACKET only: the kernel does checksums and TSO
    /// (`--offloads`).
    pub offloads: bool,
    /// What the loop does when it has nothing to do (`--idle`, `--spin`;
    /// [`DEFAULT_IDLE`] by default).
    pub idle: IdlePolicy,
    /// What becomes of a segment no socket takes (`--unmatched`).
    pub unmatched: Unmatched,
    /// DPDK only: a flow rule per connection naming it (`--flow-marks`).
    pub flow_marks: bool,
    /// DPDK only: the EAL's arguments (after `--`).
    pub eal_args: Vec<String>,
    /// Stats, control socket and Prometheus (`--id`, `--metrics`, the
    /// `TPA_STATS*`, `TPA_ID`, `TPA_METRICS` variables, `--config`'s
    /// `[stats]` and `[metrics]`).
    pub ops: OpsConfig,
    /// The TCP knobs (`--config`'s `[tcp]`, the `TPA_TCP_*` variables).
    pub tcp: TcpConfig,
    /// The socket trace (`--config`'s `[trace]`, the `TPA_TRACE*`
    /// variables).
    pub trace: TraceConfig,
}

/// Parses `--tx-path`: `auto` (the default: `ring-copy` on a veth, `ring`
/// elsewhere), `ring` (a TPACKET_V2 ring), `ring-copy` (the same ring, the
/// kernel copying each frame out of it) or `sendmmsg`.
pub fn parse_tx_path(s: &str) -> Result<TxPath, String> {
    match s {
        "auto" => Ok(TxPath::Auto),
        "ring" => Ok(TxPath::Ring),
        "ring-copy" => Ok(TxPath::RingCopy),
        "sendmmsg" => Ok(TxPath::Sendmmsg),
        other => Err(format!("{other}: auto, ring, ring-copy or sendmmsg")),
    }
}

/// The port tpa uses when `--port` is not given.
pub const DEFAULT_PORT_SPEC: &str = "tap:tpa0";

impl TpaEndpoint {
    /// Checks the flags: an address, `--rx-mode` with AF_PACKET only, EAL
    /// arguments with DPDK only (and a build that has it).
    pub fn validate(&self) -> Result<(), TpaError> {
        if self.ips.is_empty() {
            return Err(TpaError(
                "--ip: tpa needs an address of its own, e.g. --ip 192.0.2.2/24".into(),
            ));
        }
        // tperf's pipeline has no host path (no `#[host]` sink).
        self.unmatched
            .check(false)
            .map_err(|e| TpaError(format!("--unmatched {}: {e}", self.unmatched)))?;
        if self.flow_marks && !matches!(self.port, PortSpec::Dpdk(_)) {
            return Err(TpaError(
                "--flow-marks: only for a DPDK port (--port dpdk:<device>)".into(),
            ));
        }
        if self.rx_mode.is_some() && !matches!(self.port, PortSpec::AfPacket(_)) {
            return Err(TpaError(
                "--rx-mode: only for an AF_PACKET port (--port af_packet:<ifname>)".into(),
            ));
        }
        if self.tx_path.is_some() && !matches!(self.port, PortSpec::AfPacket(_)) {
            return Err(TpaError(
                "--tx-path: only for an AF_PACKET port (--port af_packet:<ifname>)".into(),
            ));
        }
        if self.offloads && !matches!(self.port, PortSpec::Tap(_) | PortSpec::AfPacket(_)) {
            return Err(TpaError(
                "--offloads: only for a TAP or AF_PACKET port \
                 (--port tap:<ifname> or af_packet:<ifname>)"
                    .into(),
            ));
        }
        match &self.port {
            PortSpec::Dpdk(device) if !cfg!(feature = "dpdk") => Err(TpaError(format!(
                "--port dpdk:{device}: built without the dpdk feature; rebuild with --features dpdk"
            ))),
            PortSpec::Dpdk(_) => Ok(()),
            _ if !self.eal_args.is_empty() => Err(TpaError(
                "EAL arguments (after `--`) are only for a DPDK port (--port dpdk:<device>)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The interface of our addresses, with MAC address `mac`.
    fn interface(&self, mac: MacAddr) -> Interface {
        self.ips
            .iter()
            .fold(Interface::new(mac), |iface, ip| match *ip {
                IpCidr::V4(c) => iface.with_ipv4(c),
                IpCidr::V6(c) => iface.with_ipv6(c),
            })
    }

    /// How the loop idles: [`TpaEndpoint::idle`], but a DPDK port cannot
    /// block, and a wait idles as [`IdlePolicy::default`] (`sleep`) there.
    fn idle(&self) -> IdlePolicy {
        match self.idle {
            IdlePolicy::Wait { .. } if matches!(self.port, PortSpec::Dpdk(_)) => {
                IdlePolicy::default()
            }
            idle => idle,
        }
    }
}

/// tperf's `--idle` when none is given, `wait:~50,coalesce:50`: an
/// adaptive spin of 50 µs at most after the last work, then block on the
/// port; and after a stream's busy turns, a 50 µs sleep when the port runs
/// dry ([`IdlePolicy::Wait`]'s `coalesce`).
///
/// With each end on a core of its own, a loop that blocks at once pays a
/// wake-up for every frame that ends a wait, and over a veth the peer pays
/// it too (the kernel sender's transmit wakes the blocked reader from its
/// own call); the spin polls through a busy peer's next frames and still
/// blocks, after one spin, when the peer is slow. A stream arriving from a
/// peer slower than tpa's loop would keep the loop spinning through every
/// gap, or waking for each frame; the coalescing sleep lets the stream's
/// frames gather in the port's ring and takes them as one burst
/// (doc/benchmarks.md, "Coalescing a stream's frames").
pub const DEFAULT_IDLE: IdlePolicy = IdlePolicy::wait_with_adaptive_spin(Duration::from_micros(50))
    .coalescing(Duration::from_micros(50));

/// Why tpa's side could not run (a flag, the port, the pool, a socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpaError(pub String);

impl fmt::Display for TpaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TpaError {}

/// The front with its branches (shared with tpa-redis-proxy:
/// [`tpa_responder::tcp_stack`]).
pub type TperfFront<B> = TcpFront<B>;

/// What the stages and the app share.
#[derive(State)]
pub struct TperfState<B: PacketBuf> {
    /// IP output, neighbor resolution, Ethernet.
    #[polled]
    pub egress: Egress<B>,
    /// The TCP socket table.
    #[polled]
    pub tcp: TcpSockets<B>,
    /// Events for the app.
    pub events: Events,
    /// The device's rule per connection, told of each as it opens
    /// (`--flow-marks`).
    pub marks: Option<Box<dyn MarkConnections>>,
    /// The socket trace's settings, for `tpactl cfg trace on`.
    pub trace: TraceConfig,
}

/// Flow rules naming connections in the device (DPDK `--flow-marks`):
/// told of each connection as it opens. A closed connection's rule stays
/// until its slot (and so its mark) is reused, harmless meanwhile: the
/// TCP input trusts a mark only for the 4-tuple of the slot it names.
pub trait MarkConnections {
    /// Connection `mark` from `remote` to `local` opened.
    fn opened(&mut self, mark: u32, local: SocketAddr, remote: SocketAddr);
    /// What it did, for the worker's lines at the end.
    fn summary(&self) -> String;
}

#[cfg(feature = "dpdk")]
impl MarkConnections for tpa_stages::mlx5::ConnectionMarks {
    fn opened(&mut self, mark: u32, local: SocketAddr, remote: SocketAddr) {
        self.add(mark, local, remote);
    }

    fn summary(&self) -> String {
        let c = self.counters();
        let refused = self
            .refused()
            .map_or(String::new(), |r| format!(" (the device: {r})"));
        format!(
            "flow marks: {} rules installed, {} removed, {} refused{refused}, {} connections unmarked",
            c.installed, c.removed, c.refused, c.unmarked
        )
    }
}

/// Tells the state's [`MarkConnections`], if any, that `socket` opened.
fn mark_opened<B: PacketBuf>(cx: &mut Cx<'_, B, TperfState<B>>, socket: SocketId) {
    let state = cx.state_mut();
    let Some(marks) = state.marks.as_mut() else {
        return;
    };
    if let (Ok(mark), Ok(tuple)) = (state.tcp.flow_mark(socket), state.tcp.tuple(socket)) {
        marks.opened(mark, tuple.local, tuple.remote);
    }
}

/// tperf's pipeline on port `P` with app `A` (the client's or the
/// server's).
#[tpa::pipeline]
pub struct TperfPipeline<P: Port, A: App<P::Buf, TperfState<P::Buf>>> {
    #[port]
    port: P,
    #[state]
    state: TperfState<P::Buf>,
    #[app]
    app: A,
    front: TperfFront<P::Buf>,
}

impl<P: Port, A: App<P::Buf, TperfState<P::Buf>>> TperfPipeline<P, A> {
    /// The app.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The app, to change.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// The shared state.
    pub fn state(&self) -> &TperfState<P::Buf> {
        &self.state
    }

    /// Publishes the worker's snapshot through `publisher` (`stopped`:
    /// its last) and applies the runtime knobs' changes.
    fn publish(
        &mut self,
        publisher: &mut Publisher,
        app: Vec<tpa_stages::ops::snapshot::Counter>,
        stopped: bool,
    ) {
        let now = self.stats().now_ns();
        collect::pipeline(publisher.snapshot(), self.stats(), |visit| {
            self.visit_counted(visit)
        });
        let state = &mut self.state;
        StackParts {
            port: &mut self.port,
            tcp: &mut state.tcp,
            egress: &state.egress,
            trace: &state.trace,
        }
        .publish(publisher, now, app, stopped);
    }

    /// The port.
    pub fn port(&self) -> &P {
        &self.port
    }
}

/// One worker's line at the end: its queue, its connections, the
/// neighbor answers it shared and received ([`workers::worker_line`]),
/// its TCP segments, its flow rules, the frames handed over between
/// workers.
fn worker_line<P: Port + Handed, A: App<P::Buf, TperfState<P::Buf>>>(
    pipeline: &TperfPipeline<ShareAnswers<P>, A>,
) -> String
where
    P::Buf: Send,
{
    let tcp = pipeline.state().tcp.counters();
    let queue = pipeline.port().caps().queue;
    let mut line = workers::worker_line(pipeline.port(), &tcp);
    line.push_str(&format!(
        "\nqueue {queue}: tcp: {} segments sent, {} super-segments of {} segments, {} retransmitted",
        tcp.segments_sent, tcp.tso_frames, tcp.tso_segments, tcp.retransmitted_segments
    ));
    if let Some(marks) = &pipeline.state().marks {
        line.push_str(&format!("\nqueue {queue}: {}", marks.summary()));
    }
    if let Some(handed) = workers::handed_line(pipeline.port()) {
        line.push('\n');
        line.push_str(&handed);
    }
    line
}

/// Builds the pipeline for `endpoint` on `port`, with `app`, the TCP
/// knobs `tcp` and the worker's flow rules `marks`.
fn build<P: Port, A: App<P::Buf, TperfState<P::Buf>>>(
    port: P,
    endpoint: &TpaEndpoint,
    tcp: TcpConfig,
    app: A,
    marks: Option<Box<dyn MarkConnections>>,
    instance: Option<&Instance>,
) -> TperfPipeline<P, A> {
    let iface = endpoint.interface(endpoint.mac.unwrap_or(port.caps().mac));
    let front = tcp_front(
        &iface,
        TcpInput::default().with_unmatched(endpoint.unmatched),
    );
    // `TPA_TRACE=1` (or `[trace]`): every connection's socket trace, for
    // `tpactl st`, in the instance's directory when there is one;
    // `tpactl cfg trace` switches it later.
    let trace = match instance {
        Some(i) => i.trace_config(&endpoint.trace),
        None => endpoint.trace.clone(),
    };
    // ISNs and timestamps on the host's key and boot clock; active opens
    // pick ports whose replies land on this worker's queue (beside the
    // kernel, from the ports the AF_XDP port took from it).
    let (egress, sockets) = tcp_egress(&port, iface, tcp, &trace);
    let state = TperfState {
        egress,
        tcp: sockets,
        events: Events::default(),
        marks,
        trace,
    };
    TperfPipeline::new(port, state, app, front)
}

/// What runs on the opened ports, one per worker: generic over the
/// port's type, which differs per kind. Each worker it starts is set up
/// by `setup`.
trait OnPort {
    type Out;
    /// The instance's name without an id (`tperf-server`).
    const ROLE: &'static str;
    fn run<P: Port + Send + Handed>(
        self,
        ports: Vec<ShareAnswers<P>>,
        setup: &WorkerSetup<'_>,
    ) -> Self::Out
    where
        P::Buf: Send;
}

/// How each worker is set up, beyond its port.
struct WorkerSetup<'a> {
    /// What a worker thread does first (DPDK: register with the EAL, for
    /// its mempool cache); what it returns is held until the thread ends.
    on_thread: &'a (dyn Fn() -> Box<dyn std::any::Any> + Sync),
    /// The flow rules of the worker on queue `q` (`--flow-marks`).
    marks: &'a (dyn Fn(u16) -> Option<Box<dyn MarkConnections>> + Sync),
    /// The instance (stats, control socket), when on.
    instance: Option<&'a Instance>,
}

impl WorkerSetup<'_> {
    /// Worker `worker`'s publisher, when the instance is on.
    fn publisher(&self, worker: u32) -> Option<Publisher> {
        self.instance?.publisher_or_warn(worker)
    }
}

/// Starts the instance `endpoint.ops` describes, trace on as `TPA_TRACE`
/// says; `None` when off or when it cannot start (said in the log: the
/// run goes on without).
fn start_instance(endpoint: &TpaEndpoint, role: &str) -> Option<Instance> {
    let i = Instance::start_if_on(&endpoint.ops, role, endpoint.trace.enabled)?;
    // `tpactl cfg idle`: every worker loop follows it.
    i.follow_idle(endpoint.idle());
    Some(i)
}

/// Opens `workers` queues of `endpoint`'s port with a pool of `buffers`
/// buffers ([`on_ports`]: a multi-queue TAP, an AF_PACKET fanout group,
/// AF_XDP sockets, a DPDK device's queue pairs, one queue each, each
/// wrapped so the neighbor answers it receives reach every worker), and
/// runs `job` on them, with the instance and each DPDK worker's flow
/// rules; then returns what it returned and how many buffers did not come
/// back to the pool once the ports were closed (a leak when not 0).
fn on_port<J: OnPort>(
    endpoint: &TpaEndpoint,
    workers: u16,
    buffers: usize,
    job: J,
) -> Result<(J::Out, usize), TpaError> {
    let config = WorkerPorts {
        mac: endpoint.mac,
        buffers,
        rx_mode: endpoint.rx_mode,
        tx_path: endpoint.tx_path,
        offloads: endpoint.offloads,
        eal_args: endpoint.eal_args.clone(),
        ..WorkerPorts::new(
            endpoint.port.clone(),
            workers,
            endpoint.ips.clone(),
            "tpa-tperf",
        )
    };
    let job = TperfJob {
        job,
        flow_marks: endpoint.flow_marks,
        instance: start_instance(endpoint, J::ROLE),
    };
    on_ports(&config, job).map_err(|e| TpaError(e.to_string()))
}

/// A tperf job on opened ports, with the instance and flow rules tperf
/// adds to each worker's setup.
struct TperfJob<J> {
    job: J,
    /// `--flow-marks`: a flow rule per connection (DPDK only: `validate`
    /// refuses it elsewhere).
    #[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
    flow_marks: bool,
    instance: Option<Instance>,
}

impl<J: OnPort> OnPorts for TperfJob<J> {
    type Out = J::Out;

    fn run<P: Port + Send + Handed>(
        self,
        ports: Vec<ShareAnswers<P>>,
        setup: &PortSetup<'_>,
    ) -> Self::Out
    where
        P::Buf: Send,
    {
        let instance = self.instance.as_ref();
        // Each pool in `tpactl mem`.
        if let Some(i) = instance {
            setup.publish_pools(i);
        }
        // Connection rules at priority 0, the strongest: tperf installs
        // no other rules.
        #[cfg(feature = "dpdk")]
        let device = setup.dpdk_device().filter(|_| self.flow_marks);
        let marks = |_queue: u16| -> Option<Box<dyn MarkConnections>> {
            #[cfg(feature = "dpdk")]
            if let Some(dev) = device {
                return Some(Box::new(tpa_stages::mlx5::ConnectionMarks::new(
                    dev, _queue, 0,
                )));
            }
            None
        };
        let workers = WorkerSetup {
            on_thread: setup.enter_fn(),
            marks: &marks,
            instance,
        };
        self.job.run(ports, &workers)
    }
}

/// Buffers of the pool for `connections` connections: room for their
/// send and receive queues (512 KiB each by default, in MSS-sized
/// buffers), 8192 at least, 2^17 at most.
fn pool_buffers(connections: u32) -> usize {
    (connections as usize + 1)
        .saturating_mul(1024)
        .clamp(8192, 1 << 17)
}

/// Queues the next bytes of a stream on `socket` without a copy: a pool
/// buffer of at most one segment (and `limit` bytes) is filled by `fill`
/// (which returns how many bytes it wrote) and handed to `send_buf`.
/// Returns how many bytes were queued, or `None` when the send queue is
/// full (`Writable` comes when it has room; what was filled is dropped
/// and filled again then: the stream is a function of its offset).
///
/// # Errors
///
/// The socket's, and `NoBuffers` when the pool is empty.
fn send_filled<B: PacketBuf>(
    cx: &mut Cx<'_, B, TperfState<B>>,
    socket: SocketId,
    limit: usize,
    fill: impl FnOnce(&mut [u8]) -> usize,
) -> Result<Option<usize>, SocketError> {
    let segment = tcp::send_mss(cx, socket)?;
    let mut buf = cx.alloc().ok_or(SocketError::NoBuffers)?;
    let n = limit.min(segment).min(buf.tailroom());
    let out = buf.append(n).map_err(|_| SocketError::NoBuffers)?;
    let k = fill(out);
    if k == 0 {
        return Ok(Some(0));
    }
    buf.trim_back(n - k).map_err(|_| SocketError::NoBuffers)?;
    match tcp::send_buf(cx, socket, buf) {
        Ok(()) => Ok(Some(k)),
        Err((SocketError::WouldBlock, _)) => Ok(None),
        Err((e, _)) => Err(e),
    }
}

/// How long a run's end may take to close its connections cleanly (our
/// FINs out, the peer's acknowledged) before the port is closed.
const DRAIN_NS: u64 = 1_000_000_000;

/// Whether `tcp` holds nothing but `listeners` listeners and connections
/// in TIME_WAIT: every FIN is out and every peer's acknowledged.
fn drained<B: PacketBuf>(tcp: &TcpSockets<B>, listeners: usize) -> bool {
    tcp.len() <= listeners + tcp.time_wait_count()
}

/// Every stage's counters and the TCP table's (with the sockets still
/// open, TIME_WAIT among them, against its bound), for the end of a run.
fn counters<P: Port, A: App<P::Buf, TperfState<P::Buf>>>(pipeline: &TperfPipeline<P, A>) -> String {
    let tcp = &pipeline.state().tcp;
    format!(
        "{}tcp: {:?}\ntcp sockets: open {} time_wait {} time_wait_max {}\negress: {:?}\n",
        pipeline.stats(),
        tcp.counters(),
        tcp.len(),
        tcp.time_wait_count(),
        tcp.config().time_wait_max,
        pipeline.state().egress.counters()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> TpaEndpoint {
        TpaEndpoint {
            port: DEFAULT_PORT_SPEC.parse().expect("a port"),
            ips: vec!["192.0.2.2/24".parse().expect("an address")],
            mac: None,
            rx_mode: None,
            tx_path: None,
            offloads: false,
            idle: DEFAULT_IDLE,
            unmatched: Unmatched::Reset,
            flow_marks: false,
            eal_args: vec![],
            ops: OpsConfig::default(),
            tcp: TcpConfig::default(),
            trace: TraceConfig::default(),
        }
    }

    #[test]
    fn bad_flags_are_errors_naming_the_flag() {
        assert_eq!(endpoint().validate(), Ok(()));
        let e = TpaEndpoint {
            ips: vec![],
            ..endpoint()
        };
        assert!(e.validate().unwrap_err().0.starts_with("--ip"));
        let e = TpaEndpoint {
            rx_mode: Some(RxMode::throughput()),
            ..endpoint()
        };
        assert!(e.validate().unwrap_err().0.starts_with("--rx-mode"));
        let e = TpaEndpoint {
            tx_path: Some(TxPath::Sendmmsg),
            ..endpoint()
        };
        assert!(e.validate().unwrap_err().0.starts_with("--tx-path"));
        let e = TpaEndpoint {
            port: "af_packet:eth0".parse().expect("a port"),
            offloads: true,
            ..endpoint()
        };
        assert_eq!(e.validate(), Ok(()));
        let e = TpaEndpoint {
            port: "dpdk:net_tap0".parse().expect("a port"),
            offloads: true,
            ..endpoint()
        };
        assert!(e.validate().unwrap_err().0.starts_with("--offloads"));
        let e = TpaEndpoint {
            eal_args: vec!["--no-huge".into()],
            ..endpoint()
        };
        assert!(e.validate().unwrap_err().0.starts_with("EAL"));
        let e = TpaEndpoint {
            unmatched: Unmatched::Host,
            ..endpoint()
        };
        let why = e.validate().unwrap_err().0;
        assert!(
            why.starts_with("--unmatched host:") && why.contains("no host path"),
            "{why}"
        );
        let e = TpaEndpoint {
            unmatched: Unmatched::Drop,
            ..endpoint()
        };
        assert_eq!(e.validate(), Ok(()));
        let e = TpaEndpoint {
            flow_marks: true,
            ..endpoint()
        };
        assert!(e.validate().unwrap_err().0.starts_with("--flow-marks"));
    }

    #[test]
    fn idle_modes_and_transmit_paths_parse_and_name_themselves() {
        let us = Duration::from_micros;
        for (name, policy) in [
            ("wait", IdlePolicy::wait()),
            ("wait:20", IdlePolicy::wait_with_spin(us(20))),
            ("wait:~100", IdlePolicy::wait_with_adaptive_spin(us(100))),
            (
                "wait:~50,coalesce:50",
                IdlePolicy::wait_with_adaptive_spin(us(50)).coalescing(us(50)),
            ),
            ("wait,coalesce:20", IdlePolicy::wait().coalescing(us(20))),
            ("sleep", IdlePolicy::default()),
            ("spin", IdlePolicy::Spin),
        ] {
            let idle: IdlePolicy = name.parse().expect("an idle mode");
            assert_eq!(idle, policy);
            assert_eq!(idle.to_string(), name);
            let e = TpaEndpoint { idle, ..endpoint() };
            assert_eq!(e.idle(), policy);
        }
        assert_eq!("wait:0".parse::<IdlePolicy>(), Ok(IdlePolicy::wait()));
        let dpdk = TpaEndpoint {
            port: "dpdk:net_null0".parse().expect("a port"),
            ..endpoint()
        };
        assert_eq!(dpdk.idle(), IdlePolicy::default());
        let dpdk = TpaEndpoint {
            idle: "wait:20".parse().expect("an idle mode"),
            ..dpdk
        };
        assert_eq!(dpdk.idle(), IdlePolicy::default());
        assert_eq!(DEFAULT_IDLE.to_string(), "wait:~50,coalesce:50");
        assert!("poll"
            .parse::<IdlePolicy>()
            .unwrap_err()
            .contains("wait, wait:N or wait:~N (µs of spin), sleep or spin"));
        for bad in [
            "wait:",
            "wait:-1",
            "wait:2.5",
            "wait:1000001",
            "wait:~",
            "wait:~~5",
        ] {
            assert!(
                bad.parse::<IdlePolicy>()
                    .unwrap_err()
                    .contains("0 to 1000000"),
                "{bad}"
            );
        }
        for bad in ["wait,coalesce:", "wait,coalesce:1001", "wait,nap:5"] {
            assert!(
                bad.parse::<IdlePolicy>().unwrap_err().contains("0 to 1000"),
                "{bad}"
            );
        }
        assert!("spin,coalesce:50"
            .parse::<IdlePolicy>()
            .unwrap_err()
            .contains("coalesce goes with a wait"));
        assert_eq!(parse_tx_path("auto"), Ok(TxPath::Auto));
        assert_eq!(parse_tx_path("ring"), Ok(TxPath::Ring));
        assert_eq!(parse_tx_path("ring-copy"), Ok(TxPath::RingCopy));
        assert_eq!(parse_tx_path("sendmmsg"), Ok(TxPath::Sendmmsg));
        assert!(parse_tx_path("mmap").is_err());
    }

    #[test]
    fn the_pool_grows_with_the_connections() {
        assert_eq!(pool_buffers(1), 8192);
        assert_eq!(pool_buffers(63), 65536);
        assert_eq!(pool_buffers(100_000), 1 << 17);
    }
}
