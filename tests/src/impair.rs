//! A lossy wire between the ends of a kernel-interop test: a namespace of
//! its own holding a bridge, each end plugged into it (a veth pair to a
//! kernel's namespace, a veth for tpa's AF_PACKET port, or tpa's TAP
//! device), and nftables rules in the bridge's forwarding path that drop a
//! random P% of the TCP frames entering the bridge from each port
//! (`numgen random mod 100 < P drop`, table `bridge tpa_loss`): P% each
//! way.
//!
//! Why in the middle and not on an end: a frame dropped by netfilter in
//! the sending host's own output path (an `inet` postrouting rule, or tc
//! egress) is reported to its TCP, which keeps the segment and sends it
//! again later — no loss at all (a first version of this kit dropped 583
//! outgoing segments that way and the kernel counted 0 retransmissions).
//! And an AF_PACKET socket sees an arriving frame before netfilter's or
//! tc's ingress hooks could drop it. The bridge drops frames after one end
//! let them go and before the other sees them, as a lossy link does.
//!
//! Only TCP is dropped, so ARP, neighbor discovery and pings stay reliable
//! and a test fails for its transfer, not for its set-up. The kernel's TCP
//! sends 64 KB GSO units through a veth unless the interface is limited to
//! one segment per packet ([`Netns::one_segment_per_packet`]); do that on
//! the kernel's ends so that P% means P% of segments.
//!
//! Delay and reordering (tc netem) are not here: this machine's kernel has
//! no `sch_netem`, and tests must not depend on a module CI may lack.
//!
//! ```no_run
//! use tpa_tests::impair::LossyBridge;
//! use tpa_tests::netns::Netns;
//! let (a, b) = (Netns::new("doc-a"), Netns::new("doc-b"));
//! let wire = LossyBridge::new("doc");
//! wire.plug("pa", &a, "va");
//! wire.plug("pb", &b, "vb");
//! // … addresses on va and vb, a clean transfer …
//! wire.set_loss(1);
//! // … a lossy transfer …
//! println!("{:?}", wire.dropped());
//! ```

use std::io::Write as _;
use std::process::Stdio;

use crate::netns::Netns;

/// The nft table holding the loss rules.
const TABLE: &str = "tpa_loss";

/// A bridge `br0` in a namespace of its own; the namespace (and so every
/// veth pair plugged in) goes on drop.
#[derive(Debug)]
pub struct LossyBridge {
    ns: Netns,
}

impl LossyBridge {
    /// A namespace `tpa-<tag>-…` with bridge `br0` up (no STP: a port
    /// forwards as soon as it is up) and no loss.
    pub fn new(tag: &str) -> LossyBridge {
        let ns = Netns::new(tag);
        ns.ip(&["link", "add", "br0", "type", "bridge", "stp_state", "0"]);
        ns.up("br0");
        LossyBridge { ns }
    }

    /// The bridge's namespace (where a TAP device for tpa is made and
    /// opened, then [`attach`](Self::attach)ed).
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// A veth pair: `port` on the bridge, up; `end` in namespace `to`
    /// (which may be the bridge's own), left down without addresses.
    pub fn plug(&self, port: &str, to: &Netns, end: &str) {
        self.ns.ip(&[
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            end,
            "netns",
            to.name(),
        ]);
        self.attach(port);
    }

    /// Puts `dev`, an interface of the bridge's namespace, on the bridge
    /// and brings it up.
    pub fn attach(&self, dev: &str) {
        self.ns.ip(&["link", "set", "dev", dev, "master", "br0"]);
        self.ns.up(dev);
    }

    /// The bridge's ports.
    pub fn ports(&self) -> Vec<String> {
        self.ns
            .ip(&["-br", "link", "show", "master", "br0"])
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(|name| name.split('@').next().unwrap_or(name).to_owned())
            .collect()
    }

    /// Drops `percent`% of the TCP frames entering the bridge from each
    /// port, each chosen at random; replaces an earlier loss. Each rule
    /// counts its drops ([`dropped`](Self::dropped)).
    ///
    /// # Panics
    /// If `percent` is over 100 or nft refuses the rules (nft missing:
    /// tests/run.sh installs the `nftables` package).
    pub fn set_loss(&self, percent: u8) {
        assert!(percent <= 100, "a loss of {percent}%");
        self.clear_loss();
        let mut rules = format!(
            "table bridge {TABLE} {{\n  chain crossing {{\n    \
             type filter hook forward priority 0; policy accept;\n"
        );
        for port in self.ports() {
            rules.push_str(&format!(
                "    iifname \"{port}\" meta l4proto tcp numgen random mod 100 < {percent} counter drop\n"
            ));
        }
        rules.push_str("  }\n}\n");
        nft(&self.ns, &["-f", "-"], &rules);
    }

    /// Removes the loss, if any.
    pub fn clear_loss(&self) {
        let listed = self.ns.exec_output(&["nft", "list", "tables"]);
        if String::from_utf8_lossy(&listed.stdout).contains(&format!("table bridge {TABLE}")) {
            nft(&self.ns, &["delete", "table", "bridge", TABLE], "");
        }
    }

    /// TCP frames dropped since [`set_loss`](Self::set_loss), per port
    /// they came from.
    ///
    /// # Panics
    /// If no loss is set.
    pub fn dropped(&self) -> Vec<(String, u64)> {
        let text = nft(&self.ns, &["list", "table", "bridge", TABLE], "");
        text.lines()
            .filter_map(|l| {
                let port = l.split("iifname \"").nth(1)?.split('"').next()?;
                let packets = l
                    .split("counter packets ")
                    .nth(1)?
                    .split_whitespace()
                    .next()?;
                Some((port.to_owned(), packets.parse().ok()?))
            })
            .collect()
    }
}

/// Runs nft in `ns` with `stdin`; panics with its message on failure.
fn nft(ns: &Netns, args: &[&str], stdin: &str) -> String {
    let mut argv = vec!["nft"];
    argv.extend_from_slice(args);
    let mut child = ns
        .command(&argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run nft in {}: {e}", ns.name()));
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.as_bytes())
        .expect("write nft's input");
    drop(input);
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft {args:?} in {} failed ({}; tests/run.sh installs nftables): {}{stdin}",
        ns.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
