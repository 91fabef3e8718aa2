//! `tpactl st` in a process of its own reads the trace a writer left:
//! the writer (this test) has unmapped and closed its file first.

use std::process::Command;

use tpa_stages::trace::record::{Kind, Record, TICK_NS};
use tpa_stages::trace::ring::TraceFile;

const TPACTL: &str = env!("CARGO_BIN_EXE_tpactl");

#[test]
fn st_prints_a_gone_writers_records_as_lines() {
    let dir = std::env::temp_dir().join(format!("tpactl-st-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let instance = dir.join("4242");
    std::fs::create_dir_all(&instance).unwrap();
    let path = instance.join("tcp-4242-0.trace");
    {
        let file = TraceFile::create(&path, 8, 16).unwrap();
        let local = "192.0.2.1:40000".parse().unwrap();
        let remote = "192.0.2.2:80".parse().unwrap();
        // Times in ticks (1024 ns), sequence numbers as on the wire.
        let t = |ticks: u64| ticks * TICK_NS;
        let mut live = file.ring(1, 3, local, remote, t(2000)).unwrap();
        live.set_isns(1000, 2000);
        live.push(Record::new(Kind::SegOut, 0x02, 1000, 0, 65535, 0), t(2000));
        live.push(
            Record::new(Kind::SegIn, 0x12, 2000, 1001, 65535, 0),
            t(2150),
        );
        live.push(Record::new(Kind::AppWrite, 0, 100, 100, 0, 0), t(2160));
        let mut gone = file.ring(5, 1, local, remote, 0).unwrap();
        gone.push(Record::new(Kind::Rto, 0, 400, 1, 1, 0), t(200_000));
        file.close_slot(5);
        // The writer goes: every mapping and handle dropped here.
    }
    let run = |args: &[&str]| {
        let out = Command::new(TPACTL).args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let dir_arg = dir.to_str().unwrap();
    let (ok, out, err) = run(&["st", "--run-dir", dir_arg]);
    assert!(ok, "{err}");
    let expected_live = [
        "socket 1.3 192.0.2.1:40000 -> 192.0.2.2:80 live, iss 1000 irs 2000, 3 records written, 3 kept",
        "     0.000000 out   [S] seq 0 ack 0 win 65535 len 0",
        "     0.000153 in    [S.] seq 0 ack 1 win 65535 len 0",
        "     0.000163 write 100 bytes, 100 queued",
    ];
    for line in expected_live {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
    assert!(
        !out.contains("socket 5."),
        "closed sockets only with --all:\n{out}"
    );
    let (ok, out, _) = run(&["st", "--run-dir", dir_arg, "--all"]);
    assert!(ok);
    assert!(
        out.lines()
            .any(|l| l == "     0.204800 rto   fired, next 400 ms, backoffs 1, retries 1"),
        "{out}"
    );
    // A file that is not a trace is a clear error.
    let junk = dir.join("junk.trace");
    std::fs::write(&junk, b"hello").unwrap();
    let (ok, _, err) = run(&["st", junk.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("truncated trace file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
