//! The Prometheus text endpoint: every worker's stats file rendered in
//! the text exposition format (version 0.0.4), by a thread that reads the
//! files and never touches a worker.
//!
//! Names follow Prometheus' conventions: `tpa_` first, base units
//! (`_seconds`, `_bytes`), `_total` on counters; the worker, the stage and
//! the drop reason are labels.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::snapshot::WorkerSnapshot;

/// One metric family being rendered: its type, help and samples.
struct Family {
    kind: &'static str,
    help: String,
    samples: Vec<(String, String)>,
}

/// Families by name, rendered in name order.
#[derive(Default)]
struct Families(BTreeMap<String, Family>);

impl Families {
    fn add(
        &mut self,
        name: &str,
        kind: &'static str,
        help: &str,
        labels: &[(&str, &str)],
        value: String,
    ) {
        let fam = self.0.entry(name.to_string()).or_insert_with(|| Family {
            kind,
            help: help.to_string(),
            samples: Vec::new(),
        });
        let mut l = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                l.push(',');
            }
            let _ = write!(l, "{k}=\"{}\"", escape(v));
        }
        fam.samples.push((l, value));
    }

    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.add(name, "counter", help, labels, value.to_string());
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.add(name, "gauge", help, labels, value.to_string());
    }

    fn seconds(&mut self, name: &str, help: &str, labels: &[(&str, &str)], ns: u64) {
        self.add(
            name,
            "counter",
            help,
            labels,
            format!("{:.9}", ns as f64 / 1e9),
        );
    }

    fn render(self) -> String {
        let mut out = String::new();
        for (name, f) in self.0 {
            let _ = writeln!(
                out,
                "# HELP {name} {}",
                f.help.replace('\\', "\\\\").replace('\n', "\\n")
            );
            let _ = writeln!(out, "# TYPE {name} {}", f.kind);
            for (labels, value) in f.samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        out
    }
}

/// A label value escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A name made of `[a-zA-Z0-9_]` only.
fn metric_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The snapshots in Prometheus' text format.
pub fn render(snapshots: &[WorkerSnapshot]) -> String {
    let mut f = Families::default();
    for s in snapshots {
        let w = s.worker.to_string();
        let worker: &[(&str, &str)] = &[("worker", &w)];
        let l = &s.worker_loop;
        f.counter(
            "tpa_worker_iterations_total",
            "Iterations of the worker's loop.",
            worker,
            l.iterations,
        );
        f.counter(
            "tpa_worker_busy_iterations_total",
            "Iterations that received, sent or did something.",
            worker,
            l.busy_iterations,
        );
        f.seconds(
            "tpa_worker_busy_seconds_total",
            "Time in iterations that did work and the gaps after them.",
            worker,
            l.busy_ns,
        );
        f.seconds(
            "tpa_worker_idle_seconds_total",
            "Time in idle iterations, sleeps and waits.",
            worker,
            l.idle_ns,
        );
        f.counter(
            "tpa_worker_starvations_total",
            "Busy iterations over 1 ms from their start to the next one's (the worker kept off its core).",
            worker,
            l.starvations,
        );
        f.seconds(
            "tpa_worker_starved_seconds_total",
            "The time of those iterations, start to next start.",
            worker,
            l.starved_ns,
        );
        f.counter(
            "tpa_worker_rx_packets_total",
            "Packets received from the port.",
            worker,
            l.rx_packets,
        );
        f.counter(
            "tpa_worker_tx_packets_total",
            "Packets the port took for sending.",
            worker,
            l.tx_packets,
        );
        f.gauge(
            "tpa_worker_up",
            "1 while the worker runs, 0 once it stopped.",
            worker,
            u64::from(!s.stopped),
        );
        for st in &s.stages {
            for (verdict, n) in [
                ("passed", st.passed),
                ("consumed", st.consumed),
                ("transmitted", st.transmitted),
                ("to_host", st.to_host),
                ("originated", st.originated),
            ] {
                f.counter(
                    "tpa_stage_packets_total",
                    "Packets each stage settled, by verdict.",
                    &[("worker", &w), ("stage", &st.name), ("verdict", verdict)],
                    n,
                );
            }
            for d in &st.drops {
                f.counter(
                    "tpa_stage_drops_total",
                    "Packets each stage dropped, by reason.",
                    &[("worker", &w), ("stage", &st.name), ("reason", &d.name)],
                    d.value,
                );
            }
        }
        for c in &s.port {
            f.counter(
                &format!("tpa_port_{}_total", metric_name(&c.name)),
                &format!("The worker's port queue: {}.", c.name.replace('_', " ")),
                worker,
                c.value,
            );
        }
        for c in &s.tcp {
            let name = format!("tpa_tcp_{}", metric_name(&c.name));
            if c.gauge {
                f.gauge(
                    &name,
                    &format!("TCP table: {}.", c.name.replace('_', " ")),
                    worker,
                    c.value,
                );
            } else {
                f.counter(
                    &format!("{name}_total"),
                    &format!("TCP table: {}.", c.name.replace('_', " ")),
                    worker,
                    c.value,
                );
            }
        }
        let mut states: BTreeMap<&str, u64> = BTreeMap::new();
        for sock in &s.sockets {
            *states.entry(sock.state.as_str()).or_default() += 1;
        }
        for (state, n) in states {
            f.gauge(
                "tpa_tcp_sockets",
                "Sockets by state.",
                &[("worker", &w), ("state", state)],
                n,
            );
        }
        for p in &s.pools {
            let pool: &[(&str, &str)] = &[("pool", &p.name)];
            f.gauge(
                "tpa_pool_buffers",
                "Buffers the pool owns.",
                pool,
                p.capacity,
            );
            f.gauge(
                "tpa_pool_buffers_in_use",
                "Buffers lent out.",
                pool,
                p.in_use,
            );
            f.gauge(
                "tpa_pool_in_use_bytes",
                "Bytes of the buffers lent out.",
                pool,
                p.in_use * p.buffer_bytes,
            );
            f.counter(
                "tpa_pool_failed_allocs_total",
                "Allocations that found the pool empty.",
                pool,
                p.failed_allocs,
            );
        }
        f.gauge(
            "tpa_neighbor_entries",
            "Neighbor cache entries.",
            worker,
            s.neighbors.len() as u64,
        );
        for c in &s.app {
            let name = format!("tpa_app_{}", metric_name(&c.name));
            let help = if c.help.is_empty() {
                "The application's own."
            } else {
                &c.help
            };
            // The worker, then the counter's own labels (a pool's name).
            let keys: Vec<String> = c.labels.iter().map(|(k, _)| metric_name(k)).collect();
            let mut labels: Vec<(&str, &str)> = vec![("worker", &w)];
            labels.extend(
                keys.iter()
                    .zip(&c.labels)
                    .map(|(k, (_, v))| (k.as_str(), v.as_str())),
            );
            if c.gauge {
                f.gauge(&name, help, &labels, c.value);
            } else {
                f.counter(&format!("{name}_total"), help, &labels, c.value);
            }
        }
    }
    f.render()
}

/// Every stats file in `dir`, decoded (the unreadable ones with their
/// error), in worker order.
pub fn read_dir(dir: &Path) -> Vec<Result<WorkerSnapshot, String>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "stats"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort_by_key(|p| {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let n: u64 = stem
            .trim_start_matches("worker-")
            .parse()
            .unwrap_or(u64::MAX);
        (n, p.clone())
    });
    paths.iter().map(|p| read_file(p)).collect()
}

/// One stats file's snapshot.
pub fn read_file(path: &Path) -> Result<WorkerSnapshot, String> {
    let (_, _, bytes) = super::file::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.is_empty() {
        return Err(format!("{}: nothing published yet", path.display()));
    }
    let snap: WorkerSnapshot =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if snap.version != super::snapshot::SNAPSHOT_VERSION {
        return Err(format!(
            "{}: snapshot version {}, this reader knows {}",
            path.display(),
            snap.version,
            super::snapshot::SNAPSHOT_VERSION
        ));
    }
    Ok(snap)
}

/// The endpoint's thread; dropping it stops the thread.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Serves `GET /metrics` on `addr` from the stats files in `dir`.
    ///
    /// # Errors
    ///
    /// Binding the address, naming it.
    pub fn start(addr: SocketAddr, dir: &Path) -> Result<MetricsServer, String> {
        let listener = TcpListener::bind(addr).map_err(|e| format!("metrics {addr}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("metrics {addr}: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, flag) = (dir.to_path_buf(), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("tpa-metrics".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if flag.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        serve_one(stream, &dir);
                    }
                }
            })
            .map_err(|e| format!("metrics thread: {e}"))?;
        tracing::info!(%addr, "Prometheus endpoint listening");
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port the kernel chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one HTTP request.
fn serve_one(stream: TcpStream, dir: &Path) {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // The headers, up to the empty line.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if request.starts_with("GET ") && (path == "/metrics" || path == "/") {
        let snaps: Vec<WorkerSnapshot> = read_dir(dir).into_iter().flatten().collect();
        ("200 OK", render(&snaps))
    } else {
        ("404 Not Found", "GET /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut w = &stream;
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(body.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::snapshot::{Counter, StageCounters};

    #[test]
    fn families_have_help_and_type_and_labels_are_escaped() {
        let snap = WorkerSnapshot {
            worker: 2,
            stages: vec![StageCounters {
                name: "front".into(),
                consumed: 5,
                drops: vec![Counter::count("bad \"checksum\"", 3)],
                ..StageCounters::default()
            }],
            tcp: vec![
                Counter::count("passive_opens", 7),
                Counter::gauge("open_sockets", 1),
            ],
            app: vec![
                Counter::count("proxy.commands", 9).help("Commands."),
                Counter::count("requests", 4).label("pool", "a\"b"),
            ],
            ..WorkerSnapshot::default()
        };
        let text = render(&[snap]);
        assert!(text.contains("# TYPE tpa_tcp_passive_opens_total counter\ntpa_tcp_passive_opens_total{worker=\"2\"} 7\n"), "{text}");
        assert!(
            text.contains(
                "# TYPE tpa_tcp_open_sockets gauge\ntpa_tcp_open_sockets{worker=\"2\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("tpa_stage_drops_total{worker=\"2\",stage=\"front\",reason=\"bad \\\"checksum\\\"\"} 3"), "{text}");
        assert!(
            text.contains("# HELP tpa_app_proxy_commands_total Commands.\n"),
            "{text}"
        );
        assert!(
            text.contains("tpa_app_requests_total{worker=\"2\",pool=\"a\\\"b\"} 4\n"),
            "{text}"
        );
        // Every family: one HELP and one TYPE line, before its samples.
        let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(helps, types);
    }
}
