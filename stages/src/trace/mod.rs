//! The always-on socket trace: each connection writes what happens to it
//! (state changes, segments in and out, retransmissions, timeouts,
//! congestion window changes, the application's reads and writes) as
//! fixed 16-byte records into a ring of its own, in a file mapped shared
//! so that `tpactl st` reads it without asking the worker, and after the
//! worker is gone. doc/internals/trace.md tells the whole.
//!
//! - [`record`]: the record format, versioned.
//! - `shm`: the shared file mapping (the trace's only unsafe code).
//! - [`ring`]: the file's layout, a socket's ring and its writer.
//! - [`archive`]: copies of rings worth keeping, rate-limited.
//! - [`decode`]: files back into events and readable lines.
//! - [`TraceConfig`]: the knobs.

pub mod archive;
mod config;
pub mod decode;
pub mod record;
pub mod ring;
pub(crate) mod shm;

#[cfg(test)]
mod tests;

pub use config::{TraceConfig, TraceConfigError, DEFAULT_RECORDS, KEYS};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use archive::Archive;
use ring::{Ring, TraceFile};

/// Worker files made by this process, numbering the next one's name.
static FILES: AtomicU32 = AtomicU32::new(0);

/// One worker's trace: its file and its archive, kept by the socket
/// table.
pub struct Tracer {
    file: TraceFile,
    archive: Archive,
}

impl Tracer {
    /// Creates `cfg.dir` and in it a file `tcp-<pid>-<n>.trace` (n counts
    /// the files of this process: one per worker) with `slots` slots.
    ///
    /// # Errors
    ///
    /// The file system's, or `InvalidInput` for a ring size that is not
    /// a power of two.
    pub fn open(cfg: &TraceConfig, slots: u32) -> std::io::Result<Tracer> {
        std::fs::create_dir_all(&cfg.dir)?;
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let stem = format!("tcp-{}-{n}", std::process::id());
        let file = TraceFile::create(&cfg.dir.join(format!("{stem}.trace")), slots, cfg.records)?;
        let archive = Archive::new(&cfg.dir.join("archive"), &stem, cfg.archive_per_sec);
        Ok(Tracer { file, archive })
    }

    /// The worker's file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Records per ring.
    pub fn records(&self) -> u32 {
        self.file.records()
    }

    /// Bytes per socket in the file.
    pub fn slot_bytes(&self) -> usize {
        self.file.slot_bytes()
    }

    /// A ring for the connection in slot `index`.
    pub fn attach(
        &self,
        index: u32,
        generation: u32,
        local: SocketAddr,
        remote: SocketAddr,
        now_ns: u64,
    ) -> Option<Ring> {
        self.file.ring(index, generation, local, remote, now_ns)
    }

    /// The connection in slot `index` was freed.
    pub fn close(&self, index: u32) {
        self.file.close_slot(index);
    }

    /// Archives slot `index`'s ring, if the rate allows.
    pub fn archive(&mut self, index: u32, generation: u32, now_ns: u64) -> Option<PathBuf> {
        self.archive.save(&self.file, index, generation, now_ns)
    }

    /// Rings archived, and those the rate limit (or a failed write) left out.
    pub fn archive_counts(&self) -> (u64, u64) {
        (self.archive.written, self.archive.dropped)
    }

    /// Where archives go.
    pub fn archive_dir(&self) -> &Path {
        self.archive.dir()
    }
}
