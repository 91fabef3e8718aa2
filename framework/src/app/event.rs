//! What happened to a socket, queued for the application.

use super::SocketError;

/// The transport a socket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// A UDP socket.
    Udp,
    /// A TCP socket (listening or connected).
    Tcp,
}

/// A socket's handle: its transport, its slot in that transport's table and
/// the slot's generation, so a handle to a closed socket whose slot was
/// reused is told apart from the new socket's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    /// The transport's table.
    pub transport: Transport,
    /// The slot in that table.
    pub index: u32,
    /// How many sockets used the slot before.
    pub generation: u32,
}

impl SocketId {
    /// A handle to slot `index` of `transport`'s table, at `generation`.
    pub const fn new(transport: Transport, index: u32, generation: u32) -> Self {
        SocketId {
            transport,
            index,
            generation,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A connection was accepted on `listener`; the event's socket is the
    /// new one.
    Accepted {
        /// The listening socket.
        listener: SocketId,
    },
    /// Data to read.
    Readable,
    /// Room to write again.
    Writable,
    /// The peer finished sending.
    PeerClosed,
    /// A send failed, or the connection did.
    Error(SocketError),
    /// The socket is gone.
    Closed,
}

/// One event for the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The socket it happened to.
    pub socket: SocketId,
    /// What happened.
    pub kind: EventKind,
}

/// Events a bounded [`Events`] queue holds by default.
pub const EVENTS_CAPACITY: usize = 4096;

/// The events waiting for the application, in the order they happened: a
/// part of the pipeline state, filled by the protocol stages and drained by
/// the deliver phase (or by an application that owns its loop).
///
/// Bounded: when full, a new event is dropped and counted
/// ([`overflowed`](Self::overflowed)). Protocols raise level-like events
/// once per transition (readable when a queue becomes non-empty), so the
/// queue holds at most a few events per socket.
///
/// ```
/// use tpa::app::{Event, EventKind, Events, SocketId, Transport};
/// let mut events = Events::default();
/// let socket = SocketId::new(Transport::Udp, 0, 0);
/// events.push(Event { socket, kind: EventKind::Readable });
/// assert_eq!(events.pop().map(|e| e.kind), Some(EventKind::Readable));
/// assert!(events.pop().is_none());
/// ```
#[derive(Debug)]
pub struct Events {
    /// A ring of a power of two slots (at least `capacity`): the events
    /// waiting are the `len` from `head` on, wrapping; the others hold
    /// stale copies. A mask wraps an index (no compare, no growth check).
    ring: Box<[Event]>,
    head: usize,
    len: usize,
    capacity: usize,
    overflowed: u64,
    raised: u64,
}

impl Default for Events {
    fn default() -> Self {
        Events::with_capacity(EVENTS_CAPACITY)
    }
}

impl Events {
    /// A queue of at most `capacity` events (allocated up front).
    pub fn with_capacity(capacity: usize) -> Self {
        let unused = Event {
            socket: SocketId::new(Transport::Udp, 0, 0),
            kind: EventKind::Closed,
        };
        Events {
            ring: vec![unused; capacity.next_power_of_two()].into_boxed_slice(),
            head: 0,
            len: 0,
            capacity,
            overflowed: 0,
            raised: 0,
        }
    }

    /// The ring's slot of position `at` counted from its start, wrapped.
    #[inline]
    fn slot(&self, at: usize) -> usize {
        at & (self.ring.len() - 1)
    }

    /// Queues `event`; returns false (and counts it) when the queue is full.
    #[inline]
    pub fn push(&mut self, event: Event) -> bool {
        if self.len >= self.capacity {
            self.overflowed += 1;
            return false;
        }
        self.raised += 1;
        let at = self.slot(self.head + self.len);
        self.ring[at] = event;
        self.len += 1;
        true
    }

    /// Queues `events` in order, as many as fit; returns how many. Each one
    /// left out is counted as [`push`](Self::push) counts it: the same as
    /// pushing them one by one, with the room checked once.
    #[inline]
    pub fn push_slice(&mut self, events: &[Event]) -> usize {
        let taken = events.len().min(self.capacity - self.len);
        for (at, &event) in (self.head + self.len..).zip(&events[..taken]) {
            let slot = self.slot(at);
            self.ring[slot] = event;
        }
        self.len += taken;
        self.raised += taken as u64;
        self.overflowed += (events.len() - taken) as u64;
        taken
    }

    /// The oldest event, taken out.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        if self.len == 0 {
            return None;
        }
        let event = self.ring[self.head];
        self.head = self.slot(self.head + 1);
        self.len -= 1;
        Some(event)
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events queued so far.
    pub fn raised(&self) -> u64 {
        self.raised
    }

    /// Events dropped because the queue was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(index: u32) -> Event {
        Event {
            socket: SocketId::new(Transport::Tcp, index, 0),
            kind: EventKind::Readable,
        }
    }

    #[test]
    fn a_ring_of_three_keeps_order_across_its_wrap_and_refuses_a_fourth() {
        let mut events = Events::with_capacity(3);
        let mut next_in = 0;
        let mut next_out = 0;
        for round in 0..10 {
            while events.push(event(next_in)) {
                next_in += 1;
            }
            assert_eq!(events.len(), 3);
            assert_eq!(events.overflowed(), round + 1);
            for _ in 0..2 {
                assert_eq!(events.pop(), Some(event(next_out)));
                next_out += 1;
            }
        }
        while let Some(e) = events.pop() {
            assert_eq!(e, event(next_out));
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
        assert_eq!(events.raised(), u64::from(next_in));
        assert!(events.is_empty());
    }

    #[test]
    fn a_slice_pushed_at_once_is_queued_and_counted_as_one_by_one() {
        for (capacity, head, batch) in [(3, 0, 2), (3, 2, 3), (5, 3, 4), (4, 1, 6), (0, 0, 2)] {
            let mut at_once = Events::with_capacity(capacity);
            let mut one_by_one = Events::with_capacity(capacity);
            // Start part way round the ring, so the slice wraps.
            for events in [&mut at_once, &mut one_by_one] {
                for i in 0..head {
                    events.push(event(100 + i));
                    events.pop();
                }
                events.push(event(99));
            }
            let slice: Vec<Event> = (0..batch).map(event).collect();
            let taken = at_once.push_slice(&slice);
            let accepted: Vec<bool> = slice.iter().map(|&e| one_by_one.push(e)).collect();
            let pushed = accepted.iter().take_while(|&&ok| ok).count();
            assert!(
                accepted[pushed..].iter().all(|&ok| !ok),
                "full from the first refused on"
            );
            assert_eq!(taken, pushed);
            assert_eq!(
                (at_once.len(), at_once.raised(), at_once.overflowed()),
                (
                    one_by_one.len(),
                    one_by_one.raised(),
                    one_by_one.overflowed()
                )
            );
            while let Some(e) = one_by_one.pop() {
                assert_eq!(at_once.pop(), Some(e));
            }
            assert!(at_once.is_empty());
        }
    }

    #[test]
    fn a_queue_of_no_room_refuses_every_event() {
        let mut events = Events::with_capacity(0);
        assert!(!events.push(event(0)));
        assert_eq!(events.pop(), None);
        assert_eq!(events.overflowed(), 1);
    }
}
