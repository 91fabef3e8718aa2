//! One data connection's test, sans IO: what to write next and the check
//! of what was read, for the client ([`ClientSession`]) and the server
//! ([`ServerSession`]). A backend (kernel sockets now, tpa's stack next)
//! moves the bytes and calls these; nothing here touches a socket or a
//! clock.
//!
//! A backend's loop, for either side:
//!
//! 1. while `wants_write()`: `fill` a buffer, write what the socket takes,
//!    `wrote(n)` (bytes not taken are filled again next time: the pattern
//!    is a function of the offset);
//! 2. give every byte read to `on_read`, the end of the stream to
//!    `on_eof`; an `Err` ends the connection (it is the test's finding);
//! 3. client: at the end of the test `stop()`, then shut the write side
//!    down when `wants_shutdown()`; the server ends its side when
//!    `is_finished()`.

use core::fmt;

use crate::histogram::Histogram;
use crate::pattern::{stream_seed, Checker, Mismatch, Pattern};
use crate::protocol::{DecodeError, Hello, TestKind, HELLO_LEN};

/// What ended a connection other than the test's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A byte received was not the pattern's.
    Integrity(Mismatch),
    /// The peer broke the protocol (data where none belongs, a stream
    /// that ends inside a message, a bad hello).
    Protocol(String),
    /// The socket failed (connection refused, reset…).
    Io(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Integrity(m) => write!(f, "integrity error: {m}"),
            Failure::Protocol(s) => write!(f, "protocol error: {s}"),
            Failure::Io(s) => write!(f, "socket error: {s}"),
        }
    }
}

impl From<DecodeError> for Failure {
    fn from(e: DecodeError) -> Self {
        Failure::Protocol(e.to_string())
    }
}

/// A connection's failure, with the connection's number in its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnFailure {
    /// The data connection's number (as in its hello), or
    /// [`NO_CONNECTION`].
    pub conn: u64,
    /// What happened.
    pub failure: Failure,
}

impl fmt::Display for ConnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conn == NO_CONNECTION {
            write!(f, "a worker: {}", self.failure)
        } else {
            write!(f, "connection {}: {}", self.conn, self.failure)
        }
    }
}

/// The connection number of a failure that is a worker's, not a
/// connection's (an epoll error, say).
pub const NO_CONNECTION: u64 = u64::MAX;

/// How many failures a client keeps in full (the rest are counted).
pub const FAILURES_KEPT: usize = 16;

/// A client worker's figures, merged across workers at the end.
#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    /// Test bytes written (hellos not counted).
    pub bytes_sent: u64,
    /// Test bytes read, every one checked.
    pub bytes_received: u64,
    /// Responses received in full (`rr`, `crr`).
    pub transactions: u64,
    /// Connections established.
    pub connections_opened: u64,
    /// Data connections whose hello was written in full (the server
    /// counts these).
    pub connections_announced: u64,
    /// Connections that ended cleanly (both sides closed, nothing
    /// missing).
    pub connections_completed: u64,
    /// Transaction latency in nanoseconds (`rr`: from the moment the
    /// request is due, the previous response's end, to its response's end;
    /// `crr`: from the connect to the response's end).
    pub latency: Histogram,
    /// Connections that failed, integrity errors included.
    pub failures: u64,
    /// Connections that found a byte that was not the pattern's.
    pub integrity_errors: u64,
    /// The first [`FAILURES_KEPT`] failures.
    pub first_failures: Vec<ConnFailure>,
}

impl ClientStats {
    /// Counts a failed connection.
    pub fn fail(&mut self, conn: u64, failure: Failure) {
        self.failures += 1;
        if matches!(failure, Failure::Integrity(_)) {
            self.integrity_errors += 1;
        }
        if self.first_failures.len() < FAILURES_KEPT {
            self.first_failures.push(ConnFailure { conn, failure });
        }
    }

    /// Adds another worker's figures.
    pub fn merge(&mut self, other: &ClientStats) {
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.transactions += other.transactions;
        self.connections_opened += other.connections_opened;
        self.connections_announced += other.connections_announced;
        self.connections_completed += other.connections_completed;
        self.latency.merge(&other.latency);
        self.failures += other.failures;
        self.integrity_errors += other.integrity_errors;
        let room = FAILURES_KEPT.saturating_sub(self.first_failures.len());
        self.first_failures
            .extend(other.first_failures.iter().take(room).cloned());
    }
}

/// The client's side of one data connection.
#[derive(Debug, Clone)]
pub struct ClientSession {
    hello: [u8; HELLO_LEN],
    hello_sent: usize,
    test: TestKind,
    conn: u64,
    request_size: u64,
    response_size: u64,
    tx: Pattern,
    tx_offset: u64,
    rx: Checker,
    /// `rr`, `crr`: bytes of the current request still to write.
    request_left: u64,
    /// `rr`, `crr`: bytes of the current response still to read.
    response_left: u64,
    txn_start_ns: u64,
    stopping: bool,
    /// `crr`: its one response arrived; the server closes first.
    answered: bool,
    shut_down: bool,
    finished: bool,
}

impl ClientSession {
    /// A connection announced by `hello` (a data hello), opened at
    /// `now_ns` (`crr` latency counts from here).
    pub fn new(hello: Hello, now_ns: u64) -> Self {
        let transactional = hello.test.is_transactional();
        ClientSession {
            hello: hello.encode(),
            hello_sent: 0,
            test: hello.test,
            conn: hello.conn,
            request_size: hello.request_size.into(),
            response_size: hello.response_size.into(),
            tx: Pattern::new(stream_seed(hello.run, hello.conn, true)),
            tx_offset: 0,
            rx: Checker::new(stream_seed(hello.run, hello.conn, false)),
            request_left: if transactional {
                hello.request_size.into()
            } else {
                0
            },
            response_left: 0,
            txn_start_ns: now_ns,
            stopping: false,
            answered: false,
            shut_down: false,
            finished: false,
        }
    }

    /// The connection's number in its run.
    pub fn conn(&self) -> u64 {
        self.conn
    }

    /// Whether the whole hello was written (the server will count the
    /// connection).
    pub fn hello_sent(&self) -> bool {
        self.hello_sent == HELLO_LEN
    }

    /// The handshake completed at `now_ns`: in `rr`, the first
    /// transaction starts here (in `crr`, it started with the connect).
    pub fn connected(&mut self, now_ns: u64) {
        if self.test == TestKind::Rr {
            self.txn_start_ns = now_ns;
        }
    }

    /// Whether there is something to write now.
    pub fn wants_write(&self) -> bool {
        !self.shut_down && (self.hello_sent < HELLO_LEN || self.data_budget() > 0)
    }

    fn data_budget(&self) -> u64 {
        if self.test.is_transactional() {
            self.request_left
        } else if self.test.client_streams() && !self.stopping {
            u64::MAX
        } else {
            0
        }
    }

    /// Puts the next bytes to write at the start of `out`; returns how
    /// many (0 when nothing is to be written).
    pub fn fill(&self, out: &mut [u8]) -> usize {
        if self.shut_down {
            return 0;
        }
        let hello = &self.hello[self.hello_sent..];
        let h = hello.len().min(out.len());
        out[..h].copy_from_slice(&hello[..h]);
        let room = (out.len() - h) as u64;
        let d = room.min(self.data_budget()) as usize;
        self.tx.fill(self.tx_offset, &mut out[h..h + d]);
        h + d
    }

    /// The socket took the first `n` bytes of the last [`fill`](Self::fill).
    pub fn wrote(&mut self, n: usize, stats: &mut ClientStats) {
        let h = n.min(HELLO_LEN - self.hello_sent);
        self.hello_sent += h;
        if h > 0 && self.hello_sent == HELLO_LEN {
            stats.connections_announced += 1;
        }
        let d = (n - h) as u64;
        if d == 0 {
            return;
        }
        self.tx_offset += d;
        stats.bytes_sent += d;
        if self.test.is_transactional() {
            self.request_left -= d;
            if self.request_left == 0 {
                self.response_left = self.response_size;
            }
        }
    }

    /// Checks bytes read at `now_ns`; completes transactions.
    pub fn on_read(
        &mut self,
        data: &[u8],
        now_ns: u64,
        stats: &mut ClientStats,
    ) -> Result<(), Failure> {
        if data.is_empty() {
            return Ok(());
        }
        if !self.test.is_transactional() {
            if !self.test.server_streams() {
                return Err(Failure::Protocol(format!(
                    "{} bytes from the server in a {} test, where it sends nothing",
                    data.len(),
                    self.test
                )));
            }
            self.rx.check(data).map_err(Failure::Integrity)?;
            stats.bytes_received += data.len() as u64;
            return Ok(());
        }
        let expected = (data.len() as u64).min(self.response_left) as usize;
        self.rx
            .check(&data[..expected])
            .map_err(Failure::Integrity)?;
        stats.bytes_received += expected as u64;
        self.response_left -= expected as u64;
        if expected < data.len() {
            return Err(Failure::Protocol(format!(
                "{} bytes from the server beyond the response (server stream offset {})",
                data.len() - expected,
                self.rx.offset()
            )));
        }
        if self.response_left == 0 && self.request_left == 0 {
            stats.transactions += 1;
            stats
                .latency
                .record(now_ns.saturating_sub(self.txn_start_ns));
            if self.test == TestKind::Crr {
                self.stopping = true;
                self.answered = true;
            }
            if !self.stopping {
                self.request_left = self.request_size;
                self.txn_start_ns = now_ns;
            }
        }
        Ok(())
    }

    /// The server ended its stream (in `crr`, after its response: the
    /// server closes first, so that TIME_WAIT is on its side and a client
    /// does not run out of ports; elsewhere after the client's end).
    pub fn on_eof(&mut self, stats: &mut ClientStats) -> Result<(), Failure> {
        if !(self.shut_down || self.answered) || self.response_left > 0 {
            return Err(Failure::Protocol(format!(
                "the server closed the connection before the client did \
                 (client stream offset {}, server stream offset {}{})",
                self.tx_offset,
                self.rx.offset(),
                if self.response_left > 0 {
                    format!(", {} bytes of a response missing", self.response_left)
                } else {
                    String::new()
                }
            )));
        }
        self.finished = true;
        stats.connections_completed += 1;
        Ok(())
    }

    /// The test's time is up: no new data or request after this; a
    /// request under way completes first.
    pub fn stop(&mut self) {
        self.stopping = true;
        if self.test.is_transactional() && self.request_left == self.request_size {
            // Nothing of the next request was written: there is none.
            self.request_left = 0;
        }
    }

    /// Whether the write side should be shut down now (the test is over
    /// and nothing more is owed; never after a `crr` response: the server
    /// closes, then the client).
    pub fn wants_shutdown(&self) -> bool {
        self.stopping
            && !self.shut_down
            && !self.answered
            && (self.hello_sent == 0 || self.hello_sent == HELLO_LEN)
            && self.request_left == 0
            && self.response_left == 0
    }

    /// The write side was shut down.
    pub fn shut_down(&mut self) {
        self.shut_down = true;
    }

    /// Whether the server ended cleanly with nothing owed either way:
    /// the connection may be closed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// What a server saw of one data connection: added to its run's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerCounts {
    /// Test bytes received, each one checked.
    pub bytes_received: u64,
    /// Test bytes sent.
    pub bytes_sent: u64,
    /// Requests received in full (each one answered).
    pub transactions: u64,
}

/// Reads a connection's hello, in pieces of any size.
#[derive(Debug, Clone)]
pub struct HelloReader {
    buf: [u8; HELLO_LEN],
    len: usize,
}

impl Default for HelloReader {
    fn default() -> Self {
        Self::new()
    }
}

impl HelloReader {
    /// A reader expecting the first byte.
    pub fn new() -> Self {
        HelloReader {
            buf: [0; HELLO_LEN],
            len: 0,
        }
    }

    /// Takes what it needs of `data`: returns the bytes taken and, once
    /// complete, the hello (or why it is not one).
    pub fn feed(&mut self, data: &[u8]) -> (usize, Option<Result<Hello, DecodeError>>) {
        let n = (HELLO_LEN - self.len).min(data.len());
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        let hello = (self.len == HELLO_LEN).then(|| Hello::decode(&self.buf));
        (n, hello)
    }

    /// Bytes of the hello received so far.
    pub fn received(&self) -> usize {
        self.len
    }
}

/// The server's side of one data connection, after its hello.
#[derive(Debug, Clone)]
pub struct ServerSession {
    hello: Hello,
    tx: Pattern,
    tx_offset: u64,
    rx: Checker,
    request_size: u64,
    response_size: u64,
    /// `rr`, `crr`: bytes of the current request received.
    request_have: u64,
    /// `rr`, `crr`: response bytes owed.
    response_left: u64,
    eof: bool,
    counts: ServerCounts,
}

impl ServerSession {
    /// The connection `hello` announced (a data hello).
    pub fn new(hello: Hello) -> Self {
        ServerSession {
            hello,
            tx: Pattern::new(stream_seed(hello.run, hello.conn, false)),
            tx_offset: 0,
            rx: Checker::new(stream_seed(hello.run, hello.conn, true)),
            request_size: hello.request_size.into(),
            response_size: hello.response_size.into(),
            request_have: 0,
            response_left: 0,
            eof: false,
            counts: ServerCounts::default(),
        }
    }

    /// The hello that opened the connection.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// What the connection carried so far.
    pub fn counts(&self) -> ServerCounts {
        self.counts
    }

    /// The size of each write: the message size of the hello.
    pub fn write_size(&self) -> usize {
        if self.hello.test.is_transactional() {
            self.response_size as usize
        } else {
            self.request_size as usize
        }
    }

    fn budget(&self) -> u64 {
        if self.hello.test.is_transactional() {
            self.response_left
        } else if self.hello.test.server_streams() && !self.eof {
            u64::MAX
        } else {
            0
        }
    }

    /// Whether there is something to write now.
    pub fn wants_write(&self) -> bool {
        self.budget() > 0
    }

    /// Puts the next bytes to write at the start of `out`; returns how
    /// many.
    pub fn fill(&self, out: &mut [u8]) -> usize {
        let n = (out.len() as u64).min(self.budget()) as usize;
        self.tx.fill(self.tx_offset, &mut out[..n]);
        n
    }

    /// The socket took `n` bytes of the last [`fill`](Self::fill).
    pub fn wrote(&mut self, n: usize) {
        let n = n as u64;
        self.tx_offset += n;
        self.counts.bytes_sent += n;
        if self.hello.test.is_transactional() {
            self.response_left -= n;
        }
    }

    /// Checks bytes read (after the hello); queues responses.
    pub fn on_read(&mut self, data: &[u8]) -> Result<(), Failure> {
        if data.is_empty() {
            return Ok(());
        }
        let test = self.hello.test;
        if !test.is_transactional() && !test.client_streams() {
            return Err(Failure::Protocol(format!(
                "{} bytes from the client in a {test} test, where it sends nothing",
                data.len()
            )));
        }
        if test == TestKind::Crr && self.counts.transactions > 0 {
            return Err(Failure::Protocol(format!(
                "{} bytes from the client after its crr request",
                data.len()
            )));
        }
        self.rx.check(data).map_err(Failure::Integrity)?;
        self.counts.bytes_received += data.len() as u64;
        if test.is_transactional() {
            self.request_have += data.len() as u64;
            let requests = self.request_have / self.request_size;
            self.request_have %= self.request_size;
            self.counts.transactions += requests;
            self.response_left += requests * self.response_size;
        }
        Ok(())
    }

    /// The client ended its stream (the test is over).
    pub fn on_eof(&mut self) -> Result<(), Failure> {
        self.eof = true;
        if self.request_have != 0 {
            return Err(Failure::Protocol(format!(
                "the client's stream ended {} bytes into a request of {}",
                self.request_have, self.request_size
            )));
        }
        Ok(())
    }

    /// Whether the server closes now: nothing more is owed and the client
    /// ended, or (`crr`) its one request was answered.
    pub fn is_finished(&self) -> bool {
        self.response_left == 0
            && (self.eof || (self.hello.test == TestKind::Crr && self.counts.transactions > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Role;

    fn hello(test: TestKind, request_size: u32, response_size: u32) -> Hello {
        Hello {
            role: Role::Data,
            test,
            run: 0xfeed,
            conn: 3,
            request_size,
            response_size,
        }
    }

    /// Moves what `from` wants to write into `to`, at most `chunk` bytes a
    /// write; returns the bytes moved.
    fn client_to_server(
        c: &mut ClientSession,
        s: &mut Option<ServerSession>,
        reader: &mut HelloReader,
        chunk: usize,
        stats: &mut ClientStats,
    ) -> usize {
        let mut moved = 0;
        let mut buf = vec![0; chunk];
        while c.wants_write() {
            let n = c.fill(&mut buf);
            assert!(n > 0, "wants_write but nothing filled");
            c.wrote(n, stats);
            moved += n;
            let mut data = &buf[..n];
            if s.is_none() {
                let (took, h) = reader.feed(data);
                data = &data[took..];
                if let Some(h) = h {
                    *s = Some(ServerSession::new(h.expect("a good hello")));
                }
            }
            if let Some(s) = s.as_mut() {
                s.on_read(data).expect("intact request");
            }
            if moved > 100_000 {
                break;
            }
        }
        moved
    }

    #[test]
    fn rr_framing_alternates_requests_and_responses() {
        let mut stats = ClientStats::default();
        let mut c = ClientSession::new(hello(TestKind::Rr, 100, 3000), 0);
        c.connected(1_000);
        let mut server = None;
        let mut reader = HelloReader::new();
        for txn in 1..=5u64 {
            // The request (with the hello, the first time) in pieces of 7.
            let moved = client_to_server(&mut c, &mut server, &mut reader, 7, &mut stats);
            assert_eq!(moved, 100 + if txn == 1 { HELLO_LEN } else { 0 });
            assert!(!c.wants_write(), "one request at a time");
            let s = server.as_mut().expect("hello read");
            assert_eq!(s.counts().transactions, txn);
            // The response, in pieces of 1000; the last completes the
            // transaction at time txn·10 µs.
            let mut buf = [0; 1000];
            for i in 0..3 {
                assert!(s.wants_write());
                let n = s.fill(&mut buf);
                assert_eq!(n, 1000);
                s.wrote(n);
                let now = txn * 10_000 + 1_000;
                c.on_read(&buf[..n], now, &mut stats)
                    .expect("intact response");
                assert_eq!(stats.transactions, txn - u64::from(i < 2));
            }
            assert!(!s.wants_write(), "one response per request");
        }
        assert_eq!(stats.latency.count(), 5);
        assert_eq!(stats.latency.min(), Some(10_000));
        assert_eq!(stats.bytes_sent, 500);
        assert_eq!(stats.bytes_received, 15_000);
        // Time's up between transactions: no new request, shut down, and
        // the server finishes on the end of stream.
        assert!(c.wants_write(), "the sixth request is armed");
        c.stop();
        assert!(!c.wants_write());
        assert!(c.wants_shutdown());
        c.shut_down();
        let s = server.as_mut().expect("server");
        s.on_eof().expect("clean end");
        assert!(s.is_finished());
        c.on_eof(&mut stats).expect("clean end");
        assert!(c.is_finished());
        assert_eq!(stats.connections_announced, 1);
        assert_eq!(stats.connections_completed, 1);
    }

    #[test]
    fn a_stop_during_a_request_finishes_the_transaction() {
        let mut stats = ClientStats::default();
        let mut c = ClientSession::new(hello(TestKind::Rr, 64, 64), 0);
        let mut buf = [0; HELLO_LEN + 10];
        let n = c.fill(&mut buf);
        c.wrote(n, &mut stats);
        c.stop();
        assert!(c.wants_write(), "54 bytes of the request to go");
        assert!(!c.wants_shutdown());
        let mut buf = [0; 100];
        assert_eq!(c.fill(&mut buf), 54);
        c.wrote(54, &mut stats);
        assert!(!c.wants_shutdown(), "the response is owed");
        let mut resp = [0; 64];
        Pattern::new(stream_seed(0xfeed, 3, false)).fill(0, &mut resp);
        c.on_read(&resp, 5, &mut stats).expect("intact");
        assert_eq!(stats.transactions, 1);
        assert!(c.wants_shutdown());
    }

    #[test]
    fn crr_is_one_transaction_then_the_server_closes_first() {
        let mut stats = ClientStats::default();
        let mut c = ClientSession::new(hello(TestKind::Crr, 10, 20), 1_000);
        c.connected(5_000);
        let mut buf = [0; 200];
        let n = c.fill(&mut buf);
        assert_eq!(n, HELLO_LEN + 10);
        c.wrote(n, &mut stats);
        let mut s = ServerSession::new(hello(TestKind::Crr, 10, 20));
        s.on_read(&buf[HELLO_LEN..n]).expect("intact request");
        assert!(!s.is_finished(), "the response is owed");
        let mut resp = [0; 100];
        let r = s.fill(&mut resp);
        assert_eq!(r, 20);
        s.wrote(r);
        assert!(
            s.is_finished(),
            "answered: the server closes, without the client's end"
        );
        c.on_read(&resp[..r], 9_000, &mut stats).expect("intact");
        assert_eq!(stats.latency.max(), Some(8_000), "from the connect");
        assert!(!c.wants_write());
        assert!(!c.wants_shutdown(), "the client waits for the server's end");
        c.on_eof(&mut stats)
            .expect("the server's end after the response");
        assert!(c.is_finished());
        assert!(
            matches!(s.on_read(b"more"), Err(Failure::Protocol(m)) if m.contains("after its crr request"))
        );
    }

    #[test]
    fn a_crr_server_that_closes_before_answering_is_an_error() {
        let mut stats = ClientStats::default();
        let mut c = ClientSession::new(hello(TestKind::Crr, 10, 20), 0);
        let mut buf = [0; 200];
        let n = c.fill(&mut buf);
        c.wrote(n, &mut stats);
        let mut resp = [0; 19];
        Pattern::new(stream_seed(0xfeed, 3, false)).fill(0, &mut resp);
        c.on_read(&resp, 1, &mut stats).expect("intact so far");
        let err = c.on_eof(&mut stats).unwrap_err();
        assert!(
            matches!(&err, Failure::Protocol(m) if m.contains("1 bytes of a response missing")),
            "{err}"
        );
    }

    #[test]
    fn bytes_beyond_the_response_are_a_protocol_error() {
        let mut stats = ClientStats::default();
        let mut c = ClientSession::new(hello(TestKind::Rr, 8, 8), 0);
        let mut buf = [0; 100];
        let n = c.fill(&mut buf);
        c.wrote(n, &mut stats);
        let mut resp = [0; 9];
        Pattern::new(stream_seed(0xfeed, 3, false)).fill(0, &mut resp);
        let err = c.on_read(&resp, 1, &mut stats).unwrap_err();
        assert!(
            matches!(&err, Failure::Protocol(s) if s.contains("1 bytes from the server beyond")),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_response_names_the_server_stream_offset() {
        let mut stats = ClientStats::default();
        let mut c = ClientSession::new(hello(TestKind::Rr, 8, 1000), 0);
        let mut buf = [0; 100];
        let n = c.fill(&mut buf);
        c.wrote(n, &mut stats);
        let mut resp = [0; 1000];
        Pattern::new(stream_seed(0xfeed, 3, false)).fill(0, &mut resp);
        resp[777] ^= 1;
        let err = c.on_read(&resp, 1, &mut stats).unwrap_err();
        assert!(
            matches!(err, Failure::Integrity(m) if m.offset == 777),
            "{err}"
        );
    }

    #[test]
    fn streams_in_both_directions_in_rw() {
        let mut stats = ClientStats::default();
        let h = hello(TestKind::Rw, 1000, 1000);
        let mut c = ClientSession::new(h, 0);
        let mut s = None;
        let mut reader = HelloReader::new();
        client_to_server(&mut c, &mut s, &mut reader, 1500, &mut stats);
        let s = s.as_mut().expect("server");
        assert!(s.counts().bytes_received > 90_000);
        assert!(s.wants_write());
        let mut buf = vec![0; s.write_size()];
        for _ in 0..50 {
            let n = s.fill(&mut buf);
            s.wrote(n);
            c.on_read(&buf[..n], 1, &mut stats).expect("intact");
        }
        assert_eq!(stats.bytes_received, 50_000);
        c.stop();
        assert!(!c.wants_write());
        assert!(c.wants_shutdown());
        c.shut_down();
        s.on_eof().expect("clean");
        assert!(
            !s.wants_write(),
            "the server stops streaming at the client's end"
        );
        assert!(s.is_finished());
    }

    #[test]
    fn the_server_catches_a_flipped_byte_at_its_offset() {
        let h = hello(TestKind::Write, 4096, 4096);
        let mut s = ServerSession::new(h);
        let mut data = vec![0; 10_000];
        Pattern::new(stream_seed(0xfeed, 3, true)).fill(0, &mut data);
        data[4321] ^= 0x80;
        let mut result = Ok(());
        for chunk in data.chunks(1448) {
            result = s.on_read(chunk);
            if result.is_err() {
                break;
            }
        }
        match result {
            Err(Failure::Integrity(m)) => assert_eq!(m.offset, 4321),
            other => panic!("expected an integrity error, got {other:?}"),
        }
    }

    #[test]
    fn the_wrong_direction_and_a_cut_request_are_protocol_errors() {
        let mut s = ServerSession::new(hello(TestKind::Read, 100, 100));
        assert!(matches!(s.on_read(b"x"), Err(Failure::Protocol(_))));
        let mut s = ServerSession::new(hello(TestKind::Rr, 100, 100));
        let mut req = [0; 50];
        Pattern::new(stream_seed(0xfeed, 3, true)).fill(0, &mut req);
        s.on_read(&req).expect("half a request");
        assert!(matches!(s.on_eof(), Err(Failure::Protocol(m)) if m.contains("50 bytes into")));
        let mut stats = ClientStats::default();
        let mut c = ClientSession::new(hello(TestKind::Write, 100, 100), 0);
        assert!(matches!(
            c.on_read(b"x", 0, &mut stats),
            Err(Failure::Protocol(_))
        ));
        assert!(
            matches!(c.on_eof(&mut stats), Err(Failure::Protocol(m)) if m.contains("before the client did"))
        );
    }

    #[test]
    fn the_hello_reader_takes_only_the_hello() {
        let h = hello(TestKind::Rr, 64, 64);
        let mut bytes = h.encode().to_vec();
        bytes.extend_from_slice(b"request");
        let mut r = HelloReader::new();
        assert_eq!(r.feed(&bytes[..10]), (10, None));
        let (took, got) = r.feed(&bytes[10..]);
        assert_eq!(took, HELLO_LEN - 10);
        assert_eq!(got, Some(Ok(h)));
        let mut r = HelloReader::new();
        let (_, got) = r.feed(b"GET / HTTP/1.1\r\nHost: example\r\n\r\nxxxxxxx");
        assert_eq!(got, Some(Err(DecodeError::NotTperf)));
    }

    #[test]
    fn stats_merge_keeps_the_first_failures() {
        let mut a = ClientStats::default();
        let mut b = ClientStats::default();
        for i in 0..10 {
            a.fail(i, Failure::Io("reset".into()));
            b.fail(
                100 + i,
                Failure::Integrity(Mismatch {
                    offset: i,
                    expected: 1,
                    got: 2,
                }),
            );
        }
        a.bytes_sent = 5;
        b.bytes_sent = 7;
        a.merge(&b);
        assert_eq!(a.failures, 20);
        assert_eq!(a.integrity_errors, 10);
        assert_eq!(a.first_failures.len(), FAILURES_KEPT);
        assert_eq!(a.first_failures[10].conn, 100);
        assert_eq!(a.bytes_sent, 12);
    }
}
