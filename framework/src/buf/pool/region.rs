//! The one memory region a pool's buffers live in.
//!
//! Under Miri, which models only plain `mmap` calls, the region comes from the
//! global allocator instead (same size, page-aligned, zero-filled), so Miri
//! checks every access the pool and its buffers make into it.

use std::io;
use std::ptr::NonNull;

/// Size of a huge page on the platforms tpa runs on (x86-64, aarch64 with 4K base pages).
#[cfg(not(miri))]
const HUGE_PAGE: usize = 2 << 20;

/// Alignment of the region allocated under Miri: a base page, as `mmap` gives.
#[cfg(miri)]
const PAGE: usize = 4096;

/// An anonymous, page-aligned, zero-filled mapping, unmapped on drop.
pub(super) struct Region {
    base: NonNull<u8>,
    len: usize,
    huge: bool,
}

// SAFETY: `Region` is a plain owner of mapped memory; it hands out raw
// pointers and never dereferences them itself, so moving or sharing the owner
// between threads cannot race.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` only exposes the base pointer and length.
unsafe impl Sync for Region {}

impl Region {
    /// Maps at least `len` bytes, on huge pages when `try_huge` and the system
    /// has free ones, else on normal pages (asking for transparent huge pages).
    #[cfg(not(miri))]
    pub(super) fn map(len: usize, try_huge: bool) -> io::Result<Region> {
        let len = len.max(1);
        if try_huge {
            let huge_len = len.div_ceil(HUGE_PAGE) * HUGE_PAGE;
            if let Some(base) = mmap_anonymous(huge_len, libc::MAP_HUGETLB) {
                return Ok(Region {
                    base,
                    len: huge_len,
                    huge: true,
                });
            }
        }
        // Whole pages: the kernel maps no less, and a device registering
        // the region (AF_XDP's UMEM) is handed whole pages.
        let len = len.next_multiple_of(4096);
        let base = mmap_anonymous(len, 0).ok_or_else(io::Error::last_os_error)?;
        // SAFETY: `base..base+len` is the mapping just created; madvise only
        // changes how the kernel backs it. Failure is harmless (no THP).
        unsafe {
            libc::madvise(base.as_ptr().cast(), len, libc::MADV_HUGEPAGE);
        }
        Ok(Region {
            base,
            len,
            huge: false,
        })
    }

    /// Allocates `len` bytes (at least 1), page-aligned and zero-filled, from
    /// the global allocator; never on huge pages.
    #[cfg(miri)]
    pub(super) fn map(len: usize, _try_huge: bool) -> io::Result<Region> {
        let layout = miri_layout(len)?;
        // SAFETY: `layout` has a non-zero size.
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        let base = NonNull::new(base).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        Ok(Region {
            base,
            len: layout.size(),
            huge: false,
        })
    }

    /// The first byte of the mapping.
    pub(super) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Bytes mapped (a whole number of pages).
    #[cfg(feature = "af_xdp")]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is backed by explicit huge pages.
    pub(super) fn is_huge(&self) -> bool {
        self.huge
    }
}

/// The layout of a Miri region of `len` bytes (at least 1).
#[cfg(miri)]
fn miri_layout(len: usize) -> io::Result<std::alloc::Layout> {
    std::alloc::Layout::from_size_align(len.max(1), PAGE)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

#[cfg(not(miri))]
fn mmap_anonymous(len: usize, extra_flags: libc::c_int) -> Option<NonNull<u8>> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing aliases no existing memory.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(p.cast())
    }
}

impl Drop for Region {
    #[cfg(not(miri))]
    fn drop(&mut self) {
        // SAFETY: `base..base+len` was mapped by `map` and nothing points into
        // it any more: the pool drops its region only once every buffer is home.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }

    #[cfg(miri)]
    fn drop(&mut self) {
        let layout = miri_layout(self.len).expect("the layout `map` allocated with");
        // SAFETY: `base` was allocated by `map` with this same layout, and
        // nothing points into it any more (as above).
        unsafe { std::alloc::dealloc(self.base.as_ptr(), layout) };
    }
}
