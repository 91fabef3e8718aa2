//! nutcracker's stats: the counters per pool and per server, the JSON it
//! serves on its stats port (same field names), and `-D`'s description.

use std::fmt::Write;
use std::time::Instant;

/// A pool's counters (nutcracker's names).
#[derive(Debug, Clone, Default)]
pub struct PoolStats {
    /// Clients that closed their connection.
    pub client_eof: u64,
    /// Clients whose connection failed.
    pub client_err: u64,
    /// Clients connected now.
    pub client_connections: u64,
    /// Servers ejected.
    pub server_ejects: u64,
    /// Requests answered with an error because their server failed.
    pub forward_error: u64,
    /// Fragments sent for split requests.
    pub fragments: u64,
    /// A cluster pool's redirect and refresh counters (shown as
    /// `cluster_*` fields of the pool; absent for nutcracker's pools).
    pub cluster: Option<crate::cluster::RouterStats>,
}

/// A server's counters (nutcracker's names).
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    /// Times the server closed a connection.
    pub server_eof: u64,
    /// Connection failures (errors, closes, timeouts).
    pub server_err: u64,
    /// Requests that timed out.
    pub server_timedout: u64,
    /// Connections open now.
    pub server_connections: u64,
    /// When it was last ejected, microseconds since the epoch (0: never).
    pub server_ejected_at: u64,
    /// Requests sent.
    pub requests: u64,
    /// Request bytes sent.
    pub request_bytes: u64,
    /// Replies received.
    pub responses: u64,
    /// Reply bytes received.
    pub response_bytes: u64,
    /// Requests queued or in flight.
    pub in_queue: u64,
    /// Request bytes not yet written.
    pub in_queue_bytes: u64,
    /// Requests waiting for their reply.
    pub out_queue: u64,
    /// Reply bytes waiting (always 0: replies are forwarded as they end).
    pub out_queue_bytes: u64,
}

/// A pool's figures for tpa's stats (`tpactl worker`, Prometheus): its
/// counters and its servers' summed, and its servers ejected now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolTotals {
    /// The pool's name.
    pub name: String,
    /// Clients connected now.
    pub client_connections: u64,
    /// Clients whose connection failed.
    pub client_errors: u64,
    /// Requests sent to its servers.
    pub requests: u64,
    /// Their bytes.
    pub request_bytes: u64,
    /// Replies received from its servers.
    pub responses: u64,
    /// Their bytes.
    pub response_bytes: u64,
    /// Requests answered with an error because their server failed.
    pub forward_errors: u64,
    /// Server connection failures (errors, closes, timeouts).
    pub server_errors: u64,
    /// Requests that timed out.
    pub server_timeouts: u64,
    /// Times a server was ejected.
    pub server_ejects: u64,
    /// Servers ejected now.
    pub ejected_servers: u64,
    /// Server connections open now.
    pub server_connections: u64,
    /// A cluster pool's redirect and refresh counters (`None` for
    /// nutcracker's pools).
    pub cluster: Option<crate::cluster::RouterStats>,
}

impl PoolTotals {
    /// The totals of pool `name` from its counters and its servers'
    /// (`ejected`: whether each is ejected now).
    pub fn new<'a>(
        name: &str,
        pool: &PoolStats,
        servers: impl IntoIterator<Item = (&'a ServerStats, bool)>,
    ) -> PoolTotals {
        let mut t = PoolTotals {
            name: name.to_string(),
            client_connections: pool.client_connections,
            client_errors: pool.client_err,
            forward_errors: pool.forward_error,
            server_ejects: pool.server_ejects,
            cluster: pool.cluster,
            ..PoolTotals::default()
        };
        for (s, ejected) in servers {
            t.requests += s.requests;
            t.request_bytes += s.request_bytes;
            t.responses += s.responses;
            t.response_bytes += s.response_bytes;
            t.server_errors += s.server_err;
            t.server_timeouts += s.server_timedout;
            t.server_connections += s.server_connections;
            t.ejected_servers += u64::from(ejected);
        }
        t
    }
}

/// The wall clock the stats need, given by the runtime.
#[derive(Debug, Clone)]
pub struct StatsClock {
    /// The engine's clock now.
    pub now: Instant,
    /// Microseconds since the epoch now.
    pub unix_micros: u64,
    /// Seconds since the proxy started.
    pub uptime: u64,
    /// The host name (nutcracker's `source`).
    pub source: String,
    /// The version string.
    pub version: String,
}

impl StatsClock {
    /// `at` in microseconds since the epoch.
    pub fn unix_micros_at(&self, at: Instant) -> u64 {
        let ago = self.now.saturating_duration_since(at).as_micros() as u64;
        self.unix_micros.saturating_sub(ago)
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

type PoolView = (String, PoolStats, Vec<(String, ServerStats)>);

/// One engine's stats at a moment, to be summed over several engines
/// (tpa's workers) and rendered as one.
#[derive(Debug, Clone, Default)]
pub struct StatsView {
    /// Client connections accepted so far.
    pub total: u64,
    /// Client connections open now.
    pub current: u64,
    /// Every pool's counters and its servers'.
    pub pools: Vec<PoolView>,
}

impl StatsView {
    /// Adds `other`'s counters to these (engines of one configuration:
    /// pools and servers in the same order); an ejection time is the
    /// latest of either.
    pub fn add(&mut self, other: &StatsView) {
        if self.pools.is_empty() {
            self.pools = other.pools.clone();
            self.total += other.total;
            self.current += other.current;
            return;
        }
        self.total += other.total;
        self.current += other.current;
        for ((_, p, servers), (_, q, others)) in self.pools.iter_mut().zip(&other.pools) {
            p.client_eof += q.client_eof;
            p.client_err += q.client_err;
            p.client_connections += q.client_connections;
            p.server_ejects += q.server_ejects;
            p.forward_error += q.forward_error;
            p.fragments += q.fragments;
            if let Some(theirs) = &q.cluster {
                p.cluster.get_or_insert_with(Default::default).add(theirs);
            }
            for ((_, s), (_, t)) in servers.iter_mut().zip(others) {
                s.server_eof += t.server_eof;
                s.server_err += t.server_err;
                s.server_timedout += t.server_timedout;
                s.server_connections += t.server_connections;
                s.server_ejected_at = s.server_ejected_at.max(t.server_ejected_at);
                s.requests += t.requests;
                s.request_bytes += t.request_bytes;
                s.responses += t.responses;
                s.response_bytes += t.response_bytes;
                s.in_queue += t.in_queue;
                s.in_queue_bytes += t.in_queue_bytes;
                s.out_queue += t.out_queue;
                s.out_queue_bytes += t.out_queue_bytes;
            }
        }
    }

    /// The stats JSON of these counters.
    pub fn render(&self, clock: &StatsClock) -> String {
        render(clock, self.total, self.current, &self.pools)
    }
}

/// The stats JSON in nutcracker's layout and field order.
pub fn render(clock: &StatsClock, total: u64, current: u64, pools: &[PoolView]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"service\":\"nutcracker\", \"source\":\"{}\", \"version\":\"{}\", \"uptime\":{}, \"timestamp\":{}, \"total_connections\":{}, \"curr_connections\":{}",
        escape(&clock.source),
        escape(&clock.version),
        clock.uptime,
        clock.unix_micros / 1_000_000,
        total,
        current
    );
    for (name, p, servers) in pools {
        let _ = write!(
            out,
            ", \"{}\": {{\"client_eof\":{}, \"client_err\":{}, \"client_connections\":{}, \"server_ejects\":{}, \"forward_error\":{}, \"fragments\":{}",
            escape(name),
            p.client_eof,
            p.client_err,
            p.client_connections,
            p.server_ejects,
            p.forward_error,
            p.fragments
        );
        if let Some(c) = &p.cluster {
            let _ = write!(
                out,
                ", \"cluster_moved\":{}, \"cluster_ask\":{}, \"cluster_tryagain\":{}, \"cluster_redirect_limit\":{}, \"cluster_bad_redirects\":{}, \"cluster_refreshes\":{}, \"cluster_refresh_failures\":{}",
                c.moved,
                c.ask,
                c.try_again,
                c.redirect_limit,
                c.bad_redirects,
                c.refreshes,
                c.refresh_failures
            );
        }
        for (server, s) in servers {
            let _ = write!(
                out,
                ", \"{}\": {{\"server_eof\":{}, \"server_err\":{}, \"server_timedout\":{}, \"server_connections\":{}, \"server_ejected_at\":{}, \"requests\":{}, \"request_bytes\":{}, \"responses\":{}, \"response_bytes\":{}, \"in_queue\":{}, \"in_queue_bytes\":{}, \"out_queue\":{}, \"out_queue_bytes\":{}}}",
                escape(server),
                s.server_eof,
                s.server_err,
                s.server_timedout,
                s.server_connections,
                s.server_ejected_at,
                s.requests,
                s.request_bytes,
                s.responses,
                s.response_bytes,
                s.in_queue,
                s.in_queue_bytes,
                s.out_queue,
                s.out_queue_bytes
            );
        }
        out.push('}');
    }
    out.push_str("}\n");
    out
}

/// `-D`: every stat and what it means, as nutcracker prints them.
pub fn describe_stats() -> String {
    let pool = [
        ("client_eof", "counter", "# eof on client connections"),
        ("client_err", "counter", "# errors on client connections"),
        ("client_connections", "gauge", "# active client connections"),
        (
            "server_ejects",
            "counter",
            "# times backend server was ejected",
        ),
        (
            "forward_error",
            "counter",
            "# times we encountered a forwarding error",
        ),
        (
            "fragments",
            "counter",
            "# fragments created from a multi-vector request",
        ),
    ];
    let server = [
        ("server_eof", "counter", "# eof on server connections"),
        ("server_err", "counter", "# errors on server connections"),
        (
            "server_timedout",
            "counter",
            "# timeouts on server connections",
        ),
        ("server_connections", "gauge", "# active server connections"),
        (
            "server_ejected_at",
            "timestamp",
            "timestamp when server was ejected in usec since epoch",
        ),
        ("requests", "counter", "# requests"),
        ("request_bytes", "counter", "total request bytes"),
        ("responses", "counter", "# responses"),
        ("response_bytes", "counter", "total response bytes"),
        ("in_queue", "gauge", "# requests in incoming queue"),
        (
            "in_queue_bytes",
            "gauge",
            "current request bytes in incoming queue",
        ),
        ("out_queue", "gauge", "# requests in outgoing queue"),
        (
            "out_queue_bytes",
            "gauge",
            "current request bytes in outgoing queue",
        ),
    ];
    let mut out = String::from("\npool stats:\n");
    for (name, _, what) in pool {
        let _ = writeln!(out, "  {name:<20}\"{what}\"");
    }
    out.push_str("\nserver stats:\n");
    for (name, _, what) in server {
        let _ = writeln!(out, "  {name:<20}\"{what}\"");
    }
    out
}
