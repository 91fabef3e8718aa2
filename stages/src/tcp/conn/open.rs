//! The handshakes (RFC 9293 §3.5): active open, passive open, simultaneous
//! open, and the option negotiation each SYN carries.

use tpa::app::SocketError;
use tpa::buf::PacketBuf;
use tpa::wire::tcp::TcpOptionSet;

use super::super::config::TcpConfig;
use super::super::reassembly::ReassemblyQueue;
use super::super::rto::RtoEstimator;
use super::super::segment::SegmentIn;
use super::super::seq::SeqNumber;
use super::super::syncookie::CookieSyn;
use super::super::wire::SegmentShape;
use super::receive_queue::ReceiveQueue;
use super::send_queue::SendQueue;
use super::timers::Deadline;
use super::{ConnParams, Connection, Knobs, Negotiated, Pending, State, Timers};
use tpa::wire::tcp::TcpFlags;

/// The MSS assumed when the peer sends none (RFC 9293 §3.7.1: 536 for
/// IPv4; IPv6's 1220 is larger, so 536 is safe for both).
pub(super) const DEFAULT_MSS: u16 = 536;

/// The smallest MSS we send with whatever the peer announces (Linux
/// `tcp_min_snd_mss`: 48), so a tiny MSS cannot make segments empty.
pub(crate) const MIN_SND_MSS: u16 = 48;

/// The largest window shift (RFC 7323 §2.3).
pub(super) const MAX_WSCALE: u8 = 14;

/// The smallest shift that fits `bytes` into the 16-bit window field
/// (RFC 7323 §2.2), at most 14: 0 for 65535, 4 for 512 KiB.
pub(crate) fn wscale_for(bytes: usize) -> u8 {
    let mut shift = 0u8;
    while shift < MAX_WSCALE && (bytes >> shift) > usize::from(u16::MAX) {
        shift += 1;
    }
    shift
}

impl<B: PacketBuf> Connection<B> {
    /// A connection before its first segment: our half of the options
    /// offered, nothing agreed yet. Inline, so [`accept`](Self::accept)
    /// builds the engine in its own result rather than copying it there.
    #[inline]
    fn fresh(cfg: &TcpConfig, params: ConnParams, state: State, now_ns: u64) -> Self {
        let our_mss = params.mss.max(MIN_SND_MSS);
        let mut neg = Negotiated {
            our_mss,
            snd_mss: our_mss.min(DEFAULT_MSS),
            path_mss: our_mss,
            snd_wscale: 0,
            rcv_wscale: 0,
            offer_wscale: cfg
                .window_scale
                .then(|| wscale_for(cfg.receive_queue_bytes)),
            offer_ts: cfg.timestamps,
            offer_sack: cfg.sack,
            ts: false,
            sack: false,
            rack: false,
            snd_payload: 0,
            rcv_payload: 0,
            rcv_wnd_max: 0,
            rcv_wnd_step: 0,
        };
        neg.refresh_payload_max();
        neg.refresh_window_limits(cfg.receive_queue_bytes);
        let knobs = Knobs {
            nodelay: cfg.nodelay,
            delayed_ack: cfg.delayed_ack,
            delayed_ack_ns: cfg.delayed_ack_ns,
            syn_retries: cfg.syn_retries,
            data_retries: cfg.data_retries,
            keepalive: cfg.keepalive,
            keepalive_idle_ns: cfg.keepalive_idle_ns,
            keepalive_interval_ns: cfg.keepalive_interval_ns,
            keepalive_probes: cfg.keepalive_probes,
            time_wait_ns: cfg.time_wait_ns,
            rto_max_ns: cfg.rto_max_ns,
            max_cwnd: cfg.max_cwnd_bytes.max(u32::from(our_mss)),
            initial_cwnd_segments: cfg.initial_cwnd_segments,
            frto: cfg.frto,
            cwnd_validation: cfg.cwnd_validation,
            slow_start_after_idle: cfg.slow_start_after_idle,
            rack: cfg.rack,
            header_prediction: true,
        };
        let iss = params.iss;
        Connection {
            state,
            knobs,
            neg,
            ts_offset: params.ts_offset,
            ts_recent: 0,
            ts_recent_ns: now_ns,
            last_ack_sent: SeqNumber::new(0),
            iss,
            snd_una: iss,
            snd_max: iss,
            probe_end: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNumber::new(0),
            snd_wl2: iss,
            send_queue: SendQueue::new(iss + 1, cfg.send_queue_bytes),
            fin_requested: false,
            fin_sent: false,
            fin_acked: false,
            irs: SeqNumber::new(0),
            rcv_nxt: SeqNumber::new(0),
            rcv_adv: SeqNumber::new(0),
            receive_queue: ReceiveQueue::new(cfg.receive_queue_bytes),
            reassembly: ReassemblyQueue::new(cfg.receive_queue_bytes, cfg.ooo_max_segments),
            ooo_fin: None,
            dsacks: super::dsack::DsackQueue::default(),
            unacked_bytes: 0,
            sack: None,
            recovery: None,
            frto: None,
            cwv: super::cwv::Cwv::new(iss),
            rack: None,
            rto: RtoEstimator::new(cfg.rto()),
            cc: cfg
                .congestion
                .controller_with(cfg.cc_limits(u32::from(neg.snd_mss))),
            dup_acks: 0,
            retries: 0,
            plain: true,
            // Prediction on, plain, no FIN asked for, no timestamps
            // agreed yet.
            predict_shape: SegmentShape::predictable(false),
            output_rare: false,
            rtt_timed: None,
            persist_backoff: 0,
            probes_unanswered: 0,
            keepalive_sent: 0,
            timers: Timers::default(),
            pending: Pending {
                syn: true,
                ..Pending::default()
            },
            events: Default::default(),
            error: None,
            soft_error: None,
            app_closed: false,
            write_blocked: false,
            was_established: false,
            active_open: state == State::SynSent,
            last_oow_ack_ns: None,
            stats: super::info::Counters::default(),
            clock_ns: now_ns,
            latency: cfg
                .measure_latency
                .then(|| Box::new(super::SocketLatency::default())),
            trace: None,
        }
    }

    /// An active open: SYN_SENT with the SYN queued for
    /// [`poll_transmit`](Connection::poll_transmit) (RFC 9293 §3.10.1).
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa::wire::tcp::TcpFlags;
    /// use tpa_stages::tcp::conn::{ConnParams, Connection, State};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(100), ts_offset: 0 };
    /// let mut conn = Connection::<PoolBuf>::connect(&TcpConfig::default(), params, 0);
    /// let syn = conn.poll_transmit(0).unwrap();
    /// assert_eq!((syn.flags, syn.seq, syn.options.mss), (TcpFlags::SYN, SeqNumber::new(100), Some(1460)));
    /// assert!(conn.poll_transmit(0).is_none());
    /// ```
    pub fn connect(cfg: &TcpConfig, params: ConnParams, now_ns: u64) -> Self {
        Self::fresh(cfg, params, State::SynSent, now_ns)
    }

    /// A passive open from a listener's SYN: SYN_RECEIVED with the SYN-ACK
    /// queued (RFC 9293 §3.10.7.2). The options agreed are those both
    /// sides offered.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa::wire::tcp::{TcpFlags, TcpOptionSet};
    /// use tpa_stages::tcp::conn::{ConnParams, Connection, State};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::segment::SegmentIn;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// let syn: SegmentIn<PoolBuf> = SegmentIn {
    ///     seq: SeqNumber::new(7), ack: SeqNumber::new(0), flags: TcpFlags::SYN, window: 1000,
    ///     options: TcpOptionSet { mss: Some(1000), ..TcpOptionSet::default() }, payload: None,
    /// };
    /// let params = ConnParams { mss: 1460, iss: SeqNumber::new(100), ts_offset: 0 };
    /// let mut conn = Connection::accept(&TcpConfig::default(), params, &syn, 0);
    /// let syn_ack = conn.poll_transmit(0).unwrap();
    /// assert_eq!((syn_ack.flags, syn_ack.ack), (TcpFlags::SYN | TcpFlags::ACK, SeqNumber::new(8)));
    /// assert_eq!(syn_ack.options.window_scale, None, "the peer offered none");
    /// assert_eq!(conn.info().snd_mss, 1000);
    /// ```
    pub fn accept(cfg: &TcpConfig, params: ConnParams, syn: &SegmentIn<B>, now_ns: u64) -> Self {
        let mut conn = Self::fresh(cfg, params, State::SynReceived, now_ns);
        conn.take_peer_syn(syn, now_ns);
        conn
    }

    /// A passive open completed by a SYN cookie's ACK (`ack`, checked by
    /// the caller: [`SynCookies::check`](super::super::syncookie::SynCookies::check)
    /// gave `cookie`): the SYN-ACK went out without state, so the
    /// connection is rebuilt as [`accept`](Self::accept) would have built
    /// it from the peer's SYN (`params.iss` must be `cookie.iss`), then
    /// takes `ack` (and any data on it) and is ESTABLISHED.
    ///
    /// The SYN-ACK's send time is unknown, so the handshake gives no RTT
    /// sample (its TSecr is ignored for that): the RTO stays at its
    /// initial value until data is acknowledged.
    ///
    /// ```
    /// use tpa::buf::PoolBuf;
    /// use tpa::wire::tcp::{TcpFlags, TcpOptionSet};
    /// use tpa_stages::tcp::conn::{ConnParams, Connection, State};
    /// use tpa_stages::tcp::config::TcpConfig;
    /// use tpa_stages::tcp::segment::SegmentIn;
    /// use tpa_stages::tcp::seq::SeqNumber;
    /// use tpa_stages::tcp::syncookie::{CookieOptions, CookieSyn};
    /// let cookie = CookieSyn {
    ///     peer_isn: SeqNumber::new(7), iss: SeqNumber::new(100),
    ///     peer_mss: 1220, options: CookieOptions::default(),
    /// };
    /// let ack: SegmentIn<PoolBuf> = SegmentIn {
    ///     seq: SeqNumber::new(8), ack: SeqNumber::new(101), flags: TcpFlags::ACK,
    ///     window: 1000, options: TcpOptionSet::default(), payload: None,
    /// };
    /// let params = ConnParams { mss: 1460, iss: cookie.iss, ts_offset: 0 };
    /// let conn = Connection::from_cookie(&TcpConfig::default(), params, &cookie, ack, 0);
    /// assert_eq!(conn.state(), State::Established);
    /// assert_eq!(conn.info().snd_mss, 1220);
    /// ```
    pub fn from_cookie(
        cfg: &TcpConfig,
        params: ConnParams,
        cookie: &CookieSyn,
        mut ack: SegmentIn<B>,
        now_ns: u64,
    ) -> Self {
        let opts = cookie.options;
        let peer_tsval = ack
            .options
            .timestamps
            .filter(|_| opts.timestamps)
            .map(|(tsval, _)| (tsval, 0));
        let syn = SegmentIn {
            seq: cookie.peer_isn,
            ack: SeqNumber::new(0),
            flags: TcpFlags::SYN,
            window: ack.window,
            options: TcpOptionSet {
                mss: Some(cookie.peer_mss),
                window_scale: opts.window_scale,
                sack_permitted: opts.sack,
                sack: None,
                timestamps: peer_tsval,
            },
            payload: None,
        };
        let mut conn = Self::accept(cfg, params, &syn, now_ns);
        // The SYN-ACK is out: what `syn_segment` would have recorded.
        conn.pending.syn = false;
        conn.snd_max = conn.iss + 1;
        conn.last_ack_sent = conn.rcv_nxt;
        if let Some((_, tsecr)) = ack.options.timestamps.as_mut() {
            *tsecr = 0; // no RTT sample from an unknown send time
        }
        conn.on_segment(ack, now_ns);
        conn
    }

    /// Records the peer's SYN: its sequence numbers, window and options
    /// (RFC 9293 §3.10.7.2 / §3.10.7.3 fourth step).
    pub(super) fn take_peer_syn(&mut self, syn: &SegmentIn<B>, now_ns: u64) {
        self.irs = syn.seq;
        self.rcv_nxt = syn.seq + 1;
        // Our SYN (if it went first) announced this much, unscaled.
        self.rcv_adv = self.rcv_nxt + self.syn_window();
        self.negotiate(&syn.options, now_ns);
        // RFC 7323 §2.2: the window of a SYN is never scaled.
        self.snd_wnd = u32::from(syn.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = syn.seq;
        self.snd_wl2 = syn.ack;
    }

    /// Agrees on each option: on only when we offered it and the peer's
    /// SYN carries it.
    fn negotiate(&mut self, peer: &TcpOptionSet, now_ns: u64) {
        let neg = &mut self.neg;
        let peer_mss = peer.mss.unwrap_or(DEFAULT_MSS).max(MIN_SND_MSS);
        neg.snd_mss = peer_mss.min(neg.our_mss).min(neg.path_mss);
        // RFC 7323 §2.2: scaling is on only when both SYNs carry the option.
        match (neg.offer_wscale, peer.window_scale) {
            (Some(ours), Some(theirs)) => {
                neg.rcv_wscale = ours;
                // RFC 7323 §2.3: a shift above 14 is taken as 14.
                neg.snd_wscale = theirs.min(MAX_WSCALE);
            }
            _ => {
                neg.offer_wscale = None;
                neg.rcv_wscale = 0;
                neg.snd_wscale = 0;
            }
        }
        // RFC 7323 §3.2: timestamps only when both SYNs carry them.
        neg.ts = neg.offer_ts && peer.timestamps.is_some();
        neg.offer_ts = neg.ts;
        if let (true, Some((tsval, _))) = (neg.ts, peer.timestamps) {
            self.ts_recent = tsval;
            self.ts_recent_ns = now_ns;
        }
        // RFC 2018 §2: SACK only when both SYNs permit it.
        neg.sack = neg.offer_sack && peer.sack_permitted;
        neg.offer_sack = neg.sack;
        neg.rack = self.knobs.rack && neg.sack;
        neg.refresh_payload_max();
        neg.refresh_window_limits(self.receive_queue.capacity());
        self.refresh_predicting();
        // The controller counts in full segments' payload: the effective
        // MSS (RFC 5681's SMSS excludes options; Linux's mss_cache, 1448
        // with timestamps on a 1460 MSS), so 10 segments fill IW exactly.
        self.cc = self.knobs_congestion(self.neg.payload_max() as u32);
    }

    /// A fresh controller for the agreed MSS, of the kind the current one
    /// is, with the configured initial window and ceiling.
    fn knobs_congestion(&self, mss: u32) -> super::super::cc::Cc {
        use super::super::cc::{Cc, CcLimits};
        let limits = CcLimits::new(mss, self.knobs.initial_cwnd_segments, self.knobs.max_cwnd);
        match self.cc {
            Cc::NewReno(_) => Cc::newreno_with(limits),
            Cc::Cubic(_) => Cc::cubic_with(limits),
        }
    }

    /// A segment in SYN_SENT (RFC 9293 §3.10.7.3).
    pub(super) fn on_segment_syn_sent(&mut self, seg: SegmentIn<B>, now_ns: u64) {
        let flags = seg.flags;
        // First: the ACK, acceptable only for our SYN.
        let ack_ok = flags.ack() && seg.ack.is_between(self.iss + 1, self.snd_max + 1);
        if flags.ack() && !ack_ok {
            if !flags.rst() {
                self.pending.rst = Some((seg.ack, None));
                self.note_output_rare();
            }
            self.stats.dropped += 1;
            return;
        }
        // Second: RST, believed only with an acceptable ACK.
        if flags.rst() {
            if ack_ok {
                self.enter_closed(Some(SocketError::ConnectionRefused));
            } else {
                self.stats.dropped += 1;
            }
            return;
        }
        // Fourth: SYN.
        if !flags.syn() {
            self.stats.dropped += 1;
            return;
        }
        self.take_peer_syn(&seg, now_ns);
        if ack_ok {
            self.snd_una = seg.ack;
            self.pending.syn = false;
            if self.neg.ts {
                if let Some((_, tsecr)) = seg.options.timestamps {
                    self.rtt_from_tsecr(tsecr, now_ns);
                }
            } else {
                self.rtt_from_timed(seg.ack, now_ns);
            }
            self.retries = 0;
            self.timers.rto = Deadline::STOPPED;
            self.establish(now_ns);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            // Data on a SYN-ACK is rare; it is taken as any in-order data
            // (RFC 9293 §3.10.7.3: "continue processing at the sixth step").
            if seg.payload.is_some() || flags.fin() {
                let mut rest = seg;
                rest.seq += 1;
                rest.flags =
                    tpa::wire::tcp::TcpFlags(rest.flags.0 & !tpa::wire::tcp::TcpFlags::SYN.0);
                self.process_text_and_fin(rest, now_ns);
            }
            self.pending.ack_now = true;
        } else {
            // Simultaneous open (RFC 9293 §3.5 figure 8): SYN-ACK our SYN.
            self.state = State::SynReceived;
            self.pending.syn = true;
            self.timers.rto = Deadline::STOPPED;
        }
    }

    /// ESTABLISHED: the handshake is done.
    pub(super) fn establish(&mut self, now_ns: u64) {
        self.state = State::Established;
        self.was_established = true;
        self.soft_error = None;
        self.events.set_connected();
        self.events.set_writable();
        self.arm_keepalive(now_ns);
        if self.fin_requested {
            self.state = State::FinWait1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_shift_is_the_smallest_that_fits() {
        assert_eq!(wscale_for(0), 0);
        assert_eq!(wscale_for(65535), 0);
        assert_eq!(wscale_for(65536), 1);
        assert_eq!(wscale_for(512 * 1024), 4);
        assert_eq!(wscale_for(usize::MAX), MAX_WSCALE);
    }
}
