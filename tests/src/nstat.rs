//! The kernel's network counters in a namespace, as `nstat` names them
//! (`TcpRetransSegs`, `TcpExtTCPSackRecovery`, …): how the kernel saw a
//! peer. Counters are per namespace, so a test's namespace counts only its
//! own traffic; a [`Counters::delta`] between two snapshots counts one
//! transfer.
//!
//! ```no_run
//! use tpa_tests::netns::Netns;
//! use tpa_tests::nstat::Counters;
//! let ns = Netns::new("doc");
//! let before = Counters::read(&ns);
//! // … a transfer …
//! let during = Counters::read(&ns).delta(&before);
//! println!("{}", during.summary());
//! assert_eq!(during.get("TcpOutRsts"), 0);
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::netns::Netns;

/// The counters a TCP interop test reports: retransmissions and how they
/// were triggered, SACK and reordering, challenge ACKs, resets and
/// aborts, bad segments.
pub const TCP_REPORT: &[&str] = &[
    "TcpInSegs",
    "TcpOutSegs",
    "TcpRetransSegs",
    "TcpExtTCPFastRetrans",
    "TcpExtTCPLossProbes",
    "TcpExtTCPTimeouts",
    "TcpExtTCPLostRetransmit",
    "TcpExtTCPSackRecovery",
    "TcpExtTCPSACKReorder",
    "TcpExtTCPDSACKRecv",
    "TcpExtTCPDSACKOldSent",
    "TcpExtTCPSpuriousRTOs",
    "TcpExtTCPOFOQueue",
    "TcpExtTCPChallengeACK",
    "TcpExtPAWSEstab",
    "TcpOutRsts",
    "TcpEstabResets",
    "TcpExtTCPAbortOnData",
    "TcpInErrs",
    "TcpInCsumErrors",
];

/// A snapshot (or a difference of two) of every counter `nstat` knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters(BTreeMap<String, u64>);

impl Counters {
    /// Every counter of namespace `ns` now: `nstat -asz` (absolute values,
    /// zeros included, nstat's history file neither read nor written).
    ///
    /// # Panics
    /// If nstat fails or prints no counter.
    pub fn read(ns: &Netns) -> Counters {
        let text = ns.exec(&["nstat", "-asz"]);
        let counters = Counters::parse(&text);
        assert!(
            counters.0.contains_key("TcpInSegs"),
            "no TcpInSegs in nstat's output: {text}"
        );
        counters
    }

    /// Parses nstat's text output (`#kernel`, then `Name value rate` per
    /// line); lines that do not fit are skipped.
    pub fn parse(text: &str) -> Counters {
        Counters(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let mut it = l.split_whitespace();
                    Some((it.next()?.to_owned(), it.next()?.parse().ok()?))
                })
                .collect(),
        )
    }

    /// The counters' growth since `before` (a counter missing from
    /// `before` counts from zero; one that went down, as a wrapped 32-bit
    /// counter can, counts zero).
    pub fn delta(&self, before: &Counters) -> Counters {
        Counters(
            self.0
                .iter()
                .map(|(k, &v)| {
                    let was = before.0.get(k).copied().unwrap_or(0);
                    (k.clone(), v.saturating_sub(was))
                })
                .collect(),
        )
    }

    /// Counter `name`.
    ///
    /// # Panics
    /// If the kernel has no such counter (a misspelt name fails loudly).
    pub fn get(&self, name: &str) -> u64 {
        *self.0.get(name).unwrap_or_else(|| {
            panic!(
                "nstat has no counter {name} (it has {} others)",
                self.0.len()
            )
        })
    }

    /// Every counter, by name.
    pub fn all(&self) -> &BTreeMap<String, u64> {
        &self.0
    }

    /// The [`TCP_REPORT`] counters as `name=value` pairs, one line.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for name in TCP_REPORT {
            let _ = write!(
                s,
                "{}{name}={}",
                if s.is_empty() { "" } else { " " },
                self.get(name)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str =
        "#kernel\nTcpInSegs   10   0.0\nTcpRetransSegs  2  0.0\nIpExtInOctets 4294967200 0.0\n";
    const AFTER: &str = "#kernel\nTcpInSegs   25   0.0\nTcpRetransSegs  2  0.0\nIpExtInOctets 5 0.0\nTcpOutRsts 1 0.0\n";

    #[test]
    fn parses_nstat_text_and_subtracts() {
        let d = Counters::parse(AFTER).delta(&Counters::parse(BEFORE));
        assert_eq!(d.get("TcpInSegs"), 15);
        assert_eq!(d.get("TcpRetransSegs"), 0);
        assert_eq!(d.get("IpExtInOctets"), 0, "a counter that went down");
        assert_eq!(d.get("TcpOutRsts"), 1, "new since before");
    }

    #[test]
    #[should_panic(expected = "no counter TcpRetransSeg")]
    fn a_misspelt_counter_fails() {
        Counters::parse(AFTER).get("TcpRetransSeg");
    }
}
