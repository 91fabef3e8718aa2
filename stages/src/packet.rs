//! The typed packets that flow between the bundled stages.
//!
//! Each type is a buffer plus a promise about what is in it, made by the
//! stage that produced it: an [`ArpFrame`] is an Ethernet frame whose
//! EtherType is ARP, an [`Ipv4Packet`] an IPv4 datagram addressed to us
//! whose header was checked, and so on. The offsets of the parsed layers are
//! kept in the buffer's [`Meta`](tpa::buf::Meta) (`layers.l3`, `layers.l4`),
//! so later stages do not parse again. The types are what `#[pipeline]`
//! checks: a stage taking an `Ipv4Packet` cannot be placed where raw frames
//! arrive.
//!
//! Accessors never panic: if a producer left an offset beyond the data, the
//! layer reads as empty and the consuming stage drops the packet as too
//! short.

use tpa::buf::PacketBuf;

macro_rules! typed_packet {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<B>(B);

        impl<B: PacketBuf> $name<B> {
            /// Wraps a buffer for which the producing stage checked what this
            /// type promises and set the layer offsets in its metadata.
            #[inline]
            pub fn new(buf: B) -> Self {
                $name(buf)
            }

            /// The buffer.
            #[inline]
            pub fn buf(&self) -> &B {
                &self.0
            }

            /// The buffer, writable.
            #[inline]
            pub fn buf_mut(&mut self) -> &mut B {
                &mut self.0
            }

            /// Gives the buffer back (to transmit it, say).
            #[inline]
            pub fn into_buf(self) -> B {
                self.0
            }

            /// Offset of the network-layer header from the start of the frame.
            #[inline]
            pub fn l3_offset(&self) -> usize {
                usize::from(self.0.meta().layers.l3)
            }

            /// The network layer: the frame from its network-layer header on.
            #[inline]
            pub fn l3(&self) -> &[u8] {
                self.0.data().get(self.l3_offset()..).unwrap_or(&[])
            }

            /// The network layer, writable.
            #[inline]
            pub fn l3_mut(&mut self) -> &mut [u8] {
                let offset = self.l3_offset();
                self.0.data_mut().get_mut(offset..).unwrap_or(&mut [])
            }
        }
    };
}

macro_rules! transport_layer {
    ($name:ident) => {
        impl<B: PacketBuf> $name<B> {
            /// Offset of the transport-layer header from the start of the frame.
            #[inline]
            pub fn l4_offset(&self) -> usize {
                usize::from(self.0.meta().layers.l4)
            }

            /// The transport layer (ICMP message, TCP segment…): the frame from
            /// its transport header to the end of the datagram.
            #[inline]
            pub fn l4(&self) -> &[u8] {
                self.0.data().get(self.l4_offset()..).unwrap_or(&[])
            }

            /// The frame split at the transport layer: everything before it
            /// (Ethernet and IP headers) and the transport layer, both writable.
            #[inline]
            pub fn split_l4_mut(&mut self) -> (&mut [u8], &mut [u8]) {
                let offset = self.l4_offset();
                let data = self.0.data_mut();
                if offset <= data.len() {
                    data.split_at_mut(offset)
                } else {
                    (data, &mut [])
                }
            }
        }
    };
}

typed_packet! {
    /// An Ethernet frame whose EtherType is ARP; the ARP packet starts at
    /// `l3_offset()`.
    ArpFrame
}

typed_packet! {
    /// An Ethernet frame whose EtherType is IPv4, for us at the link layer;
    /// the IP header (not yet checked) starts at `l3_offset()`.
    Ipv4Frame
}

typed_packet! {
    /// An Ethernet frame whose EtherType is IPv6, for us at the link layer;
    /// the IP header (not yet checked) starts at `l3_offset()`.
    Ipv6Frame
}

typed_packet! {
    /// An IPv4 datagram addressed to one of our addresses: header checked
    /// (version, length, checksum), not a fragment, link-layer padding
    /// trimmed; the transport layer starts at `l4_offset()`.
    Ipv4Packet
}

typed_packet! {
    /// An IPv6 packet addressed to us (one of our addresses or a multicast
    /// group we are in): header checked, no extension headers, link-layer
    /// padding trimmed; the transport layer starts at `l4_offset()`.
    Ipv6Packet
}

transport_layer!(Ipv4Packet);
transport_layer!(Ipv6Packet);
