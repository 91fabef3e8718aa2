//! `tpa-redis-proxy`: nutcracker's command line over the proxy engine, on
//! tpa's own TCP stack or on the kernel's sockets (`--stack`; by default
//! chosen by the config's addresses, see `tpa_redis_proxy::stack`). Every
//! flag of nutcracker 0.5.0 is taken with its meaning; tpa's flags are
//! long ones nutcracker lacks. See doc/redis-proxy.md for where we differ.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::Parser;
use tpa_redis_proxy::config;
use tpa_redis_proxy::kernel::{self, Options};
use tpa_redis_proxy::proxy::{describe_stats, Engine, Limits};
use tpa_redis_proxy::stack::{self, Side, StackChoice};
use tpa_redis_proxy::tpa::{Idle, TpaOptions, DEFAULT_PORT_SPEC};
use tpa_responder::{IpCidr, PortSpec};
use tpa_stages::ops::{OpsFlags, Settings};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A redis proxy: a drop-in for twemproxy (nutcracker), same config and flags.
#[derive(Parser, Debug)]
#[command(name = "tpa-redis-proxy", disable_version_flag = true)]
struct Args {
    /// Show the version and exit.
    #[arg(short = 'V', long = "version")]
    version: bool,
    /// Test the configuration for syntax errors and exit.
    #[arg(short = 't', long = "test-conf")]
    test_conf: bool,
    /// Run as a daemon.
    #[arg(short = 'd', long = "daemonize")]
    daemonize: bool,
    /// Print the stats' description and exit.
    #[arg(short = 'D', long = "describe-stats")]
    describe_stats: bool,
    /// Logging level (0..=11; 5 by default).
    #[arg(short = 'v', long = "verbose", default_value_t = 5, value_parser = clap::value_parser!(u8).range(0..=11))]
    verbose: u8,
    /// Log file (standard error by default).
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// Configuration file.
    #[arg(
        short = 'c',
        long = "conf-file",
        default_value = "/etc/nutcracker/nutcracker.yml"
    )]
    conf_file: String,
    /// Stats port.
    #[arg(short = 's', long = "stats-port", default_value_t = 22222)]
    stats_port: u16,
    /// Stats address.
    #[arg(short = 'a', long = "stats-addr", default_value = "0.0.0.0")]
    stats_addr: IpAddr,
    /// Stats aggregation interval in msec (accepted; stats are served live).
    #[arg(short = 'i', long = "stats-interval", default_value_t = 30000)]
    stats_interval: u64,
    /// Pid file (none by default).
    #[arg(short = 'p', long = "pid-file")]
    pid_file: Option<String>,
    /// Read size in bytes (nutcracker's mbuf chunk size, 512..=16777216).
    #[arg(short = 'm', long = "mbuf-size", default_value_t = 16384, value_parser = clap::value_parser!(u32).range(512..=16_777_216))]
    mbuf_size: u32,
    /// Which stack serves the pools: auto (tpa for addresses of its own,
    /// kernel sockets for loopback, names and unix sockets), kernel or tpa.
    #[arg(long, default_value = "auto")]
    stack: StackChoice,
    /// tpa: the device (tap:NAME, af_packet:IFNAME, af_xdp:IFNAME beside
    /// the kernel on the host's address, dpdk:DEVICE with the EAL's
    /// arguments after `--`).
    #[arg(long, default_value = DEFAULT_PORT_SPEC)]
    port: PortSpec,
    /// tpa: an address of its own with its prefix (repeatable), e.g.
    /// 192.0.2.2/24; the pools listen on it.
    #[arg(long = "ip")]
    ips: Vec<IpCidr>,
    /// tpa: its MAC address (TAP: 02:74:70:61:00:01 by default; else the
    /// interface's).
    #[arg(long)]
    mac: Option<tpa::wire::MacAddr>,
    /// tpa: workers, each its own queue of the port (a multi-queue TAP,
    /// an AF_PACKET fanout group, AF_XDP sockets, a DPDK device's queue
    /// pairs), its own engine and connections.
    #[arg(long, default_value_t = 1)]
    workers: u16,
    /// tpa: what a worker does when idle: wait (spin a while, then block
    /// on the port), sleep, or spin.
    #[arg(long, default_value = "wait")]
    idle: Idle,
    /// tpa: the instance's id, its directory under the run directory
    /// ($TPA_RUN_DIR, else /run/tpa) with its stats files, control socket
    /// and traces, for `tpactl --id` [default: $TPA_ID, else
    /// redis-proxy-<pid>, removed at a clean exit].
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
    tpa_config: Option<std::path::PathBuf>,
    /// tpa: DPDK EAL arguments, after `--` (with --port dpdk:<device>
    /// only), e.g. `-- -l 0 --no-huge --no-pci --vdev net_tap0,iface=tpa0`.
    #[arg(last = true, value_name = "EAL_ARGS")]
    eal_args: Vec<String>,
}

/// How `--tpa-config` is named in errors.
const TPA_CONFIG_FLAG: &str = "--tpa-config";

struct Log {
    out: Box<dyn Write + Send>,
    level: u8,
}

impl Log {
    fn line(&mut self, level: u8, text: &str) {
        if level <= self.level {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let _ = writeln!(
                self.out,
                "[{}.{:03}] {text}",
                now.as_secs(),
                now.subsec_millis()
            );
            let _ = self.out.flush();
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.version {
        println!("This is tpa-redis-proxy-{VERSION}");
        return ExitCode::SUCCESS;
    }
    if args.describe_stats {
        print!("This is tpa-redis-proxy-{VERSION}\n{}", describe_stats());
        return ExitCode::SUCCESS;
    }
    let pools = std::fs::read_to_string(&args.conf_file)
        .map_err(|e| e.to_string())
        .and_then(|text| config::parse(&text).map_err(|e| e.to_string()));
    if args.test_conf {
        return match pools {
            Ok(_) => {
                eprintln!(
                    "tpa-redis-proxy: configuration file '{}' syntax is ok",
                    args.conf_file
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "tpa-redis-proxy: configuration file '{}' syntax is invalid: {e}",
                    args.conf_file
                );
                ExitCode::FAILURE
            }
        };
    }
    let pools = match pools {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "tpa-redis-proxy: configuration file '{}': {e}",
                args.conf_file
            );
            return ExitCode::FAILURE;
        }
    };
    let tpa_ips: Vec<IpAddr> = args
        .ips
        .iter()
        .map(|c| match *c {
            IpCidr::V4(c) => IpAddr::V4(c.addr),
            IpCidr::V6(c) => IpAddr::V6(c.addr),
        })
        .collect();
    let side = match stack::choose(&pools, args.stack, &tpa_ips) {
        Ok(side) => side,
        Err(e) => {
            eprintln!("tpa-redis-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ops_flags = OpsFlags {
        config: args.tpa_config.clone(),
        id: args.id.clone(),
        metrics: args.metrics,
        no_stats: args.no_stats,
    };
    let settings = match side {
        Side::Tpa => ops_flags.settings(TPA_CONFIG_FLAG),
        // The kernel's sockets have no tpa workers to look into.
        Side::Kernel => match ops_flags.first_given(TPA_CONFIG_FLAG) {
            Some(flag) => Err(format!(
                "{flag}: for tpa's stack; these pools are served on kernel sockets"
            )),
            None => Ok(Settings::default()),
        },
    };
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tpa-redis-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tpa_options = TpaOptions {
        port: args.port.clone(),
        ips: args.ips.clone(),
        mac: args.mac,
        workers: args.workers,
        idle: args.idle,
        settings,
        eal_args: args.eal_args.clone(),
    };
    if side == Side::Tpa {
        if let Err(e) = tpa_options.validate(&pools) {
            eprintln!("tpa-redis-proxy: {e}");
            return ExitCode::FAILURE;
        }
        // tpa's own logs (warnings, `tpactl cfg log`) through `tracing`,
        // to standard error; the proxy's log stays nutcracker's (-v, -o).
        if let Err(e) = tpa_stages::ops::log::init() {
            eprintln!("tpa-redis-proxy: {e}");
            return ExitCode::FAILURE;
        }
    }
    let engine_pools = pools.clone();
    let engine = match Engine::new(pools, Limits::default()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("tpa-redis-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("tpa-redis-proxy: cannot open log file '{path}': {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(std::io::stderr()),
    };
    let mut log = Log {
        out,
        level: args.verbose,
    };
    if args.daemonize {
        if let Err(e) = kernel::daemonize() {
            log.line(1, &format!("daemonize failed: {e}"));
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &args.pid_file {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            log.line(1, &format!("cannot write pid file '{path}': {e}"));
            return ExitCode::FAILURE;
        }
    }
    kernel::catch_stop_signals();
    let options = Options {
        stats: Some(SocketAddr::new(args.stats_addr, args.stats_port)),
        read_chunk: args.mbuf_size as usize,
        version: VERSION.to_string(),
    };
    log.line(
        5,
        &format!(
            "tpa-redis-proxy-{VERSION} started on pid {}",
            std::process::id()
        ),
    );
    let log = std::sync::Mutex::new(log);
    let line = |level: u8, text: &str| {
        if let Ok(mut log) = log.lock() {
            log.line(level, text);
        }
    };
    let result = match side {
        Side::Kernel => {
            let mut engine_log = line;
            kernel::run(
                engine,
                &options,
                |bound| {
                    line(
                        5,
                        &format!("listening on {} (kernel sockets)", bound.join(", ")),
                    )
                },
                &mut engine_log,
            )
            .map_err(|e| e.to_string())
        }
        Side::Tpa => {
            drop(engine);
            let workers = tpa_options.workers;
            let port = tpa_options.port_name();
            tpa_redis_proxy::tpa::run(
                engine_pools,
                Limits::default(),
                &tpa_options,
                &options,
                |bound| {
                    line(
                        5,
                        &format!(
                            "listening on {} (tpa on {port}, {workers} worker{})",
                            bound.join(", "),
                            if workers == 1 { "" } else { "s" }
                        ),
                    )
                },
                &line,
            )
            .map_err(|e| e.to_string())
        }
    };
    let mut log = log.into_inner().unwrap_or_else(|e| e.into_inner());
    let code = match result {
        Ok(()) => {
            log.line(5, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log.line(1, &format!("error: {e}"));
            ExitCode::FAILURE
        }
    };
    // Last: a supervisor that waits for the pid file to go finds the log
    // complete.
    if let Some(path) = &args.pid_file {
        let _ = std::fs::remove_file(path);
    }
    code
}
