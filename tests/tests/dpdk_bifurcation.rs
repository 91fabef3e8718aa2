//! The classify stage first in a pipeline on DPDK vdevs, with the kernel
//! behind the exception path: a `net_ring` plays the NIC (it receives what
//! the test injects), a `net_tap` whose interface lives in a network
//! namespace is the pipeline's `#[host]` port. Frames for the application's
//! listening port and worker range reach the application stage; an SSH SYN,
//! a UDP datagram and an ARP request come out of the TAP, where the kernel
//! answers them (an RST, a Python socket's read, an ARP reply). With the
//! return path (a `HostReturn` stage reading what the `#[host]` TAP
//! received), the kernel's RST leaves through the ring. Frames
//! carrying a mark (written into the mbuf's `ol_flags` by the test, as mlx5
//! would for a MARK action, and carried across the ring; no NIC marks
//! anything here) are classified by the mark alone. Every mbuf returns to
//! its pool: each test ends by closing both devices and checking their
//! pools whole.
//! Run as root:
//! `cargo test -p tpa-tests --features dpdk --test dpdk_bifurcation`.

#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use core::convert::Infallible;
use dpdk_common::{close_whole, eal, serial, small_config, vdev_name};
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use tpa::buf::PacketBuf;
use tpa::pipeline;
use tpa::pipeline::IterationStats;
use tpa::port::dpdk::{sys, DpdkDevice, DpdkPort, Mbuf};
use tpa::port::{Burst, Port};
use tpa::stage::{Cx, Demux, Reason, Stage, Verdict};
use tpa::wire::MacAddr;
use tpa_stages::discard::Discard;
use tpa_stages::mlx5::{
    Bifurcation, Classified, ClassifyCounters, FlowClassify, FlowMark, HostReturn, MarkSource,
    NeighborFrames, WorkerSteering,
};
use tpa_tests::netns::{unique_name, Netns};

/// A bound on waiting for the kernel (not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(10);
/// The address tpa and the kernel share, as on a bifurcated mlx5 port.
const SHARED: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
/// The remote peer's address and MAC.
const PEER: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x07];
const LISTEN_PORT: u16 = 6379;

/// What the application saw of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    mark: FlowMark,
    source: MarkSource,
    dst_port: u16,
}

/// The application: records the flows it is given.
#[derive(Default)]
struct App {
    seen: Vec<Seen>,
}

impl Stage<Mbuf> for App {
    type In = Classified<Mbuf>;
    type Out = Infallible;

    fn process(
        &mut self,
        p: Classified<Mbuf>,
        _cx: &mut Cx<'_, Mbuf>,
    ) -> Verdict<Infallible, Mbuf> {
        let Some(ports) = p.buf().data().get(36..38) else {
            return Verdict::Drop(Reason::TOO_SHORT);
        };
        self.seen.push(Seen {
            mark: p.mark(),
            source: p.source(),
            dst_port: u16::from_be_bytes([ports[0], ports[1]]),
        });
        Verdict::Consumed
    }
}

/// The front of an application on a NIC shared with the kernel.
#[pipeline]
struct Bifurcated {
    #[port]
    nic: DpdkPort,
    #[host]
    kernel: DpdkPort,
    front: Demux<FlowClassify, App, Discard<Mbuf>>,
}

/// The same front, with the return path: the TAP is shared by the `#[host]`
/// field (frames to the kernel) and the last stage, which sends what the
/// kernel answers out of the NIC.
#[pipeline]
struct Returning {
    #[port]
    nic: DpdkPort,
    #[host]
    kernel: DpdkPort,
    front: Demux<FlowClassify, App, Discard<Mbuf>>,
    host_return: HostReturn<Mbuf>,
}

/// The test bed: the namespace, the kernel's interface and MAC, the ring
/// "NIC" and the TAP devices, and the pipeline over their queue 0.
/// Fields drop in order: the pipeline's ports before their devices, the
/// TAP device before its namespace.
struct Bed<P> {
    pipe: P,
    #[allow(dead_code)] // kept alive for the pipeline's ports
    nic: DpdkDevice,
    tap: DpdkDevice,
    kernel_mac: MacAddr,
    ns: Netns,
}

impl<P> Bed<P> {
    /// Drops the pipeline (and its ports), closes both devices and checks
    /// that their pools are whole.
    fn close_whole(self) {
        let Bed {
            pipe, nic, tap, ns, ..
        } = self;
        drop(pipe);
        close_whole(nic);
        close_whole(tap);
        drop(ns);
    }
}

fn plan() -> Bifurcation {
    Bifurcation {
        addresses: vec![SHARED],
        listen_ports: vec![LISTEN_PORT],
        workers: vec![WorkerSteering {
            queue: 0,
            local_ports: 32768..=65535,
        }],
        priority: 0,
    }
}

/// The classify stage and the application behind it.
fn front() -> Demux<FlowClassify, App, Discard<Mbuf>> {
    let classify = FlowClassify::new(&plan(), NeighborFrames::Host).unwrap();
    Demux::new(classify, App::default(), Discard::new(Reason::UNSUPPORTED))
}

/// The devices, and the pipeline `build` makes over the ring's queue 0 (the
/// NIC) and the TAP's (the kernel).
fn bed_with<P>(tag: &str, build: impl FnOnce(DpdkPort, DpdkPort) -> P) -> Bed<P> {
    let eal = eal();
    let ns = Netns::new(tag);
    let ifname = unique_name("bf");
    let vdev = vdev_name("net_tap", tag);
    let tap = ns
        .enter(|| DpdkDevice::create_vdev(eal, &vdev, &format!("iface={ifname}"), &small_config(1)))
        .unwrap_or_else(|e| panic!("{vdev}: {e}"));
    ns.add_addr(&ifname, &format!("{SHARED}/24"));
    ns.up(&ifname);
    ns.add_neigh(&ifname, &PEER.to_string(), &MacAddr(PEER_MAC).to_string());
    let kernel_mac: MacAddr = ns.mac_of(&ifname).parse().unwrap();
    let nic = DpdkDevice::create_vdev(eal, &vdev_name("net_ring", tag), "", &small_config(1))
        .unwrap_or_else(|e| panic!("net_ring: {e}"));
    let pipe = build(nic.port(0).unwrap(), tap.port(0).unwrap());
    Bed {
        pipe,
        nic,
        tap,
        kernel_mac,
        ns,
    }
}

fn bed(tag: &str) -> Bed<Bifurcated> {
    bed_with(tag, |nic, tap| Bifurcated::new(nic, tap, front()))
}

fn returning_bed(tag: &str) -> Bed<Returning> {
    bed_with(tag, |nic, tap| {
        Returning::new(nic, tap, front(), HostReturn::new())
    })
}

/// An Ethernet frame from the peer to the kernel's MAC.
fn to_kernel(kernel_mac: MacAddr) -> etherparse::PacketBuilderStep<etherparse::Ethernet2Header> {
    PacketBuilder::ethernet2(PEER_MAC, kernel_mac.0)
}

fn syn(kernel_mac: MacAddr, dst: Ipv4Addr, dst_port: u16, seq: u32) -> Vec<u8> {
    let b = to_kernel(kernel_mac)
        .ipv4(PEER.octets(), dst.octets(), 64)
        .tcp(40000, dst_port, seq, 65535)
        .syn();
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

fn udp(kernel_mac: MacAddr, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let b = to_kernel(kernel_mac)
        .ipv4(PEER.octets(), SHARED.octets(), 64)
        .udp(40001, dst_port);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// "Who has SHARED? tell PEER", broadcast.
fn arp_request() -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&PEER_MAC);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&PEER_MAC);
    f[28..32].copy_from_slice(&PEER.octets());
    f[38..42].copy_from_slice(&SHARED.octets());
    f
}

/// Puts `frames` on the ring, to be received by the pipeline's next
/// iterations, each with the mark given written into the mbuf by hand as
/// mlx5 would write it for a MARK action (the FDIR flags in `ol_flags`,
/// the id in `hash.fdir.hi`): no NIC marks anything here.
fn inject(port: &mut DpdkPort, frames: &[(Vec<u8>, Option<u32>)]) {
    let mut tx: Burst<Mbuf> = Burst::new();
    for (bytes, mark) in frames {
        let mut m = port.alloc().expect("mbuf");
        m.append(bytes.len()).expect("room").copy_from_slice(bytes);
        if let Some(mark) = *mark {
            let raw = m.as_ptr();
            // SAFETY: we own the mbuf; writing the receive flags and the
            // hash union is what a PMD does for a MARK action. net_ring
            // passes mbufs through untouched, so they arrive as if the NIC
            // had marked them.
            unsafe {
                (*raw).ol_flags |= sys::RTE_MBUF_F_RX_FDIR | sys::RTE_MBUF_F_RX_FDIR_ID;
                (*raw).__bindgen_anon_2.hash.fdir.hi = mark;
            }
        }
        tx.push(m);
    }
    let n = tx.len();
    assert_eq!(port.tx_burst(&mut tx), n, "the ring takes the burst");
}

/// Runs the pipeline until the ring is empty.
fn drain(pipe: &mut Bifurcated) {
    for _ in 0..100 {
        if pipe.run_once().rx == 0 {
            return;
        }
    }
    panic!("the ring never emptied");
}

/// What the kernel must send: a description and a test of the frame.
type Expected<'a> = (&'a str, &'a dyn Fn(&[u8]) -> bool);

/// Receives from the host port (what the kernel sent out of its interface)
/// until each of `expected` matched a frame.
fn kernel_sends(port: &mut DpdkPort, expected: &[Expected<'_>]) {
    let mut found = vec![false; expected.len()];
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline && found.contains(&false) {
        let mut rx: Burst<Mbuf> = Burst::new();
        if port.rx_burst(&mut rx) == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        for m in rx.drain() {
            for ((_, want), hit) in expected.iter().zip(found.iter_mut()) {
                *hit |= want(m.data());
            }
        }
    }
    for ((what, _), hit) in expected.iter().zip(&found) {
        assert!(hit, "the kernel sent no {what} within {PATIENCE:?}");
    }
}

#[test]
fn application_traffic_reaches_the_app_the_rest_reaches_the_kernel() {
    let _s = serial();
    let mut bed = bed("bif");
    let capacity = bed.pipe.nic.pool().capacity();
    // net_tap keeps receive mbufs posted: that many are in use throughout.
    let tap_pool = bed.tap.pool(0).expect("queue 0 has a pool");
    let posted = tap_pool.in_use();

    let receiver = bed.ns.spawn_until(
        &[
            "python3",
            "-c",
            &format!(
                "import socket\n\
                 s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                 s.bind(('{SHARED}', 5555))\n\
                 s.settimeout(10)\n\
                 print('ready', flush=True)\n\
                 data, (addr, port) = s.recvfrom(100)\n\
                 print(data.decode(), addr, port)\n"
            ),
        ],
        "ready",
    );

    let mac = bed.kernel_mac;
    inject(
        &mut bed.pipe.nic,
        &[
            (syn(mac, SHARED, LISTEN_PORT, 1), None),
            (syn(mac, SHARED, 22, 1000), None),
            (udp(mac, 5555, b"hello-host"), None),
            (arp_request(), None),
            (syn(mac, SHARED, 50000, 2), None),
            (syn(mac, Ipv4Addr::new(10, 78, 0, 3), LISTEN_PORT, 3), None),
        ],
    );
    drain(&mut bed.pipe);

    // The application got its two flows, from the software lookup.
    assert_eq!(
        bed.pipe.front.left.seen,
        vec![
            Seen {
                mark: FlowMark::Listener { port: LISTEN_PORT },
                source: MarkSource::Software,
                dst_port: LISTEN_PORT
            },
            Seen {
                mark: FlowMark::Worker { queue: 0 },
                source: MarkSource::Software,
                dst_port: 50000
            },
        ]
    );
    assert_eq!(
        *bed.pipe.front.classify.counters(),
        ClassifyCounters {
            software: 2,
            to_host: 4,
            ..ClassifyCounters::default()
        }
    );
    let stats = bed.pipe.stats();
    let front = stats.stage("front").unwrap();
    assert_eq!((front.consumed, front.to_host), (2, 4));
    assert_eq!(stats.queue_counters().host_sent, 4, "the TAP took them");

    // The kernel saw the rest: the datagram reached a socket, the SYN to
    // port 22 got an RST (nothing listens), the ARP request a reply.
    let got = receiver.finish();
    assert_eq!(got.trim(), format!("hello-host {PEER} 40001"));
    let rst = |f: &[u8]| {
        let Ok(p) = SlicedPacket::from_ethernet(f) else {
            return false;
        };
        matches!(&p.transport, Some(TransportSlice::Tcp(t))
            if t.rst() && t.source_port() == 22 && t.acknowledgment_number() == 1001)
    };
    let arp_reply = |f: &[u8]| {
        f.len() >= 42
            && f[12..14] == [0x08, 0x06]
            && f[20..22] == [0, 2]
            && f[28..32] == SHARED.octets()
            && f[38..42] == PEER.octets()
    };
    kernel_sends(
        &mut bed.pipe.kernel,
        &[("RST to the SSH SYN", &rst), ("ARP reply", &arp_reply)],
    );

    // Every mbuf is back: the NIC's pool is whole, the TAP's holds only its
    // posted receive buffers.
    let nic_pool = bed.pipe.nic.pool();
    assert_eq!(nic_pool.in_use(), 0);
    assert_eq!(nic_pool.available(), capacity);
    assert_eq!(bed.tap.pool(0).unwrap().in_use(), posted);
    bed.close_whole();
}

/// The classify logic for marked frames, on mbufs: no NIC marks anything
/// here, so the test writes the FDIR flags and `hash.fdir.hi` into each
/// mbuf's `ol_flags` by hand, as mlx5 would for a MARK action, and the ring
/// carries them unchanged.
#[test]
fn marks_set_by_hand_in_ol_flags_are_classified_without_a_lookup() {
    let _s = serial();
    let mut bed = bed("mark");
    let mac = bed.kernel_mac;
    let listener = FlowMark::Listener { port: LISTEN_PORT }.id();
    let worker = FlowMark::Worker { queue: 0 }.id();
    inject(
        &mut bed.pipe.nic,
        &[
            // The bytes say SSH, the mark says listener: the mark decides.
            (syn(mac, SHARED, 22, 1), Some(listener)),
            (syn(mac, SHARED, 40000, 2), Some(worker)),
            // Unmarked: looked up.
            (syn(mac, SHARED, LISTEN_PORT, 3), None),
            // A mark no rule of ours made: looked up too (to the host).
            (syn(mac, SHARED, 22, 4), Some(7)),
        ],
    );
    drain(&mut bed.pipe);
    assert_eq!(
        bed.pipe.front.left.seen,
        vec![
            Seen {
                mark: FlowMark::Listener { port: LISTEN_PORT },
                source: MarkSource::Nic,
                dst_port: 22
            },
            Seen {
                mark: FlowMark::Worker { queue: 0 },
                source: MarkSource::Nic,
                dst_port: 40000
            },
            Seen {
                mark: FlowMark::Listener { port: LISTEN_PORT },
                source: MarkSource::Software,
                dst_port: LISTEN_PORT
            },
        ]
    );
    assert_eq!(
        *bed.pipe.front.classify.counters(),
        ClassifyCounters {
            marked: 2,
            software: 1,
            to_host: 1,
            ..ClassifyCounters::default()
        }
    );
    assert_eq!(bed.pipe.nic.pool().in_use(), 0, "every mbuf is back");
    bed.close_whole();
}

/// Whether `f` is, field by field, the kernel's RST to the SSH SYN
/// `PEER:40000 -> SHARED:22` with sequence number 1000, sent to the peer's
/// MAC from the kernel's, with both checksums right (so no byte changed on
/// the way).
fn is_kernel_rst(f: &[u8], kernel_mac: MacAddr) -> bool {
    let Ok(p) = SlicedPacket::from_ethernet(f) else {
        return false;
    };
    let (Some(etherparse::LinkSlice::Ethernet2(eth)), Some(etherparse::NetSlice::Ipv4(ip))) =
        (&p.link, &p.net)
    else {
        return false;
    };
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        return false;
    };
    let ip_header = ip.header().to_header();
    let tcp_header = tcp.to_header();
    eth.destination() == PEER_MAC
        && eth.source() == kernel_mac.0
        && ip_header.source == SHARED.octets()
        && ip_header.destination == PEER.octets()
        && ip_header.header_checksum == ip_header.calc_header_checksum()
        && f.len() == 14 + usize::from(ip_header.total_len)
        && tcp.source_port() == 22
        && tcp.destination_port() == 40000
        && tcp.rst()
        && !tcp.syn()
        && tcp.acknowledgment_number() == 1001
        && tcp.payload().is_empty()
        && tcp_header.calc_checksum_ipv4(&ip_header, &[]) == Ok(tcp.checksum())
}

#[test]
fn the_kernels_answers_leave_through_the_nic() {
    let _s = serial();
    let mut bed = returning_bed("ret");
    let nic_capacity = bed.pipe.nic.pool().capacity();
    let tap_pool = bed.tap.pool(0).expect("queue 0 has a pool");
    let posted = tap_pool.in_use();
    let mac = bed.kernel_mac;

    // The ring loops back: what an iteration transmitted is on the ring's
    // receive side until the next one, so the test takes it from there
    // after each iteration, as the peer would.
    let mut from_nic: Vec<Vec<u8>> = Vec::new();
    fn step(pipe: &mut Returning, from_nic: &mut Vec<Vec<u8>>) -> IterationStats {
        let it = pipe.run_once();
        let mut rx: Burst<Mbuf> = Burst::new();
        while pipe.nic.rx_burst(&mut rx) != 0 {
            from_nic.extend(rx.drain().map(|m| m.data().to_vec()));
        }
        it
    }

    // An SSH SYN from the peer, received by the NIC; nothing listens on 22.
    inject(&mut bed.pipe.nic, &[(syn(mac, SHARED, 22, 1000), None)]);
    assert_eq!(step(&mut bed.pipe, &mut from_nic).rx, 1);
    assert_eq!(bed.pipe.stats().queue_counters().host_sent, 1, "to the TAP");

    // The kernel's RST comes out of the TAP; the pipeline's next iterations
    // send it out of the NIC (with whatever else the kernel sends: IPv6
    // neighbour discovery on a new interface, say).
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline && !from_nic.iter().any(|f| is_kernel_rst(f, mac)) {
        let it = step(&mut bed.pipe, &mut from_nic);
        assert_eq!(it.rx, 0, "the test took everything sent");
        if it.tx == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let rsts = from_nic.iter().filter(|f| is_kernel_rst(f, mac)).count();
    assert_eq!(
        rsts, 1,
        "one RST to the SSH SYN left through the NIC within {PATIENCE:?}; sent: {from_nic:02x?}"
    );
    // Every frame the kernel sent left the same way, none dropped.
    let returned = bed.pipe.host_return.returned();
    assert_eq!(returned, from_nic.len() as u64);
    let q = *bed.pipe.stats().queue_counters();
    assert_eq!((q.tx_sent, q.tx_dropped), (returned, 0));
    assert_eq!(bed.pipe.host_return.waiting(), 0);
    assert_eq!(
        *bed.pipe.front.classify.counters(),
        ClassifyCounters {
            to_host: 1,
            ..ClassifyCounters::default()
        }
    );

    // Every mbuf is back: the RST's (from the TAP's pool) after its trip
    // round the ring, the SYN's (from the NIC's) after the TAP sent it.
    let nic_pool = bed.pipe.nic.pool();
    assert_eq!(nic_pool.in_use(), 0);
    assert_eq!(nic_pool.available(), nic_capacity);
    assert_eq!(bed.tap.pool(0).unwrap().in_use(), posted);
    bed.close_whole();
}
