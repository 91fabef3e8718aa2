//! The trace's record format, version [`VERSION`]: 16 bytes a record,
//! little-endian, the same layout for every kind.
//!
//! | bytes  | field | meaning                                            |
//! |--------|-------|----------------------------------------------------|
//! | 0      | kind  | [`Kind`]                                           |
//! | 1      | sub   | per kind: TCP flags, new state, reason             |
//! | 2..4   | dt    | ticks since the previous record (a `Clock` precedes a longer gap) |
//! | 4..8   | a     | per kind (a segment's sequence number)             |
//! | 8..12  | b     | per kind (a segment's acknowledgment number)       |
//! | 12..14 | c     | per kind (a segment's window as on the wire)       |
//! | 14..16 | d     | per kind (a segment's payload length, saturated)   |
//!
//! Times count [ticks](TICK_NS) of 1024 ns (a shift of the engine's
//! nanoseconds, not a division). Sequence numbers are stored as on the
//! wire; the decoder makes them relative to the initial ones, which the
//! slot's header holds (ours for what we send, the peer's for what we
//! receive), so the writer does no arithmetic on them.

use crate::tcp::conn::state::State;

/// The format's version, in the file's header: a decoder refuses others.
pub const VERSION: u16 = 2;

/// Bytes per record.
pub const RECORD_BYTES: usize = 16;

/// Nanoseconds are turned into ticks by this shift.
pub const TICK_SHIFT: u32 = 10;

/// Nanoseconds per tick (1024).
pub const TICK_NS: u64 = 1 << TICK_SHIFT;

/// The largest gap `dt` holds, ticks (67 ms); a longer one is a `Clock`
/// record first.
pub const MAX_DT: u64 = u16::MAX as u64;

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A gap longer than `dt` holds: `a` = the gap in ticks (saturated),
    /// `b` + `c` << 32 = the absolute time in ticks.
    Clock = 1,
    /// The state changed: `a` = the old state, `sub` = the new one.
    State = 2,
    /// A segment arrived: `a` = seq, `b` = ack, `c` = window, `d` =
    /// payload length (saturated), `sub` = flags.
    SegIn = 3,
    /// A segment went out, first transmission.
    SegOut = 4,
    /// A segment went out again (data below SND.MAX).
    Retransmit = 5,
    /// The retransmission timer fired: `a` = the backed-off RTO in ms,
    /// `b` = backoffs, `c` = retries in a row.
    Rto = 6,
    /// The congestion state changed: `sub` = [`CwndReason`], `a` = cwnd,
    /// `b` = ssthresh (bytes).
    Cwnd = 7,
    /// The application wrote: `a` = bytes taken, `b` = bytes queued after.
    AppWrite = 8,
    /// The application read: `a` = bytes read, `b` = bytes left queued,
    /// `c` = reads (consecutive reads in the same tick share a record).
    AppRead = 9,
}

impl Kind {
    /// The kind of byte `k`, if the format has one.
    pub fn from_u8(k: u8) -> Option<Kind> {
        Some(match k {
            1 => Kind::Clock,
            2 => Kind::State,
            3 => Kind::SegIn,
            4 => Kind::SegOut,
            5 => Kind::Retransmit,
            6 => Kind::Rto,
            7 => Kind::Cwnd,
            8 => Kind::AppWrite,
            9 => Kind::AppRead,
            _ => return None,
        })
    }
}

/// Why a `Cwnd` record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CwndReason {
    /// Fast recovery began (a loss detected by ACKs, SACK or RACK).
    Recovery = 1,
    /// Recovery ended: the window after it.
    RecoveryEnd = 2,
    /// A retransmission timeout collapsed the window.
    Rto = 3,
    /// A reduction was undone (spurious: DSACK or F-RTO).
    Undo = 4,
    /// ssthresh fell otherwise (slow start ended early, a window
    /// validation decay).
    Reduced = 5,
}

impl CwndReason {
    /// The reason of byte `r`.
    pub fn from_u8(r: u8) -> Option<CwndReason> {
        Some(match r {
            1 => CwndReason::Recovery,
            2 => CwndReason::RecoveryEnd,
            3 => CwndReason::Rto,
            4 => CwndReason::Undo,
            5 => CwndReason::Reduced,
            _ => return None,
        })
    }

    /// A short name for the decoder's lines.
    pub fn name(self) -> &'static str {
        match self {
            CwndReason::Recovery => "recovery",
            CwndReason::RecoveryEnd => "recovered",
            CwndReason::Rto => "rto",
            CwndReason::Undo => "undo",
            CwndReason::Reduced => "reduced",
        }
    }
}

/// One record as stored, fields raw.
///
/// ```
/// use tpa_stages::trace::record::{Kind, Record};
/// let r = Record { kind: Kind::SegOut as u8, sub: 0x10, dt: 7, a: 1, b: 2, c: 3, d: 4 };
/// assert_eq!(Record::from_bytes(&r.to_bytes()), r);
/// assert_eq!(Record::from_words(r.to_words()), r);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record {
    /// [`Kind`] as a byte.
    pub kind: u8,
    /// Per kind.
    pub sub: u8,
    /// µs since the previous record.
    pub dt: u16,
    /// Per kind.
    pub a: u32,
    /// Per kind.
    pub b: u32,
    /// Per kind.
    pub c: u16,
    /// Per kind.
    pub d: u16,
}

impl Record {
    /// A record of `kind` with its fields, `dt` left for the ring.
    #[inline]
    pub fn new(kind: Kind, sub: u8, a: u32, b: u32, c: u16, d: u16) -> Record {
        Record {
            kind: kind as u8,
            sub,
            dt: 0,
            a,
            b,
            c,
            d,
        }
    }

    /// The two little-endian words the ring stores.
    #[inline]
    pub fn to_words(self) -> [u64; 2] {
        [
            u64::from(self.kind)
                | u64::from(self.sub) << 8
                | u64::from(self.dt) << 16
                | u64::from(self.a) << 32,
            u64::from(self.b) | u64::from(self.c) << 32 | u64::from(self.d) << 48,
        ]
    }

    /// The record of two stored words.
    pub fn from_words(w: [u64; 2]) -> Record {
        Record {
            kind: w[0] as u8,
            sub: (w[0] >> 8) as u8,
            dt: (w[0] >> 16) as u16,
            a: (w[0] >> 32) as u32,
            b: w[1] as u32,
            c: (w[1] >> 32) as u16,
            d: (w[1] >> 48) as u16,
        }
    }

    /// The 16 bytes as in the file.
    pub fn to_bytes(self) -> [u8; RECORD_BYTES] {
        let [w0, w1] = self.to_words();
        let mut out = [0; RECORD_BYTES];
        out[..8].copy_from_slice(&w0.to_le_bytes());
        out[8..].copy_from_slice(&w1.to_le_bytes());
        out
    }

    /// The record of 16 bytes from the file.
    pub fn from_bytes(b: &[u8; RECORD_BYTES]) -> Record {
        let w0 = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let w1 = u64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
        Record::from_words([w0, w1])
    }
}

/// A state as a record's byte.
#[inline]
pub fn state_code(s: State) -> u8 {
    match s {
        State::Closed => 0,
        State::Listen => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::Established => 4,
        State::FinWait1 => 5,
        State::FinWait2 => 6,
        State::CloseWait => 7,
        State::Closing => 8,
        State::LastAck => 9,
        State::TimeWait => 10,
    }
}

/// The state of a record's byte, if valid.
///
/// ```
/// use tpa_stages::tcp::conn::State;
/// use tpa_stages::trace::record::{state_code, state_of};
/// assert_eq!(state_of(state_code(State::FinWait2)), Some(State::FinWait2));
/// assert_eq!(state_of(200), None);
/// ```
pub fn state_of(code: u8) -> Option<State> {
    Some(match code {
        0 => State::Closed,
        1 => State::Listen,
        2 => State::SynSent,
        3 => State::SynReceived,
        4 => State::Established,
        5 => State::FinWait1,
        6 => State::FinWait2,
        7 => State::CloseWait,
        8 => State::Closing,
        9 => State::LastAck,
        10 => State::TimeWait,
        _ => return None,
    })
}
