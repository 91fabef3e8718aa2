//! The control connection, sans IO: the client's side ([`ControlClient`]:
//! hello, ack, then at the end `Done` and the server's summary) and the
//! server's ([`ControlSession`]), with the totals of each client run that
//! the server's workers share: data connections add what they saw to their
//! run ([`Runs::record`]), and the control connection returns the sum once
//! the client is done and every data connection it announced has ended.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::cpu::CpuTime;
use crate::protocol::{
    decode_ack, encode_ack, Done, Hello, Role, ServerMismatch, Summary, TestKind, ACK_LEN,
    DONE_LEN, SUMMARY_LEN,
};
use crate::session::{Failure, ServerCounts};

/// How long a server waits, after the client's [`Done`], for the data
/// connections it announced to end before it answers with what it has
/// (marked incomplete): 10 s.
pub const RUN_END_PATIENCE_NS: u64 = 10_000_000_000;

/// One run's totals.
#[derive(Debug, Clone)]
pub struct RunTotals {
    /// The run's test.
    pub test: TestKind,
    /// What the data connections that ended saw.
    pub summary: Summary,
}

/// The runs a server knows, shared by its workers.
#[derive(Debug, Default)]
pub struct Runs {
    runs: Mutex<HashMap<u64, RunTotals>>,
}

impl Runs {
    /// No runs yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, RunTotals>> {
        // A worker that panicked while holding the lock left consistent
        // counters (plain additions): keep using them.
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client announced run `run` on its control connection.
    pub fn open(&self, run: u64, test: TestKind) {
        self.lock().entry(run).or_insert(RunTotals {
            test,
            summary: Summary::default(),
        });
    }

    /// A data connection of `run` ended, having carried `counts`, with
    /// `failure` if it failed. Connections of unknown runs (a client
    /// without a control connection) are not counted anywhere.
    pub fn record(&self, run: u64, conn: u64, counts: ServerCounts, failure: Option<&Failure>) {
        let mut runs = self.lock();
        let Some(totals) = runs.get_mut(&run) else {
            return;
        };
        let s = &mut totals.summary;
        s.connections += 1;
        s.bytes_received += counts.bytes_received;
        s.bytes_sent += counts.bytes_sent;
        s.transactions += counts.transactions;
        match failure {
            None => {}
            Some(Failure::Integrity(mismatch)) => {
                s.integrity_errors += 1;
                if s.first_mismatch.is_none() {
                    s.first_mismatch = Some(ServerMismatch {
                        conn,
                        mismatch: *mismatch,
                    });
                }
            }
            Some(_) => s.other_errors += 1,
        }
    }

    /// Data connections of `run` that ended so far (`None`: unknown run).
    pub fn ended(&self, run: u64) -> Option<u64> {
        self.lock().get(&run).map(|t| t.summary.connections)
    }

    /// Removes `run` and returns its totals.
    pub fn close(&self, run: u64) -> Option<RunTotals> {
        self.lock().remove(&run)
    }
}

/// The server's side of one control connection, after its hello.
#[derive(Debug, Clone)]
pub struct ControlSession {
    hello: Hello,
    out: Vec<u8>,
    sent: usize,
    done_buf: [u8; DONE_LEN],
    done_len: usize,
    done_at_ns: Option<u64>,
    done: Option<Done>,
    answered: bool,
    cpu_at_start: CpuTime,
}

impl ControlSession {
    /// The control connection of the run `hello` announces (registered in
    /// `runs`); its ack is queued. `cpu` is the process's CPU time now.
    pub fn new(hello: Hello, runs: &Runs, cpu: CpuTime) -> Self {
        runs.open(hello.run, hello.test);
        ControlSession {
            hello,
            out: encode_ack().to_vec(),
            sent: 0,
            done_buf: [0; DONE_LEN],
            done_len: 0,
            done_at_ns: None,
            done: None,
            answered: false,
            cpu_at_start: cpu,
        }
    }

    /// The run's hello.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Bytes to write now.
    pub fn pending(&self) -> &[u8] {
        &self.out[self.sent..]
    }

    /// The socket took `n` bytes of [`pending`](Self::pending).
    pub fn wrote(&mut self, n: usize) {
        self.sent += n;
    }

    /// Reads the client's [`Done`], received at `now_ns`.
    pub fn on_read(&mut self, data: &[u8], now_ns: u64) -> Result<(), Failure> {
        let n = (DONE_LEN - self.done_len).min(data.len());
        self.done_buf[self.done_len..self.done_len + n].copy_from_slice(&data[..n]);
        self.done_len += n;
        if n < data.len() {
            return Err(Failure::Protocol(
                "bytes after the end of the run on the control connection".into(),
            ));
        }
        if self.done_len == DONE_LEN && self.done.is_none() {
            self.done = Some(Done::decode(&self.done_buf)?);
            self.done_at_ns = Some(now_ns);
        }
        Ok(())
    }

    /// Once the client is done and every connection it announced ended
    /// (or [`RUN_END_PATIENCE_NS`] passed), queues the run's summary,
    /// closes the run and returns its totals (once). `cpu` reads the
    /// process's CPU time (called only then).
    pub fn poll(
        &mut self,
        runs: &Runs,
        now_ns: u64,
        cpu: impl FnOnce() -> CpuTime,
    ) -> Option<RunTotals> {
        let (done, at) = (self.done?, self.done_at_ns?);
        if self.answered {
            return None;
        }
        let ended = runs.ended(self.hello.run).unwrap_or(0);
        let waited_too_long = now_ns.saturating_sub(at) > RUN_END_PATIENCE_NS;
        if ended < done.connections && !waited_too_long {
            return None;
        }
        let mut totals = runs.close(self.hello.run)?;
        totals.summary.incomplete = ended < done.connections;
        let used = cpu().since(&self.cpu_at_start);
        totals.summary.cpu_user_us = used.user.as_micros() as u64;
        totals.summary.cpu_system_us = used.system.as_micros() as u64;
        self.out.extend_from_slice(&totals.summary.encode());
        self.answered = true;
        Some(totals)
    }

    /// Whether the summary was queued and written: the server closes.
    pub fn is_finished(&self) -> bool {
        self.answered && self.sent == self.out.len()
    }

    /// The client closed the connection (early, unless finished): the
    /// run is forgotten.
    pub fn on_eof(&mut self, runs: &Runs) {
        if !self.answered {
            runs.close(self.hello.run);
        }
    }
}

/// What the client's control connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientPhase {
    /// The server's ack of the hello.
    Ack,
    /// The test runs: nothing comes from the server.
    Running,
    /// The summary, after `Done`.
    Summary,
    /// Got it.
    Done,
}

/// What the server said on the control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlEvent {
    /// The server took the run: open the data connections.
    Accepted,
    /// The run's summary: the control connection may close.
    Summary(Summary),
}

/// The client's side of the control connection.
#[derive(Debug, Clone)]
pub struct ControlClient {
    out: Vec<u8>,
    sent: usize,
    input: Vec<u8>,
    phase: ClientPhase,
}

impl ControlClient {
    /// The control connection of the run `hello` announces (a control
    /// hello, queued).
    pub fn new(hello: Hello) -> Self {
        debug_assert_eq!(hello.role, Role::Control);
        ControlClient {
            out: hello.encode().to_vec(),
            sent: 0,
            input: Vec::with_capacity(SUMMARY_LEN),
            phase: ClientPhase::Ack,
        }
    }

    /// Bytes to write now.
    pub fn pending(&self) -> &[u8] {
        &self.out[self.sent..]
    }

    /// The socket took `n` bytes of [`pending`](Self::pending).
    pub fn wrote(&mut self, n: usize) {
        self.sent += n;
    }

    /// Every data connection ended, `announced` of them with their whole
    /// hello written: queues `Done`.
    pub fn finish(&mut self, announced: u64) {
        if self.phase == ClientPhase::Running {
            self.out.extend_from_slice(
                &Done {
                    connections: announced,
                }
                .encode(),
            );
            self.phase = ClientPhase::Summary;
        }
    }

    /// Reads what the server sent; returns what it completed.
    pub fn on_read(&mut self, data: &[u8]) -> Result<Option<ControlEvent>, Failure> {
        let want = match self.phase {
            ClientPhase::Ack => ACK_LEN,
            ClientPhase::Summary => SUMMARY_LEN,
            ClientPhase::Running | ClientPhase::Done => 0,
        };
        if self.input.len() + data.len() > want {
            return Err(Failure::Protocol(format!(
                "{} unexpected bytes from the server on the control connection",
                self.input.len() + data.len() - want
            )));
        }
        self.input.extend_from_slice(data);
        if self.input.len() < want || want == 0 {
            return Ok(None);
        }
        let message = std::mem::take(&mut self.input);
        match self.phase {
            ClientPhase::Ack => {
                decode_ack(message.as_slice().try_into().expect("ACK_LEN bytes"))?;
                self.phase = ClientPhase::Running;
                Ok(Some(ControlEvent::Accepted))
            }
            _ => {
                let summary =
                    Summary::decode(message.as_slice().try_into().expect("SUMMARY_LEN bytes"))?;
                self.phase = ClientPhase::Done;
                Ok(Some(ControlEvent::Summary(summary)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuTime;
    use crate::pattern::Mismatch;
    use crate::protocol::{Role, ACK_LEN, SUMMARY_LEN};

    fn cpu_later() -> CpuTime {
        CpuTime {
            user: std::time::Duration::from_micros(1500),
            system: std::time::Duration::from_micros(20),
        }
    }

    fn control_hello(run: u64) -> Hello {
        Hello {
            role: Role::Control,
            test: TestKind::Write,
            run,
            conn: 0,
            request_size: 100,
            response_size: 100,
        }
    }

    #[test]
    fn the_summary_waits_for_every_announced_connection() {
        let runs = Runs::new();
        let mut c = ControlSession::new(control_hello(7), &runs, CpuTime::default());
        assert_eq!(c.pending().len(), ACK_LEN);
        c.wrote(ACK_LEN);
        let counts = ServerCounts {
            bytes_received: 1000,
            bytes_sent: 0,
            transactions: 0,
        };
        runs.record(7, 0, counts, None);
        c.on_read(&Done { connections: 2 }.encode(), 1)
            .expect("done");
        assert!(
            c.poll(&runs, 2, cpu_later).is_none(),
            "connection 1 has not ended"
        );
        let bad = Mismatch {
            offset: 12,
            expected: 3,
            got: 4,
        };
        runs.record(7, 1, counts, Some(&Failure::Integrity(bad)));
        runs.record(8, 0, counts, None); // another run, unknown: not counted
        let totals = c.poll(&runs, 3, cpu_later).expect("summary");
        assert_eq!(totals.summary.connections, 2);
        assert_eq!(totals.summary.bytes_received, 2000);
        assert_eq!(totals.summary.integrity_errors, 1);
        assert_eq!(
            totals.summary.first_mismatch,
            Some(ServerMismatch {
                conn: 1,
                mismatch: bad
            })
        );
        assert!(!totals.summary.incomplete);
        assert_eq!(
            (totals.summary.cpu_user_us, totals.summary.cpu_system_us),
            (1500, 20)
        );
        let bytes: [u8; SUMMARY_LEN] = c.pending().try_into().expect("one summary");
        assert_eq!(Summary::decode(&bytes), Ok(totals.summary));
        assert!(c.poll(&runs, 4, cpu_later).is_none(), "answered once");
        c.wrote(SUMMARY_LEN);
        assert!(c.is_finished());
        assert_eq!(runs.ended(7), None, "the run is closed");
    }

    #[test]
    fn a_connection_that_never_ends_makes_an_incomplete_summary_in_time() {
        let runs = Runs::new();
        let mut c = ControlSession::new(control_hello(9), &runs, CpuTime::default());
        c.on_read(&Done { connections: 1 }.encode(), 100)
            .expect("done");
        assert!(c
            .poll(&runs, 100 + RUN_END_PATIENCE_NS, cpu_later)
            .is_none());
        let totals = c
            .poll(&runs, 101 + RUN_END_PATIENCE_NS, cpu_later)
            .expect("gave up");
        assert!(totals.summary.incomplete);
        assert_eq!(totals.summary.connections, 0);
    }

    #[test]
    fn client_and_server_sides_talk_through_a_run() {
        let runs = Runs::new();
        let mut hello = control_hello(5);
        hello.test = TestKind::Rr;
        let mut client = ControlClient::new(hello);
        // The hello, in two pieces, makes the server's session.
        let bytes = client.pending().to_vec();
        assert_eq!(bytes.len(), crate::protocol::HELLO_LEN);
        client.wrote(bytes.len());
        let mut reader = crate::session::HelloReader::new();
        assert_eq!(reader.feed(&bytes[..7]).1, None);
        let got = reader
            .feed(&bytes[7..])
            .1
            .expect("complete")
            .expect("a hello");
        let mut server = ControlSession::new(got, &runs, CpuTime::default());
        // The ack, a byte at a time.
        let ack = server.pending().to_vec();
        server.wrote(ack.len());
        for (i, b) in ack.iter().enumerate() {
            let event = client.on_read(&[*b]).expect("a good ack");
            assert_eq!(event.is_some(), i + 1 == ack.len());
        }
        // Nothing is owed during the run, and nothing comes.
        assert!(client.pending().is_empty());
        assert!(
            client.clone().on_read(b"x").is_err(),
            "no bytes while running"
        );
        runs.record(5, 0, ServerCounts::default(), None);
        client.finish(1);
        server.on_read(client.pending(), 10).expect("a good Done");
        let totals = server
            .poll(&runs, 11, cpu_later)
            .expect("every connection ended");
        let summary = server.pending().to_vec();
        let event = client.on_read(&summary).expect("a good summary");
        assert_eq!(event, Some(ControlEvent::Summary(totals.summary)));
    }

    #[test]
    fn bytes_after_done_are_a_protocol_error() {
        let runs = Runs::new();
        let mut c = ControlSession::new(control_hello(1), &runs, CpuTime::default());
        let mut bytes = Done { connections: 1 }.encode().to_vec();
        bytes.push(0);
        assert!(matches!(c.on_read(&bytes, 0), Err(Failure::Protocol(_))));
        let mut c = ControlSession::new(control_hello(2), &runs, CpuTime::default());
        assert!(matches!(
            c.on_read(&[0; DONE_LEN], 0),
            Err(Failure::Protocol(_))
        ));
        c.on_eof(&runs);
        assert_eq!(runs.ended(2), None);
    }
}
