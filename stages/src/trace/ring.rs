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

use super::record::{Kind, Record, MAX_DT, TICK_SHIFT, VERSION};
use super::shm::{SharedFile, SlotWindow};

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
/// The newest record's time, ticks.
pub(crate) const S_LAST: usize = 2;
/// Our ISN (u32) | the peer's (u32) << 32.
pub(crate) const S_ISN: usize = 3;
/// Local port | remote port << 16 | IP version << 32.
pub(crate) const S_PORTS: usize = 4;
/// Local address, 16 bytes (IPv4 mapped), words 5 and 6.
pub(crate) const S_LOCAL: usize = 5;
/// Remote address, words 7 and 8.
pub(crate) const S_REMOTE: usize = 7;
/// When the ring was attached, ticks.
pub(crate) const S_OPENED: usize = 9;

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
        let now = now_ns >> TICK_SHIFT;
        // Closed while the header is rewritten, live once it is whole.
        w[S_STATUS].store(SlotStatus::Closed as u64, Ordering::Release);
        w[S_HEAD].store(0, Ordering::Relaxed);
        w[S_LAST].store(now, Ordering::Relaxed);
        w[S_ISN].store(0, Ordering::Relaxed);
        let version = if local.is_ipv4() { 4u64 } else { 6 };
        w[S_PORTS].store(
            u64::from(local.port()) | u64::from(remote.port()) << 16 | version << 32,
            Ordering::Relaxed,
        );
        store_ip(&w[S_LOCAL..S_LOCAL + 2], local.ip());
        store_ip(&w[S_REMOTE..S_REMOTE + 2], remote.ip());
        w[S_OPENED].store(now, Ordering::Relaxed);
        w[S_STATUS].store(
            SlotStatus::Live as u64 | u64::from(generation) << 32,
            Ordering::Release,
        );
        Some(Ring {
            slot: SlotWindow::new(&self.map, base, self.records as usize)?,
            head: 0,
            last: now,
            read_end: u64::MAX,
            seen: Seen::default(),
            rto_end: 0,
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

/// What the engine last wrote about itself, so a change is written once:
/// packed, so that the check after every event is one comparison.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen {
    /// [`Seen::key`] of what was last written, with [`Seen::RTO_RECOVERING`]
    /// set while recovering from an RTO (the engine's own key never has
    /// it, so the check fails until the recovery's end is written).
    pub(crate) key: u64,
}

/// [`Seen`] unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeenFields {
    /// The state's code.
    pub(crate) state: u8,
    /// In fast recovery.
    pub(crate) fast: bool,
    /// Recovering from an RTO until SND.UNA reaches this.
    pub(crate) rto_recover: Option<u32>,
    /// ssthresh.
    pub(crate) ssthresh: u32,
}

impl Seen {
    /// The bit of `key` set while recovering from an RTO.
    const RTO_RECOVERING: u64 = 1 << 16;

    /// The key of a state's code, fast recovery and ssthresh.
    #[inline(always)]
    pub(crate) fn key(state: u8, fast: bool, ssthresh: u32) -> u64 {
        u64::from(state) | u64::from(fast) << 8 | u64::from(ssthresh) << 32
    }
}

/// One socket's ring: the writer's handle, owned by its connection.
pub struct Ring {
    /// The slot's words: header, then records.
    slot: SlotWindow<SLOT_HEADER_WORDS>,
    /// Records written (the writer's copy of the slot's head).
    head: u64,
    /// The newest record's time, ticks.
    last: u64,
    /// `head` just after the newest record if that is an application
    /// read (which the next read in the same tick joins), else `u64::MAX`.
    read_end: u64,
    pub(crate) seen: Seen,
    /// While recovering from an RTO: until SND.UNA reaches this (SND.MAX
    /// when the timer fired); see [`Seen::RTO_RECOVERING`].
    rto_end: u32,
    /// A record worth archiving the ring for was written (recovery ended,
    /// an RTO, an abnormal close): the socket table copies the ring.
    pub(crate) archive_due: bool,
}

impl Ring {
    /// Appends `rec` (its `dt` left 0) at `now_ns` (a `Clock` record
    /// first after a gap longer than `dt` holds). Inlined into each hook,
    /// where the record's constant parts fold away: a shift, a compare,
    /// and five stores.
    #[inline(always)]
    pub fn push(&mut self, rec: Record, now_ns: u64) {
        let now = now_ns >> TICK_SHIFT;
        let gap = now.wrapping_sub(self.last);
        let dt = if gap <= MAX_DT {
            self.last = now;
            gap
        } else {
            self.long_gap(now)
        };
        // Locals, so that the stores to the mapping need no reloads (of
        // the fields, or of the window's base after a store through it).
        let (head, last) = (self.head, self.last);
        let [w0, w1] = rec.to_words();
        let header = self.slot.header();
        let at = self.slot.record(head);
        at[0].store(w0 | dt << 16, Ordering::Relaxed);
        at[1].store(w1, Ordering::Relaxed);
        self.head = head + 1;
        header[S_LAST].store(last, Ordering::Relaxed);
        header[S_HEAD].store(head + 1, Ordering::Release);
    }

    /// A gap longer than `dt` holds before a record at `now`: a `Clock`
    /// record, or none if the clock went back (the record then takes the
    /// newest time). The `dt` the record gets: 0.
    #[cold]
    #[inline(never)]
    fn long_gap(&mut self, now: u64) -> u64 {
        if now <= self.last {
            return 0;
        }
        let gap = now - self.last;
        let clock = Record::new(
            Kind::Clock,
            0,
            gap.min(u64::from(u32::MAX)) as u32,
            now as u32,
            (now >> 32) as u16,
            0,
        );
        let [w0, w1] = clock.to_words();
        let at = self.slot.record(self.head);
        at[0].store(w0, Ordering::Relaxed);
        at[1].store(w1, Ordering::Relaxed);
        self.head += 1;
        self.last = now;
        0
    }

    /// The application read `bytes`, leaving `queued`: a record, or, when
    /// the newest record is a read of the same tick, that record counting
    /// one more read (a bulk receiver reads a segment at a time).
    #[inline(always)]
    pub fn push_read(&mut self, bytes: u32, queued: u32, now_ns: u64) {
        if self.read_end == self.head && now_ns >> TICK_SHIFT == self.last {
            let at = self.slot.record(self.head.wrapping_sub(1));
            let (w0, w1) = (at[0].load(Ordering::Relaxed), at[1].load(Ordering::Relaxed));
            let total = ((w0 >> 32) as u32).saturating_add(bytes);
            let reads = ((w1 >> 32) as u16).saturating_add(1);
            at[0].store(
                (w0 & 0xffff_ffff) | u64::from(total) << 32,
                Ordering::Relaxed,
            );
            at[1].store(
                u64::from(queued) | u64::from(reads) << 32,
                Ordering::Relaxed,
            );
        } else {
            self.push(Record::new(Kind::AppRead, 0, bytes, queued, 1, 0), now_ns);
            self.read_end = self.head;
        }
    }

    /// Records our ISN and the peer's (0 until known), relative to which
    /// the decoder shows segments' numbers.
    pub fn set_isns(&mut self, iss: u32, irs: u32) {
        self.slot.header()[S_ISN].store(u64::from(iss) | u64::from(irs) << 32, Ordering::Relaxed);
    }

    /// What the engine last wrote about itself.
    pub(crate) fn seen(&self) -> SeenFields {
        let key = self.seen.key;
        SeenFields {
            state: key as u8,
            fast: key & 1 << 8 != 0,
            rto_recover: (key & Seen::RTO_RECOVERING != 0).then_some(self.rto_end),
            ssthresh: (key >> 32) as u32,
        }
    }

    /// Sets what the engine last wrote about itself.
    pub(crate) fn set_seen(&mut self, f: SeenFields) {
        self.seen.key = Seen::key(f.state, f.fast, f.ssthresh)
            | if f.rto_recover.is_some() {
                Seen::RTO_RECOVERING
            } else {
                0
            };
        self.rto_end = f.rto_recover.unwrap_or(0);
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.head
    }
}

impl core::fmt::Debug for Ring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ring")
            .field("last", &self.last)
            .field("head", &self.head)
            .finish()
    }
}
