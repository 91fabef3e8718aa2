//! `tpactl st`: socket traces decoded.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tpa_stages::trace::decode::{decode, lines};
use tpa_stages::trace::ring::SlotStatus;

/// Decodes `files` (the run directory's when none); `all`: closed
/// connections too; `archive`: lists the archived rings instead.
pub fn run(run_dir: &Path, all: bool, archive: bool, files: Vec<PathBuf>) -> ExitCode {
    if archive {
        let found = trace_files(run_dir, true);
        for f in &found {
            let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            println!("{} {size} bytes", f.display());
        }
        if found.is_empty() {
            eprintln!("tpactl st: no archived rings under {}", run_dir.display());
        }
        return ExitCode::SUCCESS;
    }
    let (files, named) = if files.is_empty() {
        (trace_files(run_dir, false), false)
    } else {
        (files, true)
    };
    if files.is_empty() {
        eprintln!("tpactl st: no trace files under {}", run_dir.display());
        return ExitCode::FAILURE;
    }
    let mut failed = false;
    for f in &files {
        let decoded = std::fs::read(f)
            .map_err(|e| e.to_string())
            .and_then(|b| decode(&b).map_err(|e| e.to_string()));
        match decoded {
            Ok(dump) => {
                println!(
                    "{}: pid {}, {} records per socket",
                    f.display(),
                    dump.pid,
                    dump.records
                );
                // A named file (an archive, a post-mortem) shows everything.
                for sock in dump
                    .sockets
                    .iter()
                    .filter(|s| all || named || s.status == SlotStatus::Live)
                {
                    for line in lines(sock) {
                        println!("{line}");
                    }
                }
            }
            Err(e) => {
                eprintln!("tpactl st: {}: {e}", f.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The `*.trace` files in `dir` and one level down (`archive` false), or
/// in the `archive/` directories there (`archive` true), sorted.
fn trace_files(dir: &Path, archive: bool) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        dirs.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "archive")),
        );
    }
    if archive {
        dirs = dirs.into_iter().map(|d| d.join("archive")).collect();
    }
    let mut out: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "trace") && p.is_file())
        .collect();
    out.sort();
    out
}
