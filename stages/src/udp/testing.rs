//! Helpers for the UDP unit tests: a state with sockets, egress and
//! events, frames from a peer, and a context to run calls in.

use std::net::{IpAddr, Ipv6Addr};

use etherparse::PacketBuilder;
use tpa::app::Events;
use tpa::buf::PoolBuf;
use tpa::state::State;
use tpa::wire::MacAddr;

use super::UdpSockets;
use crate::egress::Egress;
use crate::iface::Interface;
use crate::neighbor::Heard;
use crate::packet::{Ipv4Packet, Ipv6Packet, UdpPacket};
pub use crate::testing::with_state_at;

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

/// What the UDP stage and calls need.
#[derive(State)]
pub struct UdpState {
    pub sockets: UdpSockets<PoolBuf>,
    pub egress: Egress<PoolBuf>,
    pub events: Events,
}

impl UdpState {
    pub fn new() -> Self {
        UdpState {
            sockets: UdpSockets::default(),
            egress: Egress::new(iface()),
            events: Events::default(),
        }
    }

    /// Teaches egress where the peer is (both families), so what is sent
    /// to it leaves at once.
    pub fn know_peer(&mut self) {
        with_state_at(1, self, |cx| {
            let (state, port) = cx.split();
            let mac = Some(MacAddr(THEM_MAC));
            state
                .egress
                .learn_v4(THEM4.into(), mac, Heard::Solicitation, port);
            state
                .egress
                .learn_v6(v6(THEM6), mac, Heard::Solicitation, port);
        });
    }
}

/// A UDP datagram from the peer to us, as a frame.
pub fn frame_to_us(v6: bool, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let eth = PacketBuilder::ethernet2(THEM_MAC, US_MAC);
    if v6 {
        eth.ipv6(self::v6(THEM6).octets(), self::v6(US6).octets(), 64)
            .udp(src_port, dst_port)
            .write(&mut out, payload)
            .unwrap();
    } else {
        eth.ipv4(THEM4, US4, 64)
            .udp(src_port, dst_port)
            .write(&mut out, payload)
            .unwrap();
    }
    out
}

/// `bytes` (an Ethernet frame with UDP inside) through the IP input
/// checks, as the UDP stage receives it.
pub fn udp_packet(bytes: &[u8]) -> UdpPacket<PoolBuf> {
    let buf = crate::testing::frame(bytes);
    if bytes[12..14] == [0x86, 0xdd] {
        UdpPacket::from_ipv6(Ipv6Packet::parse(buf, &iface()).unwrap()).unwrap()
    } else {
        UdpPacket::from_ipv4(Ipv4Packet::parse(buf, &iface()).unwrap()).unwrap()
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
