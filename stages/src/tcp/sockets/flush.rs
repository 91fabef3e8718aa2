//! What the output path asks of the table: the connections with work,
//! their segments, and their events raised (or deferred when the event
//! queue is full).

use tpa::app::{Event, EventKind};
use tpa::buf::PacketBuf;

use super::lifecycle::Settling;
use super::{Conn, Entry, Slot, TcpCounters, TcpSockets};
use crate::egress::{PathV4, PathV6};
use crate::tcp::conn::{ConnEvents, Connection};
use crate::tcp::segment::SegmentOut;
use crate::tcp::timers::TimerQueue;
use crate::tcp::wire::FourTuple;

/// The connection of one slot as the output path's straight case uses
/// it, borrowed once: its engine, its tuple, its ways out, the
/// table's counters, and what settling it in hand takes
/// ([`settle_quiet`](Self::settle_quiet)).
pub(crate) struct ConnOut<'a, B: PacketBuf> {
    /// The engine.
    pub conn: &'a mut Connection<B>,
    /// Its addresses and ports.
    pub tuple: &'a FourTuple,
    /// Its IPv4 way out (built by its first segment).
    pub path: &'a mut PathV4,
    /// Its IPv6 way out (built by its first segment; none before it).
    pub path6: &'a mut Option<Box<PathV6>>,
    /// The table's counters.
    pub counters: &'a mut TcpCounters,
    /// The rest of its slot and the timer queue, for its settle.
    pub(super) settling: Settling<'a>,
}

impl<'a, B: PacketBuf> ConnOut<'a, B> {
    /// The parts of table entry `c` the output path works on.
    #[inline(always)]
    fn of(
        c: &'a mut Conn<B>,
        counters: &'a mut TcpCounters,
        timers: &'a mut TimerQueue,
        index: u32,
    ) -> Self {
        ConnOut {
            conn: &mut c.conn,
            tuple: &c.tuple,
            path: &mut c.path,
            path6: &mut c.path6,
            counters,
            settling: Settling {
                pending: &c.pending,
                raised_readable: &mut c.raised_readable,
                raised_writable: &mut c.raised_writable,
                timer_at: &mut c.timer_at,
                timers,
                index,
            },
        }
    }
}

impl<B: PacketBuf> TcpSockets<B> {
    /// Whether a connection waits for the output path.
    #[inline]
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// How many connections wait for the output path: it works through
    /// that many in place ([`take_dirty_at`](Self::take_dirty_at)), then
    /// drops them ([`drop_dirty`](Self::drop_dirty)).
    #[inline]
    pub(crate) fn dirty_len(&self) -> usize {
        self.dirty.len()
    }

    /// The slot at `at` in the dirty list and its connection borrowed
    /// for the output path ([`ConnOut`]) with its mark cleared, the slot
    /// looked up once: work on it from now on marks it again, for the
    /// next pass. No connection when the slot holds none.
    #[inline]
    pub(crate) fn take_dirty_at(&mut self, at: usize) -> (u32, Option<ConnOut<'_, B>>) {
        let index = self.dirty[at];
        let TcpSockets {
            slots,
            counters,
            timers,
            ..
        } = self;
        let out = match &mut slots[index as usize].entry {
            Entry::Conn(c) => {
                c.dirty = false;
                Some(ConnOut::of(c, counters, timers, index))
            }
            _ => None,
        };
        (index, out)
    }

    /// Drops the first `n` slots of the dirty list (worked through); the
    /// ones marked meanwhile stay for the next pass.
    #[inline]
    pub(crate) fn drop_dirty(&mut self, n: usize) {
        if n == self.dirty.len() {
            self.dirty.clear();
        } else {
            self.dirty.drain(..n);
        }
    }

    /// The events list's allocation, empty; give it back with
    /// [`return_events`](Self::return_events).
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.events)
    }

    /// Gives back the events list taken by [`take_events`](Self::take_events).
    pub(crate) fn return_events(&mut self, mut events: Vec<Event>) {
        events.clear();
        if events.capacity() >= self.events.capacity() {
            self.events = events;
        }
    }

    /// The connection in slot `index` borrowed for the output path's
    /// straight case ([`ConnOut`]), if the slot holds one.
    #[inline]
    pub(crate) fn conn_out(&mut self, index: u32) -> Option<ConnOut<'_, B>> {
        let TcpSockets {
            slots,
            counters,
            timers,
            ..
        } = self;
        match &mut slots[index as usize].entry {
            Entry::Conn(c) => Some(ConnOut::of(c, counters, timers, index)),
            _ => None,
        }
    }

    /// The IPv4 way out of the connection in slot `index` (built by its
    /// first segment), if the slot holds a connection.
    #[inline]
    pub(crate) fn conn_path(&mut self, index: u32) -> Option<&mut PathV4> {
        match &mut self.slots[index as usize].entry {
            Entry::Conn(c) => Some(&mut c.path),
            _ => None,
        }
    }

    /// The IPv6 way out of the connection in slot `index` (built by its
    /// first segment: boxed here the first time), if the slot holds a
    /// connection.
    pub(crate) fn conn_path6(&mut self, index: u32) -> Option<&mut PathV6> {
        match &mut self.slots[index as usize].entry {
            Entry::Conn(c) => Some(c.path6.get_or_insert_with(Box::default)),
            _ => None,
        }
    }

    /// The next segment the connection in slot `index` sends (its tuple:
    /// [`conn_tuple`](Self::conn_tuple)). When it has nothing, a chunk
    /// the peer's window ends inside is cut at the edge
    /// ([`Connection::fit_window`](crate::tcp::conn::Connection::fit_window), buffers from `alloc`) and its first
    /// part sent.
    #[inline]
    pub(crate) fn next_segment(
        &mut self,
        index: u32,
        now_ns: u64,
        alloc: &mut dyn FnMut() -> Option<B>,
    ) -> Option<SegmentOut<B>> {
        let c = self.conn_entry(index)?;
        match c.conn.poll_transmit(now_ns) {
            Some(seg) => Some(seg),
            None if c.conn.fit_window(alloc) => c.conn.poll_transmit(now_ns),
            None => None,
        }
    }

    /// Collects the events of the connection in slot `index` into `out`
    /// (none once the application closed it), and puts a passive
    /// connection whose handshake completed just now on its listener's
    /// accept queue. Input calls it right after a segment, so the
    /// application sees the segment in the same loop iteration;
    /// [`settle_quiet`](Self::settle_quiet) does the same (its check inline) for what
    /// output and timers raised. Input's calls (`coalesce`) leave out a `Readable`
    /// or `Writable` input already raised since the last settle: it is
    /// still in the queue, the application not having run in between.
    #[inline]
    pub(crate) fn raise(&mut self, index: u32, out: &mut Vec<Event>, coalesce: bool) {
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        let ev = c.conn.take_events();
        if ev.is_empty() && c.pending.is_none() {
            return; // the common case after input raised them already
        }
        self.raise_events(index, ev, out, coalesce);
    }

    /// [`raise`](Self::raise) once the connection has events `ev` or
    /// some pending (out of line: most calls find none).
    #[inline(never)]
    pub(super) fn raise_events(
        &mut self,
        index: u32,
        ev: ConnEvents,
        out: &mut Vec<Event>,
        coalesce: bool,
    ) {
        let id = self.id(index);
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        let mut events = c.pending.take().unwrap_or_default();
        events.merge(ev);
        if coalesce {
            events.forget_raised(c.raised_readable, c.raised_writable);
            c.raised_readable |= events.readable();
            c.raised_writable |= events.writable();
        }
        let (active, listener, app_closed) = (c.active, c.listener, c.app_closed);
        if events.connected() && !app_closed {
            c.announced = true;
        }
        // A half-open passive connection the application never heard of
        // (no `Accepted` yet) dies silently: its handle means nothing to
        // the application.
        let announced = c.announced;
        // The handshake completed just now (not an event raised again): a
        // passive connection joins its listener's accept queue.
        if ev.connected() && !active {
            if let Some(l) = listener.and_then(|l| self.index(l).ok()) {
                if let Some(l) = self.listener_entry(l) {
                    l.established(id);
                }
            }
        }
        if !app_closed && announced {
            let mut push = |kind| out.push(Event { socket: id, kind });
            if events.connected() {
                match (active, listener) {
                    (false, Some(listener)) => push(EventKind::Accepted { listener }),
                    _ => push(EventKind::Writable),
                }
            }

            if events.readable() {
                push(EventKind::Readable);
            }
            if events.writable() && !(events.connected() && active) {
                push(EventKind::Writable);
            }
            if events.peer_closed() {
                push(EventKind::PeerClosed);
            }
            if let Some(e) = events.error() {
                push(EventKind::Error(e));
            }
            if events.closed() {
                push(EventKind::Closed);
            }
        }
    }

    /// Puts `events` (taken by [`settle_raised`](Self::settle_raised) but not raised:
    /// the event queue was full) back on slot `index`, to be raised at
    /// its next turn. `counted` adds it to
    /// [`TcpCounters::events_deferred`](super::TcpCounters::events_deferred).
    pub(crate) fn defer(&mut self, index: u32, kind: EventKind, counted: bool) {
        self.counters.events_deferred += u64::from(counted);
        if let Some(c) = self.conn_entry(index) {
            // Not in the queue after all: not covering a later segment's.
            match kind {
                EventKind::Readable => c.raised_readable = false,
                EventKind::Writable => c.raised_writable = false,
                _ => {}
            }
            let p = c.pending.get_or_insert_with(ConnEvents::default);
            match kind {
                EventKind::Accepted { .. } => p.set_connected(),
                EventKind::Readable => p.set_readable(),
                EventKind::Writable => p.set_writable(),
                EventKind::PeerClosed => p.set_peer_closed(),
                EventKind::Error(e) => p.set_error(e),
                EventKind::Closed => p.set_closed(),
            }
            self.mark(index);
        }
    }

    /// Whether the table has room for one more socket, after freeing the
    /// oldest closed-by-the-application TIME_WAIT connection when it is
    /// full (counted in `time_wait_evictions`): TIME_WAIT counts against
    /// `max_sockets`, and a table full of it must not refuse new
    /// connections (Linux's TIME_WAIT buckets never do).
    pub(super) fn make_room(&mut self) -> bool {
        if self.open < self.cfg.max_sockets {
            return true;
        }
        let evictable = |slots: &[Slot<B>], (i, generation): (u32, u32)| {
            let slot = &slots[i as usize];
            slot.generation == generation
                && matches!(&slot.entry, Entry::Conn(c) if c.time_wait && c.app_closed)
        };
        let Some(at) = self
            .time_wait
            .iter()
            .position(|&e| evictable(&self.slots, e))
        else {
            return false;
        };
        let (i, _) = self.time_wait.remove(at).expect("a position in the queue");
        self.counters.time_wait_evictions += 1;
        self.free_slot(i);
        true
    }
}
