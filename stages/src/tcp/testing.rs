//! Helpers for the TCP unit tests: segments from a peer built by an
//! independent encoder (etherparse), parsed back the same way, and the IP
//! input checks to turn them into the stages' typed packets.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use tpa::buf::PoolBuf;
use tpa::wire::MacAddr;

use crate::iface::Interface;
use crate::packet::{Ipv4Packet, Ipv6Packet, TcpPacket};

pub const US_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const THEM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
pub const US4: [u8; 4] = [192, 0, 2, 1];
pub const THEM4: [u8; 4] = [192, 0, 2, 2];
pub const US6: &str = "2001:db8::1";
pub const THEM6: &str = "2001:db8::2";

pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

pub fn iface() -> Interface {
    Interface::new(MacAddr(US_MAC))
        .with_ipv4("192.0.2.1/24".parse().unwrap())
        .with_ipv6(format!("{US6}/64").parse().unwrap())
}

/// Our address in the family asked.
pub fn us(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(self::v6(US6))
    } else {
        IpAddr::from(US4)
    }
}

/// The peer's address in the family asked.
pub fn them(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(self::v6(THEM6))
    } else {
        IpAddr::from(THEM4)
    }
}

/// A segment the peer sends, in the fields a test sets.
#[derive(Debug, Clone, Default)]
pub struct Seg {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub window: u16,
    /// Raw option bytes (a multiple of 4 long).
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Seg {
    /// A SYN from port 5000 to `dst_port` with MSS 1460.
    pub fn syn(seq: u32, dst_port: u16) -> Seg {
        Seg {
            src_port: 5000,
            dst_port,
            seq,
            syn: true,
            window: 65535,
            options: vec![2, 4, 0x05, 0xb4],
            ..Seg::default()
        }
    }
}

/// `seg` from the peer to us as an Ethernet frame.
pub fn segment_frame(v6: bool, seg: &Seg) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(THEM_MAC, US_MAC);
    let ip = if v6 {
        eth.ipv6(self::v6(THEM6).octets(), self::v6(US6).octets(), 64)
    } else {
        eth.ipv4(THEM4, US4, 64)
    };
    let mut b = ip.tcp(seg.src_port, seg.dst_port, seg.seq, seg.window);
    if seg.syn {
        b = b.syn();
    }
    if seg.fin {
        b = b.fin();
    }
    if seg.rst {
        b = b.rst();
    }
    if seg.psh {
        b = b.psh();
    }
    if let Some(ack) = seg.ack {
        b = b.ack(ack);
    }
    if !seg.options.is_empty() {
        b = b.options_raw(&seg.options).unwrap();
    }
    let mut out = Vec::new();
    b.write(&mut out, &seg.payload).unwrap();
    out
}

/// A UDP datagram from the peer, as a frame.
pub fn udp_frame(v6: bool) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(THEM_MAC, US_MAC);
    let mut out = Vec::new();
    if v6 {
        eth.ipv6(self::v6(THEM6).octets(), self::v6(US6).octets(), 64)
            .udp(1, 2)
            .write(&mut out, b"hi")
            .unwrap();
    } else {
        eth.ipv4(THEM4, US4, 64)
            .udp(1, 2)
            .write(&mut out, b"hi")
            .unwrap();
    }
    out
}

pub fn ipv4_packet(bytes: &[u8]) -> Ipv4Packet<PoolBuf> {
    Ipv4Packet::parse(crate::testing::frame(bytes), &iface()).unwrap()
}

pub fn ipv6_packet(bytes: &[u8]) -> Ipv6Packet<PoolBuf> {
    Ipv6Packet::parse(crate::testing::frame(bytes), &iface()).unwrap()
}

/// `bytes` (an Ethernet frame with TCP inside) through the IP input
/// checks, as the TCP stage receives it.
pub fn tcp_packet(bytes: &[u8]) -> TcpPacket<PoolBuf> {
    if bytes[12..14] == [0x86, 0xdd] {
        TcpPacket::from_ipv6(ipv6_packet(bytes)).unwrap()
    } else {
        TcpPacket::from_ipv4(ipv4_packet(bytes)).unwrap()
    }
}

/// A TCP segment we sent, as an independent parser reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

/// The TCP segment in `frame` (every segment of a chain joined first);
/// panics unless it is TCP with a checksum that verifies.
pub fn parse_tcp(frame: &[u8]) -> Parsed {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(TransportSlice::Tcp(tcp)) = p.transport else {
        panic!("not TCP: {frame:02x?}");
    };
    let header = tcp.to_header();
    let (src, dst, sum): (IpAddr, IpAddr, u16) = match p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let (s, d) = (ip.header().source(), ip.header().destination());
            let sum = header.calc_checksum_ipv4_raw(s, d, tcp.payload()).unwrap();
            (s.into(), d.into(), sum)
        }
        Some(NetSlice::Ipv6(ip)) => {
            let (s, d) = (ip.header().source(), ip.header().destination());
            let sum = header.calc_checksum_ipv6_raw(s, d, tcp.payload()).unwrap();
            (s.into(), d.into(), sum)
        }
        _ => panic!("not IP"),
    };
    assert_eq!(header.checksum, sum, "TCP checksum");
    let flags = tcp.slice()[13];
    Parsed {
        src: SocketAddr::new(src, header.source_port),
        dst: SocketAddr::new(dst, header.destination_port),
        seq: header.sequence_number,
        ack: header.acknowledgment_number,
        flags,
        window: header.window_size,
        options: header.options.as_slice().to_vec(),
        payload: tcp.payload().to_vec(),
    }
}

/// Every byte of `buf`'s chain, joined.
pub fn bytes(buf: &PoolBuf) -> Vec<u8> {
    use tpa::buf::PacketBuf;
    buf.segments().flatten().copied().collect()
}

/// What the TCP stage and calls need.
#[derive(tpa::state::State)]
pub struct TcpState {
    #[polled]
    pub sockets: super::TcpSockets<PoolBuf>,
    pub egress: crate::egress::Egress<PoolBuf>,
    pub events: tpa::app::Events,
}

impl TcpState {
    /// A state with the default configuration, seed 1, the peer known to
    /// egress in both families (what is sent to it leaves at once).
    pub fn new() -> Self {
        TcpState::with_config(super::config::TcpConfig::default())
    }

    /// As [`new`](Self::new), with `cfg`.
    pub fn with_config(cfg: super::config::TcpConfig) -> Self {
        let mut st = TcpState {
            sockets: super::TcpSockets::new(cfg, 1),
            egress: crate::egress::Egress::new(iface()),
            events: tpa::app::Events::default(),
        };
        crate::testing::with_state_at(1, &mut st, |cx| {
            let (state, port) = cx.split();
            let mac = Some(MacAddr(THEM_MAC));
            let heard = crate::neighbor::Heard::Solicitation;
            state.egress.learn_v4(THEM4.into(), mac, heard, port);
            state.egress.learn_v6(v6(THEM6), mac, heard, port);
        });
        st
    }

    /// A listener on `local` (`"0.0.0.0:80"`) with room for `backlog`
    /// connections on this state's interface.
    pub fn listen(&mut self, local: &str, backlog: usize) -> tpa::app::SocketId {
        let iface = self.egress.interface().clone();
        self.sockets
            .listen(local.parse().expect("a socket address"), backlog, &iface)
            .expect("the listener")
    }
}

/// A TCP input stage over a [`TcpState`] and a clock, driven by the
/// test: segments in, the segments it sends (parsed) out.
pub struct Bench {
    pub state: TcpState,
    pub stage: super::TcpInput,
    pub now_ns: u64,
    /// The port claims TSO ([`crate::testing::with_state_on`]).
    pub tso: bool,
    /// Every frame sent so far, whole.
    pub frames: Vec<Vec<u8>>,
}

impl Bench {
    pub fn new(cfg: super::config::TcpConfig) -> Self {
        Bench {
            state: TcpState::with_config(cfg),
            stage: super::TcpInput::default(),
            now_ns: 1_000_000,
            tso: false,
            frames: Vec::new(),
        }
    }

    /// Runs `f` with a context, then the state's poll (the output path);
    /// returns `f`'s result and every segment sent.
    pub fn call<R>(
        &mut self,
        f: impl FnOnce(&mut tpa::stage::Cx<'_, PoolBuf, TcpState>) -> R,
    ) -> (R, Vec<Parsed>) {
        let (r, frames) =
            crate::testing::with_state_on(self.now_ns, self.tso, &mut self.state, |cx| {
                let r = f(cx);
                tpa::state::PolledState::<PoolBuf>::poll(cx);
                r
            });
        self.frames.extend(frames.iter().map(bytes));
        (r, frames.iter().map(|f| parse_tcp(&bytes(f))).collect())
    }

    /// `seg` from the peer through the stage, then the state's poll: the
    /// verdict's name and the segments sent.
    pub fn input(&mut self, v6: bool, seg: &Seg) -> (&'static str, Vec<Parsed>) {
        use tpa::stage::{Stage, Verdict};
        let p = tcp_packet(&segment_frame(v6, seg));
        let stage = &mut self.stage;
        let (v, frames) =
            crate::testing::with_state_on(self.now_ns, self.tso, &mut self.state, |cx| {
                let v = match stage.process(p, cx) {
                    Verdict::Consumed => "consumed",
                    Verdict::Drop(r) => {
                        r.name(<super::TcpInput as Stage<PoolBuf, TcpState>>::CUSTOM_REASONS)
                    }
                    _ => "other",
                };
                tpa::state::PolledState::<PoolBuf>::poll(cx);
                v
            });
        self.frames.extend(frames.iter().map(bytes));
        (v, frames.iter().map(|f| parse_tcp(&bytes(f))).collect())
    }

    /// Moves the clock to `now_ns` and fires the due timers: how many ran
    /// and the segments sent.
    pub fn timers_at(&mut self, now_ns: u64) -> (usize, Vec<Parsed>) {
        self.now_ns = now_ns;
        let (n, frames) = crate::testing::with_state_on(now_ns, self.tso, &mut self.state, |cx| {
            tpa::state::PolledState::<PoolBuf>::fire_timers(cx)
        });
        self.frames.extend(frames.iter().map(bytes));
        (n, frames.iter().map(|f| parse_tcp(&bytes(f))).collect())
    }

    /// The events raised so far, taken.
    pub fn events(&mut self) -> Vec<tpa::app::Event> {
        core::iter::from_fn(|| self.state.events.pop()).collect()
    }
}
