//! Every transition of the state machine under virtual time, and a property
//! test of random sequences against a model, with the pool whole at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use proptest::prelude::*;
use tpa::buf::{PacketBuf, PoolBuf};
use tpa::wire::MacAddr;

use super::*;
use crate::testing::{frame, pool, BufferPool};

const S: u64 = 1_000_000_000;
const T0: u64 = 100 * S;

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, n)
}
fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

fn config() -> NeighborConfig {
    NeighborConfig {
        capacity: 8,
        hold_per_neighbor: 2,
        hold_total: 4,
        seed: 42,
        ..NeighborConfig::default()
    }
}

type Cache = NeighborCache<Ipv4Addr, u32>;
type Actions = Vec<Action<Ipv4Addr, u32>>;

fn cache() -> Cache {
    NeighborCache::new(config())
}

fn state(c: &Cache, n: u8, now: u64) -> Option<NeighborState> {
    c.get(ip(n), now).map(|e| e.state)
}

const SOLICITED: Heard = Heard::Advertisement {
    solicited: true,
    override_entry: false,
};
const SOLICITED_OVERRIDE: Heard = Heard::Advertisement {
    solicited: true,
    override_entry: true,
};
const UNSOLICITED: Heard = Heard::Advertisement {
    solicited: false,
    override_entry: false,
};
const UNSOLICITED_OVERRIDE: Heard = Heard::Advertisement {
    solicited: false,
    override_entry: true,
};

/// A cache with `ip(1)` INCOMPLETE, holding packet 7.
fn incomplete() -> (Cache, Actions) {
    let mut c = cache();
    let mut a = Vec::new();
    assert!(matches!(
        c.resolve(ip(1), 7, T0, |x| a.push(x)),
        Resolved::Held
    ));
    (c, a)
}

/// A cache with `ip(1)` at `mac(1)` in `state` at `T0`.
fn with_state(target: NeighborState) -> Cache {
    let mut c = cache();
    let none = |_: Action<Ipv4Addr, u32>| panic!("no action expected");
    match target {
        NeighborState::Incomplete => return incomplete().0,
        NeighborState::Stale => {
            c.learn(ip(1), Some(mac(1)), Heard::Solicitation, T0, none);
        }
        NeighborState::Reachable => {
            c.learn(ip(1), Some(mac(1)), Heard::Solicitation, T0, none);
            assert!(c.confirm(ip(1), T0));
        }
        NeighborState::Delay => {
            c.learn(ip(1), Some(mac(1)), Heard::Solicitation, T0, none);
            assert_eq!(c.lookup(ip(1), T0), Some(mac(1)));
        }
        NeighborState::Probe => {
            c.learn(ip(1), Some(mac(1)), Heard::Solicitation, T0 - 5 * S, none);
            assert_eq!(c.lookup(ip(1), T0 - 5 * S), Some(mac(1)));
            let mut a = Vec::new();
            c.poll(T0, |x| a.push(x));
            assert!(matches!(
                a.as_slice(),
                [Action::Solicit { unicast: Some(m), .. }] if *m == mac(1)
            ));
        }
    }
    assert_eq!(state(&c, 1, T0), Some(target));
    c
}

#[test]
fn a_packet_to_an_unknown_neighbor_is_held_and_solicited_once() {
    let (mut c, a) = incomplete();
    assert!(matches!(
        a.as_slice(),
        [Action::Solicit {
            target,
            unicast: None
        }] if *target == ip(1)
    ));
    assert_eq!(state(&c, 1, T0), Some(NeighborState::Incomplete));
    assert_eq!(c.get(ip(1), T0).unwrap().mac, None);
    // More packets wait; no new solicitation before RetransTimer.
    let mut more = Vec::new();
    assert!(matches!(
        c.resolve(ip(1), 8, T0 + 1, |x| more.push(x)),
        Resolved::Held
    ));
    assert!(more.is_empty());
    assert_eq!(c.held(), 2);
    assert_eq!(c.next_deadline(), Some(T0 + S));
    let k = c.counters();
    assert_eq!((k.misses, k.held, k.solicitations, k.created), (2, 2, 1, 1));
}

#[test]
fn incomplete_retransmits_then_fails_with_its_packets_unreachable() {
    let (mut c, _) = incomplete();
    let mut a = Vec::new();
    c.poll(T0 + S - 1, |x| a.push(x));
    assert!(a.is_empty());
    c.poll(T0 + S, |x| a.push(x));
    c.poll(T0 + 2 * S, |x| a.push(x));
    assert_eq!(a.len(), 2);
    assert!(a
        .iter()
        .all(|x| matches!(x, Action::Solicit { unicast: None, .. })));
    a.clear();
    // MAX_MULTICAST_SOLICIT (3) sent and the last unanswered: give up.
    c.poll(T0 + 3 * S, |x| a.push(x));
    assert!(matches!(
        a.as_slice(),
        [Action::Drop {
            packet: 7,
            error: ResolveError::Unreachable,
            ..
        }]
    ));
    assert!(c.is_empty());
    assert_eq!(c.next_deadline(), None);
    let k = c.counters();
    assert_eq!(
        (k.solicitations, k.dropped_unreachable, k.failed),
        (3, 1, 1)
    );
    assert_eq!(
        io::Error::from(ResolveError::Unreachable).kind(),
        io::ErrorKind::HostUnreachable
    );
}

#[test]
fn incomplete_resolves_by_what_is_heard_and_sends_what_it_held() {
    for (heard, next) in [
        (SOLICITED, NeighborState::Reachable),
        (SOLICITED_OVERRIDE, NeighborState::Reachable),
        (UNSOLICITED, NeighborState::Stale),
        (UNSOLICITED_OVERRIDE, NeighborState::Stale),
        (Heard::Solicitation, NeighborState::Stale),
    ] {
        let (mut c, _) = incomplete();
        let mut a = Vec::new();
        assert_eq!(
            c.learn(ip(1), Some(mac(1)), heard, T0 + 1, |x| a.push(x)),
            Some(next)
        );
        assert!(
            matches!(a.as_slice(), [Action::Send { packet: 7, mac: m }] if *m == mac(1)),
            "{heard:?}"
        );
        assert_eq!(c.next_deadline(), None, "{heard:?}");
        assert_eq!(c.counters().released, 1);
    }
    // Without an address nothing is resolved.
    let (mut c, _) = incomplete();
    assert_eq!(
        c.learn(ip(1), None, SOLICITED_OVERRIDE, T0, |_| panic!()),
        Some(NeighborState::Incomplete)
    );
    assert_eq!(c.held(), 1);
}

#[test]
fn only_solicitations_create_entries() {
    let mut c = cache();
    let none = |_: Action<Ipv4Addr, u32>| panic!("no action expected");
    for heard in [
        SOLICITED,
        SOLICITED_OVERRIDE,
        UNSOLICITED,
        UNSOLICITED_OVERRIDE,
    ] {
        assert_eq!(c.learn(ip(1), Some(mac(1)), heard, T0, none), None);
    }
    assert_eq!(c.learn(ip(1), None, Heard::Solicitation, T0, none), None);
    assert!(c.is_empty());
    assert_eq!(
        c.learn(ip(1), Some(mac(1)), Heard::Solicitation, T0, none),
        Some(NeighborState::Stale)
    );
    assert_eq!(c.lookup(ip(1), T0), Some(mac(1)));
}

#[test]
fn reachable_turns_stale_after_reachable_time_and_delay_when_used() {
    let mut c = with_state(NeighborState::Reachable);
    let rt = c.reachable_time_ns();
    assert!((15 * S..=45 * S).contains(&rt), "{rt}");
    assert_eq!(state(&c, 1, T0 + rt - 1), Some(NeighborState::Reachable));
    assert_eq!(state(&c, 1, T0 + rt), Some(NeighborState::Stale));
    // A REACHABLE entry needs no wake-up.
    assert_eq!(c.next_deadline(), None);
    assert_eq!(c.lookup(ip(1), T0 + rt), Some(mac(1)));
    assert_eq!(state(&c, 1, T0 + rt), Some(NeighborState::Delay));
    assert_eq!(c.next_deadline(), Some(T0 + rt + 5 * S));
}

#[test]
fn unconfirmed_use_ends_reachable_early_and_a_wrong_address_is_resolved_afresh() {
    // A corrupted ARP reply (no checksum) answers our request with a wrong
    // address: REACHABLE at a MAC nobody has.
    let (mut c, _) = incomplete();
    let mut out = Vec::new();
    c.learn(ip(1), Some(mac(9)), SOLICITED, T0, |a| out.push(a));
    assert!(matches!(out.as_slice(), [Action::Send { packet: 7, mac: m }] if *m == mac(9)));
    assert!(c.reachable_time_ns() > 5 * S);
    // Sent to, never confirmed: REACHABLE for 5 s from the first use.
    assert_eq!(c.lookup(ip(1), T0 + S), Some(mac(9)));
    assert_eq!(c.lookup(ip(1), T0 + 3 * S), Some(mac(9)));
    assert_eq!(state(&c, 1, T0 + 6 * S - 1), Some(NeighborState::Reachable));
    assert_eq!(state(&c, 1, T0 + 6 * S), Some(NeighborState::Stale));
    // The next use starts the probe: DELAY, then three unanswered unicast
    // probes to the wrong address, then the entry is gone.
    assert_eq!(c.lookup(ip(1), T0 + 7 * S), Some(mac(9)));
    assert_eq!(state(&c, 1, T0 + 7 * S), Some(NeighborState::Delay));
    let mut probes = Vec::new();
    for t in 8..=15 {
        c.poll(T0 + t * S, |a| probes.push(a));
    }
    assert_eq!(probes.len(), 3, "{probes:?}");
    assert!(probes
        .iter()
        .all(|a| matches!(a, Action::Solicit { unicast: Some(m), .. } if *m == mac(9))));
    assert!(c.is_empty());
    assert_eq!(c.counters().failed, 1);
    // The next packet asks everyone again, and the true answer heals it.
    let mut again = Vec::new();
    assert!(matches!(
        c.resolve(ip(1), 8, T0 + 16 * S, |a| again.push(a)),
        Resolved::Held
    ));
    assert!(matches!(
        again.as_slice(),
        [Action::Solicit { unicast: None, .. }]
    ));
    again.clear();
    c.learn(ip(1), Some(mac(1)), SOLICITED, T0 + 16 * S, |a| {
        again.push(a)
    });
    assert!(matches!(again.as_slice(), [Action::Send { packet: 8, mac: m }] if *m == mac(1)));
    assert_eq!(c.lookup(ip(1), T0 + 17 * S), Some(mac(1)));
}

#[test]
fn a_forgotten_neighbor_whose_slot_is_reused_is_not_found_through_it() {
    // `lookup` tries the slot it last found first: once that neighbor is
    // forgotten and its slot taken by another, neither is mistaken for the
    // other, and the REACHABLE fast case still marks the first use.
    let mut c = with_state(NeighborState::Reachable);
    assert_eq!(c.lookup(ip(1), T0), Some(mac(1)));
    assert_eq!(c.lookup(ip(1), T0 + 1), Some(mac(1)));
    assert!(c.forget(ip(1), |_| {}));
    assert!(c.is_empty());
    let none = |_: Action<Ipv4Addr, u32>| panic!("no action expected");
    c.learn(ip(2), Some(mac(2)), Heard::Solicitation, T0 + 2, none);
    assert!(c.confirm(ip(2), T0 + 2));
    let misses = c.counters().misses;
    assert_eq!(c.lookup(ip(1), T0 + 3), None);
    assert_eq!(c.counters().misses, misses + 1);
    assert_eq!(c.lookup(ip(2), T0 + 3), Some(mac(2)));
    assert_eq!(c.lookup(ip(2), T0 + 4), Some(mac(2)));
    // The first use cut REACHABLE to 5 s from it, the second kept that.
    assert_eq!(
        state(&c, 2, T0 + 3 + 5 * S - 1),
        Some(NeighborState::Reachable)
    );
    assert_eq!(state(&c, 2, T0 + 3 + 5 * S), Some(NeighborState::Stale));
    // Used when STALE: DELAY, through the full lookup.
    assert_eq!(c.lookup(ip(2), T0 + 6 * S), Some(mac(2)));
    assert_eq!(state(&c, 2, T0 + 6 * S), Some(NeighborState::Delay));
}

#[test]
fn confirmed_use_stays_reachable_for_reachable_time() {
    let mut c = with_state(NeighborState::Reachable);
    let rt = c.reachable_time_ns();
    // Used every second and confirmed every second (a TCP flow's ACKs):
    // never probed.
    let mut t = T0;
    while t < T0 + 3 * rt {
        assert_eq!(c.lookup(ip(1), t), Some(mac(1)));
        assert_eq!(state(&c, 1, t), Some(NeighborState::Reachable), "at {t}");
        assert!(c.confirm(ip(1), t + S / 2));
        t += S;
    }
    assert_eq!(c.next_deadline(), None);
    assert_eq!(c.counters().solicitations, 0);
    // Unused, an entry is REACHABLE for the whole ReachableTime.
    let mut idle = with_state(NeighborState::Reachable);
    assert_eq!(state(&idle, 1, T0 + rt - 1), Some(NeighborState::Reachable));
    // Its first use then leaves it 5 s more at most.
    assert_eq!(idle.lookup(ip(1), T0 + 2 * S), Some(mac(1)));
    assert_eq!(
        state(&idle, 1, T0 + 7 * S - 1),
        Some(NeighborState::Reachable)
    );
    assert_eq!(state(&idle, 1, T0 + 7 * S), Some(NeighborState::Stale));
}

#[test]
fn a_solicitation_or_unsolicited_advertisement_does_not_extend_reachability() {
    let mut c = with_state(NeighborState::Reachable);
    let rt = c.reachable_time_ns();
    let mut out = Vec::new();
    // Heard again half-way, with the same address: not a confirmation.
    c.learn(ip(1), Some(mac(1)), Heard::Solicitation, T0 + rt / 2, |a| {
        out.push(a)
    });
    c.learn(ip(1), Some(mac(1)), UNSOLICITED, T0 + rt / 2, |a| {
        out.push(a)
    });
    assert_eq!(state(&c, 1, T0 + rt), Some(NeighborState::Stale));
    // A solicited advertisement is one.
    c.learn(ip(1), Some(mac(1)), SOLICITED, T0 + rt, |a| out.push(a));
    assert_eq!(
        state(&c, 1, T0 + rt + rt / 2),
        Some(NeighborState::Reachable)
    );
    assert!(out.is_empty());
}

#[test]
fn reachable_time_is_drawn_between_half_and_one_and_a_half_base() {
    let times: BTreeSet<u64> = (0..64)
        .map(|seed| Cache::new(NeighborConfig { seed, ..config() }).reachable_time_ns())
        .collect();
    assert!(times.iter().all(|t| (15 * S..=45 * S).contains(t)));
    assert!(times.len() > 32, "random: {times:?}");
}

#[test]
fn stale_goes_to_delay_when_used_and_delay_to_probe_after_five_seconds() {
    let mut c = with_state(NeighborState::Stale);
    assert_eq!(c.next_deadline(), None);
    assert_eq!(c.lookup(ip(1), T0), Some(mac(1)));
    assert_eq!(state(&c, 1, T0), Some(NeighborState::Delay));
    let mut a = Vec::new();
    c.poll(T0 + 5 * S - 1, |x| a.push(x));
    assert!(a.is_empty());
    c.poll(T0 + 5 * S, |x| a.push(x));
    assert!(matches!(
        a.as_slice(),
        [Action::Solicit { unicast: Some(m), .. }] if *m == mac(1)
    ));
    assert_eq!(state(&c, 1, T0 + 5 * S), Some(NeighborState::Probe));
    // Still usable while probing.
    assert_eq!(c.lookup(ip(1), T0 + 5 * S), Some(mac(1)));
}

#[test]
fn delay_confirmed_by_an_upper_layer_is_reachable_without_a_probe() {
    let mut c = with_state(NeighborState::Delay);
    assert!(c.confirm(ip(1), T0 + S));
    assert_eq!(state(&c, 1, T0 + S), Some(NeighborState::Reachable));
    assert_eq!(c.next_deadline(), None);
    c.poll(T0 + 10 * S, |_| panic!("nothing to probe"));
    assert_eq!(c.counters().confirmations, 1);
}

#[test]
fn probe_retransmits_then_forgets_the_neighbor() {
    let mut c = with_state(NeighborState::Probe);
    let mut a = Vec::new();
    c.poll(T0 + S, |x| a.push(x));
    c.poll(T0 + 2 * S, |x| a.push(x));
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|x| matches!(
        x,
        Action::Solicit {
            unicast: Some(_),
            ..
        }
    )));
    c.poll(T0 + 3 * S, |x| a.push(x));
    assert_eq!(a.len(), 2);
    assert!(c.is_empty());
    assert_eq!(c.counters().failed, 1);
}

#[test]
fn probe_answered_is_reachable() {
    let mut c = with_state(NeighborState::Probe);
    assert_eq!(
        c.learn(ip(1), Some(mac(1)), SOLICITED, T0 + 1, |_| panic!()),
        Some(NeighborState::Reachable)
    );
    assert_eq!(c.next_deadline(), None);
}

#[test]
fn advertisements_follow_appendix_c_for_known_entries() {
    use NeighborState::*;
    let other = mac(9);
    // (state before, heard, address, state after, address after)
    let table = [
        (Stale, SOLICITED, mac(1), Reachable, mac(1)),
        (Reachable, SOLICITED, other, Stale, mac(1)),
        (Stale, SOLICITED, other, Stale, mac(1)),
        (Delay, SOLICITED, other, Delay, mac(1)),
        (Probe, SOLICITED, other, Probe, mac(1)),
        (Stale, SOLICITED_OVERRIDE, other, Reachable, other),
        (Delay, SOLICITED_OVERRIDE, mac(1), Reachable, mac(1)),
        (Reachable, UNSOLICITED, other, Stale, mac(1)),
        (Stale, UNSOLICITED, mac(1), Stale, mac(1)),
        (Reachable, UNSOLICITED, mac(1), Reachable, mac(1)),
        (Reachable, UNSOLICITED_OVERRIDE, other, Stale, other),
        (Reachable, UNSOLICITED_OVERRIDE, mac(1), Reachable, mac(1)),
        (Delay, UNSOLICITED_OVERRIDE, mac(1), Delay, mac(1)),
        (Reachable, Heard::Solicitation, other, Stale, other),
        (Reachable, Heard::Solicitation, mac(1), Reachable, mac(1)),
        (Probe, Heard::Solicitation, mac(1), Probe, mac(1)),
    ];
    for (before, heard, addr, after, addr_after) in table {
        let mut c = with_state(before);
        let got = c.learn(ip(1), Some(addr), heard, T0 + 1, |_| panic!());
        let case = format!("{before} + {heard:?} from {addr}");
        assert_eq!(got, Some(after), "{case}");
        assert_eq!(
            c.get(ip(1), T0 + 1).unwrap().mac,
            Some(addr_after),
            "{case}"
        );
        // Only DELAY and PROBE keep a deadline.
        assert_eq!(
            c.next_deadline().is_some(),
            matches!(after, Delay | Probe),
            "{case}"
        );
    }
    // An advertisement without an address: a solicited one still confirms.
    let mut c = with_state(Stale);
    assert_eq!(
        c.learn(ip(1), None, SOLICITED, T0, |_| panic!()),
        Some(Reachable)
    );
}

#[test]
fn confirmations_refresh_known_entries_only() {
    let mut c = with_state(NeighborState::Reachable);
    let rt = c.reachable_time_ns();
    assert!(c.confirm(ip(1), T0 + rt - 1));
    assert_eq!(state(&c, 1, T0 + rt), Some(NeighborState::Reachable));
    assert!(!c.confirm(ip(2), T0));
    let (mut c, _) = incomplete();
    assert!(!c.confirm(ip(1), T0));
    assert_eq!(state(&c, 1, T0), Some(NeighborState::Incomplete));
}

#[test]
fn a_full_hold_queue_drops_its_oldest_and_a_full_slab_refuses() {
    let (mut c, _) = incomplete();
    let mut a = Vec::new();
    assert!(matches!(
        c.resolve(ip(1), 8, T0, |x| a.push(x)),
        Resolved::Held
    ));
    // Per neighbor: 2. The oldest makes room (RFC 4861 7.2.2).
    assert!(matches!(
        c.resolve(ip(1), 9, T0, |x| a.push(x)),
        Resolved::Held
    ));
    assert!(matches!(
        a.as_slice(),
        [Action::Drop {
            packet: 7,
            error: ResolveError::QueueFull,
            ..
        }]
    ));
    a.clear();
    // In total: 4. A third neighbor finds no slot.
    c.resolve(ip(2), 20, T0, |x| a.push(x));
    c.resolve(ip(2), 21, T0, |x| a.push(x));
    match c.resolve(ip(3), 30, T0, |x| a.push(x)) {
        Resolved::Refused(30, ResolveError::QueueFull) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(c.held(), 4);
    let k = c.counters();
    assert_eq!((k.dropped_overflow, k.refused), (1, 1));
    // Forgetting a neighbor gives its packets back.
    let mut back = Vec::new();
    assert!(c.forget(ip(1), |x| back.push(x)));
    assert_eq!(back.len(), 2);
    assert_eq!(c.held(), 2);
}

#[test]
fn a_full_cache_evicts_an_unused_entry_but_never_an_incomplete_one() {
    let mut c: Cache = NeighborCache::new(NeighborConfig {
        capacity: 3,
        ..config()
    });
    let none = |_: Action<Ipv4Addr, u32>| panic!("no action expected");
    for n in 1..=3 {
        c.learn(ip(n), Some(mac(n)), Heard::Solicitation, T0, none);
    }
    // 1 and 3 are used again; 2 is the one the clock takes.
    c.lookup(ip(1), T0);
    c.lookup(ip(3), T0);
    c.learn(ip(4), Some(mac(4)), Heard::Solicitation, T0, none);
    assert_eq!(c.len(), 3);
    assert_eq!(c.counters().evictions, 1);
    assert!(c.get(ip(4), T0).is_some());
    let left: BTreeSet<u8> = c.iter().map(|n| n.ip.octets()[3]).collect();
    assert_eq!(left.len(), 3);
    // Fill the cache with INCOMPLETE entries: then a new one is refused.
    let mut c: Cache = NeighborCache::new(NeighborConfig {
        capacity: 2,
        ..config()
    });
    c.resolve(ip(1), 1, T0, |_| {});
    c.resolve(ip(2), 2, T0, |_| {});
    match c.resolve(ip(3), 3, T0, |_| {}) {
        Resolved::Refused(3, ResolveError::CacheFull) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(state(&c, 1, T0), Some(NeighborState::Incomplete));
}

#[test]
fn the_hash_index_holds_sixty_five_thousand_neighbors() {
    let mut c: NeighborCache<Ipv4Addr, u32> = NeighborCache::new(NeighborConfig {
        capacity: 65_536,
        ..config()
    });
    for n in 0..65_536u32 {
        let a = Ipv4Addr::from(0x0a00_0000 + n);
        c.learn(a, Some(mac(1)), Heard::Solicitation, T0, |_| {});
    }
    assert_eq!((c.len(), c.counters().evictions), (65_536, 0));
    for n in (0..65_536u32).step_by(97) {
        assert_eq!(c.lookup(Ipv4Addr::from(0x0a00_0000 + n), T0), Some(mac(1)));
    }
    assert_eq!(c.lookup(Ipv4Addr::new(10, 1, 0, 0), T0), None);
}

// The property test: random sequences against a model.

#[derive(Debug, Clone)]
enum Op {
    Resolve(u8),
    Learn(u8, u8, Heard, bool),
    Confirm(u8),
    Forget(u8),
    Advance(u64),
}

fn heard() -> impl Strategy<Value = Heard> {
    prop_oneof![
        Just(Heard::Solicitation),
        (any::<bool>(), any::<bool>()).prop_map(|(solicited, override_entry)| {
            Heard::Advertisement {
                solicited,
                override_entry,
            }
        }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6).prop_map(Op::Resolve),
        3 => (0u8..6, 0u8..3, heard(), any::<bool>()).prop_map(|(i, m, h, a)| Op::Learn(i, m, h, a)),
        1 => (0u8..6).prop_map(Op::Confirm),
        1 => (0u8..6).prop_map(Op::Forget),
        3 => (0u64..2_500_000_000).prop_map(Op::Advance),
    ]
}

/// What the model knows of one neighbor.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Known {
    /// `None` while resolving.
    mac: Option<MacAddr>,
    /// When resolution began (for an INCOMPLETE entry).
    since_ns: u64,
}

fn id_of(packet: &PoolBuf) -> u32 {
    u32::from_be_bytes(packet.data()[6..10].try_into().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every packet handed to the cache comes back exactly once (sent to the
    /// address the model expects, dropped, or refused), the addresses follow
    /// the RFC's override rules, bounds hold, and once time runs out every
    /// buffer is back in the pool.
    #[test]
    fn random_sequences_keep_every_packet_and_address_straight(
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let config = NeighborConfig {
            capacity: 4,
            hold_per_neighbor: 2,
            hold_total: 5,
            seed,
            ..NeighborConfig::default()
        };
        let retrans = config.retrans_timer_ns;
        let mut c: NeighborCache<Ipv4Addr, PoolBuf> = NeighborCache::new(config);
        let mut model: BTreeMap<u8, Known> = BTreeMap::new();
        let mut out: BTreeMap<u32, u8> = BTreeMap::new();
        let mut back: BTreeSet<u32> = BTreeSet::new();
        let mut now = T0;
        let mut next_id = 0u32;
        let mut events = Vec::new();

        // Checks the actions asked for so far.
        macro_rules! settle {
            () => {
            for e in events.drain(..) {
                        match e {
                            Action::Solicit { target, .. } => {
                                prop_assert!(c.get(target, now).is_some());
                            }
                            Action::Drop { packet, target, error } => {
                                let id = id_of(&packet);
                                prop_assert_eq!(out.get(&id).map(|&n| ip(n)), Some(target));
                                prop_assert!(back.insert(id));
                                if error == ResolveError::Unreachable {
                                    // Given up no sooner than three RetransTimers
                                    // after resolution began (or forgotten).
                                    let n = target.octets()[3];
                                    if let Some(k) = model.remove(&n) {
                                        prop_assert!(now >= k.since_ns + 3 * retrans);
                                    }
                                }
                            }
                            Action::Send { .. } => prop_assert!(false, "sent outside learning"),
                        }
                    }
                    };
        }

        let all = ops.into_iter().chain(std::iter::once(Op::Advance(10 * S)));
        for op in all {
            // The cache may evict entries the model still has.
            model.retain(|&n, _| c.get(ip(n), now).is_some());
            match op {
                Op::Resolve(n) => {
                    next_id += 1;
                    let mut buf = frame(&[0u8; 64]);
                    buf.data_mut()[6..10].copy_from_slice(&next_id.to_be_bytes());
                    out.insert(next_id, n);
                    match c.resolve(ip(n), buf, now, |a| events.push(a)) {
                        Resolved::Ready(m, p) => {
                            prop_assert_eq!(Some(m), model.get(&n).and_then(|k| k.mac));
                            prop_assert!(back.insert(id_of(&p)));
                        }
                        Resolved::Held => {
                            model.entry(n).or_insert(Known { mac: None, since_ns: now });
                        }
                        Resolved::Refused(p, _) => {
                            prop_assert!(back.insert(id_of(&p)));
                            // The hold slab was full, yet resolution began.
                            if c.get(ip(n), now).is_some() {
                                model.entry(n).or_insert(Known { mac: None, since_ns: now });
                            }
                        }
                    }
                }
                Op::Learn(n, m, heard, with_address) => {
                    let addr = with_address.then_some(mac(m));
                    let before = model.get(&n).copied();
                    // No room for a new entry when every entry is resolving.
                    let no_room = c.len() == c.capacity()
                        && c.iter().all(|e| e.state == NeighborState::Incomplete);
                    let after = c.learn(ip(n), addr, heard, now, |a| events.push(a));
                    let expected = match (before, addr) {
                        (None, Some(a)) if heard == Heard::Solicitation && !no_room => Some(a),
                        (None, _) => None,
                        (Some(Known { mac: None, .. }), Some(a)) => Some(a),
                        (Some(Known { mac: None, .. }), None) => None,
                        (Some(Known { mac: Some(old), .. }), Some(a)) => match heard {
                            Heard::Advertisement { override_entry: false, .. } => Some(old),
                            _ => Some(a),
                        },
                        (Some(Known { mac: Some(old), .. }), None) => Some(old),
                    };
                    prop_assert_eq!(after.is_some(), before.is_some() || expected.is_some());
                    if let Some(m) = expected {
                        model.insert(n, Known { mac: Some(m), since_ns: now });
                    }
                    for e in events.drain(..) {
                        match e {
                            Action::Send { packet, mac: m } => {
                                prop_assert_eq!(out.get(&id_of(&packet)), Some(&n));
                                prop_assert_eq!(Some(m), addr);
                                prop_assert!(back.insert(id_of(&packet)));
                            }
                            other => prop_assert!(false, "learning asked for {:?}", other),
                        }
                    }
                }
                Op::Confirm(n) => {
                    let known = model.get(&n).is_some_and(|k| k.mac.is_some());
                    prop_assert_eq!(c.confirm(ip(n), now), known);
                }
                Op::Forget(n) => {
                    prop_assert_eq!(c.forget(ip(n), |a| events.push(a)), model.remove(&n).is_some());
                }
                Op::Advance(dt) => {
                    // Step through every deadline, as a worker would wake.
                    let end = now + dt;
                    while let Some(at) = c.next_deadline().filter(|&at| at <= end) {
                        prop_assert!(at >= now);
                        now = at;
                        c.poll(now, |a| events.push(a));
                        settle!();
                        prop_assert!(c.next_deadline().is_none_or(|d| d > now));
                    }
                    now = end;
                }
            }
            settle!();
            prop_assert!(c.len() <= 4);
            prop_assert!(c.held() <= 5);
            let held: usize = c.iter().map(|n| n.held).sum();
            prop_assert_eq!(held, c.held());
            prop_assert!(c.iter().all(|n| n.held <= 2));
            prop_assert_eq!(back.len() + c.held(), out.len());
        }
        // Ten seconds with nobody answering: everything came back.
        prop_assert_eq!(c.held(), 0);
        prop_assert_eq!(back.len(), out.len());
        drop(c);
        prop_assert!(pool().is_whole());
    }
}

#[test]
fn dropping_the_cache_returns_what_it_held() {
    let mut c: NeighborCache<Ipv4Addr, PoolBuf> = NeighborCache::new(config());
    for n in 0..3 {
        c.resolve(ip(n), frame(&[0u8; 64]), T0, |_| {});
    }
    assert_eq!(c.held(), 3);
    drop(c);
    pool().assert_whole();
}

#[test]
fn the_quick_lookup_answers_only_the_common_case_and_changes_nothing_else() {
    // `lookup_quick` is `lookup`'s inline case alone: REACHABLE, in its
    // time, used since its confirmation, the slot last found. Every other
    // case answers `None` with the entry, its state and the counters as
    // they were, so the caller's `lookup` that follows does the rest once.
    let snapshot = |c: &Cache, t| (state(c, 1, t), format!("{:?}", c.counters()));
    // REACHABLE but not yet used since its confirmation: the first use
    // must cut its time (the full lookup's work).
    let mut c = with_state(NeighborState::Reachable);
    let before = snapshot(&c, T0);
    assert_eq!(c.lookup_quick(ip(1), T0), None);
    assert_eq!(snapshot(&c, T0), before);
    assert_eq!(c.lookup(ip(1), T0), Some(mac(1)));
    // Now the common case: found, marked used, one hit counted.
    let hits = c.counters().hits;
    assert_eq!(c.lookup_quick(ip(1), T0 + 1), Some(mac(1)));
    assert_eq!(c.counters().hits, hits + 1);
    // Another neighbor, or the same one past its time: nothing done.
    let before = snapshot(&c, T0 + 1);
    assert_eq!(c.lookup_quick(ip(2), T0 + 1), None);
    assert_eq!(snapshot(&c, T0 + 1), before);
    let late = T0 + 5 * S;
    let before = snapshot(&c, late);
    assert_eq!(before.0, Some(NeighborState::Stale));
    assert_eq!(c.lookup_quick(ip(1), late), None);
    assert_eq!(
        snapshot(&c, late),
        before,
        "STALE stays until the full lookup"
    );
    assert_eq!(c.lookup(ip(1), late), Some(mac(1)));
    assert_eq!(state(&c, 1, late), Some(NeighborState::Delay));
    // DELAY, PROBE, INCOMPLETE: never the quick case.
    for target in [
        NeighborState::Delay,
        NeighborState::Probe,
        NeighborState::Incomplete,
    ] {
        let mut c = with_state(target);
        let before = snapshot(&c, T0);
        assert_eq!(c.lookup_quick(ip(1), T0), None, "{target:?}");
        assert_eq!(snapshot(&c, T0), before, "{target:?}");
    }
}

#[test]
fn a_quick_ticket_answers_as_the_quick_lookup_until_the_cache_changes() {
    // A ticket from a quick hit is a hit, counted, while nothing changed
    // and the entry's time runs; any change (here a confirmation, a full
    // lookup) or the end of its time voids it, and nothing is counted.
    let mut c = with_state(NeighborState::Reachable);
    assert_eq!(c.lookup_quick_ticket(ip(1), T0), None, "not watched yet");
    assert!(!c.lookup_ticketed(ip(1), &QuickTicket::default(), T0));
    assert_eq!(c.lookup(ip(1), T0), Some(mac(1)));
    let (m, ticket) = c.lookup_quick_ticket(ip(1), T0).unwrap();
    assert_eq!(m, mac(1));
    let hits = c.counters().hits;
    assert!(c.lookup_ticketed(ip(1), &ticket, T0 + 1));
    assert_eq!(c.counters().hits, hits + 1);
    assert!(
        !c.lookup_ticketed(ip(1), &ticket, T0 + 5 * S),
        "past its time"
    );
    assert!(c.confirm(ip(1), T0 + 2));
    let hits = c.counters().hits;
    assert!(
        !c.lookup_ticketed(ip(1), &ticket, T0 + 3),
        "confirmed since"
    );
    assert_eq!(c.counters().hits, hits);
    assert_eq!(c.lookup(ip(1), T0 + 3), Some(mac(1)));
    let (_, ticket) = c.lookup_quick_ticket(ip(1), T0 + 4).unwrap();
    assert!(c.lookup_ticketed(ip(1), &ticket, T0 + 4));
    assert_eq!(c.lookup(ip(2), T0 + 4), None);
    assert!(
        !c.lookup_ticketed(ip(1), &ticket, T0 + 4),
        "a full lookup since"
    );
}
