//! The `tpa-responder` command: parses the command line and runs the
//! responder until Ctrl-C, `--duration` or `--count`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tpa::port::af_packet::RxMode;
use tpa::wire::MacAddr;
use tpa::worker::StopFlag;
use tpa_responder::{parse_rule, parse_rx_mode, run, Config, IpCidr, PortSpec};
use tpa_stages::acl::Rule;

/// Answers ARP, ICMP echo (ping), IPv6 neighbor solicitations and ICMPv6
/// echo for the given addresses.
#[derive(Debug, Parser)]
#[command(
    name = "tpa-responder",
    version,
    after_help = "\
ACL (--acl, repeatable): rules are tried in order, the first match decides,
and a frame no rule matches is allowed. A rule is
  (allow|deny) [ip|icmp|tcp|udp|arp|ipv6] [src ADDR[/LEN]] [dst ADDR[/LEN]]
               [sport PORT[-PORT]] [dport PORT[-PORT]]
(addresses IPv4; `ip` is any IPv4 frame; ports match TCP and UDP), e.g.
  --acl 'allow icmp src 10.1.0.0/16' --acl 'deny ip src 10.0.0.0/8'
Denied frames are dropped and counted under the `acl` stage's reason `acl`.

DPDK (built with --features dpdk): everything after `--` goes to DPDK's EAL,
as with DPDK's own tools; --port dpdk:<device> names the ethdev to serve (a
vdev the EAL arguments create, or a PCI address). For example, with the
kernel as the peer through a TAP interface, no hugepages and no NIC:

  tpa-responder --port dpdk:net_tap0 --ip 192.0.2.1/24 \\
      -- -l 0 --no-huge --no-pci --vdev net_tap0,iface=tpa0"
)]
struct Args {
    /// The device: tap:<ifname> (created if missing), af_packet:<ifname>,
    /// or dpdk:<device> (an ethdev: a --vdev name or a PCI address; EAL
    /// arguments after `--`).
    #[arg(long, value_name = "KIND:NAME")]
    port: PortSpec,
    /// An address to answer for, with its prefix length (repeatable; IPv4
    /// or IPv6), e.g. 192.0.2.1/24.
    #[arg(long = "ip", value_name = "ADDR/LEN", required = true)]
    ips: Vec<IpCidr>,
    /// Our MAC address (default: 02:74:70:61:00:01 on TAP, the interface's
    /// or device's own on AF_PACKET and DPDK).
    #[arg(long)]
    mac: Option<MacAddr>,
    /// Write every frame received and sent to this pcap file.
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
    /// AF_PACKET receive ring (with --port af_packet:<ifname> only):
    /// low-latency (per-frame hand-over, the default) or throughput
    /// (per-block hand-over).
    #[arg(long, value_name = "MODE", value_parser = parse_rx_mode)]
    rx_mode: Option<RxMode>,
    /// An access control rule (repeatable, first match wins), e.g.
    /// 'deny ip src 10.0.0.0/8'; syntax below.
    #[arg(long = "acl", value_name = "RULE", value_parser = parse_rule)]
    acl: Vec<Rule>,
    /// Announce our addresses at start (a gratuitous ARP and an unsolicited
    /// neighbor advertisement each), so neighbors learn our MAC address
    /// before any exchange. Only for addresses that are the responder's own.
    #[arg(long)]
    announce: bool,
    /// DPDK EAL arguments, after `--` (with --port dpdk:<device> only),
    /// e.g. `-- -l 0 --no-huge --no-pci --vdev net_tap0,iface=tpa0`.
    #[arg(last = true, value_name = "EAL_ARGS")]
    eal_args: Vec<String>,
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
        eal_args: args.eal_args,
        rx_mode: args.rx_mode,
        acl: args.acl,
        announce: args.announce,
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
            if let Some(n) = summary.buffers_not_returned.filter(|&n| n > 0) {
                eprintln!("tpa-responder: {n} buffers not returned to the pool (a leak)");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tpa-responder: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = [
            "tpa-responder",
            "--port",
            "af_packet:v0",
            "--ip",
            "192.0.2.1/24",
        ];
        Args::try_parse_from(base.iter().chain(extra))
    }

    #[test]
    fn rx_mode_and_acl_rules_parse() {
        let args = parse(&[
            "--rx-mode",
            "throughput",
            "--acl",
            "deny ip src 10.0.0.0/8",
            "--acl",
            "allow icmp",
        ])
        .unwrap();
        assert_eq!(args.rx_mode, Some(RxMode::throughput()));
        assert_eq!(args.acl.len(), 2);
        assert_eq!(args.acl[1], parse_rule("allow icmp").unwrap());
        assert_eq!(
            parse(&["--rx-mode", "low-latency"]).unwrap().rx_mode,
            Some(RxMode::low_latency())
        );
        assert_eq!(parse(&[]).unwrap().rx_mode, None);
    }

    #[test]
    fn bad_values_name_what_was_expected() {
        let e = parse(&["--rx-mode", "fast"]).unwrap_err().to_string();
        assert!(e.contains("expected low-latency or throughput"), "{e}");
        let e = parse(&["--acl", "deny from 10.0.0.1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown word `from`"), "{e}");
    }
}
