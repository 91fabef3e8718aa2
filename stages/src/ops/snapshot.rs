//! What one worker publishes: its loop's time and counters, the
//! pipeline's stage counters, the TCP table's counters and every
//! connection's state, the pools, the neighbor caches and the app's own
//! counters. Written as JSON into the worker's stats file (`file.rs`),
//! read back by `tpactl` and the Prometheus endpoint.

use serde::{Deserialize, Serialize};

/// The snapshot format's version: a reader refuses others.
pub const SNAPSHOT_VERSION: u32 = 1;

/// One worker's figures at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// The instance's id (its run directory's name).
    pub instance: String,
    /// The process.
    pub pid: u32,
    /// The worker's index in the instance.
    pub worker: u32,
    /// When the snapshot was taken, in nanoseconds since the Unix epoch.
    pub unix_ns: u64,
    /// Set by the worker's last snapshot, as it stopped.
    pub stopped: bool,
    /// The loop's time and counters.
    pub worker_loop: LoopCounters,
    /// The pipeline's stages, in order.
    pub stages: Vec<StageCounters>,
    /// The TCP table's counters, by name (`TcpCounters`' fields, and the
    /// table's gauges: `open`, `time_wait`).
    pub tcp: Vec<Counter>,
    /// Connections and listeners (at most the publisher's limit).
    pub sockets: Vec<SocketSnapshot>,
    /// Sockets left out by the limit.
    pub sockets_omitted: u64,
    /// Buffer pools.
    pub pools: Vec<PoolSnapshot>,
    /// Neighbor cache entries, IPv4 and IPv6.
    pub neighbors: Vec<NeighborSnapshot>,
    /// The application's own counters and gauges.
    pub app: Vec<Counter>,
    /// The port's own counters (`Port::visit_counters`: packets and
    /// bytes each way, drops, the kernel's ring drops).
    #[serde(default)]
    pub port: Vec<Counter>,
}

/// The worker loop's time and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopCounters {
    /// Iterations run.
    pub iterations: u64,
    /// Iterations that received, sent or did something.
    pub busy_iterations: u64,
    /// Time in iterations that did work, and in the gaps after them.
    pub busy_ns: u64,
    /// Time in iterations that found nothing to do, and in the gaps after
    /// them (the idle policy's spins, sleeps and waits on the port).
    pub idle_ns: u64,
    /// Busy iterations over 1 ms from their start to the next one's: the
    /// worker was kept off its core (descheduled, a page fault) while it
    /// had work.
    pub starvations: u64,
    /// The time of those, start to next start.
    pub starved_ns: u64,
    /// Packets received from the port.
    pub rx_packets: u64,
    /// Packets the port took for sending.
    pub tx_packets: u64,
    /// Events, app work and timers.
    pub work: u64,
}

/// One stage's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageCounters {
    /// The stage's name in the pipeline.
    pub name: String,
    /// Packets handed on.
    pub passed: u64,
    /// Packets kept or finished with.
    pub consumed: u64,
    /// Packets sent out of the port.
    pub transmitted: u64,
    /// Packets handed to the host.
    pub to_host: u64,
    /// Packets sent on the stage's own initiative.
    pub originated: u64,
    /// Drops by reason name.
    pub drops: Vec<Counter>,
}

/// A named number: a counter (only grows) or a gauge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Its name: lower case, words joined by `_`, the unit last
    /// (`_bytes`, `_seconds`) when it has one.
    pub name: String,
    /// Its value.
    pub value: u64,
    /// Whether it may go down (a queue length, a count of open things).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gauge: bool,
    /// What it counts, for Prometheus' HELP line and `tpactl`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
    /// Which one of a kind it is (an app's counter per pool: `pool` →
    /// `main`), as Prometheus' labels; none for most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
}

impl Counter {
    /// A counter.
    pub fn count(name: impl Into<String>, value: u64) -> Counter {
        Counter {
            name: name.into(),
            value,
            gauge: false,
            help: String::new(),
            labels: Vec::new(),
        }
    }

    /// A gauge.
    pub fn gauge(name: impl Into<String>, value: u64) -> Counter {
        Counter {
            gauge: true,
            ..Counter::count(name, value)
        }
    }

    /// With a HELP text.
    pub fn help(mut self, help: impl Into<String>) -> Counter {
        self.help = help.into();
        self
    }

    /// With label `key` = `value` besides the others.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Counter {
        self.labels.push((key.into(), value.into()));
        self
    }
}

/// One socket: a listener or a connection with its TCP info.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketSnapshot {
    /// The socket table's slot.
    pub index: u32,
    /// Its state (`LISTEN`, `ESTABLISHED`, …).
    pub state: String,
    /// Our address.
    pub local: String,
    /// The peer's (empty for a listener).
    pub remote: String,
    /// The connection's counters and gauges (`TcpInfo`'s fields), none
    /// for a listener.
    pub info: Vec<Counter>,
}

impl SocketSnapshot {
    /// The value of `name` in [`info`](Self::info).
    pub fn get(&self, name: &str) -> Option<u64> {
        self.info.iter().find(|c| c.name == name).map(|c| c.value)
    }
}

/// A buffer pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSnapshot {
    /// The pool's name.
    pub name: String,
    /// Buffers it owns.
    pub capacity: u64,
    /// Buffers lent out.
    pub in_use: u64,
    /// Bytes of a buffer (its data room).
    pub buffer_bytes: u64,
    /// Allocations that found the pool empty.
    pub failed_allocs: u64,
}

/// A neighbor cache entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborSnapshot {
    /// Its IP address.
    pub ip: String,
    /// Its link-layer address (empty while INCOMPLETE).
    pub mac: String,
    /// Its state now (`REACHABLE`, `STALE`, …).
    pub state: String,
    /// Packets held waiting for it.
    pub held: u64,
}
