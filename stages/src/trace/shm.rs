//! A file mapped shared into memory as 64-bit atomic words: what the
//! worker writes is in the page cache at once, so another process reads
//! it with `read(2)` (or its own mapping) without asking the worker, and
//! it outlives the worker (a panic, a `kill -9`). The only unsafe code of
//! the trace is here.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// A shared mapping of a whole file, seen as words.
pub struct SharedFile {
    base: NonNull<AtomicU64>,
    words: usize,
    _file: File,
}

// SAFETY: the mapping is plain memory owned by this value until Drop; every
// access goes through `AtomicU64`, which is Sync, so sharing or moving the
// handle between threads is as sound as sharing a `[AtomicU64]`.
unsafe impl Send for SharedFile {}
// SAFETY: as above: `&SharedFile` only hands out `&[AtomicU64]`.
unsafe impl Sync for SharedFile {}

impl SharedFile {
    /// Creates (or truncates) the file at `path` with `bytes` of zeros
    /// (sparse: pages cost memory once written) and maps it shared.
    ///
    /// # Errors
    ///
    /// Whatever creating, sizing or mapping the file returns; `InvalidInput`
    /// for a size that is zero or not a multiple of 8.
    pub fn create(path: &Path, bytes: usize) -> io::Result<SharedFile> {
        if bytes == 0 || !bytes.is_multiple_of(8) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a trace file's size must be a positive multiple of 8 bytes",
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.set_len(bytes as u64)?;
        // SAFETY: a fresh shared mapping of `bytes` bytes of an open file
        // of that size; the kernel picks the address, so no existing memory
        // is affected. The result is checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        no_readahead(ptr, bytes);
        let base = NonNull::new(ptr.cast::<AtomicU64>()).ok_or_else(io::Error::last_os_error)?;
        Ok(SharedFile {
            base,
            words: bytes / 8,
            _file: file,
        })
    }

    /// Maps the existing file at `path` shared, as it is (a reader's view
    /// of a file another process writes).
    ///
    /// # Errors
    ///
    /// Whatever opening or mapping the file returns; `InvalidData` for a
    /// file whose size is zero or not a multiple of 8.
    pub fn open(path: &Path) -> io::Result<SharedFile> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let bytes = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))?;
        if bytes == 0 || !bytes.is_multiple_of(8) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a shared file's size must be a positive multiple of 8 bytes",
            ));
        }
        // SAFETY: as in `create`: a fresh shared mapping of the whole open
        // file, checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        no_readahead(ptr, bytes);
        let base = NonNull::new(ptr.cast::<AtomicU64>()).ok_or_else(io::Error::last_os_error)?;
        Ok(SharedFile {
            base,
            words: bytes / 8,
            _file: file,
        })
    }

    /// The mapping as words.
    #[inline]
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `base` is page-aligned (so 8-aligned), maps `words * 8`
        // bytes that stay mapped until Drop, which needs `&mut self`; the
        // memory is zero-initialised by the file and only ever accessed as
        // atomics by this process (other processes may read or write it too,
        // which atomics tolerate: no Rust reference assumes it unchanging).
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.words) }
    }
}

/// Tells the kernel that the mapping at `ptr` (`bytes` long) is touched
/// here and there, so that a fault maps one page and reads none ahead.
/// The files are sparse and touched a page at a time (a socket's slot, a
/// snapshot's half); without this, the first fault on a file of a disk
/// file system reads its readahead window (`read_ahead_kb`, 8 MiB on the
/// VM of doc/benchmarks.md) of holes, zeroing every page of it: some
/// 10 ms of system time for each file a worker opens, and as much page
/// cache. Advice only: a kernel that refuses it maps the file all the
/// same, so a failure is ignored.
fn no_readahead(ptr: *mut libc::c_void, bytes: usize) {
    // SAFETY: `ptr` and `bytes` are exactly a mapping just made by the
    // caller; MADV_RANDOM changes the kernel's readahead for it, not its
    // contents or protection.
    unsafe {
        libc::madvise(ptr, bytes, libc::MADV_RANDOM);
    }
}

/// One socket's slot of a [`SharedFile`]: `H` words of header, then a
/// ring of two-word records (a power of two of them), kept alive by the
/// `Arc` and reached without going through it or a bounds check: the
/// writer's per-record path is a few plain stores.
pub struct SlotWindow<const H: usize> {
    base: NonNull<AtomicU64>,
    /// Records - 1.
    mask: usize,
    _map: Arc<SharedFile>,
}

// SAFETY: as for `SharedFile`: the words are atomics, and the `Arc` keeps
// the mapping alive wherever the window goes.
unsafe impl<const H: usize> Send for SlotWindow<H> {}
// SAFETY: `&SlotWindow` only hands out shared references to atomics.
unsafe impl<const H: usize> Sync for SlotWindow<H> {}

impl<const H: usize> SlotWindow<H> {
    /// The slot at word `start` of `map` with `records` records, if that is
    /// a power of two and the slot lies in the mapping.
    pub fn new(map: &Arc<SharedFile>, start: usize, records: usize) -> Option<SlotWindow<H>> {
        if !records.is_power_of_two() {
            return None;
        }
        let len = H.checked_add(records.checked_mul(2)?)?;
        let range = map.words().get(start..start.checked_add(len)?)?;
        Some(SlotWindow {
            base: NonNull::from(range).cast(),
            mask: records - 1,
            _map: Arc::clone(map),
        })
    }

    /// The header's words.
    #[inline(always)]
    pub fn header(&self) -> &[AtomicU64; H] {
        // SAFETY: the window's first `H` words were checked to lie in the
        // mapping at `new`, and `_map` keeps it mapped as long as `self`;
        // `[AtomicU64; H]` has the layout of `H` consecutive words. See
        // `SharedFile::words` for why a shared view of atomics is sound.
        unsafe { &*self.base.as_ptr().cast::<[AtomicU64; H]>() }
    }

    /// The two words of record `n` modulo the ring's size.
    #[inline(always)]
    pub fn record(&self, n: u64) -> &[AtomicU64; 2] {
        let i = n as usize & self.mask;
        // SAFETY: `i <= mask = records - 1`, so words `H + 2i` and
        // `H + 2i + 1` lie in the window checked at `new` (`H + 2 records`
        // words), which `_map` keeps mapped; as for `header`.
        unsafe { &*self.base.as_ptr().add(H + 2 * i).cast::<[AtomicU64; 2]>() }
    }
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `create`; no borrow of
        // `words()` outlives `&self`, so nothing refers to it any more.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.words * 8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn writes_reach_the_file_without_a_flush() {
        let dir = std::env::temp_dir().join(format!("tpa-shm-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("words");
        let map = SharedFile::create(&path, 64).unwrap();
        map.words()[1].store(0x0102_0304_0506_0708, Ordering::Release);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 64);
        assert_eq!(&bytes[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
        drop(map);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Pages of `map` in the page cache, by `mincore`.
    fn resident_pages(map: &SharedFile) -> usize {
        let page = 4096;
        let bytes = map.words * 8;
        let mut vec = vec![0u8; bytes.div_ceil(page)];
        // SAFETY: `base` is the page-aligned start of a mapping of `bytes`
        // bytes, and `vec` has a byte for each of its pages.
        let rc = unsafe { libc::mincore(map.base.as_ptr().cast(), bytes, vec.as_mut_ptr()) };
        assert_eq!(rc, 0, "mincore: {}", io::Error::last_os_error());
        vec.iter().filter(|&&b| b & 1 != 0).count()
    }

    #[test]
    fn a_first_store_brings_in_a_page_not_a_readahead_window() {
        // 16 MiB of holes; one store at the start and one in the middle.
        // Without MADV_RANDOM a disk file system reads its readahead
        // window (8 MiB here) of holes at the first fault.
        let path = std::env::temp_dir().join(format!("tpa-shm-ra-{}", std::process::id()));
        let map = SharedFile::create(&path, 16 << 20).unwrap();
        map.words()[0].store(1, Ordering::Relaxed);
        map.words()[1 << 20].store(2, Ordering::Relaxed);
        let resident = resident_pages(&map);
        drop(map);
        let _ = std::fs::remove_file(&path);
        // Each fault may bring a large folio of its own, never a window.
        assert!(
            (2..=32).contains(&resident),
            "{resident} pages of 4096 resident after two stores"
        );
    }

    #[test]
    fn a_size_not_in_words_is_refused() {
        let path = std::env::temp_dir().join(format!("tpa-shm-bad-{}", std::process::id()));
        let err = SharedFile::create(&path, 12).err().expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let _ = std::fs::remove_file(&path);
    }
}
