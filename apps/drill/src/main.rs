//! `tpa-drill FILE|DIR...`: runs packetdrill-format TCP scripts against
//! tpa's stack on a virtual clock (or, `--backend kernel`, the Linux
//! kernel's on real time, as packetdrill does); prints pass / fail / unsupported per
//! script, and for several a table with the total (also written as
//! Markdown). Exits 1 when a script failed (unless `--report`) or broke.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use clap::{Parser, ValueEnum};
use tpa_drill::matcher::Mode;
use tpa_drill::report::{markdown, table, totals, ScriptReport};
use tpa_drill::run::RunOptions;
use tpa_drill::{collect_scripts, run_file_on, Stack};

/// Runs packetdrill-format scripts against tpa's TCP stack.
#[derive(Parser, Debug)]
#[command(name = "tpa-drill", version)]
struct Args {
    /// Scripts (`*.pkt`) or directories of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Compare segments portably (flags, sequence numbers, ack, length,
    /// options by kind) rather than strictly (every field as written).
    #[arg(long)]
    portable: bool,
    /// Where to write the Markdown table (several scripts).
    #[arg(long, default_value_os_t = std::env::temp_dir().join("tpa-drill-results.md"))]
    markdown: PathBuf,
    /// The seed of the stack's random choices (ISN, ports, TS offset).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The stack under test: tpa's (virtual clock) or the Linux kernel's
    /// (real sockets and time, a TUN device in a namespace per script;
    /// needs root).
    #[arg(long, value_enum, default_value_t = BackendArg::Tpa)]
    backend: BackendArg,
    /// The timing tolerance (µs) for every script, instead of its own
    /// `--tolerance_usecs` (default 4000). On the kernel 10000 unless
    /// given: its timers tick in jiffies (4 ms at HZ=250) and its calls
    /// and packets wait for a CPU on a busy machine.
    #[arg(long)]
    tolerance_usecs: Option<u64>,
    /// A further tolerance in percent of the time since the previous
    /// event. Default 0 on tpa (its virtual clock is exact) and 13 on the
    /// kernel, whose timers fire up to an eighth of their timeout late
    /// (the timer wheel's granularity).
    #[arg(long)]
    tolerance_percent: Option<u64>,
    /// How many scripts run at once. Each has its own stack (and on the
    /// kernel its own namespace); a kernel script mostly waits on real
    /// time, so several at once shorten a directory run by as much.
    #[arg(long, short = 'j', default_value_t = 1)]
    jobs: usize,
    /// A report, not a gate: exit 0 although scripts fail (1 still when
    /// one cannot run: a parse error, a backend that broke). For the
    /// kernel's results in CI, which differ from tpa's by design.
    #[arg(long)]
    report: bool,
    /// Print the details of every failure even in a table.
    #[arg(short, long)]
    verbose: bool,
}

/// `--tolerance-usecs` on the kernel unless given.
const KERNEL_TOLERANCE_US: u64 = 10_000;

/// `--tolerance-percent` on the kernel unless given: its timer wheel
/// rounds a timeout up by at most an eighth.
const KERNEL_TOLERANCE_PERCENT: u64 = 13;

/// `--backend`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    /// tpa's stack.
    Tpa,
    /// The Linux kernel's.
    Kernel,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let files = match collect_scripts(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tpa-drill: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = RunOptions {
        mode: if args.portable {
            Mode::Portable
        } else {
            Mode::Strict
        },
        tolerance_us: match args.backend {
            BackendArg::Tpa => args.tolerance_usecs,
            BackendArg::Kernel => Some(args.tolerance_usecs.unwrap_or(KERNEL_TOLERANCE_US)),
        },
        tolerance_percent: args.tolerance_percent.unwrap_or(match args.backend {
            BackendArg::Tpa => 0,
            BackendArg::Kernel => KERNEL_TOLERANCE_PERCENT,
        }),
    };
    let stack = match args.backend {
        BackendArg::Tpa => Stack::Tpa { seed: args.seed },
        BackendArg::Kernel => Stack::Kernel,
    };
    let reports = run_all(&files, opts, stack, args.jobs.max(1));
    if reports.len() == 1 && !args.paths.iter().any(|p| p.is_dir()) {
        println!("{}", reports[0].detail());
    } else {
        for r in &reports {
            if args.verbose && r.status() != "pass" {
                println!("{}", r.detail());
            }
        }
        print!("{}", table(&reports));
        match std::fs::write(&args.markdown, markdown(&reports, stack.name())) {
            Ok(()) => println!("markdown: {}", args.markdown.display()),
            Err(e) => eprintln!("tpa-drill: write {}: {e}", args.markdown.display()),
        }
    }
    let t = totals(&reports);
    let failed = if args.report { 0 } else { t.fail };
    if failed + t.error > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs `files` on `jobs` threads; the reports in the order of `files`.
fn run_all(files: &[PathBuf], opts: RunOptions, stack: Stack, jobs: usize) -> Vec<ScriptReport> {
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(files.len()));
    std::thread::scope(|s| {
        for _ in 0..jobs.min(files.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(f) = files.get(i) else { break };
                let r = run_file_on(f, opts, stack);
                done.lock()
                    .expect("no thread panics holding it")
                    .push((i, r));
            });
        }
    });
    let mut done = done.into_inner().expect("no thread panicked holding it");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
