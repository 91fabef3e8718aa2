//! The TCP simulation: two tpa stacks (a client host and a server host,
//! whole pipelines: Ethernet, ARP/NDP, IPv4/IPv6, TCP) over an impaired
//! [`MemoryWire`](tpa::port::memory::MemoryWire) on one virtual clock, running the connections of a
//! [`Scenario`] drawn from a seed, then checking the invariants
//! ([`check()`]). Every random source comes from the seed: the scenario,
//! both socket tables' (ISN key, ports, timestamp offsets, hash key), the
//! wire's impairment and the data; a seed replays exactly.
//!
//! tests/tests/tcp_sim.rs runs a batch of seeds; tests/tcp_sim_long.sh
//! runs 10^5. The host is [`TcpHost`], the one every TCP test runs.

pub mod app;
pub mod check;
pub mod scenario;

use std::cell::RefCell;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use tpa::buf::BufferPool;
use tpa::port::memory::{Direction, End, Partition, WireConfig};
use tpa::port::Port;
use tpa::time::VirtualClock;
use tpa_stages::egress::EgressConfig;
use tpa_stages::iface::Interface;
use tpa_stages::pcap::PcapCapture;
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::TcpSockets;

use crate::tcp_host::{iface, memory_wire, virtual_step, TcpHost, B, MAC_A, MAC_B};

pub use app::{HostState, SimApp, World};
pub use check::{check, Verdict};
pub use scenario::Scenario;

/// A run that is not over after this much virtual time is stuck.
pub const VIRTUAL_LIMIT: Duration = Duration::from_secs(3600);
/// A run that is not over after this many loop turns is stuck (a storm
/// of segments at one instant would never let virtual time reach the
/// limit above).
pub const TURN_LIMIT: u64 = 3_000_000;

/// A host of the simulation.
pub type Host<P> = TcpHost<P, SimApp>;

fn host<P: Port<Buf = B>>(
    port: P,
    iface: Interface,
    cfg: TcpConfig,
    seed: u64,
    app: SimApp,
    capture: Option<PcapCapture>,
) -> Host<P> {
    // The neighbor caches' random ReachableTime comes from the seed too
    // (its default seed is random per run).
    let mut egress_cfg = EgressConfig::default();
    egress_cfg.neighbors.seed = scenario::derive(seed, 0xe9);
    let state = HostState::new(iface, cfg, seed).with_egress_config(egress_cfg);
    TcpHost::build(port, state, app).capturing(capture)
}

/// What a run left for the checks.
#[derive(Debug)]
pub struct Outcome {
    /// Both ends of every connection, and the violations seen on the way.
    pub world: World,
    /// Virtual time from the start until both hosts had no socket left.
    pub virtual_ms: u64,
    /// Loop turns.
    pub turns: u64,
    /// Why the run did not finish, if it did not: it hit
    /// [`VIRTUAL_LIMIT`] or [`TURN_LIMIT`], with the sockets left.
    pub stuck: Option<String>,
    /// When the partition began and ended (virtual ms), if one did.
    pub partition_ms: Option<(u64, u64)>,
    /// Packets the wire dropped, duplicated, corrupted, cut (both ways).
    pub wire: [u64; 4],
    /// Frames the receivers' FCS check dropped (corrupted on the link).
    pub fcs_drops: u64,
    /// Neighbor entries given up after unanswered probes, both hosts (a
    /// poisoned entry healing, or a neighbor cut off by the partition).
    pub neighbors_failed: u64,
}

/// Runs `scenario` to its end (both socket tables empty, every planned
/// connection finished on both ends) or to a limit; checks that the
/// pool is whole once the hosts and the wire are gone (a panic, naming
/// the buffers missing, if not).
pub fn run(scenario: &Scenario) -> Outcome {
    run_captured(scenario, None)
}

/// [`run`], with every frame each host sends and receives captured in
/// `pcap.0` (client) and `pcap.1` (server), when given.
pub fn run_captured(scenario: &Scenario, pcap: Option<(&Path, &Path)>) -> Outcome {
    let capture = |p: Option<&Path>| p.map(|p| PcapCapture::create(p).expect("create the capture"));
    let seed = scenario.seed;
    let clock = VirtualClock::new();
    let (pool, wire) = memory_wire(
        format!("tcp-sim-{seed}"),
        &clock,
        WireConfig {
            seed: scenario::derive(seed, 0x3173),
            a_to_b: scenario.impairment[0].clone(),
            b_to_a: scenario.impairment[1].clone(),
            max_segments: scenario.max_segments,
            ..WireConfig::default()
        },
    );
    let start = clock.now_ns();
    let world = Rc::new(RefCell::new(World::new(seed, &scenario.conns)));
    let mut a = host(
        wire.port(End::A, 0).unwrap(),
        iface(MAC_A, 1),
        scenario.cfg[0].clone(),
        scenario::derive(seed, 0xa),
        SimApp::new(app::CLIENT, world.clone(), start),
        capture(pcap.map(|p| p.0)),
    )
    .with_time_source(clock.clone().into());
    let mut b = host(
        wire.port(End::B, 0).unwrap(),
        iface(MAC_B, 2),
        scenario.cfg[1].clone(),
        scenario::derive(seed, 0xb),
        SimApp::new(app::SERVER, world.clone(), start),
        capture(pcap.map(|p| p.1)),
    )
    .with_time_source(clock.clone().into());
    for any in ["0.0.0.0", "[::]"] {
        let addr: SocketAddr = format!("{any}:{}", app::PORT).parse().unwrap();
        let l = b
            .state
            .sockets
            .listen(addr, 64, &iface(MAC_B, 2))
            .expect("listen");
        world.borrow_mut().listeners.push(l);
    }

    let total = scenario.total_bytes();
    let mut partition = scenario.partition.clone();
    let mut partition_ms = None;
    let mut heal_at = None;
    let limit = start + VIRTUAL_LIMIT.as_nanos() as u64;
    let mut turns = 0u64;
    let mut client_ids: Vec<Option<tpa::app::SocketId>> = vec![None; scenario.conns.len()];
    let stuck = loop {
        let now = clock.now_ns();
        // The partition: begins at its share of the bytes (or its
        // fallback time), heals after its length.
        if let Some(p) = &partition {
            let received = world.borrow().bytes_received;
            let share_reached = received as f64 >= p.at_share * total as f64;
            if share_reached || now >= start + p.fallback_ns {
                wire.set_partition(p.cut);
                heal_at = Some(now + p.len_ns);
                partition_ms = Some((
                    (now - start) / 1_000_000,
                    (now + p.len_ns - start) / 1_000_000,
                ));
                partition = None;
            }
        }
        if heal_at.is_some_and(|h| now >= h) {
            wire.set_partition(Partition::None);
            heal_at = None;
        }
        let sa = a.run_once_at(now);
        let sb = b.run_once_at(now);
        turns += 1;
        // Which client connections left the client's table.
        {
            let mut w = world.borrow_mut();
            let live: HashSet<_> = a.state.sockets.iter().map(|(id, _)| id).collect();
            for (i, c) in w.conns.iter_mut().enumerate() {
                if let Some(id) = c.ends[app::CLIENT].socket {
                    client_ids[i] = Some(id);
                }
                let started = client_ids[i].is_some() || c.ends[app::CLIENT].handle_closed;
                c.client_gone = started && client_ids[i].is_none_or(|id| !live.contains(&id));
            }
        }
        if finished(&world.borrow(), &a.state.sockets, &b.state.sockets)
            && heal_at.is_none()
            && partition.is_none()
        {
            break None;
        }
        if now >= limit || turns >= TURN_LIMIT {
            break Some(format!(
                "not finished after {} ms virtual, {turns} turns; client sockets {:?}; server sockets {:?}",
                (now - start) / 1_000_000,
                a.state.sockets.iter().collect::<Vec<_>>(),
                b.state.sockets.iter().collect::<Vec<_>>(),
            ));
        }
        let in_flight =
            wire.stats(Direction::AToB).in_flight + wire.stats(Direction::BToA).in_flight;
        // Nothing on the wire, no timer: only the partition's start (by
        // time) can change anything.
        let idle = scenario
            .partition
            .as_ref()
            .filter(|_| partition.is_some())
            .map(|p| (start + p.fallback_ns).saturating_sub(now).max(1_000))
            .unwrap_or(1_000_000_000);
        let step = virtual_step(now, &[sa, sb], &[heal_at], in_flight, idle);
        clock.advance_ns(step);
    };
    let virtual_ms = (clock.now_ns() - start) / 1_000_000;
    let mut wire_counts = [0u64; 4];
    let mut fcs_drops = 0;
    for d in [Direction::AToB, Direction::BToA] {
        let s = wire.stats(d);
        wire_counts[0] += s.dropped.random;
        wire_counts[1] += s.duplicated;
        wire_counts[2] += s.corrupted;
        wire_counts[3] += s.truncated;
        fcs_drops += s.dropped.fcs;
    }
    let neighbors_failed = [&a.state.egress, &b.state.egress]
        .iter()
        .map(|e| e.neighbors_v4().counters().failed + e.neighbors_v6().counters().failed)
        .sum();
    drop((a, b));
    wire.clear();
    drop(wire);
    if stuck.is_none() {
        pool.assert_whole();
    }
    let world = Rc::try_unwrap(world)
        .map(RefCell::into_inner)
        .unwrap_or_else(|_| unreachable!("the hosts are gone"));
    Outcome {
        world,
        virtual_ms,
        turns,
        stuck,
        partition_ms,
        wire: wire_counts,
        fcs_drops,
        neighbors_failed,
    }
}

/// Whether the run is over: every connection finished on both ends (or
/// never reached the server), the listeners closed, both tables empty.
fn finished(w: &World, a: &TcpSockets<B>, b: &TcpSockets<B>) -> bool {
    w.listeners_closed
        && a.is_empty()
        && b.is_empty()
        && w.conns.iter().all(|c| {
            c.ends[app::CLIENT].handle_closed
                && (c.ends[app::SERVER].handle_closed || c.ends[app::SERVER].socket.is_none())
        })
}
