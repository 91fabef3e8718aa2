//! TEMPORARY (h12): ping RTT through the responder on each port; deleted after measuring.
use std::time::Duration;
use tpa::buf::{Pool, PoolConfig};
use tpa::port::af_packet::{AfPacket, AfPacketConfig, RxMode};
use tpa::port::tap::{Tap, TapConfig};
use tpa::port::Port;
use tpa::worker::StopFlag;
use tpa_responder::{serve, Config, PortSpec};
use tpa_tests::netns::Netns;

fn pool() -> Pool {
    Pool::new(PoolConfig { capacity: 1024, huge_pages: false, ..PoolConfig::default() }).unwrap()
}

fn ping_through<P: Port + Send + 'static>(ns: &Netns, port: P, label: &str) {
    let stop = StopFlag::new();
    let s2 = stop.clone();
    let cfg = Config::new(PortSpec::AfPacket("x".into()), vec!["192.0.2.2/24".parse().unwrap()]);
    let h = std::thread::spawn(move || {
        let _ = serve(port, &cfg, &s2, |_| {});
    });
    std::thread::sleep(Duration::from_millis(200));
    let _ = ns.exec_output(&["ping", "-c", "3", "-i", "0.05", "192.0.2.2"]);
    for _ in 0..3 {
        let out = ns.exec_output(&["ping", "-c", "20", "-i", "0.05", "192.0.2.2"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().filter(|l| l.contains("rtt") || l.contains("loss")).collect::<Vec<_>>().join(" | ");
        println!("{label}: {last}");
    }
    stop.raise();
    h.join().unwrap();
}

#[test]
#[ignore]
fn ping_rtt() {
    for (label, mode) in [("af_packet low_latency (V2)", RxMode::low_latency()), ("af_packet throughput (V3)", RxMode::throughput())] {
        let ns = Netns::new("h12ping");
        ns.add_veth("tpa0", "knl0");
        ns.add_addr("knl0", "192.0.2.1/24");
        ns.up("tpa0");
        ns.up("knl0");
        let cfg = AfPacketConfig { rx_mode: mode, ..AfPacketConfig::new("tpa0") };
        let port = ns.enter(|| AfPacket::open(&cfg, pool())).unwrap();
        ping_through(&ns, port, label);
    }
    let ns = Netns::new("h12pingt");
    let port = ns.enter(|| Tap::open(&TapConfig::new("tpa0"), pool())).unwrap();
    ns.add_addr("tpa0", "192.0.2.1/24");
    ping_through(&ns, port, "tap");
}
