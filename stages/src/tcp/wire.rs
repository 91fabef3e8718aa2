//! TCP on the wire: a received [`TcpPacket`] checked and parsed into a
//! [`SegmentIn`] (payload zero-copy), and a [`SegmentOut`] written as a
//! header buffer with its payload chained behind, handed to the egress
//! path.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tpa::app::{SocketError, SocketId};
use tpa::buf::{ChecksumStatus, L4Protocol, PacketBuf};
use tpa::header::checksum::{
    combine, fold, pseudo_header_v4, pseudo_header_v6, sum_from, sum_segment_v4_split, Checksum,
};
use tpa::stage::{Cx, PortCx, Reason};
use tpa::state::Part;
use tpa::wire::ipv4::{IpProtocol, Ipv4View};
use tpa::wire::ipv6::Ipv6View;
use tpa::wire::tcp::{
    option_kind as kind, OptionLayout, SackBlocks, Tcp, TcpFlags, TcpOptionWriter, TcpOptions,
    TcpView,
};

use super::segment::{OptionsOut, QuietSeg, SegmentIn, SegmentOut};
use super::seq::SeqNumber;
use crate::egress::{send_ip, send_tcp_v4, Egress, IpSend, Sent};
use crate::packet::TcpPacket;

/// The TCP options could not be parsed (a length that runs past the
/// header, a known option of the wrong size): the segment is dropped.
pub const BAD_OPTIONS: Reason = Reason::custom(0);

/// The names of the reasons this module drops with, `Reason::custom(0)`
/// first, for the input stage's `CUSTOM_REASONS`.
pub const WIRE_REASONS: &[&str] = &["bad-options"];

/// The two ends of a connection, seen from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

impl FourTuple {
    /// The 4-tuple of a segment from `src` to `dst` with `ports`, (source,
    /// destination), seen from our side (the destination's).
    #[inline(always)]
    pub fn of(src: IpAddr, dst: IpAddr, ports: (u16, u16)) -> Self {
        FourTuple {
            local: SocketAddr::new(dst, ports.1),
            remote: SocketAddr::new(src, ports.0),
        }
    }

    /// Both ends `0.0.0.0:0`: no connection's.
    pub const UNSPECIFIED: FourTuple = FourTuple {
        local: SocketAddr::V4(std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
        remote: SocketAddr::V4(std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
    };
}

/// A received segment: whom it is between, and what it says.
#[derive(Debug)]
pub struct Received<B> {
    /// The segment's destination (ours) and source (the peer's).
    pub tuple: FourTuple,
    /// The parsed segment, its payload the received buffer trimmed.
    pub segment: SegmentIn<B>,
}

/// Checks `p` and parses it into a [`Received`] segment, zero-copy: the
/// buffer is trimmed to the payload (or dropped when there is none).
///
/// Checks, each with its drop reason: the header fits (`too-short`), the
/// data offset is at least 5 words and within the segment (`malformed`,
/// `too-short`), the checksum verifies (`bad-checksum`; trusted when the
/// port's receive check said good or bad), the ports are not zero and the
/// source is not a group or unspecified address (`malformed`), the options
/// parse ([`BAD_OPTIONS`]).
///
/// # Errors
///
/// The drop reason; the buffer is released.
///
/// ```
/// # use tpa_stages::tcp::wire::BAD_OPTIONS;
/// # assert_eq!(BAD_OPTIONS, tpa::stage::Reason::custom(0));
/// ```
#[inline]
pub fn parse<B: PacketBuf>(p: TcpPacket<B>) -> Result<Received<B>, Reason> {
    let checked = check(&p)?;
    take(p, checked)
}

/// A segment's header, checked ([`check`]), its buffer not yet taken: the
/// input stage looks the 4-tuple up first, so a segment it hands to the
/// host goes whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The segment's destination (ours) and source (the peer's).
    pub tuple: FourTuple,
    header: CheckedHeader,
}

impl Checked {
    /// A segment on `tuple` whose TCP header checked as `header`.
    #[inline(always)]
    pub fn new(tuple: FourTuple, header: CheckedHeader) -> Self {
        Checked { tuple, header }
    }

    /// What the TCP header says.
    #[inline(always)]
    pub fn header(&self) -> &CheckedHeader {
        &self.header
    }

    /// The segment's flags.
    pub fn flags(&self) -> tpa::wire::tcp::TcpFlags {
        self.header.flags
    }

    /// [`CheckedHeader::payload`].
    ///
    /// # Errors
    ///
    /// `too-short` if the buffer is not the one checked.
    #[inline]
    pub fn payload<B: PacketBuf>(&self, p: TcpPacket<B>) -> Result<Option<B>, Reason> {
        self.header.payload(p)
    }

    /// [`CheckedHeader::segment`].
    #[inline(always)]
    pub fn segment<B>(&self, payload: Option<B>) -> SegmentIn<B> {
        self.header.segment(payload)
    }
}

/// What a checked segment's TCP header says, and where its payload lies:
/// a [`Checked`] but its 4-tuple, which the input stage of a known flow
/// has already ([`check_known_v4`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedHeader {
    /// SEG.SEQ.
    pub(crate) seq: u32,
    /// SEG.ACK.
    pub(crate) ack: u32,
    /// The control bits.
    pub(crate) flags: tpa::wire::tcp::TcpFlags,
    /// SEG.WND as on the wire.
    pub(crate) window: u16,
    /// The options.
    pub(crate) options: tpa::wire::tcp::TcpOptionSet,
    /// Where the payload starts in the frame.
    payload_start: usize,
    /// The payload's length (what [`payload`](Self::payload) gives).
    pub(crate) data_len: usize,
    /// What header prediction asks of the header, taken with the
    /// options.
    pub(crate) shape: SegmentShape,
}

/// What header prediction (`conn::predict`) asks of a segment's own
/// header, in one byte taken where the header is parsed: only ACK (and
/// maybe PSH) set, no SACK blocks, timestamps or none. A connection
/// compares it with the one shape it predicts, or with
/// [`NONE`](Self::NONE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentShape(u8);

impl SegmentShape {
    /// Any other header: control bits besides ACK and PSH, or SACK
    /// blocks.
    pub(crate) const OTHER: SegmentShape = SegmentShape(0);
    /// ACK (± PSH) only, without timestamps or SACK blocks.
    const PLAIN: SegmentShape = SegmentShape(1);
    /// ACK (± PSH) only, timestamps, no SACK blocks.
    const TIMESTAMPED: SegmentShape = SegmentShape(2);
    /// No header's: what a connection predicting nothing expects.
    pub(crate) const NONE: SegmentShape = SegmentShape(3);

    /// The shape of a header with control bits `flags` and `options`.
    #[inline(always)]
    pub(crate) fn of(flags: TcpFlags, options: &tpa::wire::tcp::TcpOptionSet) -> Self {
        if !Self::ack_only(flags) || options.sack.is_some() {
            return Self::OTHER;
        }
        Self::predictable(options.timestamps.is_some())
    }

    /// The shape of a header with control bits `flags` whose options are
    /// the timestamps alone ([`OptionLayout::Timestamps`]).
    #[inline(always)]
    fn timestamped_with(flags: TcpFlags) -> Self {
        if Self::ack_only(flags) {
            Self::TIMESTAMPED
        } else {
            Self::OTHER
        }
    }

    /// Whether `flags` are ACK, maybe with PSH, and nothing else.
    #[inline(always)]
    fn ack_only(flags: TcpFlags) -> bool {
        flags.0 & !TcpFlags::PSH.0 == TcpFlags::ACK.0
    }

    /// The shape of a predictable header, with `timestamps` or without.
    #[inline(always)]
    pub(crate) fn predictable(timestamps: bool) -> Self {
        if timestamps {
            Self::TIMESTAMPED
        } else {
            Self::PLAIN
        }
    }
}

impl CheckedHeader {
    /// The header of `seg`, whose payload is `len` bytes (the payload's
    /// place in a frame unknown: it starts at 0).
    #[inline]
    pub(crate) fn of_segment<B>(seg: &SegmentIn<B>, len: u32) -> Self {
        CheckedHeader {
            seq: seg.seq.get(),
            ack: seg.ack.get(),
            flags: seg.flags,
            window: seg.window,
            options: seg.options,
            payload_start: 0,
            data_len: len as usize,
            shape: SegmentShape::of(seg.flags, &seg.options),
        }
    }

    /// The segment's flags.
    #[inline(always)]
    pub fn flags(&self) -> tpa::wire::tcp::TcpFlags {
        self.flags
    }

    /// The buffer `p` (the one checked) trimmed to the payload, or `None`
    /// (the buffer dropped) when there is none.
    ///
    /// # Errors
    ///
    /// `too-short` if the buffer is not the one checked (of a chain, only
    /// the first segment is measured: `chained` if it is shorter than the
    /// headers).
    #[inline]
    pub fn payload<B: PacketBuf>(&self, p: TcpPacket<B>) -> Result<Option<B>, Reason> {
        if self.data_len == 0 {
            return Ok(None);
        }
        let mut buf = p.into_buf();
        if buf.is_chained() {
            // A chain: the headers cut off its first segment (which may
            // be left empty, the payload all in the later ones, still
            // shared with their sender's holders). Nothing is cut off the
            // back: the check read the segment to the end of the first
            // buffer segment ([`TcpPacket::l4`] ends there) and counted
            // every later one whole, so the payload ends at the chain's
            // end, and the chain is not walked again for its length.
            #[cfg(any(test, debug_assertions))]
            assert_eq!(
                buf.total_len(),
                self.payload_start + self.data_len,
                "the chain checked"
            );
            buf.trim_front(self.payload_start)
                .map_err(|_| Reason::CHAINED)?;
            return Ok(Some(buf));
        }
        let excess = buf
            .len()
            .checked_sub(self.payload_start + self.data_len)
            .ok_or(Reason::TOO_SHORT)?;
        buf.trim_front(self.payload_start)
            .map_err(|_| Reason::TOO_SHORT)?;
        if excess != 0 {
            buf.trim_back(excess).map_err(|_| Reason::TOO_SHORT)?;
        }
        Ok(Some(buf))
    }

    /// The parsed segment with `payload` (from [`payload`](Self::payload)),
    /// built where the caller puts it (the input stage builds it as the
    /// argument of the connection's input, with no copy between).
    #[inline(always)]
    pub fn segment<B>(&self, payload: Option<B>) -> SegmentIn<B> {
        SegmentIn {
            seq: SeqNumber::new(self.seq),
            ack: SeqNumber::new(self.ack),
            flags: self.flags,
            window: self.window,
            options: self.options,
            payload,
        }
    }
}

impl Default for CheckedHeader {
    /// Nothing checked yet: zeros, no options.
    fn default() -> Self {
        CheckedHeader {
            seq: 0,
            ack: 0,
            flags: tpa::wire::tcp::TcpFlags(0),
            window: 0,
            options: tpa::wire::tcp::TcpOptionSet::default(),
            payload_start: 0,
            data_len: 0,
            shape: SegmentShape::OTHER,
        }
    }
}

impl Default for Checked {
    /// Nothing checked yet: unspecified addresses, an empty header.
    fn default() -> Self {
        Checked {
            tuple: FourTuple::UNSPECIFIED,
            header: CheckedHeader::default(),
        }
    }
}

/// [`parse`]'s checks, on a borrowed packet (the same drop reasons).
///
/// # Errors
///
/// The drop reason.
#[inline]
pub fn check<B: PacketBuf>(p: &TcpPacket<B>) -> Result<Checked, Reason> {
    let mut checked = Checked::default();
    check_into(p, &mut checked)?;
    Ok(checked)
}

/// [`check`] into `out`, the place the caller keeps it (the input stage's
/// every segment: a `Checked` returned inside a `Result` is copied out of
/// it whole, a `memcpy` call of some hundred and fifty bytes). `out` is
/// left partly written when the check fails.
///
/// # Errors
///
/// The drop reason.
#[inline(always)]
pub fn check_into<B: PacketBuf>(p: &TcpPacket<B>, out: &mut Checked) -> Result<(), Reason> {
    // IPv4 straight through (its addresses known to be IPv4 in every
    // check after), IPv6 out of line.
    if p.is_ipv6() {
        return check_into_v6(p, out);
    }
    let ip = Ipv4View::new(p.l3()).map_err(|_| Reason::MALFORMED)?;
    let (src, dst) = (ip.src(), ip.dst());
    let ports = check_tcp::<B, false>(
        p,
        &mut out.header,
        IpAddr::V4(src),
        IpAddr::V4(dst),
        |tcp| tcp.checksum_ok_v4(src, dst),
    )?;
    out.tuple = FourTuple::of(IpAddr::V4(src), IpAddr::V4(dst), ports);
    Ok(())
}

/// An IPv4 segment's addresses and ports as its headers carry them: the
/// source and destination addresses, then the source and destination
/// ports, unparsed. Two segments with the same flow have the same 4-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFlowV4 {
    addresses: [u8; 8],
    ports: [u8; 4],
}

impl RawFlowV4 {
    /// All zeros: no segment's that passed the checks (its ports are not 0).
    pub const NONE: RawFlowV4 = RawFlowV4 {
        addresses: [0; 8],
        ports: [0; 4],
    };

    /// The flow of IPv4 segment `p`, if its headers are long enough to
    /// hold one (the checks decide whether they are whole).
    #[inline(always)]
    pub fn of<B: PacketBuf>(p: &TcpPacket<B>) -> Option<RawFlowV4> {
        Some(RawFlowV4 {
            addresses: *p.l3().get(12..)?.first_chunk::<8>()?,
            ports: *p.l4().first_chunk::<4>()?,
        })
    }
}

/// [`check_into`] for an IPv4 segment whose [`RawFlowV4`] is that of a
/// segment that passed it: the checks on the addresses and ports alone
/// (not a group or unspecified, not port 0) passed on the same bytes and
/// are skipped, and the 4-tuple, which the caller remembered with that
/// segment's, is not built again: the header alone is returned. Every
/// other check is made, in the same order, with the same reasons. The
/// addresses are read where [`RawFlowV4`] read them: the IPv4 header,
/// which IP input checked, is not parsed again.
///
/// The header is written into `out`, the place the caller keeps it
/// (built aside, its options would be put together again field by field
/// where the segment is built from it); `out` is left partly written when
/// the check fails.
///
/// # Errors
///
/// The drop reason.
#[inline(always)]
pub fn check_known_v4<B: PacketBuf>(
    p: &TcpPacket<B>,
    out: &mut CheckedHeader,
) -> Result<(), Reason> {
    let Some(addresses) = p.l3().get(12..).and_then(<[u8]>::first_chunk::<8>) else {
        return Err(Reason::MALFORMED);
    };
    let [s0, s1, s2, s3, d0, d1, d2, d3] = *addresses;
    let (src, dst) = (Ipv4Addr::new(s0, s1, s2, s3), Ipv4Addr::new(d0, d1, d2, d3));
    debug_assert!(
        Ipv4View::new(p.l3()).is_ok_and(|ip| (ip.src(), ip.dst()) == (src, dst)),
        "an IPv4 TcpPacket's header is whole"
    );
    check_tcp::<B, true>(p, out, IpAddr::V4(src), IpAddr::V4(dst), |tcp| {
        tcp.checksum_ok_v4(src, dst)
    })?;
    Ok(())
}

/// [`check_into`] for a segment over IPv6.
#[inline(never)]
fn check_into_v6<B: PacketBuf>(p: &TcpPacket<B>, out: &mut Checked) -> Result<(), Reason> {
    let ip = Ipv6View::new(p.l3()).map_err(|_| Reason::MALFORMED)?;
    let (src, dst) = (ip.src(), ip.dst());
    let ports = check_tcp::<B, false>(
        p,
        &mut out.header,
        IpAddr::V6(src),
        IpAddr::V6(dst),
        |tcp| tcp.checksum_ok_v6(&src, &dst),
    )?;
    out.tuple = FourTuple::of(IpAddr::V6(src), IpAddr::V6(dst), ports);
    Ok(())
}

/// [`check_into`]'s checks after the IP header, from `src` to `dst`,
/// `checksum_ok` the software check of the TCP checksum (of a segment
/// in one buffer; a chain's is summed over its segments), the header
/// written into `out`. Returns the ports, (source, destination). `KNOWN`:
/// the addresses and ports are those of a segment that passed (see
/// [`check_known_v4`]), their checks are left out.
#[inline(always)]
fn check_tcp<B: PacketBuf, const KNOWN: bool>(
    p: &TcpPacket<B>,
    out: &mut CheckedHeader,
    src: IpAddr,
    dst: IpAddr,
    checksum_ok: impl FnOnce(&TcpView<&[u8]>) -> bool,
) -> Result<(u16, u16), Reason> {
    let l4 = p.l4();
    // A chained segment (from a port that gathers): its header in the
    // first buffer segment, its payload continuing in the later ones.
    let chained = p.buf().is_chained();
    if l4.len() < Tcp::LEN {
        return Err(short(chained));
    }
    let header_len = usize::from(l4[12] >> 4) * 4;
    if header_len < Tcp::LEN {
        return Err(Reason::MALFORMED);
    }
    if header_len > l4.len() {
        return Err(short(chained));
    }
    let tcp = TcpView::new(l4).map_err(|_| Reason::MALFORMED)?;
    let l4_len = if chained {
        l4.len() + p.buf().total_len() - p.buf().len()
    } else {
        l4.len()
    };
    let ok = match p.buf().meta().l4_checksum {
        ChecksumStatus::Good => true,
        ChecksumStatus::Bad => false,
        ChecksumStatus::Unknown if chained => match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => chain_checksum_ok_v4(p, l4, s, d, l4_len),
            _ => chain_checksum_ok(p, l4, src, dst, l4_len),
        },
        ChecksumStatus::Unknown => checksum_ok(&tcp),
    };
    if !ok {
        return Err(Reason::BAD_CHECKSUM);
    }
    if !KNOWN && (tcp.src_port() == 0 || tcp.dst_port() == 0 || !unicast(src)) {
        return Err(Reason::MALFORMED);
    }
    // TCP is unicast (RFC 9293 §3.9.1.1 ignores a SYN to a group): a
    // segment to a group address, or in a frame to a link-layer group,
    // is not for a connection of ours.
    let link_group = p.buf().data().first().is_some_and(|b| b & 1 != 0);
    if link_group || (!KNOWN && !unicast(dst)) {
        return Err(Reason::NOT_FOR_US);
    }
    let layout = TcpOptions::new(&l4[Tcp::LEN..header_len])
        .summary_into(&mut out.options)
        .map_err(|_| BAD_OPTIONS)?;
    out.shape = match layout {
        OptionLayout::Timestamps => SegmentShape::timestamped_with(tcp.flags()),
        OptionLayout::Other => SegmentShape::of(tcp.flags(), &out.options),
    };
    debug_assert_eq!(out.shape, SegmentShape::of(tcp.flags(), &out.options));
    out.seq = tcp.seq();
    out.ack = tcp.ack();
    out.flags = tcp.flags();
    out.window = tcp.window();
    out.payload_start = p.l4_offset() + header_len;
    out.data_len = l4_len - header_len;
    Ok((tcp.src_port(), tcp.dst_port()))
}

/// Why a header cut short by its segment's end is dropped: a frame too
/// short, or a chain whose header crosses into its second segment.
#[cold]
fn short(chained: bool) -> Reason {
    if chained {
        Reason::CHAINED
    } else {
        Reason::TOO_SHORT
    }
}

/// [`chain_checksum_ok`] over IPv4, its addresses passed as they are
/// (in registers, not as [`IpAddr`]s in memory): the common chain (a
/// header, then the sender's chunk) summed here, pseudo-header, header
/// and chunk in one pass; any other the general way.
#[cold]
#[inline(never)]
fn chain_checksum_ok_v4<B: PacketBuf>(
    p: &TcpPacket<B>,
    first: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    l4_len: usize,
) -> bool {
    if p.buf().segment_count() == 2 && l4_len <= usize::from(u16::MAX) {
        // `l4_len` is the header's and the chunk's length.
        let rest = p.buf().segments().nth(1).unwrap_or(&[]);
        debug_assert_eq!(l4_len, first.len() + rest.len());
        return sum_segment_v4_split(src, dst, IpProtocol::Tcp.raw(), first, rest) == 0xffff;
    }
    chain_checksum_ok(p, first, IpAddr::V4(src), IpAddr::V4(dst), l4_len)
}

/// Whether the TCP checksum of chained `p` verifies, `l4_len` bytes from
/// its TCP header on over all its segments, `first` the part in its first
/// buffer segment (`p.l4()`, which the caller has at hand).
#[cold]
#[inline(never)]
fn chain_checksum_ok<B: PacketBuf>(
    p: &TcpPacket<B>,
    first: &[u8],
    src: IpAddr,
    dst: IpAddr,
    l4_len: usize,
) -> bool {
    let protocol = IpProtocol::Tcp.raw();
    debug_assert!(core::ptr::eq(first, p.l4()));
    let pseudo = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => match u16::try_from(l4_len) {
            Ok(len) => pseudo_header_v4(s, d, protocol, len),
            Err(_) => return false,
        },
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_header_v6(&s, &d, protocol, l4_len as u32),
        // The IP header gives both addresses of one family.
        _ => return false,
    };
    let mut c = Checksum::new();
    c.add_sum(pseudo);
    c.add_bytes(first);
    for segment in p.buf().segments().skip(1) {
        c.add_bytes(segment);
    }
    c.sum() == 0xffff
}

/// The segment `checked` described, its buffer trimmed to the payload (or
/// dropped when there is none).
///
/// # Errors
///
/// `too-short` if the buffer is not the one checked.
#[inline]
pub fn take<B: PacketBuf>(p: TcpPacket<B>, checked: Checked) -> Result<Received<B>, Reason> {
    let payload = checked.payload(p)?;
    Ok(Received {
        tuple: checked.tuple,
        segment: checked.segment(payload),
    })
}

/// Whether `ip` may be a TCP peer: not unspecified, not a group, not
/// IPv4's broadcast.
#[inline(always)]
pub fn unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

/// Writes `seg` from `tuple.local` to `tuple.remote`: a fresh buffer from
/// the port's pool holds the TCP header and options, the payload (the send
/// queue's shared buffer) is chained behind it without a copy (copied
/// behind the header when it has at most [`COPY_BREAK`] bytes), the
/// checksum is computed here or asked of the port when it offloads TCP
/// checksums, and the whole goes to [`send_ip`] with `owner` as the socket
/// told when the neighbor never answers.
///
/// # Errors
///
/// [`NoBuffers`](SocketError::NoBuffers) when the pool is empty or the
/// payload cannot be chained; otherwise as [`send_ip`].
#[inline]
pub fn send_segment<B, S>(
    cx: &mut Cx<'_, B, S>,
    tuple: &FourTuple,
    mut seg: SegmentOut<B>,
    owner: Option<SocketId>,
) -> Result<Sent, SocketError>
where
    B: PacketBuf,
    S: Part<Egress<B>>,
{
    send_segment_in_place(cx, tuple, &mut seg, owner)
}

/// [`send_segment`] on a segment left where the caller keeps it (the
/// output path's every segment: passed by value, it is copied whole into
/// the call's argument); its payload is taken, the rest left as it was.
///
/// # Errors
///
/// As [`send_segment`].
pub fn send_segment_in_place<B, S>(
    cx: &mut Cx<'_, B, S>,
    tuple: &FourTuple,
    seg: &mut SegmentOut<B>,
    owner: Option<SocketId>,
) -> Result<Sent, SocketError>
where
    B: PacketBuf,
    S: Part<Egress<B>>,
{
    let (buf, header, offload) = build_segment(cx, tuple, seg)?;
    if let (SocketAddr::V4(local), SocketAddr::V4(remote)) = (tuple.local, tuple.remote) {
        // IPv4, every address read once: the pseudo-header from them, and
        // the egress path told the TCP header's length.
        let (src, dst) = (*local.ip(), *remote.ip());
        let buf = checksum_v4(buf, offload, (src, dst));
        return send_tcp_v4(cx, buf, (src, dst), header, owner);
    }
    send_other(cx, buf, tuple, header, offload, owner)
}

/// The TCP header, options and payload of `seg` in a fresh buffer (the
/// payload taken: copied up to [`COPY_BREAK`] bytes, else chained); the
/// header's length, and whether the port finishes the TCP checksum.
#[inline(always)]
pub(crate) fn build_segment<B, S>(
    cx: &mut Cx<'_, B, S>,
    tuple: &FourTuple,
    seg: &mut SegmentOut<B>,
) -> Result<(B, usize, bool), SocketError>
where
    B: PacketBuf,
{
    let mut buf = cx.alloc().ok_or(SocketError::NoBuffers)?;
    let offload = cx.caps().tx_offloads.tcp_checksum;
    let header = write_header(&mut buf, tuple, seg)?;
    if let Some(payload) = seg.payload.take() {
        let len = payload.total_len();
        if len <= COPY_BREAK && buf.tailroom() >= len {
            copy_payload(&mut buf, &payload)?;
        } else {
            buf.chain_shared(payload)
                .map_err(|_| SocketError::NoBuffers)?;
        }
    }
    Ok((buf, header, offload))
}

/// The output path's straight case ([`QuietSeg`]): the TCP header (20
/// bytes, or 32 with `NOP NOP TS`) and the payload (copied up to
/// [`COPY_BREAK`] bytes, else chained) in a fresh buffer from `port`,
/// with its checksum over IPv4 from `src` to `dst` done or asked of the
/// port (`offload`); the header's length. The same bytes
/// [`build_segment`], [`write_header`] and [`checksum_v4`] make of the
/// equal [`SegmentOut`]. The common segment (no data, or data in one
/// buffer that fits behind the header) in one pass: one append for
/// header and data, written in place, one sum over both; any other
/// ([`build_quiet`]) as over IPv6.
///
/// # Errors
///
/// [`NoBuffers`](SocketError::NoBuffers) when the pool is empty or the
/// payload cannot be chained.
#[inline(always)]
pub(crate) fn build_quiet_v4<B: PacketBuf>(
    port: &mut PortCx<'_, B>,
    ports: (u16, u16),
    seg: QuietSeg<'_, B>,
    offload: bool,
    pseudo_addrs: u16,
) -> Result<(B, usize), SocketError> {
    let data = seg.payload.as_deref().map_or(&[][..], |p| p.data());
    let copied = seg
        .payload
        .as_deref()
        .is_none_or(|p| data.len() == p.total_len() && data.len() <= COPY_BREAK);
    let len = quiet_header_len(&seg);
    if !copied {
        let n = seg.payload.as_deref().map_or(0, |p| p.total_len());
        if n > COPY_BREAK {
            if let Some(payload_sum) = seg.payload_sum.sum_of(n) {
                return build_quiet_chained_v4(
                    port,
                    ports,
                    seg,
                    offload,
                    pseudo_addrs,
                    payload_sum,
                );
            }
        }
        return build_quiet_other_v4(port, ports, seg, offload, pseudo_addrs);
    }
    let mut buf = port.alloc().ok_or(SocketError::NoBuffers)?;
    let Ok(room) = buf.append(len + data.len()) else {
        // No room behind the header: the general way (it chains), with
        // a fresh buffer.
        drop(buf);
        return build_quiet_other_v4(port, ports, seg, offload, pseudo_addrs);
    };
    write_quiet_header(room, ports, &seg);
    copy_short(&mut room[len..], data);
    if !offload {
        // One pass over header and data behind the pseudo-header's
        // addresses and protocol; its length, a word like the others,
        // summed from the checksum field (zero) it is put in first.
        let tcp_len = room.len() as u16;
        room[16..18].copy_from_slice(&tcp_len.to_be_bytes());
        let sum = !sum_from(pseudo_addrs, room);
        room[16..18].copy_from_slice(&sum.to_be_bytes());
    }
    let meta = buf.meta_mut();
    meta.tx.clear();
    if offload {
        meta.tx.request_l4_checksum(L4Protocol::Tcp);
    }
    Ok((buf, len))
}

/// [`build_quiet_v4`] for a full-size segment: data longer than
/// [`COPY_BREAK`] whose sum the send queue took (`payload_sum`), chained
/// behind the header. The header is summed as it lies in its buffer, on
/// top of the pseudo-header and the data's sum, before the data is
/// chained: the bytes [`build_quiet_other_v4`] makes of the same segment,
/// without its call and its passing of `seg`.
#[inline(always)]
fn build_quiet_chained_v4<B: PacketBuf>(
    port: &mut PortCx<'_, B>,
    ports: (u16, u16),
    seg: QuietSeg<'_, B>,
    offload: bool,
    pseudo_addrs: u16,
    payload_sum: u16,
) -> Result<(B, usize), SocketError> {
    let len = quiet_header_len(&seg);
    let mut buf = port.alloc().ok_or(SocketError::NoBuffers)?;
    let room = buf.append(len).map_err(|_| SocketError::NoBuffers)?;
    write_quiet_header(room, ports, &seg);
    let Some(payload) = seg.payload else {
        return Err(SocketError::NoBuffers);
    };
    let payload_len = payload.total_len();
    if !offload {
        let length = (len + payload_len) as u16;
        let sum = checksum_on_data_sum(pseudo_addrs, length, payload_sum, room);
        room[16..18].copy_from_slice(&sum.to_be_bytes());
    }
    buf.chain_clone(payload)
        .map_err(|_| SocketError::NoBuffers)?;
    let meta = buf.meta_mut();
    meta.tx.clear();
    if offload {
        meta.tx.request_l4_checksum(L4Protocol::Tcp);
    }
    #[cfg(any(test, debug_assertions))]
    if !offload {
        debug_assert_eq!(
            sum_with_pseudo(&buf, pseudo_addrs),
            0xffff,
            "the stored payload sum"
        );
    }
    Ok((buf, len))
}

/// Copies `src` into `dst` (as long): up to 64 bytes (a request or
/// answer of a few words) without a call, as two moves of 32, 16, 8 or 4
/// bytes, the second ending at the end and overlapping the first (a call
/// to `memcpy` costs more than the copy at these lengths); longer ones by
/// `memcpy`.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    /// `src` into `dst` as two `N`-byte moves, from the start and to the
    /// end (`N` ≤ their length ≤ 2 `N`).
    #[inline(always)]
    fn two<const N: usize>(dst: &mut [u8], src: &[u8]) {
        if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
            *d = *s;
        }
        if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
            *d = *s;
        }
    }
    debug_assert_eq!(dst.len(), src.len());
    match src.len() {
        32..=64 => two::<32>(dst, src),
        16..=31 => two::<16>(dst, src),
        8..=15 => two::<8>(dst, src),
        4..=7 => two::<4>(dst, src),
        0..=3 => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }
        _ => dst.copy_from_slice(src),
    }
}

/// Writes the TCP header of `seg` from and to `ports` (local, remote),
/// checksum zero, at the front of `room` (at least [`quiet_header_len`]
/// bytes), field by field: with the timestamps or without, each a header
/// of a length known here (its data offset a constant, no bounds to
/// check past the first).
#[inline(always)]
fn write_quiet_header<B: PacketBuf>(room: &mut [u8], ports: (u16, u16), seg: &QuietSeg<'_, B>) {
    match seg.timestamps {
        Some((val, ecr)) => {
            let Some((head, option)) = room
                .first_chunk_mut::<{ Tcp::LEN + 12 }>()
                .and_then(|h| h.split_first_chunk_mut::<{ Tcp::LEN }>())
            else {
                return;
            };
            write_quiet_fixed(head, ports, seg, Tcp::LEN + 12);
            option[0..4].copy_from_slice(&QUIET_TS_KINDS.to_be_bytes());
            option[4..8].copy_from_slice(&val.to_be_bytes());
            option[8..12].copy_from_slice(&ecr.to_be_bytes());
        }
        None => {
            if let Some(head) = room.first_chunk_mut::<{ Tcp::LEN }>() {
                write_quiet_fixed(head, ports, seg, Tcp::LEN);
            }
        }
    }
}

/// The fixed 20 bytes of [`write_quiet_header`]'s header of `len`
/// bytes (a multiple of 4), checksum zero.
#[inline(always)]
fn write_quiet_fixed<B: PacketBuf>(
    head: &mut [u8; Tcp::LEN],
    (local_port, remote_port): (u16, u16),
    seg: &QuietSeg<'_, B>,
    len: usize,
) {
    // The ports as one word (LLVM takes it out of a caller's loop).
    let ports = (u32::from(local_port) << 16) | u32::from(remote_port);
    head[0..4].copy_from_slice(&ports.to_be_bytes());
    head[4..8].copy_from_slice(&seg.seq.get().to_be_bytes());
    head[8..12].copy_from_slice(&seg.ack.get().to_be_bytes());
    // The data offset in words, in the high nibble.
    head[12] = ((len / 4) as u8) << 4;
    head[13] = seg.flags.0;
    head[14..16].copy_from_slice(&seg.window.to_be_bytes());
    // Checksum and urgent pointer.
    head[16..20].fill(0);
}

/// [`build_quiet_v4`] for a segment whose data does not go behind the
/// header in one copy: [`build_quiet`], then the checksum over the
/// buffer's pieces. Out of line: the common segment never comes here.
#[inline(never)]
fn build_quiet_other_v4<B: PacketBuf>(
    port: &mut PortCx<'_, B>,
    ports: (u16, u16),
    seg: QuietSeg<'_, B>,
    offload: bool,
    pseudo_addrs: u16,
) -> Result<(B, usize), SocketError> {
    let payload_len = seg.payload.as_deref().map_or(0, |p| p.total_len());
    // No payload is length 0, of which no sum is kept.
    let payload_sum = seg
        .payload_sum
        .sum_of(payload_len)
        .map(|sum| (sum, payload_len));
    let (mut buf, len) = build_quiet(port, ports, seg, payload_len)?;
    match payload_sum {
        Some(payload) if !offload => finish_checksum_summed(&mut buf, len, pseudo_addrs, payload),
        _ => finish_checksum_with(&mut buf, offload, |n| combine(pseudo_addrs, n as u16)),
    }
    Ok((buf, len))
}

/// The TCP checksum of `buf` (a header of `header` bytes, then data whose
/// sum and length are `payload`) over IPv4, `pseudo_addrs` the
/// pseudo-header's addresses and protocol: the header summed, the data's
/// sum added (the header's length is even: the data's words lie as they
/// were summed). The same value [`finish_checksum_with`] computes over
/// every byte.
#[inline]
fn finish_checksum_summed<B: PacketBuf>(
    buf: &mut B,
    header: usize,
    pseudo_addrs: u16,
    (payload, payload_len): (u16, usize),
) {
    buf.meta_mut().tx.clear();
    debug_assert_eq!(buf.total_len(), header + payload_len);
    let length = (header + payload_len) as u16;
    let sum = checksum_on_data_sum(pseudo_addrs, length, payload, &buf.data()[..header]);
    #[cfg(any(test, debug_assertions))]
    debug_assert_eq!(
        sum,
        !sum_with_pseudo(buf, pseudo_addrs),
        "the stored payload sum"
    );
    buf.data_mut()[16..18].copy_from_slice(&sum.to_be_bytes());
}

/// The TCP checksum over IPv4 of a segment of `length` bytes: `header`
/// (its checksum field zero, its length even, so the data's words lie as
/// they were summed), then data whose sum is `data_sum`; `pseudo_addrs`
/// the pseudo-header's addresses and protocol. The pseudo-header's
/// addresses and length and the data's sum are folded once, then the
/// header summed on top.
#[inline(always)]
fn checksum_on_data_sum(pseudo_addrs: u16, length: u16, data_sum: u16, header: &[u8]) -> u16 {
    debug_assert_eq!(header.len() % 2, 0);
    let start = fold(u64::from(pseudo_addrs) + u64::from(length) + u64::from(data_sum));
    !sum_from(start, header)
}

/// The ones'-complement sum of the IPv4 pseudo-header (`pseudo_addrs`,
/// `buf`'s length) and every byte of `buf`: `0xffff` when `buf`'s TCP
/// checksum is right (test and debug builds check the summed paths by it).
#[cfg(any(test, debug_assertions))]
fn sum_with_pseudo<B: PacketBuf>(buf: &B, pseudo_addrs: u16) -> u16 {
    let mut c = Checksum::new();
    c.add_sum(combine(pseudo_addrs, buf.total_len() as u16));
    for segment in buf.segments() {
        c.add_bytes(segment);
    }
    c.sum()
}

/// The TCP header length of `seg`: 20 bytes, 32 with the timestamps.
#[inline(always)]
fn quiet_header_len<B: PacketBuf>(seg: &QuietSeg<'_, B>) -> usize {
    if seg.timestamps.is_some() {
        Tcp::LEN + 12
    } else {
        Tcp::LEN
    }
}

/// `NOP NOP TS 10`: the first word of the timestamps option as the
/// straight case writes it (RFC 7323, appendix A).
const QUIET_TS_KINDS: u32 = u32::from_be_bytes([kind::NOP, kind::NOP, kind::TIMESTAMPS, 10]);

/// [`build_quiet_v4`] for another family (IPv6): the same TCP header
/// and payload, the checksum over the pseudo-header of `tuple`
/// (`finish_checksum`, as [`send_other`]); the bytes [`build_segment`]
/// and [`checksum_other`] make of the equal [`SegmentOut`].
///
/// # Errors
///
/// As [`build_quiet_v4`].
#[inline(always)]
pub(crate) fn build_quiet_v6<B: PacketBuf>(
    port: &mut PortCx<'_, B>,
    ports: (u16, u16),
    seg: QuietSeg<'_, B>,
    offload: bool,
    tuple: &FourTuple,
) -> Result<(B, usize), SocketError> {
    let payload_len = seg.payload.as_deref().map_or(0, |p| p.total_len());
    let (buf, len) = build_quiet(port, ports, seg, payload_len)?;
    Ok((checksum_other(buf, offload, tuple), len))
}

/// The TCP header and payload of [`build_quiet_v6`] (and of
/// [`build_quiet_v4`] past its common segment), checksum field zero; the
/// header's length. `n` is the payload's total length (0 without one),
/// which the callers know.
#[inline(always)]
fn build_quiet<B: PacketBuf>(
    port: &mut PortCx<'_, B>,
    ports: (u16, u16),
    seg: QuietSeg<'_, B>,
    n: usize,
) -> Result<(B, usize), SocketError> {
    let mut buf = port.alloc().ok_or(SocketError::NoBuffers)?;
    let len = quiet_header_len(&seg);
    let room = buf.append(len).map_err(|_| SocketError::NoBuffers)?;
    write_quiet_header(room, ports, &seg);
    if let Some(payload) = seg.payload {
        debug_assert_eq!(n, payload.total_len());
        let first = payload.data();
        if n <= COPY_BREAK && first.len() == n && buf.tailroom() >= n {
            // A payload in one buffer (every chunk the send queue
            // copied): one copy here.
            buf.append(n)
                .map_err(|_| SocketError::NoBuffers)?
                .copy_from_slice(first);
        } else if n <= COPY_BREAK && buf.tailroom() >= n {
            copy_payload(&mut buf, payload)?;
        } else {
            buf.chain_clone(payload)
                .map_err(|_| SocketError::NoBuffers)?;
        }
    }
    Ok((buf, len))
}

/// `buf`'s TCP checksum over IPv4 from `src` to `dst`, done or asked of
/// the port.
#[inline(always)]
pub(crate) fn checksum_v4<B: PacketBuf>(
    mut buf: B,
    offload: bool,
    (src, dst): (Ipv4Addr, Ipv4Addr),
) -> B {
    finish_checksum_with(&mut buf, offload, |len| {
        pseudo_header_v4(src, dst, IpProtocol::Tcp.raw(), len as u16)
    });
    buf
}

/// `buf`'s TCP checksum over the pseudo-header of `tuple` (of any
/// family), done or asked of the port: what [`send_other`] does first.
/// Out of line: IPv6's straight and full paths share it, and the IPv4
/// path's checksum code stays as the compiler inlines it.
#[inline(never)]
pub(crate) fn checksum_other<B: PacketBuf>(mut buf: B, offload: bool, tuple: &FourTuple) -> B {
    finish_checksum(&mut buf, tuple, 0, offload);
    buf
}

/// The rest of [`send_segment_in_place`] for a tuple that is not IPv4's:
/// the checksum, then [`send_ip`].
#[inline(always)]
pub(crate) fn send_other<B, S>(
    cx: &mut Cx<'_, B, S>,
    mut buf: B,
    tuple: &FourTuple,
    header: usize,
    offload: bool,
    owner: Option<SocketId>,
) -> Result<Sent, SocketError>
where
    B: PacketBuf,
    S: Part<Egress<B>>,
{
    finish_checksum(&mut buf, tuple, header, offload);
    let ip = IpSend {
        src: tuple.local.ip(),
        dst: tuple.remote.ip(),
        protocol: IpProtocol::Tcp,
        hop_limit: None,
        owner,
    };
    send_ip(cx, buf, ip)
}

/// Sends `packet`, a TCP header and payload with its checksum done or
/// asked of the port, from `tuple.local` to `tuple.remote` through
/// [`send_ip`], with no owner to tell of an unanswered neighbor.
///
/// # Errors
///
/// As [`send_ip`].
pub fn send_tcp_packet<B, S>(
    cx: &mut Cx<'_, B, S>,
    tuple: &FourTuple,
    packet: B,
) -> Result<Sent, SocketError>
where
    B: PacketBuf,
    S: Part<Egress<B>>,
{
    let ip = IpSend {
        src: tuple.local.ip(),
        dst: tuple.remote.ip(),
        protocol: IpProtocol::Tcp,
        hop_limit: None,
        owner: None,
    };
    send_ip(cx, packet, ip)
}

/// Payloads of at most this many bytes are copied behind the header
/// rather than chained: a copy this short costs less than the chain (a
/// reference taken and given back, a second segment for the checksum, and,
/// on a port that cannot gather, the port's own copy into one frame).
pub const COPY_BREAK: usize = 512;

/// Appends the bytes of `payload` to `buf`, which has the room.
fn copy_payload<B: PacketBuf>(buf: &mut B, payload: &B) -> Result<(), SocketError> {
    let room = buf
        .append(payload.total_len())
        .map_err(|_| SocketError::NoBuffers)?;
    // A payload in one buffer (every chunk the send queue copied): one
    // copy, no walk of the chain.
    let first = payload.data();
    if first.len() == room.len() {
        room.copy_from_slice(first);
        return Ok(());
    }
    let mut at = 0;
    for piece in payload.segments() {
        room[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    }
    Ok(())
}

/// Drops SACK blocks from `seg`, last first, until its payload and
/// options fit `limit` bytes (the path's MSS: RFC 6691 counts options
/// against it); returns how many were dropped. A data segment sized to
/// the MSS less the timestamps has no room for blocks; the ACKs without
/// data that follow carry them.
///
/// ```
/// use tpa::buf::PoolBuf;
/// use tpa::wire::tcp::{SackBlock, SackBlocks, TcpFlags};
/// use tpa_stages::tcp::segment::{OptionsOut, SegmentOut};
/// use tpa_stages::tcp::seq::SeqNumber;
/// use tpa_stages::tcp::wire::fit_options;
/// let blocks = SackBlocks::new(&[SackBlock { left: 1, right: 2 }, SackBlock { left: 5, right: 9 }]);
/// let mut seg: SegmentOut<PoolBuf> = SegmentOut {
///     seq: SeqNumber::new(1), ack: SeqNumber::new(1), flags: TcpFlags::ACK, window: 9,
///     options: OptionsOut { timestamps: Some((1, 1)), sack: blocks, ..OptionsOut::default() },
///     payload: None,
/// };
/// assert_eq!(fit_options(&mut seg, 12 + 4 + 8), 1);
/// assert_eq!(seg.options.sack.map(|s| s.len()), Some(1));
/// ```
pub fn fit_options<B: PacketBuf>(seg: &mut SegmentOut<B>, limit: usize) -> usize {
    let data = seg.data_len() as usize;
    let mut dropped = 0;
    while data + seg.options.wire_len() > limit {
        let Some(sack) = seg.options.sack else {
            break;
        };
        let keep = sack.len().saturating_sub(1);
        seg.options.sack = if keep == 0 {
            None
        } else {
            SackBlocks::new(&sack.as_slice()[..keep])
        };
        dropped += 1;
    }
    dropped
}

/// Writes the header and options of `seg` into `buf` (empty); returns the
/// header's length. The fixed header is written field by field into its
/// 20 bytes (what [`Tcp::emit`] lays out, checksum and urgent pointer zero).
#[inline]
pub(crate) fn write_header<B: PacketBuf>(
    buf: &mut B,
    tuple: &FourTuple,
    seg: &SegmentOut<B>,
) -> Result<usize, SocketError> {
    let len = Tcp::LEN + seg.options.wire_len();
    let bytes = buf.append(len).map_err(|_| SocketError::NoBuffers)?;
    let Some((head, options)) = bytes.split_first_chunk_mut::<{ Tcp::LEN }>() else {
        return Err(SocketError::InvalidArgument);
    };
    if write_options(options, &seg.options) + Tcp::LEN != len {
        return Err(SocketError::InvalidArgument);
    }
    let ack = if seg.flags.ack() { seg.ack.get() } else { 0 };
    head[0..2].copy_from_slice(&tuple.local.port().to_be_bytes());
    head[2..4].copy_from_slice(&tuple.remote.port().to_be_bytes());
    head[4..8].copy_from_slice(&seg.seq.get().to_be_bytes());
    head[8..12].copy_from_slice(&ack.to_be_bytes());
    head[12] = ((len / 4) as u8) << 4;
    head[13] = seg.flags.0;
    head[14..16].copy_from_slice(&seg.window.to_be_bytes());
    head[16..20].fill(0); // checksum (filled later) and urgent pointer
    Ok(len)
}

/// Writes `opts` into `out` in Linux's order; returns the bytes written,
/// which is short of [`OptionsOut::wire_len`] only when they do not fit
/// the 40 bytes of option space.
#[inline]
fn write_options(out: &mut [u8], opts: &OptionsOut) -> usize {
    // Every segment of an established connection with timestamps and no
    // SACK blocks: `NOP NOP TS`, what the writer lays out, written whole.
    if let (None, None, false, Some((val, ecr)), None, Some(out)) = (
        opts.mss,
        opts.window_scale,
        opts.sack_permitted,
        opts.timestamps,
        opts.sack,
        out.first_chunk_mut::<12>(),
    ) {
        out[..4].copy_from_slice(&[kind::NOP, kind::NOP, kind::TIMESTAMPS, 10]);
        out[4..8].copy_from_slice(&val.to_be_bytes());
        out[8..].copy_from_slice(&ecr.to_be_bytes());
        return 12;
    }
    write_options_in_order(out, opts)
}

/// [`write_options`] for any set, through the options writer.
#[inline(never)]
fn write_options_in_order(out: &mut [u8], opts: &OptionsOut) -> usize {
    let mut w = TcpOptionWriter::new(out);
    let mut ok = true;
    if let Some(m) = opts.mss {
        ok &= w.mss(m).is_ok();
    }
    if let Some(s) = opts.window_scale {
        ok &= w.window_scale(s).is_ok();
    }
    if opts.sack_permitted {
        ok &= w.sack_permitted().is_ok();
    }
    if let Some((val, ecr)) = opts.timestamps {
        ok &= w.timestamps(val, ecr).is_ok();
    }
    if let Some(s) = &opts.sack {
        ok &= w.sack(s.as_slice()).is_ok();
    }
    let len = w.finish();
    if ok {
        len
    } else {
        0
    }
}

/// Asks the port for the checksum of the segment at `buf.data()` when it
/// `offload`s it, or computes it over every segment of the chain now.
#[inline]
fn finish_checksum<B: PacketBuf>(buf: &mut B, tuple: &FourTuple, _header: usize, offload: bool) {
    let protocol = IpProtocol::Tcp.raw();
    finish_checksum_with(buf, offload, |len| {
        match (tuple.local.ip(), tuple.remote.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_header_v4(s, d, protocol, len as u16),
            (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_header_v6(&s, &d, protocol, len as u32),
            // A tuple is always of one family (the table builds it so).
            _ => 0,
        }
    });
}

/// [`finish_checksum`] with the pseudo-header's sum from `pseudo`, given
/// the segment's length.
#[inline(always)]
fn finish_checksum_with<B: PacketBuf>(
    buf: &mut B,
    offload: bool,
    pseudo: impl FnOnce(usize) -> u16,
) {
    let meta = buf.meta_mut();
    meta.tx.clear();
    if offload {
        meta.tx.request_l4_checksum(L4Protocol::Tcp);
        return;
    }
    let pseudo = pseudo(buf.total_len());
    let mut c = Checksum::new();
    c.add_sum(pseudo);
    for segment in buf.segments() {
        c.add_bytes(segment);
    }
    let sum = !c.sum();
    buf.data_mut()[16..18].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::{PathV4, PathV6};
    use crate::tcp::segment::SummedLen;
    use crate::tcp::testing::{
        bytes, parse_tcp, segment_frame, tcp_packet, them, us, Seg, THEM_MAC,
    };
    use crate::testing::{pool, with_state_at, BufferPool};
    use tpa::buf::{PoolBuf, Shared};
    use tpa::wire::tcp::{SackBlock, SackBlocks, TcpFlags};

    fn parsed(v6: bool, seg: &Seg) -> Result<Received<PoolBuf>, Reason> {
        parse(tcp_packet(&segment_frame(v6, seg)))
    }

    #[test]
    fn a_short_copy_copies_every_length_exactly() {
        let src: Vec<u8> = (1..=200).collect();
        for n in 0..=src.len() {
            let mut dst = vec![0u8; n + 1];
            copy_short(&mut dst[..n], &src[..n]);
            assert_eq!(dst[..n], src[..n], "length {n}");
            assert_eq!(dst[n], 0, "length {n}: nothing past the end");
        }
    }

    #[test]
    fn a_segment_parses_into_numbers_options_and_a_trimmed_payload() {
        for v6 in [false, true] {
            let seg = Seg {
                src_port: 40000,
                dst_port: 80,
                seq: 0xfffffff0,
                ack: Some(77),
                psh: true,
                window: 1234,
                // NOP NOP TS, as Linux sends on established connections.
                options: vec![1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8],
                payload: b"hello, world".to_vec(),
                ..Seg::default()
            };
            let r = parsed(v6, &seg).unwrap();
            assert_eq!(r.tuple.local, SocketAddr::new(us(v6), 80));
            assert_eq!(r.tuple.remote, SocketAddr::new(them(v6), 40000));
            let s = &r.segment;
            assert_eq!((s.seq.get(), s.ack.get(), s.window), (0xfffffff0, 77, 1234));
            assert_eq!(s.flags, TcpFlags::ACK | TcpFlags::PSH);
            assert_eq!(s.options.timestamps, Some((9, 8)));
            let payload = s.payload.as_ref().unwrap();
            assert_eq!(payload.data(), b"hello, world");
            assert_eq!(s.seq_len(), 12);
        }
        // No payload: no buffer held.
        let r = parsed(false, &Seg::syn(5, 80)).unwrap();
        assert!(r.segment.payload.is_none());
        assert_eq!(r.segment.options.mss, Some(1460));
        assert_eq!(pool().stats().in_use, 0);
        pool().assert_whole();
    }

    #[test]
    fn bad_segments_are_refused_with_their_reason() {
        let good = segment_frame(false, &Seg::syn(1, 80));
        // Checksum.
        let mut bad = good.clone();
        bad[34 + 4] ^= 1;
        assert_eq!(parse(tcp_packet(&bad)).unwrap_err(), Reason::BAD_CHECKSUM);
        // The port said good: trusted.
        let mut trusted = tcp_packet(&bad);
        trusted.buf_mut().meta_mut().l4_checksum = ChecksumStatus::Good;
        assert!(parse(trusted).is_ok());
        let mut refused = tcp_packet(&good);
        refused.buf_mut().meta_mut().l4_checksum = ChecksumStatus::Bad;
        assert_eq!(parse(refused).unwrap_err(), Reason::BAD_CHECKSUM);
        // Data offset below 5, or beyond the segment.
        for (offset, want) in [(4u8, Reason::MALFORMED), (15, Reason::TOO_SHORT)] {
            let mut f = good.clone();
            f[34 + 12] = offset << 4;
            let mut p = tcp_packet(&f);
            p.buf_mut().meta_mut().l4_checksum = ChecksumStatus::Good;
            assert_eq!(parse(p).unwrap_err(), want, "offset {offset}");
        }
        // Shorter than a header.
        let mut short = tcp_packet(&good);
        let trim = short.buf().len() - 34 - 10;
        short.buf_mut().trim_back(trim).unwrap();
        assert_eq!(parse(short).unwrap_err(), Reason::TOO_SHORT);
        // An MSS option of the wrong length.
        let opts = Seg {
            options: vec![2, 3, 5, 0],
            ..Seg::syn(1, 80)
        };
        assert_eq!(parsed(false, &opts).unwrap_err(), BAD_OPTIONS);
        // To all nodes (a group IPv6 input accepts): not for a connection.
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(
            crate::tcp::testing::THEM_MAC,
            [0x33, 0x33, 0, 0, 0, 1],
        )
        .ipv6(
            crate::tcp::testing::v6(crate::tcp::testing::THEM6).octets(),
            crate::tcp::testing::v6("ff02::1").octets(),
            64,
        )
        .tcp(5000, 80, 1, 100)
        .syn()
        .write(&mut out, &[])
        .unwrap();
        assert_eq!(parse(tcp_packet(&out)).unwrap_err(), Reason::NOT_FOR_US);
        // Port zero.
        let zero = Seg {
            src_port: 0,
            ..Seg::syn(1, 80)
        };
        assert_eq!(parsed(true, &zero).unwrap_err(), Reason::MALFORMED);
        pool().assert_whole();
    }

    fn tuple(v6: bool) -> FourTuple {
        FourTuple {
            local: SocketAddr::new(us(v6), 80),
            remote: SocketAddr::new(them(v6), 5000),
        }
    }

    #[derive(tpa::state::State)]
    struct St {
        egress: Egress<PoolBuf>,
    }

    fn state() -> St {
        let mut st = St {
            egress: Egress::new(crate::tcp::testing::iface()),
        };
        with_state_at(1, &mut st, |cx| {
            let (state, port) = cx.split();
            let mac = Some(tpa::wire::MacAddr(THEM_MAC));
            let heard = crate::neighbor::Heard::Solicitation;
            state
                .egress
                .learn_v4(crate::tcp::testing::THEM4.into(), mac, heard, port);
            let six = crate::tcp::testing::v6(crate::tcp::testing::THEM6);
            state.egress.learn_v6(six, mac, heard, port);
        });
        st
    }

    #[test]
    fn a_segment_out_is_a_header_with_the_payload_chained_or_copied_and_verifies() {
        // A short payload is copied behind the header, a long one chained.
        for (v6, len) in [(false, 333), (true, 333), (false, 1000), (true, 1000)] {
            let mut st = state();
            let mut data = pool().alloc().unwrap();
            data.extend_from_slice(&vec![0xa5; len]).unwrap();
            let data = data.share();
            let blocks = SackBlocks::new(&[SackBlock {
                left: 10,
                right: 20,
            }])
            .unwrap();
            let seg = SegmentOut {
                seq: SeqNumber::new(1000),
                ack: SeqNumber::new(2000),
                flags: TcpFlags::ACK | TcpFlags::PSH,
                window: 4321,
                options: OptionsOut {
                    timestamps: Some((5, 6)),
                    sack: Some(blocks),
                    ..OptionsOut::default()
                },
                payload: Some(data.clone()),
            };
            let (sent, frames) =
                with_state_at(5, &mut st, |cx| send_segment(cx, &tuple(v6), seg, None));
            assert_eq!(sent, Ok(Sent::Queued));
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0].is_chained(), len > COPY_BREAK, "{len} bytes");
            let p = parse_tcp(&bytes(&frames[0]));
            assert_eq!(p.src, tuple(v6).local);
            assert_eq!(p.dst, tuple(v6).remote);
            assert_eq!((p.seq, p.ack, p.window, p.flags), (1000, 2000, 4321, 0x18));
            assert_eq!(
                p.options,
                [1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 1, 5, 10, 0, 0, 0, 10, 0, 0, 0, 20]
            );
            assert_eq!(p.payload, vec![0xa5; len]);
            drop(frames);
            assert_eq!(data.ref_count(), 1, "the send queue's handle is left");
        }
        pool().assert_whole();
    }

    /// Every shape of a straight-path segment, as (payload length,
    /// timestamps, flags beside ACK): pure ACKs with and without
    /// timestamps, data copied or chained, PSH and FIN, up to a full
    /// segment of `full` bytes.
    fn straight_shapes(full: usize) -> [(usize, bool, TcpFlags); 7] {
        [
            (0, true, TcpFlags(0)),
            (0, false, TcpFlags(0)),
            (64, true, TcpFlags::PSH),
            (1, false, TcpFlags::PSH | TcpFlags::FIN),
            (COPY_BREAK, true, TcpFlags(0)),
            (COPY_BREAK + 1, true, TcpFlags::PSH),
            (full, false, TcpFlags(0)),
        ]
    }

    /// A straight-path segment, its data held here ([`QuietSeg`]
    /// borrows it from the send queue).
    struct OwnedQuiet {
        /// The fields but the data.
        fields: QuietSeg<'static, PoolBuf>,
        /// The data.
        payload: Option<Shared<PoolBuf>>,
    }

    impl OwnedQuiet {
        /// The segment, its data borrowed from here.
        fn seg(&mut self) -> QuietSeg<'_, PoolBuf> {
            QuietSeg {
                payload: self.payload.as_mut(),
                ..self.fields
            }
        }
    }

    /// A straight-path segment and the equal segment of the full path:
    /// data of `len` bytes (none: a pure ACK), timestamps when `ts`.
    fn straight_pair(len: usize, ts: bool, flags: TcpFlags) -> (OwnedQuiet, SegmentOut<PoolBuf>) {
        let payload = (len > 0).then(|| {
            let mut data = pool().alloc().unwrap();
            data.extend_from_slice(&vec![0x5a; len]).unwrap();
            data.share()
        });
        let timestamps = ts.then_some((0x0102_0304, 0xfffe_fdfc));
        let fields = QuietSeg {
            seq: SeqNumber::new(0xffff_fff0),
            ack: SeqNumber::new(77),
            flags: flags | TcpFlags::ACK,
            window: 0xfedc,
            timestamps,
            payload: None,
            payload_sum: SummedLen::NONE,
        };
        let full = SegmentOut {
            seq: fields.seq,
            ack: fields.ack,
            flags: fields.flags,
            window: fields.window,
            options: OptionsOut {
                timestamps,
                ..OptionsOut::default()
            },
            payload: payload.clone(),
        };
        (OwnedQuiet { fields, payload }, full)
    }

    #[test]
    fn the_straight_case_puts_the_frames_of_the_full_path_on_the_wire() {
        // Every shape of a straight-path segment (pure ACK, data copied or
        // chained, PSH and FIN, with and without timestamps), TCP checksum
        // done here or asked of the port: the buffer `build_segment` and
        // `checksum_v4` make, and, sent, the frame of the full path.
        let shapes = straight_shapes(1448);
        let tuple = tuple(false);
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (tuple.local.ip(), tuple.remote.ip()) else {
            unreachable!("an IPv4 tuple");
        };
        let ports = (tuple.local.port(), tuple.remote.port());
        let pseudo_addrs = pseudo_header_v4(src, dst, IpProtocol::Tcp.raw(), 0);
        // The data's sum known (the send queue took it as it copied
        // them) or not: the same checksum.
        for (offload, known_sum) in [(false, false), (false, true), (true, false), (true, true)] {
            for &(len, ts, flags) in &shapes {
                let (mut quiet, mut full) = straight_pair(len, ts, flags);
                if known_sum {
                    quiet.fields.payload_sum =
                        quiet.payload.as_ref().map_or(SummedLen::NONE, |p| {
                            SummedLen::new(len, sum_from(0, p.data()))
                        });
                }
                let (pair, _) = with_state_at(5, &mut state(), |cx| {
                    let (straight, header) =
                        build_quiet_v4(cx.port(), ports, quiet.seg(), offload, pseudo_addrs)
                            .unwrap();
                    let (buf, full_header, _) = build_segment(cx, &tuple, &mut full).unwrap();
                    let buf = checksum_v4(buf, offload, (src, dst));
                    assert_eq!(header, full_header, "{len} bytes, timestamps {ts}");
                    (straight, buf)
                });
                let (straight, full) = pair;
                assert_eq!(
                    bytes(&straight),
                    bytes(&full),
                    "{len} bytes, timestamps {ts}"
                );
                assert_eq!(straight.is_chained(), full.is_chained());
                assert_eq!(
                    straight.meta().tx.l4_checksum(),
                    full.meta().tx.l4_checksum()
                );
                assert_eq!(straight.meta().tx.l4_checksum().is_some(), offload);
            }
        }
        // Sent: the full path through `send_segment`, the straight one on
        // a way out the first segment built; the same frames, IP IDs and
        // all, from two egress parts of one configuration.
        let (mut full_st, mut straight_st) = (state(), state());
        let mut path = PathV4::default();
        let first = |st: &mut St, straight: bool, path: &mut PathV4| {
            let (_, mut seg) = straight_pair(10, true, TcpFlags::PSH);
            with_state_at(5, st, |cx| {
                if !straight {
                    return send_segment(cx, &tuple, seg, None);
                }
                let (buf, header, offload) = build_segment(cx, &tuple, &mut seg)?;
                let buf = checksum_v4(buf, offload, (src, dst));
                let (st, port) = cx.split();
                st.egress
                    .send_tcp_v4_on(port, buf, path, (src, dst), header)
            })
        };
        let (sent, mut full_frames) = first(&mut full_st, false, &mut path);
        assert_eq!(sent, Ok(Sent::Queued));
        let (sent, mut straight_frames) = first(&mut straight_st, true, &mut path);
        assert_eq!(sent, Ok(Sent::Queued));
        assert!(
            straight_st.egress.path_is_current(&path),
            "built by the first segment"
        );
        for &(len, ts, flags) in &shapes {
            let (mut quiet, full) = straight_pair(len, ts, flags);
            let (sent, frames) =
                with_state_at(6, &mut full_st, |cx| send_segment(cx, &tuple, full, None));
            assert_eq!(sent, Ok(Sent::Queued));
            full_frames.extend(frames);
            let (sent, frames) = with_state_at(6, &mut straight_st, |cx| {
                let (st, port) = cx.split();
                let caps = st.egress.path_caps(port.caps());
                let (buf, header) = build_quiet_v4(
                    port,
                    ports,
                    quiet.seg(),
                    caps.tcp_checksum,
                    path.tcp_pseudo(),
                )?;
                st.egress
                    .send_tcp_v4_current(port, buf, &mut path, header, &caps)
            });
            assert_eq!(sent, Ok(Sent::Queued));
            straight_frames.extend(frames);
        }
        assert_eq!(full_frames.len(), shapes.len() + 1);
        assert_eq!(straight_frames.len(), shapes.len() + 1);
        // Each egress part starts its IPv4 IDs at its own random point:
        // the IDs follow one another in each, and every header checksum
        // verifies; all the rest is byte for byte the same.
        let ids = |frames: &[PoolBuf]| -> Vec<u16> {
            frames
                .iter()
                .map(|f| u16::from_be_bytes([bytes(f)[18], bytes(f)[19]]))
                .collect()
        };
        for ids in [ids(&full_frames), ids(&straight_frames)] {
            assert!(
                ids.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
                "{ids:?}"
            );
        }
        for (i, (f, s)) in full_frames.iter().zip(&straight_frames).enumerate() {
            let (mut f, mut s) = (bytes(f), bytes(s));
            for frame in [&f, &s] {
                let mut c = tpa::header::checksum::Checksum::new();
                c.add_bytes(&frame[14..34]);
                assert_eq!(
                    c.sum(),
                    0xffff,
                    "frame {i}: the IPv4 header checksum verifies"
                );
            }
            for frame in [&mut f, &mut s] {
                frame[18..20].fill(0);
                frame[24..26].fill(0);
            }
            assert!(f == s, "frame {i} differs: full {f:?}, straight {s:?}");
        }
        let counters = |st: &St| format!("{:?}", st.egress.counters());
        assert_eq!(counters(&straight_st), counters(&full_st));
        drop((full_frames, straight_frames));
        pool().assert_whole();
    }

    #[test]
    fn the_straight_case_over_ipv6_puts_the_frames_of_the_full_path_on_the_wire() {
        // The shapes of the IPv4 test, over IPv6: the buffer
        // `build_segment` and `checksum_v6` make, and, sent on the
        // connection's IPv6 way out, the frame `send_segment` sends.
        let shapes = straight_shapes(1428);
        let tuple = tuple(true);
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (tuple.local.ip(), tuple.remote.ip()) else {
            unreachable!("an IPv6 tuple");
        };
        let ports = (tuple.local.port(), tuple.remote.port());
        for offload in [false, true] {
            for &(len, ts, flags) in &shapes {
                let (mut quiet, mut full) = straight_pair(len, ts, flags);
                let (pair, _) = with_state_at(5, &mut state(), |cx| {
                    let (straight, header) =
                        build_quiet_v6(cx.port(), ports, quiet.seg(), offload, &tuple).unwrap();
                    let (buf, full_header, _) = build_segment(cx, &tuple, &mut full).unwrap();
                    let buf = checksum_other(buf, offload, &tuple);
                    assert_eq!(header, full_header, "{len} bytes, timestamps {ts}");
                    (straight, buf)
                });
                let (straight, full) = pair;
                assert_eq!(
                    bytes(&straight),
                    bytes(&full),
                    "{len} bytes, timestamps {ts}"
                );
                assert_eq!(straight.is_chained(), full.is_chained());
                assert_eq!(
                    straight.meta().tx.l4_checksum(),
                    full.meta().tx.l4_checksum()
                );
                assert_eq!(straight.meta().tx.l4_checksum().is_some(), offload);
            }
        }
        let (mut full_st, mut straight_st) = (state(), state());
        let mut path = PathV6::default();
        let (mut full_frames, mut straight_frames) = (Vec::new(), Vec::new());
        for (i, &(len, ts, flags)) in shapes.iter().enumerate() {
            let (mut quiet, full) = straight_pair(len, ts, flags);
            let (sent, frames) =
                with_state_at(6, &mut full_st, |cx| send_segment(cx, &tuple, full, None));
            assert_eq!(sent, Ok(Sent::Queued));
            full_frames.extend(frames);
            let (sent, frames) = with_state_at(6, &mut straight_st, |cx| {
                let (st, port) = cx.split();
                let caps = st.egress.path_caps(port.caps());
                let (buf, header) =
                    build_quiet_v6(port, ports, quiet.seg(), caps.tcp_checksum, &tuple)?;
                if i == 0 {
                    // The first segment builds the way out.
                    return st
                        .egress
                        .send_tcp_v6_on(port, buf, &mut path, (src, dst), header);
                }
                st.egress
                    .send_tcp_v6_current(port, buf, &path, header, &caps)
            });
            assert_eq!(sent, Ok(Sent::Queued));
            assert!(straight_st.egress.path6_is_current(&path));
            straight_frames.extend(frames);
        }
        assert_eq!(full_frames.len(), shapes.len());
        assert_eq!(straight_frames.len(), shapes.len());
        for (i, (f, s)) in full_frames.iter().zip(&straight_frames).enumerate() {
            assert_eq!(bytes(f), bytes(s), "frame {i}");
            assert_eq!(f.meta().layers, s.meta().layers, "frame {i}");
        }
        let counters = |st: &St| format!("{:?}", st.egress.counters());
        assert_eq!(counters(&straight_st), counters(&full_st));
        // Past the MTU: refused as the full path refuses it.
        let (sent, frames) = with_state_at(7, &mut straight_st, |cx| {
            let (st, port) = cx.split();
            let mut caps = st.egress.path_caps(port.caps());
            caps.mtu = 40 + 32 + 100 - 1;
            let (mut quiet, _) = straight_pair(100, true, TcpFlags(0));
            let (buf, header) = build_quiet_v6(port, ports, quiet.seg(), false, &tuple)?;
            st.egress
                .send_tcp_v6_current(port, buf, &path, header, &caps)
        });
        assert_eq!((sent, frames.len()), (Err(SocketError::MessageTooLong), 0));
        assert_eq!(straight_st.egress.counters().too_big, 1);
        drop((full_frames, straight_frames));
        pool().assert_whole();
    }

    #[test]
    fn the_straight_case_refuses_a_segment_past_the_mtu_as_the_full_path_does() {
        let tuple = tuple(false);
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (tuple.local.ip(), tuple.remote.ip()) else {
            unreachable!("an IPv4 tuple");
        };
        let mut st = state();
        let mut path = PathV4::default();
        let (_, mut seg) = straight_pair(10, true, TcpFlags(0));
        let (sent, _) = with_state_at(5, &mut st, |cx| {
            let (buf, header, offload) = build_segment(cx, &tuple, &mut seg)?;
            let buf = checksum_v4(buf, offload, (src, dst));
            let (st, port) = cx.split();
            st.egress
                .send_tcp_v4_on(port, buf, &mut path, (src, dst), header)
        });
        assert_eq!(sent, Ok(Sent::Queued));
        let (sent, frames) = with_state_at(6, &mut st, |cx| {
            let (st, port) = cx.split();
            let mut caps = st.egress.path_caps(port.caps());
            // One byte short of the segment's IPv4 packet.
            caps.mtu = 20 + 32 + 100 - 1;
            let (mut quiet, _) = straight_pair(100, true, TcpFlags(0));
            let ports = (tuple.local.port(), tuple.remote.port());
            let (buf, header) = build_quiet_v4(port, ports, quiet.seg(), false, path.tcp_pseudo())?;
            st.egress
                .send_tcp_v4_current(port, buf, &mut path, header, &caps)
        });
        assert_eq!(sent, Err(SocketError::MessageTooLong));
        assert!(frames.is_empty());
        assert_eq!(st.egress.counters().too_big, 1);
        pool().assert_whole();
    }

    fn data_segment(seq: u32, len: usize, fill: u8, psh: bool) -> SegmentOut<PoolBuf> {
        let mut data = pool().alloc().unwrap();
        data.extend_from_slice(&vec![fill; len]).unwrap();
        SegmentOut {
            seq: SeqNumber::new(seq),
            ack: SeqNumber::new(2000),
            flags: if psh {
                TcpFlags::ACK | TcpFlags::PSH
            } else {
                TcpFlags::ACK
            },
            window: 4321,
            options: OptionsOut {
                timestamps: Some((5, 6)),
                ..OptionsOut::default()
            },
            payload: Some(data.share()),
        }
    }

    #[test]
    fn back_to_back_segments_leave_as_one_super_segment_with_a_tso_request() {
        use crate::tcp::tso::{joinable, Batch};
        for v6 in [false, true] {
            let mut st = state();
            let (a, b, c) = (
                data_segment(1000, 1000, 1, false),
                data_segment(2000, 1000, 2, true),
                data_segment(3000, 500, 3, false),
            );
            assert!(joinable(&a) && Batch::pair(&a, &b));
            assert!(!Batch::pair(&c, &a), "out of sequence");
            let syn = SegmentOut {
                flags: TcpFlags::SYN | TcpFlags::ACK,
                ..data_segment(1000, 10, 0, false)
            };
            assert!(!joinable(&syn));
            let (sent, frames) = with_state_at(5, &mut st, |cx| {
                let mut batch = Batch::start(cx, &tuple(v6), a, 45).unwrap();
                for seg in [b, c] {
                    assert!(batch.accepts(&seg));
                    batch.push(cx, seg).unwrap();
                }
                // After a short segment nothing more joins; nor does one
                // with another ACK number.
                let after_short = data_segment(3500, 400, 4, false);
                assert!(!batch.accepts(&after_short));
                let other_ack = SegmentOut {
                    ack: SeqNumber::new(2001),
                    ..data_segment(3500, 500, 4, false)
                };
                assert!(!batch.accepts(&other_ack));
                assert_eq!(batch.segments(), 3);
                batch.send(cx, &tuple(v6))
            });
            assert_eq!(sent, Ok(Sent::Queued), "v6 {v6}");
            assert_eq!(frames.len(), 1, "v6 {v6}");
            assert_eq!(frames[0].meta().tx.tso_mss(), Some(1000), "v6 {v6}");
            assert_eq!(
                frames[0].meta().tx.l4_checksum(),
                Some(L4Protocol::Tcp),
                "v6 {v6}"
            );
            // The port cuts it back at the engine's segments.
            let cut = tpa::port::offload::TsoSegments::new(&frames[0], 1000).unwrap();
            assert_eq!(cut.remaining(), 3, "v6 {v6}");
            // Its checksum done whole in software, it parses and verifies.
            let mut frame = frames.into_iter().next().unwrap();
            frame.meta_mut().tx.request_tso(0);
            let done = tpa::port::offload::prepare(&mut frame, &Default::default());
            assert_eq!(done, Ok(tpa::port::offload::Prepared::Done), "v6 {v6}");
            let p = parse_tcp(&bytes(&frame));
            assert_eq!(
                (p.seq, p.ack, p.flags),
                (1000, 2000, 0x18),
                "v6 {v6}: PSH joins"
            );
            let mut want = vec![1u8; 1000];
            want.extend_from_slice(&[2; 1000]);
            want.extend_from_slice(&[3; 500]);
            assert_eq!(p.payload, want, "v6 {v6}");
            drop(frame);
        }
        pool().assert_whole();
    }

    #[test]
    fn a_syn_carries_its_options_and_round_trips_through_parse() {
        let mut st = state();
        let seg: SegmentOut<PoolBuf> = SegmentOut {
            seq: SeqNumber::new(7),
            ack: SeqNumber::new(99),
            flags: TcpFlags::SYN,
            window: 65535,
            options: OptionsOut {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((1, 0)),
                sack: None,
            },
            payload: None,
        };
        let (_, frames) = with_state_at(5, &mut st, |cx| {
            send_segment(cx, &tuple(false), seg, None).unwrap()
        });
        let frame = bytes(&frames[0]);
        let p = parse_tcp(&frame);
        assert_eq!(p.ack, 0, "no ACK flag, no acknowledgment number");
        assert_eq!(p.options.len(), 24);
        drop(frames);
        // Our own frame parsed by our own input, from the peer's side.
        let mut back = frame.clone();
        back[0..6].copy_from_slice(&crate::tcp::testing::US_MAC);
        let r = parse(crate::tcp::testing::tcp_packet(&swap_ends(&back))).unwrap();
        let o = r.segment.options;
        assert_eq!(
            (o.mss, o.window_scale, o.sack_permitted),
            (Some(1460), Some(7), true)
        );
        assert_eq!(o.timestamps, Some((1, 0)));
        pool().assert_whole();
    }

    /// An IPv4 frame with its addresses swapped (checksums unchanged: the
    /// sums are symmetric in the addresses).
    fn swap_ends(frame: &[u8]) -> Vec<u8> {
        let mut f = frame.to_vec();
        let (src, dst) = (f[26..30].to_vec(), f[30..34].to_vec());
        f[26..30].copy_from_slice(&dst);
        f[30..34].copy_from_slice(&src);
        f
    }

    #[test]
    fn an_offloaded_checksum_is_asked_of_the_port() {
        let mut buf = pool().alloc().unwrap();
        buf.extend_from_slice(&[0; 20]).unwrap();
        finish_checksum(&mut buf, &tuple(false), 20, true);
        assert_eq!(buf.meta().tx.l4_checksum(), Some(L4Protocol::Tcp));
        drop(buf);
        pool().assert_whole();
    }

    #[test]
    fn timestamps_alone_are_written_as_the_writer_lays_them_out() {
        let opts = OptionsOut {
            timestamps: Some((0x0102_0304, 0xa0b0_c0d0)),
            ..OptionsOut::default()
        };
        let (mut fast, mut general) = ([0u8; 40], [0u8; 40]);
        assert_eq!(write_options(&mut fast, &opts), 12);
        assert_eq!(write_options_in_order(&mut general, &opts), 12);
        assert_eq!(fast, general);
        // No room for them: nothing written, as the writer does.
        assert_eq!(
            write_options(&mut fast[..8], &opts),
            write_options_in_order(&mut general[..8], &opts)
        );
    }
}
