//! tpa-echo over AF_XDP beside the kernel on one veth end and one IP
//! address (issue 14): the kernel serves TCP on port 8080 (a python echo
//! server) while tpa-echo serves UDP on 7777 and TCP on 7000 of the same
//! address; a kernel client in the other namespace uses both at once,
//! 1 MB through tpa's TCP echo with integrity. tpa's listening and bound
//! ports reach the XDP filter through the socket tables (`SharedHost`),
//! and tpa answers the client at the MAC address it reads from the
//! kernel's neighbour table (ARP stays the kernel's).
//!
//! Run as root: `cargo test -p tpa-echo --test echo_af_xdp`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use tpa_tests::netns::Netns;

const ECHO: &str = env!("CARGO_BIN_EXE_tpa-echo");
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const KERNEL_TCP: u16 = 8080;
const TPA_TCP: u16 = 7000;
const TPA_UDP: u16 = 7777;
const DATAGRAMS: u64 = 100;
const KERNEL_UDP: u16 = 9999;
/// Malformed datagrams sent to each of tpa's and the kernel's ports.
const BAD: u64 = 5;
const STREAM: usize = 1 << 20;

/// Client and server namespaces joined by `vc` <-> `vs`
/// ([`Netns::beside_kernel_pair`]): (server, client).
fn pair() -> (Netns, Netns) {
    Netns::beside_kernel_pair("echox")
}

/// The kernel's counter `field` of `group` in /proc/net/snmp inside `ns`.
fn snmp(ns: &Netns, group: &str, field: &str) -> u64 {
    let text = ns.exec(&["cat", "/proc/net/snmp"]);
    let mut lines = text.lines().filter(|l| l.starts_with(&format!("{group}:")));
    let names: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let values: Vec<&str> = lines.next().expect("values").split_whitespace().collect();
    let i = names.iter().position(|n| *n == field).expect("field");
    values[i].parse().expect("a number")
}

/// Byte `i` of the stream sent through tpa's TCP echo.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
}

/// Sends `n` UDP datagrams with a wrong checksum to `SERVER:port` from a
/// raw socket (the kernel writes the IP header).
fn send_bad_checksums(port: u16, n: u64) {
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_UDP) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let mut dgram = [0u8; 16];
    dgram[0..2].copy_from_slice(&40000u16.to_be_bytes());
    dgram[2..4].copy_from_slice(&port.to_be_bytes());
    dgram[4..6].copy_from_slice(&16u16.to_be_bytes());
    dgram[6..8].copy_from_slice(&0x1234u16.to_be_bytes()); // wrong
    dgram[8..].copy_from_slice(b"garbage!");
    let to = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(SERVER.octets()),
        },
        sin_zero: [0; 8],
    };
    for _ in 0..n {
        // SAFETY: the buffer and address live across the call, with their
        // lengths.
        let sent = unsafe {
            libc::sendto(
                fd,
                dgram.as_ptr().cast(),
                dgram.len(),
                0,
                (&to as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        assert_eq!(sent, 16, "sendto: {}", std::io::Error::last_os_error());
    }
    // SAFETY: our descriptor, closed once.
    unsafe { libc::close(fd) };
}

#[test]
fn tpa_echo_over_af_xdp_beside_the_kernels_tcp_server() {
    let (server, client) = pair();
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
    let _kernel = server.spawn_until(&["python3", "-c", &script], "ready");
    let udp = TPA_UDP.to_string();
    let tcp = TPA_TCP.to_string();
    let count = DATAGRAMS.to_string();
    let echo = server.spawn_until(
        &[
            ECHO,
            "server",
            "--port",
            "af_xdp:vs",
            "--ip",
            "192.0.2.2/24",
            "--udp-port",
            &udp,
            "--tcp-port",
            &tcp,
            "--count",
            &count,
        ],
        &format!("listening on udp 0.0.0.0:{TPA_UDP} tcp 0.0.0.0:{TPA_TCP} via vs (tpa)"),
    );
    let rsts_before = snmp(&server, "Tcp", "OutRsts");

    // tpa's TCP echo: 1 MB written while it is read back.
    let mut stream = client
        .enter(|| {
            TcpStream::connect_timeout(&SocketAddr::from((SERVER, TPA_TCP)), Duration::from_secs(5))
        })
        .expect("connect to tpa-echo's TCP port over AF_XDP");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let data: Vec<u8> = (0..STREAM).map(pattern).collect();
        writer.write_all(&data).expect("write to tpa-echo");
    });

    // Meanwhile the kernel's own TCP server on the same address.
    let mut k = client
        .enter(|| {
            TcpStream::connect_timeout(
                &SocketAddr::from((SERVER, KERNEL_TCP)),
                Duration::from_secs(5),
            )
        })
        .expect("connect to the kernel's server");
    k.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    k.write_all(b"kernel, are you there").unwrap();
    let mut back = Vec::new();
    k.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"kernel, are you there");

    let mut got = vec![0u8; STREAM];
    stream
        .read_exact(&mut got)
        .expect("1 MB back from tpa-echo");
    sender.join().unwrap();
    let first_bad = (0..STREAM).find(|&i| got[i] != pattern(i));
    assert_eq!(first_bad, None, "the echoed stream differs");
    drop(stream);

    // Malformed datagrams for tpa's UDP port (a wrong UDP checksum) reach
    // tpa, whose UDP stage drops and counts them; for a port nobody
    // listens on they are the kernel's.
    client.enter(|| send_bad_checksums(TPA_UDP, BAD));
    let kernel_bad_before = snmp(&server, "Udp", "InCsumErrors");
    client.enter(|| send_bad_checksums(KERNEL_UDP, BAD));

    // tpa's UDP echo, from the kernel's client: the server stops after
    // DATAGRAMS echoes.
    let out = client.exec_output(&[
        ECHO,
        "client",
        "--kernel",
        "--to",
        &format!("{SERVER}:{TPA_UDP}"),
        "--count",
        &count,
        "--size",
        "64",
        "--window",
        "8",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client: {text}");
    let report = echo.finish();
    println!("{report}");
    let bad = report
        .lines()
        .find(|l| l.contains("bad-checksum"))
        .unwrap_or_else(|| panic!("no bad-checksum count in the report: {report}"));
    assert!(bad.contains(&format!("bad-checksum {BAD}")), "{bad}");
    assert_eq!(
        snmp(&server, "Udp", "InCsumErrors"),
        kernel_bad_before + BAD,
        "datagrams for a port of no one's reach the kernel"
    );
    assert!(
        report.contains(&format!("echoed {DATAGRAMS}")),
        "server report: {report}"
    );
    assert_eq!(
        snmp(&server, "Tcp", "OutRsts"),
        rsts_before,
        "the kernel reset connections that were tpa's"
    );
}
