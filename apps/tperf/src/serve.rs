//! A server's connection as both backends keep it: its hello first, then
//! a data or a control session; what becomes of its bytes and of its
//! end; and the line a finished run prints.

use crate::control::{ControlSession, RunTotals, Runs};
use crate::cpu::process_cpu;
use crate::protocol::Role;
use crate::session::{Failure, HelloReader, ServerSession};

/// What a connection is at.
pub enum Conn {
    /// Before its hello is complete.
    Hello(HelloReader),
    /// A data connection.
    Data(ServerSession),
    /// A run's control connection.
    Control(ControlSession),
}

impl Conn {
    /// A new connection, waiting for its hello.
    pub fn new() -> Self {
        Conn::Hello(HelloReader::new())
    }

    /// Hands bytes read to the connection's session (its hello first),
    /// at `now_ns`; a control connection joins its run in `runs`.
    ///
    /// # Errors
    ///
    /// A bad hello, or what the session found wrong in the bytes.
    pub fn feed(&mut self, mut data: &[u8], runs: &Runs, now_ns: u64) -> Result<(), Failure> {
        if let Conn::Hello(reader) = self {
            let (took, hello) = reader.feed(data);
            data = &data[took..];
            match hello {
                None => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(h)) if h.role == Role::Data => *self = Conn::Data(ServerSession::new(h)),
                Some(Ok(h)) => *self = Conn::Control(ControlSession::new(h, runs, process_cpu())),
            }
        }
        match self {
            Conn::Hello(_) => Ok(()),
            Conn::Data(session) => session.on_read(data),
            Conn::Control(control) => control.on_read(data, now_ns),
        }
    }

    /// The connection ended: its counts go to its run in `runs`;
    /// failures are printed.
    pub fn ended(&mut self, runs: &Runs, failure: Option<Failure>) {
        match self {
            Conn::Hello(reader) => {
                // A client that connected and left without a word (a crr
                // connection when the test's time ran out) is no failure.
                if let Some(f) = failure.filter(|_| reader.received() > 0) {
                    eprintln!("tpa-tperf server: a connection before its hello: {f}");
                }
            }
            Conn::Data(s) => {
                let h = *s.hello();
                if let Some(f) = &failure {
                    eprintln!(
                        "tpa-tperf server: run {:016x} connection {}: {f}",
                        h.run, h.conn
                    );
                }
                runs.record(h.run, h.conn, s.counts(), failure.as_ref());
            }
            Conn::Control(s) => {
                s.on_eof(runs);
                if let Some(f) = failure {
                    eprintln!(
                        "tpa-tperf server: run {:016x} control connection: {f}",
                        s.hello().run
                    );
                }
            }
        }
    }
}

impl Default for Conn {
    fn default() -> Self {
        Conn::new()
    }
}

/// Prints the line for run `run`'s `totals`.
pub fn print_run(totals: &RunTotals, run: u64) {
    let s = &totals.summary;
    let first = s.first_mismatch.map_or(String::new(), |m| {
        format!(" (first: connection {}: {})", m.conn, m.mismatch)
    });
    println!(
        "run {run:016x}: {} over {} connections: received {} B, sent {} B, \
         {} transactions, {} integrity errors{first}, {} failed connections{}",
        totals.test,
        s.connections,
        s.bytes_received,
        s.bytes_sent,
        s.transactions,
        s.integrity_errors,
        s.other_errors,
        if s.incomplete { ", incomplete" } else { "" },
    );
}
