//! The `[tcp]` table of a config file: its layout (serde), and the lossless
//! mapping to and from [`TcpConfig`].
//!
//! The layout groups related knobs in sub-tables (`[tcp.rto]`,
//! `[tcp.keepalive]`, ...) and writes times and sizes in human units; the
//! struct keeps nanoseconds and bytes. Every field defaults to
//! `TcpConfig::default()`, so a file names only what it changes.

use serde::{Deserialize, Serialize};

use super::units::{Count, Duration, PortRange, Size};
use super::{CongestionAlgorithm, TcpConfig};
use crate::tcp::syncookie::SynCookieMode;

/// `[tcp]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct TcpSection {
    pub max_sockets: Count,
    pub backlog: Count,
    pub send_queue: Size,
    pub receive_queue: Size,
    pub mss: Count,
    pub nodelay: bool,
    pub congestion: CongestionAlgorithm,
    pub local_port_range: PortRange,
    pub write_chunk: Size,
    pub max_chain: Count,
    pub tso: bool,
    pub rx_merge: bool,
    pub measure_latency: bool,
    pub syn_cookies: SynCookieMode,
    pub frto: bool,
    pub challenge_ack_limit: Count,
    pub rack: bool,
    pub options: OptionsSection,
    pub cwnd: CwndSection,
    pub rto: RtoSection,
    pub retries: RetriesSection,
    pub delayed_ack: DelayedAckSection,
    pub keepalive: KeepaliveSection,
    pub time_wait: TimeWaitSection,
    pub ooo: OooSection,
}

/// `[tcp.options]`: the TCP options offered and accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct OptionsSection {
    pub window_scale: bool,
    pub timestamps: bool,
    pub sack: bool,
    pub paws: bool,
}

/// `[tcp.cwnd]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct CwndSection {
    pub initial_segments: Count,
    pub max: Size,
    pub validation: bool,
    pub restart_after_idle: bool,
}

/// `[tcp.rto]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RtoSection {
    pub min: Duration,
    pub max: Duration,
    pub initial: Duration,
}

/// `[tcp.retries]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RetriesSection {
    pub syn: Count,
    pub data: Count,
}

/// `[tcp.delayed_ack]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct DelayedAckSection {
    pub enabled: bool,
    pub timeout: Duration,
}

/// `[tcp.keepalive]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct KeepaliveSection {
    pub enabled: bool,
    pub idle: Duration,
    pub interval: Duration,
    pub probes: Count,
}

/// `[tcp.time_wait]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct TimeWaitSection {
    pub duration: Duration,
    pub max: Count,
}

/// `[tcp.ooo]`: the out-of-order queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct OooSection {
    pub max_segments: Count,
    pub worker_max_buffers: Count,
}

impl From<&TcpConfig> for TcpSection {
    fn from(c: &TcpConfig) -> Self {
        TcpSection {
            max_sockets: Count(c.max_sockets as u64),
            backlog: Count(c.backlog as u64),
            send_queue: Size(c.send_queue_bytes as u64),
            receive_queue: Size(c.receive_queue_bytes as u64),
            mss: Count(u64::from(c.mss)),
            nodelay: c.nodelay,
            congestion: c.congestion,
            local_port_range: PortRange(u64::from(c.port_first), u64::from(c.port_last)),
            write_chunk: Size(c.write_chunk_bytes as u64),
            max_chain: Count(u64::from(c.max_chain_buffers)),
            tso: c.tso,
            rx_merge: c.rx_merge,
            measure_latency: c.measure_latency,
            syn_cookies: c.syn_cookies,
            frto: c.frto,
            challenge_ack_limit: Count(u64::from(c.challenge_ack_limit)),
            rack: c.rack,
            options: OptionsSection {
                window_scale: c.window_scale,
                timestamps: c.timestamps,
                sack: c.sack,
                paws: c.paws,
            },
            cwnd: CwndSection {
                initial_segments: Count(u64::from(c.initial_cwnd_segments)),
                max: Size(u64::from(c.max_cwnd_bytes)),
                validation: c.cwnd_validation,
                restart_after_idle: c.slow_start_after_idle,
            },
            rto: RtoSection {
                min: Duration(c.rto_min_ns),
                max: Duration(c.rto_max_ns),
                initial: Duration(c.rto_initial_ns),
            },
            retries: RetriesSection {
                syn: Count(u64::from(c.syn_retries)),
                data: Count(u64::from(c.data_retries)),
            },
            delayed_ack: DelayedAckSection {
                enabled: c.delayed_ack,
                timeout: Duration(c.delayed_ack_ns),
            },
            keepalive: KeepaliveSection {
                enabled: c.keepalive,
                idle: Duration(c.keepalive_idle_ns),
                interval: Duration(c.keepalive_interval_ns),
                probes: Count(u64::from(c.keepalive_probes)),
            },
            time_wait: TimeWaitSection {
                duration: Duration(c.time_wait_ns),
                max: Count(c.time_wait_max as u64),
            },
            ooo: OooSection {
                max_segments: Count(c.ooo_max_segments as u64),
                worker_max_buffers: Count(c.ooo_worker_max_buffers as u64),
            },
        }
    }
}

/// Narrows a value that [`TcpSection::check`](super::validate) has already
/// bounded to fit `T`.
fn fit<T: TryFrom<u64>>(value: u64) -> T {
    T::try_from(value)
        .ok()
        .expect("validation bounds every value to its field's type")
}

impl TcpSection {
    /// The struct these values describe. Call only after `check()` passed:
    /// it bounds every value to its field's type.
    pub(super) fn to_config(&self) -> TcpConfig {
        TcpConfig {
            max_sockets: fit(self.max_sockets.0),
            send_queue_bytes: fit(self.send_queue.0),
            receive_queue_bytes: fit(self.receive_queue.0),
            ooo_max_segments: fit(self.ooo.max_segments.0),
            ooo_worker_max_buffers: fit(self.ooo.worker_max_buffers.0),
            backlog: fit(self.backlog.0),
            mss: fit(self.mss.0),
            window_scale: self.options.window_scale,
            timestamps: self.options.timestamps,
            sack: self.options.sack,
            paws: self.options.paws,
            initial_cwnd_segments: fit(self.cwnd.initial_segments.0),
            max_cwnd_bytes: fit(self.cwnd.max.0),
            congestion: self.congestion,
            rto_min_ns: self.rto.min.0,
            rto_max_ns: self.rto.max.0,
            rto_initial_ns: self.rto.initial.0,
            syn_retries: fit(self.retries.syn.0),
            data_retries: fit(self.retries.data.0),
            delayed_ack: self.delayed_ack.enabled,
            delayed_ack_ns: self.delayed_ack.timeout.0,
            keepalive: self.keepalive.enabled,
            keepalive_idle_ns: self.keepalive.idle.0,
            keepalive_interval_ns: self.keepalive.interval.0,
            keepalive_probes: fit(self.keepalive.probes.0),
            time_wait_ns: self.time_wait.duration.0,
            time_wait_max: fit(self.time_wait.max.0),
            tso: self.tso,
            port_first: fit(self.local_port_range.0),
            port_last: fit(self.local_port_range.1),
            nodelay: self.nodelay,
            write_chunk_bytes: fit(self.write_chunk.0),
            max_chain_buffers: fit(self.max_chain.0),
            rx_merge: self.rx_merge,
            measure_latency: self.measure_latency,
            syn_cookies: self.syn_cookies,
            frto: self.frto,
            cwnd_validation: self.cwnd.validation,
            slow_start_after_idle: self.cwnd.restart_after_idle,
            challenge_ack_limit: fit(self.challenge_ack_limit.0),
            rack: self.rack,
        }
    }
}

impl Default for TcpSection {
    fn default() -> Self {
        TcpSection::from(&TcpConfig::default())
    }
}

/// Each sub-table's default is its part of `TcpConfig::default()`.
macro_rules! default_from_config {
    ($($section:ident => $field:ident),* $(,)?) => {$(
        impl Default for $section {
            fn default() -> Self {
                TcpSection::default().$field
            }
        }
    )*};
}

default_from_config! {
    OptionsSection => options,
    CwndSection => cwnd,
    RtoSection => rto,
    RetriesSection => retries,
    DelayedAckSection => delayed_ack,
    KeepaliveSection => keepalive,
    TimeWaitSection => time_wait,
    OooSection => ooo,
}

/// The shape of the `[tcp]` table: every key (dotted, without `tcp.`) and
/// whether it is a sub-table, read off the serialized defaults so it cannot
/// drift from the layout.
pub(super) fn schema() -> toml::Table {
    toml::Table::try_from(TcpSection::default())
        .expect("the default TCP section serializes to a table")
}

/// Every leaf key, dotted, in the order the layout declares them.
pub(super) fn leaf_keys() -> Vec<String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (name, value) in table {
            let key = join(prefix, name);
            match value {
                toml::Value::Table(sub) => walk(&key, sub, out),
                _ => out.push(key),
            }
        }
    }
    let mut keys = Vec::new();
    walk("", &schema(), &mut keys);
    keys
}

/// `rto` + `min` → `rto.min`.
pub(super) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
