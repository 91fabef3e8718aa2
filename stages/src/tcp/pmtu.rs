//! Path MTU per destination (RFC 1191 §5, RFC 8201 §5): what ICMP
//! taught about a host, kept for the connections opened to it later, and
//! forgotten after [`PATH_MTU_EXPIRY_NS`] (Linux's `mtu_expires`), which
//! is how a larger path MTU is ever found again.

use std::collections::HashMap;
use std::net::IpAddr;

/// The smallest IPv4 path MTU believed: 576 bytes, an MSS of 536 (RFC
/// 9293 §3.7.1's default; Linux's `min_pmtu` is 552). A report below it
/// is taken as this.
pub const IPV4_MIN_PATH_MTU: u16 = 576;
/// The smallest IPv6 path MTU believed: the minimum link MTU, 1280
/// (RFC 8201 §4), an MSS of 1220.
pub const IPV6_MIN_PATH_MTU: u16 = 1280;
/// How long a learnt path MTU holds: 10 minutes (RFC 1191 §6.3 suggests
/// 10; Linux's `mtu_expires` is 600 s).
pub const PATH_MTU_EXPIRY_NS: u64 = 600_000_000_000;
/// Destinations remembered at once; the oldest goes when full.
pub const PATH_MTU_ENTRIES: usize = 256;

/// RFC 1191 §7's plateaus, for a "fragmentation needed" from a router
/// that reports no MTU (a next-hop MTU field of 0, RFC 792 routers).
const PLATEAUS: [u16; 10] = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/// The path MTU to believe from a report of `mtu` about a packet of
/// `sent` bytes: the report floored at the family's minimum; a report
/// under 68 (no MTU given) is the plateau below `sent` (RFC 1191 §5).
///
/// ```
/// use tpa_stages::tcp::pmtu::believed_mtu;
/// assert_eq!(believed_mtu(1280, 1500, false), 1280);
/// assert_eq!(believed_mtu(0, 1500, false), 1492);
/// assert_eq!(believed_mtu(300, 1500, false), 576);
/// assert_eq!(believed_mtu(1000, 1500, true), 1280);
/// ```
pub fn believed_mtu(mtu: u32, sent: u16, ipv6: bool) -> u16 {
    let reported = if !ipv6 && mtu < 68 {
        PLATEAUS.into_iter().find(|&p| p < sent).unwrap_or(68)
    } else {
        mtu.min(u32::from(u16::MAX)) as u16
    };
    let floor = if ipv6 {
        IPV6_MIN_PATH_MTU
    } else {
        IPV4_MIN_PATH_MTU
    };
    reported.max(floor)
}

/// The MSS a path MTU leaves: less the IP header (20 or 40 bytes, ours
/// carry no options) and the TCP header.
///
/// ```
/// use tpa_stages::tcp::pmtu::mss_for_mtu;
/// assert_eq!(mss_for_mtu(1280, false), 1240);
/// assert_eq!(mss_for_mtu(1280, true), 1220);
/// ```
pub fn mss_for_mtu(mtu: u16, ipv6: bool) -> u16 {
    let ip = if ipv6 { 40 } else { 20 };
    mtu.saturating_sub(ip + 20)
}

/// The path MTUs learnt, per destination address, with when.
#[derive(Debug, Clone, Default)]
pub struct PathMtuCache {
    entries: HashMap<IpAddr, (u16, u64)>,
}

impl PathMtuCache {
    /// The path MTU to `dst` learnt less than [`PATH_MTU_EXPIRY_NS`] ago.
    ///
    /// ```
    /// use tpa_stages::tcp::pmtu::{PathMtuCache, PATH_MTU_EXPIRY_NS};
    /// let mut cache = PathMtuCache::default();
    /// let host = "2001:db8::1".parse().unwrap();
    /// cache.note(host, 1400, 10);
    /// cache.note(host, 1450, 20); // never raised by a report
    /// assert_eq!(cache.get(host, 30), Some(1400));
    /// assert_eq!(cache.get(host, 10 + PATH_MTU_EXPIRY_NS), None);
    /// ```
    pub fn get(&self, dst: IpAddr, now_ns: u64) -> Option<u16> {
        let &(mtu, at) = self.entries.get(&dst)?;
        (now_ns.saturating_sub(at) < PATH_MTU_EXPIRY_NS).then_some(mtu)
    }

    /// Learns that the path to `dst` carries `mtu` bytes (kept when lower
    /// than what is known, or what is known has expired); when full,
    /// expired entries go, then the oldest.
    pub fn note(&mut self, dst: IpAddr, mtu: u16, now_ns: u64) {
        if self.get(dst, now_ns).is_some_and(|known| known <= mtu) {
            return;
        }
        if self.entries.len() >= PATH_MTU_ENTRIES && !self.entries.contains_key(&dst) {
            self.entries
                .retain(|_, &mut (_, at)| now_ns.saturating_sub(at) < PATH_MTU_EXPIRY_NS);
            if self.entries.len() >= PATH_MTU_ENTRIES {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(ip, &(_, at))| (at, **ip))
                    .map(|(&ip, _)| ip);
                if let Some(ip) = oldest {
                    self.entries.remove(&ip);
                }
            }
        }
        self.entries.insert(dst, (mtu, now_ns));
    }

    /// Destinations remembered (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was learnt.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_bounded_and_evicts_the_oldest() {
        let mut cache = PathMtuCache::default();
        let host = |i: usize| IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
        for i in 0..PATH_MTU_ENTRIES {
            cache.note(host(i), 1400, i as u64);
        }
        cache.note(host(PATH_MTU_ENTRIES), 1300, 1_000);
        assert_eq!(cache.len(), PATH_MTU_ENTRIES);
        assert_eq!(cache.get(host(0), 1_000), None, "the oldest went");
        assert_eq!(cache.get(host(1), 1_000), Some(1400));
        assert_eq!(cache.get(host(PATH_MTU_ENTRIES), 1_000), Some(1300));
        // Once everything expired, a new entry clears them out.
        let later = PATH_MTU_EXPIRY_NS + 2_000;
        cache.note(host(9999), 1280, later);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn reports_are_floored_and_plateaus_fill_in_a_missing_mtu() {
        assert_eq!(believed_mtu(0, 1500, false), 1492);
        assert_eq!(believed_mtu(0, 1006, false), 576, "508, floored");
        assert_eq!(believed_mtu(0, 9000, false), 8166);
        assert_eq!(believed_mtu(100_000, 1500, true), u16::MAX);
        assert_eq!(believed_mtu(1279, 1500, true), 1280);
        assert_eq!(mss_for_mtu(IPV4_MIN_PATH_MTU, false), 536);
        assert_eq!(mss_for_mtu(IPV6_MIN_PATH_MTU, true), 1220);
    }
}
