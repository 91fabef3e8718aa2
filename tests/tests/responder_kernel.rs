//! The responder application against the Linux kernel: the kernel in a
//! network namespace pings the responder (IPv4 and IPv6) through a TAP device
//! and through a veth pair with AF_PACKET, and must learn the responder's
//! MAC address in its neighbor table.
//!
//! Run as root: these tests create namespaces, TAP and veth interfaces.

use std::thread;

use tpa::buf::{BufferPool, Pool, PoolConfig};
use tpa::port::af_packet::RxMode;
use tpa::port::Port;
use tpa::wire::MacAddr;
use tpa::worker::StopFlag;
use tpa_responder::{open_af_packet, open_tap, serve, Config, PortSpec, Summary};
use tpa_tests::netns::Netns;
use tpa_tests::RaiseOnDrop;

const RESPONDER_V4: &str = "192.0.2.1";
const RESPONDER_V6: &str = "2001:db8::1";

fn pool(name: &str) -> Pool {
    Pool::new(PoolConfig {
        name: name.into(),
        capacity: 1024,
        ..PoolConfig::default()
    })
    .expect("buffer pool")
}

fn config(port: PortSpec) -> Config {
    let ips = vec![
        format!("{RESPONDER_V4}/24").parse().unwrap(),
        format!("{RESPONDER_V6}/64").parse().unwrap(),
    ];
    Config::new(port, ips)
}

/// Gives the kernel's interface `dev` in `ns` its IPv4 and IPv6 addresses
/// (no duplicate address detection, so IPv6 is usable at once).
fn kernel_addresses(ns: &Netns, dev: &str) {
    ns.add_addr(dev, "192.0.2.2/24");
    ns.ip(&["addr", "add", "2001:db8::2/64", "dev", dev, "nodad"]);
}

/// Runs the responder on `port` in a thread while `f` runs, then stops it
/// and returns its summary.
fn while_serving<P: Port + Send + 'static>(port: P, config: Config, f: impl FnOnce()) -> Summary {
    let stop = StopFlag::new();
    let worker = thread::spawn({
        let stop = stop.clone();
        move || serve(port, &config, &stop, |_| {})
    });
    // Stop the responder even if `f` panics, so the test ends.
    let guard = RaiseOnDrop(&stop);
    f();
    drop(guard);
    worker
        .join()
        .expect("responder thread")
        .expect("responder ran")
}

fn check_summary(s: &Summary, kernel_mac: MacAddr) {
    assert!(s.arp_replies >= 1, "{}", s.counters);
    assert!(s.ndp_replies >= 1, "{}", s.counters);
    assert_eq!(s.icmpv4_replies, 3, "{}", s.counters);
    assert_eq!(s.icmpv6_replies, 3, "{}", s.counters);
    assert!(s.tx >= 8, "{}", s.counters);
    let v4: std::net::Ipv4Addr = "192.0.2.2".parse().unwrap();
    assert!(
        s.neighbors_v4.contains(&(v4, kernel_mac)),
        "{:?}",
        s.neighbors_v4
    );
    let v6: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
    assert!(
        s.neighbors_v6.contains(&(v6, kernel_mac)),
        "{:?}",
        s.neighbors_v6
    );
}

#[test]
fn kernel_pings_the_responder_through_a_tap() {
    let ns = Netns::new("resp-tap");
    let pool = pool("resp-tap");
    let mac = MacAddr([0x02, 0x74, 0x70, 0x61, 0x00, 0x42]);
    let tap = ns
        .enter(|| open_tap("tpa0", Some(mac), pool.clone()))
        .expect("open TAP");
    assert_eq!(tap.caps().mac, mac);
    kernel_addresses(&ns, "tpa0");
    let kernel_mac: MacAddr = ns.mac_of("tpa0").parse().unwrap();

    let summary = while_serving(tap, config(PortSpec::Tap("tpa0".into())), || {
        ns.ping_ok("-4", RESPONDER_V4);
        ns.ping_ok("-6", RESPONDER_V6);
        ns.assert_neighbor("tpa0", RESPONDER_V4, mac);
        ns.assert_neighbor("tpa0", RESPONDER_V6, mac);
    });
    assert_eq!(summary.mac, mac);
    check_summary(&summary, kernel_mac);
    // Every buffer came back: the port and the pipeline are gone.
    pool.assert_whole();
}

#[test]
fn kernel_pings_the_responder_over_veth_with_af_packet() {
    let kernel = Netns::new("resp-k");
    let responder = Netns::new("resp-r");
    kernel.add_veth("vk", "vr");
    kernel.ip(&["link", "set", "dev", "vr", "netns", responder.name()]);
    kernel.up("vk");
    responder.up("vr");
    kernel_addresses(&kernel, "vk");
    let kernel_mac: MacAddr = kernel.mac_of("vk").parse().unwrap();
    let responder_mac: MacAddr = responder.mac_of("vr").parse().unwrap();

    let pool = pool("resp-afp");
    let port = responder
        .enter(|| open_af_packet("vr", None, RxMode::default(), pool.clone()))
        .expect("open AF_PACKET port");
    assert_eq!(port.caps().mac, responder_mac);

    let summary = while_serving(port, config(PortSpec::AfPacket("vr".into())), || {
        kernel.ping_ok("-4", RESPONDER_V4);
        kernel.ping_ok("-6", RESPONDER_V6);
        kernel.assert_neighbor("vk", RESPONDER_V4, responder_mac);
        kernel.assert_neighbor("vk", RESPONDER_V6, responder_mac);
    });
    assert_eq!(summary.mac, responder_mac);
    check_summary(&summary, kernel_mac);
    pool.assert_whole();
}

/// The command's own entry point (`run`, which opens the port by name) on
/// AF_PACKET with a MAC address other than the interface's: the port goes
/// promiscuous and the kernel learns the chosen address.
#[test]
fn run_answers_with_a_mac_of_its_own_over_af_packet() {
    let kernel = Netns::new("resp-k2");
    let responder = Netns::new("resp-r2");
    kernel.add_veth("vk", "vr");
    kernel.ip(&["link", "set", "dev", "vr", "netns", responder.name()]);
    kernel.up("vk");
    responder.up("vr");
    kernel_addresses(&kernel, "vk");
    let chosen = MacAddr([0x02, 0x74, 0x70, 0x61, 0x00, 0x99]);
    let config = Config {
        mac: Some(chosen),
        ..config(PortSpec::AfPacket("vr".into()))
    };
    let stop = StopFlag::new();
    let summary = thread::scope(|s| {
        let worker = s.spawn(|| responder.enter(|| tpa_responder::run(&config, &stop, |_| {})));
        let guard = RaiseOnDrop(&stop);
        // The port is open once it has made the interface promiscuous
        // (`promiscuity` counts such requests).
        let opened = (0..500).any(|_| {
            let details = responder.ip(&["-d", "link", "show", "dev", "vr"]);
            let up = details.contains("promiscuity") && !details.contains("promiscuity 0");
            if !up {
                thread::sleep(std::time::Duration::from_millis(10));
            }
            up
        });
        assert!(opened, "the responder did not open vr within 5 s");
        kernel.ping_ok("-4", RESPONDER_V4);
        kernel.ping_ok("-6", RESPONDER_V6);
        kernel.assert_neighbor("vk", RESPONDER_V4, chosen);
        kernel.assert_neighbor("vk", RESPONDER_V6, chosen);
        drop(guard);
        worker
            .join()
            .expect("responder thread")
            .expect("responder ran")
    });
    assert_eq!(summary.mac, chosen);
    assert_eq!(summary.icmpv4_replies, 3, "{}", summary.counters);
    assert_eq!(summary.icmpv6_replies, 3, "{}", summary.counters);
    // `run` made its own pool: every buffer of it came back.
    assert_eq!(summary.buffers_not_returned, Some(0));
}

/// With `--announce`, the kernel knows the responder's MAC address before
/// anything is asked of it: from the gratuitous ARP (IPv4) and the
/// unsolicited neighbor advertisement (IPv6) the responder sends when its
/// loop starts. Linux creates entries from gratuitous ARP only with
/// `arp_accept` (off by default), so the IPv4 half turns it on and starts
/// from an empty table; the IPv6 half keeps the defaults and starts from a
/// stale entry with a wrong address, which the advertisement's override
/// flag corrects (the failover case).
#[test]
fn the_kernel_learns_our_mac_from_the_announcement_before_any_ping() {
    let ns = Netns::new("resp-ann");
    let pool = pool("resp-ann");
    let mac = MacAddr([0x02, 0x74, 0x70, 0x61, 0x00, 0x43]);
    let tap = ns
        .enter(|| open_tap("tpa0", Some(mac), pool.clone()))
        .expect("open TAP");
    kernel_addresses(&ns, "tpa0");
    ns.exec(&["sysctl", "-qw", "net.ipv4.conf.tpa0.arp_accept=1"]);
    let wrong = "02:00:00:00:00:ee";
    ns.ip(&[
        "neigh",
        "replace",
        RESPONDER_V6,
        "lladdr",
        wrong,
        "dev",
        "tpa0",
        "nud",
        "stale",
    ]);
    let table = ns.ip(&["neigh", "show", "dev", "tpa0"]);
    assert!(!table.contains(RESPONDER_V4), "{table}");
    ns.assert_neighbor("tpa0", RESPONDER_V6, wrong);

    let config = Config {
        announce: true,
        ..config(PortSpec::Tap("tpa0".into()))
    };
    let summary = while_serving(tap, config, || {
        let ours = format!("lladdr {mac}");
        let learned = (0..500).any(|_| {
            let table = ns.ip(&["neigh", "show", "dev", "tpa0"]);
            let knows = |addr: &str| {
                table
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(addr) && l.contains(&ours))
            };
            let both = knows(RESPONDER_V4) && knows(RESPONDER_V6);
            if !both {
                thread::sleep(std::time::Duration::from_millis(10));
            }
            both
        });
        let table = ns.ip(&["neigh", "show", "dev", "tpa0"]);
        assert!(
            learned,
            "the kernel did not learn {mac} within 5 s:\n{table}"
        );
    });
    // Nothing was asked of the responder: the kernel learned from the
    // announcements alone.
    assert_eq!(summary.arp_replies, 0, "{}", summary.counters);
    assert_eq!(summary.ndp_replies, 0, "{}", summary.counters);
    assert_eq!(summary.icmpv4_replies + summary.icmpv6_replies, 0);
    pool.assert_whole();
}
