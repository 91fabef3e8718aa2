//! The MSS a connection announces and sends with, from the path.

use std::net::IpAddr;

use tpa::buf::PacketBuf;
use tpa::stage::Cx;
use tpa::state::Part;

use super::sockets::TcpSockets;
use crate::egress::{Egress, IPV4_HEADER_LEN, IPV6_HEADER_LEN};

/// The MSS of a connection from `local`: the path's MTU (the egress
/// path's, capped by the port's) less the IP and TCP headers, capped by
/// the configured MSS when one is set.
pub(crate) fn mss_for<B, S>(cx: &mut Cx<'_, B, S>, local: IpAddr) -> u16
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Egress<B>>,
{
    let port_mtu = cx.caps().mtu;
    let mtu = cx
        .part::<Egress<B>>()
        .config()
        .mtu
        .map_or(port_mtu, |m| m.min(port_mtu));
    let ip = if local.is_ipv4() {
        IPV4_HEADER_LEN
    } else {
        IPV6_HEADER_LEN
    };
    let mss = usize::from(mtu).saturating_sub(ip + 20).max(64) as u16;
    match cx.part::<TcpSockets<B>>().config().mss {
        0 => mss,
        cap => mss.min(cap),
    }
}
