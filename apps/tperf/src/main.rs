//! The `tpa-tperf` command: `server` answers clients, `client` runs one
//! test against a server and reports.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tpa::port::af_packet::{RxMode, TxPath};
use tpa::wire::MacAddr;
use tpa::worker::{IdlePolicy, StopFlag};
use tpa_responder::{parse_rx_mode, IpCidr, PortSpec};
use tpa_stages::ops::OpsFlags;
use tpa_stages::tcp::Unmatched;
use tpa_tperf::config::{fresh_run_id, parse_duration, parse_size, DEFAULT_PORT};
use tpa_tperf::kernel::{self, SocketOptions};
use tpa_tperf::tpa::{parse_tx_path, TpaEndpoint, DEFAULT_IDLE, DEFAULT_PORT_SPEC};
use tpa_tperf::{tpa as on_tpa, ClientConfig, ServerConfig, TestKind};

/// A TCP benchmark that checks every byte: throughput, transactions per
/// second, latency percentiles and CPU cost, on tpa or the kernel.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-tperf",
    version,
    after_help = "\
tpa's TCP stack runs on --port (a TAP device by default) with the
addresses of --ip, one worker; --kernel uses the kernel's TCP sockets.

Examples:
  tpa-tperf server --port tap:tpa0 --ip 192.0.2.2/24 -l 192.0.2.2:4040
  tpa-tperf client --kernel -s 192.0.2.2:4040 -t rr -m 64 -c 8 -w 2 -d 10
  tpa-tperf server --kernel -l 0.0.0.0:4040 -w 2
  tpa-tperf client --port af_packet:eth1 --ip 10.0.0.2/24 -s 10.0.0.1:4040 -t write -m 64k -d 5 --json

Tests:
  read    the server streams, the client reads (receive throughput)
  write   the client streams, the server reads (send throughput)
  rw      both at once on every connection
  rr      request of -m bytes, response of --response-size, repeated on
          open connections (transactions/s, latency request to response)
  crr     connect, one request and response, close, again (latency from
          the connect to the response)

Every byte both ways is checked against a pattern of its stream offset;
the client exits with 1 when any byte was wrong or missing on either side,
a connection failed or nothing was measured, and with 2 on a usage or
connection error."
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Serve clients until stopped (or --runs of them).
    Server(ServerArgs),
    /// Run one test against a server and report.
    Client(ClientArgs),
}

/// Which stack carries the connections, and tpa's port and addresses.
#[derive(Debug, Args)]
struct StackArgs {
    /// Use the kernel's TCP sockets instead of tpa (no --port, --ip,
    /// --mac, --rx-mode, --idle, --spin or EAL arguments).
    #[arg(long)]
    kernel: bool,
    /// Kernel only: every connection's congestion control (TCP_CONGESTION:
    /// cubic, reno, bbr, any of tcp_available_congestion_control)
    /// [default: the network namespace's]; tpa's is `congestion` in
    /// --config's [tcp] or TPA_TCP_CONGESTION.
    #[arg(long, value_name = "ALGORITHM")]
    congestion: Option<String>,
    /// tpa: the device: tap:<ifname> (created if missing), af_packet:<ifname>,
    /// af_xdp:<ifname> (beside the kernel on its address), or dpdk:<device> (EAL arguments after `--`) [default: tap:tpa0].
    #[arg(long, value_name = "KIND:NAME")]
    port: Option<PortSpec>,
    /// tpa: an address of ours with its prefix length (repeatable, IPv4 or
    /// IPv6).
    #[arg(long = "ip", value_name = "ADDR/LEN")]
    ips: Vec<IpCidr>,
    /// tpa: our MAC address (default: 02:74:70:61:00:01 on TAP, the
    /// interface's or device's own on AF_PACKET and DPDK).
    #[arg(long)]
    mac: Option<MacAddr>,
    /// tpa, AF_PACKET only: low-latency (the default) or throughput.
    #[arg(long, value_name = "MODE", value_parser = parse_rx_mode)]
    rx_mode: Option<RxMode>,
    /// tpa, AF_PACKET only: how frames are handed to the kernel: ring (a
    /// TPACKET_V2 ring and one sendto per burst, the default) or sendmmsg
    /// (one sendmmsg per burst, no ring: a copy less on a veth).
    #[arg(long, value_name = "PATH", value_parser = parse_tx_path)]
    tx_path: Option<TxPath>,
    /// tpa, TAP and AF_PACKET only: open the port with its offloads
    /// (virtio_net_hdr: IFF_VNET_HDR, PACKET_VNET_HDR): the kernel does
    /// TCP/UDP checksums and cuts TCP super-segments (TSO; off with
    /// TPA_TCP_TSO=0).
    #[arg(long)]
    offloads: bool,
    /// tpa: what the loop does with nothing to do: wait (block on the port
    /// until a frame or the next timer as soon as a turn finds nothing to
    /// do; wait:N polls N µs after the last work first, wait:~N an
    /// adaptive N µs at most; a DPDK port cannot block and sleeps
    /// instead), with ,coalesce:N after it (sleep N µs instead when the
    /// port runs dry after a stream's busy turns, letting its frames
    /// gather); sleep (50 µs at a time, after 1024 idle turns) or spin
    /// (poll again at once: one core at 100%, the lowest latency). The
    /// default: wait:~50,coalesce:50.
    #[arg(long, value_name = "MODE", conflicts_with = "spin")]
    idle: Option<IdlePolicy>,
    /// tpa: the same as --idle spin.
    #[arg(long)]
    spin: bool,
    /// tpa: what becomes of a segment no socket takes: rst (a reset, the
    /// default), drop, or host (refused: tperf's ports have no host path).
    #[arg(long, value_name = "POLICY")]
    unmatched: Option<Unmatched>,
    /// tpa, DPDK only: a flow rule per connection marking its segments
    /// with its socket (the TCP input then skips the 4-tuple lookup);
    /// where the device refuses the rules, counted and said once.
    #[arg(long)]
    flow_marks: bool,
    /// tpa: the instance's id, its directory under the run directory
    /// ($TPA_RUN_DIR, else /run/tpa) with its stats files, control
    /// socket and traces, for `tpactl --id` [default: $TPA_ID, else
    /// tperf-server-<pid> or tperf-client-<pid>, removed at a clean exit].
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// tpa: serve Prometheus' text format on ADDR:PORT (GET /metrics)
    /// [default: $TPA_METRICS, else none].
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// tpa: no stats files, control socket nor Prometheus endpoint
    /// (TPA_STATS=0).
    #[arg(long)]
    no_stats: bool,
    /// tpa: a TOML file with [tcp] (doc/guide/tcp-config.md), [trace],
    /// [stats] and [metrics] tables; the TPA_* variables and the flags
    /// win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// DPDK EAL arguments, after `--` (with --port dpdk:<device> only).
    #[arg(last = true, value_name = "EAL_ARGS")]
    eal_args: Vec<String>,
}

impl StackArgs {
    /// The stack: tpa's endpoint, or the kernel with its sockets'
    /// options; an error for tpa's flags with `--kernel`, or the
    /// kernel's without.
    fn endpoint(self) -> Result<Stack, String> {
        if self.kernel {
            let tpa_only = [
                (self.port.is_some(), "--port"),
                (!self.ips.is_empty(), "--ip"),
                (self.mac.is_some(), "--mac"),
                (self.rx_mode.is_some(), "--rx-mode"),
                (self.tx_path.is_some(), "--tx-path"),
                (self.offloads, "--offloads"),
                (self.idle.is_some(), "--idle"),
                (self.spin, "--spin"),
                (self.unmatched.is_some(), "--unmatched"),
                (self.flow_marks, "--flow-marks"),
                (self.id.is_some(), "--id"),
                (self.metrics.is_some(), "--metrics"),
                (self.no_stats, "--no-stats"),
                (self.config.is_some(), "--config"),
                (!self.eal_args.is_empty(), "EAL arguments"),
            ];
            if let Some((_, flag)) = tpa_only.iter().find(|(given, _)| *given) {
                return Err(format!("{flag}: for tpa's stack, not with --kernel"));
            }
            return Ok(Stack::Kernel(SocketOptions {
                congestion: self.congestion,
            }));
        }
        if self.congestion.is_some() {
            return Err(
                "--congestion: for the kernel's sockets (--kernel); tpa's is \
                 `congestion` in --config's [tcp] or TPA_TCP_CONGESTION"
                    .into(),
            );
        }
        let settings = OpsFlags {
            config: self.config,
            id: self.id,
            metrics: self.metrics,
            no_stats: self.no_stats,
        }
        .settings("--config")?;
        let endpoint = TpaEndpoint {
            port: match self.port {
                Some(p) => p,
                None => DEFAULT_PORT_SPEC.parse().map_err(|e| format!("{e}"))?,
            },
            ips: self.ips,
            mac: self.mac,
            rx_mode: self.rx_mode,
            tx_path: self.tx_path,
            offloads: self.offloads,
            idle: if self.spin {
                IdlePolicy::Spin
            } else {
                self.idle.unwrap_or(DEFAULT_IDLE)
            },
            unmatched: self.unmatched.unwrap_or_default(),
            flow_marks: self.flow_marks,
            eal_args: self.eal_args,
            ops: settings.ops,
            tcp: settings.tcp,
            trace: settings.trace,
        };
        endpoint.validate().map_err(|e| e.0)?;
        Ok(Stack::Tpa(Box::new(endpoint)))
    }
}

/// The stack a run is on.
enum Stack {
    /// The kernel's sockets, with these options.
    Kernel(SocketOptions),
    /// tpa on this endpoint.
    Tpa(Box<TpaEndpoint>),
}

#[derive(Debug, Args)]
struct ServerArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The address to listen on, ADDR:PORT (IPv6 as [ADDR]:PORT).
    #[arg(short = 'l', long, value_name = "ADDR:PORT", default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)))]
    listen: SocketAddr,
    /// Worker threads.
    #[arg(short = 'w', long, value_name = "N", default_value_t = 1)]
    workers: u32,
    /// Exit after answering this many client runs.
    #[arg(long, value_name = "N")]
    runs: Option<u64>,
}

#[derive(Debug, Args)]
struct ClientArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The server, ADDR:PORT (IPv6 as [ADDR]:PORT).
    #[arg(short = 's', long, value_name = "ADDR:PORT")]
    server: SocketAddr,
    /// The test: read, write, rw, rr or crr.
    #[arg(short = 't', long, value_name = "TEST")]
    test: TestKind,
    /// Bytes of each write (read: of the server's), or of each request in
    /// rr and crr; with k, m or g for KiB, MiB, GiB [default: 16k for
    /// read, write, rw; 64 for rr, crr].
    #[arg(short = 'm', long, value_name = "SIZE", value_parser = parse_size)]
    message_size: Option<u32>,
    /// rr, crr: bytes of each response [default: the message size].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    response_size: Option<u32>,
    /// Connections open at once, over all workers.
    #[arg(short = 'c', long, value_name = "N", default_value_t = 1)]
    connections: u32,
    /// Worker threads (at most the connections).
    #[arg(short = 'w', long, value_name = "N", default_value_t = 1)]
    workers: u32,
    /// How long the test runs: seconds, or with ms, s or m.
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = parse_duration, default_value = "10")]
    duration: Duration,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Print what moved every SECONDS while the test runs (0: never)
    /// [default: 1, or 0 with --json; with --json, to standard error].
    #[arg(short = 'i', long, value_name = "SECONDS", value_parser = parse_duration)]
    interval: Option<Duration>,
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("tpa-tperf: {msg}");
    ExitCode::from(2)
}

fn server(args: ServerArgs) -> ExitCode {
    let endpoint = match args.stack.endpoint() {
        Ok(e) => e,
        Err(e) => return usage_error(&e),
    };
    let config = ServerConfig {
        listen: args.listen,
        workers: args.workers,
        runs: args.runs,
    };
    if let Err(e) = config.validate() {
        return usage_error(&e.to_string());
    }
    let workers = config.workers;
    let endpoint = match endpoint {
        Stack::Tpa(e) => e,
        Stack::Kernel(sockets) => return kernel_server(&config, &sockets),
    };
    let stop = StopFlag::new();
    if let Err(e) = stop.stop_on_signals() {
        return usage_error(&format!("cannot install signal handlers: {e}"));
    }
    let over = format!("tpa on {}", endpoint.port);
    served(on_tpa::run_server(&config, &endpoint, &stop, |addr| {
        say_listening(addr, &over, workers);
    }))
}

/// The server on the kernel's sockets.
fn kernel_server(config: &ServerConfig, sockets: &SocketOptions) -> ExitCode {
    let over = sockets.describe();
    served(kernel::run_server(config, sockets, |addr| {
        say_listening(addr, &over, config.workers);
    }))
}

/// Prints the line a server's users wait for (tests, scripts), at once.
fn say_listening(addr: SocketAddr, over: &str, workers: u32) {
    println!(
        "tpa-tperf server: listening on {addr} ({over}, {workers} worker{})",
        if workers == 1 { "" } else { "s" }
    );
    let _ = std::io::stdout().flush();
}

/// A server's exit: success, or its error as a usage error.
fn served(result: Result<(), impl std::fmt::Display>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => usage_error(&e.to_string()),
    }
}

fn client(args: ClientArgs) -> ExitCode {
    let endpoint = match args.stack.endpoint() {
        Ok(e) => e,
        Err(e) => return usage_error(&e),
    };
    let message_size = args
        .message_size
        .unwrap_or(if args.test.is_transactional() {
            64
        } else {
            16 << 10
        });
    let config = ClientConfig {
        server: args.server,
        test: args.test,
        message_size,
        response_size: args.response_size.unwrap_or(message_size),
        connections: args.connections,
        workers: args.workers,
        duration: args.duration,
        run: fresh_run_id(),
    };
    if let Err(e) = config.validate() {
        return usage_error(&e.to_string());
    }
    let json = args.json;
    let interval = args.interval.unwrap_or(if json {
        Duration::ZERO
    } else {
        Duration::from_secs(1)
    });
    if !json {
        let over = match &endpoint {
            Stack::Kernel(sockets) => sockets.describe(),
            Stack::Tpa(e) => format!("tpa on {}", e.port),
        };
        println!(
            "tpa-tperf client: {} to {} over {over}, {} connection(s) in {} worker(s), {} s",
            config.test,
            config.server,
            config.connections,
            config.workers,
            config.duration.as_secs_f64()
        );
    }
    let print_interval = |i: &tpa_tperf::live::Interval| {
        if json {
            eprintln!("{i}");
        } else {
            println!("{i}");
        }
    };
    let result = match &endpoint {
        Stack::Kernel(sockets) => {
            kernel::run_client(&config, sockets, Some(interval), print_interval)
                .map_err(|e| e.to_string())
        }
        Stack::Tpa(endpoint) => {
            on_tpa::run_client(&config, endpoint, Some(interval), print_interval)
                .map_err(|e| e.to_string())
        }
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => return usage_error(&e),
    };
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = tpa_stages::ops::log::init() {
        return usage_error(&e);
    }
    match cli.mode {
        Mode::Server(args) => server(args),
        Mode::Client(args) => client(args),
    }
}
