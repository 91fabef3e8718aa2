//! The frames the neighbor step sends on its own: ARP requests (broadcast,
//! or unicast probes) and gratuitous ARP, neighbor solicitations (to the
//! solicited-node group, or unicast probes) and unsolicited neighbor
//! advertisements.

use std::net::{Ipv4Addr, Ipv6Addr};

use tpa::buf::PacketBuf;
use tpa::stage::PortCx;
use tpa::wire::arp::Arp;
use tpa::wire::ethernet::{EtherType, Ethernet};
use tpa::wire::icmpv6::{
    solicited_node, Icmpv6Type, NdpOptionWriter, NeighborAdvertisement, NeighborAdvertisementView,
    NeighborSolicitation,
};
use tpa::wire::ipv4::IpProtocol;
use tpa::wire::ipv6::Ipv6;
use tpa::wire::MacAddr;

use super::ethernet::ipv6_multicast_mac;
use crate::iface::{Interface, ALL_NODES};

/// The hop limit every neighbor discovery message carries (and must arrive
/// with, proving it was not routed).
pub const NDP_HOP_LIMIT: u8 = 255;

/// Length of the ARP frames built here: Ethernet's 60-byte minimum (the
/// 14-byte header and 28-byte ARP packet, padded).
const ARP_FRAME_LEN: usize = 60;

/// Length of an advertisement with a target link-layer address option.
pub(crate) const ADVERTISEMENT_LEN: usize = NeighborAdvertisement::LEN + 8;

/// Length of a solicitation with a source link-layer address option.
const SOLICITATION_LEN: usize = NeighborSolicitation::LEN + 8;

/// An ARP frame to `dst` carrying `arp`, in a buffer from `port`.
fn arp_frame<B: PacketBuf>(port: &mut PortCx<'_, B>, dst: MacAddr, arp: &Arp) -> Option<B> {
    let mut buf = port.alloc()?;
    let bytes = buf.append(ARP_FRAME_LEN).ok()?;
    bytes.fill(0);
    Ethernet {
        dst,
        src: arp.sender_mac,
        ether_type: EtherType::Arp,
    }
    .emit(bytes)
    .ok()?;
    arp.emit(&mut bytes[Ethernet::LEN..]).ok()?;
    Some(buf)
}

/// An ARP request for `target` from our address on its prefix (else our
/// first), broadcast or, probing, unicast to `unicast`. `None` without an
/// IPv4 address or a buffer.
pub(super) fn arp_request<B: PacketBuf>(
    port: &mut PortCx<'_, B>,
    iface: &Interface,
    target: Ipv4Addr,
    unicast: Option<MacAddr>,
) -> Option<B> {
    let source = iface
        .ipv4
        .iter()
        .find(|c| c.contains(target))
        .or(iface.ipv4.first())?
        .addr;
    let request = Arp::request(iface.mac, source, target);
    arp_frame(port, unicast.unwrap_or(MacAddr::BROADCAST), &request)
}

/// A gratuitous ARP for `addr` (RFC 5227's announcement: a broadcast
/// request for our own address, no target MAC).
pub(super) fn gratuitous_arp<B: PacketBuf>(
    port: &mut PortCx<'_, B>,
    mac: MacAddr,
    addr: Ipv4Addr,
) -> Option<B> {
    let mut announcement = Arp::request(mac, addr, addr);
    announcement.target_mac = MacAddr::ZERO;
    arp_frame(port, MacAddr::BROADCAST, &announcement)
}

/// An NDP message from `src` to `dst` (Ethernet `eth_dst`): `message`
/// writes the ICMPv6 part (`len` bytes), whose checksum is filled here.
fn ndp_frame<B: PacketBuf>(
    port: &mut PortCx<'_, B>,
    (eth_src, eth_dst): (MacAddr, MacAddr),
    (src, dst): (Ipv6Addr, Ipv6Addr),
    len: usize,
    message: impl FnOnce(&mut [u8]) -> Option<()>,
) -> Option<B> {
    let mut buf = port.alloc()?;
    let bytes = buf.append(Ethernet::LEN + Ipv6::LEN + len).ok()?;
    bytes.fill(0);
    Ethernet {
        dst: eth_dst,
        src: eth_src,
        ether_type: EtherType::Ipv6,
    }
    .emit(bytes)
    .ok()?;
    let (_, rest) = bytes.split_at_mut(Ethernet::LEN);
    let (ip, icmp) = rest.split_at_mut(Ipv6::LEN);
    Ipv6 {
        version: 6,
        dscp: 0,
        ecn: 0,
        flow_label: 0,
        payload_len: len as u16,
        next_header: IpProtocol::Icmpv6,
        hop_limit: NDP_HOP_LIMIT,
        src,
        dst,
    }
    .emit(ip)
    .ok()?;
    message(icmp)?;
    // NS and NA keep their checksum at the same place; either view fills it.
    NeighborAdvertisementView::new(icmp)
        .ok()?
        .fill_checksum_v6(&src, &dst);
    Some(buf)
}

/// A neighbor solicitation for `target`, to its solicited-node group or,
/// probing, to `unicast`, from our address on its prefix (else our first).
/// `None` without an IPv6 address or a buffer.
pub(super) fn neighbor_solicitation<B: PacketBuf>(
    port: &mut PortCx<'_, B>,
    iface: &Interface,
    target: Ipv6Addr,
    unicast: Option<MacAddr>,
) -> Option<B> {
    let source = iface
        .ipv6
        .iter()
        .find(|c| c.contains(target))
        .or(iface.ipv6.first())?
        .addr;
    let (dst, eth_dst) = match unicast {
        Some(mac) => (target, mac),
        None => {
            let group = solicited_node(&target);
            (group, ipv6_multicast_mac(group))
        }
    };
    ndp_frame(
        port,
        (iface.mac, eth_dst),
        (source, dst),
        SOLICITATION_LEN,
        |icmp| {
            NeighborSolicitation {
                msg_type: Icmpv6Type::NeighborSolicitation,
                code: 0,
                checksum: 0,
                reserved: 0,
                target,
            }
            .emit(icmp)
            .ok()?;
            NdpOptionWriter::new(&mut icmp[NeighborSolicitation::LEN..])
                .source_link_addr(iface.mac)
                .ok()
        },
    )
}

/// An unsolicited advertisement of `addr` at `mac`, to all-nodes, with the
/// override flag.
pub(super) fn unsolicited_advertisement<B: PacketBuf>(
    port: &mut PortCx<'_, B>,
    mac: MacAddr,
    addr: Ipv6Addr,
) -> Option<B> {
    ndp_frame(
        port,
        (mac, ipv6_multicast_mac(ALL_NODES)),
        (addr, ALL_NODES),
        ADVERTISEMENT_LEN,
        |icmp| {
            NeighborAdvertisement {
                msg_type: Icmpv6Type::NeighborAdvertisement,
                code: 0,
                checksum: 0,
                router: false,
                solicited: false,
                override_entry: true,
                reserved: 0,
                target: addr,
            }
            .emit(icmp)
            .ok()?;
            NdpOptionWriter::new(&mut icmp[NeighborAdvertisement::LEN..])
                .target_link_addr(mac)
                .ok()
        },
    )
}
