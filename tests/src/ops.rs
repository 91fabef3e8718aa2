//! Looking into a live tpa instance from a test (doc/operations.md):
//! `tpactl` against its run directory, its Prometheus endpoint scraped
//! from inside a namespace and parsed by the reference parser (Debian's
//! python3-prometheus-client), and waiting for a figure to show.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::netns::Netns;

/// How long [`eventually`] waits at most (a hang guard, no speed asserted).
pub const EVENTUALLY: Duration = Duration::from_secs(20);

/// `tpactl` over one run directory.
#[derive(Debug, Clone)]
pub struct Tpactl {
    path: PathBuf,
    run_dir: PathBuf,
}

impl Tpactl {
    /// The `tpactl` built next to `bin` (an app's binary, under the same
    /// target directory: `cargo test --workspace` builds it; alone,
    /// `cargo build -p tpa-tpactl` first), over `run_dir`.
    ///
    /// # Panics
    /// When it is missing, saying how to build it.
    pub fn next_to(bin: &str, run_dir: &Path) -> Tpactl {
        let path = Path::new(bin).with_file_name("tpactl");
        assert!(
            path.is_file(),
            "{} is missing: cargo build -p tpa-tpactl (cargo test --workspace builds it)",
            path.display()
        );
        Tpactl {
            path,
            run_dir: run_dir.to_path_buf(),
        }
    }

    /// `tpactl --run-dir DIR ARGS`: its success, standard output and
    /// standard error.
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.path)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .args(args)
            .output()
            .expect("run tpactl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `tpactl ... ARGS --json`, parsed, or `None` when it fails (while
    /// an instance starts).
    pub fn try_json(&self, args: &[&str]) -> Option<Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let (ok, out, _) = self.run(&all);
        ok.then(|| serde_json::from_str(&out).ok()).flatten()
    }

    /// `tpactl ... ARGS --json`, parsed.
    ///
    /// # Panics
    /// When it fails, with its words.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let (ok, out, err) = self.run(&all);
        assert!(ok, "tpactl {args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("tpactl {args:?}: {e}:\n{out}"))
    }
}

/// Polls `f` every 50 ms until it gives `Some`, up to [`EVENTUALLY`].
///
/// # Panics
/// When it never does, naming `what`.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {EVENTUALLY:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that `tpactl neigh --json`'s answer `neigh` holds a
/// neighbour at `ip`.
pub fn assert_neighbour(neigh: &Value, ip: &str) {
    let listed = neigh
        .as_array()
        .is_some_and(|all| all.iter().any(|n| n["ip"] == ip));
    assert!(listed, "no neighbour {ip}: {neigh:#}");
}

/// `GET /metrics` on `addr` from inside `ns`: the body.
///
/// # Panics
/// Unless the answer is a 200 in Prometheus' text format 0.0.4.
pub fn scrape(ns: &Netns, addr: &str) -> String {
    ns.enter(|| {
        let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics endpoint");
        s.set_read_timeout(Some(EVENTUALLY)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: tpa\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/plain; version=0.0.4"), "{head}");
        body.to_string()
    })
}

/// A sample: its name, labels and value.
pub type Sample = (String, Map<String, Value>, f64);

/// `text` parsed by `prometheus_client.parser`: every sample; every
/// family must have its HELP.
///
/// # Panics
/// When the parser refuses the text.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = []\n\
        for fam in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   assert fam.documentation, fam.name\n\
        \x20   for s in fam.samples:\n\
        \x20       out.append([s.name, s.labels, s.value])\n\
        print(json.dumps(out))\n";
    // Debian's python3-prometheus-client is the system Python's (a
    // pyenv or venv python3 earlier on PATH would not have it).
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the first sample `name` whose labels include `labels`.
pub fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}
