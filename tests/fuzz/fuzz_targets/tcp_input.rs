//! TCP input on a live connection pair: two tpa hosts (socket table, input
//! stage, egress) whose frames the target carries between them by hand.
//! The first byte picks the state the pair is brought to (LISTEN,
//! SYN_SENT, SYN_RECEIVED, ESTABLISHED with data in flight both ways,
//! FIN_WAIT_1, FIN_WAIT_2 / CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT) and
//! the family; the rest is a series of operations: deliver, drop,
//! duplicate or reorder a frame in flight, deliver a mutated copy of one,
//! craft a segment around the receiver's sequence space (raw options,
//! flags, payload), raw TCP bytes, advance the clock and fire the timers,
//! the application's calls, and drop a frame in flight the way a router
//! does, answering its sender with an ICMP error that quotes it (packet
//! too big with any MTU, unreachable, time exceeded, or any type and
//! code; a quote of any length; checksum right unless asked) through
//! the `TcpIcmp` stage. Frames carry correct checksums unless the
//! input asks otherwise, so the fuzzer reaches the state machine.
//!
//! Properties: no panic; after every operation each connection's
//! SND.UNA ≤ SND.NXT ≤ SND.MAX, what is in flight fits what is queued, and
//! the queues stay within their budgets; at the end, with every socket
//! aborted and the clock run on, both tables empty and the pool whole.
#![no_main]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use tpa::app::{Events, SocketId};
use tpa::buf::{BufferPool, PacketBuf, Pool, PoolBuf, PoolConfig};
use tpa::pipeline::{NoHost, Runtime};
use tpa::port::memory::{MemoryPort, MemoryWire, WireConfig};
use tpa::stage::{Cx, Stage};
use tpa::state::State;
use tpa::wire::MacAddr;
use tpa_stages::egress::Egress;
use tpa_stages::iface::Interface;
use tpa_stages::neighbor::Heard;
use tpa_stages::packet::{Ipv4Packet, Ipv6Packet, TcpPacket};
use tpa_stages::tcp::config::TcpConfig;
use tpa_stages::tcp::conn::{State as TcpState, TcpInfo};
use tpa_stages::tcp::wire::FourTuple;
use tpa_stages::tcp::{self, TcpIcmp, TcpInput, TcpSockets};

type B = PoolBuf;

const A: usize = 0;
const SERVER_PORT: u16 = 80;
/// Frames held in flight per direction, at most (the oldest goes first).
const MAX_HELD: usize = 64;
/// Bytes sent per application call, at most.
const MAX_SEND: usize = 6000;

#[derive(State)]
struct HostState {
    egress: Egress<B>,
    #[polled]
    sockets: TcpSockets<B>,
    events: Events,
}

/// One tpa host: its tables, its TCP input stage, and a port for its
/// contexts (what it sends is taken from the runtime, never from the port).
struct Host {
    state: HostState,
    input: TcpInput,
    icmp4: TcpIcmp<Ipv4Packet<B>>,
    icmp6: TcpIcmp<Ipv6Packet<B>>,
    iface: Interface,
    peer_mac: MacAddr,
    peer_v4: Ipv4Addr,
    peer_v6: Ipv6Addr,
    port: MemoryPort,
    _other_end: MemoryPort,
    runtime: Runtime<B, 32, 0>,
}

fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

fn v4(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

fn v6(last: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(last))
}

/// Small queues, so that full windows and budgets are within reach.
fn config() -> TcpConfig {
    TcpConfig {
        send_queue_bytes: 16 * 1024,
        receive_queue_bytes: 16 * 1024,
        max_sockets: 16,
        backlog: 4,
        time_wait_max: 4,
        ..TcpConfig::default()
    }
}

impl Host {
    fn new(pool: &Pool, last: u8, peer: u8, seed: u64) -> Host {
        let iface = Interface::new(mac(last))
            .with_ipv4(format!("192.0.2.{last}/24").parse().unwrap())
            .with_ipv6(format!("2001:db8::{last}/64").parse().unwrap());
        let (port, other) = MemoryWire::pair(WireConfig {
            pool: Some(pool.clone()),
            ring_size: 16,
            ..WireConfig::default()
        })
        .expect("memory wire");
        Host {
            state: HostState {
                egress: Egress::new(iface.clone()),
                sockets: TcpSockets::new(config(), seed),
                events: Events::with_capacity(256),
            },
            input: TcpInput::default(),
            icmp4: TcpIcmp::new(),
            icmp6: TcpIcmp::new(),
            iface,
            peer_mac: mac(peer),
            peer_v4: v4(peer),
            peer_v6: v6(peer),
            port,
            _other_end: other,
            runtime: Runtime::new([], []),
        }
    }

    /// Runs `f` at `now_ns` with the peer known reachable, then the output
    /// path; returns `f`'s result and the TCP frames sent, as bytes.
    fn call<R>(
        &mut self,
        now_ns: u64,
        f: impl FnOnce(&mut Cx<'_, B, HostState>, &mut TcpInput) -> R,
    ) -> (R, Vec<Vec<u8>>) {
        let runtime = &mut self.runtime;
        let (peer_mac, peer_v4, peer_v6) = (self.peer_mac, self.peer_v4, self.peer_v6);
        let input = &mut self.input;
        let r = runtime.with_state(&mut self.port, &mut NoHost, now_ns, &mut self.state, |cx| {
            let (state, port) = cx.split();
            let told = Heard::Advertisement {
                solicited: true,
                override_entry: true,
            };
            for heard in [Heard::Solicitation, told] {
                state.egress.learn_v4(peer_v4, Some(peer_mac), heard, port);
                state.egress.learn_v6(peer_v6, Some(peer_mac), heard, port);
            }
            let r = f(cx, input);
            tpa::state::PolledState::<B>::poll(cx);
            r
        });
        let frames = runtime
            .drain_tx()
            .map(|b| b.segments().flatten().copied().collect::<Vec<u8>>())
            .filter(|f| tcp_offset(f).is_some())
            .collect();
        while self.state.events.pop().is_some() {}
        (r, frames)
    }

    /// `frame` through the IP checks and the TCP input stage.
    fn deliver(&mut self, now_ns: u64, pool: &Pool, frame: &[u8]) -> Vec<Vec<u8>> {
        let Some(mut buf) = pool.alloc() else {
            return Vec::new();
        };
        if buf.extend_from_slice(frame).is_err() {
            return Vec::new();
        }
        let iface = self.iface.clone();
        if frame.get(12..14) == Some(&[0x86, 0xdd]) && frame.get(20) == Some(&58) {
            // Out of the host while `call` borrows it.
            let mut stage = core::mem::take(&mut self.icmp6);
            let (_, frames) = self.call(now_ns, |cx, _| {
                if let Ok(p) = Ipv6Packet::parse(buf, &iface) {
                    let _ = stage.process(p, cx);
                }
            });
            self.icmp6 = stage;
            return frames;
        }
        if frame.get(12..14) == Some(&[0x08, 0x00]) && frame.get(23) == Some(&1) {
            // Out of the host while `call` borrows it.
            let mut stage = core::mem::take(&mut self.icmp4);
            let (_, frames) = self.call(now_ns, |cx, _| {
                if let Ok(p) = Ipv4Packet::parse(buf, &iface) {
                    let _ = stage.process(p, cx);
                }
            });
            self.icmp4 = stage;
            return frames;
        }
        self.call(now_ns, move |cx, input| {
            let p = if frame.get(12..14) == Some(&[0x86, 0xdd]) {
                Ipv6Packet::parse(buf, &iface)
                    .ok()
                    .and_then(|p| TcpPacket::from_ipv6(p).ok())
            } else {
                Ipv4Packet::parse(buf, &iface)
                    .ok()
                    .and_then(|p| TcpPacket::from_ipv4(p).ok())
            };
            if let Some(p) = p {
                let _ = input.process(p, cx);
            }
        })
        .1
    }

    fn sockets(&self) -> Vec<(SocketId, TcpState)> {
        self.state.sockets.iter().collect()
    }

    /// Checks every connection's sequence space and queues.
    fn check(&self) {
        let cfg = config();
        for (id, _) in self.sockets() {
            let Ok(i) = self.state.sockets.info(id) else {
                continue;
            };
            check_info(&i, &cfg);
        }
    }
}

fn check_info(i: &TcpInfo, cfg: &TcpConfig) {
    assert!(
        i.send_queue_bytes <= cfg.send_queue_bytes,
        "send queue over budget: {i:?}"
    );
    assert!(
        i.receive_queue_bytes <= cfg.receive_queue_bytes,
        "receive queue over budget: {i:?}"
    );
    if i.state == TcpState::Closed {
        // Its queues are dropped: the sequence space means nothing more.
        return;
    }
    // SND.NXT may sit before SND.UNA by less than a segment: after a
    // rewind, the front chunk the peer acknowledged in part is resent
    // whole (the send queue never re-slices a chunk).
    let rewound_into_front = i.snd_nxt.lt(i.snd_una)
        && i.snd_una.wrapping_sub(i.snd_nxt) < u32::from(i.snd_mss.max(1))
        && i.bytes_in_flight == 0;
    assert!(
        (i.snd_una.le(i.snd_nxt) || rewound_into_front) && i.snd_nxt.le(i.snd_max),
        "SND.UNA <= SND.NXT <= SND.MAX broken: {i:?}"
    );
    if !rewound_into_front {
        assert_eq!(
            i.bytes_in_flight,
            i.snd_nxt.wrapping_sub(i.snd_una),
            "flight is SND.NXT - SND.UNA: {i:?}"
        );
    }
    // What was sent and not acknowledged is queued, plus SYN and FIN.
    assert!(
        i.snd_max.wrapping_sub(i.snd_una) as usize <= i.send_queue_bytes + 2,
        "more in flight than queued: {i:?}"
    );
}

/// Where the TCP header starts in an Ethernet frame carrying IPv4 (no
/// options needed) or IPv6 (no extension headers) with TCP inside.
fn tcp_offset(f: &[u8]) -> Option<usize> {
    match f.get(12..14)? {
        [0x08, 0x00] => {
            let ihl = usize::from(f.get(14)? & 0x0f) * 4;
            (f.get(23) == Some(&6) && ihl >= 20 && f.len() >= 14 + ihl + 20).then_some(14 + ihl)
        }
        [0x86, 0xdd] => (f.get(20) == Some(&6) && f.len() >= 54 + 20).then_some(54),
        _ => None,
    }
}

/// The one's complement sum of `bytes`, folded, from `start`.
fn sum(mut acc: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Rewrites the IP length, the IPv4 header checksum and the TCP checksum
/// of a frame `tcp_offset` accepts, for a TCP segment of the frame's whole
/// remainder.
fn fix_checksums(f: &mut [u8]) {
    let Some(off) = tcp_offset(f) else { return };
    let tcp_len = f.len() - off;
    let mut acc;
    if f[12] == 0x08 {
        let total = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[24..26].fill(0);
        let c = fold(sum(0, &f[14..off]));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        acc = sum(0, &f[26..34]);
    } else {
        f[18..20].copy_from_slice(&(tcp_len as u16).to_be_bytes());
        acc = sum(0, &f[22..54]);
    }
    acc += 6 + tcp_len as u32;
    f[off + 16..off + 18].fill(0);
    let c = fold(sum(acc, &f[off..]));
    f[off + 16..off + 18].copy_from_slice(&c.to_be_bytes());
}

/// An Ethernet + IP frame from `src` to `dst` around `tcp` (header and
/// payload), checksums filled.
fn frame(src: (MacAddr, SocketAddr), dst: (MacAddr, SocketAddr), tcp: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 40 + tcp.len());
    f.extend_from_slice(&dst.0 .0);
    f.extend_from_slice(&src.0 .0);
    match (src.1.ip(), dst.1.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let s = match s {
                IpAddr::V6(s) => s,
                IpAddr::V4(s) => s.to_ipv6_mapped(),
            };
            let d = match d {
                IpAddr::V6(d) => d,
                IpAddr::V4(d) => d.to_ipv6_mapped(),
            };
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 6, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
    }
    f.extend_from_slice(tcp);
    fix_checksums(&mut f);
    f
}

/// An ICMP error (ICMPv6 for an IPv6 `quoted`) from a router toward the
/// sender of `quoted` (an Ethernet frame it sent): type, code, the four
/// bytes after the checksum, and the first `quote_len` bytes of its IP
/// packet; the checksum corrupted when `corrupt`.
fn icmp_error(quoted: &[u8], header: [u8; 8], quote_len: usize, corrupt: bool) -> Option<Vec<u8>> {
    let ip = quoted.get(14..)?;
    let ip = &ip[..quote_len.min(ip.len())];
    let mut f = Vec::with_capacity(14 + 40 + 8 + ip.len());
    f.extend_from_slice(quoted.get(6..12)?);
    f.extend_from_slice(quoted.get(0..6)?);
    let v6 = quoted.get(12..14)? == [0x86, 0xdd];
    let icmp_len = 8 + ip.len();
    let mut acc;
    if v6 {
        let (src, dst) = (quoted.get(38..54)?, quoted.get(22..38)?);
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(icmp_len as u16).to_be_bytes());
        f.extend_from_slice(&[58, 64]);
        f.extend_from_slice(src);
        f.extend_from_slice(dst);
        acc = sum(0, &f[22..54]) + 58 + icmp_len as u32;
    } else {
        let (src, dst) = (quoted.get(30..34)?, quoted.get(26..30)?);
        let total = (20 + icmp_len) as u16;
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0]);
        f.extend_from_slice(src);
        f.extend_from_slice(dst);
        let c = fold(sum(0, &f[14..34]));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        acc = 0;
    }
    let at = f.len();
    f.extend_from_slice(&header);
    f[at + 2..at + 4].fill(0);
    f.extend_from_slice(ip);
    acc = sum(acc, &f[at..]);
    let c = fold(acc) ^ u16::from(corrupt);
    f[at + 2..at + 4].copy_from_slice(&c.to_be_bytes());
    Some(f)
}

/// TSval of a TCP frame's timestamp option, if it has one.
fn tsval(f: &[u8]) -> Option<u32> {
    let off = tcp_offset(f)?;
    let hlen = usize::from(f[off + 12] >> 4) * 4;
    let opts = f.get(off + 20..off + hlen)?;
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return None,
            1 => i += 1,
            8 => {
                return opts
                    .get(i + 2..i + 6)
                    .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
            }
            _ => i += usize::from(*opts.get(i + 1)?).max(2),
        }
    }
    None
}

/// The input, read a byte at a time (zeros once it runs out).
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (b, rest) = self.data.split_at(n);
        self.data = rest;
        b
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// The pair, the frames in flight each way (`held[i]`: toward host `i`),
/// the clock, and the peer's latest TSval toward each host.
struct World {
    pool: Pool,
    hosts: [Host; 2],
    held: [Vec<Vec<u8>>; 2],
    now_ns: u64,
    last_ts: [u32; 2],
    v6: bool,
    /// Each connection's tuple and latest snapshot, kept after the
    /// application closed it (its handle then says BadSocket).
    known: [BTreeMap<SocketId, (FourTuple, TcpInfo)>; 2],
}

impl World {
    fn new(pool: Pool, v6: bool) -> World {
        let hosts = [Host::new(&pool, 1, 2, 7), Host::new(&pool, 2, 1, 8)];
        World {
            pool,
            hosts,
            held: [Vec::new(), Vec::new()],
            now_ns: 1_000_000_000,
            last_ts: [0; 2],
            v6,
            known: [BTreeMap::new(), BTreeMap::new()],
        }
    }

    fn addr(&self, side: usize) -> IpAddr {
        let last = side as u8 + 1;
        if self.v6 {
            IpAddr::V6(v6(last))
        } else {
            IpAddr::V4(v4(last))
        }
    }

    /// Holds what `from` sent, toward the other host.
    fn sent(&mut self, from: usize, frames: Vec<Vec<u8>>) {
        let to = 1 - from;
        for f in frames {
            if let Some(ts) = tsval(&f) {
                self.last_ts[to] = ts;
            }
            if self.held[to].len() == MAX_HELD {
                self.held[to].remove(0);
            }
            self.held[to].push(f);
        }
    }

    fn call<R>(
        &mut self,
        side: usize,
        f: impl FnOnce(&mut Cx<'_, B, HostState>, &mut TcpInput) -> R,
    ) -> R {
        let (r, frames) = self.hosts[side].call(self.now_ns, f);
        self.sent(side, frames);
        r
    }

    fn deliver(&mut self, to: usize, frame: &[u8]) {
        let frames = self.hosts[to].deliver(self.now_ns, &self.pool, frame);
        self.sent(to, frames);
    }

    /// Delivers the held frame `index` toward `to`, keeping a copy when
    /// `duplicate`.
    fn deliver_held(&mut self, to: usize, index: usize, duplicate: bool) {
        if self.held[to].is_empty() {
            return;
        }
        let index = index % self.held[to].len();
        let f = if duplicate {
            self.held[to][index].clone()
        } else {
            self.held[to].remove(index)
        };
        self.deliver(to, &f);
    }

    /// Delivers everything in flight both ways until nothing is (bounded).
    fn exchange(&mut self) {
        for _ in 0..64 {
            if self.held.iter().all(Vec::is_empty) {
                return;
            }
            for to in 0..2 {
                for f in std::mem::take(&mut self.held[to]) {
                    self.deliver(to, &f);
                }
            }
        }
    }

    /// Moves the clock on by `ns` and fires both hosts' timers.
    fn advance(&mut self, ns: u64) {
        self.now_ns += ns;
        for side in 0..2 {
            self.call(side, |cx, _| {
                tpa::state::PolledState::<B>::fire_timers(cx);
            });
        }
    }

    /// The connections of `side`, in slot order.
    fn conns(&self, side: usize) -> Vec<SocketId> {
        self.hosts[side]
            .sockets()
            .into_iter()
            .filter(|(_, s)| *s != TcpState::Listen)
            .map(|(id, _)| id)
            .collect()
    }

    fn conn(&self, side: usize) -> Option<SocketId> {
        self.conns(side).first().copied()
    }

    fn listen(&mut self) {
        let any: IpAddr = if self.v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let h = &mut self.hosts[1];
        h.state
            .sockets
            .listen(SocketAddr::new(any, SERVER_PORT), 4, &h.iface)
            .expect("listen");
    }

    fn connect(&mut self) -> Option<SocketId> {
        let remote = SocketAddr::new(self.addr(1), SERVER_PORT);
        self.call(A, |cx, _| tcp::connect(cx, remote).ok())
    }

    fn accept(&mut self) {
        let listeners: Vec<SocketId> = self.hosts[1]
            .sockets()
            .into_iter()
            .filter(|(_, s)| *s == TcpState::Listen)
            .map(|(id, _)| id)
            .collect();
        for l in listeners {
            self.call(1, |cx, _| while tcp::accept(cx, l).is_ok() {});
        }
    }

    fn send(&mut self, side: usize, len: usize) {
        let Some(s) = self.conn(side) else { return };
        let data = vec![0x5a; len];
        self.call(side, |cx, _| {
            let _ = tcp::send(cx, s, &data);
        });
    }

    fn close(&mut self, side: usize) {
        if let Some(s) = self.conn(side) {
            self.call(side, |cx, _| {
                let _ = tcp::close(cx, s);
            });
        }
    }

    fn shutdown(&mut self, side: usize) {
        if let Some(s) = self.conn(side) {
            self.call(side, |cx, _| {
                let _ = tcp::shutdown(cx, s);
            });
        }
    }

    /// Brings the pair to the state `scenario` names, for the host the
    /// fuzzer's segments mostly reach.
    fn setup(&mut self, scenario: u8) {
        self.listen();
        match scenario % 10 {
            // LISTEN: B listens, nothing else.
            0 => {}
            // SYN_SENT: A's SYN held.
            1 => {
                self.connect();
            }
            // SYN_RECEIVED at B: its SYN-ACK held.
            2 => {
                self.connect();
                self.deliver_held(1, 0, false);
            }
            // ESTABLISHED, data in flight both ways.
            3 => {
                self.established();
                self.send(A, 3000);
                self.send(1, 3000);
            }
            // FIN_WAIT_1 at A, CLOSE_WAIT at B once it lands; data in flight.
            4 => {
                self.established();
                self.send(1, 2000);
                self.send(A, 2000);
                self.shutdown(A);
            }
            // FIN_WAIT_2 at A, CLOSE_WAIT at B.
            5 => {
                self.established();
                self.close(A);
                self.exchange();
            }
            // CLOSING at both: FINs crossed, their ACKs held.
            6 => {
                self.established();
                self.shutdown(A);
                self.shutdown(1);
                self.deliver_held(1, 0, false);
                self.deliver_held(0, 0, false);
            }
            // LAST_ACK at B, its FIN held.
            7 => {
                self.established();
                self.close(A);
                self.exchange();
                self.close(1);
            }
            // TIME_WAIT at A, CLOSED at B.
            8 => {
                self.established();
                self.close(A);
                self.exchange();
                self.close(1);
                self.exchange();
            }
            // ESTABLISHED with a zero window at A: B filled it.
            _ => {
                self.established();
                for _ in 0..8 {
                    self.send(1, MAX_SEND);
                    self.exchange();
                }
            }
        }
    }

    fn established(&mut self) {
        self.connect();
        self.exchange();
        self.accept();
    }

    /// A segment toward `to`, built from the input around the receiving
    /// connection's sequence space.
    fn craft(&mut self, to: usize, input: &mut Input<'_>) {
        let from = 1 - to;
        let pick = input.byte();
        let flags = input.byte();
        let seq_delta = input.u16() as i16;
        let ack_delta = input.u16() as i16;
        let window = input.u16();
        let opt_ctl = input.byte();
        let payload_len = usize::from(input.byte()) * 8;
        let known: Vec<(FourTuple, TcpInfo)> = self.known[to].values().copied().collect();
        let (local, remote, info) = match known.get(usize::from(pick) % known.len().max(1)) {
            Some(&(t, i)) if pick & 0x80 == 0 => (t.local, t.remote, Some(i)),
            _ => (
                SocketAddr::new(self.addr(to), SERVER_PORT),
                SocketAddr::new(self.addr(from), 40000 + u16::from(pick & 7)),
                None,
            ),
        };
        let (seq, ack) = match info {
            Some(i) => (
                i.rcv_nxt.get().wrapping_add(seq_delta as i32 as u32),
                i.snd_una.get().wrapping_add(ack_delta as i32 as u32),
            ),
            None => (
                u32::from(seq_delta as u16) << 16,
                u32::from(ack_delta as u16),
            ),
        };
        let mut options = Vec::new();
        if opt_ctl & 0x80 != 0 {
            // A timestamp the receiver takes as recent.
            let ts = self.last_ts[to].wrapping_add(u32::from(opt_ctl & 0x0f));
            options.extend_from_slice(&[1, 1, 8, 10]);
            options.extend_from_slice(&ts.to_be_bytes());
            options.extend_from_slice(&[0; 4]);
        }
        let raw = usize::from(opt_ctl & 0x70) >> 4;
        options.extend_from_slice(input.bytes(raw * 4));
        while options.len() % 4 != 0 {
            options.push(0);
        }
        options.truncate(40);
        let mut tcp = Vec::with_capacity(20 + options.len() + payload_len);
        tcp.extend_from_slice(&remote.port().to_be_bytes());
        tcp.extend_from_slice(&local.port().to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.push((((20 + options.len()) / 4) as u8) << 4);
        tcp.push(flags);
        tcp.extend_from_slice(&window.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(&options);
        tcp.extend((0..payload_len).map(|i| i as u8));
        let hosts = &self.hosts;
        let mut f = frame(
            (hosts[to].peer_mac, remote),
            (hosts[to].iface.mac, local),
            &tcp,
        );
        if flags & 0x40 != 0 && opt_ctl & 0x08 != 0 {
            // A corrupted checksum, now and then.
            let off = tcp_offset(&f).unwrap();
            f[off + 16] ^= 1;
        }
        self.deliver(to, &f);
    }

    /// A router drops a held frame toward `to` and answers its sender
    /// with an ICMP error quoting it, as the input picks.
    fn icmp(&mut self, to: usize, input: &mut Input<'_>) {
        let index = usize::from(input.byte());
        let kind = input.byte();
        let mtu = input.u16();
        let quote = usize::from(input.byte());
        if self.held[to].is_empty() {
            return;
        }
        let n = self.held[to].len();
        let dropped = self.held[to].remove(index % n);
        let [hi, lo] = mtu.to_be_bytes();
        let (t, c) = match (self.v6, kind % 6) {
            (false, 0) => (3, 4),
            (false, 1) => (3, 3),
            (false, 2) => (3, 1),
            (false, 3) => (11, 0),
            (true, 0) => (2, 0),
            (true, 1) => (1, 4),
            (true, 2) => (1, 3),
            (true, 3) => (3, 0),
            (_, 4) => (if self.v6 { 1 } else { 3 }, kind >> 3),
            _ => (input.byte(), input.byte()),
        };
        let header = [t, c, 0, 0, 0, 0, hi, lo];
        let quote_len = if self.v6 { 40 } else { 20 } + quote * 8;
        if let Some(f) = icmp_error(&dropped, header, quote_len, kind & 0x80 != 0) {
            self.deliver(1 - to, &f);
        }
    }

    /// A copy of a held frame with a few bytes of its TCP part flipped,
    /// checksums fixed unless the input says not to.
    fn mutate(&mut self, to: usize, input: &mut Input<'_>) {
        let index = usize::from(input.byte());
        let n = input.byte();
        if self.held[to].is_empty() {
            return;
        }
        let mut f = self.held[to][index % self.held[to].len()].clone();
        let Some(off) = tcp_offset(&f) else { return };
        for _ in 0..(n & 7) + 1 {
            let at = off + usize::from(input.u16()) % (f.len() - off);
            f[at] ^= input.byte();
        }
        if n & 0x80 == 0 {
            fix_checksums(&mut f);
        }
        self.deliver(to, &f);
    }

    /// Raw TCP bytes from the input after a correct IP header.
    fn raw(&mut self, to: usize, input: &mut Input<'_>) {
        let len = usize::from(input.byte());
        let fix = len & 1 == 0;
        let tcp = input.bytes(len).to_vec();
        if tcp.len() < 20 {
            return;
        }
        let local = SocketAddr::new(self.addr(to), SERVER_PORT);
        let remote = SocketAddr::new(self.addr(1 - to), 40000);
        let hosts = &self.hosts;
        let mut f = frame(
            (hosts[to].peer_mac, remote),
            (hosts[to].iface.mac, local),
            &tcp,
        );
        if !fix {
            let off = tcp_offset(&f).unwrap();
            f[off + 16..off + 18].copy_from_slice(&tcp[16..18]);
        }
        self.deliver(to, &f);
    }

    /// One of the application's calls on a socket of `side`.
    fn app(&mut self, side: usize, input: &mut Input<'_>) {
        let what = input.byte();
        let len = usize::from(input.u16()) % (MAX_SEND + 1);
        let all: Vec<SocketId> = self.hosts[side]
            .sockets()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let Some(&s) = all.get(usize::from(what >> 4) % all.len().max(1)) else {
            if what & 1 == 0 && side == A {
                self.connect();
            }
            return;
        };
        let pool = self.pool.clone();
        let peer = self.addr(1 - side);
        self.call(side, |cx, _| match what % 11 {
            0 => {
                let _ = tcp::send(cx, s, &vec![0xa5; len]);
            }
            1 => {
                let mut out = vec![0; len.max(1)];
                let _ = tcp::read(cx, s, &mut out);
            }
            2 => while let Ok(Some(_)) = tcp::recv(cx, s) {},
            3 => {
                let _ = tcp::shutdown(cx, s);
            }
            4 => {
                let _ = tcp::close(cx, s);
            }
            5 => {
                let _ = tcp::abort(cx, s);
            }
            6 => while tcp::accept(cx, s).is_ok() {},
            7 => {
                if let Some(mut b) = pool.alloc() {
                    let n = len.min(b.tailroom());
                    if b.extend_from_slice(&vec![0x3c; n]).is_ok() {
                        let _ = tcp::send_buf(cx, s, b);
                    }
                }
            }
            8 => {
                let _ = tcp::send_space(cx, s);
                let _ = tcp::info(cx, s);
            }
            9 => {
                // Another connection: to the listener, or refused.
                let _ = tcp::connect(cx, SocketAddr::new(peer, SERVER_PORT + u16::from(what & 1)));
            }
            _ => {
                let _ = tcp::read(cx, s, &mut []);
            }
        });
    }

    /// Checks both hosts and refreshes what is known of their
    /// connections.
    fn check(&mut self) {
        for (h, known) in self.hosts.iter().zip(&mut self.known) {
            h.check();
            let live: Vec<SocketId> = h.sockets().into_iter().map(|(id, _)| id).collect();
            known.retain(|id, _| live.contains(id));
            for id in live {
                let t = &h.state.sockets;
                if let (Ok(tuple), Ok(info)) = (t.tuple(id), t.info(id)) {
                    known.insert(id, (tuple, info));
                }
            }
        }
    }

    /// Aborts every socket, runs the clock on until both tables are
    /// empty, and checks that every buffer came back.
    fn finish(mut self) {
        for side in 0..2 {
            for (s, st) in self.hosts[side].sockets() {
                self.call(side, |cx, _| {
                    if st == TcpState::Listen {
                        let _ = tcp::close(cx, s);
                    } else {
                        let _ = tcp::abort(cx, s);
                    }
                });
            }
        }
        for _ in 0..32 {
            self.exchange();
            if self.hosts.iter().all(|h| h.state.sockets.is_empty()) {
                break;
            }
            self.advance(300_000_000_000);
        }
        for (i, h) in self.hosts.iter().enumerate() {
            assert!(
                h.state.sockets.is_empty(),
                "host {i}: sockets left after abort and 160 min: {:?}",
                h.sockets()
                    .iter()
                    .map(|&(id, st)| (st, h.state.sockets.info(id)))
                    .collect::<Vec<_>>()
            );
        }
        let pool = self.pool.clone();
        drop(self);
        pool.assert_whole();
    }
}

/// Steps of the clock an advance picks from: the delayed ACK, RTOs, the
/// persist and keepalive timers, TIME_WAIT.
const STEPS_NS: [u64; 16] = [
    0,
    1_000,
    1_000_000,
    10_000_000,
    40_000_000,
    200_000_000,
    300_000_000,
    1_000_000_000,
    3_000_000_000,
    10_000_000_000,
    30_000_000_000,
    61_000_000_000,
    120_000_000_000,
    600_000_000_000,
    7_200_000_000_000,
    u32::MAX as u64 * 1_000_000,
];

thread_local! {
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

fn pool() -> Pool {
    POOL.with(|p| {
        p.borrow_mut()
            .get_or_insert_with(|| {
                Pool::new(PoolConfig {
                    name: "fuzz-tcp".to_owned(),
                    capacity: 1024,
                    huge_pages: false,
                    ..PoolConfig::default()
                })
                .expect("pool")
            })
            .clone()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let scenario = input.byte();
    let mut w = World::new(pool(), scenario & 0x80 != 0);
    w.setup(scenario);
    w.check();
    let mut ops = 0;
    while !input.is_empty() && ops < 256 {
        ops += 1;
        let op = input.byte();
        let side = usize::from(op >> 3 & 1);
        match op & 7 {
            0 => {
                let index = if op & 0x10 != 0 {
                    usize::from(input.byte())
                } else {
                    0
                };
                w.deliver_held(side, index, op & 0x20 != 0);
            }
            1 if op & 0x20 != 0 => w.icmp(side, &mut input),
            1 => {
                let index = usize::from(input.byte());
                if !w.held[side].is_empty() {
                    let n = w.held[side].len();
                    w.held[side].remove(index % n);
                }
            }
            2 => w.mutate(side, &mut input),
            3 => w.craft(side, &mut input),
            4 => {
                let step = STEPS_NS[usize::from(op >> 4)];
                w.advance(step);
            }
            5 => w.app(side, &mut input),
            6 => w.exchange(),
            _ => w.raw(side, &mut input),
        }
        w.check();
    }
    w.finish();
});
