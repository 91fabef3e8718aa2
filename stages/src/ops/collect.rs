//! Filling a [`WorkerSnapshot`] from the parts a pipeline has: its stage
//! counters, a TCP socket table, an egress path's neighbor caches, a
//! buffer pool. Each app calls those it has.

use tpa::buf::{PacketBuf, Pool};
use tpa::pipeline::Runtime;
use tpa::stage::CountedView;

use super::snapshot::{
    Counter, NeighborSnapshot, PoolSnapshot, SocketSnapshot, StageCounters, WorkerSnapshot,
};
use crate::egress::Egress;
use crate::tcp::conn::{SocketLatency, State};
use crate::tcp::TcpSockets;

/// A TCP state's name as `ss` prints it (`SYN_SENT`).
pub fn state_name(state: State) -> String {
    let camel = format!("{state:?}");
    let mut out = String::with_capacity(camel.len() + 2);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// The pipeline's stage counters, drops by reason name.
pub fn stages<B: PacketBuf, const N: usize, const K: usize>(
    snap: &mut WorkerSnapshot,
    runtime: &Runtime<B, N, K>,
) {
    snap.stages = runtime
        .stage_drops()
        .map(|(name, s, drops)| StageCounters {
            name: name.to_string(),
            passed: s.passed,
            consumed: s.consumed,
            transmitted: s.transmitted,
            to_host: s.to_host,
            originated: s.originated,
            drops: drops
                .into_iter()
                .map(|(reason, n)| Counter::count(reason, n))
                .collect(),
        })
        .collect();
}

/// A stage nested in the pipeline's stage `top` (a `Counted` one inside a
/// combinator, from the pipeline's `visit_counted`), named `top.name`
/// after the pipeline's stages.
///
/// ```text
/// pipeline.visit_counted(&mut |top, view| collect::nested(snap, top, view));
/// ```
pub fn nested(snap: &mut WorkerSnapshot, top: &str, view: CountedView<'_>) {
    let s = view.stats;
    snap.stages.push(StageCounters {
        name: format!("{top}.{}", view.name),
        passed: s.passed,
        consumed: s.consumed,
        transmitted: s.transmitted,
        to_host: s.to_host,
        originated: s.originated,
        drops: s
            .drops()
            .map(|(reason, n)| Counter::count(reason.name(view.custom_reasons), n))
            .collect(),
    });
}

/// Every stage's counters of a `#[pipeline]`: its own stages
/// ([`stages`]), then each `Counted` stage nested in them ([`nested`]),
/// which `visit_counted` shows (the pipeline's generated method).
///
/// ```text
/// collect::pipeline(snap, pipeline.stats(), |visit| pipeline.visit_counted(visit));
/// ```
pub fn pipeline<B: PacketBuf, const N: usize, const K: usize>(
    snap: &mut WorkerSnapshot,
    runtime: &Runtime<B, N, K>,
    visit_counted: impl FnOnce(&mut dyn FnMut(&'static str, CountedView<'_>)),
) {
    stages(snap, runtime);
    visit_counted(&mut |top, view| nested(snap, top, view));
}

/// The port's own counters (`Port::visit_counters`).
pub fn port<P: tpa::port::Port>(snap: &mut WorkerSnapshot, port: &mut P) {
    snap.port.clear();
    port.visit_counters(&mut |name, value| snap.port.push(Counter::count(name, value)));
}

/// Counters named after the fields of `$from`.
macro_rules! fields {
    ($out:expr, $from:expr, counter: [$($c:ident),* $(,)?]) => {
        $( $out.push(Counter::count(stringify!($c), $from.$c as u64)); )*
    };
    ($out:expr, $from:expr, gauge: [$($g:ident),* $(,)?]) => {
        $( $out.push(Counter::gauge(stringify!($g), $from.$g as u64)); )*
    };
}

/// The TCP table's counters and at most `max_sockets` of its sockets,
/// each connection with its info.
pub fn tcp<B: PacketBuf>(snap: &mut WorkerSnapshot, tcp: &TcpSockets<B>, max_sockets: usize) {
    let c = tcp.counters();
    let mut out = Vec::with_capacity(32);
    fields!(out, c, counter: [
        active_opens, passive_opens, backlog_drops, table_full_drops, time_waits,
        time_wait_evictions, time_wait_reuses, segments_sent, tso_frames, tso_segments,
        send_failures, events_deferred, sack_blocks_dropped, syn_cookies_sent,
        syn_cookies_validated, syn_cookies_failed, syn_cookies_expired, accept_queue_drops,
        challenge_acks_limited, retransmitted_segments, loss_probes, neighbor_confirmations,
    ]);
    out.push(Counter::gauge("open_sockets", tcp.len() as u64));
    out.push(Counter::gauge(
        "time_wait_sockets",
        tcp.time_wait_count() as u64,
    ));
    snap.tcp = out;
    snap.sockets.clear();
    snap.sockets_omitted = 0;
    for (id, state) in tcp.iter() {
        if snap.sockets.len() >= max_sockets {
            snap.sockets_omitted += 1;
            continue;
        }
        let mut sock = SocketSnapshot {
            index: id.index,
            state: state_name(state),
            ..SocketSnapshot::default()
        };
        if let Ok(addr) = tcp.listener_addr(id) {
            sock.local = addr.to_string();
        } else if let (Ok(t), Ok(i)) = (tcp.tuple(id), tcp.info(id)) {
            sock.local = t.local.to_string();
            sock.remote = t.remote.to_string();
            let mut info = Vec::with_capacity(48);
            fields!(info, i, gauge: [
                rtt_ns, rttvar_ns, rto_ns, cwnd, ssthresh, snd_mss, rcv_mss, snd_wnd, rcv_wnd,
                bytes_in_flight, retransmits, backoffs, send_queue_bytes, receive_queue_bytes,
            ]);
            fields!(info, i, counter: [
                total_retrans, fast_retransmits, sack_retransmits, spurious_recoveries,
                spurious_rtos, lost, bytes_acked, bytes_received, segs_in, segs_out,
                data_segs_in, data_segs_out, dup_acks_in, challenge_acks, dropped, out_of_order,
                window_probes, keepalive_probes, pmtu_reductions, tlp_probes, tlp_recoveries,
                rack_losses,
            ]);
            latency(&mut info, &i.latency);
            sock.info = info;
        }
        snap.sockets.push(sock);
    }
}

/// A connection's latency stages (`TcpConfig::measure_latency`), each as
/// `<stage>_latency_count` and its `_min_ns`, `_avg_ns`, `_max_ns`; none
/// while no stage has a sample (the knob off, or nothing read or written).
fn latency(info: &mut Vec<Counter>, lat: &SocketLatency) {
    if *lat == SocketLatency::default() {
        return;
    }
    for (name, s) in [
        ("read", &lat.read),
        ("write_sent", &lat.write_sent),
        ("write_acked", &lat.write_acked),
    ] {
        info.push(Counter::count(format!("{name}_latency_count"), s.count));
        info.push(Counter::gauge(format!("{name}_latency_min_ns"), s.min_ns));
        info.push(Counter::gauge(format!("{name}_latency_avg_ns"), s.avg_ns()));
        info.push(Counter::gauge(format!("{name}_latency_max_ns"), s.max_ns));
    }
}

/// The egress path's neighbor caches, their states at `now_ns`.
pub fn neighbors<B: PacketBuf>(snap: &mut WorkerSnapshot, egress: &Egress<B>, now_ns: u64) {
    snap.neighbors.clear();
    let mac = |m: Option<tpa::wire::MacAddr>| m.map(|m| m.to_string()).unwrap_or_default();
    for n in egress.neighbors_v4().iter() {
        snap.neighbors.push(NeighborSnapshot {
            ip: n.ip.to_string(),
            mac: mac(n.mac),
            state: n.state_at(now_ns).name().to_string(),
            held: n.held as u64,
        });
    }
    for n in egress.neighbors_v6().iter() {
        snap.neighbors.push(NeighborSnapshot {
            ip: n.ip.to_string(),
            mac: mac(n.mac),
            state: n.state_at(now_ns).name().to_string(),
            held: n.held as u64,
        });
    }
}

/// A tpa buffer pool.
pub fn pool(pool: &Pool) -> PoolSnapshot {
    let s = pool.stats();
    PoolSnapshot {
        name: pool.name().to_string(),
        capacity: s.capacity as u64,
        in_use: s.in_use as u64,
        buffer_bytes: pool.buf_capacity() as u64,
        failed_allocs: s.failed_allocs,
    }
}

/// A DPDK mempool.
#[cfg(feature = "dpdk")]
pub fn mempool(pool: &tpa::port::dpdk::Mempool) -> PoolSnapshot {
    let s = pool.stats();
    PoolSnapshot {
        name: pool.name().to_string(),
        capacity: s.capacity as u64,
        in_use: s.in_use as u64,
        buffer_bytes: u64::from(pool.data_room()),
        failed_allocs: s.failed_allocs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_named_as_ss_names_them() {
        assert_eq!(state_name(State::SynSent), "SYN_SENT");
        assert_eq!(state_name(State::Established), "ESTABLISHED");
        assert_eq!(state_name(State::TimeWait), "TIME_WAIT");
    }
}
