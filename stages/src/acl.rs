//! An access control list: allow/deny rules over raw frames, first match
//! wins, with a hit counter per rule.
//!
//! A rule matches on any of: EtherType, IPv4 source and destination
//! prefixes, IP protocol, and TCP/UDP source and destination port ranges.
//! Fields left unset match anything; a rule naming an IPv4 field only
//! matches IPv4 frames, one naming a port only TCP and UDP (and never a
//! non-first fragment, which has no ports).
//!
//! ```
//! use tpa::wire::ipv4::IpProtocol;
//! use tpa_stages::acl::{Acl, Action, Rule};
//!
//! let acl = Acl::new(Action::Allow)
//!     .rule(Rule::deny().src("10.0.0.0/8".parse().unwrap()))
//!     .rule(Rule::deny().protocol(IpProtocol::Tcp).dst_ports(22..=22));
//! assert_eq!(acl.hits().len(), 2);
//! ```

use core::ops::RangeInclusive;
use std::net::Ipv4Addr;

use tpa::buf::PacketBuf;
use tpa::stage::{Cx, Reason, Stage, Verdict};
use tpa::wire::ethernet::EtherType;
use tpa::wire::ipv4::IpProtocol;

use crate::ethernet::ETHERNET_HEADER_LEN;
use crate::iface::Ipv4Cidr;

/// The drop reason of frames a rule denies, named `acl` in the counters.
pub const ACL_DENIED: Reason = Reason::custom(0);

/// What a matching rule does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Pass it on.
    Allow,
    /// Drop it, counted as `acl`.
    Deny,
}

/// One rule: the fields to match (unset ones match anything) and the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What a matching frame gets.
    pub action: Action,
    /// The EtherType.
    pub ether_type: Option<EtherType>,
    /// The IPv4 source prefix.
    pub src: Option<Ipv4Cidr>,
    /// The IPv4 destination prefix.
    pub dst: Option<Ipv4Cidr>,
    /// The IP protocol.
    pub protocol: Option<IpProtocol>,
    /// TCP/UDP source ports.
    pub src_ports: Option<RangeInclusive<u16>>,
    /// TCP/UDP destination ports.
    pub dst_ports: Option<RangeInclusive<u16>>,
}

impl Rule {
    /// A rule matching everything, with `action`; narrow it with the
    /// builder methods.
    pub fn new(action: Action) -> Self {
        Rule {
            action,
            ether_type: None,
            src: None,
            dst: None,
            protocol: None,
            src_ports: None,
            dst_ports: None,
        }
    }

    /// An allowing rule matching everything.
    pub fn allow() -> Self {
        Rule::new(Action::Allow)
    }

    /// A denying rule matching everything.
    pub fn deny() -> Self {
        Rule::new(Action::Deny)
    }

    /// Matches only this EtherType.
    pub fn ether_type(mut self, t: EtherType) -> Self {
        self.ether_type = Some(t);
        self
    }

    /// Matches only IPv4 sources in `prefix`.
    pub fn src(mut self, prefix: Ipv4Cidr) -> Self {
        self.src = Some(prefix);
        self
    }

    /// Matches only IPv4 destinations in `prefix`.
    pub fn dst(mut self, prefix: Ipv4Cidr) -> Self {
        self.dst = Some(prefix);
        self
    }

    /// Matches only this IP protocol.
    pub fn protocol(mut self, p: IpProtocol) -> Self {
        self.protocol = Some(p);
        self
    }

    /// Matches only TCP/UDP source ports in `ports`.
    pub fn src_ports(mut self, ports: RangeInclusive<u16>) -> Self {
        self.src_ports = Some(ports);
        self
    }

    /// Matches only TCP/UDP destination ports in `ports`.
    pub fn dst_ports(mut self, ports: RangeInclusive<u16>) -> Self {
        self.dst_ports = Some(ports);
        self
    }

    fn needs_ipv4(&self) -> bool {
        self.src.is_some() || self.dst.is_some() || self.protocol.is_some() || self.needs_ports()
    }

    fn needs_ports(&self) -> bool {
        self.src_ports.is_some() || self.dst_ports.is_some()
    }

    fn matches(&self, f: &Fields) -> bool {
        if self.ether_type.is_some_and(|t| t != f.ether_type) {
            return false;
        }
        if !self.needs_ipv4() {
            return true;
        }
        let Some(ip) = &f.ipv4 else {
            return false;
        };
        if self.src.is_some_and(|c| !c.contains(ip.src))
            || self.dst.is_some_and(|c| !c.contains(ip.dst))
            || self.protocol.is_some_and(|p| p != ip.protocol)
        {
            return false;
        }
        if !self.needs_ports() {
            return true;
        }
        let Some((sport, dport)) = ip.ports else {
            return false;
        };
        self.src_ports.as_ref().is_none_or(|r| r.contains(&sport))
            && self.dst_ports.as_ref().is_none_or(|r| r.contains(&dport))
    }
}

/// The header fields rules look at, read once per frame.
struct Fields {
    ether_type: EtherType,
    ipv4: Option<Ipv4Fields>,
}

struct Ipv4Fields {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    ports: Option<(u16, u16)>,
}

impl Fields {
    /// Reads the fields; `None` if the frame is too short for its Ethernet
    /// header. A truncated IPv4 header leaves `ipv4` unset (IPv4 rules then
    /// do not match; the IP input stage drops such frames later).
    fn read(frame: &[u8]) -> Option<Fields> {
        let eth = frame.get(..ETHERNET_HEADER_LEN)?;
        let ether_type = EtherType::from(u16::from_be_bytes([eth[12], eth[13]]));
        let ipv4 = if ether_type == EtherType::Ipv4 {
            Self::read_ipv4(&frame[ETHERNET_HEADER_LEN..])
        } else {
            None
        };
        Some(Fields { ether_type, ipv4 })
    }

    fn read_ipv4(ip: &[u8]) -> Option<Ipv4Fields> {
        let header = ip.get(..20)?;
        let header_len = usize::from(header[0] & 0x0f) * 4;
        let protocol = IpProtocol::from(header[9]);
        let first_fragment = u16::from_be_bytes([header[6], header[7]]) & 0x1fff == 0;
        let ports = match protocol {
            IpProtocol::Tcp | IpProtocol::Udp if first_fragment && header_len >= 20 => {
                ip.get(header_len..header_len + 4).map(|p| {
                    (
                        u16::from_be_bytes([p[0], p[1]]),
                        u16::from_be_bytes([p[2], p[3]]),
                    )
                })
            }
            _ => None,
        };
        Some(Ipv4Fields {
            src: Ipv4Addr::new(header[12], header[13], header[14], header[15]),
            dst: Ipv4Addr::new(header[16], header[17], header[18], header[19]),
            protocol,
            ports,
        })
    }
}

/// The ACL stage: frames in, allowed frames out.
#[derive(Debug, Clone)]
pub struct Acl {
    rules: Vec<Rule>,
    hits: Vec<u64>,
    default: Action,
    default_hits: u64,
}

impl Acl {
    /// An empty list whose frames get `default`.
    pub fn new(default: Action) -> Self {
        Acl {
            rules: Vec::new(),
            hits: Vec::new(),
            default,
            default_hits: 0,
        }
    }

    /// Appends a rule (checked after the ones before it).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self.hits.push(0);
        self
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Frames each rule matched, by rule index.
    pub fn hits(&self) -> &[u64] {
        &self.hits
    }

    /// Frames no rule matched (they got the default action).
    pub fn default_hits(&self) -> u64 {
        self.default_hits
    }

    /// What the list decides for `frame`, counting the hit.
    pub fn decide(&mut self, frame: &[u8]) -> Option<Action> {
        let fields = Fields::read(frame)?;
        for (rule, hits) in self.rules.iter().zip(self.hits.iter_mut()) {
            if rule.matches(&fields) {
                *hits += 1;
                return Some(rule.action);
            }
        }
        self.default_hits += 1;
        Some(self.default)
    }
}

impl<B: PacketBuf, S> Stage<B, S> for Acl {
    type In = B;
    type Out = B;
    const CUSTOM_REASONS: &'static [&'static str] = &["acl"];

    #[inline]
    fn process(&mut self, frame: B, _cx: &mut Cx<'_, B, S>) -> Verdict<B> {
        match self.decide(frame.data()) {
            Some(Action::Allow) => Verdict::Pass(frame),
            Some(Action::Deny) => Verdict::Drop(ACL_DENIED),
            None => Verdict::Drop(Reason::TOO_SHORT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{frame, pool, with_cx, BufferPool};
    use etherparse::PacketBuilder;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B_: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(A, B_)
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut out, b"x")
            .unwrap();
        out
    }

    fn tcp(dport: u16) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(A, B_)
            .ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64)
            .tcp(40000, dport, 1, 1000)
            .write(&mut out, b"")
            .unwrap();
        out
    }

    fn verdict(acl: &mut Acl, bytes: &[u8]) -> &'static str {
        match with_cx(|cx| acl.process(frame(bytes), cx)) {
            Verdict::Pass(_) => "pass",
            Verdict::Drop(r) => r.name(<Acl as Stage<tpa::buf::PoolBuf>>::CUSTOM_REASONS),
            _ => "other",
        }
    }

    #[test]
    fn first_matching_rule_decides_and_is_counted() {
        let mut acl = Acl::new(Action::Allow)
            .rule(Rule::allow().src("10.1.0.0/16".parse().unwrap()))
            .rule(Rule::deny().src("10.0.0.0/8".parse().unwrap()))
            .rule(Rule::deny().protocol(IpProtocol::Tcp).dst_ports(20..=22))
            .rule(Rule::deny().ether_type(EtherType::Arp));
        assert_eq!(
            verdict(&mut acl, &udp([10, 1, 2, 3], [192, 0, 2, 1], 1, 2)),
            "pass"
        );
        assert_eq!(
            verdict(&mut acl, &udp([10, 2, 2, 3], [192, 0, 2, 1], 1, 2)),
            "acl"
        );
        assert_eq!(verdict(&mut acl, &tcp(22)), "acl");
        assert_eq!(verdict(&mut acl, &tcp(23)), "pass");
        // Port rules do not match UDP to port 22 only because of the protocol.
        assert_eq!(
            verdict(&mut acl, &udp([192, 0, 2, 2], [192, 0, 2, 1], 1, 22)),
            "pass"
        );
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(verdict(&mut acl, &arp), "acl");
        assert_eq!(verdict(&mut acl, &arp[..10]), "too-short");
        assert_eq!(acl.hits(), &[1, 1, 1, 1]);
        assert_eq!(acl.default_hits(), 2);
        pool().assert_whole();
    }

    #[test]
    fn ip_rules_do_not_match_other_frames_and_default_applies() {
        let mut acl = Acl::new(Action::Deny)
            .rule(Rule::allow().dst("192.0.2.0/24".parse().unwrap()))
            .rule(Rule::allow().ether_type(EtherType::Arp));
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(verdict(&mut acl, &arp), "pass");
        let mut ipv6 = vec![0u8; 60];
        ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(verdict(&mut acl, &ipv6), "acl");
        assert_eq!(
            verdict(&mut acl, &udp([1, 1, 1, 1], [192, 0, 2, 9], 5, 6)),
            "pass"
        );
        assert_eq!(
            verdict(&mut acl, &udp([1, 1, 1, 1], [198, 51, 100, 1], 5, 6)),
            "acl"
        );
        assert_eq!(acl.hits(), &[1, 1]);
        assert_eq!(acl.default_hits(), 2);
        pool().assert_whole();
    }
}
