//! Congestion window validation (RFC 7661) and the restart after idle
//! (RFC 5681 §4.1).
//!
//! cwnd is a measure of what the path took recently; a window the sender
//! does not use measures nothing. Three rules, each what Linux does:
//!
//! - **Growth only when validated** (RFC 7661 §4.3; Linux's
//!   `tcp_is_cwnd_limited`): an ACK grows cwnd only while the most bytes
//!   in flight over the last two rounds (the measure of RFC 7661's
//!   pipeACK Linux takes, `max_packets_out`) reach half of cwnd. A
//!   request-response exchange or a sender held by the peer's window no
//!   longer inflates a window it never tried.
//! - **Decay while application-limited** (RFC 7661 §4.4's reduction at
//!   the end of the non-validated phase, with RFC 2861's and Linux's
//!   period, one retransmission timeout, rather than RFC 7661's five
//!   minutes: `tcp_cwnd_application_limited`): after a timeout's worth of
//!   rounds each using less than half of cwnd, ssthresh keeps at least
//!   three quarters of cwnd and cwnd falls halfway to what was used (at
//!   least the initial window), once per timeout.
//! - **Restart after idle** (RFC 5681 §4.1, RFC 7661 §4.4; Linux's
//!   `tcp_slow_start_after_idle` and `tcp_cwnd_restart`): data sent with
//!   nothing unacknowledged after more than a timeout of silence finds cwnd
//!   halved per timeout idle, down to min(initial window, cwnd), and
//!   ssthresh at least three quarters of the old cwnd, so the flight
//!   slow-starts back instead of bursting a stale window.
//!
//! Knobs: `cwnd_validation` (the first two), `slow_start_after_idle` (the
//! third).

use tpa::buf::PacketBuf;

use super::super::cc::{initial_window_segments, CongestionControl};
use super::super::seq::SeqNumber;
use super::Connection;

/// What validation tracks of the window's use.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Cwv {
    /// The most bytes in flight during the current round.
    max_flight: u32,
    /// The same for the previous round.
    prev_max_flight: u32,
    /// The round ends when SND.UNA reaches this (SND.MAX when it began).
    round_end: SeqNumber,
    /// When the last data segment went out (0: never).
    last_send_ns: u64,
    /// Since when every round left cwnd half unused (0: validated).
    unvalidated_since_ns: u64,
}

impl Cwv {
    /// Nothing sent yet; the first round ends at `iss`.
    pub(super) fn new(iss: SeqNumber) -> Self {
        Cwv {
            round_end: iss,
            ..Cwv::default()
        }
    }
}

/// Whether `used` bytes reach half of `cwnd` (`2 × used ≥ cwnd`, doubled
/// in 64 bits: no overflow to test).
#[inline(always)]
fn at_least_half(used: u32, cwnd: u32) -> bool {
    u64::from(used) * 2 >= u64::from(cwnd)
}

impl<B: PacketBuf> Connection<B> {
    /// The bytes in flight the last two rounds reached at most.
    fn window_used(&self) -> u32 {
        self.cwv.max_flight.max(self.cwv.prev_max_flight)
    }

    /// Whether an ACK may grow cwnd (RFC 7661 §4.3: in the validated
    /// phase, pipeACK ≥ ½ cwnd). Always during recovery (`in_recovery`,
    /// the controller's, which the caller may know without looking): the
    /// controller handles its own window there.
    pub(super) fn cwnd_may_grow(&self, in_recovery: bool) -> bool {
        debug_assert_eq!(in_recovery, self.cc.in_recovery());
        !self.knobs.cwnd_validation
            || in_recovery
            || at_least_half(self.window_used(), self.cc.cwnd())
    }

    /// The initial window for this connection's segments.
    fn restart_window(&self) -> u32 {
        initial_window_segments(
            self.neg.payload_max() as u32,
            self.knobs.initial_cwnd_segments,
        )
    }

    /// A data segment is about to go out: the restart after idle (RFC
    /// 5681 §4.1) when nothing is unacknowledged (a retransmission after
    /// a timeout is no restart).
    pub(super) fn cwv_before_send(&mut self, now_ns: u64) {
        let idle = now_ns.saturating_sub(self.cwv.last_send_ns);
        let rto = self.rto.rto_ns().max(1);
        if self.knobs.slow_start_after_idle
            && self.cwv.last_send_ns != 0
            && self.snd_una == self.snd_max
            && idle > rto
            && !self.cc.in_recovery()
        {
            // Linux's tcp_cwnd_restart: halve per RTO idle, down to the
            // restart window.
            let restart = self.restart_window().min(self.cc.cwnd());
            let mut cwnd = self.cc.cwnd();
            let mut left = idle;
            while left > rto && cwnd > restart {
                cwnd /= 2;
                left -= rto;
            }
            let cwnd = cwnd.max(restart);
            if cwnd < self.cc.cwnd() {
                self.cc.reduce_unused(cwnd);
                self.stats.cwnd_unused_reductions += 1;
            }
            self.cwv.max_flight = 0;
            self.cwv.prev_max_flight = 0;
            self.cwv.unvalidated_since_ns = 0;
        }
        self.cwv.last_send_ns = now_ns.max(1);
    }

    /// A data segment went out: the round's flight.
    pub(super) fn cwv_after_send(&mut self) {
        self.cwv.max_flight = self.cwv.max_flight.max(self.flight());
    }

    /// [`cwv_after_send`](Self::cwv_after_send) after a segment ending
    /// at `end` where the next transmission starts (the straight path's
    /// chunk: the next chunk starts there, or the queue ends there with
    /// the FIN sent along): the flight is `end` less SND.UNA.
    #[inline(always)]
    pub(super) fn cwv_after_send_ending(&mut self, end: SeqNumber) {
        #[cfg(any(test, debug_assertions))]
        assert_eq!(
            end,
            self.snd_nxt(),
            "the next transmission starts at the end"
        );
        let flight = if end.gt(self.snd_una) {
            end.wrapping_sub(self.snd_una)
        } else {
            0
        };
        self.cwv.max_flight = self.cwv.max_flight.max(flight);
    }

    /// SND.UNA advanced: a round ends when it passes the round's end;
    /// a timeout's worth of half-unused rounds shrinks cwnd (RFC 7661
    /// §4.4, as Linux's `tcp_cwnd_application_limited`). `in_recovery`
    /// (the controller's) and `all_acked` (SND.UNA = SND.MAX): what the
    /// caller may know without looking.
    #[inline(always)]
    pub(super) fn cwv_on_ack(&mut self, in_recovery: bool, all_acked: bool, now_ns: u64) {
        debug_assert_eq!(in_recovery, self.cc.in_recovery());
        debug_assert_eq!(all_acked, self.snd_una == self.snd_max);
        let flight = if all_acked {
            // Everything sent is acknowledged (every request-response
            // ACK): the round ends (its end is at most SND.MAX) and
            // nothing is in flight (SND.NXT never passes SND.MAX).
            #[cfg(any(test, debug_assertions))]
            assert!(
                self.snd_una.ge(self.cwv.round_end)
                    && self.snd_nxt().le(self.snd_max)
                    && self.flight() == 0
            );
            0
        } else if self.snd_una.ge(self.cwv.round_end) {
            self.flight()
        } else {
            return;
        };
        let prev_max_flight = self.cwv.max_flight;
        self.cwv.prev_max_flight = prev_max_flight;
        self.cwv.max_flight = flight;
        self.cwv.round_end = self.snd_max;
        if !self.knobs.cwnd_validation || in_recovery {
            return;
        }
        let used = flight.max(prev_max_flight);
        if at_least_half(used, self.cc.cwnd()) {
            self.cwv.unvalidated_since_ns = 0;
            return;
        }
        if self.cwv.unvalidated_since_ns == 0 {
            self.cwv.unvalidated_since_ns = now_ns.max(1);
            return;
        }
        if now_ns.saturating_sub(self.cwv.unvalidated_since_ns) >= self.rto.rto_ns() {
            let floor = used.max(self.restart_window());
            let cwnd = self.cc.cwnd();
            if floor < cwnd {
                self.cc.reduce_unused(cwnd - (cwnd - floor) / 2);
                self.stats.cwnd_unused_reductions += 1;
            }
            self.cwv.unvalidated_since_ns = now_ns.max(1);
        }
    }
}
