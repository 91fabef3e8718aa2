//! Per-socket latency stages (`TcpConfig::measure_latency`): how long the
//! application's data waits inside the stack, on both sides.
//!
//! - read: from a frame's receive timestamp (`Meta::rx_timestamp_ns`, or
//!   the connection's clock when it was queued if the port stamps none)
//!   to the application's read of its first byte (one sample per `recv`
//!   buffer, one per `read` call, taken at its oldest byte);
//! - write to sent: from the application's write (`send`/`send_buf`) to
//!   the first transmission of the chunk holding it;
//! - write to acknowledged: from that write to the cumulative ACK that
//!   released the chunk.
//!
//! A write is stamped once per chunk: small writes that fill one chunk's
//! tailroom share the first one's stamp (the oldest byte's wait). Times are
//! the connection's clock (the `now` of its last input, output or timer
//! call), so a read is dated by the worker loop's last turn. Chunks cut
//! anew by a resegmentation (after a PMTU drop) carry no stamp and are not
//! counted. With the knob off nothing is stamped nor kept: the connection
//! holds `None` and each hook is one branch.

/// count/min/avg/max of one stage, in nanoseconds.
///
/// ```
/// use tpa_stages::tcp::conn::LatencyStage;
/// let mut s = LatencyStage::default();
/// s.record(5);
/// s.record(15);
/// assert_eq!((s.count, s.min_ns, s.avg_ns(), s.max_ns), (2, 5, 10, 15));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyStage {
    /// Samples.
    pub count: u64,
    /// Sum of the samples (saturating).
    pub total_ns: u64,
    /// The smallest sample (0 before the first).
    pub min_ns: u64,
    /// The largest sample.
    pub max_ns: u64,
}

impl LatencyStage {
    /// Adds one sample.
    pub fn record(&mut self, ns: u64) {
        self.min_ns = if self.count == 0 {
            ns
        } else {
            self.min_ns.min(ns)
        };
        self.max_ns = self.max_ns.max(ns);
        self.total_ns = self.total_ns.saturating_add(ns);
        self.count += 1;
    }

    /// The mean (0 before the first sample).
    pub fn avg_ns(&self) -> u64 {
        self.total_ns.checked_div(self.count).unwrap_or(0)
    }
}

/// The stages of one connection (all zero when `measure_latency` is off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketLatency {
    /// Arrival to the application's read.
    pub read: LatencyStage,
    /// The application's write to the first transmission.
    pub write_sent: LatencyStage,
    /// The application's write to its acknowledgment.
    pub write_acked: LatencyStage,
}
