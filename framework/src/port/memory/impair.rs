//! What can go wrong on one direction of a wire.

use std::time::Duration;

/// The impairment of one direction of a [`MemoryWire`](super::MemoryWire).
/// Everything is off by default; set the fields you want:
///
/// ```
/// use std::time::Duration;
/// use tpa::port::memory::Impairment;
/// let lossy = Impairment { drop: 0.01, delay: Duration::from_millis(5), ..Impairment::default() };
/// assert!(!lossy.is_transparent());
/// assert!(Impairment::default().is_transparent());
/// ```
///
/// Per packet, in this order: partition, random drop, bandwidth queue
/// (tail-drop), truncate, corrupt, delay + jitter, duplicate, reorder.
/// Probabilities are clamped to `0.0..=1.0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Impairment {
    /// Probability that a packet is lost.
    pub drop: f64,
    /// Probability that a packet arrives twice (the copy right behind it).
    pub duplicate: f64,
    /// Probability that a packet is held back behind later ones.
    pub reorder: f64,
    /// A held-back packet lets 1 to `reorder_distance` later packets pass
    /// (uniformly chosen; at least 1).
    pub reorder_distance: u32,
    /// A held-back packet is released after this long even if no later
    /// packets came.
    pub reorder_timeout: Duration,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter` per packet (packets may overtake
    /// each other).
    pub jitter: Duration,
    /// Probability that a packet is cut to a random shorter length
    /// (uniform in `0..len`).
    pub truncate: f64,
    /// Probability that a packet has bits flipped.
    pub corrupt: f64,
    /// How many distinct bits a corrupted packet has flipped (at most 64, and
    /// at most the packet's bit count).
    pub corrupt_bits: u32,
    /// What becomes of a corrupted packet: delivered (the default) or
    /// dropped by the receiver's FCS check.
    pub corruption: Corruption,
    /// Lane rate in bits per second (`None`: unlimited). Packets queue behind
    /// each other for their serialization time.
    pub bandwidth_bps: Option<u64>,
    /// Tail-drop when this many packets wait for the lane (with a bandwidth).
    pub queue_packets: Option<usize>,
    /// Tail-drop when this many bytes wait for the lane (with a bandwidth).
    pub queue_bytes: Option<usize>,
}

impl Default for Impairment {
    fn default() -> Self {
        Impairment {
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_distance: 3,
            reorder_timeout: Duration::from_millis(10),
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            truncate: 0.0,
            corrupt: 0.0,
            corrupt_bits: 1,
            corruption: Corruption::Delivered,
            bandwidth_bps: None,
            queue_packets: None,
            queue_bytes: None,
        }
    }
}

/// Where a packet's flipped bits happened, which decides who catches them
/// ([`Impairment::corruption`]).
///
/// On a real link a bit flipped on the wire fails the Ethernet frame check
/// sequence (CRC-32), and the receiving NIC drops the frame: higher layers
/// never see link corruption. What reaches them was corrupted past that
/// check (a switch's or a host's memory, a bus), rare on a real network,
/// and left to the IPv4, ICMP, UDP and TCP checksums to catch; ARP has no
/// checksum, so a flipped bit in an ARP reply is believed.
///
/// ```
/// use tpa::port::memory::{Corruption, Impairment};
/// let link = Impairment { corrupt: 0.01, corruption: Corruption::Fcs, ..Impairment::default() };
/// assert_eq!(Impairment::default().corruption, Corruption::Delivered);
/// # let _ = link;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Corruption {
    /// Past the FCS: the packet is delivered with its bits flipped, for the
    /// checksums to catch (checksum tests; ARP believes it).
    #[default]
    Delivered,
    /// On the link: the receiver's FCS check fails and the frame is dropped,
    /// counted in [`Drops::fcs`](super::Drops::fcs) (and in `corrupted`).
    Fcs,
}

impl Impairment {
    /// No impairment at all (the default).
    pub fn none() -> Impairment {
        Impairment::default()
    }

    /// Whether packets pass untouched and at once (the fast path).
    pub fn is_transparent(&self) -> bool {
        self.drop <= 0.0
            && self.duplicate <= 0.0
            && self.reorder <= 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.truncate <= 0.0
            && self.corrupt <= 0.0
            && self.bandwidth_bps.is_none()
    }
}
