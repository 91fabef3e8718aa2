//! What a client run prints: one table for people, or one JSON object
//! (`--json`), with the same field names; and whether the run passed.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::config::ClientConfig;
use crate::cpu::CpuTime;
use crate::protocol::Summary;
use crate::session::ClientStats;

/// Everything a client run measured and found.
#[derive(Debug, Clone)]
pub struct ClientReport {
    /// What was asked.
    pub config: ClientConfig,
    /// Which stack ran the client's side (`"kernel"`).
    pub stack: &'static str,
    /// The client's congestion control (`"cubic"`), if known.
    pub congestion: Option<String>,
    /// The workers' figures, merged.
    pub stats: ClientStats,
    /// From the first connect to the last connection's end.
    pub elapsed: Duration,
    /// The process's CPU time over the same span.
    pub cpu: CpuTime,
    /// What the server saw, or why it could not be had.
    pub server: Result<Summary, String>,
}

fn us(ns: Option<u64>) -> Value {
    ns.map_or(Value::Null, |v| json!(v as f64 / 1e3))
}

fn per(a: f64, b: f64) -> Value {
    if b > 0.0 {
        json!(a / b)
    } else {
        Value::Null
    }
}

impl ClientReport {
    /// What is wrong with the run, if anything: failed connections,
    /// integrity errors on either side, a server that saw other byte
    /// counts than the client, a run that measured nothing.
    pub fn problems(&self) -> Vec<String> {
        let s = &self.stats;
        let mut out: Vec<String> = s.first_failures.iter().map(|f| f.to_string()).collect();
        if s.failures > s.first_failures.len() as u64 {
            out.push(format!(
                "... and {} more failed connections",
                s.failures - s.first_failures.len() as u64
            ));
        }
        match &self.server {
            Err(e) => out.push(format!("no summary from the server: {e}")),
            Ok(sum) => {
                if let Some(m) = sum.first_mismatch {
                    out.push(format!(
                        "the server found an integrity error: connection {}: {}",
                        m.conn, m.mismatch
                    ));
                }
                if sum.integrity_errors > u64::from(sum.first_mismatch.is_some()) {
                    out.push(format!(
                        "the server found integrity errors on {} connections",
                        sum.integrity_errors
                    ));
                }
                if sum.other_errors > 0 {
                    out.push(format!(
                        "the server saw {} connections fail (its output says why)",
                        sum.other_errors
                    ));
                }
                if sum.incomplete {
                    out.push(format!(
                        "the server saw {} of the {} connections announced end",
                        sum.connections, s.connections_announced
                    ));
                }
                // Every byte arrived: the checks above see wrong bytes, this
                // sees missing ones at the end of a stream.
                if s.failures == 0 && sum.integrity_errors == 0 && sum.other_errors == 0 {
                    if sum.bytes_received != s.bytes_sent {
                        out.push(format!(
                            "the client sent {} bytes, the server received {}",
                            s.bytes_sent, sum.bytes_received
                        ));
                    }
                    if sum.bytes_sent != s.bytes_received {
                        out.push(format!(
                            "the server sent {} bytes, the client received {}",
                            sum.bytes_sent, s.bytes_received
                        ));
                    }
                }
            }
        }
        if self.config.test.is_transactional() {
            if s.transactions == 0 {
                out.push("no transaction completed".into());
            }
        } else if s.bytes_sent + s.bytes_received == 0 {
            out.push("no data moved".into());
        }
        out
    }

    /// Whether the run passed (no [`problems`](Self::problems)).
    pub fn ok(&self) -> bool {
        self.problems().is_empty()
    }

    /// The figures, in the order of the table (the JSON object's keys).
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        let c = &self.config;
        let s = &self.stats;
        let secs = self.elapsed.as_secs_f64();
        let bytes = (s.bytes_sent + s.bytes_received) as f64;
        let cpu_ns = self.cpu.total().as_nanos() as f64;
        let gbit = |b: u64| per(b as f64 * 8.0 / 1e9, secs);
        let lat = &s.latency;
        vec![
            ("test", json!(c.test.name())),
            // The server's lines about the run carry the same id.
            ("run", json!(format!("{:016x}", c.run))),
            ("server", json!(c.server.to_string())),
            ("stack", json!(self.stack)),
            ("congestion", json!(self.congestion)),
            ("workers", json!(c.workers)),
            ("connections", json!(c.connections)),
            ("message_size", json!(c.message_size)),
            (
                "response_size",
                if c.test.is_transactional() {
                    json!(c.response_size)
                } else {
                    Value::Null
                },
            ),
            ("seconds", json!(secs)),
            ("bytes_sent", json!(s.bytes_sent)),
            ("bytes_received", json!(s.bytes_received)),
            ("send_gbit_s", gbit(s.bytes_sent)),
            ("receive_gbit_s", gbit(s.bytes_received)),
            ("transactions", json!(s.transactions)),
            ("transactions_per_s", per(s.transactions as f64, secs)),
            ("latency_p50_us", us(lat.quantile(0.5))),
            ("latency_p99_us", us(lat.quantile(0.99))),
            ("latency_p999_us", us(lat.quantile(0.999))),
            ("latency_min_us", us(lat.min())),
            (
                "latency_mean_us",
                lat.mean().map_or(Value::Null, |m| json!(m / 1e3)),
            ),
            ("latency_max_us", us(lat.max())),
            ("connections_opened", json!(s.connections_opened)),
            ("connections_completed", json!(s.connections_completed)),
            ("cpu_user_s", json!(self.cpu.user.as_secs_f64())),
            ("cpu_system_s", json!(self.cpu.system.as_secs_f64())),
            ("cpu_ns_per_byte", per(cpu_ns, bytes)),
            (
                "cpu_us_per_transaction",
                per(cpu_ns / 1e3, s.transactions as f64),
            ),
            ("integrity_errors", json!(s.integrity_errors)),
            ("failed_connections", json!(s.failures)),
        ]
    }

    fn server_fields(&self) -> Value {
        let Ok(sum) = &self.server else {
            return Value::Null;
        };
        json!({
            "connections": sum.connections,
            "bytes_received": sum.bytes_received,
            "bytes_sent": sum.bytes_sent,
            "transactions": sum.transactions,
            "integrity_errors": sum.integrity_errors,
            "failed_connections": sum.other_errors,
            "first_integrity_error": sum.first_mismatch.map(|m| json!({
                "connection": m.conn,
                "offset": m.mismatch.offset,
                "expected": m.mismatch.expected,
                "got": m.mismatch.got,
            })),
            "incomplete": sum.incomplete,
            "cpu_user_s": sum.cpu_user_us as f64 / 1e6,
            "cpu_system_s": sum.cpu_system_us as f64 / 1e6,
            "cpu_ns_per_byte": per(
                (sum.cpu_user_us + sum.cpu_system_us) as f64 * 1e3,
                (sum.bytes_sent + sum.bytes_received) as f64,
            ),
            "cpu_us_per_transaction": per(
                (sum.cpu_user_us + sum.cpu_system_us) as f64,
                sum.transactions as f64,
            ),
        })
    }

    /// The JSON object: [`fields`](Self::fields), `server` (what the
    /// server saw, or null), `first_integrity_error` (the client's),
    /// `problems` and `ok`.
    pub fn json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in self.fields() {
            m.insert(k.into(), v);
        }
        let first = self
            .stats
            .first_failures
            .iter()
            .find_map(|f| match f.failure {
                crate::session::Failure::Integrity(mm) => Some(json!({
                    "connection": f.conn,
                    "offset": mm.offset,
                    "expected": mm.expected,
                    "got": mm.got,
                })),
                _ => None,
            });
        m.insert("first_integrity_error".into(), first.unwrap_or(Value::Null));
        m.insert("server_view".into(), self.server_fields());
        let problems = self.problems();
        m.insert("ok".into(), json!(problems.is_empty()));
        m.insert("problems".into(), json!(problems));
        Value::Object(m)
    }

    /// The table for people: a field a line, then the server's view and
    /// the problems.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.fields() {
            out.push_str(&format!("{k:<32}{}\n", show(&v)));
        }
        if let Value::Object(server) = self.server_fields() {
            for (k, v) in server {
                if k == "first_integrity_error" && v.is_null() {
                    continue;
                }
                out.push_str(&format!("{:<32}{}\n", format!("server.{k}"), show(&v)));
            }
        }
        let problems = self.problems();
        if problems.is_empty() {
            out.push_str("result                          ok: every byte checked both ways\n");
        } else {
            for p in problems {
                out.push_str(&format!("problem                         {p}\n"));
            }
        }
        out
    }
}

/// A value as the table shows it: numbers with at most 3 decimals, `-`
/// for none.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.abs() >= 100.0 {
                format!("{f:.1}")
            } else {
                format!("{f:.3}")
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::Mismatch;
    use crate::protocol::{ServerMismatch, TestKind};
    use crate::session::Failure;

    fn report(test: TestKind) -> ClientReport {
        let mut stats = ClientStats {
            bytes_sent: 1000,
            bytes_received: 1000,
            transactions: 10,
            ..ClientStats::default()
        };
        for v in 1..=10 {
            stats.latency.record(v * 1000);
        }
        ClientReport {
            config: ClientConfig {
                server: "127.0.0.1:4040".parse().expect("addr"),
                test,
                message_size: 100,
                response_size: 100,
                connections: 1,
                workers: 1,
                duration: Duration::from_secs(1),
                run: 1,
            },
            stack: "kernel",
            congestion: Some("cubic".into()),
            stats,
            elapsed: Duration::from_secs(2),
            cpu: CpuTime {
                user: Duration::from_millis(1),
                system: Duration::from_millis(1),
            },
            server: Ok(Summary {
                connections: 1,
                bytes_received: 1000,
                bytes_sent: 1000,
                transactions: 10,
                ..Summary::default()
            }),
        }
    }

    #[test]
    fn a_clean_run_is_ok_with_its_figures() {
        let r = report(TestKind::Rr);
        assert!(r.ok(), "{:?}", r.problems());
        let j = r.json();
        assert_eq!(j["transactions_per_s"], json!(5.0));
        let p50 = j["latency_p50_us"].as_f64().expect("a number");
        assert!(
            (5.0..5.04).contains(&p50),
            "within the histogram's 1/128: {p50}"
        );
        assert_eq!(j["latency_max_us"], json!(10.0));
        assert_eq!(j["cpu_ns_per_byte"], json!(1000.0));
        assert_eq!(j["cpu_us_per_transaction"], json!(200.0));
        assert_eq!(j["server_view"]["bytes_received"], json!(1000));
        assert_eq!(j["ok"], json!(true));
        let t = r.table();
        assert!(t.contains("transactions_per_s              5.000\n"), "{t}");
        assert!(t.contains("result                          ok"), "{t}");
    }

    #[test]
    fn errors_on_either_side_and_missing_bytes_are_problems() {
        let mut r = report(TestKind::Write);
        r.stats.fail(
            0,
            Failure::Integrity(Mismatch {
                offset: 5,
                expected: 1,
                got: 2,
            }),
        );
        let p = r.problems();
        assert!(
            p[0].contains("connection 0: integrity error: byte at offset 5"),
            "{p:?}"
        );
        assert_eq!(r.json()["first_integrity_error"]["offset"], json!(5));

        let mut r = report(TestKind::Write);
        if let Ok(s) = &mut r.server {
            s.integrity_errors = 1;
            s.first_mismatch = Some(ServerMismatch {
                conn: 4,
                mismatch: Mismatch {
                    offset: 77,
                    expected: 1,
                    got: 0,
                },
            });
        }
        assert!(r.problems()[0].contains("connection 4: byte at offset 77"));
        assert_eq!(
            r.json()["server_view"]["first_integrity_error"]["offset"],
            json!(77)
        );

        let mut r = report(TestKind::Write);
        if let Ok(s) = &mut r.server {
            s.bytes_received = 999;
        }
        assert_eq!(
            r.problems(),
            vec!["the client sent 1000 bytes, the server received 999".to_string()]
        );

        let mut r = report(TestKind::Rr);
        r.server = Err("connection reset".into());
        assert!(!r.ok());
        assert_eq!(r.json()["server_view"], Value::Null);

        let mut r = report(TestKind::Crr);
        r.stats.transactions = 0;
        assert_eq!(r.problems(), vec!["no transaction completed".to_string()]);
    }
}
