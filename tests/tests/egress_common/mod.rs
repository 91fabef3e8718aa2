//! A host that sends through the egress path: the pipeline and the
//! application the MemoryWire and kernel egress tests share.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::VecDeque;
use std::net::IpAddr;

use tpa::app::{App, Events, SocketError, SocketId};
use tpa::buf::{L4Protocol, PacketBuf};
use tpa::port::Port;
use tpa::stage::{Cx, Reason};
use tpa::state::State;
use tpa::wire::ipv4::IpProtocol;
use tpa_stages::arp::ArpResponder;
use tpa_stages::discard::Discard;
use tpa_stages::egress::{send_ip, Egress, IpSend, Sent};
use tpa_stages::ethernet::{ethernet_front, EthernetFront, OtherFrames};
use tpa_stages::iface::Interface;
use tpa_stages::ipv4::Ipv4Input;
use tpa_stages::ipv6::Ipv6Input;
use tpa_stages::ndp::NdpResponder;
use tpa_stages::packet::{Ipv4Packet, Ipv6Packet};

/// The host's state: the output path and the socket events.
#[derive(State)]
pub struct Net<B> {
    /// The output path.
    #[polled]
    pub egress: Egress<B>,
    /// Events for the application.
    pub events: Events,
}

/// One UDP datagram to send.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// To this address.
    pub dst: IpAddr,
    /// From this port to that one.
    pub ports: (u16, u16),
    /// The data.
    pub data: Vec<u8>,
    /// The socket it belongs to.
    pub owner: Option<SocketId>,
}

/// An application that sends queued datagrams from its poll (the UDP
/// header built here, its checksum asked of the port) and records what
/// became of them and the errors its sockets were told.
#[derive(Debug, Default)]
pub struct Sender {
    /// Waiting to be sent.
    pub queue: VecDeque<Datagram>,
    /// What `send_ip` said, in order.
    pub results: Vec<Result<Sent, SocketError>>,
    /// The errors raised for its sockets.
    pub errors: Vec<(SocketId, SocketError)>,
}

impl<B: PacketBuf> App<B, Net<B>> for Sender {
    fn error(&mut self, socket: SocketId, error: SocketError, _cx: &mut Cx<'_, B, Net<B>>) {
        self.errors.push((socket, error));
    }

    fn poll(&mut self, cx: &mut Cx<'_, B, Net<B>>) -> usize {
        let mut sent = 0;
        while let Some(d) = self.queue.pop_front() {
            let Some(mut buf) = cx.alloc() else {
                self.results.push(Err(SocketError::NoBuffers));
                continue;
            };
            let len = 8 + d.data.len();
            let Ok(udp) = buf.append(len) else {
                self.results.push(Err(SocketError::MessageTooLong));
                continue;
            };
            udp[..2].copy_from_slice(&d.ports.0.to_be_bytes());
            udp[2..4].copy_from_slice(&d.ports.1.to_be_bytes());
            udp[4..6].copy_from_slice(&(len as u16).to_be_bytes());
            udp[6..8].fill(0);
            udp[8..].copy_from_slice(&d.data);
            buf.meta_mut().tx.request_l4_checksum(L4Protocol::Udp);
            let egress: &Egress<B> = cx.part();
            let Some(src) = egress.source_for(d.dst) else {
                self.results.push(Err(SocketError::AddressNotAvailable));
                continue;
            };
            let ip = IpSend {
                src,
                dst: d.dst,
                protocol: IpProtocol::Udp,
                hop_limit: None,
                owner: d.owner,
            };
            self.results.push(send_ip(cx, buf, ip));
            sent += 1;
        }
        sent
    }
}

/// The IPv4 branch: input checks, then everything dropped.
pub type V4<B> = (Ipv4Input, Discard<Ipv4Packet<B>>);
/// The IPv6 branch: input checks, neighbor discovery, the rest dropped.
pub type V6<B> = (Ipv6Input, NdpResponder, Discard<Ipv6Packet<B>>);

/// The host's stages: ARP, IPv4 input, IPv6 input and NDP.
pub type Front<B> = EthernetFront<B, ArpResponder, V4<B>, V6<B>>;

/// A host that answers ARP and NDP and sends what its app queues.
#[tpa::pipeline]
pub struct Host<P: Port> {
    #[port]
    pub port: P,
    #[state]
    pub net: Net<P::Buf>,
    #[app]
    pub app: Sender,
    front: Front<P::Buf>,
}

/// A host on `port` for `egress`'s interface.
pub fn host<P: Port>(port: P, egress: Egress<P::Buf>) -> Host<P> {
    let iface: Interface = egress.interface().clone();
    let front = ethernet_front(
        iface.mac,
        OtherFrames::Drop,
        ArpResponder::new(),
        (
            Ipv4Input::new(iface.clone()),
            Discard::new(Reason::UNSUPPORTED),
        ),
        (
            Ipv6Input::new(iface.clone()),
            NdpResponder::new(),
            Discard::new(Reason::UNSUPPORTED),
        ),
    );
    let net = Net {
        egress,
        events: Events::default(),
    };
    Host::new(port, net, Sender::default(), front)
}
