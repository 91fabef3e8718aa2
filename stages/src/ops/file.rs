//! A worker's stats file: a snapshot's bytes in a file mapped shared, in
//! two halves, each under a sequence lock. The worker writes the half
//! not in use, then points the header at it, so a reader always finds a
//! whole snapshot: while the worker runs (it retries if the worker went
//! round twice during its read) and after it died mid-write (`kill -9`
//! leaves the previous half whole). No lock, no call to the worker.
//!
//! ```text
//! word 0  magic "TPASTATS"     word 8 + h × half: half h
//! word 1  layout version         +0  sequence (odd while written)
//! word 2  pid                    +1  length in bytes
//! word 3  worker                 +2… the snapshot's bytes
//! word 4  half size in words
//! word 5  the half in use
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use crate::trace::shm::SharedFile;

/// `TPASTATS`, little-endian.
const MAGIC: u64 = u64::from_le_bytes(*b"TPASTATS");
/// The file's layout version (the snapshot has its own).
const LAYOUT: u64 = 1;
const HEADER_WORDS: usize = 8;
/// Words of a half before its bytes.
const HALF_HEADER_WORDS: usize = 2;
/// How often a reader retries a half the writer kept changing.
const READ_TRIES: usize = 1000;

/// The writer's side: one per worker.
pub struct StatsFile {
    map: Arc<SharedFile>,
    path: PathBuf,
    half_words: usize,
}

impl StatsFile {
    /// Creates (or truncates) the file at `path` for worker `worker`, with
    /// room for snapshots of `capacity` bytes (sparse: pages cost memory
    /// once written).
    ///
    /// # Errors
    ///
    /// The file system's.
    pub fn create(path: &Path, worker: u32, capacity: usize) -> io::Result<StatsFile> {
        let half_words = HALF_HEADER_WORDS + capacity.div_ceil(8);
        // Made under a temporary name and renamed once its header is
        // written: a reader never finds it half made.
        let mut temp = path.as_os_str().to_owned();
        temp.push(".new");
        let temp = PathBuf::from(temp);
        let map = SharedFile::create(&temp, (HEADER_WORDS + 2 * half_words) * 8)?;
        let w = map.words();
        w[0].store(MAGIC, Ordering::Relaxed);
        w[1].store(LAYOUT, Ordering::Relaxed);
        w[2].store(u64::from(std::process::id()), Ordering::Relaxed);
        w[3].store(u64::from(worker), Ordering::Relaxed);
        w[4].store(half_words as u64, Ordering::Relaxed);
        w[5].store(0, Ordering::Release);
        std::fs::rename(&temp, path)?;
        Ok(StatsFile {
            map: Arc::new(map),
            path: path.to_path_buf(),
            half_words,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The largest snapshot it holds, in bytes.
    pub fn capacity(&self) -> usize {
        (self.half_words - HALF_HEADER_WORDS) * 8
    }

    /// Writes `bytes` into the half not in use and makes it the one in
    /// use. Returns false, writing nothing, when they do not fit.
    pub fn publish(&self, bytes: &[u8]) -> bool {
        if bytes.len() > self.capacity() {
            return false;
        }
        let w = self.map.words();
        let next = 1 - (w[5].load(Ordering::Relaxed) & 1) as usize;
        let half = &w[HEADER_WORDS + next * self.half_words..][..self.half_words];
        let seq = half[0].load(Ordering::Relaxed);
        half[0].store(seq.wrapping_add(1) | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        half[1].store(bytes.len() as u64, Ordering::Relaxed);
        for (word, chunk) in half[HALF_HEADER_WORDS..].iter().zip(bytes.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        half[0].store((seq | 1).wrapping_add(1), Ordering::Release);
        w[5].store(next as u64, Ordering::Release);
        true
    }
}

/// Why a stats file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or mapping it.
    Io(io::Error),
    /// Not a stats file, or a layout this reader does not know.
    Format(String),
    /// The writer changed the half at every try.
    Busy,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Format(why) => f.write_str(why),
            ReadError::Busy => f.write_str("the writer kept changing it"),
        }
    }
}

impl std::error::Error for ReadError {}

/// The pid and worker a stats file names, and its newest whole snapshot's
/// bytes.
pub fn read(path: &Path) -> Result<(u32, u32, Vec<u8>), ReadError> {
    let map = SharedFile::open(path).map_err(ReadError::Io)?;
    let w = map.words();
    if w.len() < HEADER_WORDS || w[0].load(Ordering::Relaxed) != MAGIC {
        return Err(ReadError::Format("not a tpa stats file".into()));
    }
    let layout = w[1].load(Ordering::Relaxed);
    if layout != LAYOUT {
        return Err(ReadError::Format(format!(
            "stats layout {layout}, this reader knows {LAYOUT}"
        )));
    }
    let pid = w[2].load(Ordering::Relaxed) as u32;
    let worker = w[3].load(Ordering::Relaxed) as u32;
    let half_words = w[4].load(Ordering::Relaxed) as usize;
    if half_words < HALF_HEADER_WORDS || HEADER_WORDS + 2 * half_words > w.len() {
        return Err(ReadError::Format("stats file truncated".into()));
    }
    for _ in 0..READ_TRIES {
        let current = (w[5].load(Ordering::Acquire) & 1) as usize;
        let half = &w[HEADER_WORDS + current * half_words..][..half_words];
        let before = half[0].load(Ordering::Acquire);
        if before & 1 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let len = half[1].load(Ordering::Relaxed) as usize;
        let words = len.div_ceil(8);
        if words > half_words - HALF_HEADER_WORDS {
            std::hint::spin_loop();
            continue;
        }
        let mut bytes = Vec::with_capacity(words * 8);
        for word in &half[HALF_HEADER_WORDS..HALF_HEADER_WORDS + words] {
            bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        fence(Ordering::Acquire);
        if half[0].load(Ordering::Relaxed) == before {
            bytes.truncate(len);
            return Ok((pid, worker, bytes));
        }
    }
    Err(ReadError::Busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_gets_the_last_whole_snapshot() {
        let dir = std::env::temp_dir().join(format!("tpa-stats-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("worker-0.stats");
        let file = StatsFile::create(&path, 3, 64).unwrap();
        let (pid, worker, bytes) = read(&path).unwrap();
        assert_eq!((pid, worker, bytes.len()), (std::process::id(), 3, 0));
        assert!(file.publish(b"first snapshot"));
        assert!(file.publish(b"the second, longer snapshot"));
        assert_eq!(read(&path).unwrap().2, b"the second, longer snapshot");
        // A writer that dies mid-write leaves the other half whole.
        let w = file.map.words();
        let other = HEADER_WORDS + (1 - w[5].load(Ordering::Relaxed) as usize) * file.half_words;
        w[other].fetch_add(1, Ordering::Relaxed);
        assert_eq!(read(&path).unwrap().2, b"the second, longer snapshot");
        assert!(!file.publish(&[0u8; 65]), "too big: refused");
        drop(file);
        std::fs::write(&path, [0u8; 64]).unwrap();
        assert!(matches!(read(&path), Err(ReadError::Format(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reader_never_sees_a_torn_snapshot() {
        let dir = std::env::temp_dir().join(format!("tpa-stats-torn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("worker-0.stats");
        let file = StatsFile::create(&path, 0, 4096).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut n = 0u8;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_add(1);
                    let len = 100 + usize::from(n) * 8;
                    file.publish(&vec![n; len]);
                }
            });
            for _ in 0..2000 {
                match read(&path) {
                    Ok((_, _, bytes)) => {
                        let first = bytes.first().copied().unwrap_or(0);
                        assert!(bytes.iter().all(|b| *b == first), "torn read");
                        if !bytes.is_empty() {
                            assert_eq!(bytes.len(), 100 + usize::from(first) * 8);
                        }
                    }
                    Err(ReadError::Busy) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
