//! A worker's trace file and each socket's ring in it.
//!
//! The file: a header of [`FILE_HEADER_WORDS`] words, then one slot per
//! socket-table slot, each [`SLOT_HEADER_WORDS`] words of header and then
//! `records` records of two words. Every word is little-endian; the
//! writer stores them as atomics, the head last (Release), so a reader
//! that sees a head sees the records below it (unless the writer lapped
//! them meanwhile: the decoder says the ring was live).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::record::{Kind, Record, MAX_DT_US, VERSION};
use super::shm::{SharedFile, Window};

/// "TPATRACE", the file's first eight bytes.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TPATRACE");
/// Words before the first slot.
pub const FILE_HEADER_WORDS: usize = 8;
/// Words of a slot before its records.
pub const SLOT_HEADER_WORDS: usize = 16;

// File header words.
pub(crate) const F_MAGIC: usize = 0;
/// Version (u16) | records per slot (u32) << 32.
pub(crate) const F_FORMAT: usize = 1;
/// Slots (u32) | pid (u32) << 32.
pub(crate) const F_SLOTS: usize = 2;

// Slot header words.
/// Status (u8: [`SlotStatus`]) | socket slot generation (u32) << 32.
pub(crate) const S_STATUS: usize = 0;
/// Records ever written (the next one goes to `head % records`).
pub(crate) const S_HEAD: usize = 1;
/// The newest record's time, µs.
pub(crate) const S_LAST_US: usize = 2;
/// Our ISN (u32) | the peer's (u32) << 32.
pub(crate) const S_ISN: usize = 3;
/// Local port | remote port << 16 | IP version << 32.
pub(crate) const S_PORTS: usize = 4;
/// Local address, 16 bytes (IPv4 mapped), words 5 and 6.
pub(crate) const S_LOCAL: usize = 5;
/// Remote address, words 7 and 8.
pub(crate) const S_REMOTE: usize = 7;
/// When the ring was attached, µs.
pub(crate) const S_OPENED_US: usize = 9;

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SlotStatus {
    /// Never used.
    Unused = 0,
    /// A connection writes to it.
    Live = 1,
    /// Its connection was freed: the records are its last.
    Closed = 2,
}

impl SlotStatus {
    /// The status of byte `s` (unknown bytes read as `Unused`).
    pub fn from_u8(s: u8) -> SlotStatus {
        match s {
            1 => SlotStatus::Live,
            2 => SlotStatus::Closed,
            _ => SlotStatus::Unused,
        }
    }
}

/// One worker's trace file: a slot for each of the socket table's.
pub struct TraceFile {
    map: Arc<SharedFile>,
    path: PathBuf,
    records: u32,
    slots: u32,
}

impl TraceFile {
    /// Creates the file at `path` for `slots` sockets of `records` records
    /// each (a power of two).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `records` is not a power of two; the file
    /// system's errors.
    pub fn create(path: &Path, slots: u32, records: u32) -> std::io::Result<TraceFile> {
        if !records.is_power_of_two() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "trace.records must be a power of two",
            ));
        }
        let words = FILE_HEADER_WORDS + slots as usize * slot_words(records);
        let map = SharedFile::create(path, words * 8)?;
        let w = map.words();
        w[F_FORMAT].store(
            u64::from(VERSION) | u64::from(records) << 32,
            Ordering::Relaxed,
        );
        w[F_SLOTS].store(
            u64::from(slots) | u64::from(std::process::id()) << 32,
            Ordering::Relaxed,
        );
        w[F_MAGIC].store(MAGIC, Ordering::Release);
        Ok(TraceFile {
            map: Arc::new(map),
            path: path.to_path_buf(),
            records,
            slots,
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records per ring.
    pub fn records(&self) -> u32 {
        self.records
    }

    /// Bytes of one socket's slot (header and ring).
    pub fn slot_bytes(&self) -> usize {
        slot_words(self.records) * 8
    }

    /// A fresh ring in slot `index` for the connection `local`–`remote`
    /// (its `generation` in the socket table), attached at `now_ns`;
    /// `None` past the file's slots.
    pub fn ring(
        &self,
        index: u32,
        generation: u32,
        local: SocketAddr,
        remote: SocketAddr,
        now_ns: u64,
    ) -> Option<Ring> {
        if index >= self.slots {
            return None;
        }
        let base = FILE_HEADER_WORDS + index as usize * slot_words(self.records);
        let w = &self.map.words()[base..base + SLOT_HEADER_WORDS];
        let now_us = now_ns / 1000;
        // Closed while the header is rewritten, live once it is whole.
        w[S_STATUS].store(SlotStatus::Closed as u64, Ordering::Release);
        w[S_HEAD].store(0, Ordering::Relaxed);
        w[S_LAST_US].store(now_us, Ordering::Relaxed);
        w[S_ISN].store(0, Ordering::Relaxed);
        let version = if local.is_ipv4() { 4u64 } else { 6 };
        w[S_PORTS].store(
            u64::from(local.port()) | u64::from(remote.port()) << 16 | version << 32,
            Ordering::Relaxed,
        );
        store_ip(&w[S_LOCAL..S_LOCAL + 2], local.ip());
        store_ip(&w[S_REMOTE..S_REMOTE + 2], remote.ip());
        w[S_OPENED_US].store(now_us, Ordering::Relaxed);
        w[S_STATUS].store(
            SlotStatus::Live as u64 | u64::from(generation) << 32,
            Ordering::Release,
        );
        Some(Ring {
            slot: Window::new(&self.map, base, slot_words(self.records))?,
            mask: self.records - 1,
            head: 0,
            last_us: now_us,
            seen: Seen::default(),
            archive_due: false,
        })
    }

    /// Marks slot `index` closed: its records stay for a reader until the
    /// slot is reused.
    pub fn close_slot(&self, index: u32) {
        if index >= self.slots {
            return;
        }
        let base = FILE_HEADER_WORDS + index as usize * slot_words(self.records);
        let status = &self.map.words()[base + S_STATUS];
        let old = status.load(Ordering::Relaxed);
        status.store((old & !0xff) | SlotStatus::Closed as u64, Ordering::Release);
    }

    /// The bytes of slot `index` as they are now (for the archive).
    pub fn slot_snapshot(&self, index: u32) -> Option<Vec<u8>> {
        if index >= self.slots {
            return None;
        }
        let n = slot_words(self.records);
        let base = FILE_HEADER_WORDS + index as usize * n;
        let mut out = Vec::with_capacity(n * 8);
        for w in &self.map.words()[base..base + n] {
            out.extend_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
        }
        Some(out)
    }

    /// The file header's bytes, for a file of `slots` slots (the archive
    /// writes one slot behind it).
    pub fn header_for(&self, slots: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(FILE_HEADER_WORDS * 8);
        for (i, w) in self.map.words()[..FILE_HEADER_WORDS].iter().enumerate() {
            let mut v = w.load(Ordering::Acquire);
            if i == F_SLOTS {
                v = (v & !0xffff_ffff) | u64::from(slots);
            }
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// Words per slot with `records` records.
pub fn slot_words(records: u32) -> usize {
    SLOT_HEADER_WORDS + 2 * records as usize
}

fn store_ip(w: &[AtomicU64], ip: IpAddr) {
    let octets = match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    w[0].store(
        u64::from_le_bytes(octets[..8].try_into().expect("8 bytes")),
        Ordering::Relaxed,
    );
    w[1].store(
        u64::from_le_bytes(octets[8..].try_into().expect("8 bytes")),
        Ordering::Relaxed,
    );
}

/// What the engine last wrote about itself, so a change is written once.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen {
    /// The state's code, as last recorded.
    pub(crate) state: u8,
    /// In fast recovery.
    pub(crate) fast: bool,
    /// Recovering from an RTO until SND.UNA reaches this (SND.MAX then).
    pub(crate) rto_recover: Option<u32>,
    /// ssthresh as last recorded.
    pub(crate) ssthresh: u32,
}

/// One socket's ring: the writer's handle, owned by its connection.
pub struct Ring {
    /// The slot's words: header, then records.
    slot: Window,
    mask: u32,
    /// Records written (the writer's copy of the slot's head).
    head: u64,
    /// The newest record's time, µs.
    last_us: u64,
    pub(crate) seen: Seen,
    /// A record worth archiving the ring for was written (recovery ended,
    /// an RTO, an abnormal close): the socket table copies the ring.
    pub(crate) archive_due: bool,
}

impl Ring {
    /// Appends `rec` (its `dt` left 0) at `now_ns` (a `Clock` record
    /// first after a gap longer than `dt` holds). Inlined into each hook,
    /// where the record's constant parts fold away.
    #[inline(always)]
    pub fn push(&mut self, rec: Record, now_ns: u64) {
        let now_us = now_ns / 1000;
        let mut gap = now_us.saturating_sub(self.last_us);
        if gap > MAX_DT_US {
            self.clock(now_us, gap);
            gap = 0;
        }
        self.last_us = self.last_us.max(now_us);
        let [w0, w1] = rec.to_words();
        self.write(w0 | gap << 16, w1);
        let slot = self.slot.words();
        slot[S_LAST_US].store(self.last_us, Ordering::Relaxed);
        slot[S_HEAD].store(self.head, Ordering::Release);
    }

    /// The `Clock` record before one that comes `gap` µs after the last.
    #[cold]
    fn clock(&mut self, now_us: u64, gap: u64) {
        let clock = Record::new(
            Kind::Clock,
            0,
            gap.min(u64::from(u32::MAX)) as u32,
            now_us as u32,
            (now_us >> 32) as u16,
            0,
        );
        let [w0, w1] = clock.to_words();
        self.write(w0, w1);
    }

    #[inline(always)]
    fn write(&mut self, w0: u64, w1: u64) {
        let at = SLOT_HEADER_WORDS + 2 * (self.head as u32 & self.mask) as usize;
        let slot = self.slot.words();
        slot[at].store(w0, Ordering::Relaxed);
        slot[at + 1].store(w1, Ordering::Relaxed);
        self.head += 1;
    }

    /// Records our ISN and the peer's (0 until known), relative to which
    /// segment records count.
    pub fn set_isns(&mut self, iss: u32, irs: u32) {
        self.slot.words()[S_ISN].store(u64::from(iss) | u64::from(irs) << 32, Ordering::Relaxed);
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.head
    }
}

impl core::fmt::Debug for Ring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ring")
            .field("records", &(self.mask + 1))
            .field("head", &self.head)
            .finish()
    }
}
