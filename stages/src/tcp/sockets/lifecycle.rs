//! A connection after its work: settled (timer re-armed, events
//! raised, closed or moved to TIME_WAIT), and the timers that fall due.

use tpa::app::Event;
use tpa::buf::PacketBuf;

use super::{ConnOut, Entry, TcpSockets, SPARE_QUEUES};
use crate::tcp::conn::{ConnEvents, Connection, State};
use crate::tcp::timers::TimerQueue;

/// A connection's slot as its settle needs it beside its engine, and
/// the timer queue: what [`ConnOut`] carries to settle the connection
/// it has in hand ([`ConnOut::settle_quiet`]).
pub(crate) struct Settling<'a> {
    /// Its events not yet raised.
    pub(super) pending: &'a Option<ConnEvents>,
    /// Its `Readable` raised by input since the last settle.
    pub(super) raised_readable: &'a mut bool,
    /// Its `Writable` raised by input since the last settle.
    pub(super) raised_writable: &'a mut bool,
    /// The deadline of its live entry in the timer queue.
    pub(super) timer_at: &'a mut Option<u64>,
    /// The table's timer queue.
    pub(super) timers: &'a mut TimerQueue,
    /// Its slot.
    pub(super) index: u32,
}

impl<B: PacketBuf> ConnOut<'_, B> {
    /// Whether the connection has events to raise (its own, or some
    /// deferred on its slot).
    #[inline(always)]
    fn has_events(&self) -> bool {
        !self.conn.peek_events().is_empty() || self.settling.pending.is_some()
    }

    /// The common case of settling the connection, its events raised:
    /// neither closed nor in TIME_WAIT, no trace to archive; its timer
    /// re-armed in place. `true` when it needs
    /// [`settle_rare`](TcpSockets::settle_rare) instead. `quiet`: the
    /// connection is known to be neither (found
    /// [`quiet`](crate::tcp::conn::Connection::quiet) by the output
    /// path's straight case: ESTABLISHED, no trace), so it is not
    /// asked again, and its deadline leaves out what ESTABLISHED never
    /// runs ([`next_deadline_established`](Connection::next_deadline_established)).
    #[inline(always)]
    fn rearm(self, quiet: bool) -> bool {
        let ConnOut {
            conn, settling: s, ..
        } = self;
        *s.raised_readable = false;
        *s.raised_writable = false;
        let rare = |conn: &Connection<B>| {
            conn.trace_ring().is_some_and(|r| r.archive_due)
                || matches!(conn.state(), State::TimeWait | State::Closed)
        };
        #[cfg(any(test, debug_assertions))]
        assert!(
            !quiet || !rare(conn),
            "a quiet connection settles the common way"
        );
        if !quiet && rare(conn) {
            return true;
        }
        let next = if quiet {
            conn.next_deadline_established()
        } else {
            conn.next_deadline()
        };
        let Some(at) = next else {
            return false;
        };
        if s.timer_at.is_some_and(|armed| armed <= at) {
            return false;
        }
        *s.timer_at = Some(at);
        s.timers.arm(s.index, at);
        false
    }

    /// [`TcpSockets::settle_quiet`] on the connection in hand, found
    /// [`quiet`](crate::tcp::conn::Connection::quiet) by the output
    /// path's straight case (so never one to settle the rare way:
    /// closed, TIME_WAIT, a trace to archive), the slot not looked up
    /// again, when that is all it needs: `false` when it has events to
    /// raise; the caller then settles it through `settle_quiet`.
    #[inline(always)]
    pub(crate) fn settle_quiet(self) -> bool {
        if self.has_events() {
            return false;
        }
        self.rearm(true);
        true
    }
}

impl<B: PacketBuf> TcpSockets<B> {
    /// [`settle_quiet`](Self::settle_quiet) and, for a connection with
    /// events, [`settle_raised`](Self::settle_raised) into `out`.
    #[cfg(test)]
    pub(crate) fn settle(&mut self, index: u32, out: &mut Vec<Event>) {
        if let Err(ev) = self.settle_quiet(index) {
            self.settle_raised(index, ev, out);
        }
    }

    /// After the connection in slot `index` was worked on: keeps the
    /// accept queue and TIME_WAIT bound, re-arms its timer and frees its
    /// slot once it is CLOSED and nobody holds its handle, the slot
    /// looked up once. That is all for a connection with no event to
    /// raise (the common case: input raised them already). One with
    /// events (or some deferred) gives them back as `Err`, taken and
    /// nothing else done: the caller then finishes with
    /// [`settle_raised`](Self::settle_raised), which raises them
    /// ([`raise`](Self::raise)) into an events list at hand only then.
    #[inline]
    pub(crate) fn settle_quiet(&mut self, index: u32) -> Result<(), ConnEvents> {
        let Some(c) = self.conn_out(index) else {
            return Ok(());
        };
        // Looked at in place, taken only when there are some.
        if c.has_events() {
            return Err(c.conn.take_events());
        }
        if c.rearm(false) {
            self.settle_rare(index);
        }
        Ok(())
    }

    /// The rest of [`settle_quiet`](Self::settle_quiet) once it handed
    /// back the connection's events `ev`: raises them into `out`, then
    /// settles the connection as `settle_quiet` does.
    #[cold]
    #[inline(never)]
    pub(crate) fn settle_raised(&mut self, index: u32, ev: ConnEvents, out: &mut Vec<Event>) {
        self.raise_events(index, ev, out, false);
        if self.conn_out(index).is_some_and(|c| c.rearm(false)) {
            self.settle_rare(index);
        }
    }

    /// [`settle_quiet`](Self::settle_quiet) for a connection closed, in TIME_WAIT or
    /// with its trace to archive.
    #[cold]
    #[inline(never)]
    pub(super) fn settle_rare(&mut self, index: u32) {
        let id = self.id(index);
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        if c.conn.take_trace_archive() {
            let now_ns = c.conn.clock_ns();
            if let Some(t) = self.tracer.as_mut() {
                t.archive(index, id.generation, now_ns);
            }
        }
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        let (listener, announced) = (c.listener, c.announced);
        let closed = c.conn.is_closed() && !c.conn.wants_transmit();
        let state = c.conn.state();
        let deadline = c.conn.next_deadline();
        if state == State::TimeWait {
            self.enter_time_wait(index);
        }
        if closed {
            // Died half-open: out of the backlog. One the application was
            // told of (`Accepted`) stays in the accept queue, as Linux
            // keeps a reset child: `accept` hands it out, its calls report
            // the error, and closing it (or the listener) frees it.
            if let Some(l) = listener.filter(|_| !announced) {
                if let Ok(li) = self.index(l) {
                    if let Some(l) = self.listener_entry(li) {
                        l.release(id);
                    }
                }
                if let Some(c) = self.conn_entry(index) {
                    c.listener = None;
                    // Nobody knows its handle unless it was announced.
                    c.app_closed |= !c.announced;
                }
            }
            if self.conn_entry(index).is_some_and(|c| c.app_closed) {
                self.free_slot(index);
                return;
            }
        }
        self.rearm(index, deadline);
    }

    /// Counts slot `index` into TIME_WAIT (once) and frees the oldest
    /// closed-by-the-application TIME_WAIT connections over the bound.
    pub(super) fn enter_time_wait(&mut self, index: u32) {
        let id = self.id(index);
        let room = self.spare_queues.len() < SPARE_QUEUES;
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        if c.time_wait {
            return;
        }
        c.time_wait = true;
        // Nothing is queued in TIME_WAIT: the storage can serve a new
        // connection now rather than at the end of the wait.
        let storage = room.then(|| c.conn.take_queue_storage()).flatten();
        c.conn.recycle_rack(true);
        self.spare_queues.extend(storage);
        self.time_wait_count += 1;
        self.counters.time_waits += 1;
        self.time_wait.push_back((index, id.generation));
        while self.time_wait_count > self.cfg.time_wait_max {
            let Some((i, generation)) = self.time_wait.pop_front() else {
                break;
            };
            if i == index || self.slots[i as usize].generation != generation {
                continue;
            }
            let evict = self
                .conn_entry(i)
                .is_some_and(|c| c.time_wait && c.app_closed);
            if evict {
                self.counters.time_wait_evictions += 1;
                self.free_slot(i);
            }
        }
        // Entries of freed slots are dropped as they reach the front.
        while let Some(&(i, generation)) = self.time_wait.front() {
            if self.slots[i as usize].generation == generation {
                break;
            }
            self.time_wait.pop_front();
        }
    }

    /// Arms slot `index`'s timer for `deadline` unless its live entry
    /// comes up no later: a deadline that moved later (the RTO restarted
    /// by an ACK, a timer stopped) keeps the earlier entry, which
    /// [`fire_due`](Self::fire_due) re-arms when it comes up, so most
    /// segments push nothing on the queue.
    pub(super) fn rearm(&mut self, index: u32, deadline: Option<u64>) {
        let Some(c) = self.conn_entry(index) else {
            return;
        };
        let Some(at) = deadline else {
            return;
        };
        if c.timer_at.is_some_and(|armed| armed <= at) {
            return;
        }
        c.timer_at = Some(at);
        self.timers.arm(index, at);
    }

    /// When a connection's timer is next due (possibly early: see
    /// [`TimerQueue`]).
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.next_deadline()
    }

    /// Runs the timers of the connections due at `now_ns`; returns how
    /// many ran. Each runs once per call even if it re-arms in the past.
    #[inline]
    pub(crate) fn fire_due(&mut self, now_ns: u64) -> usize {
        // The check inline, the work out of line: nothing is due on
        // nearly every loop iteration.
        if !self.timers.wants_work(now_ns) {
            return 0;
        }
        self.run_due(now_ns)
    }

    #[inline(never)]
    pub(super) fn run_due(&mut self, now_ns: u64) -> usize {
        let mut fired = 0;
        while let Some((at, index)) = self.timers.pop_due(now_ns) {
            let Some(c) = self.conn_entry(index) else {
                continue;
            };
            if c.timer_at != Some(at) {
                continue; // a stale entry
            }
            c.timer_at = None;
            match c.conn.next_deadline() {
                Some(due) if due <= now_ns => {
                    c.conn.on_timer(now_ns);
                    fired += 1;
                    self.mark(index);
                }
                // Armed early (the deadline moved later since) or no
                // timer left: re-arm for the one it has now.
                later => self.rearm(index, later),
            }
        }
        let slots = &self.slots;
        self.timers.compact(|at, i| match &slots[i as usize].entry {
            Entry::Conn(c) => c.timer_at == Some(at),
            _ => false,
        });
        fired
    }
}
