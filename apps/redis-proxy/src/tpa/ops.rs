//! The proxy as a tpa instance (doc/operations.md): started before the
//! ports open, each worker publishing its stack's figures and its
//! engine's counters per pool (`tpactl worker`, Prometheus'
//! `tpa_app_proxy_*`).

use tpa::port::Port;
use tpa_stages::ops::snapshot::Counter;
use tpa_stages::ops::stack::StackParts;
use tpa_stages::ops::{collect, Instance, Publisher};

use super::{ProxyApp, ProxyPipeline, TpaOptions};
use crate::proxy::Engine;

/// The instance's name without an id (`redis-proxy-<pid>` unless `--id`).
const APP: &str = "redis-proxy";

/// Starts the instance `tpa.settings` asks for, its workers' loops
/// following the `idle` knob; `None` with `--no-stats` or when it cannot
/// start (said in the log).
pub(super) fn start(tpa: &TpaOptions) -> Option<Instance> {
    let settings = &tpa.settings;
    let instance = Instance::start_if_on(&settings.ops, APP, settings.trace.enabled)?;
    instance.follow_idle(tpa.idle.policy());
    Some(instance)
}

impl<P: Port> ProxyPipeline<P, ProxyApp<'_, P::Buf>> {
    /// Publishes the worker's snapshot through `publisher` (`stopped`: its
    /// last) and applies the runtime knobs' changes.
    pub(super) fn publish(&mut self, publisher: &mut Publisher, stopped: bool) {
        let now = self.stats().now_ns();
        collect::pipeline(publisher.snapshot(), self.stats(), |visit| {
            self.visit_counted(visit)
        });
        let app = app_counters(self.app.engine());
        let state = &mut self.state;
        StackParts {
            port: &mut self.port,
            tcp: &mut state.tcp,
            egress: &state.egress,
            trace: &state.trace,
        }
        .publish(publisher, now, app, stopped);
    }
}

/// The engine's counters: the connections it accepted, then each pool's
/// figures labelled with its name (Prometheus' `tpa_app_proxy_*`, with
/// `_total` on the counters).
pub(super) fn app_counters(engine: &Engine) -> Vec<Counter> {
    let mut out = vec![
        Counter::count("proxy_accepted_connections", engine.accepted_connections())
            .help("Client connections accepted, over every pool."),
    ];
    let pass = engine.passthrough_stats();
    out.extend([
        Counter::count("proxy_passthrough_frames", pass.frames)
            .help("Big values whose remainder passed through (replies to clients, requests to servers)."),
        Counter::count("proxy_passthrough_bytes", pass.bytes)
            .help("Bytes those values passed through (not copied into the proxy's buffers)."),
        Counter::count("proxy_zero_copy_bytes", pass.zero_copy_bytes)
            .help("Of those, bytes sent as the received packet buffers themselves."),
        Counter::count("proxy_passthrough_dropped_bytes", pass.dropped_bytes)
            .help("Bytes of passing values dropped (their client left mid-reply, or their server connection failed mid-request)."),
    ]);
    for p in engine.pool_totals() {
        let per_pool = [
            (
                "proxy_client_connections",
                p.client_connections,
                true,
                "Client connections open now.",
            ),
            (
                "proxy_client_errors",
                p.client_errors,
                false,
                "Client connections that failed.",
            ),
            (
                "proxy_requests",
                p.requests,
                false,
                "Requests sent to the pool's servers.",
            ),
            (
                "proxy_request_bytes",
                p.request_bytes,
                false,
                "Bytes of the requests sent to the pool's servers.",
            ),
            (
                "proxy_responses",
                p.responses,
                false,
                "Replies received from the pool's servers.",
            ),
            (
                "proxy_response_bytes",
                p.response_bytes,
                false,
                "Bytes of the replies received from the pool's servers.",
            ),
            (
                "proxy_forward_errors",
                p.forward_errors,
                false,
                "Requests answered with an error because their server failed.",
            ),
            (
                "proxy_server_errors",
                p.server_errors,
                false,
                "Server connection failures (errors, closes, timeouts).",
            ),
            (
                "proxy_server_timeouts",
                p.server_timeouts,
                false,
                "Requests that timed out on their server.",
            ),
            (
                "proxy_server_ejects",
                p.server_ejects,
                false,
                "Times a server of the pool was ejected.",
            ),
            (
                "proxy_ejected_servers",
                p.ejected_servers,
                true,
                "Servers of the pool ejected now.",
            ),
            (
                "proxy_server_connections",
                p.server_connections,
                true,
                "Server connections open now.",
            ),
        ];
        for (name, value, gauge, help) in per_pool {
            let c = if gauge {
                Counter::gauge(name, value)
            } else {
                Counter::count(name, value)
            };
            out.push(c.help(help).label("pool", p.name.as_str()));
        }
        if let Some(c) = &p.cluster {
            let per_cluster = [
                ("proxy_cluster_moved", c.moved, "MOVED replies followed."),
                (
                    "proxy_cluster_ask",
                    c.ask,
                    "ASK replies followed (with ASKING).",
                ),
                (
                    "proxy_cluster_tryagain",
                    c.try_again,
                    "TRYAGAIN replies retried.",
                ),
                (
                    "proxy_cluster_redirect_limit",
                    c.redirect_limit,
                    "Requests failed after too many redirects.",
                ),
                (
                    "proxy_cluster_bad_redirects",
                    c.bad_redirects,
                    "MOVED or ASK replies that did not parse (passed to the client).",
                ),
                (
                    "proxy_cluster_refreshes",
                    c.refreshes,
                    "Slot maps installed.",
                ),
                (
                    "proxy_cluster_refresh_failures",
                    c.refresh_failures,
                    "Slot map refreshes that failed.",
                ),
            ];
            for (name, value, help) in per_cluster {
                out.push(
                    Counter::count(name, value)
                        .help(help)
                        .label("pool", p.name.as_str()),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::config;
    use crate::proxy::Action;

    /// The value of counter `name` of pool `pool` (`""`: no pool).
    fn value(counters: &[Counter], name: &str, pool: &str) -> (u64, bool) {
        let c = counters
            .iter()
            .find(|c| {
                c.name == name
                    && c.labels
                        .iter()
                        .map(|(_, v)| v.as_str())
                        .eq((!pool.is_empty()).then_some(pool))
            })
            .unwrap_or_else(|| panic!("{name} of {pool:?} in {counters:?}"));
        (c.value, c.gauge)
    }

    #[test]
    fn every_pool_has_its_counters_labelled_with_its_name() {
        let yaml = "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n\
                    beta:\n  listen: 127.0.0.1:22122\n  redis: true\n  servers:\n   - 127.0.0.1:6380:1\n   - 127.0.0.1:6381:1\n";
        let mut engine = Engine::new(config::parse(yaml).unwrap(), Default::default()).unwrap();
        // A client of beta's: one GET to a server and its reply.
        let now = Instant::now();
        let client = engine.client_accepted(1).unwrap();
        let get = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        engine.client_data(client, get, now);
        let mut conn = None;
        while let Some(a) = engine.poll_action() {
            if let Action::Connect { conn: c, .. } = a {
                engine.server_connected(c);
                conn = Some(c);
            }
        }
        let conn = conn.expect("a server connection");
        let out = engine.server_output(conn).len();
        engine.server_wrote(conn, out);
        engine.server_data(conn, b"$1\r\nv\r\n", now);

        let counters = app_counters(&engine);
        assert_eq!(
            value(&counters, "proxy_accepted_connections", ""),
            (1, false)
        );
        for pool in ["alpha", "beta"] {
            let of_pool = counters
                .iter()
                .filter(|c| c.labels == [("pool".to_string(), pool.to_string())])
                .count();
            assert_eq!(of_pool, 12, "{pool}: {counters:?}");
        }
        assert!(counters.iter().all(|c| !c.help.is_empty()));
        assert_eq!(value(&counters, "proxy_requests", "beta"), (1, false));
        // Passthrough is the tpa runtime's: off here, counted all the same.
        assert_eq!(value(&counters, "proxy_zero_copy_bytes", ""), (0, false));
        assert_eq!(value(&counters, "proxy_passthrough_frames", ""), (0, false));
        assert_eq!(
            value(&counters, "proxy_request_bytes", "beta"),
            (get.len() as u64, false)
        );
        assert_eq!(value(&counters, "proxy_responses", "beta"), (1, false));
        assert_eq!(value(&counters, "proxy_response_bytes", "beta"), (7, false));
        assert_eq!(
            value(&counters, "proxy_client_connections", "beta"),
            (1, true)
        );
        assert_eq!(
            value(&counters, "proxy_server_connections", "beta"),
            (1, true)
        );
        assert_eq!(value(&counters, "proxy_ejected_servers", "beta"), (0, true));
        assert_eq!(value(&counters, "proxy_requests", "alpha"), (0, false));
        assert_eq!(
            value(&counters, "proxy_client_connections", "alpha"),
            (0, true)
        );
    }

    #[test]
    fn a_cluster_pool_publishes_its_redirect_counters_and_a_nutcracker_pool_none() {
        let yaml = "plain:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n\
                    cluster:\n  listen: 127.0.0.1:22122\n  redis: true\n  redis_cluster: true\n  servers:\n   - 127.0.0.1:7001:1\n";
        let engine = Engine::new(config::parse(yaml).unwrap(), Default::default()).unwrap();
        let counters = app_counters(&engine);
        let cluster_of = |pool: &str| {
            counters
                .iter()
                .filter(|c| {
                    c.name.starts_with("proxy_cluster_")
                        && c.labels == [("pool".to_string(), pool.to_string())]
                })
                .count()
        };
        assert_eq!(cluster_of("cluster"), 7, "{counters:?}");
        assert_eq!(cluster_of("plain"), 0, "{counters:?}");
        assert_eq!(
            value(&counters, "proxy_cluster_moved", "cluster"),
            (0, false)
        );
        assert_eq!(
            value(&counters, "proxy_cluster_refreshes", "cluster"),
            (0, false)
        );
    }
}
