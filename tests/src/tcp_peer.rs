//! The kernel's TCP peers of the interop tests: tests/src/tcp_peer.py
//! (python3's sockets) run in a namespace as a sink, source or echo
//! server, or as a sending, receiving or echoing client, and the JSON line
//! each prints at the end read back as a [`PeerReport`].
//!
//! Every peer carries the same deterministic pattern (tperf's: see the
//! script's doc) from a seed, so the far end — the kernel or tpa — can
//! check each byte, and every peer reports the sha256 of what it sent and
//! received. A peer that hangs fails after its `timeout` (per call) or
//! `deadline` (whole run) with a message naming the mode and the bytes
//! moved; it never hangs the test.
//!
//! ```no_run
//! use tpa_tests::netns::Netns;
//! use tpa_tests::tcp_peer::TcpPeer;
//! let ns = Netns::new("doc");
//! let peer = TcpPeer::new(&ns);
//! let sink = peer.serve_sink("127.0.0.1:5001".parse().unwrap());
//! let sent = peer.send("127.0.0.1:5001".parse().unwrap(), 1 << 20);
//! let got = sink.finish();
//! assert_eq!((got.received, &got.received_sha256), (sent.sent, &sent.sent_sha256));
//! ```

use std::net::SocketAddr;
use std::process::Command;

use crate::netns::{Background, Netns};

/// The path of the python peer.
pub fn script() -> String {
    format!("{}/src/tcp_peer.py", env!("CARGO_MANIFEST_DIR"))
}

/// The sha256 (hex) of `data`, by coreutils' `sha256sum` (what the
/// peers report is checked against it).
pub fn sha256(data: &[u8]) -> String {
    let path = std::env::temp_dir().join(crate::netns::unique_name("tpa-sha256"));
    std::fs::write(&path, data).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .expect("sha256sum runs");
    let _ = std::fs::remove_file(&path);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

/// The sha256 (hex) of the first `n` bytes of the pattern of `seed`.
///
/// # Panics
/// If the script fails.
pub fn pattern_sha256(n: u64, seed: u64) -> String {
    let out = Command::new("python3")
        .args([&script(), "--seed", &seed.to_string(), "pattern-sha256"])
        .arg(n.to_string())
        .output()
        .expect("run tcp_peer.py");
    assert!(
        out.status.success(),
        "tcp_peer.py pattern-sha256 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// How the python peers run.
#[derive(Debug)]
pub struct TcpPeer<'a> {
    ns: &'a Netns,
    /// The pattern's seed.
    pub seed: u64,
    /// Whether receivers check every byte against the pattern.
    pub check: bool,
    /// The congestion control each socket sets (`TCP_CONGESTION`).
    pub cc: Option<String>,
    /// The local port clients connect from (`SO_REUSEADDR`), if any.
    pub bind_port: Option<u16>,
    /// Seconds any one accept, connect, read or write may wait.
    pub timeout_s: u32,
    /// Seconds a whole run may take.
    pub deadline_s: u32,
}

impl<'a> TcpPeer<'a> {
    /// Peers in `ns`: seed 1, checking, CUBIC per socket, 20 s per call,
    /// 300 s per run.
    pub fn new(ns: &'a Netns) -> Self {
        TcpPeer {
            ns,
            seed: 1,
            check: true,
            cc: Some("cubic".to_owned()),
            bind_port: None,
            timeout_s: 20,
            deadline_s: 300,
        }
    }

    fn argv(&self, mode: &str, args: &[String]) -> Vec<String> {
        let mut v = vec![
            "python3".to_owned(),
            script(),
            "--seed".to_owned(),
            self.seed.to_string(),
            "--timeout".to_owned(),
            self.timeout_s.to_string(),
            "--deadline".to_owned(),
            self.deadline_s.to_string(),
        ];
        if self.check {
            v.push("--check".to_owned());
        }
        if let Some(cc) = &self.cc {
            v.push("--cc".to_owned());
            v.push(cc.clone());
        }
        if let Some(port) = self.bind_port {
            v.push("--bind".to_owned());
            v.push(port.to_string());
        }
        v.push(mode.to_owned());
        v.extend_from_slice(args);
        v
    }

    fn serve(&self, mode: &str, at: SocketAddr, extra: Option<u64>) -> PeerServer {
        let mut args = vec![at.ip().to_string(), at.port().to_string()];
        args.extend(extra.map(|n| n.to_string()));
        let argv = self.argv(mode, &args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        PeerServer {
            what: format!("{mode} at {at}"),
            bg: self.ns.spawn_until(&argv, "ready"),
        }
    }

    fn client(&self, mode: &str, to: SocketAddr, n: Option<u64>) -> Result<PeerReport, String> {
        let mut args = vec![to.ip().to_string(), to.port().to_string()];
        args.extend(n.map(|n| n.to_string()));
        let argv = self.argv(mode, &args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.ns.exec_output(&argv);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "tcp_peer {mode} to {to} in {} failed ({}): {stdout}{}",
                self.ns.name(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(PeerReport::parse(stdout.trim()))
    }

    /// A server at `at` that accepts one connection and reads it to its
    /// end.
    pub fn serve_sink(&self, at: SocketAddr) -> PeerServer {
        self.serve("serve-sink", at, None)
    }

    /// A server at `at` that accepts one connection, sends `n` pattern
    /// bytes and closes.
    pub fn serve_source(&self, at: SocketAddr, n: u64) -> PeerServer {
        self.serve("serve-source", at, Some(n))
    }

    /// A server at `at` that accepts one connection and echoes it.
    pub fn serve_echo(&self, at: SocketAddr) -> PeerServer {
        self.serve("serve-echo", at, None)
    }

    /// Connects to `to`, sends `n` pattern bytes, closes; waits for it.
    ///
    /// # Panics
    /// If the run fails, with its message.
    pub fn send(&self, to: SocketAddr, n: u64) -> PeerReport {
        self.try_send(to, n).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Connects to `to` and reads until the end of the stream.
    ///
    /// # Panics
    /// If the run fails, with its message.
    pub fn recv(&self, to: SocketAddr) -> PeerReport {
        self.try_recv(to).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Connects to `to`, sends `n` pattern bytes while reading them back.
    ///
    /// # Panics
    /// If the run fails, with its message.
    pub fn echo(&self, to: SocketAddr, n: u64) -> PeerReport {
        self.try_echo(to, n).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`send`](Self::send); a failure is the peer's message.
    pub fn try_send(&self, to: SocketAddr, n: u64) -> Result<PeerReport, String> {
        self.client("send", to, Some(n))
    }

    /// As [`recv`](Self::recv); a failure is the peer's message.
    pub fn try_recv(&self, to: SocketAddr) -> Result<PeerReport, String> {
        self.client("recv", to, None)
    }

    /// As [`echo`](Self::echo); a failure is the peer's message.
    pub fn try_echo(&self, to: SocketAddr, n: u64) -> Result<PeerReport, String> {
        self.client("echo", to, Some(n))
    }
}

/// A python server waiting for its one connection; killed on drop.
#[derive(Debug)]
pub struct PeerServer {
    what: String,
    bg: Background,
}

impl PeerServer {
    /// Waits for the server to finish its connection; its report.
    ///
    /// # Panics
    /// If it failed (its message is on the test's stderr).
    pub fn finish(self) -> PeerReport {
        self.try_finish().unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`finish`](Self::finish); a failure says so (the peer's own
    /// message is on the test's stderr).
    pub fn try_finish(self) -> Result<PeerReport, String> {
        let what = self.what;
        let (status, out) = self.bg.wait_output();
        match (status.success(), out.lines().last()) {
            (true, Some(line)) => Ok(PeerReport::parse(line)),
            _ => Err(format!("tcp_peer {what} failed ({status}): {out}")),
        }
    }
}

/// The JSON line a python peer prints at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// The mode (`serve-sink`, `send`, …).
    pub mode: String,
    /// Bytes sent.
    pub sent: u64,
    /// Their sha256, hex.
    pub sent_sha256: String,
    /// Bytes received.
    pub received: u64,
    /// Their sha256, hex.
    pub received_sha256: String,
    /// The offset of the first received byte that is not the pattern's
    /// (only when checking).
    pub mismatch: Option<u64>,
    /// The peer's address and port, as `ip port`.
    pub peer: String,
    /// The congestion control the socket ran.
    pub cc: String,
    /// The kernel's retransmissions on this connection (TCP_INFO).
    pub total_retrans: u64,
    /// The kernel's smoothed RTT, microseconds (TCP_INFO).
    pub rtt_us: u64,
    /// The MSS the kernel sends with (TCP_INFO).
    pub snd_mss: u64,
    /// The largest segment the kernel received, as it estimates it
    /// (TCP_INFO's `rcv_mss`).
    pub rcv_mss: u64,
    /// Whether SACK was negotiated.
    pub sack: bool,
    /// Whether timestamps were negotiated.
    pub timestamps: bool,
    /// The window scales (ours to send with, the peer's), when negotiated.
    pub wscale: Option<(u8, u8)>,
    /// The whole line.
    pub line: String,
}

impl PeerReport {
    /// Parses the script's line (flat `"key": value` pairs; `tcp_info`'s
    /// keys are distinct from the outer ones).
    ///
    /// # Panics
    /// If a field is missing or malformed, with the line.
    pub fn parse(line: &str) -> PeerReport {
        let raw = |key: &str| -> &str {
            let tag = format!("\"{key}\": ");
            let at = line
                .find(&tag)
                .unwrap_or_else(|| panic!("no {key} in tcp_peer's report: {line}"));
            let rest = &line[at + tag.len()..];
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            rest[..end].trim()
        };
        let num = |key: &str| -> u64 {
            raw(key)
                .parse()
                .unwrap_or_else(|_| panic!("{key} is not a number in tcp_peer's report: {line}"))
        };
        let text = |key: &str| raw(key).trim_matches('"').to_owned();
        let flag = |key: &str| raw(key) == "true";
        let wscale = match (raw("snd_wscale"), raw("rcv_wscale")) {
            ("null", _) | (_, "null") => None,
            (s, r) => Some((
                s.parse().expect("snd_wscale"),
                r.parse().expect("rcv_wscale"),
            )),
        };
        PeerReport {
            mode: text("mode"),
            sent: num("sent"),
            sent_sha256: text("sent_sha256"),
            received: num("received"),
            received_sha256: text("received_sha256"),
            mismatch: match raw("mismatch") {
                "null" => None,
                _ => Some(num("mismatch")),
            },
            peer: text("peer"),
            cc: text("cc"),
            total_retrans: num("total_retrans"),
            rtt_us: num("rtt_us"),
            snd_mss: num("snd_mss"),
            rcv_mss: num("rcv_mss"),
            sack: flag("sack"),
            timestamps: flag("timestamps"),
            wscale,
            line: line.to_owned(),
        }
    }
}

impl std::fmt::Display for PeerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: sent {} received {} (peer {}) cc {} retrans {} rtt {} us mss {} (received {}) sack {} ts {} wscale {:?}",
            self.mode,
            self.sent,
            self.received,
            self.peer,
            self.cc,
            self.total_retrans,
            self.rtt_us,
            self.snd_mss,
            self.rcv_mss,
            self.sack,
            self.timestamps,
            self.wscale
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_scripts_line() {
        let line = r#"{"mode": "serve-sink", "sent": 0, "sent_sha256": "e3b0", "received": 1048576, "received_sha256": "abcd", "mismatch": null, "peer": "10.9.0.1 40000", "cc": "cubic", "tcp_info": {"total_retrans": 3, "rtt_us": 51, "snd_cwnd": 10, "snd_mss": 1448, "rcv_mss": 1448, "reordering": 3, "timestamps": true, "sack": true, "snd_wscale": 7, "rcv_wscale": 9}}"#;
        let r = PeerReport::parse(line);
        assert_eq!(r.mode, "serve-sink");
        assert_eq!((r.sent, r.received), (0, 1 << 20));
        assert_eq!(r.received_sha256, "abcd");
        assert_eq!(r.mismatch, None);
        assert_eq!(r.peer, "10.9.0.1 40000");
        assert_eq!(
            (r.cc.as_str(), r.total_retrans, r.snd_mss),
            ("cubic", 3, 1448)
        );
        assert!(r.sack && r.timestamps);
        assert_eq!(r.wscale, Some((7, 9)));
        let r = PeerReport::parse(&line.replace("\"mismatch\": null", "\"mismatch\": 17"));
        assert_eq!(r.mismatch, Some(17));
    }

    /// The script's pattern is tpa's side's ([`crate::pattern`], tperf's):
    /// at the start, across the script's 1 MiB chunk boundary, and far in.
    #[test]
    fn the_scripts_pattern_is_tperfs() {
        let byte_at = |seed: u64, i: u64| crate::pattern::Pattern::new(seed).byte_at(i);
        for (seed, offset, len) in [
            (1u64, 0u64, 40u64),
            (1, (1 << 20) - 13, 29),
            (0xdead_beef_f00d, 7 * (1 << 20) + 3, 21),
        ] {
            let out = Command::new("python3")
                .args([&script(), "--seed", &seed.to_string(), "pattern-hex"])
                .args([offset.to_string(), len.to_string()])
                .output()
                .expect("run tcp_peer.py");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let want: String = (offset..offset + len)
                .map(|i| format!("{:02x}", byte_at(seed, i)))
                .collect();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                want,
                "seed {seed:#x} offset {offset}"
            );
        }
    }
}
