//! The `tpa-responder` command: parses the command line and runs the
//! responder until Ctrl-C, `--duration` or `--count`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tpa::wire::MacAddr;
use tpa::worker::StopFlag;
use tpa_responder::{run, Config, IpCidr, PortSpec};

/// Answers ARP, ICMP echo (ping), IPv6 neighbor solicitations and ICMPv6
/// echo for the given addresses.
#[derive(Debug, Parser)]
#[command(name = "tpa-responder", version)]
struct Args {
    /// The device: tap:<ifname> (created if missing) or af_packet:<ifname>.
    #[arg(long, value_name = "KIND:IFNAME")]
    port: PortSpec,
    /// An address to answer for, with its prefix length (repeatable; IPv4
    /// or IPv6), e.g. 192.0.2.1/24.
    #[arg(long = "ip", value_name = "ADDR/LEN", required = true)]
    ips: Vec<IpCidr>,
    /// Our MAC address (default: 02:74:70:61:00:01 on TAP, the interface's
    /// own on AF_PACKET).
    #[arg(long)]
    mac: Option<MacAddr>,
    /// Write every received frame to this pcap file.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Stop after receiving this many frames.
    #[arg(long)]
    count: Option<u64>,
    /// Print counters every this many seconds (0: only at the end).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    interval: f64,
}

fn seconds(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s).ok().filter(|d| !d.is_zero())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = Config {
        mac: args.mac,
        pcap: args.pcap,
        duration: args.duration.and_then(seconds),
        count: args.count,
        stats_interval: seconds(args.interval),
        ..Config::new(args.port, args.ips)
    };
    let stop = StopFlag::new();
    if let Err(e) = stop.stop_on_signals() {
        eprintln!("tpa-responder: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "tpa-responder: serving {} for {}; Ctrl-C stops",
        config.port,
        config
            .ips
            .iter()
            .map(IpCidr::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    match run(&config, &stop, |line| println!("{line}")) {
        Ok(summary) => {
            println!("final: {}", summary.line());
            println!("mac {}", summary.mac);
            for (ip, mac) in &summary.neighbors_v4 {
                println!("neighbor {ip} {mac}");
            }
            for (ip, mac) in &summary.neighbors_v6 {
                println!("neighbor {ip} {mac}");
            }
            print!("{}", summary.counters);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tpa-responder: {e}");
            ExitCode::FAILURE
        }
    }
}
