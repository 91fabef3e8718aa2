//! What the client and the server say to each other besides the test's
//! data: fixed-size little-endian messages.
//!
//! Every connection opens with a [`Hello`] from the client (40 bytes). A
//! client's run has one **control** connection and any number of **data**
//! connections, all to the same server address:
//!
//! ```text
//! control:  client → Hello{role: control}       server → Ack (8 bytes)
//!           ... the data connections run ...
//!           client → Done{connections} (16)     server → Summary (80), close
//! data:     client → Hello{role: data}, then the test's bytes both ways
//! ```
//!
//! The data connections carry the test streams of [`crate::pattern`] (the
//! seeds come from the run id and the connection number in the hello);
//! in `rr` and `crr`, a request is `request_size` bytes of the client's
//! stream and a response `response_size` bytes of the server's: message
//! boundaries are byte counts, nothing else is on the wire. The server
//! checks what it receives and adds what it saw to the run's totals, which
//! the [`Summary`] returns, so that the client reports the integrity of
//! both directions.

use core::fmt;
use core::str::FromStr;

/// The first bytes of every message.
pub const MAGIC: [u8; 4] = *b"TPRF";
/// This protocol's version, in every hello and ack.
pub const VERSION: u8 = 1;
/// Bytes of a [`Hello`].
pub const HELLO_LEN: usize = 40;
/// Bytes of an ack.
pub const ACK_LEN: usize = 8;
/// Bytes of a [`Done`].
pub const DONE_LEN: usize = 16;
/// Bytes of a [`Summary`].
pub const SUMMARY_LEN: usize = 80;
/// The largest request or response (16 MiB): a bound on what a hello may
/// ask of a server.
pub const MAX_MESSAGE: u32 = 16 << 20;

/// A test: which way the data flows and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestKind {
    /// The server writes, the client reads and checks (throughput).
    Read,
    /// The client writes, the server reads and checks (throughput).
    Write,
    /// Both at once, on the same connections.
    Rw,
    /// Request, then response, then the next request, on connections that
    /// stay open (transactions per second, latency).
    Rr,
    /// Connect, one request and response, close; again (connections per
    /// second, latency including the handshake).
    Crr,
}

impl TestKind {
    /// Every test, in the order of `--help`.
    pub const ALL: [TestKind; 5] = [
        TestKind::Read,
        TestKind::Write,
        TestKind::Rw,
        TestKind::Rr,
        TestKind::Crr,
    ];

    /// The name on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            TestKind::Read => "read",
            TestKind::Write => "write",
            TestKind::Rw => "rw",
            TestKind::Rr => "rr",
            TestKind::Crr => "crr",
        }
    }

    /// Whether it is made of requests and responses (`rr`, `crr`).
    pub const fn is_transactional(self) -> bool {
        matches!(self, TestKind::Rr | TestKind::Crr)
    }

    /// Whether the client streams data to the server (`write`, `rw`).
    pub const fn client_streams(self) -> bool {
        matches!(self, TestKind::Write | TestKind::Rw)
    }

    /// Whether the server streams data to the client (`read`, `rw`).
    pub const fn server_streams(self) -> bool {
        matches!(self, TestKind::Read | TestKind::Rw)
    }

    const fn code(self) -> u8 {
        match self {
            TestKind::Read => 0,
            TestKind::Write => 1,
            TestKind::Rw => 2,
            TestKind::Rr => 3,
            TestKind::Crr => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        TestKind::ALL.into_iter().find(|t| t.code() == code)
    }
}

impl fmt::Display for TestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TestKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        TestKind::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown test {s:?}: one of read, write, rw, rr, crr"))
    }
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The run's control connection.
    Control,
    /// A connection carrying a test's data.
    Data,
}

/// The first message on every connection, from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Control or data.
    pub role: Role,
    /// The test.
    pub test: TestKind,
    /// The client's run: random, shared by the run's connections.
    pub run: u64,
    /// The data connection's number within the run (0 on control).
    pub conn: u64,
    /// Bytes of each request (`rr`, `crr`), or of each write (`write`,
    /// `rw` from the client; `read`, `rw` from the server).
    pub request_size: u32,
    /// Bytes of each response (`rr`, `crr`).
    pub response_size: u32,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// It does not start with [`MAGIC`]: not a tperf peer.
    NotTperf,
    /// A tperf of another protocol version.
    Version(u8),
    /// A field out of its range.
    Field(&'static str, u64),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotTperf => f.write_str("the peer does not speak tperf (wrong magic)"),
            DecodeError::Version(v) => {
                write!(f, "the peer speaks tperf protocol {v}, we speak {VERSION}")
            }
            DecodeError::Field(name, v) => write!(f, "bad {name} {v} from the peer"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn check_magic(b: &[u8], magic: &[u8; 4]) -> Result<(), DecodeError> {
    if &b[..4] == magic {
        Ok(())
    } else {
        Err(DecodeError::NotTperf)
    }
}

impl Hello {
    /// The hello's bytes.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut b = [0; HELLO_LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[5] = match self.role {
            Role::Control => 0,
            Role::Data => 1,
        };
        b[6] = self.test.code();
        b[8..16].copy_from_slice(&self.run.to_le_bytes());
        b[16..24].copy_from_slice(&self.conn.to_le_bytes());
        b[24..28].copy_from_slice(&self.request_size.to_le_bytes());
        b[28..32].copy_from_slice(&self.response_size.to_le_bytes());
        b
    }

    /// Reads a hello.
    pub fn decode(b: &[u8; HELLO_LEN]) -> Result<Hello, DecodeError> {
        check_magic(b, &MAGIC)?;
        if b[4] != VERSION {
            return Err(DecodeError::Version(b[4]));
        }
        let role = match b[5] {
            0 => Role::Control,
            1 => Role::Data,
            r => return Err(DecodeError::Field("role", r.into())),
        };
        let test = TestKind::from_code(b[6]).ok_or(DecodeError::Field("test", b[6].into()))?;
        let request_size = u32_at(b, 24);
        let response_size = u32_at(b, 28);
        for (name, size) in [
            ("request size", request_size),
            ("response size", response_size),
        ] {
            if size == 0 || size > MAX_MESSAGE {
                return Err(DecodeError::Field(name, size.into()));
            }
        }
        Ok(Hello {
            role,
            test,
            run: u64_at(b, 8),
            conn: u64_at(b, 16),
            request_size,
            response_size,
        })
    }
}

/// The server's answer to a control hello: it knows the run now.
pub fn encode_ack() -> [u8; ACK_LEN] {
    let mut b = [0; ACK_LEN];
    b[..4].copy_from_slice(&MAGIC);
    b[4] = VERSION;
    b
}

/// Reads an ack.
pub fn decode_ack(b: &[u8; ACK_LEN]) -> Result<(), DecodeError> {
    check_magic(b, &MAGIC)?;
    if b[4] != VERSION {
        return Err(DecodeError::Version(b[4]));
    }
    Ok(())
}

const DONE_MAGIC: [u8; 4] = *b"TPFD";
const SUMMARY_MAGIC: [u8; 4] = *b"TPFS";

/// The client's end of a run, on the control connection: every data
/// connection is closed; `connections` had sent their whole hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Data connections whose hello the client wrote in full.
    pub connections: u64,
}

impl Done {
    /// Its bytes.
    pub fn encode(&self) -> [u8; DONE_LEN] {
        let mut b = [0; DONE_LEN];
        b[..4].copy_from_slice(&DONE_MAGIC);
        b[8..16].copy_from_slice(&self.connections.to_le_bytes());
        b
    }

    /// Reads one.
    pub fn decode(b: &[u8; DONE_LEN]) -> Result<Done, DecodeError> {
        check_magic(b, &DONE_MAGIC)?;
        Ok(Done {
            connections: u64_at(b, 8),
        })
    }
}

/// The first integrity error the server found in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerMismatch {
    /// The data connection's number.
    pub conn: u64,
    /// Where in the client's stream.
    pub mismatch: crate::pattern::Mismatch,
}

fn saturate(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// What the server saw of a run, returned on the control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Data connections of the run that the server saw end.
    pub connections: u64,
    /// Test bytes it received (hellos not counted), each one checked.
    pub bytes_received: u64,
    /// Test bytes it sent.
    pub bytes_sent: u64,
    /// Requests it answered.
    pub transactions: u64,
    /// Connections on which it found a byte that was not the pattern's.
    pub integrity_errors: u64,
    /// Connections that broke the protocol or failed otherwise.
    pub other_errors: u64,
    /// The first integrity error.
    pub first_mismatch: Option<ServerMismatch>,
    /// Whether the server gave up waiting for some of the client's
    /// connections to end.
    pub incomplete: bool,
    /// The server process's CPU time in user mode from the run's control
    /// hello to its summary, in microseconds (other runs at the same time
    /// included).
    pub cpu_user_us: u64,
    /// The same in the kernel.
    pub cpu_system_us: u64,
}

impl Summary {
    /// Its bytes.
    pub fn encode(&self) -> [u8; SUMMARY_LEN] {
        let mut b = [0; SUMMARY_LEN];
        b[..4].copy_from_slice(&SUMMARY_MAGIC);
        b[4] = u8::from(self.first_mismatch.is_some()) | (u8::from(self.incomplete) << 1);
        if let Some(m) = self.first_mismatch {
            b[5] = m.mismatch.expected;
            b[6] = m.mismatch.got;
            b[48..56].copy_from_slice(&m.conn.to_le_bytes());
            b[56..64].copy_from_slice(&m.mismatch.offset.to_le_bytes());
        }
        for (i, v) in [
            self.connections,
            self.bytes_received,
            self.bytes_sent,
            self.transactions,
        ]
        .into_iter()
        .enumerate()
        {
            b[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        // Error counts are of connections: 32 bits each, saturated.
        b[40..44].copy_from_slice(&saturate(self.integrity_errors).to_le_bytes());
        b[44..48].copy_from_slice(&saturate(self.other_errors).to_le_bytes());
        b[64..72].copy_from_slice(&self.cpu_user_us.to_le_bytes());
        b[72..80].copy_from_slice(&self.cpu_system_us.to_le_bytes());
        b
    }

    /// Reads one.
    pub fn decode(b: &[u8; SUMMARY_LEN]) -> Result<Summary, DecodeError> {
        check_magic(b, &SUMMARY_MAGIC)?;
        let first_mismatch = (b[4] & 1 != 0).then(|| ServerMismatch {
            conn: u64_at(b, 48),
            mismatch: crate::pattern::Mismatch {
                offset: u64_at(b, 56),
                expected: b[5],
                got: b[6],
            },
        });
        Ok(Summary {
            connections: u64_at(b, 8),
            bytes_received: u64_at(b, 16),
            bytes_sent: u64_at(b, 24),
            transactions: u64_at(b, 32),
            integrity_errors: u32_at(b, 40).into(),
            other_errors: u32_at(b, 44).into(),
            first_mismatch,
            incomplete: b[4] & 2 != 0,
            cpu_user_us: u64_at(b, 64),
            cpu_system_us: u64_at(b, 72),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::Mismatch;

    #[test]
    fn a_hello_round_trips() {
        for test in TestKind::ALL {
            let h = Hello {
                role: Role::Data,
                test,
                run: 0x0123_4567_89ab_cdef,
                conn: 77,
                request_size: 1,
                response_size: MAX_MESSAGE,
            };
            assert_eq!(Hello::decode(&h.encode()), Ok(h));
        }
    }

    #[test]
    fn a_bad_hello_is_an_error_naming_what_is_wrong() {
        let good = Hello {
            role: Role::Control,
            test: TestKind::Rr,
            run: 1,
            conn: 0,
            request_size: 64,
            response_size: 64,
        }
        .encode();
        let mut b = good;
        b[0] = b'G'; // an HTTP client, say
        assert_eq!(Hello::decode(&b), Err(DecodeError::NotTperf));
        let mut b = good;
        b[4] = 9;
        assert_eq!(Hello::decode(&b), Err(DecodeError::Version(9)));
        let mut b = good;
        b[6] = 5;
        assert_eq!(Hello::decode(&b), Err(DecodeError::Field("test", 5)));
        let mut b = good;
        b[24..28].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            Hello::decode(&b),
            Err(DecodeError::Field("request size", 0))
        );
        let mut b = good;
        b[28..32].copy_from_slice(&(MAX_MESSAGE + 1).to_le_bytes());
        assert_eq!(
            Hello::decode(&b),
            Err(DecodeError::Field(
                "response size",
                u64::from(MAX_MESSAGE) + 1
            ))
        );
    }

    #[test]
    fn done_ack_and_summary_round_trip() {
        let d = Done { connections: 12345 };
        assert_eq!(Done::decode(&d.encode()), Ok(d));
        assert_eq!(decode_ack(&encode_ack()), Ok(()));
        let s = Summary {
            connections: 3,
            bytes_received: 1 << 40,
            bytes_sent: 5,
            transactions: 6,
            integrity_errors: 1,
            other_errors: 2,
            first_mismatch: Some(ServerMismatch {
                conn: 2,
                mismatch: Mismatch {
                    offset: 99_999,
                    expected: 0xab,
                    got: 0xaa,
                },
            }),
            incomplete: true,
            cpu_user_us: 1_234_567,
            cpu_system_us: 7,
        };
        assert_eq!(Summary::decode(&s.encode()), Ok(s));
        assert_eq!(
            Summary::decode(&Summary::default().encode()),
            Ok(Summary::default())
        );
        assert_eq!(
            Summary::decode(&[0; SUMMARY_LEN]),
            Err(DecodeError::NotTperf)
        );
    }

    #[test]
    fn test_names_parse_back() {
        for t in TestKind::ALL {
            assert_eq!(t.name().parse::<TestKind>(), Ok(t));
        }
        assert!("tcp_rr".parse::<TestKind>().is_err());
    }
}
