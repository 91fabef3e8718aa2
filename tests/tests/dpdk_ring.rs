//! The DPDK port over `net_ring` vdevs: loopback of bytes and metadata,
//! bursts, chained and external buffers, transmit checksums, mbuf
//! accounting and errors. Run as root:
//! `cargo test -p tpa-tests --features dpdk --test dpdk_ring`.

#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::Mutex;

use dpdk_common::{close_whole, eal, serial, small_config, vdev_name};
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use tpa::buf::{BufError, ChecksumStatus, L4Protocol, LayerOffsets, Meta, PacketBuf};
use tpa::port::dpdk::{DmaMapping, DpdkDevice, DpdkPort, Eal, ExtBufOwner, ExtMemRegion, Mbuf};
use tpa::port::offload::OffloadStats;
use tpa::port::{Burst, Port, PortError};

/// A ring vdev: what queue `q` transmits comes back on queue `q`.
fn ring(tag: &str, queues: u16) -> DpdkDevice {
    let name = vdev_name("net_ring", tag);
    DpdkDevice::create_vdev(eal(), &name, "", &small_config(queues))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// An mbuf holding `bytes`.
fn mbuf_with(port: &mut DpdkPort, bytes: &[u8]) -> Mbuf {
    let mut m = port.alloc().expect("mbuf");
    m.append(bytes.len()).expect("room").copy_from_slice(bytes);
    m
}

/// Receives until `want` packets arrived (the ring delivers at once: one
/// poll suffices, a few guard against nothing).
fn receive(port: &mut DpdkPort, want: usize) -> Vec<Mbuf> {
    let mut got = Vec::new();
    for _ in 0..100 {
        let mut rx: Burst<Mbuf> = Burst::new();
        port.rx_burst(&mut rx);
        got.extend(rx.drain());
        if got.len() >= want {
            break;
        }
    }
    got
}

/// A frame with a recognisable payload.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental EtherType
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_add(seq) as u8;
    }
    f
}

/// A TCP/IPv4 frame with correct checksums, and its layer offsets.
fn tcp_frame(payload: &[u8]) -> (Vec<u8>, LayerOffsets) {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 9, 0, 1], [10, 9, 0, 2], 64)
        .tcp(40000, 6379, 12345, 65535);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build");
    (
        out,
        LayerOffsets {
            l2: 0,
            l3: 14,
            l4: 34,
            payload: 54,
        },
    )
}

#[test]
fn ring_loopback_carries_bytes_and_meta() {
    let _s = serial();
    let dev = ring("lo", 1);
    let mut port = dev.port(0).unwrap();
    assert_eq!(port.caps().queues, 1);
    assert!(!port.caps().rss, "one queue: no RSS");
    let sent = frame(7, 128);
    let mut tx: Burst<Mbuf> = Burst::new();
    tx.push(mbuf_with(&mut port, &sent));
    assert_eq!(port.tx_burst(&mut tx), 1);
    assert!(tx.is_empty());

    let got = receive(&mut port, 1);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.data(), &sent[..]);
    assert_eq!(m.total_len(), sent.len());
    assert_eq!(m.segments().count(), 1);
    let meta = m.meta();
    assert_eq!(meta.rx_queue, 0);
    assert_eq!(
        meta.l3_checksum,
        ChecksumStatus::Unknown,
        "net_ring checks nothing"
    );
    assert_eq!(meta.l4_checksum, ChecksumStatus::Unknown);
    assert_eq!(meta.rss_hash, None);
    assert_eq!(meta.flow_mark, None);
    assert_eq!(meta.layers, LayerOffsets::default());
    drop(got);
    assert_eq!(port.pool().in_use(), 0, "every mbuf is back");
    drop(port);
    close_whole(dev);
}

#[test]
fn ring_bursts_keep_order_and_return_every_mbuf() {
    let _s = serial();
    let dev = ring("burst", 1);
    let mut port = dev.port(0).unwrap();
    let capacity = port.pool().capacity();
    let total = 200u32;
    let mut next_rx = 0u32;
    for start in (0..total).step_by(32) {
        let mut tx: Burst<Mbuf> = Burst::new();
        for seq in start..(start + 32).min(total) {
            tx.push(mbuf_with(&mut port, &frame(seq, 60 + seq as usize)));
        }
        let n = tx.len();
        assert_eq!(port.tx_burst(&mut tx), n);
        for m in receive(&mut port, n) {
            assert_eq!(
                m.data(),
                &frame(next_rx, 60 + next_rx as usize)[..],
                "packet {next_rx}"
            );
            next_rx += 1;
        }
    }
    assert_eq!(next_rx, total);
    assert_eq!(port.pool().in_use(), 0);
    assert_eq!(port.pool().available(), capacity);
    let stats = dev.stats().unwrap();
    assert_eq!(stats.tx_packets, u64::from(total));
    assert_eq!(stats.rx_packets, u64::from(total));
    drop(port);
    close_whole(dev);
}

/// Frames sent and never received wait in the ring; closing the device
/// gives their mbufs back to the pool.
#[test]
fn frames_left_on_the_ring_come_back_when_it_closes() {
    let _s = serial();
    let dev = ring("left", 1);
    let mut port = dev.port(0).unwrap();
    let mut tx: Burst<Mbuf> = Burst::new();
    for seq in 0..8 {
        tx.push(mbuf_with(&mut port, &frame(seq, 64)));
    }
    assert_eq!(port.tx_burst(&mut tx), 8);
    assert_eq!(port.pool().in_use(), 8, "the ring holds them");
    drop(port);
    close_whole(dev);
}

/// A ring pair is a cable: what one end sends only the other receives, in
/// both directions; frames left in flight either way come back when the
/// two are closed.
#[test]
fn a_ring_pair_carries_frames_between_two_ports() {
    let _s = serial();
    let (a, b) = DpdkDevice::ring_pair(eal(), "pair0", &small_config(1)).unwrap();
    assert_eq!((a.name(), b.name()), ("net_ring_pair0a", "net_ring_pair0b"));
    assert_ne!(a.port_id(), b.port_id());
    let (mut pa, mut pb) = (a.port(0).unwrap(), b.port(0).unwrap());
    fn one_way(from: &mut DpdkPort, to: &mut DpdkPort, seq: u32) {
        let mut tx: Burst<Mbuf> = Burst::new();
        tx.push(mbuf_with(from, &frame(seq, 64)));
        assert_eq!(from.tx_burst(&mut tx), 1);
        assert!(receive(from, 1).is_empty(), "no loopback");
        let got = receive(to, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data(), &frame(seq, 64)[..]);
    }
    one_way(&mut pa, &mut pb, 1);
    one_way(&mut pb, &mut pa, 2);
    // Left in flight: A's mbufs on the way to B, B's on the way to A.
    let mut tx: Burst<Mbuf> = Burst::new();
    tx.push(mbuf_with(&mut pa, &frame(3, 64)));
    assert_eq!(pa.tx_burst(&mut tx), 1);
    tx.push(mbuf_with(&mut pb, &frame(4, 64)));
    assert_eq!(pb.tx_burst(&mut tx), 1);
    let (pool_a, pool_b) = (pa.pool().in_use(), pb.pool().in_use());
    assert_eq!((pool_a, pool_b), (1, 1));
    drop((pa, pb));
    let pools: Vec<_> = [a, b]
        .into_iter()
        .flat_map(|d| d.close().unwrap_or_else(|_| panic!("still in use")))
        .collect();
    for pool in pools {
        tpa::buf::BufferPool::assert_whole(&*pool);
    }
    assert!(
        DpdkDevice::ring_pair(eal(), "pair1", &small_config(17)).is_err(),
        "at most RTE_PMD_RING_MAX_RX_RINGS (16) queue pairs"
    );
}

#[test]
fn ring_queues_are_separate() {
    let _s = serial();
    let dev = ring("mq", 2);
    let mut q0 = dev.port(0).unwrap();
    let mut q1 = dev.port(1).unwrap();
    assert_eq!(q1.caps().queue, 1);
    let mut tx: Burst<Mbuf> = Burst::new();
    tx.push(mbuf_with(&mut q1, &frame(1, 64)));
    assert_eq!(q1.tx_burst(&mut tx), 1);
    assert!(
        receive(&mut q0, 1).is_empty(),
        "queue 0 sees nothing of queue 1"
    );
    let got = receive(&mut q1, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].meta().rx_queue, 1);
    drop(got);
    assert_eq!(q0.pool().in_use() + q1.pool().in_use(), 0);
    drop((q0, q1));
    close_whole(dev);
}

#[test]
fn workers_drive_their_own_queues_from_their_own_threads() {
    let _s = serial();
    // net_ring names its rings ETH_RXTX<i>_<vdev>: keep the vdev name short
    // so they fit DPDK's ring name limit.
    let dev = ring("wk", 2);
    let ports = vec![dev.port(0).unwrap(), dev.port(1).unwrap()];
    std::thread::scope(|scope| {
        for mut port in ports {
            scope.spawn(move || {
                let q = port.caps().queue;
                for round in 0..50u32 {
                    let seq = u32::from(q) << 16 | round;
                    let mut tx: Burst<Mbuf> = Burst::new();
                    tx.push(mbuf_with(&mut port, &frame(seq, 64)));
                    assert_eq!(port.tx_burst(&mut tx), 1);
                    let got = receive(&mut port, 1);
                    assert_eq!(got.len(), 1, "queue {q} round {round}");
                    assert_eq!(got[0].data(), &frame(seq, 64)[..], "only our own packet");
                    assert_eq!(got[0].meta().rx_queue, q);
                }
                assert_eq!(port.pool().in_use(), 0);
            });
        }
    });
    close_whole(dev);
}

#[test]
fn mbuf_edits_in_place_and_refuses_what_does_not_fit() {
    let _s = serial();
    let dev = ring("edit", 1);
    let mut port = dev.port(0).unwrap();
    let mut m = port.alloc().unwrap();
    assert_eq!(m.headroom(), 128, "RTE_PKTMBUF_HEADROOM");
    assert_eq!(*m.meta(), Meta::default());
    let room = m.tailroom();
    m.append(4).unwrap().copy_from_slice(b"data");
    m.prepend(2).unwrap().copy_from_slice(b"hd");
    assert_eq!(m.data(), b"hddata");
    assert_eq!(m.headroom(), 126);
    assert_eq!(m.tailroom(), room - 4);
    assert_eq!(
        m.prepend(127).unwrap_err(),
        BufError::NoHeadroom {
            needed: 127,
            available: 126
        }
    );
    assert!(matches!(m.append(room), Err(BufError::NoTailroom { .. })));
    assert_eq!(
        m.trim_front(7).unwrap_err(),
        BufError::TooShort {
            needed: 7,
            available: 6
        }
    );
    assert_eq!(m.data(), b"hddata", "failed edits change nothing");
    m.trim_front(2).unwrap();
    m.trim_back(1).unwrap();
    assert_eq!(m.data(), b"dat");
    assert_eq!(m.pkt_len(), 3);
    m.meta_mut().flow_mark = Some(9);
    assert_eq!(m.meta().flow_mark, Some(9));
    drop(m);
    assert_eq!(port.pool().in_use(), 0);
    drop(port);
    close_whole(dev);
}

#[test]
fn chained_mbufs_cross_the_ring_whole() {
    let _s = serial();
    let dev = ring("chain", 1);
    let mut port = dev.port(0).unwrap();
    let mut head = mbuf_with(&mut port, &frame(3, 40));
    let tail = mbuf_with(&mut port, b"second segment");
    head.chain(tail).unwrap();
    assert_eq!(head.nb_segs(), 2);
    assert_eq!(head.total_len(), 40 + 14);
    let mut tx: Burst<Mbuf> = Burst::new();
    tx.push(head);
    assert_eq!(port.tx_burst(&mut tx), 1);
    let got = receive(&mut port, 1);
    let segs: Vec<&[u8]> = got[0].segments().collect();
    assert_eq!(segs, vec![&frame(3, 40)[..], &b"second segment"[..]]);
    assert_eq!(port.pool().in_use(), 2);
    drop(got);
    assert_eq!(port.pool().in_use(), 0, "the whole chain is freed");
    drop(port);
    close_whole(dev);
}

/// Application memory handed out in 2 KiB pieces; records releases.
struct Pieces {
    released: Mutex<Vec<usize>>,
}

impl ExtBufOwner for Pieces {
    fn release(&self, addr: NonNull<u8>) {
        self.released.lock().unwrap().push(addr.as_ptr() as usize);
    }
}

#[test]
fn external_memory_is_sent_without_copying_and_returned() {
    let _s = serial();
    let dev = ring("ext", 1);
    let mut port = dev.port(0).unwrap();
    const PAGE: usize = 4096;
    let layout = Layout::from_size_align(4 * PAGE, PAGE).unwrap();
    // SAFETY: non-zero size.
    let base = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("memory");
    let owner = Pieces {
        released: Mutex::new(Vec::new()),
    };
    {
        // SAFETY: the memory outlives the region (freed after the block) and
        // is not reused while pieces are in flight.
        let mut region =
            unsafe { ExtMemRegion::register(eal(), base, 4 * PAGE, PAGE, owner) }.unwrap();
        // With --no-huge the IOVA mode is VA, so the mapping is asked of
        // the device; DPDK 22.11's vdev bus accepts it (a no-op for a driver
        // without a DMA map operation of its own, as net_ring is).
        assert!(eal().iova_is_va(), "--no-huge runs with IOVA as VA");
        assert_eq!(region.dma_map(&dev).unwrap(), DmaMapping::Mapped);

        let piece = NonNull::new(base.as_ptr().wrapping_add(PAGE)).unwrap();
        // SAFETY: inside the allocation; nobody else touches it.
        unsafe { std::ptr::copy_nonoverlapping(b"zero-copy payload".as_ptr(), piece.as_ptr(), 17) };
        let payload = region.attach(port.pool(), piece, 17).expect("attach");
        assert!(payload.has_external_buffer());
        assert_eq!(
            payload.data().as_ptr(),
            piece.as_ptr().cast_const(),
            "no copy"
        );
        let outside = NonNull::new(base.as_ptr().wrapping_add(4 * PAGE)).unwrap();
        assert!(
            region.attach(port.pool(), outside, 1).is_none(),
            "outside the region"
        );
        assert_eq!(region.in_flight(), 1);

        let mut head = mbuf_with(&mut port, &frame(5, 20));
        head.chain(payload).unwrap();
        let mut tx: Burst<Mbuf> = Burst::new();
        tx.push(head);
        assert_eq!(port.tx_burst(&mut tx), 1);
        let got = receive(&mut port, 1);
        let segs: Vec<&[u8]> = got[0].segments().collect();
        assert_eq!(segs[1], b"zero-copy payload");
        assert_eq!(segs[1].as_ptr(), piece.as_ptr().cast_const());
        assert!(
            region.owner().released.lock().unwrap().is_empty(),
            "still in use"
        );
        drop(got);
        assert_eq!(
            *region.owner().released.lock().unwrap(),
            vec![piece.as_ptr() as usize]
        );
        assert_eq!(region.in_flight(), 0);
        assert_eq!(port.pool().in_use(), 0);
    }
    // SAFETY: allocated above with `layout`; the region is gone.
    unsafe { dealloc(base.as_ptr(), layout) };
    drop(port);
    close_whole(dev);
}

#[test]
fn checksums_fall_back_to_software_on_a_port_without_offloads() {
    let _s = serial();
    let dev = ring("csum", 1);
    let mut port = dev.port(0).unwrap();
    assert!(
        !port.caps().tx_offloads.tcp_checksum,
        "net_ring offloads nothing"
    );
    let (good, layers) = tcp_frame(b"GET key\r\n");
    let mut broken = good.clone();
    broken[24..26].copy_from_slice(&[0xde, 0xad]); // IPv4 checksum
    broken[50..52].copy_from_slice(&[0xbe, 0xef]); // TCP checksum
    let mut tx: Burst<Mbuf> = Burst::new();
    let mut m = mbuf_with(&mut port, &broken);
    m.meta_mut().layers = layers;
    m.meta_mut().tx.request_checksums(L4Protocol::Tcp);
    tx.push(m);
    // Without layer offsets the request cannot be carried out: dropped.
    let mut unset = mbuf_with(&mut port, &broken);
    unset.meta_mut().tx.request_checksums(L4Protocol::Tcp);
    tx.push(unset);
    assert_eq!(port.tx_burst(&mut tx), 2);
    assert_eq!(port.offload_stats().malformed, 1);
    let got = receive(&mut port, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].data(),
        &good[..],
        "software checksums equal etherparse's"
    );
    assert!(got[0].meta().tx.is_empty());
    assert_eq!(
        got[0].ol_flags() & (0xf << 52),
        0,
        "no offload requested of the device"
    );
    drop(got);
    assert_eq!(port.pool().in_use(), 0);
    drop(port);
    close_whole(dev);
}

#[test]
fn software_tso_segments_a_chained_packet() {
    let _s = serial();
    let dev = ring("tso", 1);
    let mut port = dev.port(0).unwrap();
    assert!(!port.caps().tx_offloads.tso, "net_ring has no TSO");
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let (good, layers) = tcp_frame(&data);
    // Headers and the first 1000 payload bytes, then the rest chained.
    let mut head = mbuf_with(&mut port, &good[..54 + 1000]);
    head.chain(mbuf_with(&mut port, &good[54 + 1000..]))
        .unwrap();
    head.meta_mut().layers = layers;
    head.meta_mut()
        .tx
        .request_checksums(L4Protocol::Tcp)
        .request_tso(1200);
    let mut tx: Burst<Mbuf> = Burst::new();
    tx.push(head);
    assert_eq!(port.tx_burst(&mut tx), 1);
    assert_eq!(
        port.offload_stats(),
        OffloadStats {
            malformed: 0,
            tso_packets: 1,
            tso_segments: 3,
            tso_dropped: 0,
            ..OffloadStats::default()
        }
    );
    let got = receive(&mut port, 3);
    assert_eq!(got.len(), 3);
    let mut joined = Vec::new();
    for (i, m) in got.iter().enumerate() {
        let p = SlicedPacket::from_ethernet(m.data()).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!("IPv4")
        };
        let h = ip.header();
        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            panic!("TCP")
        };
        assert_eq!(
            t.checksum(),
            t.calc_checksum_ipv4(h.source(), h.destination()).unwrap()
        );
        assert_eq!(t.sequence_number(), 12345 + 1200 * i as u32);
        joined.extend_from_slice(t.payload());
    }
    assert_eq!(joined, data);
    drop(got);
    assert_eq!(port.pool().in_use(), 0, "no mbuf leaked");
    drop(port);
    close_whole(dev);
}

#[test]
fn errors_name_the_device_and_the_cause() {
    let _s = serial();
    let eal = eal();
    assert!(
        std::ptr::eq(Eal::init(&dpdk_common::eal_args()).unwrap(), eal),
        "same args: same EAL"
    );
    let other = Eal::init(&["-l", "0", "--no-huge"]).unwrap_err();
    assert!(other.to_string().contains("already initialised"), "{other}");

    let missing = DpdkDevice::open(eal, "net_ring_nosuch", &small_config(1)).unwrap_err();
    assert!(
        matches!(missing, PortError::NoSuchDevice { .. }),
        "{missing}"
    );
    let bad_driver =
        DpdkDevice::create_vdev(eal, "net_nosuchdriver0", "", &small_config(1)).unwrap_err();
    assert!(
        matches!(
            bad_driver,
            PortError::Dpdk {
                op: "rte_vdev_init",
                ..
            }
        ),
        "{bad_driver}"
    );

    let dev = ring("err", 1);
    let too_many = DpdkDevice::create_vdev(eal, &vdev_name("net_ring", "q"), "", &small_config(64))
        .unwrap_err();
    assert!(
        too_many.to_string().contains("queue pairs asked"),
        "{too_many}"
    );
    let mut greedy = small_config(1);
    greedy.pool.mbufs = 4_000_000; // ~9 GB: more than the EAL's 512 MiB
    let no_memory =
        DpdkDevice::create_vdev(eal, &vdev_name("net_ring", "mem"), "", &greedy).unwrap_err();
    match &no_memory {
        PortError::Dpdk {
            op, code, message, ..
        } => {
            assert_eq!(*op, "rte_pktmbuf_pool_create");
            assert_eq!(*code, libc::ENOMEM, "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(matches!(dev.port(3), Err(PortError::InvalidConfig { .. })));
    let port = dev.port(0).unwrap();
    assert!(
        matches!(dev.port(0), Err(PortError::Busy { .. })),
        "one port per queue"
    );
    drop(port);
    let mut port = dev.port(0).expect("free again after drop");

    // Exhaust the pool: alloc says None, nothing breaks, all comes back.
    let mut held = Vec::new();
    while let Some(m) = port.alloc() {
        held.push(m);
    }
    assert_eq!(held.len(), port.pool().capacity());
    assert!(port.alloc().is_none());
    held.clear();
    assert_eq!(port.pool().in_use(), 0);
    assert!(port.alloc().is_some());

    // Bulk allocation is all or nothing.
    let mut burst: Burst<Mbuf> = Burst::new();
    assert!(port.pool().alloc_bulk(&mut burst, 32));
    assert_eq!(burst.len(), 32);
    assert!(!port.pool().alloc_bulk(&mut burst, 1), "the burst is full");
    let mut big: Burst<Mbuf, 1024> = Burst::new();
    assert!(
        !port.pool().alloc_bulk(&mut big, 1000),
        "more than the pool has free"
    );
    assert!(big.is_empty());
    assert!(burst
        .as_slice()
        .iter()
        .all(|m| m.is_empty() && m.headroom() == 128));
    drop(burst);
    assert_eq!(port.pool().in_use(), 0);
    drop(port);
    close_whole(dev);
}

/// Set for the peer process of the EAL failure test.
const PEER_ENV: &str = "TPA_TEST_EAL_FAILURE_PEER";
/// Printed by the peer process once every check of the failure passed.
const PEER_CHECKED: &str = "eal failure checked:";

#[test]
fn a_failed_eal_init_is_a_clear_error_and_stays_failed() {
    // EAL init happens once per process: try the failure in a fresh one,
    // told by the environment that it is the peer.
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "eal_init_failure_process",
            "--nocapture",
        ])
        .env(PEER_ENV, "1")
        .output()
        .expect("run the peer process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!(
        "peer ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    // The peer ran (a filter matching nothing also exits 0) and got as far
    // as the end of its checks (a peer that returned early prints nothing).
    assert!(stdout.contains("1 passed"), "{report}");
    // DPDK's usage text (C stdio, flushed in blocks) may land anywhere
    // around the peer's line, which is written whole.
    let checked = stdout
        .split_once(PEER_CHECKED)
        .and_then(|(_, rest)| rest.lines().next())
        .unwrap_or_else(|| panic!("the peer did not check the failure: {report}"));
    assert_eq!(
        checked.trim(),
        "eal: rte_eal_init failed: Invalid argument (DPDK error 22)",
        "{report}"
    );
}

#[test]
#[ignore = "the peer process of a_failed_eal_init_is_a_clear_error_and_stays_failed"]
fn eal_init_failure_process() {
    if std::env::var_os(PEER_ENV).is_none() {
        return; // run by --include-ignored in a process whose EAL is up
    }
    tpa_tests::netns::require_root();
    let args = ["--no-huge", "--no-pci", "--no-such-eal-option"];
    let first = Eal::init(&args).unwrap_err();
    match &first {
        PortError::Dpdk { name, op, code, .. } => {
            assert_eq!((name.as_str(), *op), ("eal", "rte_eal_init"));
            assert_eq!(*code, libc::EINVAL);
        }
        other => panic!("{other}"),
    }
    assert!(first.to_string().contains("rte_eal_init failed"), "{first}");
    // A second attempt, even with arguments DPDK would take, gets the same
    // error: DPDK's init is not retried (it would say EALREADY).
    let again = Eal::init(&args).unwrap_err();
    assert_eq!(again.to_string(), first.to_string(), "no second attempt");
    let good = Eal::init(&dpdk_common::eal_args()).unwrap_err();
    assert_eq!(good.to_string(), first.to_string(), "no second attempt");
    assert!(Eal::get().is_none());
    println!("{PEER_CHECKED} {first}");
}
