//! The neighbor cache shared by ARP and NDP: which link-layer address each
//! on-link IP address is at, whether that is still known to be true, and the
//! packets waiting for an answer.
//!
//! One [`NeighborCache`] type serves both protocols, generic over the
//! address ([`Ipv4Addr`] for ARP, [`Ipv6Addr`] for NDP) rather than keyed by
//! an enum of both: an IPv4 key stays 4 bytes (twice as many buckets per
//! cache line as a 17-byte enum), ARP cannot insert an IPv6 address by
//! mistake, and each protocol's lookup compiles to a compare of its own key
//! with no discriminant test. The state machine, timings and hold queue are
//! the same code for both (RFC 4861 §7.3 and appendix C, applied to ARP too,
//! as Linux does).
//!
//! - [`NeighborCache`]: hashed, fixed capacity, states and ages, hold queue.
//! - [`NeighborConfig`]: capacity, hold bounds and the RFC's timings.
//! - [`Action`]: what the cache asks its caller to do (solicit, send a
//!   released packet, drop one with an error for its sender).
//!
//! See doc/internals/neighbors.md for the states and what the egress path
//! calls.

mod cache;
mod deadlines;
mod hold;
mod index;

use core::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use tpa::wire::MacAddr;

pub use cache::{Neighbor, NeighborCache, QuickTicket};

/// One second, in nanoseconds.
const SECOND_NS: u64 = 1_000_000_000;

/// An IP address the cache can be keyed by.
pub trait NeighborAddr: Copy + Eq + fmt::Debug {
    /// A 64-bit hash of the address keyed by `seed`; the index uses its top
    /// bits.
    fn hash_with(self, seed: u64) -> u64;
}

/// Multiplier of the hash (2^64 divided by the golden ratio).
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn mix(x: u64, seed: u64) -> u64 {
    let x = (x ^ seed).wrapping_mul(GOLDEN);
    (x ^ (x >> 29)).wrapping_mul(GOLDEN)
}

impl NeighborAddr for Ipv4Addr {
    #[inline]
    fn hash_with(self, seed: u64) -> u64 {
        mix(u64::from(u32::from(self)), seed)
    }
}

impl NeighborAddr for Ipv6Addr {
    #[inline]
    fn hash_with(self, seed: u64) -> u64 {
        let x = u128::from(self);
        mix(((x >> 64) as u64).wrapping_mul(GOLDEN) ^ x as u64, seed)
    }
}

/// The reachability of a neighbor (RFC 4861 §7.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighborState {
    /// Resolution in progress: a solicitation was sent, no answer yet;
    /// packets wait in the hold queue.
    Incomplete,
    /// Confirmed within the last ReachableTime.
    Reachable,
    /// Its address is known but not confirmed lately; usable, and checked
    /// once a packet is sent to it.
    Stale,
    /// A packet was sent to a stale neighbor; waiting
    /// DELAY_FIRST_PROBE_TIME for an upper layer to confirm before probing.
    Delay,
    /// Unicast solicitations sent every RetransTimer until it answers or
    /// MAX_UNICAST_SOLICIT are unanswered.
    Probe,
}

impl NeighborState {
    /// The state's name as `ip neigh` prints it.
    pub fn name(self) -> &'static str {
        match self {
            NeighborState::Incomplete => "INCOMPLETE",
            NeighborState::Reachable => "REACHABLE",
            NeighborState::Stale => "STALE",
            NeighborState::Delay => "DELAY",
            NeighborState::Probe => "PROBE",
        }
    }
}

impl fmt::Display for NeighborState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Sizes and timings of a [`NeighborCache`]. The timings default to RFC
/// 4861's constants (§10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborConfig {
    /// Most neighbors remembered (at least 1); a new one evicts an old one
    /// when full.
    pub capacity: usize,
    /// Most packets held for one unresolved neighbor (at least 1).
    pub hold_per_neighbor: usize,
    /// Most packets held for all unresolved neighbors together.
    pub hold_total: usize,
    /// What a full hold queue does with a new packet: drop its oldest to
    /// make room (`true`, RFC 4861 §7.2.2's SHOULD, Linux's behaviour), or
    /// refuse the new one (`false`: the sender is told at once, and packets
    /// already held keep their order; the egress path's choice).
    pub replace_oldest_held: bool,
    /// BaseReachableTime (30 s).
    pub base_reachable_time_ns: u64,
    /// The range ReachableTime is drawn from, as thousandths of
    /// BaseReachableTime: MIN_RANDOM_FACTOR 0.5 and MAX_RANDOM_FACTOR 1.5
    /// are `(500, 1500)`.
    pub random_factor_permille: (u32, u32),
    /// RetransTimer between solicitations (1 s).
    pub retrans_timer_ns: u64,
    /// DELAY_FIRST_PROBE_TIME (5 s).
    pub delay_first_probe_ns: u64,
    /// MAX_MULTICAST_SOLICIT (3): solicitations of an incomplete entry.
    pub max_multicast_solicit: u8,
    /// MAX_UNICAST_SOLICIT (3): probes of an entry in PROBE.
    pub max_unicast_solicit: u8,
    /// How long a REACHABLE entry stays so once packets are sent to it with
    /// no reachability confirmation (an upper layer's
    /// [`confirm`](NeighborCache::confirm), a solicited advertisement)
    /// since: then it counts as STALE, and its next use probes it (DELAY,
    /// PROBE). Not in RFC 4861, whose REACHABLE lasts ReachableTime
    /// whatever the traffic: a wrong address (a bit flipped in an ARP
    /// reply, which has no checksum) would black-hole its neighbor for up
    /// to 1.5 × BaseReachableTime. With this, unconfirmed use is found out
    /// within this + DELAY_FIRST_PROBE_TIME + MAX_UNICAST_SOLICIT ×
    /// RetransTimer (13 s by default), then resolved afresh; an entry in
    /// use that nothing confirms costs a unicast probe every such cycle.
    /// 5 s.
    pub unconfirmed_use_ns: u64,
    /// Seed of the hash and of ReachableTime's random factor. The default
    /// is random per configuration; set it for repeatable tests.
    pub seed: u64,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            capacity: 64,
            hold_per_neighbor: 16,
            hold_total: 256,
            replace_oldest_held: true,
            base_reachable_time_ns: 30 * SECOND_NS,
            random_factor_permille: (500, 1500),
            retrans_timer_ns: SECOND_NS,
            delay_first_probe_ns: 5 * SECOND_NS,
            max_multicast_solicit: 3,
            max_unicast_solicit: 3,
            unconfirmed_use_ns: 5 * SECOND_NS,
            seed: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
        }
    }
}

impl NeighborConfig {
    /// The default configuration with room for `capacity` neighbors.
    pub fn with_capacity(capacity: usize) -> Self {
        NeighborConfig {
            capacity,
            ..NeighborConfig::default()
        }
    }
}

/// How a neighbor's address was heard, which decides what the cache
/// believes (RFC 4861 §7.2.3 and §7.2.5, appendix C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// It asked us: a neighbor solicitation with a source link-layer
    /// address, or an ARP request for one of our addresses. Creates a STALE
    /// entry (or updates one to STALE when the address changed).
    Solicitation,
    /// It told us: a neighbor advertisement, or an ARP reply. Never creates
    /// an entry; `solicited` (a reply to our solicitation) confirms
    /// reachability, `override_entry` lets it replace a different cached
    /// address.
    Advertisement {
        /// The S flag; an ARP reply unicast to us counts as solicited.
        solicited: bool,
        /// The O flag; ARP always overrides.
        override_entry: bool,
    },
}

/// Why a packet handed to the cache was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveError {
    /// The neighbor did not answer MAX_MULTICAST_SOLICIT solicitations (the
    /// sender's EHOSTUNREACH).
    Unreachable,
    /// Its hold queue was full and a newer packet took its place, or every
    /// held slot was taken (the sender's ENOBUFS).
    QueueFull,
    /// Every entry of the cache was resolving: no room for another
    /// neighbor (the sender's ENOBUFS).
    CacheFull,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResolveError::Unreachable => "neighbor unreachable: no answer to its solicitations",
            ResolveError::QueueFull => "neighbor hold queue full",
            ResolveError::CacheFull => "neighbor cache full of unresolved entries",
        })
    }
}

impl std::error::Error for ResolveError {}

impl From<ResolveError> for io::Error {
    /// `Unreachable` is `HostUnreachable` (EHOSTUNREACH); the others are
    /// `OutOfMemory` (ENOBUFS: no room to hold the packet).
    fn from(e: ResolveError) -> io::Error {
        let kind = match e {
            ResolveError::Unreachable => io::ErrorKind::HostUnreachable,
            ResolveError::QueueFull | ResolveError::CacheFull => io::ErrorKind::OutOfMemory,
        };
        io::Error::new(kind, e)
    }
}

/// What the cache asks its caller (the ARP or NDP stage, later the egress
/// path) to do. The cache builds no frames.
#[derive(Debug)]
pub enum Action<A, B> {
    /// Send a solicitation for `target`: to the broadcast address (ARP) or
    /// its solicited-node group (NDP) when `unicast` is `None`, to that MAC
    /// address when probing.
    Solicit {
        /// The address to resolve.
        target: A,
        /// The cached address to probe, or `None` to ask everyone.
        unicast: Option<MacAddr>,
    },
    /// A held packet whose neighbor is now known: set its destination to
    /// `mac` and transmit it.
    Send {
        /// The packet, as it was handed to the cache.
        packet: B,
        /// The neighbor's link-layer address.
        mac: MacAddr,
    },
    /// A held packet that will not be sent, already counted as dropped:
    /// tell its sender `error`, then drop it.
    Drop {
        /// The packet, as it was handed to the cache.
        packet: B,
        /// The neighbor it was for.
        target: A,
        /// Why.
        error: ResolveError,
    },
}

/// What the cache did with a packet handed to
/// [`resolve`](NeighborCache::resolve).
#[derive(Debug)]
pub enum Resolved<B> {
    /// The neighbor is known: send the packet to `mac` now.
    Ready(MacAddr, B),
    /// Held until the neighbor answers (then an [`Action::Send`]) or
    /// resolution fails (then an [`Action::Drop`]).
    Held,
    /// Not held (counted in `refused`): give `error` to the sender.
    Refused(B, ResolveError),
}

/// The cache's counters, for `tpactl neigh`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeighborCounters {
    /// Lookups that found a usable link-layer address.
    pub hits: u64,
    /// Lookups that did not (no entry, or still INCOMPLETE).
    pub misses: u64,
    /// Solicitations asked for (multicast and unicast).
    pub solicitations: u64,
    /// Packets put in a hold queue.
    pub held: u64,
    /// Held packets sent once their neighbor answered.
    pub released: u64,
    /// Held packets dropped because the neighbor never answered.
    pub dropped_unreachable: u64,
    /// Held packets displaced by newer ones (hold queue full).
    pub dropped_overflow: u64,
    /// Packets not held at all (no slot, or no entry to hold them on).
    pub refused: u64,
    /// Entries created.
    pub created: u64,
    /// Entries evicted to make room for a new neighbor.
    pub evictions: u64,
    /// Entries given up after unanswered solicitations or probes.
    pub failed: u64,
    /// Reachability confirmations from upper layers.
    pub confirmations: u64,
}

impl fmt::Display for NeighborCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hits {} misses {} solicitations {} held {} released {} dropped-unreachable {} \
             dropped-overflow {} refused {} created {} evictions {} failed {} confirmations {}",
            self.hits,
            self.misses,
            self.solicitations,
            self.held,
            self.released,
            self.dropped_unreachable,
            self.dropped_overflow,
            self.refused,
            self.created,
            self.evictions,
            self.failed,
            self.confirmations
        )
    }
}

/// Addresses an Ethernet frame held by the cache: writes `mac` as its
/// destination (the first six bytes). `false` if the frame is shorter.
#[inline]
pub fn set_ethernet_destination(frame: &mut [u8], mac: MacAddr) -> bool {
    match frame.get_mut(..6) {
        Some(dst) => {
            dst.copy_from_slice(&mac.octets());
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests;
