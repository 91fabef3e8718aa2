//! The socket calls of the application: bind, close, receive and send,
//! over the [`Cx`] the loop hands to the app (or a stage).

use std::net::{IpAddr, SocketAddr};

use tpa::app::{SocketError, SocketId};
use tpa::buf::{L4Protocol, PacketBuf};
use tpa::header::checksum::{pseudo_header_v4, pseudo_header_v6, sum_from, Checksum};
use tpa::stage::Cx;
use tpa::state::{Part, Parts};
use tpa::wire::ipv4::IpProtocol;
use tpa::wire::udp::Udp;

use super::{Datagram, UdpSockets};
use crate::egress::{send_ip, Egress, IpSend, Sent};

/// Opens a UDP socket bound to `local`; see [`UdpSockets::bind`].
///
/// # Errors
///
/// As [`UdpSockets::bind`].
pub fn bind<B, S>(cx: &mut Cx<'_, B, S>, local: SocketAddr) -> Result<SocketId, SocketError>
where
    B: PacketBuf,
    S: Parts<(UdpSockets<B>, Egress<B>)>,
{
    let (sockets, egress) = cx.state_mut().parts();
    sockets.bind(local, egress.interface())
}

/// Closes `socket`; see [`UdpSockets::close`].
///
/// # Errors
///
/// [`BadSocket`](SocketError::BadSocket) for a handle that is not an open
/// UDP socket's.
pub fn close<B: PacketBuf, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<(), SocketError>
where
    S: Part<UdpSockets<B>>,
{
    cx.part::<UdpSockets<B>>().close(socket)
}

/// The pending ICMP error of `socket` (port unreachable from a peer…)
/// and the peer it concerns, cleared by the call; see
/// [`UdpSockets::take_error`]. An [`EventKind::Error`](tpa::app::EventKind)
/// said it came.
///
/// # Errors
///
/// [`BadSocket`](SocketError::BadSocket) for a stale or foreign handle.
pub fn take_error<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
) -> Result<Option<(SocketError, SocketAddr)>, SocketError>
where
    B: PacketBuf,
    S: Part<UdpSockets<B>>,
{
    cx.part::<UdpSockets<B>>().take_error(socket)
}

/// The oldest datagram waiting on `socket`, zero-copy: the received buffer
/// itself, released when the [`Datagram`] is dropped.
///
/// Readiness is edge-triggered: [`EventKind::Readable`](tpa::app::EventKind)
/// comes when the queue turns non-empty, so a handler receives until
/// [`WouldBlock`](SocketError::WouldBlock).
///
/// # Errors
///
/// [`WouldBlock`](SocketError::WouldBlock) when nothing waits,
/// [`BadSocket`](SocketError::BadSocket) for a stale or foreign handle.
#[inline]
pub fn recv<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<Datagram<B>, SocketError>
where
    B: PacketBuf,
    S: Part<UdpSockets<B>>,
{
    cx.part::<UdpSockets<B>>().recv(socket)
}

/// Sends `payload` from `socket` to `dst`, copying it into a buffer from
/// the port's pool.
///
/// # Errors
///
/// [`NoBuffers`](SocketError::NoBuffers) when the pool is empty;
/// [`MessageTooLong`](SocketError::MessageTooLong) when it does not fit a
/// buffer or the path; otherwise as [`send_buf_to`].
pub fn send_to<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    dst: SocketAddr,
    payload: &[u8],
) -> Result<Sent, SocketError>
where
    B: PacketBuf,
    S: Part<UdpSockets<B>> + Part<Egress<B>>,
{
    let result = (|| {
        let ends = endpoints(cx, socket, dst)?;
        let mut buf = cx.alloc().ok_or(SocketError::NoBuffers)?;
        if buf.headroom() < Udp::LEN {
            return Err(SocketError::NoBuffers);
        }
        buf.append(payload.len())
            .map_err(|_| SocketError::MessageTooLong)?
            .copy_from_slice(payload);
        send_datagram(cx, socket, ends, buf)
    })();
    cx.part::<UdpSockets<B>>()
        .count_send(socket, result.is_ok());
    result
}

/// Sends the buffer `payload` (its data, every segment of it, is the
/// datagram's payload) from `socket` to `dst` without copying it: the UDP
/// header goes into its headroom, the IP and Ethernet headers in front of
/// that. A received [`Datagram`] becomes such a buffer with
/// [`Datagram::into_payload`]. The buffer is released when the send fails.
///
/// The checksum is the port's work where it offloads UDP checksums, and
/// computed here otherwise.
///
/// # Errors
///
/// [`BadSocket`](SocketError::BadSocket) for a stale handle;
/// [`InvalidArgument`](SocketError::InvalidArgument) for a destination of
/// the other family, the unspecified address or port 0;
/// [`NetworkUnreachable`](SocketError::NetworkUnreachable) without a route;
/// [`MessageTooLong`](SocketError::MessageTooLong) over 65507 bytes or the
/// path's MTU; [`NoBuffers`](SocketError::NoBuffers) without headroom for
/// the headers or room in the neighbor's hold queue. A neighbor that never
/// answers is reported later, as an [`EventKind::Error`](tpa::app::EventKind)
/// of [`HostUnreachable`](SocketError::HostUnreachable) on the socket.
pub fn send_buf_to<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    dst: SocketAddr,
    payload: B,
) -> Result<Sent, SocketError>
where
    B: PacketBuf,
    S: Part<UdpSockets<B>> + Part<Egress<B>>,
{
    let result =
        endpoints(cx, socket, dst).and_then(|ends| send_datagram(cx, socket, ends, payload));
    cx.part::<UdpSockets<B>>()
        .count_send(socket, result.is_ok());
    result
}

/// The two ends of a datagram: addresses and ports.
#[derive(Debug, Clone, Copy)]
struct Ends {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
}

/// The ends of a datagram from `socket` to `dst`.
#[inline]
fn endpoints<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    dst: SocketAddr,
) -> Result<Ends, SocketError>
where
    B: PacketBuf,
    S: Part<UdpSockets<B>> + Part<Egress<B>>,
{
    let (local, src_port) = cx.part::<UdpSockets<B>>().local(socket)?;
    let (dst, dst_port) = (dst.ip(), dst.port());
    if dst_port == 0 || dst.is_unspecified() || dst.is_ipv4() != local.is_ipv4() {
        return Err(SocketError::InvalidArgument);
    }
    let src = if local.is_unspecified() {
        cx.part::<Egress<B>>()
            .route_source_for(dst)
            .ok_or(SocketError::NetworkUnreachable)?
    } else {
        local
    };
    Ok(Ends {
        src,
        dst,
        src_port,
        dst_port,
    })
}

/// The largest UDP payload an IPv4 datagram carries (65535 less the IP and
/// UDP headers).
const MAX_PAYLOAD: usize = 65_507;

/// Prepends the UDP header to `buf` (whose data is the payload), fills or
/// requests the checksum and hands it to the egress path.
#[inline]
fn send_datagram<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    ends: Ends,
    mut buf: B,
) -> Result<Sent, SocketError>
where
    B: PacketBuf,
    S: Part<Egress<B>>,
{
    let payload_len = buf.total_len();
    if payload_len > MAX_PAYLOAD {
        return Err(SocketError::MessageTooLong);
    }
    let len = Udp::LEN + payload_len;
    let offload = cx.caps().tx_offloads.udp_checksum;
    let header = buf.prepend(Udp::LEN).map_err(|_| SocketError::NoBuffers)?;
    let udp = Udp {
        src_port: ends.src_port,
        dst_port: ends.dst_port,
        total_len: len as u16,
        checksum: 0,
    };
    udp.emit(header).map_err(|_| SocketError::NoBuffers)?;
    finish_checksum(&mut buf, &ends, len, offload);
    let ip = IpSend {
        src: ends.src,
        dst: ends.dst,
        protocol: IpProtocol::Udp,
        hop_limit: None,
        owner: Some(socket),
    };
    send_ip(cx, buf, ip)
}

/// Asks the port for the checksum of the datagram at `buf.data()` when it
/// `offload`s it, or computes it into the header now.
#[inline]
fn finish_checksum<B: PacketBuf>(buf: &mut B, ends: &Ends, len: usize, offload: bool) {
    let meta = buf.meta_mut();
    meta.tx.clear();
    if offload {
        meta.tx.request_l4_checksum(L4Protocol::Udp);
    } else {
        let sum = checksum(buf, ends.src, ends.dst, len);
        buf.data_mut()[6..8].copy_from_slice(&sum.to_be_bytes());
    }
}

/// The UDP checksum of the datagram in `buf` (header with a zero checksum
/// field, then the payload over every segment), `len` bytes from `src` to
/// `dst`; a computed 0 is sent as 0xffff (RFC 768).
#[inline]
fn checksum<B: PacketBuf>(buf: &B, src: IpAddr, dst: IpAddr, len: usize) -> u16 {
    let protocol = IpProtocol::Udp.raw();
    let pseudo = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_header_v4(s, d, protocol, len as u16),
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_header_v6(&s, &d, protocol, len as u32),
        // `endpoints` made both the same family.
        _ => 0,
    };
    let sum = if buf.is_chained() {
        let mut c = Checksum::new();
        c.add_sum(pseudo);
        for segment in buf.segments() {
            c.add_bytes(segment);
        }
        c.sum()
    } else {
        sum_from(pseudo, buf.data())
    };
    match !sum {
        0 => 0xffff,
        checksum => checksum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, BufferPool};
    use crate::udp::testing::{
        frame_to_us, them, udp_packet, v6, with_state_at, UdpState, THEM6, THEM_MAC, US4, US6,
    };
    use crate::udp::UdpInput;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use tpa::buf::PoolBuf;
    use tpa::stage::{Stage, Verdict};

    /// The UDP datagram in `frame` as an independent parser reads it:
    /// source, destination, payload; panics unless its checksum verifies.
    fn parse(frame: &[u8]) -> (SocketAddr, SocketAddr, Vec<u8>) {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(TransportSlice::Udp(udp)) = p.transport else {
            panic!("not UDP");
        };
        let header = udp.to_header();
        let (src, dst, sum): (IpAddr, IpAddr, u16) = match p.net {
            Some(NetSlice::Ipv4(ip)) => {
                let (s, d) = (ip.header().source(), ip.header().destination());
                (
                    s.into(),
                    d.into(),
                    header.calc_checksum_ipv4_raw(s, d, udp.payload()).unwrap(),
                )
            }
            Some(NetSlice::Ipv6(ip)) => {
                let (s, d) = (ip.header().source(), ip.header().destination());
                (
                    s.into(),
                    d.into(),
                    header.calc_checksum_ipv6_raw(s, d, udp.payload()).unwrap(),
                )
            }
            _ => panic!("not IP"),
        };
        assert_eq!(header.checksum, sum, "checksum");
        (
            SocketAddr::new(src, header.source_port),
            SocketAddr::new(dst, header.destination_port),
            udp.payload().to_vec(),
        )
    }

    #[test]
    fn send_to_copies_into_a_datagram_that_verifies() {
        for is_v6 in [false, true] {
            let mut state = UdpState::new();
            state.know_peer();
            let (local, peer): (SocketAddr, SocketAddr) = if is_v6 {
                (
                    format!("[{US6}]:4000").parse().unwrap(),
                    format!("[{THEM6}]:53").parse().unwrap(),
                )
            } else {
                ((US4, 4000).into(), (them(false), 53).into())
            };
            let (sent, frames) = with_state_at(5, &mut state, |cx| {
                let s = bind(cx, local).unwrap();
                let odd = send_to(cx, s, peer, b"odd").unwrap();
                let empty = send_to(cx, s, peer, b"").unwrap();
                (
                    odd,
                    empty,
                    cx.part::<UdpSockets<PoolBuf>>().counters(s).unwrap().sent,
                )
            });
            assert_eq!(sent, (Sent::Queued, Sent::Queued, 2));
            assert_eq!(frames.len(), 2);
            assert_eq!(parse(frames[0].data()), (local, peer, b"odd".to_vec()));
            assert_eq!(parse(frames[1].data()), (local, peer, vec![]));
            assert_eq!(&frames[0].data()[..6], &THEM_MAC);
        }
        pool().assert_whole();
    }

    #[test]
    fn a_received_datagram_is_echoed_without_a_copy() {
        for is_v6 in [false, true] {
            let mut state = UdpState::new();
            state.know_peer();
            let wildcard: SocketAddr = if is_v6 { "[::]:7" } else { "0.0.0.0:7" }.parse().unwrap();
            let s = state
                .sockets
                .bind(wildcard, state.egress.interface())
                .unwrap();
            let payload: Vec<u8> = (0..=255).collect();
            let packet = udp_packet(&frame_to_us(is_v6, 5555, 7, &payload));
            let mut stage = UdpInput::default();
            let (_, frames) = with_state_at(5, &mut state, |cx| {
                assert!(matches!(stage.process(packet, cx), Verdict::Consumed));
                let d = recv(cx, s).unwrap();
                let from = d.from();
                let buf = d.into_payload();
                let in_use = pool().stats().in_use;
                assert_eq!(send_buf_to(cx, s, from, buf), Ok(Sent::Queued));
                assert_eq!(
                    pool().stats().in_use,
                    in_use,
                    "no buffer taken for the reply"
                );
            });
            assert_eq!(frames.len(), 1);
            let (src, dst, echoed) = parse(frames[0].data());
            assert_eq!((src.port(), dst), (7, SocketAddr::new(them(is_v6), 5555)));
            assert_eq!(echoed, payload);
        }
        pool().assert_whole();
    }

    #[test]
    fn a_chained_payload_is_checksummed_over_every_segment() {
        let mut state = UdpState::new();
        state.know_peer();
        let peer: SocketAddr = (them(false), 53).into();
        let (_, frames) = with_state_at(5, &mut state, |cx| {
            let s = bind(cx, "0.0.0.0:4000".parse().unwrap()).unwrap();
            let mut head = cx.alloc().unwrap();
            head.append(3).unwrap().copy_from_slice(b"odd");
            let mut tail = cx.alloc().unwrap();
            tail.append(100).unwrap().fill(0xa5);
            assert!(head.chain(tail).is_ok());
            assert_eq!(send_buf_to(cx, s, peer, head), Ok(Sent::Queued));
        });
        assert_eq!(frames.len(), 1);
        let bytes: Vec<u8> = frames[0].segments().flatten().copied().collect();
        let mut want = b"odd".to_vec();
        want.extend([0xa5; 100]);
        assert_eq!(parse(&bytes).2, want);
        drop(frames);
        pool().assert_whole();
    }

    #[test]
    fn bad_sends_are_refused_with_their_errno() {
        let mut state = UdpState::new();
        state.know_peer();
        let peer4: SocketAddr = (them(false), 9).into();
        with_state_at(5, &mut state, |cx| {
            let s = bind(cx, "0.0.0.0:0".parse().unwrap()).unwrap();
            let s6 = bind(cx, "[::]:0".parse().unwrap()).unwrap();
            assert_eq!(
                bind(cx, "203.0.113.1:1".parse().unwrap()),
                Err(SocketError::AddressNotAvailable)
            );
            let off_link: SocketAddr = "203.0.113.9:9".parse().unwrap();
            assert_eq!(
                send_to(cx, s, off_link, b"x"),
                Err(SocketError::NetworkUnreachable)
            );
            assert_eq!(
                send_to(cx, s6, peer4, b"x"),
                Err(SocketError::InvalidArgument)
            );
            assert_eq!(
                send_to(cx, s, (them(false), 0).into(), b"x"),
                Err(SocketError::InvalidArgument)
            );
            let big = vec![0u8; 4000];
            assert_eq!(
                send_to(cx, s, peer4, &big),
                Err(SocketError::MessageTooLong)
            );
            let mtu_plus = vec![0u8; 1500];
            assert_eq!(
                send_to(cx, s, peer4, &mtu_plus),
                Err(SocketError::MessageTooLong)
            );
            let errors = cx
                .part::<UdpSockets<PoolBuf>>()
                .counters(s)
                .unwrap()
                .send_errors;
            assert_eq!(errors, 4);
            close(cx, s).unwrap();
            assert_eq!(send_to(cx, s, peer4, b"x"), Err(SocketError::BadSocket));
            assert_eq!(recv(cx, s).unwrap_err(), SocketError::BadSocket);
            assert_eq!(close(cx, s), Err(SocketError::BadSocket));
            // A buffer without room for the header is refused, not written.
            let mut tight = cx.alloc().unwrap();
            let room = tight.headroom();
            tight.prepend(room).unwrap();
            assert_eq!(
                send_buf_to(cx, s6, (v6(THEM6), 9).into(), tight),
                Err(SocketError::NoBuffers)
            );
        });
        pool().assert_whole();
    }

    #[test]
    fn an_offloaded_checksum_is_asked_of_the_port_and_verifies_once_done() {
        use tpa::buf::LayerOffsets;
        use tpa::port::offload::{prepare, Prepared};
        use tpa::port::Offloads;
        let (src, dst): (IpAddr, IpAddr) = (US4.into(), them(false));
        let mut ours = crate::testing::frame(&frame_to_us(false, 1, 2, b"hello"));
        // Our own datagram, header and payload at data(), as egress gets it.
        ours.trim_front(34).unwrap();
        let ends = Ends {
            src,
            dst,
            src_port: 2,
            dst_port: 1,
        };
        let len = ours.len();
        finish_checksum(&mut ours, &ends, len, true);
        let request = ours.meta().tx;
        assert_eq!(request.l4_checksum(), Some(L4Protocol::Udp));
        drop(ours);
        // What egress and then a port without the offload do with it, on
        // the frame etherparse built (its checksum zeroed): the sum must
        // come back as it was.
        let mut frame = crate::testing::frame(&frame_to_us(false, 1, 2, b"hello"));
        frame.data_mut()[34 + 6..34 + 8].fill(0);
        frame.meta_mut().tx = request;
        frame.meta_mut().layers = LayerOffsets {
            l2: 0,
            l3: 14,
            l4: 34,
            payload: 42,
        };
        assert_eq!(
            prepare(&mut frame, &Offloads::default()),
            Ok(Prepared::Done)
        );
        parse(frame.data());
        drop(frame);
        pool().assert_whole();
    }
}
