//! The output path of the TCP connections: after input, after the
//! application ran and after timers, every connection that was touched
//! sends what it has ([`Connection::poll_transmit`](super::conn::Connection::poll_transmit)),
//! raises its events, re-arms its timer and, once closed and released,
//! frees its slot.

use tpa::app::Events;
use tpa::buf::PacketBuf;
use tpa::stage::Cx;
use tpa::state::Part;

use super::mss::mss_for;
use super::sockets::TcpSockets;
use super::wire::{fit_options, send_segment};
use crate::egress::Egress;

/// Works through the connections touched since the last call: sends
/// their segments through the egress path (SACK blocks that would make a
/// segment larger than the path's MSS dropped: [`fit_options`]), raises their events in the
/// state's [`Events`] (an event that does not fit is kept and raised at a
/// later turn), and re-arms their timers. Returns the segments sent.
#[inline]
pub fn flush<B, S>(cx: &mut Cx<'_, B, S>) -> usize
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
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
    S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
{
    let now_ns = cx.now_ns();
    let list = cx.part::<TcpSockets<B>>().take_dirty();
    let mut sent = 0;
    let mut events = cx.part::<TcpSockets<B>>().take_events();
    for &index in &list {
        while let Some((tuple, mut seg)) = cx.part::<TcpSockets<B>>().next_segment(index, now_ns) {
            if seg.options.sack.is_some() {
                let limit = usize::from(mss_for(cx, tuple.local.ip()));
                let dropped = fit_options(&mut seg, limit) as u64;
                cx.part::<TcpSockets<B>>()
                    .counters_mut()
                    .sack_blocks_dropped += dropped;
            }
            // No owner: a neighbor that does not answer is loss to TCP
            // (a soft error, RFC 1122 §4.2.3.9), which retransmission
            // recovers and the engine's timeouts report.
            let ok = send_segment(cx, &tuple, seg, None).is_ok();
            let counters = cx.part::<TcpSockets<B>>().counters_mut();
            if ok {
                counters.segments_sent += 1;
                sent += 1;
            } else {
                counters.send_failures += 1;
            }
        }
        cx.part::<TcpSockets<B>>().settle(index, &mut events);
        if !events.is_empty() {
            push_events(cx, index, &mut events, true);
        }
    }
    let sockets = cx.part::<TcpSockets<B>>();
    sockets.return_events(events);
    sockets.return_dirty(list);
    sent
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
    let sockets = cx.part::<TcpSockets<B>>();
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
    for event in events.drain(..) {
        if !cx.part::<Events>().push(event) {
            cx.part::<TcpSockets<B>>().defer(index, event.kind, counted);
        }
    }
}

/// Runs the connections' timers due now, then [`flush`]es what they
/// produced; returns how many timers ran.
pub fn fire_timers<B, S>(cx: &mut Cx<'_, B, S>) -> usize
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Events> + Part<Egress<B>>,
{
    let now_ns = cx.now_ns();
    let fired = cx.part::<TcpSockets<B>>().fire_due(now_ns);
    if fired > 0 {
        flush(cx);
    }
    fired
}
