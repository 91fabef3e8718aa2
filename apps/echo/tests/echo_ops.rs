//! tpa-echo's stats: a tpa echo server on a TAP device in a namespace
//! made here echoes the kernel client's datagrams and stops after them
//! (`--count`); `tpactl` then reads its last snapshot: the datagrams
//! echoed (the app's own counter), packets through the loop, the TCP
//! listener, the neighbor it answered.
//!
//! Run as root: `cargo test -p tpa-echo --test echo_ops`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tpa_tests::netns::Netns;
use tpa_tests::ops::Tpactl;

const ECHO: &str = env!("CARGO_BIN_EXE_tpa-echo");

/// `tpactl --run-dir DIR ARGS --json`, parsed (`tpactl` built next to
/// tpa-echo).
fn tpactl(dir: &Path, args: &[&str]) -> Value {
    Tpactl::next_to(ECHO, dir).json(args)
}

#[test]
fn tpactl_reads_an_echo_servers_last_snapshot() {
    let ns = Netns::with_tap("echoops");
    let dir: PathBuf = std::env::temp_dir().join(format!("tpa-echo-ops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let env_dir = format!("TPA_RUN_DIR={}", dir.display());
    let server = ns.spawn_until(
        &[
            "env",
            &env_dir,
            ECHO,
            "server",
            "--port",
            "tap:tpa0",
            "--ip",
            "192.0.2.2/24",
            "--udp-port",
            "7",
            "--count",
            "100",
            "--id",
            "echo",
        ],
        "listening on udp 0.0.0.0:7 tcp 0.0.0.0:7 via tpa0 (tpa)",
    );
    let out = ns.exec_output(&[
        ECHO,
        "client",
        "--kernel",
        "--to",
        "192.0.2.2:7",
        "--count",
        "100",
        "--size",
        "64",
        "--window",
        "8",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.finish();
    let w = tpactl(&dir, &["--id", "echo", "worker"]);
    assert_eq!(w[0]["stopped"], true, "{w:#}");
    let echoed = w[0]["app"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "echo_datagrams_echoed"))
        .and_then(|c| c["value"].as_u64());
    assert_eq!(echoed, Some(100), "{w:#}");
    assert!(w[0]["loop"]["rx_packets"].as_u64().unwrap() >= 100, "{w:#}");
    assert!(w[0]["loop"]["tx_packets"].as_u64().unwrap() >= 100, "{w:#}");
    let sk = tpactl(&dir, &["--id", "echo", "sk"]);
    assert!(
        sk.as_array()
            .unwrap()
            .iter()
            .any(|s| s["state"] == "LISTEN" && s["local"] == "0.0.0.0:7"),
        "{sk:#}"
    );
    let neigh = tpactl(&dir, &["--id", "echo", "neigh"]);
    assert!(
        neigh
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["ip"] == "192.0.2.1"),
        "{neigh:#}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--config FILE`: its `[stats]` id names the instance and its `[trace]`
/// turns the socket trace on (its file in the instance's directory); a
/// bad key is refused at start, named with the file.
#[test]
fn a_config_file_names_the_instance_and_turns_the_trace_on() {
    let dir: PathBuf = std::env::temp_dir().join(format!("tpa-echo-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[trace]\nrecords = 6\n").unwrap();
    let out = Command::new(ECHO)
        .args(["server", "--udp-port", "7", "--config"])
        .arg(&bad)
        .output()
        .expect("run tpa-echo");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("bad.toml: trace.records: 6 is not a power of two"),
        "{err}"
    );

    let file = dir.join("echo.toml");
    std::fs::write(
        &file,
        "[tcp]\nbacklog = 16\n[trace]\nenabled = true\n[stats]\nid = \"echocfg\"\n",
    )
    .unwrap();
    let ns = Netns::with_tap("echocfg");
    let env_dir = format!("TPA_RUN_DIR={}", dir.display());
    let file = file.display().to_string();
    let server = ns.spawn_until(
        &[
            "env",
            &env_dir,
            ECHO,
            "server",
            "--port",
            "tap:tpa0",
            "--ip",
            "192.0.2.2/24",
            "--udp-port",
            "7",
            "--count",
            "10",
            "--config",
            &file,
        ],
        "listening on udp 0.0.0.0:7 tcp 0.0.0.0:7 via tpa0 (tpa)",
    );
    let out = ns.exec_output(&[
        ECHO,
        "client",
        "--kernel",
        "--to",
        "192.0.2.2:7",
        "--count",
        "10",
        "--size",
        "64",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.finish();
    let w = tpactl(&dir, &["--id", "echocfg", "worker"]);
    assert_eq!(
        w[0]["stopped"], true,
        "the instance named by the file: {w:#}"
    );
    let traces: Vec<_> = std::fs::read_dir(dir.join("echocfg"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".trace"))
        .collect();
    assert_eq!(traces.len(), 1, "the worker's trace file");
    std::fs::remove_dir_all(&dir).unwrap();
}
