//! The responder application (the same pipeline as on TAP and AF_PACKET)
//! on DPDK vdevs without hugepages or PCI: the kernel pings it through a
//! `net_tap` in a network namespace; on a `net_ring` loopback its replies
//! are checked byte for byte; over `net_memif` a second process serves and
//! this one asks. After each, every mbuf is back. Run as root:
//! `cargo test -p tpa-tests --features dpdk --test dpdk_responder`.

#![cfg(feature = "dpdk")]

mod dpdk_common;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use dpdk_common::{close_whole, eal, eal_args, serial, small_config, vdev_name};
use etherparse::PacketBuilder;
use tpa::buf::PacketBuf;
use tpa::port::dpdk::{DpdkDevice, DpdkPort, Eal, Mbuf};
use tpa::port::{Burst, Port};
use tpa::wire::MacAddr;
use tpa::worker::StopFlag;
use tpa_responder::{build, serve, Config, PortSpec, Summary};
use tpa_stages::iface::Interface;
use tpa_tests::netns::{unique_name, Netns};
use tpa_tests::RaiseOnDrop;

/// A bound on waiting (not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(20);
/// The responder's MAC address where the test chooses it.
const US: MacAddr = MacAddr([0x02, 0x74, 0x70, 0x61, 0x00, 0x42]);
/// The asker's MAC address on the loopback and memif tests.
const THEM: [u8; 6] = [0x02, 0, 0, 0, 0, 0x07];
const US4: [u8; 4] = [192, 0, 2, 1];
const THEM4: [u8; 4] = [192, 0, 2, 2];

fn us6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}

fn them6() -> Ipv6Addr {
    "2001:db8::2".parse().unwrap()
}

fn interface(mac: MacAddr) -> Interface {
    Interface::new(mac)
        .with_ipv4("192.0.2.1/24".parse().unwrap())
        .with_ipv6("2001:db8::1/64".parse().unwrap())
}

fn config(port: PortSpec) -> Config {
    Config::new(
        port,
        vec![
            "192.0.2.1/24".parse().unwrap(),
            "2001:db8::1/64".parse().unwrap(),
        ],
    )
}

/// Serves `port` on a new thread, registered with the EAL, while `f` runs;
/// returns the summary and whether the thread had to be registered.
fn while_serving(port: DpdkPort, config: Config, f: impl FnOnce()) -> (Summary, bool) {
    let eal = eal();
    let stop = StopFlag::new();
    let worker = thread::spawn({
        let stop = stop.clone();
        move || {
            let lcore = eal.register_thread().expect("register the worker thread");
            let summary = serve(port, &config, &stop, |_| {}).expect("responder ran");
            (summary, lcore.registered())
        }
    });
    let guard = RaiseOnDrop(&stop);
    f();
    drop(guard);
    worker.join().expect("responder thread")
}

/// The kernel, in a namespace of its own, pings the responder over IPv4
/// and IPv6 through a `net_tap` whose interface was created in that
/// namespace, and learns the responder's MAC address from ARP and NDP.
#[test]
fn kernel_pings_the_responder_through_net_tap() {
    let _s = serial();
    let eal = eal();
    let ns = Netns::new("dresp");
    let ifname = unique_name("dr");
    let vdev = vdev_name("net_tap", "resp");
    let mut cfg = small_config(1);
    // The kernel's interface and the PMD share one MAC address; the
    // responder answers with its own, so it must see frames to it.
    cfg.promiscuous = true;
    let dev = ns
        .enter(|| DpdkDevice::create_vdev(eal, &vdev, &format!("iface={ifname}"), &cfg))
        .unwrap_or_else(|e| panic!("{vdev}: {e}"));
    ns.add_addr(&ifname, "192.0.2.2/24");
    ns.ip(&["addr", "add", "2001:db8::2/64", "dev", &ifname, "nodad"]);
    ns.up(&ifname);
    let kernel_mac: MacAddr = ns.mac_of(&ifname).parse().unwrap();
    assert_ne!(kernel_mac, US);
    let pool = dev.pool(0).expect("queue 0 has a pool");
    // net_tap keeps a receive ring of mbufs posted; that many are in use
    // while the device runs.
    let posted = pool.in_use();

    let port = dev.port(0).unwrap();
    let config = Config {
        mac: Some(US),
        ..config(PortSpec::Dpdk(vdev.clone()))
    };
    let (summary, registered) = while_serving(port, config, || {
        ns.ping_ok("-4", "192.0.2.1");
        ns.ping_ok("-6", "2001:db8::1");
        ns.assert_neighbor(&ifname, "192.0.2.1", US);
        ns.assert_neighbor(&ifname, "2001:db8::1", US);
    });
    assert!(
        registered,
        "a spawned thread is not an EAL thread until registered"
    );
    assert_eq!(summary.mac, US);
    assert!(summary.arp_replies >= 1, "{}", summary.counters);
    assert!(summary.ndp_replies >= 1, "{}", summary.counters);
    assert_eq!(summary.icmpv4_replies, 3, "{}", summary.counters);
    assert_eq!(summary.icmpv6_replies, 3, "{}", summary.counters);
    assert!(
        summary
            .neighbors_v4
            .contains(&(Ipv4Addr::from(THEM4), kernel_mac)),
        "{:?}",
        summary.neighbors_v4
    );
    assert!(
        summary.neighbors_v6.contains(&(them6(), kernel_mac)),
        "{:?}",
        summary.neighbors_v6
    );
    let stats = dev.stats().unwrap();
    assert!(stats.tx_packets >= 8, "{stats:?}");
    assert_eq!(pool.in_use(), posted, "the responder kept no mbuf");
    close_whole(dev);
}

/// Threads the test starts get lcore ids of their own while registered
/// (so mempool caches serve them), distinct from the main lcore and from
/// each other; registering twice changes nothing.
#[test]
fn worker_threads_get_lcore_ids_of_their_own() {
    let eal = eal();
    let barrier = std::sync::Barrier::new(2);
    let ids: Vec<u32> = thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let lcore = eal.register_thread().expect("register");
                    assert!(lcore.registered());
                    let again = eal.register_thread().expect("register again");
                    assert!(!again.registered());
                    assert_eq!(again.lcore_id(), lcore.lcore_id());
                    // Both threads hold their ids at once.
                    barrier.wait();
                    lcore.lcore_id()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    assert_ne!(ids[0], ids[1], "{ids:?}");
    assert!(
        ids.iter().all(|&id| id != 0),
        "0 is the main lcore: {ids:?}"
    );
}

// ---- byte-for-byte replies on a net_ring loopback ----

/// RFC 1071 ones' complement sum, written here independently of tpa.
fn ones_sum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum field value making `chunks` sum to all ones.
fn checksum(chunks: &[&[u8]]) -> [u8; 2] {
    (!ones_sum(chunks)).to_be_bytes()
}

/// An ARP request from `THEM` for 192.0.2.1, padded to the Ethernet minimum.
fn arp_request() -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&THEM);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&THEM);
    f[28..32].copy_from_slice(&THEM4);
    f[38..42].copy_from_slice(&US4);
    f
}

/// The reply RFC 826 prescribes to [`arp_request`], written out by hand.
fn arp_reply(us: MacAddr) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&THEM);
    f[6..12].copy_from_slice(&us.0);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 2]);
    f[22..28].copy_from_slice(&us.0);
    f[28..32].copy_from_slice(&US4);
    f[32..38].copy_from_slice(&THEM);
    f[38..42].copy_from_slice(&THEM4);
    f
}

fn echo_request_v4(us: MacAddr, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(THEM, us.0)
        .ipv4(THEM4, US4, 17)
        .icmpv4_echo_request(0x7e57, seq)
        .write(&mut f, payload)
        .unwrap();
    f
}

/// The echo reply to `request`: addresses swapped, TTL 64, type 0, both
/// checksums recomputed (RFC 792, RFC 791).
fn echo_reply_v4(request: &[u8], us: MacAddr) -> Vec<u8> {
    let mut f = request.to_vec();
    f[..6].copy_from_slice(&THEM);
    f[6..12].copy_from_slice(&us.0);
    f[22] = 64;
    f[26..30].copy_from_slice(&US4);
    f[30..34].copy_from_slice(&THEM4);
    f[24..26].copy_from_slice(&[0, 0]);
    let sum = checksum(&[&f[14..34]]);
    f[24..26].copy_from_slice(&sum);
    f[34] = 0;
    f[36..38].copy_from_slice(&[0, 0]);
    let sum = checksum(&[&f[34..]]);
    f[36..38].copy_from_slice(&sum);
    f
}

fn echo_request_v6(us: MacAddr, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(THEM, us.0)
        .ipv6(them6().octets(), us6().octets(), 33)
        .icmpv6_echo_request(0x7e57, seq)
        .write(&mut f, payload)
        .unwrap();
    f
}

/// The ICMPv6 checksum of the packet in `f` (Ethernet at 0), over the
/// pseudo-header (RFC 8200 section 8.1).
fn icmpv6_checksum(f: &mut [u8]) {
    f[56..58].copy_from_slice(&[0, 0]);
    let len = u32::try_from(f.len() - 54).unwrap().to_be_bytes();
    let sum = checksum(&[&f[22..54], &len, &[0, 0, 0, 58], &f[54..]]);
    f[56..58].copy_from_slice(&sum);
}

/// The ICMPv6 echo reply to `request` (RFC 4443): addresses swapped, hop
/// limit 64, type 129.
fn echo_reply_v6(request: &[u8], us: MacAddr) -> Vec<u8> {
    let mut f = request.to_vec();
    f[..6].copy_from_slice(&THEM);
    f[6..12].copy_from_slice(&us.0);
    f[21] = 64;
    f[22..38].copy_from_slice(&us6().octets());
    f[38..54].copy_from_slice(&them6().octets());
    f[54] = 129;
    icmpv6_checksum(&mut f);
    f
}

/// A neighbor solicitation from `THEM` for 2001:db8::1, to its
/// solicited-node group, with a source link-layer address option.
fn neighbor_solicitation() -> Vec<u8> {
    let group: Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
    let mut f = vec![0u8; 54 + 32];
    f[..6].copy_from_slice(&[0x33, 0x33, 0xff, 0, 0, 1]);
    f[6..12].copy_from_slice(&THEM);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14] = 0x60;
    f[18..20].copy_from_slice(&32u16.to_be_bytes());
    f[20] = 58;
    f[21] = 255;
    f[22..38].copy_from_slice(&them6().octets());
    f[38..54].copy_from_slice(&group.octets());
    f[54] = 135;
    f[62..78].copy_from_slice(&us6().octets());
    f[78..80].copy_from_slice(&[1, 1]);
    f[80..86].copy_from_slice(&THEM);
    icmpv6_checksum(&mut f);
    f
}

/// The solicited advertisement RFC 4861 prescribes: to the asker, hop
/// limit 255, flags solicited and override, our MAC address as the target
/// link-layer address option.
fn neighbor_advertisement(us: MacAddr) -> Vec<u8> {
    let mut f = vec![0u8; 54 + 32];
    f[..6].copy_from_slice(&THEM);
    f[6..12].copy_from_slice(&us.0);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14] = 0x60;
    f[18..20].copy_from_slice(&32u16.to_be_bytes());
    f[20] = 58;
    f[21] = 255;
    f[22..38].copy_from_slice(&us6().octets());
    f[38..54].copy_from_slice(&them6().octets());
    f[54] = 136;
    f[58] = 0x60;
    f[62..78].copy_from_slice(&us6().octets());
    f[78..80].copy_from_slice(&[2, 1]);
    f[80..86].copy_from_slice(&us.0);
    icmpv6_checksum(&mut f);
    f
}

/// Frames to send and the replies they must get, in order.
fn requests_and_replies(us: MacAddr) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut requests = vec![arp_request(), neighbor_solicitation()];
    let mut replies = vec![arp_reply(us), neighbor_advertisement(us)];
    for seq in 0..6u16 {
        let payload: Vec<u8> = (0..(seq * 97) % 1200).map(|i| (i ^ seq) as u8).collect();
        let v4 = echo_request_v4(us, seq, &payload);
        replies.push(echo_reply_v4(&v4, us));
        requests.push(v4);
        let v6 = echo_request_v6(us, seq, &payload);
        replies.push(echo_reply_v6(&v6, us));
        requests.push(v6);
    }
    (requests, replies)
}

fn mbufs_of<P: Port<Buf = Mbuf>>(port: &mut P, frames: &[Vec<u8>]) -> Burst<Mbuf> {
    let mut burst = Burst::new();
    for f in frames {
        let mut m = port.alloc().expect("mbuf");
        m.append(f.len()).expect("room").copy_from_slice(f);
        burst.push(m);
    }
    burst
}

/// On a `net_ring` loopback, what the pipeline transmits comes back on the
/// same queue: the test sends requests through the responder's port, runs
/// one iteration of the pipeline, and receives its replies, which must be
/// exactly the frames the RFCs prescribe. A reply looped back to the
/// responder is not for it, and is dropped.
#[test]
fn net_ring_loopback_replies_are_right_byte_for_byte() {
    let _s = serial();
    let eal = eal();
    let _lcore = eal.register_thread().unwrap();
    let name = vdev_name("net_ring", "resp");
    let dev = DpdkDevice::create_vdev(eal, &name, "", &small_config(1))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut responder = build(dev.port(0).unwrap(), &interface(US), None);
    let (requests, expected) = requests_and_replies(US);
    assert!(requests.len() <= 32, "one burst");

    let mut tx = mbufs_of(responder.port_mut(), &requests);
    assert_eq!(responder.port_mut().tx_burst(&mut tx), requests.len());
    let done = responder.run_once();
    assert_eq!(done.rx, requests.len());
    let mut rx: Burst<Mbuf> = Burst::new();
    responder.port_mut().rx_burst(&mut rx);
    let replies: Vec<Mbuf> = rx.drain().collect();
    assert_eq!(replies.len(), expected.len());
    for (i, (got, want)) in replies.iter().zip(&expected).enumerate() {
        assert_eq!(got.data(), &want[..], "reply {i}");
    }
    assert_eq!(responder.arp().stats.transmitted, 1);
    assert_eq!(responder.ndp().stats.transmitted, 1);
    assert_eq!(responder.icmpv4().stats.transmitted, 6);
    assert_eq!(responder.icmpv6().stats.transmitted, 6);
    assert_eq!(
        responder
            .egress()
            .neighbors_v4()
            .get(THEM4.into(), 0)
            .and_then(|n| n.mac),
        Some(MacAddr(THEM))
    );

    // Replies looped back to the responder are addressed to THEM: dropped.
    let mut tx: Burst<Mbuf> = Burst::new();
    for m in replies {
        tx.push(m);
    }
    assert_eq!(responder.port_mut().tx_burst(&mut tx), expected.len());
    let done = responder.run_once();
    assert_eq!((done.rx, done.tx), (expected.len(), 0));
    let front = responder.stats().stage("front").unwrap();
    assert_eq!(front.transmitted as usize, expected.len());
    let pool_in_use = responder.port().pool().in_use();
    assert_eq!(pool_in_use, 0, "every mbuf is back");
    drop(responder);
    close_whole(dev);
}

// ---- net_memif between two processes ----

/// Tells the child process where the memif socket is.
const SOCKET_ENV: &str = "TPA_TEST_RESPONDER_MEMIF_SOCKET";
/// Printed by the child once its memif server listens.
const READY: &str = "memif responder ready";
/// Echo requests the client sends.
const ECHOES: u16 = 16;

/// Receives until `n` frames arrived.
fn receive(port: &mut DpdkPort, n: usize) -> Vec<Mbuf> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} frames within {PATIENCE:?}",
            got.len()
        );
        let mut rx: Burst<Mbuf> = Burst::new();
        if port.rx_burst(&mut rx) == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        got.extend(rx.drain());
    }
    got
}

/// Sends all of `frames`, retrying what the ring did not take.
fn send(port: &mut DpdkPort, frames: &[Vec<u8>]) {
    let deadline = Instant::now() + PATIENCE;
    let mut tx = mbufs_of(port, frames);
    while !tx.is_empty() {
        assert!(
            Instant::now() < deadline,
            "could not send within {PATIENCE:?}"
        );
        port.tx_burst(&mut tx);
    }
}

/// The test process is the memif client and asks; a second process (this
/// binary again) runs the responder on the memif server through the
/// library's DPDK entry point, `open_dpdk`, which initialises its EAL from
/// arguments with a `--vdev`, as the command line does.
#[test]
fn responder_answers_over_memif_from_another_process() {
    let _s = serial();
    let eal = eal();
    let _lcore = eal.register_thread().unwrap();
    let socket = format!("/run/tpa-resp-memif-{}.sock", std::process::id());
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "memif_responder_process",
            "--nocapture",
        ])
        .env(SOCKET_ENV, &socket)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the responder process");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut child = KillOnDrop(child);
    let mut line = String::new();
    while line.trim_end() != READY {
        line.clear();
        let n = out.read_line(&mut line).expect("read the child's output");
        assert!(n > 0, "the responder process ended before listening");
    }
    // Keep draining its output so it never blocks on a full pipe.
    let drain = thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());

    let name = vdev_name("net_memif", "client");
    let dev = DpdkDevice::create_vdev(
        eal,
        &name,
        &format!("role=client,id=0,socket={socket}"),
        &small_config(1),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut port = dev.port(0).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !dev.link_up().unwrap() {
        assert!(
            Instant::now() < deadline,
            "memif link not up within {PATIENCE:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }

    // Learn the responder's MAC address by ARP, then ping it.
    send(&mut port, &[arp_request()]);
    let reply = receive(&mut port, 1).remove(0);
    let us = MacAddr(reply.data()[6..12].try_into().unwrap());
    assert_eq!(reply.data(), &arp_reply(us)[..]);
    drop(reply);
    let requests: Vec<Vec<u8>> = (0..ECHOES)
        .map(|seq| echo_request_v4(us, seq, &[seq as u8; 100]))
        .collect();
    send(&mut port, &requests);
    let replies = receive(&mut port, requests.len());
    for (i, (got, req)) in replies.iter().zip(&requests).enumerate() {
        assert_eq!(got.data(), &echo_reply_v4(req, us)[..], "reply {i}");
    }
    drop(replies);
    // The last frame, not for the responder, tells it to stop (its count).
    let mut bye = requests[0].clone();
    bye[..6].copy_from_slice(&THEM);
    send(&mut port, &[bye]);

    let status = child.0.wait().expect("wait for the responder process");
    let output = drain.join().unwrap_or_default();
    assert!(
        status.success(),
        "responder process failed ({status}):\n{output}"
    );
    assert!(
        output.contains("memif responder: arp 1 icmp 16"),
        "{output}"
    );
    assert_eq!(port.pool().in_use(), 0, "every mbuf is back");
    drop(port);
    close_whole(dev);
    let _ = std::fs::remove_file(&socket);
}

#[test]
#[ignore = "the responder process of responder_answers_over_memif_from_another_process"]
fn memif_responder_process() {
    let Ok(socket) = std::env::var(SOCKET_ENV) else {
        return; // run by --include-ignored, not as the peer: nothing to do
    };
    tpa_tests::netns::require_root();
    let vdev = "net_memif_resp0";
    let mut args = eal_args();
    args.push("--vdev".into());
    args.push(format!("{vdev},role=server,id=0,socket={socket}"));
    let config = Config {
        // ARP, the echo requests, and the last frame.
        count: Some(1 + u64::from(ECHOES) + 1),
        duration: Some(PATIENCE),
        eal_args: args,
        ..config(PortSpec::Dpdk(vdev.into()))
    };
    struct RemoveRuntimeDir;
    impl Drop for RemoveRuntimeDir {
        fn drop(&mut self) {
            let dir = format!("/var/run/dpdk/tpa-test-{}", std::process::id());
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    let _cleanup = RemoveRuntimeDir;
    let (dev, port) =
        tpa_responder::open_dpdk(vdev, config.mac, &config.eal_args).expect("open the port");
    // This thread initialised the EAL: it is the main lcore already.
    let lcore = Eal::get().expect("EAL").register_thread().unwrap();
    assert!(!lcore.registered());
    assert_eq!(lcore.lcore_id(), 0, "-l 0");
    println!("{READY}");
    let summary = serve(port, &config, &StopFlag::new(), |_| {}).expect("responder ran");
    println!(
        "memif responder: arp {} icmp {} ({})",
        summary.arp_replies,
        summary.icmpv4_replies,
        summary.line()
    );
    assert_eq!(summary.rx, config.count.unwrap(), "{}", summary.counters);
    assert_eq!(
        dev.pool(0).unwrap().in_use(),
        0,
        "every mbuf is back (memif copies what it sends)"
    );
    close_whole(dev);
}
