//! Unit tests of the socket table.

use super::*;
use crate::tcp::seq::SeqNumber;
use tpa::buf::PoolBuf;

fn tuple() -> FourTuple {
    FourTuple {
        local: "10.0.0.1:40000".parse().unwrap(),
        remote: "10.0.0.2:5201".parse().unwrap(),
    }
}

#[test]
fn the_lookup_never_takes_a_reused_slot_for_its_old_tuple() {
    let mut table: TcpSockets<PoolBuf> = TcpSockets::new(TcpConfig::default(), 3);
    let first = tuple();
    let a = table
        .connect(first.local, first.remote, 1460, 0, 0)
        .unwrap();
    assert_eq!(table.find(&first), Some(a.index));
    // Aborted, its RST sent and its slot freed: the slot found last
    // goes to the next connection, on another tuple.
    table.abort(a).unwrap();
    while table.next_segment(a.index, 0, &mut || None).is_some() {}
    table.settle(a.index, &mut Vec::new());
    assert_eq!(table.find(&first), None);
    let second = FourTuple {
        local: "10.0.0.1:40001".parse().unwrap(),
        ..first
    };
    let b = table
        .connect(second.local, second.remote, 1460, 0, 0)
        .unwrap();
    assert_eq!(b.index, a.index, "the slot is reused");
    assert_eq!(table.find(&first), None, "the old tuple is not found there");
    assert_eq!(table.find(&second), Some(b.index));
    // A third connection in another slot: found by the map, then by
    // the slot found last, and the second still by the map.
    let third = FourTuple {
        local: "10.0.0.1:40002".parse().unwrap(),
        ..first
    };
    let c = table
        .connect(third.local, third.remote, 1460, 0, 0)
        .unwrap();
    assert_ne!(c.index, b.index);
    assert_eq!(table.find(&third), Some(c.index));
    assert_eq!(table.find(&third), Some(c.index));
    assert_eq!(table.find(&second), Some(b.index));
}

/// The ISN and timestamp offset a table built from `seed` (and `key`,
/// if any) gives `tuple()` at pipeline time `now_ns`.
fn numbers(seed: u64, key: Option<&HostKey>, now_ns: u64) -> (SeqNumber, u32) {
    let mut table: TcpSockets<PoolBuf> = TcpSockets::new(TcpConfig::default(), seed);
    if let Some(key) = key {
        table = table.with_host_key(key);
    }
    let params = table.params(&tuple(), 1460, None, now_ns);
    (params.iss, params.ts_offset)
}

#[test]
fn one_host_key_gives_one_isn_and_ts_offset_whatever_the_seed() {
    let key = HostKey::from_secret([3; 32], 0);
    let other = HostKey::from_secret([4; 32], 0);
    for seed in [1, 2, 0xdead_beef] {
        assert_eq!(numbers(seed, Some(&key), 0), numbers(99, Some(&key), 0));
        let (isn, ts) = numbers(seed, Some(&key), 0);
        let (other_isn, other_ts) = numbers(seed, Some(&other), 0);
        assert_ne!(isn, other_isn, "seed {seed}");
        assert_ne!(ts, other_ts, "seed {seed}");
    }
    // Without a host key the seed keys them, as the simulation needs.
    assert_eq!(numbers(1, None, 0), numbers(1, None, 0));
    assert_ne!(numbers(1, None, 0), numbers(2, None, 0));
}

#[test]
fn a_later_process_goes_on_from_the_boot_clock() {
    // Process A's pipeline clock started at boot + 1 s; B's at boot +
    // 9 s. At the same boot time (10 s) both give the same numbers.
    let secret = [5; 32];
    let a = HostKey::from_secret(secret, 1_000_000_000);
    let b = HostKey::from_secret(secret, 9_000_000_000);
    let (isn_a, ts_a) = numbers(1, Some(&a), 9_000_000_000);
    let (isn_b, ts_b) = numbers(2, Some(&b), 1_000_000_000);
    assert_eq!(isn_a, isn_b);
    // The connection's TSval is pipeline milliseconds plus the offset.
    assert_eq!(ts_a.wrapping_add(9_000), ts_b.wrapping_add(1_000));
    // A second later on the boot clock, B's numbers are above A's.
    let (isn_later, _) = numbers(2, Some(&b), 2_000_000_000);
    assert_eq!(isn_later.wrapping_sub(isn_a), 250_000);
}

#[test]
fn a_closed_connection_s_entry_boxes_the_next_one_fresh() {
    let mut table: TcpSockets<PoolBuf> = TcpSockets::new(TcpConfig::default(), 3);
    let entry_at =
        |table: &TcpSockets<PoolBuf>, index: u32| match &table.slots[index as usize].entry {
            Entry::Conn(c) => &**c as *const Conn<PoolBuf>,
            _ => panic!("slot {index} holds no connection"),
        };
    let first = tuple();
    let a = table
        .connect(first.local, first.remote, 1460, 0, 0)
        .unwrap();
    let boxed = entry_at(&table, a.index);
    table.abort(a).unwrap();
    while table.next_segment(a.index, 0, &mut || None).is_some() {}
    table.settle(a.index, &mut Vec::new());
    assert_eq!(table.spare_conns.len(), 1, "the closed entry is kept");

    // The next connection takes the kept box, with its own state: no
    // trace of the old one (state, tuple, application flags).
    let second = FourTuple {
        local: "10.0.0.1:40001".parse().unwrap(),
        ..first
    };
    let b = table
        .connect(second.local, second.remote, 1460, 0, 0)
        .unwrap();
    assert!(table.spare_conns.is_empty());
    assert_eq!(entry_at(&table, b.index), boxed, "the same allocation");
    assert_eq!(table.tuple(b), Ok(second));
    assert_eq!(table.state(b), Ok(State::SynSent));
    let Entry::Conn(c) = &table.slots[b.index as usize].entry else {
        unreachable!()
    };
    assert!(!c.app_closed && c.listener.is_none());
    assert_eq!(table.find(&second), Some(b.index));
    assert_eq!(table.find(&first), None);
}
