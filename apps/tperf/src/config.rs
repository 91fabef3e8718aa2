//! What a client run and a server are asked to do, checked before
//! anything is opened.

use std::net::SocketAddr;
use std::time::Duration;

use crate::pattern::mix;
use crate::protocol::{Hello, Role, TestKind, MAX_MESSAGE};

/// The port a server listens on and a client connects to by default.
pub const DEFAULT_PORT: u16 = 4040;

/// A client run.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// The server's address.
    pub server: SocketAddr,
    /// The test.
    pub test: TestKind,
    /// Bytes of each write (`read`: of each of the server's writes; `rr`,
    /// `crr`: of each request).
    pub message_size: u32,
    /// `rr`, `crr`: bytes of each response (default: `message_size`).
    pub response_size: u32,
    /// Connections open at once, across all workers.
    pub connections: u32,
    /// Worker threads, each with its share of the connections.
    pub workers: u32,
    /// How long the test runs (connections then end cleanly).
    pub duration: Duration,
    /// The run's id: it seeds every connection's streams.
    pub run: u64,
}

/// A configuration that cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A run id that differs between runs: the clock and the process id,
/// mixed.
pub fn fresh_run_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    mix(nanos ^ (u64::from(std::process::id()) << 40))
}

impl ClientConfig {
    /// Checks the numbers: sizes within 1 ..= 16 MiB, at least one
    /// connection and worker, no more workers than connections, a
    /// duration above zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("message size (-m)", self.message_size),
            ("response size", self.response_size),
        ] {
            if v == 0 || v > MAX_MESSAGE {
                return Err(ConfigError(format!(
                    "{name} {v} is out of range: 1 to {MAX_MESSAGE} bytes"
                )));
            }
        }
        if self.connections == 0 {
            return Err(ConfigError("at least one connection (-c) is needed".into()));
        }
        if self.workers == 0 || self.workers > self.connections {
            return Err(ConfigError(format!(
                "workers (-w) {} must be between 1 and the connections (-c) {}",
                self.workers, self.connections
            )));
        }
        if self.duration.is_zero() {
            return Err(ConfigError("the duration (-d) must be above zero".into()));
        }
        Ok(())
    }

    /// How many connections worker `worker` keeps open.
    pub fn connections_of(&self, worker: u32) -> u32 {
        self.connections / self.workers + u32::from(worker < self.connections % self.workers)
    }

    /// The hello of data connection `conn` (or, with `Role::Control`, of
    /// the control connection).
    pub fn hello(&self, role: Role, conn: u64) -> Hello {
        Hello {
            role,
            test: self.test,
            run: self.run,
            conn,
            request_size: self.message_size,
            response_size: self.response_size,
        }
    }
}

/// A server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Worker threads; each accepts connections and serves them.
    pub workers: u32,
    /// Exit after answering this many client runs (default: never).
    pub runs: Option<u64>,
}

impl ServerConfig {
    /// Checks the numbers.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == 0 {
            return Err(ConfigError("at least one worker (-w) is needed".into()));
        }
        Ok(())
    }
}

/// Parses a size: a number of bytes with an optional `k`, `m` or `g`
/// suffix (powers of 1024), as `-m 64`, `-m 4k`, `-m 1M`.
pub fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (digits, scale) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (bytes, or with k, m or g)"))?;
    n.checked_mul(scale)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration in seconds (`10`, `0.5`) or with a unit (`500ms`,
/// `2s`, `1m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (seconds, or with ms, s or m)"))?;
    let nanos = (v * scale * 1e9).round();
    if !nanos.is_finite() || nanos < 0.0 || nanos > u64::MAX as f64 {
        return Err(format!("{s:?} is not a duration"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientConfig {
        ClientConfig {
            server: "127.0.0.1:4040".parse().expect("addr"),
            test: TestKind::Rr,
            message_size: 64,
            response_size: 64,
            connections: 5,
            workers: 2,
            duration: Duration::from_secs(1),
            run: 1,
        }
    }

    #[test]
    fn connections_are_spread_over_workers() {
        let c = client();
        assert_eq!(c.connections_of(0), 3);
        assert_eq!(c.connections_of(1), 2);
    }

    #[test]
    fn bad_numbers_are_errors_naming_the_flag() {
        assert_eq!(client().validate(), Ok(()));
        let mut c = client();
        c.workers = 6;
        assert!(c.validate().unwrap_err().0.contains("workers (-w) 6"));
        let mut c = client();
        c.message_size = 0;
        assert!(c.validate().unwrap_err().0.contains("message size (-m) 0"));
        let mut c = client();
        c.duration = Duration::ZERO;
        assert!(c.validate().unwrap_err().0.contains("duration (-d)"));
    }

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("4g").is_err(), "over u32");
        assert!(parse_size("x").is_err());
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("-1").is_err());
    }
}
