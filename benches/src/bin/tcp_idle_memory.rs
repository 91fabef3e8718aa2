//! Memory per idle TCP connection: two tpa pipelines over a MemoryWire on a
//! virtual clock open established connections in batches (one client
//! address, 20 server ports × up to 50,000 client ports), let every timer
//! settle, and report the process's resident memory before and after at
//! each count asked, per connection (both ends live in this process) and
//! per end, with the fixed size of a connection's parts.
//!
//! ```sh
//! cargo run --release -p tpa-benches --bin tcp_idle_memory -- 100000 1000000
//! ```
//! (`benches/tcp_memory.sh` runs it and prints the figures for
//! doc/benchmarks.md.)

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tpa::app::{App, Events, SocketError, SocketId};
use tpa::buf::{Pool, PoolBuf, PoolConfig};
use tpa::pipeline;
use tpa::port::memory::{End, MemoryWire, WireConfig};
use tpa::port::Port;
use tpa::stage::{Cx, Reason};
use tpa::state::State;
use tpa::time::VirtualClock;
use tpa::wire::MacAddr;
use tpa_stages::arp::ArpResponder;
use tpa_stages::discard::Discard;
use tpa_stages::egress::Egress;
use tpa_stages::ethernet::{ethernet_front, EthernetFront, OtherFrames};
use tpa_stages::iface::Interface;
use tpa_stages::ipv4::Ipv4Input;
use tpa_stages::ipv6::Ipv6Input;
use tpa_stages::ndp::NdpResponder;
use tpa_stages::packet::{Ipv4Packet, Ipv6Packet};
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::{self, tcp_branch, TcpBranch, TcpInput, TcpSockets};
use tpa_stages::trace::TraceConfig;

type B = PoolBuf;

const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const SERVER_PORTS: u32 = 20;
const FIRST_SERVER_PORT: u16 = 5000;
const CLIENT_PORTS: u32 = 50_000;
const FIRST_CLIENT_PORT: u16 = 10_000;
/// Connections in their handshake at once.
const BATCH: usize = 512;

#[derive(State)]
struct HostState {
    #[polled]
    egress: Egress<B>,
    #[polled]
    sockets: TcpSockets<B>,
    events: Events,
}

/// The client opens connections up to `target`, `BATCH` at a time; the
/// server accepts each as it comes and keeps it. Nobody sends a byte.
#[derive(Default)]
struct Opener {
    server: Option<Ipv4Addr>,
    target: usize,
    opened: usize,
    established: usize,
    accepted: usize,
    errors: usize,
}

impl App<B, HostState> for Opener {
    fn accepted(&mut self, listener: SocketId, _socket: SocketId, cx: &mut Cx<'_, B, HostState>) {
        while tcp::accept(cx, listener).is_ok() {
            self.accepted += 1;
        }
    }

    fn writable(&mut self, _socket: SocketId, _cx: &mut Cx<'_, B, HostState>) {
        self.established += 1;
    }

    fn error(&mut self, _socket: SocketId, _error: SocketError, _cx: &mut Cx<'_, B, HostState>) {
        self.errors += 1;
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, HostState>) -> usize {
        let Some(server) = self.server else { return 0 };
        let mut work = 0;
        while self.opened < self.target && self.opened - self.established < BATCH {
            let i = self.opened as u32;
            let local = SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                FIRST_CLIENT_PORT + (i % CLIENT_PORTS) as u16,
            );
            let remote = SocketAddr::new(
                IpAddr::V4(server),
                FIRST_SERVER_PORT + (i / CLIENT_PORTS) as u16,
            );
            tcp::connect_from(cx, local, remote).expect("connect");
            self.opened += 1;
            work += 1;
        }
        work
    }
}

type V4Branch = (
    Ipv4Input,
    TcpBranch<Ipv4Packet<B>, Discard<Ipv4Packet<B>>, TcpInput>,
);
type V6Branch = (
    Ipv6Input,
    NdpResponder,
    TcpBranch<Ipv6Packet<B>, Discard<Ipv6Packet<B>>, TcpInput>,
);

#[pipeline]
struct Host<P: Port<Buf = B>> {
    #[port]
    port: P,
    #[state]
    state: HostState,
    #[app]
    app: Opener,
    front: EthernetFront<B, ArpResponder, V4Branch, V6Branch>,
}

fn host<P: Port<Buf = B>>(port: P, mac: MacAddr, last: u8, max: usize, seed: u64) -> Host<P> {
    let iface = Interface::new(mac)
        .with_ipv4(format!("192.0.2.{last}/24").parse().unwrap())
        .with_ipv6(format!("2001:db8::{last}/64").parse().unwrap());
    let front = ethernet_front(
        iface.mac,
        OtherFrames::Drop,
        ArpResponder::new(),
        (
            Ipv4Input::new(iface.clone()),
            tcp_branch(Discard::new(Reason::UNSUPPORTED), TcpInput::default()),
        ),
        (
            Ipv6Input::new(iface.clone()),
            NdpResponder::new(),
            tcp_branch(Discard::new(Reason::UNSUPPORTED), TcpInput::default()),
        ),
    );
    let cfg = TcpConfig {
        max_sockets: max + SERVER_PORTS as usize,
        ..TcpConfig::default()
    };
    let mut sockets = TcpSockets::new(cfg, seed);
    // `TPA_TRACE=1`: every connection with its trace ring.
    let trace = TraceConfig::from_env().expect("TPA_TRACE*");
    sockets.enable_trace(&trace).expect("the trace file");
    let state = HostState {
        egress: Egress::new(iface),
        sockets,
        events: Events::default(),
    };
    Host::new(port, state, Opener::default(), front)
}

/// The resident set size in bytes, from /proc/self/status.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("VmRSS in kB")
        * 1024
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("connection counts, e.g. 100000 1000000"))
        .collect();
    let counts = if counts.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        counts
    };
    let max = *counts.iter().max().unwrap();
    assert!(
        max <= (SERVER_PORTS * CLIENT_PORTS) as usize,
        "at most {} connections",
        SERVER_PORTS * CLIENT_PORTS
    );

    println!("fixed size of one connection, by part (bytes):");
    for (part, size) in TcpSockets::<B>::connection_sizes() {
        println!("  {part:<24} {size:>6}");
    }

    let clock = VirtualClock::new();
    let pool = Pool::new(PoolConfig {
        name: "tcp-idle".to_owned(),
        capacity: 8192,
        huge_pages: false,
        ..PoolConfig::default()
    })
    .expect("pool");
    let wire = MemoryWire::new(WireConfig {
        seed: 1,
        mac_a: MAC_A,
        mac_b: MAC_B,
        ring_size: 4096,
        pool: Some(pool.clone()),
        clock: clock.clone().into(),
        ..WireConfig::default()
    })
    .expect("wire");
    let mut a = host(wire.port(End::A, 0).unwrap(), MAC_A, 1, max, 1)
        .with_time_source(clock.clone().into());
    let mut b = host(wire.port(End::B, 0).unwrap(), MAC_B, 2, max, 2)
        .with_time_source(clock.clone().into());
    let b_iface = b.state.egress.interface().clone();
    for p in 0..SERVER_PORTS as u16 {
        let any = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), FIRST_SERVER_PORT + p);
        b.state.sockets.listen(any, 1024, &b_iface).expect("listen");
    }
    a.app.server = Some(Ipv4Addr::new(192, 0, 2, 2));

    // Warm up: ARP resolved both ways, the pool's buffers touched.
    a.app.target = BATCH;
    settle(&mut a, &mut b, &clock);
    let before = rss();
    let warm = a.app.established;
    println!(
        "RSS with {warm} connections open (both stacks, the pool, the wire): {:.1} MiB",
        mib(before)
    );

    for &n in &counts {
        a.app.target = n;
        settle(&mut a, &mut b, &clock);
        assert_eq!(a.app.errors, 0, "connection errors");
        assert_eq!(a.app.established, n, "client established");
        assert_eq!(b.app.accepted, n, "server accepted");
        assert_eq!(a.state.sockets.len(), n);
        assert_eq!(b.state.sockets.len(), n + SERVER_PORTS as usize);
        let after = rss();
        let grew = after.saturating_sub(before);
        let conns = (n - warm) as f64;
        println!(
            "{n} idle established connections: RSS {:.1} MiB (+{:.1} MiB): {:.0} bytes per connection \
             (both ends), {:.0} per end; {:.2} GiB per million ends",
            mib(after),
            mib(grew),
            grew as f64 / conns,
            grew as f64 / conns / 2.0,
            grew as f64 / conns / 2.0 * 1e6 / (1u64 << 30) as f64,
        );
    }
}

/// Runs both hosts until the client opened its target and every timer
/// (delayed ACKs) has run out, so the connections are idle.
fn settle<PA: Port<Buf = B>, PB: Port<Buf = B>>(
    a: &mut Host<PA>,
    b: &mut Host<PB>,
    clock: &VirtualClock,
) {
    let mut quiet_since: Option<u64> = None;
    loop {
        let now = clock.now_ns();
        let sa = a.run_once_at(now);
        let sb = b.run_once_at(now);
        let busy = sa.busy() || sb.busy();
        let done = a.app.established == a.app.target && b.app.accepted == a.app.target;
        if done && !busy {
            let since = *quiet_since.get_or_insert(now);
            let next = [sa.next_deadline_ns, sb.next_deadline_ns]
                .into_iter()
                .flatten()
                .min();
            // Idle: nothing due within a second of virtual time.
            if next.is_none_or(|at| at > now + 1_000_000_000) && now > since {
                return;
            }
        } else {
            quiet_since = None;
        }
        assert!(
            a.app.errors == 0,
            "{} connections failed after {} opened",
            a.app.errors,
            a.app.opened
        );
        clock.advance(if busy {
            Duration::from_micros(10)
        } else {
            Duration::from_millis(10)
        });
    }
}
