//! What a run printed: per script pass / fail (the line, the expected and
//! the actual segment or result) / unsupported (the construct) / error; a
//! table and a total for several scripts, and the same as Markdown.

use std::fmt::Write as _;

use crate::run::Verdict;

/// One script's outcome.
#[derive(Debug, Clone)]
pub struct ScriptReport {
    /// The script's path as given.
    pub path: String,
    /// What happened.
    pub verdict: Verdict,
}

impl ScriptReport {
    /// `pass`, `FAIL`, `unsupported`, `error`.
    pub fn status(&self) -> &'static str {
        match self.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "FAIL",
            Verdict::Unsupported { .. } => "unsupported",
            Verdict::Error(_) => "error",
        }
    }

    /// One line on what happened (empty for a pass).
    pub fn summary(&self) -> String {
        match &self.verdict {
            Verdict::Pass => String::new(),
            Verdict::Fail(f) => format!("line {}: {}", f.line, f.message),
            Verdict::Unsupported { line, construct } => format!("line {line}: {construct}"),
            Verdict::Error(e) => e.clone(),
        }
    }

    /// The full text, as printed for one script.
    pub fn detail(&self) -> String {
        let mut s = format!("{}: {}", self.path, self.status());
        match &self.verdict {
            Verdict::Pass => {}
            Verdict::Fail(f) => {
                let _ = write!(s, "\n  {}:{}: {}", self.path, f.line, f.message);
                if let Some(e) = &f.expected {
                    let _ = write!(s, "\n  script packet/result: {e}");
                }
                if let Some(a) = &f.actual {
                    let _ = write!(s, "\n  actual packet/result: {a}");
                }
            }
            other => {
                let _ = write!(
                    s,
                    " ({})",
                    ScriptReport {
                        path: String::new(),
                        verdict: other.clone(),
                    }
                    .summary()
                );
            }
        }
        s
    }
}

/// Counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Unsupported.
    pub unsupported: usize,
    /// Errors.
    pub error: usize,
}

/// The totals of `reports`.
pub fn totals(reports: &[ScriptReport]) -> Totals {
    let mut t = Totals::default();
    for r in reports {
        match r.verdict {
            Verdict::Pass => t.pass += 1,
            Verdict::Fail(_) => t.fail += 1,
            Verdict::Unsupported { .. } => t.unsupported += 1,
            Verdict::Error(_) => t.error += 1,
        }
    }
    t
}

fn total_line(t: Totals, n: usize) -> String {
    format!(
        "total {n}: {} pass, {} fail, {} unsupported, {} error",
        t.pass, t.fail, t.unsupported, t.error
    )
}

/// A plain-text table of `reports` with the total.
pub fn table(reports: &[ScriptReport]) -> String {
    let w = reports
        .iter()
        .map(|r| r.path.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = format!("{:<w$}  {:<11}  detail\n", "script", "result");
    for r in reports {
        let _ = writeln!(s, "{:<w$}  {:<11}  {}", r.path, r.status(), r.summary());
    }
    s.push_str(&total_line(totals(reports), reports.len()));
    s.push('\n');
    s
}

/// The same as a Markdown table, for `backend`.
pub fn markdown(reports: &[ScriptReport], backend: &str) -> String {
    let mut s = format!(
        "# tpa-drill results ({backend})\n\n| script | result | detail |\n| --- | --- | --- |\n"
    );
    for r in reports {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} |",
            r.path,
            r.status(),
            r.summary().replace('|', "\\|")
        );
    }
    let _ = writeln!(s, "\n{}", total_line(totals(reports), reports.len()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Failure;

    #[test]
    fn a_failure_prints_line_expected_and_actual() {
        let r = ScriptReport {
            path: "a.pkt".into(),
            verdict: Verdict::Fail(Failure {
                line: 7,
                message: "ack number: expected 1 actual 2".into(),
                expected: Some("> . 1:1(0) ack 1".into()),
                actual: Some("> . 1:1(0) ack 2 win 100".into()),
            }),
        };
        let d = r.detail();
        assert!(d.contains("a.pkt:7: ack number"), "{d}");
        assert!(d.contains("script packet/result: > . 1:1(0) ack 1"));
        assert!(d.contains("actual packet/result: > . 1:1(0) ack 2 win 100"));
        let reports = vec![
            r,
            ScriptReport {
                path: "b.pkt".into(),
                verdict: Verdict::Pass,
            },
            ScriptReport {
                path: "c.pkt".into(),
                verdict: Verdict::Unsupported {
                    line: 3,
                    construct: "udp packets".into(),
                },
            },
        ];
        let t = table(&reports);
        assert!(
            t.ends_with("total 3: 1 pass, 1 fail, 1 unsupported, 0 error\n"),
            "{t}"
        );
        let m = markdown(&reports, "tpa");
        assert!(
            m.contains("| `c.pkt` | unsupported | line 3: udp packets |"),
            "{m}"
        );
    }
}
