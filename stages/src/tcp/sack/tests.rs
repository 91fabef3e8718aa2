use bitvec::prelude::*;
use proptest::prelude::*;

use super::*;

fn s(v: u32) -> SeqNumber {
    SeqNumber::new(v)
}

fn r(a: u32, b: u32) -> SeqRange {
    SeqRange::new(s(a), s(b))
}

fn block(a: u32, b: u32) -> SackBlock {
    SackBlock { left: a, right: b }
}

/// Ten segments of 100 bytes from 1000.
fn ten() -> impl Iterator<Item = SeqRange> + Clone {
    contiguous(s(1000), [100u32; 10])
}

#[test]
fn records_merges_and_ignores_blocks_outside_the_window() {
    let mut sb = SackScoreboard::new(s(1000), 100);
    let nxt = s(2000);
    let up = sb.on_ack(
        s(1000),
        &[
            block(1200, 1300),
            block(1400, 1500),
            block(1300, 1400), // joins the two
            block(1900, 2100), // beyond SND.NXT
        ],
        nxt,
    );
    assert_eq!(up.newly_sacked, 300);
    assert_eq!(up.ignored, 1);
    assert_eq!(sb.sacked_ranges().collect::<Vec<_>>(), [r(1200, 1500)]);
    assert_eq!(sb.highest_sacked(), Some(s(1500)));
    // Empty, reversed, and wholly below SND.UNA (not first: no D-SACK).
    let up = sb.on_ack(
        s(1000),
        &[
            block(1200, 1300),
            block(1700, 1700),
            block(1800, 1750),
            block(900, 1000),
        ],
        nxt,
    );
    assert_eq!((up.newly_sacked, up.ignored, up.dsack), (0, 3, None));
    // A block straddling SND.UNA keeps its part above.
    let up = sb.on_ack(s(1000), &[block(950, 1100)], nxt);
    assert_eq!(up.newly_sacked, 100);
    assert_eq!(
        sb.sacked_ranges().collect::<Vec<_>>(),
        [r(1000, 1100), r(1200, 1500)]
    );
    assert_eq!(sb.stats().ignored_blocks, 4);
}

#[test]
fn cumulative_ack_trims_and_ends_recovery() {
    let mut sb = SackScoreboard::new(s(1000), 100);
    let nxt = s(2000);
    sb.on_ack(s(1000), &[block(1100, 1300), block(1500, 1600)], nxt);
    assert!(sb.may_start_recovery());
    sb.start_recovery(nxt);
    assert!(sb.in_recovery() && !sb.may_start_recovery());
    let up = sb.on_ack(s(1200), &[block(1500, 1600)], nxt);
    assert_eq!((up.acked, up.recovery_ended), (200, false));
    assert_eq!(
        sb.sacked_ranges().collect::<Vec<_>>(),
        [r(1200, 1300), r(1500, 1600)]
    );
    let up = sb.on_ack(s(2000), &[], nxt);
    assert!(up.recovery_ended && !sb.in_recovery());
    assert_eq!(sb.sacked_bytes(), 0);
    assert_eq!(sb.highest_sacked(), None);
    assert!(sb.may_start_recovery());
    // An ACK beyond SND.NXT moves nothing.
    assert_eq!(sb.on_ack(s(2500), &[], nxt).acked, 0);
    assert_eq!(sb.snd_una(), s(2000));
}

#[test]
fn dsack_below_the_ack_or_inside_the_second_block() {
    let mut sb = SackScoreboard::new(s(1000), 100);
    let nxt = s(2000);
    sb.on_ack(s(1200), &[], nxt);
    // Below the cumulative ACK (RFC 2883 §4.1).
    let up = sb.on_ack(s(1200), &[block(1100, 1200)], nxt);
    assert_eq!((up.dsack, up.ignored), (Some(r(1100, 1200)), 0));
    // Inside the second block (§4.2): the second still counts.
    let up = sb.on_ack(s(1200), &[block(1500, 1600), block(1400, 1700)], nxt);
    assert_eq!(up.dsack, Some(r(1500, 1600)));
    assert_eq!(up.newly_sacked, 300);
    // Not first: a stale block, ignored.
    let up = sb.on_ack(s(1200), &[block(1400, 1500), block(1100, 1200)], nxt);
    assert_eq!((up.dsack, up.ignored), (None, 1));
    assert_eq!(sb.stats().dsacks, 2);
}

#[test]
fn dsacks_of_every_retransmission_say_they_were_spurious() {
    let mut sb = SackScoreboard::new(s(1000), 100);
    let nxt = s(2000);
    sb.on_ack(s(1000), &[block(1100, 1400)], nxt);
    sb.start_recovery(nxt);
    assert!(!sb.retransmits_all_spurious());
    let seg = sb.next_seg(nxt, ten(), false).unwrap();
    sb.mark_retransmitted(seg);
    assert!(!sb.retransmits_all_spurious());
    // The original arrived after all: the ACK covers it and D-SACKs the copy.
    let up = sb.on_ack(s(1400), &[block(1000, 1100)], nxt);
    assert_eq!(up.dsack, Some(r(1000, 1100)));
    assert!(sb.retransmits_all_spurious());
    // A D-SACK from before the episode does not count.
    sb.on_rto(nxt);
    sb.mark_retransmitted(NextSeg {
        index: 0,
        range: r(1400, 1500),
        rule: Rule::Timeout,
    });
    sb.on_ack(s(1400), &[block(1300, 1400)], nxt);
    assert!(!sb.retransmits_all_spurious());
}

#[test]
fn is_lost_by_segments_or_by_bytes() {
    // SMSS 1000 over 100-byte segments (small writes): only the segment
    // count decides here.
    let mut sb = SackScoreboard::new(s(1000), 1000);
    let nxt = s(2000);
    // Two segments SACKed above 1000: not lost.
    sb.on_ack(s(1000), &[block(1200, 1400)], nxt);
    assert_eq!(sb.lost_boundary(ten()), None);
    assert!(!sb.is_lost(s(1000), ten()));
    // A third: everything below the third-highest SACKed segment.
    sb.on_ack(s(1000), &[block(1600, 1700)], nxt);
    assert_eq!(sb.lost_boundary(ten()), Some(s(1200)));
    assert!(sb.is_lost(s(1199), ten()) && !sb.is_lost(s(1200), ten()));
    // With SMSS 100, the bytes decide first: 201 SACKed bytes lie above
    // 1298 (1299..1400 and 1600..1700).
    sb.set_smss(100);
    assert_eq!(sb.lost_boundary(ten()), Some(s(1299)));
    // By bytes: more than 2 SMSS above. Segments of 300: one SACKed
    // segment, 300 bytes, marks the bytes below its 201st-from-top byte.
    let mut sb = SackScoreboard::new(s(1000), 100);
    let big = || contiguous(s(1000), [300u32; 3]);
    sb.on_ack(s(1000), &[block(1600, 1900)], s(1900));
    assert_eq!(sb.lost_boundary(big()), Some(s(1900 - 201)));
    // Partly SACKed segments count their bytes, not as segments: 210
    // bytes SACKed, more than 200 above every byte before 1159.
    let mut sb = SackScoreboard::new(s(1000), 100);
    sb.on_ack(
        s(1000),
        &[block(1150, 1250), block(1350, 1450), block(1550, 1560)],
        nxt,
    );
    assert_eq!(sb.lost_boundary(ten()), Some(s(1159)));
}

#[test]
fn next_seg_rules_in_order() {
    let mut sb = SackScoreboard::new(s(1000), 100);
    let nxt = s(2000);
    // Holes at [1000, 1100) and [1500, 1600); SACKed 1100..1500, 1600..1700.
    sb.on_ack(s(1000), &[block(1100, 1500), block(1600, 1700)], nxt);
    sb.start_recovery(nxt);
    // (1): the first hole, lost (four segments SACKed above).
    let seg = sb.next_seg(nxt, ten(), true).unwrap();
    assert_eq!(
        (seg.index, seg.range, seg.rule),
        (0, r(1000, 1100), Rule::Lost)
    );
    sb.mark_retransmitted(seg);
    // [1500, 1600) has one SACKed segment above: not lost. (2) new data.
    let seg = sb.next_seg(nxt, ten(), true).unwrap();
    assert_eq!(
        (seg.index, seg.range, seg.rule),
        (10, r(2000, 2000), Rule::NewData)
    );
    // (3) without new data: the unSACKed hole below the highest SACK.
    let seg = sb.next_seg(nxt, ten(), false).unwrap();
    assert_eq!((seg.index, seg.rule), (5, Rule::Unsacked));
    sb.mark_retransmitted(seg);
    // Nothing left for (1)-(3); the rescue waits for HighACK to pass
    // RescueRxt (set by the first retransmission, 4.3).
    assert_eq!(sb.next_seg(nxt, ten(), false), None);
    sb.on_ack(s(1100), &[block(1600, 1700)], nxt);
    let segs = || contiguous(s(1100), [100u32; 9]);
    assert_eq!(sb.next_seg(nxt, segs(), false), None);
    sb.on_ack(s(1500), &[block(1600, 1700)], nxt);
    let segs = || contiguous(s(1500), [100u32; 5]);
    // (4): the segment holding the highest unSACKed byte, 1999.
    let seg = sb.next_seg(nxt, segs(), false).unwrap();
    assert_eq!(
        (seg.index, seg.range, seg.rule),
        (4, r(1900, 2000), Rule::Rescue)
    );
    sb.mark_retransmitted(seg);
    // Once per recovery.
    assert_eq!(sb.next_seg(nxt, segs(), false), None);
    // Pipe: [1500, 1600) retransmitted and not lost twice, [1700, 2000)
    // once, [1900, 2000) once more.
    assert_eq!(sb.pipe(nxt, segs()), 200 + 300 + 100);
    assert_eq!(
        sb.retransmitted_ranges().collect::<Vec<_>>(),
        [r(1500, 1600), r(1900, 2000)]
    );
}

#[test]
fn a_timeout_forgets_sacks_and_marks() {
    let mut sb = SackScoreboard::new(s(1000), 100);
    let nxt = s(2000);
    sb.on_ack(s(1000), &[block(1100, 1500)], nxt);
    sb.start_recovery(nxt);
    sb.mark_retransmitted(sb.next_seg(nxt, ten(), false).unwrap());
    sb.on_rto(s(2000));
    assert!(!sb.in_recovery() && !sb.may_start_recovery());
    assert_eq!(sb.sacked_bytes(), 0);
    assert_eq!(sb.retransmitted_ranges().count(), 0);
    assert_eq!(sb.pipe(nxt, ten()), 1000);
    assert_eq!(sb.recovery_point(), Some(s(2000)));
    sb.on_ack(s(2000), &[], nxt);
    assert!(sb.may_start_recovery());
}

#[test]
fn time_based_losses_follow_the_marks_and_a_lost_resend_is_picked_again() {
    // RFC 8985 through the scoreboard: IsLost is RACK's mark, not
    // DupThresh; a resend RACK finds lost leaves pipe and NextSeg picks it
    // again, skipping the resends still in flight.
    let mut sb = SackScoreboard::new(s(1000), 100);
    sb.set_time_based(true);
    let nxt = s(2000);
    sb.on_ack(s(1000), &[block(1300, 1600)], nxt);
    assert_eq!(
        sb.lost_boundary(ten()),
        None,
        "three SACKed: not lost by time yet"
    );
    sb.mark_lost_below(s(1300));
    sb.mark_lost_below(s(1100)); // never moves back
    assert_eq!(sb.lost_boundary(ten()), Some(s(1300)));
    sb.start_recovery(nxt);
    for want in [1000, 1100, 1200] {
        let seg = sb.next_seg(nxt, ten(), false).unwrap();
        assert_eq!((seg.range.start, seg.rule), (s(want), Rule::Lost));
        sb.mark_retransmitted(seg);
    }
    // Pipe: 1600..2000 not SACKed nor lost, plus three resends.
    assert_eq!(sb.pipe(nxt, ten()), 400 + 300);
    // The resend of 1100 is lost too.
    assert!(sb.retransmission_lost(r(1100, 1200)));
    assert!(!sb.retransmission_lost(r(1100, 1200)), "once");
    assert_eq!(sb.pipe(nxt, ten()), 400 + 200);
    let seg = sb.next_seg(nxt, ten(), false).unwrap();
    assert_eq!((seg.range.start, seg.rule), (s(1100), Rule::Lost));
    sb.mark_retransmitted(seg);
    // 1200's resend is in flight still (HighRxt alone would offer it):
    // nothing else is lost, nothing below the highest SACK is left.
    assert_eq!(sb.next_seg(nxt, ten(), false), None);
    // The cumulative ACK passes the mark: nothing is lost any more.
    sb.on_ack(s(1600), &[], nxt);
    assert_eq!(sb.lost_boundary(ten()), None);
}

#[test]
fn bounded_ranges_forget_the_highest_and_join_retransmissions() {
    let mut sb = SackScoreboard::new(s(0), 10);
    let nxt = s(1000);
    // Every other byte from 1: 500 ranges reported, the lowest kept.
    for b in (1..1000).step_by(2).collect::<Vec<u32>>().chunks(4) {
        let blocks: Vec<_> = b.iter().map(|&x| block(x, x + 1)).collect();
        sb.on_ack(s(0), &blocks, nxt);
    }
    let kept: Vec<_> = sb.sacked_ranges().collect();
    assert_eq!(kept.len(), MAX_RANGES);
    assert_eq!(kept[MAX_RANGES - 1], r(63, 64));
    assert_eq!(sb.stats().forgotten, 500 - MAX_RANGES as u64);
    assert_eq!(sb.highest_sacked(), Some(s(1000)));
    // Retransmissions of every third byte: joined where closest.
    for x in (0..300).step_by(3) {
        sb.mark_retransmitted(NextSeg {
            index: 0,
            range: r(x, x + 1),
            rule: Rule::Timeout,
        });
    }
    let marks: Vec<_> = sb.retransmitted_ranges().collect();
    assert_eq!(marks.len(), MAX_RANGES);
    let covered: u32 = marks.iter().map(SeqRange::len).sum();
    assert!(covered > 100, "joined gaps count as retransmitted");
    assert!(sb.stats().joined > 0);
}

#[test]
fn wraps_around_sequence_space() {
    let una = s(u32::MAX - 250);
    let mut sb = SackScoreboard::new(una, 100);
    let segs = || contiguous(una, [100u32; 5]);
    let nxt = una + 500;
    let b = |a: u32, c: u32| block((una + a).get(), (una + c).get());
    sb.on_ack(una, &[b(100, 400)], nxt);
    assert_eq!(
        sb.sacked_ranges().collect::<Vec<_>>(),
        [SeqRange::new(una + 100, una + 400)]
    );
    assert!(sb.is_lost(una, segs()));
    sb.start_recovery(nxt);
    let seg = sb.next_seg(nxt, segs(), false).unwrap();
    assert_eq!((seg.index, seg.rule), (0, Rule::Lost));
    sb.mark_retransmitted(seg);
    assert_eq!(sb.pipe(nxt, segs()), 100 + 100);
    let up = sb.on_ack(una + 400, &[b(0, 100)], nxt);
    assert_eq!(
        (up.acked, up.dsack),
        (400, Some(SeqRange::new(una, una + 100)))
    );
    assert_eq!(sb.sacked_bytes(), 0);
}

/// The reference: bitmaps of bytes and RFC 6675's definitions applied
/// byte by byte. Offsets are from `base`.
#[derive(Debug)]
struct Model {
    base: SeqNumber,
    smss: u32,
    una: i64,
    nxt: i64,
    segs: Vec<(i64, i64)>,
    sacked: BitVec,
    rxt: BitVec,
    high_sacked: Option<i64>,
    high_rxt: i64,
    rescue: Option<i64>,
    rp: Option<i64>,
    in_rec: bool,
    first_rxt_done: bool,
}

impl Model {
    fn seq(&self, off: i64) -> SeqNumber {
        self.base + (off as i32) as u32
    }

    fn off(&self, seq: SeqNumber) -> i64 {
        i64::from(seq.distance(self.base))
    }

    fn segments(&self) -> Vec<SeqRange> {
        self.segs
            .iter()
            .map(|&(a, b)| SeqRange::new(self.seq(a), self.seq(b)))
            .collect()
    }

    fn send(&mut self, len: u32) {
        self.segs.push((self.nxt, self.nxt + i64::from(len)));
        self.nxt += i64::from(len);
        self.sacked.resize(self.nxt as usize, false);
        self.rxt.resize(self.nxt as usize, false);
    }

    fn bit(v: &BitVec, o: i64) -> bool {
        v.get(o as usize).is_some_and(|b| *b)
    }

    fn on_ack(&mut self, ack: i64, blocks: &[(i64, i64)]) -> AckUpdate {
        let mut up = AckUpdate::default();
        let mut rest = blocks;
        if let Some(&(a, b)) = blocks.first() {
            let inside = blocks.get(1).is_some_and(|&(c, d)| c <= a && b <= d);
            if a < b && (b <= ack || inside) {
                up.dsack = Some(SeqRange::new(self.seq(a), self.seq(b)));
                rest = &blocks[1..];
            }
        }
        if ack > self.una && ack <= self.nxt {
            up.acked = (ack - self.una) as u32;
            self.una = ack;
            self.segs.retain(|&(_, b)| b > ack);
            self.high_rxt = self.high_rxt.max(ack);
            if self.high_sacked.is_some_and(|h| h <= ack) {
                self.high_sacked = None;
            }
            if self.in_rec && self.rp.is_some_and(|rp| ack >= rp) {
                self.in_rec = false;
                up.recovery_ended = true;
            }
        }
        for &(a, b) in rest {
            if !(a < b && b <= self.nxt && b > self.una) {
                up.ignored += 1;
                continue;
            }
            for o in a.max(self.una)..b {
                if !Self::bit(&self.sacked, o) {
                    up.newly_sacked += 1;
                    self.sacked.set(o as usize, true);
                }
            }
            self.high_sacked = Some(self.high_sacked.map_or(b, |h| h.max(b)));
        }
        up
    }

    /// IsLost for every offset in `[una, nxt)`, by the RFC's words:
    /// SACKed bytes and whole SACKed segments above each one, counted
    /// from the top down.
    fn lost(&self) -> Vec<bool> {
        let n = (self.nxt - self.una) as usize;
        let limit = u64::from(DUP_THRESH - 1) * u64::from(self.smss);
        // Starts of the (clipped) segments SACKed whole, per offset.
        let mut whole_starts = vec![0u32; n];
        for &(a, b) in &self.segs {
            let a = a.max(self.una);
            if (a..b).all(|p| Self::bit(&self.sacked, p)) {
                whole_starts[(a - self.una) as usize] += 1;
            }
        }
        let mut out = vec![false; n];
        let (mut bytes_above, mut segs_above) = (0u64, 0u32);
        for i in (0..n).rev() {
            out[i] = segs_above >= DUP_THRESH || bytes_above > limit;
            let o = self.una + i as i64;
            bytes_above += u64::from(Self::bit(&self.sacked, o));
            segs_above += whole_starts[i];
        }
        out
    }

    fn pipe(&self) -> u32 {
        let lost = self.lost();
        (self.una..self.nxt)
            .filter(|&o| !Self::bit(&self.sacked, o))
            .map(|o| u32::from(!lost[(o - self.una) as usize]) + u32::from(Self::bit(&self.rxt, o)))
            .sum()
    }

    fn seg_of(&self, o: i64) -> (usize, SeqRange) {
        let i = self
            .segs
            .iter()
            .position(|&(a, b)| a <= o && o < b)
            .unwrap();
        (i, self.segments()[i])
    }

    fn next_seg(&self, can_send_new: bool) -> Option<NextSeg> {
        let lost = self.lost();
        let candidate = (self.una.max(self.high_rxt)..self.nxt)
            .find(|&o| !Self::bit(&self.sacked, o) && self.high_sacked.is_some_and(|h| o < h));
        if let Some(o) = candidate.filter(|&o| lost[(o - self.una) as usize]) {
            let (index, range) = self.seg_of(o);
            return Some(NextSeg {
                index,
                range,
                rule: Rule::Lost,
            });
        }
        if can_send_new {
            return Some(NextSeg {
                index: self.segs.len(),
                range: SeqRange::new(self.seq(self.nxt), self.seq(self.nxt)),
                rule: Rule::NewData,
            });
        }
        if let Some(o) = candidate {
            let (index, range) = self.seg_of(o);
            return Some(NextSeg {
                index,
                range,
                rule: Rule::Unsacked,
            });
        }
        if !self.in_rec || self.rescue.is_some_and(|r| self.una <= r) {
            return None;
        }
        let o = (self.una..self.nxt)
            .rev()
            .find(|&o| !Self::bit(&self.sacked, o))?;
        let (index, range) = self.seg_of(o);
        Some(NextSeg {
            index,
            range,
            rule: Rule::Rescue,
        })
    }

    fn mark(&mut self, seg: NextSeg) {
        let (a, b) = (self.off(seg.range.start), self.off(seg.range.end));
        match seg.rule {
            Rule::NewData => return,
            Rule::Lost | Rule::Unsacked => {
                self.high_rxt = self.high_rxt.max(b);
                if self.in_rec && !self.first_rxt_done {
                    self.rescue = Some(b);
                }
            }
            Rule::Rescue => self.rescue = self.rp,
            Rule::Timeout => {}
        }
        if self.in_rec {
            self.first_rxt_done = true;
        }
        for o in a.max(self.una)..b {
            self.rxt.set(o as usize, true);
        }
    }

    fn start_recovery(&mut self) {
        self.rp = Some(self.nxt);
        self.in_rec = true;
        self.first_rxt_done = false;
        self.high_rxt = self.una;
        self.rescue = None;
    }

    fn on_rto(&mut self) {
        self.rp = Some(self.nxt);
        self.in_rec = false;
        self.sacked.fill(false);
        self.rxt.fill(false);
        self.high_sacked = None;
        self.high_rxt = self.una;
        self.rescue = None;
    }

    /// The bytes of `[una, nxt)` in `ranges`, as a bitmap like the model's.
    fn bitmap(&self, ranges: impl Iterator<Item = SeqRange>) -> BitVec {
        let mut v = bitvec![0; self.nxt as usize];
        let mut prev_end = self.una;
        for r in ranges {
            let (a, b) = (self.off(r.start), self.off(r.end));
            assert!(
                prev_end <= a && a < b && b <= self.nxt,
                "{r:?} out of order"
            );
            prev_end = b;
            v[a as usize..b as usize].fill(true);
        }
        v
    }

    /// A model bitmap restricted to `[una, nxt)`.
    fn live(&self, v: &BitVec) -> BitVec {
        let mut v = v.clone();
        v[..self.una as usize].fill(false);
        v
    }
}

#[derive(Debug, Clone)]
enum Op {
    Send(u32),
    /// Cumulative advance selector, and blocks as (kind, a, b).
    Ack(u32, Vec<(u8, u16, u16)>),
    Next(bool),
    StartRecovery,
    Rto,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1u32..=40).prop_map(Op::Send),
        5 => (any::<u32>(), proptest::collection::vec((0u8..10, any::<u16>(), any::<u16>()), 0..=4))
            .prop_map(|(a, b)| Op::Ack(a, b)),
        4 => any::<bool>().prop_map(Op::Next),
        1 => Just(Op::StartRecovery),
        1 => Just(Op::Rto),
    ]
}

impl Model {
    /// A block from a selector: mostly whole segments, sometimes raw
    /// bytes around the window, sometimes a D-SACK below the ACK.
    fn block(&self, ack: i64, (kind, a, b): (u8, u16, u16)) -> (i64, i64) {
        let (a, b) = (i64::from(a), i64::from(b));
        match kind {
            0..=5 if !self.segs.is_empty() => {
                let i = a as usize % self.segs.len();
                let j = (i + b as usize % 4).min(self.segs.len() - 1);
                (self.segs[i].0.max(self.una), self.segs[j].1)
            }
            6 | 7 => {
                let start = self.una - 50 + a % (self.nxt - self.una + 100);
                (start, start + b % 200)
            }
            _ => {
                let end = ack - a % 50;
                (end - 1 - b % 100, end)
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every answer of the scoreboard equals the byte-by-byte reference,
    /// after every step of a random run: sends, ACKs with valid, invalid
    /// and D-SACK blocks, NextSeg and retransmissions, recovery, timeouts.
    #[test]
    fn matches_a_bitmap_reference(
        base in prop_oneof![(0u32..2000).prop_map(|d| u32::MAX - d), any::<u32>()],
        smss in 1u32..=40,
        first in proptest::collection::vec(1u32..=40, 1..12),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let base = SeqNumber::new(base);
        let mut m = Model {
            base, smss, una: 0, nxt: 0, segs: Vec::new(),
            sacked: BitVec::new(), rxt: BitVec::new(), high_sacked: None, high_rxt: 0,
            rescue: None, rp: None, in_rec: false, first_rxt_done: false,
        };
        for len in first {
            m.send(len.min(smss));
        }
        let mut sb = SackScoreboard::new(base, smss);
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Send(len) => m.send(len.min(smss)),
                Op::Ack(adv, sel) => {
                    let ack = if adv > u32::MAX - 64 {
                        m.nxt + 1 + i64::from(adv % 8) // beyond SND.NXT
                    } else {
                        m.una + i64::from(adv) % (m.nxt - m.una + 1)
                    };
                    let blocks: Vec<_> = sel.iter().map(|&k| m.block(ack, k)).collect();
                    let wire: Vec<_> = blocks
                        .iter()
                        .map(|&(a, b)| SackBlock { left: m.seq(a).get(), right: m.seq(b).get() })
                        .collect();
                    let want = m.on_ack(ack, &blocks);
                    let got = sb.on_ack(m.seq(ack), &wire, m.seq(m.nxt));
                    prop_assert_eq!(got, want, "step {} blocks {:?}", step, blocks);
                }
                Op::Next(new) => {
                    let want = m.next_seg(new);
                    let got = sb.next_seg(m.seq(m.nxt), m.segments(), new);
                    prop_assert_eq!(got, want, "step {}", step);
                    match got {
                        Some(seg) if seg.rule == Rule::NewData => m.send(smss),
                        Some(seg) => {
                            sb.mark_retransmitted(seg);
                            m.mark(seg);
                        }
                        None => {}
                    }
                }
                Op::StartRecovery => {
                    let may = m.rp.is_none_or(|rp| m.una >= rp) && !m.in_rec;
                    prop_assert_eq!(sb.may_start_recovery(), may, "step {}", step);
                    if may {
                        sb.start_recovery(m.seq(m.nxt));
                        m.start_recovery();
                    }
                }
                Op::Rto => {
                    sb.on_rto(m.seq(m.nxt));
                    m.on_rto();
                }
            }
            let nxt = m.seq(m.nxt);
            prop_assert_eq!(sb.snd_una(), m.seq(m.una), "step {}", step);
            prop_assert_eq!(m.bitmap(sb.sacked_ranges()), m.live(&m.sacked), "step {} sacked", step);
            prop_assert_eq!(m.bitmap(sb.retransmitted_ranges()), m.live(&m.rxt), "step {} rxt", step);
            prop_assert_eq!(sb.highest_sacked(), m.high_sacked.map(|h| m.seq(h)), "step {}", step);
            prop_assert_eq!(sb.in_recovery(), m.in_rec, "step {}", step);
            prop_assert_eq!(sb.pipe(nxt, m.segments()), m.pipe(), "step {} pipe", step);
            let lost = m.lost();
            let boundary = sb.lost_boundary(m.segments());
            for (i, want) in lost.iter().enumerate() {
                let seq = m.seq(m.una + i as i64);
                prop_assert_eq!(boundary.is_some_and(|b| seq.lt(b)), *want, "step {} IsLost(+{})", step, i);
            }
            for new in [false, true] {
                prop_assert_eq!(sb.next_seg(nxt, m.segments(), new), m.next_seg(new), "step {}", step);
            }
        }
    }

}

proptest! {
    // Fewer cases: each runs hundreds of reports over hundreds of segments.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Past the bound, what is held is a subset of what was SACKed, and
    /// pipe is never below the reference's: forgetting is conservative.
    #[test]
    fn forgetting_is_conservative(
        seed in any::<u64>(),
        segs in 40usize..200,
        reports in 1usize..200,
    ) {
        let mut rng = seed | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let base = SeqNumber::new(next() as u32);
        let mut m = Model {
            base, smss: 4, una: 0, nxt: 0, segs: Vec::new(),
            sacked: BitVec::new(), rxt: BitVec::new(), high_sacked: None, high_rxt: 0,
            rescue: None, rp: None, in_rec: false, first_rxt_done: false,
        };
        for _ in 0..segs {
            m.send(1 + (next() % 4) as u32);
        }
        let mut sb = SackScoreboard::new(base, 4);
        for _ in 0..reports {
            let i = next() as usize % segs;
            let block = (m.segs[i].0, m.segs[i].1);
            let wire = [SackBlock { left: m.seq(block.0).get(), right: m.seq(block.1).get() }];
            m.on_ack(0, &[block]);
            sb.on_ack(base, &wire, m.seq(m.nxt));
            let held = m.bitmap(sb.sacked_ranges());
            prop_assert!(sb.sacked_ranges().count() <= MAX_RANGES, "seed {seed}");
            prop_assert_eq!(held.clone() & m.sacked.clone(), held, "seed {}: held more than SACKed", seed);
            prop_assert!(sb.pipe(m.seq(m.nxt), m.segments()) >= m.pipe(), "seed {seed}: pipe too low");
        }
    }
}

#[test]
fn memory_per_connection_stays_small() {
    // Two arrays of MAX_RANGES ranges and a few marks: the budget
    // is 4 KiB per idle connection in all.
    let size = core::mem::size_of::<SackScoreboard>();
    assert!(size <= 2 * MAX_RANGES * 8 + 128, "{size} bytes");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Blocks and ACKs are the peer's to choose: any values at all leave
    /// the scoreboard consistent (ranges sorted, disjoint, inside
    /// `[SND.UNA, SND.NXT]`, at most `MAX_RANGES`), pipe within twice
    /// what is outstanding, and nothing panics.
    #[test]
    fn any_blocks_and_acks_keep_it_consistent(
        una in any::<u32>(),
        lens in proptest::collection::vec(1u32..3000, 1..40),
        acks in proptest::collection::vec(
            (prop_oneof![any::<u32>(), 0u32..100_000], proptest::collection::vec((any::<u32>(), any::<u32>(), any::<bool>()), 0..=4)),
            1..40,
        ),
        recover in any::<bool>(),
    ) {
        let first = SeqNumber::new(una);
        let total: u32 = lens.iter().sum();
        let nxt = first + total;
        let mut sb = SackScoreboard::new(first, 1460);
        if recover {
            sb.start_recovery(nxt);
        }
        for (ack, blocks) in acks {
            // Small offsets from SND.UNA mix with values from anywhere.
            let near = |v: u32| if v < 100_000 { sb.snd_una() + v } else { SeqNumber::new(v) };
            let ack = near(ack);
            let wire: Vec<_> = blocks
                .iter()
                .map(|&(a, b, rel)| {
                    let left = if rel { near(a % 100_000) } else { SeqNumber::new(a) };
                    let right = if rel { left + b % 5000 } else { SeqNumber::new(b) };
                    SackBlock { left: left.get(), right: right.get() }
                })
                .collect();
            sb.on_ack(ack, &wire, nxt);
            let una = sb.snd_una();
            let segs = || contiguous(first, lens.iter().copied()).filter(move |r| r.end.gt(una));
            let ranges: Vec<_> = sb.sacked_ranges().collect();
            prop_assert!(ranges.len() <= MAX_RANGES);
            let mut at = una;
            for r in &ranges {
                prop_assert!(at.le(r.start) && r.start.lt(r.end) && r.end.le(nxt), "{:?} una {:?}", ranges, una);
                at = r.end + 1; // disjoint and not touching
            }
            let outstanding = nxt.wrapping_sub(una);
            prop_assert!(sb.pipe(nxt, segs()) <= 2 * outstanding);
            if let Some(seg) = sb.next_seg(nxt, segs(), false) {
                prop_assert!(seg.range.end.gt(una) && seg.range.end.le(nxt));
                sb.mark_retransmitted(seg);
            }
        }
    }
}
