//! What a run of the client or the server prints at its end, the same for
//! tpa and for the kernel's sockets.
//!
//! The client's `final:` line is words and values in pairs, for people and
//! for scripts (benches/echo_veth.sh reads it):
//!
//! ```text
//! final: sent 1000 received 1000 lost 0 corrupt 0 duplicate 0 late 0 send_errors 0 refused 0 seconds 0.084 datagrams_per_s 11904 p50_us 79.1 p99_us 151.0 p999_us 204.3
//! ```

use core::fmt;

use tpa_stages::egress::EgressCounters;

use crate::payload::Corrupt;

/// The client's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientReport {
    /// Datagrams sent (or tried: send errors included).
    pub sent: u64,
    /// Echoes received intact, in time, once each.
    pub received: u64,
    /// Datagrams without an intact echo in time: `sent - received`.
    pub lost: u64,
    /// Echoes that were not what was sent.
    pub corrupt: u64,
    /// Echoes of a datagram that had already come back.
    pub duplicate: u64,
    /// Echoes after their datagram's timeout.
    pub late: u64,
    /// Datagrams the local stack refused to send.
    pub send_errors: u64,
    /// ICMP port unreachable reports from the peer.
    pub refused: u64,
    /// From the start to the last echo, in nanoseconds.
    pub elapsed_ns: u64,
    /// Round-trip times, sorted.
    pub rtts_ns: Vec<u64>,
    /// What was wrong with the first corrupt echo.
    pub first_corruption: Option<Corrupt>,
    /// The sequence number of the first datagram lost.
    pub first_lost: Option<u64>,
    /// What ended the run before every datagram was sent, if anything did
    /// (the peer's neighbor never answered, say).
    pub error: Option<String>,
    /// tpa only: every stage's counters, as the pipeline prints them.
    pub counters: Option<String>,
    /// tpa only: what the output path did (held for a neighbor, released…).
    pub egress: Option<EgressCounters>,
    /// tpa only: buffers of the pool that were not back once the port and
    /// the pipeline were gone (a leak when not 0).
    pub buffers_not_returned: Option<usize>,
}

impl ClientReport {
    /// A report of these counts; `rtts_ns` in any order.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sent: u64,
        received: u64,
        corrupt: u64,
        duplicate: u64,
        late: u64,
        send_errors: u64,
        refused: u64,
        elapsed_ns: u64,
        mut rtts_ns: Vec<u64>,
        first_corruption: Option<Corrupt>,
    ) -> Self {
        rtts_ns.sort_unstable();
        ClientReport {
            sent,
            received,
            lost: sent.saturating_sub(received),
            corrupt,
            duplicate,
            late,
            send_errors,
            refused,
            elapsed_ns,
            rtts_ns,
            first_corruption,
            first_lost: None,
            error: None,
            counters: None,
            egress: None,
            buffers_not_returned: None,
        }
    }

    /// Echoes received per second of the run.
    pub fn datagrams_per_s(&self) -> f64 {
        if self.elapsed_ns == 0 {
            return 0.0;
        }
        self.received as f64 * 1e9 / self.elapsed_ns as f64
    }

    /// The round-trip time that `q` (0 to 1) of the round trips took at
    /// most (nearest rank), in nanoseconds; `None` without round trips.
    pub fn rtt_quantile_ns(&self, q: f64) -> Option<u64> {
        let n = self.rtts_ns.len();
        if n == 0 {
            return None;
        }
        let rank = (q * n as f64).ceil() as usize;
        Some(self.rtts_ns[rank.clamp(1, n) - 1])
    }

    /// Whether every datagram came back intact.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.corrupt == 0 && self.duplicate == 0 && self.late == 0
    }
}

fn micros(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".to_owned(), |ns| format!("{:.1}", ns as f64 / 1e3))
}

impl fmt::Display for ClientReport {
    /// The `final:` line without its prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {} received {} lost {} corrupt {} duplicate {} late {} send_errors {} refused {} \
             seconds {:.3} datagrams_per_s {:.0} p50_us {} p99_us {} p999_us {}",
            self.sent,
            self.received,
            self.lost,
            self.corrupt,
            self.duplicate,
            self.late,
            self.send_errors,
            self.refused,
            self.elapsed_ns as f64 / 1e9,
            self.datagrams_per_s(),
            micros(self.rtt_quantile_ns(0.5)),
            micros(self.rtt_quantile_ns(0.99)),
            micros(self.rtt_quantile_ns(0.999)),
        )
    }
}

/// The server's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerReport {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent back.
    pub echoed: u64,
    /// Datagrams that could not be sent back (the error is counted by kind
    /// in `errors`).
    pub failed: u64,
    /// Echoes refused after they were sent (a neighbor that never
    /// answered: counted by kind in `errors`, not in `echoed` or `failed`).
    pub later_errors: u64,
    /// Payload bytes echoed.
    pub bytes: u64,
    /// Send errors (and later errors) by kind, `(what, how many)`.
    pub errors: Vec<(String, u64)>,
    /// tpa with TCP only: what the TCP echo did.
    pub tcp: Option<TcpReport>,
    /// tpa only: every stage's counters, as the pipeline prints them.
    pub counters: Option<String>,
    /// tpa only: what the output path did (held for a neighbor, released…).
    pub egress: Option<EgressCounters>,
    /// tpa only: buffers of the pool that were not back once the port and
    /// the pipeline were gone (a leak when not 0); `None` for the kernel and
    /// where the caller owns the pool.
    pub buffers_not_returned: Option<usize>,
}

/// The TCP echo's figures (the server's `tcp:` line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpReport {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections that ended cleanly: the peer's end of stream, every
    /// byte echoed, then our close.
    pub closed: u64,
    /// Connections that ended on an error (reset, timed out…), counted by
    /// kind in `errors`.
    pub failed: u64,
    /// Connections still open at the end.
    pub open: u64,
    /// Bytes received (and queued back: every byte received is echoed
    /// unless its connection failed).
    pub bytes: u64,
    /// Received buffers queued back as they came, without a copy.
    pub zero_copy: u64,
    /// Bytes copied instead (a received buffer larger than one of our
    /// segments).
    pub copied: u64,
    /// Times the send queue was full: reading paused until `Writable`.
    pub blocked: u64,
    /// Errors by kind, `(what, how many)`.
    pub errors: Vec<(String, u64)>,
}

impl TcpReport {
    /// Counts a connection failed with `what`.
    pub fn failed(&mut self, what: &str) {
        self.failed += 1;
        match self.errors.iter_mut().find(|(w, _)| w == what) {
            Some((_, n)) => *n += 1,
            None => self.errors.push((what.to_owned(), 1)),
        }
    }
}

impl fmt::Display for TcpReport {
    /// The `tcp:` line without its prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted {} closed {} failed {} open {} bytes {} zero_copy {} copied {} blocked {}",
            self.accepted,
            self.closed,
            self.failed,
            self.open,
            self.bytes,
            self.zero_copy,
            self.copied,
            self.blocked
        )?;
        for (what, n) in &self.errors {
            write!(f, " {what} {n}")?;
        }
        Ok(())
    }
}

impl ServerReport {
    /// Counts a failed echo under `what`.
    pub fn failed(&mut self, what: &str) {
        self.failed += 1;
        self.count_error(what);
    }

    /// Counts an error reported about an echo already sent, under `what`.
    pub fn later_error(&mut self, what: &str) {
        self.later_errors += 1;
        self.count_error(what);
    }

    fn count_error(&mut self, what: &str) {
        match self.errors.iter_mut().find(|(w, _)| w == what) {
            Some((_, n)) => *n += 1,
            None => self.errors.push((what.to_owned(), 1)),
        }
    }
}

impl fmt::Display for ServerReport {
    /// The `final:` line without its prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received {} echoed {} failed {} later_errors {} bytes {}",
            self.received, self.echoed, self.failed, self.later_errors, self.bytes
        )?;
        for (what, n) in &self.errors {
            write!(f, " {what} {n}")?;
        }
        Ok(())
    }
}

/// One line of the output path's counters, words and values in pairs.
pub fn egress_line(c: &EgressCounters) -> String {
    format!(
        "egress: sent {} held {} released {} unreachable {} hold_full {} no_route {} too_big {} \
         arp_requests {} solicitations {}",
        c.sent,
        c.held,
        c.released,
        c.unreachable,
        c.hold_full,
        c.no_route,
        c.too_big,
        c.arp_requests,
        c.solicitations
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rtts: Vec<u64>) -> ClientReport {
        let n = rtts.len() as u64;
        ClientReport::new(n + 1, n, 0, 0, 0, 0, 0, 2_000_000_000, rtts, None)
    }

    #[test]
    fn quantiles_are_nearest_rank_over_sorted_times() {
        let r = report((1..=1000).rev().collect());
        assert_eq!(r.rtt_quantile_ns(0.5), Some(500));
        assert_eq!(r.rtt_quantile_ns(0.99), Some(990));
        assert_eq!(r.rtt_quantile_ns(0.999), Some(999));
        assert_eq!(r.rtt_quantile_ns(1.0), Some(1000));
        assert_eq!(r.rtt_quantile_ns(0.0), Some(1));
        let one = report(vec![42]);
        assert_eq!(one.rtt_quantile_ns(0.999), Some(42));
        assert_eq!(report(vec![]).rtt_quantile_ns(0.5), None);
    }

    #[test]
    fn the_final_line_has_every_figure_in_pairs() {
        let r = report(vec![1_000, 2_000, 3_000]);
        assert_eq!(r.lost, 1);
        assert!(!r.is_clean());
        assert_eq!(
            r.to_string(),
            "sent 4 received 3 lost 1 corrupt 0 duplicate 0 late 0 send_errors 0 refused 0 \
             seconds 2.000 datagrams_per_s 2 p50_us 2.0 p99_us 3.0 p999_us 3.0"
        );
        assert_eq!(r.to_string().split(' ').count() % 2, 0);
        assert!(report(vec![]).to_string().ends_with("p999_us -"));
    }

    #[test]
    fn server_errors_are_counted_by_kind() {
        let mut s = ServerReport {
            received: 3,
            echoed: 1,
            bytes: 64,
            ..ServerReport::default()
        };
        s.failed("EHOSTUNREACH");
        s.failed("ENOBUFS");
        s.later_error("EHOSTUNREACH");
        assert_eq!(
            s.to_string(),
            "received 3 echoed 1 failed 2 later_errors 1 bytes 64 EHOSTUNREACH 2 ENOBUFS 1"
        );
    }

    #[test]
    fn the_tcp_line_has_every_figure_in_pairs() {
        let mut t = TcpReport {
            accepted: 3,
            closed: 1,
            open: 1,
            bytes: 5000,
            zero_copy: 4,
            copied: 10,
            blocked: 2,
            ..TcpReport::default()
        };
        t.failed("ECONNRESET");
        assert_eq!(
            t.to_string(),
            "accepted 3 closed 1 failed 1 open 1 bytes 5000 zero_copy 4 copied 10 blocked 2 \
             ECONNRESET 1"
        );
        assert_eq!(t.to_string().split(' ').count() % 2, 0);
    }
}
