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
use tpa_tests::netns::{Background, Netns};
use tpa_tests::ops::{assert_neighbour, Tpactl};

const ECHO: &str = env!("CARGO_BIN_EXE_tpa-echo");

/// `tpactl --run-dir DIR ARGS --json`, parsed (`tpactl` built next to
/// tpa-echo).
fn tpactl(dir: &Path, args: &[&str]) -> Value {
    Tpactl::next_to(ECHO, dir).json(args)
}

/// A tpa echo server in `ns` (TAP `tpa0`, 192.0.2.2, UDP and TCP port 7)
/// whose instance lives under `dir`, stopping after `count` datagrams,
/// with `extra` flags; once it listens.
fn echo_server(ns: &Netns, dir: &Path, count: &str, extra: &[&str]) -> Background {
    let env_dir = format!("TPA_RUN_DIR={}", dir.display());
    let mut argv = vec![
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
        count,
    ];
    argv.extend_from_slice(extra);
    ns.spawn_until(
        &argv,
        "listening on udp 0.0.0.0:7 tcp 0.0.0.0:7 via tpa0 (tpa)",
    )
}

/// `count` 64-byte datagrams from a kernel client in `ns` to the echo
/// server, with `extra` flags; it must succeed.
fn kernel_client(ns: &Netns, count: &str, extra: &[&str]) {
    let mut argv = vec![
        ECHO,
        "client",
        "--kernel",
        "--to",
        "192.0.2.2:7",
        "--count",
        count,
        "--size",
        "64",
    ];
    argv.extend_from_slice(extra);
    let out = ns.exec_output(&argv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tpactl_reads_an_echo_servers_last_snapshot() {
    let ns = Netns::with_tap("echoops");
    let dir: PathBuf = std::env::temp_dir().join(format!("tpa-echo-ops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = echo_server(&ns, &dir, "100", &["--id", "echo"]);
    kernel_client(&ns, "100", &["--window", "8"]);
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
    assert_neighbour(&neigh, "192.0.2.1");
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
    let file = file.display().to_string();
    let server = echo_server(&ns, &dir, "10", &["--config", &file]);
    kernel_client(&ns, "10", &[]);
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
