//! The timers: retransmission (RFC 6298 §5), delayed ACK (RFC 9293
//! §3.8.6.3), persist (RFC 9293 §3.8.6.1), keepalive (RFC 9293 §3.8.4),
//! TIME_WAIT (RFC 9293 §3.10.7.4) and an orphan's FIN_WAIT_2 limit.

use tpa::buf::PacketBuf;

use super::super::cc::CongestionControl;
use super::{Connection, State};

impl<B: PacketBuf> Connection<B> {
    /// The earliest deadline among the running timers.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let mut conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// conn.poll_transmit(0).unwrap();
    /// assert_eq!(conn.next_deadline(), Some(1_000_000_000)); // RFC 6298 §2.1: 1 s
    /// ```
    #[inline(always)]
    pub fn next_deadline(&self) -> Option<u64> {
        let t = &self.timers;
        // This runs after every segment: a chain of `min`s over plain
        // integers (a stopped timer is the greatest).
        t.rto
            .min(t.delayed_ack)
            .min(t.persist)
            .min(t.keepalive)
            .min(t.linger)
            .min(self.rack_deadline())
            .get()
    }

    /// [`next_deadline`](Self::next_deadline) of an ESTABLISHED
    /// connection: the linger timer runs only in FIN_WAIT_2 and
    /// TIME_WAIT (and a connection never comes back), so it is left out
    /// of the `min`s.
    #[inline(always)]
    pub(crate) fn next_deadline_established(&self) -> Option<u64> {
        let t = &self.timers;
        #[cfg(any(test, debug_assertions))]
        assert!(
            self.state == State::Established && t.linger.is_stopped(),
            "an ESTABLISHED connection, no linger"
        );
        t.rto
            .min(t.delayed_ack)
            .min(t.persist)
            .min(t.keepalive)
            .min(self.rack_deadline())
            .get()
    }

    /// Runs every timer due at `now_ns`; what they send comes out of
    /// [`poll_transmit`](Connection::poll_transmit).
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(1), ts_offset: 0 };
    /// let mut conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// conn.poll_transmit(0).unwrap();
    /// conn.on_timer(1_000_000_000);
    /// assert!(conn.poll_transmit(1_000_000_000).unwrap().flags.syn(), "the SYN again");
    /// assert_eq!(conn.next_deadline(), Some(3_000_000_000), "backed off to 2 s");
    /// ```
    pub fn on_timer(&mut self, now_ns: u64) {
        self.clock_ns = self.clock_ns.max(now_ns);
        self.fire_timers(now_ns);
        self.trace_changes(now_ns);
    }

    /// The timers due at `now_ns`, in order.
    fn fire_timers(&mut self, now_ns: u64) {
        if self.timers.linger.is_due(now_ns) {
            self.timers.linger = Deadline::STOPPED;
            if matches!(self.state, State::TimeWait | State::FinWait2) {
                self.enter_closed(None);
                return;
            }
        }
        if self.timers.rto.is_due(now_ns) {
            self.timers.rto = Deadline::STOPPED;
            self.on_rto_timeout(now_ns);
            if self.state == State::Closed {
                return;
            }
        }
        self.rack_on_timer(now_ns);
        if self.timers.delayed_ack.is_due(now_ns) {
            self.timers.delayed_ack = Deadline::STOPPED;
            self.pending.ack_now = true;
        }
        if self.timers.persist.is_due(now_ns) {
            self.timers.persist = Deadline::STOPPED;
            if self.probes_unanswered > self.knobs.data_retries {
                // Nobody answers the probes: the peer is gone.
                self.timed_out();
                return;
            }
            self.probes_unanswered += 1;
            self.pending.window_probe = true;
            self.note_output_rare();
            self.persist_backoff = self.persist_backoff.saturating_add(1);
        }
        if self.timers.keepalive.is_due(now_ns) {
            self.timers.keepalive = Deadline::STOPPED;
            self.on_keepalive_timeout(now_ns);
            if self.state == State::Closed {
                return;
            }
        }
        self.update_persist(now_ns);
    }

    /// The retransmission timer fired (RFC 6298 §5.4–5.6).
    fn on_rto_timeout(&mut self, now_ns: u64) {
        let (limit, in_handshake) = match self.state {
            State::SynSent | State::SynReceived => (self.knobs.syn_retries, true),
            _ => (self.knobs.data_retries, false),
        };
        if self.snd_una == self.snd_max && !in_handshake {
            return; // nothing outstanding
        }
        // A peer that shrank its window to zero under data in flight: the
        // retransmission becomes a window probe and does not count toward
        // the timeout (Linux does the same; our own receiver never shrinks).
        let shrunk = !in_handshake && self.snd_wnd == 0;
        if self.retries >= limit && !shrunk {
            self.timed_out();
            return;
        }
        if shrunk {
            self.rto.on_timeout();
            self.send_queue.rewind();
            self.pending.window_probe = true;
            self.note_output_rare();
            self.timers.rto = Deadline::at(now_ns + self.rto.rto_ns());
            return;
        }
        self.retries += 1;
        self.note_rare();
        self.rto.on_timeout();
        self.rtt_timed = None;
        self.stats.lost += 1;
        self.trace_rto(now_ns);
        if in_handshake {
            self.pending.syn = true;
        } else {
            self.frto_on_rto(now_ns);
            let flight = self.snd_max.wrapping_sub(self.snd_una);
            self.cc.on_rto(flight, now_ns);
            let keep_sacked = self.rack_on_rto();
            self.sack_on_rto(keep_sacked);
            self.recovery = None;
            self.dup_acks = 0;
            // Go back N: everything unacknowledged is sent again from the
            // oldest chunk, in slow start (the receiver keeps no
            // out-of-order data yet, so nothing after a hole survived).
            self.send_queue.rewind();
            // RFC 8985 §6.3: what the peer SACKed is not sent again.
            self.skip_sacked_resends();
            if !self.fin_acked {
                self.fin_sent = false;
            }
            self.pending.retransmit_front = false;
            // A window narrower than the oldest chunk (a window update
            // reordered behind a newer one can shrink it under a chunk in
            // flight): chunks are never split, so the retransmission
            // goes out as a window probe, whose data the receiver keeps
            // as far as it fits, and whose ACK brings the window.
            let head_fits = self
                .send_queue
                .next_unsent()
                .is_none_or(|c| c.end().wrapping_sub(self.snd_una) <= self.snd_wnd);
            if !head_fits {
                self.pending.window_probe = true;
                self.note_output_rare();
            }
        }
        // §5.5/§5.6: restart with the backed-off value.
        self.timers.rto = Deadline::at(now_ns + self.rto.rto_ns());
    }

    /// Keepalive (RFC 9293 §3.8.4): probe an idle connection; give up
    /// after the configured number of unanswered probes.
    fn on_keepalive_timeout(&mut self, now_ns: u64) {
        if !self.keepalive_state() {
            return;
        }
        if self.snd_una != self.snd_max {
            // Data outstanding: the retransmission timer watches the peer.
            self.arm_keepalive(now_ns);
            return;
        }
        if self.keepalive_sent >= self.knobs.keepalive_probes {
            self.timed_out();
            return;
        }
        self.keepalive_sent += 1;
        self.pending.keepalive_probe = true;
        self.note_output_rare();
        self.timers.keepalive = Deadline::at(now_ns + self.knobs.keepalive_interval_ns);
    }

    /// Whether keepalive watches the connection in its state: the
    /// synchronized states where the peer may owe us something while we
    /// owe nothing, FIN_WAIT_2 included (a half-closed socket waiting
    /// for a peer that vanished would wait forever; Linux probes there
    /// too).
    fn keepalive_state(&self) -> bool {
        matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait2
        )
    }

    /// (Re)starts the idle timer of keepalive, when it is on.
    pub(super) fn arm_keepalive(&mut self, now_ns: u64) {
        if self.knobs.keepalive && self.keepalive_state() {
            let wait = if self.keepalive_sent == 0 {
                self.knobs.keepalive_idle_ns
            } else {
                self.knobs.keepalive_interval_ns
            };
            self.timers.keepalive = Deadline::at(now_ns + wait);
        }
    }

    /// Starts the persist timer when data waits on a window too small for
    /// it with nothing in flight to bring a window update (RFC 9293
    /// §3.8.6.1); stops it once the window opens.
    ///
    /// The commonest case, data in flight or every queued byte inside the
    /// window, is inline: no chunk can be stalled then (each one left in
    /// the queue ends past SND.UNA and at or before the queue's end); the
    /// rest is out of line.
    #[inline]
    pub(super) fn update_persist(&mut self, now_ns: u64) {
        self.update_persist_with(self.snd_una == self.snd_max, now_ns);
    }

    /// [`update_persist`](Self::update_persist) where the caller knows
    /// whether SND.UNA = SND.MAX (`all_acked`).
    #[inline]
    pub(super) fn update_persist_with(&mut self, all_acked: bool, now_ns: u64) {
        debug_assert_eq!(all_acked, self.snd_una == self.snd_max);
        if !all_acked || self.send_queue.end().wrapping_sub(self.snd_una) <= self.snd_wnd {
            #[cfg(any(test, debug_assertions))]
            assert!(!self.persist_stalled(), "window open yet stalled");
            self.timers.persist = Deadline::STOPPED;
            self.persist_backoff = 0;
        } else {
            self.update_persist_slow(now_ns);
        }
    }

    /// [`update_persist`](Self::update_persist) when queued bytes reach
    /// past the window with nothing in flight.
    #[inline(never)]
    fn update_persist_slow(&mut self, now_ns: u64) {
        if !self.persist_stalled() {
            self.timers.persist = Deadline::STOPPED;
            self.persist_backoff = 0;
        } else if self.timers.persist.is_stopped() && !self.pending.window_probe {
            // Backed off like the RTO, up to its maximum.
            let wait = self
                .rto
                .rto_ns()
                .saturating_mul(1u64 << self.persist_backoff.min(20))
                .min(self.knobs.rto_max_ns);
            self.timers.persist = Deadline::at(now_ns + wait);
        }
    }

    /// Whether data waits on a window too small for it with nothing in
    /// flight.
    fn persist_stalled(&self) -> bool {
        self.sending_state()
            && self.snd_una == self.snd_max
            && self
                .send_queue
                .next_unsent()
                .is_some_and(|c| c.end().wrapping_sub(self.snd_una) > self.snd_wnd)
    }
}

/// When a timer falls due, in ns, or stopped: a plain integer, stopped
/// being `u64::MAX`, so the earliest of a connection's timers (asked
/// after every segment) is a chain of `min`s without a branch, and a
/// write is one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Deadline(u64);

impl Deadline {
    /// Not running.
    pub(super) const STOPPED: Deadline = Deadline(u64::MAX);

    /// Running, due at `ns` (a time no clock reaches, `u64::MAX`, is
    /// taken as the one before it).
    #[inline]
    pub(super) fn at(ns: u64) -> Self {
        Deadline(ns.min(u64::MAX - 1))
    }

    /// The deadline when running.
    #[inline]
    pub(super) fn get(self) -> Option<u64> {
        (self != Self::STOPPED).then_some(self.0)
    }

    /// Whether it runs.
    #[inline]
    pub(super) fn is_running(self) -> bool {
        self != Self::STOPPED
    }

    /// Whether it is stopped.
    #[inline]
    pub(super) fn is_stopped(self) -> bool {
        self == Self::STOPPED
    }

    /// Whether it runs and is due at `now_ns`.
    #[inline]
    pub(super) fn is_due(self, now_ns: u64) -> bool {
        self.is_running() && self.0 <= now_ns
    }

    /// The earlier of two (stopped when both are).
    #[inline]
    pub(super) fn min(self, other: Deadline) -> Deadline {
        Deadline(self.0.min(other.0))
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Self::STOPPED
    }
}
