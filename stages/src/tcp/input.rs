//! The TCP input stage: a segment to its connection, a SYN to its
//! listener, anything else answered with a reset; and the connections'
//! output and timers, which the state runs once per loop iteration
//! ([`Polled`] for [`TcpSockets`]) however many input stages share them.

use core::convert::Infallible;

use tpa::app::Events;
use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::state::{Part, Parts, Polled, PollsPart};

use super::classify::{slot_of_mark, Unmatched};
use super::mss::mss_for;
use super::output;
use super::reset::{reset_for, ResetConfig, ResetLimiter};
use super::seq::SeqNumber;
use super::sockets::{InputEvent, KnownDelivery, Spawn, TcpSockets};
use super::syncookie::CookieError;
use super::wire::{self, send_segment, Received};
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
/// A segment no socket takes, for the host by [`Unmatched::Host`], on a
/// pipeline without a host path (refused at configuration by
/// [`Unmatched::check`]; counted here if a pipeline was built without it).
pub const NO_HOST: Reason = Reason::custom(6);

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
    /// Segments found their connection by the port's flow mark (no
    /// 4-tuple lookup).
    pub marked: u64,
    /// Segments whose connection mark named no connection of their
    /// 4-tuple (a rule left behind, a reused slot): looked up by 4-tuple.
    pub mark_missed: u64,
    /// Segments no socket took, dropped by [`Unmatched::Drop`].
    pub unmatched_dropped: u64,
    /// Segments no socket took, handed to the host by
    /// [`Unmatched::Host`].
    pub unmatched_to_host: u64,
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
///
/// Classification ([`classify`](super::classify)): a segment whose frame
/// carries a connection's flow mark finds it without the 4-tuple lookup
/// (`marked`; a mark that names another connection falls back to it,
/// `mark_missed`); a segment no connection or listener takes is answered
/// as [`Unmatched`] says (a reset by default; dropped; or handed whole to
/// the host path).
#[derive(Debug, Clone)]
pub struct TcpInput {
    resets: ResetLimiter,
    unmatched: Unmatched,
    counters: TcpInputCounters,
    last_flow: LastFlow,
    /// The header of the last segment checked on the predicted path
    /// ([`wire::check_known_v4`] writes it in place, every field).
    known_header: wire::CheckedHeader,
}

/// The flow of the last segment [`TcpInput`] found its connection for by
/// 4-tuple, and where that connection is: the next segment with the same
/// addresses and ports (mostly the next one) goes there without parsing
/// and looking them up again, while the slot's generation says the
/// connection is still the one found.
#[derive(Debug, Clone, Copy)]
struct LastFlow {
    raw: wire::RawFlowV4,
    tuple: wire::FourTuple,
    index: u32,
    generation: u32,
}

impl LastFlow {
    /// No flow yet: a slot no table has, which predicts nothing.
    const NONE: LastFlow = LastFlow {
        raw: wire::RawFlowV4::NONE,
        tuple: wire::FourTuple::UNSPECIFIED,
        index: u32::MAX,
        generation: 0,
    };
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
            unmatched: Unmatched::Reset,
            counters: TcpInputCounters::default(),
            last_flow: LastFlow::NONE,
            known_header: wire::CheckedHeader::default(),
        }
    }

    /// The stage with `policy` for segments no socket takes (check it
    /// against the pipeline first: [`Unmatched::check`]).
    pub fn with_unmatched(mut self, policy: Unmatched) -> Self {
        self.unmatched = policy;
        self
    }

    /// The policy for segments no socket takes.
    pub fn unmatched(&self) -> Unmatched {
        self.unmatched
    }

    /// What the stage did.
    pub fn counters(&self) -> &TcpInputCounters {
        &self.counters
    }

    /// What [`process`](Stage::process) does, without the verdict (a
    /// segment for the host is dropped here: only `process` hands it on).
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
        match self.classify(p, cx) {
            Verdict::Consumed => Ok(()),
            Verdict::Drop(reason) => Err(reason),
            _ => Err(NO_HOST),
        }
    }

    /// A segment to its connection (by flow mark, else by 4-tuple), a SYN
    /// or a cookie's ACK to its listener, the rest as the unmatched policy
    /// says.
    #[inline]
    fn classify<B, S>(&mut self, p: TcpPacket<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Infallible, B>
    where
        B: PacketBuf,
        S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
    {
        let now_ns = cx.now_ns();
        let mark = p.buf().meta().flow_mark;
        let p = if self.predicts(&p, mark) {
            let TcpInput {
                counters,
                last_flow: last,
                known_header: header,
                ..
            } = self;
            if let Err(reason) = wire::check_known_v4(&p, header) {
                return Verdict::Drop(reason);
            }
            // The known flow's segment: no 4-tuple built, copied or
            // looked up; its slot looked up once, to find the connection
            // still there and to deliver. (A SYN on it takes the general
            // way: checked again, it finds the same connection.) Checked
            // before the slot's test, it is checked as the general way
            // would: the same checks, on the same addresses and ports.
            if header.flags().syn() {
                p
            } else {
                let sockets = cx.part::<TcpSockets<B>>();
                #[cfg(debug_assertions)]
                if sockets.conn_generation(last.index) == Some(last.generation) {
                    Self::check_prediction(
                        &p,
                        &wire::Checked::new(last.tuple, *header),
                        last.index,
                        sockets,
                    );
                }
                let index = last.index;
                match sockets.deliver_known(index, last.generation, header, p, now_ns) {
                    KnownDelivery::Delivered(confirm, event) => {
                        let remote = &last.tuple.remote;
                        return Self::delivered(
                            counters, index, remote, confirm, event, now_ns, cx,
                        );
                    }
                    KnownDelivery::Dropped(reason) => return Verdict::Drop(reason),
                    KnownDelivery::Elsewhere(p) => p,
                }
            }
        } else {
            p
        };
        self.classify_general(p, mark, now_ns, cx)
    }

    /// [`classify`](Self::classify) of a segment whose flow is not the
    /// one predicted: checked in full, its connection found by flow mark
    /// or 4-tuple, a SYN or a cookie's ACK to a listener.
    #[inline(never)]
    fn classify_general<B, S>(
        &mut self,
        p: TcpPacket<B>,
        mark: Option<u32>,
        now_ns: u64,
        cx: &mut Cx<'_, B, S>,
    ) -> Verdict<Infallible, B>
    where
        B: PacketBuf,
        S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
    {
        let mut checked = wire::Checked::default();
        if let Err(reason) = wire::check_into(&p, &mut checked) {
            return Verdict::Drop(reason);
        }
        let sockets = cx.part::<TcpSockets<B>>();
        if let Some(index) = self.find(&p, mark, &checked, sockets) {
            let p = if checked.flags().syn() {
                match self.syn_in_use(index, p, &checked, cx) {
                    Ok(verdict) => return verdict,
                    Err(p) => p,
                }
            } else {
                p
            };
            let remote = &checked.tuple.remote;
            let header = checked.header();
            return Self::hand_over(&mut self.counters, index, remote, header, p, now_ns, cx);
        }
        let sockets = cx.part::<TcpSockets<B>>();
        let Some(listener) = sockets.find_listener(checked.tuple.local) else {
            return self.no_socket(p, checked, cx);
        };
        let r = match wire::take(p, checked) {
            Ok(r) => r,
            Err(reason) => return Verdict::Drop(reason),
        };
        match self.at_listener(listener, r, None, cx) {
            Ok(()) => Verdict::Consumed,
            Err(reason) => Verdict::Drop(reason),
        }
    }

    /// Checked segment `p` (its header `header`, from `remote`) to the
    /// connection in slot `index`, its events raised (and counted in
    /// `counters`). `remote` by reference: its address is taken only
    /// when the segment confirms the next hop.
    #[inline(always)]
    fn hand_over<B, S>(
        counters: &mut TcpInputCounters,
        index: u32,
        remote: &std::net::SocketAddr,
        header: &wire::CheckedHeader,
        p: TcpPacket<B>,
        now_ns: u64,
        cx: &mut Cx<'_, B, S>,
    ) -> Verdict<Infallible, B>
    where
        B: PacketBuf,
        S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
    {
        // The header goes to the connection by reference: no parsed
        // form built or moved from one place to the next (each move a
        // copy of some eighty bytes).
        let payload = match header.payload(p) {
            Ok(payload) => payload,
            Err(reason) => return Verdict::Drop(reason),
        };
        let sockets = cx.part::<TcpSockets<B>>();
        let (confirm, event) = sockets.deliver(index, header, payload, now_ns);
        Self::delivered(counters, index, remote, confirm, event, now_ns, cx)
    }

    /// After a segment's delivery to the connection in slot `index`
    /// (whose peer is `remote`): the peer's next hop confirmed if the
    /// segment says so (`confirm`), the segment counted in `counters`,
    /// its `event` raised.
    #[inline(always)]
    fn delivered<B, S>(
        counters: &mut TcpInputCounters,
        index: u32,
        remote: &std::net::SocketAddr,
        confirm: bool,
        event: InputEvent,
        now_ns: u64,
        cx: &mut Cx<'_, B, S>,
    ) -> Verdict<Infallible, B>
    where
        B: PacketBuf,
        S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
    {
        if confirm {
            // Forward progress: the peer's next hop is reachable.
            cx.part::<Egress<B>>().confirm_next_hop(remote.ip(), now_ns);
        }
        counters.delivered += 1;
        // Events now, segments (ACKs coalesced) in `poll`.
        output::raise_input_event(cx, index, event);
        Verdict::Consumed
    }

    /// Whether `p` is of the flow of the last segment found by 4-tuple:
    /// it is unmarked, over IPv4, and carries the same addresses and
    /// ports. Such segments skip the checks of their addresses and the
    /// lookup ([`wire::check_known_v4`]); whether the connection is still
    /// in its slot is tested at the delivery
    /// ([`TcpSockets::deliver_known`]).
    #[inline(always)]
    fn predicts<B: PacketBuf>(&self, p: &TcpPacket<B>, mark: Option<u32>) -> bool {
        let last = &self.last_flow;
        mark.is_none() && !p.is_ipv6() && wire::RawFlowV4::of(p) == Some(last.raw)
    }

    /// The connection of checked segment `p`: by flow mark, else by
    /// 4-tuple (remembered for [`predicts`](Self::predicts) when unmarked,
    /// over IPv4).
    #[inline]
    fn find<B: PacketBuf>(
        &mut self,
        p: &TcpPacket<B>,
        mark: Option<u32>,
        checked: &wire::Checked,
        sockets: &mut TcpSockets<B>,
    ) -> Option<u32> {
        if let Some(index) = mark.and_then(|m| sockets.find_marked(m, &checked.tuple)) {
            self.counters.marked += 1;
            return Some(index);
        }
        if mark.is_some_and(|m| slot_of_mark(m).is_some()) {
            self.counters.mark_missed += 1;
        }
        let index = sockets.find(&checked.tuple)?;
        if mark.is_none() && !p.is_ipv6() {
            self.remember(p, checked, index, sockets);
        }
        Some(index)
    }

    /// Remembers the flow of `p` (checked, found in slot `index`) for
    /// [`predicts`](Self::predicts).
    #[cold]
    #[inline(never)]
    fn remember<B: PacketBuf>(
        &mut self,
        p: &TcpPacket<B>,
        checked: &wire::Checked,
        index: u32,
        sockets: &TcpSockets<B>,
    ) {
        self.last_flow = match (wire::RawFlowV4::of(p), sockets.conn_generation(index)) {
            (Some(raw), Some(generation)) => LastFlow {
                raw,
                tuple: checked.tuple,
                index,
                generation,
            },
            _ => LastFlow::NONE,
        };
    }

    /// Debug builds: a predicted segment is checked as every other one,
    /// and found by its 4-tuple in the slot predicted.
    #[cfg(debug_assertions)]
    fn check_prediction<B: PacketBuf>(
        p: &TcpPacket<B>,
        checked: &wire::Checked,
        index: u32,
        sockets: &mut TcpSockets<B>,
    ) {
        let mut general = wire::Checked::default();
        assert_eq!(wire::check_into(p, &mut general), Ok(()));
        assert_eq!(general, *checked, "a prediction parsed differently");
        assert_eq!(sockets.find(&checked.tuple), Some(index));
    }

    /// A SYN on the 4-tuple of the connection in slot `index`: if a
    /// listener has the local end and the connection, in TIME_WAIT, gives
    /// way to it (RFC 6191), the SYN goes to the listener and this is its
    /// verdict; otherwise the packet comes back for the connection.
    #[cold]
    #[inline(never)]
    fn syn_in_use<B, S>(
        &mut self,
        index: u32,
        p: TcpPacket<B>,
        checked: &wire::Checked,
        cx: &mut Cx<'_, B, S>,
    ) -> Result<Verdict<Infallible, B>, TcpPacket<B>>
    where
        B: PacketBuf,
        S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
    {
        let sockets = cx.part::<TcpSockets<B>>();
        let Some(listener) = sockets.find_listener(checked.tuple.local) else {
            return Err(p);
        };
        // The TIME_WAIT test reads the header alone.
        let Some(floor) = sockets.reuse_time_wait(index, &checked.segment(None)) else {
            return Err(p);
        };
        let r = match wire::take(p, *checked) {
            Ok(r) => r,
            Err(reason) => return Ok(Verdict::Drop(reason)),
        };
        Ok(match self.at_listener(listener, r, Some(floor), cx) {
            Ok(()) => Verdict::Consumed,
            Err(reason) => Verdict::Drop(reason),
        })
    }

    /// A segment to `listener`: a SYN opens a connection (or draws a
    /// cookie), its ISS at least `iss_floor` if given, a cookie's ACK
    /// makes one, the rest is `unexpected`.
    fn at_listener<B, S>(
        &mut self,
        listener: u32,
        r: Received<B>,
        iss_floor: Option<SeqNumber>,
        cx: &mut Cx<'_, B, S>,
    ) -> Result<(), Reason>
    where
        B: PacketBuf,
        S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
    {
        let now_ns = cx.now_ns();
        let flags = r.segment.flags;
        if flags.rst() {
            return Err(Reason::UNEXPECTED);
        }
        let sockets = cx.part::<TcpSockets<B>>();
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
        match sockets.spawn(listener, r.tuple, &r.segment, mss, iss_floor, now_ns) {
            Ok(_) => {
                self.counters.syns_accepted += 1;
                Ok(())
            }
            Err(Spawn::BacklogFull | Spawn::AcceptQueueOverflow) => Err(BACKLOG_FULL),
            Err(Spawn::TableFull) => Err(TABLE_FULL),
        }
    }

    /// A segment no connection or listener takes, as the policy says:
    /// reset (`no-socket`), dropped (`no-socket`), or to the host whole.
    #[cold]
    fn no_socket<B, S>(
        &mut self,
        p: TcpPacket<B>,
        checked: wire::Checked,
        cx: &mut Cx<'_, B, S>,
    ) -> Verdict<Infallible, B>
    where
        B: PacketBuf,
        S: Part<Egress<B>>,
    {
        match self.unmatched {
            Unmatched::Reset => {
                if let Ok(r) = wire::take(p, checked) {
                    self.reset(&r, cx);
                }
                Verdict::Drop(Reason::NO_SOCKET)
            }
            Unmatched::Drop => {
                self.counters.unmatched_dropped += 1;
                Verdict::Drop(Reason::NO_SOCKET)
            }
            Unmatched::Host if cx.has_host() => {
                self.counters.unmatched_to_host += 1;
                Verdict::ToHost(p.into_buf())
            }
            Unmatched::Host => Verdict::Drop(NO_HOST),
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
    S: Part<TcpSockets<B>>
        + Part<Events>
        + Part<Egress<B>>
        + Parts<(TcpSockets<B>, Egress<B>)>
        + PollsPart<TcpSockets<B>>,
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
        "no-host",
    ];

    #[inline]
    fn process(&mut self, p: TcpPacket<B>, cx: &mut Cx<'_, B, S>) -> Verdict<Infallible, B> {
        self.classify(p, cx)
    }
}

/// The connections' output and timers, once per loop iteration: the state's
/// `#[polled]` sockets field, which [`TcpInput`] requires. A pipeline with an
/// IPv4 and an IPv6 branch has two input stages and flushes once.
impl<B, S> Polled<B, S> for TcpSockets<B>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>> + Parts<(TcpSockets<B>, Egress<B>)>,
{
    #[inline]
    fn poll(cx: &mut Cx<'_, B, S>) {
        output::flush(cx);
    }

    #[inline]
    fn fire_timers(cx: &mut Cx<'_, B, S>) -> usize {
        output::fire_timers(cx)
    }

    #[inline]
    fn next_deadline(state: &S) -> Option<u64> {
        Part::<TcpSockets<B>>::part(state).next_deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::classify::CONN_MARK;
    use crate::tcp::conn::State;
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
        state.listen("0.0.0.0:80", 16);
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

    /// Runs `p` through `stage` with a host path; returns the verdict's
    /// name, what was transmitted and what went to the host.
    fn run_with_host(
        stage: &mut TcpInput,
        state: &mut TcpState,
        p: TcpPacket<PoolBuf>,
    ) -> (&'static str, Vec<PoolBuf>, Vec<PoolBuf>) {
        use tpa::pipeline::Runtime;
        use tpa::port::memory::{MemoryWire, WireConfig};
        let (mut port, mut host) = MemoryWire::pair(WireConfig {
            pool: Some(pool()),
            ..WireConfig::default()
        })
        .unwrap();
        let mut runtime: Runtime<PoolBuf, 32, 0> = Runtime::new([], []);
        let v = runtime.with_state(&mut port, &mut host, 10, state, |cx| stage.process(p, cx));
        let name = match v {
            Verdict::Consumed => "consumed",
            Verdict::Drop(r) => r.name(<TcpInput as Stage<PoolBuf, TcpState>>::CUSTOM_REASONS),
            Verdict::ToHost(buf) => {
                runtime.with_state(&mut port, &mut host, 10, state, |cx| cx.to_host(buf));
                "to-host"
            }
            _ => "other",
        };
        let sent = runtime.drain_tx().collect();
        let hosted = runtime.drain_host().collect();
        (name, sent, hosted)
    }

    #[test]
    fn unmatched_segments_are_reset_dropped_or_handed_to_the_host_whole() {
        let syn = segment_frame(false, &Seg::syn(1000, 81));
        // Drop: no answer, counted.
        let mut state = TcpState::new();
        let mut stage = TcpInput::default().with_unmatched(Unmatched::Drop);
        let (name, out) = run(&mut stage, &mut state, 10, &syn);
        assert_eq!((name, out.len()), ("no-socket", 0));
        assert_eq!(stage.counters().unmatched_dropped, 1);
        assert_eq!(stage.counters().resets_sent, 0);
        // Host: the frame goes to the host path as it came.
        let mut stage = TcpInput::default().with_unmatched(Unmatched::Host);
        let (name, out, hosted) = run_with_host(&mut stage, &mut state, tcp_packet(&syn));
        assert_eq!((name, out.len(), hosted.len()), ("to-host", 0, 1));
        assert_eq!(bytes(&hosted[0]), syn);
        assert_eq!(stage.counters().unmatched_to_host, 1);
        drop(hosted);
        // Host without a host path: dropped, by its own reason.
        let (name, out) = run(&mut stage, &mut state, 10, &syn);
        assert_eq!((name, out.len()), ("no-host", 0));
        // A listener still takes its SYNs whatever the policy.
        state.listen("0.0.0.0:81", 4);
        let (name, out, hosted) = run_with_host(&mut stage, &mut state, tcp_packet(&syn));
        assert_eq!((name, hosted.len()), ("consumed", 0));
        assert_eq!(stage.counters().syns_accepted, 1);
        drop((out, state));
        pool().assert_whole();
    }

    #[test]
    fn a_remembered_flow_goes_to_its_connection_and_never_to_the_next_in_its_slot() {
        let mut state = TcpState::new();
        state.listen("0.0.0.0:80", 16);
        let mut stage = TcpInput::default();
        let syn = |port| {
            segment_frame(
                false,
                &Seg {
                    src_port: port,
                    ..Seg::syn(1000, 80)
                },
            )
        };
        // The SYN opens the connection; again, it is found by 4-tuple (and
        // remembered); a third time, predicted (checked against the
        // lookup in debug builds).
        for _ in 0..3 {
            assert_eq!(run(&mut stage, &mut state, 10, &syn(5000)).0, "consumed");
        }
        assert_eq!(stage.counters().delivered, 2);
        let (first, _) = state
            .sockets
            .iter()
            .find(|(_, s)| *s != State::Listen)
            .unwrap();
        // The connection goes; one from another port takes its slot.
        state.sockets.abort(first).unwrap();
        let (_, out) = with_state_at(20, &mut state, |cx| {
            tpa::state::PolledState::<PoolBuf>::poll(cx)
        });
        drop(out);
        assert_eq!(run(&mut stage, &mut state, 30, &syn(5001)).0, "consumed");
        let (second, _) = state
            .sockets
            .iter()
            .find(|(_, s)| *s != State::Listen)
            .unwrap();
        assert_eq!(second.index, first.index);
        // The old flow's ACK is not the new connection's: the listener
        // answers it with a reset.
        let ack = Seg {
            src_port: 5000,
            dst_port: 80,
            seq: 1001,
            ack: Some(77),
            window: 10,
            ..Seg::default()
        };
        let (name, out) = run(&mut stage, &mut state, 40, &segment_frame(false, &ack));
        assert_eq!((name, out.len()), ("unexpected", 1));
        assert_eq!(stage.counters().delivered, 2);
        drop((out, state));
        pool().assert_whole();
    }

    #[test]
    fn a_connection_mark_skips_the_lookup_and_a_wrong_one_falls_back_to_it() {
        let mut state = TcpState::new();
        let listener = state.listen("0.0.0.0:80", 16);
        assert_eq!(
            state.sockets.flow_mark(listener),
            Err(tpa::app::SocketError::NotConnected)
        );
        let mut stage = TcpInput::default();
        // Two connections from the peer's ports 5000 and 5001.
        for port in [5000, 5001] {
            let syn = Seg {
                src_port: port,
                ..Seg::syn(1000, 80)
            };
            let (name, _) = run(&mut stage, &mut state, 10, &segment_frame(false, &syn));
            assert_eq!(name, "consumed");
        }
        let conns: Vec<_> = state
            .sockets
            .iter()
            .filter(|(id, _)| *id != listener)
            .map(|(id, _)| id)
            .collect();
        assert_eq!(conns.len(), 2);
        let tuple_of = |id| state.sockets.tuple(id).unwrap().remote.port();
        let (first, second) = if tuple_of(conns[0]) == 5000 {
            (conns[0], conns[1])
        } else {
            (conns[1], conns[0])
        };
        let mark = state.sockets.flow_mark(first).unwrap();
        let other = state.sockets.flow_mark(second).unwrap();
        assert_ne!(mark, other);
        // The SYN again (a retransmission): the connection takes it.
        let again = segment_frame(false, &Seg::syn(1000, 80));
        let marked = |m: Option<u32>| {
            let mut p = tcp_packet(&again);
            p.buf_mut().meta_mut().flow_mark = m;
            p
        };
        let process = |stage: &mut TcpInput, state: &mut TcpState, p| {
            let (v, out) = with_state_at(10, state, |cx| stage.process(p, cx));
            assert!(matches!(v, Verdict::Consumed));
            drop(out);
        };
        process(&mut stage, &mut state, marked(Some(mark)));
        assert_eq!(
            (stage.counters().marked, stage.counters().mark_missed),
            (1, 0)
        );
        // The other connection's mark: caught, looked up by 4-tuple.
        process(&mut stage, &mut state, marked(Some(other)));
        assert_eq!(
            (stage.counters().marked, stage.counters().mark_missed),
            (1, 1)
        );
        // A mark beyond the table, and an mlx5 listener mark (not a
        // connection's: no miss).
        process(&mut stage, &mut state, marked(Some(CONN_MARK | 4000)));
        process(&mut stage, &mut state, marked(Some(0x1_0050)));
        assert_eq!(
            (stage.counters().marked, stage.counters().mark_missed),
            (1, 2)
        );
        assert_eq!(stage.counters().delivered, 4);
        // A closed connection's mark names nothing once its slot is free.
        state.sockets.abort(first).unwrap();
        let (_, out) = with_state_at(20, &mut state, |cx| {
            tpa::state::PolledState::<PoolBuf>::poll(cx)
        });
        drop(out);
        assert_eq!(
            state.sockets.flow_mark(first),
            Err(tpa::app::SocketError::BadSocket)
        );
        drop(state);
        pool().assert_whole();
    }
}
