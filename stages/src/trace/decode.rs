//! Reading a trace file (a worker's, live or left behind, or an archive)
//! back into events, and printing them as lines.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::record::{state_of, CwndReason, Kind, Record, RECORD_BYTES, TICK_SHIFT, VERSION};
use super::ring::{
    slot_words, SlotStatus, FILE_HEADER_WORDS, F_FORMAT, F_MAGIC, F_SLOTS, MAGIC,
    SLOT_HEADER_WORDS, S_HEAD, S_ISN, S_LAST, S_LOCAL, S_OPENED, S_PORTS, S_REMOTE, S_STATUS,
};
use crate::tcp::conn::state::State;

/// Why a file does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its header says.
    Truncated,
    /// Not a trace file.
    BadMagic,
    /// A format version this decoder does not know.
    Version(u16),
    /// A ring size that is not a power of two.
    BadRecords(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "truncated trace file"),
            DecodeError::BadMagic => write!(f, "not a tpa trace file"),
            DecodeError::Version(v) => {
                write!(f, "trace format version {v} (this decoder reads {VERSION})")
            }
            DecodeError::BadRecords(n) => write!(f, "ring of {n} records (not a power of two)"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A segment's fields as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// SEG.SEQ, relative to the sender's ISN.
    pub seq: u32,
    /// SEG.ACK, relative to the receiver's ISN (the other side's).
    pub ack: u32,
    /// The window as on the wire.
    pub window: u16,
    /// The TCP flags byte (FIN 0x01 … CWR 0x80).
    pub flags: u8,
    /// Payload bytes (saturated at 65535).
    pub len: u16,
}

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A long gap.
    Clock,
    /// `from` → `to`.
    State {
        /// The old state.
        from: Option<State>,
        /// The new state.
        to: Option<State>,
    },
    /// A segment arrived.
    In(Segment),
    /// A segment went out the first time.
    Out(Segment),
    /// A segment went out again.
    Retransmit(Segment),
    /// The retransmission timer fired.
    Rto {
        /// The backed-off RTO, ms.
        rto_ms: u32,
        /// Backoffs so far.
        backoffs: u32,
        /// Timeouts in a row.
        retries: u16,
    },
    /// The congestion state changed.
    Cwnd {
        /// Why.
        reason: Option<CwndReason>,
        /// cwnd, bytes.
        cwnd: u32,
        /// ssthresh, bytes.
        ssthresh: u32,
    },
    /// The application wrote.
    Write {
        /// Bytes taken.
        bytes: u32,
        /// Bytes queued after.
        queued: u32,
    },
    /// The application read (once or more in the same tick).
    Read {
        /// Bytes read.
        bytes: u32,
        /// Bytes still queued.
        queued: u32,
        /// Reads.
        reads: u16,
    },
    /// A kind this decoder does not know (a newer writer's).
    Unknown(Record),
}

impl Event {
    /// The event a record says, its sequence numbers relative to `iss`
    /// (ours) and `irs` (the peer's).
    pub fn of(r: &Record, iss: u32, irs: u32) -> Event {
        let seg = |seq_isn: u32, ack_isn: u32| Segment {
            seq: r.a.wrapping_sub(seq_isn),
            // A segment without ACK carries no acknowledgment number.
            ack: if r.sub & ACK != 0 {
                r.b.wrapping_sub(ack_isn)
            } else {
                r.b
            },
            window: r.c,
            flags: r.sub,
            len: r.d,
        };
        match Kind::from_u8(r.kind) {
            Some(Kind::Clock) => Event::Clock,
            Some(Kind::State) => Event::State {
                from: state_of(r.a as u8),
                to: state_of(r.sub),
            },
            Some(Kind::SegIn) => Event::In(seg(irs, iss)),
            Some(Kind::SegOut) => Event::Out(seg(iss, irs)),
            Some(Kind::Retransmit) => Event::Retransmit(seg(iss, irs)),
            Some(Kind::Rto) => Event::Rto {
                rto_ms: r.a,
                backoffs: r.b,
                retries: r.c,
            },
            Some(Kind::Cwnd) => Event::Cwnd {
                reason: CwndReason::from_u8(r.sub),
                cwnd: r.a,
                ssthresh: r.b,
            },
            Some(Kind::AppWrite) => Event::Write {
                bytes: r.a,
                queued: r.b,
            },
            Some(Kind::AppRead) => Event::Read {
                bytes: r.a,
                queued: r.b,
                reads: r.c.max(1),
            },
            None => Event::Unknown(*r),
        }
    }
}

/// The TCP header's ACK flag.
const ACK: u8 = 0x10;

/// A record with its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// When, ns on the stack's clock (a multiple of the 1024-ns tick).
    pub time_ns: u64,
    /// What.
    pub event: Event,
}

/// One socket's ring, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketTrace {
    /// The socket table's slot.
    pub index: u32,
    /// Its generation then.
    pub generation: u32,
    /// Live or closed.
    pub status: SlotStatus,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's.
    pub remote: SocketAddr,
    /// Our ISN and the peer's (0 until known).
    pub iss: u32,
    /// The peer's ISN.
    pub irs: u32,
    /// When the ring was attached, ns (a multiple of the tick).
    pub opened_ns: u64,
    /// Records ever written (more than `entries` once it wrapped).
    pub written: u64,
    /// The records still in the ring, oldest first.
    pub entries: Vec<Entry>,
}

/// A whole file, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceDump {
    /// Records per ring.
    pub records: u32,
    /// The writer's process id.
    pub pid: u32,
    /// The slots ever used, by index.
    pub sockets: Vec<SocketTrace>,
}

/// Decodes the bytes of a trace file.
///
/// # Errors
///
/// [`DecodeError`] when the bytes are not a whole trace file of a known
/// version.
pub fn decode(bytes: &[u8]) -> Result<TraceDump, DecodeError> {
    let word = |i: usize| -> Result<u64, DecodeError> {
        bytes
            .get(i * 8..i * 8 + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or(DecodeError::Truncated)
    };
    if word(F_MAGIC)? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let format = word(F_FORMAT)?;
    let version = format as u16;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let records = (format >> 32) as u32;
    if !records.is_power_of_two() {
        return Err(DecodeError::BadRecords(records));
    }
    let slots_word = word(F_SLOTS)?;
    let (slots, pid) = (slots_word as u32, (slots_word >> 32) as u32);
    let per = slot_words(records);
    if bytes.len() < (FILE_HEADER_WORDS + slots as usize * per) * 8 {
        return Err(DecodeError::Truncated);
    }
    let mut sockets = Vec::new();
    for index in 0..slots {
        let base = FILE_HEADER_WORDS + index as usize * per;
        let status_word = word(base + S_STATUS)?;
        let status = SlotStatus::from_u8(status_word as u8);
        if status == SlotStatus::Unused {
            continue;
        }
        let head = word(base + S_HEAD)?;
        let last = word(base + S_LAST)?;
        let isn = word(base + S_ISN)?;
        let ports = word(base + S_PORTS)?;
        let local = addr(
            word(base + S_LOCAL)?,
            word(base + S_LOCAL + 1)?,
            ports as u16,
        );
        let remote = addr(
            word(base + S_REMOTE)?,
            word(base + S_REMOTE + 1)?,
            (ports >> 16) as u16,
        );
        let kept = head.min(u64::from(records));
        let mut raw = Vec::with_capacity(kept as usize);
        for n in head - kept..head {
            let at = base + SLOT_HEADER_WORDS + 2 * (n % u64::from(records)) as usize;
            raw.push(Record::from_words([word(at)?, word(at + 1)?]));
        }
        let (iss, irs) = (isn as u32, (isn >> 32) as u32);
        sockets.push(SocketTrace {
            index,
            generation: (status_word >> 32) as u32,
            status,
            local,
            remote,
            iss,
            irs,
            opened_ns: word(base + S_OPENED)? << TICK_SHIFT,
            written: head,
            entries: timed(&raw, last, iss, irs),
        });
    }
    Ok(TraceDump {
        records,
        pid,
        sockets,
    })
}

/// Times the records, oldest first, from the newest's (`last`, ticks)
/// backwards: each record's `dt` (a `Clock`'s gap) separates it from the
/// one before; a `Clock` carries its own absolute time.
fn timed(raw: &[Record], last: u64, iss: u32, irs: u32) -> Vec<Entry> {
    let mut out = vec![
        Entry {
            time_ns: 0,
            event: Event::Clock,
        };
        raw.len()
    ];
    let mut t = last;
    for (i, r) in raw.iter().enumerate().rev() {
        let clock = r.kind == Kind::Clock as u8;
        if clock {
            t = u64::from(r.b) | u64::from(r.c) << 32;
        }
        out[i] = Entry {
            time_ns: t << TICK_SHIFT,
            event: Event::of(r, iss, irs),
        };
        let back = if clock {
            u64::from(r.a)
        } else {
            u64::from(r.dt)
        };
        t = t.saturating_sub(back);
    }
    out
}

fn addr(w0: u64, w1: u64, port: u16) -> SocketAddr {
    let mut octets = [0u8; 16];
    octets[..8].copy_from_slice(&w0.to_le_bytes());
    octets[8..].copy_from_slice(&w1.to_le_bytes());
    let v6 = Ipv6Addr::from(octets);
    let ip = match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    };
    SocketAddr::new(ip, port)
}

/// tcpdump's letters for a flags byte.
fn flag_letters(flags: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (0x02, 'S'),
        (0x01, 'F'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'W'),
        (0x10, '.'),
    ] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

fn state_name(s: Option<State>) -> &'static str {
    match s {
        Some(State::Closed) => "CLOSED",
        Some(State::Listen) => "LISTEN",
        Some(State::SynSent) => "SYN_SENT",
        Some(State::SynReceived) => "SYN_RECEIVED",
        Some(State::Established) => "ESTABLISHED",
        Some(State::FinWait1) => "FIN_WAIT_1",
        Some(State::FinWait2) => "FIN_WAIT_2",
        Some(State::CloseWait) => "CLOSE_WAIT",
        Some(State::Closing) => "CLOSING",
        Some(State::LastAck) => "LAST_ACK",
        Some(State::TimeWait) => "TIME_WAIT",
        None => "?",
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seg = |f: &mut fmt::Formatter<'_>, what: &str, s: &Segment| {
            write!(
                f,
                "{what:<5} [{}] seq {} ack {} win {} len {}",
                flag_letters(s.flags),
                s.seq,
                s.ack,
                s.window,
                s.len
            )
        };
        match self {
            Event::Clock => write!(f, "clock"),
            Event::State { from, to } => {
                write!(f, "state {} -> {}", state_name(*from), state_name(*to))
            }
            Event::In(s) => seg(f, "in", s),
            Event::Out(s) => seg(f, "out", s),
            Event::Retransmit(s) => seg(f, "rexmt", s),
            Event::Rto {
                rto_ms,
                backoffs,
                retries,
            } => write!(
                f,
                "rto   fired, next {rto_ms} ms, backoffs {backoffs}, retries {retries}"
            ),
            Event::Cwnd {
                reason,
                cwnd,
                ssthresh,
            } => write!(
                f,
                "cwnd  {} cwnd {cwnd} ssthresh {ssthresh}",
                reason.map_or("?", CwndReason::name)
            ),
            Event::Write { bytes, queued } => write!(f, "write {bytes} bytes, {queued} queued"),
            Event::Read {
                bytes,
                queued,
                reads: 1,
            } => write!(f, "read  {bytes} bytes, {queued} left"),
            Event::Read {
                bytes,
                queued,
                reads,
            } => write!(f, "read  {bytes} bytes in {reads} reads, {queued} left"),
            Event::Unknown(r) => write!(f, "kind {} (unknown) {r:?}", r.kind),
        }
    }
}

/// The lines `tpactl st` prints for one socket: a heading, then one line
/// per record, its time in seconds since the ring was attached.
///
/// ```
/// use tpa_stages::trace::decode::{lines, SocketTrace};
/// use tpa_stages::trace::ring::SlotStatus;
/// let t = SocketTrace {
///     index: 3, generation: 1, status: SlotStatus::Closed,
///     local: "10.0.0.1:5000".parse().unwrap(), remote: "10.0.0.2:80".parse().unwrap(),
///     iss: 1, irs: 2, opened_ns: 0, written: 0, entries: vec![],
/// };
/// assert!(lines(&t)[0].starts_with("socket 3.1 10.0.0.1:5000 -> 10.0.0.2:80 closed"));
/// ```
pub fn lines(t: &SocketTrace) -> Vec<String> {
    let status = match t.status {
        SlotStatus::Live => "live",
        SlotStatus::Closed => "closed",
        SlotStatus::Unused => "unused",
    };
    let mut out = vec![format!(
        "socket {}.{} {} -> {} {status}, iss {} irs {}, {} records written, {} kept",
        t.index,
        t.generation,
        t.local,
        t.remote,
        t.iss,
        t.irs,
        t.written,
        t.entries.len()
    )];
    for e in &t.entries {
        if e.event == Event::Clock {
            continue;
        }
        let since = e.time_ns.saturating_sub(t.opened_ns) / 1000;
        out.push(format!(
            "  {:>4}.{:06} {}",
            since / 1_000_000,
            since % 1_000_000,
            e.event
        ));
    }
    out
}

/// Bytes a file takes per socket with `records` records (its slot).
pub fn slot_bytes(records: u32) -> usize {
    slot_words(records) * 8
}

/// Record count of a slot of `bytes`, the inverse of [`slot_bytes`].
pub fn records_in(bytes: usize) -> usize {
    bytes.saturating_sub(SLOT_HEADER_WORDS * 8) / RECORD_BYTES
}
