//! What happened on a connection since the application last looked.

use tpa::app::SocketError;

/// Events since the last [`take_events`](super::Connection::take_events):
/// each flag is set once per occurrence and cleared by taking them.
///
/// ```
/// use tpa_stages::tcp::conn::ConnEvents;
/// let ev = ConnEvents::default();
/// assert!(ev.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnEvents {
    /// The handshake completed (ESTABLISHED reached).
    pub connected: bool,
    /// New in-order data (or the end of the stream) can be read.
    pub readable: bool,
    /// Send space opened up after a write was refused, or the connection
    /// became established.
    pub writable: bool,
    /// The peer sent FIN: reads end after the queued data.
    pub peer_closed: bool,
    /// The connection reached CLOSED (or TIME_WAIT after the application
    /// closed it): the application may forget it.
    pub closed: bool,
    /// The error that ended the connection, if one did.
    pub error: Option<SocketError>,
}

impl ConnEvents {
    /// Whether nothing happened: the flags or'ed together and the
    /// error's tag, not a compare each (every segment's events are
    /// checked).
    ///
    /// ```
    /// use tpa_stages::tcp::conn::ConnEvents;
    /// let ev = ConnEvents { readable: true, ..ConnEvents::default() };
    /// assert!(!ev.is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        let empty = (u8::from(self.readable) | u8::from(self.writable)) == 0
            && !self.beyond_readable_writable();
        debug_assert_eq!(empty, *self == ConnEvents::default());
        empty
    }

    /// Whether anything but `readable` and `writable` happened: the
    /// flags or'ed together, not a branch each (every segment's events
    /// are checked).
    ///
    /// ```
    /// use tpa_stages::tcp::conn::ConnEvents;
    /// let ev = ConnEvents { readable: true, writable: true, ..ConnEvents::default() };
    /// assert!(!ev.beyond_readable_writable());
    /// assert!(ConnEvents { closed: true, ..ev }.beyond_readable_writable());
    /// ```
    #[inline]
    pub fn beyond_readable_writable(&self) -> bool {
        (u8::from(self.connected) | u8::from(self.peer_closed) | u8::from(self.closed)) != 0
            || self.error.is_some()
    }
}
