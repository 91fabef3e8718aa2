//! The client's bookkeeping, the same over tpa and over the kernel's
//! sockets: which datagram to send next (within the window and the rate),
//! which are out and since when, which came back (checked byte for byte),
//! which timed out, and the round-trip times.
//!
//! Time is whatever clock the caller reads, in nanoseconds.
//!
//! ```
//! use tpa_echo::session::{Plan, Session};
//! let plan = Plan { count: 2, size: 16, window: 1, rate: None, timeout_ns: 1_000_000 };
//! let mut s = Session::new(plan, 0);
//! let mut d = [0u8; 16];
//! let seq = s.next_send(10, &mut d).unwrap();
//! assert!(s.next_send(11, &mut d).is_none(), "the window is full");
//! s.on_reply(&d, 60);
//! assert_eq!(s.rtts_ns(), &[50]);
//! assert_eq!(seq, 0);
//! ```

use crate::payload::{self, Corrupt};
use crate::report::ClientReport;

/// What the client is asked to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Datagrams to send.
    pub count: u64,
    /// Bytes of UDP payload each.
    pub size: usize,
    /// Datagrams out at once, at most.
    pub window: u32,
    /// Datagrams per second, at most (`None`: as fast as replies allow).
    pub rate: Option<f64>,
    /// How long a datagram may be out before it counts as lost.
    pub timeout_ns: u64,
}

/// Where one datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Sent at this time; no reply yet.
    Out(u64),
    /// Its echo came back.
    Back,
    /// Timed out (or could not be sent).
    Lost,
}

/// The client's state over one run.
#[derive(Debug)]
pub struct Session {
    plan: Plan,
    start_ns: u64,
    /// One slot per datagram sent, by sequence number.
    slots: Vec<Slot>,
    /// Sequence numbers of datagrams out, oldest first (some may have come
    /// back since: skipped when met).
    queue: std::collections::VecDeque<u64>,
    out: u32,
    rtts_ns: Vec<u64>,
    last_ns: u64,
    corrupt: u64,
    duplicate: u64,
    late: u64,
    send_errors: u64,
    refused: u64,
    first_corruption: Option<Corrupt>,
    first_lost: Option<u64>,
}

impl Session {
    /// A session starting at `now_ns`.
    pub fn new(plan: Plan, now_ns: u64) -> Self {
        let cap = usize::try_from(plan.count)
            .unwrap_or(usize::MAX)
            .min(1 << 20);
        Session {
            plan,
            start_ns: now_ns,
            slots: Vec::with_capacity(cap),
            queue: std::collections::VecDeque::with_capacity(plan.window as usize),
            out: 0,
            rtts_ns: Vec::with_capacity(cap),
            last_ns: now_ns,
            corrupt: 0,
            duplicate: 0,
            late: 0,
            send_errors: 0,
            refused: 0,
            first_corruption: None,
            first_lost: None,
        }
    }

    /// What the session is doing.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    fn sent(&self) -> u64 {
        self.slots.len() as u64
    }

    /// When datagram `seq` may leave under the rate limit.
    fn slot_time(&self, seq: u64) -> u64 {
        match self.plan.rate {
            Some(rate) => self.start_ns + (seq as f64 * 1e9 / rate) as u64,
            None => self.start_ns,
        }
    }

    /// Whether [`next_send`](Self::next_send) would send at `now_ns`.
    pub fn may_send(&self, now_ns: u64) -> bool {
        let seq = self.sent();
        seq < self.plan.count && self.out < self.plan.window && now_ns >= self.slot_time(seq)
    }

    /// The next datagram to send at `now_ns`, written into `out` (which
    /// holds [`Plan::size`] bytes), and its sequence number; `None` when
    /// all were sent, the window is full or the rate says wait.
    pub fn next_send(&mut self, now_ns: u64, out: &mut [u8]) -> Option<u64> {
        let seq = self.sent();
        if seq >= self.plan.count || self.out >= self.plan.window || now_ns < self.slot_time(seq) {
            return None;
        }
        payload::fill(seq, out);
        self.slots.push(Slot::Out(now_ns));
        self.queue.push_back(seq);
        self.out += 1;
        Some(seq)
    }

    /// Datagram `seq`, the last one [`next_send`](Self::next_send) gave,
    /// was not taken by the stack this time (no room to hold it, say): it
    /// is handed out again by the next `next_send`, as if never sent.
    pub fn unsend(&mut self, seq: u64) {
        if seq + 1 == self.sent() && self.slots.last().is_some_and(|s| matches!(s, Slot::Out(_))) {
            self.slots.pop();
            self.queue.pop_back();
            self.out -= 1;
        }
    }

    /// Datagram `seq` could not be sent: it counts as lost, and as a send
    /// error.
    pub fn send_failed(&mut self, seq: u64) {
        self.send_errors += 1;
        self.lose(seq);
    }

    /// The peer refused a datagram (ICMP port unreachable): counted; the
    /// datagram times out as lost.
    pub fn refused(&mut self) {
        self.refused += 1;
    }

    fn lose(&mut self, seq: u64) {
        if let Some(slot @ Slot::Out(_)) = self.slots.get_mut(seq as usize) {
            *slot = Slot::Lost;
            self.out -= 1;
            self.first_lost.get_or_insert(seq);
        }
    }

    /// An echo arrived at `now_ns`: checked byte for byte, then counted as
    /// a round trip, a duplicate, a late one (after its timeout) or corrupt.
    pub fn on_reply(&mut self, data: &[u8], now_ns: u64) {
        let seq = match payload::check(data, self.plan.size) {
            Ok(seq) if seq < self.sent() => seq,
            Ok(seq) => return self.corrupted(Corrupt::Sequence(seq)),
            Err(e) => return self.corrupted(e),
        };
        let slot = &mut self.slots[seq as usize];
        match *slot {
            Slot::Out(sent_ns) => {
                *slot = Slot::Back;
                self.out -= 1;
                self.rtts_ns.push(now_ns.saturating_sub(sent_ns));
                self.last_ns = self.last_ns.max(now_ns);
            }
            Slot::Back => self.duplicate += 1,
            Slot::Lost => self.late += 1,
        }
    }

    fn corrupted(&mut self, e: Corrupt) {
        self.corrupt += 1;
        self.first_corruption.get_or_insert(e);
    }

    /// Marks datagrams out for longer than the timeout as lost (freeing
    /// their room in the window).
    pub fn expire(&mut self, now_ns: u64) {
        while let Some(&seq) = self.queue.front() {
            match self.slots[seq as usize] {
                Slot::Out(sent) if now_ns.saturating_sub(sent) < self.plan.timeout_ns => break,
                Slot::Out(_) => self.lose(seq),
                Slot::Back | Slot::Lost => {}
            }
            self.queue.pop_front();
        }
    }

    /// Everything was sent and nothing is out any more.
    pub fn is_done(&self) -> bool {
        self.sent() >= self.plan.count && self.out == 0
    }

    /// Datagrams out now.
    pub fn outstanding(&self) -> u32 {
        self.out
    }

    /// When something next happens without a reply: the next datagram may
    /// leave (rate), or the oldest one out times out. `None` when neither.
    pub fn next_wake_ns(&self) -> Option<u64> {
        let send = (self.sent() < self.plan.count && self.out < self.plan.window)
            .then(|| self.slot_time(self.sent()));
        let expiry = self
            .queue
            .iter()
            .find_map(|&seq| match self.slots[seq as usize] {
                Slot::Out(sent) => Some(sent + self.plan.timeout_ns),
                _ => None,
            });
        match (send, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The round-trip times so far, in arrival order.
    pub fn rtts_ns(&self) -> &[u64] {
        &self.rtts_ns
    }

    /// The report of the run so far (its figures are final once
    /// [`is_done`](Self::is_done)); datagrams still out count as lost.
    pub fn report(&self) -> ClientReport {
        let received = self.rtts_ns.len() as u64;
        let still_out = self
            .queue
            .iter()
            .copied()
            .find(|&seq| matches!(self.slots[seq as usize], Slot::Out(_)));
        let mut report = ClientReport::new(
            self.sent(),
            received,
            self.corrupt,
            self.duplicate,
            self.late,
            self.send_errors,
            self.refused,
            self.last_ns.saturating_sub(self.start_ns),
            self.rtts_ns.clone(),
            self.first_corruption,
        );
        report.first_lost = match (self.first_lost, still_out) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(count: u64, window: u32) -> Plan {
        Plan {
            count,
            size: 32,
            window,
            rate: None,
            timeout_ns: 1_000,
        }
    }

    #[test]
    fn the_window_bounds_what_is_out_and_replies_free_it() {
        let mut s = Session::new(plan(5, 2), 0);
        let mut d = [[0u8; 32]; 5];
        assert_eq!(s.next_send(1, &mut d[0]), Some(0));
        assert_eq!(s.next_send(1, &mut d[1]), Some(1));
        assert_eq!(s.next_send(1, &mut d[2]), None);
        s.on_reply(&d[1], 5);
        assert_eq!(s.next_send(6, &mut d[2]), Some(2));
        s.on_reply(&d[0], 7);
        s.on_reply(&d[2], 9);
        assert_eq!(s.rtts_ns(), &[4, 6, 3]);
        assert!(!s.is_done());
        for (i, buf) in d.iter_mut().enumerate().skip(3) {
            assert_eq!(s.next_send(10, buf), Some(i as u64));
            s.on_reply(buf, 12);
        }
        assert!(s.is_done());
        let r = s.report();
        assert_eq!((r.sent, r.received, r.lost), (5, 5, 0));
        assert_eq!(r.elapsed_ns, 12);
    }

    #[test]
    fn timeouts_lose_datagrams_and_late_or_repeated_echoes_are_told_apart() {
        let mut s = Session::new(plan(3, 3), 0);
        let mut d = [[0u8; 32]; 3];
        for (i, buf) in d.iter_mut().enumerate() {
            assert_eq!(s.next_send(i as u64, buf), Some(i as u64));
        }
        s.on_reply(&d[0], 100);
        s.on_reply(&d[0], 101);
        assert_eq!(s.next_wake_ns(), Some(1_001), "datagram 1 times out");
        s.expire(1_001);
        assert_eq!(s.outstanding(), 1);
        s.on_reply(&d[1], 1_500);
        s.expire(2_002);
        assert!(s.is_done());
        let r = s.report();
        assert_eq!((r.sent, r.received, r.lost), (3, 1, 2));
        assert_eq!((r.duplicate, r.late, r.corrupt), (1, 1, 0));
        assert_eq!(r.first_lost, Some(1));
    }

    #[test]
    fn corrupt_echoes_are_counted_and_the_first_is_kept() {
        let mut s = Session::new(plan(2, 2), 0);
        let mut d = [0u8; 32];
        s.next_send(0, &mut d);
        let mut bad = d;
        bad[20] ^= 1;
        s.on_reply(&bad, 1);
        s.on_reply(&d[..31], 1);
        let mut unsent = [0u8; 32];
        payload::fill(9, &mut unsent);
        s.on_reply(&unsent, 1);
        let r = s.report();
        assert_eq!(r.corrupt, 3);
        assert_eq!(r.received, 0);
        assert_eq!(r.first_corruption, Some(Corrupt::Byte { seq: 0, at: 20 }));
    }

    #[test]
    fn the_rate_spaces_the_sends() {
        let mut s = Session::new(
            Plan {
                rate: Some(1000.0),
                ..plan(3, 8)
            },
            5_000,
        );
        let mut d = [0u8; 32];
        assert_eq!(s.next_send(5_000, &mut d), Some(0));
        assert_eq!(s.next_send(5_001, &mut d), None);
        assert_eq!(s.next_wake_ns(), Some(6_000), "datagram 0 times out first");
        assert_eq!(s.next_send(1_005_000, &mut d), Some(1));
        s.unsend(0);
        assert_eq!(s.outstanding(), 2, "only the last one can be taken back");
        s.unsend(1);
        assert_eq!(s.outstanding(), 1);
        assert_eq!(s.next_send(1_005_000, &mut d), Some(1));
        s.send_failed(1);
        let r = s.report();
        assert_eq!((r.send_errors, r.lost), (1, 2), "failed, and 0 still out");
    }
}
