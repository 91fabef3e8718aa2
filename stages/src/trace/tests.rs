//! The ring in a file, read back by the decoder.

use super::decode::{decode, Event};
use super::record::{Kind, Record, TICK_NS};
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
    let t0 = 1000 * TICK_NS;
    let mut ring = file.ring(2, 5, local, remote, t0).unwrap();
    // 20 records 10 ticks apart: the ring keeps the last 8.
    for i in 0..20u32 {
        ring.push(write(i), t0 + u64::from(i) * 10 * TICK_NS);
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
            Event::Write { bytes, .. } => (e.time_ns, bytes),
            other => panic!("{other:?}"),
        })
        .collect();
    let want: Vec<(u64, u32)> = (12..20u32)
        .map(|i| (t0 + u64::from(i) * 10 * TICK_NS, i))
        .collect();
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
    ring.push(write(1), 5 * TICK_NS + 1000); // within the fifth tick
    ring.push(write(2), 90_000_000_000); // 90 s later: beyond dt's 67 ms
    ring.push(write(3), 90_000_000_000 + 20 * TICK_NS);
    assert_eq!(ring.written(), 4, "a clock record before the second");
    let dump = decode(&std::fs::read(file.path()).unwrap()).unwrap();
    let times: Vec<(u64, Event)> = dump.sockets[0]
        .entries
        .iter()
        .map(|e| (e.time_ns, e.event))
        .collect();
    // 90 s is a whole number of ticks; 5 ticks and 1000 ns is 5 ticks.
    assert_eq!(times[0].0, 5 * TICK_NS);
    assert_eq!(times[1], (90_000_000_000, Event::Clock));
    assert_eq!(times[2].0, 90_000_000_000);
    assert_eq!(times[3].0, 90_000_000_000 + 20 * TICK_NS);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reads_of_one_tick_share_a_record_and_others_do_not() {
    let dir = scratch("reads");
    let file = TraceFile::create(&dir.join("t.trace"), 1, 16).unwrap();
    let a = "10.0.0.1:1".parse().unwrap();
    let mut ring = file.ring(0, 0, a, a, 0).unwrap();
    let t = 7 * TICK_NS;
    ring.push_read(100, 300, t);
    ring.push_read(100, 200, t + 10); // the same tick: joins
    ring.push_read(50, 150, t + 20);
    ring.push(write(9), t + 30); // something else: the next read is new
    ring.push_read(150, 0, t + 40);
    ring.push_read(1, 0, t + TICK_NS); // the next tick: new
    assert_eq!(ring.written(), 4);
    let dump = decode(&std::fs::read(file.path()).unwrap()).unwrap();
    let events: Vec<Event> = dump.sockets[0].entries.iter().map(|e| e.event).collect();
    let read = |bytes, queued, reads| Event::Read {
        bytes,
        queued,
        reads,
    };
    assert_eq!(
        events,
        vec![
            read(250, 150, 3),
            Event::Write {
                bytes: 9,
                queued: 0
            },
            read(150, 0, 1),
            read(1, 0, 1),
        ]
    );
    assert_eq!(
        read(250, 150, 3).to_string(),
        "read  250 bytes in 3 reads, 150 left"
    );
    assert_eq!(read(1, 0, 1).to_string(), "read  1 bytes, 0 left");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn segments_are_stored_as_on_the_wire_and_decoded_relative_to_the_isns() {
    use super::decode::Segment;
    let dir = scratch("isn");
    let file = TraceFile::create(&dir.join("t.trace"), 1, 16).unwrap();
    let a = "10.0.0.1:1".parse().unwrap();
    let mut ring = file.ring(0, 0, a, a, 0).unwrap();
    // Our SYN (no ACK: its ack field is shown as is), the peer's SYN-ACK,
    // and data of ours past the 2^32 wrap.
    ring.push(Record::new(Kind::SegOut, 0x02, 0xffff_fff0, 0, 100, 0), 0);
    ring.push(Record::new(Kind::SegIn, 0x12, 5000, 0xffff_fff1, 200, 0), 0);
    ring.push(Record::new(Kind::Retransmit, 0x10, 0x10, 5001, 100, 10), 0);
    ring.set_isns(0xffff_fff0, 5000); // known once established
    let dump = decode(&std::fs::read(file.path()).unwrap()).unwrap();
    let events: Vec<Event> = dump.sockets[0].entries.iter().map(|e| e.event).collect();
    let seg = |flags, seq, ack, window, len| Segment {
        seq,
        ack,
        window,
        flags,
        len,
    };
    assert_eq!(
        events,
        vec![
            Event::Out(seg(0x02, 0, 0, 100, 0)),
            Event::In(seg(0x12, 0, 1, 200, 0)),
            Event::Retransmit(seg(0x10, 0x20, 1, 100, 10)),
        ]
    );
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

#[test]
fn the_trace_table_is_read_with_the_variables_over_it_and_errors_name_the_key() {
    use super::TraceConfig;
    let text = "[tcp]\nmss = 1000\n[trace]\nenabled = true\nrecords = 128\narchive_per_sec = 3\ndir = \"/x/y\"\n";
    let cfg = TraceConfig::from_toml(text).unwrap();
    assert!(cfg.enabled);
    assert_eq!((cfg.records, cfg.archive_per_sec), (128, 3));
    assert_eq!(cfg.dir, PathBuf::from("/x/y"));
    // The variables win; others (and the TCP table) are not the trace's.
    let cfg = TraceConfig::load(
        text,
        [
            ("TPA_TRACE", "off"),
            ("TPA_TRACE_RECORDS", "16"),
            ("TPA_RUN_DIR", "/z"),
            ("TPA_TCP_MSS", "nonsense"),
            ("HOME", "/root"),
        ],
    )
    .unwrap();
    assert!(!cfg.enabled);
    assert_eq!((cfg.records, cfg.archive_per_sec), (16, 3));
    assert_eq!(cfg.dir, PathBuf::from("/z"));
    // No [trace]: the defaults.
    assert_eq!(TraceConfig::from_toml("").unwrap(), TraceConfig::default());
    let file_err = |text: &str| TraceConfig::from_toml(text).unwrap_err().to_string();
    for (text, want) in [
        (
            "[trace]\nrecords = 6",
            "trace.records: 6 is not a power of two of 4 or more",
        ),
        (
            "[trace]\nrecords = \"64\"",
            "trace.records: \"64\" is not a power of two of 4 or more",
        ),
        (
            "[trace]\nenabled = 1",
            "trace.enabled: 1 is not a switch (true or false)",
        ),
        (
            "[trace]\narchive_per_sec = -1",
            "trace.archive_per_sec: -1 is not a count",
        ),
        ("[trace]\ndir = 5", "trace.dir: 5 is not a path (a string)"),
        ("[trace]\ndir = \"\"", "trace.dir: an empty path"),
        (
            "[trace]\nenable = true",
            "trace.enable: unknown key; the nearest valid key is trace.enabled",
        ),
        ("trace = 1", "trace: a table is expected ([trace])"),
    ] {
        assert_eq!(file_err(text), want, "{text}");
    }
    assert!(file_err("[trace").starts_with("trace config: not valid TOML"));
    let env_err = |name: &str, value: &str| {
        let e = TraceConfig::load("", [(name, value)]).unwrap_err();
        (e.key().map(str::to_string), e.to_string())
    };
    assert_eq!(
        env_err("TPA_TRACE", "yes"),
        (
            Some("trace.enabled".to_string()),
            "trace.enabled (from TPA_TRACE): yes is not a switch (true or false)".to_string()
        )
    );
    assert_eq!(
        env_err("TPA_TRACE_ARCHIVE_PER_SEC", "ten").1,
        "trace.archive_per_sec (from TPA_TRACE_ARCHIVE_PER_SEC): ten is not a count"
    );
    assert_eq!(
        env_err("TPA_TRACE_RECORD", "64"),
        (
            None,
            "TPA_TRACE_RECORD: names no trace key; the nearest valid variable is TPA_TRACE_RECORDS"
                .to_string()
        )
    );
}
