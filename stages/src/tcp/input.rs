//! The TCP input stage: a segment to its connection, a SYN to its
//! listener, anything else answered with a reset; and, in the stage's
//! poll and timers, the connections' output.

use core::convert::Infallible;

use tpa::app::Events;
use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::state::Part;

use super::mss::mss_for;
use super::reset::{reset_for, ResetConfig, ResetLimiter};
use super::sockets::Spawn;
use super::syncookie::CookieError;
use super::wire::{self, send_segment, Received};
use super::{output, TcpSockets};
use crate::egress::Egress;
use crate::packet::TcpPacket;

/// A SYN found its listener's backlog full (half-open plus unaccepted
/// connections at the bound): dropped, the peer retries.
pub const BACKLOG_FULL: Reason = Reason::custom(1);
/// A SYN found the socket table at `max_sockets`.
pub const TABLE_FULL: Reason = Reason::custom(2);
/// An ACK to a listener carried a genuine SYN cookie past its lifetime
/// (answered as any stray ACK: a reset, rate-limited).
pub const COOKIE_EXPIRED: Reason = Reason::custom(3);
/// An ACK to a listener that sent cookies recently carried none of ours
/// (answered as any stray ACK: a reset, rate-limited).
pub const COOKIE_INVALID: Reason = Reason::custom(4);
/// A valid cookie's ACK found the listener's accept queue full: dropped,
/// the peer's next segment is checked again.
pub const ACCEPT_QUEUE_FULL: Reason = Reason::custom(5);

/// What [`TcpInput`] did besides its verdicts (which the pipeline counts
/// by reason).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpInputCounters {
    /// Segments handed to a connection.
    pub delivered: u64,
    /// SYNs that opened a connection on a listener.
    pub syns_accepted: u64,
    /// ACKs that completed a handshake through a SYN cookie.
    pub cookies_accepted: u64,
    /// Resets sent for segments without a connection.
    pub resets_sent: u64,
    /// Resets not sent: over the rate limit, or switched off.
    pub resets_limited: u64,
    /// Resets not sent: no buffer, or egress refused.
    pub resets_failed: u64,
}

/// TCP input for IPv4 and IPv6: takes the [`TcpPacket`]s of an IP branch
/// (after [`TcpSplit`](super::TcpSplit)) and
///
/// - checks and parses them ([`wire::parse`]: `too-short`, `malformed`,
///   `bad-checksum`, `not-for-us`, `bad-options`);
/// - hands a segment whose 4-tuple has a connection to it (`Consumed`);
/// - opens a connection for a SYN to a listener (`Consumed`), unless the
///   listener's backlog is full ([`BACKLOG_FULL`]) or the table is
///   ([`TABLE_FULL`]); answers it with a SYN cookie instead (`Consumed`,
///   no state kept) when [`TcpConfig::syn_cookies`](super::config::TcpConfig::syn_cookies)
///   says so (`always`, or `on_overflow` with the backlog full);
/// - makes the connection from an ACK to a listener that carries one of
///   its cookies (`Consumed`), or drops it: [`COOKIE_EXPIRED`],
///   [`COOKIE_INVALID`] (both answered with a reset, as any ACK to a
///   listener), [`ACCEPT_QUEUE_FULL`] or [`TABLE_FULL`];
/// - answers anything else with a reset (RFC 9293 §3.10.7.1), at most
///   [`ResetConfig::rate`] a second, never for a reset (segments to a
///   group address or in a link-layer group's frame are dropped by the
///   parse as `not-for-us`): `no-socket` (or `unexpected` for a non-SYN
///   segment to a listener, which RFC 9293 §3.10.7.2 also resets).
///
/// A connection's events are raised as soon as it took a segment, so the
/// application sees them in the same loop iteration (the pipeline
/// delivers events after the stages' `process`); its
/// [`poll`](Stage::poll) sends what the connections have to send (once
/// per iteration: one ACK for a burst of segments) and raises the events
/// that sending and the application caused, its
/// [`fire_timers`](Stage::fire_timers) runs their timers; a pipeline with
/// two of them (IPv4 and IPv6 branches) shares one [`TcpSockets`] and the
/// second finds no work left.
#[derive(Debug, Clone)]
pub struct TcpInput {
    resets: ResetLimiter,
    counters: TcpInputCounters,
}

impl Default for TcpInput {
    fn default() -> Self {
        TcpInput::new(ResetConfig::default())
    }
}

impl TcpInput {
    /// An input stage answering segments without a connection as `resets`
    /// says.
    pub fn new(resets: ResetConfig) -> Self {
        TcpInput {
            resets: ResetLimiter::new(resets),
            counters: TcpInputCounters::default(),
        }
    }

    /// What the stage did.
    pub fn counters(&self) -> &TcpInputCounters {
        &self.counters
    }

    /// What [`process`](Stage::process) does, without the verdict.
    ///
    /// # Errors
    ///
    /// The drop reason; the buffer is released.
    #[inline]
    pub fn input<B, S>(&mut self, p: TcpPacket<B>, cx: &mut Cx<'_, B, S>) -> Result<(), Reason>
    where
        B: PacketBuf,
        S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
    {
        let r = wire::parse(p)?;
        let now_ns = cx.now_ns();
        let sockets = cx.part::<TcpSockets<B>>();
        if let Some(index) = sockets.find(&r.tuple) {
            sockets.deliver(index, r.segment, now_ns);
            self.counters.delivered += 1;
            // Events now, segments (ACKs coalesced) in `poll`.
            output::raise(cx, index);
            return Ok(());
        }
        let flags = r.segment.flags;
        let Some(listener) = sockets.find_listener(r.tuple.local) else {
            self.reset(&r, cx);
            return Err(Reason::NO_SOCKET);
        };
        if flags.rst() {
            return Err(Reason::UNEXPECTED);
        }
        if flags.ack() && !flags.syn() && sockets.checks_cookies(listener, now_ns) {
            return self.cookie_ack(listener, r, cx);
        }
        if flags.ack() {
            // RFC 9293 §3.10.7.2: an ACK to a listener is answered
            // <SEQ=SEG.ACK><CTL=RST>.
            self.reset(&r, cx);
            return Err(Reason::UNEXPECTED);
        }
        if !flags.syn() {
            return Err(Reason::UNEXPECTED);
        }
        let mss = mss_for(cx, r.tuple.local.ip());
        let sockets = cx.part::<TcpSockets<B>>();
        if sockets.wants_cookie(listener) {
            let syn_ack = sockets.cookie_syn_ack(listener, &r.tuple, &r.segment, mss, now_ns);
            let sent = send_segment(cx, &r.tuple, syn_ack, None);
            let counters = cx.part::<TcpSockets<B>>().counters_mut();
            match sent {
                Ok(_) => {
                    counters.syn_cookies_sent += 1;
                    counters.segments_sent += 1;
                }
                Err(_) => counters.send_failures += 1,
            }
            return Ok(());
        }
        match sockets.spawn(listener, r.tuple, &r.segment, mss, now_ns) {
            Ok(_) => {
                self.counters.syns_accepted += 1;
                Ok(())
            }
            Err(Spawn::BacklogFull | Spawn::AcceptQueueOverflow) => Err(BACKLOG_FULL),
            Err(Spawn::TableFull) => Err(TABLE_FULL),
        }
    }

    /// An ACK to `listener`, which sent cookies lately: the connection
    /// its cookie stands for, or a drop (a reset for one that is not a
    /// valid cookie, as for any ACK to a listener).
    fn cookie_ack<B, S>(
        &mut self,
        listener: u32,
        r: Received<B>,
        cx: &mut Cx<'_, B, S>,
    ) -> Result<(), Reason>
    where
        B: PacketBuf,
        S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
    {
        let now_ns = cx.now_ns();
        let checked = cx
            .part::<TcpSockets<B>>()
            .check_cookie(&r.tuple, &r.segment, now_ns);
        let cookie = match checked {
            Ok(cookie) => cookie,
            Err(e) => {
                self.reset(&r, cx);
                return Err(match e {
                    CookieError::Expired => COOKIE_EXPIRED,
                    CookieError::Invalid => COOKIE_INVALID,
                });
            }
        };
        let mss = mss_for(cx, r.tuple.local.ip());
        let spawned = cx
            .part::<TcpSockets<B>>()
            .spawn_from_cookie(listener, r.tuple, &cookie, r.segment, mss, now_ns);
        match spawned {
            Ok(index) => {
                self.counters.cookies_accepted += 1;
                output::raise(cx, index);
                Ok(())
            }
            Err(Spawn::TableFull) => Err(TABLE_FULL),
            Err(Spawn::BacklogFull | Spawn::AcceptQueueOverflow) => Err(ACCEPT_QUEUE_FULL),
        }
    }

    /// Answers `r` with a reset if the rules and the rate limit allow.
    fn reset<B, S>(&mut self, r: &Received<B>, cx: &mut Cx<'_, B, S>)
    where
        B: PacketBuf,
        S: Part<Egress<B>>,
    {
        let Some(rst) = reset_for(&r.segment) else {
            return;
        };
        if !self.resets.try_take(cx.now_ns()) {
            self.counters.resets_limited += 1;
            return;
        }
        match send_segment(cx, &r.tuple, rst, None) {
            Ok(_) => self.counters.resets_sent += 1,
            Err(_) => self.counters.resets_failed += 1,
        }
    }
}

impl<B, S> Stage<B, S> for TcpInput
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
{
    type In = TcpPacket<B>;
    type Out = Infallible;

    const CUSTOM_REASONS: &'static [&'static str] = &[
        "bad-options",
        "backlog-full",
        "table-full",
        "cookie-expired",
        "cookie-invalid",
        "accept-queue-full",
    ];

    #[inline]
    fn process(&mut self, p: TcpPacket<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        match self.input(p, cx) {
            Ok(()) => Verdict::Consumed,
            Err(reason) => Verdict::Drop(reason),
        }
    }

    #[inline]
    fn poll(&mut self, cx: &mut Cx<'_, B, S>) {
        output::flush(cx);
    }

    #[inline]
    fn fire_timers(&mut self, cx: &mut Cx<'_, B, S>) -> usize {
        output::fire_timers(cx)
    }

    #[inline]
    fn next_deadline(&self, state: &S) -> Option<u64> {
        Part::<TcpSockets<B>>::part(state).next_deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::testing::{
        bytes, parse_tcp, segment_frame, tcp_packet, them, us, Seg, TcpState,
    };
    use crate::testing::{pool, with_state_at, BufferPool};
    use std::net::SocketAddr;
    use tpa::buf::PoolBuf;

    fn run(
        stage: &mut TcpInput,
        state: &mut TcpState,
        now_ns: u64,
        frame: &[u8],
    ) -> (&'static str, Vec<PoolBuf>) {
        let p = tcp_packet(frame);
        let (v, out) = with_state_at(now_ns, state, |cx| stage.process(p, cx));
        let name = match v {
            Verdict::Consumed => "consumed",
            Verdict::Drop(r) => r.name(<TcpInput as Stage<PoolBuf, TcpState>>::CUSTOM_REASONS),
            _ => "other",
        };
        (name, out)
    }

    #[test]
    fn a_segment_without_a_socket_is_answered_by_the_rfc_9293_reset() {
        for v6 in [false, true] {
            let mut state = TcpState::new();
            let mut stage = TcpInput::default();
            // A SYN: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
            let (name, out) = run(
                &mut stage,
                &mut state,
                10,
                &segment_frame(v6, &Seg::syn(1000, 81)),
            );
            assert_eq!(name, "no-socket");
            assert_eq!(out.len(), 1);
            let rst = parse_tcp(&bytes(&out[0]));
            assert_eq!(rst.src, SocketAddr::new(us(v6), 81));
            assert_eq!(rst.dst, SocketAddr::new(them(v6), 5000));
            assert_eq!((rst.seq, rst.ack, rst.flags), (0, 1001, 0x14));
            // Data with ACK: <SEQ=SEG.ACK><CTL=RST>.
            let data = Seg {
                src_port: 6000,
                dst_port: 81,
                seq: 5,
                ack: Some(0xdead_beef),
                window: 100,
                payload: b"xyz".to_vec(),
                ..Seg::default()
            };
            let (_, out) = run(&mut stage, &mut state, 10, &segment_frame(v6, &data));
            let rst = parse_tcp(&bytes(&out[0]));
            assert_eq!((rst.seq, rst.flags), (0xdead_beef, 0x04));
            // A reset is never answered.
            let reset = Seg {
                rst: true,
                ..data.clone()
            };
            let (name, out) = run(&mut stage, &mut state, 10, &segment_frame(v6, &reset));
            assert_eq!((name, out.len()), ("no-socket", 0));
            assert_eq!(stage.counters().resets_sent, 2);
        }
        pool().assert_whole();
    }

    #[test]
    fn resets_are_rate_limited_and_group_frames_dropped() {
        let mut state = TcpState::new();
        let mut stage = TcpInput::new(ResetConfig {
            enabled: true,
            rate: 1,
            burst: 2,
        });
        let f = segment_frame(false, &Seg::syn(1, 99));
        let sent: usize = (0..5)
            .map(|_| run(&mut stage, &mut state, 10, &f).1.len())
            .sum();
        assert_eq!(sent, 2);
        assert_eq!(stage.counters().resets_limited, 3);
        assert_eq!(run(&mut stage, &mut state, 1_000_000_010, &f).1.len(), 1);
        let mut group = f.clone();
        group[0..6].copy_from_slice(&[0xff; 6]);
        let (name, out) = run(&mut stage, &mut state, 5_000_000_000, &group);
        assert_eq!((name, out.len()), ("not-for-us", 0));
        pool().assert_whole();
    }

    #[test]
    fn a_listener_resets_an_ack_and_ignores_other_strays() {
        let mut state = TcpState::new();
        let iface = state.egress.interface().clone();
        state
            .sockets
            .listen("0.0.0.0:80".parse().unwrap(), 16, &iface)
            .unwrap();
        let mut stage = TcpInput::default();
        let ack = Seg {
            src_port: 5000,
            dst_port: 80,
            seq: 9,
            ack: Some(77),
            window: 10,
            ..Seg::default()
        };
        let (name, out) = run(&mut stage, &mut state, 10, &segment_frame(false, &ack));
        assert_eq!((name, out.len()), ("unexpected", 1));
        assert_eq!(parse_tcp(&bytes(&out[0])).seq, 77);
        drop(out);
        let bare = Seg { ack: None, ..ack };
        let (name, out) = run(&mut stage, &mut state, 10, &segment_frame(false, &bare));
        assert_eq!((name, out.len()), ("unexpected", 0));
        // Nothing for IPv6 on port 80: a reset.
        let (name, _) = run(
            &mut stage,
            &mut state,
            10,
            &segment_frame(true, &Seg::syn(1, 80)),
        );
        assert_eq!(name, "no-socket");
        // Bad checksums and options are dropped before any of that.
        let mut bad = segment_frame(false, &Seg::syn(1, 80));
        bad[40] ^= 0x10;
        assert_eq!(run(&mut stage, &mut state, 10, &bad).0, "bad-checksum");
        let opts = Seg {
            options: vec![8, 3, 0, 0],
            ..Seg::syn(1, 80)
        };
        let (name, out) = run(&mut stage, &mut state, 10, &segment_frame(false, &opts));
        assert_eq!((name, out.len()), ("bad-options", 0));
        drop(state);
        pool().assert_whole();
    }
}
