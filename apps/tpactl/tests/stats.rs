//! `tpactl` on stats files a writer (this test) left: choosing the
//! instance, the people's and the scripts' views of a socket, and a dead
//! instance's files read as they were.

use std::path::Path;
use std::process::Command;

use tpa_stages::ops::file::StatsFile;
use tpa_stages::ops::snapshot::{Counter, SocketSnapshot, WorkerSnapshot, SNAPSHOT_VERSION};

const TPACTL: &str = env!("CARGO_BIN_EXE_tpactl");

fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(TPACTL)
        .arg("--run-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Writes instance `id`'s worker 0 with one connection whose cwnd is
/// `cwnd`, then drops the writer (a dead instance).
fn instance(dir: &Path, id: &str, cwnd: u64) {
    let d = dir.join(id);
    std::fs::create_dir_all(&d).unwrap();
    let file = StatsFile::create(&d.join("worker-0.stats"), 0, 64 * 1024).unwrap();
    let snap = WorkerSnapshot {
        version: SNAPSHOT_VERSION,
        instance: id.into(),
        pid: 4242,
        sockets: vec![SocketSnapshot {
            index: 3,
            state: "ESTABLISHED".into(),
            local: "192.0.2.2:4040".into(),
            remote: "192.0.2.1:50000".into(),
            info: vec![
                Counter::gauge("cwnd", cwnd),
                Counter::gauge("rtt_ns", 1_500_000),
                Counter::count("total_retrans", 7),
            ],
        }],
        ..WorkerSnapshot::default()
    };
    assert!(file.publish(&serde_json::to_vec(&snap).unwrap()));
}

#[test]
fn sk_reads_the_chosen_instance_and_says_which_there_are() {
    let dir = std::env::temp_dir().join(format!("tpactl-stats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    instance(&dir, "one", 14480);
    let (ok, out, err) = run(&dir, &["sk"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("ESTABLISHED") && out.contains("14480") && out.contains("1.500"),
        "{out}"
    );
    instance(&dir, "two", 2896);
    let (ok, _, err) = run(&dir, &["sk"]);
    assert!(
        !ok && err.contains("2 instances") && err.contains("one, two"),
        "{err}"
    );
    let (ok, out, err) = run(&dir, &["--id", "two", "sk", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["cwnd"], 2896, "{v:#}");
    assert_eq!(v[0]["total_retrans"], 7, "{v:#}");
    let (ok, out, _) = run(&dir, &["list"]);
    assert!(ok && out.contains("gone (files kept)"), "{out}");
    let (ok, _, err) = run(&dir, &["--id", "three", "sk"]);
    assert!(!ok && err.contains("no instance three"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
