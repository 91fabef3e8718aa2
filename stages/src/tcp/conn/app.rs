//! The application's calls: writes (copy and zero-copy), reads (zero-copy
//! and copy), shutdown, close, abort.
//!
//! Writes before the handshake completes are refused with `WouldBlock`
//! (as a non-blocking Linux socket does while `connect` is in progress);
//! the `connected`/`writable` event says when to write.

use tpa::app::SocketError;
use tpa::buf::PacketBuf;

use super::timers::Deadline;
use super::{Connection, SocketLatency, State};

/// A read's wait: from the arrival stamp to `now_ns` (0 when the stamp is
/// ahead, as a port's clock may be by a little).
fn read_wait(arrived_ns: u64, now_ns: u64) -> u64 {
    now_ns.saturating_sub(arrived_ns)
}

impl<B: PacketBuf> Connection<B> {
    /// Brings the connection's clock up to `now_ns`, the time of the
    /// application's call: what a write's trace record, its latency stamp
    /// and a persist timer it arms read. Without it a call on a quiet
    /// connection would carry the time of its last segment or timer.
    #[inline]
    pub fn advance_clock(&mut self, now_ns: u64) {
        self.clock_ns = self.clock_ns.max(now_ns);
    }

    /// Copies as much of `data` as the send queue takes into buffers from
    /// `alloc`; returns the bytes taken. `WouldBlock` when the queue is
    /// full (or the handshake is not done yet), `BrokenPipe` after
    /// shutdown or close, the connection's error once it failed,
    /// `NoBuffers` when `alloc` gave nothing.
    ///
    /// Small writes fill the last chunk while it is unsent, so writes that
    /// come faster than segments leave leave together; a write after that
    /// chunk went out starts a new segment (with nodelay, small writes make
    /// small segments).
    #[inline]
    pub fn send<A>(&mut self, data: &[u8], alloc: &mut A) -> Result<usize, SocketError>
    where
        A: FnMut() -> Option<B> + ?Sized,
    {
        self.check_writable()?;
        if data.is_empty() {
            return Ok(0);
        }
        if self.send_queue.space() == 0 {
            self.write_blocked = true;
            return Err(SocketError::WouldBlock);
        }
        let max = self.neg.payload_max();
        let chunks = self.send_queue.len();
        let n = self.send_queue.push_copy(data, max, alloc);
        self.stamp_write(chunks);
        if n == 0 {
            return Err(SocketError::NoBuffers);
        }
        self.update_persist(self.clock_ns);
        self.trace_write(n);
        Ok(n)
    }

    /// The buffer of a chunk the last cumulative ACK released, emptied as
    /// new, if it was held alone: the table keeps a few for the next
    /// writes, which then skip the pool.
    #[inline]
    pub(crate) fn take_spare_send_buf(&mut self) -> Option<B> {
        self.send_queue.take_spare()
    }

    /// Queues `buf` as one segment without copying: it is shared into the
    /// send queue and released when the peer acknowledges it. At most
    /// [`send_mss`](Connection::send_mss) bytes (`MessageTooLong`
    /// otherwise); `WouldBlock` when the queue lacks room for all of it.
    /// The buffer comes back with the error.
    pub fn send_buf(&mut self, buf: B) -> Result<(), (SocketError, B)> {
        if let Err(e) = self.check_writable() {
            return Err((e, buf));
        }
        let len = buf.total_len();
        if len > self.neg.payload_max() {
            return Err((SocketError::MessageTooLong, buf));
        }
        if len == 0 {
            return Ok(());
        }
        if len > self.send_queue.space() {
            self.write_blocked = true;
            return Err((SocketError::WouldBlock, buf));
        }
        let chunks = self.send_queue.len();
        self.send_queue.push_buf(buf);
        self.stamp_write(chunks);
        self.update_persist(self.clock_ns);
        self.trace_write(len);
        Ok(())
    }

    /// The most payload one segment (and one [`send_buf`](Connection::send_buf)) carries.
    pub fn send_mss(&self) -> usize {
        self.neg.payload_max()
    }

    /// Whether writes are allowed now.
    #[inline]
    fn check_writable(&self) -> Result<(), SocketError> {
        // The common answer first, one compare rather than the match's
        // jump table.
        if self.state == State::Established && !self.fin_requested {
            return Ok(());
        }
        match self.state {
            State::Established | State::CloseWait if !self.fin_requested => Ok(()),
            State::SynSent | State::SynReceived if !self.fin_requested => {
                Err(SocketError::WouldBlock)
            }
            State::Closed => Err(self.error.unwrap_or(if self.was_established {
                SocketError::BrokenPipe
            } else {
                SocketError::NotConnected
            })),
            _ => Err(SocketError::BrokenPipe),
        }
    }

    /// Bytes [`send`](Connection::send) would take now.
    pub fn send_space(&self) -> usize {
        if self.check_writable().is_ok() {
            self.send_queue.space()
        } else {
            0
        }
    }

    /// The next received buffer, zero-copy: `Ok(None)` at the end of the
    /// stream (the peer's FIN), `WouldBlock` while nothing has arrived,
    /// the connection's error once it failed.
    pub fn recv(&mut self) -> Result<Option<B>, SocketError> {
        self.recv_buf(false).map(|r| r.map(|(buf, _)| buf))
    }

    /// [`recv`](Connection::recv), and whether another `recv` now would
    /// find anything (more data, the end of the stream or an error): with
    /// `false` it would say `WouldBlock`, so a reader that drains the
    /// queue stops without that call.
    pub fn recv_more(&mut self) -> Result<Option<(B, bool)>, SocketError> {
        self.recv_buf(true)
    }

    /// [`recv`](Connection::recv)'s work; the flag (worked out when `more`
    /// asks) as [`recv_more`](Connection::recv_more)'s.
    #[inline]
    fn recv_buf(&mut self, more: bool) -> Result<Option<(B, bool)>, SocketError> {
        if let Some((buf, len)) = self.receive_queue.pop() {
            if let Some(lat) = self.latency.as_deref_mut() {
                lat.read
                    .record(read_wait(buf.meta().rx_timestamp_ns, self.clock_ns));
            }
            self.trace_read(len);
            self.after_read();
            let more = more
                && (!self.receive_queue.is_empty()
                    || self.empty_read() != Err(SocketError::WouldBlock));
            return Ok(Some((buf, more)));
        }
        self.empty_read().map(|()| None)
    }

    /// Copies received bytes into `out`: `Ok(0)` at the end of the stream
    /// (with `out` non-empty), errors as [`recv`](Connection::recv).
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, SocketError> {
        if out.is_empty() {
            return Ok(0);
        }
        if let Some(lat) = self.latency.as_deref_mut() {
            if let Some(arrived_ns) = self.receive_queue.front_rx_ns() {
                lat.read.record(read_wait(arrived_ns, self.clock_ns));
            }
        }
        let n = self.receive_queue.read(out);
        if n > 0 {
            self.trace_read(n);
            self.after_read();
            return Ok(n);
        }
        self.empty_read().map(|()| 0)
    }

    /// Stamps the chunks a write made (from index `from`) with the
    /// connection's clock, when it measures latency. Inline: a write that
    /// does not measure pays one test, not a call.
    #[inline]
    fn stamp_write(&mut self, from: usize) {
        if self.latency.is_some() {
            // Never 0: 0 means "not measured".
            self.send_queue.stamp_written(from, self.clock_ns.max(1));
        }
    }

    /// The latency stages so far (all zero unless
    /// `TcpConfig::measure_latency` is on).
    pub fn latency(&self) -> SocketLatency {
        self.latency.as_deref().copied().unwrap_or_default()
    }

    /// What a read of an empty queue says.
    fn empty_read(&self) -> Result<(), SocketError> {
        if self.state.peer_fin_received() {
            return Ok(());
        }
        match self.state {
            State::Closed => match self.error {
                Some(e) => Err(e),
                None if self.was_established => Ok(()),
                None => Err(SocketError::NotConnected),
            },
            _ => Err(SocketError::WouldBlock),
        }
    }

    /// Reading freed room: announce it when the window grew enough to
    /// matter (RFC 9293 §3.8.6.2.2) and the announced one ran low.
    fn after_read(&mut self) {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return;
        }
        // The announced window still half the queue or more (the common
        // read) is answered before the free room is worked out.
        let cur = self.rcv_adv.wrapping_sub(self.rcv_nxt) as usize;
        if cur >= self.receive_queue.capacity() / 2 {
            return;
        }
        let free = self.receive_queue.free();
        let threshold = (self.receive_queue.capacity() / 2).min(self.neg.rcv_payload_max());
        if free >= cur + threshold {
            self.pending.ack_now = true;
        }
    }

    /// Whether the connection holds no packet buffer (send, receive and
    /// reassembly queues empty): a closed connection's table entry is kept
    /// for reuse only then, so that no buffer waits there.
    pub(crate) fn holds_no_buffers(&self) -> bool {
        self.send_queue.len() == 0 && self.receive_queue.is_empty() && self.reassembly.is_empty()
    }

    /// Shuts the sending side: a FIN follows the queued data (RFC 9293
    /// §3.10.4). Reads go on until the peer's FIN.
    pub fn shutdown(&mut self) -> Result<(), SocketError> {
        let result = self.shut_sending_side();
        self.trace_changes(self.clock_ns);
        result
    }

    /// [`shutdown`](Connection::shutdown)'s transitions.
    fn shut_sending_side(&mut self) -> Result<(), SocketError> {
        match self.state {
            State::Closed | State::Listen => Err(SocketError::NotConnected),
            State::SynSent => {
                self.enter_closed(None);
                Ok(())
            }
            State::SynReceived => {
                // Sent once ESTABLISHED (RFC 9293 §3.10.4).
                self.fin_requested = true;
                self.refresh_predicting();
                Ok(())
            }
            State::Established => {
                self.fin_requested = true;
                self.refresh_predicting();
                self.state = State::FinWait1;
                Ok(())
            }
            State::CloseWait => {
                self.fin_requested = true;
                self.refresh_predicting();
                self.state = State::LastAck;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Closes: no more reads or writes. Unread data (now or arriving
    /// later) resets the connection, as RFC 9293 §3.10.4 and Linux do;
    /// otherwise a FIN follows the queued data and the connection closes
    /// in the background (TIME_WAIT included).
    pub fn close(&mut self) {
        if self.app_closed {
            return;
        }
        self.app_closed = true;
        if !self.receive_queue.is_empty() {
            self.receive_queue.clear();
            self.abort();
            return;
        }
        let _ = self.shutdown();
        if self.state == State::FinWait2 && self.timers.linger.is_stopped() {
            // Already waiting on the peer: an orphan waits a bounded time.
            self.timers.linger = Deadline::at(self.clock_ns + self.knobs.time_wait_ns);
        }
    }

    /// Resets now: the connection is CLOSED, with an RST to the peer from
    /// SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1/2 and CLOSE_WAIT.
    pub fn abort(&mut self) {
        self.reset_now();
        self.trace_abnormal_close(self.clock_ns);
    }

    /// [`abort`](Connection::abort)'s work.
    fn reset_now(&mut self) {
        // RFC 9293 §3.10.5: no RST before our SYN is answered, nor once
        // both FINs were sent (CLOSING, LAST_ACK, TIME_WAIT): the TCB just
        // goes (evicting TIME_WAIT this way is silent, as Linux's is).
        if matches!(
            self.state,
            State::Closed
                | State::Listen
                | State::SynSent
                | State::Closing
                | State::LastAck
                | State::TimeWait
        ) {
            self.receive_queue.clear();
            self.enter_closed(None);
            return;
        }
        // RFC 9293 §3.10.5: <SEQ=SND.NXT><CTL=RST>, with an ACK as Linux
        // sends it.
        self.pending.rst = Some((self.snd_max, Some(self.rcv_nxt)));
        self.note_output_rare();
        self.receive_queue.clear();
        self.enter_closed(None);
    }
}
