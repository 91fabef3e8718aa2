//! Figures measured outside criterion, for `benches/report.py`.
//!
//! A bench that times its own rounds (the pipeline bench's interleaved,
//! thread-CPU-time runs) or counts instructions hands its medians to
//! [`write()`], which stores them as `target/bench-results/NAME.json`. The
//! report script reads those files like criterion's own output, so their
//! tables in doc/benchmarks.md are generated the same way.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

/// One measured benchmark: a median per iteration of `elements` packets.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The table's group, e.g. `interleaved/chain/8`.
    pub group: String,
    /// The variant within the group, e.g. `pipeline`.
    pub function: String,
    /// Median nanoseconds per iteration, if time was measured.
    pub ns_per_iter: Option<f64>,
    /// Instructions per iteration, if they were counted.
    pub instructions_per_iter: Option<f64>,
    /// Packets (elements) per iteration.
    pub elements: u64,
    /// How many samples the median is taken over.
    pub samples: u64,
}

/// The directory the records go to: `$CARGO_TARGET_DIR/bench-results`, or
/// `target/bench-results` in the workspace.
pub fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("bench-results")
}

/// The records as the JSON list `benches/report.py` reads.
pub fn to_json(records: &[Record]) -> String {
    let number = |v: Option<f64>| match v {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".to_string(),
    };
    let mut out = String::from("[\n");
    for (i, r) in records.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {{\"group\": {}, \"function\": {}, \"ns_per_iter\": {}, \
             \"instructions_per_iter\": {}, \"elements\": {}, \"samples\": {}}}{}",
            json_string(&r.group),
            json_string(&r.function),
            number(r.ns_per_iter),
            number(r.instructions_per_iter),
            r.elements,
            r.samples,
            if i + 1 < records.len() { "," } else { "" },
        );
    }
    out.push(']');
    out.push('\n');
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `records` to `dir()/NAME.json`, replacing an earlier run's; returns
/// the path.
pub fn write(name: &str, records: &[Record]) -> io::Result<PathBuf> {
    let dir = dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, to_json(records))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_the_json_the_report_reads() {
        let records = [
            Record {
                group: "interleaved/chain/8".into(),
                function: "pipeline".into(),
                ns_per_iter: Some(161.5),
                instructions_per_iter: None,
                elements: 32,
                samples: 41,
            },
            Record {
                group: "odd \"name\"\\".into(),
                function: "hand\n".into(),
                ns_per_iter: None,
                instructions_per_iter: Some(2454.0),
                elements: 32,
                samples: 1,
            },
        ];
        assert_eq!(
            to_json(&records),
            "[\n  {\"group\": \"interleaved/chain/8\", \"function\": \"pipeline\", \
             \"ns_per_iter\": 161.5, \"instructions_per_iter\": null, \"elements\": 32, \
             \"samples\": 41},\n  {\"group\": \"odd \\\"name\\\"\\\\\", \"function\": \
             \"hand\\u000a\", \"ns_per_iter\": null, \"instructions_per_iter\": 2454, \
             \"elements\": 32, \"samples\": 1}\n]\n"
        );
    }
}
