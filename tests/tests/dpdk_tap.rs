//! The DPDK port with the kernel as its peer, inside network namespaces
//! made by the tests: a `net_tap` vdev (the kernel sees the interface) and
//! a `net_af_packet` vdev on a veth. The kernel's ARP request and ICMP echo
//! cross to tpa, tpa's ARP reply crosses back; checksums tpa leaves to the
//! device come out right. Also the mlx5 stage's fallback on PMDs that
//! refuse its flow rules. Run as root:
//! `cargo test -p tpa-tests --features dpdk --test dpdk_tap`.

#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use dpdk_common::{close_whole, eal, serial, small_config, vdev_name};
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use tpa::buf::{ChecksumStatus, L4Protocol, LayerOffsets, PacketBuf};
use tpa::pipeline::{NoHost, Runtime};
use tpa::port::dpdk::{DpdkDevice, DpdkPort, Mbuf};
use tpa::port::{Burst, Port};
use tpa::stage::{Fork, Stage, Verdict};
use tpa::wire::MacAddr;
use tpa_stages::mlx5::{
    bifurcate, split_port_range, Bifurcation, ClassifyCounters, FlowClassify, FlowMark, MarkSource,
    NeighborFrames, OffloadPlan, Steering, WorkerSteering,
};
use tpa_tests::netns::{unique_name, Netns};

/// A bound on waiting for a frame (not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(10);
const KERNEL_IP: [u8; 4] = [10, 77, 0, 1];
const TPA_IP: [u8; 4] = [10, 77, 0, 2];

/// A tap vdev whose kernel interface lives in a fresh namespace, with
/// 10.77.0.1/24 on the kernel side.
fn tap_in_netns(tag: &str) -> (Netns, String, DpdkDevice) {
    let eal = eal();
    let ns = Netns::new(tag);
    let ifname = unique_name("dt");
    let vdev = vdev_name("net_tap", tag);
    let mut cfg = small_config(1);
    cfg.promiscuous = true;
    let dev = ns
        .enter(|| DpdkDevice::create_vdev(eal, &vdev, &format!("iface={ifname}"), &cfg))
        .unwrap_or_else(|e| panic!("{vdev}: {e}"));
    ns.add_addr(&ifname, "10.77.0.1/24");
    ns.up(&ifname);
    (ns, ifname, dev)
}

/// Receives until `want` accepts a frame, dropping others.
fn wait_for(port: &mut DpdkPort, what: &str, want: impl Fn(&Mbuf) -> bool) -> Mbuf {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let mut rx: Burst<Mbuf> = Burst::new();
        if port.rx_burst(&mut rx) == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let found = rx.drain().find(|m| want(m));
        if let Some(m) = found {
            return m;
        }
    }
    panic!("no {what} from the kernel within {PATIENCE:?}");
}

fn is_arp_request_for(m: &Mbuf, ip: [u8; 4]) -> bool {
    let d = m.data();
    d.len() >= 42 && d[12..14] == [0x08, 0x06] && d[20..22] == [0, 1] && d[38..42] == ip
}

fn is_icmp_echo_to(m: &Mbuf, ip: [u8; 4]) -> bool {
    let d = m.data();
    d.len() >= 42 && d[12..14] == [0x08, 0x00] && d[23] == 1 && d[30..34] == ip && d[34] == 8
}

/// An ARP reply "`TPA_IP` is at `mac`" to the kernel's request `req`.
fn arp_reply(port: &mut DpdkPort, req: &[u8], mac: MacAddr) -> Mbuf {
    let mut m = port.alloc().expect("mbuf");
    let f = m.append(42).expect("room");
    f[0..6].copy_from_slice(&req[6..12]);
    f[6..12].copy_from_slice(&mac.0);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 2]);
    f[22..28].copy_from_slice(&mac.0);
    f[28..32].copy_from_slice(&TPA_IP);
    f[32..38].copy_from_slice(&req[22..28]);
    f[38..42].copy_from_slice(&req[28..32]);
    m
}

/// A command the kernel side runs (ping, a connect); killed on drop.
struct KernelSide(Child);

impl KernelSide {
    /// Runs `argv` in `ns`, its output discarded.
    fn start(ns: &Netns, argv: &[&str]) -> KernelSide {
        let child = ns
            .command(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {argv:?}: {e}"));
        KernelSide(child)
    }
}

impl Drop for KernelSide {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tap_frames_cross_between_kernel_and_tpa() {
    let _s = serial();
    let (ns, ifname, dev) = tap_in_netns("tap");
    let listing = ns.ip(&["-br", "link", "show", "dev", &ifname]);
    assert!(
        listing.contains(&ifname),
        "the kernel sees {ifname}: {listing}"
    );
    exchange_with_kernel(&ns, &ifname, &dev, true);
    close_whole(dev);
}

#[test]
fn af_packet_frames_cross_a_veth() {
    let _s = serial();
    let eal = eal();
    let ns = Netns::new("afp");
    let (ours, kernel) = (unique_name("da"), unique_name("dk"));
    ns.add_veth(&ours, &kernel);
    ns.up(&ours);
    ns.add_addr(&kernel, "10.77.0.1/24");
    ns.up(&kernel);
    let vdev = vdev_name("net_af_packet", "veth");
    let dev = ns
        .enter(|| {
            DpdkDevice::create_vdev(
                eal,
                &vdev,
                &format!("iface={ours},qpairs=1"),
                &small_config(1),
            )
        })
        .unwrap_or_else(|e| panic!("{vdev}: {e}"));
    assert_eq!(
        dev.caps().mac.to_string(),
        ns.mac_of(&ours),
        "the PMD uses the interface's MAC"
    );
    exchange_with_kernel(&ns, &kernel, &dev, false);
    close_whole(dev);
}

/// The kernel (with 10.77.0.1 on `ifname`) pings 10.77.0.2: its ARP request
/// reaches tpa, tpa's ARP reply reaches the kernel (which learns the MAC),
/// and the echo request addressed to that MAC reaches tpa.
/// `rx_checksum_checked`: whether the PMD verifies received IPv4
/// checksums.
fn exchange_with_kernel(ns: &Netns, ifname: &str, dev: &DpdkDevice, rx_checksum_checked: bool) {
    let mut port = dev.port(0).unwrap();
    let mac = port.caps().mac;
    assert!(mac.is_unicast() && mac != MacAddr::ZERO, "{mac}");

    let _ping = KernelSide::start(
        ns,
        &["ping", "-c", "20", "-i", "0.2", "-W", "1", "10.77.0.2"],
    );
    // Kernel -> tpa: the kernel resolves 10.77.0.2 first.
    let req = wait_for(&mut port, "ARP request for 10.77.0.2", |m| {
        is_arp_request_for(m, TPA_IP)
    });
    assert_eq!(
        req.data()[28..32],
        KERNEL_IP,
        "sender is the kernel's address"
    );
    assert_eq!(req.meta().rx_queue, 0);
    assert_eq!(
        req.meta().l3_checksum,
        ChecksumStatus::Unknown,
        "ARP has no IP checksum"
    );

    // tpa -> kernel: answer, and the kernel sends the echo request to us.
    let mut tx: Burst<Mbuf> = Burst::new();
    tx.push(arp_reply(&mut port, req.data(), mac));
    assert_eq!(port.tx_burst(&mut tx), 1);
    let echo = wait_for(&mut port, "ICMP echo request", |m| {
        is_icmp_echo_to(m, TPA_IP)
    });
    assert_eq!(
        echo.data()[0..6],
        mac.0,
        "addressed to the MAC tpa announced"
    );
    // net_tap verifies received checksums in software and says so in
    // ol_flags; net_af_packet says nothing.
    assert_eq!(port.caps().rx_offloads.ipv4_checksum, rx_checksum_checked);
    let want = if rx_checksum_checked {
        ChecksumStatus::Good
    } else {
        ChecksumStatus::Unknown
    };
    assert_eq!(echo.meta().l3_checksum, want, "{}", dev.name());
    let neigh = ns.ip(&["neigh", "show", "10.77.0.2", "dev", ifname]);
    assert!(
        neigh.contains(&mac.to_string()),
        "kernel learnt {mac}: {neigh}"
    );

    let stats = dev.stats().unwrap();
    // The kernel may send more (IPv6 neighbour discovery); tpa sent one.
    assert!(stats.rx_packets >= 2, "{stats:?}");
    assert_eq!(stats.tx_packets, 1, "{stats:?}");
}

#[test]
fn offloaded_checksums_are_right_for_the_kernel() {
    let _s = serial();
    let (ns, ifname, dev) = tap_in_netns("csum");
    let mut port = dev.port(0).unwrap();
    let mac = port.caps().mac;
    let txo = port.caps().tx_offloads;
    // net_tap offers checksum offload (done by the PMD), so this exercises
    // the device path; dpdk_ring covers the software one.
    assert!(txo.ipv4_checksum && txo.tcp_checksum, "{txo:?}");
    ns.add_neigh(&ifname, "10.77.0.2", &mac.to_string());
    let kernel_mac: Vec<u8> = ns
        .mac_of(&ifname)
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).expect("hex"))
        .collect();

    // A SYN to a closed port: the kernel answers RST only if both checksums
    // are right.
    let syn = PacketBuilder::ethernet2(mac.0, kernel_mac.try_into().expect("6 bytes"))
        .ipv4(TPA_IP, KERNEL_IP, 64)
        .tcp(40001, 9, 1000, 65535)
        .syn();
    let mut bytes = Vec::new();
    syn.write(&mut bytes, &[]).expect("build");
    bytes[24..26].copy_from_slice(&[0, 0]);
    bytes[50..52].copy_from_slice(&[0x12, 0x34]);
    let mut m = port.alloc().expect("mbuf");
    m.append(bytes.len()).unwrap().copy_from_slice(&bytes);
    m.meta_mut().layers = LayerOffsets {
        l2: 0,
        l3: 14,
        l4: 34,
        payload: 54,
    };
    // The port leaves the checksums to the device (tx_burst maps the
    // request onto ol_flags); the kernel's RST proves them right.
    m.meta_mut().tx.request_checksums(L4Protocol::Tcp);
    let mut tx: Burst<Mbuf> = Burst::new();
    tx.push(m);
    assert_eq!(port.tx_burst(&mut tx), 1);

    let rst = wait_for(&mut port, "RST for the SYN", |m| {
        let Ok(p) = SlicedPacket::from_ethernet(m.data()) else {
            return false;
        };
        matches!(&p.transport, Some(TransportSlice::Tcp(t)) if t.rst() && t.destination_port() == 40001)
    });
    let ack = match SlicedPacket::from_ethernet(rst.data()).unwrap().transport {
        Some(TransportSlice::Tcp(t)) => t.acknowledgment_number(),
        _ => unreachable!("matched above"),
    };
    assert_eq!(ack, 1001, "the kernel acknowledged our SYN");
    drop((rst, port));
    close_whole(dev);
}

/// The plan every vdev is given: the listener on `TPA_IP`:6379, two
/// workers.
fn mlx5_plan() -> Bifurcation {
    let workers: Vec<WorkerSteering> = split_port_range(32768..=65535, 2)
        .into_iter()
        .enumerate()
        .map(|(q, local_ports)| WorkerSteering {
            queue: q as u16,
            local_ports,
        })
        .collect();
    Bifurcation {
        addresses: vec![TPA_IP.into()],
        listen_ports: vec![6379],
        workers,
        priority: 0,
    }
}

/// `bifurcate` on `dev`: the driver refuses the first rule with
/// `driver_says`, nothing stays installed, and the plan falls back to
/// software classification, saying so first among its fallbacks.
fn assert_falls_back(dev: &DpdkDevice, driver_says: &str) -> OffloadPlan {
    let (offloads, installed) = bifurcate(dev, &mlx5_plan()).unwrap();
    assert!(
        installed.is_none(),
        "{}: nothing stays installed",
        dev.name()
    );
    let reason = format!("rule 0: {driver_says}");
    assert_eq!(
        offloads.steering,
        Steering::Software {
            reason: reason.clone()
        },
        "{}",
        dev.name()
    );
    let lines = offloads.fallbacks();
    assert_eq!(
        lines[0],
        format!(
            "flow rules refused ({reason}): classifying in software, \
             non-application traffic goes to the host by the exception path"
        )
    );
    offloads
}

/// Passes what `port` receives through `classify` until a frame is taken
/// as the listener's; returns how many other frames went to the host.
fn classify_until_listener(port: &mut DpdkPort, classify: &mut FlowClassify) -> u64 {
    let mut rt: Runtime<Mbuf, 32, 1> = Runtime::new(["classify"], [&[]]);
    let mut to_host = 0;
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let mut rx: Burst<Mbuf> = Burst::new();
        if port.rx_burst(&mut rx) == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        for m in rx.drain() {
            match rt.with_cx(port, &mut NoHost, 0, |cx| classify.process(m, cx)) {
                Verdict::Pass(Fork::Left(flow)) => {
                    assert_eq!(flow.mark(), FlowMark::Listener { port: 6379 });
                    assert_eq!(flow.source(), MarkSource::Software);
                    return to_host;
                }
                Verdict::ToHost(_) => to_host += 1,
                other => panic!("unexpected verdict {other:?}"),
            }
        }
    }
    panic!("no SYN to {TPA_IP:?}:6379 within {PATIENCE:?}");
}

/// The kernel in `ns` connects to `TPA_IP`:6379, whose MAC it is told is
/// `mac`: its SYN goes out of `ifname`. Killed on drop.
fn kernel_connects(ns: &Netns, ifname: &str, mac: MacAddr) -> KernelSide {
    ns.add_neigh(ifname, "10.77.0.2", &mac.to_string());
    KernelSide::start(
        ns,
        &[
            "python3",
            "-c",
            "import socket\n\
             s = socket.socket()\n\
             s.settimeout(5)\n\
             s.connect_ex(('10.77.0.2', 6379))\n",
        ],
    )
}

/// The classify stage of `plan` after the fallback, with counters checked
/// once it has taken the kernel's (or the test's) SYN.
fn software_takes_the_syn(port: &mut DpdkPort) {
    let mut classify = FlowClassify::new(&mlx5_plan(), NeighborFrames::Host).unwrap();
    let others = classify_until_listener(port, &mut classify);
    assert_eq!(
        *classify.counters(),
        ClassifyCounters {
            software: 1,
            to_host: others,
            ..ClassifyCounters::default()
        }
    );
}

/// No vdev takes the mlx5 rules. Each refuses the first, as its driver
/// words it (pinned: DPDK 22.11's), and the software path takes over:
/// on `net_ring`, `net_tap` and `net_af_packet` a SYN to the listener then
/// arrives and the classify stage counts it as looked up in software
/// (`net_memif` has no peer here, only the refusal is checked).
///
/// `net_tap`'s refusal comes from its own rule parser, which has no MARK
/// action, before it would ask the kernel's TC: it is the same whether or
/// not the kernel has the multiq qdisc and flower classifier its flow
/// support needs (this test machine's has neither).
#[test]
fn mlx5_rules_are_refused_on_every_vdev_and_software_takes_over() {
    let _s = serial();
    let eal = eal();

    // net_ring: no rte_flow at all, nor isolation.
    let mut cfg = small_config(2);
    cfg.flow_isolation = true;
    let ring = DpdkDevice::create_vdev(eal, &vdev_name("net_ring", "flow"), "", &cfg).unwrap();
    assert!(!ring.flow_isolated(), "net_ring cannot isolate");
    let offloads = assert_falls_back(&ring, "Function not implemented");
    assert_eq!(
        offloads.fallbacks().len(),
        4,
        "and no checksum or TSO offload"
    );
    let mut port = ring.port(0).unwrap();
    let mut syn = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
        .ipv4(KERNEL_IP, TPA_IP, 64)
        .tcp(40000, 6379, 1, 1024)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    let mut m = port.alloc().expect("mbuf");
    m.append(syn.len()).unwrap().copy_from_slice(&syn);
    let mut tx: Burst<Mbuf> = Burst::new();
    tx.push(m);
    assert_eq!(port.tx_burst(&mut tx), 1);
    software_takes_the_syn(&mut port);
    drop(port);
    close_whole(ring);

    // net_tap: rte_flow through the kernel's TC, but no MARK action.
    let (ns, ifname, tap) = tap_in_netns("flow");
    assert_falls_back(&tap, "action not supported (Operation not supported)");
    let mut port = tap.port(0).unwrap();
    let _syn = kernel_connects(&ns, &ifname, port.caps().mac);
    software_takes_the_syn(&mut port);
    drop(port);
    close_whole(tap);

    // net_af_packet on a veth.
    let ns = Netns::new("afpflow");
    let (ours, kernel) = (unique_name("fa"), unique_name("fk"));
    ns.add_veth(&ours, &kernel);
    ns.up(&ours);
    ns.add_addr(&kernel, "10.77.0.1/24");
    ns.up(&kernel);
    let vdev = vdev_name("net_af_packet", "flow");
    let afp = ns
        .enter(|| {
            DpdkDevice::create_vdev(
                eal,
                &vdev,
                &format!("iface={ours},qpairs=1"),
                &small_config(1),
            )
        })
        .unwrap_or_else(|e| panic!("{vdev}: {e}"));
    assert_falls_back(&afp, "Function not implemented");
    let mut port = afp.port(0).unwrap();
    let _syn = kernel_connects(&ns, &kernel, port.caps().mac);
    software_takes_the_syn(&mut port);
    drop(port);
    close_whole(afp);

    // net_memif (a server waiting for its peer).
    let socket = format!("/run/tpa-flow-memif-{}.sock", std::process::id());
    let memif = DpdkDevice::create_vdev(
        eal,
        &vdev_name("net_memif", "flow"),
        &format!("role=server,id=0,socket={socket}"),
        &small_config(1),
    )
    .unwrap();
    assert_falls_back(&memif, "Function not implemented");
    close_whole(memif);
    let _ = std::fs::remove_file(&socket);
}

/// `ConnectionMarks` on two vdevs that refuse rte_flow rules: the first
/// connection's rule (ETH / IPV4 / TCP → MARK + QUEUE) is refused, with
/// the driver's words; that is counted once and turns marking off, so
/// later connections (IPv4 and IPv6) are only counted as unmarked,
/// without asking the driver; nothing is installed;
/// and the port goes on carrying the kernel's (or the test's) SYN to the
/// software classify.
#[test]
fn connection_marks_degrade_cleanly_where_the_driver_refuses_them() {
    use std::net::SocketAddr;
    use tpa_stages::mlx5::{ConnectionMarks, MarkCounters};
    use tpa_stages::tcp::classify::conn_mark;

    let _s = serial();
    let eal = eal();
    let local: SocketAddr = "10.77.0.2:6379".parse().unwrap();
    let remote = |port: u16| SocketAddr::from((KERNEL_IP, port));
    let check = |dev: &DpdkDevice, driver_says: &str| {
        let mut marks = ConnectionMarks::new(dev, 1, 0);
        assert!(!marks.add(conn_mark(1).unwrap(), local, remote(40000)));
        assert_eq!(
            marks.refused().map(|r| r.to_string()),
            Some(format!("rule 0: {driver_says}")),
            "{}",
            dev.name()
        );
        assert!(!marks.add(conn_mark(2).unwrap(), local, remote(40001)));
        let v6: SocketAddr = "[2001:db8::2]:6379".parse().unwrap();
        let peer6: SocketAddr = "[2001:db8::1]:40002".parse().unwrap();
        assert!(!marks.add(conn_mark(3).unwrap(), v6, peer6));
        assert!(!marks.remove(conn_mark(1).unwrap()));
        assert!(marks.is_empty());
        assert_eq!(
            marks.counters(),
            MarkCounters {
                refused: 1,
                unmarked: 3,
                ..MarkCounters::default()
            },
            "{}",
            dev.name()
        );
    };

    // net_ring: no rte_flow at all.
    let ring = DpdkDevice::create_vdev(eal, &vdev_name("net_ring", "marks"), "", &small_config(2))
        .unwrap();
    check(&ring, "Function not implemented");
    let mut port = ring.port(0).unwrap();
    let mut syn = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
        .ipv4(KERNEL_IP, TPA_IP, 64)
        .tcp(40000, 6379, 1, 1024)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    let mut m = port.alloc().expect("mbuf");
    m.append(syn.len()).unwrap().copy_from_slice(&syn);
    let mut tx: Burst<Mbuf> = Burst::new();
    tx.push(m);
    assert_eq!(port.tx_burst(&mut tx), 1);
    software_takes_the_syn(&mut port);
    drop(port);
    close_whole(ring);

    // net_tap: rte_flow, but no MARK action.
    let (ns, ifname, tap) = tap_in_netns("marks");
    check(&tap, "action not supported (Operation not supported)");
    let mut port = tap.port(0).unwrap();
    let _syn = kernel_connects(&ns, &ifname, port.caps().mac);
    software_takes_the_syn(&mut port);
    drop(port);
    close_whole(tap);
}
