//! The `--acl` rule syntax: one [`Rule`] of `tpa_stages::acl` per argument.
//!
//! ```text
//! RULE   := ACTION [MATCH]...
//! ACTION := allow | deny
//! MATCH  := ip | icmp | tcp | udp | arp | ipv6
//!         | src ADDR[/LEN] | dst ADDR[/LEN]
//!         | sport PORT[-PORT] | dport PORT[-PORT]
//! ```
//!
//! Each match at most once, in any order; a rule with none matches every
//! frame. `ip` matches IPv4 frames, `icmp`, `tcp` and `udp` those IPv4
//! protocols, `arp` and `ipv6` those EtherTypes; addresses are IPv4 (a bare
//! address is a /32), ports match TCP and UDP. Rules are tried in order, the
//! first match wins; a frame no rule matches is allowed.

use core::fmt;
use core::ops::RangeInclusive;

use tpa::wire::ethernet::EtherType;
use tpa::wire::ipv4::IpProtocol;
use tpa_stages::acl::Rule;

/// The grammar, as `--help` and errors show it.
pub const ACL_SYNTAX: &str = "(allow|deny) [ip|icmp|tcp|udp|arp|ipv6] [src ADDR[/LEN]] \
                              [dst ADDR[/LEN]] [sport PORT[-PORT]] [dport PORT[-PORT]]";

/// An `--acl` rule that does not follow [`ACL_SYNTAX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseRuleError {
    rule: String,
    why: String,
}

impl fmt::Display for ParseRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}; expected {ACL_SYNTAX}", self.rule, self.why)
    }
}

impl std::error::Error for ParseRuleError {}

/// Parses one rule, e.g. `deny ip src 10.0.0.0/8` or `allow tcp dport 22`.
///
/// ```
/// use tpa::wire::ipv4::IpProtocol;
/// use tpa_responder::parse_rule;
/// use tpa_stages::acl::Action;
///
/// let rule = parse_rule("deny tcp src 10.0.0.0/8 dport 20-21").unwrap();
/// assert_eq!(rule.action, Action::Deny);
/// assert_eq!(rule.protocol, Some(IpProtocol::Tcp));
/// assert_eq!(rule.dst_ports, Some(20..=21));
/// assert!(parse_rule("drop everything").is_err());
/// ```
pub fn parse_rule(s: &str) -> Result<Rule, ParseRuleError> {
    let err = |why: String| ParseRuleError {
        rule: s.to_owned(),
        why,
    };
    let mut words = s.split_whitespace();
    let mut rule = match words.next() {
        Some("allow") => Rule::allow(),
        Some("deny") => Rule::deny(),
        Some(w) => return Err(err(format!("`{w}` is not allow or deny"))),
        None => return Err(err("empty rule".into())),
    };
    // Whether a protocol or an EtherType was named (at most one).
    let mut kind: Option<&str> = None;
    while let Some(word) = words.next() {
        let mut value = || {
            words
                .next()
                .ok_or_else(|| err(format!("`{word}` needs a value")))
        };
        let repeated = || err(format!("`{word}` given twice"));
        match word {
            "ip" | "icmp" | "tcp" | "udp" | "arp" | "ipv6" => {
                if let Some(k) = kind {
                    return Err(err(format!("`{word}` after `{k}`: name one protocol")));
                }
                kind = Some(word);
                rule = match word {
                    "ip" => rule.ether_type(EtherType::Ipv4),
                    "icmp" => rule.protocol(IpProtocol::Icmp),
                    "tcp" => rule.protocol(IpProtocol::Tcp),
                    "udp" => rule.protocol(IpProtocol::Udp),
                    "arp" => rule.ether_type(EtherType::Arp),
                    _ => rule.ether_type(EtherType::Ipv6),
                };
            }
            "src" | "dst" => {
                let v = value()?;
                let prefix = v
                    .parse()
                    .map_err(|_| err(format!("`{v}` is not an IPv4 address or prefix")))?;
                rule = match word {
                    "src" if rule.src.is_none() => rule.src(prefix),
                    "dst" if rule.dst.is_none() => rule.dst(prefix),
                    _ => return Err(repeated()),
                };
            }
            "sport" | "dport" => {
                let v = value()?;
                let ports = parse_ports(v)
                    .ok_or_else(|| err(format!("`{v}` is not a port or a range LOW-HIGH")))?;
                rule = match word {
                    "sport" if rule.src_ports.is_none() => rule.src_ports(ports),
                    "dport" if rule.dst_ports.is_none() => rule.dst_ports(ports),
                    _ => return Err(repeated()),
                };
            }
            _ => return Err(err(format!("unknown word `{word}`"))),
        }
    }
    let ipv4_fields = rule.src.is_some() || rule.dst.is_some() || rule.protocol.is_some();
    let ports = rule.src_ports.is_some() || rule.dst_ports.is_some();
    match kind {
        Some(k @ ("arp" | "ipv6")) if ipv4_fields || ports => Err(err(format!(
            "`{k}` frames have no IPv4 addresses or ports: the rule would never match"
        ))),
        Some("icmp") if ports => Err(err("ports need tcp or udp, not icmp".into())),
        _ => Ok(rule),
    }
}

/// `N` or `LOW-HIGH` (LOW <= HIGH).
fn parse_ports(s: &str) -> Option<RangeInclusive<u16>> {
    let (low, high) = s.split_once('-').unwrap_or((s, s));
    let (low, high) = (low.parse().ok()?, high.parse().ok()?);
    (low <= high).then_some(low..=high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpa_stages::acl::Action;

    #[test]
    fn each_match_sets_its_field() {
        let r = parse_rule("deny ip src 10.0.0.0/8").unwrap();
        assert_eq!(r.action, Action::Deny);
        assert_eq!(r.ether_type, Some(EtherType::Ipv4));
        assert_eq!(r.src, Some("10.0.0.0/8".parse().unwrap()));
        assert_eq!((r.dst, r.protocol), (None, None));

        let r = parse_rule("allow icmp").unwrap();
        assert_eq!(r.action, Action::Allow);
        assert_eq!(r.protocol, Some(IpProtocol::Icmp));
        assert_eq!(r.ether_type, None);

        let r = parse_rule("  deny   dst 192.0.2.1 udp sport 53 dport 1024-2047 ").unwrap();
        assert_eq!(r.dst, Some("192.0.2.1/32".parse().unwrap()));
        assert_eq!(r.protocol, Some(IpProtocol::Udp));
        assert_eq!(r.src_ports, Some(53..=53));
        assert_eq!(r.dst_ports, Some(1024..=2047));

        assert_eq!(
            parse_rule("deny arp").unwrap().ether_type,
            Some(EtherType::Arp)
        );
        assert_eq!(
            parse_rule("deny ipv6").unwrap().ether_type,
            Some(EtherType::Ipv6)
        );
        assert_eq!(
            parse_rule("deny").unwrap(),
            Rule::deny(),
            "matches everything"
        );
    }

    #[test]
    fn malformed_rules_say_what_is_wrong() {
        let why = |s: &str| parse_rule(s).unwrap_err().why;
        assert_eq!(why(""), "empty rule");
        assert_eq!(why("block icmp"), "`block` is not allow or deny");
        assert_eq!(why("deny src"), "`src` needs a value");
        assert_eq!(
            why("deny src 10.0.0.0/33"),
            "`10.0.0.0/33` is not an IPv4 address or prefix"
        );
        assert_eq!(
            why("deny src 2001:db8::/32"),
            "`2001:db8::/32` is not an IPv4 address or prefix"
        );
        assert_eq!(
            why("deny dport 22-21"),
            "`22-21` is not a port or a range LOW-HIGH"
        );
        assert_eq!(
            why("deny dport 65536"),
            "`65536` is not a port or a range LOW-HIGH"
        );
        assert_eq!(why("deny src 1.1.1.1 src 2.2.2.2"), "`src` given twice");
        assert_eq!(why("deny tcp udp"), "`udp` after `tcp`: name one protocol");
        assert_eq!(why("deny icmp dport 7"), "ports need tcp or udp, not icmp");
        assert_eq!(
            why("deny arp src 10.0.0.1"),
            "`arp` frames have no IPv4 addresses or ports: the rule would never match"
        );
        assert_eq!(why("deny from 10.0.0.1"), "unknown word `from`");
        let shown = parse_rule("deny from 10.0.0.1").unwrap_err().to_string();
        assert!(
            shown.starts_with("`deny from 10.0.0.1`: unknown word `from`; expected (allow|deny)"),
            "{shown}"
        );
    }
}
