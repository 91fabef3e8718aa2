//! The ranges every key must be in, and the rules between keys.
//!
//! Checked on the file layout (values as wide as the file allows, keys as the
//! user wrote them), before narrowing into `TcpConfig`: every value that
//! passes fits its field.

use super::error::{ConfigError, ConfigErrorKind};
use super::file::TcpSection;
use super::units::{format_duration, format_size, PortRange};
use super::{MAX_MSS, MAX_WINDOW_BYTES, MIN_MSS};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// How a value is shown in a message.
#[derive(Clone, Copy)]
enum Unit {
    Count,
    Bytes,
    Time,
}

fn show(unit: Unit, value: u64) -> String {
    match unit {
        Unit::Count => value.to_string(),
        Unit::Bytes => format_size(value),
        Unit::Time => format_duration(value),
    }
}

fn range_error(key: &str, message: String) -> ConfigError {
    ConfigError::at(key, ConfigErrorKind::Range(message))
}

/// `value` must lie in `min..=max`.
fn within(key: &str, value: u64, min: u64, max: u64, unit: Unit) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(range_error(
        key,
        format!(
            "{} is out of range {}..={}",
            show(unit, value),
            show(unit, min),
            show(unit, max)
        ),
    ))
}

/// `value` must be at least `min`.
fn at_least(key: &str, value: u64, min: u64, unit: Unit) -> Result<(), ConfigError> {
    if value >= min {
        return Ok(());
    }
    Err(range_error(
        key,
        format!(
            "{} is below the lowest allowed, {}",
            show(unit, value),
            show(unit, min)
        ),
    ))
}

/// A switch-off value (0) given where a separate `enabled` key exists.
fn not_zero_use_switch(key: &str, value: u64, switch: &str) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(range_error(
            key,
            format!("0s is not a valid time; to turn this off set tcp.{switch} = false"),
        ));
    }
    Ok(())
}

impl TcpSection {
    /// Every range and rule; the first broken one is the error.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        use Unit::{Bytes, Count, Time};

        within("max_sockets", self.max_sockets.0, 1, 1 << 24, Count)?;
        within("backlog", self.backlog.0, 1, 1 << 20, Count)?;
        within("send_queue", self.send_queue.0, 1 << 10, 1 << 30, Bytes)?;
        within(
            "receive_queue",
            self.receive_queue.0,
            1 << 10,
            MAX_WINDOW_BYTES,
            Bytes,
        )?;
        if self.mss.0 != 0 {
            within("mss", self.mss.0, MIN_MSS, MAX_MSS, Count)?;
        }
        let PortRange(first, last) = self.local_port_range;
        let port_problem = if first < 1024 {
            Some(format!(
                "the first port, {first}, is below 1024 (the well-known ports)"
            ))
        } else if last > 65_535 {
            Some(format!("the last port, {last}, is above 65535"))
        } else if first > last {
            Some(format!(
                "[{first}, {last}] is empty: the first port is above the last"
            ))
        } else {
            None
        };
        if let Some(problem) = port_problem {
            return Err(range_error("local_port_range", problem));
        }
        within("write_chunk", self.write_chunk.0, 1, 1 << 30, Bytes)?;
        within("max_chain", self.max_chain.0, 2, 255, Count)?;
        within(
            "challenge_ack_limit",
            self.challenge_ack_limit.0,
            0,
            1_000_000,
            Count,
        )?;

        within(
            "cwnd.initial_segments",
            self.cwnd.initial_segments.0,
            1,
            1024,
            Count,
        )?;
        within("cwnd.max", self.cwnd.max.0, 1 << 10, 1 << 30, Bytes)?;
        let initial_bytes = self.cwnd.initial_segments.0 * self.mss.0;
        if self.mss.0 != 0 && self.cwnd.max.0 < initial_bytes {
            return Err(range_error(
                "cwnd.max",
                format!(
                    "{} is below the initial window, tcp.cwnd.initial_segments ({}) × tcp.mss ({}) = {}",
                    format_size(self.cwnd.max.0),
                    self.cwnd.initial_segments.0,
                    self.mss.0,
                    format_size(initial_bytes)
                ),
            ));
        }

        within("rto.min", self.rto.min.0, MS, 600 * S, Time)?;
        within("rto.max", self.rto.max.0, MS, 600 * S, Time)?;
        if self.rto.min.0 > self.rto.max.0 {
            return Err(range_error(
                "rto.min",
                format!(
                    "{} is above tcp.rto.max ({})",
                    format_duration(self.rto.min.0),
                    format_duration(self.rto.max.0)
                ),
            ));
        }
        within(
            "rto.initial",
            self.rto.initial.0,
            self.rto.min.0,
            self.rto.max.0,
            Time,
        )?;

        within("retries.syn", self.retries.syn.0, 1, 127, Count)?;
        within("retries.data", self.retries.data.0, 1, 255, Count)?;

        not_zero_use_switch(
            "delayed_ack.timeout",
            self.delayed_ack.timeout.0,
            "delayed_ack.enabled",
        )?;
        at_least("delayed_ack.timeout", self.delayed_ack.timeout.0, MS, Time)?;
        if self.delayed_ack.timeout.0 >= 500 * MS {
            return Err(range_error(
                "delayed_ack.timeout",
                format!(
                    "{} is not below 500ms (RFC 9293 §3.8.6.3: an ACK is delayed less than 0.5 s)",
                    format_duration(self.delayed_ack.timeout.0)
                ),
            ));
        }

        not_zero_use_switch("keepalive.idle", self.keepalive.idle.0, "keepalive.enabled")?;
        within(
            "keepalive.idle",
            self.keepalive.idle.0,
            MS,
            32_767 * S,
            Time,
        )?;
        within(
            "keepalive.interval",
            self.keepalive.interval.0,
            MS,
            32_767 * S,
            Time,
        )?;
        within("keepalive.probes", self.keepalive.probes.0, 1, 127, Count)?;

        // 2 MSL with RFC 9293's MSL of 2 minutes; 0 closes at once.
        within(
            "time_wait.duration",
            self.time_wait.duration.0,
            0,
            240 * S,
            Time,
        )?;
        within("time_wait.max", self.time_wait.max.0, 0, 1 << 24, Count)?;

        within(
            "ooo.max_segments",
            self.ooo.max_segments.0,
            0,
            1 << 16,
            Count,
        )?;
        within(
            "ooo.worker_max_buffers",
            self.ooo.worker_max_buffers.0,
            0,
            u64::from(u32::MAX),
            Count,
        )?;
        Ok(())
    }
}
