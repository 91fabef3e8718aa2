//! What the connection writes to its socket trace ring (`crate::trace`),
//! when the socket table gave it one: each hook is one branch when
//! tracing is off.
//!
//! Segments are written as they arrive and leave; state, recovery and
//! ssthresh changes are found after each input, timer, ICMP error or
//! application call by comparing with what the ring last said, so the
//! engine's many assignments need no hook of their own.

use tpa::buf::PacketBuf;

use super::super::cc::CongestionControl;
use super::super::segment::SegmentOut;
use super::super::seq::SeqNumber;
use super::predict::SegmentHeader;
use super::Connection;
use crate::trace::record::{state_code, CwndReason, Kind, Record};
use crate::trace::ring::{Ring, Seen, SeenFields};

impl<B: PacketBuf> Connection<B> {
    /// Gives the connection a trace ring (from the socket table's
    /// [`Tracer`](crate::trace::Tracer)); it writes its state at once.
    pub fn attach_trace(&mut self, mut ring: Ring, now_ns: u64) {
        ring.set_isns(self.iss.get(), self.irs.get());
        let code = state_code(self.state);
        ring.push(Record::new(Kind::State, code, 0, 0, 0, 0), now_ns);
        ring.set_seen(SeenFields {
            state: code,
            fast: self.cc.in_recovery(),
            rto_recover: None,
            ssthresh: self.cc.ssthresh(),
        });
        self.trace = Some(Box::new(ring));
        self.note_output_rare();
    }

    /// The latest time passed in, ns (what the socket table stamps an
    /// archive with).
    pub fn clock_ns(&self) -> u64 {
        self.clock_ns
    }

    /// The connection's ring, if it has one.
    #[inline]
    pub fn trace_ring(&self) -> Option<&Ring> {
        self.trace.as_deref()
    }

    /// Whether something worth archiving the ring for happened since the
    /// last call (a recovery ended, an abnormal close), cleared.
    pub fn take_trace_archive(&mut self) -> bool {
        self.trace
            .as_deref_mut()
            .is_some_and(|r| core::mem::take(&mut r.archive_due))
    }

    /// A segment of `len` payload bytes arrived.
    #[inline]
    pub(super) fn trace_seg_in<H: SegmentHeader>(&mut self, seg: &H, len: u32, now_ns: u64) {
        if let Some(ring) = self.trace.as_deref_mut() {
            // Numbers as on the wire: the decoder subtracts the ISNs.
            let rec = Record::new(
                Kind::SegIn,
                seg.flags().0,
                seg.seq().get(),
                seg.ack().get(),
                seg.window(),
                len.min(u32::from(u16::MAX)) as u16,
            );
            ring.push(rec, now_ns);
        }
    }

    /// A segment of `len` payload bytes leaves; `snd_max` is SND.MAX before it was built (what
    /// starts below it was sent before).
    #[inline]
    pub(super) fn trace_seg_out(
        &mut self,
        seg: &SegmentOut<B>,
        len: u32,
        snd_max: SeqNumber,
        now_ns: u64,
    ) {
        if let Some(ring) = self.trace.as_deref_mut() {
            let again = seg.seq.lt(snd_max) && (len > 0 || seg.flags.syn() || seg.flags.fin());
            let kind = if again {
                Kind::Retransmit
            } else {
                Kind::SegOut
            };
            let rec = Record::new(
                kind,
                seg.flags.0,
                seg.seq.get(),
                seg.ack.get(),
                seg.window,
                len.min(u32::from(u16::MAX)) as u16,
            );
            ring.push(rec, now_ns);
        }
    }

    /// The retransmission timer fired (after its backoff).
    pub(super) fn trace_rto(&mut self, now_ns: u64) {
        if let Some(ring) = self.trace.as_deref_mut() {
            let rec = Record::new(
                Kind::Rto,
                0,
                (self.rto.rto_ns() / 1_000_000).min(u64::from(u32::MAX)) as u32,
                self.rto.backoffs(),
                self.retries.min(u32::from(u16::MAX)) as u16,
                0,
            );
            ring.push(rec, now_ns);
            let mut seen = ring.seen();
            seen.rto_recover = Some(self.snd_max.get());
            ring.set_seen(seen);
        }
    }

    /// The application aborted: the state change, and the ring is worth
    /// archiving.
    pub(super) fn trace_abnormal_close(&mut self, now_ns: u64) {
        if self.trace.is_some() {
            self.trace_changes_slow(now_ns);
            if let Some(ring) = self.trace.as_deref_mut() {
                ring.archive_due = true;
            }
        }
    }

    /// The application wrote `bytes`.
    #[inline]
    pub(super) fn trace_write(&mut self, bytes: usize) {
        if let Some(ring) = self.trace.as_deref_mut() {
            let queued = self.send_queue.bytes().min(u32::MAX as usize) as u32;
            let rec = Record::new(Kind::AppWrite, 0, bytes as u32, queued, 0, 0);
            ring.push(rec, self.clock_ns);
        }
    }

    /// The application read `bytes` (consecutive reads of a tick share
    /// a record).
    #[inline]
    pub(super) fn trace_read(&mut self, bytes: usize) {
        if let Some(ring) = self.trace.as_deref_mut() {
            let queued = self.receive_queue.bytes().min(u32::MAX as usize) as u32;
            ring.push_read(bytes as u32, queued, self.clock_ns);
        }
    }

    /// Writes what changed since the ring last said: the state, the start
    /// and end of a recovery, ssthresh.
    #[inline]
    pub(super) fn trace_changes(&mut self, now_ns: u64) {
        if let Some(ring) = self.trace.as_deref() {
            let w = self.cc.window();
            let key = Seen::key(state_code(self.state), w.recover.is_some(), w.ssthresh);
            if key != ring.seen.key {
                self.trace_changes_slow(now_ns);
            }
        }
    }

    #[inline(never)]
    fn trace_changes_slow(&mut self, now_ns: u64) {
        let state = state_code(self.state);
        let fast = self.cc.in_recovery();
        let ssthresh = self.cc.ssthresh();
        let cwnd = self.cwnd();
        let (snd_una, closed, error) = (self.snd_una, self.is_closed(), self.error.is_some());
        let (iss, irs) = (self.iss.get(), self.irs.get());
        let Some(ring) = self.trace.as_deref_mut() else {
            return;
        };
        let seen = ring.seen();
        let mut now_seen = SeenFields {
            state,
            fast,
            rto_recover: seen.rto_recover,
            ssthresh,
        };
        if state != seen.state {
            ring.set_isns(iss, irs);
            ring.push(
                Record::new(Kind::State, state, u32::from(seen.state), 0, 0, 0),
                now_ns,
            );
            if closed && error {
                ring.archive_due = true;
            }
        }
        let cwnd_rec =
            |reason: CwndReason| Record::new(Kind::Cwnd, reason as u8, cwnd, ssthresh, 0, 0);
        let rto_done = seen
            .rto_recover
            .is_some_and(|end| snd_una.ge(SeqNumber::new(end)));
        if fast && !seen.fast {
            ring.push(cwnd_rec(CwndReason::Recovery), now_ns);
        } else if (!fast && seen.fast && seen.rto_recover.is_none()) || (rto_done && !fast) {
            ring.push(cwnd_rec(CwndReason::RecoveryEnd), now_ns);
            now_seen.rto_recover = None;
            ring.archive_due = true;
        } else if ssthresh != seen.ssthresh {
            let reason = if seen.rto_recover.is_some() && ssthresh < seen.ssthresh {
                CwndReason::Rto
            } else if ssthresh > seen.ssthresh {
                CwndReason::Undo
            } else {
                CwndReason::Reduced
            };
            ring.push(cwnd_rec(reason), now_ns);
        }
        ring.set_seen(now_seen);
    }
}
