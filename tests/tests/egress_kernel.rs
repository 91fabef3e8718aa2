//! The egress path against the Linux kernel: tpa sends the first datagram
//! (IPv4 and IPv6) through a TAP device to kernel addresses it has never
//! heard from. The datagrams wait for the ARP reply and the neighbor
//! advertisement, then a kernel UDP socket (python3, in the namespace)
//! receives them intact.
//!
//! Run as root: the test creates a namespace and a TAP interface.

mod egress_common;

use std::thread;
use std::time::Duration;

use egress_common::{host, Datagram};
use tpa::buf::{BufferPool, Pool, PoolConfig};
use tpa::port::tap::{Tap, TapConfig};
use tpa::wire::MacAddr;
use tpa::worker::StopFlag;
use tpa_stages::egress::{Egress, Sent};
use tpa_stages::iface::Interface;
use tpa_tests::netns::Netns;
use tpa_tests::RaiseOnDrop;

/// Receives one datagram on the address and port given, then prints its
/// data and the sender's address and port; fails after 10 s without one
/// (a bound on a hang, not a timing check).
const LISTEN: &str = "
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ':' in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
s.settimeout(10)
print('ready', flush=True)
data, peer = s.recvfrom(2048)
print(data.decode(), peer[0], peer[1], flush=True)
";

#[test]
fn the_kernel_receives_the_first_datagram_sent_to_an_address_tpa_never_heard_from() {
    let ns = Netns::new("egress-tap");
    let pool = Pool::new(PoolConfig {
        name: "egress-tap".into(),
        capacity: 256,
        ..PoolConfig::default()
    })
    .expect("buffer pool");
    let mac = MacAddr([0x02, 0x74, 0x70, 0x61, 0x00, 0x51]);
    let tap = ns
        .enter(|| {
            let config = TapConfig {
                mac: Some(mac),
                ..TapConfig::new("tpa0")
            };
            Tap::open(&config, pool.clone())
        })
        .expect("open TAP");
    ns.add_addr("tpa0", "192.0.2.2/24");
    ns.ip(&["addr", "add", "2001:db8::2/64", "dev", "tpa0", "nodad"]);
    let kernel_mac: MacAddr = ns.mac_of("tpa0").parse().unwrap();
    let table = ns.ip(&["neigh", "show", "dev", "tpa0"]);
    assert!(
        !table.contains("192.0.2.1") && !table.contains("2001:db8::1"),
        "{table}"
    );
    let v4 = ns.spawn_until(&["python3", "-c", LISTEN, "192.0.2.2", "5000"], "ready");
    let v6 = ns.spawn_until(&["python3", "-c", LISTEN, "2001:db8::2", "5000"], "ready");

    let iface = Interface::new(mac)
        .with_ipv4("192.0.2.1/24".parse().unwrap())
        .with_ipv6("2001:db8::1/64".parse().unwrap());
    let mut host = host(tap, Egress::new(iface));
    for (dst, data) in [
        ("192.0.2.2", "first over IPv4"),
        ("2001:db8::2", "first over IPv6"),
    ] {
        host.app.queue.push_back(Datagram {
            dst: dst.parse().unwrap(),
            ports: (4000, 5000),
            data: data.as_bytes().to_vec(),
            owner: None,
        });
    }

    let stop = StopFlag::new();
    let (got4, got6) = thread::scope(|s| {
        let worker = s.spawn(|| {
            while !stop.is_raised() {
                if !host.run_once().busy() {
                    thread::sleep(Duration::from_micros(200));
                }
            }
        });
        let guard = RaiseOnDrop(&stop);
        let got = (v4.finish(), v6.finish());
        drop(guard);
        worker.join().expect("host thread");
        got
    });
    assert_eq!(got4.trim(), "first over IPv4 192.0.2.1 4000");
    assert_eq!(got6.trim(), "first over IPv6 2001:db8::1 4000");
    assert_eq!(host.app.results, [Ok(Sent::Held), Ok(Sent::Held)]);
    let c = *host.net.egress.counters();
    assert_eq!((c.held, c.released, c.unreachable), (2, 2, 0), "{c}");
    let learned = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(ip) => host
            .net
            .egress
            .neighbors_v4()
            .get(ip, 0)
            .and_then(|n| n.mac),
        std::net::IpAddr::V6(ip) => host
            .net
            .egress
            .neighbors_v6()
            .get(ip, 0)
            .and_then(|n| n.mac),
    };
    assert_eq!(learned("192.0.2.2".parse().unwrap()), Some(kernel_mac));
    assert_eq!(learned("2001:db8::2".parse().unwrap()), Some(kernel_mac));
    // The kernel learned us from our questions.
    ns.assert_neighbor("tpa0", "192.0.2.1", mac);
    ns.assert_neighbor("tpa0", "2001:db8::1", mac);
    drop(host);
    pool.assert_whole();
}
