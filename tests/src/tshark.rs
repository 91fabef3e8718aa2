//! Capture files read back by tshark (Wireshark's dissectors), for the tests
//! that check what tpa wrote or sent against an implementation not ours.

use std::path::Path;
use std::process::Command;

/// The `fields` of every frame in the capture file at `path`, one row per
/// frame, as tshark prints them (`-T fields`; several occurrences of a
/// field joined by commas). `prefs` are tshark preferences, `name:value`
/// (e.g. `"ip.check_checksum:TRUE"`).
///
/// # Panics
/// When tshark cannot run or fails, saying why: the tests need it
/// (`apt-get install tshark`; `tests/run.sh` installs it).
pub fn fields(path: &Path, prefs: &[&str], fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(path);
    for pref in prefs {
        cmd.args(["-o", pref]);
    }
    cmd.args(["-T", "fields", "-E", "separator=|"]);
    cmd.args(["-E", "occurrence=a", "-E", "aggregator=,"]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    let out = cmd.output().expect("tshark runs (apt-get install tshark)");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("tshark prints text")
        .lines()
        .map(|line| line.split('|').map(str::to_owned).collect())
        .collect()
}
