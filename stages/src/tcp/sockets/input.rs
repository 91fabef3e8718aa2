//! What the input stage asks of the table for a segment: delivery to
//! its connection, ICMP errors, and the events the segment raised.

use tpa::app::{Event, EventKind, SocketId, Transport};
use tpa::buf::PacketBuf;
use tpa::stage::Reason;

use super::{ChallengeAckBudget, Conn, Entry, Slot, TcpCounters, TcpSockets, CONFIRM_INTERVAL_NS};
use crate::packet::TcpPacket;
use crate::tcp::conn::{IcmpError, IcmpOutcome};
use crate::tcp::seq::SeqNumber;
use crate::tcp::wire::CheckedHeader;

/// What [`TcpSockets::deliver_known`] did with a segment.
pub(crate) enum KnownDelivery<B: PacketBuf> {
    /// Delivered: whether it confirms the peer's neighbor, and its
    /// events (as [`TcpSockets::deliver`] returns them).
    Delivered(bool, InputEvent),
    /// Not delivered: its buffer does not hold the segment checked.
    Dropped(Reason),
    /// The slot no longer holds the predicted connection: the segment,
    /// for the general way.
    Elsewhere(TcpPacket<B>),
}

/// The table's parts a delivery writes besides the connection: the
/// spare send buffer, the dirty list, the challenge ACK budget, the
/// counters.
type DeliveryParts<'a, B> = (
    &'a mut Option<B>,
    &'a mut Vec<u32>,
    &'a mut ChallengeAckBudget,
    &'a mut TcpCounters,
);

/// What [`TcpSockets::input_event`] found on a connection after a
/// segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputEvent {
    /// Nothing to raise.
    None,
    /// This one event, taken from the connection.
    One(Event),
    /// Something else: the full path raises it.
    More,
}

impl<B: PacketBuf> TcpSockets<B> {
    /// Hands an ICMP error quoting sequence number `seq` to the
    /// connection in slot `index` (buffers for cutting its send queue
    /// from `alloc`); a path MTU it believes (`mtu`) is remembered for
    /// its peer.
    pub(crate) fn icmp_error(
        &mut self,
        index: u32,
        seq: SeqNumber,
        error: IcmpError,
        mtu: Option<u16>,
        alloc: &mut dyn FnMut() -> Option<B>,
        now_ns: u64,
    ) -> Option<IcmpOutcome> {
        let c = self.conn_entry(index)?;
        let remote = c.tuple.remote.ip();
        let outcome = c.conn.on_icmp_error(seq, error, alloc, now_ns);
        if let (Some(mtu), IcmpOutcome::MssLowered { .. } | IcmpOutcome::MssUnchanged) =
            (mtu, outcome)
        {
            self.path_mtus.note(remote, mtu, now_ns);
        }
        self.mark(index);
        Some(outcome)
    }

    /// The generation of slot `index` while it holds a connection: the
    /// connection found there before is still there (and on the same
    /// 4-tuple) while the generation is the same.
    #[inline]
    pub(crate) fn conn_generation(&self, index: u32) -> Option<u32> {
        match self.slots.get(index as usize)? {
            Slot {
                entry: Entry::Conn(_),
                generation,
            } => Some(*generation),
            _ => None,
        }
    }

    /// Hands the segment the input stage checked (`header`, `payload`)
    /// to the connection in slot `index`; a challenge ACK it
    /// calls for takes one from the table's budget (RFC 5961 §7) or is
    /// withheld. Returns whether the segment made forward progress that
    /// should confirm the peer's neighbor (see [`CONFIRM_INTERVAL_NS`]),
    /// and the segment's events as [`input_event`](Self::input_event)
    /// finds them, taken with the entry in hand (the slot looked up once).
    #[inline]
    pub(crate) fn deliver(
        &mut self,
        index: u32,
        header: &CheckedHeader,
        payload: Option<B>,
        now_ns: u64,
    ) -> (bool, InputEvent) {
        let TcpSockets {
            slots,
            spare_send_buf,
            dirty,
            challenge_acks,
            counters,
            ..
        } = self;
        let Slot {
            entry: Entry::Conn(c),
            generation,
        } = &mut slots[index as usize]
        else {
            return (false, InputEvent::None);
        };
        let parts = (spare_send_buf, dirty, challenge_acks, counters);
        // The entry itself, found once: not the box's pointer read again
        // from the slot after every store (the table's lists are memory
        // the compiler cannot tell from the slot's).
        Self::deliver_to(&mut **c, index, *generation, parts, header, payload, now_ns)
    }

    /// [`deliver`](Self::deliver) of segment `p` of the flow the input
    /// stage predicted: to the connection in slot `index` if it is still
    /// of `generation` (the slot looked up once, for the test and the
    /// delivery), its payload taken from `p` only then.
    #[inline]
    pub(crate) fn deliver_known(
        &mut self,
        index: u32,
        generation: u32,
        header: &CheckedHeader,
        p: TcpPacket<B>,
        now_ns: u64,
    ) -> KnownDelivery<B> {
        let TcpSockets {
            slots,
            spare_send_buf,
            dirty,
            challenge_acks,
            counters,
            ..
        } = self;
        let Some(Slot {
            entry: Entry::Conn(c),
            generation: slot_generation,
        }) = slots.get_mut(index as usize)
        else {
            return KnownDelivery::Elsewhere(p);
        };
        if *slot_generation != generation {
            return KnownDelivery::Elsewhere(p);
        }
        let payload = match header.payload(p) {
            Ok(payload) => payload,
            Err(reason) => return KnownDelivery::Dropped(reason),
        };
        let parts = (spare_send_buf, dirty, challenge_acks, counters);
        let (confirm, event) =
            Self::deliver_to(&mut **c, index, generation, parts, header, payload, now_ns);
        KnownDelivery::Delivered(confirm, event)
    }

    /// [`deliver`](Self::deliver) to the connection `c` of slot `index`
    /// (of `generation`), with the table's parts the delivery writes: the
    /// spare send buffer, the dirty list, the challenge ACK budget and
    /// the counters.
    #[inline(always)]
    fn deliver_to(
        c: &mut Conn<B>,
        index: u32,
        generation: u32,
        (spare_send_buf, dirty, challenge_acks, counters): DeliveryParts<'_, B>,
        header: &CheckedHeader,
        payload: Option<B>,
        now_ns: u64,
    ) -> (bool, InputEvent) {
        // The payload's length as checked (`payload` is exactly that:
        // no walk over a chain's segments for it).
        let len = header.data_len as u32;
        #[cfg(any(test, debug_assertions))]
        assert_eq!(len, payload.as_ref().map_or(0, |p| p.total_len() as u32));
        let (progress, released) = if c.conn.predicts(header, payload.is_some(), len) {
            // New data or a new ACK: forward progress; and never a
            // challenge ACK.
            #[cfg(any(test, debug_assertions))]
            let before = (c.conn.progress(), c.conn.challenge_ack_pending());
            let released = c.conn.on_predicted(header, payload, len, now_ns);
            #[cfg(any(test, debug_assertions))]
            assert!(c.conn.progress() != before.0 && c.conn.challenge_ack_pending() == before.1);
            (true, released)
        } else {
            let pending_before = c.conn.challenge_ack_pending();
            let progress_before = c.conn.progress();
            c.conn
                .on_segment_unpredicted(header.segment(payload), len, now_ns);
            let new_challenge = !pending_before && c.conn.challenge_ack_pending();
            if new_challenge && !challenge_acks.allow(now_ns) {
                counters.challenge_acks_limited += 1;
                c.conn.withhold_challenge_ack();
            }
            (c.conn.progress() != progress_before, true)
        };
        // What the ACK released, for the next write: one buffer for the
        // table, whatever the number of connections, so none waits on an
        // idle connection (the buffer of a small write's chunk, released
        // by its ACK, is what the next small write needs). Data that
        // acknowledged nothing new released nothing (every input takes
        // the spare: none is left from before).
        if released {
            if let Some(buf) = c.conn.take_spare_send_buf() {
                *spare_send_buf = Some(buf);
            }
        } else {
            debug_assert!(c.conn.take_spare_send_buf().is_none());
        }
        let confirm = progress && now_ns >= c.next_confirm_ns;
        if confirm {
            c.next_confirm_ns = now_ns.saturating_add(CONFIRM_INTERVAL_NS);
            counters.neighbor_confirmations += 1;
        }
        // Marked for the flush (what `mark` does, the entry in hand).
        if !c.dirty {
            c.dirty = true;
            dirty.push(index);
        }
        (confirm, Self::conn_input_event(c, index, generation))
    }

    /// Input's events of slot `index` after a segment, as a coalescing
    /// [`raise`](Self::raise) would gather them, when they are at most
    /// one event: none when the connection holds nothing but a
    /// `Readable` or `Writable` raised already since the last settle
    /// (every segment of a burst after the first; dropped, as that
    /// `raise` would); one new `Readable` or `Writable` of an announced
    /// connection the application holds (taken, marked raised); anything
    /// else is [`InputEvent::More`], left in place for the full path.
    #[inline]
    pub(crate) fn input_event(&mut self, index: u32) -> InputEvent {
        let generation = self.slots[index as usize].generation;
        let Some(c) = self.conn_entry(index) else {
            return InputEvent::None;
        };
        Self::conn_input_event(c, index, generation)
    }

    /// [`input_event`](Self::input_event) of the connection `c` in slot
    /// `index` of generation `generation`.
    #[inline(always)]
    fn conn_input_event(c: &mut Conn<B>, index: u32, generation: u32) -> InputEvent {
        let ev = c.conn.peek_events();
        // Anything but `Readable` / `Writable`, events held back, or a
        // connection the application does not see: the full way.
        if ev.beyond_readable_writable() || c.pending.is_some() || c.app_closed || !c.announced {
            return InputEvent::More;
        }
        let readable = ev.readable() && !c.raised_readable;
        let writable = ev.writable() && !c.raised_writable;
        let kind = match (readable, writable) {
            (false, false) => {
                // Raised already since the last settle: still queued.
                c.conn.take_events();
                return InputEvent::None;
            }
            (true, false) => {
                c.raised_readable = true;
                EventKind::Readable
            }
            (false, true) => {
                c.raised_writable = true;
                EventKind::Writable
            }
            (true, true) => return InputEvent::More,
        };
        c.conn.take_events();
        InputEvent::One(Event {
            socket: SocketId::new(Transport::Tcp, index, generation),
            kind,
        })
    }

    /// Input's look before [`raise`](Self::raise): whether a coalescing
    /// `raise` of slot `index` has anything to do. When the connection
    /// holds nothing but a `Readable` or `Writable` raised already since
    /// the last settle, it drops them, as that `raise` would, and says no.
    #[inline]
    pub(crate) fn gather_events(&mut self, index: u32) -> bool {
        let Some(c) = self.conn_entry(index) else {
            return false;
        };
        let mut unraised = c.conn.peek_events();
        unraised.forget_raised(c.raised_readable, c.raised_writable);
        if unraised.is_empty() && c.pending.is_none() {
            c.conn.take_events();
            return false;
        }
        true
    }
}
