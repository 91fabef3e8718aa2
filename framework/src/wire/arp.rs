//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! ```
//! use std::net::Ipv4Addr;
//! use tpa::wire::arp::{Arp, ArpOperation, ArpView};
//! use tpa::wire::MacAddr;
//!
//! let request = Arp::request(MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let mut buf = [0u8; Arp::LEN];
//! request.emit(&mut buf).unwrap();
//! let view = ArpView::new(&buf[..]).unwrap();
//! assert!(view.is_ethernet_ipv4());
//! assert_eq!(view.operation(), ArpOperation::Request);
//! assert_eq!(view.target_ip(), Ipv4Addr::new(10, 0, 0, 2));
//! ```

use std::net::Ipv4Addr;

use crate::header;
use crate::header::Bytes;
use crate::wire::ethernet::EtherType;
use crate::wire::MacAddr;

crate::field_enum! {
    /// The ARP operation.
    pub enum ArpOperation: u16 {
        /// Who has `target_ip`?
        Request = 1,
        /// `sender_ip` is at `sender_mac`.
        Reply = 2,
    }
}

/// The hardware type of Ethernet.
pub const HARDWARE_ETHERNET: u16 = 1;

/// An ARP packet for Ethernet hardware and IPv4 protocol addresses (28 bytes).
///
/// The layout is fixed to 6-byte hardware and 4-byte protocol addresses;
/// check [`ArpView::is_ethernet_ipv4`] before trusting the address fields of
/// a received packet.
#[header]
pub struct Arp {
    /// Hardware type ([`HARDWARE_ETHERNET`]).
    pub hardware_type: u16,
    /// Protocol type ([`EtherType::Ipv4`]).
    #[field(u16)]
    pub protocol_type: EtherType,
    /// Length of a hardware address in bytes (6).
    pub hardware_addr_len: u8,
    /// Length of a protocol address in bytes (4).
    pub protocol_addr_len: u8,
    /// Request or reply.
    #[field(u16)]
    pub operation: ArpOperation,
    /// The sender's MAC address.
    pub sender_mac: MacAddr,
    /// The sender's IPv4 address.
    pub sender_ip: Ipv4Addr,
    /// The target's MAC address (zero in a request).
    pub target_mac: MacAddr,
    /// The target's IPv4 address.
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// A request: who has `target_ip`? Tell `sender_ip` at `sender_mac`.
    pub fn request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Self {
        Arp {
            hardware_type: HARDWARE_ETHERNET,
            protocol_type: EtherType::Ipv4,
            hardware_addr_len: 6,
            protocol_addr_len: 4,
            operation: ArpOperation::Request,
            sender_mac,
            sender_ip,
            target_mac: MacAddr::ZERO,
            target_ip,
        }
    }

    /// The reply to `request` from the owner of its target address, `mac`.
    pub fn reply_to(request: &Arp, mac: MacAddr) -> Self {
        Arp {
            hardware_type: HARDWARE_ETHERNET,
            protocol_type: EtherType::Ipv4,
            hardware_addr_len: 6,
            protocol_addr_len: 4,
            operation: ArpOperation::Reply,
            sender_mac: mac,
            sender_ip: request.target_ip,
            target_mac: request.sender_mac,
            target_ip: request.sender_ip,
        }
    }
}

impl<B: Bytes> ArpView<B> {
    /// Whether the packet is for Ethernet and IPv4 (hardware type 1,
    /// protocol 0x0800, address lengths 6 and 4), the only layout whose
    /// address fields this view reads correctly.
    #[inline]
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.hardware_type() == HARDWARE_ETHERNET
            && self.protocol_type() == EtherType::Ipv4
            && self.hardware_addr_len() == 6
            && self.protocol_addr_len() == 4
    }
}
