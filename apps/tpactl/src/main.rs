//! `tpactl`: looks into tpa instances through the files they keep under
//! their run directory (`$TPA_RUN_DIR`, else /run/tpa; one directory per
//! instance id), without asking a worker; `cfg` talks to the instance's
//! control socket. doc/operations.md shows it at work.
//!
//! ```text
//! tpactl [--id ID] [--run-dir DIR] [--json] COMMAND
//!   list                 instances under the run directory
//!   sk [-v]              sockets (-v: every counter of each)
//!   ss [--once]          live rates, refreshed every --interval
//!   worker               worker loops and stage counters
//!   mem                  buffer pools
//!   neigh                neighbor caches
//!   cfg [KEY [VALUE]]    runtime knobs: get, set
//!   st [--all] [FILE...] socket traces decoded; --archive lists archives
//! ```

mod st;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tpactl", about = "Look into tpa instances")]
struct Cli {
    /// Where the instances keep their files [default: $TPA_RUN_DIR, else
    /// /run/tpa].
    #[arg(long, global = true, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// The instance (its directory's name; `tpactl list` shows them);
    /// needed when there are several.
    #[arg(long, global = true, value_name = "ID")]
    id: Option<String>,
    /// JSON for scripts instead of lines for people.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The instances under the run directory: id, pid, workers, alive.
    List,
    /// Sockets: state, addresses, queues, cwnd, smoothed RTT,
    /// retransmissions.
    Sk {
        /// Every counter of each connection.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Live rates per worker and per connection, refreshed.
    Ss {
        /// Seconds between samples.
        #[arg(long, default_value = "1", value_name = "SECONDS")]
        interval: f64,
        /// One sample (two readings an interval apart), then exit.
        #[arg(long)]
        once: bool,
    },
    /// Worker loops: busy, idle and starved time, packets, and every
    /// stage's counters with its drops by reason.
    Worker,
    /// Buffer pools: size, in use, held bytes.
    Mem,
    /// Neighbor caches.
    Neigh,
    /// Runtime knobs (trace, log, stats.interval_ms): all, one, or set one.
    Cfg {
        /// The knob.
        key: Option<String>,
        /// Its new value.
        value: Option<String>,
    },
    /// Socket traces: every traced connection's records, decoded.
    St {
        /// Closed connections too (their rings stay until the slot is
        /// reused); only live ones otherwise.
        #[arg(long)]
        all: bool,
        /// List the archived rings instead (decode one by naming it).
        #[arg(long)]
        archive: bool,
        /// Trace files to decode (a worker's or an archive); the run
        /// directory's when none.
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run_dir = cli
        .run_dir
        .or_else(|| std::env::var_os("TPA_RUN_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/run/tpa"));
    let json = cli.json;
    let command = match cli.command {
        Command::St {
            all,
            archive,
            files,
        } => {
            let dir = match &cli.id {
                Some(id) => run_dir.join(id),
                None => run_dir,
            };
            return st::run(&dir, all, archive, files);
        }
        Command::List => return finish(view::list(&run_dir, json)),
        other => other,
    };
    let result = view::instance_dir(&run_dir, cli.id.as_deref()).and_then(|dir| match command {
        Command::Sk { verbose } => view::sk(&dir, verbose, json),
        Command::Ss { interval, once } => {
            let every = Duration::try_from_secs_f64(interval)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("--interval {interval}: a positive number of seconds"))?;
            view::ss(&dir, every, once, json)
        }
        Command::Worker => view::worker(&dir, json),
        Command::Mem => view::mem(&dir, json),
        Command::Neigh => view::neigh(&dir, json),
        Command::Cfg { key, value } => view::cfg(&dir, key, value, json),
        // Answered above, without an instance.
        Command::List | Command::St { .. } => Ok(()),
    });
    finish(result)
}

/// The exit code of a command's result, its error said.
fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tpactl: {e}");
            ExitCode::FAILURE
        }
    }
}
