//! Flow-steering rules as plain data: which traffic a worker queue gets
//! from the NIC, and the mark it carries. Built without DPDK, turned into
//! `rte_flow` rules by the installer (feature `dpdk`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;

/// A 16-bit field match: the field, ANDed with `mask`, equals `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaskedPort {
    /// The bits to match (already masked).
    pub value: u16,
    /// Which bits of the field are compared.
    pub mask: u16,
}

impl MaskedPort {
    /// Matches exactly `port`.
    pub const fn exact(port: u16) -> MaskedPort {
        MaskedPort {
            value: port,
            mask: u16::MAX,
        }
    }

    /// Whether `port` matches.
    pub const fn matches(&self, port: u16) -> bool {
        port & self.mask == self.value
    }

    /// The ports matched, as an inclusive range (value/mask pairs made by
    /// [`port_range_masks`] are aligned prefixes, so they are contiguous).
    pub fn range(&self) -> RangeInclusive<u16> {
        self.value..=(self.value | !self.mask)
    }
}

/// The fewest value/mask pairs matching exactly the ports in `range`: the
/// range split into aligned power-of-two blocks (prefixes), as hardware
/// matches masked fields, not ranges.
///
/// ```
/// use tpa_stages::mlx5::{port_range_masks, MaskedPort};
/// // 1024..=2047 is one aligned block: one rule.
/// assert_eq!(port_range_masks(1024..=2047), vec![MaskedPort { value: 1024, mask: 0xfc00 }]);
/// // 1000..=1003 is 1000/0xfffc.
/// assert_eq!(port_range_masks(1000..=1003).len(), 1);
/// ```
pub fn port_range_masks(range: RangeInclusive<u16>) -> Vec<MaskedPort> {
    let (mut lo, hi) = (u32::from(*range.start()), u32::from(*range.end()));
    let mut out = Vec::new();
    while lo <= hi {
        // The largest block aligned at `lo` that does not pass `hi`.
        let mut size = if lo == 0 {
            1 << 16
        } else {
            1u32 << lo.trailing_zeros()
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        out.push(MaskedPort {
            value: lo as u16,
            mask: !((size - 1) as u16),
        });
        lo += size;
    }
    out
}

/// One item of a rule's pattern, outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowItem {
    /// Any Ethernet frame.
    Eth,
    /// IPv4, optionally to one destination address.
    Ipv4 {
        /// Destination address to match exactly; `None` matches any.
        dst: Option<Ipv4Addr>,
    },
    /// IPv6, optionally to one destination address.
    Ipv6 {
        /// Destination address to match exactly; `None` matches any.
        dst: Option<Ipv6Addr>,
    },
    /// TCP, optionally matching (masked) ports.
    Tcp {
        /// Source port match.
        src: Option<MaskedPort>,
        /// Destination port match.
        dst: Option<MaskedPort>,
    },
}

/// What a matching packet gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowAction {
    /// Tag the packet with `id` (arrives in the mbuf as the FDIR id, in tpa
    /// as `Meta::flow_mark`).
    Mark(u32),
    /// Deliver to one receive queue.
    Queue(u16),
    /// Spread over these queues by the RSS hash of the addresses and ports.
    Rss(Vec<u16>),
}

/// One ingress rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRule {
    /// Flow table group (0: the root table, which mlx5 always has).
    pub group: u32,
    /// Priority within the group (0 is highest).
    pub priority: u32,
    /// Items matched, outermost first.
    pub pattern: Vec<FlowItem>,
    /// Actions applied, in order.
    pub actions: Vec<FlowAction>,
}

impl FlowRule {
    /// The rule that names one connection in the NIC for the TCP classify
    /// stage's flow-mark fast path
    /// ([`tcp::classify`](crate::tcp::classify)): ETH / IPV4 or IPV6 to
    /// `local`'s address / TCP from `remote_port` to `local`'s port → MARK `mark`
    /// (the connection's, [`TcpSockets::flow_mark`]) + QUEUE `queue` (its
    /// worker's). The peer's address is not matched (the item carries the
    /// destination only): a segment of another peer with the same ports is
    /// marked too, and the classify stage, which checks the whole 4-tuple
    /// of a marked segment, takes it to the hash lookup.
    ///
    /// [`TcpSockets::flow_mark`]: crate::tcp::TcpSockets::flow_mark
    pub fn connection(
        local: SocketAddr,
        remote_port: u16,
        mark: u32,
        queue: u16,
        priority: u32,
    ) -> FlowRule {
        let ip = match local.ip() {
            IpAddr::V4(a) => FlowItem::Ipv4 { dst: Some(a) },
            IpAddr::V6(a) => FlowItem::Ipv6 { dst: Some(a) },
        };
        FlowRule {
            group: 0,
            priority,
            pattern: vec![
                FlowItem::Eth,
                ip,
                FlowItem::Tcp {
                    src: Some(MaskedPort::exact(remote_port)),
                    dst: Some(MaskedPort::exact(local.port())),
                },
            ],
            actions: vec![FlowAction::Mark(mark), FlowAction::Queue(queue)],
        }
    }

    /// Whether a TCP packet to `dst` with these ports matches the
    /// pattern (an IPv4 item matches no IPv6 packet, and the reverse).
    pub fn matches(&self, dst: impl Into<IpAddr>, src_port: u16, dst_port: u16) -> bool {
        let dst = dst.into();
        self.pattern.iter().all(|item| match (item, dst) {
            (FlowItem::Eth, _) => true,
            (FlowItem::Ipv4 { dst: want }, IpAddr::V4(dst)) => want.is_none_or(|a| a == dst),
            (FlowItem::Ipv6 { dst: want }, IpAddr::V6(dst)) => want.is_none_or(|a| a == dst),
            (FlowItem::Ipv4 { .. } | FlowItem::Ipv6 { .. }, _) => false,
            (FlowItem::Tcp { src, dst }, _) => {
                src.is_none_or(|m| m.matches(src_port)) && dst.is_none_or(|m| m.matches(dst_port))
            }
        })
    }

    /// The queue(s) a matching packet goes to.
    pub fn queues(&self) -> &[u16] {
        for a in &self.actions {
            match a {
                FlowAction::Queue(q) => return core::slice::from_ref(q),
                FlowAction::Rss(qs) => return qs,
                FlowAction::Mark(_) => {}
            }
        }
        &[]
    }

    /// The mark a matching packet carries, if any.
    pub fn mark(&self) -> Option<u32> {
        self.actions.iter().find_map(|a| match a {
            FlowAction::Mark(m) => Some(*m),
            _ => None,
        })
    }
}

/// What a flow mark says about the packet, decoded from `Meta::flow_mark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowMark {
    /// To a listening port (a new or accepted passive connection).
    Listener {
        /// The listening port.
        port: u16,
    },
    /// To a port in a worker's active-open range (a connection it opened).
    Worker {
        /// The worker's queue.
        queue: u16,
    },
}

// mlx5 marks hold 24 bits (values up to MLX5_FLOW_MARK_MAX, 0xfffff0):
// the kind goes in bits 16..24, the port or queue below.
const MARK_LISTENER: u32 = 1 << 16;
const MARK_WORKER: u32 = 2 << 16;

impl FlowMark {
    /// The id carried by the MARK action (fits mlx5's 24-bit marks).
    pub const fn id(self) -> u32 {
        match self {
            FlowMark::Listener { port } => MARK_LISTENER | port as u32,
            FlowMark::Worker { queue } => MARK_WORKER | queue as u32,
        }
    }

    /// Decodes a mark id made by [`FlowMark::id`]; `None` for others.
    pub const fn decode(id: u32) -> Option<FlowMark> {
        let value = (id & 0xffff) as u16;
        match id & !0xffff {
            MARK_LISTENER => Some(FlowMark::Listener { port: value }),
            MARK_WORKER => Some(FlowMark::Worker { queue: value }),
            _ => None,
        }
    }
}

/// One worker: its receive queue and the local ports it opens connections
/// from (so the replies can be steered back to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSteering {
    /// The worker's receive queue.
    pub queue: u16,
    /// Local ports of its active opens.
    pub local_ports: RangeInclusive<u16>,
}

/// The application's traffic, to be taken from the NIC; everything else
/// stays with the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bifurcation {
    /// The local IPv4 addresses tpa serves (shared with the kernel's netdev).
    pub addresses: Vec<Ipv4Addr>,
    /// TCP ports the application listens on; connections to them are spread
    /// over every worker by RSS.
    pub listen_ports: Vec<u16>,
    /// The workers.
    pub workers: Vec<WorkerSteering>,
    /// Rule priority (0 highest) for every rule.
    pub priority: u32,
}

/// Why a [`Bifurcation`] cannot be turned into rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BifurcationError {
    /// No address to match: rules would take every host's traffic.
    NoAddresses,
    /// No worker to steer to.
    NoWorkers,
    /// Two workers' local port ranges overlap.
    OverlappingRanges {
        /// One worker's queue.
        a: u16,
        /// The other's.
        b: u16,
    },
    /// A listening port lies in a worker's active-open range, so its traffic
    /// would match two rules.
    ListenPortInRange {
        /// The port.
        port: u16,
        /// The worker whose range holds it.
        queue: u16,
    },
    /// An address is listed twice: its rules would be installed twice.
    DuplicateAddress(Ipv4Addr),
    /// A listening port is listed twice: its rules would be installed twice.
    DuplicateListenPort(u16),
    /// Two workers share a receive queue, so a worker mark would not tell
    /// them apart.
    DuplicateQueue(u16),
}

impl core::fmt::Display for BifurcationError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BifurcationError::NoAddresses => write!(f, "no local address to steer"),
            BifurcationError::NoWorkers => write!(f, "no worker queue to steer to"),
            BifurcationError::OverlappingRanges { a, b } => {
                write!(f, "the local port ranges of queues {a} and {b} overlap")
            }
            BifurcationError::ListenPortInRange { port, queue } => {
                write!(
                    f,
                    "listening port {port} lies in the active-open range of queue {queue}"
                )
            }
            BifurcationError::DuplicateAddress(addr) => {
                write!(f, "address {addr} is listed twice")
            }
            BifurcationError::DuplicateListenPort(port) => {
                write!(f, "listening port {port} is listed twice")
            }
            BifurcationError::DuplicateQueue(queue) => {
                write!(f, "two workers share receive queue {queue}")
            }
        }
    }
}

impl std::error::Error for BifurcationError {}

impl Bifurcation {
    /// The rules, in the order to install them: for every address, one per
    /// listening port (MARK + RSS over all worker queues, or QUEUE with one
    /// worker) and one per value/mask block of each worker's local port range
    /// (MARK + QUEUE to that worker). Pattern ETH / IPV4 dst / TCP dst, group
    /// 0, ingress: what mlx5 offloads in hardware.
    pub fn rules(&self) -> Result<Vec<FlowRule>, BifurcationError> {
        self.check()?;
        let all_queues: Vec<u16> = self.workers.iter().map(|w| w.queue).collect();
        let mut rules = Vec::new();
        for &addr in &self.addresses {
            for &port in &self.listen_ports {
                let spread = if all_queues.len() == 1 {
                    FlowAction::Queue(all_queues[0])
                } else {
                    FlowAction::Rss(all_queues.clone())
                };
                rules.push(self.rule(
                    addr,
                    MaskedPort::exact(port),
                    FlowMark::Listener { port },
                    spread,
                ));
            }
            for w in &self.workers {
                for block in port_range_masks(w.local_ports.clone()) {
                    rules.push(self.rule(
                        addr,
                        block,
                        FlowMark::Worker { queue: w.queue },
                        FlowAction::Queue(w.queue),
                    ));
                }
            }
        }
        Ok(rules)
    }

    /// What the rules decide for a TCP packet to `dst`:`dst_port`, decided
    /// in software: the fallback when the NIC takes no rules, and the
    /// reference the rules are tested against. `None`: the kernel's.
    pub fn classify(&self, dst: Ipv4Addr, dst_port: u16) -> Option<FlowMark> {
        if !self.addresses.contains(&dst) {
            return None;
        }
        if self.listen_ports.contains(&dst_port) {
            return Some(FlowMark::Listener { port: dst_port });
        }
        self.workers
            .iter()
            .find(|w| w.local_ports.contains(&dst_port))
            .map(|w| FlowMark::Worker { queue: w.queue })
    }

    fn rule(&self, addr: Ipv4Addr, dst: MaskedPort, mark: FlowMark, to: FlowAction) -> FlowRule {
        FlowRule {
            group: 0,
            priority: self.priority,
            pattern: vec![
                FlowItem::Eth,
                FlowItem::Ipv4 { dst: Some(addr) },
                FlowItem::Tcp {
                    src: None,
                    dst: Some(dst),
                },
            ],
            actions: vec![FlowAction::Mark(mark.id()), to],
        }
    }

    fn check(&self) -> Result<(), BifurcationError> {
        if self.addresses.is_empty() {
            return Err(BifurcationError::NoAddresses);
        }
        if self.workers.is_empty() {
            return Err(BifurcationError::NoWorkers);
        }
        if let Some(addr) = first_duplicate(&self.addresses) {
            return Err(BifurcationError::DuplicateAddress(addr));
        }
        if let Some(port) = first_duplicate(&self.listen_ports) {
            return Err(BifurcationError::DuplicateListenPort(port));
        }
        let queues: Vec<u16> = self.workers.iter().map(|w| w.queue).collect();
        if let Some(queue) = first_duplicate(&queues) {
            return Err(BifurcationError::DuplicateQueue(queue));
        }
        for (i, a) in self.workers.iter().enumerate() {
            for b in &self.workers[i + 1..] {
                if a.local_ports.start() <= b.local_ports.end()
                    && b.local_ports.start() <= a.local_ports.end()
                {
                    return Err(BifurcationError::OverlappingRanges {
                        a: a.queue,
                        b: b.queue,
                    });
                }
            }
            if let Some(&port) = self.listen_ports.iter().find(|p| a.local_ports.contains(p)) {
                return Err(BifurcationError::ListenPortInRange {
                    port,
                    queue: a.queue,
                });
            }
        }
        Ok(())
    }
}

/// The first item of `items` (reading in order) equal to an earlier one. Plans
/// are a handful of entries, so a quadratic scan is the simplest.
fn first_duplicate<T: PartialEq + Copy>(items: &[T]) -> Option<T> {
    items
        .iter()
        .enumerate()
        .find(|&(i, x)| items[..i].contains(x))
        .map(|(_, &x)| x)
}

/// Splits `ports` into `workers` equal, disjoint ranges, one per worker
/// (the last takes the remainder).
///
/// ```
/// use tpa_stages::mlx5::split_port_range;
/// assert_eq!(split_port_range(32768..=65535, 2), vec![32768..=49151, 49152..=65535]);
/// ```
pub fn split_port_range(ports: RangeInclusive<u16>, workers: u16) -> Vec<RangeInclusive<u16>> {
    let (lo, hi) = (u32::from(*ports.start()), u32::from(*ports.end()));
    if workers == 0 || hi < lo {
        return Vec::new();
    }
    let each = (hi - lo + 1) / u32::from(workers);
    if each == 0 {
        return Vec::new();
    }
    (0..u32::from(workers))
        .map(|i| {
            let start = lo + i * each;
            let end = if i + 1 == u32::from(workers) {
                hi
            } else {
                start + each - 1
            };
            start as u16..=end as u16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);

    fn two_workers() -> Bifurcation {
        crate::mlx5::test_plan::two_workers(ADDR, 32768..=65535)
    }

    #[test]
    fn a_connection_rule_matches_its_ports_to_its_address_only() {
        let mark = crate::tcp::classify::conn_mark(7).unwrap();
        let rule = FlowRule::connection(SocketAddr::from((ADDR, 443)), 50000, mark, 1, 0);
        assert_eq!(rule.actions, [FlowAction::Mark(mark), FlowAction::Queue(1)]);
        assert!(rule.matches(ADDR, 50000, 443));
        assert!(!rule.matches(ADDR, 50001, 443));
        assert!(!rule.matches(ADDR, 50000, 444));
        assert!(!rule.matches(Ipv4Addr::new(10, 1, 0, 6), 50000, 443));
        assert!(!rule.matches(ADDR.to_ipv6_mapped(), 50000, 443));

        let v6: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let rule = FlowRule::connection(SocketAddr::from((v6, 443)), 50000, mark, 0, 2);
        assert_eq!(rule.pattern[1], FlowItem::Ipv6 { dst: Some(v6) });
        assert_eq!(rule.priority, 2);
        assert!(rule.matches(v6, 50000, 443));
        assert!(!rule.matches(ADDR, 50000, 443));
        assert!(!rule.matches("2001:db8::6".parse::<Ipv6Addr>().unwrap(), 50000, 443));
    }

    #[test]
    fn range_masks_cover_exactly_the_range() {
        // Deterministic sweep of awkward ranges, including the extremes.
        let cases = [
            (0, 0),
            (0, 65535),
            (1, 65535),
            (0, 65534),
            (1000, 1003),
            (1000, 1999),
            (32768, 49151),
            (49152, 65535),
            (12345, 23456),
            (65535, 65535),
            (7, 8),
        ];
        for (lo, hi) in cases {
            let masks = port_range_masks(lo..=hi);
            for port in 0..=u16::MAX {
                let hits = masks.iter().filter(|m| m.matches(port)).count();
                let inside = (lo..=hi).contains(&port);
                assert_eq!(
                    hits,
                    usize::from(inside),
                    "range {lo}..={hi}, port {port}, masks {masks:?}"
                );
            }
            for m in &masks {
                assert_eq!(m.value & !m.mask, 0, "value has no bits outside the mask");
            }
            // A prefix cover never needs more than 2 blocks per bit.
            assert!(masks.len() <= 32, "{lo}..={hi}: {} blocks", masks.len());
        }
    }

    #[test]
    fn aligned_ranges_take_one_rule() {
        assert_eq!(
            port_range_masks(0..=65535),
            vec![MaskedPort { value: 0, mask: 0 }]
        );
        assert_eq!(
            port_range_masks(32768..=49151),
            vec![MaskedPort {
                value: 32768,
                mask: 0xc000
            }]
        );
        assert_eq!(port_range_masks(6379..=6379), vec![MaskedPort::exact(6379)]);
        assert_eq!(
            MaskedPort {
                value: 32768,
                mask: 0xc000
            }
            .range(),
            32768..=49151
        );
        // 1000..=1999 needs several blocks: 1000/8, 1008/16, 1024/512, ...
        let blocks = port_range_masks(1000..=1999);
        assert_eq!(
            blocks.first(),
            Some(&MaskedPort {
                value: 1000,
                mask: 0xfff8
            })
        );
        assert!(blocks.len() > 1);
    }

    #[test]
    fn rules_steer_listeners_by_rss_and_replies_to_their_worker() {
        let plan = two_workers();
        let rules = plan.rules().unwrap();
        // 2 listen ports + one aligned block per worker.
        assert_eq!(rules.len(), 4);
        let listen = &rules[0];
        assert_eq!(
            listen.pattern,
            vec![
                FlowItem::Eth,
                FlowItem::Ipv4 { dst: Some(ADDR) },
                FlowItem::Tcp {
                    src: None,
                    dst: Some(MaskedPort::exact(6379))
                },
            ]
        );
        assert_eq!(
            listen.actions,
            vec![
                FlowAction::Mark(FlowMark::Listener { port: 6379 }.id()),
                FlowAction::Rss(vec![0, 1])
            ]
        );
        let w1 = &rules[3];
        assert_eq!(w1.queues(), &[1]);
        assert_eq!(
            FlowMark::decode(w1.mark().unwrap()),
            Some(FlowMark::Worker { queue: 1 })
        );
        assert_eq!(
            w1.pattern[2],
            FlowItem::Tcp {
                src: None,
                dst: Some(MaskedPort {
                    value: 49152,
                    mask: 0xc000
                })
            }
        );
        assert!(rules.iter().all(|r| r.group == 0 && r.priority == 0));
    }

    #[test]
    fn one_worker_gets_a_queue_action_not_rss() {
        let mut plan = two_workers();
        plan.workers.truncate(1);
        let rules = plan.rules().unwrap();
        assert_eq!(rules[0].actions[1], FlowAction::Queue(0));
    }

    #[test]
    fn rules_agree_with_software_classification_on_every_port() {
        let plan = two_workers();
        let rules = plan.rules().unwrap();
        let other = Ipv4Addr::new(10, 1, 0, 6);
        for port in 0..=u16::MAX {
            for addr in [ADDR, other] {
                let matching: Vec<&FlowRule> = rules
                    .iter()
                    .filter(|r| r.matches(addr, 1234, port))
                    .collect();
                assert!(matching.len() <= 1, "port {port}: rules overlap");
                let by_rule = matching
                    .first()
                    .and_then(|r| r.mark())
                    .and_then(FlowMark::decode);
                assert_eq!(by_rule, plan.classify(addr, port), "{addr}:{port}");
            }
        }
        // Everything else is the kernel's.
        assert_eq!(plan.classify(ADDR, 22), None);
        assert_eq!(plan.classify(other, 6379), None);
    }

    #[test]
    fn bad_plans_are_refused() {
        let mut p = two_workers();
        p.addresses.clear();
        assert_eq!(p.rules(), Err(BifurcationError::NoAddresses));
        let mut p = two_workers();
        p.workers.clear();
        assert_eq!(p.rules(), Err(BifurcationError::NoWorkers));
        let mut p = two_workers();
        p.workers[1].local_ports = 40000..=50000;
        assert_eq!(
            p.rules(),
            Err(BifurcationError::OverlappingRanges { a: 0, b: 1 })
        );
        let mut p = two_workers();
        p.listen_ports.push(40000);
        assert_eq!(
            p.rules(),
            Err(BifurcationError::ListenPortInRange {
                port: 40000,
                queue: 0
            })
        );
    }

    #[test]
    fn listing_a_key_twice_is_refused_naming_it() {
        let mut p = two_workers();
        p.addresses = vec![ADDR, Ipv4Addr::new(10, 1, 0, 6), ADDR];
        let err = p.rules().unwrap_err();
        assert_eq!(err, BifurcationError::DuplicateAddress(ADDR));
        assert_eq!(err.to_string(), "address 10.1.0.5 is listed twice");

        let mut p = two_workers();
        p.listen_ports = vec![22, 6379, 8080, 6379, 22];
        let err = p.rules().unwrap_err();
        assert_eq!(
            err,
            BifurcationError::DuplicateListenPort(6379),
            "the first repetition met reading the plan"
        );
        assert_eq!(err.to_string(), "listening port 6379 is listed twice");

        let mut p = two_workers();
        p.workers[1].queue = 0;
        let err = p.rules().unwrap_err();
        assert_eq!(err, BifurcationError::DuplicateQueue(0));
        assert_eq!(err.to_string(), "two workers share receive queue 0");

        // Distinct keys are fine, and each yields its own rules.
        let mut p = two_workers();
        p.addresses.push(Ipv4Addr::new(10, 1, 0, 6));
        let per_address = two_workers().rules().unwrap().len();
        assert_eq!(p.rules().unwrap().len(), 2 * per_address);
    }

    #[test]
    fn marks_round_trip_and_foreign_marks_are_unknown() {
        for m in [
            FlowMark::Listener { port: 0 },
            FlowMark::Listener { port: 65535 },
            FlowMark::Worker { queue: 3 },
        ] {
            assert_eq!(FlowMark::decode(m.id()), Some(m));
        }
        assert_eq!(FlowMark::decode(7), None);
        assert_eq!(FlowMark::decode(3 << 16), None);
        assert!(
            FlowMark::Worker { queue: u16::MAX }.id() < 0xfffff0,
            "fits mlx5 marks"
        );
    }

    #[test]
    fn split_ranges_are_disjoint_and_cover() {
        let r = split_port_range(10000..=10009, 3);
        assert_eq!(r, vec![10000..=10002, 10003..=10005, 10006..=10009]);
        assert!(
            split_port_range(5..=6, 3).is_empty(),
            "fewer ports than workers"
        );
        assert!(split_port_range(5..=6, 0).is_empty());
    }
}
