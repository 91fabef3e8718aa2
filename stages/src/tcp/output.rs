//! The output path of the TCP connections: after input, after the
//! application ran and after timers, every connection that was touched
//! sends what it has ([`Connection::poll_transmit`](super::conn::Connection::poll_transmit)),
//! raises its events, re-arms its timer and, once closed and released,
//! frees its slot.

use std::net::SocketAddr;

use tpa::app::{Events, SocketError};
use tpa::buf::PacketBuf;
use tpa::stage::Cx;
use tpa::state::{Part, Parts};

use super::conn::{ConnEvents, Quiet, QuietPass};
use super::mss::mss_for;
use super::segment::SegmentOut;
use super::sockets::ConnOut;
use super::sockets::{InputEvent, TcpSockets};
use super::tso::{self, Batch};
use super::wire::{
    build_quiet_v4, build_quiet_v6, build_segment, checksum_other, checksum_v4, fit_options,
    send_other, FourTuple,
};
use crate::egress::{send_tcp_v4, Egress, PathCaps, Sent};
use tpa::stage::PortCx;

/// Works through the connections touched since the last call: sends
/// their segments through the egress path (SACK blocks that would make a
/// segment larger than the path's MSS dropped: [`fit_options`]), raises their events in the
/// state's [`Events`] (an event that does not fit is kept and raised at a
/// later turn), and re-arms their timers. Returns the segments sent.
#[inline]
pub fn flush<B, S>(cx: &mut Cx<'_, B, S>) -> usize
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>> + Parts<(TcpSockets<B>, Egress<B>)>,
{
    // The check inline, the work out of line: the stages flush on every
    // loop iteration, mostly with nothing to do.
    if !cx.part::<TcpSockets<B>>().has_dirty() {
        return 0;
    }
    flush_dirty(cx)
}

#[inline(never)]
fn flush_dirty<B, S>(cx: &mut Cx<'_, B, S>) -> usize
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>> + Parts<(TcpSockets<B>, Egress<B>)>,
{
    let now_ns = cx.now_ns();
    // The slots marked so far, in place: one marked while the loop runs
    // waits for the next pass (or, not reached yet, is done in this one).
    let dirty = cx.part::<TcpSockets<B>>().dirty_len();
    let mut sent = 0;
    for at in 0..dirty {
        // The straight case first (on a port with TSO only while at most
        // one chunk waits: nothing to join), the full path for what it
        // does not take.
        let (index, end) = flush_quiet(cx, at, now_ns, &mut sent);
        if end == QuietEnd::Settled {
            continue;
        }
        if end == QuietEnd::Full {
            // The port's abilities read for the full path.
            let ((sockets, egress), port) = cx.parts::<(TcpSockets<B>, Egress<B>)>();
            let caps = port.caps();
            let tso = caps.tx_offloads.tso && sockets.config().tso;
            let path_caps = egress.path_caps(caps);
            let max_buffers = sockets.config().max_chain_buffers as usize;
            // The tuple once per connection, not with each segment.
            let tuple = cx.part::<TcpSockets<B>>().conn_tuple(index);
            match &tuple {
                // One segment asked for, sent from where it was built, no
                // segment held back for a batch.
                Some(tuple) if tuple.local.is_ipv6() => {
                    sent += flush_v6(cx, tuple, index, now_ns, &path_caps, (tso, max_buffers));
                }
                Some(tuple) if !tso => {
                    while let Some(mut seg) = next_segment(cx, index, now_ns) {
                        sent += send_one(cx, tuple, index, &mut seg);
                    }
                }
                Some(tuple) => sent += flush_tso(cx, tuple, index, now_ns, max_buffers),
                None => {}
            }
        }
        if let Err(ev) = cx.part::<TcpSockets<B>>().settle_quiet(index) {
            settle_raising(cx, index, ev);
        }
    }
    cx.part::<TcpSockets<B>>().drop_dirty(dirty);
    sent
}

/// Settles the connection in slot `index` that had events `ev` to raise
/// ([`TcpSockets::settle_raised`]) and pushes them into the state's
/// [`Events`] (those that do not fit deferred, counted). Out of line:
/// input raised most events already, so the output path seldom has
/// any, and takes the events list only here.
#[cold]
#[inline(never)]
fn settle_raising<B, S>(cx: &mut Cx<'_, B, S>, index: u32, ev: ConnEvents)
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events>,
{
    let sockets = cx.part::<TcpSockets<B>>();
    let mut events = sockets.take_events();
    sockets.settle_raised(index, ev, &mut events);
    if !events.is_empty() {
        push_events(cx, index, &mut events, true);
    }
    cx.part::<TcpSockets<B>>().return_events(events);
}

/// How [`flush_quiet`] left a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum QuietEnd {
    /// Done and settled in hand ([`ConnOut::settle_quiet`]).
    Settled,
    /// Done; the caller settles it.
    Done,
    /// The full path takes the rest, then the caller settles it.
    Full,
}

/// [`QuietEnd::Settled`] once `c` settled in hand, else
/// [`QuietEnd::Done`].
#[inline(always)]
fn settled<B: PacketBuf>(c: ConnOut<'_, B>) -> QuietEnd {
    if c.settle_quiet() {
        QuietEnd::Settled
    } else {
        QuietEnd::Done
    }
}

/// The straight case of the connection in the slot at `at` in the dirty
/// list, its mark cleared ([`TcpSockets::take_dirty_at`]; an established
/// IPv4 connection whose way out is built, with nothing rare to send:
/// [`Connection::poll_quiet`](super::conn::Connection::poll_quiet)): the
/// slot, the egress part and the port borrowed once, each segment decided
/// and built in one pass ([`build_quiet_v4`]: its header in one move) and
/// sent on the connection's IPv4 path (IPv6's: [`flush_v6`]) with the
/// port's abilities read once, and only when there is something to send
/// ([`Connection::quiet_sends_nothing`](super::conn::Connection::quiet_sends_nothing):
/// the delayed ACK's settle after an answer does not read them). On a
/// port with TSO only while at most one chunk
/// waits ([`Connection::one_chunk_at_most`](super::conn::Connection::one_chunk_at_most)):
/// its segments then never join into a super-segment, and larger
/// batches keep the full path's batching. Adds the segments sent to
/// `sent`. Returns the slot and [`QuietEnd::Full`] when the connection
/// needs the full path for the rest (any other state, a rare segment, a
/// path to build, data to batch), having sent nothing it would not have.
/// A quiet connection with nothing (more) to send, IPv4 or IPv6, is done
/// here: the full path would find nothing either; it is settled in hand
/// when that is all it needs (the delayed ACK's settle after an answer:
/// its slot not looked up again).
#[inline(always)]
fn flush_quiet<B, S>(
    cx: &mut Cx<'_, B, S>,
    at: usize,
    now_ns: u64,
    sent: &mut usize,
) -> (u32, QuietEnd)
where
    B: PacketBuf,
    S: Parts<(TcpSockets<B>, Egress<B>)>,
{
    let ((sockets, egress), port) = cx.parts::<(TcpSockets<B>, Egress<B>)>();
    let tso_on = sockets.config().tso;
    let (index, c) = sockets.take_dirty_at(at);
    let Some(c) = c else {
        return (index, QuietEnd::Settled); // no connection: nothing to send or settle
    };
    #[cfg(test)]
    if !tests::STRAIGHT.with(core::cell::Cell::get) {
        return (index, QuietEnd::Full); // the full path asked for
    }
    if !c.conn.quiet() {
        return (index, QuietEnd::Full);
    }
    if c.conn.quiet_sends_nothing(now_ns) {
        // Whatever its way out: the port's abilities not even read.
        return (index, settled(c));
    }
    let (SocketAddr::V4(local), SocketAddr::V4(remote)) = (c.tuple.local, c.tuple.remote) else {
        return (index, QuietEnd::Full); // IPv6: `flush_v6`
    };
    if !egress.path_is_current(c.path) {
        return (index, QuietEnd::Full);
    }
    let port_caps = port.caps();
    if port_caps.tx_offloads.tso && tso_on && !c.conn.one_chunk_at_most() {
        return (index, QuietEnd::Full);
    }
    let caps = &egress.path_caps(port_caps);
    let ports = (local.port(), remote.port());
    // Found quiet once: its segments change nothing of that.
    let mut pass = QuietPass::default();
    // Whether the pass ends with all sent (else the full path takes the
    // rest): every way out through one end of the pass.
    let done = loop {
        let seg = match c.conn.poll_quiet(now_ns, &mut pass) {
            Quiet::Seg(seg) => seg,
            Quiet::Nothing => break true,
            Quiet::Full => break false,
        };
        // No owner, as `send_one`: a lost segment is loss to TCP.
        let ok = build_quiet_v4(port, ports, seg, caps.tcp_checksum, c.path.tcp_pseudo())
            .and_then(|(buf, header)| egress.send_tcp_v4_current(port, buf, c.path, header, caps))
            .is_ok();
        if ok {
            #[cfg(test)]
            tests::STRAIGHT_SENT.with(|n| n.set(n.get() + 1));
            c.counters.segments_sent += 1;
            *sent += 1;
        } else {
            c.counters.send_failures += 1;
        }
        if c.conn.quiet_sent_all() {
            break true;
        }
    };
    c.conn.end_quiet_pass(now_ns, &mut pass);
    if done {
        (index, settled(c))
    } else {
        (index, QuietEnd::Full)
    }
}

/// The segments of the IPv6 connection on `tuple` in slot `index`: the
/// straight case first ([`flush_quiet_v6`]), then the full path for
/// what it does not take, one by one or batched on a port with TSO
/// (`tso`, its frames of at most `max_buffers` buffers) as for IPv4.
/// Returns the segments sent. Out of line: the IPv4 loop stays as it
/// was.
#[inline(never)]
fn flush_v6<B, S>(
    cx: &mut Cx<'_, B, S>,
    tuple: &FourTuple,
    index: u32,
    now_ns: u64,
    caps: &PathCaps,
    (tso, max_buffers): (bool, usize),
) -> usize
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Egress<B>> + Parts<(TcpSockets<B>, Egress<B>)>,
{
    let ((sockets, egress), port) = cx.parts::<(TcpSockets<B>, Egress<B>)>();
    let (done, mut sent) = match sockets.conn_out(index) {
        #[cfg(test)]
        Some(_) if !tests::STRAIGHT.with(core::cell::Cell::get) => (false, 0),
        Some(c) => flush_quiet_v6(c, egress, port, now_ns, caps, tso),
        None => (true, 0),
    };
    if done {
        return sent;
    }
    if tso {
        return sent + flush_tso(cx, tuple, index, now_ns, max_buffers);
    }
    while let Some(mut seg) = next_segment(cx, index, now_ns) {
        sent += send_one(cx, tuple, index, &mut seg);
    }
    sent
}

/// [`flush_quiet`] for an IPv6 connection `c`: the same straight case
/// on its IPv6 way out
/// ([`build_quiet_v6`], [`Egress::send_tcp_v6_current`]). Returns
/// `flush_quiet`'s answer and the segments sent.
#[inline(always)]
fn flush_quiet_v6<B: PacketBuf>(
    c: ConnOut<'_, B>,
    egress: &mut Egress<B>,
    port: &mut PortCx<'_, B>,
    now_ns: u64,
    caps: &PathCaps,
    tso: bool,
) -> (bool, usize) {
    let mut sent = 0;
    let (SocketAddr::V6(local), SocketAddr::V6(remote)) = (c.tuple.local, c.tuple.remote) else {
        return (false, sent);
    };
    let Some(path) = c.path6.as_deref() else {
        return (false, sent); // the full path builds it
    };
    if !egress.path6_is_current(path) || !c.conn.quiet() || (tso && !c.conn.one_chunk_at_most()) {
        return (false, sent);
    }
    let ports = (local.port(), remote.port());
    let mut pass = QuietPass::default();
    let done = loop {
        let seg = match c.conn.poll_quiet(now_ns, &mut pass) {
            Quiet::Seg(seg) => seg,
            Quiet::Nothing => break true,
            Quiet::Full => break false,
        };
        let ok = build_quiet_v6(port, ports, seg, caps.tcp_checksum, c.tuple)
            .and_then(|(buf, header)| egress.send_tcp_v6_current(port, buf, path, header, caps))
            .is_ok();
        if ok {
            #[cfg(test)]
            tests::STRAIGHT_SENT.with(|n| n.set(n.get() + 1));
            c.counters.segments_sent += 1;
            sent += 1;
        } else {
            c.counters.send_failures += 1;
        }
    };
    c.conn.end_quiet_pass(now_ns, &mut pass);
    (done, sent)
}

/// Sends `seg` of the connection on `tuple` in slot `index` (SACK blocks
/// that would make it larger than the path's MSS dropped first:
/// [`fit_options`]) by its way out; counts it; returns 1 when it left, 0
/// when it was lost.
#[inline(always)]
fn send_one<B, S>(
    cx: &mut Cx<'_, B, S>,
    tuple: &FourTuple,
    index: u32,
    seg: &mut SegmentOut<B>,
) -> usize
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Egress<B>> + Parts<(TcpSockets<B>, Egress<B>)>,
{
    if seg.options.sack.is_some() {
        drop_sack_blocks(cx, tuple, seg);
    }
    // No owner: a neighbor that does not answer is loss to TCP (a soft
    // error, RFC 1122 §4.2.3.9), which retransmission recovers and the
    // engine's timeouts report.
    let ok = send_segment_on_path(cx, tuple, index, seg).is_ok();
    let counters = cx.part::<TcpSockets<B>>().counters_mut();
    if ok {
        counters.segments_sent += 1;
    } else {
        counters.send_failures += 1;
    }
    usize::from(ok)
}

/// [`fit_options`] against the MSS of the path from `tuple.local`, the
/// blocks dropped counted. Out of line: most segments carry no blocks.
#[inline(never)]
fn drop_sack_blocks<B, S>(cx: &mut Cx<'_, B, S>, tuple: &FourTuple, seg: &mut SegmentOut<B>)
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Egress<B>>,
{
    let limit = usize::from(mss_for(cx, tuple.local.ip()));
    let dropped = fit_options(seg, limit) as u64;
    cx.part::<TcpSockets<B>>()
        .counters_mut()
        .sack_blocks_dropped += dropped;
}

/// The segments of the connection in slot `index` on a port with TSO:
/// back-to-back data segments join into super-segments ([`send_batch`]),
/// the others leave one by one. Returns the segments sent. Out of line:
/// most ports have no TSO.
#[inline(never)]
fn flush_tso<B, S>(
    cx: &mut Cx<'_, B, S>,
    tuple: &FourTuple,
    index: u32,
    now_ns: u64,
    max_buffers: usize,
) -> usize
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Egress<B>> + Parts<(TcpSockets<B>, Egress<B>)>,
{
    let mut sent = 0;
    let mut pending = None;
    loop {
        let next = pending.take().or_else(|| next_segment(cx, index, now_ns));
        let Some(mut seg) = next else { break };
        if tso::joinable(&seg) {
            match next_segment(cx, index, now_ns) {
                Some(second) if Batch::pair(&seg, &second) => {
                    let (n, ok, rest) = send_batch(cx, tuple, seg, second, index, max_buffers);
                    pending = rest;
                    let counters = cx.part::<TcpSockets<B>>().counters_mut();
                    if ok {
                        counters.segments_sent += u64::from(n);
                        counters.tso_frames += 1;
                        counters.tso_segments += u64::from(n);
                        sent += n as usize;
                    } else {
                        counters.send_failures += u64::from(n);
                    }
                    continue;
                }
                other => pending = other,
            }
        }
        sent += send_one(cx, tuple, index, &mut seg);
    }
    sent
}

/// The next segment of the connection in slot `index`
/// ([`TcpSockets::next_segment`], cuts at the window edge taking buffers
/// from the port's pool).
#[inline]
fn next_segment<B, S>(cx: &mut Cx<'_, B, S>, index: u32, now_ns: u64) -> Option<SegmentOut<B>>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    let (state, port) = cx.split();
    Part::<TcpSockets<B>>::part_mut(state).next_segment(index, now_ns, &mut || port.alloc())
}

/// Joins `first`, `second` and the segments that follow them in the
/// connection of slot `index` into one super-segment ([`Batch`]) and sends
/// it. Returns the segments it carried (or that were lost with it),
/// whether it left, and the segment that could not join, for the caller.
/// Out of line: a port without TSO never comes here.
#[inline(never)]
fn send_batch<B, S>(
    cx: &mut Cx<'_, B, S>,
    tuple: &FourTuple,
    first: SegmentOut<B>,
    second: SegmentOut<B>,
    index: u32,
    max_buffers: usize,
) -> (u32, bool, Option<SegmentOut<B>>)
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Egress<B>>,
{
    let now_ns = cx.now_ns();
    let Ok(mut batch) = Batch::start(cx, tuple, first, max_buffers) else {
        // Both are lost to the wire; retransmission recovers them.
        return (2, false, None);
    };
    let mut lost = 0;
    let mut rest = None;
    let mut next = Some(second);
    while let Some(seg) = next.take() {
        if !batch.accepts(&seg) {
            rest = Some(seg);
            break;
        }
        if batch.push(cx, seg).is_err() {
            lost += 1;
            break;
        }
        next = next_segment(cx, index, now_ns);
    }
    let n = batch.segments();
    let ok = batch.send(cx, tuple).is_ok();
    if ok && lost > 0 {
        cx.part::<TcpSockets<B>>().counters_mut().send_failures += lost;
    }
    (n + if ok { 0 } else { lost as u32 }, ok, rest)
}

/// Raises the events of the connection in slot `index` now: input calls
/// it right after the connection took a segment, so the application
/// (which runs after the stages' `process` and before their `poll`) sees
/// the segment in the same loop iteration and its answer leaves in that
/// iteration's output. Segments stay with [`flush`], once per iteration.
pub fn raise<B, S>(cx: &mut Cx<'_, B, S>, index: u32)
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events>,
{
    let event = cx.part::<TcpSockets<B>>().input_event(index);
    raise_input_event(cx, index, event);
}

/// [`raise`] of the events input found on the connection in slot
/// `index` ([`TcpSockets::input_event`], or as
/// [`TcpSockets::deliver`] took them).
#[inline]
pub(crate) fn raise_input_event<B, S>(cx: &mut Cx<'_, B, S>, index: u32, event: InputEvent)
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events>,
{
    // The common answer straight through: nothing, or one `Readable` or
    // `Writable`; the rest out of line.
    match event {
        InputEvent::None => {}
        InputEvent::One(event) => {
            if !cx.part::<Events>().push(event) {
                cx.part::<TcpSockets<B>>().defer(index, event.kind, false);
            }
        }
        InputEvent::More => raise_all(cx, index),
    }
}

/// [`raise`] for events other than one `Readable` or `Writable`.
#[cold]
#[inline(never)]
fn raise_all<B, S>(cx: &mut Cx<'_, B, S>, index: u32)
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events>,
{
    let sockets = cx.part::<TcpSockets<B>>();
    if !sockets.gather_events(index) {
        return;
    }
    let mut events = sockets.take_events();
    sockets.raise(index, &mut events, true);
    if !events.is_empty() {
        push_events(cx, index, &mut events, false);
    }
    cx.part::<TcpSockets<B>>().return_events(events);
}

/// Pushes `events` of slot `index` into the state's [`Events`], keeping
/// on the connection any that do not fit (`counted` as deferred); leaves
/// `events` empty.
fn push_events<B, S>(
    cx: &mut Cx<'_, B, S>,
    index: u32,
    events: &mut Vec<tpa::app::Event>,
    counted: bool,
) where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events>,
{
    let taken = cx.part::<Events>().push_slice(events);
    // The queue is full from the first refused on: the rest stay, in order.
    for event in &events[taken..] {
        cx.part::<TcpSockets<B>>().defer(index, event.kind, counted);
    }
    events.clear();
}

/// Runs the connections' timers due now, then [`flush`]es what they
/// produced; returns how many timers ran.
pub fn fire_timers<B, S>(cx: &mut Cx<'_, B, S>) -> usize
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>> + Parts<(TcpSockets<B>, Egress<B>)>,
{
    let now_ns = cx.now_ns();
    let fired = cx.part::<TcpSockets<B>>().fire_due(now_ns);
    if fired > 0 {
        flush(cx);
    }
    fired
}

/// [`send_segment_in_place`](super::wire::send_segment_in_place) for the connection in slot `index` of the
/// table (the output path's every segment), with no owner: over IPv4 the
/// Ethernet and IPv4 headers come from the connection's way out
/// ([`Egress::send_tcp_v4_on`], built by its first segment), the same
/// frame; over IPv6 likewise from its IPv6 way out
/// ([`Egress::send_tcp_v6_on`]).
///
/// # Errors
///
/// As [`send_segment`](super::wire::send_segment).
#[inline]
fn send_segment_on_path<B, S>(
    cx: &mut Cx<'_, B, S>,
    tuple: &FourTuple,
    index: u32,
    seg: &mut SegmentOut<B>,
) -> Result<Sent, SocketError>
where
    B: PacketBuf,
    S: Part<Egress<B>> + Parts<(TcpSockets<B>, Egress<B>)>,
{
    let (buf, header, offload) = build_segment(cx, tuple, seg)?;
    if let (SocketAddr::V4(local), SocketAddr::V4(remote)) = (tuple.local, tuple.remote) {
        let (src, dst) = (*local.ip(), *remote.ip());
        let buf = checksum_v4(buf, offload, (src, dst));
        let ((sockets, egress), port) = cx.parts::<(TcpSockets<B>, Egress<B>)>();
        return match sockets.conn_path(index) {
            Some(path) => egress.send_tcp_v4_on(port, buf, path, (src, dst), header),
            None => send_tcp_v4(cx, buf, (src, dst), header, None),
        };
    }
    send_v6_on_path(cx, buf, tuple, index, header, offload)
}

/// The rest of [`send_segment_on_path`] for a tuple that is not IPv4's:
/// over IPv6 the connection's IPv6 way out ([`Egress::send_tcp_v6_on`]).
/// Out of line: the IPv4 case stays as it was.
#[inline(never)]
fn send_v6_on_path<B, S>(
    cx: &mut Cx<'_, B, S>,
    buf: B,
    tuple: &FourTuple,
    index: u32,
    header: usize,
    offload: bool,
) -> Result<Sent, SocketError>
where
    B: PacketBuf,
    S: Part<Egress<B>> + Parts<(TcpSockets<B>, Egress<B>)>,
{
    if let (SocketAddr::V6(local), SocketAddr::V6(remote)) = (tuple.local, tuple.remote) {
        let (src, dst) = (*local.ip(), *remote.ip());
        let ((sockets, egress), port) = cx.parts::<(TcpSockets<B>, Egress<B>)>();
        if let Some(path) = sockets.conn_path6(index) {
            let buf = checksum_other(buf, offload, tuple);
            return egress.send_tcp_v6_on(port, buf, path, (src, dst), header);
        }
    }
    send_other(cx, buf, tuple, header, offload, None)
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;
    use std::net::SocketAddr;

    use tpa::buf::PacketBuf;

    use crate::tcp::config::TcpConfig;
    use crate::tcp::socket::{accept, listen, recv, send};
    use crate::tcp::testing::{Bench, Seg};
    use crate::testing::{pool, BufferPool};

    thread_local! {
        /// Whether `flush` tries the straight case (the tests' switch to
        /// compare it with the full path).
        pub(in crate::tcp) static STRAIGHT: Cell<bool> = const { Cell::new(true) };
        /// Segments the straight case sent on this thread.
        pub(in crate::tcp) static STRAIGHT_SENT: Cell<u64> = const { Cell::new(0) };
    }

    /// A segment from the peer's port 5000 to our port 80.
    fn from(seq: u32, ack: u32) -> Seg {
        Seg {
            src_port: 5000,
            dst_port: 80,
            seq,
            ack: Some(ack),
            window: 65535,
            ..Seg::default()
        }
    }

    /// A passive connection over IPv4 or IPv6 on a port with or without
    /// TSO, the straight case on or off: four request/response rounds of
    /// 64 bytes, a small write of 1 byte, then peer data nobody answers
    /// (its ACK on the delayed-ACK timer). Every frame sent (IPv4's ID
    /// and header checksum zeroed: each egress part starts its IDs at
    /// its own point) and the straight case's segments.
    fn exchange(v6: bool, tso: bool, straight: bool) -> (Vec<Vec<u8>>, u64) {
        STRAIGHT.with(|s| s.set(straight));
        STRAIGHT_SENT.with(|n| n.set(0));
        let mut b = Bench::new(TcpConfig::default());
        b.tso = tso;
        let any: SocketAddr = if v6 { "[::]:80" } else { "0.0.0.0:80" }.parse().unwrap();
        let l = b.call(|cx| listen(cx, any, 8)).0.unwrap();
        let syn = Seg {
            src_port: 5000,
            ..Seg::syn(1000, 80)
        };
        let (_, out) = b.input(v6, &syn);
        let iss = out[0].seq;
        let (mut ours, mut theirs) = (iss.wrapping_add(1), 1001u32);
        b.input(v6, &from(theirs, ours));
        let (c, _) = b.call(|cx| accept(cx, l)).0.unwrap();
        for round in 0..4u8 {
            let request = [round; 64];
            let (n, out) = b.call(|cx| send(cx, c, &request));
            assert_eq!(n, Ok(64));
            assert_eq!(out.len(), 1, "round {round}: {out:?}");
            assert_eq!(out[0].payload, request);
            ours = ours.wrapping_add(64);
            let answer = Seg {
                psh: true,
                payload: vec![round ^ 0xff; 64],
                ..from(theirs, ours)
            };
            assert_eq!(b.input(v6, &answer).0, "consumed");
            theirs += 64;
            let got = b.call(|cx| recv(cx, c).map(|o| o.map(|buf| buf.data().to_vec())));
            assert_eq!(got.0, Ok(Some(vec![round ^ 0xff; 64])));
        }
        let (n, out) = b.call(|cx| send(cx, c, b"x"));
        assert_eq!((n, out.len()), (Ok(1), 1));
        ours = ours.wrapping_add(1);
        let unanswered = Seg {
            psh: true,
            payload: vec![7; 10],
            ..from(theirs, ours)
        };
        b.input(v6, &unanswered);
        theirs += 10;
        let (_, out) = b.timers_at(b.now_ns + 1_000_000_000);
        assert!(
            out.iter().any(|s| s.ack == theirs && s.payload.is_empty()),
            "the delayed ACK: {out:?}"
        );
        let mut frames = core::mem::take(&mut b.frames);
        for f in &mut frames {
            if f[12..14] == [0x08, 0x00] {
                f[18..20].fill(0);
                f[24..26].fill(0);
            }
        }
        drop(b);
        STRAIGHT.with(|s| s.set(true));
        (frames, STRAIGHT_SENT.with(Cell::get))
    }

    #[test]
    fn on_a_port_with_tso_a_small_segment_goes_the_straight_way_with_the_full_paths_frame() {
        for v6 in [false, true] {
            let (plain, plain_straight) = exchange(v6, false, true);
            let (tso, tso_straight) = exchange(v6, true, true);
            let (full, full_straight) = exchange(v6, true, false);
            assert_eq!(full_straight, 0, "v6 {v6}: the switch holds the full path");
            // The handshake's segments and the first (which builds the
            // way out) go the full way; the rest straight, TSO or not.
            assert!(tso_straight >= 8, "v6 {v6}: {tso_straight} straight");
            assert_eq!(tso_straight, plain_straight, "v6 {v6}");
            assert_eq!(tso.len(), full.len(), "v6 {v6}");
            assert_eq!(plain.len(), full.len(), "v6 {v6}");
            for (i, (t, f)) in tso.iter().zip(&full).enumerate() {
                assert!(
                    t == f,
                    "v6 {v6}: frame {i}: straight {t:02x?}, full {f:02x?}"
                );
            }
            assert!(plain == full, "v6 {v6}: the port without TSO");
        }
        pool().assert_whole();
    }
}
