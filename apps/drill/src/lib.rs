//! tpa-drill: a runner for packetdrill-format TCP scripts. A script is a
//! timeline of socket calls and of the segments that must go in (`<`) and
//! out (`>`); the runner ([`run`]) plays the remote end against a
//! [`Backend`] (tpa's stack on a virtual clock, or another stack) and
//! reports each script ([`report`]) as passed, failed (with the line, the
//! expected and the actual segment) or unsupported (naming the
//! construct).
//!
//! [`Backend`]: backend::Backend

pub mod backend;
pub mod command;
pub mod kernel;
pub mod matcher;
pub mod report;
pub mod run;
pub mod script;
pub mod segment;
pub mod symbols;

use std::path::{Path, PathBuf};

use backend::kernel::KernelBackend;
use backend::tpa::TpaBackend;
use backend::{Backend, BackendError, Setup};
use report::ScriptReport;
use run::{RunOptions, Verdict};

/// The scripts in `paths`: files as given, directories searched
/// (recursively) for `*.pkt`, sorted.
///
/// # Errors
///
/// A path that cannot be read.
pub fn collect_scripts(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            std::fs::metadata(p)?;
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "pkt") {
            out.push(p);
        }
    }
    Ok(())
}

/// Makes the backend a script runs against, for its setup (a backend
/// that cannot be made, such as the kernel's without root, is the
/// script's error).
pub type MakeBackend<'a> = dyn FnMut(&Setup) -> Result<Box<dyn Backend>, BackendError> + 'a;

/// The stack a script runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// tpa's, on a virtual clock, its random choices from `seed`.
    Tpa {
        /// The seed of the ISN, ports and TS offset.
        seed: u64,
    },
    /// The Linux kernel's, on real time, in a namespace of the script's
    /// own ([`backend::kernel`]; needs root).
    Kernel,
}

impl Stack {
    /// The backend's name in reports (`tpa`, `linux`).
    pub fn name(self) -> &'static str {
        match self {
            Stack::Tpa { .. } => "tpa",
            Stack::Kernel => "linux",
        }
    }

    /// The backend for a script's setup.
    ///
    /// # Errors
    /// The kernel's when its namespace or TUN device cannot be made.
    pub fn make(self, setup: &Setup) -> Result<Box<dyn Backend>, BackendError> {
        Ok(match self {
            Stack::Tpa { seed } => Box::new(TpaBackend::new(setup.clone(), seed)),
            Stack::Kernel => Box::new(KernelBackend::new(setup)?),
        })
    }
}

/// Runs the script at `path` on `stack`.
pub fn run_file_on(path: &Path, opts: RunOptions, stack: Stack) -> ScriptReport {
    run_file_with(path, opts, &mut |setup| stack.make(setup))
}

/// Runs the script at `path` on tpa's stack (random choices from `seed`).
pub fn run_file(path: &Path, opts: RunOptions, seed: u64) -> ScriptReport {
    run_file_on(path, opts, Stack::Tpa { seed })
}

/// Runs the script at `path` on the backends `make` makes.
pub fn run_file_with(path: &Path, opts: RunOptions, make: &mut MakeBackend<'_>) -> ScriptReport {
    let verdict = match std::fs::read_to_string(path) {
        Err(e) => Verdict::Error(format!("read: {e}")),
        // A panic (a stack's assertion, a leak the pool check found) is
        // this script's error, not the end of a directory run.
        Ok(text) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_text_with(&text, opts, make)
        }))
        .unwrap_or_else(|p| {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Verdict::Error(format!("panicked: {what}"))
        }),
    };
    ScriptReport {
        path: path.display().to_string(),
        verdict,
    }
}

/// Runs script `text` on tpa's stack.
pub fn run_text(text: &str, opts: RunOptions, seed: u64) -> Verdict {
    run_text_with(text, opts, &mut |setup| Stack::Tpa { seed }.make(setup))
}

/// Runs script `text` on the backends `make` makes.
pub fn run_text_with(text: &str, opts: RunOptions, make: &mut MakeBackend<'_>) -> Verdict {
    match script::parse(text) {
        Err(e) => Verdict::Error(format!("parse error at {e}")),
        Ok(s) => run::run(&s, make, opts),
    }
}
