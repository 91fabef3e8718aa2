//! The ring in a file, read back by the decoder.

use super::decode::{decode, Event};
use super::record::{Kind, Record};
use super::ring::{SlotStatus, TraceFile};
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tpa-trace-unit-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(n: u32) -> Record {
    Record::new(Kind::AppWrite, 0, n, 0, 0, 0)
}

#[test]
fn the_ring_wraps_keeping_the_newest_records_in_order_with_their_times() {
    let dir = scratch("wrap");
    let file = TraceFile::create(&dir.join("t.trace"), 4, 8).unwrap();
    let local = "10.0.0.1:1000".parse().unwrap();
    let remote = "[2001:db8::2]:80".parse().unwrap();
    let mut ring = file.ring(2, 5, local, remote, 1_000_000).unwrap();
    // 20 records 10 µs apart: the ring keeps the last 8.
    for i in 0..20u32 {
        ring.push(write(i), 1_000_000 + u64::from(i) * 10_000);
    }
    let dump = decode(&std::fs::read(file.path()).unwrap()).unwrap();
    assert_eq!(dump.sockets.len(), 1);
    let s = &dump.sockets[0];
    assert_eq!((s.index, s.generation, s.status), (2, 5, SlotStatus::Live));
    assert_eq!((s.local, s.remote), (local, remote));
    assert_eq!(s.written, 20);
    let got: Vec<(u64, u32)> = s
        .entries
        .iter()
        .map(|e| match e.event {
            Event::Write { bytes, .. } => (e.time_us, bytes),
            other => panic!("{other:?}"),
        })
        .collect();
    let want: Vec<(u64, u32)> = (12..20u32).map(|i| (1000 + u64::from(i) * 10, i)).collect();
    assert_eq!(got, want);
    file.close_slot(2);
    let dump = decode(&std::fs::read(file.path()).unwrap()).unwrap();
    assert_eq!(dump.sockets[0].status, SlotStatus::Closed);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_long_gap_is_a_clock_record_and_times_stay_exact_across_it() {
    let dir = scratch("clock");
    let file = TraceFile::create(&dir.join("t.trace"), 1, 16).unwrap();
    let a = "10.0.0.1:1".parse().unwrap();
    let mut ring = file.ring(0, 0, a, a, 0).unwrap();
    ring.push(write(1), 5_000); // 5 µs
    ring.push(write(2), 90_000_000_000); // 90 s later: beyond dt's 65 ms
    ring.push(write(3), 90_000_020_000);
    assert_eq!(ring.written(), 4, "a clock record before the second");
    let dump = decode(&std::fs::read(file.path()).unwrap()).unwrap();
    let times: Vec<(u64, Event)> = dump.sockets[0]
        .entries
        .iter()
        .map(|e| (e.time_us, e.event))
        .collect();
    assert_eq!(times[0].0, 5);
    assert_eq!(times[1], (90_000_000, Event::Clock));
    assert_eq!(times[2].0, 90_000_000);
    assert_eq!(times[3].0, 90_000_020);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_files_are_errors_not_panics() {
    use super::decode::DecodeError;
    assert_eq!(decode(&[]), Err(DecodeError::Truncated));
    assert_eq!(decode(&[0; 64]), Err(DecodeError::BadMagic));
    let dir = scratch("bad");
    let file = TraceFile::create(&dir.join("t.trace"), 2, 4).unwrap();
    let mut bytes = std::fs::read(file.path()).unwrap();
    // Every prefix of a good file decodes or says it is truncated.
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "prefix {len}");
    }
    bytes[8] = 9; // the version
    assert_eq!(decode(&bytes), Err(DecodeError::Version(9)));
    assert!(
        TraceFile::create(&dir.join("u.trace"), 1, 6).is_err(),
        "not a power of two"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
