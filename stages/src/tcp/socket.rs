//! The socket calls of the application, over the [`Cx`] the loop hands to
//! the app (or a stage): listen, connect, accept, receive, read, send,
//! shutdown, close, abort, info. Errors are errno-like [`SocketError`]s.
//!
//! Segments the calls cause (the SYN of a connect, the data of a send, a
//! FIN, a window update after a read) leave at the TCP input stage's
//! next poll, in the same loop iteration when the call is made from the
//! app.
//!
//! ```
//! use tpa::app::{SocketError, SocketId};
//! use tpa::buf::PacketBuf;
//! use tpa::stage::Cx;
//! use tpa::state::Part;
//! use tpa_stages::tcp::{self, TcpSockets};
//!
//! /// Echoes what `socket` received, copying; stops when the send queue
//! /// is full (the data stays queued until the next `Writable`).
//! fn echo<B: PacketBuf, S: Part<TcpSockets<B>>>(cx: &mut Cx<'_, B, S>, socket: SocketId) {
//!     let mut chunk = [0u8; 1024];
//!     loop {
//!         let room = tcp::send_space(cx, socket).unwrap_or(0).min(chunk.len());
//!         match tcp::read(cx, socket, &mut chunk[..room.max(1)]) {
//!             Ok(0) | Err(_) => break, // end of stream, or nothing (WouldBlock)
//!             Ok(n) => {
//!                 let _ = tcp::send(cx, socket, &chunk[..n]);
//!             }
//!         }
//!     }
//! }
//! ```

use std::net::SocketAddr;

use tpa::app::{SocketError, SocketId};
use tpa::buf::PacketBuf;
use tpa::stage::Cx;
use tpa::state::{Part, Parts};

use super::conn::{Connection, TcpInfo};
use super::mss::mss_for;
use super::socket_ref::socket_ref;
use super::sockets::TcpSockets;
use crate::egress::Egress;

/// Opens a listener on `local` (one of our addresses, or a family's
/// unspecified address) holding at most `backlog` unaccepted connections
/// (capped by `TcpConfig::backlog`). New connections raise
/// [`Accepted`](tpa::app::EventKind::Accepted) once established and wait
/// for [`accept`].
///
/// # Errors
///
/// As [`TcpSockets::listen`].
///
/// ```
/// # use tpa::app::{SocketError, SocketId};
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Parts;
/// # use tpa_stages::egress::Egress;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// Serves port 80 on every IPv4 address of the interface.
/// fn serve<B: PacketBuf, S: Parts<(TcpSockets<B>, Egress<B>)>>(
///     cx: &mut Cx<'_, B, S>,
/// ) -> Result<SocketId, SocketError> {
///     tcp::listen(cx, "0.0.0.0:80".parse().unwrap(), 128)
/// }
/// ```
pub fn listen<B, S>(
    cx: &mut Cx<'_, B, S>,
    local: SocketAddr,
    backlog: usize,
) -> Result<SocketId, SocketError>
where
    B: PacketBuf,
    S: Parts<(TcpSockets<B>, Egress<B>)>,
{
    let (sockets, egress) = cx.state_mut().parts();
    sockets.listen(local, backlog, egress.interface())
}

/// Opens a connection to `remote` from the address the route to it
/// chooses and an ephemeral port whose replies land on this worker's
/// queue. Returns at once (the handshake is under way, as
/// `EINPROGRESS`): [`Writable`](tpa::app::EventKind::Writable) says it is
/// established, [`Error`](tpa::app::EventKind::Error) with
/// `ConnectionRefused` or `TimedOut` that it failed.
///
/// # Errors
///
/// `NetworkUnreachable` without a route; otherwise as
/// [`TcpSockets::connect`].
///
/// ```
/// # use std::net::SocketAddr;
/// # use tpa::app::{SocketError, SocketId};
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::egress::Egress;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// Opens a connection; an unroutable peer is refused at once.
/// fn open<B: PacketBuf, S: Part<TcpSockets<B>> + Part<Egress<B>>>(
///     cx: &mut Cx<'_, B, S>,
///     peer: SocketAddr,
/// ) -> Option<SocketId> {
///     match tcp::connect(cx, peer) {
///         Ok(socket) => Some(socket), // `Writable` follows once established
///         Err(SocketError::NetworkUnreachable) => None,
///         Err(_) => None,
///     }
/// }
/// ```
pub fn connect<B, S>(cx: &mut Cx<'_, B, S>, remote: SocketAddr) -> Result<SocketId, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Egress<B>>,
{
    let egress = cx.part::<Egress<B>>();
    let local = egress
        .route_source_for(remote.ip())
        .filter(|_| egress.has_route(remote.ip()))
        .ok_or(SocketError::NetworkUnreachable)?;
    connect_from(cx, SocketAddr::new(local, 0), remote)
}

/// As [`connect`], from `local` (one of our addresses; port 0 for an
/// ephemeral one).
///
/// # Errors
///
/// `AddressNotAvailable` for an address not ours; `NetworkUnreachable`
/// without a route to `remote`; otherwise as [`TcpSockets::connect`].
///
/// ```
/// # use tpa::app::{SocketError, SocketId};
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::egress::Egress;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// From a fixed local port, as a client bound before connecting.
/// fn open<B: PacketBuf, S: Part<TcpSockets<B>> + Part<Egress<B>>>(
///     cx: &mut Cx<'_, B, S>,
/// ) -> Result<SocketId, SocketError> {
///     tcp::connect_from(cx, "192.0.2.1:4000".parse().unwrap(), "192.0.2.2:80".parse().unwrap())
/// }
/// ```
pub fn connect_from<B, S>(
    cx: &mut Cx<'_, B, S>,
    local: SocketAddr,
    remote: SocketAddr,
) -> Result<SocketId, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>> + Part<Egress<B>>,
{
    let iface = cx.part::<Egress<B>>().interface();
    let ours = match local.ip() {
        std::net::IpAddr::V4(a) => iface.owns_ipv4(a),
        std::net::IpAddr::V6(a) => iface.owns_ipv6(a),
    };
    if !ours {
        return Err(SocketError::AddressNotAvailable);
    }
    if !cx.part::<Egress<B>>().has_route(remote.ip()) {
        return Err(SocketError::NetworkUnreachable);
    }
    let mss = mss_for(cx, local.ip());
    let (queue, now_ns) = (cx.caps().queue, cx.now_ns());
    cx.part::<TcpSockets<B>>()
        .connect(local, remote, mss, queue, now_ns)
}

/// The oldest established connection waiting on `listener`, and its
/// peer's address.
///
/// # Errors
///
/// `WouldBlock` when none waits; as [`TcpSockets::accept`].
///
/// ```
/// # use tpa::app::{SocketError, SocketId};
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// Takes every connection waiting on `listener`.
/// fn take_all<B: PacketBuf, S: Part<TcpSockets<B>>>(
///     cx: &mut Cx<'_, B, S>,
///     listener: SocketId,
/// ) -> Vec<SocketId> {
///     let mut out = Vec::new();
///     while let Ok((socket, _peer)) = tcp::accept(cx, listener) {
///         out.push(socket);
///     }
///     out
/// }
/// ```
pub fn accept<B, S>(
    cx: &mut Cx<'_, B, S>,
    listener: SocketId,
) -> Result<(SocketId, SocketAddr), SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>().accept(listener)
}

/// The next received buffer of `socket`, zero-copy (the received frame
/// trimmed to its payload; release it by dropping it). `Ok(None)` is the
/// end of the stream (the peer's FIN, all data read).
///
/// # Errors
///
/// `WouldBlock` when nothing waits (readiness is edge-triggered:
/// [`Readable`](tpa::app::EventKind::Readable) comes again once new data
/// arrives); `ConnectionReset` after a reset; `BadSocket`.
///
/// ```
/// # use tpa::app::{SocketError, SocketId};
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// Counts the bytes waiting, releasing each buffer; `true` at the end.
/// fn drain<B: PacketBuf, S: Part<TcpSockets<B>>>(
///     cx: &mut Cx<'_, B, S>,
///     socket: SocketId,
///     total: &mut usize,
/// ) -> bool {
///     loop {
///         match tcp::recv(cx, socket) {
///             Ok(Some(buf)) => *total += buf.total_len(),
///             Ok(None) => return true,
///             Err(SocketError::WouldBlock) => return false,
///             Err(_) => return true,
///         }
///     }
/// }
/// ```
pub fn recv<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<Option<B>, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    app_conn(cx, socket)?.recv()
}

/// [`recv`], and whether another call now would find anything: `true`
/// when more data, the end of the stream or an error waits behind the
/// buffer, `false` when the next [`recv`] would say `WouldBlock`. A
/// reader that drains the queue on each
/// [`Readable`](tpa::app::EventKind::Readable) (readiness is
/// edge-triggered) stops on `false` without the call that finds nothing:
/// the common read of one segment is one call.
///
/// # Errors
///
/// As [`recv`].
///
/// ```
/// # use tpa::app::{SocketError, SocketId};
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// Counts the bytes waiting, releasing each buffer; `true` at the end.
/// fn drain<B: PacketBuf, S: Part<TcpSockets<B>>>(
///     cx: &mut Cx<'_, B, S>,
///     socket: SocketId,
///     total: &mut usize,
/// ) -> bool {
///     loop {
///         match tcp::recv_more(cx, socket) {
///             Ok(Some((buf, more))) => {
///                 *total += buf.total_len();
///                 if !more {
///                     return false; // drained: `Readable` comes again
///                 }
///             }
///             Ok(None) => return true,
///             Err(SocketError::WouldBlock) => return false,
///             Err(_) => return true,
///         }
///     }
/// }
/// ```
#[inline]
pub fn recv_more<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
) -> Result<Option<(B, bool)>, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    app_conn(cx, socket)?.recv_more()
}

/// Copies received bytes of `socket` into `out`; `Ok(0)` (with `out` not
/// empty) is the end of the stream.
///
/// # Errors
///
/// As [`recv`].
///
/// ```
/// # use tpa::app::{SocketError, SocketId};
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// Reads a line's worth into `line`.
/// fn read_some<B: PacketBuf, S: Part<TcpSockets<B>>>(
///     cx: &mut Cx<'_, B, S>,
///     socket: SocketId,
///     line: &mut Vec<u8>,
/// ) -> Result<usize, SocketError> {
///     let mut buf = [0u8; 256];
///     let n = tcp::read(cx, socket, &mut buf)?;
///     line.extend_from_slice(&buf[..n]);
///     Ok(n)
/// }
/// ```
pub fn read<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    out: &mut [u8],
) -> Result<usize, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    app_conn(cx, socket)?.read(out)
}

/// Copies as much of `data` as the send queue takes into buffers from the
/// port's pool (first the one the table kept from an acknowledged write);
/// returns how much.
///
/// # Errors
///
/// `WouldBlock` when the queue is full ([`Writable`](tpa::app::EventKind::Writable)
/// says when it has room again); `BrokenPipe` after `shutdown` or
/// `close`; `NoBuffers` when the pool is empty; as the engine says
/// otherwise.
///
/// ```
/// # use tpa::app::{SocketError, SocketId};
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// Sends what fits of `data`; the rest waits for `Writable`.
/// fn write<B: PacketBuf, S: Part<TcpSockets<B>>>(
///     cx: &mut Cx<'_, B, S>,
///     socket: SocketId,
///     data: &[u8],
/// ) -> usize {
///     match tcp::send(cx, socket, data) {
///         Ok(n) => n,
///         Err(SocketError::WouldBlock) => 0,
///         Err(_) => 0,
///     }
/// }
/// ```
#[inline]
pub fn send<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    data: &[u8],
) -> Result<usize, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    socket_ref(cx, socket)?.send(data)
}

/// Queues `buf` (every segment of it) without a copy: it is shared into
/// the send queue and released once the peer acknowledged it.
///
/// # Errors
///
/// As [`send`], with the buffer back.
///
/// ```
/// # use tpa::app::{SocketError, SocketId};
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// Echoes a received buffer without copying it; keeps it when the
/// /// queue is full.
/// fn echo<B: PacketBuf, S: Part<TcpSockets<B>>>(
///     cx: &mut Cx<'_, B, S>,
///     socket: SocketId,
///     buf: B,
/// ) -> Option<B> {
///     match tcp::send_buf(cx, socket, buf) {
///         Ok(()) => None,
///         Err((SocketError::WouldBlock, buf)) => Some(buf),
///         Err((_, _dropped)) => None,
///     }
/// }
/// ```
pub fn send_buf<B, S>(
    cx: &mut Cx<'_, B, S>,
    socket: SocketId,
    buf: B,
) -> Result<(), (SocketError, B)>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    match app_conn(cx, socket) {
        Ok(conn) => conn.send_buf(buf),
        Err(e) => Err((e, buf)),
    }
}

/// Bytes [`send`] would take from `socket` now.
///
/// # Errors
///
/// `BadSocket`.
///
/// ```
/// # use tpa::app::SocketId;
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// Whether a whole message fits now.
/// fn fits<B: PacketBuf, S: Part<TcpSockets<B>>>(cx: &mut Cx<'_, B, S>, s: SocketId, len: usize) -> bool {
///     tcp::send_space(cx, s).is_ok_and(|room| room >= len)
/// }
/// ```
pub fn send_space<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<usize, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>()
        .conn_mut(socket)
        .map(|c| c.send_space())
}

/// The most bytes one segment of `socket` carries now (its MSS less the
/// options every segment carries): the longest buffer [`send_buf`]
/// takes, what a zero-copy writer fills.
///
/// # Errors
///
/// `BadSocket`.
///
/// ```
/// # use tpa::app::SocketId;
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// How many bytes of `len` the next buffer of a zero-copy writer takes.
/// fn next_piece<B: PacketBuf, S: Part<TcpSockets<B>>>(cx: &mut Cx<'_, B, S>, s: SocketId, len: usize) -> usize {
///     tcp::send_mss(cx, s).map_or(0, |mss| len.min(mss))
/// }
/// ```
pub fn send_mss<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<usize, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>()
        .conn_mut(socket)
        .map(|c| c.send_mss())
}

/// Half-closes `socket`: a FIN follows the queued data; receiving goes on.
///
/// # Errors
///
/// `NotConnected` before the connection is established (as the engine
/// says); `BadSocket`.
///
/// ```
/// # use tpa::app::{SocketError, SocketId};
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// The request is written: tell the server, keep reading its answer.
/// fn done_writing<B: PacketBuf, S: Part<TcpSockets<B>>>(
///     cx: &mut Cx<'_, B, S>,
///     s: SocketId,
/// ) -> Result<(), SocketError> {
///     tcp::shutdown(cx, s)
/// }
/// ```
pub fn shutdown<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<(), SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    app_conn(cx, socket)?.shutdown()
}

/// Closes `socket` (a listener or a connection); see
/// [`TcpSockets::close`]. The handle is invalid afterwards.
///
/// # Errors
///
/// `BadSocket`.
///
/// ```
/// # use tpa::app::SocketId;
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// Done with a connection (or a listener): the handle is invalid after.
/// fn finish<B: PacketBuf, S: Part<TcpSockets<B>>>(cx: &mut Cx<'_, B, S>, s: SocketId) {
///     let _ = tcp::close(cx, s);
/// }
/// ```
pub fn close<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<(), SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    let _ = app_conn(cx, socket);
    cx.part::<TcpSockets<B>>().close(socket)
}

/// Resets `socket`'s connection now; see [`TcpSockets::abort`].
///
/// # Errors
///
/// `BadSocket`.
///
/// ```
/// # use tpa::app::SocketId;
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// A protocol violation: reset the peer.
/// fn reject<B: PacketBuf, S: Part<TcpSockets<B>>>(cx: &mut Cx<'_, B, S>, s: SocketId) {
///     let _ = tcp::abort(cx, s);
/// }
/// ```
pub fn abort<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<(), SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    let _ = app_conn(cx, socket);
    cx.part::<TcpSockets<B>>().abort(socket)
}

/// A `TCP_INFO`-like snapshot of `socket`'s connection.
///
/// # Errors
///
/// `BadSocket`.
///
/// ```
/// # use tpa::app::SocketId;
/// # use tpa::buf::PacketBuf;
/// # use tpa::stage::Cx;
/// # use tpa::state::Part;
/// # use tpa_stages::tcp::{self, TcpSockets};
/// /// The smoothed round-trip time, if the socket is a connection.
/// fn srtt_ns<B: PacketBuf, S: Part<TcpSockets<B>>>(cx: &mut Cx<'_, B, S>, s: SocketId) -> Option<u64> {
///     tcp::info(cx, s).ok().map(|i| i.rtt_ns)
/// }
/// ```
pub fn info<B, S>(cx: &mut Cx<'_, B, S>, socket: SocketId) -> Result<TcpInfo, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    cx.part::<TcpSockets<B>>().info(socket)
}

/// `socket`'s connection, its clock brought up to this iteration's time
/// (the application's calls are stamped when they are made; a listener
/// or a stale handle is an error, as in the call itself).
fn app_conn<'c, B, S>(
    cx: &'c mut Cx<'_, B, S>,
    socket: SocketId,
) -> Result<&'c mut Connection<B>, SocketError>
where
    B: PacketBuf,
    S: Part<TcpSockets<B>>,
{
    let now_ns = cx.now_ns();
    let conn = cx.part::<TcpSockets<B>>().conn_mut(socket)?;
    conn.advance_clock(now_ns);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::config::{SynCookieMode, TcpConfig};
    use crate::tcp::syncookie::COUNTER_NS;
    use crate::tcp::testing::{
        bytes, parse_tcp, segment_frame, tcp_packet, them, us, Bench, Parsed, Seg, TcpState,
    };
    use crate::testing::{pool, BufferPool};
    use tpa::app::{EventKind, Transport};
    use tpa::buf::PoolBuf;

    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const ACK: u8 = 0x10;

    /// A segment from the peer's `port` to our port 80.
    fn from(port: u16, seq: u32, ack: Option<u32>) -> Seg {
        Seg {
            src_port: port,
            dst_port: 80,
            seq,
            ack,
            window: 65535,
            ..Seg::default()
        }
    }

    /// The peer at `port` opens a connection to the listener: SYN,
    /// SYN-ACK, ACK. Returns the connection and our ISS.
    fn handshake(b: &mut Bench, v6: bool, listener: SocketId, port: u16) -> (SocketId, u32) {
        let syn = Seg {
            src_port: port,
            ..Seg::syn(1000, 80)
        };
        let (v, out) = b.input(v6, &syn);
        assert_eq!((v, out.len()), ("consumed", 1));
        let synack = &out[0];
        assert_eq!((synack.flags, synack.ack), (SYN | ACK, 1001));
        assert_eq!(synack.dst, SocketAddr::new(them(v6), port));
        assert!(!synack.options.is_empty(), "the SYN-ACK carries options");
        let iss = synack.seq;
        assert!(
            b.events().is_empty(),
            "nothing before the handshake completes"
        );
        let (v, _) = b.input(v6, &from(port, 1001, Some(iss + 1)));
        assert_eq!(v, "consumed");
        let events = b.events();
        let c = events[0].socket;
        let got: Vec<_> = events.iter().map(|e| (e.socket, e.kind)).collect();
        // Accepted, then writable (the send queue has room).
        assert_eq!(
            got,
            [
                (c, EventKind::Accepted { listener }),
                (c, EventKind::Writable)
            ]
        );
        (c, iss)
    }

    /// An application call on a quiet connection is stamped with the
    /// iteration's time, not the time of the connection's last segment:
    /// a write 50 ms after the handshake that leaves in the same
    /// iteration waited 0 ns to be sent.
    #[test]
    fn a_write_on_a_quiet_connection_is_stamped_when_it_is_made() {
        const MS: u64 = 1_000_000;
        let mut b = Bench::new(TcpConfig {
            measure_latency: true,
            ..TcpConfig::default()
        });
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let l = l.unwrap();
        let (c, _) = handshake(&mut b, false, l, 5000);
        assert!(b.call(|cx| accept(cx, l)).0.is_ok());
        b.now_ns += 50 * MS;
        let (sent, out) = b.call(|cx| send(cx, c, b"late"));
        assert_eq!(sent, Ok(4));
        assert_eq!(out.iter().map(|s| s.payload.len()).sum::<usize>(), 4);
        let lat = b.call(|cx| info(cx, c)).0.unwrap().latency;
        assert_eq!(
            (lat.write_sent.count, lat.write_sent.max_ns),
            (1, 0),
            "the write was stamped at the connection's last clock"
        );
    }

    #[test]
    fn recv_more_says_whether_the_next_recv_finds_anything() {
        for v6 in [false, true] {
            let mut b = Bench::new(TcpConfig::default());
            let any: SocketAddr = if v6 { "[::]:80" } else { "0.0.0.0:80" }.parse().unwrap();
            let (l, _) = b.call(|cx| listen(cx, any, 8));
            let l = l.unwrap();
            let (c, iss) = handshake(&mut b, v6, l, 5000);
            let (accepted, _) = b.call(|cx| accept(cx, l));
            assert_eq!(accepted.map(|(s, _)| s), Ok(c));
            let seg = |seq: u32, payload: &[u8], fin: bool| Seg {
                psh: true,
                fin,
                payload: payload.to_vec(),
                ..from(5000, seq, Some(iss + 1))
            };
            type Got = Result<Option<(Vec<u8>, bool)>, SocketError>;
            let read = |cx: &mut Cx<'_, PoolBuf, _>| -> Got {
                recv_more(cx, c).map(|o| o.map(|(buf, more)| (bytes(&buf), more)))
            };

            // One segment: the last buffer, and `recv` agrees.
            b.input(v6, &seg(1001, b"ab", false));
            let (got, _) = b.call(|cx| (read(cx), recv(cx, c).map(|o| o.is_some())));
            assert_eq!(
                got,
                (
                    Ok(Some((b"ab".to_vec(), false))),
                    Err(SocketError::WouldBlock)
                )
            );
            assert_eq!(b.call(read).0, Err(SocketError::WouldBlock));

            // Two segments, then the FIN: more after each buffer (the end
            // of the stream waits behind the last), then the end.
            b.input(v6, &seg(1003, b"cd", false));
            b.input(v6, &seg(1005, b"ef", true));
            let (got, _) = b.call(|cx| [read(cx), read(cx), read(cx)]);
            assert_eq!(
                got,
                [
                    Ok(Some((b"cd".to_vec(), true))),
                    Ok(Some((b"ef".to_vec(), true))),
                    Ok(None)
                ]
            );
            assert_eq!(b.call(|cx| recv(cx, c).map(|o| o.is_some())).0, Ok(false));
        }
    }

    /// An echo through one [`socket_ref`] reads and sends as the calls
    /// made one by one do (the same bytes, the same segments out), and a
    /// stale handle is refused as theirs is.
    #[test]
    fn a_socket_ref_echoes_as_the_calls_one_by_one_do() {
        type Echoed = (
            Vec<Result<Option<(Vec<u8>, bool)>, SocketError>>,
            Vec<Result<usize, SocketError>>,
        );
        fn run(through_ref: bool) -> (Echoed, Vec<(u32, Vec<u8>)>, SocketError) {
            let mut b = Bench::new(TcpConfig::default());
            let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
            let l = l.unwrap();
            let (c, iss) = handshake(&mut b, false, l, 5000);
            assert!(b.call(|cx| accept(cx, l)).0.is_ok());
            for (seq, payload) in [(1001, b"ab"), (1003, b"cd")] {
                let seg = Seg {
                    psh: true,
                    payload: payload.to_vec(),
                    ..from(5000, seq, Some(iss + 1))
                };
                b.input(false, &seg);
            }
            let (echoed, out) = b.call(|cx| {
                let mut got = Vec::new();
                let mut sent = Vec::new();
                if through_ref {
                    let mut s = socket_ref(cx, c).unwrap();
                    for _ in 0..3 {
                        let r = s.recv_more();
                        if let Ok(Some((buf, _))) = &r {
                            sent.push(s.send(&bytes(buf)));
                        }
                        got.push(r.map(|o| o.map(|(buf, more)| (bytes(&buf), more))));
                    }
                } else {
                    for _ in 0..3 {
                        let r = recv_more(cx, c);
                        if let Ok(Some((buf, _))) = &r {
                            sent.push(send(cx, c, &bytes(buf)));
                        }
                        got.push(r.map(|o| o.map(|(buf, more)| (bytes(&buf), more))));
                    }
                }
                (got, sent)
            });
            let out = out.into_iter().map(|s| (s.seq, s.payload)).collect();
            let stale = SocketId::new(Transport::Tcp, c.index, c.generation + 1);
            let refused = if through_ref {
                b.call(|cx| socket_ref(cx, stale).map(|_| ())).0
            } else {
                b.call(|cx| send(cx, stale, b"x").map(|_| ())).0
            };
            (echoed, out, refused.unwrap_err())
        }
        let one_by_one = run(false);
        assert_eq!(run(true), one_by_one);
        assert_eq!(
            one_by_one.0,
            (
                vec![
                    Ok(Some((b"ab".to_vec(), true))),
                    Ok(Some((b"cd".to_vec(), false))),
                    Err(SocketError::WouldBlock)
                ],
                vec![Ok(2), Ok(2)]
            )
        );
        assert!(!one_by_one.1.is_empty(), "the echo left");
        assert_eq!(one_by_one.2, SocketError::BadSocket);
    }

    #[test]
    fn a_passive_open_is_accepted_read_closed_and_freed_after_time_wait() {
        for v6 in [false, true] {
            let mut b = Bench::new(TcpConfig::default());
            let any: SocketAddr = if v6 { "[::]:80" } else { "0.0.0.0:80" }.parse().unwrap();
            let (l, _) = b.call(|cx| listen(cx, any, 8));
            let l = l.unwrap();
            let (c, iss) = handshake(&mut b, v6, l, 5000);
            let (accepted, _) = b.call(|cx| accept(cx, l));
            assert_eq!(accepted, Ok((c, SocketAddr::new(them(v6), 5000))));
            let (again, _) = b.call(|cx| accept(cx, l));
            assert_eq!(again, Err(SocketError::WouldBlock));

            let data = Seg {
                psh: true,
                payload: b"hello".to_vec(),
                ..from(5000, 1001, Some(iss + 1))
            };
            assert_eq!(b.input(v6, &data).0, "consumed");
            assert_eq!(
                b.events()
                    .iter()
                    .map(|e| (e.socket, e.kind))
                    .collect::<Vec<_>>(),
                [(c, EventKind::Readable)]
            );
            let (got, _) = b.call(|cx| {
                let first = recv(cx, c).map(|o| o.map(|buf| buf.data().to_vec()));
                (first, recv(cx, c).map(|o| o.is_some()))
            });
            assert_eq!(
                got,
                (Ok(Some(b"hello".to_vec())), Err(SocketError::WouldBlock))
            );
            let info = b.state.sockets.info(c).unwrap();
            assert_eq!(info.bytes_received, 5);

            // We close first: FIN, the peer's ACK and FIN, TIME_WAIT.
            let (closed, out) = b.call(|cx| close(cx, c));
            assert_eq!(closed, Ok(()));
            let fin = out.iter().find(|s| s.flags & FIN != 0).expect("a FIN");
            assert_eq!(fin.src, SocketAddr::new(us(v6), 80));
            let fin_seq = fin.seq;
            b.input(v6, &from(5000, 1006, Some(fin_seq + 1)));
            let peer_fin = Seg {
                fin: true,
                ..from(5000, 1006, Some(fin_seq + 1))
            };
            let (_, out) = b.input(v6, &peer_fin);
            assert!(
                out.iter().any(|s| s.flags & ACK != 0 && s.ack == 1007),
                "{out:?}"
            );
            assert!(b.events().is_empty(), "no events after close");
            assert_eq!(b.state.sockets.time_wait_count(), 1);
            assert_eq!(b.state.sockets.len(), 2);
            let (_, again) = b.call(|cx| recv(cx, c).map(|_| ()));
            assert_eq!(again, vec![]);
            assert_eq!(b.state.sockets.info(c), Err(SocketError::BadSocket));

            // TIME_WAIT runs out on the timer: the slot is freed.
            let start = b.now_ns;
            b.timers_at(start + 59_000_000_000);
            assert_eq!(
                b.state.sockets.time_wait_count(),
                1,
                "TIME_WAIT lasts 2 MSL"
            );
            let (fired, _) = b.timers_at(start + 60_000_000_000);
            assert!(fired >= 1);
            assert_eq!(
                (b.state.sockets.len(), b.state.sockets.time_wait_count()),
                (1, 0)
            );
            let (r, _) = b.call(|cx| close(cx, l));
            assert_eq!(r, Ok(()));
            assert!(b.state.sockets.is_empty());
        }
        pool().assert_whole();
    }

    #[test]
    fn a_refused_connect_reports_connection_refused_and_frees_on_close() {
        let mut b = Bench::new(TcpConfig::default());
        let peer: SocketAddr = (them(false), 9).into();
        let (c, out) = b.call(|cx| connect(cx, peer));
        let c = c.unwrap();
        assert_eq!(out.len(), 1);
        let syn = &out[0];
        assert_eq!(syn.flags, SYN);
        assert_eq!(syn.dst, peer);
        assert!((32768..=60999).contains(&syn.src.port()));
        let rst = Seg {
            src_port: 9,
            dst_port: syn.src.port(),
            seq: 0,
            ack: Some(syn.seq + 1),
            rst: true,
            ..Seg::default()
        };
        assert_eq!(b.input(false, &rst).0, "consumed");
        let kinds: Vec<_> = b.events().iter().map(|e| e.kind).collect();
        assert!(
            kinds.contains(&EventKind::Error(SocketError::ConnectionRefused)),
            "{kinds:?}"
        );
        assert_eq!(b.state.sockets.len(), 1, "held until the app closes it");
        let (r, out) = b.call(|cx| close(cx, c));
        assert_eq!((r, out.len()), (Ok(()), 0));
        assert!(b.state.sockets.is_empty());
        // Stale, foreign and wrong-kind handles.
        let (r, _) = b.call(|cx| {
            (
                send(cx, c, b"x"),
                close(cx, c),
                recv(cx, SocketId::new(Transport::Udp, c.index, c.generation)).map(|_| ()),
            )
        });
        assert_eq!(
            r,
            (
                Err(SocketError::BadSocket),
                Err(SocketError::BadSocket),
                Err(SocketError::BadSocket)
            )
        );
        let (r, _) = b.call(|cx| connect(cx, "203.0.113.1:80".parse().unwrap()));
        assert_eq!(r, Err(SocketError::NetworkUnreachable));
        let (r, _) = b.call(|cx| connect_from(cx, "198.51.100.1:0".parse().unwrap(), peer));
        assert_eq!(r, Err(SocketError::AddressNotAvailable));
        pool().assert_whole();
    }

    #[test]
    fn the_backlog_bounds_half_open_connections_and_a_closing_listener_resets_them() {
        let mut b = Bench::new(TcpConfig {
            syn_cookies: SynCookieMode::Off,
            ..TcpConfig::default()
        });
        let (l, _) = b.call(|cx| listen(cx, "192.0.2.1:80".parse().unwrap(), 2));
        let l = l.unwrap();
        let (r, _) = b.call(|cx| listen(cx, "192.0.2.1:80".parse().unwrap(), 2));
        assert_eq!(r, Err(SocketError::AddressInUse));
        let (r, _) = b.call(|cx| listen(cx, "192.0.2.9:80".parse().unwrap(), 2));
        assert_eq!(r, Err(SocketError::AddressNotAvailable));
        for (port, want) in [
            (5000, "consumed"),
            (5001, "consumed"),
            (5002, "backlog-full"),
        ] {
            let syn = Seg {
                src_port: port,
                ..Seg::syn(1, 80)
            };
            assert_eq!(b.input(false, &syn).0, want, "port {port}");
        }
        assert_eq!(b.state.sockets.counters().backlog_drops, 1);
        assert_eq!(b.state.sockets.len(), 3);
        let (_, out) = b.call(|cx| close(cx, l));
        let resets = out.iter().filter(|s| s.flags & RST != 0).count();
        assert_eq!(resets, 2, "{out:?}");
        assert!(b.state.sockets.is_empty());
        assert!(b.events().is_empty(), "never announced, never reported");
        pool().assert_whole();
    }

    /// The options of a parsed segment: (MSS, window shift, SACK
    /// permitted, timestamps).
    type Opts = (Option<u16>, Option<u8>, bool, Option<(u32, u32)>);

    fn options_of(raw: &[u8]) -> Opts {
        let mut got = (None, None, false, None);
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                0 => break,
                1 => i += 1,
                kind => {
                    let len = usize::from(raw[i + 1]);
                    let v = &raw[i + 2..i + len];
                    let u32_at = |o: usize| u32::from_be_bytes(v[o..o + 4].try_into().unwrap());
                    match kind {
                        2 => got.0 = Some(u16::from_be_bytes([v[0], v[1]])),
                        3 => got.1 = Some(v[0]),
                        4 => got.2 = true,
                        8 => got.3 = Some((u32_at(0), u32_at(4))),
                        _ => {}
                    }
                    i += len;
                }
            }
        }
        got
    }

    /// A SYN from `port` offering MSS `mss`, window shift 7, SACK and
    /// timestamps (TSval 4242) when `ts`, else the MSS alone.
    fn syn_from(port: u16, mss: u16, ts: bool) -> Seg {
        let [m0, m1] = mss.to_be_bytes();
        let mut options = vec![2, 4, m0, m1];
        if ts {
            options.extend([1, 3, 3, 7, 1, 1, 4, 2, 1, 1, 8, 10]);
            options.extend(4242u32.to_be_bytes());
            options.extend(0u32.to_be_bytes());
        }
        Seg {
            src_port: port,
            options,
            ..Seg::syn(1000, 80)
        }
    }

    /// The peer's ACK of a cookie SYN-ACK `synack`, echoing its TSval
    /// when it had one, carrying `payload`.
    fn cookie_ack(port: u16, synack: &Parsed, payload: &[u8]) -> Seg {
        let mut options = vec![];
        if let Some((tsval, _)) = options_of(&synack.options).3 {
            options.extend([1, 1, 8, 10]);
            options.extend(4243u32.to_be_bytes());
            options.extend(tsval.to_be_bytes());
        }
        Seg {
            options,
            payload: payload.to_vec(),
            psh: !payload.is_empty(),
            ..from(port, 1001, Some(synack.seq + 1))
        }
    }

    #[test]
    fn a_full_backlog_answers_with_cookies_and_the_ack_makes_the_connection() {
        for (ts, v6) in [(true, false), (false, false), (true, true)] {
            let mut b = Bench::new(TcpConfig::default());
            let any: SocketAddr = if v6 { "[::]:80" } else { "0.0.0.0:80" }.parse().unwrap();
            let (l, _) = b.call(|cx| listen(cx, any, 1));
            let l = l.unwrap();
            // The first SYN takes the one place and is never answered.
            let (v, out) = b.input(v6, &syn_from(4000, 1460, ts));
            assert_eq!((v, out.len(), b.state.sockets.len()), ("consumed", 1, 2));
            // The next gets a cookie: a SYN-ACK and no state.
            let (v, out) = b.input(v6, &syn_from(5000, 1400, ts));
            assert_eq!((v, out.len(), b.state.sockets.len()), ("consumed", 1, 2));
            let synack = &out[0];
            assert_eq!((synack.flags, synack.ack), (SYN | ACK, 1001));
            let (mss, wscale, sack, stamps) = options_of(&synack.options);
            assert_eq!(mss, Some(if v6 { 1440 } else { 1460 }), "our MSS");
            // Window scale and SACK only where TSval can carry them.
            assert_eq!((wscale.is_some(), sack, stamps.is_some()), (ts, ts, ts));
            if let Some((tsval, tsecr)) = stamps {
                assert_eq!(tsecr, 4242);
                assert_eq!(tsval & 0x3f, 0x20 | 0x10 | 7, "ts, SACK, shift 7");
            }
            assert_eq!(b.state.sockets.counters().syn_cookies_sent, 1);
            assert_eq!(b.state.sockets.counters().backlog_drops, 0);
            // The ACK (with data) makes the connection, accepted at once.
            let (v, _) = b.input(v6, &cookie_ack(5000, synack, b"hi"));
            assert_eq!(v, "consumed");
            let events = b.events();
            let c = events[0].socket;
            assert_eq!(events[0].kind, EventKind::Accepted { listener: l });
            assert!(events.iter().any(|e| e.kind == EventKind::Readable));
            let (got, _) = b.call(|cx| accept(cx, l));
            assert_eq!(got, Ok((c, SocketAddr::new(them(v6), 5000))));
            let (got, _) = b.call(|cx| recv(cx, c).map(|o| o.map(|buf| buf.data().to_vec())));
            assert_eq!(got, Ok(Some(b"hi".to_vec())));
            let info = b.state.sockets.info(c).unwrap();
            // The peer's MSS came back: snd_mss is the effective one,
            // less 12 bytes of timestamps when they are on.
            let effective = if ts { 1400 - 12 } else { 1400 };
            assert_eq!(info.snd_mss, effective, "the peer's MSS came back");
            assert_eq!(info.state, crate::tcp::conn::State::Established);
            let counters = b.state.sockets.counters();
            assert_eq!(counters.syn_cookies_validated, 1);
            assert_eq!(counters.passive_opens, 2);
            // Our data goes out with the cookie as ISS.
            let (_, out) = b.call(|cx| send(cx, c, b"back"));
            let data = out.iter().find(|s| !s.payload.is_empty()).unwrap();
            assert_eq!((data.seq, data.ack), (synack.seq + 1, 1003));
            if let (Some((tsval, _)), Some((first, _))) = (options_of(&data.options).3, stamps) {
                assert!(
                    tsval.wrapping_sub(first) < 1 << 30,
                    "TSval went on from the cookie's"
                );
            }
            // The same ACK again belongs to the connection now.
            let (v, _) = b.input(v6, &cookie_ack(5000, synack, b""));
            assert_eq!(v, "consumed");
            assert_eq!(b.state.sockets.counters().syn_cookies_validated, 1);
            b.events();
        }
        pool().assert_whole();
    }

    #[test]
    fn forged_expired_and_overflowing_cookie_acks_are_dropped_by_reason() {
        let mut b = Bench::new(TcpConfig {
            syn_cookies: SynCookieMode::Always,
            ..TcpConfig::default()
        });
        let (l, _) = b.call(|cx| listen(cx, "192.0.2.1:80".parse().unwrap(), 1));
        let l = l.unwrap();
        // Before any cookie went out, a stray ACK is only "unexpected".
        let (v, out) = b.input(false, &from(6000, 1, Some(1)));
        assert_eq!((v, out.len()), ("unexpected", 1));
        // Always: even the first SYN gets a cookie.
        let (v, out) = b.input(false, &syn_from(5000, 1460, true));
        assert_eq!((v, out.len(), b.state.sockets.len()), ("consumed", 1, 1));
        let synack = out[0].clone();
        // A forged ACK: a reset, counted.
        let mut forged = synack.clone();
        forged.seq ^= 0x40;
        let (v, out) = b.input(false, &cookie_ack(5000, &forged, b""));
        assert_eq!((v, out.len()), ("cookie-invalid", 1));
        assert_eq!(out[0].flags, RST);
        // Another port cannot use this cookie.
        let (v, _) = b.input(false, &cookie_ack(5001, &synack, b""));
        assert_eq!(v, "cookie-invalid");
        // A second cookie connection while the first waits in the accept
        // queue (backlog 1): dropped, then made once it is accepted.
        let (v, out) = b.input(false, &syn_from(5002, 1460, false));
        assert_eq!((v, out.len()), ("consumed", 1));
        let second = out[0].clone();
        let (v, _) = b.input(false, &cookie_ack(5000, &synack, b""));
        assert_eq!(v, "consumed");
        // With the accept queue full a SYN gets no cookie: its ACK would
        // find no room (Linux drops it too).
        let (v, out) = b.input(false, &syn_from(5005, 1460, false));
        assert_eq!((v, out.len()), ("backlog-full", 0));
        let (v, out) = b.input(false, &cookie_ack(5002, &second, b""));
        assert_eq!((v, out.len()), ("accept-queue-full", 0));
        assert!(b.call(|cx| accept(cx, l)).0.is_ok());
        let (v, _) = b.input(false, &cookie_ack(5002, &second, b""));
        assert_eq!(v, "consumed");
        assert!(b.call(|cx| accept(cx, l)).0.is_ok());
        // A cookie two ticks old has expired.
        let (_, out) = b.input(false, &syn_from(5003, 1460, true));
        let old = out[0].clone();
        b.now_ns += 2 * COUNTER_NS;
        let (v, out) = b.input(false, &cookie_ack(5003, &old, b""));
        assert_eq!(
            (v, out.len()),
            ("unexpected", 1),
            "no cookie went out lately: not checked"
        );
        b.input(false, &syn_from(5004, 1460, true));
        let (v, out) = b.input(false, &cookie_ack(5003, &old, b""));
        assert_eq!((v, out.len()), ("cookie-expired", 1));
        let c = b.state.sockets.counters();
        assert_eq!(
            (
                c.syn_cookies_sent,
                c.syn_cookies_validated,
                c.syn_cookies_failed,
                c.syn_cookies_expired,
                c.accept_queue_drops,
                c.backlog_drops
            ),
            (4, 3, 3, 1, 1, 1)
        );
        b.events();
        pool().assert_whole();
    }

    #[test]
    fn the_peers_fin_is_acked_by_the_stage_at_once() {
        // RFC 9293 §3.10.7.4 eighth step; the data before it waits for
        // the delayed ACK, the FIN does not.
        let mut b = Bench::new(TcpConfig::default());
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let (_, iss) = handshake(&mut b, false, l.unwrap(), 6000);
        let data = Seg {
            payload: b"data".to_vec(),
            ..from(6000, 1001, Some(iss + 1))
        };
        let (_, out) = b.input(false, &data);
        assert!(out.is_empty(), "small data: the ACK waits: {out:?}");
        let fin = Seg {
            fin: true,
            ..from(6000, 1005, Some(iss + 1))
        };
        let (_, out) = b.input(false, &fin);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].flags & ACK, out[0].ack), (ACK, 1006));
        b.events();
    }

    /// A passive open from `port` on listener `l`, closed by us first and
    /// then by the peer: the connection ends in TIME_WAIT.
    fn into_time_wait(b: &mut Bench, l: SocketId, port: u16) {
        let (c, iss) = handshake(b, false, l, port);
        let (_, out) = b.call(|cx| close(cx, c));
        let fin = out.iter().find(|s| s.flags & FIN != 0).expect("a FIN").seq;
        assert_eq!(fin, iss + 1);
        let peer_fin = Seg {
            fin: true,
            ..from(port, 1001, Some(fin + 1))
        };
        b.input(false, &peer_fin);
    }

    #[test]
    fn time_wait_is_bounded_by_evicting_the_oldest() {
        let cfg = TcpConfig {
            time_wait_max: 1,
            ..TcpConfig::default()
        };
        let mut b = Bench::new(cfg);
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let l = l.unwrap();
        for port in [6000, 6001] {
            into_time_wait(&mut b, l, port);
            assert_eq!(b.state.sockets.time_wait_count(), 1);
        }
        assert_eq!(b.state.sockets.counters().time_wait_evictions, 1);
        assert_eq!(b.state.sockets.len(), 2, "the listener and one TIME_WAIT");
        b.events();
        pool().assert_whole();
    }

    #[test]
    fn a_syn_above_time_waits_rcv_nxt_opens_a_new_incarnation() {
        let mut b = Bench::new(TcpConfig::default());
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let l = l.unwrap();
        into_time_wait(&mut b, l, 6000);
        b.events();
        assert_eq!(b.state.sockets.time_wait_count(), 1);
        // Without timestamps (RFC 1122 §4.2.2.13): a SYN at or below the
        // old RCV.NXT (1002: the peer's ISN 1000, its SYN and FIN) is
        // handled as in any synchronized state, a challenge ACK.
        let old = Seg {
            src_port: 6000,
            ..Seg::syn(1002, 80)
        };
        let (v, out) = b.input(false, &old);
        assert_eq!((v, out.len()), ("consumed", 1));
        assert_eq!((out[0].flags, out[0].ack), (ACK, 1002));
        assert_eq!(b.state.sockets.counters().time_wait_reuses, 0);
        assert_eq!(b.state.sockets.time_wait_count(), 1);
        // Above it: the TIME_WAIT connection gives way and the listener
        // answers, its ISS a window past all the old one sent.
        let new = Seg {
            src_port: 6000,
            ..Seg::syn(5000, 80)
        };
        let (v, out) = b.input(false, &new);
        assert_eq!((v, out.len()), ("consumed", 1));
        assert_eq!((out[0].flags, out[0].ack), (SYN | ACK, 5001));
        let counters = b.state.sockets.counters();
        assert_eq!((counters.time_wait_reuses, counters.passive_opens), (1, 2));
        assert_eq!(b.state.sockets.time_wait_count(), 0);
        let iss = out[0].seq;
        let (v, _) = b.input(false, &from(6000, 5001, Some(iss.wrapping_add(1))));
        assert_eq!(v, "consumed");
        let kinds: Vec<_> = b.events().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds[0], EventKind::Accepted { listener: l });
        assert_eq!(b.state.sockets.len(), 2, "the listener and the new one");
        pool().assert_whole();
    }

    #[test]
    fn a_time_wait_connection_the_application_holds_is_not_reused() {
        let mut b = Bench::new(TcpConfig::default());
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let (c, iss) = handshake(&mut b, false, l.unwrap(), 6000);
        // We shut down first (the handle stays), the peer's FIN follows.
        let (r, out) = b.call(|cx| shutdown(cx, c));
        assert_eq!(r, Ok(()));
        let fin = out.iter().find(|s| s.flags & FIN != 0).expect("a FIN").seq;
        assert_eq!(fin, iss + 1);
        b.input(
            false,
            &Seg {
                fin: true,
                ..from(6000, 1001, Some(fin + 1))
            },
        );
        assert_eq!(b.state.sockets.time_wait_count(), 1);
        // A SYN above RCV.NXT finds the handle held: a challenge ACK, as
        // in any synchronized state, and the connection stays.
        let new = Seg {
            src_port: 6000,
            ..Seg::syn(5000, 80)
        };
        let (v, out) = b.input(false, &new);
        assert_eq!((v, out.len()), ("consumed", 1));
        assert_eq!((out[0].flags, out[0].ack), (ACK, 1002));
        assert_eq!(b.state.sockets.counters().time_wait_reuses, 0);
        assert_eq!(b.state.sockets.time_wait_count(), 1);
        assert_eq!(b.call(|cx| close(cx, c)).0, Ok(()));
        b.events();
        pool().assert_whole();
    }

    #[test]
    fn a_table_full_of_time_wait_makes_room_for_a_new_connection() {
        // The listener and two connections fill the table; both
        // connections go to TIME_WAIT, far below its own bound.
        let cfg = TcpConfig {
            max_sockets: 3,
            ..TcpConfig::default()
        };
        let mut b = Bench::new(cfg);
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let l = l.unwrap();
        for port in [6000, 6001] {
            into_time_wait(&mut b, l, port);
        }
        assert_eq!(b.state.sockets.time_wait_count(), 2);
        assert_eq!(b.state.sockets.len(), 3, "the table is full");
        // A third peer's SYN is answered: the oldest TIME_WAIT made room.
        let (c, _) = handshake(&mut b, false, l, 6002);
        assert!(b.state.sockets.info(c).is_ok());
        let counters = b.state.sockets.counters();
        assert_eq!(counters.time_wait_evictions, 1);
        assert_eq!(counters.table_full_drops, 0);
        assert_eq!(b.state.sockets.time_wait_count(), 1);
        assert_eq!(b.state.sockets.len(), 3);
        b.events();
        pool().assert_whole();
    }

    #[test]
    fn unacknowledged_data_times_out_with_an_error_and_a_closed_event() {
        let cfg = TcpConfig {
            data_retries: 2,
            ..TcpConfig::default()
        };
        let mut b = Bench::new(cfg);
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let (c, _) = handshake(&mut b, false, l.unwrap(), 5000);
        let (n, out) = b.call(|cx| send(cx, c, &[7u8; 100]));
        assert_eq!(n, Ok(100));
        assert_eq!(out.iter().map(|s| s.payload.len()).sum::<usize>(), 100);
        // The peer never answers: the retransmission timer backs off until
        // the retries are spent.
        let mut kinds = Vec::new();
        for _ in 0..20 {
            let Some(at) = b.state.sockets.next_deadline() else {
                break;
            };
            b.timers_at(at.max(b.now_ns));
            kinds.extend(b.events().into_iter().map(|e| e.kind));
            if kinds.contains(&EventKind::Closed) {
                break;
            }
        }
        assert!(
            kinds.contains(&EventKind::Error(SocketError::TimedOut)),
            "{kinds:?}"
        );
        assert!(kinds.contains(&EventKind::Closed), "{kinds:?}");
        let (r, _) = b.call(|cx| send(cx, c, b"x"));
        assert!(r.is_err(), "a dead connection takes no data: {r:?}");
        let (r, _) = b.call(|cx| (close(cx, c), close(cx, l.unwrap())));
        assert_eq!(r, (Ok(()), Ok(())));
        assert!(b.state.sockets.is_empty());
        pool().assert_whole();
    }

    #[test]
    fn a_timer_that_moved_later_does_nothing_at_its_old_deadline_and_runs_at_its_new_one() {
        let mut b = Bench::new(TcpConfig::default());
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let (c, iss) = handshake(&mut b, false, l.unwrap(), 5000);
        for byte in [1u8, 2] {
            let (n, out) = b.call(|cx| send(cx, c, &[byte; 100]));
            assert_eq!((n, out.len()), (Ok(100), 1), "a segment of 100 bytes");
        }
        let old = b.state.sockets.next_deadline().expect("the RTO runs");
        // The peer ACKs the first segment a little later: the RTO restarts
        // (RFC 6298 §5.3), so the connection's deadline moves later.
        b.now_ns += 10_000_000;
        let (v, out) = b.input(false, &from(5000, 1001, Some(iss + 101)));
        assert_eq!((v, out.len()), ("consumed", 0));
        let (fired, out) = b.timers_at(old);
        assert_eq!(
            (fired, out.len()),
            (0, 0),
            "nothing due at the old deadline"
        );
        let new = b.state.sockets.next_deadline().expect("the RTO still runs");
        assert!(new > old, "{new} after {old}");
        let (fired, out) = b.timers_at(new);
        assert_eq!(fired, 1);
        assert_eq!(out.len(), 1, "the unacknowledged segment, retransmitted");
        assert_eq!((out[0].seq, out[0].payload.len()), (iss + 101, 100));
        b.call(|cx| {
            let _ = (abort(cx, c), close(cx, l.unwrap()));
        });
        drop(out);
        assert!(b.state.sockets.is_empty());
        pool().assert_whole();
    }

    #[test]
    fn a_burst_is_readable_in_its_iteration_and_the_answer_carries_its_ack() {
        use tpa::stage::Stage;
        for v6 in [false, true] {
            let mut b = Bench::new(TcpConfig::default());
            let (l, _) = b.call(|cx| {
                listen(
                    cx,
                    if v6 { "[::]:80" } else { "0.0.0.0:80" }.parse().unwrap(),
                    8,
                )
            });
            let (c, iss) = handshake(&mut b, v6, l.unwrap(), 5000);
            b.events();
            let seg = |seq: u32, byte: u8| Seg {
                payload: vec![byte; 100],
                ..from(5000, seq, Some(iss + 1))
            };
            let frames = [
                tcp_packet(&segment_frame(v6, &seg(1001, 1))),
                tcp_packet(&segment_frame(v6, &seg(1101, 2))),
            ];
            let stage = &mut b.stage;
            let ((kinds, got), out) = crate::testing::with_state_at(b.now_ns, &mut b.state, |cx| {
                // The receive phase: both segments, no poll yet.
                for p in frames {
                    assert!(matches!(
                        stage.process(p, cx),
                        tpa::stage::Verdict::Consumed
                    ));
                }
                // The application's turn: one Readable for the burst, all
                // of it readable, the answer written.
                let kinds: Vec<_> = core::iter::from_fn(|| cx.part::<tpa::app::Events>().pop())
                    .map(|e| (e.socket, e.kind))
                    .collect();
                let mut buf = [0u8; 400];
                let got = read(cx, c, &mut buf).unwrap();
                assert_eq!(send(cx, c, b"reply"), Ok(5));
                // The state's poll: the answer leaves now.
                tpa::state::PolledState::<PoolBuf>::poll(cx);
                (kinds, got)
            });
            assert_eq!(kinds, [(c, EventKind::Readable)]);
            assert_eq!(got, 200);
            let out: Vec<_> = out.iter().map(|f| parse_tcp(&bytes(f))).collect();
            assert_eq!(out.len(), 1, "one segment: the answer with the ACK");
            assert_eq!(
                (out[0].payload.as_slice(), out[0].ack),
                (&b"reply"[..], 1201)
            );
            // Raised once: nothing more at the next turn.
            b.call(|_| ());
            assert!(b.events().is_empty());
            b.call(|cx| {
                let _ = (abort(cx, c), close(cx, l.unwrap()));
            });
            drop(out);
            assert!(b.state.sockets.is_empty());
        }
        pool().assert_whole();
    }

    #[test]
    fn events_that_do_not_fit_the_queue_come_later_and_the_accept_queue_once() {
        let mut b = Bench::new(TcpConfig::default());
        b.state.events = tpa::app::Events::with_capacity(0);
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let l = l.unwrap();
        let (_, out) = b.input(false, &Seg::syn(1000, 80));
        let iss = out[0].seq;
        b.input(false, &from(5000, 1001, Some(iss + 1)));
        // Neither Accepted nor Writable fits: both wait on the connection.
        assert!(b.events().is_empty());
        assert_eq!(b.state.sockets.counters().events_deferred, 2);
        b.state.events = tpa::app::Events::with_capacity(1);
        b.call(|_| ());
        let first = b.events();
        assert_eq!(first.len(), 1);
        let c = first[0].socket;
        assert_eq!(first[0].kind, EventKind::Accepted { listener: l });
        b.call(|_| ());
        assert_eq!(
            b.events()
                .iter()
                .map(|e| (e.socket, e.kind))
                .collect::<Vec<_>>(),
            [(c, EventKind::Writable)]
        );
        let (r, _) = b.call(|cx| (accept(cx, l), accept(cx, l)));
        assert_eq!(r.0.map(|(s, _)| s), Ok(c));
        assert_eq!(r.1, Err(SocketError::WouldBlock), "queued once");
        b.call(|cx| {
            let _ = (abort(cx, c), close(cx, l));
        });
        assert!(b.state.sockets.is_empty());
        pool().assert_whole();
    }

    #[test]
    fn challenge_acks_across_connections_stop_at_the_tables_randomized_budget() {
        // RFC 5961 §7 stack-wide, as Linux's tcp_challenge_ack_limit: an
        // in-window SYN on each of 40 connections within one second draws
        // a challenge ACK until the second's budget, drawn from [5, 15)
        // for a limit of 10, is spent; the next second has a new one.
        let cfg = TcpConfig {
            challenge_ack_limit: 10,
            ..TcpConfig::default()
        };
        let mut b = Bench::new(cfg);
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 64));
        let l = l.unwrap();
        let conns: Vec<u16> = (0..40).map(|i| 6000 + i).collect();
        for &port in &conns {
            handshake(&mut b, false, l, port);
        }
        let mut per_second = Vec::new();
        for second in 1..=3u64 {
            b.now_ns = second * 1_000_000_000 + 1_000_000;
            let mut acks = 0;
            for &port in &conns {
                let syn = Seg {
                    src_port: port,
                    ..Seg::syn(1001, 80)
                };
                let (v, out) = b.input(false, &syn);
                assert_eq!(v, "consumed");
                acks += out.iter().filter(|p| p.flags == ACK).count();
            }
            per_second.push(acks);
        }
        let limited = b.state.sockets.counters().challenge_acks_limited;
        assert!(
            per_second.iter().all(|&n| (5..15).contains(&n)),
            "{per_second:?}"
        );
        assert_eq!(
            limited as usize,
            3 * conns.len() - per_second.iter().sum::<usize>()
        );
        // The randomized budget is not the same every second (seed 1).
        assert!(
            per_second.windows(2).any(|w| w[0] != w[1]),
            "{per_second:?}"
        );
        // With no table-wide limit each connection answers once a second.
        let mut b = Bench::new(TcpConfig {
            challenge_ack_limit: 0,
            ..TcpConfig::default()
        });
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 64));
        let l = l.unwrap();
        for &port in &conns {
            handshake(&mut b, false, l, port);
        }
        b.now_ns = 1_000_000_000;
        let acks: usize = conns
            .iter()
            .map(|&port| {
                let syn = Seg {
                    src_port: port,
                    ..Seg::syn(1001, 80)
                };
                b.input(false, &syn).1.len()
            })
            .sum();
        assert_eq!(acks, conns.len());
        assert_eq!(b.state.sockets.counters().challenge_acks_limited, 0);
        drop(b);
        pool().assert_whole();
    }

    /// The state of the peer's neighbor entry at the bench's clock, and
    /// whether its cache has a timer running (DELAY or PROBE).
    fn peer_neighbor(b: &Bench, v6: bool) -> (crate::neighbor::NeighborState, bool) {
        let egress = &b.state.egress;
        match them(v6) {
            std::net::IpAddr::V4(ip) => {
                let cache = egress.neighbors_v4();
                let n = cache.get(ip, b.now_ns).expect("the peer is known");
                (n.state, cache.next_deadline().is_some())
            }
            std::net::IpAddr::V6(ip) => {
                let cache = egress.neighbors_v6();
                let n = cache.get(ip, b.now_ns).expect("the peer is known");
                (n.state, cache.next_deadline().is_some())
            }
        }
    }

    #[test]
    fn forward_progress_keeps_the_peers_neighbor_reachable_with_no_probe() {
        use crate::neighbor::NeighborState::{Delay, Reachable};
        const MS: u64 = 1_000_000;
        for v6 in [false, true] {
            let mut b = Bench::new(TcpConfig::default());
            let any: SocketAddr = if v6 { "[::]:80" } else { "0.0.0.0:80" }.parse().unwrap();
            let (l, _) = b.call(|cx| listen(cx, any, 8));
            let (c, iss) = handshake(&mut b, v6, l.unwrap(), 5000);
            // The handshake's ACK acknowledged our SYN: confirmed.
            assert_eq!(peer_neighbor(&b, v6), (Reachable, false), "v6 {v6}");
            // A receive-only flow for 40 s: new in-order data every 250 ms,
            // each ACKed by us. Far longer than the 5 s an entry in use
            // stays REACHABLE unconfirmed, and than ReachableTime.
            let mut seq = 1001u32;
            let start = b.now_ns;
            for _ in 0..160 {
                b.now_ns += 250 * MS;
                let data = Seg {
                    psh: true,
                    payload: vec![7; 100],
                    ..from(5000, seq, Some(iss + 1))
                };
                seq += 100;
                assert_eq!(b.input(v6, &data).0, "consumed");
                let (_, acks) = b.timers_at(b.now_ns + 100 * MS);
                assert!(acks.iter().all(|a| a.ack == seq), "v6 {v6}: {acks:?}");
                let (got, _) = b.call(|cx| recv(cx, c).map(|o| o.map(|buf| buf.data().len())));
                assert_eq!(got, Ok(Some(100)), "v6 {v6}");
                assert_eq!(peer_neighbor(&b, v6), (Reachable, false), "v6 {v6}");
            }
            // At most one confirmation a second, and not none.
            let confirmations = b.state.sockets.counters().neighbor_confirmations;
            let seconds = (b.now_ns - start).div_ceil(crate::tcp::CONFIRM_INTERVAL_NS) + 1;
            assert!(
                (seconds / 2..=seconds).contains(&confirmations),
                "v6 {v6}: {confirmations} confirmations in {seconds} s"
            );
            assert_eq!(
                confirmations,
                b.state.egress.neighbors_v4().counters().confirmations
                    + b.state.egress.neighbors_v6().counters().confirmations
            );
            // Without progress (the peer repeats old data) our answers are
            // unconfirmed use: the entry goes STALE, then DELAY, to be probed.
            let old = Seg {
                payload: vec![7; 100],
                ..from(5000, seq - 100, Some(iss + 1))
            };
            for _ in 0..30 {
                b.now_ns += 250 * MS;
                b.input(v6, &old);
            }
            assert_eq!(peer_neighbor(&b, v6), (Delay, true), "v6 {v6}");
            b.events();
        }
        pool().assert_whole();
    }

    #[test]
    fn a_connection_closed_by_the_application_is_closing_until_its_fin_is_acknowledged() {
        // What a host that stops after close must wait for: the handle
        // answers BadSocket at once, while the connection still has its
        // FIN to get acknowledged (and to send again if it is lost).
        let mut b = Bench::new(TcpConfig::default());
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let (c, iss) = handshake(&mut b, false, l.unwrap(), 5000);
        let peer_fin = Seg {
            fin: true,
            ..from(5000, 1001, Some(iss + 1))
        };
        b.input(false, &peer_fin);
        assert_eq!(
            b.state.sockets.state(c),
            Ok(crate::tcp::conn::State::CloseWait)
        );
        assert_eq!(b.state.sockets.closing_count(), 0);
        let (_, out) = b.call(|cx| close(cx, c));
        assert!(out.iter().any(|s| s.flags & FIN != 0 && s.seq == iss + 1));
        assert_eq!(b.state.sockets.state(c), Err(SocketError::BadSocket));
        assert_eq!(b.state.sockets.closing_count(), 1);
        // The FIN is lost: only timers that run send it again.
        let (_, again) = b.timers_at(b.now_ns + 3_000_000_000);
        assert!(
            again.iter().any(|s| s.flags & FIN != 0 && s.seq == iss + 1),
            "{again:?}"
        );
        assert_eq!(b.state.sockets.closing_count(), 1);
        b.input(false, &from(5000, 1002, Some(iss + 2)));
        assert_eq!(b.state.sockets.closing_count(), 0);
        assert_eq!(b.state.sockets.len(), 1, "only the listener is left");
        b.events();
        // An active close ends in TIME_WAIT, which needs no running host.
        into_time_wait(&mut b, l.unwrap(), 5001);
        assert_eq!(b.state.sockets.time_wait_count(), 1);
        assert_eq!(b.state.sockets.closing_count(), 0);
        b.events();
        drop(b);
        pool().assert_whole();
    }

    /// Runs `f` at `now_ns` on the bench's state, then TCP's timers and
    /// output (the state's): the TCP segments sent (parsed) and the ARP
    /// requests.
    fn frames_at<R>(
        b: &mut Bench,
        now_ns: u64,
        f: impl FnOnce(&mut tpa::stage::Cx<'_, PoolBuf, TcpState>) -> R,
    ) -> (R, Vec<Parsed>, usize) {
        use tpa::state::PolledState;
        b.now_ns = now_ns;
        let (r, frames) = crate::testing::with_state_at(now_ns, &mut b.state, |cx| {
            let r = f(cx);
            PolledState::<PoolBuf>::fire_timers(cx);
            PolledState::<PoolBuf>::poll(cx);
            r
        });
        let frames: Vec<Vec<u8>> = frames.iter().map(bytes).collect();
        let arp = frames.iter().filter(|f| f[12..14] == [0x08, 0x06]).count();
        let tcp = frames
            .iter()
            .filter(|f| f[12..14] != [0x08, 0x06])
            .map(|f| parse_tcp(f))
            .collect();
        (r, tcp, arp)
    }

    #[test]
    fn a_neighbor_given_up_while_a_connection_lives_is_resolved_again_by_its_next_segment() {
        // Linux's behaviour: a FAILED neighbor is asked again by the next
        // transmission; the connection is not silenced for good.
        const S: u64 = 1_000_000_000;
        let mut b = Bench::new(TcpConfig::default());
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let (c, iss) = handshake(&mut b, false, l.unwrap(), 5000);
        let peer = std::net::Ipv4Addr::from(crate::tcp::testing::THEM4);
        // The neighbor stopped answering: its probes failed, it is gone.
        b.state.egress.neighbors_v4_mut().forget(peer, |_| {});
        // Our data is held while it is asked for again.
        let t0 = b.now_ns;
        let (sent, tcp, arp) = frames_at(&mut b, t0, |cx| send(cx, c, b"after"));
        assert_eq!((sent, tcp.len(), arp), (Ok(5), 0, 1));
        // Nobody answers: the held segment is dropped, the connection
        // lives on.
        for t in 1..=3 {
            crate::testing::with_state_at(t0 + t * S, &mut b.state, |cx| {
                let ((egress, events), port) = cx.parts::<(Egress<PoolBuf>, tpa::app::Events)>();
                egress.fire_timers_v4(port, events);
            });
        }
        assert!(b.state.egress.neighbors_v4().is_empty());
        assert_eq!(b.state.egress.counters().unreachable, 1);
        assert_eq!(
            b.state.sockets.state(c),
            Ok(crate::tcp::conn::State::Established)
        );
        // Its retransmission asks again (held, a new request).
        let (_, tcp, arp) = frames_at(&mut b, t0 + 10 * S, |_| ());
        assert_eq!((tcp.len(), arp), (0, 1), "{tcp:?}");
        assert_eq!(b.state.egress.counters().held, 2);
        // The neighbor answers this time: the retransmission leaves.
        let (_, tcp, _) = frames_at(&mut b, t0 + 10 * S + 1, |cx| {
            let (state, port) = cx.split();
            let mac = Some(tpa::wire::MacAddr(crate::tcp::testing::THEM_MAC));
            let heard = crate::neighbor::Heard::Solicitation;
            state.egress.learn_v4(peer, mac, heard, port);
        });
        assert_eq!(tcp.len(), 1, "{tcp:?}");
        assert_eq!(
            (tcp[0].seq, tcp[0].payload.as_slice()),
            (iss + 1, &b"after"[..])
        );
        b.input(false, &from(5000, 1001, Some(iss + 6)));
        assert_eq!(b.state.sockets.info(c).map(|i| i.bytes_in_flight), Ok(0));
        b.events();
        drop(b);
        pool().assert_whole();
    }

    /// Sends `data` on `c` in one loop iteration (the call, then the
    /// state's poll); returns the frames that left, whole.
    fn send_frames(b: &mut Bench, c: SocketId, data: &[u8]) -> Vec<Vec<u8>> {
        let (sent, frames) = crate::testing::with_state_at(b.now_ns, &mut b.state, |cx| {
            let sent = send(cx, c, data);
            tpa::state::PolledState::<PoolBuf>::poll(cx);
            sent
        });
        assert_eq!(sent, Ok(data.len()));
        frames.iter().map(bytes).collect()
    }

    /// A frame of ours carrying `data` over IPv4 to `mac`: Ethernet
    /// addresses, the IPv4 header checksum (summed here), the TCP
    /// checksum and payload (`parse_tcp`).
    fn segment_to(frame: &[u8], mac: [u8; 6], data: &[u8]) {
        assert_eq!(frame[..6], mac, "Ethernet destination");
        assert_eq!(frame[6..12], crate::tcp::testing::US_MAC, "Ethernet source");
        assert_eq!(frame[12..14], [0x08, 0x00], "IPv4");
        let mut sum = 0u32;
        for w in frame[14..34].chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff, "IPv4 header checksum");
        assert_eq!(parse_tcp(frame).payload, data);
    }

    /// The connection's way out (Ethernet and IPv4 headers, next hop) is
    /// built once, but the neighbor is looked up for every segment: a
    /// neighbor whose MAC changes mid-connection gets the next segment at
    /// the new address, and an egress path replaced by one that does not
    /// know the neighbor yet asks for it and holds the segment until the
    /// answer, as on the first segment ever.
    #[test]
    fn a_neighbor_that_moves_mid_connection_gets_the_next_segment_at_its_new_mac() {
        use crate::neighbor::{Heard, NeighborState};
        use crate::tcp::testing::{iface, THEM4, THEM_MAC};
        use std::net::Ipv4Addr;
        use tpa::wire::MacAddr;
        const MOVED: [u8; 6] = [2, 0, 0, 0, 0, 0x22];
        const THIRD: [u8; 6] = [2, 0, 0, 0, 0, 0x33];
        let them4 = Ipv4Addr::from(THEM4);
        let mut b = Bench::new(TcpConfig::default());
        let (l, _) = b.call(|cx| listen(cx, "0.0.0.0:80".parse().unwrap(), 8));
        let l = l.unwrap();
        let (c, _) = handshake(&mut b, false, l, 5000);
        assert!(b.call(|cx| accept(cx, l)).0.is_ok());

        let out = send_frames(&mut b, c, b"one");
        assert_eq!(out.len(), 1);
        segment_to(&out[0], THEM_MAC, b"one");

        // The neighbor moves: an unsolicited advertisement that overrides.
        let moved = Heard::Advertisement {
            solicited: false,
            override_entry: true,
        };
        crate::testing::with_state_at(b.now_ns, &mut b.state, |cx| {
            let (state, port) = cx.split();
            let mac = Some(MacAddr(MOVED));
            assert_eq!(
                state.egress.learn_v4(them4, mac, moved, port),
                Some(NeighborState::Stale)
            );
        });
        let out = send_frames(&mut b, c, b"two");
        assert_eq!(out.len(), 1);
        segment_to(&out[0], MOVED, b"two");
        assert_eq!(
            b.state
                .egress
                .neighbors_v4()
                .get(them4, b.now_ns)
                .map(|n| n.state),
            Some(NeighborState::Delay),
            "the STALE entry went to DELAY with the segment, as RFC 4861 says"
        );

        // A new egress path that has never heard of the neighbor.
        b.state.egress = crate::egress::Egress::new(iface());
        let out = send_frames(&mut b, c, b"three");
        assert_eq!(out.len(), 1, "the ARP request alone: the segment is held");
        assert_eq!(out[0][12..14], [0x08, 0x06]);
        assert_eq!(out[0][38..42], THEM4, "asks for the neighbor");
        let (_, released) = crate::testing::with_state_at(b.now_ns, &mut b.state, |cx| {
            let (state, port) = cx.split();
            let reply = Heard::Advertisement {
                solicited: true,
                override_entry: true,
            };
            state
                .egress
                .learn_v4(them4, Some(MacAddr(THIRD)), reply, port)
        });
        assert_eq!(released.len(), 1, "the held segment leaves with the answer");
        segment_to(&bytes(&released[0]), THIRD, b"three");
        let out = send_frames(&mut b, c, b"four");
        assert_eq!(out.len(), 1);
        segment_to(&out[0], THIRD, b"four");
        drop((out, released, b));
        pool().assert_whole();
    }
}
