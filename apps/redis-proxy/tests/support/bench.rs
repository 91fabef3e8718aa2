//! Checks of a redis-benchmark run (`--csv`) through the proxy.

use std::process::{Command, Output};

/// The tests a redis-benchmark CSV run reports, with their requests/s.
pub fn csv_tests(out: &Output) -> Vec<(String, f64)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut fields = l.split(',').map(|f| f.trim_matches('"'));
            let name = fields.next()?.to_string();
            let rps = fields.next()?.parse().ok()?;
            Some((name, rps))
        })
        .collect()
}

/// Asserts that the run `out` (`what` in messages) succeeded, that its
/// only complaint, if any, is that CONFIG (refused by the proxy) failed,
/// and that it reports the `expected` tests, each at some requests/s;
/// prints its figures.
pub fn assert_benchmark_passes(out: &Output, what: &str, expected: &[String]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{what}: {stdout}\n{stderr}");
    for line in stderr.lines().chain(stdout.lines()) {
        assert!(
            !line.contains("rror") || line.contains("Could not fetch server CONFIG"),
            "{what}: {line}"
        );
    }
    let tests = csv_tests(out);
    let names: Vec<String> = tests.iter().map(|t| t.0.clone()).collect();
    assert_eq!(names, expected, "{what}");
    for (name, rps) in &tests {
        assert!(*rps > 0.0, "{what}: {name} at {rps} requests/s");
    }
    println!("{what}:\n{stdout}");
}

/// redis-benchmark against 127.0.0.1:`port` (2000 requests, keys spread
/// over 100000, CSV) with `extra` flags.
pub fn redis_benchmark(port: u16, extra: &[&str]) -> Output {
    Command::new("redis-benchmark")
        .args(["-p", &port.to_string(), "-n", "2000", "-r", "100000"])
        .arg("--csv")
        .args(extra)
        .output()
        .expect("redis-benchmark (Debian package redis-tools)")
}
