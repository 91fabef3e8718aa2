//! The output path's part of the pipeline state: the interface, routes,
//! both neighbor caches, the IPv4 ID counter, the announce policy and the
//! counters.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tpa::app::SocketId;
use tpa::port::SharedHost;

use super::route::{NextHop, Routes};
use crate::iface::Interface;
use crate::neighbor::{NeighborCache, NeighborConfig};

/// The stamps of egress paths: every one a number of its own (0 is no
/// path's).
static STAMPS: AtomicU64 = AtomicU64::new(1);

/// A stamp no other egress path (or earlier state of this one) has.
fn next_stamp() -> u64 {
    STAMPS.fetch_add(1, Ordering::Relaxed)
}

/// Neighbors each cache of an [`Egress`] remembers by default.
pub const DEFAULT_NEIGHBORS: usize = 64;

/// A frame waiting in a neighbor's hold queue: complete but for its
/// Ethernet destination, with the socket that sent it (told
/// EHOSTUNREACH when the neighbor never answers).
#[derive(Debug)]
pub struct Held<B> {
    /// The Ethernet frame; its destination is written when the neighbor
    /// answers.
    pub frame: B,
    /// The sending socket, if any.
    pub owner: Option<SocketId>,
}

/// What the IP output writes by default and how large a packet may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressConfig {
    /// The IPv4 TTL of packets whose [`IpSend`](super::IpSend) gives none.
    pub ttl: u8,
    /// The IPv6 hop limit of packets whose `IpSend` gives none.
    pub hop_limit: u8,
    /// Largest IP packet sent; the port's MTU when `None` (the smaller of
    /// both otherwise).
    pub mtu: Option<u16>,
    /// Sizes and timings of both neighbor caches. The egress path refuses
    /// a packet for a neighbor whose hold queue is full (the sender gets
    /// ENOBUFS) rather than dropping the oldest: set by [`Egress::new`]
    /// and [`Egress::with_config`].
    pub neighbors: NeighborConfig,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            ttl: 64,
            hop_limit: 64,
            mtu: None,
            neighbors: NeighborConfig::with_capacity(DEFAULT_NEIGHBORS),
        }
    }
}

/// What the output path did, for `tpactl` and tests. Neighbor-level counts
/// (hits, misses, held, released) are the caches' own
/// ([`NeighborCache::counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressCounters {
    /// Packets queued for transmission at once (neighbor known, or a
    /// broadcast or multicast destination).
    pub sent: u64,
    /// Packets put in a hold queue, waiting for their neighbor.
    pub held: u64,
    /// Held packets sent once their neighbor answered.
    pub released: u64,
    /// Held packets dropped because their neighbor never answered.
    pub unreachable: u64,
    /// EHOSTUNREACH events raised for the owners of those.
    pub owner_errors: u64,
    /// Refused: no route to the destination (ENETUNREACH).
    pub no_route: u64,
    /// Refused: larger than the MTU; fragmentation is not done (EMSGSIZE).
    pub too_big: u64,
    /// Refused: the neighbor's hold queue, or the cache, was full (ENOBUFS).
    pub hold_full: u64,
    /// Refused: too little headroom in front of the payload for the IP and
    /// Ethernet headers (ENOBUFS).
    pub no_headroom: u64,
    /// Refused: the transmit queue was full and the port took nothing
    /// when it was flushed (ENOBUFS).
    pub tx_full: u64,
    /// Refused: the source is not one of our addresses, or its family
    /// differs from the destination's (EADDRNOTAVAIL, EINVAL).
    pub bad_source: u64,
    /// ARP requests sent (broadcast, and unicast probes).
    pub arp_requests: u64,
    /// Neighbor solicitations sent (multicast, and unicast probes).
    pub solicitations: u64,
    /// Gratuitous ARPs and unsolicited neighbor advertisements sent.
    pub announcements: u64,
    /// Frames (solicitations, announcements) not built for want of a
    /// buffer.
    pub alloc_failed: u64,
}

impl fmt::Display for EgressCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {} held {} released {} unreachable {} owner-errors {} no-route {} too-big {} \
             hold-full {} no-headroom {} tx-full {} bad-source {} arp-requests {} \
             solicitations {} announcements {} alloc-failed {}",
            self.sent,
            self.held,
            self.released,
            self.unreachable,
            self.owner_errors,
            self.no_route,
            self.too_big,
            self.hold_full,
            self.no_headroom,
            self.tx_full,
            self.bad_source,
            self.arp_requests,
            self.solicitations,
            self.announcements,
            self.alloc_failed
        )
    }
}

/// The output path's part of the pipeline state: the interface (our MAC
/// and addresses), routes (on-link prefixes from the interface and an
/// optional default gateway per family), the IPv4 and IPv6 neighbor
/// caches, the IPv4 ID counter, the announce policy and the counters.
///
/// [`send_ip`](super::send_ip) uses it to send; the ARP and NDP stages
/// ([`ArpResponder`](crate::arp::ArpResponder),
/// [`NdpResponder`](crate::ndp::NdpResponder)) learn into its caches and
/// answer for its addresses. Its announcements and its caches' timers are
/// its own work once per loop iteration ([`Polled`](tpa::state::Polled)):
/// the state's field is marked `#[polled]`, which the ARP and NDP stages
/// require.
///
/// ```
/// use tpa::buf::PoolBuf;
/// use tpa::wire::MacAddr;
/// use tpa_stages::egress::Egress;
/// use tpa_stages::iface::Interface;
///
/// let iface = Interface::new(MacAddr([2, 0, 0, 0, 0, 1]))
///     .with_ipv4("192.0.2.1/24".parse().unwrap());
/// let egress: Egress<PoolBuf> = Egress::new(iface)
///     .with_gateway("192.0.2.254".parse().unwrap())
///     .announcing(true);
/// assert_eq!(
///     egress.source_for("203.0.113.9".parse().unwrap()),
///     Some("192.0.2.1".parse().unwrap())
/// );
/// ```
#[derive(Debug)]
pub struct Egress<B> {
    pub(super) iface: Interface,
    pub(super) routes: Routes,
    pub(super) config: EgressConfig,
    pub(super) v4: NeighborCache<Ipv4Addr, Held<B>>,
    pub(super) v6: NeighborCache<Ipv6Addr, Held<B>>,
    pub(super) next_ip_id: u16,
    pub(super) announce_v4: bool,
    pub(super) announce_v6: bool,
    /// The loop's one test of whether the part has work: nothing is owed
    /// before this time (the pipeline's nanoseconds). 0 while an
    /// announcement is owed (or after the caches were lent out writable);
    /// else at most the earliest of both caches' deadlines (`u64::MAX`
    /// with none), kept where deadlines are set and made exact again
    /// when work is done.
    pub(super) wake_ns: u64,
    pub(super) counters: EgressCounters,
    /// Beside the host's kernel: where neighbours are learnt from and
    /// resolved (None: tpa's own ARP and ND).
    pub(super) shared_host: Option<Arc<dyn SharedHost>>,
    /// This egress path's stamp as it stands: the [`PathV4`](super::PathV4)s
    /// it built are current while it holds (a new gateway takes another).
    pub(super) stamp: u64,
}

impl<B> Egress<B> {
    /// The output path of `iface`, with the default configuration, no
    /// gateway and no announcement.
    pub fn new(iface: Interface) -> Self {
        Self::build(iface, EgressConfig::default())
    }

    fn build(iface: Interface, mut config: EgressConfig) -> Self {
        config.neighbors.replace_oldest_held = false;
        let seed = config.neighbors.seed;
        Egress {
            routes: Routes::default(),
            v4: NeighborCache::new(config.neighbors.clone()),
            v6: NeighborCache::new(config.neighbors.clone()),
            // A start that differs per configuration, as IDs should not be
            // predictable from one run to the next (RFC 6864 §5).
            next_ip_id: (seed >> 48) as u16,
            announce_v4: false,
            announce_v6: false,
            wake_ns: u64::MAX,
            counters: EgressCounters::default(),
            shared_host: None,
            stamp: next_stamp(),
            iface,
            config,
        }
    }

    /// Beside the host's kernel (ARP and ND are the kernel's): a neighbour
    /// missing from the caches is looked up in the kernel's table, and one
    /// the kernel does not know either is resolved by the kernel (counted
    /// as an ARP request or solicitation) and learnt from its table when
    /// the cache's retry timer fires.
    pub fn set_shared_host(&mut self, host: Arc<dyn SharedHost>) {
        self.shared_host = Some(host);
    }

    /// The same with `config` (the neighbor caches are made anew, empty).
    pub fn with_config(self, config: EgressConfig) -> Self {
        let mut egress = Self::build(self.iface, config);
        egress.routes = self.routes;
        egress.announce_v4 = self.announce_v4;
        egress.announce_v6 = self.announce_v6;
        egress.reset_wake();
        egress.shared_host = self.shared_host;
        egress
    }

    /// Sends packets to destinations off every on-link prefix of the
    /// interface through `gateway`, the default route of its family
    /// (replacing an earlier one).
    pub fn with_gateway(mut self, gateway: IpAddr) -> Self {
        self.routes.set_gateway(gateway);
        self.stamp = next_stamp();
        self
    }

    /// Announces our addresses when the worker starts, when `on`: a
    /// gratuitous ARP per IPv4 address and an unsolicited neighbor
    /// advertisement per IPv6 address, sent by the part's first poll (its
    /// `#[polled]` field's, see [`announce`](Self::announce)), so that
    /// neighbors learn or correct our MAC address before we speak. The
    /// policy of a port whose addresses are its own; a port that shares
    /// the host's addresses leaves ARP/ND to the kernel and keeps it off
    /// (the default).
    pub fn announcing(mut self, on: bool) -> Self {
        self.set_announcing(on);
        self
    }

    /// Sets the announcement policy (see [`announcing`](Self::announcing));
    /// `true` announces again at the part's next poll.
    pub fn set_announcing(&mut self, on: bool) {
        self.announce_v4 = on;
        self.announce_v6 = on;
        if on {
            self.wake_ns = 0;
        }
    }

    /// The interface: our MAC address and IP addresses.
    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// The configuration.
    pub fn config(&self) -> &EgressConfig {
        &self.config
    }

    /// The default gateway of IPv4, if any.
    pub fn gateway_v4(&self) -> Option<Ipv4Addr> {
        self.routes.gateway_v4
    }

    /// The default gateway of IPv6, if any.
    pub fn gateway_v6(&self) -> Option<Ipv6Addr> {
        self.routes.gateway_v6
    }

    /// Our address to send to `dst` from: one on the prefix of the next
    /// hop, else the first of `dst`'s family (a link-local one for a
    /// link-local IPv6 destination); `None` when we have none of that
    /// family.
    pub fn source_for(&self, dst: IpAddr) -> Option<IpAddr> {
        self.routes.source_for(&self.iface, dst)
    }

    /// [`source_for`](Self::source_for), remembering the route (the source
    /// and the next hop) of the last destination of each family, so the
    /// [`send_ip`](super::send_ip) to the same destination that follows,
    /// and the next sends to it, find it without routing again. What a
    /// socket's send asks.
    #[inline]
    pub fn route_source_for(&mut self, dst: IpAddr) -> Option<IpAddr> {
        match dst {
            IpAddr::V4(dst) => self.routes.route_v4(&self.iface, dst).src.map(IpAddr::V4),
            IpAddr::V6(dst) => self.routes.route_v6(&self.iface, dst).src.map(IpAddr::V6),
        }
    }

    /// Whether a packet to `dst` has a next hop (on-link, a group, or the
    /// family's gateway), as [`send_ip`](super::send_ip) would find;
    /// remembered as [`route_source_for`](Self::route_source_for) does.
    /// What a TCP connect asks before it sends its SYN.
    #[inline]
    pub fn has_route(&mut self, dst: IpAddr) -> bool {
        match dst {
            IpAddr::V4(dst) => self.routes.route_v4(&self.iface, dst).hop.is_some(),
            IpAddr::V6(dst) => self.routes.route_v6(&self.iface, dst).hop.is_some(),
        }
    }

    /// The counters.
    pub fn counters(&self) -> &EgressCounters {
        &self.counters
    }

    /// The IPv4 neighbor cache (ARP's).
    pub fn neighbors_v4(&self) -> &NeighborCache<Ipv4Addr, Held<B>> {
        &self.v4
    }

    /// The IPv4 neighbor cache, writable.
    pub fn neighbors_v4_mut(&mut self) -> &mut NeighborCache<Ipv4Addr, Held<B>> {
        // Whatever the caller sets, the next poll looks.
        self.wake_ns = 0;
        &mut self.v4
    }

    /// The IPv6 neighbor cache (NDP's).
    pub fn neighbors_v6(&self) -> &NeighborCache<Ipv6Addr, Held<B>> {
        &self.v6
    }

    /// The IPv6 neighbor cache, writable.
    pub fn neighbors_v6_mut(&mut self) -> &mut NeighborCache<Ipv6Addr, Held<B>> {
        // Whatever the caller sets, the next poll looks.
        self.wake_ns = 0;
        &mut self.v6
    }

    /// An upper layer saw forward progress with `neighbor` (a TCP ACK of
    /// new data): its entry is REACHABLE for another ReachableTime (RFC
    /// 4861 §7.3.1). Returns whether it was known.
    pub fn confirm(&mut self, neighbor: IpAddr, now_ns: u64) -> bool {
        match neighbor {
            IpAddr::V4(ip) => self.v4.confirm(ip, now_ns),
            IpAddr::V6(ip) => self.v6.confirm(ip, now_ns),
        }
    }

    /// An upper layer saw forward progress with destination `dst` (a TCP
    /// segment that acknowledged new data or brought new in-order data):
    /// the neighbor packets to `dst` go to (`dst` itself on-link, else the
    /// gateway) is confirmed, as [`confirm`](Self::confirm) does, so a
    /// flow making progress sends its neighbor no probe. Returns whether
    /// that neighbor was known.
    pub fn confirm_next_hop(&mut self, dst: IpAddr, now_ns: u64) -> bool {
        match dst {
            IpAddr::V4(dst) => match self.routes.route_v4(&self.iface, dst).hop {
                Some(NextHop::Neighbor(ip)) => self.v4.confirm(ip, now_ns),
                _ => false,
            },
            IpAddr::V6(dst) => match self.routes.route_v6(&self.iface, dst).hop {
                Some(NextHop::Neighbor(ip)) => self.v6.confirm(ip, now_ns),
                _ => false,
            },
        }
    }

    /// When either cache next needs its timers run.
    pub fn next_deadline(&self) -> Option<u64> {
        tpa::stage::earliest(self.v4.next_deadline(), self.v6.next_deadline())
    }

    /// `wake_ns` made exact, once the work it stood for is done: the
    /// earliest cache deadline, or 0 while an announcement is owed.
    pub(super) fn reset_wake(&mut self) {
        self.wake_ns = if self.announce_v4 || self.announce_v6 {
            0
        } else {
            self.next_deadline().unwrap_or(u64::MAX)
        };
    }

    /// Checks `wake_ns` (tests and debug builds): never after a cache's
    /// earliest deadline, and 0 while an announcement is owed.
    #[inline(always)]
    pub(super) fn check_wake(&self) {
        #[cfg(any(test, debug_assertions))]
        {
            assert!(
                self.next_deadline().is_none_or(|at| self.wake_ns <= at),
                "wake_ns after a neighbor deadline"
            );
            assert!(
                !(self.announce_v4 || self.announce_v6) || self.wake_ns == 0,
                "wake_ns set while an announcement is owed"
            );
        }
    }

    /// The IPv4 ID of the next packet.
    #[inline]
    pub(super) fn take_ip_id(&mut self) -> u16 {
        let id = self.next_ip_id;
        self.next_ip_id = id.wrapping_add(1);
        id
    }
}
