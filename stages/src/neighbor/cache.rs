//! The cache itself: entries in a fixed slab, found through the hash index,
//! moved between states by what is heard, sent and confirmed, and by time.

use tpa::wire::MacAddr;

use super::deadlines::Deadlines;
use super::hold::{HoldList, HoldSlab, Pushed};
use super::index::Index;
use super::{
    Action, Heard, NeighborAddr, NeighborConfig, NeighborCounters, NeighborState, ResolveError,
    Resolved,
};

/// How often ReachableTime is drawn again (RFC 4861 §6.3.4: "at least
/// every few hours").
const REDRAW_REACHABLE_NS: u64 = 2 * 3600 * 1_000_000_000;

#[derive(Debug, Clone)]
struct Entry<A> {
    ip: A,
    /// Meaningless while INCOMPLETE.
    mac: MacAddr,
    state: NeighborState,
    /// REACHABLE until then; read lazily (see [`NeighborCache::lookup`]).
    reachable_until_ns: u64,
    /// When its state or address last changed.
    updated_ns: u64,
    /// Solicitations sent in the current INCOMPLETE or PROBE phase.
    solicits: u8,
    /// Used since the eviction hand last passed (the clock's second chance).
    used: bool,
    /// Sent to since its reachability was last confirmed: its REACHABLE
    /// time was cut to [`NeighborConfig::unconfirmed_use_ns`] after that
    /// first use.
    watched: bool,
    held: HoldList,
}

/// A neighbor as the cache knows it, for display and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor<A> {
    /// Its IP address.
    pub ip: A,
    /// Its link-layer address; `None` while INCOMPLETE.
    pub mac: Option<MacAddr>,
    /// Its state as last recorded (a REACHABLE entry past its
    /// ReachableTime is STALE: see [`state_at`](Self::state_at)).
    pub state: NeighborState,
    /// When its state or address last changed, in pipeline nanoseconds.
    pub updated_ns: u64,
    /// Packets held for it.
    pub held: usize,
    reachable_until_ns: u64,
}

impl<A> Neighbor<A> {
    /// Its state at `now_ns`.
    pub fn state_at(&self, now_ns: u64) -> NeighborState {
        effective(self.state, self.reachable_until_ns, now_ns)
    }
}

#[inline]
fn effective(state: NeighborState, reachable_until_ns: u64, now_ns: u64) -> NeighborState {
    if state == NeighborState::Reachable && now_ns >= reachable_until_ns {
        NeighborState::Stale
    } else {
        state
    }
}

/// The neighbor cache of one protocol: addresses of type `A`
/// ([`Ipv4Addr`](std::net::Ipv4Addr) for ARP,
/// [`Ipv6Addr`](std::net::Ipv6Addr) for NDP), held packets of type `B`.
///
/// Everything is sized at construction ([`NeighborConfig`]): the entry
/// slab, the hash index, the deadline heap and the hold slab; nothing grows
/// afterwards. Time comes from the caller (`now_ns`, the pipeline's clock,
/// virtual or real); [`poll`](Self::poll) does what is due and
/// [`next_deadline`](Self::next_deadline) says when that is next.
///
/// ```
/// use std::net::Ipv4Addr;
/// use tpa::wire::MacAddr;
/// use tpa_stages::neighbor::{Action, Heard, NeighborCache, NeighborConfig, Resolved};
///
/// let mut cache: NeighborCache<Ipv4Addr, &str> = NeighborCache::new(NeighborConfig::default());
/// let gw = Ipv4Addr::new(192, 0, 2, 254);
/// let mut actions = Vec::new();
/// // Unknown: the packet waits, and the caller is asked to solicit.
/// assert!(matches!(cache.resolve(gw, "hello", 0, |a| actions.push(a)), Resolved::Held));
/// assert!(matches!(actions.pop(), Some(Action::Solicit { unicast: None, .. })));
/// // The reply arrives: the held packet comes back to be sent.
/// let mac = MacAddr([2, 0, 0, 0, 0, 0xfe]);
/// let solicited = Heard::Advertisement { solicited: true, override_entry: true };
/// cache.learn(gw, Some(mac), solicited, 1_000, |a| actions.push(a));
/// assert!(matches!(actions.pop(), Some(Action::Send { packet: "hello", mac: m }) if m == mac));
/// assert_eq!(cache.lookup(gw, 2_000), Some(mac));
/// ```
#[derive(Debug)]
pub struct NeighborCache<A, B> {
    config: NeighborConfig,
    entries: Box<[Option<Entry<A>>]>,
    free: Vec<u32>,
    index: Index<A>,
    deadlines: Deadlines,
    hold: HoldSlab<B>,
    /// The eviction clock's hand.
    hand: usize,
    reachable_time_ns: u64,
    reachable_drawn_ns: u64,
    rng: u64,
    counters: NeighborCounters,
    /// The slot [`lookup`](Self::lookup) last found: a sender sends to the
    /// same neighbor frame after frame, so the next lookup tries it first
    /// (its entry's address says whether it is still that neighbor's) and
    /// hashes only when it is not.
    last: u32,
    /// Taken again by every change of an entry (its state, address,
    /// times, `watched` and `used` flags, the slot `last`, an entry
    /// added or removed): a [`QuickTicket`] of this version vouches for
    /// its entry as it was. Never 0 (a ticket of nothing).
    version: u64,
}

/// What a sender keeps of a [`NeighborCache::lookup_quick_ticket`] hit:
/// while the cache has changed nothing since (its version) and the
/// entry's REACHABLE time runs, [`NeighborCache::lookup_ticketed`]
/// answers as [`lookup_quick`](NeighborCache::lookup_quick) would, hit
/// and all, without reading the entry. [`QuickTicket::default`] vouches
/// for nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuickTicket {
    version: u64,
    until_ns: u64,
}

impl<A: NeighborAddr, B> NeighborCache<A, B> {
    /// An empty cache sized and timed by `config`.
    pub fn new(mut config: NeighborConfig) -> Self {
        config.capacity = config.capacity.clamp(1, u32::MAX as usize - 1);
        config.hold_per_neighbor = config.hold_per_neighbor.max(1);
        config.max_multicast_solicit = config.max_multicast_solicit.max(1);
        config.max_unicast_solicit = config.max_unicast_solicit.max(1);
        let (lo, hi) = config.random_factor_permille;
        config.random_factor_permille = (lo.min(hi), hi.max(lo));
        let capacity = config.capacity;
        let mut cache = NeighborCache {
            entries: (0..capacity).map(|_| None).collect(),
            free: (0..capacity as u32).rev().collect(),
            index: Index::new(capacity, config.seed),
            deadlines: Deadlines::new(capacity),
            hold: HoldSlab::new(
                config.hold_total,
                config.hold_per_neighbor,
                config.replace_oldest_held,
            ),
            hand: 0,
            reachable_time_ns: 0,
            reachable_drawn_ns: 0,
            // xorshift must not start at 0.
            rng: config.seed.rotate_left(17) | 1,
            counters: NeighborCounters::default(),
            last: 0,
            version: 1,
            config,
        };
        cache.draw_reachable_time(0);
        cache
    }

    /// The configuration (capacity and bounds clamped to what is usable).
    pub fn config(&self) -> &NeighborConfig {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> &NeighborCounters {
        &self.counters
    }

    /// Neighbors known or being resolved.
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Whether no neighbor is known or being resolved.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most neighbors the cache holds.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Packets held, for all neighbors.
    pub fn held(&self) -> usize {
        self.hold.held()
    }

    /// The current ReachableTime: BaseReachableTime times a random factor
    /// drawn at construction and again every two hours.
    pub fn reachable_time_ns(&self) -> u64 {
        self.reachable_time_ns
    }

    /// The earliest time at which [`poll`](Self::poll) has something to do
    /// (a solicitation to repeat, a probe to start, an entry to give up).
    /// A REACHABLE entry turning STALE needs no wake-up: that is read when
    /// the entry is next used.
    #[inline]
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|(at, _)| at)
    }

    /// `ip`'s slot through the hash index, remembered for the next
    /// [`lookup`](Self::lookup).
    #[inline]
    fn find_slot(&mut self, ip: A) -> Option<u32> {
        let slot = self.index.get(ip)?;
        self.last = slot;
        Some(slot)
    }

    /// `ip`'s entry, with its state at `now_ns`, without touching it.
    pub fn get(&self, ip: A, now_ns: u64) -> Option<Neighbor<A>> {
        let slot = self.index.get(ip)?;
        let mut n = self.view(slot)?;
        n.state = n.state_at(now_ns);
        Some(n)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = Neighbor<A>> + '_ {
        (0..self.entries.len()).filter_map(|slot| self.view(slot as u32))
    }

    fn view(&self, slot: u32) -> Option<Neighbor<A>> {
        let e = self.entries[slot as usize].as_ref()?;
        Some(Neighbor {
            ip: e.ip,
            mac: (e.state != NeighborState::Incomplete).then_some(e.mac),
            state: e.state,
            updated_ns: e.updated_ns,
            held: e.held.len(),
            reachable_until_ns: e.reachable_until_ns,
        })
    }

    /// The link-layer address to send a packet to `ip` now, for a caller
    /// about to send one (counted as a hit or a miss). Sending to a STALE
    /// neighbor (or a REACHABLE one past its ReachableTime) moves it to
    /// DELAY: if no upper layer confirms it within DELAY_FIRST_PROBE_TIME,
    /// [`poll`](Self::poll) starts probing. The first send to a REACHABLE
    /// neighbor since its last confirmation cuts its REACHABLE time to
    /// [`NeighborConfig::unconfirmed_use_ns`] from now: an address nothing
    /// confirms while it is used (a wrong one, learned from a corrupted
    /// reply) is probed, and forgotten if it does not answer.
    ///
    /// The common case (the neighbor last sent to, REACHABLE within its
    /// time and already used since its confirmation) is one check inline:
    /// there it is only marked used; everything else goes through the
    /// full lookup.
    #[inline(always)]
    pub fn lookup(&mut self, ip: A, now_ns: u64) -> Option<MacAddr> {
        if let Some(mac) = self.lookup_quick(ip, now_ns) {
            return Some(mac);
        }
        self.lookup_full(ip, now_ns)
    }

    /// [`lookup`](Self::lookup)'s common case alone: the neighbor last
    /// sent to, REACHABLE within its time and already used since its
    /// confirmation, marked used and counted a hit. `None` (nothing
    /// changed, nothing counted) for every other case, which the caller
    /// then asks of `lookup`.
    #[inline(always)]
    pub fn lookup_quick(&mut self, ip: A, now_ns: u64) -> Option<MacAddr> {
        let Some(Some(e)) = self.entries.get_mut(self.last as usize) else {
            return None;
        };
        if e.ip == ip
            && e.state == NeighborState::Reachable
            && e.watched
            && now_ns < e.reachable_until_ns
        {
            e.used = true;
            self.counters.hits += 1;
            return Some(e.mac);
        }
        None
    }

    /// [`lookup_quick`](Self::lookup_quick), its hit with a
    /// [`QuickTicket`] for [`lookup_ticketed`](Self::lookup_ticketed).
    #[inline(always)]
    pub fn lookup_quick_ticket(&mut self, ip: A, now_ns: u64) -> Option<(MacAddr, QuickTicket)> {
        let mac = self.lookup_quick(ip, now_ns)?;
        let until_ns = self.entries[self.last as usize]
            .as_ref()
            .map_or(0, |e| e.reachable_until_ns);
        let version = self.version;
        Some((mac, QuickTicket { version, until_ns }))
    }

    /// [`lookup_quick`](Self::lookup_quick) of `ip` for a sender holding
    /// `ticket` from an earlier hit on `ip`: `true` (a hit, counted;
    /// the entry, unchanged, is marked used already) while the cache
    /// changed nothing since and the entry's REACHABLE time runs, when
    /// `lookup_quick` would hit too; else `false`, nothing changed or
    /// counted, and the caller asks `lookup_quick`.
    #[inline(always)]
    pub fn lookup_ticketed(&mut self, ip: A, ticket: &QuickTicket, now_ns: u64) -> bool {
        if ticket.version != self.version || now_ns >= ticket.until_ns {
            return false;
        }
        #[cfg(any(test, debug_assertions))]
        {
            let e = self.entries[self.last as usize].as_ref();
            assert!(
                e.is_some_and(|e| e.ip == ip
                    && e.state == NeighborState::Reachable
                    && e.watched
                    && e.used
                    && e.reachable_until_ns == ticket.until_ns),
                "a ticket of an unchanged cache vouches for a quick hit"
            );
        }
        #[cfg(not(any(test, debug_assertions)))]
        let _ = ip;
        self.counters.hits += 1;
        true
    }

    /// A change to an entry (or to `last`): every [`QuickTicket`] out
    /// is void.
    #[inline(always)]
    fn changed(&mut self) {
        self.version = self.version.wrapping_add(1).max(1);
    }

    /// [`lookup`](Self::lookup) in every case: the last slot tried before
    /// the hash index, the entry marked used, its state moved as it
    /// says.
    #[inline(never)]
    fn lookup_full(&mut self, ip: A, now_ns: u64) -> Option<MacAddr> {
        self.changed();
        let last = self.last;
        let slot = match self.entries.get(last as usize) {
            Some(Some(e)) if e.ip == ip => Some(last),
            _ => self.find_slot(ip),
        };
        let found = match slot {
            Some(slot) => match self.entries[slot as usize].as_mut() {
                Some(e) => {
                    e.used = true;
                    match effective(e.state, e.reachable_until_ns, now_ns) {
                        NeighborState::Reachable => {
                            if !e.watched {
                                // The first use since the last confirmation:
                                // unconfirmed use ends REACHABLE early.
                                e.watched = true;
                                e.reachable_until_ns = e
                                    .reachable_until_ns
                                    .min(now_ns.saturating_add(self.config.unconfirmed_use_ns));
                            }
                            Some(e.mac)
                        }
                        NeighborState::Delay | NeighborState::Probe => Some(e.mac),
                        NeighborState::Stale => Some(self.start_delay(slot, now_ns)),
                        NeighborState::Incomplete => None,
                    }
                }
                None => None,
            },
            None => None,
        };
        match found {
            Some(_) => self.counters.hits += 1,
            None => self.counters.misses += 1,
        }
        found
    }

    /// A packet goes to the STALE neighbor in `slot`: DELAY, with its
    /// deadline. Out of line, to keep [`lookup`](Self::lookup) small.
    #[cold]
    #[inline(never)]
    fn start_delay(&mut self, slot: u32, now_ns: u64) -> MacAddr {
        let Some(e) = self.entries[slot as usize].as_mut() else {
            return MacAddr::ZERO;
        };
        e.state = NeighborState::Delay;
        e.updated_ns = now_ns;
        self.deadlines.set(
            slot,
            now_ns.saturating_add(self.config.delay_first_probe_ns),
        );
        e.mac
    }

    /// Where `packet` for `ip` goes: straight out when the neighbor is known
    /// ([`lookup`](Self::lookup)); otherwise it waits in the neighbor's hold
    /// queue, and a new entry asks `out` for its first solicitation. A full
    /// hold queue gives its oldest packet to `out` as
    /// [`Action::Drop`] to make room (RFC 4861 §7.2.2).
    pub fn resolve(
        &mut self,
        ip: A,
        packet: B,
        now_ns: u64,
        out: impl FnMut(Action<A, B>),
    ) -> Resolved<B> {
        if let Some(mac) = self.lookup(ip, now_ns) {
            return Resolved::Ready(mac, packet);
        }
        self.hold(ip, packet, now_ns, out)
    }

    /// The rest of [`resolve`](Self::resolve) after a
    /// [`lookup`](Self::lookup) of `ip` found no address: `packet` waits in
    /// the neighbor's hold queue, a new entry asking `out` for its first
    /// solicitation. For a caller that looked up first, so the hit (the
    /// common case) needs neither the call nor the packet moved in and out.
    pub fn hold(
        &mut self,
        ip: A,
        packet: B,
        now_ns: u64,
        mut out: impl FnMut(Action<A, B>),
    ) -> Resolved<B> {
        self.changed();
        let slot = match self.index.get(ip) {
            Some(slot) => slot,
            None => {
                let Some(slot) = self.create(ip, NeighborState::Incomplete, MacAddr::ZERO, now_ns)
                else {
                    self.counters.refused += 1;
                    return Resolved::Refused(packet, ResolveError::CacheFull);
                };
                self.solicit(slot, None, now_ns, &mut out);
                slot
            }
        };
        let Some(e) = self.entries[slot as usize].as_mut() else {
            unreachable!("the index names only occupied slots")
        };
        match self.hold.push(&mut e.held, packet) {
            Pushed::Held => {
                self.counters.held += 1;
                Resolved::Held
            }
            Pushed::Displaced(old) => {
                self.counters.held += 1;
                self.counters.dropped_overflow += 1;
                out(Action::Drop {
                    packet: old,
                    target: ip,
                    error: ResolveError::QueueFull,
                });
                Resolved::Held
            }
            Pushed::Refused(packet) => {
                self.counters.refused += 1;
                Resolved::Refused(packet, ResolveError::QueueFull)
            }
        }
    }

    /// Records that `ip` was heard at `mac` (`None`: a message without a
    /// link-layer address option), by the RFC's rules for `heard`. Packets
    /// held for `ip` go to `out` as [`Action::Send`] once its address is
    /// known. Returns the entry's state afterwards (`None`: no entry, as
    /// for an advertisement nobody asked for).
    #[inline]
    pub fn learn(
        &mut self,
        ip: A,
        mac: Option<MacAddr>,
        heard: Heard,
        now_ns: u64,
        mut out: impl FnMut(Action<A, B>),
    ) -> Option<NeighborState> {
        self.changed();
        let Some(slot) = self.index.get(ip) else {
            // RFC 4861 7.2.3: a solicitation with an address creates a STALE
            // entry; 7.2.5: an advertisement without an entry is dropped.
            let mac = mac?;
            if heard != Heard::Solicitation {
                return None;
            }
            self.create(ip, NeighborState::Stale, mac, now_ns)?;
            return Some(NeighborState::Stale);
        };
        let e = self.entries[slot as usize]
            .as_mut()
            .expect("the index names only occupied slots");
        let state = effective(e.state, e.reachable_until_ns, now_ns);
        let next = if state == NeighborState::Incomplete {
            // Appendix C: any message with the address resolves it.
            let Some(mac) = mac else {
                return Some(NeighborState::Incomplete);
            };
            e.mac = mac;
            let next = match heard {
                Heard::Advertisement {
                    solicited: true, ..
                } => NeighborState::Reachable,
                _ => NeighborState::Stale,
            };
            while let Some(packet) = self.hold.pop(&mut e.held) {
                self.counters.released += 1;
                out(Action::Send { packet, mac });
            }
            next
        } else {
            let differs = mac.is_some_and(|m| m != e.mac);
            match heard {
                Heard::Solicitation if differs => {
                    e.mac = mac.unwrap_or(e.mac);
                    NeighborState::Stale
                }
                Heard::Solicitation => state,
                Heard::Advertisement {
                    override_entry: false,
                    ..
                } if differs => {
                    // Not allowed to replace the address; a REACHABLE entry
                    // is no longer confirmed.
                    if state == NeighborState::Reachable {
                        NeighborState::Stale
                    } else {
                        state
                    }
                }
                Heard::Advertisement { solicited, .. } => {
                    e.mac = mac.unwrap_or(e.mac);
                    if solicited {
                        NeighborState::Reachable
                    } else if differs {
                        NeighborState::Stale
                    } else {
                        state
                    }
                }
            }
        };
        // Reachability is confirmed by a solicited advertisement, or by the
        // first answer that resolves an INCOMPLETE entry to REACHABLE; a
        // solicitation or an unsolicited advertisement does not extend it
        // (RFC 4861 §7.3.1).
        let confirmed = next == NeighborState::Reachable
            && (state == NeighborState::Incomplete
                || matches!(
                    heard,
                    Heard::Advertisement {
                        solicited: true,
                        ..
                    }
                ));
        let before = e.state;
        if next != before || confirmed {
            e.updated_ns = now_ns;
        }
        e.state = next;
        // Only INCOMPLETE, DELAY and PROBE entries have a timer: leaving
        // them for a state without one stops it.
        let timed = |s| {
            matches!(
                s,
                NeighborState::Incomplete | NeighborState::Delay | NeighborState::Probe
            )
        };
        if timed(before) && !timed(next) {
            self.deadlines.clear(slot);
        }
        if confirmed {
            let until = self.reachable_until(now_ns);
            if let Some(e) = self.entries[slot as usize].as_mut() {
                e.reachable_until_ns = until;
                e.watched = false;
            }
        }
        Some(next)
    }

    /// An upper layer saw forward progress with `ip` (a TCP ACK for new
    /// data, say): a known entry becomes REACHABLE for another
    /// ReachableTime (RFC 4861 §7.3.1). Returns whether there was one.
    pub fn confirm(&mut self, ip: A, now_ns: u64) -> bool {
        self.changed();
        let Some(slot) = self.index.get(ip) else {
            return false;
        };
        let reachable_until = self.reachable_until(now_ns);
        let Some(e) = self.entries[slot as usize].as_mut() else {
            return false;
        };
        if e.state == NeighborState::Incomplete {
            return false;
        }
        if e.state != NeighborState::Reachable {
            e.updated_ns = now_ns;
        }
        e.state = NeighborState::Reachable;
        e.reachable_until_ns = reachable_until;
        e.watched = false;
        self.deadlines.clear(slot);
        self.counters.confirmations += 1;
        true
    }

    /// Forgets `ip`; packets held for it go to `out` as dropped
    /// ([`ResolveError::Unreachable`]). Returns whether it was known.
    pub fn forget(&mut self, ip: A, mut out: impl FnMut(Action<A, B>)) -> bool {
        self.changed();
        match self.index.get(ip) {
            Some(slot) => {
                self.drop_held(slot, ResolveError::Unreachable, &mut out);
                self.remove(slot);
                true
            }
            None => false,
        }
    }

    /// Does what is due at `now_ns`: repeats solicitations of INCOMPLETE
    /// entries every RetransTimer and gives them up after
    /// MAX_MULTICAST_SOLICIT (their held packets go to `out` as
    /// [`Action::Drop`], [`ResolveError::Unreachable`]); moves DELAY entries
    /// to PROBE and probes them by unicast up to MAX_UNICAST_SOLICIT times,
    /// then forgets them. Cheap when nothing is due: one comparison.
    #[inline]
    pub fn poll(&mut self, now_ns: u64, mut out: impl FnMut(Action<A, B>)) {
        while let Some((at, slot)) = self.deadlines.first() {
            if at > now_ns {
                return;
            }
            self.expire(slot, now_ns, &mut out);
        }
    }

    fn expire(&mut self, slot: u32, now_ns: u64, out: &mut impl FnMut(Action<A, B>)) {
        self.changed();
        let Some(e) = self.entries[slot as usize].as_mut() else {
            self.deadlines.clear(slot);
            return;
        };
        match e.state {
            NeighborState::Incomplete if e.solicits < self.config.max_multicast_solicit => {
                self.solicit(slot, None, now_ns, out);
            }
            NeighborState::Delay => {
                let mac = e.mac;
                e.state = NeighborState::Probe;
                e.updated_ns = now_ns;
                e.solicits = 0;
                self.solicit(slot, Some(mac), now_ns, out);
            }
            NeighborState::Probe if e.solicits < self.config.max_unicast_solicit => {
                let mac = e.mac;
                self.solicit(slot, Some(mac), now_ns, out);
            }
            NeighborState::Incomplete | NeighborState::Probe => {
                self.counters.failed += 1;
                self.drop_held(slot, ResolveError::Unreachable, out);
                self.remove(slot);
            }
            NeighborState::Reachable | NeighborState::Stale => self.deadlines.clear(slot),
        }
    }

    /// Asks `out` for a solicitation of `slot`'s neighbor and schedules the
    /// next step RetransTimer later.
    fn solicit(
        &mut self,
        slot: u32,
        unicast: Option<MacAddr>,
        now_ns: u64,
        out: &mut impl FnMut(Action<A, B>),
    ) {
        let Some(e) = self.entries[slot as usize].as_mut() else {
            return;
        };
        e.solicits = e.solicits.saturating_add(1);
        self.counters.solicitations += 1;
        self.deadlines
            .set(slot, now_ns.saturating_add(self.config.retrans_timer_ns));
        out(Action::Solicit {
            target: e.ip,
            unicast,
        });
    }

    fn drop_held(&mut self, slot: u32, error: ResolveError, out: &mut impl FnMut(Action<A, B>)) {
        let Some(e) = self.entries[slot as usize].as_mut() else {
            return;
        };
        while let Some(packet) = self.hold.pop(&mut e.held) {
            self.counters.dropped_unreachable += 1;
            out(Action::Drop {
                packet,
                target: e.ip,
                error,
            });
        }
    }

    /// A new entry for `ip`, evicting one if the cache is full; `None` when
    /// every entry is INCOMPLETE (those hold packets and end on their own
    /// within MAX_MULTICAST_SOLICIT RetransTimers).
    fn create(&mut self, ip: A, state: NeighborState, mac: MacAddr, now_ns: u64) -> Option<u32> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => self.evict()?,
        };
        self.index.insert(ip, slot);
        self.entries[slot as usize] = Some(Entry {
            ip,
            mac,
            state,
            reachable_until_ns: 0,
            updated_ns: now_ns,
            solicits: 0,
            used: true,
            watched: false,
            held: HoldList::EMPTY,
        });
        self.counters.created += 1;
        Some(slot)
    }

    /// Frees the slot of an entry not used since the hand last passed it
    /// (the clock algorithm: two sweeps at most), never an INCOMPLETE one.
    fn evict(&mut self) -> Option<u32> {
        let n = self.entries.len();
        for _ in 0..2 * n {
            self.hand = (self.hand + 1) % n;
            let Some(e) = self.entries[self.hand].as_mut() else {
                continue;
            };
            if e.state == NeighborState::Incomplete {
                continue;
            }
            if e.used {
                e.used = false;
                continue;
            }
            let slot = self.hand as u32;
            self.remove(slot);
            self.counters.evictions += 1;
            return self.free.pop();
        }
        None
    }

    /// Removes `slot`'s entry, which holds no packet any more.
    fn remove(&mut self, slot: u32) {
        if let Some(e) = self.entries[slot as usize].take() {
            debug_assert_eq!(e.held.len(), 0, "held packets are released first");
            self.index.remove(e.ip);
            self.deadlines.clear(slot);
            self.free.push(slot);
        }
    }

    /// When an entry confirmed at `now_ns` stops being REACHABLE, drawing
    /// ReachableTime again if it is due.
    fn reachable_until(&mut self, now_ns: u64) -> u64 {
        if now_ns.saturating_sub(self.reachable_drawn_ns) >= REDRAW_REACHABLE_NS {
            self.draw_reachable_time(now_ns);
        }
        now_ns.saturating_add(self.reachable_time_ns)
    }

    fn draw_reachable_time(&mut self, now_ns: u64) {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let (lo, hi) = self.config.random_factor_permille;
        let permille = u64::from(lo) + r % (u64::from(hi - lo) + 1);
        self.reachable_time_ns =
            (u128::from(self.config.base_reachable_time_ns) * u128::from(permille) / 1000)
                .min(u128::from(u64::MAX)) as u64;
        self.reachable_drawn_ns = now_ns;
    }
}
