//! The AF_XDP port beside the kernel on one veth end and one IP address
//! (software flow bifurcation, issue 14).
//!
//! Two namespaces joined by a veth pair: the client's end `vc`
//! (192.0.2.1) and the server's end `vs` (192.0.2.2), where the kernel
//! serves TCP (a python echo server) and ping while tpa, through an
//! AF_XDP port with its XDP program in native mode, serves UDP echo on
//! port 7777 and takes TCP port 7000. The echo here swaps addresses and
//! ports in place (no stack: the port is under test) and drops, counting
//! them, frames whose IPv4 header checksum is wrong.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::port::af_xdp::{AfXdp, AfXdpConfig, Transport};
use tpa::port::{Burst, Port};
use tpa_tests::netns::Netns;

const TPA_UDP: u16 = 7777;
const TPA_TCP: u16 = 7000;
const KERNEL_TCP: u16 = 8080;
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// Client and server namespaces joined by `vc` <-> `vs`.
fn pair() -> (Netns, Netns) {
    let server = Netns::new("xdps");
    let client = Netns::new("xdpc");
    server.add_veth("vs", "vc");
    server.ip(&["link", "set", "vc", "netns", client.name()]);
    server.add_addr("vs", "192.0.2.2/24");
    client.add_addr("vc", "192.0.2.1/24");
    server.up("vs");
    client.up("vc");
    // AF_XDP gets no checksum state with a frame: a veth peer on this
    // host must finish its checksums (no TX checksum offload), as a wire
    // would deliver them.
    client.exec(&["ethtool", "-K", "vc", "tx", "off"]);
    (server, client)
}

fn pool() -> Pool {
    Pool::new(PoolConfig {
        name: "afxdp-test".into(),
        capacity: 4096,
        huge_pages: false,
        rx_reserve: 1024,
        ..PoolConfig::default()
    })
    .unwrap()
}

/// The kernel's counter `field` of `group` in /proc/net/snmp inside `ns`.
fn snmp(ns: &Netns, group: &str, field: &str) -> u64 {
    let text = ns.exec(&["cat", "/proc/net/snmp"]);
    let mut lines = text.lines().filter(|l| l.starts_with(&format!("{group}:")));
    let names: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let values: Vec<&str> = lines.next().expect("values").split_whitespace().collect();
    let i = names.iter().position(|n| *n == field).expect("field");
    values[i].parse().unwrap()
}

/// The IPv4 header checksum over `h` is right.
fn ipv4_checksum_ok(h: &[u8]) -> bool {
    let mut sum = 0u32;
    for c in h.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

#[derive(Default)]
struct EchoCounters {
    echoed: AtomicU64,
    malformed: AtomicU64,
    other: AtomicU64,
}

/// Echoes UDP datagrams to `TPA_UDP` by swapping addresses and ports in
/// place (checksums stay right); drops and counts the rest.
fn echo_loop(mut port: AfXdp, stop: Arc<AtomicBool>, counters: Arc<EchoCounters>) -> AfXdp {
    let mut rx: Burst<PoolBuf> = Burst::new();
    let mut tx: Burst<PoolBuf> = Burst::new();
    while !stop.load(Ordering::Relaxed) {
        port.wait_rx(Duration::from_millis(20));
        port.rx_burst(&mut rx);
        for mut buf in rx.drain() {
            let d = buf.data_mut();
            let ok = d.len() >= 42 && d[12..14] == [8, 0] && d[14] == 0x45 && d[23] == 17;
            if !ok {
                counters.other.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let ip_len = usize::from(u16::from_be_bytes([d[16], d[17]]));
            if !ipv4_checksum_ok(&d[14..34]) || 14 + ip_len > d.len() {
                counters.malformed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let (mut dst, mut src) = ([0u8; 6], [0u8; 6]);
            dst.copy_from_slice(&d[0..6]);
            src.copy_from_slice(&d[6..12]);
            d[0..6].copy_from_slice(&src);
            d[6..12].copy_from_slice(&dst);
            for (a, b) in [(26, 30), (27, 31), (28, 32), (29, 33), (34, 36), (35, 37)] {
                d.swap(a, b);
            }
            tx.push(buf);
            counters.echoed.fetch_add(1, Ordering::Relaxed);
            if tx.is_full() {
                port.tx_burst(&mut tx);
                tx.clear();
            }
        }
        if !tx.is_empty() {
            port.tx_burst(&mut tx);
            tx.clear();
        }
    }
    port
}

/// A kernel TCP echo server on `KERNEL_TCP` in `ns`.
fn kernel_tcp_server(ns: &Netns) -> tpa_tests::netns::Background {
    let script = format!(
        "import socket\n\
         s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('192.0.2.2', {KERNEL_TCP})); s.listen(8)\n\
         print('ready', flush=True)\n\
         while True:\n\
         \x20   c, _ = s.accept()\n\
         \x20   d = c.recv(4096)\n\
         \x20   c.sendall(d); c.close()\n"
    );
    ns.spawn_until(&["python3", "-c", &script], "ready")
}

fn kernel_tcp_echo_ok(client: &Netns) {
    let mut s = client
        .enter(|| {
            TcpStream::connect_timeout(
                &SocketAddr::from((SERVER, KERNEL_TCP)),
                Duration::from_secs(5),
            )
        })
        .expect("the kernel's TCP server answers beside tpa");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"kernel, are you there?").unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"kernel, are you there?");
}

/// Sends `n` datagrams to `port` on the server and returns how many
/// echoes came back intact.
fn udp_echoes(client: &Netns, port: u16, n: usize) -> usize {
    let sock = client.enter(|| UdpSocket::bind("192.0.2.1:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut ok = 0;
    let mut buf = [0u8; 2048];
    for i in 0..n {
        let msg = format!("datagram {i}");
        sock.send_to(msg.as_bytes(), (SERVER, port)).unwrap();
        if let Ok((len, from)) = sock.recv_from(&mut buf) {
            if &buf[..len] == msg.as_bytes() && from == SocketAddr::from((SERVER, port)) {
                ok += 1;
            }
        }
    }
    ok
}

fn xdp_attached(ns: &Netns, dev: &str) -> bool {
    ns.ip(&["link", "show", dev]).contains("prog/xdp")
}

#[test]
fn tpa_and_the_kernel_serve_one_address_side_by_side() {
    let (server, client) = pair();
    let _kernel = kernel_tcp_server(&server);
    let pool = pool();
    let config = AfXdpConfig {
        local_ports: Some(40000..=40999),
        ..AfXdpConfig::new("vs", vec![IpAddr::V4(SERVER)])
    };
    let reserved_before = server.sysctl("net.ipv4.ip_local_reserved_ports");
    let port = server
        .enter(|| AfXdp::open(&config, pool.clone()))
        .expect("open AF_XDP on vs");
    assert!(!port.zero_copy(), "veth has copy mode only");
    assert!(xdp_attached(&server, "vs"));
    let reserved = server.sysctl("net.ipv4.ip_local_reserved_ports");
    assert!(
        reserved.contains("40000-40999"),
        "reserved ports: {reserved}"
    );
    let filter = port.filter().clone();
    filter.open_port(Transport::Udp, TPA_UDP).unwrap();
    filter.open_port(Transport::Tcp, TPA_TCP).unwrap();

    let rsts_before = snmp(&server, "Tcp", "OutRsts");
    let unreach_before = snmp(&server, "Icmp", "OutDestUnreachs");
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(EchoCounters::default());
    let worker = {
        let (stop, counters) = (stop.clone(), counters.clone());
        thread::spawn(move || echo_loop(port, stop, counters))
    };

    // tpa echoes UDP while the kernel serves TCP and ping, at once.
    let echoed = udp_echoes(&client, TPA_UDP, 200);
    kernel_tcp_echo_ok(&client);
    client.ping_ok("-4", "192.0.2.2");
    // The kernel resolved the client (ARP is its own); tpa learns it there.
    let neighbors = server
        .enter(|| tpa::port::af_xdp::kernel_neighbors("vs"))
        .unwrap();
    let client_mac: tpa::wire::MacAddr = client.mac_of("vc").parse().unwrap();
    assert!(
        neighbors
            .iter()
            .any(|n| n.ip == IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)) && n.mac == client_mac),
        "the kernel's neighbours on vs: {neighbors:?}"
    );
    if echoed < 195 {
        stop.store(true, Ordering::Relaxed);
        let mut port = worker.join().unwrap();
        eprintln!("client: {}", client.exec(&["cat", "/proc/net/snmp"]));
        panic!(
            "tpa echoed {echoed} of 200 datagrams; XDP {:?}; port {:?}, {} buffers lent",
            filter.counters(),
            port.stats(),
            port.lent()
        );
    }

    // A TCP SYN to tpa's port reaches tpa (which does not answer here),
    // never the kernel: no reset, the connection attempt times out.
    let syn = client.enter(|| {
        TcpStream::connect_timeout(
            &SocketAddr::from((SERVER, TPA_TCP)),
            Duration::from_millis(300),
        )
    });
    assert!(syn.is_err(), "nothing answers on tpa's TCP port here");
    assert_ne!(
        syn.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused,
        "the kernel must not reset tpa's flows"
    );

    // A datagram to a port tpa does not own reaches the kernel, which
    // answers port unreachable.
    let sock = client.enter(|| UdpSocket::bind("192.0.2.1:0")).unwrap();
    sock.send_to(b"for the kernel", (SERVER, 9999)).unwrap();
    thread::sleep(Duration::from_millis(100));

    // A malformed datagram for tpa's port (IPv4 header checksum wrong),
    // sent raw from the client: tpa gets it, drops it and counts it.
    let server_mac = server.mac_of("vs");
    let client_mac = client.mac_of("vc");
    send_bad_checksum_frame(&client, &client_mac, &server_mac);
    thread::sleep(Duration::from_millis(200));

    let unreach = snmp(&server, "Icmp", "OutDestUnreachs") - unreach_before;
    assert_eq!(
        snmp(&server, "Tcp", "OutRsts"),
        rsts_before,
        "the kernel sent a reset on tpa's flows"
    );
    assert_eq!(unreach, 1, "only the datagram to port 9999 is the kernel's");

    stop.store(true, Ordering::Relaxed);
    let mut port = worker.join().unwrap();
    assert_eq!(counters.malformed.load(Ordering::Relaxed), 1);
    assert!(
        counters.other.load(Ordering::Relaxed) >= 1,
        "the SYN came to tpa"
    );
    let x = filter.counters();
    assert!(x.redirected >= 200 + 2, "{x:?}");
    assert!(x.passed > 0, "{x:?}");
    assert_eq!(x.no_socket, 0, "{x:?}");
    let stats = port.stats();
    assert!(
        stats.rx_packets >= 202 && stats.tx_packets >= 195,
        "{stats:?}"
    );
    eprintln!("xdp {x:?}\nport {stats:?}\nlent {}", port.lent());

    // tpa gone: the program is detached, the reserved ports restored and
    // the kernel gets every frame again (port unreachable for tpa's old port).
    drop(port);
    drop(filter);
    pool.assert_whole();
    assert!(
        !xdp_attached(&server, "vs"),
        "the XDP program outlived the port"
    );
    assert_eq!(
        server.sysctl("net.ipv4.ip_local_reserved_ports"),
        reserved_before
    );
    let unreach_before = snmp(&server, "Icmp", "OutDestUnreachs");
    assert_eq!(udp_echoes(&client, TPA_UDP, 1), 0);
    assert_eq!(snmp(&server, "Icmp", "OutDestUnreachs"), unreach_before + 1);
    kernel_tcp_echo_ok(&client);
}

/// Sends one UDP datagram to tpa's port with a wrong IPv4 header checksum
/// through a packet socket on the client's end.
fn send_bad_checksum_frame(client: &Netns, src_mac: &str, dst_mac: &str) {
    let mac = |s: &str| -> Vec<u8> {
        s.split(':')
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    };
    let mut f = Vec::new();
    f.extend(mac(dst_mac));
    f.extend(mac(src_mac));
    f.extend([0x08, 0x00]);
    let payload = b"bad";
    let ip_len = 20 + 8 + payload.len() as u16;
    f.extend([
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0,
        1,
        0,
        0,
        64,
        17,
    ]);
    f.extend([0xde, 0xad]); // not the checksum
    f.extend([192, 0, 2, 1, 192, 0, 2, 2]);
    f.extend(40001u16.to_be_bytes());
    f.extend(TPA_UDP.to_be_bytes());
    f.extend((8 + payload.len() as u16).to_be_bytes());
    f.extend([0, 0]);
    f.extend(payload);
    client.enter(|| {
        // SAFETY: plain socket(2); checked below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(
            fd >= 0,
            "packet socket: {}",
            std::io::Error::last_os_error()
        );
        let name = std::ffi::CString::new("vc").unwrap();
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        // SAFETY: `f` and `sll` are live for the call, sizes as passed.
        let n = unsafe {
            libc::sendto(
                fd,
                f.as_ptr().cast(),
                f.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(n, f.len() as isize, "{}", std::io::Error::last_os_error());
        // SAFETY: ours to close.
        unsafe { libc::close(fd) };
    });
}

#[test]
fn errors_name_the_interface_and_the_cause() {
    let (server, _client) = pair();
    let pool = pool();
    let config = AfXdpConfig::new("vs", vec![IpAddr::V4(SERVER)]);
    // Another XDP program on the interface.
    let port = server.enter(|| AfXdp::open(&config, pool.clone())).unwrap();
    let err = server
        .enter(|| AfXdp::open(&config, pool.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("vs: ") && err.contains("another XDP program"),
        "{err}"
    );
    drop(port);
    // No such interface.
    let err = server
        .enter(|| AfXdp::open(&AfXdpConfig::new("nope0", vec![]), pool.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope0") && err.contains("no such device"),
        "{err}"
    );
    pool.assert_whole();
}

/// Not a test of its own: the child process of
/// `the_program_goes_away_when_tpa_is_killed`, which runs it with
/// `--ignored` inside its namespace. Opens the port, says so, and waits
/// to be killed.
#[test]
#[ignore = "the child process of the_program_goes_away_when_tpa_is_killed"]
fn child_holding_the_port() {
    assert!(
        std::env::var_os("TPA_AF_XDP_CHILD").is_some(),
        "run by the_program_goes_away_when_tpa_is_killed only"
    );
    let pool = pool();
    let port = AfXdp::open(&AfXdpConfig::new("vs", vec![IpAddr::V4(SERVER)]), pool).unwrap();
    port.filter().open_port(Transport::Udp, TPA_UDP).unwrap();
    println!("holding");
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn the_program_goes_away_when_tpa_is_killed() {
    let (server, client) = pair();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = server.command(&[
        exe.to_str().unwrap(),
        "--exact",
        "child_holding_the_port",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd.env("TPA_AF_XDP_CHILD", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(n > 0, "the child ended before holding the port");
        // libtest's "test child_holding_the_port ... " precedes it on the line.
        if line.trim_end().ends_with("holding") {
            break;
        }
    }
    assert!(xdp_attached(&server, "vs"));
    // SAFETY: kill(2) on our own child, by its id.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    child.wait().unwrap();
    // (`ip netns exec` execs the command: the id killed is the test
    // binary's own.) The kernel releases the link as the process's files
    // are closed, which may finish just after the wait: look again for a
    // second at most.
    for _ in 0..50 {
        if !xdp_attached(&server, "vs") {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !xdp_attached(&server, "vs"),
        "kill -9 left the XDP program attached"
    );
    // The kernel has the interface back: port unreachable for tpa's port.
    let before = snmp(&server, "Icmp", "OutDestUnreachs");
    assert_eq!(udp_echoes(&client, TPA_UDP, 1), 0);
    assert_eq!(snmp(&server, "Icmp", "OutDestUnreachs"), before + 1);
    client.ping_ok("-4", "192.0.2.2");
}

/// The program's decisions frame by frame (`BPF_PROG_TEST_RUN` on the
/// attached program, a socket on queue 0): TCP/UDP to tpa's ports and
/// local range, ICMP and ICMPv6 errors quoting tpa's packets, later
/// fragments of tpa's datagrams go to tpa; everything else, including
/// the same traffic to another address or port, to the kernel.
#[test]
fn the_program_hands_tpa_only_its_flows() {
    use etherparse::PacketBuilder;
    use tpa::port::af_xdp::XdpVerdict::{Kernel, Tpa};
    let (server, _client) = pair();
    let pool = pool();
    let tpa6: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
    let config = AfXdpConfig {
        local_ports: Some(41000..=41099),
        ..AfXdpConfig::new("vs", vec![IpAddr::V4(SERVER), IpAddr::V6(tpa6)])
    };
    let port = server.enter(|| AfXdp::open(&config, pool.clone())).unwrap();
    let filter = port.filter().clone();
    filter.open_port(Transport::Udp, TPA_UDP).unwrap();
    filter.open_port(Transport::Tcp, TPA_TCP).unwrap();
    let (me, peer) = ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1]);
    let build = |b: etherparse::PacketBuilderStep<etherparse::UdpHeader>, p: &[u8]| {
        let mut f = Vec::new();
        b.write(&mut f, p).unwrap();
        f
    };
    let udp4 = |dst: [u8; 4], sport: u16, dport: u16| {
        build(
            PacketBuilder::ethernet2(peer, me)
                .ipv4([192, 0, 2, 1], dst, 64)
                .udp(sport, dport),
            b"x",
        )
    };
    let tcp4 = |dport: u16| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(peer, me)
            .ipv4([192, 0, 2, 1], SERVER.octets(), 64)
            .tcp(40000, dport, 1, 1000)
            .syn()
            .write(&mut f, &[])
            .unwrap();
        f
    };
    let udp6 = |dport: u16| {
        build(
            PacketBuilder::ethernet2(peer, me)
                .ipv6(
                    [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    tpa6.octets(),
                    64,
                )
                .udp(5000, dport),
            b"x",
        )
    };
    let v = |f: &[u8]| filter.verdict(f).unwrap();
    assert_eq!(
        v(&udp4(SERVER.octets(), 5000, TPA_UDP)),
        Tpa,
        "UDP to tpa's port"
    );
    assert_eq!(v(&tcp4(TPA_TCP)), Tpa, "TCP to tpa's port");
    assert_eq!(v(&tcp4(41050)), Tpa, "TCP to tpa's local range");
    assert_eq!(
        v(&udp4(SERVER.octets(), 5000, 41099)),
        Tpa,
        "UDP to the range's end"
    );
    assert_eq!(v(&udp6(TPA_UDP)), Tpa, "UDP/IPv6 to tpa's port");
    assert_eq!(v(&tcp4(KERNEL_TCP)), Kernel, "the kernel's port");
    assert_eq!(
        v(&udp4(SERVER.octets(), 5000, 41100)),
        Kernel,
        "past the range"
    );
    assert_eq!(
        v(&udp4([192, 0, 2, 9], 5000, TPA_UDP)),
        Kernel,
        "another address"
    );
    assert_eq!(v(&udp6(9)), Kernel, "IPv6, the kernel's port");

    // ICMP: fragmentation needed quoting a datagram tpa sent (from its
    // range) is tpa's; one quoting the kernel's datagram, and pings, are not.
    let icmp_error = |quoted_sport: u16| {
        let quoted = &udp4([192, 0, 2, 1], quoted_sport, 53)[14..];
        // the quoted packet's source must be tpa: swap its addresses
        let mut q = quoted.to_vec();
        q[12..16].copy_from_slice(&SERVER.octets());
        q[16..20].copy_from_slice(&[192, 0, 2, 1]);
        let mut f = Vec::new();
        PacketBuilder::ethernet2(peer, me)
            .ipv4([192, 0, 2, 1], SERVER.octets(), 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                    next_hop_mtu: 1400,
                },
            ))
            .write(&mut f, &q)
            .unwrap();
        f
    };
    assert_eq!(v(&icmp_error(41010)), Tpa, "PMTU about tpa's flow");
    assert_eq!(
        v(&icmp_error(33000)),
        Kernel,
        "PMTU about the kernel's flow"
    );
    let mut ping = Vec::new();
    PacketBuilder::ethernet2(peer, me)
        .ipv4([192, 0, 2, 1], SERVER.octets(), 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut ping, b"ping")
        .unwrap();
    assert_eq!(v(&ping), Kernel, "ping is the kernel's");

    // ICMPv6 packet too big quoting tpa's UDP/IPv6 datagram.
    let mut quoted6 = udp6(9)[14..].to_vec();
    let (src, dst) = (quoted6[8..24].to_vec(), quoted6[24..40].to_vec());
    quoted6[8..24].copy_from_slice(&dst);
    quoted6[24..40].copy_from_slice(&src);
    quoted6[40..42].copy_from_slice(&TPA_UDP.to_be_bytes());
    let mut too_big = Vec::new();
    PacketBuilder::ethernet2(peer, me)
        .ipv6(src.clone().try_into().unwrap(), tpa6.octets(), 64)
        .icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 })
        .write(&mut too_big, &quoted6)
        .unwrap();
    assert_eq!(v(&too_big), Tpa, "ICMPv6 too big about tpa's flow");

    // Fragments: a later fragment follows its first one to tpa; the same
    // later fragment of another datagram id goes to the kernel.
    let frag = |id: u16, offset8: u16, more: bool, dport: u16| {
        let mut f = udp4(SERVER.octets(), 5000, dport);
        f[18..20].copy_from_slice(&id.to_be_bytes());
        let flags = offset8 | if more { 0x2000 } else { 0 };
        f[20..22].copy_from_slice(&flags.to_be_bytes());
        f
    };
    assert_eq!(
        v(&frag(77, 3, false, 0)),
        Kernel,
        "a later fragment before its first"
    );
    assert_eq!(
        v(&frag(77, 0, true, TPA_UDP)),
        Tpa,
        "a first fragment to tpa's port"
    );
    assert_eq!(v(&frag(77, 3, false, 0)), Tpa, "its later fragment");
    assert_eq!(v(&frag(78, 3, false, 0)), Kernel, "another datagram's");

    // ARP is the kernel's.
    let mut arp = vec![0xff; 6];
    arp.extend(peer);
    arp.extend([0x08, 0x06]);
    arp.extend([0u8; 28]);
    assert_eq!(v(&arp), Kernel);

    drop((port, filter));
    pool.assert_whole();
}
