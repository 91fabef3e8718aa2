//! The connection states of RFC 9293 §3.3.2.

/// A connection's state (RFC 9293 §3.3.2).
///
/// ```
/// use tpa_stages::tcp::conn::State;
/// assert!(State::Established.is_synchronized());
/// assert!(!State::SynSent.is_synchronized());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection.
    Closed,
    /// Waiting for a SYN (listeners live in the socket table, not here).
    Listen,
    /// Our SYN is out, waiting for the peer's.
    SynSent,
    /// Both SYNs seen, ours not yet acknowledged.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We closed; our FIN is not yet acknowledged.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's.
    FinWait2,
    /// The peer closed; we may still send.
    CloseWait,
    /// Both closed at once; waiting for the ACK of our FIN.
    Closing,
    /// The peer closed first, then we did; waiting for the ACK of our FIN.
    LastAck,
    /// Both closed; waiting 2 MSL for stray segments.
    TimeWait,
}

impl State {
    /// Whether both sides' sequence numbers are known (RFC 9293 §3.5: every
    /// state past the handshake).
    ///
    /// ```
    /// use tpa_stages::tcp::conn::State;
    /// assert!(State::TimeWait.is_synchronized());
    /// ```
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// Whether our FIN has been queued (we can no longer send data).
    ///
    /// ```
    /// use tpa_stages::tcp::conn::State;
    /// assert!(State::LastAck.fin_queued());
    /// ```
    pub fn fin_queued(self) -> bool {
        matches!(
            self,
            State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait
        )
    }

    /// Whether the peer's FIN has arrived (nothing more to receive).
    ///
    /// ```
    /// use tpa_stages::tcp::conn::State;
    /// assert!(State::CloseWait.peer_fin_received());
    /// ```
    pub fn peer_fin_received(self) -> bool {
        matches!(
            self,
            State::CloseWait | State::Closing | State::LastAck | State::TimeWait
        )
    }
}
