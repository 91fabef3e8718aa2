//! tpa-redis-proxy's command line against nutcracker's: -t, -D, -V, -d
//! with -p, and bad flags.

mod support;

use std::net::TcpStream;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tpa-redis-proxy");

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tpa-redis-proxy-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A loopback port no other test of this process was given.
fn free_port() -> u16 {
    support::cluster::free_ports(1)[0]
}

#[test]
fn test_conf_exits_as_nutcracker_does() {
    let dir = temp_dir("t");
    let good = dir.join("good.yml");
    std::fs::write(
        &good,
        "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n",
    )
    .unwrap();
    let bad = dir.join("bad.yml");
    std::fs::write(
        &bad,
        "p:\n  listen: 127.0.0.1:22121\n  hash: nosuch\n  servers:\n   - 127.0.0.1:6379:1\n",
    )
    .unwrap();
    for (file, ok) in [(&good, true), (&bad, false)] {
        let ours = Command::new(BIN)
            .args(["-t", "-c", file.to_str().unwrap()])
            .output()
            .unwrap();
        let theirs = Command::new("nutcracker")
            .args(["-t", "-c", file.to_str().unwrap()])
            .output()
            .expect("nutcracker (Debian package nutcracker)");
        assert_eq!(ours.status.success(), ok, "{ours:?}");
        assert_eq!(theirs.status.success(), ok, "{theirs:?}");
        let text = String::from_utf8_lossy(&ours.stderr);
        let verdict = if ok {
            "syntax is ok"
        } else {
            "syntax is invalid"
        };
        assert!(text.contains(verdict), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn describe_stats_names_nutcracker_s_stats() {
    let ours = Command::new(BIN).arg("-D").output().unwrap();
    let theirs = Command::new("nutcracker").arg("-D").output().unwrap();
    let lines = |out: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .filter(|l| l.starts_with("  "))
            .map(str::to_string)
            .collect()
    };
    let ours = lines(&ours);
    assert_eq!(ours.len(), 19, "{ours:?}");
    assert_eq!(ours, lines(&theirs));
}

#[test]
fn version_and_bad_flags() {
    let out = Command::new(BIN).arg("-V").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("This is tpa-redis-proxy-"));
    let out = Command::new(BIN).args(["-m", "100"]).output().unwrap();
    assert!(!out.status.success(), "a read size below 512 is refused");
    let out = Command::new(BIN)
        .args(["-c", "/nonexistent/conf.yml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/conf.yml"));
}

#[test]
fn daemonize_writes_the_pid_file_and_serves() {
    let dir = temp_dir("d");
    let (port, stats) = (free_port(), free_port());
    let conf = dir.join("p.yml");
    std::fs::write(
        &conf,
        format!("p:\n  listen: 127.0.0.1:{port}\n  redis: true\n  servers:\n   - 127.0.0.1:1:1\n"),
    )
    .unwrap();
    let pid_file = dir.join("p.pid");
    let status = Command::new(BIN)
        .args([
            "-d",
            "-c",
            conf.to_str().unwrap(),
            "-p",
            pid_file.to_str().unwrap(),
        ])
        .args([
            "-s",
            &stats.to_string(),
            "-a",
            "127.0.0.1",
            "-o",
            dir.join("log").to_str().unwrap(),
        ])
        .status()
        .unwrap();
    // The foreground process returns at once; the daemon stays.
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                break pid;
            }
        }
        assert!(Instant::now() < deadline, "no pid file");
        sleep(Duration::from_millis(20));
    };
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the daemon never listened");
        sleep(Duration::from_millis(20));
    }
    /// Kills the daemon if a check below fails first.
    struct Daemon(u32);
    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .status();
        }
    }
    let daemon = Daemon(pid);
    assert!(Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success());
    // SIGTERM: it stops and removes its pid file.
    while pid_file.exists() {
        assert!(
            Instant::now() < deadline,
            "the pid file stayed after SIGTERM"
        );
        sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    assert!(log.contains("stopped"), "{log}");
    std::mem::forget(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// tpa's operability flags: refused by name where the pools are served on
/// kernel sockets (no tpa instance to look into), and a bad id or config
/// file named before anything is opened.
#[test]
fn ops_flags_are_tpa_s_and_their_errors_name_them() {
    let dir = temp_dir("ops");
    let conf = dir.join("p.yml");
    std::fs::write(
        &conf,
        "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n",
    )
    .unwrap();
    let tpa_conf = dir.join("tpa.yml");
    std::fs::write(
        &tpa_conf,
        "p:\n  listen: 192.0.2.2:22121\n  redis: true\n  servers:\n   - 192.0.2.1:6379:1\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(BIN).args(extra).output().unwrap();
        assert!(!out.status.success(), "{extra:?}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for (flags, said) in [
        (
            &["--metrics", "127.0.0.1:9100"][..],
            "--metrics: for tpa's stack",
        ),
        (&["--id", "a"][..], "--id: for tpa's stack"),
        (&["--no-stats"][..], "--no-stats: for tpa's stack"),
        (
            &["--tpa-config", "x.toml"][..],
            "--tpa-config: for tpa's stack",
        ),
    ] {
        let err = run(&[&["-c", conf.to_str().unwrap()][..], flags].concat());
        assert!(err.contains(said), "{flags:?}: {err}");
    }
    // On tpa's stack: refused before any port is opened.
    let tpa = ["-c", tpa_conf.to_str().unwrap(), "--ip", "192.0.2.2/24"];
    let err = run(&[&tpa[..], &["--id", "../x"]].concat());
    assert!(err.contains("--id \"../x\": letters, digits"), "{err}");
    let missing = dir.join("missing.toml");
    let err = run(&[&tpa[..], &["--tpa-config", missing.to_str().unwrap()]].concat());
    assert!(
        err.contains(&format!("--tpa-config {}: cannot read", missing.display())),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
