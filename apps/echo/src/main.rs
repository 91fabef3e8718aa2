//! The `tpa-echo` command: `server` echoes UDP datagrams, `client` sends
//! them and checks the echoes; over tpa, or over the kernel with
//! `--kernel`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tpa::port::af_packet::RxMode;
use tpa::wire::MacAddr;
use tpa::worker::StopFlag;
use tpa_echo::config::DEFAULT_TIMEOUT;
use tpa_echo::report::egress_line;
use tpa_echo::run::run_server_with;
use tpa_echo::{run_client, ClientConfig, Endpoint, ServerConfig};
use tpa_responder::{parse_rx_mode, IpCidr, PortSpec};
use tpa_stages::ops::{Instance, OpsFlags, Settings};

/// A UDP (and, on tpa, TCP) echo server and a UDP client, on tpa or on
/// the kernel's sockets.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-echo",
    version,
    after_help = "\
Examples:
  tpa-echo server --port tap:tpa0 --ip 192.0.2.1/24 --udp-port 7   (TCP on 7 too)
  tpa-echo client --kernel --to 192.0.2.1:7 --count 10000 --size 64 --window 8
  tpa-echo server --kernel --udp-port 7          (the kernel's echo, every address)

The client prints one `final:` line of words and values: sent, received,
lost, corrupt, duplicate, late, send_errors, refused, seconds,
datagrams_per_s, p50_us, p99_us, p999_us; it exits with 1 when any datagram
was lost or an echo was not byte for byte what was sent.

DPDK (built with --features dpdk): everything after `--` goes to DPDK's EAL."
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Echo every UDP datagram sent to --udp-port back to its sender, and
    /// (tpa) every byte of every TCP connection to --tcp-port.
    Server(ServerArgs),
    /// Send datagrams to an echo server and check every echoed byte.
    Client(ClientArgs),
}

/// The flags of both modes: which stack, which device, which addresses.
#[derive(Debug, Args)]
struct EndpointArgs {
    /// Use the kernel's UDP sockets instead of tpa (no --port, --mac,
    /// --rx-mode or EAL arguments).
    #[arg(long)]
    kernel: bool,
    /// tpa: the device: tap:<ifname> (created if missing), af_packet:<ifname>,
    /// af_xdp:<ifname> (beside the kernel on its address), or dpdk:<device> (EAL arguments after `--`).
    #[arg(long, value_name = "KIND:NAME")]
    port: Option<PortSpec>,
    /// tpa: an address of ours with its prefix length (repeatable, IPv4 or
    /// IPv6). With --kernel: the one address to bind (default: any).
    #[arg(long = "ip", value_name = "ADDR/LEN")]
    ips: Vec<IpCidr>,
    /// tpa: our MAC address (default: 02:74:70:61:00:01 on TAP, the
    /// interface's or device's own on AF_PACKET and DPDK).
    #[arg(long)]
    mac: Option<MacAddr>,
    /// tpa, AF_PACKET only: low-latency (the default) or throughput.
    #[arg(long, value_name = "MODE", value_parser = parse_rx_mode)]
    rx_mode: Option<RxMode>,
    /// tpa: poll again at once when idle (one core at 100%, the lowest
    /// latency) instead of sleeping 50 µs after a while without work.
    #[arg(long)]
    spin: bool,
    /// DPDK EAL arguments, after `--` (with --port dpdk:<device> only).
    #[arg(last = true, value_name = "EAL_ARGS")]
    eal_args: Vec<String>,
}

impl EndpointArgs {
    fn into_endpoint(self) -> Endpoint {
        Endpoint {
            kernel: self.kernel,
            port: self.port,
            ips: self.ips,
            mac: self.mac,
            rx_mode: self.rx_mode,
            eal_args: self.eal_args,
            spin: self.spin,
        }
    }
}

#[derive(Debug, Args)]
struct ServerArgs {
    #[command(flatten)]
    endpoint: EndpointArgs,
    /// The UDP port to echo on.
    #[arg(long, value_name = "N")]
    udp_port: u16,
    /// tpa: the TCP port to echo on [default: the UDP port].
    #[arg(long, value_name = "N", conflicts_with = "no_tcp")]
    tcp_port: Option<u16>,
    /// tpa: echo UDP only.
    #[arg(long)]
    no_tcp: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Stop after echoing this many datagrams.
    #[arg(long)]
    count: Option<u64>,
    /// tpa: the instance's id, its directory under the run directory
    /// ($TPA_RUN_DIR, else /run/tpa) with its stats file, control socket
    /// and traces, for `tpactl --id` [default: $TPA_ID, else
    /// echo-server-<pid>, removed at a clean exit].
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// tpa: serve Prometheus' text format on ADDR:PORT (GET /metrics)
    /// [default: $TPA_METRICS, else none].
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// tpa: no stats file, control socket nor Prometheus endpoint
    /// (TPA_STATS=0).
    #[arg(long)]
    no_stats: bool,
    /// tpa: a TOML file with [tcp] (doc/guide/tcp-config.md), [trace],
    /// [stats] and [metrics] tables; the TPA_* variables and the flags
    /// win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

/// The settings of the server's flags over the environment's, over its
/// `--config` file's.
fn settings(args: &ServerArgs) -> Result<Settings, String> {
    OpsFlags {
        config: args.config.clone(),
        id: args.id.clone(),
        metrics: args.metrics,
        no_stats: args.no_stats,
    }
    .settings("--config")
}

#[derive(Debug, Args)]
struct ClientArgs {
    #[command(flatten)]
    endpoint: EndpointArgs,
    /// The echo server, ADDR:PORT (IPv6 as [ADDR]:PORT).
    #[arg(long, value_name = "ADDR:PORT")]
    to: SocketAddr,
    /// Datagrams to send.
    #[arg(long)]
    count: u64,
    /// UDP payload bytes of each (8 at least: a sequence number, then
    /// bytes the echo is checked against).
    #[arg(long, value_name = "BYTES")]
    size: usize,
    /// Datagrams per second at most (default: as fast as the window allows).
    #[arg(long, value_name = "PER_SECOND")]
    rate: Option<f64>,
    /// Datagrams out (sent, echo not back yet) at once at most.
    #[arg(long, value_name = "N", default_value_t = 1)]
    window: u32,
    /// Seconds an echo may take before its datagram counts as lost (the
    /// default covers a whole ARP or neighbor resolution, retries included).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TIMEOUT.as_secs_f64())]
    timeout: f64,
    /// Our UDP port (default: any free one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    udp_port: u16,
}

fn seconds(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s).ok().filter(|d| !d.is_zero())
}

fn server_config(args: ServerArgs) -> ServerConfig {
    let endpoint = args.endpoint.into_endpoint();
    // tpa serves TCP on the UDP port unless told otherwise; the kernel
    // mode only when asked (which its check refuses).
    let tcp_port = match (args.no_tcp, endpoint.kernel) {
        (true, _) => None,
        (false, true) => args.tcp_port,
        (false, false) => Some(args.tcp_port.unwrap_or(args.udp_port)),
    };
    ServerConfig {
        duration: args.duration.and_then(seconds),
        count: args.count,
        tcp_port,
        ..ServerConfig::new(endpoint, args.udp_port)
    }
}

fn client_config(args: ClientArgs) -> ClientConfig {
    ClientConfig {
        rate: args.rate,
        window: args.window,
        timeout: Duration::try_from_secs_f64(args.timeout).unwrap_or(Duration::ZERO),
        local_port: args.udp_port,
        ..ClientConfig::new(
            args.endpoint.into_endpoint(),
            args.to,
            args.count,
            args.size,
        )
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = tpa_stages::ops::log::init() {
        eprintln!("tpa-echo: {e}");
        return ExitCode::FAILURE;
    }
    let stop = StopFlag::new();
    if let Err(e) = stop.stop_on_signals() {
        eprintln!("tpa-echo: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    match cli.mode {
        Mode::Server(args) => {
            let settings = match settings(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("tpa-echo: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let trace = settings.trace.enabled;
            let ops = settings.ops;
            let config = ServerConfig {
                tcp: settings.tcp,
                trace: settings.trace,
                ..server_config(args)
            };
            // The kernel mode has no tpa workers to look into.
            let instance = (!config.endpoint.kernel)
                .then(|| Instance::start_if_on(&ops, "echo-server", trace))
                .flatten();
            match run_server_with(&config, &stop, instance.as_ref(), |line| println!("{line}")) {
                Ok(report) => {
                    println!("final: {report}");
                    if let Some(tcp) = &report.tcp {
                        println!("tcp: {tcp}");
                    }
                    if let Some(counters) = &report.counters {
                        print!("{counters}");
                    }
                    if let Some(egress) = &report.egress {
                        println!("{}", egress_line(egress));
                    }
                    match report.buffers_not_returned {
                        Some(n) if n > 0 => {
                            eprintln!("tpa-echo: {n} buffers not returned to the pool (a leak)");
                            ExitCode::FAILURE
                        }
                        _ => ExitCode::SUCCESS,
                    }
                }
                Err(e) => {
                    eprintln!("tpa-echo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Mode::Client(args) => {
            let config = client_config(args);
            match run_client(&config, &stop) {
                Ok(report) => {
                    println!("final: {report}");
                    if let Some(counters) = &report.counters {
                        print!("{counters}");
                    }
                    if let Some(egress) = &report.egress {
                        println!("{}", egress_line(egress));
                    }
                    if let Some(n) = report.buffers_not_returned.filter(|&n| n > 0) {
                        eprintln!("tpa-echo: {n} buffers not returned to the pool (a leak)");
                        return ExitCode::FAILURE;
                    }
                    if let Some(e) = &report.error {
                        eprintln!("tpa-echo: {e}");
                    }
                    if let Some(c) = report.first_corruption {
                        eprintln!("tpa-echo: first corrupt echo: {c}");
                    }
                    if report.lost > 0 || report.corrupt > 0 {
                        let first = report
                            .first_lost
                            .map_or_else(String::new, |seq| format!(" (the first: {seq})"));
                        eprintln!(
                            "tpa-echo: {} of {} datagrams lost{first}, {} corrupt echoes",
                            report.lost, report.sent, report.corrupt
                        );
                        return ExitCode::FAILURE;
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tpa-echo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tpa-echo").chain(args.iter().copied()))
    }

    #[test]
    fn a_client_command_line_becomes_its_config() {
        let Mode::Client(args) = parse(&[
            "client",
            "--kernel",
            "--to",
            "[2001:db8::1]:7",
            "--count",
            "5",
            "--size",
            "100",
            "--rate",
            "1000",
            "--window",
            "4",
            "--timeout",
            "0.5",
        ])
        .unwrap()
        .mode
        else {
            panic!("not a client");
        };
        let c = client_config(args);
        assert!(c.endpoint.kernel);
        assert_eq!(c.to, "[2001:db8::1]:7".parse().unwrap());
        assert_eq!((c.count, c.size, c.window), (5, 100, 4));
        assert_eq!(c.rate, Some(1000.0));
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn a_server_command_line_becomes_its_config() {
        let Mode::Server(args) = parse(&[
            "server",
            "--port",
            "af_packet:v0",
            "--ip",
            "10.0.0.1/24",
            "--ip",
            "fd00::1/64",
            "--udp-port",
            "7",
            "--rx-mode",
            "throughput",
            "--count",
            "3",
        ])
        .unwrap()
        .mode
        else {
            panic!("not a server");
        };
        let s = server_config(args);
        assert_eq!(s.endpoint.port, Some(PortSpec::AfPacket("v0".into())));
        assert_eq!(s.endpoint.ips.len(), 2);
        assert_eq!(s.endpoint.rx_mode, Some(RxMode::throughput()));
        assert_eq!((s.udp_port, s.count), (7, Some(3)));
        assert_eq!(s.tcp_port, Some(7), "TCP on the UDP port by default");
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn the_tcp_port_is_chosen_or_turned_off() {
        let server = |args: &[&str]| match parse(args).unwrap().mode {
            Mode::Server(a) => server_config(a),
            Mode::Client(_) => unreachable!(),
        };
        let tpa = [
            "server",
            "--port",
            "tap:t0",
            "--ip",
            "10.0.0.1/24",
            "--udp-port",
            "7",
        ];
        let with = |extra: &[&'static str]| {
            let mut v = tpa.to_vec();
            v.extend_from_slice(extra);
            server(&v)
        };
        assert_eq!(with(&["--tcp-port", "8"]).tcp_port, Some(8));
        assert_eq!(with(&["--no-tcp"]).tcp_port, None);
        assert!(parse(&[&tpa[..], &["--no-tcp", "--tcp-port", "8"]].concat()).is_err());
        let kernel = server(&["server", "--kernel", "--udp-port", "7"]);
        assert_eq!(kernel.tcp_port, None, "the kernel mode echoes UDP only");
        let asked = server(&["server", "--kernel", "--udp-port", "7", "--tcp-port", "7"]);
        assert!(asked
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("--tcp-port"));
    }

    #[test]
    fn a_bad_value_names_its_flag() {
        let e = parse(&["client", "--to", "10.0.0.1", "--count", "1", "--size", "8"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--to"), "{e}");
        let e = parse(&["server", "--udp-port", "70000"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--udp-port"), "{e}");
        let e = parse(&["server", "--port", "eth0", "--udp-port", "7"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--port") && e.contains("expected tap:"), "{e}");
        let c = client_config(
            match parse(&[
                "client",
                "--kernel",
                "--to",
                "10.0.0.1:7",
                "--count",
                "1",
                "--size",
                "8",
                "--timeout",
                "0",
            ])
            .unwrap()
            .mode
            {
                Mode::Client(a) => a,
                Mode::Server(_) => unreachable!(),
            },
        );
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("--timeout"));
    }
}
