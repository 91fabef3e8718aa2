//! A listening socket: its address, its bounded backlog and its accept
//! queue.

use std::collections::VecDeque;
use std::net::SocketAddr;

use tpa::app::SocketId;

/// A listener. Its backlog bounds the connections it holds that the
/// application has not accepted: half-open ones (SYN_RECEIVED) plus
/// established ones waiting in the accept queue. A SYN over the bound is
/// dropped (counted), which bounds what a SYN flood costs: the peer's
/// retransmission retries once the queue drains, unless SYN cookies
/// answer it ([`SynCookieMode`](super::syncookie::SynCookieMode)): a
/// connection made from a cookie's ACK needs room only in the accept
/// queue ([`admit_established`](Self::admit_established)), as Linux's.
///
/// ```
/// use tpa::app::{SocketId, Transport};
/// use tpa_stages::tcp::listen::Listener;
/// let mut l = Listener::new("0.0.0.0:80".parse().unwrap(), 1);
/// assert!(l.admit());
/// assert!(!l.admit(), "the backlog is full");
/// let c = SocketId::new(Transport::Tcp, 5, 0);
/// l.established(c);
/// assert_eq!(l.pop(), Some(c));
/// assert!(l.admit(), "accepting made room");
/// ```
#[derive(Debug, Clone)]
pub struct Listener {
    local: SocketAddr,
    backlog: usize,
    /// Connections held: half-open plus waiting to be accepted.
    held: usize,
    queue: VecDeque<SocketId>,
    /// The counter tick of the last cookie this listener sent.
    last_cookie: Option<u64>,
}

impl Listener {
    /// A listener on `local` holding at most `backlog` (at least 1)
    /// unaccepted connections.
    pub fn new(local: SocketAddr, backlog: usize) -> Self {
        Listener {
            local,
            backlog: backlog.max(1),
            held: 0,
            queue: VecDeque::new(),
            last_cookie: None,
        }
    }

    /// The address listened on.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The backlog.
    pub fn backlog(&self) -> usize {
        self.backlog
    }

    /// Connections held: half-open plus waiting in the accept queue.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Connections waiting in the accept queue.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Takes a place for a new half-open connection, if the backlog has
    /// one.
    pub fn admit(&mut self) -> bool {
        if self.held >= self.backlog {
            return false;
        }
        self.held += 1;
        true
    }

    /// Whether a SYN now would find the backlog full.
    pub fn is_full(&self) -> bool {
        self.held >= self.backlog
    }

    /// Whether the accept queue alone fills the backlog: a connection
    /// made from a cookie now would have no room either.
    pub fn accept_queue_full(&self) -> bool {
        self.queue.len() >= self.backlog
    }

    /// Takes a place for a connection made from a SYN cookie, which
    /// completed its handshake without holding one: there must be room
    /// in the accept queue (established connections waiting, at most the
    /// backlog; half-open ones do not count, as Linux's
    /// `sk_acceptq_is_full`). Call [`established`](Self::established)
    /// next.
    ///
    /// ```
    /// use tpa::app::{SocketId, Transport};
    /// use tpa_stages::tcp::listen::Listener;
    /// let mut l = Listener::new("0.0.0.0:80".parse().unwrap(), 1);
    /// assert!(l.admit(), "a half-open connection");
    /// assert!(l.admit_established(), "the accept queue is empty");
    /// l.established(SocketId::new(Transport::Tcp, 1, 0));
    /// assert!(!l.admit_established(), "the accept queue is full");
    /// ```
    pub fn admit_established(&mut self) -> bool {
        if self.queue.len() >= self.backlog {
            return false;
        }
        self.held += 1;
        true
    }

    /// Records that a cookie went out at counter tick `counter`.
    pub fn cookie_sent(&mut self, counter: u64) {
        self.last_cookie = Some(counter);
    }

    /// Whether a cookie sent by this listener may still be answered at
    /// tick `counter` (one was sent this tick or the previous one: a
    /// cookie lives that long). Linux's `tcp_synq_no_recent_overflow`.
    pub fn cookies_recent(&self, counter: u64) -> bool {
        self.last_cookie
            .is_some_and(|sent| counter.saturating_sub(sent) <= 1)
    }

    /// A held connection completed its handshake: it waits to be
    /// accepted.
    pub fn established(&mut self, socket: SocketId) {
        self.queue.push_back(socket);
    }

    /// The oldest established connection, handed to the application: its
    /// place in the backlog is freed.
    pub fn pop(&mut self) -> Option<SocketId> {
        let socket = self.queue.pop_front()?;
        self.held = self.held.saturating_sub(1);
        Some(socket)
    }

    /// A held connection leaves without [`pop`](Self::pop): the
    /// application took it through another call, or it died before
    /// being accepted. Its place is freed.
    pub fn release(&mut self, socket: SocketId) {
        if let Some(i) = self.queue.iter().position(|&s| s == socket) {
            self.queue.remove(i);
        }
        self.held = self.held.saturating_sub(1);
    }

    /// Every connection waiting in the accept queue, removed (the listener
    /// is closing).
    pub fn drain(&mut self) -> impl Iterator<Item = SocketId> + '_ {
        self.held = 0;
        self.queue.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa::app::Transport;

    #[test]
    fn the_backlog_counts_half_open_and_waiting_connections() {
        let mut l = Listener::new("[::]:443".parse().unwrap(), 3);
        assert!(l.admit() && l.admit() && l.admit());
        assert!(!l.admit());
        let (a, b) = (
            SocketId::new(Transport::Tcp, 1, 0),
            SocketId::new(Transport::Tcp, 2, 0),
        );
        l.established(a);
        l.established(b);
        assert_eq!((l.held(), l.waiting()), (3, 2));
        // b is taken by another call, a third dies half-open.
        l.release(b);
        l.release(SocketId::new(Transport::Tcp, 3, 0));
        assert_eq!((l.held(), l.waiting()), (1, 1));
        assert_eq!(l.pop(), Some(a));
        assert_eq!(l.pop(), None);
        assert_eq!(l.held(), 0);
        assert_eq!(Listener::new(l.local(), 0).backlog(), 1);
    }
}
