//! Runs what the shadowed declarations generated.

use std::net::Ipv4Addr;

use my_tpa::wire::MacAddr;

use crate::shadowed::{Options, OptionsView, Probe, ProbeKind, ProbeView};

#[test]
fn a_header_declared_in_a_hostile_module_round_trips() {
    let probe = Probe {
        version: 1,
        class: 0x1a5,
        last: true,
        reserved: 0,
        kind: ProbeKind::Reply,
        hops: 9,
        checksum: 0,
        cookie: 0x0403_0201,
        src: Ipv4Addr::new(10, 0, 0, 1),
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        tag: [0xaa, 0xbb],
    };
    let mut buf = [0u8; Probe::LEN + 3];
    buf[Probe::LEN..].copy_from_slice(b"abc");
    assert_eq!(probe.emit(&mut buf), Ok(Probe::LEN));
    // version 1 (3 bits) then class 0x1a5 (9 bits), last, reserved 0.
    assert_eq!(buf[..2], [0b0011_1010, 0b0101_1000]);
    assert_eq!(buf[2..4], [2, 9]);
    assert_eq!(buf[6..10], [1, 2, 3, 4]);

    let view = ProbeView::new(&buf[..]).expect("a whole header");
    assert!(view.checksum_ok());
    assert_eq!(view.payload(), b"abc");
    let parsed = Probe::parse(&buf).expect("a whole header");
    assert_eq!(
        parsed,
        Probe {
            checksum: parsed.checksum,
            ..probe
        }
    );
    assert_ne!(parsed.checksum, 0);
    assert_eq!(parsed.kind, ProbeKind::Reply);
    assert_eq!(Probe::default().kind, ProbeKind::Unknown(0));
    assert!(format!("{view:?}").starts_with("ProbeView { version: 1,"));
}

#[test]
fn a_dynamic_header_declared_in_a_hostile_module_walks_its_options() {
    let header = Options {
        words: 2,
        reserved: 0,
        value: 7,
        checksum: 0,
    };
    let mut buf = [0u8; 10];
    buf[4..8].copy_from_slice(&[9, 8, 7, 6]);
    assert_eq!(header.emit(&mut buf), Ok(8));
    let view = OptionsView::new(&buf[..]).expect("a whole header");
    assert_eq!(view.header_len(), 8);
    assert!(view.checksum_ok());
    assert_eq!(view.options_iter().rest, [9, 8, 7, 6]);
    assert_eq!(view.payload().len(), 2);
    buf[0] = 0x00; // zero words: shorter than the fixed part
    assert!(matches!(
        OptionsView::new(&buf[..]),
        Err(my_tpa::header::HeaderError::BadLength { declared: 0, .. })
    ));
}

mod pipelines {
    use my_tpa::buf::{BufferPool, PacketBuf, PoolBuf};
    use my_tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
    use my_tpa::port::{Burst, Port};
    use my_tpa::stage::Reason;

    use crate::shadowed::{Count, Echo, Plain, Reflect, Split};

    fn wire() -> (MemoryPort, MemoryPort) {
        MemoryWire::pair(WireConfig::default()).expect("memory wire")
    }

    fn send(peer: &mut MemoryPort, frames: &[&[u8]]) {
        let mut tx: Burst<PoolBuf> = Burst::new();
        for f in frames {
            let mut b = peer.alloc().expect("pool has room");
            b.extend_from_slice(f).expect("frame fits a buffer");
            tx.push(b);
        }
        assert_eq!(peer.tx_burst(&mut tx), frames.len(), "wire full");
    }

    fn receive(peer: &mut MemoryPort) -> Vec<Vec<u8>> {
        let mut rx: Burst<PoolBuf> = Burst::new();
        peer.rx_burst(&mut rx);
        rx.drain().map(|b| b.data().to_vec()).collect()
    }

    #[test]
    fn a_pipeline_declared_in_a_hostile_module_runs() {
        let (port, mut peer) = wire();
        let (host, mut kernel) = wire();
        let mut p = Reflect::new(port, host, Count::default(), Split, Echo);
        assert_eq!(Reflect::STAGES, ["split", "echo"]);
        send(&mut peer, &[&[0xff, 1], &[1, 2], &[], &[3]]);

        let it = p.run_once_at(5);
        assert_eq!((it.rx, it.tx), (4, 2));
        assert_eq!(receive(&mut peer), [vec![1, 2], vec![3]]);
        assert_eq!(receive(&mut kernel), [vec![0xff, 1]]);
        assert_eq!(p.counts(), (4, 2));
        let split = p.stats().stage("split").expect("a stage called split");
        assert_eq!((split.passed, split.to_host), (2, 1));
        assert_eq!(split.dropped(Reason::custom(0)), 1);
        assert!(p.stats().to_string().contains("drop:empty 1"));
        assert_eq!(p.stats().stage("echo").expect("echo").transmitted, 2);

        let pools = [peer.pool().clone(), kernel.pool().clone()];
        drop((p, peer, kernel));
        for pool in &pools {
            pool.assert_whole();
        }
    }

    #[test]
    fn a_generic_pipeline_with_a_renamed_crate_path_runs() {
        let (port, mut peer) = wire();
        let mut p = Plain::new(port, Echo);
        assert_eq!(Plain::<MemoryPort>::STAGES, ["now_ns"]);
        send(&mut peer, &[&[7; 60]]);
        assert_eq!(p.run_once_at(1).tx, 1);
        assert_eq!(p.stats().stage("now_ns").expect("a stage").transmitted, 1);
        assert_eq!(receive(&mut peer), [vec![7; 60]]);
        let pool = peer.pool().clone();
        drop((p, peer));
        pool.assert_whole();
    }
}
