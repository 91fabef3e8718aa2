//! Our conformance suite: every script under tests/drill/ passes on tpa's
//! stack (strict matching), and the CLI's directory run prints the table
//! and total and writes the Markdown.

use std::path::PathBuf;
use std::process::Command;

use tpa_drill::run::{RunOptions, Verdict};
use tpa_drill::{collect_scripts, run_file};

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/drill")
}

#[test]
fn every_script_of_the_suite_passes_on_tpa() {
    let files = collect_scripts(&[suite_dir()]).expect("read tests/drill");
    assert!(files.len() >= 10, "only {} scripts", files.len());
    let mut bad = Vec::new();
    for f in &files {
        let r = run_file(f, RunOptions::default(), 1);
        if r.verdict != Verdict::Pass {
            bad.push(r.detail());
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} scripts did not pass:\n{}",
        bad.len(),
        files.len(),
        bad.join("\n")
    );
}

#[test]
fn the_suite_passes_with_other_seeds_too() {
    // Another ISN, port and TS offset: nothing in a script may depend on them.
    let files = collect_scripts(&[suite_dir()]).expect("read tests/drill");
    for seed in [2u64, 0xdead_beef] {
        for f in &files {
            let r = run_file(f, RunOptions::default(), seed);
            assert_eq!(r.verdict, Verdict::Pass, "seed {seed}: {}", r.detail());
        }
    }
}

#[test]
fn a_directory_run_prints_a_table_and_writes_markdown() {
    let md = std::env::temp_dir().join(format!("tpa-drill-test-{}.md", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_tpa-drill"))
        .arg(suite_dir().join("handshake"))
        .arg("--markdown")
        .arg(&md)
        .output()
        .expect("run tpa-drill");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.lines().any(
            |l| l.contains("/passive-open.pkt ") && l.split_whitespace().nth(1) == Some("pass")
        ),
        "{stdout}"
    );
    assert!(stdout.contains(" fail, 0 unsupported, 0 error"), "{stdout}");
    let text = std::fs::read_to_string(&md).expect("markdown written");
    std::fs::remove_file(&md).ok();
    assert!(text.contains("| script | result | detail |"), "{text}");
}

#[test]
fn a_failing_script_exits_1_and_prints_both_segments() {
    let dir = std::env::temp_dir().join(format!("tpa-drill-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("wrong.pkt");
    std::fs::write(
        &script,
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 2 <mss 1460>\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tpa-drill"))
        .arg(&script)
        .output()
        .expect("run tpa-drill");
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("wrong.pkt:5: ack number: expected 2 actual 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("script packet/result: > S. 0:0(0) ack 2 <mss 1460>"),
        "{stdout}"
    );
    assert!(
        stdout.contains("actual packet/result: > S. 0:0(0) ack 1 win "),
        "{stdout}"
    );
}

#[test]
fn unsupported_constructs_are_named() {
    let cases = [
        ("`../common/defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "defaults.sh"),
        ("0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3\n", "SOCK_STREAM"),
        ("0 `sysctl -q net.ipv4.tcp_rmem=\"4096 87380 6291456\"`\n", "tcp_rmem"),
        ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n+0 < SEW 0:0(0) win 65535 <mss 1460>\n", "ECN"),
        ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 %{ print(1) }%\n", "python"),
        ("--define=PROTO=IPPROTO_TCP\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "--define"),
    ];
    for (text, what) in cases {
        match tpa_drill::run_text(text, RunOptions::default(), 1) {
            Verdict::Unsupported { construct, .. } => {
                assert!(construct.contains(what), "{text}: {construct}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn an_inbound_ts_ecr_with_nothing_to_map_it_to_fails_clearly() {
    // The SYN-ACK's options are not written (`<...>`), so the runner cannot
    // know which live TS val the script's ecr 100 stands for (packetdrill
    // refuses the same).
    let text = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n+0 < S 0:0(0) win 65535 <mss 1460,TS val 100 ecr 0>\n+0 > S. 0:0(0) ack 1 <...>\n+0 < . 1:1(0) ack 1 win 1024 <nop,nop,TS val 110 ecr 100>\n";
    match tpa_drill::run_text(text, RunOptions::default(), 1) {
        Verdict::Fail(f) => {
            assert_eq!(f.line, 6);
            assert!(
                f.message.contains("unable to infer the live TS ecr"),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
}

/// What tests/drill/ipv6/make-variants.py writes for `original`.
fn variant(original: &str, dir: &str, name: &str, version: &str) -> String {
    let mut lines: Vec<&str> = original.split('\n').collect();
    let comments = lines.iter().take_while(|l| l.starts_with("//")).count();
    let rest = lines.split_off(comments);
    let mut out = vec![format!(
        "// {version} variant of tests/drill/{dir}/{name} (written by make-variants.py; edit the original)."
    )];
    out.extend(lines.iter().map(|l| l.to_string()));
    out.push(format!("--ip_version={version}"));
    for l in rest {
        let outbound = l
            .trim_start_matches(|c: char| "+.0123456789 ".contains(c))
            .starts_with('>');
        if version == "ipv6" && outbound {
            out.push(l.replace("mss 1460", "mss 1440"));
        } else {
            out.push(l.to_string());
        }
    }
    out.join("\n")
}

#[test]
fn the_ip_variants_match_their_originals() {
    let mut checked = 0;
    for (sub, version) in [("ipv6", "ipv6"), ("ipv4-mapped", "ipv4-mapped-ipv6")] {
        for f in collect_scripts(&[suite_dir().join(sub)]).expect("read variants") {
            let text = std::fs::read_to_string(&f).unwrap();
            if !text.contains("(written by make-variants.py") {
                continue;
            }
            let file = f.file_name().unwrap().to_str().unwrap();
            let (dir, name) = file.split_once('-').unwrap();
            let original = std::fs::read_to_string(suite_dir().join(dir).join(name))
                .unwrap_or_else(|e| panic!("{file}: its original {dir}/{name}: {e}"));
            assert_eq!(
                text,
                variant(&original, dir, name, version),
                "{sub}/{file} is stale: run python3 tests/drill/ipv6/make-variants.py"
            );
            checked += 1;
        }
    }
    assert!(checked >= 80, "only {checked} variants");
}

#[test]
fn a_long_outbound_line_matches_the_segments_that_continue_it_unless_strict() {
    // 2920 bytes leave as two 1460-byte segments; packetdrill's scripts,
    // written against segmentation offload, expect them as one line.
    let body = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, IPPROTO_TCP, TCP_NODELAY, [1], 4) = 0\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <mss 1460>\n+.01 < . 1:1(0) ack 1 win 65535\n+0 accept(3, ..., ...) = 4\n+0 write(4, ..., 2920) = 2920\n+0 > P. 1:2921(2920) ack 1\n+.01 < . 1:1(0) ack 2921 win 65535\n";
    assert_eq!(
        tpa_drill::run_text(body, RunOptions::default(), 1),
        Verdict::Pass
    );
    match tpa_drill::run_text(
        &format!("--strict_segments\n{body}"),
        RunOptions::default(),
        1,
    ) {
        Verdict::Fail(f) => {
            assert_eq!(f.line, 11);
            assert!(
                f.message
                    .contains("payload length: expected 2920 actual 1460"),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_huge_or_negative_length_is_a_clear_failure() {
    for len in ["-1", "100000000000"] {
        let text =
            format!("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 write(3, ..., {len}) = 1\n");
        match tpa_drill::run_text(&text, RunOptions::default(), 1) {
            Verdict::Fail(f) => {
                assert_eq!(f.line, 2);
                assert!(f.message.contains("out of range"), "{}", f.message);
            }
            other => panic!("{len}: {other:?}"),
        }
    }
}
