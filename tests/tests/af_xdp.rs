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

/// Client and server namespaces joined by `vc` <-> `vs`
/// ([`Netns::beside_kernel_pair`]): (server, client).
fn pair() -> (Netns, Netns) {
    pair_with_queues(1)
}

/// [`pair`] with `queues` receive and transmit queues on both ends.
fn pair_with_queues(queues: u16) -> (Netns, Netns) {
    Netns::beside_kernel_pair_with_queues("xdp", queues)
}

/// Asserts that the kernel of `server` resolved `client`'s `vc` at `ip`
/// on `vs` (its neighbour table, which tpa beside it reads).
fn assert_kernel_neighbour(server: &Netns, client: &Netns, ip: IpAddr) {
    let neighbors = server
        .enter(|| tpa::port::af_xdp::kernel_neighbors("vs"))
        .unwrap();
    let client_mac: tpa::wire::MacAddr = client.mac_of("vc").parse().unwrap();
    assert!(
        neighbors.iter().any(|n| n.ip == ip && n.mac == client_mac),
        "the kernel's neighbours on vs: {neighbors:?}"
    );
}

/// Asserts that a TCP SYN from `client` to tpa's `to` reaches tpa (which
/// does not answer here), never the kernel: no reset, the connection
/// attempt times out.
fn assert_syn_reaches_tpa(client: &Netns, to: SocketAddr) {
    let syn = client.enter(|| TcpStream::connect_timeout(&to, Duration::from_millis(300)));
    assert!(syn.is_err(), "nothing answers on tpa's TCP port here");
    assert_ne!(
        syn.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused,
        "the kernel must not reset tpa's flows"
    );
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

/// What [`echo_in_place`] did with a frame.
#[derive(Debug, PartialEq, Eq)]
enum Echo {
    /// Turned into its own echo.
    Echoed,
    /// UDP, but its IPv4 header checksum or a length is wrong: dropped.
    Malformed,
    /// Not UDP over IPv4 or IPv6 (a TCP SYN to tpa's port): dropped.
    Other,
}

/// Turns a UDP datagram (IPv4 or IPv6, no options or extension headers)
/// into its echo by swapping MAC addresses, IP addresses and ports in
/// place: the checksums stay right.
fn echo_in_place(d: &mut [u8]) -> Echo {
    let (addrs, ports) = if d.len() >= 42 && d[12..14] == [8, 0] && d[14] == 0x45 && d[23] == 17 {
        let ip_len = usize::from(u16::from_be_bytes([d[16], d[17]]));
        if !ipv4_checksum_ok(&d[14..34]) || 14 + ip_len > d.len() {
            return Echo::Malformed;
        }
        (26..30, 34)
    } else if d.len() >= 62 && d[12..14] == [0x86, 0xdd] && d[20] == 17 {
        let payload_len = usize::from(u16::from_be_bytes([d[18], d[19]]));
        if 54 + payload_len > d.len() {
            return Echo::Malformed;
        }
        (22..38, 54)
    } else {
        return Echo::Other;
    };
    let (dst, src) = d[..12].split_at_mut(6);
    dst.swap_with_slice(src);
    let n = addrs.len();
    let (a, b) = d[addrs.start..addrs.end + n].split_at_mut(n);
    a.swap_with_slice(b);
    let (a, b) = d[ports..ports + 4].split_at_mut(2);
    a.swap_with_slice(b);
    Echo::Echoed
}

/// Echoes UDP datagrams to `TPA_UDP` ([`echo_in_place`]); drops and
/// counts the rest.
fn echo_loop(mut port: AfXdp, stop: Arc<AtomicBool>, counters: Arc<EchoCounters>) -> AfXdp {
    let mut rx: Burst<PoolBuf> = Burst::new();
    let mut tx: Burst<PoolBuf> = Burst::new();
    while !stop.load(Ordering::Relaxed) {
        port.wait_rx(Duration::from_millis(20));
        port.rx_burst(&mut rx);
        for mut buf in rx.drain() {
            match echo_in_place(buf.data_mut()) {
                Echo::Echoed => {}
                Echo::Malformed => {
                    counters.malformed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Echo::Other => {
                    counters.other.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
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

/// A kernel TCP echo server on `addr`, port `KERNEL_TCP`, in `ns`.
fn kernel_tcp_server(ns: &Netns, addr: IpAddr) -> tpa_tests::netns::Background {
    let family = if addr.is_ipv4() {
        "AF_INET"
    } else {
        "AF_INET6"
    };
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.{family}); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{addr}', {KERNEL_TCP})); s.listen(8)\n\
         print('ready', flush=True)\n\
         while True:\n\
         \x20   c, _ = s.accept()\n\
         \x20   d = c.recv(4096)\n\
         \x20   c.sendall(d); c.close()\n"
    );
    ns.spawn_until(&["python3", "-c", &script], "ready")
}

fn kernel_tcp_echo_ok(client: &Netns, server: IpAddr) {
    let mut s = client
        .enter(|| {
            TcpStream::connect_timeout(&SocketAddr::new(server, KERNEL_TCP), Duration::from_secs(5))
        })
        .expect("the kernel's TCP server answers beside tpa");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"kernel, are you there?").unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"kernel, are you there?");
}

/// Sends `n` datagrams to `port` on `server` and returns how many
/// echoes came back intact.
fn udp_echoes(client: &Netns, server: IpAddr, port: u16, n: usize) -> usize {
    let any: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let sock = client.enter(|| UdpSocket::bind(any)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut ok = 0;
    let mut buf = [0u8; 2048];
    for i in 0..n {
        let msg = format!("datagram {i}");
        sock.send_to(msg.as_bytes(), (server, port)).unwrap();
        if let Ok((len, from)) = sock.recv_from(&mut buf) {
            if &buf[..len] == msg.as_bytes() && from == SocketAddr::new(server, port) {
                ok += 1;
            }
        }
    }
    ok
}

fn xdp_attached(ns: &Netns, dev: &str) -> bool {
    ns.ip(&["link", "show", dev]).contains("prog/xdp")
}

/// Whether `dev` has no XDP program, looking again for a second at most:
/// the program goes with the last reference to its `bpf_link`, and a
/// child another test thread is forking at that moment holds a copy of
/// the link's descriptor until its exec closes it (close-on-exec).
fn xdp_detached(ns: &Netns, dev: &str) -> bool {
    for _ in 0..50 {
        if !xdp_attached(ns, dev) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn tpa_and_the_kernel_serve_one_address_side_by_side() {
    let (server, client) = pair();
    let _kernel = kernel_tcp_server(&server, IpAddr::V4(SERVER));
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
    let echoed = udp_echoes(&client, IpAddr::V4(SERVER), TPA_UDP, 200);
    kernel_tcp_echo_ok(&client, IpAddr::V4(SERVER));
    client.ping_ok("-4", "192.0.2.2");
    // The kernel resolved the client (ARP is its own); tpa learns it there.
    assert_kernel_neighbour(&server, &client, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
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
    assert_syn_reaches_tpa(&client, SocketAddr::from((SERVER, TPA_TCP)));

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
        xdp_detached(&server, "vs"),
        "the XDP program outlived the port"
    );
    assert_eq!(
        server.sysctl("net.ipv4.ip_local_reserved_ports"),
        reserved_before
    );
    let unreach_before = snmp(&server, "Icmp", "OutDestUnreachs");
    assert_eq!(udp_echoes(&client, IpAddr::V4(SERVER), TPA_UDP, 1), 0);
    assert_eq!(snmp(&server, "Icmp", "OutDestUnreachs"), unreach_before + 1);
    kernel_tcp_echo_ok(&client, IpAddr::V4(SERVER));
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

    // A queue the device does not have (vs has one), refused before the
    // program is attached.
    // (Rings small enough that the pool holds two queues' worth.)
    let two = AfXdpConfig {
        queues: 2,
        rings: tpa::port::af_xdp::XskRingSize {
            fill: 512,
            rx: 512,
            tx: 512,
            completion: 512,
        },
        ..config.clone()
    };
    let err = server
        .enter(|| AfXdp::open_queues(&two, pool.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("vs: ") && err.contains("queue 1 does not exist"),
        "{err}"
    );
    assert!(xdp_detached(&server, "vs"));

    // Queue 0 held by another AF_XDP socket (the test's own, bound with
    // no XDP program): the bind fails, and the program attached for it
    // is detached again.
    let holder = server.enter(|| RawXsk::bind("vs", 0));
    let err = server
        .enter(|| AfXdp::open(&config, pool.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("vs: ") && err.contains("queue 0 is busy"),
        "{err}"
    );
    assert!(xdp_detached(&server, "vs"), "a failed open left XDP on");
    drop(holder);
    let port = server.enter(|| AfXdp::open(&config, pool.clone()));
    assert!(port.is_ok(), "queue 0 is free again: {port:?}");
    drop(port);

    // No native XDP: a bridge's driver has none (neither has `lo`;
    // veth and TAP have it, and this kernel has no `dummy` module).
    server.ip(&["link", "add", "br0", "type", "bridge"]);
    server.up("br0");
    let err = server
        .enter(|| {
            AfXdp::open(
                &AfXdpConfig::new("br0", vec![IpAddr::V4(SERVER)]),
                pool.clone(),
            )
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("br0: ") && err.contains("no native XDP support"),
        "{err}"
    );
    pool.assert_whole();
}

/// Not a test of its own: the child process of
/// `an_unprivileged_process_is_told_what_it_lacks`, run with `--ignored`
/// inside the namespace. Gives up root (`TPA_AF_XDP_UNPRIVILEGED=uid`:
/// becomes user and group 65534), or its effective capabilities (`=caps`:
/// still uid 0, as in a container that dropped them), or all but those
/// the port names (`=enough`), then opens the port and prints the error
/// or "opened".
#[test]
#[ignore = "the child process of an_unprivileged_process_is_told_what_it_lacks"]
fn child_opening_unprivileged() {
    let how = std::env::var("TPA_AF_XDP_UNPRIVILEGED")
        .expect("run by an_unprivileged_process_is_told_what_it_lacks only");
    let pool = pool();
    match how.as_str() {
        "uid" => {
            // SAFETY: plain set*id calls (glibc applies them to every
            // thread); checked below.
            unsafe {
                assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
                assert_eq!(libc::setgid(65534), 0);
                assert_eq!(libc::setuid(65534), 0);
                assert_eq!(libc::geteuid(), 65534);
            }
        }
        "caps" => keep_effective_capabilities(0),
        // What the port says it needs, and nothing else.
        "enough" => keep_effective_capabilities(
            (1 << CAP_BPF)
                | (1 << CAP_PERFMON)
                | (1 << CAP_NET_ADMIN)
                | (1 << CAP_NET_RAW)
                | (1 << CAP_IPC_LOCK),
        ),
        other => panic!("TPA_AF_XDP_UNPRIVILEGED={other}"),
    }
    match AfXdp::open(&AfXdpConfig::new("vs", vec![IpAddr::V4(SERVER)]), pool) {
        Ok(_) => println!("opened"),
        Err(e) => println!("error: {e}"),
    }
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Keeps only the capabilities of mask `keep` in this thread's effective
/// set (the permitted set stays; uid 0 stays).
fn keep_effective_capabilities(keep: u64) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget(2) with a version 3 header and room for its two data
    // words; checked.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut Header,
            data.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= keep as u32;
    data[1].effective &= (keep >> 32) as u32;
    // SAFETY: capset(2) with the same header and two data words; checked.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

/// Not root, or root without its capabilities: the port says what AF_XDP
/// needs and what the process lacks, naming the interface, instead of the
/// kernel's bare "operation not permitted"; nothing is left attached.
/// With exactly the capabilities it names (and no others), it opens.
#[test]
fn an_unprivileged_process_is_told_what_it_lacks() {
    let (server, _client) = pair();
    let exe = std::env::current_exe().unwrap();
    for how in ["uid", "caps", "enough"] {
        let out = server
            .command(&[
                exe.to_str().unwrap(),
                "--exact",
                "child_opening_unprivileged",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TPA_AF_XDP_UNPRIVILEGED", how)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{how}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if how == "enough" {
            assert!(text.lines().any(|l| l.ends_with("opened")), "{how}: {text}");
            continue;
        }
        let err = text
            .lines()
            .find_map(|l| l.split_once("error: ").map(|(_, e)| e))
            .unwrap_or_else(|| panic!("{how}: the open did not fail: {text}"));
        assert!(err.starts_with("vs: AF_XDP needs root"), "{how}: {err}");
        for cap in ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_NET_RAW"] {
            assert!(
                err.split_once("lacks")
                    .is_some_and(|(_, l)| l.contains(cap)),
                "{how}: {err}"
            );
        }
        assert!(xdp_detached(&server, "vs"), "{how}");
    }
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
    // are closed, which may finish just after the wait: `xdp_detached`
    // looks again for a second at most.
    assert!(
        xdp_detached(&server, "vs"),
        "kill -9 left the XDP program attached"
    );
    // The kernel has the interface back: port unreachable for tpa's port.
    let before = snmp(&server, "Icmp", "OutDestUnreachs");
    assert_eq!(udp_echoes(&client, IpAddr::V4(SERVER), TPA_UDP, 1), 0);
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

    // Opens are counted (each worker's table opens a port it listens on):
    // the port stays tpa's until the last close.
    filter.open_port(Transport::Udp, 5353).unwrap();
    filter.open_port(Transport::Udp, 5353).unwrap();
    filter.close_port(Transport::Udp, 5353).unwrap();
    assert_eq!(
        v(&udp4(SERVER.octets(), 5000, 5353)),
        Tpa,
        "opened twice, closed once"
    );
    filter.close_port(Transport::Udp, 5353).unwrap();
    assert_eq!(
        v(&udp4(SERVER.octets(), 5000, 5353)),
        Kernel,
        "closed as often as opened"
    );

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

/// The kernel's per-queue counter `rx_queue_<queue>_<what>` of veth `dev`
/// (`ethtool -S`).
fn veth_queue_stat(ns: &Netns, dev: &str, queue: u16, what: &str) -> u64 {
    let text = ns.exec(&["ethtool", "-S", dev]);
    let key = format!("rx_queue_{queue}_{what}:");
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in ethtool -S {dev}:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// One worker's side of [`each_queue_has_its_own_socket`]: receives on
/// one queue until `stop`, counting the datagrams to `TPA_UDP` by source
/// port.
fn count_flows(
    mut port: AfXdp,
    stop: Arc<AtomicBool>,
    total: Arc<AtomicU64>,
) -> (AfXdp, std::collections::BTreeMap<u16, u64>, u64) {
    let queue = port.caps().queue;
    let mut flows = std::collections::BTreeMap::new();
    let mut other = 0;
    let mut rx: Burst<PoolBuf> = Burst::new();
    while !stop.load(Ordering::Relaxed) {
        port.wait_rx(Duration::from_millis(10));
        port.rx_burst(&mut rx);
        for buf in rx.drain() {
            assert_eq!(buf.meta().rx_queue, queue);
            let d = buf.data();
            if d.len() >= 42
                && d[12..14] == [8, 0]
                && d[23] == 17
                && d[36..38] == TPA_UDP.to_be_bytes()
            {
                *flows.entry(u16::from_be_bytes([d[34], d[35]])).or_insert(0) += 1;
                total.fetch_add(1, Ordering::Relaxed);
            } else {
                other += 1;
            }
        }
    }
    (port, flows, other)
}

/// One socket per queue, one queue per worker: `vs` has two queues, the
/// port opens a socket on each (one UMEM, one pool) and a thread per
/// socket receives, while 64 UDP flows from the client's kernel (64
/// connected sockets) send 16 datagrams each, a round at a time.
///
/// Which receive queue of `vs` a frame from `vc` lands on: a veth puts
/// what one end transmits on the peer's receive queue of the same number
/// as the transmit queue the sender's stack chose (the frame's queue
/// mapping). veth has no queue selection of its own and sets no XPS map,
/// so the kernel chooses by the frame's flow hash (for a connected
/// socket, the socket's random `sk_txhash`) scaled to the queue count,
/// and remembers the choice in the socket while its route is cached: a
/// flow keeps its queue, and which queue is random (the 64 flows all land
/// on one queue with a chance of 2^-63). The kernel tells which queue a
/// frame arrived on through veth's per-queue counters (`ethtool -S vs`:
/// `rx_queue_N_xdp_redirect`, frames the XDP program handed to a socket),
/// which must equal what each socket received: an AF_XDP socket takes
/// frames of its own queue only, and tpa's program redirects a frame to
/// the socket of the queue it arrived on.
#[test]
fn each_queue_has_its_own_socket() {
    const QUEUES: u16 = 2;
    const FLOWS: usize = 64;
    const ROUNDS: usize = 16;
    let (server, client) = pair_with_queues(QUEUES);
    let pool = Pool::new(PoolConfig {
        name: "afxdp-queues".into(),
        capacity: 8192,
        huge_pages: false,
        rx_reserve: 1024,
        ..PoolConfig::default()
    })
    .unwrap();
    let config = AfXdpConfig {
        queues: QUEUES,
        ..AfXdpConfig::new("vs", vec![IpAddr::V4(SERVER)])
    };
    let ports = server
        .enter(|| AfXdp::open_queues(&config, pool.clone()))
        .expect("open two AF_XDP queues on vs");
    assert_eq!(ports.len(), usize::from(QUEUES));
    for (i, p) in ports.iter().enumerate() {
        assert_eq!((p.caps().queue, p.caps().queues), (i as u16, QUEUES));
        assert_eq!(p.steering(), tpa::port::steer::Steering::Unknown);
    }
    let filter = ports[0].filter().clone();
    filter.open_port(Transport::Udp, TPA_UDP).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = ports
        .into_iter()
        .map(|p| {
            let (stop, total) = (stop.clone(), total.clone());
            thread::spawn(move || count_flows(p, stop, total))
        })
        .collect();

    let sockets: Vec<UdpSocket> = client.enter(|| {
        (0..FLOWS)
            .map(|_| {
                let s = UdpSocket::bind("192.0.2.1:0").unwrap();
                s.connect((SERVER, TPA_UDP)).unwrap();
                s
            })
            .collect()
    });
    for round in 1..=ROUNDS {
        for s in &sockets {
            s.send(format!("round {round}").as_bytes()).unwrap();
        }
        // The next round once every datagram of this one is in, so that
        // no ring overflows: none may be lost.
        let want = (round * FLOWS) as u64;
        let start = std::time::Instant::now();
        while total.load(Ordering::Relaxed) < want && start.elapsed() < Duration::from_secs(5) {
            thread::sleep(Duration::from_millis(1));
        }
        if total.load(Ordering::Relaxed) < want {
            stop.store(true, Ordering::Relaxed);
            let mut stats = Vec::new();
            for w in workers {
                let (mut p, flows, other) = w.join().unwrap();
                stats.push((p.caps().queue, p.stats(), flows.len(), other));
            }
            panic!(
                "round {round}: {} of {want} datagrams received; XDP {:?}; queues {stats:?}; ethtool -S vs:\n{}",
                total.load(Ordering::Relaxed),
                filter.counters(),
                server.exec(&["ethtool", "-S", "vs"])
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut per_queue = Vec::new();
    for w in workers {
        let (mut port, flows, other) = w.join().unwrap();
        let got: u64 = flows.values().sum();
        let queue = port.caps().queue;
        let kernel = veth_queue_stat(&server, "vs", queue, "xdp_redirect");
        let stats = port.stats();
        eprintln!(
            "queue {queue}: {} flows, {got} datagrams, {other} other frames; kernel: {kernel} redirected on this queue; {stats:?}",
            flows.len()
        );
        assert_eq!(
            kernel,
            got + other,
            "queue {queue}: the socket received other than what the kernel redirected on its queue"
        );
        assert_eq!(stats.rx_kernel_dropped, 0, "queue {queue}: {stats:?}");
        per_queue.push((flows, port));
    }
    let (q0, q1) = (&per_queue[0].0, &per_queue[1].0);
    assert!(
        !q0.is_empty() && !q1.is_empty(),
        "both queues get flows: {} and {}",
        q0.len(),
        q1.len()
    );
    assert!(
        q0.keys().all(|sport| !q1.contains_key(sport)),
        "a flow landed on both queues: {q0:?} {q1:?}"
    );
    assert_eq!(q0.len() + q1.len(), FLOWS, "every flow arrived");
    for (sport, n) in q0.iter().chain(q1) {
        assert_eq!(*n, ROUNDS as u64, "flow from port {sport}: none lost");
    }
    let x = filter.counters();
    assert_eq!(x.redirected, (FLOWS * ROUNDS) as u64, "{x:?}");
    assert_eq!(x.no_socket, 0, "{x:?}");
    drop(per_queue);
    drop(filter);
    assert!(xdp_detached(&server, "vs"));
    pool.assert_whole();
}

/// A bare AF_XDP socket of the test's own, bound to one queue (its UMEM,
/// fill and completion rings and an RX ring, as any AF_XDP application
/// sets up), to keep the queue busy.
struct RawXsk {
    // Fields drop in order: the socket closes (unbinding, unregistering
    // the UMEM) before its memory is unmapped.
    fd: std::os::fd::OwnedFd,
    _umem: Mapping,
}

/// An anonymous memory mapping, unmapped on drop.
struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `RawXsk::bind`, no longer used.
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

impl RawXsk {
    /// Binds to `queue` of `ifname` in the calling thread's namespace.
    fn bind(ifname: &str, queue: u32) -> RawXsk {
        use std::os::fd::{AsRawFd, FromRawFd};
        let len = 64 * 4096;
        // SAFETY: a fresh anonymous mapping; checked below.
        let umem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            umem,
            libc::MAP_FAILED,
            "{}",
            std::io::Error::last_os_error()
        );
        let umem = Mapping { addr: umem, len };
        // SAFETY: plain socket(2); checked below.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        assert!(
            raw >= 0,
            "socket(AF_XDP): {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let reg = libc::xdp_umem_reg {
            addr: umem.addr as u64,
            len: len as u64,
            chunk_size: 4096,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        let xsk = RawXsk { fd, _umem: umem };
        let set = |opt: libc::c_int, value: *const libc::c_void, size: usize, what: &str| {
            // SAFETY: `value` points to a live value of `size` bytes.
            let rc = unsafe {
                libc::setsockopt(
                    xsk.fd.as_raw_fd(),
                    libc::SOL_XDP,
                    opt,
                    value,
                    size as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0, "{what}: {}", std::io::Error::last_os_error());
        };
        set(
            libc::XDP_UMEM_REG,
            (&reg as *const libc::xdp_umem_reg).cast(),
            std::mem::size_of_val(&reg),
            "XDP_UMEM_REG",
        );
        let entries: u32 = 64;
        for (opt, what) in [
            (libc::XDP_UMEM_FILL_RING, "fill ring"),
            (libc::XDP_UMEM_COMPLETION_RING, "completion ring"),
            (libc::XDP_RX_RING, "RX ring"),
        ] {
            set(opt, (&entries as *const u32).cast(), 4, what);
        }
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert_ne!(ifindex, 0, "{ifname}");
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_COPY,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // A port closed just before frees the queue a moment later (the
        // kernel's deferred release): give it a second.
        let start = std::time::Instant::now();
        loop {
            // SAFETY: `addr` is a live sockaddr_xdp of the size passed.
            let rc = unsafe {
                libc::bind(
                    xsk.fd.as_raw_fd(),
                    (&addr as *const libc::sockaddr_xdp).cast(),
                    std::mem::size_of_val(&addr) as libc::socklen_t,
                )
            };
            let e = std::io::Error::last_os_error();
            if rc == 0 {
                break;
            }
            assert!(
                e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < Duration::from_secs(1),
                "bind to {ifname} queue {queue}: {e}"
            );
            thread::sleep(Duration::from_millis(5));
        }
        xsk
    }
}

/// The kernel's counter `field` in /proc/net/snmp6 inside `ns`.
fn snmp6(ns: &Netns, field: &str) -> u64 {
    let text = ns.exec(&["cat", "/proc/net/snmp6"]);
    text.lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(field)).then(|| w.next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/net/snmp6"))
}

/// The side-by-side proof over IPv6: the kernel serves TCP on
/// 2001:db8::2 (and answers ping and neighbour discovery) while tpa
/// echoes UDP on port 7777 of the same address; a SYN to tpa's TCP port
/// reaches tpa, not the kernel; a datagram to another port is the
/// kernel's (port unreachable).
#[test]
fn tpa_and_the_kernel_share_an_ipv6_address() {
    let server6: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
    let server_ip = IpAddr::V6(server6);
    let (server, client) = pair();
    server.ip(&["addr", "add", "2001:db8::2/64", "dev", "vs", "nodad"]);
    client.ip(&["addr", "add", "2001:db8::1/64", "dev", "vc", "nodad"]);
    let _kernel = kernel_tcp_server(&server, server_ip);
    let pool = pool();
    let config = AfXdpConfig::new("vs", vec![server_ip]);
    let port = server
        .enter(|| AfXdp::open(&config, pool.clone()))
        .expect("open AF_XDP on vs");
    let filter = port.filter().clone();
    filter.open_port(Transport::Udp, TPA_UDP).unwrap();
    filter.open_port(Transport::Tcp, TPA_TCP).unwrap();
    let rsts_before = snmp(&server, "Tcp", "OutRsts");
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(EchoCounters::default());
    let worker = {
        let (stop, counters) = (stop.clone(), counters.clone());
        thread::spawn(move || echo_loop(port, stop, counters))
    };

    let echoed = udp_echoes(&client, server_ip, TPA_UDP, 200);
    kernel_tcp_echo_ok(&client, server_ip);
    client.ping_ok("-6", "2001:db8::2");
    assert_kernel_neighbour(&server, &client, "2001:db8::1".parse().unwrap());
    assert_syn_reaches_tpa(&client, SocketAddr::new(server_ip, TPA_TCP));
    let unreach_before = snmp6(&server, "Icmp6OutDestUnreachs");
    let sock = client.enter(|| UdpSocket::bind("[::]:0")).unwrap();
    sock.send_to(b"for the kernel", (server6, 9999)).unwrap();
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        snmp6(&server, "Icmp6OutDestUnreachs"),
        unreach_before + 1,
        "the datagram to port 9999 is the kernel's"
    );
    assert_eq!(
        snmp(&server, "Tcp", "OutRsts"),
        rsts_before,
        "the kernel reset tpa's flows"
    );

    stop.store(true, Ordering::Relaxed);
    let mut port = worker.join().unwrap();
    let x = filter.counters();
    eprintln!("xdp {x:?}\nport {:?}", port.stats());
    assert!(echoed >= 195, "tpa echoed {echoed} of 200 datagrams; {x:?}");
    assert!(
        counters.other.load(Ordering::Relaxed) >= 1,
        "the SYN came to tpa"
    );
    assert_eq!(counters.malformed.load(Ordering::Relaxed), 0);
    assert!(
        x.redirected > 200 && x.passed > 0 && x.no_socket == 0,
        "{x:?}"
    );
    drop((port, filter));
    pool.assert_whole();
    assert!(xdp_detached(&server, "vs"));
    assert_eq!(udp_echoes(&client, server_ip, TPA_UDP, 1), 0, "tpa gone");
    kernel_tcp_echo_ok(&client, server_ip);
}
