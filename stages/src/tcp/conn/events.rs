//! What happened on a connection since the application last looked.

use core::fmt;

use tpa::app::SocketError;

/// Events since the last [`take_events`](super::Connection::take_events):
/// each flag is set once per occurrence and cleared by taking them.
///
/// The flags are bits of one byte, the error's presence one of them, so
/// "nothing happened" and "nothing but readable or writable" are a
/// single test each (every segment's events are checked).
///
/// ```
/// use tpa_stages::tcp::conn::ConnEvents;
/// let ev = ConnEvents::default();
/// assert!(ev.is_empty());
/// assert!(!ev.readable() && ev.error().is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnEvents {
    /// The `CONNECTED` ... `ERROR` bits; `ERROR` exactly when `error` is
    /// some.
    flags: u8,
    error: Option<SocketError>,
}

impl ConnEvents {
    const CONNECTED: u8 = 1;
    const READABLE: u8 = 1 << 1;
    const WRITABLE: u8 = 1 << 2;
    const PEER_CLOSED: u8 = 1 << 3;
    const CLOSED: u8 = 1 << 4;
    const ERROR: u8 = 1 << 5;

    /// The handshake completed (ESTABLISHED reached).
    #[inline]
    pub fn connected(&self) -> bool {
        self.flags & Self::CONNECTED != 0
    }

    /// New in-order data (or the end of the stream) can be read.
    #[inline]
    pub fn readable(&self) -> bool {
        self.flags & Self::READABLE != 0
    }

    /// Send space opened up after a write was refused, or the connection
    /// became established.
    #[inline]
    pub fn writable(&self) -> bool {
        self.flags & Self::WRITABLE != 0
    }

    /// The peer sent FIN: reads end after the queued data.
    #[inline]
    pub fn peer_closed(&self) -> bool {
        self.flags & Self::PEER_CLOSED != 0
    }

    /// The connection reached CLOSED (or TIME_WAIT after the application
    /// closed it): the application may forget it.
    #[inline]
    pub fn closed(&self) -> bool {
        self.flags & Self::CLOSED != 0
    }

    /// The error that ended the connection, if one did.
    #[inline]
    pub fn error(&self) -> Option<SocketError> {
        self.error
    }

    /// Whether nothing happened: the flags' byte is zero.
    ///
    /// ```
    /// use tpa_stages::tcp::conn::ConnEvents;
    /// assert!(ConnEvents::default().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        let empty = self.flags == 0;
        debug_assert_eq!(empty, *self == ConnEvents::default());
        empty
    }

    /// Whether anything but `readable` and `writable` happened: one mask
    /// test of the flags' byte.
    ///
    /// ```
    /// use tpa_stages::tcp::conn::ConnEvents;
    /// assert!(!ConnEvents::default().beyond_readable_writable());
    /// ```
    #[inline]
    pub fn beyond_readable_writable(&self) -> bool {
        let beyond = self.flags & !(Self::READABLE | Self::WRITABLE) != 0;
        debug_assert_eq!(
            beyond,
            self.connected() || self.peer_closed() || self.closed() || self.error.is_some()
        );
        beyond
    }

    /// Notes the handshake's completion.
    #[inline]
    pub(crate) fn set_connected(&mut self) {
        self.flags |= Self::CONNECTED;
    }

    /// Notes data (or the end of the stream) to read.
    #[inline]
    pub(crate) fn set_readable(&mut self) {
        self.flags |= Self::READABLE;
    }

    /// Notes send space for a refused write (or the handshake's).
    #[inline]
    pub(crate) fn set_writable(&mut self) {
        self.flags |= Self::WRITABLE;
    }

    /// Notes the peer's FIN.
    #[inline]
    pub(crate) fn set_peer_closed(&mut self) {
        self.flags |= Self::PEER_CLOSED;
    }

    /// Notes the connection's end.
    #[inline]
    pub(crate) fn set_closed(&mut self) {
        self.flags |= Self::CLOSED;
    }

    /// Notes the error that ended the connection (replacing any noted).
    #[inline]
    pub(crate) fn set_error(&mut self, error: SocketError) {
        self.flags |= Self::ERROR;
        self.error = Some(error);
    }

    /// Adds `later`'s events to these; an error noted here stays.
    #[inline]
    pub(crate) fn merge(&mut self, later: ConnEvents) {
        self.flags |= later.flags;
        self.error = self.error.or(later.error);
    }

    /// Drops `readable` when `readable_raised` and `writable` when
    /// `writable_raised`: events the application has in its queue already.
    #[inline]
    pub(crate) fn forget_raised(&mut self, readable_raised: bool, writable_raised: bool) {
        let raised = (u8::from(readable_raised) * Self::READABLE)
            | (u8::from(writable_raised) * Self::WRITABLE);
        self.flags &= !raised;
    }
}

impl fmt::Debug for ConnEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnEvents")
            .field("connected", &self.connected())
            .field("readable", &self.readable())
            .field("writable", &self.writable())
            .field("peer_closed", &self.peer_closed())
            .field("closed", &self.closed())
            .field("error", &self.error)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of the flags' setters.
    type Setter = fn(&mut ConnEvents);

    #[test]
    fn each_flag_reads_back_alone_and_only_readable_writable_stay_short_of_beyond() {
        let setters: [(Setter, bool); 5] = [
            (ConnEvents::set_connected, true),
            (ConnEvents::set_readable, false),
            (ConnEvents::set_writable, false),
            (ConnEvents::set_peer_closed, true),
            (ConnEvents::set_closed, true),
        ];
        for (set, beyond) in setters {
            let mut ev = ConnEvents::default();
            set(&mut ev);
            assert!(!ev.is_empty());
            assert_eq!(ev.beyond_readable_writable(), beyond);
            let read = [
                ev.connected(),
                ev.readable(),
                ev.writable(),
                ev.peer_closed(),
                ev.closed(),
            ];
            assert_eq!(read.iter().filter(|&&f| f).count(), 1);
        }
        let mut ev = ConnEvents::default();
        ev.set_error(SocketError::TimedOut);
        assert!(ev.beyond_readable_writable() && ev.error() == Some(SocketError::TimedOut));
    }

    #[test]
    fn a_merge_keeps_the_first_error_and_forgetting_drops_only_what_was_raised() {
        let mut first = ConnEvents::default();
        first.set_error(SocketError::ConnectionReset);
        let mut later = ConnEvents::default();
        later.set_readable();
        later.set_writable();
        later.set_error(SocketError::TimedOut);
        first.merge(later);
        assert_eq!(first.error(), Some(SocketError::ConnectionReset));
        assert!(first.readable() && first.writable());
        first.forget_raised(true, false);
        assert!(!first.readable() && first.writable());
        let mut only_raised = later;
        only_raised.forget_raised(true, true);
        assert!(only_raised.beyond_readable_writable());
        let mut plain = ConnEvents::default();
        plain.set_readable();
        plain.forget_raised(true, true);
        assert!(plain.is_empty());
    }
}
