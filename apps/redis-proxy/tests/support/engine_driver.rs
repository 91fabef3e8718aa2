//! Drives the sans-IO proxy engine with in-memory byte streams: one client
//! pipelining GET and SET requests to a pool of four servers, played here
//! by a tiny RESP answerer. Shared by tests/engine_alloc.rs (allocations per
//! request) and benches/engine.rs (instructions per request under
//! callgrind); after setup, a round allocates nothing of its own, so what
//! is counted during rounds is the engine's.

use std::time::Instant;

use tpa_redis_proxy::config;
use tpa_redis_proxy::proxy::{Action, ClientId, Engine, Limits};

/// A pool of four servers (never connected for real: this driver answers).
const POOL: &str = "bench:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 400\n  servers:\n   - 127.0.0.1:7001:1 s1\n   - 127.0.0.1:7002:1 s2\n   - 127.0.0.1:7003:1 s3\n   - 127.0.0.1:7004:1 s4\n";

/// Which command a workload sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `GET key:NNNNNN`, answered with the key as the value.
    Get,
    /// `SET key:NNNNNN xxx`, answered `+OK`.
    Set,
}

/// Requests in batches of `pipeline`, and the client's expected bytes for
/// each batch, built before the rounds run.
pub struct Workload {
    batches: Vec<Vec<u8>>,
    expected: Vec<Vec<u8>>,
}

fn push_number(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn push_bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    push_number(out, data.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

impl Workload {
    /// `batches` batches of `pipeline` requests of `command`, keys
    /// `key:000000` on (spread over the four servers).
    pub fn new(command: Command, batches: usize, pipeline: usize) -> Workload {
        let mut w = Workload {
            batches: Vec::with_capacity(batches),
            expected: Vec::with_capacity(batches),
        };
        let mut i = 0;
        for _ in 0..batches {
            let (mut batch, mut expected) = (Vec::new(), Vec::new());
            for _ in 0..pipeline {
                let key = format!("key:{:06}", i % 100_000);
                i += 1;
                match command {
                    Command::Get => {
                        batch.extend_from_slice(b"*2\r\n");
                        push_bulk(&mut batch, b"GET");
                        push_bulk(&mut batch, key.as_bytes());
                        push_bulk(&mut expected, key.as_bytes());
                    }
                    Command::Set => {
                        batch.extend_from_slice(b"*3\r\n");
                        push_bulk(&mut batch, b"SET");
                        push_bulk(&mut batch, key.as_bytes());
                        push_bulk(&mut batch, b"xxx");
                        expected.extend_from_slice(b"+OK\r\n");
                    }
                }
            }
            w.batches.push(batch);
            w.expected.push(expected);
        }
        w
    }

    /// How many batches.
    pub fn len(&self) -> usize {
        self.batches.len()
    }
}

/// The bytes after the `\r\n` that ends the line starting at `at`, and the
/// line's number (RESP's `*N` and `$N`).
fn header(buf: &[u8], at: usize) -> (usize, usize) {
    let mut n = 0;
    let mut i = at + 1;
    while buf[i] != b'\r' {
        n = n * 10 + usize::from(buf[i] - b'0');
        i += 1;
    }
    (n, i + 2)
}

/// Answers every whole request in `requests` into `replies`, as redis
/// would for this workload: GET gets its key back as the value, SET `+OK`.
/// Returns how many requests were answered.
fn answer(requests: &[u8], replies: &mut Vec<u8>) -> usize {
    let mut at = 0;
    let mut count = 0;
    while at < requests.len() {
        assert_eq!(requests[at], b'*', "the engine sent a non-array request");
        let (args, mut next) = header(requests, at);
        let mut words: [&[u8]; 3] = [b""; 3];
        for word in words.iter_mut().take(args) {
            let (len, data) = header(requests, next);
            *word = &requests[data..data + len];
            next = data + len + 2;
        }
        match words[0] {
            b"GET" => push_bulk(replies, words[1]),
            b"SET" => replies.extend_from_slice(b"+OK\r\n"),
            other => panic!(
                "unexpected command {:?} from the engine",
                String::from_utf8_lossy(other)
            ),
        }
        at = next;
        count += 1;
    }
    count
}

/// The engine, its one client, and the servers' scratch buffers.
pub struct Driver {
    engine: Engine,
    client: ClientId,
    now: Instant,
    replies: Vec<u8>,
    received: Vec<u8>,
    /// Requests the servers answered so far.
    pub answered: usize,
}

impl Driver {
    /// An engine over the four-server pool with one client accepted and
    /// every server connection up.
    pub fn new() -> Driver {
        let pools = config::parse(POOL).expect("the driver's pool parses");
        let mut engine = Engine::new(pools, Limits::default()).expect("the engine starts");
        let now = Instant::now();
        engine.start(now);
        let client = engine.client_accepted(0).expect("the pool takes a client");
        let mut d = Driver {
            engine,
            client,
            now,
            replies: Vec::with_capacity(1 << 16),
            received: Vec::with_capacity(1 << 16),
            answered: 0,
        };
        d.actions();
        d
    }

    /// Runs the engine's actions: connections succeed at once; writes are
    /// picked up by `round` anyway.
    fn actions(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Connect { conn, .. } => self.engine.server_connected(conn),
                Action::CloseClient(_) | Action::CloseServer(_) => {
                    panic!("the engine closed a connection: {action:?}")
                }
                Action::Log { message, .. } => panic!("the engine logged: {message}"),
                Action::WriteClient(_) | Action::WriteServer(_) => {}
            }
        }
    }

    /// Sends batch `b` of `w`, lets the servers answer (the last server
    /// first, so replies reach the engine out of order), and checks the
    /// client receives exactly the expected replies, in order.
    pub fn round(&mut self, w: &Workload, b: usize) {
        self.engine
            .client_data(self.client, &w.batches[b], self.now);
        self.actions();
        for conn in (0..self.engine.server_conn_count()).rev() {
            self.replies.clear();
            loop {
                let out = self.engine.server_output(conn);
                if out.is_empty() {
                    break;
                }
                let n = out.len();
                self.answered += answer(out, &mut self.replies);
                self.engine.server_wrote(conn, n);
            }
            if !self.replies.is_empty() {
                self.engine.server_data(conn, &self.replies, self.now);
                self.actions();
            }
        }
        self.received.clear();
        loop {
            let out = self.engine.client_output(self.client);
            if out.is_empty() {
                break;
            }
            let n = out.len();
            self.received.extend_from_slice(out);
            self.engine.client_wrote(self.client, n, self.now);
        }
        self.actions();
        assert!(
            self.received == w.expected[b],
            "batch {b}: the client got {:?}, expected {:?}",
            String::from_utf8_lossy(&self.received),
            String::from_utf8_lossy(&w.expected[b])
        );
    }
}
