//! What happened to a socket, queued for the application.

use std::collections::VecDeque;

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
    queue: VecDeque<Event>,
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
        Events {
            queue: VecDeque::with_capacity(capacity),
            capacity,
            overflowed: 0,
            raised: 0,
        }
    }

    /// Queues `event`; returns false (and counts it) when the queue is full.
    #[inline]
    pub fn push(&mut self, event: Event) -> bool {
        if self.queue.len() >= self.capacity {
            self.overflowed += 1;
            return false;
        }
        self.raised += 1;
        self.queue.push_back(event);
        true
    }

    /// The oldest event, taken out.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
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
