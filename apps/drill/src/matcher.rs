//! Whether a segment the stack sent is the one a `>` line expects, in one
//! of two modes:
//!
//! - **strict** (packetdrill's own rules): flags, sequence range, ack (with
//!   the ACK flag), window (when written), urgent pointer, and the options
//!   in order and value (`<...>` skips them; no options written means none
//!   sent). TS val is not checked (it is the stack's clock), TS ecr is.
//! - **portable**: flags but PSH (where a stack sets it beyond the last
//!   segment of what it has queued is its own choice, RFC 9293 §3.9.1,
//!   MUST-61: Linux marks more segments), sequence range, ack, payload
//!   length, and the
//!   options by kind and value in any order, padding (nop, eol) ignored,
//!   the window scale's shift not compared (it follows the buffer size, as
//!   the window does); the window only where every stack shares the value
//!   (`win 0`).

use crate::script::ast::{Flags, PacketSpec, TcpOption};
use crate::segment::{flags_text, options_text, Segment};

/// How closely segments must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every field as written.
    #[default]
    Strict,
    /// What every conforming stack shares.
    Portable,
}

/// A `>` line printed back as packetdrill writes it.
pub fn spec_text(p: &PacketSpec) -> String {
    let mut s = format!(
        "{} {}:{}({})",
        flags_text(&p.flags),
        p.seq,
        p.seq.wrapping_add(u32::from(p.len)),
        p.len
    );
    if let Some(a) = p.ack {
        s.push_str(&format!(" ack {a}"));
    }
    if let Some(w) = p.win {
        s.push_str(&format!(" win {w}"));
    }
    if let Some(u) = p.urg {
        s.push_str(&format!(" urg {u}"));
    }
    match &p.options {
        None => s.push_str(" <...>"),
        Some(o) => s.push_str(&options_text(o)),
    }
    s
}

/// Options without the TS val (not compared) and, in portable mode,
/// without padding and sorted by kind.
fn comparable(opts: &[TcpOption], mode: Mode) -> Vec<TcpOption> {
    let mut v: Vec<TcpOption> = opts
        .iter()
        .filter(|o| mode == Mode::Strict || !matches!(o, TcpOption::Nop | TcpOption::Eol))
        .map(|o| match o {
            TcpOption::Timestamp { ecr, .. } => TcpOption::Timestamp { val: 0, ecr: *ecr },
            // The shift follows the receive buffer, a local choice like the
            // window itself: portable matching checks it is there.
            TcpOption::WindowScale(_) if mode == Mode::Portable => TcpOption::WindowScale(0),
            other => other.clone(),
        })
        .collect();
    // Trailing EOL padding is never part of what a script pins.
    while mode == Mode::Strict && v.last() == Some(&TcpOption::Eol) {
        v.pop();
    }
    if mode == Mode::Portable {
        v.sort_by_key(kind);
    }
    v
}

fn kind(o: &TcpOption) -> u8 {
    match o {
        TcpOption::Eol => 0,
        TcpOption::Nop => 1,
        TcpOption::Mss(_) => 2,
        TcpOption::WindowScale(_) => 3,
        TcpOption::SackPermitted => 4,
        TcpOption::Sack(_) => 5,
        TcpOption::Timestamp { .. } => 8,
        TcpOption::Md5(_) => 19,
        TcpOption::FastOpen(_) => 34,
    }
}

/// The fields where `actual` (in script numbers) differs from `expected`;
/// empty when it matches.
pub fn differences(expected: &PacketSpec, actual: &Segment, mode: Mode) -> Vec<String> {
    let mut d = Vec::new();
    let flags_differ = match mode {
        Mode::Strict => expected.flags != actual.flags,
        Mode::Portable => {
            let no_psh = |f: &Flags| Flags { psh: false, ..*f };
            no_psh(&expected.flags) != no_psh(&actual.flags)
        }
    };
    if flags_differ {
        d.push(format!(
            "flags: expected {} actual {}",
            flags_text(&expected.flags),
            flags_text(&actual.flags)
        ));
    }
    if expected.seq != actual.seq {
        d.push(format!(
            "sequence number: expected {} actual {}",
            expected.seq, actual.seq
        ));
    }
    if expected.len != actual.len {
        d.push(format!(
            "payload length: expected {} actual {}",
            expected.len, actual.len
        ));
    }
    if expected.flags.ack && actual.flags.ack {
        let want = expected.ack.unwrap_or(0);
        if want != actual.ack {
            d.push(format!("ack number: expected {want} actual {}", actual.ack));
        }
    }
    if let Some(w) = expected.win {
        let check = match mode {
            Mode::Strict => true,
            Mode::Portable => w == 0,
        };
        if check && w != actual.win {
            d.push(format!("window: expected {w} actual {}", actual.win));
        }
    }
    if mode == Mode::Strict && expected.urg.unwrap_or(0) != actual.urg {
        d.push(format!(
            "urgent pointer: expected {} actual {}",
            expected.urg.unwrap_or(0),
            actual.urg
        ));
    }
    if let Some(opts) = &expected.options {
        if comparable(opts, mode) != comparable(&actual.options, mode) {
            d.push(format!(
                "TCP options: expected <{}> actual <{}>",
                options_text(opts)
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>'),
                options_text(&actual.options)
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
            ));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::ast::{Action, Direction};
    use crate::script::parse;

    fn spec(line: &str) -> PacketSpec {
        match parse(line).unwrap().events.remove(0).action {
            Action::Packet(p) => p,
            _ => panic!(),
        }
    }

    fn seg(line: &str) -> Segment {
        let p = spec(line);
        Segment {
            flags: p.flags,
            seq: p.seq,
            ack: p.ack.unwrap_or(0),
            win: p.win.unwrap_or(0),
            urg: p.urg.unwrap_or(0),
            options: p.options.unwrap_or_default(),
            len: p.len,
            ..Segment::default()
        }
    }

    #[test]
    fn same_segment_matches_in_both_modes() {
        let line = "0 > S. 0:0(0) ack 1 win 65535 <mss 1460,nop,nop,sackOK,nop,wscale 7>";
        for mode in [Mode::Strict, Mode::Portable] {
            assert!(differences(&spec(line), &seg(line), mode).is_empty());
        }
        assert_eq!(spec(line).direction, Direction::Outbound);
    }

    #[test]
    fn a_mismatch_names_the_field_and_prints_both_segments() {
        let e = spec("0 > P. 1:1001(1000) ack 1");
        let a = seg("0 > P. 1:501(500) ack 2");
        let d = differences(&e, &a, Mode::Strict);
        assert!(d
            .iter()
            .any(|x| x.contains("payload length: expected 1000 actual 500")));
        assert!(d
            .iter()
            .any(|x| x.contains("ack number: expected 1 actual 2")));
        assert_eq!(spec_text(&e), "P. 1:1001(1000) ack 1");
        assert_eq!(a.to_string(), "P. 1:501(500) ack 2 win 0");
    }

    #[test]
    fn options_order_matters_only_when_strict() {
        let e = spec("0 > S 0:0(0) <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>");
        let a = seg("0 > S 0:0(0) <mss 1460,nop,wscale 4,sackOK,TS val 99 ecr 0>");
        assert!(!differences(&e, &a, Mode::Strict).is_empty());
        assert!(differences(&e, &a, Mode::Portable).is_empty());
        // A missing option is a difference in both modes.
        let a = seg("0 > S 0:0(0) <mss 1460,sackOK,TS val 99 ecr 0>");
        assert!(!differences(&e, &a, Mode::Portable).is_empty());
        // TS val is the stack's clock: never compared; ecr is.
        let a = seg("0 > S 0:0(0) <mss 1460,sackOK,TS val 5 ecr 0,nop,wscale 7>");
        assert!(differences(&e, &a, Mode::Strict).is_empty());
        let a = seg("0 > S 0:0(0) <mss 1460,sackOK,TS val 5 ecr 3,nop,wscale 7>");
        assert_eq!(differences(&e, &a, Mode::Portable).len(), 1);
    }

    #[test]
    fn no_options_written_means_none_sent_and_ellipsis_skips() {
        let a = seg("0 > . 1:1(0) ack 1 <nop,nop,TS val 1 ecr 1>");
        assert_eq!(
            differences(&spec("0 > . 1:1(0) ack 1"), &a, Mode::Strict).len(),
            1
        );
        assert!(differences(&spec("0 > . 1:1(0) ack 1 <...>"), &a, Mode::Strict).is_empty());
    }

    #[test]
    fn psh_matters_only_when_strict() {
        let e = spec("0 > . 1:1461(1460) ack 1");
        let a = seg("0 > P. 1:1461(1460) ack 1");
        assert_eq!(differences(&e, &a, Mode::Strict).len(), 1);
        assert!(differences(&e, &a, Mode::Portable).is_empty());
        // Every other flag still counts.
        let a = seg("0 > P. 1:1461(1460) ack 1");
        assert_eq!(
            differences(&spec("0 > F. 1:1461(1460) ack 1"), &a, Mode::Portable).len(),
            1
        );
    }

    #[test]
    fn windows_only_pinned_in_portable_mode_when_zero() {
        let a = seg("0 > . 1:1(0) ack 1 win 100");
        assert_eq!(
            differences(&spec("0 > . 1:1(0) ack 1 win 200"), &a, Mode::Strict).len(),
            1
        );
        assert!(differences(&spec("0 > . 1:1(0) ack 1 win 200"), &a, Mode::Portable).is_empty());
        assert_eq!(
            differences(&spec("0 > . 1:1(0) ack 1 win 0"), &a, Mode::Portable).len(),
            1
        );
    }
}
