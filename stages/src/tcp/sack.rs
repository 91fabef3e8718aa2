//! The sender's SACK scoreboard and SACK-based loss recovery (RFC 6675).
//!
//! [`SackScoreboard`] records which bytes above `SND.UNA` the peer
//! reported with SACK blocks (RFC 2018), recognizes duplicate reports
//! (D-SACK, RFC 2883), and answers RFC 6675's questions over the sender's
//! segments: is a byte lost ([`is_lost`](SackScoreboard::is_lost)), how
//! many bytes are in the network ([`pipe`](SackScoreboard::pipe), SetPipe)
//! and which segment to send next ([`next_seg`](SackScoreboard::next_seg),
//! NextSeg rules 1 to 4).
//!
//! # Segments are the caller's
//!
//! The sender keeps its data in whole chunks, one segment each, and
//! retransmits a chunk whole (see the send queue in `doc/internals/tcp.md`).
//! The scoreboard holds no copy of that list: every query takes the sent
//! segments in order, as an iterator of [`SeqRange`]s from the chunk holding
//! `SND.UNA` up to `SND.NXT` ([`contiguous`] builds it from the chunks'
//! lengths), and [`next_seg`](SackScoreboard::next_seg) answers with the
//! index of the chunk to send. A query walks the list once.
//!
//! # Bounded memory
//!
//! SACKed ranges and retransmitted ranges are each a fixed array of at
//! most [`MAX_RANGES`] disjoint ranges, merged when they touch. When a new
//! SACKed range does not fit, the highest range is forgotten: the sender
//! then believes less was SACKed than was, which is safe (data is only
//! freed on a cumulative ACK, RFC 2018 §8) and costs at most a
//! retransmission of data the peer holds, a slower loss verdict (fewer
//! SACKed bytes counted above a hole) and a pipe estimate that is too high
//! (sending less). When a new retransmitted range does not fit, the two
//! closest ranges are joined across their gap: the bytes between count as
//! retransmitted too, so pipe is again too high, never too low.

use tpa::wire::tcp::SackBlock;

use super::seq::{SeqNumber, SeqRange};

/// RFC 6675's DupThresh: a hole is lost once this many segments (or more
/// than `DUP_THRESH - 1` segments' worth of bytes) are SACKed above it.
pub const DUP_THRESH: u32 = 3;

/// The most SACKed ranges, and the most retransmitted ranges, held.
pub const MAX_RANGES: usize = 32;

/// The sent segments as ranges, from the first chunk's start `first` and
/// the chunks' payload lengths in order.
///
/// ```
/// use tpa_stages::tcp::sack::contiguous;
/// use tpa_stages::tcp::seq::{SeqNumber, SeqRange};
/// let segs: Vec<_> = contiguous(SeqNumber::new(u32::MAX), [2u32, 3]).collect();
/// assert_eq!(segs, [
///     SeqRange::new(SeqNumber::new(u32::MAX), SeqNumber::new(1)),
///     SeqRange::new(SeqNumber::new(1), SeqNumber::new(4)),
/// ]);
/// ```
pub fn contiguous<I>(first: SeqNumber, lengths: I) -> impl Iterator<Item = SeqRange> + Clone
where
    I: IntoIterator<Item = u32>,
    I::IntoIter: Clone,
{
    lengths.into_iter().scan(first, |at, len| {
        let range = SeqRange::from_len(*at, len);
        *at = range.end;
        Some(range)
    })
}

/// Which NextSeg rule chose a segment (RFC 6675 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// (1) The first segment holding a lost, unSACKed byte above HighRxt.
    Lost,
    /// (2) New data: the next unsent chunk.
    NewData,
    /// (3) The first segment holding an unSACKed byte above HighRxt below
    /// the highest SACKed byte, lost or not.
    Unsacked,
    /// (4) The rescue retransmission: the segment holding the highest
    /// unSACKed byte, once per recovery.
    Rescue,
    /// Not chosen by NextSeg: a go-back-N retransmission after a timeout,
    /// passed to [`mark_retransmitted`](SackScoreboard::mark_retransmitted)
    /// so that pipe counts it.
    Timeout,
}

/// The segment to send next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextSeg {
    /// Its position in the caller's list of segments (for
    /// [`Rule::NewData`], the number of sent segments: the first unsent
    /// chunk).
    pub index: usize,
    /// Its range as the caller gave it (for new data, empty at `SND.NXT`:
    /// the caller knows the chunk's length).
    pub range: SeqRange,
    /// The rule that chose it.
    pub rule: Rule,
}

/// What an incoming ACK changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AckUpdate {
    /// Bytes newly acknowledged cumulatively.
    pub acked: u32,
    /// Bytes above `SND.UNA` SACKed for the first time: more than zero
    /// makes the ACK a duplicate ACK in RFC 6675's sense (§2, (b)).
    pub newly_sacked: u32,
    /// The first block reported data received twice (RFC 2883 §4): below
    /// the cumulative ACK, or inside the second block.
    pub dsack: Option<SeqRange>,
    /// Blocks ignored: empty, reaching beyond `SND.NXT`, or wholly below
    /// `SND.UNA` without being a D-SACK.
    pub ignored: u8,
    /// The ACK reached the recovery point: loss recovery is over.
    pub recovery_ended: bool,
}

/// Counters since the scoreboard was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackStats {
    /// D-SACK blocks received.
    pub dsacks: u64,
    /// SACK blocks ignored (see [`AckUpdate::ignored`]).
    pub ignored_blocks: u64,
    /// SACKed ranges forgotten at the bound.
    pub forgotten: u64,
    /// Gaps between retransmitted ranges joined at the bound.
    pub joined: u64,
}

/// Disjoint, non-touching ranges in sequence order, at most
/// [`MAX_RANGES`].
#[derive(Debug, Clone, Copy)]
struct RangeSet {
    ranges: [SeqRange; MAX_RANGES],
    len: usize,
}

/// A position in a [`RangeSet`] for a walk over segments in order: the
/// first range that may still matter.
#[derive(Default)]
struct Cursor(usize);

impl RangeSet {
    const EMPTY: Self = RangeSet {
        ranges: [SeqRange::new(SeqNumber::new(0), SeqNumber::new(0)); MAX_RANGES],
        len: 0,
    };

    fn as_slice(&self) -> &[SeqRange] {
        &self.ranges[..self.len]
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    fn bytes(&self) -> u32 {
        self.as_slice().iter().map(SeqRange::len).sum()
    }

    /// Bytes of `range` the set covers.
    fn covered(&self, range: SeqRange) -> u32 {
        self.covered_at(&mut Cursor::default(), range)
    }

    /// [`covered`](Self::covered) for a walk: `range`s come in order, each
    /// starting at or after the previous one's start.
    fn covered_at(&self, cursor: &mut Cursor, range: SeqRange) -> u32 {
        let ranges = self.as_slice();
        while cursor.0 < ranges.len() && ranges[cursor.0].end.le(range.start) {
            cursor.0 += 1;
        }
        ranges[cursor.0..]
            .iter()
            .take_while(|r| r.start.lt(range.end))
            .map(|r| overlap(*r, range))
            .sum()
    }

    /// The first number at or after `from`, before `end`, not in the set,
    /// for a walk as in [`covered_at`](Self::covered_at).
    fn first_gap_at(
        &self,
        cursor: &mut Cursor,
        from: SeqNumber,
        end: SeqNumber,
    ) -> Option<SeqNumber> {
        let ranges = self.as_slice();
        while cursor.0 < ranges.len() && ranges[cursor.0].end.le(from) {
            cursor.0 += 1;
        }
        let at = match ranges.get(cursor.0) {
            Some(r) if r.start.le(from) => r.end,
            _ => from,
        };
        at.lt(end).then_some(at)
    }

    /// The last number before `end`, at or after `from`, not in the set.
    fn last_gap(&self, from: SeqNumber, end: SeqNumber) -> Option<SeqNumber> {
        let at = match self.as_slice().iter().rev().find(|r| r.start.lt(end)) {
            Some(r) if end.le(r.end) => r.start,
            _ => end,
        };
        from.lt(at).then(|| at - 1)
    }

    /// Drops everything before `seq`.
    fn remove_below(&mut self, seq: SeqNumber) {
        let gone = self.as_slice().iter().take_while(|r| r.end.le(seq)).count();
        self.ranges.copy_within(gone..self.len, 0);
        self.len -= gone;
        if let Some(first) = self.ranges[..self.len].first_mut() {
            first.start = first.start.max(seq);
        }
    }

    /// Adds `range` (non-empty), merging what it touches, into a list one
    /// longer than the bound if need be; the caller trims it back.
    fn insert_unbounded(&self, range: SeqRange) -> ([SeqRange; MAX_RANGES + 1], usize) {
        let mut out = [SeqRange::default(); MAX_RANGES + 1];
        let mut n = 0;
        let mut new = range;
        let mut placed = false;
        for r in self.as_slice() {
            if r.end.lt(new.start) {
                out[n] = *r;
                n += 1;
            } else if new.end.lt(r.start) {
                if !placed {
                    out[n] = new;
                    n += 1;
                    placed = true;
                }
                out[n] = *r;
                n += 1;
            } else {
                // Touching or overlapping: widen the new range.
                new = SeqRange::new(new.start.min(r.start), new.end.max(r.end));
            }
        }
        if !placed {
            out[n] = new;
            n += 1;
        }
        (out, n)
    }

    /// Takes `range` out; `false` (nothing changed) when splitting a range
    /// would pass the bound.
    fn remove(&mut self, range: SeqRange) -> bool {
        let mut out = [SeqRange::default(); MAX_RANGES + 1];
        let mut n = 0;
        for r in self.as_slice() {
            if overlap(*r, range) == 0 {
                out[n] = *r;
                n += 1;
                continue;
            }
            for part in [
                SeqRange::new(r.start, range.start),
                SeqRange::new(range.end, r.end),
            ] {
                if part.start.lt(part.end) && r.start.le(part.start) && part.end.le(r.end) {
                    out[n] = part;
                    n += 1;
                }
            }
        }
        if n > MAX_RANGES {
            return false;
        }
        self.ranges[..n].copy_from_slice(&out[..n]);
        self.len = n;
        true
    }

    /// Adds `range`; when over the bound, forgets the highest range.
    /// Says whether a range was forgotten.
    fn insert_forget_highest(&mut self, range: SeqRange) -> bool {
        let (out, n) = self.insert_unbounded(range);
        let kept = n.min(MAX_RANGES);
        self.ranges[..kept].copy_from_slice(&out[..kept]);
        self.len = kept;
        n > MAX_RANGES
    }

    /// Adds `range`; when over the bound, joins the two ranges with the
    /// smallest gap. Says whether a gap was joined.
    fn insert_join_closest(&mut self, range: SeqRange) -> bool {
        let (mut out, mut n) = self.insert_unbounded(range);
        let over = n > MAX_RANGES;
        if over {
            let closest = (0..n - 1)
                .min_by_key(|&i| out[i + 1].start.wrapping_sub(out[i].end))
                .unwrap_or(0);
            out[closest].end = out[closest + 1].end;
            out.copy_within(closest + 2..n, closest + 1);
            n -= 1;
        }
        self.ranges[..n].copy_from_slice(&out[..n]);
        self.len = n;
        over
    }
}

/// Bytes `a` and `b` share (both within 2^31 of each other).
fn overlap(a: SeqRange, b: SeqRange) -> u32 {
    let start = a.start.max(b.start);
    let end = a.end.min(b.end);
    if start.lt(end) {
        end.wrapping_sub(start)
    } else {
        0
    }
}

/// The SACK scoreboard of one connection's sending side (RFC 6675 §3),
/// with the loss-recovery marks NextSeg needs (HighRxt, RescueRxt,
/// RecoveryPoint) and a D-SACK count of spurious retransmissions.
///
/// Sequence numbers are kept half-open: where RFC 6675 names the last
/// byte of something (HighRxt, RescueRxt, RecoveryPoint, HighACK) this
/// keeps the number after it.
///
/// ```
/// use tpa::wire::tcp::SackBlock;
/// use tpa_stages::tcp::sack::{contiguous, Rule, SackScoreboard};
/// use tpa_stages::tcp::seq::SeqNumber;
///
/// let una = SeqNumber::new(1000);
/// let mut sb = SackScoreboard::new(una, 100);
/// // Ten segments of 100 bytes sent; the first is lost, 2..=4 arrive.
/// let nxt = una + 1000;
/// let segs = || contiguous(una, [100u32; 10]);
/// let up = sb.on_ack(una, &[SackBlock { left: 1100, right: 1400 }], nxt);
/// assert_eq!(up.newly_sacked, 300);
/// assert!(sb.is_lost(una, segs())); // three segments SACKed above it
/// sb.start_recovery(nxt);
/// let seg = sb.next_seg(nxt, segs(), false).unwrap();
/// assert_eq!((seg.index, seg.rule), (0, Rule::Lost));
/// sb.mark_retransmitted(seg);
/// // Pipe: six segments not SACKed nor lost, plus one retransmission.
/// assert_eq!(sb.pipe(nxt, segs()), 700);
/// ```
#[derive(Debug, Clone)]
pub struct SackScoreboard {
    /// SND.UNA (HighACK + 1).
    snd_una: SeqNumber,
    smss: u32,
    sacked: RangeSet,
    retransmitted: RangeSet,
    /// Just past the highest byte any valid SACK block covered (kept even
    /// when that range was forgotten); `None` before the first.
    high_sacked: Option<SeqNumber>,
    /// HighRxt + 1: just past the highest byte retransmitted by rules
    /// (1) and (3); `SND.UNA` when nothing was.
    high_rxt: SeqNumber,
    /// RescueRxt + 1, `None` while undefined.
    rescue_rxt: Option<SeqNumber>,
    /// RecoveryPoint + 1 (HighData + 1 when recovery started or the
    /// timer fired last); `None` before the first loss.
    recovery_point: Option<SeqNumber>,
    in_recovery: bool,
    /// Whether this recovery's first retransmission went out (§5, 4.3).
    first_rxt_done: bool,
    /// `SND.UNA` when the current loss episode began (Linux's
    /// `undo_marker`); `None` outside one.
    episode_start: Option<SeqNumber>,
    /// Retransmissions in the episode not yet shown needless by a D-SACK.
    undo_left: u32,
    /// Retransmissions in the episode.
    episode_retransmits: u32,
    /// Losses are decided by time (RACK, RFC 8985) rather than by
    /// DupThresh: IsLost answers from [`mark_lost_below`](Self::mark_lost_below).
    time_based: bool,
    /// Just past the highest byte RACK marked lost (every unSACKed byte
    /// below it is lost); `None`: none.
    lost_below: Option<SeqNumber>,
    stats: SackStats,
}

impl SackScoreboard {
    /// An empty scoreboard for a connection whose `SND.UNA` is `snd_una`
    /// and whose sender MSS is `smss`.
    pub fn new(snd_una: SeqNumber, smss: u32) -> Self {
        Self {
            snd_una,
            smss: smss.max(1),
            sacked: RangeSet::EMPTY,
            retransmitted: RangeSet::EMPTY,
            high_sacked: None,
            high_rxt: snd_una,
            rescue_rxt: None,
            recovery_point: None,
            in_recovery: false,
            first_rxt_done: false,
            episode_start: None,
            undo_left: 0,
            episode_retransmits: 0,
            time_based: false,
            lost_below: None,
            stats: SackStats::default(),
        }
    }

    /// Decides losses by time (RACK, RFC 8985 §6): IsLost, SetPipe and
    /// NextSeg take the segments the caller marked lost with
    /// [`mark_lost_below`](Self::mark_lost_below) instead of counting
    /// SACKed segments (DupThresh), so reordering does not pass for loss.
    ///
    /// ```
    /// use tpa::wire::tcp::SackBlock;
    /// use tpa_stages::tcp::sack::{contiguous, SackScoreboard};
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let una = SeqNumber::new(0);
    /// let mut sb = SackScoreboard::new(una, 100);
    /// sb.set_time_based(true);
    /// let segs = || contiguous(una, [100u32; 5]);
    /// sb.on_ack(una, &[SackBlock { left: 100, right: 500 }], una + 500);
    /// assert!(!sb.is_lost(una, segs()), "four SACKed above, but not late yet");
    /// sb.mark_lost_below(una + 100);
    /// assert!(sb.is_lost(una, segs()));
    /// ```
    pub fn set_time_based(&mut self, on: bool) {
        self.time_based = on;
    }

    /// Marks every unSACKed byte below `end` lost (RACK's verdict, RFC
    /// 8985 §6.2 step 5); the mark only grows until the cumulative ACK or
    /// a timeout passes it.
    pub fn mark_lost_below(&mut self, end: SeqNumber) {
        self.lost_below = Some(self.lost_below.map_or(end, |l| l.max(end)));
    }

    /// Just past the highest byte marked lost by time, while above
    /// `SND.UNA`.
    pub fn lost_below(&self) -> Option<SeqNumber> {
        self.lost_below.filter(|l| l.gt(self.snd_una))
    }

    /// RACK found the retransmission of `range` lost too (RFC 8985 §6.2:
    /// a segment sent after it was delivered, and it was not in time): it
    /// leaves pipe, and NextSeg may pick it again (HighRxt moves back to
    /// it; with time-based losses NextSeg skips the retransmissions still
    /// in flight). Returns whether `range` was marked retransmitted.
    pub fn retransmission_lost(&mut self, range: SeqRange) -> bool {
        let Some(range) = self.clip(range, range.end) else {
            return false;
        };
        if self.retransmitted.covered(range) != range.len() || !self.retransmitted.remove(range) {
            return false;
        }
        self.high_rxt = self.high_rxt.min(range.start).max(self.snd_una);
        true
    }

    /// The SACKed ranges above `SND.UNA`, in order, as a slice.
    pub fn sacked_slice(&self) -> &[SeqRange] {
        self.sacked.as_slice()
    }

    /// One more D-SACK is owed before the episode's retransmissions all
    /// count as spurious: a tail loss probe's retransmission was in
    /// flight when the episode began (its D-SACK would otherwise undo a
    /// recovery that repaired a real loss; Linux's `tcp_init_undo`).
    pub fn expect_dsack(&mut self) {
        self.undo_left = self.undo_left.saturating_add(1);
    }

    /// Changes the sender MSS (path MTU discovery).
    pub fn set_smss(&mut self, smss: u32) {
        self.smss = smss.max(1);
    }

    /// `SND.UNA` as the scoreboard knows it.
    pub fn snd_una(&self) -> SeqNumber {
        self.snd_una
    }

    /// The counters.
    pub fn stats(&self) -> SackStats {
        self.stats
    }

    /// The SACKed ranges above `SND.UNA`, in order.
    pub fn sacked_ranges(&self) -> impl Iterator<Item = SeqRange> + '_ {
        self.sacked.as_slice().iter().copied()
    }

    /// The ranges retransmitted and not yet cumulatively acknowledged, in
    /// order.
    pub fn retransmitted_ranges(&self) -> impl Iterator<Item = SeqRange> + '_ {
        self.retransmitted.as_slice().iter().copied()
    }

    /// Bytes SACKed above `SND.UNA`.
    pub fn sacked_bytes(&self) -> u32 {
        self.sacked.bytes()
    }

    /// Whether the byte `seq` was SACKed.
    pub fn is_sacked(&self, seq: SeqNumber) -> bool {
        self.sacked.as_slice().iter().any(|r| r.contains(seq))
    }

    /// Just past the highest byte SACKed (`None` when nothing above
    /// `SND.UNA` was).
    pub fn highest_sacked(&self) -> Option<SeqNumber> {
        self.high_sacked
    }

    /// Whether loss recovery (RFC 6675 §5) is running.
    pub fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// Just past the recovery point (RecoveryPoint + 1), once there was
    /// a loss.
    pub fn recovery_point(&self) -> Option<SeqNumber> {
        self.recovery_point
    }

    /// Whether a new recovery may start: none before, or the cumulative
    /// ACK reached the last recovery point (RFC 6675 §5 and §5.1).
    pub fn may_start_recovery(&self) -> bool {
        !self.in_recovery && self.recovery_point.is_none_or(|rp| self.snd_una.ge(rp))
    }

    /// Enters loss recovery with `snd_nxt` (HighData + 1) as the recovery
    /// point (RFC 6675 §5, 4.1); HighRxt restarts at `SND.UNA` and
    /// RescueRxt is set by the first retransmission (4.3).
    pub fn start_recovery(&mut self, snd_nxt: SeqNumber) {
        self.recovery_point = Some(snd_nxt);
        self.in_recovery = true;
        self.first_rxt_done = false;
        self.high_rxt = self.snd_una;
        self.rescue_rxt = None;
        self.start_episode();
    }

    /// The last timeout proved spurious and was undone (RFC 4015): its
    /// recovery point no longer holds a new recovery back, so a loss in
    /// the flight it covered is repaired by SACK as if it never fired.
    pub fn forget_timeout(&mut self) {
        if !self.in_recovery {
            self.recovery_point = None;
        }
    }

    /// The retransmission timer fired (RFC 6675 §5.1): recovery ends with
    /// its point moved to `snd_nxt`, SACK information is dropped (the
    /// receiver may have reneged: RFC 2018 §8, and §5.1 says to ignore it
    /// when choosing what to retransmit), retransmission marks too.
    pub fn on_rto(&mut self, snd_nxt: SeqNumber) {
        self.recovery_point = Some(snd_nxt);
        self.in_recovery = false;
        self.sacked.clear();
        self.retransmitted.clear();
        self.high_sacked = None;
        self.high_rxt = self.snd_una;
        self.rescue_rxt = None;
        self.lost_below = None;
        self.start_episode();
    }

    /// The retransmission timer fired and RACK keeps what was SACKed (RFC
    /// 8985 §6.3, as Linux unless the receiver reneged): as
    /// [`on_rto`](Self::on_rto), but the SACKed ranges stay so that the
    /// go-back-N resend skips what the peer holds.
    pub fn on_rto_keep_sacked(&mut self, snd_nxt: SeqNumber) {
        let (sacked, high_sacked) = (self.sacked, self.high_sacked);
        self.on_rto(snd_nxt);
        self.sacked = sacked;
        self.high_sacked = high_sacked;
    }

    fn start_episode(&mut self) {
        self.episode_start = Some(self.snd_una);
        self.undo_left = 0;
        self.episode_retransmits = 0;
    }

    /// Whether every retransmission of the current loss episode (since
    /// the last [`start_recovery`](Self::start_recovery) or
    /// [`on_rto`](Self::on_rto)) was reported received twice by a D-SACK:
    /// the loss was not real and the congestion response may be undone
    /// (RFC 3708 §3, as Linux's `undo_retrans`).
    pub fn retransmits_all_spurious(&self) -> bool {
        self.episode_start.is_some() && self.episode_retransmits > 0 && self.undo_left == 0
    }

    /// Takes an ACK: `ack` (SEG.ACK, already checked acceptable: at or
    /// below `snd_nxt`) and its SACK blocks in wire order.
    pub fn on_ack(
        &mut self,
        ack: SeqNumber,
        blocks: &[SackBlock],
        snd_nxt: SeqNumber,
    ) -> AckUpdate {
        let mut up = AckUpdate::default();
        let range = |b: &SackBlock| SeqRange::new(SeqNumber::new(b.left), SeqNumber::new(b.right));
        let mut rest = blocks;
        if let Some(first) = blocks.first().map(range) {
            let inside_second = blocks
                .get(1)
                .map(range)
                .is_some_and(|second| second.start.le(first.start) && first.end.le(second.end));
            if first.start.lt(first.end) && (first.end.le(ack) || inside_second) {
                up.dsack = Some(first);
                rest = &blocks[1..];
                self.on_dsack(first);
            }
        }
        if ack.gt(self.snd_una) && ack.le(snd_nxt) {
            up.acked = ack.wrapping_sub(self.snd_una);
            self.snd_una = ack;
            self.sacked.remove_below(ack);
            self.retransmitted.remove_below(ack);
            self.high_rxt = self.high_rxt.max(ack);
            if self.high_sacked.is_some_and(|h| h.le(ack)) {
                self.high_sacked = None;
            }
            if self.lost_below.is_some_and(|l| l.le(ack)) {
                self.lost_below = None;
            }
            if self.in_recovery && self.recovery_point.is_some_and(|rp| ack.ge(rp)) {
                self.in_recovery = false;
                up.recovery_ended = true;
            }
        }
        for block in rest.iter().map(range) {
            let valid = block.start.lt(block.end)
                && block.end.le(snd_nxt)
                && block.end.gt(self.snd_una)
                && block.start.is_between(self.snd_una - (1 << 30), snd_nxt);
            if !valid {
                up.ignored = up.ignored.saturating_add(1);
                self.stats.ignored_blocks += 1;
                continue;
            }
            let block = SeqRange::new(block.start.max(self.snd_una), block.end);
            up.newly_sacked += block.len().saturating_sub(self.sacked.covered(block));
            if self.sacked.insert_forget_highest(block) {
                self.stats.forgotten += 1;
            }
            self.high_sacked = Some(self.high_sacked.map_or(block.end, |h| h.max(block.end)));
        }
        up
    }

    /// Counts a D-SACK toward the spurious-retransmission check: one
    /// retransmission of the episode shown needless, when the block lies
    /// above the episode's start.
    fn on_dsack(&mut self, block: SeqRange) {
        self.stats.dsacks += 1;
        if self.episode_start.is_some_and(|start| block.end.gt(start)) {
            self.undo_left = self.undo_left.saturating_sub(1);
        }
    }

    /// The boundary of IsLost (RFC 6675 §4): every byte before it with
    /// SACKed data above it counts as lost, none at or after it. A byte is
    /// lost when [`DUP_THRESH`] whole segments are SACKed above it, or more
    /// than `(DUP_THRESH - 1) · SMSS` bytes. `None`: nothing is lost.
    /// When losses are decided by time, RACK's mark instead.
    pub fn lost_boundary<I>(&self, segments: I) -> Option<SeqNumber>
    where
        I: IntoIterator<Item = SeqRange>,
    {
        if self.time_based {
            return self.lost_below();
        }
        // The third whole SACKed segment from the top: the last three seen.
        let mut last = [None::<SeqNumber>; DUP_THRESH as usize];
        let mut cursor = Cursor::default();
        for seg in segments
            .into_iter()
            .filter_map(|seg| self.clip(seg, seg.end))
        {
            if self.sacked.covered_at(&mut cursor, seg) == seg.len() {
                last.rotate_left(1);
                last[DUP_THRESH as usize - 1] = Some(seg.start);
            }
        }
        let by_segments = last[0];
        // The ((DUP_THRESH - 1) · SMSS + 1)-th SACKed byte from the top.
        let mut need = u64::from(DUP_THRESH - 1) * u64::from(self.smss) + 1;
        let mut by_bytes = None;
        for r in self.sacked.as_slice().iter().rev() {
            let len = u64::from(r.len());
            if len >= need {
                by_bytes = Some(r.end - need as u32);
                break;
            }
            need -= len;
        }
        match (by_segments, by_bytes) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// IsLost(seq) (RFC 6675 §4) over the sender's `segments`.
    pub fn is_lost<I>(&self, seq: SeqNumber, segments: I) -> bool
    where
        I: IntoIterator<Item = SeqRange>,
    {
        self.lost_boundary(segments).is_some_and(|b| seq.lt(b))
    }

    /// SetPipe (RFC 6675 §4): the bytes in `[SND.UNA, snd_nxt)` that are
    /// not SACKed, counted once if not lost and once more if retransmitted
    /// (RFC 6675 counts octets up to HighRxt; the marks say exactly which
    /// were retransmitted, as Linux's `retrans_out`).
    pub fn pipe<I>(&self, snd_nxt: SeqNumber, segments: I) -> u32
    where
        I: IntoIterator<Item = SeqRange>,
    {
        let from = match self.lost_boundary(segments) {
            Some(b) if b.gt(self.snd_una) => b.min(snd_nxt),
            _ => self.snd_una,
        };
        let outstanding = SeqRange::new(from, snd_nxt);
        let mut pipe = if from.lt(snd_nxt) {
            outstanding
                .len()
                .saturating_sub(self.sacked.covered(outstanding))
        } else {
            0
        };
        for r in self.retransmitted.as_slice() {
            let r = SeqRange::new(r.start, r.end.min(snd_nxt));
            if r.start.lt(r.end) {
                pipe = pipe.saturating_add(r.len().saturating_sub(self.sacked.covered(r)));
            }
        }
        pipe
    }

    /// NextSeg (RFC 6675 §4): the segment to send next, by the first rule
    /// that applies. `segments` are the sent segments in order, up to
    /// `snd_nxt`; `can_send_new` says whether unsent data exists and the
    /// peer's window allows it (rule 2). The rescue (rule 4) is only
    /// offered during recovery.
    pub fn next_seg<I>(
        &self,
        snd_nxt: SeqNumber,
        segments: I,
        can_send_new: bool,
    ) -> Option<NextSeg>
    where
        I: IntoIterator<Item = SeqRange>,
        I::IntoIter: Clone,
    {
        let segments = segments.into_iter();
        let boundary = self.lost_boundary(segments.clone());
        let high_sacked = self.high_sacked;
        // Rules (1) and (3) in one walk: the first unSACKed byte at or
        // above HighRxt, below the highest SACKed byte.
        let mut unsacked = None;
        let mut cursor = Cursor::default();
        let mut rxt_cursor = Cursor::default();
        for (index, seg) in segments.clone().enumerate() {
            let Some(clipped) = self.clip(seg, snd_nxt) else {
                continue;
            };
            if self.time_based
                && self.retransmitted.covered_at(&mut rxt_cursor, clipped) == clipped.len()
            {
                // Resent and not found lost again: still in flight.
                continue;
            }
            let from = clipped.start.max(self.high_rxt);
            if !from.lt(clipped.end) {
                continue;
            }
            let Some(s2) = self.sacked.first_gap_at(&mut cursor, from, clipped.end) else {
                continue;
            };
            if !high_sacked.is_some_and(|h| s2.lt(h)) {
                break; // (1.b) fails here and above
            }
            let found = NextSeg {
                index,
                range: seg,
                rule: Rule::Lost,
            };
            if boundary.is_some_and(|b| s2.lt(b)) {
                return Some(found);
            }
            unsacked.get_or_insert(NextSeg {
                rule: Rule::Unsacked,
                ..found
            });
            // Later segments only have higher bytes; IsLost is monotone,
            // so none of them is lost either.
            break;
        }
        if can_send_new {
            return Some(NextSeg {
                index: segments.clone().count(),
                range: SeqRange::new(snd_nxt, snd_nxt),
                rule: Rule::NewData,
            });
        }
        if unsacked.is_some() {
            return unsacked;
        }
        self.rescue(snd_nxt, segments)
    }

    /// Rule (4): once per recovery, when HighACK is past RescueRxt, the
    /// segment holding the highest unSACKed byte.
    fn rescue<I>(&self, snd_nxt: SeqNumber, segments: I) -> Option<NextSeg>
    where
        I: Iterator<Item = SeqRange>,
    {
        if !self.in_recovery || self.rescue_rxt.is_some_and(|r| !self.snd_una.gt(r)) {
            return None;
        }
        let highest = self.sacked.last_gap(self.snd_una, snd_nxt)?;
        segments
            .enumerate()
            .find(|(_, seg)| seg.contains(highest))
            .map(|(index, range)| NextSeg {
                index,
                range,
                rule: Rule::Rescue,
            })
    }

    /// Records that `seg` was (re)transmitted: HighRxt moves past it for
    /// rules (1) and (3), RescueRxt takes the recovery point for rule (4)
    /// (and the first retransmission of a recovery sets it, §5 4.3), and
    /// the range is marked retransmitted for pipe. New data changes
    /// nothing.
    pub fn mark_retransmitted(&mut self, seg: NextSeg) {
        match seg.rule {
            Rule::NewData => return,
            Rule::Lost | Rule::Unsacked => {
                self.high_rxt = self.high_rxt.max(seg.range.end);
                if self.in_recovery && !self.first_rxt_done {
                    self.rescue_rxt = Some(seg.range.end);
                }
            }
            Rule::Rescue => self.rescue_rxt = self.recovery_point,
            Rule::Timeout => {}
        }
        if self.in_recovery {
            self.first_rxt_done = true;
        }
        self.episode_retransmits = self.episode_retransmits.saturating_add(1);
        self.undo_left = self.undo_left.saturating_add(1);
        if let Some(range) = self.clip(seg.range, seg.range.end) {
            if self.retransmitted.insert_join_closest(range) {
                self.stats.joined += 1;
            }
        }
    }

    /// `seg` cut to `[SND.UNA, end)`, `None` when nothing is left.
    fn clip(&self, seg: SeqRange, end: SeqNumber) -> Option<SeqRange> {
        let start = seg.start.max(self.snd_una);
        let end = seg.end.min(end);
        start.lt(end).then(|| SeqRange::new(start, end))
    }
}

#[cfg(test)]
mod tests;
