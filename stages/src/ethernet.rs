//! The Ethernet front of a pipeline: checks a frame is for us and sends it
//! down the ARP, IPv4 or IPv6 branch by its EtherType.
//!
//! [`EthernetClassify`] is the classifier; [`ethernet_front`] builds the
//! whole three-way branch out of two [`Demux`]es, the inner one classified by
//! [`Split`]:
//!
//! ```text
//!   frame ─► EthernetClassify ─┬─► ARP branch             (ArpFrame)
//!                              └─► Split ─┬─► IPv4 branch (Ipv4Frame)
//!                                         └─► IPv6 branch (Ipv6Frame)
//! ```
//!
//! Frames of other EtherTypes (and VLAN-tagged ones) are dropped as
//! `unsupported` or handed to the host, as configured.

use tpa::buf::{Meta, PacketBuf};
use tpa::stage::{Cx, Demux, Fork, Reason, Split, Stage, Verdict};
use tpa::wire::ethernet::EtherType;
use tpa::wire::MacAddr;

use crate::iface::Interface;
use crate::packet::{
    ArpFrame, Ipv4Frame, Ipv6Frame, Layer, PacketError, PacketErrorKind, Rejected,
};

/// Length of an Ethernet II header.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// What to do with a frame none of the branches takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtherFrames {
    /// Drop it, counted as `unsupported`.
    #[default]
    Drop,
    /// Hand it to the host stack.
    ToHost,
}

/// What [`EthernetClassify`] passes on: ARP left, IP right (then IPv4 left,
/// IPv6 right).
pub type EthernetFork<B> = Fork<ArpFrame<B>, Fork<Ipv4Frame<B>, Ipv6Frame<B>>>;

/// Classifies Ethernet II frames by EtherType, after checking the
/// destination MAC is ours, broadcast or multicast (`not-for-us`
/// otherwise), the source is not a group address (`malformed`) and the
/// frame holds a whole header (`too-short`). Records the
/// network layer's offset in the buffer's metadata.
#[derive(Debug, Clone)]
pub struct EthernetClassify {
    mac: MacWord,
    other: OtherFrames,
}

impl EthernetClassify {
    /// A classifier for frames to `mac`.
    pub fn new(mac: MacAddr, other: OtherFrames) -> Self {
        EthernetClassify {
            mac: MacWord::new(mac),
            other,
        }
    }
}

/// A MAC address as a frame's first eight bytes, read little-endian, hold
/// its destination: the six bytes in the low 48 bits. [`check`] compares
/// it with one load of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MacWord(u64);

impl MacWord {
    /// The low 48 bits: the six bytes of an address.
    const MASK: u64 = 0xffff_ffff_ffff;
    /// [`MASK`](Self::MASK) and the next byte's low bit: the source's
    /// group bit, 0 in a station's address.
    const DST_AND_SRC_GROUP_BIT: u64 = 0x1_ffff_ffff_ffff;

    fn new(mac: MacAddr) -> Self {
        let [a, b, c, d, e, f] = mac.0;
        MacWord(u64::from_le_bytes([a, b, c, d, e, f, 0, 0]))
    }
}

/// [`EthernetClassify`]'s checks on a frame's bytes: a whole header
/// (`too-short`), a destination that is `mac` or a group (`not-for-us`), a
/// source that is not a group (`malformed`). Gives the EtherType.
#[inline]
fn check(data: &[u8], mac: MacWord) -> Result<EtherType, PacketError> {
    let error = |kind| PacketError::new(Layer::Ethernet, data.len(), kind);
    let Some(header) = data.first_chunk::<ETHERNET_HEADER_LEN>() else {
        return Err(error(PacketErrorKind::Truncated {
            needed: ETHERNET_HEADER_LEN,
        }));
    };
    // The destination and the source's first two bytes, in one load: the
    // common frame (to us, from a station) in one compare.
    let (head, _) = header.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
    let head = u64::from_le_bytes(*head);
    let ether_type = EtherType::from(u16::from_be_bytes([header[12], header[13]]));
    if head & MacWord::DST_AND_SRC_GROUP_BIT == mac.0 {
        return Ok(ether_type);
    }
    if head & MacWord::MASK != mac.0 && head & 1 == 0 {
        // Not ours and not a group (the first byte's low bit).
        return Err(error(PacketErrorKind::NotForUs { field: "dst" }));
    }
    if header[6] & 1 != 0 {
        // A group address as the source: no station sends from one.
        return Err(error(PacketErrorKind::Malformed { field: "src" }));
    }
    Ok(ether_type)
}

/// `e`, [`check`]'s error on the first segment of `buf`, as `chained`
/// when the header continues in a later segment (a chained frame).
#[cold]
fn chained_error<B: PacketBuf>(e: PacketError, buf: &B) -> PacketError {
    match e.kind {
        PacketErrorKind::Truncated { needed } if buf.is_chained() => PacketError::new(
            Layer::Ethernet,
            buf.total_len(),
            PacketErrorKind::Chained { needed },
        ),
        _ => e,
    }
}

/// Records the layer offsets of a checked Ethernet II frame.
#[inline]
fn set_layers(meta: &mut Meta) {
    meta.layers.l2 = 0;
    meta.layers.l3 = ETHERNET_HEADER_LEN as u16;
}

/// `buf` if [`EthernetClassify`] would pass it down the branch of `want`,
/// with its layer offsets recorded: the checked way to the typed frames.
#[inline]
pub(crate) fn classify_as<B: PacketBuf>(
    mut buf: B,
    mac: MacAddr,
    want: EtherType,
) -> Result<B, Rejected<B>> {
    match check(buf.data(), MacWord::new(mac)).map_err(|e| chained_error(e, &buf)) {
        // ARP reads one segment only.
        Ok(EtherType::Arp) if want == EtherType::Arp && buf.is_chained() => {
            let kind = PacketErrorKind::Chained {
                needed: buf.total_len(),
            };
            let error = PacketError::new(Layer::Ethernet, buf.len(), kind);
            Err(Rejected::new(error, buf))
        }
        Ok(ether_type) if ether_type == want => {
            set_layers(buf.meta_mut());
            Ok(buf)
        }
        Ok(_) => {
            let kind = PacketErrorKind::Unsupported {
                field: "ether_type",
            };
            let error = PacketError::new(Layer::Ethernet, buf.len(), kind);
            Err(Rejected::new(error, buf))
        }
        Err(error) => Err(Rejected::new(error, buf)),
    }
}

impl<B: PacketBuf, S> Stage<B, S> for EthernetClassify {
    type In = B;
    type Out = EthernetFork<B>;
    const ROUTES_IN_ARMS: bool = true;

    #[inline(always)]
    fn prefetch(&self, frame: &B) {
        frame.prefetch();
    }

    #[inline]
    fn process(&mut self, frame: B, cx: &mut Cx<'_, B, S>) -> Verdict<Self::Out, B> {
        self.process_then(frame, cx, |verdict, _| verdict)
    }

    /// Calls `then` in each arm, so that the [`Demux`]es of
    /// [`ethernet_front`] go straight to the branch.
    #[inline]
    fn process_then<R>(
        &mut self,
        mut frame: B,
        cx: &mut Cx<'_, B, S>,
        then: impl FnOnce(Verdict<Self::Out, B>, &mut Cx<'_, B, S>) -> R,
    ) -> R {
        let ether_type = match check(frame.data(), self.mac) {
            Ok(ether_type) => ether_type,
            Err(e) => return then(Verdict::Drop(chained_error(e, &frame).reason()), cx),
        };
        set_layers(frame.meta_mut());
        // A chained ARP frame goes on: the ARP responder drops it.
        match ether_type {
            EtherType::Arp => then(
                Verdict::Pass(Fork::Left(ArpFrame::new_unchecked(frame))),
                cx,
            ),
            EtherType::Ipv4 => then(
                Verdict::Pass(Fork::Right(Fork::Left(Ipv4Frame::new_unchecked(frame)))),
                cx,
            ),
            EtherType::Ipv6 => then(
                Verdict::Pass(Fork::Right(Fork::Right(Ipv6Frame::new_unchecked(frame)))),
                cx,
            ),
            _ => match self.other {
                OtherFrames::Drop => then(Verdict::Drop(Reason::UNSUPPORTED), cx),
                OtherFrames::ToHost => then(Verdict::ToHost(frame), cx),
            },
        }
    }
}

/// The Ethernet front: [`EthernetClassify`] then the ARP, IPv4 and IPv6
/// branches, as one stage.
pub type EthernetFront<B, A, V4, V6> =
    Demux<EthernetClassify, A, Demux<Split<Ipv4Frame<B>, Ipv6Frame<B>>, V4, V6>>;

/// Builds the Ethernet front for frames to `mac` with its three branches
/// (each a stage or a tuple of stages, all passing on the same type).
pub fn ethernet_front<B, A, V4, V6>(
    mac: MacAddr,
    other: OtherFrames,
    arp: A,
    ipv4: V4,
    ipv6: V6,
) -> EthernetFront<B, A, V4, V6> {
    Demux::new(
        EthernetClassify::new(mac, other),
        arp,
        Demux::new(Split::new(), ipv4, ipv6),
    )
}

macro_rules! frame_parse {
    ($name:ident, $ether_type:ident, $what:literal) => {
        impl<B: PacketBuf> $name<B> {
            #[doc = concat!(
                "Checks that `buf` is an Ethernet frame ", $what, " to `iface` at the link layer, ",
                "as [`EthernetClassify`] does (a whole header, ",
                "a destination MAC that is `iface`'s or a group's, a source that is not a group), ",
                "and records the layer offsets.\n\n# Errors\n\nAn [`Ethernet`](Layer::Ethernet) ",
                "[`PacketError`], with the buffer back."
            )]
            #[inline]
            pub fn parse(buf: B, iface: &Interface) -> Result<Self, Rejected<B>> {
                classify_as(buf, iface.mac, EtherType::$ether_type)
                    .map($name::new_unchecked)
            }
        }
    };
}

frame_parse!(ArpFrame, Arp, "whose EtherType is ARP,");
frame_parse!(Ipv4Frame, Ipv4, "whose EtherType is IPv4,");
frame_parse!(Ipv6Frame, Ipv6, "whose EtherType is IPv6,");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{frame, pool, with_cx, BufferPool};
    use core::convert::Infallible;
    use core::marker::PhantomData;
    use tpa::buf::PoolBuf;
    use tpa::port::Burst;
    use tpa::wire::ethernet::Ethernet;

    const US: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const THEM: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn the_one_load_check_decides_as_the_address_compares() {
        let macs = [
            US,
            THEM,
            MacAddr([3, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 1, 1]),
            MacAddr([2, 0, 0, 0, 0, 0x81]),
            MacAddr([0x82, 0, 0, 0, 0, 1]),
            MacAddr([0xff; 6]),
            MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]),
        ];
        for dst in macs {
            for src in macs {
                let mut bytes = vec![0u8; 14];
                bytes[..6].copy_from_slice(&dst.0);
                bytes[6..12].copy_from_slice(&src.0);
                bytes[12..].copy_from_slice(&[0x08, 0x00]);
                let want = if dst != US && !dst.is_multicast() {
                    Err(PacketErrorKind::NotForUs { field: "dst" })
                } else if src.is_multicast() {
                    Err(PacketErrorKind::Malformed { field: "src" })
                } else {
                    Ok(EtherType::Ipv4)
                };
                let got = check(&bytes, MacWord::new(US)).map_err(|e| e.kind);
                assert_eq!(got, want, "dst {dst:?} src {src:?}");
            }
        }
    }

    fn eth(dst: MacAddr, ether_type: EtherType) -> Vec<u8> {
        let mut bytes = vec![0u8; 60];
        Ethernet {
            dst,
            src: THEM,
            ether_type,
        }
        .emit(&mut bytes)
        .unwrap();
        bytes
    }

    fn classify(bytes: &[u8], other: OtherFrames) -> &'static str {
        let mut stage = EthernetClassify::new(US, other);
        let verdict = with_cx(|cx| stage.process(frame(bytes), cx));
        match verdict {
            Verdict::Pass(Fork::Left(a)) => {
                assert_eq!(a.l3_offset(), 14);
                "arp"
            }
            Verdict::Pass(Fork::Right(Fork::Left(v4))) => {
                assert_eq!(v4.l3().len(), 60 - 14);
                "ipv4"
            }
            Verdict::Pass(Fork::Right(Fork::Right(_))) => "ipv6",
            Verdict::Drop(r) => r.name(&[]),
            Verdict::ToHost(_) => "to-host",
            _ => "other",
        }
    }

    #[test]
    fn frames_go_down_the_branch_of_their_ether_type() {
        assert_eq!(classify(&eth(US, EtherType::Arp), OtherFrames::Drop), "arp");
        assert_eq!(
            classify(&eth(MacAddr::BROADCAST, EtherType::Arp), OtherFrames::Drop),
            "arp"
        );
        assert_eq!(
            classify(&eth(US, EtherType::Ipv4), OtherFrames::Drop),
            "ipv4"
        );
        let multicast = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(
            classify(&eth(multicast, EtherType::Ipv6), OtherFrames::Drop),
            "ipv6"
        );
        pool().assert_whole();
    }

    /// Consumes its frame, recording which branch took it.
    struct Branch<P>(&'static str, Vec<&'static str>, PhantomData<fn(P)>);
    impl<P> Branch<P> {
        fn new(name: &'static str) -> Self {
            Branch(name, Vec::new(), PhantomData)
        }
    }
    impl<B: PacketBuf, P> Stage<B> for Branch<P> {
        type In = P;
        type Out = Infallible;
        fn process(&mut self, _: P, _: &mut Cx<'_, B>) -> Verdict<Infallible, B> {
            self.1.push(self.0);
            Verdict::Consumed
        }
    }

    fn verdict_name<B>(verdict: &Verdict<Infallible, B>) -> &'static str {
        match verdict {
            Verdict::Consumed => "consumed",
            Verdict::Drop(r) => r.name(&[]),
            Verdict::ToHost(_) => "to-host",
            _ => "other",
        }
    }

    #[test]
    fn the_front_takes_a_burst_as_it_takes_its_frames_one_by_one() {
        let frames = [
            eth(US, EtherType::Ipv4),
            eth(US, EtherType::Arp),
            eth(THEM, EtherType::Ipv4),
            eth(US, EtherType::Ipv6),
            eth(US, EtherType::Vlan),
            eth(US, EtherType::Ipv4),
        ];
        let front = || {
            ethernet_front(
                US,
                OtherFrames::ToHost,
                Branch::new("arp"),
                Branch::new("ipv4"),
                Branch::new("ipv6"),
            )
        };
        let mut one_by_one = front();
        let singly: Vec<_> = frames
            .iter()
            .map(|f| verdict_name(&with_cx(|cx| one_by_one.process(frame(f), cx))))
            .collect();
        let mut burst_front = front();
        let mut burst: Burst<_, 8> = Burst::new();
        for f in &frames {
            burst.push(frame(f));
        }
        let mut burst_verdicts = Vec::new();
        with_cx(|cx| {
            burst_front.process_burst(&mut burst, cx, |verdict, _| {
                burst_verdicts.push(verdict_name(&verdict));
            })
        });
        assert_eq!(
            singly,
            [
                "consumed",
                "consumed",
                "not-for-us",
                "consumed",
                "to-host",
                "consumed"
            ]
        );
        assert_eq!(burst_verdicts, singly);
        type Front = EthernetFront<
            PoolBuf,
            Branch<ArpFrame<PoolBuf>>,
            Branch<Ipv4Frame<PoolBuf>>,
            Branch<Ipv6Frame<PoolBuf>>,
        >;
        let taken = |f: &Front| [f.left.1.len(), f.right.left.1.len(), f.right.right.1.len()];
        assert_eq!(taken(&burst_front), [1, 2, 1]);
        assert_eq!(taken(&burst_front), taken(&one_by_one));
        pool().assert_whole();
    }

    #[test]
    fn others_are_dropped_or_go_to_the_host() {
        assert_eq!(
            classify(&eth(THEM, EtherType::Ipv4), OtherFrames::Drop),
            "not-for-us"
        );
        assert_eq!(
            classify(&eth(US, EtherType::Vlan), OtherFrames::Drop),
            "unsupported"
        );
        assert_eq!(
            classify(&eth(US, EtherType::from(0x88cc)), OtherFrames::ToHost),
            "to-host"
        );
        assert_eq!(
            classify(&eth(US, EtherType::Ipv4)[..13], OtherFrames::Drop),
            "too-short"
        );
        assert_eq!(classify(&[], OtherFrames::Drop), "too-short");
        let mut from_group = eth(US, EtherType::Ipv4);
        from_group[6] = 0x01;
        assert_eq!(classify(&from_group, OtherFrames::Drop), "malformed");
        pool().assert_whole();
    }

    #[test]
    fn a_chained_frame_goes_on_unless_its_header_crosses_the_first_segment() {
        let mut stage = EthernetClassify::new(US, OtherFrames::Drop);
        let bytes = eth(US, EtherType::Ipv4);
        for (cut, want) in [(14, "ipv4"), (9, "chained")] {
            let (buf, held) = crate::testing::chained(&bytes, &[cut]);
            let verdict = with_cx(|cx| stage.process(buf, cx));
            let got = match verdict {
                Verdict::Pass(Fork::Right(Fork::Left(v4))) => {
                    assert_eq!(v4.buf().total_len(), 60);
                    "ipv4"
                }
                Verdict::Drop(r) => r.name(&[]),
                _ => "other",
            };
            assert_eq!(got, want, "cut at {cut}");
            drop(held);
        }
        pool().assert_whole();
    }
}
