//! The commands that read an instance's stats files (`sk`, `ss`,
//! `worker`, `mem`, `neigh`, `list`) and the one that asks its control
//! socket (`cfg`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tpa_stages::ops::prometheus::read_dir;
use tpa_stages::ops::request;
use tpa_stages::ops::snapshot::{SocketSnapshot, WorkerSnapshot};

/// The directory of instance `id`, or of the only instance when none is
/// named.
pub fn instance_dir(run_dir: &Path, id: Option<&str>) -> Result<PathBuf, String> {
    if let Some(id) = id {
        let dir = run_dir.join(id);
        if !dir.is_dir() {
            return Err(format!("no instance {id} under {}", run_dir.display()));
        }
        return Ok(dir);
    }
    let found = instances(run_dir);
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no instance under {}", run_dir.display())),
        many => Err(format!(
            "{} instances under {}; choose one with --id: {}",
            many.len(),
            run_dir.display(),
            many.iter()
                .filter_map(|d| d.file_name()?.to_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The instance directories: those with stats files or a control socket.
fn instances(run_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|d| {
                    d.is_dir()
                        && (d.join("control.sock").exists()
                            || std::fs::read_dir(d).is_ok_and(|mut es| {
                                es.any(|e| {
                                    e.is_ok_and(|e| {
                                        e.path().extension().is_some_and(|x| x == "stats")
                                    })
                                })
                            }))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Every worker's snapshot; an error when none could be read.
fn snapshots(dir: &Path) -> Result<Vec<WorkerSnapshot>, String> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for r in read_dir(dir) {
        match r {
            Ok(s) => out.push(s),
            Err(e) => errors.push(e),
        }
    }
    for e in &errors {
        eprintln!("tpactl: {e}");
    }
    if out.is_empty() {
        return Err(format!("no stats under {}", dir.display()));
    }
    Ok(out)
}

/// Whether the instance answers on its control socket.
fn alive(dir: &Path) -> bool {
    request(dir, "info").is_ok()
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `list`.
pub fn list(run_dir: &Path, json: bool) -> Result<(), String> {
    let mut rows = Vec::new();
    for dir in instances(run_dir) {
        let id = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let snaps: Vec<WorkerSnapshot> = read_dir(&dir).into_iter().flatten().collect();
        let pid = snaps.first().map_or(0, |s| s.pid);
        rows.push((id, pid, snaps.len(), alive(&dir)));
    }
    if json {
        print_json(&json!(rows
            .iter()
            .map(|(id, pid, workers, alive)| json!({"id": id, "pid": pid, "workers": workers, "alive": alive}))
            .collect::<Vec<_>>()));
        return Ok(());
    }
    println!("{:<28} {:>8} {:>7}  state", "id", "pid", "workers");
    for (id, pid, workers, alive) in rows {
        let state = if alive {
            "running"
        } else {
            "gone (files kept)"
        };
        println!("{id:<28} {pid:>8} {workers:>7}  {state}");
    }
    Ok(())
}

/// A duration in nanoseconds, in milliseconds with three decimals.
fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

/// `sk`.
pub fn sk(dir: &Path, verbose: bool, json: bool) -> Result<(), String> {
    let snaps = snapshots(dir)?;
    if json {
        let v: Vec<_> = snaps
            .iter()
            .flat_map(|s| s.sockets.iter().map(move |k| (s.worker, k)))
            .map(|(w, k)| {
                let mut o = json!({"worker": w, "index": k.index, "state": k.state, "local": k.local, "remote": k.remote});
                for c in &k.info {
                    o[c.name.as_str()] = json!(c.value);
                }
                o
            })
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    println!(
        "{:>2} {:>5} {:<12} {:<24} {:<24} {:>8} {:>8} {:>8} {:>9} {:>7}",
        "w", "slot", "state", "local", "remote", "send-q", "recv-q", "cwnd", "srtt-ms", "retrans"
    );
    for s in &snaps {
        for k in &s.sockets {
            let g = |n: &str| k.get(n).map_or("-".to_string(), |v| v.to_string());
            println!(
                "{:>2} {:>5} {:<12} {:<24} {:<24} {:>8} {:>8} {:>8} {:>9} {:>7}",
                s.worker,
                k.index,
                k.state,
                k.local,
                if k.remote.is_empty() { "*" } else { &k.remote },
                g("send_queue_bytes"),
                g("receive_queue_bytes"),
                g("cwnd"),
                k.get("rtt_ns").map_or("-".to_string(), ms),
                g("total_retrans"),
            );
            if verbose && !k.info.is_empty() {
                verbose_lines(k);
            }
        }
        if s.sockets_omitted > 0 {
            println!(
                "   worker {}: {} sockets more (stats.max_sockets)",
                s.worker, s.sockets_omitted
            );
        }
    }
    Ok(())
}

/// A connection's every counter, a few to a line.
fn verbose_lines(k: &SocketSnapshot) {
    let items: Vec<String> = k
        .info
        .iter()
        .map(|c| match c.name.strip_suffix("_ns") {
            Some(base) => format!("{base}_ms {}", ms(c.value)),
            None => format!("{} {}", c.name, c.value),
        })
        .collect();
    for chunk in items.chunks(5) {
        println!("           {}", chunk.join("  "));
    }
}

/// Bytes sent and received per connection, by worker and slot.
fn conn_bytes(s: &WorkerSnapshot) -> BTreeMap<(u32, String), (u64, u64)> {
    s.sockets
        .iter()
        .filter(|k| !k.remote.is_empty())
        .map(|k| {
            (
                (k.index, k.remote.clone()),
                (
                    k.get("bytes_acked").unwrap_or(0),
                    k.get("bytes_received").unwrap_or(0),
                ),
            )
        })
        .collect()
}

/// `ss`: two readings `every` apart, their difference as rates; again
/// and again unless `once`.
pub fn ss(dir: &Path, every: Duration, once: bool, json: bool) -> Result<(), String> {
    let mut before = snapshots(dir)?;
    loop {
        std::thread::sleep(every);
        let after = snapshots(dir)?;
        let mut rows = Vec::new();
        for a in &after {
            let Some(b) = before.iter().find(|b| b.worker == a.worker) else {
                continue;
            };
            let secs = (a.unix_ns.saturating_sub(b.unix_ns) as f64 / 1e9).max(1e-9);
            let (la, lb) = (&a.worker_loop, &b.worker_loop);
            let rate = |x: u64, y: u64| x.saturating_sub(y) as f64 / secs;
            let busy = la.busy_ns.saturating_sub(lb.busy_ns) as f64;
            let idle = la.idle_ns.saturating_sub(lb.idle_ns) as f64;
            let tcp = |s: &WorkerSnapshot, n: &str| {
                s.tcp.iter().find(|c| c.name == n).map_or(0, |c| c.value)
            };
            let mut conns = Vec::new();
            let bc = conn_bytes(b);
            for (key, (sent, recvd)) in conn_bytes(a) {
                let (s0, r0) = bc.get(&key).copied().unwrap_or((0, 0));
                conns.push(json!({
                    "slot": key.0, "remote": key.1,
                    "sent_bytes_per_s": rate(sent, s0), "received_bytes_per_s": rate(recvd, r0),
                }));
            }
            rows.push(json!({
                "worker": a.worker,
                "seconds": secs,
                "busy_ratio": if busy + idle > 0.0 { busy / (busy + idle) } else { 0.0 },
                "rx_packets_per_s": rate(la.rx_packets, lb.rx_packets),
                "tx_packets_per_s": rate(la.tx_packets, lb.tx_packets),
                "segments_sent_per_s": rate(tcp(a, "segments_sent"), tcp(b, "segments_sent")),
                "retransmitted_per_s": rate(tcp(a, "retransmitted_segments"), tcp(b, "retransmitted_segments")),
                "starvations": la.starvations.saturating_sub(lb.starvations),
                "open_sockets": tcp(a, "open_sockets"),
                "connections": conns,
            }));
        }
        if json {
            println!("{}", serde_json::Value::Array(rows));
        } else {
            println!(
                "{:>2} {:>6} {:>11} {:>11} {:>11} {:>9} {:>6} {:>6}",
                "w", "busy%", "rx pkt/s", "tx pkt/s", "seg out/s", "retrans/s", "starv", "socks"
            );
            for r in &rows {
                println!(
                    "{:>2} {:>6.1} {:>11.0} {:>11.0} {:>11.0} {:>9.0} {:>6} {:>6}",
                    r["worker"].as_u64().unwrap_or(0),
                    r["busy_ratio"].as_f64().unwrap_or(0.0) * 100.0,
                    r["rx_packets_per_s"].as_f64().unwrap_or(0.0),
                    r["tx_packets_per_s"].as_f64().unwrap_or(0.0),
                    r["segments_sent_per_s"].as_f64().unwrap_or(0.0),
                    r["retransmitted_per_s"].as_f64().unwrap_or(0.0),
                    r["starvations"].as_u64().unwrap_or(0),
                    r["open_sockets"].as_u64().unwrap_or(0),
                );
                for c in r["connections"].as_array().into_iter().flatten() {
                    println!(
                        "     slot {:>5} {:<24} out {:>12.0} B/s  in {:>12.0} B/s",
                        c["slot"].as_u64().unwrap_or(0),
                        c["remote"].as_str().unwrap_or(""),
                        c["sent_bytes_per_s"].as_f64().unwrap_or(0.0),
                        c["received_bytes_per_s"].as_f64().unwrap_or(0.0),
                    );
                }
            }
        }
        if once {
            return Ok(());
        }
        before = after;
    }
}

/// `worker`.
pub fn worker(dir: &Path, json: bool) -> Result<(), String> {
    let snaps = snapshots(dir)?;
    if json {
        let v: Vec<_> = snaps
            .iter()
            .map(|s| {
                json!({
                    "worker": s.worker, "pid": s.pid, "stopped": s.stopped, "unix_ns": s.unix_ns,
                    "loop": s.worker_loop, "stages": s.stages, "tcp": s.tcp, "app": s.app, "port": s.port,
                })
            })
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    for s in &snaps {
        let l = &s.worker_loop;
        let total = (l.busy_ns + l.idle_ns).max(1);
        println!(
            "worker {} (pid {}{}): busy {:.3} s ({:.1}%), idle {:.3} s, starved {} times for {:.3} s",
            s.worker,
            s.pid,
            if s.stopped { ", stopped" } else { "" },
            l.busy_ns as f64 / 1e9,
            l.busy_ns as f64 * 100.0 / total as f64,
            l.idle_ns as f64 / 1e9,
            l.starvations,
            l.starved_ns as f64 / 1e9,
        );
        println!(
            "  loop: {} iterations ({} busy), {} packets in, {} out, {} other work",
            l.iterations, l.busy_iterations, l.rx_packets, l.tx_packets, l.work
        );
        for st in &s.stages {
            let mut line = format!(
                "  stage {:<22} passed {} consumed {} transmitted {} to_host {} originated {}",
                st.name, st.passed, st.consumed, st.transmitted, st.to_host, st.originated
            );
            for d in &st.drops {
                line.push_str(&format!(" drop:{} {}", d.name, d.value));
            }
            println!("{line}");
        }
        let tcp: Vec<String> = s
            .tcp
            .iter()
            .filter(|c| c.value != 0)
            .map(|c| format!("{} {}", c.name, c.value))
            .collect();
        println!("  tcp: {}", tcp.join(", "));
        if !s.port.is_empty() {
            let port: Vec<String> = s
                .port
                .iter()
                .map(|c| format!("{} {}", c.name, c.value))
                .collect();
            println!("  port: {}", port.join(", "));
        }
        // The app's counters, a line for each set of labels (a proxy's
        // pool), the unlabelled first.
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for c in &s.app {
            let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let key = labels.join(",");
            let item = format!("{} {}", c.name, c.value);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, items)) => items.push(item),
                None => groups.push((key, vec![item])),
            }
        }
        groups.sort_by_key(|(k, _)| !k.is_empty());
        for (labels, items) in groups {
            let sep = if labels.is_empty() { "" } else { " " };
            println!("  app{sep}{labels}: {}", items.join(", "));
        }
    }
    Ok(())
}

/// `mem`.
pub fn mem(dir: &Path, json: bool) -> Result<(), String> {
    let snaps = snapshots(dir)?;
    let pools: Vec<_> = snaps.iter().flat_map(|s| s.pools.iter()).collect();
    if json {
        let v: Vec<_> = pools
            .iter()
            .map(|p| {
                json!({"name": p.name, "capacity": p.capacity, "in_use": p.in_use,
                "buffer_bytes": p.buffer_bytes, "held_bytes": p.in_use * p.buffer_bytes,
                "failed_allocs": p.failed_allocs})
            })
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    println!(
        "{:<16} {:>9} {:>9} {:>8} {:>14} {:>8}",
        "pool", "buffers", "in use", "buf B", "held bytes", "failed"
    );
    for p in pools {
        println!(
            "{:<16} {:>9} {:>9} {:>8} {:>14} {:>8}",
            p.name,
            p.capacity,
            p.in_use,
            p.buffer_bytes,
            p.in_use * p.buffer_bytes,
            p.failed_allocs
        );
    }
    Ok(())
}

/// `neigh`.
pub fn neigh(dir: &Path, json: bool) -> Result<(), String> {
    let snaps = snapshots(dir)?;
    if json {
        let v: Vec<_> = snaps
            .iter()
            .flat_map(|s| s.neighbors.iter().map(move |n| (s.worker, n)))
            .map(|(w, n)| json!({"worker": w, "ip": n.ip, "mac": n.mac, "state": n.state, "held": n.held}))
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    println!(
        "{:>2} {:<28} {:<18} {:<11} {:>4}",
        "w", "ip", "mac", "state", "held"
    );
    for s in &snaps {
        for n in &s.neighbors {
            println!(
                "{:>2} {:<28} {:<18} {:<11} {:>4}",
                s.worker,
                n.ip,
                if n.mac.is_empty() { "-" } else { &n.mac },
                n.state,
                n.held
            );
        }
    }
    Ok(())
}

/// `cfg`.
pub fn cfg(
    dir: &Path,
    key: Option<String>,
    value: Option<String>,
    json: bool,
) -> Result<(), String> {
    let line = match (&key, &value) {
        (None, _) => "cfg".to_string(),
        (Some(k), None) => format!("cfg {k}"),
        (Some(k), Some(v)) => format!("cfg {k} {v}"),
    };
    let answer = request(dir, &line)?;
    if let Some(err) = answer.lines().find_map(|l| l.strip_prefix("error: ")) {
        return Err(err.to_string());
    }
    if json {
        let map: serde_json::Map<String, serde_json::Value> = answer
            .lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        print_json(&serde_json::Value::Object(map));
    } else {
        print!("{answer}");
    }
    Ok(())
}
