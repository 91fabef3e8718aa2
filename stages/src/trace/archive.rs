//! Copies of rings worth keeping: when a connection recovers from a loss
//! or a timeout, or ends abnormally, its ring is written to a file of its
//! own under `<run dir>/archive/` (a trace file of one slot, which the
//! decoder reads as any other), at most `archive_per_sec` a second.

use std::path::{Path, PathBuf};

use super::ring::TraceFile;

/// The archive of one worker's file, with its rate limit.
#[derive(Debug)]
pub struct Archive {
    dir: PathBuf,
    /// Which worker file (its name without `.trace`) archives come from.
    stem: String,
    per_sec: u32,
    window_start_ns: Option<u64>,
    left: u32,
    /// Rings archived.
    pub written: u64,
    /// Rings not archived: over the rate, or the write failed.
    pub dropped: u64,
}

impl Archive {
    /// The archive under `dir` for the file named `stem`, `per_sec` a
    /// second at most.
    pub fn new(dir: &Path, stem: &str, per_sec: u32) -> Archive {
        Archive {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            per_sec,
            window_start_ns: None,
            left: 0,
            written: 0,
            dropped: 0,
        }
    }

    /// Where the archives go.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Copies slot `index` (generation `generation`) of `file` at `now_ns`,
    /// unless the second's budget is spent; returns the file written.
    pub fn save(
        &mut self,
        file: &TraceFile,
        index: u32,
        generation: u32,
        now_ns: u64,
    ) -> Option<PathBuf> {
        let expired = self
            .window_start_ns
            .is_none_or(|start| now_ns.saturating_sub(start) >= 1_000_000_000);
        if expired {
            self.window_start_ns = Some(now_ns);
            self.left = self.per_sec;
        }
        if self.left == 0 {
            self.dropped += 1;
            return None;
        }
        self.left -= 1;
        let slot = file.slot_snapshot(index)?;
        let mut bytes = file.header_for(1);
        bytes.extend_from_slice(&slot);
        let path = self.dir.join(format!(
            "{}-{index}.{generation}-{}.trace",
            self.stem,
            now_ns / 1000
        ));
        let written =
            std::fs::create_dir_all(&self.dir).and_then(|()| std::fs::write(&path, bytes));
        match written {
            Ok(()) => {
                self.written += 1;
                Some(path)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "trace archive not written");
                self.dropped += 1;
                None
            }
        }
    }
}
